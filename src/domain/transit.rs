//! Transit-time distributions of lanes, resolved for fast quantile and CDF queries.
//!
//! A lane's transit time is in calendar hours (carriers run every day). The
//! promised arrival uses a quantile `q` of it; the probability of arriving by a
//! deadline uses the whole distribution through [`TransitModel::cdf`].
//!
//! - `Fixed { t }`: quantile and CDF of a point mass at `t`.
//! - `Lognormal { p50, p90 }`: `mu = ln p50`, `sigma = (ln p90 - ln p50) / z_0.9`
//!   with `z_0.9 = 1.2815515655446004`; quantile `exp(mu + sigma z_q)`,
//!   CDF `Phi((ln t - mu) / sigma)`. `p90 == p50` is a point mass.
//! - `Empirical { samples }`: the sample distribution; CDF `#(x <= t) / n`,
//!   quantile the smallest sample `x` with `CDF(x) >= q` (inverted CDF).

use super::error::DomainError;
use super::network::TransitTime;
use jiff::SignedDuration;
use statrs::function::erf::{erfc, erfc_inv};

/// The standard normal quantile at 0.9.
pub const Z_0_9: f64 = 1.281_551_565_544_600_4;

/// The transit quantile used when a request does not set one.
pub const DEFAULT_TRANSIT_QUANTILE: f64 = 0.9;

/// Standard normal CDF.
pub fn standard_normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile (probit) for `p` in (0, 1).
pub fn standard_normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// A transit quantile in (0, 1) with its standard normal score precomputed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransitQuantile {
    q: f64,
    z: f64,
}

impl TransitQuantile {
    /// Checks `q` is in (0, 1); `0.0` means [`DEFAULT_TRANSIT_QUANTILE`].
    ///
    /// Errors with `InvalidArgument` on field `transit_quantile` otherwise.
    pub fn new(q: f64) -> Result<Self, DomainError> {
        let q = if q == 0.0 {
            DEFAULT_TRANSIT_QUANTILE
        } else {
            q
        };
        if !(q > 0.0 && q < 1.0) {
            return Err(DomainError::invalid(
                "transit_quantile",
                "must be in (0, 1), or 0 for the default 0.9",
            ));
        }
        Ok(Self {
            q,
            z: standard_normal_quantile(q),
        })
    }

    /// The probability level.
    pub fn level(&self) -> f64 {
        self.q
    }
}

/// A lane's transit-time distribution in hours, resolved once per network.
#[derive(Debug, Clone, PartialEq)]
pub enum TransitModel {
    /// A point mass.
    Fixed {
        /// Hours.
        hours: f64,
    },
    /// Log-normal with log-mean `mu` and log-standard deviation `sigma > 0`.
    Lognormal {
        /// Mean of ln(hours).
        mu: f64,
        /// Standard deviation of ln(hours).
        sigma: f64,
    },
    /// Observed hours, sorted ascending, at least one.
    Empirical {
        /// Sorted samples.
        sorted_hours: Vec<f64>,
    },
}

impl TransitModel {
    /// Resolves a validated lane transit time.
    pub fn from_transit(transit: &TransitTime) -> Self {
        match transit {
            TransitTime::Fixed { transit_hours } => Self::Fixed {
                hours: *transit_hours,
            },
            TransitTime::Lognormal {
                transit_hours_p50,
                transit_hours_p90,
            } => {
                let mu = transit_hours_p50.ln();
                let sigma = (transit_hours_p90.ln() - mu) / Z_0_9;
                if sigma > 0.0 && sigma.is_finite() {
                    Self::Lognormal { mu, sigma }
                } else {
                    Self::Fixed {
                        hours: *transit_hours_p50,
                    }
                }
            }
            TransitTime::Empirical {
                transit_hours_samples,
            } => {
                let mut sorted_hours = transit_hours_samples.clone();
                sorted_hours.sort_by(f64::total_cmp);
                if sorted_hours.is_empty() {
                    sorted_hours.push(0.0);
                }
                Self::Empirical { sorted_hours }
            }
        }
    }

