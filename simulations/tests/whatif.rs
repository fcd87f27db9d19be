//! What-if scenarios under common random numbers.

mod common;

use std::sync::atomic::AtomicBool;

use common::*;
use spares_simulations::{
    Change, Comparison, Fleet, LaneKind, Model, Policy, Scenario, SimConfig, compare,
};

fn run_comparison(model: &Model, scenario: &Scenario, config: &SimConfig) -> Comparison {
    compare(
        model,
        scenario,
        config,
        &no_progress,
        &AtomicBool::new(false),
    )
    .expect("comparison runs")
}

#[test]
fn a_scenario_without_changes_differs_by_exactly_zero() {
    let scenario = Scenario {
        name: "nothing".into(),
        changes: Vec::new(),
    };
    let comparison = run_comparison(&rich_network(), &scenario, &config(31, 12, 400.0, 60.0));
    let zero = spares_simulations::Estimate {
        mean: 0.0,
        half_width_95: Some(0.0),
    };
    let differences =
        std::iter::once(&comparison.network).chain(comparison.parts.iter().map(|p| &p.difference));
    for difference in differences {
        for estimate in [
            difference.demand_units,
            difference.expected_backorders,
            difference.downtime_hours,
            difference.downtime_cost,
            difference.worst_week_downtime_hours,
            difference.worst_week_downtime_cost,
            difference.lateral_cost,
            difference.emergency_cost,
        ] {
            assert_eq!(estimate, zero);
        }
        assert_eq!(difference.first_time_fill_rate, Some(zero));
    }
    assert_eq!(comparison.baseline, comparison.changed);
}

#[test]
fn adding_a_fleet_leaves_other_stores_draws_unchanged() {
    // No lateral or emergency lanes, so store A's stock is untouched by store B's demand;
    // common random numbers must then reproduce A's every replication exactly.
    let mut model = single_site(0.3, deterministic(4.0), 2);
    model.locations.push(location(
        "B",
        spares_simulations::Echelon::Store,
        Some(deterministic(4.0)),
    ));
    model.policies.push(base_stock("P", "B", 1));
    let machine_model = model.machine_models[0].id.clone();
    let scenario = Scenario {
        name: "new fleet at B".into(),
        changes: vec![Change::AddFleet(Fleet {
            id: "NEW".into(),
            location: "B".into(),
            machine_model,
            machines: 3,
            usage_hours_per_day: 24.0,
            age_operating_hours: 0.0,
        })],
    };
    let mut settings = config(32, 16, 300.0, 30.0);
    settings.scenario_samples = true;
    let comparison = run_comparison(&model, &scenario, &settings);
    let samples_at = |report: &spares_simulations::Report, location: &str| {
        let samples = report.scenario_samples.as_ref().expect("samples kept");
        let column = samples
            .part_locations
            .iter()
            .position(|k| k.location == location)
            .expect("reported");
        samples
            .replications
            .iter()
            .map(|row| row[column])
            .collect::<Vec<_>>()
    };
    assert_eq!(
        samples_at(&comparison.baseline, "S"),
        samples_at(&comparison.changed, "S")
    );
    assert!(comparison.network.demand_units.mean > 0.0);
}

#[test]
fn more_stock_never_lowers_the_fill_rate() {
    // Deterministic lead times and common random numbers: one more unit on the shelf can
    // only serve more demands at once, replication by replication.
    let model = single_site(1.0, deterministic(5.0), 3);
    let scenario = Scenario {
        name: "one more".into(),
        changes: vec![Change::SetPolicy {
            part: "P".into(),
            location: "S".into(),
            policy: Policy::BaseStock { level: 4 },
        }],
    };
    let comparison = run_comparison(&model, &scenario, &config(33, 20, 400.0, 30.0));
    for (base, changed) in comparison
        .baseline
        .replication_totals
        .iter()
        .zip(&comparison.changed.replication_totals)
    {
        assert_eq!(base.demand_units, changed.demand_units);
        assert!(changed.first_time_fills >= base.first_time_fills);
        assert!(changed.downtime_hours <= base.downtime_hours + 1e-9);
    }
    let fill = comparison.network.first_time_fill_rate.expect("demand");
    assert!(fill.low() > 0.0, "{fill:?}");
}

#[test]
fn longer_lead_times_and_an_outage_raise_downtime() {
    let scenario = Scenario {
        name: "bad month".into(),
        changes: vec![
            Change::LeadTimeMultiplier {
                from: None,
                to: None,
                kind: Some(LaneKind::Replenishment),
                multiplier: 3.0,
            },
            Change::SupplierLeadTimeMultiplier {
                location: None,
                multiplier: 2.0,
            },
            Change::LocationOutOfService {
                location: "R1".into(),
                start_day: 100.0,
                end_day: 160.0,
            },
            Change::FailureRateMultiplier {
                part: None,
                machine_model: None,
                multiplier: 1.5,
            },
        ],
    };
    let comparison = run_comparison(&rich_network(), &scenario, &config(34, 16, 400.0, 60.0));
    let downtime = comparison.network.downtime_cost;
    assert!(downtime.low() > 0.0, "{downtime:?}");
}

#[test]
fn a_common_cause_shock_raises_the_worst_week() {
    let changes = ["EX-S1", "EX-S2"]
        .into_iter()
        .map(|fleet| {
            Change::AddShock(spares_simulations::CommonCauseShock {
                fleet: fleet.into(),
                start_day: 200.0,
                end_day: 214.0,
                failure_rate_multiplier: 8.0,
            })
        })
        .collect();
    let scenario = Scenario {
        name: "shock".into(),
        changes,
    };
    let comparison = run_comparison(&rich_network(), &scenario, &config(35, 16, 400.0, 60.0));
    let worst_week = comparison.network.worst_week_downtime_hours;
    assert!(worst_week.low() > 0.0, "{worst_week:?}");
}

#[test]
fn compare_all_matches_one_comparison_at_a_time() {
    let model = rich_network();
    let settings = config(36, 8, 300.0, 30.0);
    let scenarios = vec![
        Scenario {
            name: "nothing".into(),
            changes: Vec::new(),
        },
        Scenario {
            name: "slow lanes".into(),
            changes: vec![Change::LeadTimeMultiplier {
                from: None,
                to: None,
                kind: None,
                multiplier: 2.0,
            }],
        },
    ];
    let all = spares_simulations::compare_all(
        &model,
        &scenarios,
        &settings,
        &no_progress,
        &AtomicBool::new(false),
    )
    .expect("comparisons run");
    assert_eq!(all.len(), 2);
    for (scenario, together) in scenarios.iter().zip(&all) {
        assert_eq!(&run_comparison(&model, scenario, &settings), together);
    }
}
