//! Text forms of the values in planner files (enums, weekdays, times, dates) and
//! their parsers. Each parser returns a message naming what was expected.

use crate::domain::network::{
    Criticality, Interchangeability, LaneKind, LocationKind, Period, PolicyKind, TransportMode,
    WeekdayName,
};
use jiff::civil::{Date, Time};
use std::collections::BTreeSet;

/// Lower-cases and drops `_`, `-` and spaces, so `factory_depot`, `FactoryDepot`
/// and `factory-depot` all match.
fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Parses an enum cell against `(text form, value)` pairs.
fn choose<T: Copy>(text: &str, options: &[(&str, T)]) -> Result<T, String> {
    let wanted = normalise(text);
    options
        .iter()
        .find(|(name, _)| normalise(name) == wanted)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
            format!(
                "unknown value {text:?}; expected one of {}",
                names.join(", ")
            )
        })
}

fn name_of<T: Copy + PartialEq>(value: T, options: &[(&'static str, T)]) -> &'static str {
    options
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(name, _)| name)
}

macro_rules! text_enum {
    ($table:ident, $parse:ident, $name:ident, $ty:ty, [$(($text:literal, $value:expr)),+ $(,)?]) => {
        const $table: &[(&str, $ty)] = &[$(($text, $value)),+];
        /// Parses the text form (case, `_`, `-` and spaces are ignored).
        pub fn $parse(text: &str) -> Result<$ty, String> {
            choose(text, $table)
        }
        /// The text form written on export.
        pub fn $name(value: $ty) -> &'static str {
            name_of(value, $table)
        }
    };
}

text_enum!(
    LOCATION_KINDS,
    parse_location_kind,
    location_kind_name,
    LocationKind,
    [
        ("factory_depot", LocationKind::FactoryDepot),
        ("regional_warehouse", LocationKind::RegionalWarehouse),
        ("store", LocationKind::Store),
    ]
);
text_enum!(
    MODES,
    parse_mode,
    mode_name,
    TransportMode,
    [
        ("road", TransportMode::Road),
        ("air", TransportMode::Air),
        ("sea", TransportMode::Sea),
        ("rail", TransportMode::Rail),
        ("courier", TransportMode::Courier),
    ]
);
text_enum!(
    LANE_KINDS,
    parse_lane_kind,
    lane_kind_name,
    LaneKind,
    [
        ("replenishment", LaneKind::Replenishment),
        ("lateral", LaneKind::Lateral),
        ("emergency", LaneKind::Emergency),
    ]
);
text_enum!(
    CRITICALITIES,
    parse_criticality,
    criticality_name,
    Criticality,
    [
        ("critical", Criticality::Critical),
        ("essential", Criticality::Essential),
        ("routine", Criticality::Routine),
    ]
);
text_enum!(
    INTERCHANGE,
    parse_interchangeability,
    interchangeability_name,
    Interchangeability,
    [
        ("forward_only", Interchangeability::ForwardOnly),
        ("two_way", Interchangeability::TwoWay),
    ]
);
text_enum!(
    PART_KINDS,
    parse_part_kind,
    part_kind_name,
    bool,
    [("repairable", true), ("consumable", false),]
);
text_enum!(
    PERIODS,
    parse_period,
    period_name,
    Period,
    [
        ("day", Period::Day),
        ("week", Period::Week),
        ("month", Period::Month),
    ]
);
text_enum!(
    POLICY_KINDS,
    parse_policy_kind,
    policy_kind_name,
    PolicyKind,
    [
        ("base_stock", PolicyKind::BaseStock),
        ("min_max", PolicyKind::MinMax),
        ("reorder_point_quantity", PolicyKind::ReorderPointQuantity),
    ]
);

const WEEKDAYS: [(&str, &str, WeekdayName); 7] = [
    ("Mon", "monday", WeekdayName::Monday),
    ("Tue", "tuesday", WeekdayName::Tuesday),
    ("Wed", "wednesday", WeekdayName::Wednesday),
    ("Thu", "thursday", WeekdayName::Thursday),
    ("Fri", "friday", WeekdayName::Friday),
    ("Sat", "saturday", WeekdayName::Saturday),
    ("Sun", "sunday", WeekdayName::Sunday),
];

fn weekday_index(text: &str) -> Result<usize, String> {
    let wanted = text.trim().to_lowercase();
    WEEKDAYS
        .iter()
        .position(|(short, long, _)| short.to_lowercase() == wanted || *long == wanted)
        .ok_or_else(|| format!("unknown weekday {text:?}; expected Mon, Tue, ... Sun"))
}

/// Parses weekdays such as `Mon-Fri`, `Mon,Wed,Fri` or `Mon-Fri,Sat` (ranges run
/// forwards from Monday to Sunday; `,` or `;` separate items).
pub fn parse_weekdays(text: &str) -> Result<BTreeSet<WeekdayName>, String> {
    let mut days = BTreeSet::new();
    for item in text
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (weekday_index(a)?, weekday_index(b)?),
            None => {
                let day = weekday_index(item)?;
                (day, day)
            }
        };
        if first > last {
            return Err(format!(
                "weekday range {item:?} must run from Monday towards Sunday"
            ));
        }
        days.extend(WEEKDAYS[first..=last].iter().map(|(_, _, day)| *day));
    }
    Ok(days)
}

