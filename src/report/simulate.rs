//! The report of a Simulate job: the distribution of annual downtime cost
//! with its mean, p95, p99 and CVaR95 drawn on it (baseline and each what-if),
//! the paired differences of each what-if against the baseline, the measures
//! table, and where the downtime comes from (locations, parts, part-locations).

use super::html::{Cell, Page, money, percent, table};
use super::svg::{Axis, Chart, Marker, PALETTE, dash_of};
use crate::planning::simulate::SimulationResult;
use spares_simulations as sim;

/// Bins of each distribution chart.
const BINS: usize = 30;
/// Distributions whose mean, p95, p99 and CVaR95 are drawn: the baseline and
/// the first what-ifs (more lines would hide the bars).
const MARKED_SERIES: usize = 3;
/// Rows of each breakdown table.
const BREAKDOWN_ROWS: usize = 25;

/// Days in the year the cost is scaled to.
const YEAR_DAYS: f64 = 365.0;

/// The measured days of a report (the horizon less its warm-up).
fn window_days(report: &sim::Report) -> f64 {
    (report.horizon_days - report.warm_up_days).max(1.0)
}

/// Each replication's downtime cost scaled to a year.
fn annual_costs(report: &sim::Report) -> Vec<f64> {
    let scale = YEAR_DAYS / window_days(report);
    report
        .replication_totals
        .iter()
        .map(|r| r.downtime_cost * scale)
        .collect()
}

/// Mean, p95, p99 and CVaR95 of values (nearest-rank quantiles; CVaR the
/// mean of the worst 5%, at least one value).
pub fn tail_markers(values: &[f64]) -> Option<[(&'static str, f64); 4]> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let rank = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    let tail = n - ((0.95 * n as f64).floor() as usize).min(n - 1);
    let cvar = sorted[n - tail..].iter().sum::<f64>() / tail as f64;
    let mean = sorted.iter().sum::<f64>() / n as f64;
    Some([
        ("mean", mean),
        ("p95", rank(0.95)),
        ("p99", rank(0.99)),
        ("CVaR95", cvar),
    ])
}

fn estimate_cell(e: Option<&sim::Estimate>, show: fn(f64) -> String) -> Cell {
    match e {
        Some(e) => {
            let text = match e.half_width_95 {
                Some(h) => format!("{} ± {}", show(e.mean), show(h)),
                None => show(e.mean),
            };
            Cell::number(e.mean, text)
        }
        None => Cell::text("-"),
    }
}

/// Renders the report.
pub fn render(job_id: &str, result: &SimulationResult) -> String {
    let base = &result.baseline;
    let meta = format!(
        "{job_id} · {} parts · {} replications of {:.0} measured days (warm-up {:.0}) · seed {} · costs scaled to a year",
        result.part_ids.len(),
        base.replications,
        window_days(base),
        base.warm_up_days,
        base.seed
    );
    let mut page = Page::new(&format!("Simulation report {job_id}"), &meta);
    measures_section(&mut page, result);
    distribution_section(&mut page, result);
    if !result.comparisons.is_empty() {
        differences_section(&mut page, result);
    }
    breakdown_section(&mut page, base);
    page.finish()
}

fn measures_section(page: &mut Page, result: &SimulationResult) {
    page.heading("measures", "Measures: baseline and what-if scenarios");
    let mut rows = Vec::new();
    let mut add = |name: &str, report: &sim::Report| {
        let m = &report.network.measures;
        let tail = report.network.downtime.total_cost.as_ref();
        let scale = YEAR_DAYS / window_days(report);
        let scaled = |f: fn(&sim::TailSummary) -> f64| match tail {
            Some(t) => Cell::number(f(t) * scale, money(f(t) * scale)),
            None => Cell::text("-"),
        };
        rows.push(vec![
            Cell::text(name),
            estimate_cell(m.first_time_fill_rate.as_ref(), |v| percent(v, 2)),
            estimate_cell(m.availability.as_ref(), |v| percent(v, 3)),
            estimate_cell(Some(&m.expected_backorders), |v| format!("{v:.2}")),
            estimate_cell(Some(&m.emergency_shipments), |v| format!("{v:.1}")),
            scaled(|t| t.mean.mean),
            scaled(|t| t.p95.value),
            scaled(|t| t.p99.value),
            scaled(|t| t.cvar95.mean),
        ]);
    };
    add("baseline", &result.baseline);
    for c in &result.comparisons {
        add(&c.scenario, &c.changed);
    }
    page.raw(&table(
        "measures-table",
        &[
            "plan",
            "first-time fill",
            "availability",
            "backorders",
            "emergency shipments",
            "downtime cost mean/yr",
            "p95/yr",
            "p99/yr",
            "CVaR95/yr",
        ],
        rows,
    ));
}

fn distribution_section(page: &mut Page, result: &SimulationResult) {
    page.heading(
        "distribution-of-cost",
        "Distribution of annual downtime cost over replications",
    );
    let mut series: Vec<(String, Vec<f64>)> =
        vec![("baseline".to_string(), annual_costs(&result.baseline))];
    for c in &result.comparisons {
        series.push((c.scenario.clone(), annual_costs(&c.changed)));
    }
    let all: Vec<f64> = series.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let x = Axis::covering("annual downtime cost", all.iter().copied(), true, money);
    // Every series is binned on the same edges so the bars line up.
    let edges = histogram_on(x.min, x.max, BINS);
    let binned: Vec<Vec<(f64, f64, f64)>> = series.iter().map(|(_, v)| edges(v)).collect();
    let y = Axis::covering(
        "share of replications",
        binned.iter().flatten().map(|b| b.2),
        true,
        |v| percent(v, 0),
    );
    let mut chart = Chart::new(
        "distribution",
        "Annual downtime cost: how often each level occurs",
        x,
        y,
    );
    for (i, ((name, _), bins)) in series.iter().zip(&binned).enumerate() {
        chart.bars(name, bins, PALETTE[i % PALETTE.len()]);
    }
    for (i, (name, values)) in series.iter().enumerate().take(MARKED_SERIES) {
        for (statistic, value) in tail_markers(values).into_iter().flatten() {
            chart.marker(&Marker {
                name: format!("{name} {statistic} {}", money(value)),
                x: value,
                colour: PALETTE[i % PALETTE.len()].into(),
                dash: dash_of(statistic),
            });
        }
    }
    page.raw(&chart.finish());
    page.note("Each bar is the share of replications whose downtime cost, scaled to a year, falls in its range; the dashed lines mark the mean, 95th and 99th percentiles and CVaR95 (the mean of the worst 5% of years) of the baseline and the first two what-ifs, named with their values in the legend. The tail, not the mean, is what a bad year costs.");
}

/// A binning function over fixed edges `[min, max]`.
pub(crate) fn histogram_on(
    min: f64,
    max: f64,
    bins: usize,
) -> impl Fn(&[f64]) -> Vec<(f64, f64, f64)> {
    let width = ((max - min) / bins as f64).max(f64::MIN_POSITIVE);
    move |values: &[f64]| {
        let mut counts = vec![0usize; bins];
        let mut n = 0usize;
        for v in values.iter().filter(|v| v.is_finite()) {
            n += 1;
            let i = (((v - min) / width).floor().max(0.0) as usize).min(bins - 1);
            counts[i] += 1;
        }
        counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let from = min + width * i as f64;
                (from, from + width, *c as f64 / n.max(1) as f64)
            })
            .collect()
    }
}

