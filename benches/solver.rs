//! Solver benchmarks: METRIC frontier at scale, and the scenario CVaR LP on the pure-Rust
//! backends, the decomposition, HiGHS (with the `highs` feature) and raw HiGHS via highspy.
//!
//! `cargo bench --bench solver` runs the full sizes and prints a table. Under `cargo test`
//! (no `--bench` argument) the fixtures shrink to a smoke size that still checks results.

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Poisson};
use spares_solver::lp::{Backend, LinearProgram};
use spares_solver::metric::{MetricItem, MetricModel, MetricNode, MetricOptions, frontier};
use spares_solver::scenario::{
    Method, OptimizeOptions, PartLocation, ScenarioModel, build_lp, optimize,
};
use std::process::Command;
use std::time::Instant;

/// The one seed for every fixture.
const SEED: u64 = 20_261_122;

/// Fixture sizes.
struct Sizes {
    metric_parts: usize,
    metric_warehouses: usize,
    metric_stores_per_warehouse: usize,
    lp_part_locations: usize,
    lp_scenarios: usize,
    time_limit_seconds: f64,
}

/// One row of the printed table.
struct Row {
    case: String,
    size: String,
    how: String,
    seconds: f64,
    objective: Option<f64>,
    note: String,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            metric_parts: 10_000,
            metric_warehouses: 9,
            metric_stores_per_warehouse: 10,
            lp_part_locations: 1_000,
            lp_scenarios: 1_000,
            time_limit_seconds: 1_800.0,
        }
    } else {
        Sizes {
            metric_parts: 20,
            metric_warehouses: 2,
            metric_stores_per_warehouse: 3,
            lp_part_locations: 12,
            lp_scenarios: 40,
            time_limit_seconds: 60.0,
        }
    };
    println!("seed {SEED}; {} mode", if full { "full" } else { "smoke" });
    let metric = metric_row(&sizes);
    println!("done: {} in {:.3} s", metric.case, metric.seconds);
    let mut rows = vec![metric];
    rows.extend(scenario_rows(&sizes, full));
    print_table(&rows);
}

/// Depot -> warehouses -> stores for one part with random rates.
fn metric_item(index: usize, sizes: &Sizes, rng: &mut StdRng) -> MetricItem {
    let mut nodes = vec![MetricNode {
        parent: None,
        demand_per_day: 0.0,
        local_repair_probability: 1.0,
        local_repair_days: rng.random_range(10.0..40.0),
        order_and_ship_days: 0.0,
    }];
    for _ in 0..sizes.metric_warehouses {
        let warehouse = nodes.len();
        nodes.push(MetricNode {
            parent: Some(0),
            demand_per_day: 0.0,
            local_repair_probability: 0.0,
            local_repair_days: 0.0,
            order_and_ship_days: rng.random_range(2.0..6.0),
        });
        for _ in 0..sizes.metric_stores_per_warehouse {
            nodes.push(MetricNode {
                parent: Some(warehouse),
                demand_per_day: rng.random_range(0.0005..0.01),
                local_repair_probability: rng.random_range(0.0..0.3),
                local_repair_days: rng.random_range(1.0..3.0),
                order_and_ship_days: rng.random_range(1.0..3.0),
            });
        }
    }
    MetricItem {
        name: format!("part{index}"),
        unit_cost: rng.random_range(10.0..5_000.0),
        units_per_machine: 1,
        nodes,
    }
}

/// VARI-METRIC frontier over every part, timed.
fn metric_row(sizes: &Sizes) -> Row {
    let mut rng = StdRng::seed_from_u64(SEED);
    let items: Vec<MetricItem> = (0..sizes.metric_parts)
        .map(|i| metric_item(i, sizes, &mut rng))
        .collect();
    let locations = items[0].nodes.len();
    let options = MetricOptions {
        model: MetricModel::VariMetric,
        ebo_tolerance: 1e-4,
    };
    let start = Instant::now();
    let result = frontier(&items, &options, Some(1_000));
    let seconds = start.elapsed().as_secs_f64();
    let (note, objective) = match result {
        Ok(f) => {
            assert!(
                f.points
                    .windows(2)
                    .all(|w| w[1].investment >= w[0].investment
                        && w[1].expected_backorders <= w[0].expected_backorders + 1e-9),
                "frontier not monotone"
            );
            let last = &f.points[f.points.len() - 1];
            (
                format!(
                    "{} frontier points, final EBO {:.3}, investment {:.3e}",
                    f.points.len(),
                    last.expected_backorders,
                    last.investment
                ),
                Some(last.expected_backorders),
            )
        }
        Err(e) => panic!("METRIC frontier failed: {e}"),
    };
    Row {
        case: "VARI-METRIC frontier".into(),
        size: format!("{} parts x {locations} locations", sizes.metric_parts),
        how: "rayon per part".into(),
        seconds,
        objective,
        note,
    }
}

