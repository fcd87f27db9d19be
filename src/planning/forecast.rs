//! Demand forecasts from history: Syntetos-Boylan class, Croston / SBA / TSB, and a
//! seeded bootstrap of lead-time demand. Pure; the gRPC handler and `spares forecast`
//! (which runs locally, without a server) call the same function.

use crate::domain::DomainError;
use serde::{Deserialize, Serialize};
use spares_solver::forecast::{self as sf, DemandClass, ForecastMethod};

/// Bootstrap replications per series: enough for a stable p99 (about 100 samples above it).
pub const BOOTSTRAP_REPLICATIONS: usize = 10_000;
/// Most series one request may forecast (bounds the work of a synchronous call).
pub const MAX_FORECAST_SERIES: usize = 20_000;
/// Smoothing constant used when none is given.
pub const DEFAULT_SMOOTHING: f64 = 0.1;

/// One demand series to forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInput {
    /// Part (or series) id.
    pub part_id: String,
    /// Location id; empty when the series is not located.
    pub location_id: String,
    /// Demand per period, oldest first.
    pub quantities: Vec<f64>,
}

/// Forecast settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastSettings {
    /// Method, or `None` to choose by Syntetos-Boylan class.
    pub method: Option<ForecastMethod>,
    /// Smoothing constant of sizes and intervals, in (0, 1].
    pub alpha: f64,
    /// Smoothing constant of TSB's demand probability, in (0, 1].
    pub beta: f64,
    /// Lead time for the bootstrap, in periods; 0 skips it.
    pub lead_time_periods: u32,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl Default for ForecastSettings {
    fn default() -> Self {
        Self {
            method: None,
            alpha: DEFAULT_SMOOTHING,
            beta: DEFAULT_SMOOTHING,
            lead_time_periods: 0,
            seed: 1,
        }
    }
}

/// The forecast of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    /// Part id.
    pub part_id: String,
    /// Location id.
    pub location_id: String,
    /// Periods of history.
    pub periods: usize,
    /// Syntetos-Boylan class; `None` when the series has no demand.
    pub demand_class: Option<DemandClass>,
    /// Average inter-demand interval (ADI).
    pub average_demand_interval: f64,
    /// Squared coefficient of variation of non-zero sizes.
    pub size_cv_squared: f64,
    /// Method used; `None` when the series has no demand (forecast 0).
    pub method: Option<ForecastMethod>,
    /// Forecast demand per period.
    pub demand_per_period: f64,
    /// Bootstrap lead-time demand quantiles (p50, p90, p99), when a lead time was given.
    pub lead_time_demand_quantiles: Option<[u64; 3]>,
}

/// Checks a smoothing constant: 0 means the default; otherwise it must lie in (0, 1].
pub fn smoothing(field: &str, value: f64) -> Result<f64, DomainError> {
    if value == 0.0 {
        return Ok(DEFAULT_SMOOTHING);
    }
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(DomainError::invalid(field, "must lie in (0, 1]"))
    }
}

/// Forecasts every series. Errors name the series (`series[i]`) and the field at fault:
/// NaN or negative quantities, an empty series, too many series.
pub fn forecast_all(
    series: &[SeriesInput],
    settings: &ForecastSettings,
) -> Result<Vec<SeriesForecast>, DomainError> {
    if series.len() > MAX_FORECAST_SERIES {
        return Err(DomainError::OutOfRange {
            field: "series".into(),
            reason: format!("at most {MAX_FORECAST_SERIES} series per call (synchronous work)"),
        });
    }
    series
        .iter()
        .enumerate()
        .map(|(i, s)| forecast_one(s, settings).map_err(|e| e.within(&format!("series[{i}]"))))
        .collect()
}

fn solver_error(error: spares_solver::SolverError) -> DomainError {
    match error {
        spares_solver::SolverError::InvalidInput { field, reason } => {
            DomainError::invalid(field, reason)
        }
        other => DomainError::invalid("quantities", other.to_string()),
    }
}

