//! Discrete demand distributions (Poisson, negative binomial) and their backorder curves.

use crate::error::{Result, invalid, non_negative};
use serde::{Deserialize, Serialize};

/// Probability mass below which a tail is treated as empty when tabulating.
const TAIL_TOLERANCE: f64 = 1e-12;

/// The number of units in resupply (the pipeline), as a discrete distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Pipeline {
    /// Poisson with the given mean (Palm's theorem).
    Poisson {
        /// Mean units in resupply.
        mean: f64,
    },
    /// Negative binomial fitted to a mean and a variance greater than the mean.
    NegativeBinomial {
        /// Mean units in resupply.
        mean: f64,
        /// Variance of units in resupply (> mean).
        variance: f64,
    },
}

/// Expected and variance of backorders, and the fill rate, at one stock level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BackorderPoint {
    /// Base stock level.
    pub stock: u64,
    /// Expected backorders EBO(s) = E[(X - s)+].
    pub expected_backorders: f64,
    /// Variance of backorders VBO(s).
    pub variance_backorders: f64,
    /// Fill rate P(X <= s - 1): the share of demands met at once from stock.
    pub fill_rate: f64,
}

impl Pipeline {
    /// A Poisson pipeline; errors if the mean is negative or not finite.
    pub fn poisson(mean: f64) -> Result<Self> {
        non_negative("mean", mean)?;
        Ok(Self::Poisson { mean })
    }

    /// A pipeline fitted to mean and variance: negative binomial if the variance
    /// exceeds the mean, Poisson otherwise (the VARI-METRIC rule).
    pub fn fit(mean: f64, variance: f64) -> Result<Self> {
        non_negative("mean", mean)?;
        non_negative("variance", variance)?;
        if variance > mean * (1.0 + 1e-12) && mean > 0.0 {
            Ok(Self::NegativeBinomial { mean, variance })
        } else {
            Ok(Self::Poisson { mean })
        }
    }

