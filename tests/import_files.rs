//! Import of planner files: malformed input is reported with exact
//! file:line:column, and export followed by import gives back equal data.

use spares::demo::{DemoConfig, build_demo};
use spares::import::{FileFormat, ImportBundle, ImportError, export_dir, load_dir, parse_files};
use std::path::Path;

const LOCATIONS: &str = "\
id,name,kind,latitude_deg,longitude_deg,time_zone,working_days,opens_local,closes_local,holidays,order_cutoff_local,handling_minutes,replenishment_source_id,country_code
DEP-ROT,Rotterdam depot,factory_depot,51.9225,4.47917,Europe/Amsterdam,Mon-Fri,06:00,22:00,2026-12-25;2026-12-26,18:00,90,,NL
RWH-FRA,Frankfurt regional,regional_warehouse,50.11552,8.68417,Europe/Berlin,Mon-Fri,07:00,19:00,2026-10-03,16:30,60,DEP-ROT,DE
STR-0001,Cologne store,store,50.93333,6.95,Europe/Berlin,\"Mon-Fri,Sat\",07:30,17:30,,17:00,30,RWH-FRA,DE
";

const LANES: &str = "\
from,to,mode,kind,transit_hours_p50,transit_hours_p90,cost_per_unit_usd,departure_days,departures_local
DEP-ROT,RWH-FRA,road,replenishment,20,28,3.5,Mon-Fri,19:00
RWH-FRA,STR-0001,road,replenishment,9,9,2,,
";

const PARTS: &str = "\
id,description,unit_cost_usd,criticality,kind,successor_part_id,interchangeability
P-1,Hydraulic pump 45cc,1200,critical,repairable,P-2,two_way
P-2,Hydraulic pump 45cc,1300,critical,repairable,,
P-3,Oil filter,12.5,routine,consumable,,
";

const STOCK: &str = "part_id,location_id,on_hand\nP-1,DEP-ROT,4\nP-3,STR-0001,10\n";

fn valid_files() -> Vec<(String, String)> {
    vec![
        ("locations.csv".into(), LOCATIONS.into()),
        ("lanes.csv".into(), LANES.into()),
        ("parts.csv".into(), PARTS.into()),
        ("stock.csv".into(), STOCK.into()),
    ]
}

/// The valid files with one replaced.
fn with(name: &str, text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = valid_files()
        .into_iter()
        .filter(|(n, _)| n != name)
        .collect();
    files.push((name.into(), text.into()));
    files
}

