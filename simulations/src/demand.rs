//! Demand processes: Poisson failures, Weibull wear-out renewals and bootstrapped history.
//!
//! Each process answers "when is the next demand after time t?" directly, so the engine jumps
//! from event to event and a slow mover costs nothing while nothing happens.

use rand::rngs::SmallRng;

use crate::model::DemandHistory;
use crate::random::{exponential, standard_normal, uniform};

/// A piecewise-constant multiplier on a failure rate over calendar time (common-cause shocks).
/// Segments cover [0, infinity) in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RateProfile {
    /// (start day, end day, multiplier), contiguous and sorted.
    segments: Vec<(f64, f64, f64)>,
}

impl RateProfile {
    /// The profile of a set of possibly overlapping shocks (start, end, multiplier):
    /// overlapping shocks multiply.
    pub(crate) fn from_shocks(shocks: &[(f64, f64, f64)]) -> RateProfile {
        let mut breakpoints: Vec<f64> = vec![0.0, f64::INFINITY];
        for &(start, end, _) in shocks {
            breakpoints.push(start.max(0.0));
            breakpoints.push(end.max(0.0));
        }
        breakpoints.sort_by(f64::total_cmp);
        breakpoints.dedup();
        let segments = breakpoints
            .windows(2)
            .map(|pair| {
                let multiplier = shocks
                    .iter()
                    .filter(|&&(start, end, _)| start <= pair[0] && pair[0] < end)
                    .map(|&(_, _, multiplier)| multiplier)
                    .product();
                (pair[0], pair[1], multiplier)
            })
            .collect();
        RateProfile { segments }
    }

    /// Index of the segment holding day `t`.
    fn segment_at(&self, t: f64) -> usize {
        let index = self.segments.partition_point(|&(_, end, _)| end <= t);
        index.min(self.segments.len().saturating_sub(1))
    }
}

/// The profile of a constant rate (no shocks).
pub(crate) static FLAT: std::sync::LazyLock<RateProfile> =
    std::sync::LazyLock::new(|| RateProfile::from_shocks(&[]));

/// A logarithmic (log-series) variate with parameter `p` in (0, 1): P(k) = -p^k / (k ln(1-p)),
/// k >= 1. Kemp's (1981) algorithm LK, as numpy draws it.
pub(crate) fn logarithmic(p: f64, rng: &mut SmallRng) -> u32 {
    let r = (-p).ln_1p();
    loop {
        let v = uniform(rng);
        if v >= p {
            return 1;
        }
        let q = -(r * uniform(rng)).exp_m1();
        if v <= q * q {
            if v <= 0.0 {
                continue;
            }
            let k = (1.0 + v.ln() / q.ln()).floor();
            if k < 1.0 {
                continue;
            }
            return if k >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                k as u32
            };
        }
        return if v >= q { 1 } else { 2 };
    }
}

/// Next arrival after `t` of a Poisson process with rate `rate_per_day x profile(t)`.
/// `None` if the rate is zero from `t` on.
pub(crate) fn next_poisson(
    rate_per_day: f64,
    profile: &RateProfile,
    t: f64,
    rng: &mut SmallRng,
) -> Option<f64> {
    let mut budget = exponential(rng);
    let mut now = t;
    for &(_, end, multiplier) in &profile.segments[profile.segment_at(t)..] {
        let rate = rate_per_day * multiplier;
        let available = rate * (end - now);
        if available >= budget {
            return Some(now + budget / rate);
        }
        budget -= available;
        now = end;
    }
    None
}

/// Weibull life of one installed unit, in operating hours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WeibullLife {
    /// Shape k.
    pub(crate) shape: f64,
    /// Scale in operating hours.
    pub(crate) scale_hours: f64,
    /// Operating hours per calendar day.
    pub(crate) hours_per_day: f64,
}

impl WeibullLife {
    fn cumulative_hazard(&self, age_hours: f64) -> f64 {
        (age_hours / self.scale_hours).powf(self.shape)
    }

    fn age_at_hazard(&self, hazard: f64) -> f64 {
        self.scale_hours * hazard.powf(1.0 / self.shape)
    }

    /// Next failure after day `t` of a unit aged `age_hours` at `t`, with the hazard
    /// multiplied by the profile (proportional hazards). `None` if it never fails.
    pub(crate) fn next_failure(
        &self,
        profile: &RateProfile,
        t: f64,
        age_hours: f64,
        rng: &mut SmallRng,
    ) -> Option<f64> {
        if self.hours_per_day <= 0.0 {
            return None;
        }
        let mut budget = exponential(rng);
        let (mut now, mut age) = (t, age_hours);
        for &(_, end, multiplier) in &profile.segments[profile.segment_at(t)..] {
            let end_age = age + (end - now) * self.hours_per_day;
            let available =
                multiplier * (self.cumulative_hazard(end_age) - self.cumulative_hazard(age));
            if multiplier > 0.0 && available >= budget {
                let target = self.cumulative_hazard(age) + budget / multiplier;
                let failure_age = self.age_at_hazard(target).max(age);
                return Some(now + (failure_age - age) / self.hours_per_day);
            }
            if multiplier > 0.0 {
                budget -= available;
            }
            now = end;
            age = end_age;
        }
        None
    }
}

