//! The report of an Optimize job: the plans compared out of sample (the
//! distribution of downtime cost per evaluated year for each plan with its
//! mean, p95, p99 and CVaR95 drawn on it, the comparison table, and the
//! paired differences with their intervals), the downtime-versus-investment
//! frontier of the METRIC plan with the plan in force and the recommended
//! plan marked, where the downtime comes from (per location and per part),
//! the top recommendations with their explanations, the changes against the
//! plan in force, and where the plan puts its stock.

use super::html::{Cell, Page, money, percent, table};
use super::simulate::histogram_on;
use super::svg::{Axis, Chart, Highlight, Line, Marker, PALETTE, dash_of};
use crate::planning::optimize::{DowntimeShare, OptimizeResult, PlanEvaluation};
use std::collections::BTreeMap;

/// Bins of each distribution chart.
const BINS: usize = 30;
/// Recommendation and change rows shown (the result holds at most 2,000).
const TABLE_ROWS: usize = 200;

/// Renders the report.
pub fn render(job_id: &str, result: &OptimizeResult) -> String {
    let meta = format!(
        "{job_id} · {} parts at {} part-locations · {:?} model, {} mode · {} training scenarios (seed {}){} · investment {}{}",
        result.part_ids.len(),
        result.part_locations,
        result.model,
        result.mode.name(),
        result.scenarios,
        result.training_seed,
        result
            .evaluation_seed
            .map(|s| format!(", evaluated out of sample with seed {s}"))
            .unwrap_or_default(),
        money(result.investment_usd),
        result
            .budget_usd
            .map(|b| format!(" of a {} budget", money(b)))
            .unwrap_or_default(),
    );
    let mut page = Page::new(&format!("Optimisation report {job_id}"), &meta);
    if result.comparison.is_empty() {
        page.note("This run was not compared (spares optimize --compare scores the plan against the downtime-weighted METRIC and averages plans at the same investment, out of sample).");
    } else {
        comparison_section(&mut page, result);
        distribution_section(&mut page, &result.comparison);
        differences_section(&mut page, result);
    }
    frontier_section(&mut page, result);
    downtime_section(&mut page, result);
    recommendations_section(&mut page, result);
    changes_section(&mut page, result);
    breakdown_section(&mut page, result);
    page.finish()
}

fn optional(value: Option<f64>, show: fn(f64) -> String) -> Cell {
    match value {
        Some(v) => Cell::number(v, show(v)),
        None => Cell::text("-"),
    }
}

fn comparison_section(page: &mut Page, result: &OptimizeResult) {
    page.heading("comparison", "The plans compared at the same investment");
    let rows = result
        .comparison
        .iter()
        .map(|r| {
            vec![
                Cell::text(r.plan.clone()),
                Cell::number(r.investment_usd, money(r.investment_usd)),
                optional(r.fill_rate, |v| percent(v, 2)),
                Cell::number(r.downtime_cost_mean, money(r.downtime_cost_mean)),
                Cell::number(r.downtime_cost_p95, money(r.downtime_cost_p95)),
                Cell::number(r.downtime_cost_p99, money(r.downtime_cost_p99)),
                Cell::number(r.downtime_cost_cvar95, money(r.downtime_cost_cvar95)),
                Cell::number(
                    r.emergency_shipments,
                    format!("{:.1}", r.emergency_shipments),
                ),
                optional(r.in_sample_mean, money),
                optional(r.in_sample_cvar95, money),
                Cell::text(r.note.clone()),
            ]
        })
        .collect();
    page.raw(&table(
        "comparison-table",
        &[
            "plan",
            "investment",
            "fill rate",
            "mean cost",
            "p95 cost",
            "p99 cost",
            "CVaR95 cost",
            "emergency",
            "in-sample mean",
            "in-sample CVaR95",
            "note",
        ],
        rows,
    ));
    page.note("Costs are downtime cost per evaluated year, out of sample (new random years, the same for every plan); the in-sample columns are the training years the plan was chosen on.");
}

