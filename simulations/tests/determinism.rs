//! The same seed gives a byte-identical report on one and on two worker threads.

mod common;

use std::sync::atomic::AtomicBool;

use common::*;
use spares_simulations::{SimConfig, simulate};

fn report_bytes(threads: usize, config: &SimConfig) -> Vec<u8> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let model = rich_network();
    let report = pool
        .install(|| simulate(&model, config, &no_progress, &AtomicBool::new(false)))
        .expect("simulation runs");
    // A NaN anywhere would make the report unequal to itself.
    assert_eq!(report, report.clone());
    serde_json::to_vec(&report).expect("serialises")
}

#[test]
fn same_seed_same_bytes_on_one_and_two_threads() {
    let mut config = config(20_261_122, 24, 400.0, 60.0);
    config.scenario_samples = true;
    let one = report_bytes(1, &config);
    let two = report_bytes(2, &config);
    assert!(one == two, "reports differ between 1 and 2 threads");
    let again = report_bytes(2, &config);
    assert!(two == again, "reports differ between two runs");
    config.seed += 1;
    assert!(
        report_bytes(2, &config) != one,
        "a different seed changes the report"
    );
}

#[test]
fn rich_network_report_is_sane() {
    let report = run(&rich_network(), &config(5, 8, 400.0, 60.0));
    let measures = &report.network.measures;
    let fill = measures.first_time_fill_rate.expect("demand");
    assert!(measures.demand_units.mean > 0.0);
    assert!((0.0..=1.0).contains(&fill.mean));
    let availability = measures.availability.expect("machines");
    assert!((0.0..=1.0).contains(&availability.mean));
    for point in &measures.wait_time_distribution {
        let probability = point.probability.expect("demand").mean;
        assert!((fill.mean - 1e-12..=1.0 + 1e-12).contains(&probability));
    }
    let downtime = report.network.downtime.total_hours.expect("replications");
    let worst_week = report
        .network
        .downtime
        .worst_week_hours
        .expect("replications");
    assert!(worst_week.p50.value <= downtime.p50.value + 1e-9);
    assert!(downtime.p50.value <= downtime.p95.value && downtime.p95.value <= downtime.p99.value);
    assert!(downtime.cvar95.mean >= downtime.p95.value - 1e-9);
    // Parts and locations add up to the network.
    let by_part: f64 = report
        .parts
        .iter()
        .map(|p| p.report.measures.downtime_cost.mean)
        .sum();
    let by_location: f64 = report
        .locations
        .iter()
        .map(|l| l.report.measures.downtime_cost.mean)
        .sum();
    let network = measures.downtime_cost.mean;
    assert!((by_part - network).abs() <= 1e-6 * network.max(1.0));
    assert!((by_location - network).abs() <= 1e-6 * network.max(1.0));
}

#[test]
fn worker_threads_setting_does_not_change_the_report() {
    let model = rich_network();
    let run_with = |threads| {
        let settings = SimConfig {
            worker_threads: Some(threads),
            ..config(7, 10, 300.0, 30.0)
        };
        simulate(&model, &settings, &no_progress, &AtomicBool::new(false)).expect("runs")
    };
    let one = serde_json::to_vec(&run_with(1)).expect("serialises");
    let two = serde_json::to_vec(&run_with(2)).expect("serialises");
    assert!(one == two);
}
