//! The network model: locations, lanes, parts, installed base, demand history and
//! stocking policies, with the validation every write goes through.
//!
//! These are plain data types of the pure core; the gRPC layer converts protobuf
//! messages into them and the store persists them.

use super::error::DomainError;
pub use super::inputs::{CriticalityCost, DemandRate, LeadTime, SupplierLeadTime};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A location id (e.g. `DEP-ROT`, `STR-0117`).
pub type LocationId = String;
/// A part number.
pub type PartId = String;
/// A whole number of stock units. Stock is never fractional.
pub type Qty = u64;

/// Echelon of a location in the supply tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LocationKind {
    /// Top of the tree, fed by the factory.
    FactoryDepot,
    /// Middle echelon.
    RegionalWarehouse,
    /// Dealer or distributor branch serving machines.
    Store,
}

/// When a location works, in its own time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessCalendar {
    /// Working weekdays.
    pub working_days: BTreeSet<WeekdayName>,
    /// Local opening time on a working day.
    pub opens_local: Time,
    /// Local closing time on a working day (after `opens_local`).
    pub closes_local: Time,
    /// Non-working local dates.
    pub holidays: BTreeSet<Date>,
}

/// A weekday that orders and serialises plainly (jiff's `Weekday` does not derive `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WeekdayName {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl WeekdayName {
    /// Converts from jiff's weekday.
    pub fn from_jiff(day: Weekday) -> Self {
        match day {
            Weekday::Monday => Self::Monday,
            Weekday::Tuesday => Self::Tuesday,
            Weekday::Wednesday => Self::Wednesday,
            Weekday::Thursday => Self::Thursday,
            Weekday::Friday => Self::Friday,
            Weekday::Saturday => Self::Saturday,
            Weekday::Sunday => Self::Sunday,
        }
    }

    /// Monday to Friday.
    pub fn monday_to_friday() -> BTreeSet<Self> {
        [
            Self::Monday,
            Self::Tuesday,
            Self::Wednesday,
            Self::Thursday,
            Self::Friday,
        ]
        .into_iter()
        .collect()
    }
}

impl BusinessCalendar {
    /// Monday to Friday, 08:00 to 17:00, no holidays.
    pub fn weekdays_8_to_17() -> Self {
        Self {
            working_days: WeekdayName::monday_to_friday(),
            opens_local: Time::constant(8, 0, 0, 0),
            closes_local: Time::constant(17, 0, 0, 0),
            holidays: BTreeSet::new(),
        }
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.working_days
            .contains(&WeekdayName::from_jiff(date.weekday()))
            && !self.holidays.contains(&date)
    }

    /// Checks that the calendar has at least one working day and opens before it closes.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.working_days.is_empty() {
            return Err(DomainError::invalid(
                "calendar.working_days",
                "at least one working day is needed",
            ));
        }
        if self.opens_local >= self.closes_local {
            return Err(DomainError::invalid(
                "calendar.closes_local",
                "must be after opens_local",
            ));
        }
        Ok(())
    }
}

/// A node of the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Unique id.
    pub id: LocationId,
    /// Display name.
    pub name: String,
    /// Echelon.
    pub kind: LocationKind,
    /// Latitude in degrees.
    pub latitude_deg: f64,
    /// Longitude in degrees.
    pub longitude_deg: f64,
    /// IANA time zone name, e.g. `Europe/Amsterdam`.
    pub time_zone: String,
    /// Working days, hours and holidays, local to `time_zone`.
    pub calendar: BusinessCalendar,
    /// Local order cut-off on a working day.
    pub order_cutoff_local: Time,
    /// Pick-and-pack time before dispatch, in minutes.
    pub handling_minutes: u32,
    /// Who replenishes this location; `None` at the top of the tree.
    pub replenishment_source: Option<LocationId>,
    /// ISO 3166 country code.
    pub country_code: String,
}

/// Longest handling time accepted: a week. Anything longer is a data error.
pub const MAX_HANDLING_MINUTES: u32 = 7 * 24 * 60;