/// The scenario model: Poisson lead-time demand, budget at the averages' cost, CVaR95.
fn scenario_model(sizes: &Sizes) -> ScenarioModel {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let n = sizes.lp_part_locations;
    let rates: Vec<f64> = (0..n).map(|_| rng.random_range(0.1..3.0)).collect();
    let part_locations: Vec<PartLocation> = (0..n)
        .map(|i| PartLocation {
            part: format!("P{}", i / 10),
            location: format!("store{}", i % 10),
            unit_cost: rng.random_range(50.0..3_000.0),
            holding_cost: rng.random_range(5.0..300.0),
            downtime_cost_per_hour: rng.random_range(10.0..500.0),
            emergency_delay_hours: rng.random_range(8.0..72.0),
            emergency_cost_per_unit: rng.random_range(20.0..400.0),
            fill_rate_floor: if i % 50 == 0 { Some(0.9) } else { None },
            max_stock: None,
        })
        .collect();
    let budget = part_locations
        .iter()
        .zip(&rates)
        .map(|(p, r)| p.unit_cost * r)
        .sum::<f64>();
    let demand = (0..sizes.lp_scenarios)
        .map(|_| {
            rates
                .iter()
                .map(|&r| Poisson::new(r).map_or(0, |d| d.sample(&mut rng) as u64))
                .collect()
        })
        .collect();
    ScenarioModel {
        part_locations,
        lanes: vec![],
        capacities: vec![],
        demand,
        budget: Some(budget),
        cvar_alpha: 0.95,
        cvar_weight: 1.0,
    }
}

/// Scenario LP rows: LP backends, the decomposition, and raw HiGHS.
fn scenario_rows(sizes: &Sizes, full: bool) -> Vec<Row> {
    let model = scenario_model(sizes);
    let size = format!(
        "{} part-locations x {} scenarios",
        sizes.lp_part_locations, sizes.lp_scenarios
    );
    let lp = build_lp(&model, false).unwrap_or_else(|e| panic!("model: {e}"));
    let shape = format!(
        "{} cols, {} rows, {} nz",
        lp.columns.len(),
        lp.rows.len(),
        lp.non_zeros()
    );
    let mut rows = Vec::new();
    let mut backends = vec![Backend::Clarabel];
    if !full {
        backends.push(Backend::Microlp);
    }
    if cfg!(feature = "highs") {
        backends.push(Backend::Highs);
    }
    let mut reference: Option<f64> = None;
    for backend in backends {
        let row = lp_row(
            &lp,
            backend,
            sizes.time_limit_seconds,
            &size,
            &shape,
            &mut reference,
        );
        println!("done: {} in {:.3} s ({})", row.how, row.seconds, row.note);
        rows.push(row);
    }
    // Raw HiGHS gets at most 10 minutes: on 2 shared cores its default dual simplex may not
    // finish the full-size LP, and the row then reports its status instead of a ratio.
    let highspy_limit = sizes.time_limit_seconds.min(600.0);
    let row = highspy_row(&lp, highspy_limit, &size, &mut reference);
    println!("done: {} in {:.3} s ({})", row.how, row.seconds, row.note);
    rows.push(row);
    let options = OptimizeOptions {
        backend: Backend::Clarabel,
        method: Method::Decomposed,
        time_limit_seconds: sizes.time_limit_seconds,
        gap_tolerance: 1e-3,
        max_iterations: 300,
    };
    let start = Instant::now();
    let plan = optimize(&model, &options).unwrap_or_else(|e| panic!("decomposition: {e}"));
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        plan.evaluation.is_feasible(),
        "decomposed plan infeasible: {:?}",
        plan.evaluation.violations
    );
    let lp_gap = reference.map(|r| (plan.evaluation.objective - r) / r);
    if let Some(g) = lp_gap {
        assert!(
            g >= -1e-6,
            "an integer plan beat the LP relaxation: gap {g}"
        );
    }
    rows.push(Row {
        case: "scenario CVaR model".into(),
        size,
        how: "decomposition (integer)".into(),
        seconds,
        objective: Some(plan.evaluation.objective),
        note: format!(
            "{:?}, {} iterations, own gap {:.2e}, gap to LP {}",
            plan.status,
            plan.iterations,
            plan.gap,
            lp_gap.map_or("n/a".into(), |g| format!("{g:.2e}"))
        ),
    });
    rows
}