    /// Mean units in resupply.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Poisson { mean } | Self::NegativeBinomial { mean, .. } => mean,
        }
    }

    /// Variance of units in resupply.
    pub fn variance(&self) -> f64 {
        match *self {
            Self::Poisson { mean } => mean,
            Self::NegativeBinomial { variance, .. } => variance,
        }
    }

    /// Probabilities P(X = 0), P(X = 1), ... up to `count` terms.
    pub fn pmf(&self, count: usize) -> Vec<f64> {
        self.probabilities().take(count).collect()
    }

    /// Probabilities P(X = 0), P(X = 1), ... without end, computed one at a time so a
    /// caller that stops early neither tabulates nor allocates the rest.
    fn probabilities(&self) -> Probabilities {
        // Multiplicative recursions from P(X = 0); the log form is used only when P(X = 0)
        // would underflow.
        let recursion = match *self {
            _ if self.mean() == 0.0 => Recursion::Degenerate,
            Self::Poisson { mean } => {
                let first = (-mean).exp();
                if first > 1e-300 {
                    Recursion::PoissonProduct { mean, p: first }
                } else {
                    Recursion::PoissonLog {
                        log_mean: mean.ln(),
                        log_p: -mean,
                    }
                }
            }
            Self::NegativeBinomial { mean, variance } => {
                let success = mean / variance;
                let size = mean * mean / (variance - mean);
                let log_first = size * success.ln();
                if log_first > -690.0 {
                    Recursion::NegativeBinomialProduct {
                        size,
                        failure: 1.0 - success,
                        p: log_first.exp(),
                    }
                } else {
                    Recursion::NegativeBinomialLog {
                        size,
                        log_failure: (1.0 - success).ln(),
                        log_p: log_first,
                    }
                }
            }
        };
        Probabilities { x: 0, recursion }
    }

    /// The survival probabilities P(X > s) for s = 0, 1, ..., written into `out` until it
    /// is full or one reaches zero; returns how many were written. They come from the
    /// pmf recursions of [`Pipeline::probabilities`] as 1 - P(X = 0) - P(X = 1) - ...,
    /// with a tight loop for the common (non-log) recursions.
    pub fn survival_into(&self, out: &mut [f64]) -> usize {
        let probabilities = self.probabilities();
        match probabilities.recursion {
            Recursion::PoissonProduct { mean, p } => {
                fill_survival(out, p, |p, x| p * (mean / (x + 1) as f64))
            }
            Recursion::NegativeBinomialProduct { size, failure, p } => {
                fill_survival(out, p, |p, x| {
                    let xf = x as f64;
                    p * ((xf + size) / (xf + 1.0) * failure)
                })
            }
            _ => {
                let mut above = 1.0;
                for (written, (slot, p)) in out.iter_mut().zip(probabilities).enumerate() {
                    above -= p;
                    if above <= 0.0 {
                        return written;
                    }
                    *slot = above;
                }
                out.len()
            }
        }
    }

    /// Backorder curve for stock 0..=max_stock, computed by the exact recursions
    /// EBO(s+1) = EBO(s) - P(X > s) and E[(X-s-1)+^2] = E[(X-s)+^2] - 2 EBO(s) + P(X > s).
    pub fn backorder_curve(&self, max_stock: u64) -> Vec<BackorderPoint> {
        let count = usize::try_from(max_stock).unwrap_or(usize::MAX - 1) + 1;
        let pmf = self.pmf(count);
        let mean = self.mean();
        let mut ebo = mean;
        let mut second = self.variance() + mean * mean;
        let mut below: f64 = 0.0; // P(X <= s - 1)
        let mut out = Vec::with_capacity(count);
        for (s, p) in pmf.iter().enumerate() {
            out.push(BackorderPoint {
                stock: s as u64,
                expected_backorders: ebo.max(0.0),
                variance_backorders: (second - ebo * ebo).max(0.0),
                fill_rate: below.min(1.0),
            });
            let above = (1.0 - below - p).max(0.0); // P(X > s)
            second = (second - 2.0 * ebo + above).max(0.0);
            ebo = (ebo - above).max(0.0);
            below += p;
        }
        out
    }

    /// Backorder figures at one stock level.
    pub fn at(&self, stock: u64) -> BackorderPoint {
        let curve = self.backorder_curve(stock);
        curve[curve.len() - 1]
    }

    /// The smallest stock whose expected backorders fall below `tolerance`, a
    /// natural upper end for enumerating stock levels.
    pub fn stock_covering(&self, tolerance: f64) -> Result<u64> {
        non_negative("tolerance", tolerance)?;
        let mean = self.mean();
        let sd = self.variance().sqrt();
        let mut upper = (mean + 10.0 * sd + 10.0).ceil() as u64;
        loop {
            let curve = self.backorder_curve(upper);
            if let Some(point) = curve
                .iter()
                .find(|p| p.expected_backorders <= tolerance.max(TAIL_TOLERANCE))
            {
                return Ok(point.stock);
            }
            if upper > 10_000_000 {
                return Err(invalid("mean", "pipeline too large to tabulate"));
            }
            upper *= 2;
        }
    }
}

/// The probabilities of a [`Pipeline`] in order, from [`Pipeline::probabilities`].
#[derive(Debug, Clone)]
struct Probabilities {
    /// The value whose probability comes next.
    x: usize,
    recursion: Recursion,
}

/// The state of one pmf recursion: the next term and what the step to the one after needs.
#[derive(Debug, Clone, Copy)]
enum Recursion {
    /// Mean zero: all the mass at 0.
    Degenerate,
    /// p(x+1) = p(x) mean / (x+1).
    PoissonProduct { mean: f64, p: f64 },
    /// The same in logs, for means whose P(X = 0) underflows.
    PoissonLog { log_mean: f64, log_p: f64 },
    /// p(x+1) = p(x) (x + size) / (x + 1) (1 - success).
    NegativeBinomialProduct { size: f64, failure: f64, p: f64 },
    /// The same in logs.
    NegativeBinomialLog {
        size: f64,
        log_failure: f64,
        log_p: f64,
    },
}

