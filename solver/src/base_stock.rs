//! Single-site base stock (S-1, S): fill rate, backorders, availability and time-based service.

use crate::distribution::{BackorderPoint, Pipeline};
use crate::error::{Result, invalid, non_negative, open_unit, positive};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Continuous, ContinuousCDF, DiscreteCDF, Normal, Poisson};

/// Lead-time demand (units in resupply) for a single site.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LeadTimeDemand {
    /// Poisson demand: mean = demand rate x resupply time (Palm's theorem).
    Poisson {
        /// Mean units in resupply.
        mean: f64,
    },
    /// Negative binomial with the given mean and variance (variance > mean).
    NegativeBinomial {
        /// Mean units in resupply.
        mean: f64,
        /// Variance of units in resupply.
        variance: f64,
    },
    /// Normal approximation (fast movers).
    Normal {
        /// Mean units in resupply.
        mean: f64,
        /// Standard deviation of units in resupply.
        std_dev: f64,
    },
}

/// Service measures of one base stock level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaseStockMeasures {
    /// Base stock level in units.
    pub base_stock: u64,
    /// Expected backorders.
    pub expected_backorders: f64,
    /// Variance of backorders.
    pub variance_backorders: f64,
    /// Share of demands met at once from stock.
    pub fill_rate: f64,
    /// Expected units on hand: s - E[X] + EBO(s).
    pub expected_on_hand: f64,
}

impl LeadTimeDemand {
    /// Service measures at `base_stock`; errors on negative or NaN parameters.
    ///
    /// For normal demand the fill rate is P(X <= s) and the backorders use the
    /// standard normal loss function.
    pub fn measures(&self, base_stock: u64) -> Result<BaseStockMeasures> {
        let (mean, point) = match *self {
            Self::Poisson { mean } => (mean, Pipeline::poisson(mean)?.at(base_stock)),
            Self::NegativeBinomial { mean, variance } => {
                if variance <= mean {
                    return Err(invalid(
                        "variance",
                        "must exceed the mean for a negative binomial",
                    ));
                }
                (mean, Pipeline::fit(mean, variance)?.at(base_stock))
            }
            Self::Normal { mean, std_dev } => (mean, normal_point(mean, std_dev, base_stock)?),
        };
        Ok(BaseStockMeasures {
            base_stock,
            expected_backorders: point.expected_backorders,
            variance_backorders: point.variance_backorders,
            fill_rate: point.fill_rate,
            expected_on_hand: base_stock as f64 - mean + point.expected_backorders,
        })
    }

    /// The smallest base stock whose fill rate reaches `target` (in (0, 1)).
    pub fn base_stock_for_fill_rate(&self, target: f64) -> Result<u64> {
        open_unit("fill_rate_target", target)?;
        let mut stock = 0u64;
        loop {
            if self.measures(stock)?.fill_rate >= target {
                return Ok(stock);
            }
            stock += 1;
            if stock > 10_000_000 {
                return Err(invalid("fill_rate_target", "unreachable within 10^7 units"));
            }
        }
    }
}

/// Normal-demand measures: EBO = sigma L(z), VBO from the second-order loss.
fn normal_point(mean: f64, std_dev: f64, stock: u64) -> Result<BackorderPoint> {
    non_negative("mean", mean)?;
    positive("std_dev", std_dev)?;
    let standard = Normal::standard();
    let z = (stock as f64 - mean) / std_dev;
    let (pdf, cdf) = (standard.pdf(z), standard.cdf(z));
    let loss = pdf - z * (1.0 - cdf);
    // E[(Z - z)+^2] = (1 + z^2)(1 - Phi(z)) - z phi(z).
    let second = (1.0 + z * z) * (1.0 - cdf) - z * pdf;
    let ebo = std_dev * loss;
    Ok(BackorderPoint {
        stock,
        expected_backorders: ebo,
        variance_backorders: (std_dev * std_dev * second - ebo * ebo).max(0.0),
        fill_rate: cdf,
    })
}

/// Sherbrooke's system availability A = prod_i (1 - EBO_i / (N Z_i))^{Z_i} for a fleet of
/// `machines` machines; each entry is (expected backorders, units of the part per machine).
pub fn availability(machines: u64, parts: &[(f64, u64)]) -> Result<f64> {
    if machines == 0 {
        return Err(invalid("machines", "must be at least 1"));
    }
    let mut log_availability = 0.0;
    for (index, &(ebo, units)) in parts.iter().enumerate() {
        non_negative(&format!("parts[{index}].expected_backorders"), ebo)?;
        if units == 0 {
            return Err(invalid(
                format!("parts[{index}].units_per_machine"),
                "must be at least 1",
            ));
        }
        let installed = (machines * units) as f64;
        let share_up = (1.0 - ebo / installed).max(0.0);
        log_availability += units as f64 * share_up.ln();
    }
    Ok(log_availability.exp())
}