/// Writes weekdays as comma-separated runs, e.g. `Mon-Fri` or `Mon,Wed-Fri`.
pub fn weekdays_text(days: &BTreeSet<WeekdayName>) -> String {
    let mut items = Vec::new();
    let mut index = 0;
    while index < WEEKDAYS.len() {
        if !days.contains(&WEEKDAYS[index].2) {
            index += 1;
            continue;
        }
        let start = index;
        while index + 1 < WEEKDAYS.len() && days.contains(&WEEKDAYS[index + 1].2) {
            index += 1;
        }
        items.push(if start == index {
            WEEKDAYS[start].0.to_string()
        } else {
            format!("{}-{}", WEEKDAYS[start].0, WEEKDAYS[index].0)
        });
        index += 1;
    }
    items.join(",")
}

/// Parses a local time `HH:MM` or `HH:MM:SS`.
pub fn parse_time(text: &str) -> Result<Time, String> {
    text.parse::<Time>()
        .map_err(|_| format!("expected a local time HH:MM, got {text:?}"))
}

/// Writes a time as `HH:MM`, or with seconds when it has them.
pub fn time_text(time: Time) -> String {
    if time.second() == 0 && time.subsec_nanosecond() == 0 {
        time.strftime("%H:%M").to_string()
    } else {
        time.to_string()
    }
}

/// Parses a list of times separated by `;`.
pub fn parse_times(text: &str) -> Result<Vec<Time>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_time)
        .collect()
}

/// Parses an ISO date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    text.parse::<Date>()
        .map_err(|_| format!("expected a date YYYY-MM-DD, got {text:?}"))
}

/// Parses a list of dates separated by `;`.
pub fn parse_dates(text: &str) -> Result<BTreeSet<Date>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_date)
        .collect()
}

/// Parses numbers separated by `;` (empirical transit samples).
pub fn parse_numbers(text: &str) -> Result<Vec<f64>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("expected numbers separated by ';', got {s:?}")),
        })
        .collect()
}

/// Joins displayable items with `;`.
pub fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_since_epoch(date: Date) -> i64 {
    let (y, m, d) = (
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_round_trip_through_text() {
        for text in ["Mon-Fri", "Mon-Sat", "Mon,Wed-Fri", "Sun", "Mon-Sun"] {
            assert_eq!(weekdays_text(&parse_weekdays(text).unwrap()), text);
        }
        assert_eq!(
            parse_weekdays("monday, Tue;WED").unwrap().len(),
            3,
            "full names, case and both separators"
        );
        assert!(parse_weekdays("Fri-Mon").is_err());
    }

    #[test]
    fn times_parse_with_and_without_seconds() {
        assert_eq!(parse_time("08:00").unwrap(), Time::constant(8, 0, 0, 0));
        assert_eq!(time_text(parse_time("16:30:15").unwrap()), "16:30:15");
        assert_eq!(time_text(Time::constant(7, 30, 0, 0)), "07:30");
        assert!(parse_time("25:00").is_err());
    }

    #[test]
    fn enum_names_are_lenient_on_input_and_snake_case_on_output() {
        assert_eq!(
            parse_location_kind("FactoryDepot").unwrap(),
            LocationKind::FactoryDepot
        );
        assert_eq!(
            location_kind_name(LocationKind::RegionalWarehouse),
            "regional_warehouse"
        );
        assert!(parse_mode("boat").unwrap_err().contains("road, air, sea"));
    }

    #[test]
    fn days_since_epoch_matches_known_dates() {
        assert_eq!(days_since_epoch(Date::constant(1970, 1, 1)), 0);
        assert_eq!(days_since_epoch(Date::constant(2000, 3, 1)), 11_017);
        assert_eq!(days_since_epoch(Date::constant(1969, 12, 31)), -1);
    }
}