/// Bootstrap of an intermittent series (Willemain, Smart and Schwarz 2004).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bootstrap {
    /// Days per period.
    pub(crate) period_days: f64,
    /// P(demand next period | no demand this period).
    pub(crate) zero_to_demand: f64,
    /// P(demand next period | demand this period).
    pub(crate) demand_to_demand: f64,
    /// Non-zero sizes of the history.
    pub(crate) sizes: Vec<u32>,
    /// Whether the last period of the history had demand (the chain starts there).
    pub(crate) starts_with_demand: bool,
    /// Willemain's jitter on resampled sizes.
    pub(crate) jitter: bool,
    /// Multiplier on sizes, rounded stochastically.
    pub(crate) multiplier: f64,
}

impl Bootstrap {
    /// Fits the two-state occurrence chain and collects the sizes. A state never left in the
    /// history falls back to the share of periods with demand.
    pub(crate) fn fit(history: &DemandHistory) -> Bootstrap {
        let occurs: Vec<bool> = history.quantities.iter().map(|&q| q > 0).collect();
        let share = occurs.iter().filter(|&&o| o).count() as f64 / occurs.len().max(1) as f64;
        let mut counts = [[0u64; 2]; 2];
        for pair in occurs.windows(2) {
            counts[usize::from(pair[0])][usize::from(pair[1])] += 1;
        }
        let probability = |from: usize| {
            let total = counts[from][0] + counts[from][1];
            if total == 0 {
                share
            } else {
                counts[from][1] as f64 / total as f64
            }
        };
        Bootstrap {
            period_days: history.period_days,
            zero_to_demand: probability(0),
            demand_to_demand: probability(1),
            sizes: history
                .quantities
                .iter()
                .copied()
                .filter(|&q| q > 0)
                .collect(),
            starts_with_demand: occurs.last().copied().unwrap_or(false),
            jitter: history.jitter,
            multiplier: history.demand_multiplier,
        }
    }

    /// The next period with demand after `period`, given whether `period` had demand.
    pub(crate) fn next_period(
        &self,
        period: u64,
        had_demand: bool,
        rng: &mut SmallRng,
    ) -> Option<u64> {
        if self.sizes.is_empty() {
            return None;
        }
        let stay = if had_demand {
            self.demand_to_demand
        } else {
            self.zero_to_demand
        };
        if uniform(rng) < stay {
            return Some(period + 1);
        }
        // From a period without demand, the wait for the next one is geometric.
        if self.zero_to_demand <= 0.0 {
            return None;
        }
        if self.zero_to_demand >= 1.0 {
            return Some(period + 2);
        }
        let u = 1.0 - uniform(rng);
        let trials = (u.ln() / (1.0 - self.zero_to_demand).ln()).ceil().max(1.0);
        Some(period + 1 + trials as u64)
    }

    /// The size of one demanding period: a resampled history size, jittered, scaled.
    pub(crate) fn size(&self, rng: &mut SmallRng) -> u32 {
        let index = ((uniform(rng) * self.sizes.len() as f64) as usize).min(self.sizes.len() - 1);
        let base = f64::from(self.sizes[index]);
        let mut size = base;
        if self.jitter {
            // Willemain's jitter, X* = 1 + INT(X + Z sqrt(X)), kept at X when not positive.
            let jittered = 1.0 + (base + standard_normal(rng) * base.sqrt()).floor();
            if jittered > 0.0 {
                size = jittered;
            }
        }
        let scaled = size * self.multiplier;
        (scaled.floor() + f64::from(uniform(rng) < scaled.fract())) as u32
    }

