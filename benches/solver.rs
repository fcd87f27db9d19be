//! Solver benchmarks: METRIC frontier at scale, and the scenario CVaR LP on the pure-Rust
//! backends, the decomposition, HiGHS (with the `highs` feature) and raw HiGHS via highspy.
//!
//! `cargo bench --bench solver` runs the full sizes and prints a table. Under `cargo test`
//! (no `--bench` argument) the fixtures shrink to a smoke size that still checks results.
//! In full mode `SPARES_BENCH_HIGHS_CONFIGS=ipm` and `SPARES_BENCH_HIGHS_IPM_LIMIT=900` pick
//! the HiGHS configurations and their limit.
//! In full mode `SPARES_BENCH_LADDER=100x1000,300x1000` picks the scenario LP rungs
//! (part-locations x scenarios); the default is 100x1000, 300x1000 and 1000x1000.
//!
//! With `--features highs` every raw HiGHS configuration is also run in-process through
//! good_lp with the same options and limit, just before the raw run, and a last table gives
//! good_lp + HiGHS seconds over raw HiGHS seconds.

use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Poisson};
use spares_solver::lp::{Backend, LinearProgram, LpStatus};
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
    /// The scenario LP ladder: (part-locations, scenarios), smallest first.
    lp_ladder: Vec<(usize, usize)>,
    /// Limit for the in-process LP backends and the decomposition.
    time_limit_seconds: f64,
    /// Limit for each raw HiGHS interior-point run.
    highspy_ipm_limit_seconds: f64,
    /// Limit for each raw HiGHS simplex run (dual simplex is known not to finish the
    /// full-size model in 600 s, so it gets less).
    highspy_simplex_limit_seconds: f64,
}

/// What produced a row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metric,
    /// Clarabel through good_lp: the default backend and the reference objective.
    Clarabel,
    /// Another in-process backend (microlp in smoke mode).
    OtherLp,
    /// HiGHS through good_lp with one raw configuration's options (the `highs` feature).
    #[cfg_attr(not(feature = "highs"), allow(dead_code))]
    GoodLpHighs,
    /// Raw HiGHS via highspy on the exported MPS.
    RawHighs,
    Decomposition,
}

/// One row of the printed table.
struct Row {
    kind: Kind,
    /// Index into the ladder (0 for the METRIC row).
    rung: usize,
    case: String,
    size: String,
    how: String,
    seconds: f64,
    /// Set only for a proven optimum (or the decomposition's plan).
    objective: Option<f64>,
    /// Raw HiGHS only: seconds spent reading the MPS file, not counted in `seconds`.
    mps_read_seconds: Option<f64>,
    note: String,
}

/// Relative objective agreement required between LP solvers (Clarabel is ~1e-9 accurate).
const AGREEMENT: f64 = 1e-6;

/// The goal: Clarabel, and good_lp + HiGHS, within this factor of raw HiGHS.
const GOAL_RATIO: f64 = 1.2;

/// Environment variable choosing the full-mode ladder, e.g. `100x1000,300x1000`.
const LADDER_VARIABLE: &str = "SPARES_BENCH_LADDER";

/// The full-mode ladder from `SPARES_BENCH_LADDER`, or the default rungs.
fn full_ladder() -> Vec<(usize, usize)> {
    let Ok(text) = std::env::var(LADDER_VARIABLE) else {
        return vec![(100, 1_000), (300, 1_000), (1_000, 1_000)];
    };
    text.split(',')
        .map(|rung| {
            let parsed = rung.trim().split_once('x').and_then(|(n, s)| {
                Some((
                    n.trim().parse::<usize>().ok()?,
                    s.trim().parse::<usize>().ok()?,
                ))
            });
            match parsed {
                Some((n, s)) if n > 0 && s > 0 => (n, s),
                _ => panic!("{LADDER_VARIABLE}: `{rung}` is not PARTLOCATIONSxSCENARIOS"),
            }
        })
        .collect()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            metric_parts: 10_000,
            metric_warehouses: 9,
            metric_stores_per_warehouse: 10,
            lp_ladder: full_ladder(),
            time_limit_seconds: 1_800.0,
            highspy_ipm_limit_seconds: highs_ipm_limit(400.0),
            highspy_simplex_limit_seconds: 120.0,
        }
    } else {
        Sizes {
            metric_parts: 20,
            metric_warehouses: 2,
            metric_stores_per_warehouse: 3,
            lp_ladder: vec![(12, 40)],
            time_limit_seconds: 60.0,
            highspy_ipm_limit_seconds: 60.0,
            highspy_simplex_limit_seconds: 60.0,
        }
    };
    println!("seed {SEED}; {} mode", if full { "full" } else { "smoke" });
    let mut rows = metric_rows(&sizes);
    if metric_only() {
        print_table(&rows);
        return;
    }
    let mut shapes = Vec::new();
    let mut mismatches = Vec::new();
    for (rung, &(n, s)) in sizes.lp_ladder.iter().enumerate() {
        let (rung_rows, shape) = scenario_rows(&sizes, rung, n, s, full, &mut mismatches);
        rows.extend(rung_rows);
        shapes.push(shape);
    }
    print_table(&rows);
    print_ladder(&rows, &sizes, &shapes);
    if cfg!(feature = "highs") {
        print_highs_comparison(&rows, &sizes);
    }
    assert!(
        mismatches.is_empty(),
        "objectives disagree beyond {AGREEMENT:e}:\n{}",
        mismatches.join("\n")
    );
}

