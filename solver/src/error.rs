//! The solver crate's one error type, naming the field at fault.

use thiserror::Error;

/// Everything that can go wrong in a solver call.
///
/// `InvalidInput` means the caller sent a bad value (map to `InvalidArgument`);
/// `OutOfRange` means a value passed a named limit (map to `OutOfRange`);
/// `Infeasible` means the constraints leave no plan (map to `FailedPrecondition`);
/// `TimeLimit` means the time ran out before any plan was found;
/// `Backend` and `BackendUnavailable` are LP backend failures.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SolverError {
    /// A field holds a value the model cannot use (NaN, negative, inconsistent).
    #[error("invalid `{field}`: {reason}")]
    InvalidInput {
        /// The offending field, as a path such as `part_locations[3].unit_cost`.
        field: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// A value is past a named limit.
    #[error("`{field}` = {value} is past the limit {limit}: {reason}")]
    OutOfRange {
        /// The offending field.
        field: String,
        /// The value that was sent.
        value: f64,
        /// The limit it passed.
        limit: f64,
        /// Why the limit exists.
        reason: String,
    },
    /// No plan satisfies the constraints.
    #[error("infeasible: {0}")]
    Infeasible(String),
    /// The time limit passed before a feasible plan was found.
    #[error("time limit of {seconds} s reached before a feasible plan was found")]
    TimeLimit {
        /// The limit that was set.
        seconds: f64,
    },
    /// The LP backend reported a failure.
    #[error("LP backend `{backend}` failed: {message}")]
    Backend {
        /// Backend name.
        backend: String,
        /// The backend's message.
        message: String,
    },
    /// The backend was named but is not compiled into this build.
    #[error("LP backend `{0}` is not available in this build (enable the cargo feature)")]
    BackendUnavailable(String),
}

/// Result alias for the solver crate.
pub type Result<T> = std::result::Result<T, SolverError>;

/// Builds an `InvalidInput` error.
pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SolverError {
    SolverError::InvalidInput {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks that a value is finite and not negative.
pub(crate) fn non_negative(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(invalid(
            field,
            format!("must be finite and >= 0, got {value}"),
        ))
    }
}

/// Checks that a value is finite and strictly positive.
pub(crate) fn positive(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(
            field,
            format!("must be finite and > 0, got {value}"),
        ))
    }
}

/// Checks that a value lies strictly between 0 and 1.
pub(crate) fn open_unit(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(invalid(field, format!("must lie in (0, 1), got {value}")))
    }
}
