//! Row parsers: one function per file kind turns a [`Table`] into domain values,
//! each with the line it came from so later validation errors can point back.

use super::ImportError;
use super::StockRow;
use super::table::{Cells, Table};
use super::values::*;
use crate::domain::network::{
    BusinessCalendar, DemandSeries, DepartureSchedule, Fleet, Interchangeability, Lane, Location,
    MachineModel, ModelPart, Part, Period, Policy, TransitTime, WeekdayName,
};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Longest demand series accepted, in periods: 10,000 covers 27 years of days; a
/// longer one is almost surely a misdated row that would allocate a huge gap.
pub const MAX_DEMAND_PERIODS: usize = 10_000;

/// Values parsed from a table, each with its 1-based line.
pub(crate) type Lined<T> = Vec<(u64, T)>;

/// Parses every row, reporting every row that fails (up to the import's
/// error bound), not only the first.
pub(crate) fn each<T>(
    table: &Table,
    mut parse: impl FnMut(&Cells<'_>) -> Result<T, ImportError>,
) -> Result<Lined<T>, ImportError> {
    let mut values = Vec::with_capacity(table.rows.len());
    let mut errors = Vec::new();
    for row in &table.rows {
        match parse(&table.cells(row)) {
            Ok(value) => values.push((row.line, value)),
            Err(error) => {
                errors.push(error);
                if errors.len() >= super::MAX_IMPORT_ERRORS {
                    break;
                }
            }
        }
    }
    match ImportError::collect(errors) {
        Some(error) => Err(error),
        None => Ok(values),
    }
}

/// Rejects a key seen before, naming the row and `column`.
fn unique<K: std::hash::Hash + Eq>(
    seen: &mut HashSet<K>,
    key: K,
    cells: &Cells<'_>,
    column: &str,
    what: &str,
) -> Result<(), ImportError> {
    if seen.insert(key) {
        Ok(())
    } else {
        Err(cells.error(column, format!("duplicate {what}")))
    }
}

fn time_or(cells: &Cells<'_>, column: &str, hour: i8, minute: i8) -> Result<Time, ImportError> {
    cells.with_or(column, Time::constant(hour, minute, 0, 0), parse_time)
}

/// `locations`: one row per location.
pub(crate) fn locations(table: &Table) -> Result<Lined<Location>, ImportError> {
    each(table, |c| {
        let time_zone = c.with("time_zone", |tz| {
            TimeZone::get(tz)
                .map(|_| tz.to_string())
                .map_err(|_| format!("{tz:?} is not an IANA time zone"))
        })?;
        Ok(Location {
            id: c.required("id")?.to_string(),
            name: c.optional("name").unwrap_or_default().to_string(),
            kind: c.with("kind", parse_location_kind)?,
            latitude_deg: c.number("latitude_deg")?,
            longitude_deg: c.number("longitude_deg")?,
            time_zone,
            calendar: BusinessCalendar {
                working_days: c.with_or(
                    "working_days",
                    WeekdayName::monday_to_friday(),
                    parse_weekdays,
                )?,
                opens_local: time_or(c, "opens_local", 8, 0)?,
                closes_local: time_or(c, "closes_local", 17, 0)?,
                holidays: c.with_or("holidays", BTreeSet::new(), parse_dates)?,
            },
            order_cutoff_local: time_or(c, "order_cutoff_local", 16, 0)?,
            handling_minutes: c.whole_or("handling_minutes", 0)?,
            replenishment_source: c.optional("replenishment_source_id").map(str::to_string),
            country_code: c.optional("country_code").unwrap_or_default().to_string(),
        })
    })
}

fn transit(c: &Cells<'_>) -> Result<TransitTime, ImportError> {
    if let Some(text) = c.optional("transit_hours_samples") {
        for column in ["transit_hours_p50", "transit_hours_p90"] {
            if c.optional(column).is_some() {
                return Err(c.error(column, "leave empty when transit_hours_samples is given"));
            }
        }
        let mut samples = parse_numbers(text).map_err(|m| c.error("transit_hours_samples", m))?;
        samples.sort_by(f64::total_cmp);
        return Ok(TransitTime::Empirical {
            transit_hours_samples: samples,
        });
    }
    let p50 = c.number("transit_hours_p50")?;
    let p90 = c.optional_number("transit_hours_p90")?.unwrap_or(p50);
    Ok(if p90 == p50 {
        TransitTime::Fixed { transit_hours: p50 }
    } else {
        TransitTime::Lognormal {
            transit_hours_p50: p50,
            transit_hours_p90: p90,
        }
    })
}

/// `lanes`: one row per (from, to, mode, kind).
pub(crate) fn lanes(table: &Table) -> Result<Lined<Lane>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let lane = Lane {
            from: c.required("from")?.to_string(),
            to: c.required("to")?.to_string(),
            mode: c.with("mode", parse_mode)?,
            kind: c.with("kind", parse_lane_kind)?,
            transit: transit(c)?,
            schedule: match c.optional("departures_local") {
                None => {
                    if c.optional("departure_days").is_some() {
                        return Err(c.error("departures_local", "needed with departure_days"));
                    }
                    None
                }
                Some(_) => Some(DepartureSchedule {
                    days: c.with_or("departure_days", BTreeSet::new(), parse_weekdays)?,
                    departures_local: {
                        let mut times = c.with("departures_local", parse_times)?;
                        times.sort();
                        times
                    },
                }),
            },
            cost_per_unit_usd: c.number("cost_per_unit_usd")?,
        };
        unique(
            &mut seen,
            lane.key(),
            c,
            "kind",
            "lane (from, to, mode, kind)",
        )?;
        Ok(lane)
    })
}

