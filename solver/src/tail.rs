//! Tail risk: exact CVaR of equiprobable losses and the worst-tail scenario weights.

use crate::error::{Result, invalid, open_unit};

/// CVaR_alpha of equiprobable `losses`: the mean of the worst (1 - alpha) share, with the
/// boundary scenario counted fractionally. Equals the Rockafellar-Uryasev minimum
/// min_t { t + E[(L - t)+] / (1 - alpha) }.
pub fn cvar(losses: &[f64], alpha: f64) -> Result<f64> {
    check(losses, alpha)?;
    let weights = tail_weights(losses, alpha)?;
    Ok(losses.iter().zip(&weights).map(|(l, w)| l * w).sum())
}

/// Value at risk: the smallest loss t with P(L <= t) >= alpha.
pub fn value_at_risk(losses: &[f64], alpha: f64) -> Result<f64> {
    check(losses, alpha)?;
    let mut sorted = losses.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((alpha * sorted.len() as f64) - 1e-9).ceil().max(1.0) as usize;
    Ok(sorted[rank.min(sorted.len()) - 1])
}

/// The weights q that attain CVaR as max { sum q_k L_k : 0 <= q_k <= 1/((1-alpha) N), sum q = 1 }:
/// the largest losses get the cap, the boundary scenario the remainder.
pub fn tail_weights(losses: &[f64], alpha: f64) -> Result<Vec<f64>> {
    check(losses, alpha)?;
    let count = losses.len();
    let cap = 1.0 / ((1.0 - alpha) * count as f64);
    let mut order: Vec<usize> = (0..count).collect();
    // Ties are broken by index so the weights are deterministic.
    order.sort_by(|&a, &b| losses[b].total_cmp(&losses[a]).then(a.cmp(&b)));
    let mut weights = vec![0.0; count];
    let mut remaining = 1.0;
    for index in order {
        if remaining <= 0.0 {
            break;
        }
        let w = cap.min(remaining);
        weights[index] = w;
        remaining -= w;
    }
    Ok(weights)
}

/// Validates losses and the confidence level.
fn check(losses: &[f64], alpha: f64) -> Result<()> {
    open_unit("cvar_alpha", alpha)?;
    if losses.is_empty() {
        return Err(invalid("losses", "must not be empty"));
    }
    if let Some(index) = losses.iter().position(|l| !l.is_finite()) {
        return Err(invalid(format!("losses[{index}]"), "must be finite"));
    }
    Ok(())
}

/// [`cvar`] in O(n) by selection on a reusable scratch copy, for search loops that price
/// many candidate loss vectors; unchecked (the caller validated alpha and the losses).
pub(crate) fn cvar_with_scratch(losses: &[f64], alpha: f64, scratch: &mut Vec<f64>) -> f64 {
    let n = losses.len();
    let cap = 1.0 / ((1.0 - alpha) * n as f64);
    let full = ((1.0 / cap) + 1e-9).floor() as usize;
    scratch.clear();
    scratch.extend_from_slice(losses);
    if full >= n {
        return scratch.iter().sum::<f64>() * cap.min(1.0 / n as f64);
    }
    let (top, boundary, _) = scratch.select_nth_unstable_by(full, |a, b| b.total_cmp(a));
    let top_sum: f64 = top.iter().sum();
    cap * top_sum + (1.0 - full as f64 * cap).max(0.0) * *boundary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::Pipeline;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    #[test]
    fn cvar_of_one_to_ten() {
        let losses: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((cvar(&losses, 0.8).unwrap() - 9.5).abs() < 1e-12);
        assert!((cvar(&losses, 0.9).unwrap() - 10.0).abs() < 1e-12);
        assert_eq!(value_at_risk(&losses, 0.8).unwrap(), 8.0);
    }

    #[test]
    fn cvar_equals_the_rockafellar_uryasev_minimum() {
        let losses = [3.0, 0.5, 7.25, 7.25, 1.0, 9.0, 2.0];
        for alpha in [0.5, 0.7, 0.8, 0.95] {
            let ru = |t: f64| {
                t + losses.iter().map(|l| (l - t).max(0.0)).sum::<f64>()
                    / ((1.0 - alpha) * losses.len() as f64)
            };
            // The RU objective is piecewise linear with kinks at the losses.
            let best = losses.iter().map(|&t| ru(t)).fold(f64::INFINITY, f64::min);
            assert!(
                (cvar(&losses, alpha).unwrap() - best).abs() < 1e-9,
                "alpha {alpha}"
            );
        }
    }

    #[test]
    fn poisson_tail_example() {
        // Backorders (X - 3)+ with X ~ Poisson(2.348768): CVaR_0.95 = 2.93946.
        let pipeline = Pipeline::poisson(2.348768).unwrap();
        let pmf = pipeline.pmf(60);
        // The distribution is discrete; CVaR over an atom-weighted distribution.
        let alpha: f64 = 0.95;
        let mut remaining = 1.0 - alpha;
        let mut total = 0.0;
        for (x, p) in pmf.iter().enumerate().rev() {
            let take = p.min(remaining);
            total += take * (x as f64 - 3.0).max(0.0);
            remaining -= take;
        }
        let value = total / (1.0 - alpha);
        assert!((value - 2.93946).abs() < 1e-5, "{value}");
        // The same figure from a fine equiprobable discretisation of the distribution.
        let n = 100_000usize;
        let cumulative = crate::distribution::cumulative(&pmf);
        let losses: Vec<f64> = (0..n)
            .map(|k| {
                let u = (k as f64 + 0.5) / n as f64;
                let x = cumulative.iter().position(|c| *c >= u).unwrap_or(pmf.len());
                (x as f64 - 3.0).max(0.0)
            })
            .collect();
        assert!((cvar(&losses, alpha).unwrap() - 2.93946).abs() < 1e-3);
    }

    #[test]
    fn rejects_bad_alpha_and_nan() {
        assert!(cvar(&[1.0], 1.0).is_err());
        assert!(cvar(&[f64::NAN], 0.5).is_err());
        assert!(cvar(&[], 0.5).is_err());
    }

    #[test]
    fn cvar_with_scratch_matches_cvar() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut scratch = Vec::new();
        for n in [1usize, 2, 7, 20, 100, 333] {
            for alpha in [0.5, 0.9, 0.95, 0.99] {
                let losses: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..100.0)).collect();
                let exact = cvar(&losses, alpha).unwrap();
                let fast = cvar_with_scratch(&losses, alpha, &mut scratch);
                assert!(
                    (exact - fast).abs() <= 1e-9 * exact.max(1.0),
                    "{n} {alpha}: {exact} vs {fast}"
                );
            }
        }
    }
}
