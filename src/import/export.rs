//! Export: writes a bundle as the same CSV or JSON files the importer reads, so
//! export followed by import gives back equal data.

use super::values::*;
use super::{FILES, ImportBundle, ImportError};
use crate::domain::network::{DemandSeries, Lane, LeadTime, Location, Part, Period, TransitTime};
use jiff::ToSpan;
use serde_json::{Map, Value};
use std::path::Path;

/// Columns written as JSON numbers; every other non-empty cell is a string.
const NUMERIC: &[&str] = &[
    "latitude_deg",
    "longitude_deg",
    "handling_minutes",
    "transit_hours_p50",
    "transit_hours_p90",
    "cost_per_unit_usd",
    "unit_cost_usd",
    "on_hand",
    "downtime_cost_usd_per_hour",
    "units_per_machine",
    "attach_rate",
    "failures_per_million_operating_hours",
    "weibull_shape",
    "machine_count",
    "usage_hours_per_day",
    "average_age_hours",
    "quantity",
    "order_up_to",
    "reorder_point",
    "order_quantity",
    "protected_quantity",
    "supplier_lead_time_days_p50",
    "supplier_lead_time_days_p90",
    "lead_time_days_p50",
    "lead_time_days_p90",
    "failures_per_day",
    "variance_to_mean_ratio",
];