/// Solves the LP with one backend and checks it against the first objective seen.
fn lp_row(
    lp: &LinearProgram,
    backend: Backend,
    limit: f64,
    size: &str,
    shape: &str,
    reference: &mut Option<f64>,
) -> Row {
    let start = Instant::now();
    let result = lp.solve(backend, limit);
    let seconds = start.elapsed().as_secs_f64();
    let (objective, note) = match result {
        Ok(s) => {
            check_objective(reference, s.objective, backend.name());
            (Some(s.objective), format!("{:?}; {shape}", s.status))
        }
        Err(e) => (None, format!("failed: {e}")),
    };
    Row {
        case: "scenario CVaR LP".into(),
        size: size.into(),
        how: format!("good_lp + {backend}"),
        seconds,
        objective,
        note,
    }
}

/// Objectives of the same LP must agree across backends (interior point to 1e-5).
fn check_objective(reference: &mut Option<f64>, objective: f64, who: &str) {
    match reference {
        None => *reference = Some(objective),
        Some(r) => assert!(
            (objective - *r).abs() <= 1e-5 * r.abs().max(1.0),
            "{who}: objective {objective} vs {r}"
        ),
    }
}

/// Exports MPS and solves it with python highspy in the same run.
fn highspy_row(lp: &LinearProgram, limit: f64, size: &str, reference: &mut Option<f64>) -> Row {
    let mut row = Row {
        case: "scenario CVaR LP".into(),
        size: size.into(),
        how: "raw HiGHS (highspy, MPS)".into(),
        seconds: 0.0,
        objective: None,
        note: String::new(),
    };
    let available = Command::new("python3")
        .args(["-c", "import highspy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        row.note = "skipped: highspy not installed".into();
        return row;
    }
    let path = std::env::temp_dir().join(format!("spares-bench-{}.mps", std::process::id()));
    if let Err(e) = std::fs::write(&path, lp.to_mps()) {
        row.note = format!("skipped: cannot write MPS: {e}");
        return row;
    }
    let script = format!(
        "import highspy, time\nh = highspy.Highs()\nh.setOptionValue('output_flag', False)\nh.setOptionValue('time_limit', {limit})\nh.readModel(r'{}')\nt = time.perf_counter()\nh.run()\nt = time.perf_counter() - t\nprint(h.modelStatusToString(h.getModelStatus()), repr(h.getInfo().objective_function_value), t)\n",
        path.display()
    );
    let output = Command::new("python3").args(["-c", &script]).output();
    let _ = std::fs::remove_file(&path);
    let text = output
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().collect();
    let parsed = (parts.len() >= 3).then(|| {
        (
            parts[parts.len() - 2].parse::<f64>(),
            parts[parts.len() - 1].parse::<f64>(),
        )
    });
    match parsed {
        Some((Ok(objective), Ok(seconds))) => {
            let status = parts[..parts.len() - 2].join(" ");
            // Only a proven optimum is compared; a time-limited run reports a bound.
            if status == "Optimal" {
                check_objective(reference, objective, "highspy");
                row.objective = Some(objective);
            }
            row.seconds = seconds;
            row.note = format!(
                "{status}, objective {objective:.6e} (solve time only; MPS read excluded; limit {limit} s)"
            );
        }
        _ => row.note = format!("failed: {}", text.trim()),
    }
    row
}

/// Prints the table, with each LP time as a ratio of raw HiGHS's.
fn print_table(rows: &[Row]) {
    let highs = rows
        .iter()
        .find(|r| r.how.starts_with("raw HiGHS") && r.objective.is_some())
        .map(|r| r.seconds);
    println!(
        "{:<22} | {:<36} | {:<26} | {:>10} | {:>16} | {:>9} | note",
        "case", "size", "method", "seconds", "objective", "x HiGHS"
    );
    for r in rows {
        let ratio = match (highs, r.case.starts_with("scenario"), r.objective) {
            (Some(h), true, Some(_)) if h > 0.0 => format!("{:.2}", r.seconds / h),
            _ => "-".into(),
        };
        let objective = r.objective.map_or("-".into(), |o| format!("{o:.6e}"));
        println!(
            "{:<22} | {:<36} | {:<26} | {:>10.3} | {:>16} | {:>9} | {}",
            r.case, r.size, r.how, r.seconds, objective, ratio, r.note
        );
    }
}