    /// The transit hours at quantile `q`.
    pub fn quantile_hours(&self, q: TransitQuantile) -> f64 {
        match self {
            Self::Fixed { hours } => *hours,
            Self::Lognormal { mu, sigma } => (mu + sigma * q.z).exp(),
            Self::Empirical { sorted_hours } => {
                let n = sorted_hours.len();
                // Smallest k with k / n >= q, as a 0-based index.
                let k = (q.q * n as f64).ceil() as usize;
                sorted_hours[k.clamp(1, n) - 1]
            }
        }
    }

    /// P(transit hours <= `hours`).
    pub fn cdf(&self, hours: f64) -> f64 {
        match self {
            Self::Fixed { hours: fixed } => {
                if hours >= *fixed {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Lognormal { mu, sigma } => {
                if hours <= 0.0 {
                    0.0
                } else {
                    standard_normal_cdf((hours.ln() - mu) / sigma)
                }
            }
            Self::Empirical { sorted_hours } => {
                let count = sorted_hours.partition_point(|x| *x <= hours);
                count as f64 / sorted_hours.len() as f64
            }
        }
    }

    /// The transit hours at probability `u` in [0, 1) (inverse CDF), for simulation.
    pub fn sample_hours(&self, u: f64) -> f64 {
        match self {
            Self::Fixed { hours } => *hours,
            Self::Lognormal { mu, sigma } => {
                let u = u.clamp(1e-300, 1.0 - 1e-16);
                (mu + sigma * standard_normal_quantile(u)).exp()
            }
            Self::Empirical { sorted_hours } => {
                let n = sorted_hours.len();
                let k = (u * n as f64).floor() as usize;
                sorted_hours[k.min(n - 1)]
            }
        }
    }
}

/// Hours as a duration, rounded to the nearest second.
pub fn hours_to_duration(hours: f64) -> SignedDuration {
    SignedDuration::from_secs((hours * 3600.0).round() as i64)
}

/// A duration in hours.
pub fn duration_to_hours(duration: SignedDuration) -> f64 {
    duration.as_secs_f64() / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lognormal_recovers_its_median_and_90th_percentile() {
        let model = TransitModel::from_transit(&TransitTime::Lognormal {
            transit_hours_p50: 24.0,
            transit_hours_p90: 48.0,
        });
        let q90 = TransitQuantile::new(0.9).unwrap();
        let q50 = TransitQuantile::new(0.5).unwrap();
        assert!((model.quantile_hours(q90) - 48.0).abs() < 1e-9);
        assert!((model.quantile_hours(q50) - 24.0).abs() < 1e-9);
        assert!((model.cdf(24.0) - 0.5).abs() < 1e-12);
        assert!((model.cdf(48.0) - 0.9).abs() < 1e-9);
        // sigma = ln 2 / z_0.9; P(T <= 12 h) = Phi(-z_0.9) = 0.1.
        assert!((model.cdf(12.0) - 0.1).abs() < 1e-9);
    }

    #[test]
    fn empirical_quantile_and_cdf_agree() {
        let model = TransitModel::from_transit(&TransitTime::Empirical {
            transit_hours_samples: vec![30.0, 10.0, 20.0, 40.0],
        });
        assert_eq!(
            model.quantile_hours(TransitQuantile::new(0.5).unwrap()),
            20.0
        );
        assert_eq!(
            model.quantile_hours(TransitQuantile::new(0.9).unwrap()),
            40.0
        );
        assert_eq!(model.cdf(20.0), 0.5);
        assert_eq!(model.cdf(19.9), 0.25);
        assert_eq!(model.sample_hours(0.0), 10.0);
        assert_eq!(model.sample_hours(0.99), 40.0);
    }

    #[test]
    fn quantile_outside_the_open_unit_interval_is_rejected() {
        assert!(TransitQuantile::new(1.0).is_err());
        assert!(TransitQuantile::new(-0.1).is_err());
        assert_eq!(TransitQuantile::new(0.0).unwrap().level(), 0.9);
    }

    #[test]
    fn probit_matches_the_published_z_value() {
        assert!((standard_normal_quantile(0.9) - Z_0_9).abs() < 1e-12);
        assert!((standard_normal_cdf(Z_0_9) - 0.9).abs() < 1e-9);
    }
}