fn differences_section(page: &mut Page, result: &SimulationResult) {
    page.heading(
        "paired-differences",
        "What-if against the baseline: paired differences per replication",
    );
    let base = annual_costs(&result.baseline);
    let mut series: Vec<(String, Vec<f64>)> = Vec::new();
    for c in &result.comparisons {
        let changed = annual_costs(&c.changed);
        let paired: Vec<f64> = changed.iter().zip(&base).map(|(c, b)| c - b).collect();
        series.push((c.scenario.clone(), paired));
    }
    let all: Vec<f64> = series.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let x = Axis::covering(
        "annual downtime cost, scenario minus baseline",
        all.iter().copied().chain([0.0]),
        false,
        money,
    );
    let edges = histogram_on(x.min, x.max, BINS);
    let binned: Vec<Vec<(f64, f64, f64)>> = series.iter().map(|(_, v)| edges(v)).collect();
    let y = Axis::covering(
        "share of replications",
        binned.iter().flatten().map(|b| b.2),
        true,
        |v| percent(v, 0),
    );
    let mut chart = Chart::new(
        "differences",
        "Paired differences (same random numbers in both runs)",
        x,
        y,
    );
    for (i, ((name, _), bins)) in series.iter().zip(&binned).enumerate() {
        chart.bars(name, bins, PALETTE[(i + 1) % PALETTE.len()]);
    }
    for (i, (name, values)) in series.iter().enumerate() {
        if let Some(markers) = tail_markers(values) {
            for (statistic, value) in [markers[0], markers[1]] {
                chart.marker(&Marker {
                    name: format!("{name} {statistic} {}", money(value)),
                    x: value,
                    colour: PALETTE[(i + 1) % PALETTE.len()].into(),
                    dash: dash_of(statistic),
                });
            }
        }
    }
    page.raw(&chart.finish());
    let rows = result
        .comparisons
        .iter()
        .map(|c| {
            let d = &c.network;
            let scale = YEAR_DAYS / window_days(&c.changed);
            let cell = |e: &sim::Estimate| {
                let scaled = sim::Estimate {
                    mean: e.mean * scale,
                    half_width_95: e.half_width_95.map(|h| h * scale),
                };
                estimate_cell(Some(&scaled), money)
            };
            vec![
                Cell::text(c.scenario.clone()),
                cell(&d.downtime_cost),
                cell(&d.worst_week_downtime_cost),
                cell(&d.emergency_cost),
                estimate_cell(Some(&d.expected_backorders), |v| format!("{v:+.2}")),
            ]
        })
        .collect();
    page.raw(&table(
        "differences-table",
        &[
            "scenario",
            "downtime cost/yr",
            "worst week cost",
            "emergency cost/yr",
            "backorders",
        ],
        rows,
    ));
    page.note("Differences are scenario minus baseline on common random numbers, so their intervals are far narrower than the two runs' own.");
}

