//! Intermittent demand: Croston, SBA and TSB forecasts, Syntetos-Boylan classes, and the
//! Willemain bootstrap of lead-time demand.
//!
//! Conventions (stated because published figures depend on them): Croston and SBA start with
//! the first non-zero size and the first interval counted 1-based from the start of the
//! series (a first demand in period 3 gives interval 3). TSB starts with the share of
//! periods with demand and the mean non-zero size, updates the probability every period and
//! the size only on demand.

use crate::error::{Result, invalid, non_negative, open_unit};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Syntetos-Boylan cut-off on the average inter-demand interval.
pub const ADI_CUTOFF: f64 = 1.32;
/// Syntetos-Boylan cut-off on the squared coefficient of variation of non-zero sizes.
pub const CV_SQUARED_CUTOFF: f64 = 0.49;
/// Most bootstrap replications one call may ask for (memory: 8 bytes each).
pub const MAX_BOOTSTRAP_REPLICATIONS: usize = 1_000_000;

/// Forecasting method for intermittent demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForecastMethod {
    /// Croston (1972): size over interval.
    Croston,
    /// Syntetos-Boylan approximation: Croston x (1 - alpha / 2).
    Sba,
    /// Teunter-Syntetos-Babai: probability x size, probability updated every period.
    Tsb,
}

impl FromStr for ForecastMethod {
    type Err = crate::error::SolverError;
    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "croston" => Ok(Self::Croston),
            "sba" => Ok(Self::Sba),
            "tsb" => Ok(Self::Tsb),
            other => Err(invalid(
                "method",
                format!("unknown method `{other}` (croston, sba, tsb)"),
            )),
        }
    }
}

/// A per-period demand forecast and the smoothed state behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Method used.
    pub method: ForecastMethod,
    /// Forecast demand per period.
    pub per_period: f64,
    /// Smoothed non-zero demand size.
    pub size: f64,
    /// Smoothed interval between demands (Croston/SBA) or 1 / probability (TSB).
    pub interval: f64,
}

/// Syntetos-Boylan-Croston demand class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DemandClass {
    /// ADI < 1.32 and CV^2 < 0.49.
    Smooth,
    /// ADI >= 1.32 and CV^2 < 0.49.
    Intermittent,
    /// ADI < 1.32 and CV^2 >= 0.49.
    Erratic,
    /// ADI >= 1.32 and CV^2 >= 0.49.
    Lumpy,
}

/// The class of a series with the statistics that decide it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Mean interval between demands (first interval counted from the series start).
    pub adi: f64,
    /// Squared coefficient of variation of the non-zero sizes (population variance).
    pub cv_squared: f64,
    /// The class.
    pub class: DemandClass,
}

/// Forecast with `method`; `beta` is used only by TSB. Errors on NaN or negative values,
/// smoothing constants outside (0, 1), or a series with no demand (Croston/SBA).
pub fn forecast(series: &[f64], method: ForecastMethod, alpha: f64, beta: f64) -> Result<Forecast> {
    check_series(series)?;
    open_unit("alpha", alpha)?;
    match method {
        ForecastMethod::Croston | ForecastMethod::Sba => {
            let (size, interval) = croston_state(series, alpha)?;
            let factor = if method == ForecastMethod::Sba {
                1.0 - alpha / 2.0
            } else {
                1.0
            };
            Ok(Forecast {
                method,
                per_period: factor * size / interval,
                size,
                interval,
            })
        }
        ForecastMethod::Tsb => {
            open_unit("beta", beta)?;
            let (size, probability) = tsb_state(series, alpha, beta);
            let interval = if probability > 0.0 {
                1.0 / probability
            } else {
                f64::INFINITY
            };
            Ok(Forecast {
                method,
                per_period: probability * size,
                size,
                interval,
            })
        }
    }
}

