//! The one table of request limits: for every string and every repeated field
//! of every request message (and every message nested in one), how long or how
//! many it may be. [`check_request`] walks a request's wire bytes against the
//! table before it is decoded, so an oversize id, key, page token or list is
//! refused at the edge, before any work or allocation, with a status that
//! names the field (`movements[3].idempotency_key`).
//!
//! Rules: strings past their length and lists past their count are
//! `OUT_OF_RANGE`; control characters in ids, keys and text (tab and line
//! breaks excepted in text), invalid UTF-8 and malformed wire data are
//! `INVALID_ARGUMENT`. Error messages never quote the offending value.
//!
//! A field is looked up as `Message.field` first, then by its bare name, so a
//! new `part_id` anywhere is an id without a new row; `tests` fail if any
//! string or repeated field of a request has no entry.

use crate::domain::DomainError;
use crate::domain::network::MAX_ID_BYTES;
use crate::pb;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

/// Longest idempotency key in bytes (room for a key built from two ids, a
/// file position and two counts, as `spares import` does).
pub const MAX_KEY_BYTES: usize = 256;
/// Longest free text (names, notes, descriptions, references) in bytes.
pub const MAX_TEXT_BYTES: usize = 2048;
/// Longest page token in bytes: tokens are the last key of a page, at most
/// two ids joined.
pub const MAX_PAGE_TOKEN_BYTES: usize = 256;
/// Most ids in one list (parts to simulate, ids to watch).
pub const MAX_IDS: usize = 10_000;
/// Most what-if scenarios in one `Simulate`: each is a whole copy of the
/// simulated network in memory while the job runs.
pub const MAX_SCENARIOS: usize = 20;
/// Most changes in one scenario.
pub const MAX_SCENARIO_CHANGES: usize = 1_000;
/// Most holidays in one calendar (decades of them).
pub const MAX_HOLIDAYS: usize = 1_000;
/// Most samples in an empirical transit-time or lead-time distribution.
pub const MAX_TRANSIT_SAMPLES: usize = 10_000;
/// Most departures a day on a lane schedule (one every 15 minutes).
pub const MAX_DEPARTURES_PER_DAY: usize = 96;
/// Most parts in one machine model's bill of materials.
pub const MAX_MODEL_PARTS: usize = 10_000;
/// Deepest nesting of messages in a request (ours nest at most 5 deep).
const MAX_DEPTH: usize = 16;

/// What a field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// An id: at most [`MAX_ID_BYTES`], no control characters.
    Id,
    /// An idempotency key: at most [`MAX_KEY_BYTES`], no control characters.
    Key,
    /// Free text: at most [`MAX_TEXT_BYTES`], no control characters but tab
    /// and line breaks.
    Text,
    /// A page token: at most [`MAX_PAGE_TOKEN_BYTES`] (it may hold the unit
    /// separator U+001F, which joins the ids of a key).
    Token,
    /// A repeated field of at most this many items.
    Items(usize),
    /// A repeated string of at most this many ids, each an [`Limit::Id`].
    Ids(usize),
}

