//! Fixture pieces shared by the bench binaries (`mod support;` in each).
//! Cargo does not take `benches/support/mod.rs` for a bench target of its own.

use jiff::civil::Time;
use spares::domain::network::{
    BusinessCalendar, Lane, LaneKind, Location, LocationKind, TransitTime, TransportMode,
};

/// A location open weekdays 08:00-17:00 local with a 16:00 order cut-off and
/// 45 minutes of handling, named after its id.
pub fn location(id: String, kind: LocationKind, zone: &str, lat: f64, lon: f64) -> Location {
    Location {
        name: id.clone(),
        id,
        kind,
        latitude_deg: lat,
        longitude_deg: lon,
        time_zone: zone.into(),
        calendar: BusinessCalendar::weekdays_8_to_17(),
        order_cutoff_local: Time::constant(16, 0, 0, 0),
        handling_minutes: 45,
        replenishment_source: None,
        country_code: "XX".into(),
    }
}

/// A lane without a schedule, priced by kind: replenishment $5, lateral $10 and emergency
/// $80 a unit.
pub fn lane(
    from: &str,
    to: &str,
    kind: LaneKind,
    mode: TransportMode,
    transit: TransitTime,
) -> Lane {
    Lane {
        from: from.into(),
        to: to.into(),
        mode,
        kind,
        transit,
        schedule: None,
        cost_per_unit_usd: match kind {
            LaneKind::Replenishment => 5.0,
            LaneKind::Lateral => 10.0,
            LaneKind::Emergency => 80.0,
        },
    }
}
