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
use std::sync::OnceLock;

/// How many local days a calendar search may look ahead or back before giving up.
/// A year is enough for any real calendar; without a bound a calendar whose only
/// working weekday is covered by holidays would loop for ever.
pub const MAX_CALENDAR_SEARCH_DAYS: usize = 366;

/// Local days a [`DayTable`] covers before the instant that first needed it.
const TABLE_DAYS_BEFORE: usize = 62;
/// Local days a [`DayTable`] covers from the instant that first needed it:
/// two years of promises without a network change are answered from it.
const TABLE_DAYS_AFTER: usize = 731;

/// One working day's opening, closing and cut-off instants.
#[derive(Debug, Clone, Copy)]
struct WorkingDay {
    /// The first instant of the local date.
    start: Timestamp,
    open: Timestamp,
    close: Timestamp,
    cutoff: Timestamp,
}

/// The working days of a window of local dates, ascending, with their
/// instants: `dispatch` at cut-off, `available_from` and
/// `latest_open_at_or_before` become lookups in [`Instants`] instead of walks
/// over local dates through the time zone. Built only when it answers exactly
/// as the walk does (see [`SiteCalendar::build_day_table`]); a query it cannot
/// answer exactly (outside the window) falls back to the walk.
#[derive(Debug, Clone)]
struct DayTable {
    days: Vec<WorkingDay>,
    starts: Instants,
    opens: Instants,
    closes: Instants,
    cutoffs: Instants,
}

impl DayTable {
    fn new(days: Vec<WorkingDay>) -> Self {
        let column =
            |pick: fn(&WorkingDay) -> Timestamp| Instants::new(days.iter().map(pick).collect());
        Self {
            starts: column(|day| day.start),
            opens: column(|day| day.open),
            closes: column(|day| day.close),
            cutoffs: column(|day| day.cutoff),
            days,
        }
    }
}

const SECONDS_PER_DAY: i64 = 86_400;

/// Strictly increasing instants with an index by UTC day, so "how many are
/// before `t`" costs a read of the index and a step or two over the instants
/// of `t`'s UTC day, not a binary search whose every step misses the cache
/// (the promise path asks it for every leg it considers).
#[derive(Debug, Clone)]
struct Instants {
    at: Vec<Timestamp>,
    /// UTC day number (days since 1970-01-01) of the first instant.
    first_day: i64,
    /// `start[k]`: how many instants are before the start of UTC day
    /// `first_day + k`, for `k` in `0..=` one past the last instant's day.
    start: Vec<u32>,
}

impl Instants {
    /// `at` must be strictly increasing and non-empty (the day table checks both).
    fn new(at: Vec<Timestamp>) -> Self {
        let day_of = |t: &Timestamp| utc_day(*t);
        let first_day = at.first().map_or(0, day_of);
        let last_day = at.last().map_or(0, day_of);
        let mut start = Vec::with_capacity(usize::try_from(last_day - first_day + 2).unwrap_or(0));
        let mut i = 0usize;
        for day in first_day..=last_day + 1 {
            while i < at.len() && utc_day(at[i]) < day {
                i += 1;
            }
            start.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        Self {
            at,
            first_day,
            start,
        }
    }

    /// The number of leading instants for which `before(instant)` holds, where
    /// `before` is `x < t` or `x <= t`: what `partition_point` gives, found
    /// from the UTC day of `t`.
    fn count(&self, t: Timestamp, before: impl Fn(Timestamp) -> bool) -> usize {
        let offset = utc_day(t) - self.first_day;
        if offset < 0 {
            // Every instant is on a later UTC day than `t`.
            return 0;
        }
        let Some(&end) = usize::try_from(offset + 1)
            .ok()
            .and_then(|k| self.start.get(k))
        else {
            // Every instant is on an earlier UTC day than `t`.
            return self.at.len();
        };
        // Instants before `t`'s day all satisfy `before`; those from the next
        // day on (index `end` and later) are after `t` and do not.
        let end = end as usize;
        let mut i = self.start[offset as usize] as usize;
        while i < end && before(self.at[i]) {
            i += 1;
        }
        i
    }
}

/// The UTC day number of an instant (floored, so exact for instants before 1970 too).
fn utc_day(t: Timestamp) -> i64 {
    let seconds = t.as_second();
    // `as_second` truncates toward zero: an instant a fraction of a second
    // before a whole negative second belongs to the second before.
    let seconds = if seconds < 0 && t.subsec_nanosecond() < 0 {
        seconds - 1
    } else {
        seconds
    };
    seconds.div_euclid(SECONDS_PER_DAY)
}

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

/// One location's departure timetable (the [`Departures`] of some of its
/// outgoing lanes) with its departure instants tabled on first use, as the
/// location's day table tables its cut-offs: a scheduled dispatch becomes a
/// lookup in [`Instants`] instead of a walk over local dates through the
/// time zone. A timetable belongs to one location and is only ever asked
/// with that location's calendar ([`SiteCalendar::dispatch_on`]); the table
/// is built only when it answers exactly as the walk does.
#[derive(Debug, Clone)]
pub struct Timetable {
    departures: Departures,
    table: OnceLock<Option<Instants>>,
}

impl Timetable {
    /// A timetable of `departures`, its table not built yet.
    pub fn new(departures: Departures) -> Self {
        Self {
            departures,
            table: OnceLock::new(),
        }
    }