impl Location {
    /// Checks one location on its own (ids, coordinates, time zone, calendar).
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_id("id", &self.id)?;
        if !(-90.0..=90.0).contains(&self.latitude_deg) {
            return Err(DomainError::invalid("latitude_deg", "must be in [-90, 90]"));
        }
        if !(-180.0..=180.0).contains(&self.longitude_deg) {
            return Err(DomainError::invalid(
                "longitude_deg",
                "must be in [-180, 180]",
            ));
        }
        if self.time_zone.is_empty() {
            return Err(DomainError::invalid("time_zone", "is required (IANA name)"));
        }
        TimeZone::get(&self.time_zone).map_err(|_| {
            DomainError::invalid(
                "time_zone",
                format!("{:?} is not an IANA time zone", self.time_zone),
            )
        })?;
        self.calendar.validate()?;
        if self.handling_minutes > MAX_HANDLING_MINUTES {
            return Err(DomainError::OutOfRange {
                field: "handling_minutes".into(),
                reason: format!("at most {MAX_HANDLING_MINUTES} (one week)"),
            });
        }
        if self.replenishment_source.as_deref() == Some(self.id.as_str()) {
            return Err(DomainError::invalid(
                "replenishment_source_id",
                "a location cannot replenish itself",
            ));
        }
        Ok(())
    }

    /// The location's time zone. Validated locations always have one.
    pub fn tz(&self) -> Result<TimeZone, DomainError> {
        TimeZone::get(&self.time_zone)
            .map_err(|_| DomainError::invalid("time_zone", "not an IANA time zone"))
    }
}

/// Longest id (part, location, machine model, shipment) in bytes: ids are
/// keys in every index and quoted in errors, so they stay short.
pub const MAX_ID_BYTES: usize = 64;

/// Checks an id: non-empty, at most 64 bytes, no control characters or whitespace.
pub fn validate_id(field: &str, id: &str) -> Result<(), DomainError> {
    if id.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(DomainError::OutOfRange {
            field: field.into(),
            reason: format!("ids are at most {MAX_ID_BYTES} bytes"),
        });
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DomainError::invalid(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    Ok(())
}

/// How goods move on a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TransportMode {
    /// Truck.
    Road,
    /// Air freight.
    Air,
    /// Ocean.
    Sea,
    /// Rail.
    Rail,
    /// Parcel courier.
    Courier,
}

/// What a lane is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LaneKind {
    /// Along the supply tree.
    Replenishment,
    /// Between peers.
    Lateral,
    /// Skips levels; fast and costly.
    Emergency,
}

/// A transit time distribution in calendar hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransitTime {
    /// Always the same.
    Fixed {
        /// Hours in transit.
        transit_hours: f64,
    },
    /// Log-normal, given by median and 90th percentile.
    Lognormal {
        /// Median hours.
        transit_hours_p50: f64,
        /// 90th-percentile hours (>= median).
        transit_hours_p90: f64,
    },
    /// The empirical distribution of observed times (sorted ascending).
    Empirical {
        /// Observed hours, sorted.
        transit_hours_samples: Vec<f64>,
    },
}

/// Longest transit accepted: 120 days (ocean freight plus customs fits comfortably).
pub const MAX_TRANSIT_HOURS: f64 = 120.0 * 24.0;

impl TransitTime {
    /// Checks that every figure is finite, positive, ordered and within limits.
    pub fn validate(&self) -> Result<(), DomainError> {
        let check = |field: &str, hours: f64| -> Result<(), DomainError> {
            if !hours.is_finite() || hours < 0.0 {
                return Err(DomainError::invalid(field, "must be a finite number >= 0"));
            }
            if hours > MAX_TRANSIT_HOURS {
                return Err(DomainError::OutOfRange {
                    field: field.into(),
                    reason: format!("at most {MAX_TRANSIT_HOURS} hours"),
                });
            }
            Ok(())
        };
        match self {
            Self::Fixed { transit_hours } => check("transit.fixed.transit_hours", *transit_hours),
            Self::Lognormal {
                transit_hours_p50,
                transit_hours_p90,
            } => {
                check("transit.lognormal.transit_hours_p50", *transit_hours_p50)?;
                check("transit.lognormal.transit_hours_p90", *transit_hours_p90)?;
                if *transit_hours_p50 <= 0.0 {
                    return Err(DomainError::invalid(
                        "transit.lognormal.transit_hours_p50",
                        "must be > 0",
                    ));
                }
                if transit_hours_p90 < transit_hours_p50 {
                    return Err(DomainError::invalid(
                        "transit.lognormal.transit_hours_p90",
                        "must be >= transit_hours_p50",
                    ));
                }
                Ok(())
            }
            Self::Empirical {
                transit_hours_samples,
            } => {
                if transit_hours_samples.is_empty() {
                    return Err(DomainError::invalid(
                        "transit.empirical.transit_hours_samples",
                        "needs at least one sample",
                    ));
                }
                for hours in transit_hours_samples {
                    check("transit.empirical.transit_hours_samples", *hours)?;
                }
                Ok(())
            }
        }
    }

