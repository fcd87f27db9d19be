//! Bad inputs give typed errors naming the field or entity, never a panic or a NaN.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use spares_simulations::{Echelon, LaneKind, Life, Model, Policy, SimError, simulate};

fn error_of(model: &Model, config: &spares_simulations::SimConfig) -> SimError {
    simulate(model, config, &no_progress, &AtomicBool::new(false)).expect_err("input is rejected")
}

fn ok_config() -> spares_simulations::SimConfig {
    config(1, 4, 100.0, 10.0)
}

#[test]
fn nan_and_negative_rates_name_the_field() {
    for bad in [f64::NAN, -0.1, f64::INFINITY] {
        let mut model = single_site(1.0, deterministic(2.0), 1);
        model.failure_models[0].life = Life::Exponential {
            failures_per_operating_hour: bad,
        };
        match error_of(&model, &ok_config()) {
            SimError::InvalidValue { field, entity, .. } => {
                assert_eq!(field, "failures_per_operating_hour");
                assert!(entity.contains("part `P`"), "{entity}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut model = single_site(1.0, deterministic(2.0), 1);
    model.fleets[0].usage_hours_per_day = f64::NAN;
    assert!(
        matches!(error_of(&model, &ok_config()), SimError::InvalidValue { field, .. } if field == "usage_hours_per_day")
    );
    let mut model = single_site(1.0, deterministic(-2.0), 1);
    model.locations[0].name = "x".into();
    assert!(
        matches!(error_of(&model, &ok_config()), SimError::InvalidValue { field, .. } if field == "external_supply_days")
    );
}

#[test]
fn bad_run_settings_are_rejected() {
    let model = single_site(1.0, deterministic(2.0), 1);
    assert_eq!(
        error_of(&model, &config(1, 0, 100.0, 10.0)),
        SimError::ZeroReplications
    );
    assert!(matches!(
        error_of(&model, &config(1, 4, 10.0, 20.0)),
        SimError::HorizonNotAfterWarmUp { .. }
    ));
    assert!(matches!(
        error_of(&model, &config(1, 4, 10.0, 10.0)),
        SimError::HorizonNotAfterWarmUp { .. }
    ));
    assert!(matches!(
        error_of(&model, &config(1, 4, f64::NAN, 10.0)),
        SimError::InvalidValue { .. }
    ));
    assert!(matches!(
        error_of(&model, &config(1, 1_000_000, 100.0, 10.0)),
        SimError::LimitExceeded { .. }
    ));
    let mut unsorted = ok_config();
    unsorted.wait_thresholds_days = vec![2.0, 1.0];
    assert!(
        matches!(error_of(&model, &unsorted), SimError::InvalidValue { field, .. } if field == "wait_thresholds_days")
    );
}

#[test]
fn a_store_without_supply_is_named() {
    let mut model = single_site(1.0, deterministic(2.0), 1);
    model.locations[0].external_supply_days = None;
    assert_eq!(
        error_of(&model, &ok_config()),
        SimError::NoSupplyPath {
            location: "S".into(),
            part: "P".into()
        }
    );
    // A warehouse above the store without outside supply is the same fault.
    model.locations.push(location("W", Echelon::Regional, None));
    model.lanes.push(lane(
        "W",
        "S",
        LaneKind::Replenishment,
        deterministic(1.0),
        0.0,
    ));
    assert!(matches!(
        error_of(&model, &ok_config()),
        SimError::NoSupplyPath { .. }
    ));
}

#[test]
fn broken_references_and_trees_are_rejected() {
    let mut model = single_site(1.0, deterministic(2.0), 1);
    model.fleets[0].machine_model = "NOPE".into();
    assert!(
        matches!(error_of(&model, &ok_config()), SimError::UnknownReference { id, .. } if id == "NOPE")
    );

    let mut model = single_site(1.0, deterministic(2.0), 1);
    model.locations.push(location("S", Echelon::Store, None));
    assert!(matches!(
        error_of(&model, &ok_config()),
        SimError::DuplicateId { .. }
    ));

    let mut model = single_site(1.0, deterministic(2.0), 1);
    model.locations.push(location("A", Echelon::Regional, None));
    model.locations.push(location("B", Echelon::Regional, None));
    model.lanes.push(lane(
        "A",
        "B",
        LaneKind::Replenishment,
        deterministic(1.0),
        0.0,
    ));
    model.lanes.push(lane(
        "B",
        "A",
        LaneKind::Replenishment,
        deterministic(1.0),
        0.0,
    ));
    assert!(matches!(
        error_of(&model, &ok_config()),
        SimError::SupplyCycle { .. }
    ));

    let mut model = single_site(1.0, deterministic(2.0), 1);
    model.policies[0].policy = Policy::MinMax {
        reorder_point: 3,
        order_up_to: 2,
    };
    assert!(
        matches!(error_of(&model, &ok_config()), SimError::InvalidValue { field, .. } if field == "order_up_to")
    );
}

#[test]
fn zero_demand_reports_absent_rates_not_nan() {
    let model = single_site(0.0, deterministic(2.0), 1);
    let report = run(&model, &ok_config());
    let measures = &report.network.measures;
    assert_eq!(measures.first_time_fill_rate, None);
    assert_eq!(measures.mean_wait_days, None);
    assert!(
        measures
            .wait_time_distribution
            .iter()
            .all(|p| p.probability.is_none())
    );
    assert_eq!(measures.availability.map(|a| a.mean), Some(1.0));
    assert_eq!(
        report,
        report.clone(),
        "a NaN would make the report unequal to itself"
    );
    let json = serde_json::to_string(&report).expect("serialises");
    assert!(!json.contains("NaN"));
}

#[test]
fn cancellation_stops_the_run_with_a_typed_error() {
    let model = rich_network();
    let cancel = AtomicBool::new(false);
    let raise = |_: spares_simulations::Progress| cancel.store(true, Ordering::Relaxed);
    let result = simulate(&model, &config(1, 500, 400.0, 60.0), &raise, &cancel);
    assert_eq!(result.err(), Some(SimError::Cancelled));
    let already = AtomicBool::new(true);
    let result = simulate(&model, &ok_config(), &no_progress, &already);
    assert_eq!(result.err(), Some(SimError::Cancelled));
}

#[test]
fn progress_counts_every_replication_in_order() {
    let done = std::sync::Mutex::new(Vec::new());
    let record = |p: spares_simulations::Progress| done.lock().expect("lock").push(p);
    simulate(
        &single_site(1.0, deterministic(2.0), 1),
        &config(1, 50, 100.0, 10.0),
        &record,
        &AtomicBool::new(false),
    )
    .expect("runs");
    let seen = done.into_inner().expect("lock");
    assert!(
        seen.windows(2)
            .all(|w| w[0].replications_done < w[1].replications_done)
    );
    assert_eq!(
        seen.last()
            .map(|p| (p.replications_done, p.replications_total)),
        Some((50, 50))
    );
}