/// `parts`: one row per part number.
pub(crate) fn parts(table: &Table) -> Result<Lined<Part>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let id = c.required("id")?.to_string();
        unique(&mut seen, id.clone(), c, "id", "part id")?;
        Ok(Part {
            id,
            description: c.optional("description").unwrap_or_default().to_string(),
            unit_cost_usd: c.number("unit_cost_usd")?,
            criticality: c.with("criticality", parse_criticality)?,
            repairable: c.with("kind", parse_part_kind)?,
            successor: c.optional("successor_part_id").map(str::to_string),
            interchangeability: c.with_or(
                "interchangeability",
                Interchangeability::ForwardOnly,
                parse_interchangeability,
            )?,
            supplier_lead_time: super::inputs::lead_time(c, "supplier_lead_time_days")?,
            downtime_cost_usd_per_hour: super::inputs::downtime_cost(
                c,
                "downtime_cost_usd_per_hour",
            )?,
        })
    })
}

/// Checks that `column` names a known id.
fn known(
    c: &Cells<'_>,
    column: &str,
    ids: &HashSet<&str>,
    what: &str,
) -> Result<String, ImportError> {
    let id = c.required(column)?;
    if ids.contains(id) {
        Ok(id.to_string())
    } else {
        Err(c.error(column, format!("unknown {what} {id:?}")))
    }
}

/// `machine_models` and `model_parts`: models with their parts. Returns the
/// models and, per model, the lines of its parts (for mapping validation errors).
pub(crate) fn machine_models(
    models: &Table,
    model_parts: &Table,
    part_ids: &HashSet<&str>,
) -> Result<(Lined<MachineModel>, Vec<Vec<u64>>), ImportError> {
    let mut seen = HashSet::new();
    let mut parsed = each(models, |c| {
        let id = c.required("id")?.to_string();
        unique(&mut seen, id.clone(), c, "id", "machine model id")?;
        Ok(MachineModel {
            name: c.optional("name").unwrap_or_default().to_string(),
            downtime_cost_usd_per_hour: c.number("downtime_cost_usd_per_hour")?,
            parts: Vec::new(),
            id,
        })
    })?;
    let index: BTreeMap<String, usize> = parsed
        .iter()
        .enumerate()
        .map(|(i, (_, m))| (m.id.clone(), i))
        .collect();
    let model_ids: HashSet<&str> = index.keys().map(String::as_str).collect();
    let mut part_lines = vec![Vec::new(); parsed.len()];
    let mut pairs = HashSet::new();
    for row in &model_parts.rows {
        let c = model_parts.cells(row);
        let model_id = known(&c, "machine_model_id", &model_ids, "machine model")?;
        let part_id = known(&c, "part_id", part_ids, "part")?;
        unique(
            &mut pairs,
            (model_id.clone(), part_id.clone()),
            &c,
            "part_id",
            "part for this model",
        )?;
        let model_part = ModelPart {
            part_id,
            units_per_machine: c.whole("units_per_machine")?,
            attach_rate: c.optional_number("attach_rate")?.unwrap_or(1.0),
            failures_per_million_operating_hours: c
                .number("failures_per_million_operating_hours")?,
            weibull_shape: c.optional_number("weibull_shape")?.unwrap_or(1.0),
        };
        if let Some(&i) = index.get(&model_id) {
            parsed[i].1.parts.push(model_part);
            part_lines[i].push(row.line);
        }
    }
    Ok((parsed, part_lines))
}

/// `fleets`: one row per (store, machine model).
pub(crate) fn fleets(table: &Table) -> Result<Lined<Fleet>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let fleet = Fleet {
            store_location_id: c.required("store_location_id")?.to_string(),
            machine_model_id: c.required("machine_model_id")?.to_string(),
            machine_count: c.whole("machine_count")?,
            usage_hours_per_day: c.number("usage_hours_per_day")?,
            average_age_hours: c.optional_number("average_age_hours")?.unwrap_or(0.0),
        };
        let key = (
            fleet.store_location_id.clone(),
            fleet.machine_model_id.clone(),
        );
        unique(
            &mut seen,
            key,
            c,
            "machine_model_id",
            "fleet (store, model)",
        )?;
        Ok(fleet)
    })
}