impl Iterator for Probabilities {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let x = self.x;
        self.x += 1;
        let xf = x as f64;
        let p = match &mut self.recursion {
            Recursion::Degenerate => {
                if x == 0 {
                    1.0
                } else {
                    0.0
                }
            }
            Recursion::PoissonProduct { mean, p } => {
                let out = *p;
                *p *= *mean / (x + 1) as f64;
                out
            }
            Recursion::PoissonLog { log_mean, log_p } => {
                let out = log_p.exp();
                *log_p += *log_mean - ((x + 1) as f64).ln();
                out
            }
            Recursion::NegativeBinomialProduct { size, failure, p } => {
                let out = *p;
                *p *= (xf + *size) / (xf + 1.0) * *failure;
                out
            }
            Recursion::NegativeBinomialLog {
                size,
                log_failure,
                log_p,
            } => {
                let out = log_p.exp();
                *log_p += ((xf + *size) / (xf + 1.0)).ln() + *log_failure;
                out
            }
        };
        Some(p)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Survival probabilities from P(X = 0) = `first` and the step p(x) -> p(x + 1), into
/// `out` until it is full or one reaches zero; returns how many were written.
fn fill_survival(out: &mut [f64], first: f64, step: impl Fn(f64, usize) -> f64) -> usize {
    let mut above = 1.0;
    let mut p = first;
    for (x, slot) in out.iter_mut().enumerate() {
        above -= p;
        if above <= 0.0 {
            return x;
        }
        *slot = above;
        p = step(p, x);
    }
    out.len()
}

/// Cumulative probabilities P(X <= x) for x = 0..count.
pub fn cumulative(pmf: &[f64]) -> Vec<f64> {
    let mut total = 0.0;
    pmf.iter()
        .map(|p| {
            total += p;
            total.min(1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_backorders_match_the_tail_example() {
        // ORACLES.md: pipeline mean 2.348768, stock 3 -> EBO 0.34717, P(backorder > 0) 0.21064.
        let pipeline = Pipeline::poisson(2.348768).unwrap();
        let point = pipeline.at(3);
        assert!((point.expected_backorders - 0.34717).abs() < 1e-5);
        let pmf = pipeline.pmf(4);
        let p_backorder = 1.0 - pmf.iter().sum::<f64>();
        assert!((p_backorder - 0.21064).abs() < 1e-5);
    }

    #[test]
    fn backorder_recursion_agrees_with_direct_sums() {
        for pipeline in [
            Pipeline::poisson(3.7).unwrap(),
            Pipeline::fit(3.7, 9.1).unwrap(),
        ] {
            let pmf = pipeline.pmf(400);
            for point in pipeline.backorder_curve(12) {
                let s = point.stock as f64;
                let ebo: f64 = pmf
                    .iter()
                    .enumerate()
                    .map(|(x, p)| (x as f64 - s).max(0.0) * p)
                    .sum();
                let second: f64 = pmf
                    .iter()
                    .enumerate()
                    .map(|(x, p)| (x as f64 - s).max(0.0).powi(2) * p)
                    .sum();
                assert!((point.expected_backorders - ebo).abs() < 1e-9);
                assert!((point.variance_backorders - (second - ebo * ebo)).abs() < 1e-8);
            }
        }
    }

    #[test]
    fn survival_matches_one_minus_the_pmf_sums_bit_for_bit() {
        // Product recursions, the log forms (P(X = 0) underflows) and a zero mean.
        let pipelines = [
            Pipeline::poisson(0.37).unwrap(),
            Pipeline::poisson(800.0).unwrap(),
            Pipeline::fit(2.0, 5.0).unwrap(),
            Pipeline::fit(1000.0, 1100.0).unwrap(),
            Pipeline::poisson(0.0).unwrap(),
        ];
        for pipeline in pipelines {
            for room in [0, 1, 7, 2000] {
                let mut expect = Vec::new();
                let mut above = 1.0;
                for p in pipeline.pmf(room) {
                    above -= p;
                    if above <= 0.0 {
                        break;
                    }
                    expect.push(above);
                }
                let mut out = vec![f64::NAN; room];
                let written = pipeline.survival_into(&mut out);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&out[..written]),
                    bits(&expect),
                    "{pipeline:?}, room {room}"
                );
            }
        }
    }

    #[test]
    fn negative_binomial_has_the_fitted_moments() {
        let pipeline = Pipeline::fit(2.0, 5.0).unwrap();
        let pmf = pipeline.pmf(500);
        let mean: f64 = pmf.iter().enumerate().map(|(x, p)| x as f64 * p).sum();
        let var: f64 = pmf
            .iter()
            .enumerate()
            .map(|(x, p)| (x as f64 - mean).powi(2) * p)
            .sum();
        assert!((mean - 2.0).abs() < 1e-9 && (var - 5.0).abs() < 1e-8);
    }

    #[test]
    fn rejects_negative_and_nan_means() {
        assert!(Pipeline::poisson(-1.0).is_err());
        assert!(Pipeline::poisson(f64::NAN).is_err());
        assert!(Pipeline::fit(1.0, f64::INFINITY).is_err());
    }
}
