//! How the every-echelon planner scales: wall time, peak RSS and the tree simulator's
//! throughput (failures simulated per busy second of the training threads, and per CPU
//! second of the whole process) for the full demo and for synthetic test networks of about
//! 1e4 and 1e5 SKU-locations (30 regionals x 10 stores = 300 stores, parts scaled; every
//! echelon counts), and 1e6 with `SPARES_SCALE_1E6=1`; then the log-log slope of wall time
//! against SKU-locations over the synthetic sizes. Budget mode at 1.0x the averages plan's
//! investment, no comparison, 100 training years (the demo at its default).
//!
//! Each size runs in a child process (this binary again, `SPARES_SCALE_ONE=<size>`) so its
//! peak RSS is its own. `cargo bench --bench planner_scale`; under `cargo test --benches`
//! it runs one tiny network in process so CI only checks that it runs.

use spares::demo::{DemoConfig, build_demo};
use spares::domain::network::Network;
use spares::planning::optimize::baselines::averages_investment;
use spares::planning::optimize::{OptimizeRequest, PlanMode, TrainingModel, money, run_optimize};
use spares::planning::simulate::Settings;
use spares::planning::testnet::{TestNetworkShape, generate};
use spares_solver::lp::Backend;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// SKU-locations (tree nodes over all echelons) per synthetic part: depot, 30 regionals,
/// 300 stores.
const NODES_PER_PART: usize = 331;

fn shape(sku_locations: usize) -> TestNetworkShape {
    TestNetworkShape {
        regionals: 30,
        stores_per_regional: 10,
        parts: (sku_locations / NODES_PER_PART).max(1),
    }
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/self/stat (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn network(name: &str) -> Network {
    match name {
        "demo" => {
            let now = jiff::Timestamp::from_second(1_790_000_000).expect("fixed time");
            let config = DemoConfig {
                seed: 42,
                ..DemoConfig::default()
            };
            build_demo(&config, now)
                .expect("the demo builds")
                .network()
                .expect("the demo network")
        }
        "tiny" => generate(1, shape(2 * NODES_PER_PART)),
        size => generate(1, shape(size.parse().expect("a size"))),
    }
}

/// Plans one network and prints one line: name, SKU-locations, seconds, peak RSS.
fn one(name: &str) {
    let network = network(name);
    let start = Instant::now();
    let budget = averages_investment(&network).expect("parts with demand");
    let request = OptimizeRequest {
        model: TrainingModel::Echelons,
        mode: PlanMode::Budget,
        settings: Settings {
            horizon_days: 365,
            warmup_days: 0,
            replications: if name == "demo" { 0 } else { 100 },
            seed: 42,
            part_ids: Vec::new(),
        },
        budget_usd: Some(budget),
        cvar_alpha: 0.95,
        cvar_weight: 1.0,
        backend: Backend::Clarabel,
        time_limit_seconds: 300.0,
        critical_fill_rate_floor: None,
        compare: false,
    };
    let result =
        run_optimize(&network, &request, &|_, _| {}, &AtomicBool::new(false)).expect("the plan");
    let seconds = start.elapsed().as_secs_f64();
    let training = result.training.clone().unwrap_or_default();
    println!(
        "RESULT {name} {} {seconds:.2} {} {} {} {:.3e} {:.3e} {:.3e} {:.1} {}",
        result.part_locations,
        status_kib("VmHWM:"),
        result.part_ids.len(),
        result.scenarios,
        training.failures_simulated as f64,
        training.failures_simulated as f64 / training.busy_seconds.max(1e-9),
        training.failures_simulated as f64 / cpu_seconds().max(1e-9),
        training.wall_seconds,
        money(result.investment_usd),
    );
}

fn main() {
    if let Ok(name) = std::env::var("SPARES_SCALE_ONE") {
        one(&name);
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        one("tiny");
        return;
    }
    let mut sizes: Vec<String> = vec!["10000".into(), "100000".into()];
    if std::env::var("SPARES_SCALE_1E6").is_ok_and(|v| v == "1") {
        sizes.push("1000000".into());
    }
    let mut runs: Vec<String> = vec!["demo".into()];
    runs.extend(sizes);
    let Ok(exe) = std::env::current_exe() else {
        println!("cannot find this binary to run its children");
        return;
    };
    println!(
        "planner_scale: network, SKU-locations, parts, training years, wall s, peak RSS MiB, failures simulated, failures per busy s, failures per CPU s, training wall s (load before each)"
    );
    let mut points: Vec<(f64, f64)> = Vec::new();
    for name in runs {
        let load = load_average();
        let output = Command::new(&exe).env("SPARES_SCALE_ONE", &name).output();
        let Ok(output) = output else {
            println!("{name}: could not start");
            continue;
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(line) = text.lines().find(|l| l.starts_with("RESULT ")) else {
            println!(
                "{name}: failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            continue;
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        let sku: f64 = f[2].parse().unwrap_or(0.0);
        let seconds: f64 = f[3].parse().unwrap_or(0.0);
        let rss_mib = f[4].parse::<f64>().unwrap_or(0.0) / 1024.0;
        println!(
            "{name:>8} {sku:>9.0} {:>6} {:>5} {seconds:>8.1} {rss_mib:>8.0} {:>10} {:>10} {:>10} {:>7} (load {load})",
            f[5], f[6], f[7], f[8], f[9], f[10]
        );
        if name != "demo" {
            points.push((sku.ln(), seconds.ln()));
        }
    }
    if points.len() >= 2 {
        let n = points.len() as f64;
        let (mx, my) = (
            points.iter().map(|p| p.0).sum::<f64>() / n,
            points.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let slope = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
            / points.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
        println!("log-log slope of wall time against SKU-locations (synthetic sizes): {slope:.2}");
    }
    println!("load after: {}", load_average());
}