fn distribution_section(page: &mut Page, plans: &[PlanEvaluation]) {
    let drawn: Vec<&PlanEvaluation> = plans
        .iter()
        .filter(|p| !p.replication_costs.is_empty())
        .collect();
    page.heading(
        "distribution-of-cost",
        "Distribution of downtime cost per evaluated year, per plan",
    );
    if drawn.is_empty() {
        page.note("This result keeps no per-year costs (it predates them); the table above has each plan's mean, p95, p99 and CVaR95.");
        return;
    }
    let all = drawn
        .iter()
        .flat_map(|p| p.replication_costs.iter().copied());
    let x = Axis::covering("downtime cost per year", all, true, money);
    let edges = histogram_on(x.min, x.max, BINS);
    let binned: Vec<Vec<(f64, f64, f64)>> =
        drawn.iter().map(|p| edges(&p.replication_costs)).collect();
    let y = Axis::covering(
        "share of years",
        binned.iter().flatten().map(|b| b.2),
        true,
        |v| percent(v, 0),
    );
    let mut chart = Chart::new(
        "distribution",
        "Downtime cost per year: how often each level occurs, per plan",
        x,
        y,
    );
    for (i, (plan, bins)) in drawn.iter().zip(&binned).enumerate() {
        chart.bars(&plan.plan, bins, PALETTE[i % PALETTE.len()]);
    }
    for (i, plan) in drawn.iter().enumerate() {
        // The table's own figures, so the lines and the table agree.
        for (statistic, value) in [
            ("mean", plan.downtime_cost_mean),
            ("p95", plan.downtime_cost_p95),
            ("p99", plan.downtime_cost_p99),
            ("CVaR95", plan.downtime_cost_cvar95),
        ] {
            chart.marker(&Marker {
                name: format!("{} {statistic} {}", plan.plan, money(value)),
                x: value,
                colour: PALETTE[i % PALETTE.len()].into(),
                dash: dash_of(statistic),
            });
        }
    }
    page.raw(&chart.finish());
    page.note("Each bar is the share of evaluated years whose downtime cost falls in its range; the dashed lines mark each plan's mean, 95th and 99th percentiles and CVaR95 (the mean of the worst 5% of years), in the plan's colour with a dash per statistic, named with their values in the legend.");
}

fn differences_section(page: &mut Page, result: &OptimizeResult) {
    page.heading(
        "paired-differences",
        "The consequence plan against each baseline: paired differences",
    );
    let consequence = result.comparison.iter().find(|p| p.plan == "consequence");
    let series: Vec<(usize, &str, Vec<f64>)> = result
        .comparison
        .iter()
        .enumerate()
        .filter(|(_, p)| p.plan != "consequence")
        .filter_map(|(i, p)| {
            let ours = &consequence?.replication_costs;
            let paired: Vec<f64> = ours
                .iter()
                .zip(&p.replication_costs)
                .map(|(a, b)| a - b)
                .collect();
            (!paired.is_empty()).then_some((i, p.plan.as_str(), paired))
        })
        .collect();
    // One chart per baseline, each on its own scale: the differences from
    // two baselines can be orders of magnitude apart, and on one axis the
    // smaller would shrink into a single bar.
    for (i, baseline, paired) in &series {
        page.raw(&difference_chart(
            baseline,
            paired,
            PALETTE[i % PALETTE.len()],
        ));
    }
    let rows = result
        .paired
        .iter()
        .map(|p| {
            vec![
                Cell::text(format!("consequence - {}", p.baseline)),
                Cell::text(p.statistic.clone()),
                Cell::number(p.difference, money(p.difference)),
                Cell::number(p.low, money(p.low)),
                Cell::number(p.high, money(p.high)),
                Cell::text(if p.significant { "yes" } else { "no" }),
            ]
        })
        .collect();
    page.raw(&table(
        "paired-table",
        &[
            "difference",
            "statistic",
            "point",
            "95% low",
            "95% high",
            "significant",
        ],
        rows,
    ));
    if !result.interval_method.is_empty() {
        page.note(&format!("Intervals: {}.", result.interval_method));
    }
}

