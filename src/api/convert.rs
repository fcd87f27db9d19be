//! Conversions between protobuf messages and core types. Incoming messages are
//! checked field by field and a bad one becomes `InvalidArgument` naming the
//! field; nothing here unwraps a proto field.

use crate::domain::DomainError;
use crate::domain::ledger::{
    Balance, InboundShipment, MovementCommand, MovementKind, MovementOutcome, Priority,
    Reservation, ReservationState,
};
use crate::domain::network::{
    BusinessCalendar, Criticality, DemandSeries, DepartureSchedule, Fleet, Interchangeability,
    Lane, LaneKind, Location, LocationKind, MachineModel, ModelPart, Part, Period, Policy,
    PolicyKind, TransitTime, TransportMode, WeekdayName,
};
use crate::pb;
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use std::collections::BTreeSet;

type Result<T> = std::result::Result<T, DomainError>;

/// Earliest valid `google.protobuf.Timestamp`: 0001-01-01T00:00:00Z.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Latest valid `google.protobuf.Timestamp`: 9999-12-31T23:59:59Z.
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// Converts a protobuf timestamp to a jiff instant. Valid timestamps are
/// those protobuf defines (years 1 to 9999, nanos in 0..1e9); jiff stops a day
/// short of either end, so the last day of year 9999 (and the first of year 1)
/// clamp to jiff's bounds, which is the same instant for every rule here.
pub fn timestamp_from_pb(field: &str, ts: &prost_types::Timestamp) -> Result<Timestamp> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(DomainError::invalid(
            field,
            "nanos must be in 0..999,999,999 (a negative instant counts seconds down and nanos up)",
        ));
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&ts.seconds) {
        return Err(DomainError::invalid(
            field,
            "seconds must be within years 0001 to 9999",
        ));
    }
    let seconds = ts
        .seconds
        .clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::new(seconds, ts.nanos)
        .map_err(|e| DomainError::invalid(field, format!("not a valid timestamp: {e}")))
}

/// Converts an optional protobuf timestamp.
pub fn opt_timestamp(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<Option<Timestamp>> {
    ts.map(|t| timestamp_from_pb(field, t)).transpose()
}

/// Converts a jiff instant to a protobuf timestamp.
pub fn timestamp_to_pb(ts: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ts.as_second(),
        nanos: ts.subsec_nanosecond(),
    }
}

fn time_of_day(field: &str, t: Option<&pb::TimeOfDay>, default: Time) -> Result<Time> {
    let Some(t) = t else { return Ok(default) };
    let hour = i8::try_from(t.hour).ok().filter(|h| *h < 24);
    let minute = i8::try_from(t.minute).ok().filter(|m| *m < 60);
    match (hour, minute) {
        (Some(h), Some(m)) => Ok(Time::constant(h, m, 0, 0)),
        _ => Err(DomainError::invalid(
            field,
            "hour must be 0..23 and minute 0..59",
        )),
    }
}

fn time_to_pb(t: Time) -> pb::TimeOfDay {
    pb::TimeOfDay {
        hour: u32::try_from(t.hour()).unwrap_or(0),
        minute: u32::try_from(t.minute()).unwrap_or(0),
    }
}

fn date_from_pb(field: &str, d: &pb::Date) -> Result<Date> {
    let year =
        i16::try_from(d.year).map_err(|_| DomainError::invalid(field, "year out of range"))?;
    let month =
        i8::try_from(d.month).map_err(|_| DomainError::invalid(field, "month must be 1..12"))?;
    let day = i8::try_from(d.day).map_err(|_| DomainError::invalid(field, "day must be 1..31"))?;
    Date::new(year, month, day).map_err(|e| DomainError::invalid(field, format!("not a date: {e}")))
}

fn date_to_pb(d: Date) -> pb::Date {
    pb::Date {
        year: i32::from(d.year()),
        month: u32::try_from(d.month()).unwrap_or(1),
        day: u32::try_from(d.day()).unwrap_or(1),
    }
}

