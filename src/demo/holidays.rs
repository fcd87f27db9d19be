//! National public holidays of the demo's countries, written as rules (fixed
//! dates, Easter offsets, n-th weekdays) so any year can be computed.
//!
//! The tables hold nationwide holidays that close businesses; regional ones
//! (German Länder, Spanish communities, US states, Canadian provinces beyond
//! Ontario's common set) are left out. Sweden's de-facto closing days
//! (Midsummer Eve, Christmas Eve, New Year's Eve) are included because
//! warehouses close on them.

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};
use std::collections::BTreeSet;

/// The countries the demo has a holiday table for (ISO 3166 alpha-2).
pub const COUNTRIES: [&str; 12] = [
    "US", "CA", "MX", "GB", "DE", "FR", "NL", "BE", "ES", "IT", "PL", "SE",
];

/// How a holiday's date is found in a given year.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A fixed month and day.
    Fixed(i8, i8),
    /// A fixed month and day from a given year on.
    FixedFrom(i16, i8, i8),
    /// Days after Easter Sunday (negative: before).
    Easter(i32),
    /// The n-th weekday of a month (n = -1: the last).
    Nth(i8, i8, Weekday),
    /// The first given weekday on or after a month and day.
    OnOrAfter(i8, i8, Weekday),
    /// The last given weekday on or before a month and day.
    OnOrBefore(i8, i8, Weekday),
    /// The Dutch King's Day: 27 April, or the 26th when the 27th is a Sunday.
    KingsDay,
}

/// What happens when a holiday falls on a weekend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observance {
    /// Nothing: the day is lost.
    None,
    /// US federal: Saturday is observed on Friday, Sunday on Monday.
    NearestWeekday,
    /// UK and Canada: observed on the next weekday that is not already a holiday.
    Substitute,
}

use Rule::*;
use Weekday::{Friday, Monday, Saturday, Thursday};