/// A frontier table row: the plan's label and its out-of-sample figures.
fn frontier_row(label: &str, p: &PlanEvaluation) -> Vec<Cell> {
    vec![
        Cell::text(label),
        Cell::number(p.investment_usd, money(p.investment_usd)),
        Cell::number(p.downtime_cost_mean, money(p.downtime_cost_mean)),
        Cell::number(p.downtime_cost_p95, money(p.downtime_cost_p95)),
        Cell::number(p.downtime_cost_p99, money(p.downtime_cost_p99)),
        Cell::number(p.downtime_cost_cvar95, money(p.downtime_cost_cvar95)),
        optional(p.fill_rate, |v| percent(v, 2)),
    ]
}

fn frontier_section(page: &mut Page, result: &OptimizeResult) {
    page.heading(
        "frontier",
        "Downtime cost against investment: the METRIC frontier, the plan in force and the recommended plan",
    );
    let recommended = result.comparison.iter().find(|p| p.plan == "consequence");
    let (Some(in_force), Some(recommended)) = (&result.in_force, recommended) else {
        page.note("This result has no frontier (it was not compared, or predates the frontier); `spares optimize --compare` scores one, and `spares frontier` traces METRIC's availability frontier.");
        return;
    };
    if result.metric_frontier.is_empty() {
        page.note("This result has no frontier points.");
        return;
    }
    let frontier = &result.metric_frontier;
    let marked = [in_force, recommended];
    let everything = || frontier.iter().chain(marked);
    let x = Axis::covering(
        "investment in stock of the planned parts",
        everything().map(|p| p.investment_usd),
        true,
        money,
    );
    let y = Axis::covering(
        "downtime cost per year",
        everything().flat_map(|p| [p.downtime_cost_mean, p.downtime_cost_cvar95]),
        true,
        money,
    );
    let mut chart = Chart::new(
        "frontier",
        "Downtime cost per evaluated year against investment (out of sample, the same years for every plan)",
        x,
        y,
    );
    let line = |name: &str, dashed: bool, value: fn(&PlanEvaluation) -> f64| Line {
        name: name.into(),
        points: frontier
            .iter()
            .map(|p| (p.investment_usd, value(p)))
            .collect(),
        colour: PALETTE[0].into(),
        dashed,
    };
    chart.line(&line("METRIC mean", false, |p| p.downtime_cost_mean));
    chart.line(&line("METRIC CVaR95", true, |p| p.downtime_cost_cvar95));
    for (plan, label, colour, diamond) in [
        (in_force, "plan in force", PALETTE[3], false),
        (recommended, "recommended", PALETTE[2], true),
    ] {
        for (statistic, value) in [
            ("mean", plan.downtime_cost_mean),
            ("CVaR95", plan.downtime_cost_cvar95),
        ] {
            chart.highlight(&Highlight {
                name: format!("{label} {statistic}"),
                point: (plan.investment_usd, value),
                colour: colour.into(),
                diamond,
            });
        }
    }
    page.raw(&chart.finish());
    page.note(&format!(
        "The blue lines are the downtime-weighted METRIC plan bought at {} investments and scored by simulation on the comparison's evaluation years (solid: mean; dashed: CVaR95, the mean of the worst 5% of years). They are METRIC's frontier measured honestly, not the consequence planner's: the consequence plan was optimised at one investment only. The ring is the plan in force (the policies' order-up-to levels, {} of stock); the diamond is the recommended consequence plan ({} of stock).",
        frontier.len(),
        money(in_force.investment_usd),
        money(recommended.investment_usd),
    ));
    let mut rows: Vec<Vec<Cell>> = frontier.iter().map(|p| frontier_row(&p.plan, p)).collect();
    rows.push(frontier_row("plan in force", in_force));
    rows.push(frontier_row("recommended (consequence)", recommended));
    if let Some(averages) = result.comparison.iter().find(|p| p.plan == "averages") {
        rows.push(frontier_row("averages", averages));
    }
    page.raw(&table(
        "frontier-table",
        &[
            "plan",
            "investment",
            "mean cost",
            "p95 cost",
            "p99 cost",
            "CVaR95 cost",
            "fill rate",
        ],
        rows,
    ));
}