    /// Median transit hours.
    pub fn median_hours(&self) -> f64 {
        match self {
            Self::Fixed { transit_hours } => *transit_hours,
            Self::Lognormal {
                transit_hours_p50, ..
            } => *transit_hours_p50,
            Self::Empirical {
                transit_hours_samples,
            } => transit_hours_samples
                .get(transit_hours_samples.len() / 2)
                .copied()
                .unwrap_or(0.0),
        }
    }
}

/// Departures of a scheduled lane, local to the origin's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartureSchedule {
    /// Days with departures; empty means every day.
    pub days: BTreeSet<WeekdayName>,
    /// Local departure times, sorted.
    pub departures_local: Vec<Time>,
}

/// A lane's key: (from, to, mode, kind).
pub type LaneKey = (LocationId, LocationId, TransportMode, LaneKind);

/// A directed transport link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lane {
    /// Origin.
    pub from: LocationId,
    /// Destination.
    pub to: LocationId,
    /// Mode; (from, to, mode, kind) is the lane's key.
    pub mode: TransportMode,
    /// Replenishment, lateral or emergency.
    pub kind: LaneKind,
    /// Transit time distribution.
    pub transit: TransitTime,
    /// Scheduled departures; `None` departs at the origin's cut-off.
    pub schedule: Option<DepartureSchedule>,
    /// Freight cost per unit.
    pub cost_per_unit_usd: f64,
}

impl Lane {
    /// Checks one lane on its own: ids, no self-loop, transit, cost.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_id("from_location_id", &self.from)?;
        validate_id("to_location_id", &self.to)?;
        if self.from == self.to {
            return Err(DomainError::invalid(
                "to_location_id",
                "a lane cannot start and end at the same location",
            ));
        }
        self.transit.validate()?;
        if !self.cost_per_unit_usd.is_finite() || self.cost_per_unit_usd < 0.0 {
            return Err(DomainError::invalid(
                "cost_per_unit_usd",
                "must be a finite number >= 0",
            ));
        }
        if let Some(schedule) = &self.schedule
            && schedule.departures_local.is_empty()
        {
            return Err(DomainError::invalid(
                "schedule.departures_local",
                "a schedule needs at least one departure time",
            ));
        }
        Ok(())
    }

    /// The lane's key: an emergency lane and a replenishment lane of the same
    /// mode between the same two locations are two lanes.
    pub fn key(&self) -> LaneKey {
        (self.from.clone(), self.to.clone(), self.mode, self.kind)
    }
}

/// How critical a missing part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Criticality {
    /// Machine down.
    Critical,
    /// Machine degraded.
    Essential,
    /// Nice to have.
    Routine,
}

/// How a part and its successor may replace each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Interchangeability {
    /// The successor may be supplied for the part, not the reverse.
    ForwardOnly,
    /// Either for either.
    TwoWay,
}