fn rules(country: &str) -> (&'static [Rule], Observance) {
    match country {
        "US" => (
            &[
                Fixed(1, 1),
                Nth(1, 3, Monday),
                Nth(2, 3, Monday),
                Nth(5, -1, Monday),
                Fixed(6, 19),
                Fixed(7, 4),
                Nth(9, 1, Monday),
                Nth(10, 2, Monday),
                Fixed(11, 11),
                Nth(11, 4, Thursday),
                Fixed(12, 25),
            ],
            Observance::NearestWeekday,
        ),
        "CA" => (
            &[
                Fixed(1, 1),
                Easter(-2),
                OnOrBefore(5, 24, Monday),
                Fixed(7, 1),
                Nth(9, 1, Monday),
                Nth(10, 2, Monday),
                Fixed(12, 25),
                Fixed(12, 26),
            ],
            Observance::Substitute,
        ),
        "MX" => (
            &[
                Fixed(1, 1),
                Nth(2, 1, Monday),
                Nth(3, 3, Monday),
                Fixed(5, 1),
                Fixed(9, 16),
                Nth(11, 3, Monday),
                Fixed(12, 25),
            ],
            Observance::None,
        ),
        "GB" => (
            &[
                Fixed(1, 1),
                Easter(-2),
                Easter(1),
                Nth(5, 1, Monday),
                Nth(5, -1, Monday),
                Nth(8, -1, Monday),
                Fixed(12, 25),
                Fixed(12, 26),
            ],
            Observance::Substitute,
        ),
        "DE" => (
            &[
                Fixed(1, 1),
                Easter(-2),
                Easter(1),
                Fixed(5, 1),
                Easter(39),
                Easter(50),
                Fixed(10, 3),
                Fixed(12, 25),
                Fixed(12, 26),
            ],
            Observance::None,
        ),
        "FR" => (
            &[
                Fixed(1, 1),
                Easter(1),
                Fixed(5, 1),
                Fixed(5, 8),
                Easter(39),
                Easter(50),
                Fixed(7, 14),
                Fixed(8, 15),
                Fixed(11, 1),
                Fixed(11, 11),
                Fixed(12, 25),
            ],
            Observance::None,
        ),
        "NL" => (
            &[
                Fixed(1, 1),
                Easter(1),
                KingsDay,
                Easter(39),
                Easter(50),
                Fixed(12, 25),
                Fixed(12, 26),
            ],
            Observance::None,
        ),
        "BE" => (
            &[
                Fixed(1, 1),
                Easter(1),
                Fixed(5, 1),
                Easter(39),
                Easter(50),
                Fixed(7, 21),
                Fixed(8, 15),
                Fixed(11, 1),
                Fixed(11, 11),
                Fixed(12, 25),
            ],
            Observance::None,
        ),
        "ES" => (
            &[
                Fixed(1, 1),
                Fixed(1, 6),
                Easter(-2),
                Fixed(5, 1),
                Fixed(8, 15),
                Fixed(10, 12),
                Fixed(11, 1),
                Fixed(12, 6),
                Fixed(12, 8),
                Fixed(12, 25),
            ],
            Observance::None,
        ),
        "IT" => (
            &[
                Fixed(1, 1),
                Fixed(1, 6),
                Easter(1),
                Fixed(4, 25),
                Fixed(5, 1),
                Fixed(6, 2),
                Fixed(8, 15),
                FixedFrom(2026, 10, 4),
                Fixed(11, 1),
                Fixed(12, 8),
                Fixed(12, 25),
                Fixed(12, 26),
            ],
            Observance::None,
        ),
        "PL" => (
            &[
                Fixed(1, 1),
                Fixed(1, 6),
                Easter(0),
                Easter(1),
                Fixed(5, 1),
                Fixed(5, 3),
                Easter(49),
                Easter(60),
                Fixed(8, 15),
                Fixed(11, 1),
                Fixed(11, 11),
                FixedFrom(2025, 12, 24),
                Fixed(12, 25),
                Fixed(12, 26),
            ],
            Observance::None,
        ),
        "SE" => (
            &[
                Fixed(1, 1),
                Fixed(1, 6),
                Easter(-2),
                Easter(1),
                Fixed(5, 1),
                Easter(39),
                Fixed(6, 6),
                OnOrAfter(6, 19, Friday),
                OnOrAfter(6, 20, Saturday),
                OnOrAfter(10, 31, Saturday),
                Fixed(12, 24),
                Fixed(12, 25),
                Fixed(12, 26),
                Fixed(12, 31),
            ],
            Observance::None,
        ),
        _ => (&[], Observance::None),
    }
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian computus).
pub fn easter_sunday(year: i16) -> Result<Date, jiff::Error> {
    let y = i32::from(year);
    let (a, b, c) = (y % 19, y / 100, y % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    // The computus yields March or April and a day in 1..=31, so the casts are exact.
    Date::new(year, month as i8, day as i8)
}

/// Days from weekday `from` forward to weekday `to` (0 to 6).
fn days_from(from: Weekday, to: Weekday) -> i64 {
    i64::from(to.to_monday_zero_offset() - from.to_monday_zero_offset()).rem_euclid(7)
}

fn date_of(rule: Rule, year: i16) -> Result<Option<Date>, jiff::Error> {
    Ok(Some(match rule {
        Fixed(month, day) => Date::new(year, month, day)?,
        FixedFrom(first_year, month, day) => {
            if year < first_year {
                return Ok(None);
            }
            Date::new(year, month, day)?
        }
        Easter(offset) => easter_sunday(year)?.checked_add(offset.days())?,
        Nth(month, nth, weekday) => {
            Date::new(year, month, 1)?.nth_weekday_of_month(nth, weekday)?
        }
        OnOrAfter(month, day, weekday) => {
            let date = Date::new(year, month, day)?;
            date.checked_add(days_from(date.weekday(), weekday).days())?
        }
        OnOrBefore(month, day, weekday) => {
            let date = Date::new(year, month, day)?;
            date.checked_sub(days_from(weekday, date.weekday()).days())?
        }
        KingsDay => {
            let date = Date::new(year, 4, 27)?;
            if date.weekday() == Weekday::Sunday {
                Date::new(year, 4, 26)?
            } else {
                date
            }
        }
    }))
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// One year's holidays of a country, with weekend observance applied (the actual
/// date is kept as well, for locations that open on Saturdays).
fn holidays_in(country: &str, year: i16) -> Result<BTreeSet<Date>, jiff::Error> {
    let (rules, observance) = rules(country);
    let mut dates: Vec<Date> = Vec::new();
    for rule in rules {
        if let Some(date) = date_of(*rule, year)? {
            dates.push(date);
        }
    }
    dates.sort();
    let mut result: BTreeSet<Date> = dates.iter().copied().collect();
    for date in dates {
        match (observance, date.weekday()) {
            (Observance::NearestWeekday, Weekday::Saturday) => {
                result.insert(date.checked_sub(1.day())?);
            }
            (Observance::NearestWeekday, Weekday::Sunday) => {
                result.insert(date.checked_add(1.day())?);
            }
            (Observance::Substitute, _) if is_weekend(date) => {
                let mut substitute = date.checked_add(1.day())?;
                while is_weekend(substitute) || result.contains(&substitute) {
                    substitute = substitute.checked_add(1.day())?;
                }
                result.insert(substitute);
            }
            _ => {}
        }
    }
    Ok(result)
}

/// The public holidays of `country` that fall in `first_year..=last_year`,
/// including days observed in lieu (a US holiday on Saturday 1 January is
/// observed on the Friday before, in the previous year). Unknown countries have none.
pub fn public_holidays(
    country: &str,
    first_year: i16,
    last_year: i16,
) -> Result<BTreeSet<Date>, jiff::Error> {
    let mut all = BTreeSet::new();
    for year in first_year.saturating_sub(1)..=last_year.saturating_add(1) {
        all.extend(holidays_in(country, year)?);
    }
    Ok(all
        .into_iter()
        .filter(|d| (first_year..=last_year).contains(&d.year()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::constant(y, m, day)
    }

    #[test]
    fn easter_matches_published_dates() {
        assert_eq!(easter_sunday(2024).unwrap(), d(2024, 3, 31));
        assert_eq!(easter_sunday(2025).unwrap(), d(2025, 4, 20));
        assert_eq!(easter_sunday(2026).unwrap(), d(2026, 4, 5));
        assert_eq!(easter_sunday(2027).unwrap(), d(2027, 3, 28));
        assert_eq!(easter_sunday(2038).unwrap(), d(2038, 4, 25));
    }

    #[test]
    fn us_federal_holidays_2026() {
        let got = public_holidays("US", 2026, 2026).unwrap();
        let expected = [
            d(2026, 1, 1),
            d(2026, 1, 19),
            d(2026, 2, 16),
            d(2026, 5, 25),
            d(2026, 6, 19),
            d(2026, 7, 3),
            d(2026, 7, 4),
            d(2026, 9, 7),
            d(2026, 10, 12),
            d(2026, 11, 11),
            d(2026, 11, 26),
            d(2026, 12, 25),
        ];
        assert_eq!(got, expected.into_iter().collect());
    }

    #[test]
    fn us_new_year_2028_is_observed_on_new_years_eve_2027() {
        let got = public_holidays("US", 2027, 2027).unwrap();
        assert!(got.contains(&d(2027, 12, 31)));
        assert!(got.contains(&d(2027, 11, 25)), "Thanksgiving 2027");
        assert!(got.contains(&d(2027, 7, 5)), "4 July 2027 is a Sunday");
    }

    #[test]
    fn uk_bank_holidays_with_substitutes() {
        let got = public_holidays("GB", 2026, 2027).unwrap();
        for date in [
            d(2026, 4, 3),
            d(2026, 4, 6),
            d(2026, 5, 4),
            d(2026, 5, 25),
            d(2026, 8, 31),
            d(2026, 12, 28),
            d(2027, 3, 26),
            d(2027, 3, 29),
            d(2027, 12, 27),
            d(2027, 12, 28),
        ] {
            assert!(got.contains(&date), "{date}");
        }
    }

    #[test]
    fn movable_feasts_and_nth_weekdays() {
        let de = public_holidays("DE", 2026, 2026).unwrap();
        assert!(de.contains(&d(2026, 5, 14)) && de.contains(&d(2026, 5, 25)));
        let ca = public_holidays("CA", 2026, 2027).unwrap();
        assert!(
            ca.contains(&d(2026, 5, 18)) && ca.contains(&d(2027, 5, 24)),
            "Victoria Day"
        );
        let pl = public_holidays("PL", 2026, 2026).unwrap();
        assert!(pl.contains(&d(2026, 6, 4)), "Corpus Christi");
        let se = public_holidays("SE", 2026, 2026).unwrap();
        assert!(se.contains(&d(2026, 6, 19)) && se.contains(&d(2026, 10, 31)));
        let mx = public_holidays("MX", 2026, 2026).unwrap();
        assert!(
            mx.contains(&d(2026, 2, 2))
                && mx.contains(&d(2026, 3, 16))
                && mx.contains(&d(2026, 11, 16))
        );
        let nl = public_holidays("NL", 2027, 2027).unwrap();
        assert!(nl.contains(&d(2027, 4, 27)));
        assert!(public_holidays("XX", 2026, 2027).unwrap().is_empty());
    }
}
