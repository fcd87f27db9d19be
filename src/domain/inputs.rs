//! Planning inputs beside the network's shape: supplier lead times (per part,
//! with overrides per part and depot), downtime cost per criticality class and
//! planners' demand rates per part-location.
//!
//! Plain data with their own validation; [`super::network::Network`] holds them
//! and checks references, and `planning::model` turns them into the
//! simulation's inputs by the rules written there once.

use super::error::DomainError;
use super::network::{Criticality, LocationId, PartId};
use serde::{Deserialize, Serialize};

/// Longest supplier lead time accepted: two years. Longer is a unit mistake
/// (hours or weeks typed as days), not a supplier.
pub const MAX_SUPPLIER_LEAD_TIME_DAYS: f64 = 730.0;
/// Most samples in an empirical lead time: enough for years of receipts,
/// and it bounds the record's size.
pub const MAX_LEAD_TIME_SAMPLES: usize = 10_000;
/// Highest demand rate of one part at one location: a thousand a day is far
/// beyond a spare part and catches rates typed per year as per day.
pub const MAX_FAILURES_PER_DAY: f64 = 1_000.0;
/// Highest variance-to-mean ratio: beyond it the negative binomial's batches
/// are so lumpy that the rate is better given as a history.
pub const MAX_VARIANCE_TO_MEAN_RATIO: f64 = 1_000.0;
/// Highest downtime cost per hour accepted: a billion dollars an hour.
pub const MAX_DOWNTIME_COST_USD_PER_HOUR: f64 = 1e9;

/// A supplier lead time as a distribution in calendar days, like a lane's
/// transit time (which is in hours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LeadTime {
    /// Always the same.
    Fixed {
        /// Days from order to receipt.
        lead_time_days: f64,
    },
    /// Log-normal, given by median and 90th percentile.
    Lognormal {
        /// Median days.
        lead_time_days_p50: f64,
        /// 90th-percentile days (>= median).
        lead_time_days_p90: f64,
    },
    /// The empirical distribution of observed lead times (sorted ascending).
    Empirical {
        /// Observed days, sorted.
        lead_time_days_samples: Vec<f64>,
    },
}

fn check_days(field: &str, days: f64) -> Result<(), DomainError> {
    if !days.is_finite() || days < 0.0 {
        return Err(DomainError::invalid(field, "must be a finite number >= 0"));
    }
    if days > MAX_SUPPLIER_LEAD_TIME_DAYS {
        return Err(DomainError::OutOfRange {
            field: field.into(),
            reason: format!("at most {MAX_SUPPLIER_LEAD_TIME_DAYS} days"),
        });
    }
    Ok(())
}

impl LeadTime {
    /// Checks every figure is finite, non-negative, ordered and within limits.
    /// Fields are named as in the API: `fixed.lead_time_days`,
    /// `lognormal.lead_time_days_p90`, `empirical.lead_time_days_samples`.
    pub fn validate(&self) -> Result<(), DomainError> {
        match self {
            Self::Fixed { lead_time_days } => check_days("fixed.lead_time_days", *lead_time_days),
            Self::Lognormal {
                lead_time_days_p50,
                lead_time_days_p90,
            } => {
                check_days("lognormal.lead_time_days_p50", *lead_time_days_p50)?;
                check_days("lognormal.lead_time_days_p90", *lead_time_days_p90)?;
                if *lead_time_days_p50 <= 0.0 {
                    return Err(DomainError::invalid(
                        "lognormal.lead_time_days_p50",
                        "must be > 0",
                    ));
                }
                if lead_time_days_p90 < lead_time_days_p50 {
                    return Err(DomainError::invalid(
                        "lognormal.lead_time_days_p90",
                        "must be >= lead_time_days_p50",
                    ));
                }
                Ok(())
            }
            Self::Empirical {
                lead_time_days_samples,
            } => {
                let field = "empirical.lead_time_days_samples";
                if lead_time_days_samples.is_empty() {
                    return Err(DomainError::invalid(field, "needs at least one sample"));
                }
                if lead_time_days_samples.len() > MAX_LEAD_TIME_SAMPLES {
                    return Err(DomainError::OutOfRange {
                        field: field.into(),
                        reason: format!("at most {MAX_LEAD_TIME_SAMPLES} samples"),
                    });
                }
                lead_time_days_samples
                    .iter()
                    .try_for_each(|days| check_days(field, *days))
            }
        }
    }

    /// Median days.
    pub fn median_days(&self) -> f64 {
        match self {
            Self::Fixed { lead_time_days } => *lead_time_days,
            Self::Lognormal {
                lead_time_days_p50, ..
            } => *lead_time_days_p50,
            Self::Empirical {
                lead_time_days_samples,
            } => sorted_quantile(lead_time_days_samples, 0.5),
        }
    }
}

/// The `q`-quantile of ascending samples (the smallest sample with at least
/// `q` of the mass at or below it); 0 for no samples.
pub fn sorted_quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// The supplier lead time of one part into one location supplied from outside
/// the network (a factory depot), overriding the part's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierLeadTime {
    /// The part.
    pub part_id: PartId,
    /// The location supplied from outside (no replenishment source).
    pub location_id: LocationId,
    /// Days from order to receipt.
    pub lead_time: LeadTime,
}