/// A downtime table row: the key, each plan's cost per year, the
/// consequence plan's share of its total and its change against the plan in
/// force.
fn downtime_row(row: &DowntimeShare, total: f64) -> Vec<Cell> {
    let cost = |v: f64| Cell::number(v, money(v));
    let share = row.consequence_cost_per_year / total.max(f64::MIN_POSITIVE);
    let change = row.consequence_cost_per_year - row.in_force_cost_per_year;
    vec![
        Cell::text(row.id.clone()),
        cost(row.in_force_cost_per_year),
        cost(row.consequence_cost_per_year),
        cost(row.metric_cost_per_year),
        cost(row.averages_cost_per_year),
        Cell::number(share, percent(share, 1)),
        cost(change),
    ]
}

fn downtime_section(page: &mut Page, result: &OptimizeResult) {
    page.heading("where-downtime-comes-from", "Where the downtime comes from");
    if result.downtime_by_location.is_empty() {
        page.note("This result has no downtime breakdown (it was not compared, or predates the breakdown).");
        return;
    }
    let total: f64 = result
        .downtime_by_location
        .iter()
        .map(|r| r.consequence_cost_per_year)
        .sum();
    for (id, key, rows) in [
        (
            "downtime-locations-table",
            "location",
            &result.downtime_by_location,
        ),
        ("downtime-parts-table", "part", &result.downtime_by_part),
    ] {
        page.note(&format!(
            "Per {key}: mean downtime cost per evaluated year from machines waiting {}, under each plan (the top {} of {}, most under the recommended plan first; click a column to sort).",
            if key == "location" { "at that location" } else { "for that part" },
            rows.len().min(TABLE_ROWS),
            rows.len(),
        ));
        page.raw(&table(
            id,
            &[
                key,
                "in force",
                "recommended",
                "METRIC",
                "averages",
                "share of recommended",
                "recommended - in force",
            ],
            rows.iter()
                .take(TABLE_ROWS)
                .map(|r| downtime_row(r, total))
                .collect(),
        ));
    }
}

/// The chart `differences-BASELINE`: the consequence plan minus one
/// baseline per evaluated year, with the mean difference and zero marked.
fn difference_chart(baseline: &str, paired: &[f64], colour: &str) -> String {
    let x = Axis::covering(
        &format!("downtime cost per year, consequence minus {baseline}"),
        paired.iter().copied().chain([0.0]),
        false,
        money,
    );
    let bins = histogram_on(x.min, x.max, BINS)(paired);
    let y = Axis::covering("share of years", bins.iter().map(|b| b.2), true, |v| {
        percent(v, 0)
    });
    let mut chart = Chart::new(
        &format!("differences-{baseline}"),
        &format!(
            "Consequence minus {baseline}, per evaluated year (the same years for both plans)"
        ),
        x,
        y,
    );
    let name = format!("consequence - {baseline}");
    chart.bars(&name, &bins, colour);
    let mean = paired.iter().sum::<f64>() / paired.len().max(1) as f64;
    chart.marker(&Marker {
        name: format!("mean difference {}", money(mean)),
        x: mean,
        colour: colour.into(),
        dash: dash_of("mean"),
    });
    chart.marker(&Marker {
        name: "no difference".into(),
        x: 0.0,
        colour: "#444".into(),
        dash: dash_of(""),
    });
    chart.finish()
}

