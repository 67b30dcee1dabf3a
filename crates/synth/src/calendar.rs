//! Civil dates as days since 1970-01-01 (Arrow's Date32), and year-months as `YYYYMM`; the
//! calendar itself is the `time` crate's.

use time::Date;

/// The Julian day number of 1970-01-01.
const EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// A month number 1–12 as `time`'s month (13 and above count as December, 0 as January).
fn month_of(m: u32) -> time::Month {
    time::Month::try_from(m.clamp(1, 12) as u8).unwrap_or(time::Month::January)
}

/// Days since 1970-01-01 of a proleptic Gregorian date. The generator only asks for real
/// dates; anything else is clamped (a day past the month's end to its last day, a year to
/// ±9999), never a panic.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = y.clamp(-9999, 9999);
    let month = month_of(m);
    let d = d.clamp(1, u32::from(month.length(y))) as u8;
    Date::from_calendar_date(y, month, d).map_or(0, |date| date.to_julian_day() - EPOCH_JULIAN_DAY)
}

/// The date (year, month, day) of a day number (clamped to the years ±9999).
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let date = Date::from_julian_day(z.saturating_add(EPOCH_JULIAN_DAY)).unwrap_or(if z < 0 { Date::MIN } else { Date::MAX });
    (date.year(), u32::from(u8::from(date.month())), u32::from(date.day()))
}

/// Whether a year is a leap year.
pub fn is_leap(y: i32) -> bool {
    time::util::is_leap_year(y)
}

/// Days in a month.
pub fn days_in_month(y: i32, m: u32) -> u32 {
    u32::from(month_of(m).length(y))
}

/// A calendar month, counted from year 0 (`year * 12 + month - 1`), so that month arithmetic
/// is integer arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(pub i32);

impl Month {
    /// The month of a year and a 1-based month number.
    pub fn new(year: i32, month: u32) -> Self {
        Month(year * 12 + month as i32 - 1)
    }
    /// The year.
    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }
    /// The month number, 1–12.
    pub fn month(self) -> u32 {
        (self.0.rem_euclid(12) + 1) as u32
    }
    /// `YYYYMM` as an integer (診療年月).
    pub fn yyyymm(self) -> i32 {
        self.year() * 100 + self.month() as i32
    }
    /// The month `n` months later.
    pub fn plus(self, n: i32) -> Self {
        Month(self.0 + n)
    }
    /// The first day, as days since the epoch.
    pub fn first_day(self) -> i32 {
        days_from_civil(self.year(), self.month(), 1)
    }
    /// Number of days.
    pub fn days(self) -> u32 {
        days_in_month(self.year(), self.month())
    }
    /// The Japanese fiscal year (April–March) the month belongs to.
    pub fn fiscal_year(self) -> i32 {
        if self.month() >= 4 { self.year() } else { self.year() - 1 }
    }
}

/// `YYYYMMDD` text of a day number (for identifying fields that are hashed, never stored).
pub fn yyyymmdd(days: i32) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 4, 1), 19_814);
        for z in [-800_000, -1, 0, 1, 11_016, 19_814, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(Month::new(2024, 4).plus(11).yyyymm(), 202503);
        assert_eq!(Month::new(2025, 3).fiscal_year(), 2024);
        assert_eq!(yyyymmdd(19_814), "20240401");
        // Out of range or impossible: clamped, never a panic.
        assert_eq!(days_from_civil(2023, 2, 30), days_from_civil(2023, 2, 28));
        assert_eq!(civil_from_days(i32::MAX).0, 9999);
        assert_eq!(civil_from_days(i32::MIN).0, -9999);
    }
}