/// `stock`: one row per (part, location) with the quantity on hand.
pub(crate) fn stock(
    table: &Table,
    part_ids: &HashSet<&str>,
    location_ids: &HashSet<&str>,
) -> Result<Lined<StockRow>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let row = StockRow {
            part_id: known(c, "part_id", part_ids, "part")?,
            location_id: known(c, "location_id", location_ids, "location")?,
            on_hand: c.quantity("on_hand")?,
            at: (c.line(), table.column_of("on_hand")),
        };
        let key = (row.part_id.clone(), row.location_id.clone());
        unique(
            &mut seen,
            key,
            c,
            "location_id",
            "stock row for this part and location",
        )?;
        Ok(row)
    })
}

/// `policies`: one row per (part, location).
pub(crate) fn policies(
    table: &Table,
    part_ids: &HashSet<&str>,
    location_ids: &HashSet<&str>,
) -> Result<Lined<Policy>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let policy = Policy {
            part_id: known(c, "part_id", part_ids, "part")?,
            location_id: known(c, "location_id", location_ids, "location")?,
            kind: c.with("kind", parse_policy_kind)?,
            order_up_to: c.whole("order_up_to")?,
            reorder_point: c.whole_or("reorder_point", 0)?,
            order_quantity: c.whole_or("order_quantity", 0)?,
            protected_quantity: c.whole_or("protected_quantity", 0)?,
            source: c.optional("source").unwrap_or_default().to_string(),
        };
        let key = (policy.part_id.clone(), policy.location_id.clone());
        unique(
            &mut seen,
            key,
            c,
            "location_id",
            "policy for this part and location",
        )?;
        Ok(policy)
    })
}

struct DemandRow {
    line: u64,
    period: Period,
    start: Date,
    quantity: u64,
}

/// `demand`: long format, one row per (part, location, period). Rows of a series
/// may come in any order; periods without a row are zero. Series come out sorted
/// by (part, location).
pub(crate) fn demand(
    table: &Table,
    part_ids: &HashSet<&str>,
    location_ids: &HashSet<&str>,
) -> Result<Lined<DemandSeries>, ImportError> {
    let mut groups: BTreeMap<(String, String), Vec<DemandRow>> = BTreeMap::new();
    for row in &table.rows {
        let c = table.cells(row);
        let key = (
            known(&c, "part_id", part_ids, "part")?,
            known(&c, "location_id", location_ids, "location")?,
        );
        groups.entry(key).or_default().push(DemandRow {
            line: row.line,
            period: c.with("period", parse_period)?,
            start: c.with("period_start", parse_date)?,
            quantity: c.whole("quantity")?,
        });
    }
    groups
        .into_iter()
        .map(|((part_id, location_id), rows)| {
            let line = rows.iter().map(|r| r.line).min().unwrap_or(0);
            series(table, part_id, location_id, &rows).map(|s| (line, s))
        })
        .collect()
}

/// Index of `start` counted in periods from `first`, if it falls on a period boundary.
fn period_index(period: Period, first: Date, start: Date) -> Option<i64> {
    let days = days_since_epoch(start) - days_since_epoch(first);
    match period {
        Period::Day => Some(days),
        Period::Week => (days % 7 == 0).then_some(days / 7),
        Period::Month => (start.day() == first.day()).then(|| {
            (i64::from(start.year()) - i64::from(first.year())) * 12 + i64::from(start.month())
                - i64::from(first.month())
        }),
    }
}

fn series(
    table: &Table,
    part_id: String,
    location_id: String,
    rows: &[DemandRow],
) -> Result<DemandSeries, ImportError> {
    let first = rows.iter().map(|r| r.start).min().unwrap_or_default();
    let period = rows.first().map_or(Period::Month, |r| r.period);
    let mut quantities: Vec<u64> = Vec::new();
    let mut filled: Vec<bool> = Vec::new();
    for row in rows {
        if row.period != period {
            return Err(table.error_at(row.line, "period", "a series must use one period length"));
        }
        let index = period_index(period, first, row.start)
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| {
                table.error_at(
                    row.line,
                    "period_start",
                    format!(
                        "{} is not a whole number of periods after {first}",
                        row.start
                    ),
                )
            })?;
        if index >= MAX_DEMAND_PERIODS {
            return Err(table.error_at(
                row.line,
                "period_start",
                format!("a series may span at most {MAX_DEMAND_PERIODS} periods"),
            ));
        }
        if index >= quantities.len() {
            quantities.resize(index + 1, 0);
            filled.resize(index + 1, false);
        }
        if filled[index] {
            return Err(table.error_at(
                row.line,
                "period_start",
                "duplicate period for this part and location",
            ));
        }
        filled[index] = true;
        quantities[index] = row.quantity;
    }
    Ok(DemandSeries {
        part_id,
        location_id,
        period,
        first_period_start: first,
        quantities,
    })
}