/// The table. Keys are `Message.field` (package omitted) or a bare field name
/// that applies wherever no `Message.field` row exists.
pub const LIMITS: &[(&str, Limit)] = &[
    // Ids, wherever they appear.
    ("id", Limit::Id),
    ("part_id", Limit::Id),
    ("location_id", Limit::Id),
    ("near_location_id", Limit::Id),
    ("destination_location_id", Limit::Id),
    ("from_location_id", Limit::Id),
    ("to_location_id", Limit::Id),
    ("store_location_id", Limit::Id),
    ("ship_to_location_id", Limit::Id),
    ("replenishment_source_id", Limit::Id),
    ("successor_part_id", Limit::Id),
    ("machine_model_id", Limit::Id),
    ("shipment_id", Limit::Id),
    ("reservation_id", Limit::Id),
    ("job_id", Limit::Id),
    ("plan_id", Limit::Id),
    ("line_id", Limit::Id),
    ("key_id", Limit::Id),
    ("time_zone", Limit::Id),
    ("country_code", Limit::Id),
    // Keys, tokens and text.
    ("idempotency_key", Limit::Key),
    ("page_token", Limit::Token),
    ("name", Limit::Text),
    ("description", Limit::Text),
    ("note", Limit::Text),
    ("order_reference", Limit::Text),
    ("source", Limit::Text),
    // Principal ids (an API key's `apikey:<id>`, a JWT subject, a
    // certificate subject, `unknown (before layout 4)`) and RPC paths, as
    // filters of the trails.
    ("actor_id", Limit::Text),
    ("principal_id", Limit::Text),
    ("ListAuditEventsRequest.rpc", Limit::Text),
    // A principal id: `jwt:SUBJECT` or `cert:URI` may pass an id's 64 bytes.
    ("ListJobsRequest.owner", Limit::Text),
    // Lists of ids.
    ("part_ids", Limit::Ids(MAX_IDS)),
    ("location_ids", Limit::Ids(MAX_IDS)),
    ("store_ids", Limit::Ids(MAX_IDS)),
    // Batches: one limit for every batch RPC.
    (
        "RecordMovementsRequest.movements",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertLocationsRequest.locations",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertLanesRequest.lanes",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertPartsRequest.parts",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertInstalledBaseRequest.machine_models",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertInstalledBaseRequest.fleets",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertDemandHistoryRequest.series",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "SetPoliciesRequest.policies",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertSupplierLeadTimesRequest.supplier_lead_times",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertCriticalityCostsRequest.criticality_costs",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "UpsertDemandRatesRequest.rates",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    (
        "RetireRequest.lanes",
        Limit::Items(crate::config::MAX_BATCH_ITEMS),
    ),
    // Everything else that repeats.
    (
        "PromiseOrderRequest.lines",
        Limit::Items(crate::domain::promise::MAX_ORDER_LINES),
    ),
    (
        "WhereIsBatchRequest.lines",
        Limit::Items(crate::domain::promise::MAX_BATCH_LINES),
    ),
    (
        "PromiseBatchRequest.lines",
        Limit::Items(crate::domain::promise::MAX_BATCH_LINES),
    ),
    ("BusinessCalendar.working_days", Limit::Items(7)),
    ("BusinessCalendar.holidays", Limit::Items(MAX_HOLIDAYS)),
    (
        "EmpiricalTransit.transit_hours_samples",
        Limit::Items(MAX_TRANSIT_SAMPLES),
    ),
    (
        "EmpiricalLeadTime.lead_time_days_samples",
        Limit::Items(MAX_TRANSIT_SAMPLES),
    ),
    ("DepartureSchedule.days", Limit::Items(7)),
    (
        "DepartureSchedule.departures_local",
        Limit::Items(MAX_DEPARTURES_PER_DAY),
    ),
    ("MachineModel.parts", Limit::Items(MAX_MODEL_PARTS)),
    (
        "DemandSeries.quantities",
        Limit::Items(crate::import::MAX_DEMAND_PERIODS),
    ),
    ("SimulateRequest.scenarios", Limit::Items(MAX_SCENARIOS)),
    ("Scenario.changes", Limit::Items(MAX_SCENARIO_CHANGES)),
    (
        "ForecastRequest.series",
        Limit::Items(crate::planning::forecast::MAX_FORECAST_SERIES),
    ),
];

/// The limit of a field: its `Message.field` row, else its bare-name row.
pub fn limit_of(message: &str, field: &str) -> Option<Limit> {
    let qualified = format!("{message}.{field}");
    let find = |key: &str| LIMITS.iter().find(|(k, _)| *k == key).map(|(_, l)| *l);
    find(&qualified).or_else(|| find(field))
}

/// The shape of one field, as the scanner needs it.
#[derive(Debug, Clone)]
struct FieldShape {
    name: String,
    kind: Kind,
    repeated: bool,
    limit: Option<Limit>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    String,
    Bytes,
    Message(String),
    /// A varint number, bool or enum (possibly packed when repeated).
    Varint,
    /// A fixed-width number of this many bytes (possibly packed).
    Fixed(usize),
}

/// Messages by full name (`spares.v1.X`), their fields by number; and the
/// names of the messages that are requests or nested in one.
#[derive(Debug, Default)]
struct Schema {
    messages: HashMap<String, HashMap<u32, FieldShape>>,
    requests: BTreeSet<String>,
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| build_schema(pb::FILE_DESCRIPTOR_SET))
}

