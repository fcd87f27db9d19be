//! Import of the planning inputs (supplier lead times on parts and per depot,
//! downtime cost per class and per part, demand rates, lanes keyed by kind):
//! every new column survives export and import, and a bad value is reported
//! at its file:line:column.
#![allow(clippy::unwrap_used)]

use spares::domain::network::{LaneKind, LeadTime};
use spares::import::{FileFormat, ImportBundle, ImportError, export_dir, load_dir, parse_files};

const LOCATIONS: &str = "\
id,kind,latitude_deg,longitude_deg,time_zone,replenishment_source_id
DEP-A,factory_depot,51.9,4.5,Europe/Amsterdam,
DEP-B,factory_depot,41.9,-87.6,America/Chicago,
RWH-1,regional_warehouse,50.1,8.7,Europe/Berlin,DEP-A
STR-1,store,50.9,6.9,Europe/Berlin,RWH-1
";

/// Two lanes of the same mode between the same locations, of two kinds.
const LANES: &str = "\
from,to,mode,kind,transit_hours_p50,transit_hours_p90,cost_per_unit_usd
DEP-A,RWH-1,road,replenishment,20,28,3.5
DEP-A,RWH-1,road,emergency,10,,90
RWH-1,STR-1,road,replenishment,9,9,2
";

const PARTS: &str = "\
id,unit_cost_usd,criticality,kind,supplier_lead_time_days_p50,supplier_lead_time_days_p90,supplier_lead_time_days_samples,downtime_cost_usd_per_hour
P-FIXED,100,critical,consumable,30,,,
P-LOGN,100,essential,consumable,30,75,,500
P-EMP,100,routine,consumable,,,45;12;60,
P-NONE,100,routine,consumable,,,,
";

const LEAD_TIMES: &str = "\
part_id,location_id,lead_time_days_p50,lead_time_days_p90,lead_time_days_samples
P-FIXED,DEP-B,90,120,
P-NONE,DEP-A,,,7;9;14
";

const CLASS_COSTS: &str = "\
criticality,downtime_cost_usd_per_hour
critical,500
essential,100
routine,10
";

const RATES: &str = "\
part_id,location_id,failures_per_day,variance_to_mean_ratio
P-FIXED,STR-1,0.25,
P-LOGN,STR-1,0.05,3.5
";