/// Forecasts one series.
pub fn forecast_one(
    series: &SeriesInput,
    settings: &ForecastSettings,
) -> Result<SeriesForecast, DomainError> {
    if series.quantities.is_empty() {
        return Err(DomainError::invalid(
            "quantities",
            "needs at least one period",
        ));
    }
    if let Some(p) = series
        .quantities
        .iter()
        .position(|q| !q.is_finite() || *q < 0.0)
    {
        return Err(DomainError::invalid(
            format!("quantities[{p}]"),
            "must be a finite number >= 0",
        ));
    }
    // The one quantity bound of the ledger holds for demand too, so no sum a
    // forecast forms (lead-time totals of bootstrapped sizes) can overflow.
    let max = crate::domain::ledger::MAX_QUANTITY as f64;
    if let Some(p) = series.quantities.iter().position(|q| *q > max) {
        return Err(DomainError::OutOfRange {
            field: format!("quantities[{p}]"),
            reason: format!(
                "above the limit of {} units",
                crate::domain::ledger::MAX_QUANTITY
            ),
        });
    }
    let mut out = SeriesForecast {
        part_id: series.part_id.clone(),
        location_id: series.location_id.clone(),
        periods: series.quantities.len(),
        demand_class: None,
        average_demand_interval: 0.0,
        size_cv_squared: 0.0,
        method: None,
        demand_per_period: 0.0,
        lead_time_demand_quantiles: None,
    };
    // A series without demand has no class and forecasts zero; it is not an error.
    if series.quantities.iter().all(|q| *q == 0.0) {
        if settings.lead_time_periods > 0 {
            out.lead_time_demand_quantiles = Some([0, 0, 0]);
        }
        return Ok(out);
    }
    let class = sf::classify(&series.quantities).map_err(solver_error)?;
    let method = settings
        .method
        .unwrap_or_else(|| sf::recommended_method(class.class));
    let forecast = sf::forecast(&series.quantities, method, settings.alpha, settings.beta)
        .map_err(solver_error)?;
    out.demand_class = Some(class.class);
    out.average_demand_interval = class.adi;
    out.size_cv_squared = class.cv_squared;
    out.method = Some(method);
    out.demand_per_period = forecast.per_period;
    if settings.lead_time_periods > 0 {
        let samples = sf::bootstrap_lead_time_demand(
            &series.quantities,
            settings.lead_time_periods as usize,
            BOOTSTRAP_REPLICATIONS,
            settings.seed,
        )
        .map_err(solver_error)?;
        let q = |p: f64| sf::quantile(&samples, p).map_err(solver_error);
        out.lead_time_demand_quantiles = Some([q(0.5)?, q(0.9)?, q(0.99)?]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn oracle() -> SeriesInput {
        SeriesInput {
            part_id: "P".into(),
            location_id: String::new(),
            quantities: [0., 0., 3., 0., 0., 0., 2., 0., 5., 0., 0., 1.].to_vec(),
        }
    }

    #[test]
    fn croston_and_sba_match_the_oracle() {
        let mut settings = ForecastSettings {
            method: Some(ForecastMethod::Croston),
            ..ForecastSettings::default()
        };
        let croston = forecast_one(&oracle(), &settings).unwrap();
        assert!((croston.demand_per_period - 0.969_241).abs() < 1e-6);
        settings.method = Some(ForecastMethod::Sba);
        let sba = forecast_one(&oracle(), &settings).unwrap();
        assert!((sba.demand_per_period - 0.920_779).abs() < 1e-6);
    }

    #[test]
    fn a_series_without_demand_forecasts_zero() {
        let s = SeriesInput {
            quantities: vec![0.0; 6],
            ..oracle()
        };
        let f = forecast_one(&s, &ForecastSettings::default()).unwrap();
        assert_eq!(f.demand_per_period, 0.0);
        assert!(f.demand_class.is_none());
    }

    #[test]
    fn bootstrap_quantiles_are_ordered_and_seeded() {
        let settings = ForecastSettings {
            lead_time_periods: 3,
            seed: 7,
            ..ForecastSettings::default()
        };
        let a = forecast_one(&oracle(), &settings).unwrap();
        let b = forecast_one(&oracle(), &settings).unwrap();
        let [p50, p90, p99] = a.lead_time_demand_quantiles.unwrap();
        assert!(p50 <= p90 && p90 <= p99);
        assert_eq!(a, b);
    }

    #[test]
    fn negative_quantity_names_the_period() {
        let s = SeriesInput {
            quantities: vec![1.0, -1.0],
            ..oracle()
        };
        let e = forecast_all(&[s], &ForecastSettings::default()).unwrap_err();
        assert!(e.to_string().contains("series[0].quantities[1]"), "{e}");
    }
}