fn build_schema(encoded: &[u8]) -> Schema {
    // The descriptor set is compiled into the binary by build.rs; an empty
    // schema (which checks nothing) could only come from a broken build.
    let set = prost_types::FileDescriptorSet::decode(encoded).unwrap_or_default();
    let mut schema = Schema::default();
    let mut inputs = Vec::new();
    for file in &set.file {
        let package = file.package();
        for message in &file.message_type {
            let full = format!("{package}.{}", message.name());
            let fields = message
                .field
                .iter()
                .map(|f| {
                    let kind = match f.r#type() {
                        Type::String => Kind::String,
                        Type::Bytes => Kind::Bytes,
                        Type::Message | Type::Group => {
                            Kind::Message(f.type_name().trim_start_matches('.').to_string())
                        }
                        Type::Double | Type::Fixed64 | Type::Sfixed64 => Kind::Fixed(8),
                        Type::Float | Type::Fixed32 | Type::Sfixed32 => Kind::Fixed(4),
                        _ => Kind::Varint,
                    };
                    let shape = FieldShape {
                        name: f.name().to_string(),
                        kind,
                        repeated: f.label() == Label::Repeated,
                        limit: limit_of(message.name(), f.name()),
                    };
                    (u32::try_from(f.number()).unwrap_or(0), shape)
                })
                .collect();
            schema.messages.insert(full, fields);
        }
        for service in &file.service {
            for method in &service.method {
                inputs.push(method.input_type().trim_start_matches('.').to_string());
            }
        }
    }
    while let Some(name) = inputs.pop() {
        if !schema.requests.insert(name.clone()) {
            continue;
        }
        for field in schema
            .messages
            .get(&name)
            .into_iter()
            .flat_map(|m| m.values())
        {
            if let Kind::Message(nested) = &field.kind {
                inputs.push(nested.clone());
            }
        }
    }
    schema
}

/// Checks a request's wire bytes against the table before it is decoded.
/// Messages that are not requests (responses, on the client side) pass.
///
/// Errors: `OutOfRange` naming the field for a string or list past its limit;
/// `InvalidArgument` for control characters, invalid UTF-8 or malformed data.
pub fn check_request(message: &str, bytes: &[u8]) -> Result<(), DomainError> {
    let schema = schema();
    if !schema.requests.contains(message) {
        return Ok(());
    }
    Scanner { schema }.message(message, bytes, "", 0)
}

struct Scanner<'a> {
    schema: &'a Schema,
}

/// A cursor over wire bytes.
struct Wire<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Wire<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in 0..10 {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (7 * shift);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(len)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
}