/// A part number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Part number.
    pub id: PartId,
    /// Description.
    pub description: String,
    /// Unit cost.
    pub unit_cost_usd: f64,
    /// Criticality class.
    pub criticality: Criticality,
    /// Repaired (true) or consumed (false) when used.
    pub repairable: bool,
    /// The part that supersedes this one.
    pub successor: Option<PartId>,
    /// How this part and its successor interchange.
    pub interchangeability: Interchangeability,
    /// Supplier lead time into every location supplied from outside the
    /// network; `None` takes the documented default
    /// (`planning::model::FACTORY_LEAD_TIME_DAYS_MEAN`). Overridden per
    /// (part, depot) by [`SupplierLeadTime`].
    #[serde(default)]
    pub supplier_lead_time: Option<LeadTime>,
    /// What an hour of a machine waiting for this part costs; `None` falls back
    /// to the network's class cost, then to the machine's rate x share (the
    /// rule is written once, in `planning::model`).
    #[serde(default)]
    pub downtime_cost_usd_per_hour: Option<f64>,
}

impl Part {
    /// Checks one part on its own.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_id("id", &self.id)?;
        if !self.unit_cost_usd.is_finite() || self.unit_cost_usd < 0.0 {
            return Err(DomainError::invalid(
                "unit_cost_usd",
                "must be a finite number >= 0",
            ));
        }
        if let Some(successor) = &self.successor {
            validate_id("successor_part_id", successor)?;
            if successor == &self.id {
                return Err(DomainError::invalid(
                    "successor_part_id",
                    "a part cannot supersede itself",
                ));
            }
        }
        if let Some(lead_time) = &self.supplier_lead_time {
            lead_time
                .validate()
                .map_err(|e| e.within("supplier_lead_time"))?;
        }
        if let Some(cost) = self.downtime_cost_usd_per_hour {
            super::inputs::check_downtime_cost("downtime_cost_usd_per_hour", cost)?;
        }
        Ok(())
    }
}

/// A part carried by a machine model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPart {
    /// The part.
    pub part_id: PartId,
    /// Units fitted per machine.
    pub units_per_machine: u32,
    /// Share of machines carrying it, in (0, 1].
    pub attach_rate: f64,
    /// Failure rate per unit per million operating hours.
    pub failures_per_million_operating_hours: f64,
    /// Weibull shape (1 = exponential).
    pub weibull_shape: f64,
}

/// A machine model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineModel {
    /// Model id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What an hour of downtime costs.
    pub downtime_cost_usd_per_hour: f64,
    /// Parts it carries.
    pub parts: Vec<ModelPart>,
}

impl MachineModel {
    /// Checks rates and costs are finite and in range.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_id("id", &self.id)?;
        finite_non_negative(
            "downtime_cost_usd_per_hour",
            self.downtime_cost_usd_per_hour,
        )?;
        for (i, part) in self.parts.iter().enumerate() {
            let field = |name: &str| format!("parts[{i}].{name}");
            validate_id(&field("part_id"), &part.part_id)?;
            if part.units_per_machine == 0 {
                return Err(DomainError::invalid(
                    field("units_per_machine"),
                    "must be > 0",
                ));
            }
            if !(part.attach_rate > 0.0 && part.attach_rate <= 1.0) {
                return Err(DomainError::invalid(
                    field("attach_rate"),
                    "must be in (0, 1]",
                ));
            }
            finite_non_negative(
                &field("failures_per_million_operating_hours"),
                part.failures_per_million_operating_hours,
            )?;
            if !(part.weibull_shape.is_finite() && part.weibull_shape > 0.0) {
                return Err(DomainError::invalid(field("weibull_shape"), "must be > 0"));
            }
        }
        Ok(())
    }
}

/// Machines of one model served by one store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    /// The store.
    pub store_location_id: LocationId,
    /// The machine model.
    pub machine_model_id: String,
    /// Number of machines.
    pub machine_count: u32,
    /// Operating hours per day, in [0, 24].
    pub usage_hours_per_day: f64,
    /// Average age, for wear-out models.
    pub average_age_hours: f64,
}

impl Fleet {
    /// Checks ids and ranges.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_id("store_location_id", &self.store_location_id)?;
        validate_id("machine_model_id", &self.machine_model_id)?;
        if !(0.0..=24.0).contains(&self.usage_hours_per_day) {
            return Err(DomainError::invalid(
                "usage_hours_per_day",
                "must be in [0, 24]",
            ));
        }
        finite_non_negative("average_age_hours", self.average_age_hours)
    }
}

