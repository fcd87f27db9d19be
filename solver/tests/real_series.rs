//! Forecasts on real intermittent series from the shared training data (skips when absent).

// Test helpers may panic on malformed fixture files; that is a test failure, as wanted.
#![allow(clippy::unwrap_used)]

use spares_solver::forecast::{
    ForecastMethod, bootstrap_lead_time_demand, classify, forecast, quantile, recommended_method,
};
use std::path::PathBuf;

/// The shared data folder beside the repository.
fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data"))
}

/// Reads series from a wide CSV (id column, then one column per month; empty cell = missing),
/// keeping those with no missing value once trailing gaps are cut.
fn read_series(path: &PathBuf, skip_columns: usize, limit: usize) -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let header_cells = text.lines().next().map_or(0, |h| h.split(',').count());
    let months = header_cells - 1 - skip_columns;
    for line in text.lines().skip(1) {
        // Month cells are the last `months` cells, so a quoted description holding a comma
        // cannot shift them.
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() < months + 1 {
            continue;
        }
        let mut values: Vec<&str> = cells[cells.len() - months..].to_vec();
        while values.last().is_some_and(|v| v.trim().is_empty()) {
            values.pop();
        }
        let parsed: Option<Vec<f64>> = values
            .iter()
            .map(|v| v.trim().parse::<f64>().ok())
            .collect();
        if let Some(series) = parsed.filter(|s| s.len() >= 24 && s.iter().any(|y| *y > 0.0)) {
            out.push((cells[0].to_string(), series));
        }
        if out.len() == limit {
            break;
        }
    }
    out
}

#[test]
fn carparts_series_forecast_and_classify() {
    let path = data_dir().join("carparts/carparts_monthly_train.csv");
    if !path.exists() {
        println!("skipped: {} not found (shared data absent)", path.display());
        return;
    }
    let series = read_series(&path, 0, 200);
    assert!(series.len() >= 100, "only {} usable series", series.len());
    let mut classes = std::collections::BTreeMap::new();
    for (id, y) in &series {
        let class = classify(y).unwrap();
        *classes.entry(format!("{:?}", class.class)).or_insert(0) += 1;
        let croston = forecast(y, ForecastMethod::Croston, 0.1, 0.1).unwrap();
        let sba = forecast(y, ForecastMethod::Sba, 0.1, 0.1).unwrap();
        let tsb = forecast(y, ForecastMethod::Tsb, 0.1, 0.1).unwrap();
        let peak = y.iter().cloned().fold(0.0, f64::max);
        for f in [croston, sba, tsb] {
            assert!(
                f.per_period.is_finite() && f.per_period >= 0.0 && f.per_period <= peak,
                "{id}: {f:?}"
            );
        }
        assert!(sba.per_period < croston.per_period, "{id}");
        let method = recommended_method(class.class);
        assert!(forecast(y, method, 0.1, 0.1).is_ok());
    }
    println!("carparts: {} series, classes {classes:?}", series.len());
    // Most car-parts series are intermittent or lumpy (about 71% of cells are zero).
    let sparse = classes.get("Intermittent").unwrap_or(&0) + classes.get("Lumpy").unwrap_or(&0);
    assert!(sparse * 2 > series.len(), "{classes:?}");
}

#[test]
fn raf_series_bootstrap_lead_time_demand() {
    let path = data_dir().join("raf_spares/raf_spares_monthly_train.csv");
    if !path.exists() {
        println!("skipped: {} not found (shared data absent)", path.display());
        return;
    }
    // Columns: item_id, description, lead_time_months, price_gbp, then months.
    let series = read_series(&path, 3, 20);
    assert!(!series.is_empty());
    for (id, y) in series.iter().take(5) {
        let samples = bootstrap_lead_time_demand(y, 3, 5000, 42).unwrap();
        let (p50, p90, p99) = (
            quantile(&samples, 0.5).unwrap(),
            quantile(&samples, 0.9).unwrap(),
            quantile(&samples, 0.99).unwrap(),
        );
        assert!(p50 <= p90 && p90 <= p99, "{id}");
        let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64;
        let history_rate = y.iter().sum::<f64>() / y.len() as f64;
        // The bootstrap mean tracks three months of history, plus the jitter's upward bias.
        assert!(
            mean >= 0.5 * 3.0 * history_rate && mean <= 3.0 * history_rate + 3.0 * 1.5 + 1.0,
            "{id}: {mean} vs {history_rate}"
        );
        println!(
            "raf {id}: 3-month lead-time demand p50 {p50} p90 {p90} p99 {p99} (history {:.2}/month)",
            history_rate
        );
    }
}
