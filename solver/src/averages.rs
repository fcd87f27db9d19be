//! The averages-based safety stock planners use today: SS = z sqrt(L sigma_d^2 + d^2 sigma_L^2).

use crate::error::{Result, non_negative, open_unit};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

/// Averages a planner keeps per part and location (upstream delays are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AveragesInput {
    /// Mean demand per day (d).
    pub demand_per_day_mean: f64,
    /// Standard deviation of daily demand (sigma_d).
    pub demand_per_day_std_dev: f64,
    /// Mean replenishment lead time in days (L).
    pub lead_time_days_mean: f64,
    /// Standard deviation of the lead time in days (sigma_L).
    pub lead_time_days_std_dev: f64,
}

/// The averages plan for one part-location.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AveragesPlan {
    /// Safety stock SS = z sqrt(L sigma_d^2 + d^2 sigma_L^2), in units (fractional).
    pub safety_stock: f64,
    /// Reorder point d L + SS, in units (fractional).
    pub reorder_point: f64,
    /// Stock to hold: the reorder point rounded up to whole units.
    pub stock: u64,
}

/// The averages plan at a cycle service level (e.g. 0.95 gives z = 1.645).
pub fn safety_stock(input: &AveragesInput, cycle_service_level: f64) -> Result<AveragesPlan> {
    open_unit("cycle_service_level", cycle_service_level)?;
    let d = non_negative("demand_per_day_mean", input.demand_per_day_mean)?;
    let sd = non_negative("demand_per_day_std_dev", input.demand_per_day_std_dev)?;
    let l = non_negative("lead_time_days_mean", input.lead_time_days_mean)?;
    let sl = non_negative("lead_time_days_std_dev", input.lead_time_days_std_dev)?;
    let z = Normal::standard().inverse_cdf(cycle_service_level);
    let safety = z * (l * sd * sd + d * d * sl * sl).sqrt();
    let reorder_point = d * l + safety;
    Ok(AveragesPlan {
        safety_stock: safety,
        reorder_point,
        stock: reorder_point.max(0.0).ceil() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_safety_stock() {
        // d = 10/day, sigma_d = 3, L = 4 days, sigma_L = 1, z(0.95) = 1.6449:
        // SS = 1.6449 sqrt(4*9 + 100*1) = 1.6449 * 11.6619 = 19.18.
        let input = AveragesInput {
            demand_per_day_mean: 10.0,
            demand_per_day_std_dev: 3.0,
            lead_time_days_mean: 4.0,
            lead_time_days_std_dev: 1.0,
        };
        let plan = safety_stock(&input, 0.95).unwrap();
        assert!((plan.safety_stock - 1.644_853_6 * 136f64.sqrt()).abs() < 1e-6);
        assert_eq!(plan.stock, 60);
    }

    #[test]
    fn rejects_negative_inputs() {
        let input = AveragesInput {
            demand_per_day_mean: -1.0,
            demand_per_day_std_dev: 0.0,
            lead_time_days_mean: 1.0,
            lead_time_days_std_dev: 0.0,
        };
        assert!(safety_stock(&input, 0.95).is_err());
    }
}
