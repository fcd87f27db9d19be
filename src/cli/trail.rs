//! `spares movements list`, `spares movements record` and `spares audit`:
//! the movement log and the audit trail read back (and a movement recorded)
//! over gRPC, with the client options every command shares.

use super::client::{ClientError, Target, connect};
use super::table::Table;
use crate::pb;

/// Rows printed unless `--limit` asks for more.
pub const DEFAULT_ROWS: usize = 1000;

fn when(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map_or_else(
            || "-".into(),
            |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

/// A time flag: RFC 3339 (`2026-11-30T08:00:00Z`) or a date (`2026-11-30`,
/// midnight UTC).
///
/// # Errors
/// [`ClientError::Usage`] naming the flag.
pub fn parse_time(flag: &str, text: &str) -> Result<prost_types::Timestamp, ClientError> {
    let parsed = text.parse::<jiff::Timestamp>().or_else(|_| {
        text.parse::<jiff::civil::Date>()
            .map_err(|e| e.to_string())
            .and_then(|d| {
                d.to_zoned(jiff::tz::TimeZone::UTC)
                    .map(|z| z.timestamp())
                    .map_err(|e| e.to_string())
            })
    });
    let at = parsed.map_err(|_| {
        ClientError::Usage(format!(
            "--{flag}: `{text}` is not a time (2026-11-30T08:00:00Z or 2026-11-30)"
        ))
    })?;
    Ok(crate::api::convert::timestamp_to_pb(at))
}

fn optional_time(
    flag: &str,
    text: Option<&str>,
) -> Result<Option<prost_types::Timestamp>, ClientError> {
    text.map(|t| parse_time(flag, t)).transpose()
}

/// The filters of `spares movements list`.
#[derive(Debug, Clone, Default)]
pub struct MovementQuery {
    /// `--part`.
    pub part: Option<String>,
    /// `--location`.
    pub location: Option<String>,
    /// `--actor`.
    pub actor: Option<String>,
    /// `--since`.
    pub since: Option<String>,
    /// `--until`.
    pub until: Option<String>,
    /// `--limit`: most rows printed.
    pub limit: usize,
}

/// A leg as `+3 in_transit:S1@RWH-1` (internal) or `-3 supplier` (external).
fn leg(l: &pb::MovementLeg) -> String {
    if l.location_id.is_empty() {
        format!("{:+} {}", l.delta, l.account)
    } else {
        format!("{:+} {}@{}", l.delta, l.account, l.location_id)
    }
}

/// Renders movement-log entries; `more` when rows were left out.
pub fn movements_table(entries: &[pb::MovementEntry], more: bool) -> String {
    if entries.is_empty() {
        return "no movement matches\n".into();
    }
    let mut table = Table::new(&[
        "seq",
        "recorded",
        "actor",
        "role",
        "cause",
        "part",
        "legs",
        "key / reservation",
        "note",
    ]);
    for e in entries {
        let part = e
            .legs
            .first()
            .map(|l| l.part_id.clone())
            .unwrap_or_default();
        let reference = if e.idempotency_key.is_empty() {
            &e.reservation_id
        } else {
            &e.idempotency_key
        };
        table.row(vec![
            e.sequence.to_string(),
            when(e.recorded_at.as_ref()),
            e.actor_id.clone(),
            e.actor_role.clone(),
            e.cause.clone(),
            part,
            e.legs.iter().map(leg).collect::<Vec<_>>().join(", "),
            or_dash(reference),
            or_dash(&e.note),
        ]);
    }
    let mut out = table.render();
    if more {
        out.push_str("... more movements match (--limit to show more)\n");
    }
    out
}

/// `spares movements list`: the movement log, oldest first, filtered.
///
/// # Errors
/// A bad time flag, or the server's refusal (a warehouse must name one of
/// its locations).
pub async fn list_movements(server: &Target, query: &MovementQuery) -> Result<String, ClientError> {
    let mut request = pb::ListMovementsRequest {
        part_id: query.part.clone().unwrap_or_default(),
        location_id: query.location.clone().unwrap_or_default(),
        actor_id: query.actor.clone().unwrap_or_default(),
        since: optional_time("since", query.since.as_deref())?,
        until: optional_time("until", query.until.as_deref())?,
        page: None,
    };
    let mut clients = connect(server).await?;
    let (entries, more) = super::client::fetch_pages(0, query.limit, async |page| {
        request.page = Some(page);
        let reply = clients
            .inventory
            .list_movements(request.clone())
            .await?
            .into_inner();
        Ok::<_, ClientError>((reply.movements, reply.next_page_token))
    })
    .await?;
    Ok(movements_table(&entries, more))
}

/// `spares movements record`: one movement, as `RecordMovements` takes it.
#[derive(Debug, Clone, Default)]
pub struct NewMovement {
    /// `--key`: the idempotency key (the same key and movement again is
    /// recorded once).
    pub key: String,
    /// `--kind`: receipt, issue, transfer-ship, transfer-receive,
    /// adjustment, scrap or count.
    pub kind: String,
    /// `--part`.
    pub part: String,
    /// `--location`.
    pub location: String,
    /// `--quantity`.
    pub quantity: i64,
    /// `--to` (transfer ship).
    pub to: Option<String>,
    /// `--shipment` (transfer ship/receive).
    pub shipment: Option<String>,
    /// `--expected-arrival` (transfer ship).
    pub expected_arrival: Option<String>,
    /// `--note`.
    pub note: String,
}

fn kind_from_flag(kind: &str) -> Result<pb::MovementKind, ClientError> {
    Ok(match kind.to_ascii_lowercase().replace('_', "-").as_str() {
        "receipt" | "receive" => pb::MovementKind::Receipt,
        "issue" => pb::MovementKind::Issue,
        "transfer-ship" | "ship" => pb::MovementKind::TransferShip,
        "transfer-receive" => pb::MovementKind::TransferReceive,
        "adjustment" => pb::MovementKind::Adjustment,
        "scrap" => pb::MovementKind::Scrap,
        "count" => pb::MovementKind::Count,
        other => {
            return Err(ClientError::Usage(format!(
                "--kind: `{other}` is not receipt, issue, transfer-ship, transfer-receive, adjustment, scrap or count"
            )));
        }
    })
}

/// `spares movements record`: records one movement and prints the result.
///
/// # Errors
/// A bad flag, or the server's refusal.
pub async fn record_movement(
    server: &Target,
    movement: &NewMovement,
) -> Result<String, ClientError> {
    let request = pb::MovementRequest {
        idempotency_key: movement.key.clone(),
        kind: kind_from_flag(&movement.kind)? as i32,
        part_id: movement.part.clone(),
        location_id: movement.location.clone(),
        quantity: movement.quantity,
        to_location_id: movement.to.clone().unwrap_or_default(),
        shipment_id: movement.shipment.clone().unwrap_or_default(),
        expected_arrival: optional_time("expected-arrival", movement.expected_arrival.as_deref())?,
        note: movement.note.clone(),
    };
    let mut clients = connect(server).await?;
    let reply = clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![request],
        })
        .await?
        .into_inner();
    let mut table = Table::new(&["key", "sequence", "replayed", "shipment", "recorded"]);
    for r in &reply.results {
        table.row(vec![
            r.idempotency_key.clone(),
            r.sequence.to_string(),
            if r.replayed { "yes" } else { "no" }.into(),
            or_dash(&r.shipment_id),
            when(r.recorded_at.as_ref()),
        ]);
    }
    Ok(table.render())
}