/// Depot -> regional warehouses -> stores for one part with random rates. Store demand is
/// 0.001-0.05 per day (a part failing every 20 days to every 3 years at one store); the
/// warehouses only resupply.
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
                demand_per_day: rng.random_range(0.001..0.05),
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

/// `SPARES_BENCH_METRIC_ONLY=1` runs only the METRIC rows (the LP ladder takes much longer).
fn metric_only() -> bool {
    std::env::var("SPARES_BENCH_METRIC_ONLY").is_ok_and(|v| v == "1")
}

/// Parts in the METRIC fixture: `SPARES_BENCH_METRIC_PARTS` if set (to time a smaller
/// size and extrapolate), else the mode's size. The first parts are the same either way.
fn metric_parts(sizes: &Sizes) -> usize {
    std::env::var("SPARES_BENCH_METRIC_PARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(sizes.metric_parts)
}

/// METRIC and VARI-METRIC frontiers over every part, each timed, on the same fixture.
fn metric_rows(sizes: &Sizes) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let items: Vec<MetricItem> = (0..metric_parts(sizes))
        .map(|i| metric_item(i, sizes, &mut rng))
        .collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "METRIC fixture: {} parts, {} cores, RAYON_NUM_THREADS {}, load average {}",
        items.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    [MetricModel::Metric, MetricModel::VariMetric]
        .into_iter()
        .map(|model| {
            let row = metric_row(&items, model);
            println!("done: {} in {:.3} s ({})", row.case, row.seconds, row.note);
            row
        })
        .collect()
}

/// One model's frontier over every part, timed; checks that it is monotone.
fn metric_row(items: &[MetricItem], model: MetricModel) -> Row {
    let locations = items[0].nodes.len();
    let options = MetricOptions {
        model,
        ebo_tolerance: 1e-4,
    };
    let cpu_before = process_cpu_seconds();
    let start = Instant::now();
    let result = frontier(items, &options, Some(1_000));
    let seconds = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    let f = result.unwrap_or_else(|e| panic!("{model:?} frontier failed: {e}"));
    assert!(
        f.points
            .windows(2)
            .all(|w| w[1].investment >= w[0].investment
                && w[1].expected_backorders <= w[0].expected_backorders + 1e-9),
        "frontier not monotone"
    );
    let last = &f.points[f.points.len() - 1];
    Row {
        kind: Kind::Metric,
        rung: 0,
        case: format!("{model:?} frontier"),
        size: format!("{} parts x {locations} locations", items.len()),
        how: "rayon per part".into(),
        seconds,
        objective: Some(last.expected_backorders),
        mps_read_seconds: None,
        note: format!(
            "{} frontier points, final EBO {:.3}, investment {:.3e}, CPU {}",
            f.points.len(),
            last.expected_backorders,
            last.investment,
            cpu.map_or("n/a".into(), |c| format!("{c:.1} s"))
        ),
    }
}