fn error(files: &[(String, String)]) -> ImportError {
    match parse_files(files) {
        Ok(bundle) => panic!(
            "expected an error, got {} locations",
            bundle.locations.len()
        ),
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
fn valid_files_load() {
    let bundle = parse_files(&valid_files()).unwrap();
    assert_eq!(bundle.locations.len(), 3);
    assert_eq!(bundle.lanes.len(), 2);
    assert!(bundle.lanes[0].schedule.is_some() && bundle.lanes[1].schedule.is_none());
    assert_eq!(bundle.parts[0].successor.as_deref(), Some("P-2"));
    assert_eq!(bundle.stock.len(), 2);
    assert_eq!(bundle.locations[2].calendar.working_days.len(), 6);
    let counts = bundle.stock_counts(|_, _| (0, 0)).unwrap();
    assert_eq!(counts.len(), 2);
    assert_eq!(
        counts[0].idempotency_key,
        "import stock.csv:2 P-1@DEP-ROT 0->4"
    );
}

#[test]
fn bad_number_names_line_and_column() {
    let text = LOCATIONS.replace("50.93333", "fifty");
    let e = error(&with("locations.csv", &text));
    assert_at(&e, "locations.csv", 4, 4, "latitude_deg: expected a number");
    assert!(
        e.to_string()
            .starts_with("locations.csv:4:4: latitude_deg:"),
        "{e}"
    );
}

#[test]
fn unknown_enum_value_lists_the_choices() {
    let text = LANES.replace("road,replenishment,9", "boat,replenishment,9");
    let e = error(&with("lanes.csv", &text));
    assert_at(
        &e,
        "lanes.csv",
        3,
        3,
        "expected one of road, air, sea, rail, courier",
    );
}

#[test]
fn missing_required_column_is_named() {
    let text = "id,description,unit_cost_usd,kind\nP-1,Pump,10,consumable\n";
    let e = error(&with("parts.csv", text));
    assert_at(
        &e,
        "parts.csv",
        1,
        0,
        "missing required column \"criticality\"",
    );
    assert_eq!(
        e.to_string(),
        "parts.csv:1: missing required column \"criticality\""
    );
}

#[test]
fn ragged_row_points_at_the_first_missing_field() {
    let text = "part_id,location_id,on_hand\nP-1,DEP-ROT,4\nP-3,STR-0001\n";
    let e = error(&with("stock.csv", text));
    assert_at(
        &e,
        "stock.csv",
        3,
        3,
        "row has 2 fields but the header has 3",
    );
}

#[test]
fn invalid_time_zone_is_rejected_at_its_cell() {
    let text = LOCATIONS.replace("Europe/Berlin,Mon-Fri", "Europe/Frankfurt,Mon-Fri");
    let e = error(&with("locations.csv", &text));
    assert_at(&e, "locations.csv", 3, 6, "not an IANA time zone");
}

#[test]
fn supply_tree_cycle_maps_back_to_the_row() {
    // The depot now claims to be fed by the store: DEP-ROT -> STR-0001 -> RWH-FRA -> DEP-ROT.
    let text = LOCATIONS.replace("18:00,90,,NL", "18:00,90,STR-0001,NL");
    let e = error(&with("locations.csv", &text));
    assert_at(&e, "locations.csv", 2, 13, "cycle");
}

#[test]
fn supersession_cycle_maps_back_to_the_row() {
    let text = PARTS.replace(
        "1300,critical,repairable,,",
        "1300,critical,repairable,P-1,",
    );
    let e = error(&with("parts.csv", &text));
    assert_at(&e, "parts.csv", 2, 6, "cycle");
}

#[test]
fn calendar_validation_points_at_the_closing_time() {
    let text = LOCATIONS.replace("07:00,19:00", "19:00,07:00");
    let e = error(&with("locations.csv", &text));
    assert_at(
        &e,
        "locations.csv",
        3,
        9,
        "closes_local: must be after opens_local",
    );
}

#[test]
fn lane_to_an_unknown_location_points_at_the_to_column() {
    let text = LANES.replace("RWH-FRA,STR-0001", "RWH-FRA,STR-9999");
    let e = error(&with("lanes.csv", &text));
    assert_at(&e, "lanes.csv", 3, 2, "unknown location \"STR-9999\"");
}

#[test]
fn stock_of_an_unknown_part_and_a_negative_quantity() {
    let e = error(&with(
        "stock.csv",
        "location_id,part_id,on_hand\nDEP-ROT,P-9,1\n",
    ));
    assert_at(&e, "stock.csv", 2, 2, "unknown part \"P-9\"");
    let e = error(&with(
        "stock.csv",
        "part_id,location_id,on_hand\nP-1,DEP-ROT,-3\n",
    ));
    assert_at(&e, "stock.csv", 2, 3, "expected a whole number");
}

#[test]
fn quoted_multiline_cell_keeps_later_lines_right() {
    let text = "id,description,unit_cost_usd,criticality,kind\nP-1,\"Pump\nwith a note\",10,routine,consumable\nP-2,Filter,x,routine,consumable\n";
    let e = error(&with("parts.csv", text));
    assert_at(&e, "parts.csv", 4, 3, "unit_cost_usd");
}

#[test]
fn demand_in_long_format_fills_gaps_and_rejects_duplicates() {
    let demand = "part_id,location_id,period,period_start,quantity\n\
                  P-3,STR-0001,month,2026-03-01,2\n\
                  P-3,STR-0001,month,2026-01-01,1\n";
    let mut files = valid_files();
    files.push(("demand.csv".into(), demand.into()));
    let bundle = parse_files(&files).unwrap();
    assert_eq!(bundle.demand[0].quantities, vec![1, 0, 2]);
    files.pop();
    files.push((
        "demand.csv".into(),
        format!("{demand}P-3,STR-0001,month,2026-03-01,5\n"),
    ));
    assert_at(&error(&files), "demand.csv", 4, 4, "duplicate period");
}

#[test]
fn json_errors_give_the_line_of_the_object_and_name_the_field() {
    let json = "[\n  {\"part_id\": \"P-1\", \"location_id\": \"DEP-ROT\", \"on_hand\": 4},\n  {\"part_id\": \"P-3\", \"location_id\": \"STR-0001\", \"on_hand\": 2.5}\n]\n";
    let mut files = valid_files();
    files.retain(|(n, _)| n != "stock.csv");
    files.push(("stock.json".into(), json.into()));
    let e = error(&files);
    assert_at(&e, "stock.json", 3, 0, "on_hand: expected a whole number");
    files.pop();
    files.push(("stock.json".into(), "[{\"part_id\": \"P-1\",}]".into()));
    assert!(error(&files).message.contains("invalid JSON"));
}

/// The bundle's data in a canonical order, without where each stock row was
/// read from (a file position is not data).
fn sorted(mut bundle: ImportBundle) -> ImportBundle {
    bundle
        .demand
        .sort_by(|a, b| (&a.part_id, &a.location_id).cmp(&(&b.part_id, &b.location_id)));
    for row in &mut bundle.stock {
        row.at = (0, 0);
    }
    bundle.stock_file = "stock.csv".into();
    bundle
}

fn round_trip(bundle: &ImportBundle, dir: &Path, format: FileFormat) -> ImportBundle {
    export_dir(bundle, dir, format).expect("export");
    sorted(load_dir(dir).expect("import what was exported"))
}

#[test]
fn demo_round_trips_through_csv_and_json() {
    let config = DemoConfig {
        seed: 7,
        parts: 400,
        stores: 24,
        ..DemoConfig::default()
    };
    let now = "2026-11-22T12:00:00Z".parse().unwrap();
    let bundle = sorted(build_demo(&config, now).unwrap().bundle());
    let csv_dir = tempfile::tempdir().unwrap();
    let from_csv = round_trip(&bundle, csv_dir.path(), FileFormat::Csv);
    assert_eq!(from_csv, bundle);
    let json_dir = tempfile::tempdir().unwrap();
    assert_eq!(
        round_trip(&bundle, json_dir.path(), FileFormat::Json),
        bundle
    );
    // And an imported bundle exports to the same text.
    let again = tempfile::tempdir().unwrap();
    assert_eq!(
        round_trip(&from_csv, again.path(), FileFormat::Csv),
        from_csv
    );
}

#[test]
fn load_dir_reads_only_known_files_and_treats_absent_ones_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("locations.csv"), LOCATIONS).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not data").unwrap();
    let bundle = load_dir(dir.path()).unwrap();
    assert_eq!(bundle.locations.len(), 3);
    assert!(bundle.parts.is_empty() && bundle.stock.is_empty());
    std::fs::write(dir.path().join("locations.json"), "[]").unwrap();
    let e = load_dir(dir.path()).unwrap_err();
    assert!(
        e.message.contains("locations.csv holds the same data"),
        "{e}"
    );
}

