//! Business-calendar arithmetic in a location's own IANA time zone: order
//! cut-offs and scheduled departures, opening hours and the next business day.
//!
//! Every instant in and out is a UTC [`Timestamp`]; local dates and times are
//! derived from the location's [`TimeZone`] (jiff's bundled tzdb), so weekends,
//! holidays and DST changes are all evaluated on the local wall clock.
//!
//! Local times that fall in a DST gap or fold are resolved with jiff's
//! "compatible" rule: a time inside a gap moves forward by the gap's length
//! (02:30 on a spring-forward night becomes 03:30), a time inside a fold takes
//! the earlier of its two instants.

use super::error::DomainError;
use super::network::{DepartureSchedule, Location, WeekdayName};
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeSet;

/// How many local days a calendar search may look ahead or back before giving up.
/// A year is enough for any real calendar; without a bound a calendar whose only
/// working weekday is covered by holidays would loop for ever.
pub const MAX_CALENDAR_SEARCH_DAYS: usize = 366;

/// Working weekdays as a table indexed by `Weekday::to_monday_zero_offset`.
type WeekTable = [bool; 7];

fn week_table(days: &BTreeSet<WeekdayName>) -> WeekTable {
    let mut table = [false; 7];
    for day in days {
        table[weekday_index(*day)] = true;
    }
    table
}

fn weekday_index(day: WeekdayName) -> usize {
    match day {
        WeekdayName::Monday => 0,
        WeekdayName::Tuesday => 1,
        WeekdayName::Wednesday => 2,
        WeekdayName::Thursday => 3,
        WeekdayName::Friday => 4,
        WeekdayName::Saturday => 5,
        WeekdayName::Sunday => 6,
    }
}

fn day_index(date: Date) -> usize {
    // `to_monday_zero_offset` is in 0..=6.
    usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0)
}

/// When goods leave a location on one lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departures {
    /// At the origin's order cut-off on each of its working days.
    AtCutoff,
    /// At fixed local times on some weekdays. Departures only happen on days that
    /// are also working days of the origin: nobody is there to load the truck
    /// on a holiday or a closed weekday.
    Scheduled {
        /// Weekdays with departures (all `true` when the schedule names no days).
        days: [bool; 7],
        /// Local departure times, sorted ascending.
        times_local: Vec<Time>,
    },
}

impl Departures {
    /// Resolves a lane's optional schedule; `None` departs at the origin's cut-off.
    pub fn from_schedule(schedule: Option<&DepartureSchedule>) -> Self {
        match schedule {
            None => Self::AtCutoff,
            Some(schedule) => {
                let days = if schedule.days.is_empty() {
                    [true; 7]
                } else {
                    week_table(&schedule.days)
                };
                let mut times_local = schedule.departures_local.clone();
                times_local.sort();
                times_local.dedup();
                Self::Scheduled { days, times_local }
            }
        }
    }
}

/// A location's calendar, cut-off and handling time with its time zone resolved,
/// ready for repeated queries.
#[derive(Debug, Clone)]
pub struct SiteCalendar {
    /// The location's IANA time zone.
    pub time_zone: TimeZone,
    working_days: WeekTable,
    holidays: BTreeSet<Date>,
    opens_local: Time,
    closes_local: Time,
    cutoff_local: Time,
    handling: SignedDuration,
}

impl SiteCalendar {
    /// Resolves a location's time zone and calendar.
    ///
    /// Errors with `InvalidArgument` (field `time_zone` or `calendar.*`) when the
    /// zone is unknown or the calendar has no working day or closes before it opens.
    pub fn from_location(location: &Location) -> Result<Self, DomainError> {
        location.calendar.validate()?;
        Ok(Self {
            time_zone: location.tz()?,
            working_days: week_table(&location.calendar.working_days),
            holidays: location.calendar.holidays.clone(),
            opens_local: location.calendar.opens_local,
            closes_local: location.calendar.closes_local,
            cutoff_local: location.order_cutoff_local,
            handling: SignedDuration::from_mins(i64::from(location.handling_minutes)),
        })
    }

    /// Pick-and-pack time before goods can leave.
    pub fn handling(&self) -> SignedDuration {
        self.handling
    }

