//! The one place where errors become gRPC status codes.

use crate::domain::DomainError;
use crate::store::StoreError;
use tonic::{Code, Status};

impl From<crate::report::ReportError> for Status {
    fn from(error: crate::report::ReportError) -> Self {
        use crate::report::ReportError;
        let code = match &error {
            ReportError::NotFinished { .. } | ReportError::Unsupported { .. } => {
                Code::FailedPrecondition
            }
            ReportError::Undecodable { .. } => Code::Internal,
        };
        status(code, error.to_string())
    }
}

/// Longest status message in bytes. Messages quote client input only in
/// bounded form ([`crate::domain::error::quote`]); this is the backstop, so no
/// error can grow past what every client reads (a gRPC message header).
pub const MAX_STATUS_MESSAGE_BYTES: usize = 2048;

/// Maps a core error to its gRPC status; the message names the field at fault.
pub fn domain_status(error: &DomainError) -> Status {
    let code = match error {
        DomainError::InvalidArgument { .. } => Code::InvalidArgument,
        DomainError::OutOfRange { .. } => Code::OutOfRange,
        DomainError::NotFound { .. } => Code::NotFound,
        DomainError::FailedPrecondition(_) => Code::FailedPrecondition,
        DomainError::Aborted(_) => Code::Aborted,
        DomainError::Overloaded(_) => Code::ResourceExhausted,
        DomainError::IdempotencyConflict { .. } => Code::AlreadyExists,
    };
    status(code, error.to_string())
}

/// A status with its message cut to [`MAX_STATUS_MESSAGE_BYTES`].
pub fn status(code: Code, mut message: String) -> Status {
    if message.len() > MAX_STATUS_MESSAGE_BYTES {
        let mut end = MAX_STATUS_MESSAGE_BYTES - 20;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("... (cut)");
    }
    Status::new(code, message)
}

/// The metadata key of the retry hint on a rate-limited answer: whole
/// seconds to wait, as in HTTP's `Retry-After`.
pub const RETRY_AFTER: &str = "retry-after";

impl From<crate::auth::AuthError> for Status {
    fn from(error: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        let code = match &error {
            AuthError::Unauthenticated | AuthError::MissingCredentials { .. } => {
                Code::Unauthenticated
            }
            AuthError::PermissionDenied { .. } => Code::PermissionDenied,
            AuthError::RateLimited { .. } => Code::ResourceExhausted,
        };
        let mut answer = status(code, error.to_string());
        if let AuthError::RateLimited { retry_after_ms, .. } = error {
            let seconds = retry_after_ms.div_ceil(1000).max(1);
            if let Ok(value) = seconds.to_string().parse() {
                answer.metadata_mut().insert(RETRY_AFTER, value);
            }
        }
        answer
    }
}

impl From<DomainError> for Status {
    fn from(error: DomainError) -> Self {
        domain_status(&error)
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Rejected(domain) => domain_status(domain),
            StoreError::Storage(_) => status(Code::Unavailable, error.to_string()),
            StoreError::Corruption(_) => status(Code::DataLoss, error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_conflict_is_already_exists_naming_the_field() {
        let status: Status = DomainError::IdempotencyConflict {
            field: "idempotency_key".into(),
            key: "k1".into(),
        }
        .into();
        assert_eq!(status.code(), Code::AlreadyExists);
        assert!(status.message().contains("idempotency_key"));
    }

    #[test]
    fn corruption_is_data_loss() {
        let status: Status = StoreError::Corruption("sum".into()).into();
        assert_eq!(status.code(), Code::DataLoss);
    }
}
