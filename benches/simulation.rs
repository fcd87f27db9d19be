//! Speed of the simulation engine: a 1 -> 3 -> 30 network against stockpyl, and how run
//! time grows with part-locations and replications.
//!
//! `cargo bench --bench simulation` runs the full sizes (cargo passes `--bench`). Under
//! `cargo test` the binary runs without `--bench` and shrinks every fixture to a smoke size
//! that still checks the reports are sane, so CI stays fast. Nothing here asserts a time.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use spares_simulations::{
    Echelon, FailureModel, Fleet, Lane, LaneKind, Life, Location, MachineModel, Model, Part,
    Policy, Progress, Report, SimConfig, StockingPolicy, TimeDistribution, simulate,
};

/// stockpyl's own rate on this machine is measured when it is installed; this is the figure
/// quoted in the issue, used only to explain the goal.
const STOCKPYL_QUOTED_NODE_PERIODS_PER_SECOND: f64 = 2_000.0;

/// Fixture sizes: full under `cargo bench`, tiny under `cargo test`.
struct Sizes {
    reference_days: f64,
    reference_replications: u32,
    stockpyl_periods: Option<u32>,
    scale_parts: u32,
    scale_stores: u32,
    scale_days: f64,
    scale_replications: u32,
    slope_parts: Vec<u32>,
    slope_replications: Vec<u32>,
    slope_base_replications: u32,
}

impl Sizes {
    fn full() -> Self {
        Sizes {
            reference_days: 10_000.0,
            reference_replications: 8,
            stockpyl_periods: Some(1_000),
            scale_parts: 100,
            scale_stores: 100,
            scale_days: 5.0 * 365.0,
            scale_replications: 1_000,
            slope_parts: vec![10, 30, 100],
            slope_replications: vec![25, 50, 100],
            slope_base_replications: 20,
        }
    }

    fn smoke() -> Self {
        Sizes {
            reference_days: 200.0,
            reference_replications: 2,
            stockpyl_periods: None,
            scale_parts: 2,
            scale_stores: 10,
            scale_days: 60.0,
            scale_replications: 4,
            slope_parts: vec![1, 2],
            slope_replications: vec![2, 4],
            slope_base_replications: 2,
        }
    }
}

fn location(id: String, echelon: Echelon, external: Option<TimeDistribution>) -> Location {
    Location {
        name: id.clone(),
        id,
        echelon,
        external_supply_days: external,
    }
}

fn replenishment(from: &str, to: &str, days: f64) -> Lane {
    Lane {
        from: from.into(),
        to: to.into(),
        kind: LaneKind::Replenishment,
        transit_days: TimeDistribution::Deterministic { days },
        cost_per_shipment: 0.0,
    }
}

fn base_stock(part: &str, location: &str, level: u32) -> StockingPolicy {
    StockingPolicy {
        part: part.into(),
        location: location.into(),
        policy: Policy::BaseStock { level },
    }
}

/// Depot -> `regions` regional warehouses -> `stores` stores, 2-day lanes, outside supply of
/// 2 days at the depot, one always-running machine per store per part.
fn network(parts: u32, regions: u32, stores: u32, rate_per_day: impl Fn(u32) -> f64) -> Model {
    let two_days = TimeDistribution::Deterministic { days: 2.0 };
    let mut model = Model {
        locations: vec![location("DEPOT".into(), Echelon::Depot, Some(two_days))],
        ..Model::default()
    };
    for region in 0..regions {
        let id = format!("R{region}");
        model.lanes.push(replenishment("DEPOT", &id, 2.0));
        model.locations.push(location(id, Echelon::Regional, None));
    }
    for store in 0..stores {
        let id = format!("S{store}");
        model
            .lanes
            .push(replenishment(&format!("R{}", store % regions), &id, 2.0));
        model.locations.push(location(id, Echelon::Store, None));
    }
    for part in 0..parts {
        add_part(&mut model, part, regions, stores, &rate_per_day);
    }
    model
}