/// Syntetos-Boylan classification; errors if the series has no demand.
pub fn classify(series: &[f64]) -> Result<Classification> {
    check_series(series)?;
    let positions: Vec<usize> = positive_positions(series);
    let Some(&last) = positions.last() else {
        return Err(invalid("series", "has no non-zero demand to classify"));
    };
    let adi = (last + 1) as f64 / positions.len() as f64;
    let sizes: Vec<f64> = positions.iter().map(|&i| series[i]).collect();
    let mean = sizes.iter().sum::<f64>() / sizes.len() as f64;
    let variance = sizes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / sizes.len() as f64;
    let cv_squared = variance / (mean * mean);
    let class = match (adi >= ADI_CUTOFF, cv_squared >= CV_SQUARED_CUTOFF) {
        (false, false) => DemandClass::Smooth,
        (true, false) => DemandClass::Intermittent,
        (false, true) => DemandClass::Erratic,
        (true, true) => DemandClass::Lumpy,
    };
    Ok(Classification {
        adi,
        cv_squared,
        class,
    })
}

/// The method the Syntetos-Boylan-Croston scheme recommends for a class: Croston for smooth
/// demand, SBA otherwise (Syntetos, Boylan and Croston 2005).
pub fn recommended_method(class: DemandClass) -> ForecastMethod {
    match class {
        DemandClass::Smooth => ForecastMethod::Croston,
        _ => ForecastMethod::Sba,
    }
}

/// The `p`-quantile (nearest rank) of bootstrap samples; errors if `samples` is empty or
/// `p` is outside [0, 1].
pub fn quantile(samples: &[u64], p: f64) -> Result<u64> {
    if samples.is_empty() {
        return Err(invalid("samples", "must not be empty"));
    }
    if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
        return Err(invalid("p", "must lie in [0, 1]"));
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Ok(sorted[rank - 1])
}

/// Croston's smoothed size and interval after the whole series.
fn croston_state(series: &[f64], alpha: f64) -> Result<(f64, f64)> {
    let positions = positive_positions(series);
    let Some(&first) = positions.first() else {
        return Err(invalid(
            "series",
            "has no non-zero demand (Croston needs one)",
        ));
    };
    let mut size = series[first];
    let mut interval = (first + 1) as f64;
    for pair in positions.windows(2) {
        let gap = (pair[1] - pair[0]) as f64;
        size += alpha * (series[pair[1]] - size);
        interval += alpha * (gap - interval);
    }
    Ok((size, interval))
}

/// TSB's smoothed size and demand probability after the whole series.
fn tsb_state(series: &[f64], alpha: f64, beta: f64) -> (f64, f64) {
    let positions = positive_positions(series);
    let mut probability = positions.len() as f64 / series.len() as f64;
    let mut size = if positions.is_empty() {
        0.0
    } else {
        positions.iter().map(|&i| series[i]).sum::<f64>() / positions.len() as f64
    };
    for &y in series {
        let occurred = if y > 0.0 { 1.0 } else { 0.0 };
        probability += beta * (occurred - probability);
        if y > 0.0 {
            size += alpha * (y - size);
        }
    }
    (size, probability)
}

/// Indexes of periods with demand.
fn positive_positions(series: &[f64]) -> Vec<usize> {
    series
        .iter()
        .enumerate()
        .filter(|(_, y)| **y > 0.0)
        .map(|(i, _)| i)
        .collect()
}

/// Rejects empty series and NaN or negative values, naming the period.
fn check_series(series: &[f64]) -> Result<()> {
    if series.is_empty() {
        return Err(invalid("series", "must not be empty"));
    }
    for (index, value) in series.iter().enumerate() {
        non_negative(&format!("series[{index}]"), *value)?;
    }
    Ok(())
}

