//! The one place where errors become gRPC status codes.

use crate::domain::DomainError;
use crate::store::StoreError;
use tonic::{Code, Status};

/// Maps a core error to its gRPC status; the message names the field at fault.
pub fn domain_status(error: &DomainError) -> Status {
    let code = match error {
        DomainError::InvalidArgument { .. } => Code::InvalidArgument,
        DomainError::OutOfRange { .. } => Code::OutOfRange,
        DomainError::NotFound { .. } => Code::NotFound,
        DomainError::FailedPrecondition(_) => Code::FailedPrecondition,
        DomainError::Aborted(_) => Code::Aborted,
        DomainError::IdempotencyConflict { .. } => Code::AlreadyExists,
    };
    Status::new(code, error.to_string())
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
            StoreError::Storage(_) => Status::unavailable(error.to_string()),
            StoreError::Corruption(_) => Status::data_loss(error.to_string()),
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