/// A file's rows as text cells in the order of its column list (required, then optional).
struct Sheet {
    stem: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Sheet {
    fn new(stem: &'static str) -> Self {
        let headers = FILES
            .iter()
            .find(|(name, _)| *name == stem)
            .map(|(_, c)| c.required.iter().chain(c.optional).copied().collect())
            .unwrap_or_default();
        Self {
            stem,
            headers,
            rows: Vec::new(),
        }
    }

    /// Adds a row given as (column, value) pairs; columns not given are empty.
    fn push(&mut self, cells: &[(&str, String)]) {
        let row = self
            .headers
            .iter()
            .map(|h| {
                cells
                    .iter()
                    .find(|(name, _)| name == h)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        self.rows.push(row);
    }

    /// [`Sheet::push`] with owned column names.
    fn push_owned(&mut self, cells: &[(String, String)]) {
        let borrowed: Vec<(&str, String)> =
            cells.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        self.push(&borrowed);
    }
}

fn location_row(l: &Location) -> Vec<(&'static str, String)> {
    vec![
        ("id", l.id.clone()),
        ("name", l.name.clone()),
        ("kind", location_kind_name(l.kind).into()),
        ("latitude_deg", l.latitude_deg.to_string()),
        ("longitude_deg", l.longitude_deg.to_string()),
        ("time_zone", l.time_zone.clone()),
        ("working_days", weekdays_text(&l.calendar.working_days)),
        ("opens_local", time_text(l.calendar.opens_local)),
        ("closes_local", time_text(l.calendar.closes_local)),
        ("holidays", join(&l.calendar.holidays)),
        ("order_cutoff_local", time_text(l.order_cutoff_local)),
        ("handling_minutes", l.handling_minutes.to_string()),
        (
            "replenishment_source_id",
            l.replenishment_source.clone().unwrap_or_default(),
        ),
        ("country_code", l.country_code.clone()),
    ]
}

fn lane_row(l: &Lane) -> Vec<(&'static str, String)> {
    let mut row = vec![
        ("from", l.from.clone()),
        ("to", l.to.clone()),
        ("mode", mode_name(l.mode).into()),
        ("kind", lane_kind_name(l.kind).into()),
        ("cost_per_unit_usd", l.cost_per_unit_usd.to_string()),
    ];
    match &l.transit {
        TransitTime::Fixed { transit_hours } => {
            row.push(("transit_hours_p50", transit_hours.to_string()));
            row.push(("transit_hours_p90", transit_hours.to_string()));
        }
        TransitTime::Lognormal {
            transit_hours_p50,
            transit_hours_p90,
        } => {
            row.push(("transit_hours_p50", transit_hours_p50.to_string()));
            row.push(("transit_hours_p90", transit_hours_p90.to_string()));
        }
        TransitTime::Empirical {
            transit_hours_samples,
        } => {
            row.push(("transit_hours_samples", join(transit_hours_samples)));
        }
    }
    if let Some(schedule) = &l.schedule {
        row.push(("departure_days", weekdays_text(&schedule.days)));
        row.push((
            "departures_local",
            join(schedule.departures_local.iter().map(|t| time_text(*t))),
        ));
    }
    row
}

fn demand_rows(sheet: &mut Sheet, series: &DemandSeries) -> Result<(), ImportError> {
    for (i, quantity) in series.quantities.iter().enumerate() {
        let i = i as i64;
        let offset = match series.period {
            Period::Day => i.days(),
            Period::Week => i.weeks(),
            Period::Month => i.months(),
        };
        let start = series
            .first_period_start
            .checked_add(offset)
            .map_err(|e| export_error("demand.csv", e))?;
        sheet.push(&[
            ("part_id", series.part_id.clone()),
            ("location_id", series.location_id.clone()),
            ("period", period_name(series.period).into()),
            ("period_start", start.to_string()),
            ("quantity", quantity.to_string()),
        ]);
    }
    Ok(())
}

fn export_error(stem: &str, error: impl std::fmt::Display) -> ImportError {
    ImportError::new(stem, 0, 0, format!("cannot export: {error}"))
}

/// Every file of the bundle as rows of text, in the order of `FILES`.
fn sheets(bundle: &ImportBundle) -> Result<Vec<Sheet>, ImportError> {
    let [locations, lanes, parts] = master_sheets(bundle);
    let [stock, models, model_parts, fleets] = installed_base_sheets(bundle);
    let mut demand = Sheet::new("demand");
    for series in &bundle.demand {
        demand_rows(&mut demand, series)?;
    }
    let policies = policy_sheet(bundle);
    let [lead_times, class_costs, rates] = input_sheets(bundle);
    Ok(vec![
        locations,
        lanes,
        parts,
        stock,
        models,
        model_parts,
        fleets,
        demand,
        policies,
        lead_times,
        class_costs,
        rates,
    ])
}

/// A lead time as the cells `<prefix>_p50`, `<prefix>_p90`, `<prefix>_samples`.
fn lead_time_cells(prefix: &str, lead: &LeadTime) -> Vec<(String, String)> {
    let cell = |suffix: &str, value: String| (format!("{prefix}_{suffix}"), value);
    match lead {
        LeadTime::Fixed { lead_time_days } => vec![
            cell("p50", lead_time_days.to_string()),
            cell("p90", lead_time_days.to_string()),
        ],
        LeadTime::Lognormal {
            lead_time_days_p50,
            lead_time_days_p90,
        } => vec![
            cell("p50", lead_time_days_p50.to_string()),
            cell("p90", lead_time_days_p90.to_string()),
        ],
        LeadTime::Empirical {
            lead_time_days_samples,
        } => vec![cell("samples", join(lead_time_days_samples))],
    }
}

fn part_row(p: &Part) -> Vec<(String, String)> {
    let mut row: Vec<(String, String)> = [
        ("id", p.id.clone()),
        ("description", p.description.clone()),
        ("unit_cost_usd", p.unit_cost_usd.to_string()),
        ("criticality", criticality_name(p.criticality).into()),
        ("kind", part_kind_name(p.repairable).into()),
        ("successor_part_id", p.successor.clone().unwrap_or_default()),
        (
            "interchangeability",
            interchangeability_name(p.interchangeability).into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(lead) = &p.supplier_lead_time {
        row.extend(lead_time_cells("supplier_lead_time_days", lead));
    }
    if let Some(cost) = p.downtime_cost_usd_per_hour {
        row.push(("downtime_cost_usd_per_hour".into(), cost.to_string()));
    }
    row
}

fn input_sheets(bundle: &ImportBundle) -> [Sheet; 3] {
    let mut lead_times = Sheet::new("supplier_lead_times");
    for s in &bundle.supplier_lead_times {
        let mut row = vec![
            ("part_id".to_string(), s.part_id.clone()),
            ("location_id".to_string(), s.location_id.clone()),
        ];
        row.extend(lead_time_cells("lead_time_days", &s.lead_time));
        lead_times.push_owned(&row);
    }
    let mut class_costs = Sheet::new("criticality_costs");
    for c in &bundle.criticality_costs {
        class_costs.push(&[
            ("criticality", criticality_name(c.criticality).into()),
            (
                "downtime_cost_usd_per_hour",
                c.downtime_cost_usd_per_hour.to_string(),
            ),
        ]);
    }
    let mut rates = Sheet::new("demand_rates");
    for r in &bundle.demand_rates {
        rates.push(&[
            ("part_id", r.part_id.clone()),
            ("location_id", r.location_id.clone()),
            ("failures_per_day", r.failures_per_day.to_string()),
            (
                "variance_to_mean_ratio",
                r.variance_to_mean_ratio.to_string(),
            ),
        ]);
    }
    [lead_times, class_costs, rates]
}

fn master_sheets(bundle: &ImportBundle) -> [Sheet; 3] {
    let mut locations = Sheet::new("locations");
    bundle
        .locations
        .iter()
        .for_each(|l| locations.push(&location_row(l)));
    let mut lanes = Sheet::new("lanes");
    bundle.lanes.iter().for_each(|l| lanes.push(&lane_row(l)));
    let mut parts = Sheet::new("parts");
    for p in &bundle.parts {
        parts.push_owned(&part_row(p));
    }
    [locations, lanes, parts]
}

fn installed_base_sheets(bundle: &ImportBundle) -> [Sheet; 4] {
    let mut stock = Sheet::new("stock");
    for s in &bundle.stock {
        stock.push(&[
            ("part_id", s.part_id.clone()),
            ("location_id", s.location_id.clone()),
            ("on_hand", s.on_hand.to_string()),
        ]);
    }
    let mut models = Sheet::new("machine_models");
    let mut model_parts = Sheet::new("model_parts");
    for m in &bundle.machine_models {
        models.push(&[
            ("id", m.id.clone()),
            ("name", m.name.clone()),
            (
                "downtime_cost_usd_per_hour",
                m.downtime_cost_usd_per_hour.to_string(),
            ),
        ]);
        for p in &m.parts {
            model_parts.push(&[
                ("machine_model_id", m.id.clone()),
                ("part_id", p.part_id.clone()),
                ("units_per_machine", p.units_per_machine.to_string()),
                ("attach_rate", p.attach_rate.to_string()),
                (
                    "failures_per_million_operating_hours",
                    p.failures_per_million_operating_hours.to_string(),
                ),
                ("weibull_shape", p.weibull_shape.to_string()),
            ]);
        }
    }
    let mut fleets = Sheet::new("fleets");
    for f in &bundle.fleets {
        fleets.push(&[
            ("store_location_id", f.store_location_id.clone()),
            ("machine_model_id", f.machine_model_id.clone()),
            ("machine_count", f.machine_count.to_string()),
            ("usage_hours_per_day", f.usage_hours_per_day.to_string()),
            ("average_age_hours", f.average_age_hours.to_string()),
        ]);
    }
    [stock, models, model_parts, fleets]
}

fn policy_sheet(bundle: &ImportBundle) -> Sheet {
    let mut policies = Sheet::new("policies");
    for p in &bundle.policies {
        policies.push(&[
            ("part_id", p.part_id.clone()),
            ("location_id", p.location_id.clone()),
            ("kind", policy_kind_name(p.kind).into()),
            ("order_up_to", p.order_up_to.to_string()),
            ("reorder_point", p.reorder_point.to_string()),
            ("order_quantity", p.order_quantity.to_string()),
            ("protected_quantity", p.protected_quantity.to_string()),
            ("source", p.source.clone()),
        ]);
    }
    policies
}

/// The bundle as CSV files: `(file name, text)` for every file kind, header
/// included even when there are no rows.
///
/// Errors: a demand series whose dates run past jiff's range (line 0).
pub fn to_csv_files(bundle: &ImportBundle) -> Result<Vec<(String, String)>, ImportError> {
    sheets(bundle)?
        .into_iter()
        .map(|sheet| {
            let name = format!("{}.csv", sheet.stem);
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer
                .write_record(&sheet.headers)
                .map_err(|e| export_error(&name, e))?;
            for row in &sheet.rows {
                writer
                    .write_record(row)
                    .map_err(|e| export_error(&name, e))?;
            }
            let bytes = writer.into_inner().map_err(|e| export_error(&name, e))?;
            let text = String::from_utf8(bytes).map_err(|e| export_error(&name, e))?;
            Ok((name, text))
        })
        .collect()
}

/// The bundle as JSON files: an array of row objects per file kind, one object per
/// line; empty cells are left out and numeric columns are JSON numbers.
///
/// Errors: as [`to_csv_files`].
pub fn to_json_files(bundle: &ImportBundle) -> Result<Vec<(String, String)>, ImportError> {
    sheets(bundle)?
        .into_iter()
        .map(|sheet| {
            let name = format!("{}.json", sheet.stem);
            let mut lines = Vec::with_capacity(sheet.rows.len());
            for row in &sheet.rows {
                let mut object = Map::new();
                for (header, cell) in sheet.headers.iter().zip(row) {
                    if cell.is_empty() {
                        continue;
                    }
                    let value = match NUMERIC.contains(header) {
                        true => serde_json::from_str::<Value>(cell)
                            .map_err(|e| export_error(&name, e))?,
                        false => Value::String(cell.clone()),
                    };
                    object.insert((*header).to_string(), value);
                }
                lines.push(Value::Object(object).to_string());
            }
            let text = match lines.is_empty() {
                true => "[]\n".to_string(),
                false => format!("[\n{}\n]\n", lines.join(",\n")),
            };
            Ok((name, text))
        })
        .collect()
}

/// Output format of [`export_dir`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `NAME.csv` files.
    Csv,
    /// `NAME.json` files.
    Json,
}

/// Writes the bundle into `dir` (created if needed) as one file per kind.
///
/// Errors: the directory or a file cannot be written (line 0).
pub fn export_dir(
    bundle: &ImportBundle,
    dir: &Path,
    format: FileFormat,
) -> Result<(), ImportError> {
    let files = match format {
        FileFormat::Csv => to_csv_files(bundle)?,
        FileFormat::Json => to_json_files(bundle)?,
    };
    std::fs::create_dir_all(dir).map_err(|e| export_error(&dir.display().to_string(), e))?;
    for (name, text) in files {
        std::fs::write(dir.join(&name), text).map_err(|e| export_error(&name, e))?;
    }
    Ok(())
}