fn weekday_from_pb(field: &str, value: i32) -> Result<WeekdayName> {
    use pb::Weekday as W;
    Ok(match W::try_from(value) {
        Ok(W::Monday) => WeekdayName::Monday,
        Ok(W::Tuesday) => WeekdayName::Tuesday,
        Ok(W::Wednesday) => WeekdayName::Wednesday,
        Ok(W::Thursday) => WeekdayName::Thursday,
        Ok(W::Friday) => WeekdayName::Friday,
        Ok(W::Saturday) => WeekdayName::Saturday,
        Ok(W::Sunday) => WeekdayName::Sunday,
        _ => {
            return Err(DomainError::invalid(
                field,
                format!("{value} is not a weekday (1..7)"),
            ));
        }
    })
}

fn weekday_to_pb(day: WeekdayName) -> i32 {
    use pb::Weekday as W;
    (match day {
        WeekdayName::Monday => W::Monday,
        WeekdayName::Tuesday => W::Tuesday,
        WeekdayName::Wednesday => W::Wednesday,
        WeekdayName::Thursday => W::Thursday,
        WeekdayName::Friday => W::Friday,
        WeekdayName::Saturday => W::Saturday,
        WeekdayName::Sunday => W::Sunday,
    }) as i32
}

fn weekdays(field: &str, values: &[i32]) -> Result<BTreeSet<WeekdayName>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| weekday_from_pb(&format!("{field}[{i}]"), *v))
        .collect()
}

fn calendar_from_pb(c: Option<&pb::BusinessCalendar>) -> Result<BusinessCalendar> {
    let default = BusinessCalendar::weekdays_8_to_17();
    let Some(c) = c else { return Ok(default) };
    let working_days = if c.working_days.is_empty() {
        default.working_days
    } else {
        weekdays("calendar.working_days", &c.working_days)?
    };
    let holidays = c
        .holidays
        .iter()
        .enumerate()
        .map(|(i, d)| date_from_pb(&format!("calendar.holidays[{i}]"), d))
        .collect::<Result<_>>()?;
    Ok(BusinessCalendar {
        working_days,
        opens_local: time_of_day(
            "calendar.opens_local",
            c.opens_local.as_ref(),
            default.opens_local,
        )?,
        closes_local: time_of_day(
            "calendar.closes_local",
            c.closes_local.as_ref(),
            default.closes_local,
        )?,
        holidays,
    })
}