/// User plus system CPU seconds of this process over all threads, from `/proc/self/stat`
/// (Linux, in USER_HZ = 100 ticks), so a loaded machine's wall time can be told apart from
/// the work done; `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The scenario model: Poisson lead-time demand, budget at the averages' cost, CVaR95.
fn scenario_model(part_location_count: usize, scenario_count: usize) -> ScenarioModel {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let n = part_location_count;
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
    let demand = (0..scenario_count)
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

/// One rung of the ladder: Clarabel (the reference), other in-process backends, raw HiGHS
/// in three configurations on the exported MPS (each preceded, with the `highs` feature, by
/// good_lp + HiGHS with the same options), and the decomposition. Returns the rows and the
/// LP's shape.
fn scenario_rows(
    sizes: &Sizes,
    rung: usize,
    part_location_count: usize,
    scenario_count: usize,
    full: bool,
    mismatches: &mut Vec<String>,
) -> (Vec<Row>, String) {
    let model = scenario_model(part_location_count, scenario_count);
    let size = format!("{part_location_count} p-l x {scenario_count} scenarios");
    let lp = build_lp(&model, false).unwrap_or_else(|e| panic!("model: {e}"));
    let shape = format!(
        "{} cols, {} rows, {} nz",
        lp.columns.len(),
        lp.rows.len(),
        lp.non_zeros()
    );
    println!("rung {size}: {shape}");
    let mut rows = Vec::new();
    let mut backends = vec![Backend::Clarabel];
    if !full {
        backends.push(Backend::Microlp);
    }
    let mut reference: Option<f64> = None;
    for backend in backends {
        let row = lp_row(&lp, backend, sizes.time_limit_seconds, rung, &size);
        if let Some(o) = row.objective {
            check_objective(&mut reference, o, &row.how, &size, mismatches);
        }
        println!("done: {} in {:.3} s ({})", row.how, row.seconds, row.note);
        rows.push(row);
    }
    for config in HIGHSPY_CONFIGS.iter().filter(|c| highs_config_wanted(c)) {
        let limit = if config.simplex {
            sizes.highspy_simplex_limit_seconds
        } else {
            sizes.highspy_ipm_limit_seconds
        };
        #[cfg(feature = "highs")]
        {
            let row = good_lp_highs_row(&lp, config, limit, rung, &size);
            if let Some(o) = row.objective {
                check_objective(&mut reference, o, &row.how, &size, mismatches);
            }
            println!("done: {} in {:.3} s ({})", row.how, row.seconds, row.note);
            rows.push(row);
        }
        let row = highspy_row(&lp, config, limit, rung, &size);
        if let Some(o) = row.objective {
            check_objective(&mut reference, o, &row.how, &size, mismatches);
        }
        println!("done: {} in {:.3} s ({})", row.how, row.seconds, row.note);
        rows.push(row);
    }
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
    let row = Row {
        kind: Kind::Decomposition,
        rung,
        case: "scenario CVaR model".into(),
        size,
        how: "decomposition (integer)".into(),
        seconds,
        objective: Some(plan.evaluation.objective),
        mps_read_seconds: None,
        note: format!(
            "{:?}, {} iterations, own gap {:.2e}, gap to LP {}",
            plan.status,
            plan.iterations,
            plan.gap,
            lp_gap.map_or("n/a".into(), |g| format!("{g:.2e}"))
        ),
    };
    println!("done: {} in {:.3} s ({})", row.how, row.seconds, row.note);
    rows.push(row);
    (rows, shape)
}

/// Solves the LP with one in-process backend.
fn lp_row(lp: &LinearProgram, backend: Backend, limit: f64, rung: usize, size: &str) -> Row {
    let start = Instant::now();
    let result = lp.solve(backend, limit);
    let seconds = start.elapsed().as_secs_f64();
    let (objective, note) = match result {
        Ok(s) => (
            (s.status == LpStatus::Optimal).then_some(s.objective),
            format!(
                "{:?}, objective {:.9e} (includes building the good_lp model; limit {limit} s)",
                s.status, s.objective
            ),
        ),
        Err(e) => (None, format!("failed: {e}")),
    };
    Row {
        kind: if backend == Backend::Clarabel {
            Kind::Clarabel
        } else {
            Kind::OtherLp
        },
        rung,
        case: "scenario CVaR LP".into(),
        size: size.into(),
        how: format!("good_lp + {backend}"),
        seconds,
        objective,
        mps_read_seconds: None,
        note,
    }
}

/// Solves the LP in-process with HiGHS through good_lp, with one raw configuration's options.
#[cfg(feature = "highs")]
fn good_lp_highs_row(
    lp: &LinearProgram,
    config: &HighspyConfig,
    limit: f64,
    rung: usize,
    size: &str,
) -> Row {
    let start = Instant::now();
    let result = lp.solve_highs_with_options(limit, config.options);
    let seconds = start.elapsed().as_secs_f64();
    let (objective, note) = match result {
        Ok(s) => (
            (s.status == LpStatus::Optimal).then_some(s.objective),
            format!(
                "{:?}, objective {:.9e} (includes building the good_lp and HiGHS models; limit {limit} s)",
                s.status, s.objective
            ),
        ),
        Err(e) => (None, format!("failed: {e}")),
    };
    Row {
        kind: Kind::GoodLpHighs,
        rung,
        case: "scenario CVaR LP".into(),
        size: size.into(),
        how: config.good_lp_label(),
        seconds,
        objective,
        mps_read_seconds: None,
        note,
    }
}

/// Proven-optimal objectives of the same LP must agree to `AGREEMENT` (relative) with the
/// first one seen (Clarabel's); a disagreement is collected and fails the run after the table.
fn check_objective(
    reference: &mut Option<f64>,
    objective: f64,
    who: &str,
    size: &str,
    mismatches: &mut Vec<String>,
) {
    match reference {
        None => *reference = Some(objective),
        Some(r) => {
            let relative = (objective - *r).abs() / r.abs().max(1.0);
            println!("  {who}: objective {objective:.9e}, relative difference {relative:.1e}");
            if relative > AGREEMENT {
                mismatches.push(format!(
                    "{size}: {who} objective {objective} vs {r} (relative {relative:.1e})"
                ));
            }
        }
    }
}

/// `SPARES_BENCH_HIGHS_CONFIGS`, e.g. `ipm` or `ipm,simplex`: the HiGHS configurations to
/// run (`ipm` = ipm without crossover, `ipm-crossover`, `simplex`); all when unset.
fn highs_config_wanted(config: &HighspyConfig) -> bool {
    let Ok(text) = std::env::var("SPARES_BENCH_HIGHS_CONFIGS") else {
        return true;
    };
    let key = match config.name {
        "ipm, no crossover" => "ipm",
        "ipm + crossover" => "ipm-crossover",
        _ => "simplex",
    };
    text.split(',').any(|wanted| wanted.trim() == key)
}

/// `SPARES_BENCH_HIGHS_IPM_LIMIT`: seconds for each HiGHS interior-point run in full mode
/// (default 400), so a large rung can be given the time it needs.
fn highs_ipm_limit(default: f64) -> f64 {
    std::env::var("SPARES_BENCH_HIGHS_IPM_LIMIT")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(default)
}

/// One raw HiGHS configuration.
struct HighspyConfig {
    /// The algorithm, e.g. "ipm, no crossover".
    name: &'static str,
    simplex: bool,
    /// `(option, value)` pairs passed to `Highs.setOptionValue`.
    options: &'static [(&'static str, &'static str)],
}

impl HighspyConfig {
    /// Row label of the raw highspy run.
    fn raw_label(&self) -> String {
        format!("raw HiGHS {}", self.name)
    }

    /// Row label of the in-process good_lp run with the same options.
    #[cfg_attr(not(feature = "highs"), allow(dead_code))]
    fn good_lp_label(&self) -> String {
        format!("good_lp + HiGHS {}", self.name)
    }
}

/// Interior point with and without crossover (crossover can dominate on this LP), and
/// dual simplex (HiGHS's default for LPs) under its own limit.
const HIGHSPY_CONFIGS: [HighspyConfig; 3] = [
    HighspyConfig {
        name: "ipm, no crossover",
        simplex: false,
        options: &[("solver", "ipm"), ("run_crossover", "off")],
    },
    HighspyConfig {
        name: "ipm + crossover",
        simplex: false,
        options: &[("solver", "ipm"), ("run_crossover", "on")],
    },
    HighspyConfig {
        name: "simplex",
        simplex: true,
        options: &[("solver", "simplex")],
    },
];

/// Reads the MPS file, sets the options and solves; prints one `RESULT` line:
/// objective, solve seconds, read seconds, ipm/crossover/simplex iterations, then the status.
const HIGHSPY_SCRIPT: &str = r#"
import sys, time, highspy
path, limit = sys.argv[1], float(sys.argv[2])
h = highspy.Highs()
h.setOptionValue('output_flag', False)
h.setOptionValue('time_limit', limit)
for pair in sys.argv[3:]:
    key, value = pair.split('=', 1)
    if h.setOptionValue(key, value) != highspy.HighsStatus.kOk:
        raise SystemExit('bad option ' + pair)
t = time.perf_counter()
h.readModel(path)
read = time.perf_counter() - t
t = time.perf_counter()
h.run()
solve = time.perf_counter() - t
i = h.getInfo()
print('RESULT', repr(i.objective_function_value), solve, read, i.ipm_iteration_count,
      i.crossover_iteration_count, i.simplex_iteration_count,
      h.modelStatusToString(h.getModelStatus()))
print('VERSION', h.version())
"#;

/// Exports MPS and solves it with python highspy in the same run (one fresh process per
/// configuration; the time is HiGHS's `run()` only, the MPS read is reported separately).
fn highspy_row(
    lp: &LinearProgram,
    config: &HighspyConfig,
    limit: f64,
    rung: usize,
    size: &str,
) -> Row {
    let mut row = Row {
        kind: Kind::RawHighs,
        rung,
        case: "scenario CVaR LP".into(),
        size: size.into(),
        how: config.raw_label(),
        seconds: 0.0,
        objective: None,
        mps_read_seconds: None,
        note: String::new(),
    };
    let available = Command::new("python3")
        .args(["-c", "import highspy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        row.note = "skipped: python3 highspy not installed (pip install highspy)".into();
        println!("raw HiGHS skipped: python3 highspy not installed (pip install highspy)");
        return row;
    }
    let path = std::env::temp_dir().join(format!("spares-bench-{}-{rung}.mps", std::process::id()));
    if let Err(e) = std::fs::write(&path, lp.to_mps()) {
        row.note = format!("skipped: cannot write MPS: {e}");
        return row;
    }
    let mut args = vec![
        "-c".to_string(),
        HIGHSPY_SCRIPT.to_string(),
        path.display().to_string(),
        format!("{limit}"),
    ];
    args.extend(config.options.iter().map(|(k, v)| format!("{k}={v}")));
    let output = Command::new("python3").args(&args).output();
    let _ = std::fs::remove_file(&path);
    let text = output
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("VERSION "))
        .unwrap_or("?")
        .to_string();
    let parsed = text.lines().find_map(|l| {
        let fields: Vec<&str> = l.strip_prefix("RESULT ")?.split_whitespace().collect();
        if fields.len() < 7 {
            return None;
        }
        let number = |i: usize| fields[i].parse::<f64>().ok();
        Some((
            number(0)?,
            number(1)?,
            number(2)?,
            fields[3..6].join("/"),
            fields[6..].join(" "),
        ))
    });
    match parsed {
        Some((objective, seconds, read, iterations, status)) => {
            // Only a proven optimum is compared; a time-limited run reports a bound.
            if status == "Optimal" {
                row.objective = Some(objective);
            }
            row.seconds = seconds;
            row.mps_read_seconds = Some(read);
            row.note = format!(
                "{status}, objective {objective:.9e}; ipm/crossover/simplex iterations {iterations}; MPS read {read:.2} s excluded; limit {limit} s; highspy {version}"
            );
        }
        None => row.note = format!("failed: {}", text.trim()),
    }
    row
}

/// Prints every row; raw HiGHS rows carry "Clarabel s / this s" for their rung.
fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<22} | {:<27} | {:<34} | {:>10} | {:>16} | {:>12} | note",
        "case", "size", "method", "seconds", "objective", "Clarabel/this"
    );
    for r in rows {
        let clarabel = rows
            .iter()
            .find(|c| c.kind == Kind::Clarabel && c.rung == r.rung && c.objective.is_some());
        let ratio = match (r.kind, clarabel, r.objective) {
            (Kind::RawHighs, Some(c), Some(_)) if r.seconds > 0.0 => {
                format!("{:.2}", c.seconds / r.seconds)
            }
            _ => "-".into(),
        };
        let objective = r.objective.map_or("-".into(), |o| format!("{o:.9e}"));
        println!(
            "{:<22} | {:<27} | {:<34} | {:>10.3} | {:>16} | {:>12} | {}",
            r.case, r.size, r.how, r.seconds, objective, ratio, r.note
        );
    }
}