/// Length of a demand period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Period {
    /// One day.
    Day,
    /// One week.
    Week,
    /// One month.
    Month,
}

/// Demand history of a part at a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandSeries {
    /// The part.
    pub part_id: PartId,
    /// The location.
    pub location_id: LocationId,
    /// Period length.
    pub period: Period,
    /// Local date the first period starts.
    pub first_period_start: Date,
    /// Units demanded per period.
    pub quantities: Vec<Qty>,
}

/// Replenishment rule of a part at a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    /// One-for-one (S-1, S).
    BaseStock,
    /// (s, S).
    MinMax,
    /// (R, Q).
    ReorderPointQuantity,
}

/// How much of a part to hold at a location: the plan in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The part.
    pub part_id: PartId,
    /// The location.
    pub location_id: LocationId,
    /// The rule.
    pub kind: PolicyKind,
    /// S.
    pub order_up_to: Qty,
    /// s or R.
    pub reorder_point: Qty,
    /// Q.
    pub order_quantity: Qty,
    /// Available units only critical demand may take.
    pub protected_quantity: Qty,
    /// Where the plan came from.
    pub source: String,
}

impl Policy {
    /// Checks the levels are consistent with the kind.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_id("part_id", &self.part_id)?;
        validate_id("location_id", &self.location_id)?;
        for (field, quantity) in [
            ("order_up_to", self.order_up_to),
            ("reorder_point", self.reorder_point),
            ("order_quantity", self.order_quantity),
            ("protected_quantity", self.protected_quantity),
        ] {
            super::ledger::check_quantity(field, quantity)?;
        }
        match self.kind {
            PolicyKind::BaseStock => Ok(()),
            PolicyKind::MinMax if self.reorder_point >= self.order_up_to => Err(
                DomainError::invalid("reorder_point", "s must be below order_up_to S"),
            ),
            PolicyKind::ReorderPointQuantity if self.order_quantity == 0 => {
                Err(DomainError::invalid("order_quantity", "Q must be > 0"))
            }
            _ => Ok(()),
        }
    }
}

fn finite_non_negative(field: &str, value: f64) -> Result<(), DomainError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(DomainError::invalid(field, "must be a finite number >= 0"))
    }
}

/// The whole network master data, as held in memory by the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Locations by id.
    pub locations: BTreeMap<LocationId, Location>,
    /// Lanes by (from, to, mode, kind).
    pub lanes: BTreeMap<LaneKey, Lane>,
    /// Parts by id.
    pub parts: BTreeMap<PartId, Part>,
    /// Machine models by id.
    pub machine_models: BTreeMap<String, MachineModel>,
    /// Fleets by (store, model).
    pub fleets: BTreeMap<(LocationId, String), Fleet>,
    /// Demand series by (part, location).
    pub demand: BTreeMap<(PartId, LocationId), DemandSeries>,
    /// Policies by (part, location).
    pub policies: BTreeMap<(PartId, LocationId), Policy>,
    /// Supplier lead-time overrides by (part, location supplied from outside).
    #[serde(default)]
    pub supplier_lead_times: BTreeMap<(PartId, LocationId), SupplierLeadTime>,
    /// Downtime cost per hour by criticality class, for this network.
    #[serde(default)]
    pub criticality_costs: BTreeMap<Criticality, CriticalityCost>,
    /// Planners' demand rates by (part, location).
    #[serde(default)]
    pub demand_rates: BTreeMap<(PartId, LocationId), DemandRate>,
    /// Parts, locations and lanes taken out of service (see `retire`): in no
    /// active map above, so in no answer or plan, but kept.
    #[serde(default)]
    pub retired: super::retire::RetiredRecords,
}

