//! The planner's must-show comparison: on the seeded test networks (`planning::testnet`,
//! parameters fixed in its module docs) of seeds 1, 2 and 3, at 0.7x, 1.0x and 1.5x of the
//! averages plan's investment (each class's own z, unscaled), the every-echelon consequence
//! plan against the downtime-weighted multi-echelon METRIC plan and the averages plan at the
//! same budget, all scored out of sample (200 years on a fresh seed, common random
//! numbers), with paired bootstrap intervals. Every cell is printed as it comes out.
//!
//! `cargo bench --bench planner_compare` runs the standard network (200 parts, training
//! years at the product's default, `optimize::training_years`; `SPARES_COMPARE_YEARS`
//! sets them). Under `cargo test --benches` (no `--bench` argument) it shrinks to one seed, one
//! factor and a 20-part network so CI only checks that it runs. `SPARES_COMPARE_SEEDS`
//! (comma-separated) and `SPARES_COMPARE_FACTORS` narrow a full run.

use spares::planning::optimize::baselines::averages_investment;
use spares::planning::optimize::{
    OptimizeRequest, OptimizeResult, PlanMode, TrainingModel, money, run_optimize,
};
use spares::planning::simulate::Settings;
use spares::planning::testnet::{TestNetworkShape, generate};
use spares_solver::lp::Backend;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn list<T: std::str::FromStr>(name: &str, default: Vec<T>) -> Vec<T> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .filter(|v: &Vec<T>| !v.is_empty())
        .unwrap_or(default)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn request(budget: f64, years: u32) -> OptimizeRequest {
    OptimizeRequest {
        model: TrainingModel::Echelons,
        mode: PlanMode::Budget,
        settings: Settings {
            horizon_days: 365,
            warmup_days: 0,
            replications: years,
            seed: 42,
            part_ids: Vec::new(),
        },
        budget_usd: Some(budget),
        cvar_alpha: 0.95,
        cvar_weight: 1.0,
        backend: Backend::Clarabel,
        time_limit_seconds: 120.0,
        critical_fill_rate_floor: None,
        compare: true,
    }
}

fn cell(result: &OptimizeResult, seed: u64, factor: f64, seconds: f64) -> String {
    let row = |name: &str| result.comparison.iter().find(|r| r.plan == name);
    let pair = |baseline: &str, statistic: &str| {
        result
            .paired
            .iter()
            .find(|p| p.baseline == baseline && p.statistic == statistic)
    };
    let (Some(c), Some(m), Some(a)) = (row("consequence"), row("metric"), row("averages")) else {
        return format!("seed {seed} {factor}x: no comparison");
    };
    let describe = |p: Option<&spares::planning::optimize::PairedDifference>| {
        p.map_or("-".into(), |p| {
            format!(
                "{} [{}, {}]{}",
                money(p.difference),
                money(p.low),
                money(p.high),
                if p.significant { " *" } else { "" }
            )
        })
    };
    format!(
        "seed {seed} {factor:.1}x budget {} ({} training years, {} network years): CVaR95 consequence {} (in-sample {}) | metric {} | averages {} | ratio to averages {:.2} | mean consequence {} metric {} averages {}\n  consequence - metric: CVaR95 {}; mean {}\n  consequence - averages: CVaR95 {}; mean {}\n  invested {} / {} / {}; unspent {} {}; {:.1} s, load {}",
        money(result.budget_usd.unwrap_or(0.0)),
        result.scenarios,
        result.training.as_ref().map_or(0, |t| t.network_years),
        money(c.downtime_cost_cvar95),
        c.in_sample_cvar95.map_or("-".into(), money),
        money(m.downtime_cost_cvar95),
        money(a.downtime_cost_cvar95),
        c.downtime_cost_cvar95 / a.downtime_cost_cvar95.max(1e-9),
        money(c.downtime_cost_mean),
        money(m.downtime_cost_mean),
        money(a.downtime_cost_mean),
        describe(pair("metric", "CVaR95")),
        describe(pair("metric", "mean")),
        describe(pair("averages", "CVaR95")),
        describe(pair("averages", "mean")),
        money(c.investment_usd),
        money(m.investment_usd),
        money(a.investment_usd),
        money(result.unspent_usd),
        result.unspent_reason,
        seconds,
        load_average()
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let (seeds, factors, shape, years) = if full {
        (
            list("SPARES_COMPARE_SEEDS", vec![1u64, 2, 3]),
            list("SPARES_COMPARE_FACTORS", vec![0.7f64, 1.0, 1.5]),
            TestNetworkShape::standard(),
            // 0: the product's default (`optimize::training_years`).
            list("SPARES_COMPARE_YEARS", vec![0u32])[0],
        )
    } else {
        (
            vec![1],
            vec![1.0],
            TestNetworkShape {
                regionals: 2,
                stores_per_regional: 4,
                parts: 20,
            },
            20,
        )
    };
    println!(
        "planner_compare: {} regionals x {} stores, {} parts; {} training years, 200 evaluation years; CVaR95 and mean of yearly downtime cost; intervals: paired bootstrap, 95%; * = significant",
        shape.regionals,
        shape.stores_per_regional,
        shape.parts,
        if years == 0 {
            "default".to_string()
        } else {
            years.to_string()
        }
    );
    for &seed in &seeds {
        let network = generate(seed, shape);
        let base = match averages_investment(&network) {
            Ok(v) => v,
            Err(e) => {
                println!("seed {seed}: {e}");
                continue;
            }
        };
        println!(
            "seed {seed}: averages plan (unscaled) invests {}",
            money(base)
        );
        for &factor in &factors {
            let start = Instant::now();
            let outcome = run_optimize(
                &network,
                &request(factor * base, years),
                &|_, _| {},
                &AtomicBool::new(false),
            );
            match outcome {
                Ok(result) => println!(
                    "{}",
                    cell(&result, seed, factor, start.elapsed().as_secs_f64())
                ),
                Err(e) => println!("seed {seed} {factor}x: failed: {e}"),
            }
        }
    }
}
