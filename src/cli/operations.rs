//! Operations over gRPC: `spares reserve`, `confirm`, `release`,
//! `reservations` and `watch`, and the `--need-by` rule they share with
//! `spares promise` (a plain date is the end of that day at the location).

use super::client::{AuthChannel, ClientError, Target, connect};
use super::table::Table;
use crate::pb;
use crate::pb::network_service_client::NetworkServiceClient;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::io::Write;
use tokio_stream::StreamExt;

/// A `--need-by` value as typed: an instant already, or a plain date that
/// needs the destination's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeedBy {
    /// RFC 3339 (`2026-12-01T17:00:00Z`) or zoned (`2026-12-01T17:00[Europe/Berlin]`).
    Instant(jiff::Timestamp),
    /// `2026-12-01`: the end of that day where the stock is needed.
    Date(Date),
}

/// Parses `--need-by`.
///
/// # Errors
/// [`ClientError::Usage`] naming the flag when the text is none of the
/// three forms.
pub fn parse_need_by(text: &str) -> Result<NeedBy, ClientError> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(NeedBy::Instant(ts));
    }
    if let Ok(zoned) = text.parse::<jiff::Zoned>() {
        return Ok(NeedBy::Instant(zoned.timestamp()));
    }
    text.parse::<Date>().map(NeedBy::Date).map_err(|_| {
        ClientError::Usage(format!(
            "--need-by {text:?}: expected a date (2026-12-01, the end of that day at the destination), \
             an RFC 3339 instant (2026-12-01T17:00:00Z) or a zoned time (2026-12-01T17:00[Europe/Berlin])"
        ))
    })
}

/// The last second of `date` in `time_zone` (23:59:59 local; on a day that
/// skips or repeats that hour, jiff's compatible rule picks the later instant).
///
/// # Errors
/// [`ClientError::Usage`] for an unknown time zone name.
pub fn end_of_day(date: Date, time_zone: &str) -> Result<jiff::Timestamp, ClientError> {
    let zone = TimeZone::get(time_zone)
        .map_err(|e| ClientError::Usage(format!("time zone {time_zone:?}: {e}")))?;
    date.at(23, 59, 59, 0)
        .to_zoned(zone)
        .map(|z| z.timestamp())
        .map_err(|e| ClientError::Usage(format!("--need-by {date}: {e}")))
}

/// The warning printed when a need-by instant is already past at `now`.
pub fn past_warning(need_by: jiff::Timestamp, now: jiff::Timestamp) -> Option<String> {
    (need_by < now).then(|| {
        format!(
            "warning: --need-by {} is in the past (now {})",
            need_by.strftime("%Y-%m-%d %H:%M:%SZ"),
            now.strftime("%Y-%m-%d %H:%M:%SZ")
        )
    })
}

/// The time zone of location `location_id`, looked up with ListLocations
/// (a plain need-by date is the end of the day there).
async fn location_time_zone(
    network: &mut NetworkServiceClient<AuthChannel>,
    location_id: &str,
) -> Result<String, ClientError> {
    let locations = super::client::fetch_all(1000, async |page| {
        let reply = network
            .list_locations(pb::ListLocationsRequest {
                page: Some(page),
                kind: pb::LocationKind::Unspecified as i32,
            })
            .await
            .map_err(|status| {
                ClientError::Usage(format!(
                    "a plain --need-by date needs {location_id}'s time zone, and listing locations failed ({}: {}); \
                     give the time with its zone instead, e.g. 2026-12-01T23:59:59[Europe/Berlin]",
                    status.code(),
                    status.message()
                ))
            })?
            .into_inner();
        Ok::<_, ClientError>((reply.locations, reply.next_page_token))
    })
    .await?;
    locations
        .into_iter()
        .find(|l| l.id == location_id)
        .map(|l| l.time_zone)
        .ok_or_else(|| ClientError::Usage(format!("--need-by: unknown location {location_id:?}")))
}

/// Resolves `--need-by` against the destination `location_id`: a plain date
/// becomes the end of that day in the location's time zone. Prints a warning
/// on stderr when the instant is in the past.
///
/// # Errors
/// As [`parse_need_by`] and [`end_of_day`]; [`ClientError::Usage`] when the
/// location's time zone cannot be looked up.
pub async fn resolve_need_by(
    target: &Target,
    text: &str,
    location_id: &str,
) -> Result<jiff::Timestamp, ClientError> {
    let instant = match parse_need_by(text)? {
        NeedBy::Instant(ts) => ts,
        NeedBy::Date(date) => {
            let mut clients = connect(target).await?;
            let zone = location_time_zone(&mut clients.network, location_id).await?;
            end_of_day(date, &zone)?
        }
    };
    if let Some(warning) = past_warning(instant, jiff::Timestamp::now()) {
        eprintln!("{warning}");
    }
    Ok(instant)
}