/// Time-based service: P(a demand waits at most `wait_hours`) under Poisson demand at
/// `demand_per_hour`, deterministic replenishment lead time `lead_time_hours`, FIFO, and
/// base stock `base_stock`: P(Poisson(lambda (L - t)) <= s - 1) for t < L, 1 for t >= L.
pub fn probability_wait_within(
    demand_per_hour: f64,
    lead_time_hours: f64,
    base_stock: u64,
    wait_hours: f64,
) -> Result<f64> {
    non_negative("demand_per_hour", demand_per_hour)?;
    non_negative("lead_time_hours", lead_time_hours)?;
    non_negative("wait_hours", wait_hours)?;
    if wait_hours >= lead_time_hours {
        return Ok(1.0);
    }
    if base_stock == 0 {
        return Ok(0.0);
    }
    let mean = demand_per_hour * (lead_time_hours - wait_hours);
    if mean == 0.0 {
        return Ok(1.0);
    }
    let poisson = Poisson::new(mean).map_err(|e| invalid("demand_per_hour", e.to_string()))?;
    Ok(poisson.cdf(base_stock - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_based_service_matches_oracle() {
        // 2 per day, lead time 3 days, base stock 6 (hours used: 24 h per day).
        let per_hour = 2.0 / 24.0;
        let expect = [(0.0, 0.4457), (24.0, 0.7851), (48.0, 0.9834), (72.0, 1.0)];
        for (wait, p) in expect {
            let got = probability_wait_within(per_hour, 72.0, 6, wait).unwrap();
            assert!((got - p).abs() < 5e-5, "wait {wait}: {got}");
        }
    }

    #[test]
    fn fill_rate_is_the_probability_of_fewer_than_s_in_resupply() {
        let demand = LeadTimeDemand::Poisson { mean: 2.0 };
        let m = demand.measures(3).unwrap();
        let expected = (-2.0f64).exp() * (1.0 + 2.0 + 2.0);
        assert!((m.fill_rate - expected).abs() < 1e-12);
        assert!((m.expected_on_hand - (3.0 - 2.0 + m.expected_backorders)).abs() < 1e-12);
    }

    #[test]
    fn time_zero_service_equals_fill_rate() {
        let demand = LeadTimeDemand::Poisson { mean: 6.0 };
        let fill = demand.measures(6).unwrap().fill_rate;
        let p0 = probability_wait_within(2.0, 3.0, 6, 0.0).unwrap();
        assert!((fill - p0).abs() < 1e-12);
    }

    #[test]
    fn normal_backorders_match_the_loss_function() {
        // L(0) = phi(0) = 0.398942.
        let m = LeadTimeDemand::Normal {
            mean: 10.0,
            std_dev: 2.0,
        }
        .measures(10)
        .unwrap();
        assert!((m.expected_backorders - 2.0 * 0.398_942_28).abs() < 1e-6);
        assert!((m.fill_rate - 0.5).abs() < 1e-12);
    }

    #[test]
    fn negative_binomial_needs_more_stock_than_poisson() {
        let poisson = LeadTimeDemand::Poisson { mean: 3.0 };
        let nb = LeadTimeDemand::NegativeBinomial {
            mean: 3.0,
            variance: 6.0,
        };
        let sp = poisson.base_stock_for_fill_rate(0.95).unwrap();
        let sn = nb.base_stock_for_fill_rate(0.95).unwrap();
        assert!(sn >= sp);
        for s in 0..10 {
            assert!(
                nb.measures(s).unwrap().expected_backorders
                    >= poisson.measures(s).unwrap().expected_backorders - 1e-12
            );
        }
    }

    #[test]
    fn availability_falls_with_backorders() {
        let a0 = availability(10, &[(0.0, 2)]).unwrap();
        let a1 = availability(10, &[(1.0, 2)]).unwrap();
        assert_eq!(a0, 1.0);
        assert!((a1 - (1.0 - 1.0 / 20.0f64).powi(2)).abs() < 1e-12);
        assert!(availability(0, &[]).is_err());
    }
}
