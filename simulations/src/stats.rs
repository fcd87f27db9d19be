//! Estimates over replications: means and ratios with 95% confidence intervals, quantiles
//! with order-statistic intervals, and CVaR.
//!
//! Accumulators are fed in replication order, so a run gives the same bits on any number of
//! threads. No function here returns NaN: an estimate without data is `None`.

use serde::{Deserialize, Serialize};

/// Normal quantile for a two-sided 95% interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A mean over replications with the half-width of its normal-approximation 95% confidence
/// interval (`None` with fewer than two replications).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Point estimate.
    pub mean: f64,
    /// Half-width of the 95% confidence interval.
    pub half_width_95: Option<f64>,
}

impl Estimate {
    /// Lower end of the 95% interval (the mean when there is no interval).
    pub fn low(&self) -> f64 {
        self.mean - self.half_width_95.unwrap_or(0.0)
    }

    /// Upper end of the 95% interval (the mean when there is no interval).
    pub fn high(&self) -> f64 {
        self.mean + self.half_width_95.unwrap_or(0.0)
    }
}

/// A quantile over replications with a distribution-free 95% interval from order statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantile {
    /// The sample quantile (nearest rank).
    pub value: f64,
    /// Lower end of the 95% interval.
    pub ci95_low: f64,
    /// Upper end of the 95% interval.
    pub ci95_high: f64,
}

/// The distribution over replications of one total: mean, median, upper quantiles and the
/// mean of the worst 5% (CVaR95, Rockafellar-Uryasev).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TailSummary {
    /// Mean with its interval.
    pub mean: Estimate,
    /// Median.
    pub p50: Quantile,
    /// 95th percentile.
    pub p95: Quantile,
    /// 99th percentile.
    pub p99: Quantile,
    /// Conditional value at risk at 95%.
    pub cvar95: Estimate,
}

/// Running mean and variance (Welford).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct MeanAccumulator {
    count: u64,
    mean: f64,
    sum_squares: f64,
}

impl MeanAccumulator {
    pub(crate) fn push(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.sum_squares += delta * (value - self.mean);
    }

    pub(crate) fn estimate(&self) -> Estimate {
        self.scaled(1.0)
    }

    /// The estimate of `factor x value`.
    pub(crate) fn scaled(&self, factor: f64) -> Estimate {
        let half_width = (self.count >= 2).then(|| {
            let variance = (self.sum_squares / (self.count - 1) as f64).max(0.0);
            Z_95 * (variance / self.count as f64).sqrt() * factor.abs()
        });
        Estimate {
            mean: self.mean * factor,
            half_width_95: half_width,
        }
    }
}

/// A ratio of sums over replications (sum of numerators / sum of denominators) with a
/// delta-method interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RatioAccumulator {
    count: u64,
    numerator: f64,
    denominator: f64,
    numerator_squares: f64,
    denominator_squares: f64,
    cross: f64,
}

impl RatioAccumulator {
    pub(crate) fn push(&mut self, numerator: f64, denominator: f64) {
        self.count += 1;
        self.numerator += numerator;
        self.denominator += denominator;
        self.numerator_squares += numerator * numerator;
        self.denominator_squares += denominator * denominator;
        self.cross += numerator * denominator;
    }

    /// `None` when every denominator was zero.
    pub(crate) fn estimate(&self) -> Option<Estimate> {
        if self.denominator <= 0.0 {
            return None;
        }
        let ratio = self.numerator / self.denominator;
        let half_width = (self.count >= 2).then(|| {
            let n = self.count as f64;
            let residual_squares = (self.numerator_squares - 2.0 * ratio * self.cross
                + ratio * ratio * self.denominator_squares)
                .max(0.0);
            let mean_denominator = self.denominator / n;
            let variance = residual_squares / (n * (n - 1.0) * mean_denominator * mean_denominator);
            Z_95 * variance.sqrt()
        });
        Some(Estimate {
            mean: ratio,
            half_width_95: half_width,
        })
    }
}

fn nearest_rank(sorted: &[f64], rank: f64) -> f64 {
    let index = (rank.ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn quantile(sorted: &[f64], probability: f64) -> Quantile {
    let n = sorted.len() as f64;
    let spread = Z_95 * (n * probability * (1.0 - probability)).sqrt();
    Quantile {
        value: nearest_rank(sorted, n * probability),
        ci95_low: nearest_rank(sorted, (n * probability - spread).floor()),
        ci95_high: nearest_rank(sorted, (n * probability + spread).ceil() + 1.0),
    }
}

/// CVaR at level `alpha` as the mean of Rockafellar-Uryasev terms VaR + (L - VaR)+ / (1 - alpha),
/// whose spread gives the interval.
fn conditional_value_at_risk(values: &[f64], sorted: &[f64], alpha: f64) -> Estimate {
    let value_at_risk = nearest_rank(sorted, sorted.len() as f64 * alpha);
    let mut accumulator = MeanAccumulator::default();
    for &value in values {
        accumulator.push(value_at_risk + (value - value_at_risk).max(0.0) / (1.0 - alpha));
    }
    accumulator.estimate()
}

/// Summarises per-replication totals (given in replication order). `None` for no values.
pub(crate) fn tail_summary(values: &[f64]) -> Option<TailSummary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut mean = MeanAccumulator::default();
    values.iter().for_each(|&value| mean.push(value));
    Some(TailSummary {
        mean: mean.estimate(),
        p50: quantile(&sorted, 0.5),
        p95: quantile(&sorted, 0.95),
        p99: quantile(&sorted, 0.99),
        cvar95: conditional_value_at_risk(values, &sorted, 0.95),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvar_of_equiprobable_losses_matches_oracle() {
        // ORACLES.md: losses 1..10, CVaR_0.8 = 9.5, CVaR_0.9 = 10.
        let losses: Vec<f64> = (1..=10).map(f64::from).collect();
        let sorted = losses.clone();
        assert!((conditional_value_at_risk(&losses, &sorted, 0.8).mean - 9.5).abs() < 1e-12);
        assert!((conditional_value_at_risk(&losses, &sorted, 0.9).mean - 10.0).abs() < 1e-12);
    }

    #[test]
    fn mean_interval_shrinks_like_one_over_root_n() {
        let mut small = MeanAccumulator::default();
        let mut large = MeanAccumulator::default();
        for i in 0..100 {
            small.push(f64::from(i % 2));
        }
        for i in 0..10_000 {
            large.push(f64::from(i % 2));
        }
        let ratio =
            small.estimate().half_width_95.unwrap() / large.estimate().half_width_95.unwrap();
        assert!((ratio - 10.0).abs() < 0.1);
    }

    #[test]
    fn ratio_without_denominator_is_absent_not_nan() {
        let mut ratio = RatioAccumulator::default();
        ratio.push(0.0, 0.0);
        ratio.push(0.0, 0.0);
        assert_eq!(ratio.estimate(), None);
    }

    #[test]
    fn one_replication_has_no_interval() {
        let mut mean = MeanAccumulator::default();
        mean.push(3.0);
        assert_eq!(mean.estimate().half_width_95, None);
        let summary = tail_summary(&[3.0]).unwrap();
        assert_eq!(summary.p99.value, 3.0);
        assert_eq!(summary.cvar95.mean, 3.0);
    }
}