    /// Long-run mean units per period of the fitted chain without jitter.
    #[cfg(test)]
    pub(crate) fn mean_per_period(&self) -> f64 {
        let leave = 1.0 - self.demand_to_demand + self.zero_to_demand;
        let occupancy = if leave > 0.0 {
            self.zero_to_demand / leave
        } else {
            f64::from(u8::from(self.starts_with_demand))
        };
        let mean_size =
            self.sizes.iter().map(|&s| f64::from(s)).sum::<f64>() / self.sizes.len().max(1) as f64;
        occupancy * mean_size * self.multiplier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{Purpose, stream};

    #[test]
    fn overlapping_shocks_multiply() {
        let profile = RateProfile::from_shocks(&[(10.0, 20.0, 2.0), (15.0, 30.0, 3.0)]);
        let at = |t: f64| profile.segments[profile.segment_at(t)].2;
        assert_eq!(at(5.0), 1.0);
        assert_eq!(at(12.0), 2.0);
        assert_eq!(at(16.0), 6.0);
        assert_eq!(at(25.0), 3.0);
        assert_eq!(at(40.0), 1.0);
    }

    #[test]
    fn poisson_count_matches_rate_times_time_under_a_shock() {
        let profile = RateProfile::from_shocks(&[(100.0, 200.0, 4.0)]);
        let mut rng = stream(3, 0, 9, Purpose::Demand);
        let (mut t, mut count) = (0.0, 0u64);
        let horizon = 1_000.0;
        while let Some(next) = next_poisson(0.5, &profile, t, &mut rng) {
            if next >= horizon {
                break;
            }
            t = next;
            count += 1;
        }
        // Expected 0.5 * (900 + 4 * 100) = 650, standard deviation sqrt(650) = 25.5.
        assert!((count as f64 - 650.0).abs() < 4.0 * 650f64.sqrt());
    }

    #[test]
    fn logarithmic_batches_have_the_textbook_mean_and_variance() {
        // p = 1 - 1/v with v = 4: mean (v - 1) / ln v, E[X^2] = p v^2 / ln v.
        let ratio: f64 = 4.0;
        let p = 1.0 - 1.0 / ratio;
        let mut rng = stream(21, 0, 3, Purpose::Demand);
        let n = 200_000;
        let draws: Vec<f64> = (0..n)
            .map(|_| f64::from(logarithmic(p, &mut rng)))
            .collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let second = draws.iter().map(|x| x * x).sum::<f64>() / n as f64;
        let expected_mean = (ratio - 1.0) / ratio.ln();
        let expected_second = p * ratio * ratio / ratio.ln();
        let sd = (expected_second - expected_mean * expected_mean).sqrt();
        assert!(
            (mean - expected_mean).abs() < 4.0 * sd / (n as f64).sqrt(),
            "{mean}"
        );
        assert!(
            (second - expected_second).abs() / expected_second < 0.03,
            "{second}"
        );
    }

    #[test]
    fn weibull_mean_life_from_new() {
        let life = WeibullLife {
            shape: 2.0,
            scale_hours: 100.0,
            hours_per_day: 10.0,
        };
        let profile = RateProfile::from_shocks(&[]);
        let mut rng = stream(5, 0, 1, Purpose::Demand);
        let n = 50_000;
        let total: f64 = (0..n)
            .map(|_| {
                life.next_failure(&profile, 0.0, 0.0, &mut rng)
                    .unwrap_or(0.0)
            })
            .sum();
        // Mean life = scale * Gamma(1 + 1/2) = 88.62 hours = 8.862 days; sd = 4.63 days.
        let mean = total / f64::from(n);
        assert!((mean - 8.862_269).abs() < 4.0 * 4.632 / f64::from(n).sqrt());
    }

    fn history(jitter: bool) -> DemandHistory {
        DemandHistory {
            part: "p".into(),
            location: "s".into(),
            period_days: 7.0,
            quantities: vec![0, 0, 3, 0, 0, 0, 2, 0, 5, 0, 0, 1, 1, 0, 0, 2],
            machine_model: None,
            demand_multiplier: 1.0,
            jitter,
        }
    }

    fn bootstrap_units_per_period(bootstrap: &Bootstrap, periods: u64) -> (f64, f64) {
        let mut rng = stream(11, 0, 4, Purpose::Demand);
        let (mut period, mut units, mut squares) = (0u64, 0.0, 0.0);
        while let Some(next) = bootstrap.next_period(period, period > 0, &mut rng) {
            if next >= periods {
                break;
            }
            let size = f64::from(bootstrap.size(&mut rng));
            units += size;
            squares += size * size;
            period = next;
        }
        (units / periods as f64, squares)
    }

    #[test]
    fn bootstrap_without_jitter_has_the_fitted_chain_mean() {
        let bootstrap = Bootstrap::fit(&history(false));
        let periods = 400_000;
        let (mean, squares) = bootstrap_units_per_period(&bootstrap, periods);
        // Periods are correlated through the chain; a bound of 4 x sqrt(sum of squares) / n
        // is loose enough for that (runs of demand are short) yet catches a biased sampler.
        let tolerance = 4.0 * squares.sqrt() / periods as f64;
        assert!(
            (mean - bootstrap.mean_per_period()).abs() < tolerance,
            "{mean}"
        );
    }

    #[test]
    fn jitter_keeps_sizes_positive_and_raises_small_sizes() {
        let bootstrap = Bootstrap::fit(&history(true));
        let mut rng = stream(12, 0, 4, Purpose::Demand);
        let sizes: Vec<u32> = (0..10_000).map(|_| bootstrap.size(&mut rng)).collect();
        assert!(sizes.iter().all(|&s| s >= 1));
        assert!(sizes.iter().any(|s| !bootstrap.sizes.contains(s)));
    }
}