fn breakdown_section(page: &mut Page, base: &sim::Report) {
    let scale = YEAR_DAYS / window_days(base);
    page.heading("where-from", "Where the downtime comes from");
    let level_rows = |items: Vec<(String, &sim::LevelReport)>| {
        let mut items = items;
        items.sort_by(|a, b| {
            b.1.measures
                .downtime_cost
                .mean
                .total_cmp(&a.1.measures.downtime_cost.mean)
        });
        // A location with neither demand nor downtime (a depot, a regional
        // warehouse) has nothing to show here.
        items
            .into_iter()
            .filter(|(_, r)| {
                r.measures.downtime_cost.mean > 0.0 || r.measures.demand_units.mean > 0.0
            })
            .take(BREAKDOWN_ROWS)
            .map(|(name, r)| {
                let m = &r.measures;
                let cost = m.downtime_cost.mean * scale;
                vec![
                    Cell::text(name),
                    Cell::number(cost, money(cost)),
                    Cell::number(
                        m.downtime_hours.mean * scale,
                        format!("{:.1}", m.downtime_hours.mean * scale),
                    ),
                    estimate_cell(m.first_time_fill_rate.as_ref(), |v| percent(v, 1)),
                    Cell::number(
                        m.demand_units.mean * scale,
                        format!("{:.1}", m.demand_units.mean * scale),
                    ),
                ]
            })
            .collect::<Vec<_>>()
    };
    let headers = [
        "",
        "downtime cost/yr",
        "downtime hours/yr",
        "first-time fill",
        "demand units/yr",
    ];
    page.note(&format!(
        "Locations with the most downtime cost (top {BREAKDOWN_ROWS} of those with demand; click a column to sort)."
    ));
    let mut h = headers;
    h[0] = "location";
    page.raw(&table(
        "locations-table",
        &h,
        level_rows(
            base.locations
                .iter()
                .map(|l| (l.location.clone(), &l.report))
                .collect(),
        ),
    ));
    page.note(&format!(
        "Parts with the most downtime cost (top {BREAKDOWN_ROWS})."
    ));
    h[0] = "part";
    page.raw(&table(
        "parts-table",
        &h,
        level_rows(
            base.parts
                .iter()
                .map(|p| (p.part.clone(), &p.report))
                .collect(),
        ),
    ));
    let mut rows: Vec<&sim::PartLocationReport> = base.part_locations.iter().collect();
    rows.sort_by(|a, b| {
        b.measures
            .downtime_cost
            .mean
            .total_cmp(&a.measures.downtime_cost.mean)
    });
    page.note(&format!(
        "Part-locations with the most downtime cost (top {BREAKDOWN_ROWS})."
    ));
    page.raw(&table(
        "part-locations-table",
        &[
            "part",
            "location",
            "downtime cost/yr",
            "first-time fill",
            "demand units/yr",
        ],
        rows.into_iter()
            .take(BREAKDOWN_ROWS)
            .map(|r| {
                let cost = r.measures.downtime_cost.mean * scale;
                vec![
                    Cell::text(r.part.clone()),
                    Cell::text(r.location.clone()),
                    Cell::number(cost, money(cost)),
                    estimate_cell(r.measures.first_time_fill_rate.as_ref(), |v| percent(v, 1)),
                    Cell::number(
                        r.measures.demand_units.mean * scale,
                        format!("{:.1}", r.measures.demand_units.mean * scale),
                    ),
                ]
            })
            .collect(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_markers_follow_their_definitions() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let [mean, p95, p99, cvar] = tail_markers(&values).unwrap();
        assert_eq!(mean.1, 50.5);
        assert_eq!(p95.1, 95.0);
        assert_eq!(p99.1, 99.0);
        // The worst 5 of 100: 96..=100.
        assert_eq!(cvar.1, 98.0);
        assert!(tail_markers(&[]).is_none());
    }
}
