//! Run settings (horizon, warm-up, replications, seed), progress reports and named limits.

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// Most replications one run may ask for: beyond this confidence intervals shrink too slowly
/// to be worth the time, and per-replication samples would not fit a reply.
pub const MAX_REPLICATIONS: u32 = 100_000;
/// Longest horizon in days (100 years): longer runs are a mistake in units, not a plan.
pub const MAX_HORIZON_DAYS: f64 = 36_525.0;
/// Most thresholds of the wait-time distribution: each costs a counter per part-location.
pub const MAX_WAIT_THRESHOLDS: usize = 64;
/// Events handled between two looks at the cancellation flag inside one replication.
pub const EVENTS_BETWEEN_CANCEL_CHECKS: u64 = 1 << 14;

/// How to run a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The one seed every random stream is derived from.
    pub seed: u64,
    /// Independent replications of the horizon.
    pub replications: u32,
    /// Simulated days per replication, warm-up included.
    pub horizon_days: f64,
    /// Days at the start of each replication that are simulated but not measured.
    pub warm_up_days: f64,
    /// Thresholds t (days) at which P(customer wait <= t) is reported.
    pub wait_thresholds_days: Vec<f64>,
    /// Keep per-replication scenario samples per part-location (for the solver).
    pub scenario_samples: bool,
    /// Worker threads for replications: `None` runs on the caller's rayon pool (the global
    /// one unless inside `ThreadPool::install`), `Some(n)` on a pool of its own. The report
    /// does not depend on it.
    #[serde(default)]
    pub worker_threads: Option<usize>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            replications: 100,
            horizon_days: 365.0 + 90.0,
            warm_up_days: 90.0,
            wait_thresholds_days: vec![0.0, 1.0, 2.0, 3.0, 7.0, 14.0, 30.0],
            scenario_samples: false,
            worker_threads: None,
        }
    }
}

impl SimConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`SimError::ZeroReplications`], [`SimError::HorizonNotAfterWarmUp`],
    /// [`SimError::LimitExceeded`], or [`SimError::InvalidValue`] for a NaN, negative or
    /// unsorted number.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.replications == 0 {
            return Err(SimError::ZeroReplications);
        }
        if self.replications > MAX_REPLICATIONS {
            return Err(SimError::LimitExceeded {
                what: "replications".into(),
                value: u64::from(self.replications),
                limit: u64::from(MAX_REPLICATIONS),
            });
        }
        for (field, value) in [
            ("horizon_days", self.horizon_days),
            ("warm_up_days", self.warm_up_days),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(SimError::invalid("config", field, value, "must be >= 0"));
            }
        }
        if self.horizon_days > MAX_HORIZON_DAYS {
            return Err(SimError::invalid(
                "config",
                "horizon_days",
                self.horizon_days,
                "longer than 100 years",
            ));
        }
        if self.horizon_days <= self.warm_up_days {
            return Err(SimError::HorizonNotAfterWarmUp {
                horizon_days: self.horizon_days,
                warm_up_days: self.warm_up_days,
            });
        }
        if self.worker_threads == Some(0) {
            return Err(SimError::invalid(
                "config",
                "worker_threads",
                0,
                "must be at least 1",
            ));
        }
        self.validate_thresholds()
    }

    fn validate_thresholds(&self) -> Result<(), SimError> {
        if self.wait_thresholds_days.len() > MAX_WAIT_THRESHOLDS {
            return Err(SimError::LimitExceeded {
                what: "wait_thresholds_days".into(),
                value: self.wait_thresholds_days.len() as u64,
                limit: MAX_WAIT_THRESHOLDS as u64,
            });
        }
        let mut previous = f64::NEG_INFINITY;
        for &threshold in &self.wait_thresholds_days {
            if !threshold.is_finite() || threshold < 0.0 || threshold <= previous {
                return Err(SimError::invalid(
                    "config",
                    "wait_thresholds_days",
                    threshold,
                    "must be finite, >= 0 and strictly increasing",
                ));
            }
            previous = threshold;
        }
        Ok(())
    }

    /// Length of the measured window in days.
    pub fn window_days(&self) -> f64 {
        self.horizon_days - self.warm_up_days
    }
}

/// How far a run has got, handed to the caller's progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Replications finished (of this run; a comparison counts both runs).
    pub replications_done: u64,
    /// Replications in total.
    pub replications_total: u64,
}