fn malformed(path: &str, what: &str) -> DomainError {
    let field = if path.is_empty() { "request" } else { path };
    DomainError::invalid(field, format!("malformed protobuf: {what}"))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl Scanner<'_> {
    fn message(
        &self,
        name: &str,
        bytes: &[u8],
        path: &str,
        depth: usize,
    ) -> Result<(), DomainError> {
        if depth > MAX_DEPTH {
            return Err(malformed(path, "nested too deep"));
        }
        let fields = self.schema.messages.get(name);
        let mut counts: Vec<(u32, usize)> = Vec::new();
        let mut wire = Wire { bytes, at: 0 };
        while wire.at < bytes.len() {
            let key = wire
                .varint()
                .ok_or_else(|| malformed(path, "bad field key"))?;
            let number =
                u32::try_from(key >> 3).map_err(|_| malformed(path, "bad field number"))?;
            let payload = match key & 7 {
                0 => wire.varint().map(|_| None),
                1 => wire.take(8).map(|_| None),
                5 => wire.take(4).map(|_| None),
                2 => wire
                    .varint()
                    .and_then(|len| usize::try_from(len).ok())
                    .and_then(|len| wire.take(len))
                    .map(Some),
                _ => None,
            }
            .ok_or_else(|| malformed(path, "truncated or unsupported field"))?;
            let Some(field) = fields.and_then(|f| f.get(&number)) else {
                continue; // Unknown fields are skipped, as protobuf requires.
            };
            let index = count(&mut counts, number, field, payload);
            let field_path = if field.repeated {
                format!("{}[{index}]", join(path, &field.name))
            } else {
                join(path, &field.name)
            };
            if let Some(Limit::Items(max) | Limit::Ids(max)) = field.limit {
                let seen = counts.iter().find(|(n, _)| *n == number).map_or(0, |c| c.1);
                if seen > max {
                    return Err(DomainError::OutOfRange {
                        field: join(path, &field.name),
                        reason: format!("more than {max} items"),
                    });
                }
            }
            if let Some(bytes) = payload {
                self.value(field, bytes, &field_path, depth)?;
            }
        }
        Ok(())
    }

    fn value(
        &self,
        field: &FieldShape,
        bytes: &[u8],
        path: &str,
        depth: usize,
    ) -> Result<(), DomainError> {
        match &field.kind {
            Kind::Message(nested) => self.message(nested, bytes, path, depth + 1),
            Kind::String => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| DomainError::invalid(path, "not valid UTF-8"))?;
                check_text(path, text, field.limit.unwrap_or(Limit::Text))
            }
            Kind::Bytes => check_length(path, bytes.len(), MAX_TEXT_BYTES),
            Kind::Varint | Kind::Fixed(_) => Ok(()),
        }
    }
}

/// Counts an occurrence of a field (packed scalars count their elements) and
/// returns the index of the first element of this occurrence.
fn count(
    counts: &mut Vec<(u32, usize)>,
    number: u32,
    field: &FieldShape,
    payload: Option<&[u8]>,
) -> usize {
    let items = match (&field.kind, payload) {
        // A packed run: each varint ends with one byte below 0x80.
        (Kind::Varint, Some(bytes)) => bytes.iter().filter(|b| **b < 0x80).count(),
        (Kind::Fixed(width), Some(bytes)) => bytes.len().div_ceil(*width),
        _ => 1,
    };
    match counts.iter_mut().find(|(n, _)| *n == number) {
        Some(entry) => {
            let first = entry.1;
            entry.1 += items;
            first
        }
        None => {
            counts.push((number, items));
            0
        }
    }
}

fn check_length(path: &str, len: usize, max: usize) -> Result<(), DomainError> {
    if len > max {
        return Err(DomainError::OutOfRange {
            field: path.to_string(),
            reason: format!("{len} bytes; at most {max}"),
        });
    }
    Ok(())
}

