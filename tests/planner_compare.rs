//! The must-show comparison at CI size: on a smaller seeded test network (same
//! distributions as `planning::testnet`'s standard one, fewer parts and stores) at 1.0x the
//! averages plan's investment, the every-echelon consequence plan's out-of-sample CVaR95 of
//! yearly downtime cost is below the downtime-weighted multi-echelon METRIC plan's with the
//! paired 95% interval excluding zero, and at most half the averages plan's. The full table
//! (seeds 1-3, 0.7x / 1.0x / 1.5x, the standard network) is `benches/planner_compare.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spares::planning::optimize::baselines::averages_investment;
use spares::planning::optimize::{OptimizeRequest, PlanMode, TrainingModel, run_optimize};
use spares::planning::simulate::Settings;
use spares::planning::testnet::{TestNetworkShape, generate};
use spares_solver::lp::Backend;
use std::sync::atomic::AtomicBool;

#[test]
fn the_consequence_plan_beats_weighted_metric_and_halves_averages_at_equal_budget() {
    let shape = TestNetworkShape {
        regionals: 2,
        stores_per_regional: 5,
        parts: 40,
    };
    let network = generate(1, shape);
    let budget = averages_investment(&network).unwrap();
    let request = OptimizeRequest {
        model: TrainingModel::Echelons,
        mode: PlanMode::Budget,
        settings: Settings {
            horizon_days: 365,
            warmup_days: 0,
            replications: 60,
            seed: 42,
            part_ids: Vec::new(),
        },
        budget_usd: Some(budget),
        cvar_alpha: 0.95,
        cvar_weight: 1.0,
        backend: Backend::Clarabel,
        time_limit_seconds: 60.0,
        critical_fill_rate_floor: None,
        compare: true,
    };
    let result = run_optimize(&network, &request, &|_, _| {}, &AtomicBool::new(false)).unwrap();
    print!(
        "{}",
        spares::planning::optimize::comparison_table(&result.comparison)
    );
    print!(
        "{}",
        spares::planning::optimize::paired_table(&result.paired)
    );
    let row = |name: &str| {
        result
            .comparison
            .iter()
            .find(|r| r.plan == name)
            .unwrap()
            .clone()
    };
    let (consequence, metric, averages) = (row("consequence"), row("metric"), row("averages"));
    for plan in [&consequence, &metric, &averages] {
        assert!(plan.investment_usd <= budget + 0.01, "{plan:?}");
    }
    let versus_metric = result
        .paired
        .iter()
        .find(|p| p.baseline == "metric" && p.statistic == "CVaR95")
        .unwrap();
    assert!(
        versus_metric.high < 0.0,
        "consequence - metric CVaR95 interval must lie below 0: {versus_metric:?}"
    );
    assert!(
        consequence.downtime_cost_cvar95 <= 0.5 * averages.downtime_cost_cvar95,
        "{consequence:?} vs {averages:?}"
    );
    // Every echelon is decided: some units sit at the depot or a regional.
    let upstream: u64 = result
        .levels
        .iter()
        .filter(|(_, l, _)| !l.starts_with('S'))
        .map(|(_, _, u)| u)
        .sum();
    assert!(upstream > 0);
}