impl Network {
    /// Checks a batch of locations against the network as it would be after the
    /// upsert: each location valid, every replenishment source known, no cycle in
    /// the supply tree. Errors name `locations[i].field`.
    pub fn check_locations(&self, batch: &[Location]) -> Result<(), DomainError> {
        let mut sources: BTreeMap<&str, Option<&str>> = self
            .locations
            .values()
            .map(|l| (l.id.as_str(), l.replenishment_source.as_deref()))
            .collect();
        let mut seen = HashSet::new();
        for (i, location) in batch.iter().enumerate() {
            location
                .validate()
                .map_err(|e| e.within(&format!("locations[{i}]")))?;
            if !seen.insert(location.id.as_str()) {
                return Err(DomainError::invalid(
                    format!("locations[{i}].id"),
                    format!("{:?} appears twice in the batch", location.id),
                ));
            }
            sources.insert(&location.id, location.replenishment_source.as_deref());
        }
        for (i, location) in batch.iter().enumerate() {
            let field = format!("locations[{i}].replenishment_source_id");
            if let Some(source) = location.replenishment_source.as_deref()
                && !sources.contains_key(source)
            {
                return Err(DomainError::invalid(
                    field,
                    format!("unknown location {source:?}"),
                ));
            }
            if supply_chain_has_cycle(&sources, &location.id) {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "the supply tree would have a cycle through {:?}",
                        location.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks a batch of lanes: each valid and between known locations.
    pub fn check_lanes(&self, batch: &[Lane]) -> Result<(), DomainError> {
        for (i, lane) in batch.iter().enumerate() {
            let prefix = format!("lanes[{i}]");
            lane.validate().map_err(|e| e.within(&prefix))?;
            for (field, id) in [
                ("from_location_id", &lane.from),
                ("to_location_id", &lane.to),
            ] {
                if !self.locations.contains_key(id) {
                    return Err(DomainError::invalid(
                        format!("{prefix}.{field}"),
                        format!("unknown location {id:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks a batch of parts: each valid, successors known, no supersession cycle.
    pub fn check_parts(&self, batch: &[Part]) -> Result<(), DomainError> {
        let mut successors: BTreeMap<&str, Option<&str>> = self
            .parts
            .values()
            .map(|p| (p.id.as_str(), p.successor.as_deref()))
            .collect();
        for (i, part) in batch.iter().enumerate() {
            part.validate()
                .map_err(|e| e.within(&format!("parts[{i}]")))?;
            successors.insert(&part.id, part.successor.as_deref());
        }
        for (i, part) in batch.iter().enumerate() {
            let field = format!("parts[{i}].successor_part_id");
            if let Some(successor) = part.successor.as_deref()
                && !successors.contains_key(successor)
            {
                return Err(DomainError::invalid(
                    field,
                    format!("unknown part {successor:?}"),
                ));
            }
            if supply_chain_has_cycle(&successors, &part.id) {
                return Err(DomainError::invalid(
                    field,
                    format!("supersession would form a cycle through {:?}", part.id),
                ));
            }
        }
        Ok(())
    }

    /// Checks machine models and fleets against known parts, stores and models.
    pub fn check_installed_base(
        &self,
        models: &[MachineModel],
        fleets: &[Fleet],
    ) -> Result<(), DomainError> {
        for (i, model) in models.iter().enumerate() {
            let prefix = format!("machine_models[{i}]");
            model.validate().map_err(|e| e.within(&prefix))?;
            for (j, part) in model.parts.iter().enumerate() {
                if !self.parts.contains_key(&part.part_id) {
                    return Err(DomainError::invalid(
                        format!("{prefix}.parts[{j}].part_id"),
                        format!("unknown part {:?}", part.part_id),
                    ));
                }
            }
        }
        let batch_models: HashSet<&str> = models.iter().map(|m| m.id.as_str()).collect();
        for (i, fleet) in fleets.iter().enumerate() {
            let prefix = format!("fleets[{i}]");
            fleet.validate().map_err(|e| e.within(&prefix))?;
            match self.locations.get(&fleet.store_location_id) {
                Some(l) if l.kind == LocationKind::Store => {}
                Some(_) => {
                    return Err(DomainError::invalid(
                        format!("{prefix}.store_location_id"),
                        "fleets are served by stores",
                    ));
                }
                None => {
                    return Err(DomainError::invalid(
                        format!("{prefix}.store_location_id"),
                        format!("unknown location {:?}", fleet.store_location_id),
                    ));
                }
            }
            if !self.machine_models.contains_key(&fleet.machine_model_id)
                && !batch_models.contains(fleet.machine_model_id.as_str())
            {
                return Err(DomainError::invalid(
                    format!("{prefix}.machine_model_id"),
                    format!("unknown machine model {:?}", fleet.machine_model_id),
                ));
            }
        }
        Ok(())
    }

    /// Checks demand series refer to known parts and locations.
    pub fn check_demand(&self, batch: &[DemandSeries]) -> Result<(), DomainError> {
        for (i, series) in batch.iter().enumerate() {
            self.check_part_location(
                &format!("series[{i}]"),
                &series.part_id,
                &series.location_id,
            )?;
            if let Some(p) = series
                .quantities
                .iter()
                .position(|q| *q > super::ledger::MAX_QUANTITY)
            {
                super::ledger::check_quantity(
                    &format!("series[{i}].quantities[{p}]"),
                    series.quantities[p],
                )?;
            }
        }
        Ok(())
    }

    /// Checks policies: valid and for known parts and locations.
    pub fn check_policies(&self, batch: &[Policy]) -> Result<(), DomainError> {
        for (i, policy) in batch.iter().enumerate() {
            let prefix = format!("policies[{i}]");
            policy.validate().map_err(|e| e.within(&prefix))?;
            self.check_part_location(&prefix, &policy.part_id, &policy.location_id)?;
        }
        Ok(())
    }

    /// Checks supplier lead-time overrides: each valid, for a known part, into a
    /// known location supplied from outside the network (no replenishment
    /// source). Errors name `supplier_lead_times[i].field`.
    pub fn check_supplier_lead_times(&self, batch: &[SupplierLeadTime]) -> Result<(), DomainError> {
        for (i, record) in batch.iter().enumerate() {
            let prefix = format!("supplier_lead_times[{i}]");
            validate_id(&format!("{prefix}.part_id"), &record.part_id)?;
            validate_id(&format!("{prefix}.location_id"), &record.location_id)?;
            record
                .lead_time
                .validate()
                .map_err(|e| e.within(&format!("{prefix}.lead_time")))?;
            self.check_part_location(&prefix, &record.part_id, &record.location_id)?;
            let source = self
                .locations
                .get(&record.location_id)
                .and_then(|l| l.replenishment_source.as_deref());
            if let Some(source) = source {
                return Err(DomainError::invalid(
                    format!("{prefix}.location_id"),
                    format!(
                        "{:?} is replenished by {source:?}; a supplier lead time applies \
                         only where a location is supplied from outside the network",
                        record.location_id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks downtime costs per criticality class: each finite, >= 0, and one
    /// per class in the batch.
    pub fn check_criticality_costs(&self, batch: &[CriticalityCost]) -> Result<(), DomainError> {
        let mut seen = HashSet::new();
        for (i, cost) in batch.iter().enumerate() {
            let prefix = format!("criticality_costs[{i}]");
            cost.validate().map_err(|e| e.within(&prefix))?;
            if !seen.insert(cost.criticality) {
                return Err(DomainError::invalid(
                    format!("{prefix}.criticality"),
                    "appears twice in the batch",
                ));
            }
        }
        Ok(())
    }

    /// Checks demand rates: each valid and for a known part and location.
    pub fn check_demand_rates(&self, batch: &[DemandRate]) -> Result<(), DomainError> {
        for (i, rate) in batch.iter().enumerate() {
            let prefix = format!("rates[{i}]");
            validate_id(&format!("{prefix}.part_id"), &rate.part_id)?;
            validate_id(&format!("{prefix}.location_id"), &rate.location_id)?;
            rate.validate().map_err(|e| e.within(&prefix))?;
            self.check_part_location(&prefix, &rate.part_id, &rate.location_id)?;
        }
        Ok(())
    }

    /// Checks a part id and a location id are known; the error names `prefix.part_id`
    /// or `prefix.location_id`.
    pub fn check_part_location(
        &self,
        prefix: &str,
        part_id: &str,
        location_id: &str,
    ) -> Result<(), DomainError> {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        if !self.parts.contains_key(part_id) {
            let at = field("part_id");
            return Err(DomainError::not_found("part", format!("{part_id} ({at})")));
        }
        if !self.locations.contains_key(location_id) {
            let at = field("location_id");
            return Err(DomainError::not_found(
                "location",
                format!("{location_id} ({at})"),
            ));
        }
        Ok(())
    }

    /// The supersession chain of a part: itself, then each successor in turn.
    pub fn successors(&self, part_id: &str) -> Vec<PartId> {
        let mut chain = vec![part_id.to_string()];
        let mut current = part_id;
        while let Some(next) = self.parts.get(current).and_then(|p| p.successor.as_deref()) {
            if chain.iter().any(|p| p == next) {
                break; // Cycles are rejected on write; this guards against a corrupt store.
            }
            chain.push(next.to_string());
            current = next;
        }
        chain
    }

    /// Parts whose successor is `part_id`.
    pub fn predecessors(&self, part_id: &str) -> Vec<&Part> {
        self.parts
            .values()
            .filter(|p| p.successor.as_deref() == Some(part_id))
            .collect()
    }
}

/// Whether following `next` pointers from `start` comes back to a visited node.
fn supply_chain_has_cycle(next: &BTreeMap<&str, Option<&str>>, start: &str) -> bool {
    let mut visited = HashSet::new();
    let mut current = Some(start);
    while let Some(node) = current {
        if !visited.insert(node) {
            return true;
        }
        current = next.get(node).copied().flatten();
    }
    false
}

/// Great-circle distance between two points in kilometres (haversine, mean Earth radius).
pub fn great_circle_km(lat1_deg: f64, lon1_deg: f64, lat2_deg: f64, lon2_deg: f64) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0088;
    let (phi1, phi2) = (lat1_deg.to_radians(), lat2_deg.to_radians());
    let d_phi = phi2 - phi1;
    let d_lambda = (lon2_deg - lon1_deg).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(id: &str, source: Option<&str>) -> Location {
        Location {
            id: id.into(),
            name: id.into(),
            kind: LocationKind::Store,
            latitude_deg: 41.88,
            longitude_deg: -87.63,
            time_zone: "America/Chicago".into(),
            calendar: BusinessCalendar::weekdays_8_to_17(),
            order_cutoff_local: Time::constant(16, 0, 0, 0),
            handling_minutes: 30,
            replenishment_source: source.map(str::to_string),
            country_code: "US".into(),
        }
    }

    #[test]
    fn supply_tree_cycle_is_rejected_naming_the_field() {
        let network = Network::default();
        let batch = vec![location("A", Some("B")), location("B", Some("A"))];
        let err = network.check_locations(&batch).unwrap_err();
        assert!(
            matches!(&err, DomainError::InvalidArgument { field, .. } if field == "locations[0].replenishment_source_id"),
            "{err:?}"
        );
    }

    #[test]
    fn missing_time_zone_is_rejected() {
        let mut loc = location("A", None);
        loc.time_zone.clear();
        let err = Network::default().check_locations(&[loc]).unwrap_err();
        assert!(
            matches!(&err, DomainError::InvalidArgument { field, .. } if field == "locations[0].time_zone")
        );
    }

    #[test]
    fn self_loop_lane_is_rejected() {
        let mut network = Network::default();
        network.locations.insert("A".into(), location("A", None));
        let lane = Lane {
            from: "A".into(),
            to: "A".into(),
            mode: TransportMode::Road,
            kind: LaneKind::Replenishment,
            transit: TransitTime::Fixed { transit_hours: 5.0 },
            schedule: None,
            cost_per_unit_usd: 1.0,
        };
        let err = network.check_lanes(&[lane]).unwrap_err();
        assert!(
            matches!(&err, DomainError::InvalidArgument { field, .. } if field == "lanes[0].to_location_id")
        );
    }

    #[test]
    fn great_circle_rotterdam_chicago_is_about_6700_km() {
        let km = great_circle_km(51.9225, 4.47917, 41.85003, -87.65005);
        assert!((km - 6650.0).abs() < 150.0, "{km}");
    }
}
