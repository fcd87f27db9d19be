//! Client commands of planning: `spares optimize`, `spares frontier` (jobs followed with a
//! progress bar) and `spares forecast FILE.csv` (local: forecasting is pure); each can
//! also write its full result as CSV tables (`--csv DIR`).

use super::client::{ClientError, Target, connect};
use super::table::Table;
use crate::pb;
use crate::planning::forecast::{ForecastSettings, SeriesForecast, SeriesInput, forecast_all};
use crate::planning::optimize::{OptimizeResult, PairedDifference, PlanEvaluation, money};
use std::collections::BTreeMap;
use std::path::Path;

/// Recommendation rows `spares optimize` prints.
const SHOWN_RECOMMENDATIONS: usize = 15;
/// Forecast rows `spares forecast` prints (all of them go to `--json`).
const SHOWN_FORECASTS: usize = 25;

/// `spares optimize`: starts the job, follows it, prints the comparison and levels.
pub async fn optimize(
    server: &Target,
    request: pb::OptimizeRequest,
    json: bool,
    csv: Option<&Path>,
) -> Result<String, ClientError> {
    let mut clients = connect(server).await?;
    let job = clients.planning.optimize(request).await?.into_inner();
    eprintln!("started {} (seed {})", job.job_id, job.seed);
    let done = super::jobs::follow(&mut clients.planning, job).await?;
    let mut text = super::jobs::render(&done, json)?;
    if !json {
        let result: OptimizeResult = serde_json::from_str(&done.result_json)
            .map_err(|e| ClientError::Usage(format!("unreadable result: {e}")))?;
        text = render_optimize(&done.job_id, &result);
    }
    if let Some(dir) = csv {
        text.push_str(&super::jobs::write_csv(&mut clients.planning, &done, dir).await?);
    }
    Ok(text)
}

fn percent(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{:.2}%", v * 100.0))
}

/// The comparison of plans as a table: out of sample, with the in-sample (training)
/// figures beside.
pub fn comparison_table(rows: &[PlanEvaluation]) -> String {
    let mut table = Table::new(&[
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
    ]);
    let optional = |v: Option<f64>| v.map_or("-".into(), money);
    for r in rows {
        table.row(vec![
            r.plan.clone(),
            money(r.investment_usd),
            percent(r.fill_rate),
            money(r.downtime_cost_mean),
            money(r.downtime_cost_p95),
            money(r.downtime_cost_p99),
            money(r.downtime_cost_cvar95),
            format!("{:.1}", r.emergency_shipments),
            optional(r.in_sample_mean),
            optional(r.in_sample_cvar95),
        ]);
    }
    table.render()
}

/// Paired differences (consequence minus each baseline) as a table.
pub fn paired_table(rows: &[PairedDifference]) -> String {
    let mut table = Table::new(&[
        "consequence -",
        "statistic",
        "difference",
        "95% interval",
        "significant",
    ]);
    for p in rows {
        table.row(vec![
            p.baseline.clone(),
            p.statistic.clone(),
            money(p.difference),
            format!("[{}, {}]", money(p.low), money(p.high)),
            if p.significant { "yes" } else { "no" }.to_string(),
        ]);
    }
    table.render()
}

