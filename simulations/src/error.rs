//! The one error type of the simulation crate: bad inputs, named limits and cancellation.

use thiserror::Error;

/// Everything that can stop a simulation. Bad inputs name the entity and the field so the
/// service can map them to `InvalidArgument` (or `OutOfRange` for limits) without guessing.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    /// A number is NaN, infinite, negative or otherwise outside its domain.
    #[error("{entity}: field `{field}` is invalid ({value}): {reason}")]
    InvalidValue {
        /// The entity holding the value, e.g. "fleet `F1`".
        entity: String,
        /// The field name, e.g. "usage_hours_per_day".
        field: String,
        /// The offending value, printed.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Two entities of the same kind share an id.
    #[error("duplicate {kind} id `{id}`")]
    DuplicateId {
        /// Entity kind, e.g. "location".
        kind: String,
        /// The repeated id.
        id: String,
    },
    /// A reference names an id that does not exist.
    #[error("{referenced_by} refers to unknown {kind} `{id}`")]
    UnknownReference {
        /// Entity kind that was looked up.
        kind: String,
        /// The missing id.
        id: String,
        /// Who made the reference.
        referenced_by: String,
    },
    /// A location has more than one replenishment lane coming in, so its supplier is ambiguous.
    #[error("location `{location}` has more than one replenishment lane coming in")]
    AmbiguousSupply {
        /// The location.
        location: String,
    },
    /// Following the replenishment lanes upwards from a location comes back to it.
    #[error("the supply tree has a cycle through location `{location}`")]
    SupplyCycle {
        /// A location on the cycle.
        location: String,
    },
    /// A location needs stock of a part but no chain of lanes leads to any supply of it.
    #[error("location `{location}` has no path to any supply of part `{part}`")]
    NoSupplyPath {
        /// The location without supply.
        location: String,
        /// The part.
        part: String,
    },
    /// A stocking policy that the engine does not support for this part.
    #[error("part `{part}` at `{location}`: {reason}")]
    PolicyNotSupported {
        /// The part.
        part: String,
        /// The location.
        location: String,
        /// Why.
        reason: String,
    },
    /// Zero replications were asked for.
    #[error("replications must be at least 1")]
    ZeroReplications,
    /// The horizon does not extend past the warm-up, so nothing would be measured.
    #[error("horizon_days ({horizon_days}) must be greater than warm_up_days ({warm_up_days})")]
    HorizonNotAfterWarmUp {
        /// The horizon asked for.
        horizon_days: f64,
        /// The warm-up asked for.
        warm_up_days: f64,
    },
    /// A value is past a named limit of the engine.
    #[error("{what} is {value}, above the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: String,
        /// The value asked for.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// The worker thread pool could not be started.
    #[error("cannot start {threads} worker threads: {reason}")]
    ThreadPool {
        /// Threads asked for.
        threads: usize,
        /// What the operating system said.
        reason: String,
    },
    /// The caller raised the cancellation flag.
    #[error("simulation cancelled")]
    Cancelled,
}

impl SimError {
    /// Shorthand for [`SimError::InvalidValue`].
    pub(crate) fn invalid(
        entity: impl Into<String>,
        field: &str,
        value: impl ToString,
        reason: &str,
    ) -> Self {
        SimError::InvalidValue {
            entity: entity.into(),
            field: field.to_owned(),
            value: value.to_string(),
            reason: reason.to_owned(),
        }
    }
}