    /// Its departures.
    pub fn departures(&self) -> &Departures {
        &self.departures
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
    /// Built on first use, around the first instant asked about; `None`
    /// inside when no exact table exists for this calendar.
    day_table: OnceLock<Option<DayTable>>,
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
            day_table: OnceLock::new(),
        })
    }

    /// Builds the day table around `anchor` now, unless it exists already:
    /// the first query otherwise pays for it (about 800 local dates through
    /// the time zone). Returns whether this call built it.
    pub fn prepare(&self, anchor: Timestamp) -> bool {
        let mut built = false;
        self.day_table.get_or_init(|| {
            built = true;
            self.build_day_table(anchor)
        });
        built
    }

    /// The day table, built around `anchor` on first use.
    fn day_table(&self, anchor: Timestamp) -> Option<&DayTable> {
        self.day_table
            .get_or_init(|| self.build_day_table(anchor))
            .as_ref()
    }

    /// The working days from [`TABLE_DAYS_BEFORE`] local days before
    /// `anchor` to [`TABLE_DAYS_AFTER`] after. `None` unless the table answers
    /// exactly as the walks over local dates: every instant falls on its own
    /// local date (a DST gap never pushes one past midnight), each kind of
    /// instant strictly increases from one working day to the next, and no
    /// two consecutive working days are more than 365 days apart (the walks
    /// give up after [`MAX_CALENDAR_SEARCH_DAYS`]).
    fn build_day_table(&self, anchor: Timestamp) -> Option<DayTable> {
        let mut date = self.local_date(anchor);
        for _ in 0..TABLE_DAYS_BEFORE {
            date = date.yesterday().ok()?;
        }
        let mut days: Vec<WorkingDay> = Vec::new();
        let mut last_working: Option<usize> = None;
        for n in 0..TABLE_DAYS_BEFORE + TABLE_DAYS_AFTER {
            if self.is_working_day(date) {
                let day = WorkingDay {
                    // Midnight, resolved compatibly: a midnight in a gap
                    // moves to the gap's end and one in a fold takes the
                    // earlier instant, so either way the day's first instant.
                    start: self.instant(date, Time::midnight())?,
                    open: self.instant(date, self.opens_local)?,
                    close: self.instant(date, self.closes_local)?,
                    cutoff: self.instant(date, self.cutoff_local)?,
                };
                let on_its_date = [day.start, day.open, day.close, day.cutoff]
                    .iter()
                    .all(|t| self.local_date(*t) == date);
                let increasing = days.last().is_none_or(|previous| {
                    previous.start < day.start
                        && previous.open < day.open
                        && previous.close < day.close
                        && previous.cutoff < day.cutoff
                });
                let near = last_working.is_none_or(|previous| n - previous <= 365);
                if !(on_its_date && increasing && near) {
                    return None;
                }
                days.push(day);
                last_working = Some(n);
            }
            date = date.tomorrow().ok()?;
        }
        (days.len() >= 2).then(|| DayTable::new(days))
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

    /// [`SiteCalendar::dispatch`] on one of this location's timetables: the
    /// same answer, from the timetable's table of departure instants (built
    /// around the first instant asked about) when the instant is inside it.
    pub fn dispatch_on(&self, ready_at: Timestamp, timetable: &Timetable) -> Option<Timestamp> {
        let packed = ready_at.checked_add(self.handling).ok()?;
        if let Departures::Scheduled { days, times_local } = &timetable.departures
            && let Some(table) = timetable
                .table
                .get_or_init(|| self.build_departure_table(packed, days, times_local))
        {
            // The first departure at or after `packed`, when one before it
            // is in the table too (so `packed` is inside the window).
            let i = table.count(packed, |departure| departure < packed);
            if i > 0 && i < table.at.len() {
                return Some(table.at[i]);
            }
        }
        self.next_departure(packed, &timetable.departures)
    }

    /// Builds a timetable's table around `anchor` now, unless it exists
    /// already (see [`SiteCalendar::prepare`]). Returns whether this call
    /// built it.
    pub fn prepare_timetable(&self, anchor: Timestamp, timetable: &Timetable) -> bool {
        let Departures::Scheduled { days, times_local } = &timetable.departures else {
            return false;
        };
        let mut built = false;
        timetable.table.get_or_init(|| {
            built = true;
            self.build_departure_table(anchor, days, times_local)
        });
        built
    }

    /// The departure instants of a schedule from [`TABLE_DAYS_BEFORE`]
    /// local days before `anchor` to [`TABLE_DAYS_AFTER`] after, ascending.
    /// `None` unless the table answers exactly as the walk over local dates
    /// (see [`SiteCalendar::walk_next_departure`]): every departure falls on
    /// its own local date, the departures strictly increase, and no two
    /// consecutive days with departures are more than 365 days apart (the
    /// walk gives up after [`MAX_CALENDAR_SEARCH_DAYS`]).
    fn build_departure_table(
        &self,
        anchor: Timestamp,
        days: &[bool; 7],
        times_local: &[Time],
    ) -> Option<Instants> {
        let mut date = self.local_date(anchor);
        for _ in 0..TABLE_DAYS_BEFORE {
            date = date.yesterday().ok()?;
        }
        let mut at: Vec<Timestamp> = Vec::new();
        let mut last_day: Option<usize> = None;
        for n in 0..TABLE_DAYS_BEFORE + TABLE_DAYS_AFTER {
            if !times_local.is_empty() && self.is_working_day(date) && days[day_index(date)] {
                for time in times_local {
                    let departure = self.instant(date, *time)?;
                    let in_order = at.last().is_none_or(|previous| *previous < departure);
                    if self.local_date(departure) != date || !in_order {
                        return None;
                    }
                    at.push(departure);
                }
                if last_day.is_some_and(|previous| n - previous > 365) {
                    return None;
                }
                last_day = Some(n);
            }
            date = date.tomorrow().ok()?;
        }
        (at.len() >= 2).then(|| Instants::new(at))
    }

    /// The first departure at or after `at` on a working day, handling not added.
    pub fn next_departure(&self, at: Timestamp, departures: &Departures) -> Option<Timestamp> {
        if *departures == Departures::AtCutoff
            && let Some(table) = self.day_table(at)
        {
            // The first cut-off at or after `at`, when a working day before
            // it is in the table too (so `at` is inside the window).
            let i = table.cutoffs.count(at, |cutoff| cutoff < at);
            if i > 0 && i < table.days.len() {
                return Some(table.days[i].cutoff);
            }
        }
        self.walk_next_departure(at, departures)
    }

    /// [`SiteCalendar::next_departure`] by walking local dates.
    fn walk_next_departure(&self, at: Timestamp, departures: &Departures) -> Option<Timestamp> {
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
        if let Some(table) = self.day_table(arrival) {
            // The first working day closing at or after the arrival.
            let i = table.closes.count(arrival, |close| close < arrival);
            if i > 0 && i < table.days.len() {
                return Some(arrival.max(table.days[i].open));
            }
        }
        self.walk_available_from(arrival)
    }

    /// [`SiteCalendar::available_from`] by walking local dates.
    fn walk_available_from(&self, arrival: Timestamp) -> Option<Timestamp> {
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
        if let Some(table) = self.day_table(deadline) {
            // The last working day opening at or before the deadline, when a
            // working day after it is in the table too.
            let after = table.opens.count(deadline, |open| open <= deadline);
            if after > 0 && after < table.days.len() {
                return Some(deadline.min(table.days[after - 1].close));
            }
        }
        self.walk_latest_open_at_or_before(deadline)
    }

    /// [`SiteCalendar::latest_open_at_or_before`] by walking local dates.
    fn walk_latest_open_at_or_before(&self, deadline: Timestamp) -> Option<Timestamp> {
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
        if let Some(table) = self.day_table(order_time) {
            // The first working day starting after the order: its local
            // date is later than the order's (local dates follow instants).
            let i = table.starts.count(order_time, |start| start <= order_time);
            if i > 0 && i < table.days.len() {
                return Some(table.days[i].close);
            }
        }
        self.walk_next_business_day_close(order_time)
    }

    /// [`SiteCalendar::next_business_day_close`] by walking local dates.
    fn walk_next_business_day_close(&self, order_time: Timestamp) -> Option<Timestamp> {
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

    /// Zones with unusual DST rules (Lord Howe's half hour, Havana's and
    /// Santiago's changes at midnight) beside ordinary ones.
    const TEST_ZONES: [&str; 7] = [
        "Europe/Amsterdam",
        "America/Chicago",
        "Asia/Singapore",
        "Australia/Lord_Howe",
        "America/Havana",
        "America/Santiago",
        "UTC",
    ];

    /// The test calendar of `zone` with two holidays in 2025 and Saturday a
    /// working day or not, as `rng` says.
    fn test_site(zone: &str, cutoff: Time, rng: &mut impl rand::Rng) -> SiteCalendar {
        use rand::RngExt;
        let mut calendar = site(zone, cutoff, 45);
        calendar.holidays.insert(date(2025, 3, 31));
        calendar.holidays.insert(date(2025, 12, 25));
        calendar.working_days[5] = rng.random_bool(0.5);
        calendar
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
        // The day table was built before the holiday was added; a calendar
        // is built once from its location, so start afresh.
        rotterdam.day_table = OnceLock::new();
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
    fn the_day_table_answers_exactly_as_the_walk_over_local_dates() {
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let cutoffs = [
            Time::constant(16, 0, 0, 0),
            Time::constant(0, 0, 0, 0),
            Time::constant(2, 30, 0, 0),
            Time::constant(23, 59, 59, 0),
        ];
        let mut rng = StdRng::seed_from_u64(11);
        // Around the spring and autumn DST changes of 2025 and the turn of
        // the year, and across the whole window and past it.
        let anchor = ts("2025-03-01T00:00:00Z").as_second();
        for zone in TEST_ZONES {
            for cutoff in cutoffs {
                let calendar = test_site(zone, cutoff, &mut rng);
                let table = calendar.day_table(ts("2025-03-01T00:00:00Z"));
                if cutoff.hour() == 16 {
                    assert!(table.is_some(), "{zone}: an ordinary calendar has a table");
                }
                for _ in 0..3_000 {
                    let at = Timestamp::from_second(
                        anchor + rng.random_range(-120 * 86_400..900 * 86_400),
                    )
                    .unwrap();
                    let context = format!("{zone} cut-off {cutoff} at {at}");
                    assert_eq!(
                        calendar.next_departure(at, &Departures::AtCutoff),
                        calendar.walk_next_departure(at, &Departures::AtCutoff),
                        "{context}"
                    );
                    assert_eq!(
                        calendar.available_from(at),
                        calendar.walk_available_from(at),
                        "{context}"
                    );
                    assert_eq!(
                        calendar.latest_open_at_or_before(at),
                        calendar.walk_latest_open_at_or_before(at),
                        "{context}"
                    );
                    assert_eq!(
                        calendar.next_business_day_close(at),
                        calendar.walk_next_business_day_close(at),
                        "{context}"
                    );
                }
                // Instants exactly on a table entry and one nanosecond either side.
                if let Some(table) = calendar.day_table(ts("2025-03-01T00:00:00Z")) {
                    for day in table.days.iter().step_by(7) {
                        for t in [day.start, day.open, day.close, day.cutoff] {
                            for at in [
                                t.checked_sub(SignedDuration::from_nanos(1)).unwrap(),
                                t,
                                t.checked_add(SignedDuration::from_nanos(1)).unwrap(),
                            ] {
                                assert_eq!(
                                    calendar.next_departure(at, &Departures::AtCutoff),
                                    calendar.walk_next_departure(at, &Departures::AtCutoff)
                                );
                                assert_eq!(
                                    calendar.available_from(at),
                                    calendar.walk_available_from(at)
                                );
                                assert_eq!(
                                    calendar.latest_open_at_or_before(at),
                                    calendar.walk_latest_open_at_or_before(at)
                                );
                                assert_eq!(
                                    calendar.next_business_day_close(at),
                                    calendar.walk_next_business_day_close(at)
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// A scheduled timetable's table dispatches exactly as the walk over
    /// local dates: random schedules (times in DST gaps and folds, at
    /// midnight and just before it, weekday subsets) in zones with unusual
    /// DST rules, at random instants across the window and past it, and a
    /// nanosecond either side of every departure.
    #[test]
    fn a_timetable_dispatches_exactly_as_the_walk_over_local_dates() {
        use rand::rngs::StdRng;
        use rand::seq::SliceRandom;
        use rand::{RngExt, SeedableRng};
        let times = [
            Time::constant(0, 0, 0, 0),
            Time::constant(0, 30, 0, 0),
            Time::constant(2, 30, 0, 0),
            Time::constant(9, 30, 0, 0),
            Time::constant(15, 0, 0, 0),
            Time::constant(23, 59, 59, 0),
        ];
        let mut rng = StdRng::seed_from_u64(13);
        let anchor = ts("2025-03-01T00:00:00Z");
        let (mut tabled, mut asked) = (0, 0);
        for zone in TEST_ZONES {
            for _ in 0..6 {
                let calendar = test_site(zone, Time::constant(16, 0, 0, 0), &mut rng);
                let mut chosen = times.to_vec();
                chosen.shuffle(&mut rng);
                chosen.truncate(rng.random_range(1..=3));
                let schedule = DepartureSchedule {
                    days: [
                        WeekdayName::Monday,
                        WeekdayName::Wednesday,
                        WeekdayName::Friday,
                        WeekdayName::Saturday,
                    ]
                    .into_iter()
                    .filter(|_| rng.random_bool(0.6))
                    .collect(),
                    departures_local: chosen,
                };
                let timetable = Timetable::new(Departures::from_schedule(Some(&schedule)));
                calendar.prepare_timetable(anchor, &timetable);
                let table = timetable.table.get().and_then(Option::as_ref);
                tabled += usize::from(table.is_some());
                let mut probes: Vec<Timestamp> = (0..1_500)
                    .map(|_| {
                        let second =
                            anchor.as_second() + rng.random_range(-120 * 86_400..900 * 86_400);
                        Timestamp::from_second(second).unwrap()
                    })
                    .collect();
                for departure in table.iter().flat_map(|t| t.at.iter().step_by(5)) {
                    // Ready so that handling ends a nanosecond before, at and
                    // after the departure.
                    let packed_to = departure.checked_sub(calendar.handling()).unwrap();
                    for d in [-1, 0, 1] {
                        probes.push(
                            packed_to
                                .checked_add(SignedDuration::from_nanos(d))
                                .unwrap(),
                        );
                    }
                }
                for ready in probes {
                    asked += 1;
                    assert_eq!(
                        calendar.dispatch_on(ready, &timetable),
                        calendar.dispatch(ready, timetable.departures()),
                        "{zone} {schedule:?} ready at {ready}"
                    );
                }
            }
        }
        // Most random schedules are ordinary enough to be tabled; the
        // comparison above would prove nothing if none were.
        assert!(tabled >= 20, "only {tabled} of 42 timetables tabled");
        assert!(asked > 60_000, "{asked}");
    }

    #[test]
    fn the_day_index_counts_exactly_as_a_binary_search() {
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let mut rng = StdRng::seed_from_u64(12);
        for _ in 0..200 {
            // Strictly increasing instants around the epoch (negative ones
            // with fractions of a second too), 1 s to 3 days apart.
            let mut t = -5 * SECONDS_PER_DAY * 1_000_000_000 + rng.random_range(0..1_000_000_000);
            let mut at = Vec::new();
            for _ in 0..rng.random_range(1..40) {
                at.push(Timestamp::from_nanosecond(i128::from(t)).unwrap());
                t += rng.random_range(1_000_000_000..3 * SECONDS_PER_DAY * 1_000_000_000);
            }
            let instants = Instants::new(at.clone());
            let span = (t - at[0].as_nanosecond() as i64) + 2 * SECONDS_PER_DAY * 1_000_000_000;
            let mut probes: Vec<Timestamp> = Vec::new();
            for x in &at {
                for d in [-1, 0, 1] {
                    probes.push(x.checked_add(SignedDuration::from_nanos(d)).unwrap());
                }
            }
            for _ in 0..50 {
                let n = at[0].as_nanosecond() as i64 - SECONDS_PER_DAY * 1_000_000_000
                    + rng.random_range(0..span);
                probes.push(Timestamp::from_nanosecond(i128::from(n)).unwrap());
            }
            for probe in probes {
                assert_eq!(
                    instants.count(probe, |x| x < probe),
                    at.partition_point(|x| *x < probe),
                    "< {probe}"
                );
                assert_eq!(
                    instants.count(probe, |x| x <= probe),
                    at.partition_point(|x| *x <= probe),
                    "<= {probe}"
                );
            }
        }
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