fn calendar_to_pb(c: &BusinessCalendar) -> pb::BusinessCalendar {
    pb::BusinessCalendar {
        working_days: c.working_days.iter().map(|d| weekday_to_pb(*d)).collect(),
        opens_local: Some(time_to_pb(c.opens_local)),
        closes_local: Some(time_to_pb(c.closes_local)),
        holidays: c.holidays.iter().map(|d| date_to_pb(*d)).collect(),
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

/// Converts a protobuf location.
pub fn location_from_pb(l: &pb::Location) -> Result<Location> {
    use pb::LocationKind as K;
    let kind = match K::try_from(l.kind) {
        Ok(K::FactoryDepot) => LocationKind::FactoryDepot,
        Ok(K::RegionalWarehouse) => LocationKind::RegionalWarehouse,
        Ok(K::Store) => LocationKind::Store,
        _ => {
            return Err(DomainError::invalid(
                "kind",
                "must be FACTORY_DEPOT, REGIONAL_WAREHOUSE or STORE",
            ));
        }
    };
    Ok(Location {
        id: l.id.clone(),
        name: if l.name.is_empty() {
            l.id.clone()
        } else {
            l.name.clone()
        },
        kind,
        latitude_deg: l.latitude_deg,
        longitude_deg: l.longitude_deg,
        time_zone: l.time_zone.clone(),
        calendar: calendar_from_pb(l.calendar.as_ref())?,
        order_cutoff_local: time_of_day(
            "order_cutoff_local",
            l.order_cutoff_local.as_ref(),
            Time::constant(16, 0, 0, 0),
        )?,
        handling_minutes: l.handling_minutes,
        replenishment_source: non_empty(&l.replenishment_source_id),
        country_code: l.country_code.clone(),
    })
}

/// Converts a location to protobuf.
pub fn location_to_pb(l: &Location) -> pb::Location {
    pb::Location {
        id: l.id.clone(),
        name: l.name.clone(),
        kind: location_kind_to_pb(l.kind) as i32,
        latitude_deg: l.latitude_deg,
        longitude_deg: l.longitude_deg,
        time_zone: l.time_zone.clone(),
        calendar: Some(calendar_to_pb(&l.calendar)),
        order_cutoff_local: Some(time_to_pb(l.order_cutoff_local)),
        handling_minutes: l.handling_minutes,
        replenishment_source_id: l.replenishment_source.clone().unwrap_or_default(),
        country_code: l.country_code.clone(),
    }
}

/// Converts a location kind to protobuf.
pub fn location_kind_to_pb(kind: LocationKind) -> pb::LocationKind {
    match kind {
        LocationKind::FactoryDepot => pb::LocationKind::FactoryDepot,
        LocationKind::RegionalWarehouse => pb::LocationKind::RegionalWarehouse,
        LocationKind::Store => pb::LocationKind::Store,
    }
}

/// Converts an optional location-kind filter (unspecified = any).
pub fn location_kind_filter(value: i32) -> Result<Option<LocationKind>> {
    use pb::LocationKind as K;
    match K::try_from(value) {
        Ok(K::Unspecified) => Ok(None),
        Ok(K::FactoryDepot) => Ok(Some(LocationKind::FactoryDepot)),
        Ok(K::RegionalWarehouse) => Ok(Some(LocationKind::RegionalWarehouse)),
        Ok(K::Store) => Ok(Some(LocationKind::Store)),
        Err(_) => Err(DomainError::invalid(
            "kind",
            format!("unknown kind {value}"),
        )),
    }
}

/// Converts a protobuf transport mode (unspecified is road).
pub fn mode_from_pb(value: i32) -> Result<TransportMode> {
    use pb::TransportMode as M;
    Ok(match M::try_from(value) {
        Ok(M::Unspecified | M::Road) => TransportMode::Road,
        Ok(M::Air) => TransportMode::Air,
        Ok(M::Sea) => TransportMode::Sea,
        Ok(M::Rail) => TransportMode::Rail,
        Ok(M::Courier) => TransportMode::Courier,
        Err(_) => {
            return Err(DomainError::invalid(
                "mode",
                format!("unknown mode {value}"),
            ));
        }
    })
}

/// Converts a transport mode to protobuf.
pub fn mode_to_pb(mode: TransportMode) -> i32 {
    use pb::TransportMode as M;
    (match mode {
        TransportMode::Road => M::Road,
        TransportMode::Air => M::Air,
        TransportMode::Sea => M::Sea,
        TransportMode::Rail => M::Rail,
        TransportMode::Courier => M::Courier,
    }) as i32
}

fn transit_from_pb(t: Option<&pb::TransitTime>) -> Result<TransitTime> {
    use pb::transit_time::Distribution as D;
    match t.and_then(|t| t.distribution.as_ref()) {
        Some(D::Fixed(f)) => Ok(TransitTime::Fixed {
            transit_hours: f.transit_hours,
        }),
        Some(D::Lognormal(l)) => Ok(TransitTime::Lognormal {
            transit_hours_p50: l.transit_hours_p50,
            transit_hours_p90: l.transit_hours_p90,
        }),
        Some(D::Empirical(e)) => {
            let mut samples = e.transit_hours_samples.clone();
            samples.sort_by(f64::total_cmp);
            Ok(TransitTime::Empirical {
                transit_hours_samples: samples,
            })
        }
        None => Err(DomainError::invalid(
            "transit",
            "a transit-time distribution is required",
        )),
    }
}

fn transit_to_pb(t: &TransitTime) -> pb::TransitTime {
    use pb::transit_time::Distribution as D;
    let distribution = match t {
        TransitTime::Fixed { transit_hours } => D::Fixed(pb::FixedTransit {
            transit_hours: *transit_hours,
        }),
        TransitTime::Lognormal {
            transit_hours_p50,
            transit_hours_p90,
        } => D::Lognormal(pb::LognormalTransit {
            transit_hours_p50: *transit_hours_p50,
            transit_hours_p90: *transit_hours_p90,
        }),
        TransitTime::Empirical {
            transit_hours_samples,
        } => D::Empirical(pb::EmpiricalTransit {
            transit_hours_samples: transit_hours_samples.clone(),
        }),
    };
    pb::TransitTime {
        distribution: Some(distribution),
    }
}

/// Converts a protobuf lane.
pub fn lane_from_pb(l: &pb::Lane) -> Result<Lane> {
    let kind = lane_kind_from_pb(l.kind)?;
    let schedule = l
        .schedule
        .as_ref()
        .map(|s| -> Result<DepartureSchedule> {
            let mut departures_local = s
                .departures_local
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    time_of_day(
                        &format!("schedule.departures_local[{i}]"),
                        Some(t),
                        Time::midnight(),
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            departures_local.sort();
            Ok(DepartureSchedule {
                days: weekdays("schedule.days", &s.days)?,
                departures_local,
            })
        })
        .transpose()?;
    Ok(Lane {
        from: l.from_location_id.clone(),
        to: l.to_location_id.clone(),
        mode: mode_from_pb(l.mode)?,
        kind,
        transit: transit_from_pb(l.transit.as_ref())?,
        schedule,
        cost_per_unit_usd: l.cost_per_unit_usd,
    })
}

/// Converts a protobuf lane kind (unspecified is replenishment).
pub fn lane_kind_from_pb(value: i32) -> Result<LaneKind> {
    use pb::LaneKind as K;
    match K::try_from(value) {
        Ok(K::Unspecified | K::Replenishment) => Ok(LaneKind::Replenishment),
        Ok(K::Lateral) => Ok(LaneKind::Lateral),
        Ok(K::Emergency) => Ok(LaneKind::Emergency),
        Err(_) => Err(DomainError::invalid(
            "kind",
            format!("unknown lane kind {value}"),
        )),
    }
}

/// Converts a lane kind to protobuf.
pub fn lane_kind_to_pb(kind: LaneKind) -> i32 {
    use pb::LaneKind as K;
    (match kind {
        LaneKind::Replenishment => K::Replenishment,
        LaneKind::Lateral => K::Lateral,
        LaneKind::Emergency => K::Emergency,
    }) as i32
}

/// Converts a lane to protobuf.
pub fn lane_to_pb(l: &Lane) -> pb::Lane {
    pb::Lane {
        from_location_id: l.from.clone(),
        to_location_id: l.to.clone(),
        mode: mode_to_pb(l.mode),
        kind: lane_kind_to_pb(l.kind),
        transit: Some(transit_to_pb(&l.transit)),
        schedule: l.schedule.as_ref().map(|s| pb::DepartureSchedule {
            days: s.days.iter().map(|d| weekday_to_pb(*d)).collect(),
            departures_local: s.departures_local.iter().map(|t| time_to_pb(*t)).collect(),
        }),
        cost_per_unit_usd: l.cost_per_unit_usd,
    }
}

/// Converts a protobuf criticality (unspecified is routine).
pub fn criticality_from_pb(value: i32) -> Result<Criticality> {
    use pb::Criticality as C;
    Ok(match C::try_from(value) {
        Ok(C::Critical) => Criticality::Critical,
        Ok(C::Essential) => Criticality::Essential,
        Ok(C::Unspecified | C::Routine) => Criticality::Routine,
        Err(_) => {
            return Err(DomainError::invalid(
                "criticality",
                format!("unknown criticality {value}"),
            ));
        }
    })
}

/// Converts a criticality to protobuf.
pub fn criticality_to_pb(c: Criticality) -> i32 {
    use pb::Criticality as C;
    (match c {
        Criticality::Critical => C::Critical,
        Criticality::Essential => C::Essential,
        Criticality::Routine => C::Routine,
    }) as i32
}

/// Converts an optional criticality filter (unspecified = any).
pub fn criticality_filter(value: i32) -> Result<Option<Criticality>> {
    if value == pb::Criticality::Unspecified as i32 {
        return Ok(None);
    }
    criticality_from_pb(value).map(Some)
}

/// Converts a protobuf part.
pub fn part_from_pb(p: &pb::Part) -> Result<Part> {
    use pb::{Interchangeability as I, PartKind as K};
    let repairable = match K::try_from(p.kind) {
        Ok(K::Unspecified | K::Consumable) => false,
        Ok(K::Repairable) => true,
        Err(_) => {
            return Err(DomainError::invalid(
                "kind",
                format!("unknown part kind {}", p.kind),
            ));
        }
    };
    let interchangeability = match I::try_from(p.interchangeability) {
        Ok(I::Unspecified | I::ForwardOnly) => Interchangeability::ForwardOnly,
        Ok(I::TwoWay) => Interchangeability::TwoWay,
        Err(_) => return Err(DomainError::invalid("interchangeability", "unknown value")),
    };
    Ok(Part {
        id: p.id.clone(),
        description: p.description.clone(),
        unit_cost_usd: p.unit_cost_usd,
        criticality: criticality_from_pb(p.criticality)?,
        repairable,
        successor: non_empty(&p.successor_part_id),
        interchangeability,
        supplier_lead_time: super::inputs::lead_time_from_pb(p.supplier_lead_time.as_ref()),
        downtime_cost_usd_per_hour: p.downtime_cost_usd_per_hour,
    })
}

/// Converts a part to protobuf.
pub fn part_to_pb(p: &Part) -> pb::Part {
    use pb::{Interchangeability as I, PartKind as K};
    pb::Part {
        id: p.id.clone(),
        description: p.description.clone(),
        unit_cost_usd: p.unit_cost_usd,
        criticality: criticality_to_pb(p.criticality),
        kind: (if p.repairable {
            K::Repairable
        } else {
            K::Consumable
        }) as i32,
        successor_part_id: p.successor.clone().unwrap_or_default(),
        interchangeability: (match p.interchangeability {
            Interchangeability::ForwardOnly => I::ForwardOnly,
            Interchangeability::TwoWay => I::TwoWay,
        }) as i32,
        supplier_lead_time: p
            .supplier_lead_time
            .as_ref()
            .map(super::inputs::lead_time_to_pb),
        downtime_cost_usd_per_hour: p.downtime_cost_usd_per_hour,
    }
}

/// Converts a protobuf machine model.
pub fn machine_model_from_pb(m: &pb::MachineModel) -> MachineModel {
    MachineModel {
        id: m.id.clone(),
        name: if m.name.is_empty() {
            m.id.clone()
        } else {
            m.name.clone()
        },
        downtime_cost_usd_per_hour: m.downtime_cost_usd_per_hour,
        parts: m
            .parts
            .iter()
            .map(|p| ModelPart {
                part_id: p.part_id.clone(),
                units_per_machine: p.units_per_machine,
                attach_rate: if p.attach_rate == 0.0 {
                    1.0
                } else {
                    p.attach_rate
                },
                failures_per_million_operating_hours: p.failures_per_million_operating_hours,
                weibull_shape: if p.weibull_shape == 0.0 {
                    1.0
                } else {
                    p.weibull_shape
                },
            })
            .collect(),
    }
}

/// Converts a protobuf fleet.
pub fn fleet_from_pb(f: &pb::Fleet) -> Fleet {
    Fleet {
        store_location_id: f.store_location_id.clone(),
        machine_model_id: f.machine_model_id.clone(),
        machine_count: f.machine_count,
        usage_hours_per_day: f.usage_hours_per_day,
        average_age_hours: f.average_age_hours,
    }
}

/// Converts a protobuf demand series.
pub fn demand_from_pb(s: &pb::DemandSeries) -> Result<DemandSeries> {
    use pb::Period as P;
    let period = match P::try_from(s.period) {
        Ok(P::Day) => Period::Day,
        Ok(P::Week) => Period::Week,
        Ok(P::Month) => Period::Month,
        _ => return Err(DomainError::invalid("period", "must be DAY, WEEK or MONTH")),
    };
    let start = s
        .first_period_start
        .as_ref()
        .ok_or_else(|| DomainError::invalid("first_period_start", "is required"))?;
    Ok(DemandSeries {
        part_id: s.part_id.clone(),
        location_id: s.location_id.clone(),
        period,
        first_period_start: date_from_pb("first_period_start", start)?,
        quantities: s.quantities.clone(),
    })
}

/// Converts a protobuf policy.
pub fn policy_from_pb(p: &pb::Policy) -> Result<Policy> {
    use pb::PolicyKind as K;
    let kind = match K::try_from(p.kind) {
        Ok(K::Unspecified | K::BaseStock) => PolicyKind::BaseStock,
        Ok(K::MinMax) => PolicyKind::MinMax,
        Ok(K::ReorderPointQuantity) => PolicyKind::ReorderPointQuantity,
        Err(_) => return Err(DomainError::invalid("kind", "unknown policy kind")),
    };
    Ok(Policy {
        part_id: p.part_id.clone(),
        location_id: p.location_id.clone(),
        kind,
        order_up_to: p.order_up_to,
        reorder_point: p.reorder_point,
        order_quantity: p.order_quantity,
        protected_quantity: p.protected_quantity,
        source: if p.source.is_empty() {
            "api".into()
        } else {
            p.source.clone()
        },
    })
}

/// Converts a policy to protobuf.
pub fn policy_to_pb(p: &Policy) -> pb::Policy {
    use pb::PolicyKind as K;
    pb::Policy {
        part_id: p.part_id.clone(),
        location_id: p.location_id.clone(),
        kind: (match p.kind {
            PolicyKind::BaseStock => K::BaseStock,
            PolicyKind::MinMax => K::MinMax,
            PolicyKind::ReorderPointQuantity => K::ReorderPointQuantity,
        }) as i32,
        order_up_to: p.order_up_to,
        reorder_point: p.reorder_point,
        order_quantity: p.order_quantity,
        protected_quantity: p.protected_quantity,
        source: p.source.clone(),
        updated_at: None,
    }
}

/// Converts a protobuf movement request.
pub fn movement_from_pb(m: &pb::MovementRequest) -> Result<MovementCommand> {
    use pb::MovementKind as K;
    let kind = match K::try_from(m.kind) {
        Ok(K::Receipt) => MovementKind::Receipt,
        Ok(K::Issue) => MovementKind::Issue,
        Ok(K::TransferShip) => MovementKind::TransferShip,
        Ok(K::TransferReceive) => MovementKind::TransferReceive,
        Ok(K::Adjustment) => MovementKind::Adjustment,
        Ok(K::Scrap) => MovementKind::Scrap,
        Ok(K::Count) => MovementKind::Count,
        _ => return Err(DomainError::invalid("kind", "a movement kind is required")),
    };
    if m.idempotency_key.is_empty() {
        return Err(DomainError::invalid("idempotency_key", "is required"));
    }
    let quantity_ok = match kind {
        MovementKind::Adjustment => m.quantity != 0,
        MovementKind::Count => m.quantity >= 0,
        _ => m.quantity > 0,
    };
    if !quantity_ok {
        return Err(DomainError::invalid(
            "quantity",
            "must be > 0 (only adjustments may be negative; a count may be 0)",
        ));
    }
    crate::domain::ledger::check_quantity("quantity", m.quantity.unsigned_abs())?;
    if kind == MovementKind::TransferShip && m.to_location_id.is_empty() {
        return Err(DomainError::invalid(
            "to_location_id",
            "is required for a transfer ship",
        ));
    }
    if kind == MovementKind::TransferReceive && m.shipment_id.is_empty() {
        return Err(DomainError::invalid(
            "shipment_id",
            "is required for a transfer receive",
        ));
    }
    Ok(MovementCommand {
        idempotency_key: m.idempotency_key.clone(),
        kind,
        part_id: m.part_id.clone(),
        location_id: m.location_id.clone(),
        quantity: m.quantity,
        to_location_id: non_empty(&m.to_location_id),
        shipment_id: non_empty(&m.shipment_id),
        expected_arrival: opt_timestamp("expected_arrival", m.expected_arrival.as_ref())?,
        note: m.note.clone(),
    })
}

/// Converts a movement outcome to protobuf.
pub fn movement_outcome_to_pb(o: &MovementOutcome) -> pb::MovementResult {
    pb::MovementResult {
        idempotency_key: o.idempotency_key.clone(),
        sequence: o.sequence,
        replayed: o.replayed,
        shipment_id: o.shipment_id.clone().unwrap_or_default(),
        recorded_at: Some(timestamp_to_pb(o.recorded_at)),
    }
}

/// Converts a balance (with the protection in force) to a protobuf stock position.
pub fn stock_to_pb(b: &Balance, protected: u64, as_of: Timestamp) -> pb::StockPosition {
    pb::StockPosition {
        part_id: b.part_id.clone(),
        location_id: b.location_id.clone(),
        on_hand: b.on_hand(),
        reserved: b.reserved,
        available: b.available,
        protected: protected.min(b.available),
        in_transit: b.in_transit(),
        inbound: b.inbound.iter().map(inbound_to_pb).collect(),
        as_of: Some(timestamp_to_pb(as_of)),
    }
}

/// Converts a balance (with the protection in force) to a protobuf stock
/// position, moving its ids instead of copying them (a page of stock).
pub fn stock_into_pb(b: Balance, protected: u64, as_of: Timestamp) -> pb::StockPosition {
    pb::StockPosition {
        on_hand: b.on_hand(),
        reserved: b.reserved,
        available: b.available,
        protected: protected.min(b.available),
        in_transit: b.in_transit(),
        inbound: b.inbound.iter().map(inbound_to_pb).collect(),
        as_of: Some(timestamp_to_pb(as_of)),
        part_id: b.part_id,
        location_id: b.location_id,
    }
}

fn inbound_to_pb(s: &InboundShipment) -> pb::InboundShipment {
    pb::InboundShipment {
        shipment_id: s.shipment_id.clone(),
        from_location_id: s.from_location_id.clone(),
        quantity: s.quantity,
        expected_arrival: s.expected_arrival.map(timestamp_to_pb),
    }
}

/// Converts a protobuf priority.
pub fn priority_from_pb(value: i32) -> Result<Priority> {
    use pb::Priority as P;
    match P::try_from(value) {
        Ok(P::Unspecified | P::Routine) => Ok(Priority::Routine),
        Ok(P::Critical) => Ok(Priority::Critical),
        Err(_) => Err(DomainError::invalid(
            "priority",
            format!("unknown priority {value}"),
        )),
    }
}

fn priority_to_pb(p: Priority) -> i32 {
    (match p {
        Priority::Routine => pb::Priority::Routine,
        Priority::Critical => pb::Priority::Critical,
    }) as i32
}

/// Converts a reservation-state filter (unspecified = any).
pub fn reservation_state_filter(value: i32) -> Result<Option<ReservationState>> {
    use pb::ReservationState as S;
    Ok(match S::try_from(value) {
        Ok(S::Unspecified) => None,
        Ok(S::Pending) => Some(ReservationState::Pending),
        Ok(S::Posted) => Some(ReservationState::Posted),
        Ok(S::Voided) => Some(ReservationState::Voided),
        Ok(S::Expired) => Some(ReservationState::Expired),
        Err(_) => {
            return Err(DomainError::invalid(
                "state",
                format!("unknown state {value}"),
            ));
        }
    })
}

/// Converts a reservation to protobuf.
pub fn reservation_to_pb(r: &Reservation) -> pb::Reservation {
    use pb::ReservationState as S;
    pb::Reservation {
        reservation_id: r.reservation_id.clone(),
        part_id: r.part_id.clone(),
        location_id: r.location_id.clone(),
        quantity: r.quantity,
        state: (match r.state {
            ReservationState::Pending => S::Pending,
            ReservationState::Posted => S::Posted,
            ReservationState::Voided => S::Voided,
            ReservationState::Expired => S::Expired,
        }) as i32,
        priority: priority_to_pb(r.priority),
        created_at: Some(timestamp_to_pb(r.created_at)),
        expires_at: Some(timestamp_to_pb(r.expires_at)),
        settled_at: r.settled_at.map(timestamp_to_pb),
        order_reference: r.order_reference.clone(),
        ship_to_location_id: r.ship_to_location_id.clone().unwrap_or_default(),
        shipment_id: r.shipment_id.clone().unwrap_or_default(),
    }
}

/// The availability-stream event of a reservation as it stands after a
/// step: its state says which step (pending: reserved; posted: confirmed;
/// voided: released; expired), and `at` is when that step happened.
pub fn reservation_change_to_pb(r: &Reservation) -> pb::ReservationChange {
    use pb::ReservationChangeKind as K;
    let kind = match r.state {
        ReservationState::Pending => K::Reserved,
        ReservationState::Posted => K::Confirmed,
        ReservationState::Voided => K::Released,
        ReservationState::Expired => K::Expired,
    };
    pb::ReservationChange {
        kind: kind as i32,
        reservation_id: r.reservation_id.clone(),
        part_id: r.part_id.clone(),
        location_id: r.location_id.clone(),
        held_for_location_id: r.held_for().to_string(),
        quantity: r.quantity,
        at: Some(timestamp_to_pb(r.settled_at.unwrap_or(r.created_at))),
    }
}

/// Converts every item of a batch, prefixing errors with `name[i]`.
pub fn convert_batch<P, T>(
    name: &str,
    items: &[P],
    convert: impl Fn(&P) -> Result<T>,
) -> Result<Vec<T>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| convert(item).map_err(|e| e.within(&format!("{name}[{i}]"))))
        .collect()
}

/// Converts a machine model to protobuf.
pub fn machine_model_to_pb(m: &MachineModel) -> pb::MachineModel {
    pb::MachineModel {
        id: m.id.clone(),
        name: m.name.clone(),
        downtime_cost_usd_per_hour: m.downtime_cost_usd_per_hour,
        parts: m
            .parts
            .iter()
            .map(|p| pb::ModelPart {
                part_id: p.part_id.clone(),
                units_per_machine: p.units_per_machine,
                attach_rate: p.attach_rate,
                failures_per_million_operating_hours: p.failures_per_million_operating_hours,
                weibull_shape: p.weibull_shape,
            })
            .collect(),
    }
}

/// Converts a fleet to protobuf.
pub fn fleet_to_pb(f: &Fleet) -> pb::Fleet {
    pb::Fleet {
        store_location_id: f.store_location_id.clone(),
        machine_model_id: f.machine_model_id.clone(),
        machine_count: f.machine_count,
        usage_hours_per_day: f.usage_hours_per_day,
        average_age_hours: f.average_age_hours,
    }
}

/// Converts a demand series to protobuf.
pub fn demand_to_pb(s: &DemandSeries) -> pb::DemandSeries {
    pb::DemandSeries {
        part_id: s.part_id.clone(),
        location_id: s.location_id.clone(),
        period: (match s.period {
            Period::Day => pb::Period::Day,
            Period::Week => pb::Period::Week,
            Period::Month => pb::Period::Month,
        }) as i32,
        first_period_start: Some(date_to_pb(s.first_period_start)),
        quantities: s.quantities.clone(),
    }
}