fn with_installed_base(model_parts: &str, fleets: &str) -> Vec<(String, String)> {
    let mut files = valid_files();
    files.push((
        "machine_models.csv".into(),
        "id,name,downtime_cost_usd_per_hour\nEX-320,Excavator 20 t,450\n".into(),
    ));
    files.push(("model_parts.csv".into(), model_parts.into()));
    files.push(("fleets.csv".into(), fleets.into()));
    files
}

#[test]
fn installed_base_errors_point_into_model_parts_and_fleets() {
    let parts = "machine_model_id,part_id,units_per_machine,attach_rate,failures_per_million_operating_hours\n\
                 EX-320,P-1,1,1,20\n\
                 EX-320,P-3,2,0.5,35\n";
    let fleets = "store_location_id,machine_model_id,machine_count,usage_hours_per_day\nSTR-0001,EX-320,12,9.5\n";
    let bundle = parse_files(&with_installed_base(parts, fleets)).unwrap();
    assert_eq!(bundle.machine_models[0].parts.len(), 2);
    assert_eq!(bundle.fleets[0].machine_count, 12);

    let bad_attach = parts.replace("2,0.5,35", "2,1.5,35");
    let e = error(&with_installed_base(&bad_attach, fleets));
    assert_at(
        &e,
        "model_parts.csv",
        3,
        4,
        "attach_rate: must be in (0, 1]",
    );

    let bad_hours = fleets.replace("9.5", "30");
    let e = error(&with_installed_base(parts, &bad_hours));
    assert_at(&e, "fleets.csv", 2, 4, "usage_hours_per_day");

    let at_depot = fleets.replace("STR-0001", "DEP-ROT");
    let e = error(&with_installed_base(parts, &at_depot));
    assert_at(&e, "fleets.csv", 2, 1, "fleets are served by stores");
}