/// Prints the ladder: Clarabel against each raw HiGHS configuration and the ratio to the
/// fastest one that proved optimality, with the goal.
fn print_ladder(rows: &[Row], sizes: &Sizes, shapes: &[String]) {
    println!();
    println!(
        "scenario LP ladder (seconds; '>' = hit the limit or no optimum; goal: Clarabel within {GOAL_RATIO}x of raw HiGHS)"
    );
    let time = |r: Option<&Row>| match r {
        Some(r) if r.objective.is_some() => format!("{:.2}", r.seconds),
        Some(r) if r.note.starts_with("skipped") => "skipped".into(),
        Some(r) => format!(">{:.0}", r.seconds),
        None => "-".into(),
    };
    println!(
        "{:<26} | {:<40} | {:>10} | {:>12} | {:>12} | {:>10} | {:>13} | {:<18} | goal",
        "size",
        "LP shape",
        "Clarabel",
        "ipm no-xover",
        "ipm + xover",
        "simplex",
        "Clarabel/best",
        "best"
    );
    for (rung, &(n, s)) in sizes.lp_ladder.iter().enumerate() {
        let of = |kind: Kind, label: Option<&str>| {
            rows.iter()
                .find(|r| r.rung == rung && r.kind == kind && label.is_none_or(|l| r.how == l))
        };
        let clarabel = of(Kind::Clarabel, None);
        let raw: Vec<Option<&Row>> = HIGHSPY_CONFIGS
            .iter()
            .map(|c| of(Kind::RawHighs, Some(&c.raw_label())))
            .collect();
        let best = raw
            .iter()
            .flatten()
            .filter(|r| r.objective.is_some() && r.seconds > 0.0)
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let (ratio, best_name, goal) = match (clarabel.filter(|c| c.objective.is_some()), best) {
            (Some(c), Some(b)) => {
                let ratio = c.seconds / b.seconds;
                (
                    format!("{ratio:.2}"),
                    b.how.trim_start_matches("raw HiGHS ").to_string(),
                    if ratio <= GOAL_RATIO { "met" } else { "missed" }.to_string(),
                )
            }
            _ => ("-".into(), "-".into(), "no ratio".into()),
        };
        println!(
            "{:<26} | {:<40} | {:>10} | {:>12} | {:>12} | {:>10} | {:>13} | {:<18} | {}",
            format!("{n} p-l x {s} scenarios"),
            shapes.get(rung).map_or("-", String::as_str),
            time(clarabel),
            time(raw[0]),
            time(raw[1]),
            time(raw[2]),
            ratio,
            best_name,
            goal
        );
    }
}