fn add_part(
    model: &mut Model,
    part: u32,
    regions: u32,
    stores: u32,
    rate_per_day: &impl Fn(u32) -> f64,
) {
    let part_id = format!("P{part}");
    model.parts.push(Part {
        id: part_id.clone(),
        name: part_id.clone(),
        unit_cost: 100.0,
        criticality: 1.0,
        repair: None,
        supplier_lead_time_days: None,
        downtime_cost_per_hour: None,
    });
    // Stock sized to about two weeks of demand at each level, so every echelon is busy.
    let mut regional_demand = vec![0.0; regions as usize];
    for store in 0..stores {
        let rate = rate_per_day(part);
        regional_demand[(store % regions) as usize] += rate;
        let (store_id, fleet_id) = (format!("S{store}"), format!("F{part}-{store}"));
        let machine_model = format!("M{part}");
        model.fleets.push(Fleet {
            id: fleet_id,
            location: store_id.clone(),
            machine_model: machine_model.clone(),
            machines: 1,
            usage_hours_per_day: 24.0,
            age_operating_hours: 0.0,
        });
        model.policies.push(base_stock(
            &part_id,
            &store_id,
            (rate * 4.0).ceil() as u32 + 1,
        ));
        if store == 0 {
            model.machine_models.push(MachineModel {
                id: machine_model,
                downtime_cost_per_hour: 100.0,
            });
        }
    }
    // Every store has one always-running machine of this part's model, so the failure rate
    // per operating hour is the store's daily demand over 24.
    model.failure_models.push(FailureModel {
        part: part_id.clone(),
        machine_model: format!("M{part}"),
        units_per_machine: 1,
        attach_rate: 1.0,
        life: Life::Exponential {
            failures_per_operating_hour: rate_per_day(part) / 24.0,
        },
    });
    for (region, demand) in regional_demand.iter().enumerate() {
        model.policies.push(base_stock(
            &part_id,
            &format!("R{region}"),
            (demand * 6.0).ceil() as u32 + 2,
        ));
    }
    let total: f64 = regional_demand.iter().sum();
    model.policies.push(base_stock(
        &part_id,
        "DEPOT",
        (total * 6.0).ceil() as u32 + 2,
    ));
}

fn quiet(_: Progress) {}

fn timed(model: &Model, config: &SimConfig) -> (Report, f64) {
    let start = Instant::now();
    let report = simulate(model, config, &quiet, &AtomicBool::new(false)).unwrap_or_else(|error| {
        eprintln!("simulation failed: {error}");
        std::process::exit(1);
    });
    (report, start.elapsed().as_secs_f64())
}

/// Panics (failing `cargo test`) if a report is not sane.
fn check_sane(report: &Report) {
    let measures = &report.network.measures;
    assert!(measures.demand_units.mean > 0.0, "no demand simulated");
    let fill = measures.first_time_fill_rate.map(|f| f.mean);
    assert!(
        fill.is_some_and(|f| (0.0..=1.0).contains(&f)),
        "fill rate {fill:?}"
    );
    assert!(measures.expected_backorders.mean >= 0.0);
    assert_eq!(report, &report.clone(), "NaN in report");
}

fn config(days: f64, replications: u32) -> SimConfig {
    SimConfig {
        seed: 42,
        replications,
        horizon_days: days,
        warm_up_days: 0.0,
        ..SimConfig::default()
    }
}

const STOCKPYL_SCRIPT: &str = r#"
import sys, time
from stockpyl.supply_chain_network import network_from_edges
from stockpyl.sim import simulation
periods = int(sys.argv[1])
edges = [(0, r) for r in (1, 2, 3)]
stores = []
k = 4
for r in (1, 2, 3):
    for _ in range(10):
        edges.append((r, k)); stores.append(k); k += 1
nodes = list(range(k))
net = network_from_edges(edges, node_order_in_lists=nodes,
    demand_type={n: ('P' if n in stores else None) for n in nodes},
    mean={n: (1.0 if n in stores else None) for n in nodes},
    policy_type='BS', base_stock_level={n: (5 if n in stores else (62 if n else 182)) for n in nodes},
    shipment_lead_time=2, local_holding_cost=1, stockout_cost=10)
start = time.perf_counter()
simulation(net, periods, rand_seed=42, progress_bar=False)
print(len(nodes), periods, time.perf_counter() - start)
"#;

