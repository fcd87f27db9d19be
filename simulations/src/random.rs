//! Random streams keyed by (seed, replication, entity, purpose), and duration sampling.
//!
//! Every stream is derived from the run's seed and a stable key of the entity that draws from
//! it (ids, never list positions), so adding a fleet in a what-if leaves every other entity's
//! draws unchanged: that is what makes common random numbers work.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Exp1, StandardNormal};

use crate::model::TimeDistribution;

/// What a stream is used for, so one entity's streams never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Failure or demand arrivals of one demand source.
    Demand = 1,
    /// Transit times on one lane for one part.
    Transit = 2,
    /// Local repair decisions and times at one location for one part.
    LocalRepair = 3,
    /// Depot repair times for one part.
    DepotRepair = 4,
    /// Outside-supplier lead times at one location for one part.
    ExternalSupply = 5,
    /// Emergency shipment delays for failures at one node of one part (`tree`).
    Emergency = 6,
}

/// SplitMix64 finaliser: a bijective mix with good avalanche.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit key for an entity named by a few ids (FNV-1a with a separator byte).
pub(crate) fn entity_key(ids: &[&str]) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for id in ids {
        for byte in id.bytes().chain(std::iter::once(0xFF)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    mix(hash)
}

/// The stream of one (replication, entity, purpose) under `seed`.
pub(crate) fn stream(seed: u64, replication: u32, entity: u64, purpose: Purpose) -> SmallRng {
    let key = mix(mix(mix(seed) ^ u64::from(replication)) ^ entity) ^ (purpose as u64);
    SmallRng::seed_from_u64(mix(key))
}

/// One standard exponential draw.
pub(crate) fn exponential(rng: &mut SmallRng) -> f64 {
    rng.sample(Exp1)
}

/// One uniform draw in [0, 1).
pub(crate) fn uniform(rng: &mut SmallRng) -> f64 {
    rng.random::<f64>()
}

/// One standard normal draw.
pub(crate) fn standard_normal(rng: &mut SmallRng) -> f64 {
    rng.sample(StandardNormal)
}

/// One duration in days. A deterministic duration draws nothing, and scaled distributions
/// draw the same underlying numbers (see [`TimeDistribution::scaled`]).
pub(crate) fn duration(distribution: &TimeDistribution, rng: &mut SmallRng) -> f64 {
    match *distribution {
        TimeDistribution::Deterministic { days } => days,
        TimeDistribution::Exponential { mean_days } => mean_days * exponential(rng),
        TimeDistribution::Uniform { min_days, max_days } => {
            min_days + (max_days - min_days) * uniform(rng)
        }
        TimeDistribution::LogNormal {
            mean_days,
            std_dev_days,
        } => {
            if mean_days <= 0.0 {
                return 0.0;
            }
            let ratio = std_dev_days / mean_days;
            let sigma_squared = (1.0 + ratio * ratio).ln();
            let mu = mean_days.ln() - 0.5 * sigma_squared;
            (mu + sigma_squared.sqrt() * standard_normal(rng)).exp()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_every_part_of_the_key() {
        let base = stream(7, 0, entity_key(&["a"]), Purpose::Demand).random::<u64>();
        let other_seed = stream(8, 0, entity_key(&["a"]), Purpose::Demand).random::<u64>();
        let other_rep = stream(7, 1, entity_key(&["a"]), Purpose::Demand).random::<u64>();
        let other_entity = stream(7, 0, entity_key(&["b"]), Purpose::Demand).random::<u64>();
        let other_purpose = stream(7, 0, entity_key(&["a"]), Purpose::Transit).random::<u64>();
        for other in [other_seed, other_rep, other_entity, other_purpose] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn entity_keys_separate_the_ids() {
        assert_ne!(entity_key(&["ab", "c"]), entity_key(&["a", "bc"]));
    }

    #[test]
    fn lognormal_has_the_asked_mean() {
        let distribution = TimeDistribution::LogNormal {
            mean_days: 4.0,
            std_dev_days: 2.0,
        };
        let mut rng = stream(1, 0, 1, Purpose::Transit);
        let n = 200_000;
        let mean = (0..n)
            .map(|_| duration(&distribution, &mut rng))
            .sum::<f64>()
            / n as f64;
        // Standard error is 2 / sqrt(n) = 0.0045; allow four of them.
        assert!((mean - 4.0).abs() < 4.0 * 2.0 / (n as f64).sqrt());
    }
}