fn render_optimize(job_id: &str, r: &OptimizeResult) -> String {
    let mut out = format!(
        "{job_id}: {} parts at {} part-locations ({:?} model, {} mode), {} training scenarios (seed {}); {:?} by {:?}{}, gap {:.2}%, solve {:.1} s\n",
        r.part_ids.len(),
        r.part_locations,
        r.model,
        r.mode.name(),
        r.scenarios,
        r.training_seed,
        r.status,
        r.method,
        r.backend
            .map(|b| format!(" ({})", b.name()))
            .unwrap_or_default(),
        r.gap * 100.0,
        r.solve_seconds
    );
    if let Some(budget) = r.budget_usd {
        out.push_str(&format!(
            "Budget {}; plan {}\n",
            money(budget),
            money(r.investment_usd)
        ));
    }
    if !r.change_summary.is_empty() {
        out.push_str(&format!("{}\n", r.change_summary));
    }
    if !r.unspent_reason.is_empty() {
        out.push_str(&format!(
            "Unspent {}: {}\n",
            money(r.unspent_usd),
            r.unspent_reason
        ));
    }
    if let Some(seed) = r.evaluation_seed {
        out.push_str(&format!(
            "\nOut of sample ({} replications, evaluation seed {seed}); downtime cost per replication:\n",
            crate::planning::optimize::EVALUATION_REPLICATIONS
        ));
        out.push_str(&comparison_table(&r.comparison));
        for row in r.comparison.iter().filter(|row| !row.note.is_empty()) {
            out.push_str(&format!("note: {}\n", row.note));
        }
        if !r.paired.is_empty() {
            out.push_str(&paired_table(&r.paired));
            out.push_str(&format!("Intervals: {}\n", r.interval_method));
        }
        out.push_str(&crate::planning::optimize::in_force_lines(r));
    }
    let mut table = Table::new(&["part", "location", "units", "averages", "metric", "why"]);
    for rec in r.recommendations.iter().take(SHOWN_RECOMMENDATIONS) {
        let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        table.row(vec![
            rec.part_id.clone(),
            rec.location_id.clone(),
            rec.order_up_to.to_string(),
            opt(rec.averages_order_up_to),
            opt(rec.metric_order_up_to),
            rec.explanation.clone(),
        ]);
    }
    let mut changes = Table::new(&["part", "location", "in force", "plan", "money"]);
    for c in r.changes.iter().take(SHOWN_RECOMMENDATIONS) {
        changes.row(vec![
            c.part_id.clone(),
            c.location_id.clone(),
            c.in_force.to_string(),
            c.recommended.to_string(),
            money(c.change_usd),
        ]);
    }
    if !changes.is_empty() {
        out.push_str(&format!(
            "\nLargest {} of {} changes against the plan in force:\n",
            SHOWN_RECOMMENDATIONS.min(r.changes.len()),
            r.changes.len()
        ));
        out.push_str(&changes.render());
    }
    if !table.is_empty() {
        out.push_str(&format!(
            "\nTop {} of {} levels by money held:\n",
            SHOWN_RECOMMENDATIONS.min(r.recommendations.len()),
            r.recommendations.len()
        ));
        out.push_str(&table.render());
    }
    out
}

/// `spares frontier`: starts the job, follows it, prints its table.
pub async fn frontier(
    server: &Target,
    request: pb::FrontierRequest,
    json: bool,
    csv: Option<&Path>,
) -> Result<String, ClientError> {
    let mut clients = connect(server).await?;
    let job = clients.planning.frontier(request).await?.into_inner();
    eprintln!("started {}", job.job_id);
    let done = super::jobs::follow(&mut clients.planning, job).await?;
    let mut text = super::jobs::render(&done, json)?;
    if let Some(dir) = csv {
        text.push_str(&super::jobs::write_csv(&mut clients.planning, &done, dir).await?);
    }
    Ok(text)
}

/// Whether a wide-format header names a period: 2001-03, 2001-03-01, w001, t12.
fn is_period_column(name: &str) -> bool {
    let name = name.trim();
    let dated = name.len() >= 7
        && name.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && name.as_bytes()[4] == b'-';
    let numbered = name.len() >= 2
        && matches!(name.as_bytes()[0], b'w' | b't' | b'W' | b'T')
        && name[1..].bytes().all(|b| b.is_ascii_digit());
    dated || numbered
}

/// Reads demand series from CSV text: the long format of `spares import`
/// (`part_id,location_id,period,period_start,quantity`) or the wide format of the public
/// data sets (an id column, optional attribute columns, then one column per period; empty
/// cells at the end of a row mean the series ended). Errors name the line and column.
pub fn parse_series(text: &str) -> Result<Vec<SeriesInput>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("header: {e}"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let rows = reader.records().enumerate().map(|(i, r)| {
        r.map_err(|e| format!("line {}: {e}", i + 2))
            .map(|r| (i + 2, r))
    });
    if let (Some(part), Some(quantity)) = (column("part_id"), column("quantity")) {
        let location = column("location_id");
        let order = column("period_start");
        let mut series: BTreeMap<(String, String), Vec<(String, f64)>> = BTreeMap::new();
        for row in rows {
            let (line, record) = row?;
            let get = |c: usize| record.get(c).unwrap_or("").trim().to_string();
            let q: f64 = get(quantity)
                .parse()
                .map_err(|_| format!("line {line}, quantity: not a number"))?;
            series
                .entry((get(part), location.map(get).unwrap_or_default()))
                .or_default()
                .push((order.map(get).unwrap_or_default(), q));
        }
        return Ok(series
            .into_iter()
            .map(|((part_id, location_id), mut rows)| {
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                SeriesInput {
                    part_id,
                    location_id,
                    quantities: rows.into_iter().map(|(_, q)| q).collect(),
                }
            })
            .collect());
    }
    let periods: Vec<usize> = (0..header.len())
        .filter(|&c| is_period_column(&header[c]))
        .collect();
    if periods.is_empty() {
        return Err(
            "no period columns (2001-03, w001, t01) and no part_id/quantity columns".into(),
        );
    }
    let mut out = Vec::new();
    for row in rows {
        let (line, record) = row?;
        let cells: Vec<&str> = periods
            .iter()
            .map(|&c| record.get(c).unwrap_or("").trim())
            .collect();
        let used = cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |p| p + 1);
        let quantities = cells[..used]
            .iter()
            .enumerate()
            .map(|(k, c)| {
                if c.is_empty() {
                    return Ok(0.0);
                }
                c.parse::<f64>().map_err(|_| {
                    format!("line {line}, column {}: not a number", header[periods[k]])
                })
            })
            .collect::<Result<Vec<f64>, String>>()?;
        if quantities.is_empty() {
            continue;
        }
        out.push(SeriesInput {
            part_id: record.get(0).unwrap_or("").trim().to_string(),
            location_id: String::new(),
            quantities,
        });
    }
    Ok(out)
}

