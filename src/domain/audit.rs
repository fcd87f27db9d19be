//! The audit trail's data: one event per mutating call (who, when, which
//! RPC, which idempotency keys, what status it answered), and the filters
//! that read the trail and the movement log back. Pure data and matching;
//! the gRPC layer records events (`api::audit`) and the store keeps them.

use super::ledger::{Account, LedgerEntry};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One mutating call, recorded after the handler answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the trail (strictly increasing; assigned by the store).
    pub id: u64,
    /// When the call was answered.
    pub at: Timestamp,
    /// The caller's principal id.
    pub principal_id: String,
    /// The caller's role.
    pub role: String,
    /// The full RPC path, `/spares.v1.InventoryService/RecordMovements`.
    pub rpc: String,
    /// The idempotency keys the request carried (one per movement of a
    /// batch), empty for calls without one. Never a secret: API keys and
    /// tokens travel in headers, which are not recorded.
    pub idempotency_keys: Vec<String>,
    /// The gRPC status code it answered (0 = OK).
    pub status_code: i32,
}

/// Which audit events to list; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this principal.
    pub principal_id: Option<String>,
    /// Only this RPC: a full path, or its method name (`RecordMovements`).
    pub rpc: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events before this time.
    pub until: Option<Timestamp>,
    /// Start after this event id (paging; 0 from the first).
    pub after_id: u64,
    /// At most this many.
    pub limit: usize,
}

impl AuditFilter {
    /// Whether `event` passes the filter (paging aside).
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.principal_id
            .as_ref()
            .is_none_or(|p| *p == event.principal_id)
            && self.rpc.as_ref().is_none_or(|rpc| {
                *rpc == event.rpc || event.rpc.rsplit('/').next() == Some(rpc.as_str())
            })
            && in_window(event.at, self.since, self.until)
    }
}

/// Which movement-log entries to list; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovementFilter {
    /// Only entries with a leg of this part.
    pub part_id: Option<String>,
    /// Only entries touching this location: a leg at it (in transit to it
    /// counts), or a shipment leaving from it.
    pub location_id: Option<String>,
    /// Only entries written by this actor id.
    pub actor_id: Option<String>,
    /// Only entries recorded at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries recorded before this time.
    pub until: Option<Timestamp>,
    /// Start after this log sequence (paging; 0 from the first).
    pub after_sequence: u64,
    /// At most this many.
    pub limit: usize,
}

impl MovementFilter {
    /// Whether `entry` passes the filter (paging aside).
    pub fn matches(&self, entry: &LedgerEntry) -> bool {
        self.part_id
            .as_ref()
            .is_none_or(|p| entry.legs.iter().any(|l| l.account.part_id() == p))
            && self
                .location_id
                .as_ref()
                .is_none_or(|l| touches_location(entry, l))
            && self.actor_id.as_ref().is_none_or(|a| *a == entry.actor.id)
            && in_window(entry.recorded_at, self.since, self.until)
    }
}

/// Whether `entry` moves stock at `location_id`.
pub fn touches_location(entry: &LedgerEntry, location_id: &str) -> bool {
    let at_leg = entry.legs.iter().any(
        |leg| matches!(&leg.account, Account::Internal { location_id: l, .. } if l == location_id),
    );
    at_leg
        || entry
            .shipment
            .as_ref()
            .is_some_and(|s| s.from_location_id == location_id || s.to_location_id == location_id)
}

fn in_window(at: Timestamp, since: Option<Timestamp>, until: Option<Timestamp>) -> bool {
    since.is_none_or(|s| at >= s) && until.is_none_or(|u| at < u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::{Actor, EntryCause, Leg, MovementKind, ShipmentInfo};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn ship(actor: &str) -> LedgerEntry {
        LedgerEntry {
            sequence: 3,
            recorded_at: at(10),
            cause: EntryCause::Movement {
                idempotency_key: "k".into(),
                kind: MovementKind::TransferShip,
                note: String::new(),
            },
            legs: vec![
                Leg {
                    account: Account::available("P", "A"),
                    delta: -1,
                },
                Leg {
                    account: Account::in_transit("P", "B", "S"),
                    delta: 1,
                },
            ],
            shipment: Some(ShipmentInfo {
                shipment_id: "S".into(),
                from_location_id: "A".into(),
                to_location_id: "B".into(),
                expected_arrival: None,
            }),
            actor: Actor::principal(actor, "warehouse"),
        }
    }

    #[test]
    fn movement_filters_match_part_location_actor_and_a_half_open_window() {
        let entry = ship("w1");
        let all = MovementFilter::default();
        assert!(all.matches(&entry));
        let with = |f: MovementFilter| f.matches(&entry);
        assert!(with(MovementFilter {
            part_id: Some("P".into()),
            ..all.clone()
        }));
        assert!(!with(MovementFilter {
            part_id: Some("Q".into()),
            ..all.clone()
        }));
        assert!(with(MovementFilter {
            location_id: Some("A".into()),
            ..all.clone()
        }));
        assert!(with(MovementFilter {
            location_id: Some("B".into()),
            ..all.clone()
        }));
        assert!(!with(MovementFilter {
            location_id: Some("C".into()),
            ..all.clone()
        }));
        assert!(with(MovementFilter {
            actor_id: Some("w1".into()),
            ..all.clone()
        }));
        assert!(!with(MovementFilter {
            actor_id: Some("w2".into()),
            ..all.clone()
        }));
        assert!(with(MovementFilter {
            since: Some(at(10)),
            until: Some(at(11)),
            ..all.clone()
        }));
        assert!(!with(MovementFilter {
            until: Some(at(10)),
            ..all.clone()
        }));
        assert!(!with(MovementFilter {
            since: Some(at(11)),
            ..all
        }));
    }

    #[test]
    fn audit_filters_take_a_full_path_or_a_method_name() {
        let event = AuditEvent {
            id: 1,
            at: at(0),
            principal_id: "k1".into(),
            role: "admin".into(),
            rpc: "/spares.v1.AdminService/CreateApiKey".into(),
            idempotency_keys: Vec::new(),
            status_code: 0,
        };
        let all = AuditFilter::default();
        assert!(all.matches(&event));
        for rpc in ["CreateApiKey", "/spares.v1.AdminService/CreateApiKey"] {
            assert!(
                AuditFilter {
                    rpc: Some(rpc.into()),
                    ..all.clone()
                }
                .matches(&event)
            );
        }
        assert!(
            !AuditFilter {
                rpc: Some("Create".into()),
                ..all.clone()
            }
            .matches(&event)
        );
        assert!(
            !AuditFilter {
                principal_id: Some("k2".into()),
                ..all
            }
            .matches(&event)
        );
    }
}
