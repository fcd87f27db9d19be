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
    #[error("{entity} {} not found", quote(id))]
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
    /// The server is at a named capacity (a full job queue) or shutting down
    /// (maps to `RESOURCE_EXHAUSTED`); the client may try again later.
    #[error("{0}")]
    Overloaded(String),
    /// The same idempotency key was used with a different payload (maps to `ALREADY_EXISTS`).
    #[error("{field} {} was already used with a different request", quote(key))]
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

    /// Prefixes the field path of an argument error, e.g. with `locations[3]`
    /// (an empty prefix leaves it as it is).
    pub fn within(self, prefix: &str) -> Self {
        let path = |field: String| {
            if prefix.is_empty() {
                field
            } else {
                format!("{prefix}.{field}")
            }
        };
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument {
                field: path(field),
                reason,
            },
            Self::OutOfRange { field, reason } => Self::OutOfRange {
                field: path(field),
                reason,
            },
            other => other,
        }
    }
}

/// Most bytes of client input quoted in an error message: enough to recognise
/// an id or a key, and small enough that a hostile 70 KB id cannot make the
/// error itself too big for the client to read.
pub const MAX_QUOTED_BYTES: usize = 160;

/// Quotes client input for an error message: Rust string escapes (so control
/// characters are visible) and at most [`MAX_QUOTED_BYTES`] of it, with the
/// length of what was left out.
pub fn quote(value: &str) -> String {
    if value.len() <= MAX_QUOTED_BYTES {
        return format!("{value:?}");
    }
    let mut end = MAX_QUOTED_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} more bytes)", &value[..end], value.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_bounded_and_escapes_control_characters() {
        let long = "é".repeat(40_000);
        let quoted = quote(&long);
        assert!(quoted.len() < MAX_QUOTED_BYTES + 40, "{}", quoted.len());
        assert!(quoted.ends_with("(79840 more bytes)"), "{quoted}");
        assert_eq!(quote("a\u{1}b"), "\"a\\u{1}b\"");
        let error = DomainError::not_found("part", "P".repeat(70_000));
        assert!(error.to_string().len() < 300);
    }

    #[test]
    fn an_empty_prefix_leaves_the_field_alone() {
        let error = DomainError::invalid("quantity", "bad").within("");
        assert_eq!(error.to_string(), "invalid quantity: bad");
    }
}