fn recommendations_section(page: &mut Page, result: &OptimizeResult) {
    page.heading("recommendations", "Top recommendations and why");
    let rows = result
        .recommendations
        .iter()
        .take(TABLE_ROWS)
        .map(|r| {
            let level = |v: Option<u64>| match v {
                Some(v) => Cell::number(v as f64, v.to_string()),
                None => Cell::text("-"),
            };
            vec![
                Cell::text(r.part_id.clone()),
                Cell::text(r.location_id.clone()),
                Cell::number(r.order_up_to as f64, r.order_up_to.to_string()),
                level(r.averages_order_up_to),
                level(r.metric_order_up_to),
                Cell::text(r.explanation.clone()),
            ]
        })
        .collect();
    page.raw(&table(
        "recommendations-table",
        &[
            "part",
            "location",
            "consequence S",
            "averages S",
            "METRIC S",
            "why",
        ],
        rows,
    ));
    page.note(&format!(
        "The {} levels with the most money first (of {} in the result; click a column to sort).",
        result.recommendations.len().min(TABLE_ROWS),
        result.recommendations.len()
    ));
}

fn changes_section(page: &mut Page, result: &OptimizeResult) {
    page.heading("changes", "Changes against the plan in force");
    if !result.change_summary.is_empty() {
        page.note(&result.change_summary);
    }
    let rows = result
        .changes
        .iter()
        .take(TABLE_ROWS)
        .map(|c| {
            vec![
                Cell::text(c.part_id.clone()),
                Cell::text(c.location_id.clone()),
                Cell::number(c.in_force as f64, c.in_force.to_string()),
                Cell::number(c.recommended as f64, c.recommended.to_string()),
                Cell::number(c.change_usd, money(c.change_usd)),
            ]
        })
        .collect();
    page.raw(&table(
        "changes-table",
        &["part", "location", "in force", "recommended", "change"],
        rows,
    ));
}

/// Per key: part-locations stocked, units, changes and their money.
#[derive(Default)]
struct Share {
    stocked: u64,
    units: u64,
    changes: u64,
    change_usd: f64,
}

fn share_rows(shares: BTreeMap<String, Share>) -> Vec<Vec<Cell>> {
    let mut rows: Vec<(String, Share)> = shares.into_iter().collect();
    rows.sort_by(|a, b| b.1.units.cmp(&a.1.units).then_with(|| a.0.cmp(&b.0)));
    rows.into_iter()
        .take(TABLE_ROWS)
        .map(|(key, s)| {
            vec![
                Cell::text(key),
                Cell::number(s.stocked as f64, s.stocked.to_string()),
                Cell::number(s.units as f64, s.units.to_string()),
                Cell::number(s.changes as f64, s.changes.to_string()),
                Cell::number(s.change_usd, money(s.change_usd)),
            ]
        })
        .collect()
}

fn breakdown_section(page: &mut Page, result: &OptimizeResult) {
    page.heading(
        "where-stock-goes",
        "Where the recommended plan puts its stock",
    );
    let mut by_location: BTreeMap<String, Share> = BTreeMap::new();
    let mut by_part: BTreeMap<String, Share> = BTreeMap::new();
    for (part, location, level) in result.levels.iter().filter(|l| l.2 > 0) {
        for share in [
            by_location.entry(location.clone()).or_default(),
            by_part.entry(part.clone()).or_default(),
        ] {
            share.stocked += 1;
            share.units += level;
        }
    }
    for c in &result.changes {
        for share in [
            by_location.entry(c.location_id.clone()).or_default(),
            by_part.entry(c.part_id.clone()).or_default(),
        ] {
            share.changes += 1;
            share.change_usd += c.change_usd;
        }
    }
    let headers = ["", "stocked at", "units", "changes", "change money"];
    let mut h = headers;
    h[0] = "location";
    page.note(&format!(
        "Per location (top {TABLE_ROWS} by units): part-locations with stock, units, and the changes against the plan in force."
    ));
    page.raw(&table("locations-table", &h, share_rows(by_location)));
    h[0] = "part";
    page.note(&format!("Per part (top {TABLE_ROWS} by units)."));
    page.raw(&table("parts-table", &h, share_rows(by_part)));
}
