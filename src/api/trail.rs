//! Reading the trails back over gRPC: `ListMovements` (the movement log)
//! and `ListAuditEvents` (the audit trail). Filters from requests, entries
//! and events to protobuf, and the cursor paging both share: the page token
//! is the sequence (or event id) to continue after, so a page reads from its
//! cursor on and never recomputes the pages before it.

use super::convert::{opt_timestamp, timestamp_to_pb};
use super::util::page_size;
use crate::config::Limits;
use crate::domain::DomainError;
use crate::domain::audit::{AuditEvent, AuditFilter, MovementFilter};
use crate::domain::ledger::{
    Account, Bucket, EntryCause, ExternalParty, LedgerEntry, MovementKind,
};
use crate::pb;
use tonic::Status;

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// The cursor of a page token: 0 for none.
///
/// # Errors
/// `INVALID_ARGUMENT` naming `page.page_token` for a token that is not one
/// this server gave.
fn cursor(page: Option<&pb::PageRequest>) -> Result<u64, DomainError> {
    match page.map_or("", |p| p.page_token.as_str()) {
        "" => Ok(0),
        token => token.parse().map_err(|_| {
            DomainError::invalid(
                "page.page_token",
                "not a token this server gave (a log sequence or event id)",
            )
        }),
    }
}

/// The token of a page that stopped at `next` (none at the end).
pub fn next_token(next: Option<u64>) -> String {
    next.map(|n| n.to_string()).unwrap_or_default()
}

/// The movement filter of a `ListMovements` request.
///
/// # Errors
/// `INVALID_ARGUMENT` for a bad time or page token; `OUT_OF_RANGE` for a
/// page size past the limit.
pub fn movement_filter(
    request: &pb::ListMovementsRequest,
    limits: &Limits,
) -> Result<MovementFilter, Status> {
    Ok(MovementFilter {
        part_id: non_empty(&request.part_id),
        location_id: non_empty(&request.location_id),
        actor_id: non_empty(&request.actor_id),
        since: opt_timestamp("since", request.since.as_ref())?,
        until: opt_timestamp("until", request.until.as_ref())?,
        after_sequence: cursor(request.page.as_ref())?,
        limit: page_size(request.page.as_ref(), limits)?,
    })
}

/// The audit filter of a `ListAuditEvents` request.
///
/// # Errors
/// As [`movement_filter`].
pub fn audit_filter(
    request: &pb::ListAuditEventsRequest,
    limits: &Limits,
) -> Result<AuditFilter, Status> {
    Ok(AuditFilter {
        principal_id: non_empty(&request.principal_id),
        rpc: non_empty(&request.rpc),
        since: opt_timestamp("since", request.since.as_ref())?,
        until: opt_timestamp("until", request.until.as_ref())?,
        after_id: cursor(request.page.as_ref())?,
        limit: page_size(request.page.as_ref(), limits)?,
    })
}

fn kind_name(kind: MovementKind) -> &'static str {
    match kind {
        MovementKind::Receipt => "receipt",
        MovementKind::Issue => "issue",
        MovementKind::TransferShip => "transfer_ship",
        MovementKind::TransferReceive => "transfer_receive",
        MovementKind::Adjustment => "adjustment",
        MovementKind::Scrap => "scrap",
        MovementKind::Count => "count",
    }
}

fn leg_to_pb(account: &Account, delta: i64) -> pb::MovementLeg {
    let (location_id, name) = match account {
        Account::Internal {
            location_id,
            bucket,
            ..
        } => (
            location_id.clone(),
            match bucket {
                Bucket::Available => "available".to_string(),
                Bucket::Reserved => "reserved".to_string(),
                Bucket::InTransit(shipment) => format!("in_transit:{shipment}"),
            },
        ),
        Account::External { party, .. } => (
            String::new(),
            match party {
                ExternalParty::Supplier => "supplier",
                ExternalParty::Customer => "customer",
                ExternalParty::Scrap => "scrap",
                ExternalParty::Adjustment => "adjustment",
            }
            .to_string(),
        ),
    };
    pb::MovementLeg {
        part_id: account.part_id().to_string(),
        location_id,
        account: name,
        delta,
    }
}

/// One log entry as a protobuf message.
pub fn movement_entry_to_pb(entry: &LedgerEntry) -> pb::MovementEntry {
    let (cause, idempotency_key, note, reservation_id) = match &entry.cause {
        EntryCause::Movement {
            idempotency_key,
            kind,
            note,
        } => (kind_name(*kind), idempotency_key.clone(), note.clone(), ""),
        EntryCause::Reserve { reservation_id } => (
            "reserve",
            String::new(),
            String::new(),
            reservation_id.as_str(),
        ),
        EntryCause::Post { reservation_id } => (
            "post",
            String::new(),
            String::new(),
            reservation_id.as_str(),
        ),
        EntryCause::Void { reservation_id } => (
            "void",
            String::new(),
            String::new(),
            reservation_id.as_str(),
        ),
        EntryCause::Expire { reservation_id } => (
            "expire",
            String::new(),
            String::new(),
            reservation_id.as_str(),
        ),
    };
    pb::MovementEntry {
        sequence: entry.sequence,
        recorded_at: Some(timestamp_to_pb(entry.recorded_at)),
        actor_id: entry.actor.id.clone(),
        actor_role: entry.actor.role.clone(),
        cause: cause.to_string(),
        idempotency_key,
        note,
        reservation_id: reservation_id.to_string(),
        legs: entry
            .legs
            .iter()
            .map(|l| leg_to_pb(&l.account, l.delta))
            .collect(),
        shipment_id: entry
            .shipment
            .as_ref()
            .map(|s| s.shipment_id.clone())
            .unwrap_or_default(),
    }
}

/// One audit event as a protobuf message.
pub fn audit_event_to_pb(event: &AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        event_id: event.id,
        at: Some(timestamp_to_pb(event.at)),
        principal_id: event.principal_id.clone(),
        role: event.role.clone(),
        rpc: event.rpc.clone(),
        idempotency_keys: event.idempotency_keys.clone(),
        status_code: event.status_code,
        status: format!("{:?}", tonic::Code::from_i32(event.status_code)),
    }
}
