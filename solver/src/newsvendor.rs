//! The single-period newsvendor: normal, Poisson, discrete and sample-average demand.

use crate::distribution::Pipeline;
use crate::error::{Result, invalid, non_negative, positive};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Continuous, ContinuousCDF, Normal};

/// Costs per unit: `holding_cost` for each unit left over, `shortage_cost` for each unit short.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NewsvendorCosts {
    /// Cost per unit left over at the end of the period (h).
    pub holding_cost: f64,
    /// Cost per unit of demand not met (p).
    pub shortage_cost: f64,
}

impl NewsvendorCosts {
    /// The critical ratio p / (p + h); errors on negative, NaN or all-zero costs.
    pub fn critical_ratio(&self) -> Result<f64> {
        non_negative("holding_cost", self.holding_cost)?;
        non_negative("shortage_cost", self.shortage_cost)?;
        positive(
            "holding_cost + shortage_cost",
            self.holding_cost + self.shortage_cost,
        )?;
        Ok(self.shortage_cost / (self.holding_cost + self.shortage_cost))
    }
}

/// Optimal order quantity for continuous (normal) demand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContinuousOrder {
    /// Order-up-to level S*.
    pub quantity: f64,
    /// Expected holding plus shortage cost at S*.
    pub expected_cost: f64,
}

/// Optimal order quantity for integer demand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiscreteOrder {
    /// Order-up-to level S* in units.
    pub quantity: u64,
    /// Expected holding plus shortage cost at S*.
    pub expected_cost: f64,
}

/// Normal demand N(mean, std_dev^2): S* = mean + z std_dev with Phi(z) = p / (p + h);
/// cost (p + h) std_dev phi(z).
pub fn normal(mean: f64, std_dev: f64, costs: NewsvendorCosts) -> Result<ContinuousOrder> {
    if !mean.is_finite() {
        return Err(invalid("mean", "must be finite"));
    }
    positive("std_dev", std_dev)?;
    let ratio = costs.critical_ratio()?;
    if ratio <= 0.0 || ratio >= 1.0 {
        return Err(invalid(
            "shortage_cost",
            "both costs must be positive for normal demand",
        ));
    }
    let standard = Normal::standard();
    let z = standard.inverse_cdf(ratio);
    Ok(ContinuousOrder {
        quantity: mean + z * std_dev,
        expected_cost: (costs.holding_cost + costs.shortage_cost) * std_dev * standard.pdf(z),
    })
}

/// Poisson demand with the given mean: the smallest S with P(D <= S) >= p / (p + h).
pub fn poisson(mean: f64, costs: NewsvendorCosts) -> Result<DiscreteOrder> {
    let pipeline = Pipeline::poisson(mean)?;
    let upper = pipeline.stock_covering(1e-14)? as usize + 1;
    discrete(&pipeline.pmf(upper + 1), costs)
}

/// Demand given by a probability mass function over 0, 1, 2, ... (it must sum to 1
/// within 1e-6; the remainder is treated as lying beyond the last value).
pub fn discrete(pmf: &[f64], costs: NewsvendorCosts) -> Result<DiscreteOrder> {
    let ratio = costs.critical_ratio()?;
    for (index, p) in pmf.iter().enumerate() {
        non_negative(&format!("pmf[{index}]"), *p)?;
    }
    let total: f64 = pmf.iter().sum();
    if (total - 1.0).abs() > 1e-6 {
        return Err(invalid("pmf", format!("must sum to 1, sums to {total}")));
    }
    let mut cumulative = 0.0;
    let mut quantity = pmf.len().saturating_sub(1);
    for (x, p) in pmf.iter().enumerate() {
        cumulative += p;
        if cumulative >= ratio - 1e-12 {
            quantity = x;
            break;
        }
    }
    let expected_cost = pmf
        .iter()
        .enumerate()
        .map(|(x, p)| p * unit_cost(x as f64, quantity as f64, costs))
        .sum();
    Ok(DiscreteOrder {
        quantity: quantity as u64,
        expected_cost,
    })
}

/// Sample average approximation: S* is the ceil(N CR)-th smallest sample
/// (Kleywegt, Shapiro and Homem-de-Mello 2002); cost is the sample average.
pub fn from_samples(samples: &[u64], costs: NewsvendorCosts) -> Result<DiscreteOrder> {
    if samples.is_empty() {
        return Err(invalid("samples", "must not be empty"));
    }
    let ratio = costs.critical_ratio()?;
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((sorted.len() as f64 * ratio) - 1e-9).ceil().max(1.0) as usize;
    let quantity = sorted[rank.min(sorted.len()) - 1];
    let expected_cost = sorted
        .iter()
        .map(|&d| unit_cost(d as f64, quantity as f64, costs))
        .sum::<f64>()
        / sorted.len() as f64;
    Ok(DiscreteOrder {
        quantity,
        expected_cost,
    })
}

/// Holding plus shortage cost when demand is `demand` and stock is `stock`.
fn unit_cost(demand: f64, stock: f64, costs: NewsvendorCosts) -> f64 {
    costs.holding_cost * (stock - demand).max(0.0) + costs.shortage_cost * (demand - stock).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs(h: f64, p: f64) -> NewsvendorCosts {
        NewsvendorCosts {
            holding_cost: h,
            shortage_cost: p,
        }
    }

    #[test]
    fn normal_matches_snyder_shen_example_4_3() {
        let order = normal(50.0, 8.0, costs(0.18, 0.70)).unwrap();
        assert!((order.quantity - 56.6040).abs() < 1e-4, "{order:?}");
        assert!((order.expected_cost - 1.99761).abs() < 1e-5, "{order:?}");
    }

    #[test]
    fn normal_matches_second_published_example() {
        let order = normal(120.0, 10.0, costs(2.0, 18.0)).unwrap();
        assert!((order.quantity - 132.8155).abs() < 1e-4, "{order:?}");
        assert!((order.expected_cost - 35.0997).abs() < 1e-4, "{order:?}");
    }

    #[test]
    fn poisson_matches_computed_example() {
        let order = poisson(50.0, costs(0.18, 0.70)).unwrap();
        assert_eq!(order.quantity, 56);
        assert!((order.expected_cost - 1.79724).abs() < 1e-5, "{order:?}");
    }

    #[test]
    fn sample_average_takes_the_order_statistic() {
        let samples = [0, 0, 1, 0, 2, 0, 0, 3, 1, 0];
        let order = from_samples(&samples, costs(3.0, 17.0)).unwrap();
        assert_eq!(order.quantity, 2);
    }

    #[test]
    fn sample_average_is_a_minimiser_of_the_sample_cost() {
        let samples = [4, 9, 1, 0, 7, 3, 3, 12, 5];
        let c = costs(1.5, 4.0);
        let order = from_samples(&samples, c).unwrap();
        for s in 0..15u64 {
            let cost: f64 = samples
                .iter()
                .map(|&d| unit_cost(d as f64, s as f64, c))
                .sum::<f64>()
                / samples.len() as f64;
            assert!(order.expected_cost <= cost + 1e-12);
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(normal(f64::NAN, 1.0, costs(1.0, 1.0)).is_err());
        assert!(poisson(-1.0, costs(1.0, 1.0)).is_err());
        assert!(from_samples(&[], costs(1.0, 1.0)).is_err());
        assert!(discrete(&[0.5, 0.2], costs(1.0, 1.0)).is_err());
        assert!(from_samples(&[1], costs(-1.0, 1.0)).is_err());
    }
}