/// Bootstrap lead-time demand (Willemain, Smart and Schwarz 2004): occurrence from a
/// two-state Markov chain fitted to the history, starting from the last period's state;
/// sizes resampled from the non-zero history with jitter 1 + round(x + z sqrt(x)) (the
/// sample itself when that is not positive); summed over `lead_time_periods`.
/// Returns `replications` lead-time demands, reproducible from `seed`.
pub fn bootstrap_lead_time_demand(
    series: &[f64],
    lead_time_periods: usize,
    replications: usize,
    seed: u64,
) -> Result<Vec<u64>> {
    check_series(series)?;
    if lead_time_periods == 0 {
        return Err(invalid("lead_time_periods", "must be at least 1"));
    }
    if replications == 0 || replications > MAX_BOOTSTRAP_REPLICATIONS {
        return Err(invalid(
            "replications",
            format!("must lie in 1..={MAX_BOOTSTRAP_REPLICATIONS}"),
        ));
    }
    let sizes: Vec<f64> = series.iter().copied().filter(|y| *y > 0.0).collect();
    if sizes.is_empty() {
        return Ok(vec![0; replications]);
    }
    let chain = MarkovOccurrence::fit(series);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(replications);
    for _ in 0..replications {
        let mut state = series[series.len() - 1] > 0.0;
        let mut total = 0u64;
        for _ in 0..lead_time_periods {
            let p = if state {
                chain.stay_positive
            } else {
                chain.zero_to_positive
            };
            state = rng.random::<f64>() < p;
            if state {
                let x = sizes[rng.random_range(0..sizes.len())];
                let z: f64 = rng.sample(StandardNormal);
                let jittered = (1.0 + (x + z * x.sqrt()).round()).max(0.0);
                // Saturating: sizes are bounded by the caller, but a total of
                // huge sizes must not overflow (it would panic in debug builds).
                total = total.saturating_add(if jittered > 0.0 {
                    jittered as u64
                } else {
                    x.round() as u64
                });
            }
        }
        out.push(total);
    }
    Ok(out)
}

/// Transition probabilities of demand occurrence.
struct MarkovOccurrence {
    zero_to_positive: f64,
    stay_positive: f64,
}

impl MarkovOccurrence {
    /// Counts transitions; an unseen state falls back to the overall share of demand periods.
    fn fit(series: &[f64]) -> Self {
        let share = series.iter().filter(|y| **y > 0.0).count() as f64 / series.len() as f64;
        let mut counts = [[0.0f64; 2]; 2];
        for pair in series.windows(2) {
            counts[usize::from(pair[0] > 0.0)][usize::from(pair[1] > 0.0)] += 1.0;
        }
        let rate = |row: [f64; 2]| {
            let total = row[0] + row[1];
            if total > 0.0 { row[1] / total } else { share }
        };
        Self {
            zero_to_positive: rate(counts[0]),
            stay_positive: rate(counts[1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIES: [f64; 12] = [0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 2.0, 0.0, 5.0, 0.0, 0.0, 1.0];

    #[test]
    fn croston_and_sba_match_oracle() {
        let c = forecast(&SERIES, ForecastMethod::Croston, 0.1, 0.1).unwrap();
        let s = forecast(&SERIES, ForecastMethod::Sba, 0.1, 0.1).unwrap();
        assert!((c.per_period - 0.969241).abs() < 1e-6, "{c:?}");
        assert!((s.per_period - 0.920779).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn tsb_matches_oracle() {
        let t = forecast(&SERIES, ForecastMethod::Tsb, 0.1, 0.1).unwrap();
        assert!((t.per_period - 0.997812).abs() < 1e-6, "{t:?}");
    }

    #[test]
    fn classification_matches_oracle() {
        let c = classify(&SERIES).unwrap();
        assert!((c.adi - 3.0).abs() < 1e-12);
        assert!((c.cv_squared - 0.2893).abs() < 1e-4);
        assert_eq!(c.class, DemandClass::Intermittent);
    }

    #[test]
    fn method_names_parse() {
        assert_eq!(
            "SBA".parse::<ForecastMethod>().unwrap(),
            ForecastMethod::Sba
        );
        assert!("holt".parse::<ForecastMethod>().is_err());
    }

    #[test]
    fn rejects_nan_and_negative() {
        assert!(forecast(&[1.0, f64::NAN], ForecastMethod::Croston, 0.1, 0.1).is_err());
        assert!(classify(&[1.0, -2.0]).is_err());
        assert!(forecast(&[0.0, 0.0], ForecastMethod::Croston, 0.1, 0.1).is_err());
        assert!(forecast(&[1.0], ForecastMethod::Croston, 1.5, 0.1).is_err());
    }

    #[test]
    fn bootstrap_is_seeded_and_plausible() {
        let a = bootstrap_lead_time_demand(&SERIES, 3, 20_000, 7).unwrap();
        let b = bootstrap_lead_time_demand(&SERIES, 3, 20_000, 7).unwrap();
        assert_eq!(a, b);
        let mean = a.iter().sum::<u64>() as f64 / a.len() as f64;
        // History averages 11/12 per period; the jitter adds about 1 per demand.
        assert!(mean > 1.5 && mean < 6.0, "{mean}");
        assert!(a.contains(&0));
    }
}
