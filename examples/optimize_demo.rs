//! Runs the consequence optimisation with the out-of-sample comparison on the default demo
//! network in-process and prints the summary with timings:
//! `cargo run --release --example optimize_demo -- [SEED] [SCENARIOS] [PARTS] [echelons|curves|lead-time] [BUDGET]`
//! (0 scenarios or parts: the defaults; no budget: cost mode).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use spares::demo::{DemoConfig, build_demo};
use spares::planning::optimize::{
    OptimizeRequest, PlanMode, TrainingModel, run_optimize, summarize,
};
use spares::planning::simulate::Settings;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let now = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    // The network `spares demo` builds by default (seed 42), at a fixed `now`.
    let config = DemoConfig {
        seed: 42,
        ..DemoConfig::default()
    };
    let demo = build_demo(&config, now).unwrap();
    let network = demo.network().unwrap();
    let mut part_ids = Vec::new();
    let parts = arg(3, 0) as usize;
    if parts > 0 {
        part_ids = spares::planning::model::select_parts(&network, &[]).unwrap();
        part_ids.truncate(parts);
    }
    let model = match args.get(4).map(String::as_str) {
        Some("lead-time") => TrainingModel::LeadTime,
        Some("curves") => TrainingModel::Curves,
        _ => TrainingModel::Echelons,
    };
    let budget = args.get(5).and_then(|a| a.parse::<f64>().ok());
    let request = OptimizeRequest {
        model,
        mode: if budget.is_some() {
            PlanMode::Budget
        } else {
            PlanMode::Cost
        },
        settings: Settings {
            horizon_days: 365,
            warmup_days: 0,
            replications: arg(2, 0) as u32,
            seed: arg(1, 42),
            part_ids,
        },
        budget_usd: budget,
        cvar_alpha: 0.95,
        cvar_weight: 1.0,
        backend: spares_solver::lp::Backend::Clarabel,
        time_limit_seconds: 120.0,
        critical_fill_rate_floor: None,
        compare: true,
    };
    let start = Instant::now();
    let last = std::sync::Mutex::new(String::new());
    let progress = |f: f64, stage: &str| {
        let mut l = last.lock().unwrap();
        if *l != stage {
            eprintln!(
                "{:>7.1} s {:>5.1}% {stage}",
                start.elapsed().as_secs_f64(),
                f * 100.0
            );
            *l = stage.to_string();
        }
    };
    let result = run_optimize(&network, &request, &progress, &AtomicBool::new(false)).unwrap();
    println!("{}", summarize(&result, 10));
    eprintln!("total {:.1} s", start.elapsed().as_secs_f64());
}