/// Prints good_lp + HiGHS against raw HiGHS with the same options, per rung and
/// configuration. Raw seconds are HiGHS's `run()` alone (the MPS read is shown apart);
/// good_lp seconds also include building the good_lp model and handing it to HiGHS, so
/// the ratio is the whole in-process cost over the bare solve.
fn print_highs_comparison(rows: &[Row], sizes: &Sizes) {
    println!();
    println!(
        "good_lp + HiGHS vs raw HiGHS, same options and limits (seconds; '>' = hit the limit or no optimum; goal: within {GOAL_RATIO}x)"
    );
    println!(
        "{:<26} | {:<18} | {:>15} | {:>12} | {:>13} | {:>14} | goal",
        "size", "algorithm", "good_lp + HiGHS", "raw run()", "raw MPS read", "good_lp / raw"
    );
    for (rung, &(n, s)) in sizes.lp_ladder.iter().enumerate() {
        for config in &HIGHSPY_CONFIGS {
            let find = |label: String| rows.iter().find(|r| r.rung == rung && r.how == label);
            let good_lp = find(config.good_lp_label());
            let raw = find(config.raw_label());
            let time = |r: Option<&Row>| match r {
                Some(r) if r.objective.is_some() => format!("{:.3}", r.seconds),
                Some(r) if r.note.starts_with("skipped") => "skipped".into(),
                Some(r) => format!(">{:.0}", r.seconds),
                None => "-".into(),
            };
            let read = raw
                .and_then(|r| r.mps_read_seconds)
                .map_or("-".into(), |t| format!("{t:.3}"));
            let both = good_lp
                .zip(raw)
                .filter(|(g, r)| g.objective.is_some() && r.objective.is_some() && r.seconds > 0.0);
            let (ratio, goal) = match both {
                Some((g, r)) => {
                    let ratio = g.seconds / r.seconds;
                    let goal = if ratio <= GOAL_RATIO { "met" } else { "missed" };
                    (format!("{ratio:.2}"), goal)
                }
                None => ("-".into(), "no ratio"),
            };
            println!(
                "{:<26} | {:<18} | {:>15} | {:>12} | {:>13} | {:>14} | {}",
                format!("{n} p-l x {s} scenarios"),
                config.name,
                time(good_lp),
                time(raw),
                read,
                ratio,
                goal
            );
        }
    }
}