/// stockpyl's node-periods per second on the same network, or why it was skipped.
fn stockpyl_rate(periods: Option<u32>) -> Result<f64, String> {
    let periods = periods.ok_or("test mode (run `cargo bench --bench simulation`)")?;
    let output = Command::new("python3")
        .args(["-c", STOCKPYL_SCRIPT, &periods.to_string()])
        .output()
        .map_err(|error| format!("python3 not runnable: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("unknown error").to_owned();
        return Err(format!("stockpyl not importable or failed: {last}"));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<f64> = stdout
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    match fields.as_slice() {
        [nodes, periods, seconds] if *seconds > 0.0 => Ok(nodes * periods / seconds),
        _ => Err(format!("unexpected stockpyl output: {stdout}")),
    }
}

fn reference_section(sizes: &Sizes) {
    let model = network(1, 3, 30, |_| 1.0);
    let nodes = model.locations.len() as f64;
    println!(
        "## Reference: 1 depot -> 3 regional -> 30 stores, Poisson 1/day per store, base stock"
    );
    println!(
        "{:<34} {:>10} {:>14} {:>18}",
        "run", "wall s", "node-days", "node-days/s"
    );
    let mut rates = Vec::new();
    for (threads, replications) in [(1, 1), (2, sizes.reference_replications)] {
        let settings = SimConfig {
            worker_threads: Some(threads),
            ..config(sizes.reference_days, replications)
        };
        let (report, seconds) = timed(&model, &settings);
        check_sane(&report);
        let node_days = nodes * sizes.reference_days * f64::from(replications);
        let rate = node_days / seconds;
        rates.push(rate);
        let label = format!("spares, {threads} thread(s), {replications} rep(s)");
        println!("{label:<34} {seconds:>10.3} {node_days:>14.0} {rate:>18.0}");
    }
    match stockpyl_rate(sizes.stockpyl_periods) {
        Ok(theirs) => {
            println!(
                "{:<34} {:>10} {:>14} {theirs:>18.0}",
                "stockpyl 1.0.2 (periodic review)", "", ""
            );
            for rate in &rates {
                println!(
                    "ratio spares / stockpyl: {:.0}x (goal >= 1000x)",
                    rate / theirs
                );
            }
        }
        Err(reason) => {
            println!("stockpyl skipped: {reason}");
            for rate in &rates {
                let ratio = rate / STOCKPYL_QUOTED_NODE_PERIODS_PER_SECOND;
                println!(
                    "ratio against the quoted 2,000 node-periods/s: {ratio:.0}x (goal >= 1000x)"
                );
            }
        }
    }
}

/// Slow movers: 0.002 to 0.05 demands per day per store, spread over parts by a fixed hash.
fn slow_mover_rate(part: u32) -> f64 {
    let mixed =
        (u64::from(part).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / f64::from(1u32 << 24);
    0.002 + 0.048 * mixed
}

fn least_squares_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x.ln(), b + y.ln()));
    let (mx, my) = (sx / n, sy / n);
    let (mut numerator, mut denominator) = (0.0, 0.0);
    for (x, y) in points {
        numerator += (x.ln() - mx) * (y.ln() - my);
        denominator += (x.ln() - mx).powi(2);
    }
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

fn scale_section(sizes: &Sizes) {
    let stores = sizes.scale_stores;
    println!();
    println!(
        "## Scale: slow movers (0.002-0.05/day per part-location), depot -> 4 regional -> {stores} stores"
    );
    println!(
        "{:<14} {:>8} {:>8} {:>10} {:>12}",
        "part-locations", "days", "reps", "wall s", "rep-PL-years/s"
    );
    let row = |parts: u32, replications: u32| {
        let model = network(parts, 4, stores, slow_mover_rate);
        let (report, seconds) = timed(&model, &config(sizes.scale_days, replications));
        check_sane(&report);
        let part_locations = f64::from(parts * stores);
        let work = part_locations * f64::from(replications) * sizes.scale_days / 365.0;
        println!(
            "{part_locations:<14} {:>8} {replications:>8} {seconds:>10.3} {:>12.0}",
            sizes.scale_days,
            work / seconds
        );
        (part_locations, seconds)
    };
    let by_size: Vec<(f64, f64)> = sizes
        .slope_parts
        .iter()
        .map(|&parts| row(parts, sizes.slope_base_replications))
        .collect();
    let by_replications: Vec<(f64, f64)> = sizes
        .slope_replications
        .iter()
        .map(|&replications| {
            let (_, seconds) = row(sizes.slope_parts[0], replications);
            (f64::from(replications), seconds)
        })
        .collect();
    println!(
        "log-log slope of time vs part-locations: {:.2}",
        least_squares_slope(&by_size)
    );
    println!(
        "log-log slope of time vs replications:   {:.2}",
        least_squares_slope(&by_replications)
    );
    let (part_locations, seconds) = row(sizes.scale_parts, sizes.scale_replications);
    println!(
        "headline: {part_locations} part-locations x {:.1} years x {} replications in {seconds:.1} s",
        sizes.scale_days / 365.0,
        sizes.scale_replications
    );
}

fn main() {
    let full = std::env::args().any(|argument| argument == "--bench");
    let sizes = if full { Sizes::full() } else { Sizes::smoke() };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mode = if full { "full" } else { "smoke" };
    println!("# spares simulation benchmark ({mode} sizes, {cores} cores)");
    reference_section(&sizes);
    scale_section(&sizes);
}