fn check_text(path: &str, text: &str, limit: Limit) -> Result<(), DomainError> {
    let (max, allowed): (usize, &[char]) = match limit {
        Limit::Id | Limit::Ids(_) => (MAX_ID_BYTES, &[]),
        Limit::Key => (MAX_KEY_BYTES, &[]),
        Limit::Token => (MAX_PAGE_TOKEN_BYTES, &['\u{1f}']),
        Limit::Text | Limit::Items(_) => (MAX_TEXT_BYTES, &['\t', '\n', '\r']),
    };
    check_length(path, text.len(), max)?;
    if text
        .chars()
        .any(|c| c.is_control() && !allowed.contains(&c))
    {
        return Err(DomainError::invalid(
            path,
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string and repeated field of every request message has a row,
    /// and every `Message.field` row names a real field.
    #[test]
    fn every_string_and_repeated_field_of_a_request_has_a_limit() {
        let schema = schema();
        assert!(schema.requests.contains("spares.v1.RecordMovementsRequest"));
        let mut missing = Vec::new();
        for name in &schema.requests {
            for field in schema.messages[name].values() {
                let needs = field.repeated || matches!(field.kind, Kind::String | Kind::Bytes);
                if needs && field.limit.is_none() {
                    missing.push(format!("{name}.{}", field.name));
                }
                let element_is_string = matches!(field.kind, Kind::String);
                if field.repeated && element_is_string {
                    assert!(
                        matches!(field.limit, Some(Limit::Ids(_))),
                        "{name}.{}: a repeated string needs Ids(n)",
                        field.name
                    );
                }
            }
        }
        assert!(missing.is_empty(), "no limit for {missing:?}");
        for (key, _) in LIMITS {
            if let Some((message, field)) = key.split_once('.') {
                let full = format!("spares.v1.{message}");
                let known = schema
                    .messages
                    .get(&full)
                    .is_some_and(|m| m.values().any(|f| f.name == field));
                assert!(known, "stale row {key}");
            }
        }
    }

    fn movement(key: &str) -> pb::RecordMovementsRequest {
        pb::RecordMovementsRequest {
            movements: vec![
                pb::MovementRequest {
                    idempotency_key: "ok".into(),
                    part_id: "P".into(),
                    ..Default::default()
                },
                pb::MovementRequest {
                    idempotency_key: key.into(),
                    ..Default::default()
                },
            ],
        }
    }

    fn check(request: &impl Message, name: &str) -> Result<(), DomainError> {
        check_request(&format!("spares.v1.{name}"), &request.encode_to_vec())
    }

    #[test]
    fn an_oversize_key_is_out_of_range_naming_its_path() {
        assert_eq!(check(&movement("k"), "RecordMovementsRequest"), Ok(()));
        let err = check(&movement(&"k".repeat(100_000)), "RecordMovementsRequest").unwrap_err();
        assert!(
            matches!(&err, DomainError::OutOfRange { field, .. } if field == "movements[1].idempotency_key"),
            "{err:?}"
        );
        assert!(err.to_string().len() < 200, "the value is not quoted");
        let err = check(&movement("a\u{0}b"), "RecordMovementsRequest").unwrap_err();
        assert!(
            matches!(&err, DomainError::InvalidArgument { field, .. } if field == "movements[1].idempotency_key")
        );
    }

    #[test]
    fn lists_are_counted_including_packed_ones() {
        let series = pb::DemandSeries {
            quantities: vec![1; crate::import::MAX_DEMAND_PERIODS + 1],
            ..Default::default()
        };
        let request = pb::UpsertDemandHistoryRequest {
            series: vec![series],
        };
        let err = check(&request, "UpsertDemandHistoryRequest").unwrap_err();
        assert!(
            matches!(&err, DomainError::OutOfRange { field, .. } if field == "series[0].quantities"),
            "{err:?}"
        );
        let scenarios = pb::SimulateRequest {
            scenarios: vec![pb::Scenario::default(); MAX_SCENARIOS + 1],
            ..Default::default()
        };
        assert!(matches!(
            check(&scenarios, "SimulateRequest"),
            Err(DomainError::OutOfRange { field, .. }) if field == "scenarios"
        ));
    }

    #[test]
    fn malformed_bytes_are_invalid_argument_never_a_panic() {
        for bytes in [
            &[0xff_u8][..],
            &[0x0a, 0x05, 0x01],
            &[0x0b],
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ] {
            let err = check_request("spares.v1.RecordMovementsRequest", bytes).unwrap_err();
            assert!(
                matches!(err, DomainError::InvalidArgument { .. }),
                "{err:?}"
            );
        }
        let deep = (0..40).fold(Vec::new(), |inner, _| {
            let mut outer = vec![0x0a];
            prost::encoding::encode_varint(inner.len() as u64, &mut outer);
            outer.extend(inner);
            outer
        });
        assert!(check_request("spares.v1.RecordMovementsRequest", &deep).is_err());
    }
}
