//! The typed error of the pure core. The gRPC layer maps it to status codes in
//! one place (`api::status`); the CLI prints it.

use thiserror::Error;

/// Everything the core can refuse, with the field or entity at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A request field is malformed or out of its domain (maps to `INVALID_ARGUMENT`).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Dotted path of the offending field, e.g. `locations[3].time_zone`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value is past a named limit (maps to `OUT_OF_RANGE`).
    #[error("{field} out of range: {reason}")]
    OutOfRange {
        /// The offending field.
        field: String,
        /// The limit and why.
        reason: String,
    },
    /// An id refers to nothing (maps to `NOT_FOUND`).
    #[error("{entity} {id:?} not found")]
    NotFound {
        /// The kind of thing, e.g. `part`.
        entity: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// Not enough stock, or a reservation in the wrong state (maps to `FAILED_PRECONDITION`).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Retries were exhausted (maps to `ABORTED`); the client may try again.
    #[error("{0}")]
    Aborted(String),
    /// The same idempotency key was used with a different payload (maps to `ALREADY_EXISTS`).
    #[error("{field} {key:?} was already used with a different request")]
    IdempotencyConflict {
        /// The field carrying the key.
        field: String,
        /// The reused key.
        key: String,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`DomainError::NotFound`].
    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            entity,
            id: id.into(),
        }
    }

    /// Prefixes the field path of an argument error, e.g. with `locations[3]`.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument {
                field: format!("{prefix}.{field}"),
                reason,
            },
            Self::OutOfRange { field, reason } => Self::OutOfRange {
                field: format!("{prefix}.{field}"),
                reason,
            },
            other => other,
        }
    }
}
