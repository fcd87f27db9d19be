//! Row parsers of the planning inputs: supplier lead times (columns of
//! `parts` and the `supplier_lead_times` file), `criticality_costs` and
//! `demand_rates`. Values are checked here, at their cell, with the same
//! validation the API uses, so an error names the file, line and column.

use super::ImportError;
use super::parse::{Lined, each};
use super::table::{Cells, Table};
use super::values::parse_criticality;
use crate::domain::DomainError;
use crate::domain::inputs::check_downtime_cost;
use crate::domain::network::{CriticalityCost, DemandRate, LeadTime, SupplierLeadTime};
use std::collections::HashSet;

/// Maps a validation error of a value to the cell it came from.
fn at_cell(c: &Cells<'_>, column: &str, error: DomainError) -> ImportError {
    match error {
        DomainError::InvalidArgument { reason, .. } => c.error(column, reason),
        DomainError::OutOfRange { reason, .. } => {
            c.error(column, format!("out of range: {reason}"))
        }
        other => c.error(column, other),
    }
}

/// A lead time from the columns `<prefix>_p50`, `<prefix>_p90` and
/// `<prefix>_samples` (as a lane's transit: p90 empty or equal to p50 is a
/// fixed time; samples exclude p50/p90). `None` when all three are empty.
pub(crate) fn lead_time(c: &Cells<'_>, prefix: &str) -> Result<Option<LeadTime>, ImportError> {
    let (p50, p90, samples) = (
        format!("{prefix}_p50"),
        format!("{prefix}_p90"),
        format!("{prefix}_samples"),
    );
    let lead = if let Some(text) = c.optional(&samples) {
        for column in [&p50, &p90] {
            if c.optional(column).is_some() {
                return Err(c.error(column, format!("leave empty when {samples} is given")));
            }
        }
        let mut days = super::values::parse_numbers(text).map_err(|m| c.error(&samples, m))?;
        days.sort_by(f64::total_cmp);
        LeadTime::Empirical {
            lead_time_days_samples: days,
        }
    } else {
        let Some(median) = c.optional_number(&p50)? else {
            if c.optional(&p90).is_some() {
                return Err(c.error(&p50, format!("needed with {p90}")));
            }
            return Ok(None);
        };
        match c.optional_number(&p90)? {
            Some(high) if high != median => LeadTime::Lognormal {
                lead_time_days_p50: median,
                lead_time_days_p90: high,
            },
            _ => LeadTime::Fixed {
                lead_time_days: median,
            },
        }
    };
    lead.validate().map_err(|e| {
        let column = match &e {
            DomainError::InvalidArgument { field, .. } | DomainError::OutOfRange { field, .. }
                if field.ends_with("_p90") =>
            {
                &p90
            }
            DomainError::InvalidArgument { field, .. } | DomainError::OutOfRange { field, .. }
                if field.ends_with("_samples") =>
            {
                &samples
            }
            _ => &p50,
        };
        at_cell(c, column, e)
    })?;
    Ok(Some(lead))
}

/// An optional downtime cost per hour in `column`, checked.
pub(crate) fn downtime_cost(c: &Cells<'_>, column: &str) -> Result<Option<f64>, ImportError> {
    let Some(cost) = c.optional_number(column)? else {
        return Ok(None);
    };
    check_downtime_cost(column, cost).map_err(|e| at_cell(c, column, e))?;
    Ok(Some(cost))
}

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

fn unique_pair(
    seen: &mut HashSet<(String, String)>,
    c: &Cells<'_>,
    part_id: &str,
    location_id: &str,
    what: &str,
) -> Result<(), ImportError> {
    if seen.insert((part_id.to_string(), location_id.to_string())) {
        Ok(())
    } else {
        Err(c.error(
            "location_id",
            format!("duplicate {what} for this part and location"),
        ))
    }
}

/// `supplier_lead_times`: one row per (part, location supplied from outside).
pub(crate) fn supplier_lead_times(
    table: &Table,
    part_ids: &HashSet<&str>,
    location_ids: &HashSet<&str>,
) -> Result<Lined<SupplierLeadTime>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let part_id = known(c, "part_id", part_ids, "part")?;
        let location_id = known(c, "location_id", location_ids, "location")?;
        unique_pair(&mut seen, c, &part_id, &location_id, "supplier lead time")?;
        let lead_time = lead_time(c, "lead_time_days")?.ok_or_else(|| {
            c.error(
                "lead_time_days_p50",
                "a value is required (or lead_time_days_samples)",
            )
        })?;
        Ok(SupplierLeadTime {
            part_id,
            location_id,
            lead_time,
        })
    })
}

/// `criticality_costs`: one row per criticality class.
pub(crate) fn criticality_costs(table: &Table) -> Result<Lined<CriticalityCost>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let criticality = c.with("criticality", parse_criticality)?;
        if !seen.insert(criticality) {
            return Err(c.error("criticality", "duplicate class"));
        }
        let cost = downtime_cost(c, "downtime_cost_usd_per_hour")?
            .ok_or_else(|| c.error("downtime_cost_usd_per_hour", "a value is required"))?;
        Ok(CriticalityCost {
            criticality,
            downtime_cost_usd_per_hour: cost,
        })
    })
}

/// `demand_rates`: one row per (part, location).
pub(crate) fn demand_rates(
    table: &Table,
    part_ids: &HashSet<&str>,
    location_ids: &HashSet<&str>,
) -> Result<Lined<DemandRate>, ImportError> {
    let mut seen = HashSet::new();
    each(table, |c| {
        let part_id = known(c, "part_id", part_ids, "part")?;
        let location_id = known(c, "location_id", location_ids, "location")?;
        unique_pair(&mut seen, c, &part_id, &location_id, "demand rate")?;
        let rate = DemandRate {
            part_id,
            location_id,
            failures_per_day: c.number("failures_per_day")?,
            variance_to_mean_ratio: c.optional_number("variance_to_mean_ratio")?.unwrap_or(1.0),
        };
        rate.validate().map_err(|e| {
            let column = match &e {
                DomainError::InvalidArgument { field, .. }
                | DomainError::OutOfRange { field, .. } => field.clone(),
                _ => "failures_per_day".to_string(),
            };
            at_cell(c, &column, e)
        })?;
        Ok(rate)
    })
}