fn files() -> Vec<(String, String)> {
    [
        ("locations.csv", LOCATIONS),
        ("lanes.csv", LANES),
        ("parts.csv", PARTS),
        ("supplier_lead_times.csv", LEAD_TIMES),
        ("criticality_costs.csv", CLASS_COSTS),
        ("demand_rates.csv", RATES),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect()
}

fn with(name: &str, text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = files().into_iter().filter(|(n, _)| n != name).collect();
    files.push((name.into(), text.into()));
    files
}

fn error(files: &[(String, String)]) -> ImportError {
    match parse_files(files) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn assert_at(e: &ImportError, file: &str, line: u64, column: u64, needle: &str) {
    assert_eq!(
        (e.file.as_str(), e.line, e.column),
        (file, line, column),
        "{e}"
    );
    assert!(e.message.contains(needle), "{e} should mention {needle:?}");
}

#[test]
fn every_new_column_is_read() {
    let bundle = parse_files(&files()).unwrap();
    let lead = |i: usize| bundle.parts[i].supplier_lead_time.clone();
    assert_eq!(
        lead(0),
        Some(LeadTime::Fixed {
            lead_time_days: 30.0
        })
    );
    assert_eq!(
        lead(1),
        Some(LeadTime::Lognormal {
            lead_time_days_p50: 30.0,
            lead_time_days_p90: 75.0
        })
    );
    assert_eq!(
        lead(2),
        Some(LeadTime::Empirical {
            lead_time_days_samples: vec![12.0, 45.0, 60.0]
        })
    );
    assert_eq!(lead(3), None);
    assert_eq!(bundle.parts[1].downtime_cost_usd_per_hour, Some(500.0));
    assert_eq!(bundle.parts[0].downtime_cost_usd_per_hour, None);
    assert_eq!(bundle.supplier_lead_times.len(), 2);
    assert_eq!(bundle.criticality_costs.len(), 3);
    assert_eq!(bundle.demand_rates[0].variance_to_mean_ratio, 1.0);
    assert_eq!(bundle.demand_rates[1].variance_to_mean_ratio, 3.5);
    let kinds: Vec<LaneKind> = bundle.lanes.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [
            LaneKind::Replenishment,
            LaneKind::Emergency,
            LaneKind::Replenishment
        ]
    );
    assert_eq!(
        bundle.to_network().lanes.len(),
        3,
        "both DEP-A -> RWH-1 road lanes"
    );
}

fn round_trip(bundle: &ImportBundle, format: FileFormat) -> ImportBundle {
    let dir = tempfile::tempdir().unwrap();
    export_dir(bundle, dir.path(), format).unwrap();
    load_dir(dir.path()).unwrap()
}

/// Export writes records in key order; compare as networks.
fn same(a: &ImportBundle, b: &ImportBundle) {
    assert_eq!(a.to_network(), b.to_network());
}

#[test]
fn every_new_column_round_trips_through_csv_and_json() {
    let bundle = parse_files(&files()).unwrap();
    let from_csv = round_trip(&bundle, FileFormat::Csv);
    same(&from_csv, &bundle);
    same(&round_trip(&bundle, FileFormat::Json), &bundle);
    same(&round_trip(&from_csv, FileFormat::Csv), &bundle);
}

#[test]
fn bad_lead_times_are_reported_at_their_cell() {
    let negative = PARTS.replace(
        "P-FIXED,100,critical,consumable,30,",
        "P-FIXED,100,critical,consumable,-3,",
    );
    let e = error(&with("parts.csv", &negative));
    assert_at(
        &e,
        "parts.csv",
        2,
        5,
        "supplier_lead_time_days_p50: must be a finite number >= 0",
    );

    let nan = PARTS.replace("30,75,,500", "30,NaN,,500");
    let e = error(&with("parts.csv", &nan));
    assert_at(
        &e,
        "parts.csv",
        3,
        6,
        "supplier_lead_time_days_p90: expected a number",
    );

    let inverted = PARTS.replace("30,75,,500", "30,20,,500");
    let e = error(&with("parts.csv", &inverted));
    assert_at(&e, "parts.csv", 3, 6, "must be >= lead_time_days_p50");

    let both = PARTS.replace(
        "P-EMP,100,routine,consumable,,",
        "P-EMP,100,routine,consumable,5,",
    );
    let e = error(&with("parts.csv", &both));
    assert_at(
        &e,
        "parts.csv",
        4,
        5,
        "leave empty when supplier_lead_time_days_samples is given",
    );

    let inverted = LEAD_TIMES.replace("90,120", "90,60");
    let e = error(&with("supplier_lead_times.csv", &inverted));
    assert_at(
        &e,
        "supplier_lead_times.csv",
        2,
        4,
        "must be >= lead_time_days_p50",
    );

    let empty = LEAD_TIMES.replace("P-NONE,DEP-A,,,7;9;14", "P-NONE,DEP-A,,,");
    let e = error(&with("supplier_lead_times.csv", &empty));
    assert_at(&e, "supplier_lead_times.csv", 3, 3, "a value is required");

    let not_a_depot = LEAD_TIMES.replace("P-NONE,DEP-A", "P-NONE,RWH-1");
    let e = error(&with("supplier_lead_times.csv", &not_a_depot));
    assert_at(
        &e,
        "supplier_lead_times.csv",
        3,
        2,
        "is replenished by \"DEP-A\"",
    );

    let unknown = LEAD_TIMES.replace("P-NONE,DEP-A", "P-GHOST,DEP-A");
    let e = error(&with("supplier_lead_times.csv", &unknown));
    assert_at(
        &e,
        "supplier_lead_times.csv",
        3,
        1,
        "unknown part \"P-GHOST\"",
    );
}

#[test]
fn bad_costs_are_reported_at_their_cell() {
    let negative = PARTS.replace("30,75,,500", "30,75,,-1");
    let e = error(&with("parts.csv", &negative));
    assert_at(
        &e,
        "parts.csv",
        3,
        8,
        "downtime_cost_usd_per_hour: must be a finite number >= 0",
    );

    let nan = CLASS_COSTS.replace("essential,100", "essential,NaN");
    let e = error(&with("criticality_costs.csv", &nan));
    assert_at(&e, "criticality_costs.csv", 3, 2, "expected a number");

    let negative = CLASS_COSTS.replace("routine,10", "routine,-10");
    let e = error(&with("criticality_costs.csv", &negative));
    assert_at(
        &e,
        "criticality_costs.csv",
        4,
        2,
        "must be a finite number >= 0",
    );

    let twice = CLASS_COSTS.replace("routine,10", "critical,10");
    let e = error(&with("criticality_costs.csv", &twice));
    assert_at(&e, "criticality_costs.csv", 4, 1, "duplicate class");

    let unknown = CLASS_COSTS.replace("routine,10", "urgent,10");
    let e = error(&with("criticality_costs.csv", &unknown));
    assert_at(
        &e,
        "criticality_costs.csv",
        4,
        1,
        "unknown value \"urgent\"",
    );
}

#[test]
fn bad_demand_rates_are_reported_at_their_cell() {
    let low_ratio = RATES.replace("0.05,3.5", "0.05,0.5");
    let e = error(&with("demand_rates.csv", &low_ratio));
    assert_at(
        &e,
        "demand_rates.csv",
        3,
        4,
        "variance_to_mean_ratio: must be a finite number >= 1",
    );

    let negative = RATES.replace("0.25,", "-0.25,");
    let e = error(&with("demand_rates.csv", &negative));
    assert_at(
        &e,
        "demand_rates.csv",
        2,
        3,
        "failures_per_day: must be a finite number >= 0",
    );

    let nan = RATES.replace("0.25,", "NaN,");
    let e = error(&with("demand_rates.csv", &nan));
    assert_at(&e, "demand_rates.csv", 2, 3, "expected a number");

    let unknown_part = RATES.replace("P-LOGN,STR-1", "P-GHOST,STR-1");
    let e = error(&with("demand_rates.csv", &unknown_part));
    assert_at(&e, "demand_rates.csv", 3, 1, "unknown part \"P-GHOST\"");

    let unknown_location = RATES.replace("P-LOGN,STR-1", "P-LOGN,STR-9");
    let e = error(&with("demand_rates.csv", &unknown_location));
    assert_at(&e, "demand_rates.csv", 3, 2, "unknown location \"STR-9\"");

    let twice = RATES.replace("P-LOGN,STR-1", "P-FIXED,STR-1");
    let e = error(&with("demand_rates.csv", &twice));
    assert_at(&e, "demand_rates.csv", 3, 2, "duplicate demand rate");
}

#[test]
fn a_lane_of_the_same_kind_and_mode_twice_is_a_duplicate() {
    let twice = format!("{LANES}DEP-A,RWH-1,road,emergency,12,,95\n");
    let e = error(&with("lanes.csv", &twice));
    assert_at(
        &e,
        "lanes.csv",
        5,
        4,
        "duplicate lane (from, to, mode, kind)",
    );
}