impl SupplierLeadTime {
    /// The record's key.
    pub fn key(&self) -> (PartId, LocationId) {
        (self.part_id.clone(), self.location_id.clone())
    }
}

/// What an hour of a machine waiting for a part of one criticality class costs,
/// for this network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalityCost {
    /// The class.
    pub criticality: Criticality,
    /// USD per hour a machine waits for a part of this class.
    pub downtime_cost_usd_per_hour: f64,
}

impl CriticalityCost {
    /// Checks the cost is finite, non-negative and within the limit.
    pub fn validate(&self) -> Result<(), DomainError> {
        check_downtime_cost(
            "downtime_cost_usd_per_hour",
            self.downtime_cost_usd_per_hour,
        )
    }
}

/// Checks a downtime cost per hour: finite, >= 0, at most the named limit.
pub fn check_downtime_cost(field: &str, cost: f64) -> Result<(), DomainError> {
    if !cost.is_finite() || cost < 0.0 {
        return Err(DomainError::invalid(field, "must be a finite number >= 0"));
    }
    if cost > MAX_DOWNTIME_COST_USD_PER_HOUR {
        return Err(DomainError::OutOfRange {
            field: field.into(),
            reason: format!("at most {MAX_DOWNTIME_COST_USD_PER_HOUR} USD per hour"),
        });
    }
    Ok(())
}

/// A planner's demand forecast for one part at one location: failures per day,
/// Poisson when the variance-to-mean ratio is 1, negative binomial above.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandRate {
    /// The part.
    pub part_id: PartId,
    /// The location where the demand arises.
    pub location_id: LocationId,
    /// Mean units demanded per day.
    pub failures_per_day: f64,
    /// Variance over mean of the units demanded in any period (>= 1; 1 is Poisson).
    pub variance_to_mean_ratio: f64,
}

impl DemandRate {
    /// The record's key.
    pub fn key(&self) -> (PartId, LocationId) {
        (self.part_id.clone(), self.location_id.clone())
    }

    /// Checks the rate and the ratio are finite and within their limits.
    pub fn validate(&self) -> Result<(), DomainError> {
        let rate = self.failures_per_day;
        if !rate.is_finite() || rate < 0.0 {
            return Err(DomainError::invalid(
                "failures_per_day",
                "must be a finite number >= 0",
            ));
        }
        if rate > MAX_FAILURES_PER_DAY {
            return Err(DomainError::OutOfRange {
                field: "failures_per_day".into(),
                reason: format!("at most {MAX_FAILURES_PER_DAY} per day"),
            });
        }
        let ratio = self.variance_to_mean_ratio;
        if !ratio.is_finite() || ratio < 1.0 {
            return Err(DomainError::invalid(
                "variance_to_mean_ratio",
                "must be a finite number >= 1 (1 is Poisson; demand is never less variable)",
            ));
        }
        if ratio > MAX_VARIANCE_TO_MEAN_RATIO {
            return Err(DomainError::OutOfRange {
                field: "variance_to_mean_ratio".into(),
                reason: format!("at most {MAX_VARIANCE_TO_MEAN_RATIO}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_p90_below_p50_names_the_field() {
        let lead = LeadTime::Lognormal {
            lead_time_days_p50: 30.0,
            lead_time_days_p90: 20.0,
        };
        let err = lead.validate().unwrap_err();
        assert!(
            matches!(&err, DomainError::InvalidArgument { field, .. } if field == "lognormal.lead_time_days_p90"),
            "{err:?}"
        );
    }

    #[test]
    fn negative_and_nan_lead_times_are_rejected() {
        for days in [-1.0, f64::NAN, f64::INFINITY] {
            let err = LeadTime::Fixed {
                lead_time_days: days,
            }
            .validate()
            .unwrap_err();
            assert!(matches!(err, DomainError::InvalidArgument { .. }), "{days}");
        }
        let err = LeadTime::Fixed {
            lead_time_days: 800.0,
        }
        .validate()
        .unwrap_err();
        assert!(matches!(err, DomainError::OutOfRange { .. }));
    }

    #[test]
    fn variance_to_mean_below_one_is_rejected() {
        let rate = DemandRate {
            part_id: "P".into(),
            location_id: "S".into(),
            failures_per_day: 0.1,
            variance_to_mean_ratio: 0.5,
        };
        let err = rate.validate().unwrap_err();
        assert!(
            matches!(&err, DomainError::InvalidArgument { field, .. } if field == "variance_to_mean_ratio")
        );
    }

    #[test]
    fn empirical_quantile_is_a_sample() {
        let samples = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(sorted_quantile(&samples, 0.5), 20.0);
        assert_eq!(sorted_quantile(&samples, 0.99), 40.0);
        assert_eq!(sorted_quantile(&samples, 0.0), 10.0);
    }
}