/// The filters of `spares audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// `--principal`.
    pub principal: Option<String>,
    /// `--rpc`: a method name or full path.
    pub rpc: Option<String>,
    /// `--since`.
    pub since: Option<String>,
    /// `--until`.
    pub until: Option<String>,
    /// `--limit`: most rows printed.
    pub limit: usize,
}

/// Renders audit events; `more` when rows were left out.
pub fn audit_table(events: &[pb::AuditEvent], more: bool) -> String {
    if events.is_empty() {
        return "no audit event matches\n".into();
    }
    let mut table = Table::new(&[
        "id",
        "at",
        "principal",
        "role",
        "rpc",
        "idempotency keys",
        "status",
    ]);
    for e in events {
        table.row(vec![
            e.event_id.to_string(),
            when(e.at.as_ref()),
            e.principal_id.clone(),
            e.role.clone(),
            e.rpc.trim_start_matches("/spares.v1.").to_string(),
            or_dash(&e.idempotency_keys.join(" ")),
            e.status.clone(),
        ]);
    }
    let mut out = table.render();
    if more {
        out.push_str("... more events match (--limit to show more)\n");
    }
    out
}

/// `spares audit`: the audit trail, oldest first, filtered (administrators).
///
/// # Errors
/// A bad time flag, or the server's refusal.
pub async fn list_audit_events(server: &Target, query: &AuditQuery) -> Result<String, ClientError> {
    let mut request = pb::ListAuditEventsRequest {
        principal_id: query.principal.clone().unwrap_or_default(),
        rpc: query.rpc.clone().unwrap_or_default(),
        since: optional_time("since", query.since.as_deref())?,
        until: optional_time("until", query.until.as_deref())?,
        page: None,
    };
    let mut clients = connect(server).await?;
    let (events, more) = super::client::fetch_pages(0, query.limit, async |page| {
        request.page = Some(page);
        let reply = clients
            .admin
            .list_audit_events(request.clone())
            .await?
            .into_inner();
        Ok::<_, ClientError>((reply.events, reply.next_page_token))
    })
    .await?;
    Ok(audit_table(&events, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_flags_take_rfc_3339_or_a_date() {
        let date = parse_time("since", "2026-11-30").unwrap();
        let exact = parse_time("since", "2026-11-30T00:00:00Z").unwrap();
        assert_eq!(date, exact);
        assert!(
            parse_time("until", "yesterday")
                .unwrap_err()
                .to_string()
                .contains("--until")
        );
        assert!(kind_from_flag("Transfer_Ship").is_ok());
        assert!(kind_from_flag("steal").is_err());
    }
}