    /// Whether `date` (local) is a working day: a working weekday and not a holiday.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.working_days[day_index(date)] && !self.holidays.contains(&date)
    }

    /// The local date at an instant.
    pub fn local_date(&self, at: Timestamp) -> Date {
        self.time_zone.to_datetime(at).date()
    }

    /// The instant of a local date and time (DST gaps and folds resolved
    /// "compatibly", see the module docs). `None` only outside jiff's range.
    pub fn instant(&self, date: Date, time: Time) -> Option<Timestamp> {
        self.time_zone
            .to_ambiguous_timestamp(DateTime::from_parts(date, time))
            .compatible()
            .ok()
    }

    /// Whether the location is open at `at` (opening and closing instants included).
    pub fn is_open(&self, at: Timestamp) -> bool {
        let date = self.local_date(at);
        if !self.is_working_day(date) {
            return false;
        }
        match (
            self.instant(date, self.opens_local),
            self.instant(date, self.closes_local),
        ) {
            (Some(open), Some(close)) => open <= at && at <= close,
            _ => false,
        }
    }

    /// When goods that are on hand here at `ready_at` leave on a lane with these
    /// departures: the first departure (cut-off or scheduled time) on a working
    /// day that is at or after `ready_at` plus the handling time. Handling that
    /// ends exactly at the cut-off makes it.
    ///
    /// `None` when no departure exists within [`MAX_CALENDAR_SEARCH_DAYS`].
    pub fn dispatch(&self, ready_at: Timestamp, departures: &Departures) -> Option<Timestamp> {
        let packed = ready_at.checked_add(self.handling).ok()?;
        self.next_departure(packed, departures)
    }

    /// The first departure at or after `at` on a working day, handling not added.
    pub fn next_departure(&self, at: Timestamp, departures: &Departures) -> Option<Timestamp> {
        let mut date = self.local_date(at);
        for _ in 0..MAX_CALENDAR_SEARCH_DAYS {
            if self.is_working_day(date) {
                match departures {
                    Departures::AtCutoff => {
                        let cutoff = self.instant(date, self.cutoff_local)?;
                        if cutoff >= at {
                            return Some(cutoff);
                        }
                    }
                    Departures::Scheduled { days, times_local } => {
                        if days[day_index(date)] {
                            for time in times_local {
                                let departure = self.instant(date, *time)?;
                                if departure >= at {
                                    return Some(departure);
                                }
                            }
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// When stock that arrives at `arrival` is available to the customer here:
    /// at once if the location is open, otherwise at its next opening.
    ///
    /// `None` when no opening exists within [`MAX_CALENDAR_SEARCH_DAYS`].
    pub fn available_from(&self, arrival: Timestamp) -> Option<Timestamp> {
        let mut date = self.local_date(arrival);
        for _ in 0..MAX_CALENDAR_SEARCH_DAYS {
            if self.is_working_day(date) {
                let open = self.instant(date, self.opens_local)?;
                let close = self.instant(date, self.closes_local)?;
                if arrival <= close {
                    return Some(arrival.max(open));
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The latest instant at or before `deadline` at which the location is open.
    /// Stock arriving at or before it is available by `deadline`; stock arriving
    /// later is not (it waits for an opening after `deadline`).
    ///
    /// `None` when no opening exists within [`MAX_CALENDAR_SEARCH_DAYS`] before.
    pub fn latest_open_at_or_before(&self, deadline: Timestamp) -> Option<Timestamp> {
        let mut date = self.local_date(deadline);
        for _ in 0..MAX_CALENDAR_SEARCH_DAYS {
            if self.is_working_day(date) {
                let open = self.instant(date, self.opens_local)?;
                let close = self.instant(date, self.closes_local)?;
                if open <= deadline {
                    return Some(deadline.min(close));
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    /// "Next business day": the close of the first working day after the local
    /// date of `order_time` here.
    ///
    /// `None` when no working day exists within [`MAX_CALENDAR_SEARCH_DAYS`].
    pub fn next_business_day_close(&self, order_time: Timestamp) -> Option<Timestamp> {
        let mut date = self.local_date(order_time).tomorrow().ok()?;
        for _ in 0..MAX_CALENDAR_SEARCH_DAYS {
            if self.is_working_day(date) {
                return self.instant(date, self.closes_local);
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::network::{BusinessCalendar, LocationKind};
    use jiff::civil::date;

    fn site(zone: &str, cutoff: Time, handling_minutes: u32) -> SiteCalendar {
        let location = Location {
            id: "X".into(),
            name: "X".into(),
            kind: LocationKind::Store,
            latitude_deg: 0.0,
            longitude_deg: 0.0,
            time_zone: zone.into(),
            calendar: BusinessCalendar::weekdays_8_to_17(),
            order_cutoff_local: cutoff,
            handling_minutes,
            replenishment_source: None,
            country_code: "NL".into(),
        };
        SiteCalendar::from_location(&location).unwrap()
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn handling_ending_exactly_at_cutoff_makes_it_one_second_later_does_not() {
        // Amsterdam in July is UTC+2: cut-off 16:00 local = 14:00Z. Handling 30 min.
        let rotterdam = site("Europe/Amsterdam", Time::constant(16, 0, 0, 0), 30);
        let on_time = ts("2025-07-09T13:30:00Z"); // Wednesday 15:30 local
        assert_eq!(
            rotterdam.dispatch(on_time, &Departures::AtCutoff),
            Some(ts("2025-07-09T14:00:00Z"))
        );
        let late = ts("2025-07-09T13:30:01Z");
        assert_eq!(
            rotterdam.dispatch(late, &Departures::AtCutoff),
            Some(ts("2025-07-10T14:00:00Z"))
        );
    }

    #[test]
    fn friday_evening_dispatches_monday_and_holidays_are_skipped() {
        let mut rotterdam = site("Europe/Amsterdam", Time::constant(16, 0, 0, 0), 30);
        let friday_evening = ts("2025-07-11T18:00:00Z");
        assert_eq!(
            rotterdam.dispatch(friday_evening, &Departures::AtCutoff),
            Some(ts("2025-07-14T14:00:00Z"))
        );
        rotterdam.holidays.insert(date(2025, 7, 14));
        assert_eq!(
            rotterdam.dispatch(friday_evening, &Departures::AtCutoff),
            Some(ts("2025-07-15T14:00:00Z"))
        );
    }

    #[test]
    fn cutoff_follows_the_local_clock_across_dst() {
        // Europe switches to summer time on Sunday 30 March 2025: Friday's 16:00
        // is 15:00Z, Monday's 16:00 is 14:00Z.
        let rotterdam = site("Europe/Amsterdam", Time::constant(16, 0, 0, 0), 0);
        assert_eq!(
            rotterdam.dispatch(ts("2025-03-28T12:00:00Z"), &Departures::AtCutoff),
            Some(ts("2025-03-28T15:00:00Z"))
        );
        assert_eq!(
            rotterdam.dispatch(ts("2025-03-28T15:00:01Z"), &Departures::AtCutoff),
            Some(ts("2025-03-31T14:00:00Z"))
        );
    }

    #[test]
    fn a_departure_in_the_dst_gap_moves_forward() {
        // 02:30 does not exist in Amsterdam on 30 March 2025; it becomes 03:30
        // CEST = 01:30Z. The lane runs every day, the origin works every day.
        let mut rotterdam = site("Europe/Amsterdam", Time::constant(16, 0, 0, 0), 0);
        rotterdam.working_days = [true; 7];
        let schedule = DepartureSchedule {
            days: BTreeSet::new(),
            departures_local: vec![Time::constant(2, 30, 0, 0)],
        };
        let departures = Departures::from_schedule(Some(&schedule));
        assert_eq!(
            rotterdam.dispatch(ts("2025-03-29T23:00:00Z"), &departures),
            Some(ts("2025-03-30T01:30:00Z"))
        );
    }

    #[test]
    fn opening_hours_and_next_business_day() {
        let chicago = site("America/Chicago", Time::constant(16, 0, 0, 0), 0);
        // Saturday 12 July 2025 10:00 CDT: closed; next opening Monday 08:00 CDT = 13:00Z.
        let saturday = ts("2025-07-12T15:00:00Z");
        assert!(!chicago.is_open(saturday));
        assert_eq!(
            chicago.available_from(saturday),
            Some(ts("2025-07-14T13:00:00Z"))
        );
        // Open Monday 09:00 CDT: available at once.
        let monday = ts("2025-07-14T14:00:00Z");
        assert_eq!(chicago.available_from(monday), Some(monday));
        // Ordered Friday 11 July 20:00 CDT (Saturday 01:00Z): the order's local date
        // is Friday, so next business day is Monday, by 17:00 CDT = 22:00Z.
        assert_eq!(
            chicago.next_business_day_close(ts("2025-07-12T01:00:00Z")),
            Some(ts("2025-07-14T22:00:00Z"))
        );
        // The last open instant before Sunday noon is Friday's close.
        assert_eq!(
            chicago.latest_open_at_or_before(ts("2025-07-13T17:00:00Z")),
            Some(ts("2025-07-11T22:00:00Z"))
        );
    }

    #[test]
    fn a_calendar_without_any_reachable_working_day_gives_none() {
        let mut site = site("UTC", Time::constant(16, 0, 0, 0), 0);
        site.working_days = [false; 7];
        assert_eq!(
            site.dispatch(ts("2025-01-01T00:00:00Z"), &Departures::AtCutoff),
            None
        );
        assert_eq!(site.available_from(ts("2025-01-01T00:00:00Z")), None);
    }
}
