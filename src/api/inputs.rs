//! Conversions of the planning inputs (supplier lead times, downtime cost per
//! criticality class, demand rates) between protobuf and core types. As in
//! `convert`, a bad field becomes `InvalidArgument` naming it.

use super::convert::{criticality_from_pb, criticality_to_pb};
use crate::domain::DomainError;
use crate::domain::network::{CriticalityCost, DemandRate, LeadTime, SupplierLeadTime};
use crate::pb;

type Result<T> = std::result::Result<T, DomainError>;

/// Converts an optional protobuf lead time; an unset distribution is `None`.
pub fn lead_time_from_pb(t: Option<&pb::LeadTime>) -> Option<LeadTime> {
    use pb::lead_time::Distribution as D;
    Some(match t?.distribution.as_ref()? {
        D::Fixed(f) => LeadTime::Fixed {
            lead_time_days: f.lead_time_days,
        },
        D::Lognormal(l) => LeadTime::Lognormal {
            lead_time_days_p50: l.lead_time_days_p50,
            lead_time_days_p90: l.lead_time_days_p90,
        },
        D::Empirical(e) => {
            let mut samples = e.lead_time_days_samples.clone();
            samples.sort_by(f64::total_cmp);
            LeadTime::Empirical {
                lead_time_days_samples: samples,
            }
        }
    })
}

/// Converts a lead time to protobuf.
pub fn lead_time_to_pb(t: &LeadTime) -> pb::LeadTime {
    use pb::lead_time::Distribution as D;
    let distribution = match t {
        LeadTime::Fixed { lead_time_days } => D::Fixed(pb::FixedLeadTime {
            lead_time_days: *lead_time_days,
        }),
        LeadTime::Lognormal {
            lead_time_days_p50,
            lead_time_days_p90,
        } => D::Lognormal(pb::LognormalLeadTime {
            lead_time_days_p50: *lead_time_days_p50,
            lead_time_days_p90: *lead_time_days_p90,
        }),
        LeadTime::Empirical {
            lead_time_days_samples,
        } => D::Empirical(pb::EmpiricalLeadTime {
            lead_time_days_samples: lead_time_days_samples.clone(),
        }),
    };
    pb::LeadTime {
        distribution: Some(distribution),
    }
}

/// Converts a protobuf supplier lead-time override; the lead time is required.
pub fn supplier_lead_time_from_pb(s: &pb::SupplierLeadTime) -> Result<SupplierLeadTime> {
    let lead_time = lead_time_from_pb(s.lead_time.as_ref())
        .ok_or_else(|| DomainError::invalid("lead_time", "a lead-time distribution is required"))?;
    Ok(SupplierLeadTime {
        part_id: s.part_id.clone(),
        location_id: s.location_id.clone(),
        lead_time,
    })
}

/// Converts a supplier lead-time override to protobuf.
pub fn supplier_lead_time_to_pb(s: &SupplierLeadTime) -> pb::SupplierLeadTime {
    pb::SupplierLeadTime {
        part_id: s.part_id.clone(),
        location_id: s.location_id.clone(),
        lead_time: Some(lead_time_to_pb(&s.lead_time)),
    }
}

/// Converts a protobuf class cost; the class must be given.
pub fn criticality_cost_from_pb(c: &pb::CriticalityCost) -> Result<CriticalityCost> {
    if c.criticality == pb::Criticality::Unspecified as i32 {
        return Err(DomainError::invalid(
            "criticality",
            "is required (critical, essential or routine)",
        ));
    }
    Ok(CriticalityCost {
        criticality: criticality_from_pb(c.criticality)?,
        downtime_cost_usd_per_hour: c.downtime_cost_usd_per_hour,
    })
}

/// Converts a class cost to protobuf.
pub fn criticality_cost_to_pb(c: &CriticalityCost) -> pb::CriticalityCost {
    pb::CriticalityCost {
        criticality: criticality_to_pb(c.criticality),
        downtime_cost_usd_per_hour: c.downtime_cost_usd_per_hour,
    }
}

/// Converts a protobuf demand rate; a ratio of 0 (unset) means 1, Poisson.
pub fn demand_rate_from_pb(r: &pb::DemandRate) -> Result<DemandRate> {
    Ok(DemandRate {
        part_id: r.part_id.clone(),
        location_id: r.location_id.clone(),
        failures_per_day: r.failures_per_day,
        variance_to_mean_ratio: if r.variance_to_mean_ratio == 0.0 {
            1.0
        } else {
            r.variance_to_mean_ratio
        },
    })
}

/// Converts a demand rate to protobuf.
pub fn demand_rate_to_pb(r: &DemandRate) -> pb::DemandRate {
    pb::DemandRate {
        part_id: r.part_id.clone(),
        location_id: r.location_id.clone(),
        failures_per_day: r.failures_per_day,
        variance_to_mean_ratio: r.variance_to_mean_ratio,
    }
}