/// A timestamp for the wire.
pub fn to_pb(ts: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ts.as_second(),
        nanos: ts.subsec_nanosecond(),
    }
}

fn when(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map_or_else(
            || "-".into(),
            |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

/// A reservation state's name (`pending`, `posted`, `voided`, `expired`).
pub fn state_name(state: i32) -> &'static str {
    match pb::ReservationState::try_from(state) {
        Ok(pb::ReservationState::Pending) => "pending",
        Ok(pb::ReservationState::Posted) => "posted",
        Ok(pb::ReservationState::Voided) => "voided",
        Ok(pb::ReservationState::Expired) => "expired",
        _ => "?",
    }
}

/// Parses `--state`.
///
/// # Errors
/// [`ClientError::Usage`] listing the states.
pub fn parse_state(text: &str) -> Result<pb::ReservationState, ClientError> {
    match text.to_ascii_lowercase().as_str() {
        "pending" => Ok(pb::ReservationState::Pending),
        "posted" | "confirmed" => Ok(pb::ReservationState::Posted),
        "voided" | "released" => Ok(pb::ReservationState::Voided),
        "expired" => Ok(pb::ReservationState::Expired),
        other => Err(ClientError::Usage(format!(
            "--state: unknown `{other}` (pending, posted, voided, expired)"
        ))),
    }
}

/// One reservation as a line: `RES-ID pending: 2 x P1 at STR until ...`.
pub fn reservation_line(r: &pb::Reservation) -> String {
    let state = state_name(r.state);
    let mut line = format!(
        "{} {state}: {} x {} at {}",
        r.reservation_id, r.quantity, r.part_id, r.location_id
    );
    if r.state == pb::ReservationState::Pending as i32 {
        line.push_str(&format!(" until {}", when(r.expires_at.as_ref())));
    }
    if !r.ship_to_location_id.is_empty() {
        line.push_str(&format!(
            ", shipped to {} as {}",
            r.ship_to_location_id, r.shipment_id
        ));
    }
    if !r.order_reference.is_empty() {
        line.push_str(&format!(" (order {})", r.order_reference));
    }
    line.push('\n');
    line
}

/// A fresh idempotency key for a reservation the caller did not key
/// (`cli-<unix nanoseconds>-<process id>`; printed so a retry can reuse it).
fn fresh_key() -> String {
    format!(
        "cli-{}-{}",
        jiff::Timestamp::now().as_nanosecond(),
        std::process::id()
    )
}

/// What `spares reserve` asks for.
#[derive(Debug, Clone, Default)]
pub struct ReserveArgs {
    /// The part.
    pub part_id: String,
    /// Units to hold.
    pub quantity: u64,
    /// Where the stock is held.
    pub location_id: String,
    /// Hold until then (see [`resolve_need_by`]), instead of `ttl_seconds`.
    pub need_by: Option<String>,
    /// How long to hold (0: the server's default of 15 minutes).
    pub ttl_seconds: u32,
    /// The idempotency key; a fresh one (printed on stderr) when absent.
    pub idempotency_key: Option<String>,
    /// Machine-down demand: may take protected stock.
    pub critical: bool,
    /// The client's order reference.
    pub order_reference: String,
}

/// `spares reserve PART QTY --at LOCATION`: holds stock (available ->
/// reserved) until `--need-by` or for `--ttl` seconds.
///
/// # Errors
/// Bad flags; the server's refusal (e.g. `FAILED_PRECONDITION` when too
/// little is available, `OUT_OF_RANGE` for a hold past its limit).
pub async fn reserve(target: &Target, args: ReserveArgs) -> Result<String, ClientError> {
    // The server turns the need-by into a hold by its own clock; one already
    // past (by this machine's clock: warned above) holds for the default.
    let hold_until = match &args.need_by {
        Some(text) => {
            let need_by = resolve_need_by(target, text, &args.location_id).await?;
            if need_by <= jiff::Timestamp::now() {
                eprintln!("warning: holding for the default time instead");
                None
            } else {
                Some(to_pb(need_by))
            }
        }
        None => None,
    };
    let key = match args.idempotency_key {
        Some(key) => key,
        None => {
            let key = fresh_key();
            eprintln!("idempotency key {key} (repeat with --key {key} to retry safely)");
            key
        }
    };
    let mut clients = connect(target).await?;
    let reservation = clients
        .availability
        .reserve(pb::ReserveRequest {
            idempotency_key: key,
            part_id: args.part_id,
            location_id: args.location_id,
            quantity: args.quantity,
            ttl_seconds: args.ttl_seconds,
            priority: (if args.critical {
                pb::Priority::Critical
            } else {
                pb::Priority::Routine
            }) as i32,
            order_reference: args.order_reference,
            hold_until,
        })
        .await?
        .into_inner();
    Ok(format!("reserved {}", reservation_line(&reservation)))
}

/// `spares confirm ID [--ship-to L]`: posts a pending reservation (to the
/// customer, or in transit to `ship_to`). Without `--key` the key is
/// `confirm:ID`, so repeating the command is a replay, not a second post.
///
/// # Errors
/// The server's refusal (`NOT_FOUND`, `FAILED_PRECONDITION` when it is no
/// longer pending).
pub async fn confirm(
    target: &Target,
    reservation_id: &str,
    ship_to: Option<&str>,
    key: Option<String>,
) -> Result<String, ClientError> {
    let mut clients = connect(target).await?;
    let reservation = clients
        .availability
        .confirm_reservation(pb::ConfirmReservationRequest {
            reservation_id: reservation_id.into(),
            idempotency_key: key.unwrap_or_else(|| format!("confirm:{reservation_id}")),
            ship_to_location_id: ship_to.unwrap_or_default().into(),
            expected_arrival: None,
        })
        .await?
        .into_inner();
    Ok(format!("confirmed {}", reservation_line(&reservation)))
}

/// `spares release ID`: voids a pending reservation (reserved -> available).
/// Without `--key` the key is `release:ID`.
///
/// # Errors
/// As [`confirm`].
pub async fn release(
    target: &Target,
    reservation_id: &str,
    key: Option<String>,
) -> Result<String, ClientError> {
    let mut clients = connect(target).await?;
    let reservation = clients
        .availability
        .release_reservation(pb::ReleaseReservationRequest {
            reservation_id: reservation_id.into(),
            idempotency_key: key.unwrap_or_else(|| format!("release:{reservation_id}")),
        })
        .await?
        .into_inner();
    Ok(format!("released {}", reservation_line(&reservation)))
}

/// `spares reservations [--part P] [--location L] [--state S]`: every
/// matching reservation, page by page.
///
/// # Errors
/// A bad `--state`; the server's refusal.
pub async fn reservations(
    target: &Target,
    part: Option<&str>,
    location: Option<&str>,
    state: Option<&str>,
) -> Result<String, ClientError> {
    let state = state
        .map(parse_state)
        .transpose()?
        .unwrap_or(pb::ReservationState::Unspecified);
    let mut clients = connect(target).await?;
    let mut table = Table::new(&[
        "reservation",
        "part",
        "location",
        "quantity",
        "state",
        "priority",
        "created",
        "expires",
        "settled",
        "order",
    ]);
    let reservations = super::client::fetch_all(1000, async |page| {
        let reply = clients
            .availability
            .list_reservations(pb::ListReservationsRequest {
                page: Some(page),
                part_id: part.unwrap_or_default().into(),
                location_id: location.unwrap_or_default().into(),
                state: state as i32,
            })
            .await?
            .into_inner();
        Ok::<_, ClientError>((reply.reservations, reply.next_page_token))
    })
    .await?;
    for r in &reservations {
        table.row(vec![
            r.reservation_id.clone(),
            r.part_id.clone(),
            r.location_id.clone(),
            r.quantity.to_string(),
            state_name(r.state).into(),
            if r.priority == pb::Priority::Critical as i32 {
                "critical"
            } else {
                "routine"
            }
            .into(),
            when(r.created_at.as_ref()),
            when(r.expires_at.as_ref()),
            when(r.settled_at.as_ref()),
            r.order_reference.clone(),
        ]);
    }
    if table.is_empty() {
        return Ok("no reservations match\n".into());
    }
    Ok(table.render())
}

/// One event of the availability stream as a line. Stock changes and lag
/// notices read as sentences; any other event the server sends (a newer
/// server may carry more kinds) is printed as it decodes.
pub fn event_line(event: &pb::StockEvent) -> String {
    match &event.event {
        Some(pb::stock_event::Event::Changed(s)) => format!(
            "{} stock {} at {}: on hand {}, reserved {}, available {}, protected {}, in transit {}\n",
            when(s.as_of.as_ref()),
            s.part_id,
            s.location_id,
            s.on_hand,
            s.reserved,
            s.available,
            s.protected,
            s.in_transit
        ),
        Some(pb::stock_event::Event::Lagged(l)) => format!(
            "lagged: {} events were dropped (this reader was slow); re-read with `spares stock`\n",
            l.missed_events
        ),
        Some(pb::stock_event::Event::Reservation(r)) => {
            use pb::ReservationChangeKind as K;
            let kind = match K::try_from(r.kind) {
                Ok(K::Reserved) => "reserved",
                Ok(K::Confirmed) => "confirmed",
                Ok(K::Released) => "released",
                Ok(K::Expired) => "expired",
                Ok(K::Unspecified) | Err(_) => "changed",
            };
            format!(
                "{} reservation {} {kind}: {} x {} at {} for {}\n",
                when(r.at.as_ref()),
                r.reservation_id,
                r.quantity,
                r.part_id,
                r.location_id,
                r.held_for_location_id
            )
        }
        other => format!("event {other:?}\n"),
    }
}

/// `spares watch [--part P] [--location L] [--count N]`: prints availability
/// events as they come, until interrupted, the server ends the stream, or
/// `count` events were printed. Says on stderr when it is subscribed.
///
/// # Errors
/// The server's refusal, or a broken stream.
pub async fn watch(
    target: &Target,
    part_ids: Vec<String>,
    location_ids: Vec<String>,
    count: Option<u64>,
) -> Result<String, ClientError> {
    let mut clients = connect(target).await?;
    let mut stream = clients
        .availability
        .watch_availability(pb::WatchAvailabilityRequest {
            part_ids,
            location_ids,
        })
        .await?
        .into_inner();
    // The server subscribes before it answers, so from here no event is missed.
    eprintln!("watching availability (Ctrl-C stops)");
    let mut printed = 0u64;
    let mut stdout = std::io::stdout();
    while count.is_none_or(|n| printed < n) {
        let Some(event) = stream.next().await else {
            eprintln!("the server ended the stream");
            break;
        };
        let line = event_line(&event?);
        // A closed stdout (`| head`) ends the watch quietly.
        if stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
        printed += 1;
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_date_is_the_end_of_that_day_at_the_destination() {
        let NeedBy::Date(date) = parse_need_by("2026-12-01").unwrap() else {
            panic!("a date")
        };
        let chicago = end_of_day(date, "America/Chicago").unwrap();
        assert_eq!(chicago.to_string(), "2026-12-02T05:59:59Z");
        let berlin = end_of_day(date, "Europe/Berlin").unwrap();
        assert_eq!(berlin.to_string(), "2026-12-01T22:59:59Z");
        // Summer time in Berlin: UTC+2.
        let july = end_of_day(Date::constant(2026, 7, 1), "Europe/Berlin").unwrap();
        assert_eq!(july.to_string(), "2026-07-01T21:59:59Z");
        assert!(end_of_day(date, "Mars/Olympus").is_err());
    }

    #[test]
    fn instants_and_zoned_times_keep_their_meaning() {
        assert_eq!(
            parse_need_by("2026-12-01T17:00:00Z").unwrap(),
            NeedBy::Instant("2026-12-01T17:00:00Z".parse().unwrap())
        );
        assert_eq!(
            parse_need_by("2026-12-01T17:00[Europe/Berlin]").unwrap(),
            NeedBy::Instant("2026-12-01T16:00:00Z".parse().unwrap())
        );
        let error = parse_need_by("next tuesday").unwrap_err().to_string();
        assert!(
            error.contains("--need-by") && error.contains("2026-12-01"),
            "{error}"
        );
    }

    #[test]
    fn only_a_past_need_by_warns() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let past: jiff::Timestamp = "2026-11-29T23:59:59Z".parse().unwrap();
        let warning = past_warning(past, now).unwrap();
        assert!(warning.contains("in the past"), "{warning}");
        assert_eq!(past_warning(now, now), None);
    }

    #[test]
    fn states_parse_by_their_names_and_synonyms() {
        assert_eq!(parse_state("Posted").unwrap(), pb::ReservationState::Posted);
        assert_eq!(
            parse_state("released").unwrap(),
            pb::ReservationState::Voided
        );
        assert!(parse_state("lost").is_err());
    }
}