/// `spares forecast FILE.csv`: forecasts every series of the file locally.
pub fn forecast_file(
    path: &Path,
    settings: &ForecastSettings,
    json: bool,
    csv: Option<&Path>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let series = parse_series(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let forecasts = forecast_all(&series, settings).map_err(|e| e.to_string())?;
    let mut out = if json {
        serde_json::to_string_pretty(&forecasts)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())?
    } else {
        render_forecasts(&forecasts, settings.lead_time_periods > 0)
    };
    if let Some(dir) = csv {
        let all = serde_json::to_string(&forecasts).map_err(|e| e.to_string())?;
        out.push_str(&super::csv_tables::save(dir, "forecasts", &all)?);
    }
    Ok(out)
}

fn render_forecasts(forecasts: &[SeriesForecast], lead_time: bool) -> String {
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for f in forecasts {
        let class = f
            .demand_class
            .map_or("no demand".to_string(), |c| format!("{c:?}").to_lowercase());
        *classes.entry(class).or_default() += 1;
    }
    let mut out = format!("{} series:", forecasts.len());
    for (class, n) in &classes {
        out.push_str(&format!(" {class} {n},"));
    }
    out.pop();
    out.push('\n');
    let mut header = vec![
        "series",
        "location",
        "periods",
        "class",
        "ADI",
        "CV2",
        "method",
        "per period",
    ];
    if lead_time {
        header.extend(["LTD p50", "LTD p90", "LTD p99"]);
    }
    let mut table = Table::new(&header);
    for f in forecasts.iter().take(SHOWN_FORECASTS) {
        let mut row = vec![
            f.part_id.clone(),
            f.location_id.clone(),
            f.periods.to_string(),
            f.demand_class
                .map_or("-".into(), |c| format!("{c:?}").to_lowercase()),
            format!("{:.2}", f.average_demand_interval),
            format!("{:.2}", f.size_cv_squared),
            f.method
                .map_or("-".into(), |m| format!("{m:?}").to_lowercase()),
            format!("{:.4}", f.demand_per_period),
        ];
        if let Some([a, b, c]) = f.lead_time_demand_quantiles {
            row.extend([a.to_string(), b.to_string(), c.to_string()]);
        }
        table.row(row);
    }
    out.push_str(&table.render());
    if forecasts.len() > SHOWN_FORECASTS {
        out.push_str(&format!(
            "... {} more (use --json for all)\n",
            forecasts.len() - SHOWN_FORECASTS
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_the_wide_format_with_attributes_and_ragged_ends() {
        let text = "item_id,description,lead_time_months,1996-01,1996-02,1996-03\nA,x,3,0,2,\nB,y,4,1,,0\n";
        let series = parse_series(text).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].part_id, "A");
        assert_eq!(series[0].quantities, vec![0.0, 2.0]);
        assert_eq!(series[1].quantities, vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn reads_the_long_format_in_period_order() {
        let text = "part_id,location_id,period,period_start,quantity\nP,S,month,2024-02-01,3\nP,S,month,2024-01-01,1\n";
        let series = parse_series(text).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].location_id, "S");
        assert_eq!(series[0].quantities, vec![1.0, 3.0]);
    }

    #[test]
    fn a_bad_cell_names_line_and_column() {
        let text = "sku,w001,w002\nA,1,x\n";
        let e = parse_series(text).unwrap_err();
        assert!(e.contains("line 2") && e.contains("w002"), "{e}");
    }
}
