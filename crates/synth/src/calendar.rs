//! Civil dates as days since 1970-01-01 (Arrow's Date32), and year-months as `YYYYMM`.

/// Days since 1970-01-01 of a proleptic Gregorian date (the classic days-from-civil formula).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a day number.
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whether a year is a leap year.
pub fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in a month.
pub fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
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
    }
}
