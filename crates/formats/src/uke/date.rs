//! Dates and months of UKE fields: 和暦 with an era digit (`GYYMMDD`, `GYYMM`) in older files,
//! 西暦 (`YYYYMMDD`, `YYYYMM`) since the 令和2年 specification — told apart by their length
//! (`../shared/domain/data.md` §1.2).

use std::fmt;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// The year (西暦).
    pub year: u16,
    /// The month, 1–12.
    pub month: u8,
    /// The day of the month.
    pub day: u8,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Date {
    /// The date as the current specification writes it: `YYYYMMDD`.
    pub fn seireki(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// The date as older files write it: `GYYMMDD` (era digit, year of the era); `None` before
    /// 明治.
    pub fn wareki(&self) -> Option<String> {
        let era = ERAS.iter().rev().find(|e| (self.year, self.month, self.day) >= e.first)?;
        Some(format!("{}{:02}{:02}{:02}", era.digit, self.year - era.offset, self.month, self.day))
    }

    /// `YYYYMM` of the date's month.
    pub fn month_number(&self) -> u32 {
        u32::from(self.year) * 100 + u32::from(self.month)
    }
}

/// An era (元号): its digit, name, the 西暦 year of its year 0, and its first and last days.
struct Era {
    digit: u8,
    name: &'static str,
    offset: u16,
    first: (u16, u8, u8),
    last: (u16, u8, u8),
}

/// 1 明治, 2 大正, 3 昭和, 4 平成, 5 令和 (明治 counted from 1868-01-01, as the calendar
/// was applied to the whole of 明治元年).
const ERAS: [Era; 5] = [
    Era { digit: 1, name: "明治", offset: 1867, first: (1868, 1, 1), last: (1912, 7, 29) },
    Era { digit: 2, name: "大正", offset: 1911, first: (1912, 7, 30), last: (1926, 12, 24) },
    Era { digit: 3, name: "昭和", offset: 1925, first: (1926, 12, 25), last: (1989, 1, 7) },
    Era { digit: 4, name: "平成", offset: 1988, first: (1989, 1, 8), last: (2019, 4, 30) },
    Era { digit: 5, name: "令和", offset: 2018, first: (2019, 5, 1), last: (9999, 12, 31) },
];

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn days_in(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

const DATE_EXPECTED: &str = "GYYMMDD（和暦）または YYYYMMDD（西暦）/ GYYMMDD (era) or YYYYMMDD expected";
const MONTH_EXPECTED: &str = "GYYMM（和暦）または YYYYMM（西暦）/ GYYMM (era) or YYYYMM expected";

fn era(digit: u32) -> Result<&'static Era, (String, String)> {
    ERAS.iter().find(|e| u32::from(e.digit) == digit).ok_or_else(|| {
        (format!("元号の桁 {digit} は 1 明治〜5 令和 のいずれでもない"), format!("era digit {digit} is not 1 (Meiji) to 5 (Reiwa)"))
    })
}

/// Reads a date field: `GYYMMDD` or `YYYYMMDD`. The message says what is wrong and what was
/// expected.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let bad = |(ja, en): (&str, &str)| format!("'{s}' は日付ではありません（{ja}）/ '{s}' is not a date ({en}): {DATE_EXPECTED}");
    let n = digits(s).ok_or_else(|| bad(("数字以外", "not digits")))?;
    let (date, era) = match s.len() {
        7 => {
            let e = era(n / 1_000_000).map_err(|(ja, en)| bad((&ja, &en)))?;
            let yy = (n / 10_000 % 100) as u16;
            if yy == 0 {
                return Err(bad(("元号の年 00", "year 00 of an era")));
            }
            (Date { year: e.offset + yy, month: (n / 100 % 100) as u8, day: (n % 100) as u8 }, Some(e))
        }
        8 => (Date { year: (n / 10_000) as u16, month: (n / 100 % 100) as u8, day: (n % 100) as u8 }, None),
        _ => return Err(bad(("桁数", "length"))),
    };
    if !(1..=12).contains(&date.month) || date.day == 0 || date.day > days_in(date.year, date.month) {
        return Err(bad(("暦にない日", "no such day")));
    }
    if !(1868..=2199).contains(&date.year) {
        return Err(bad(("1868〜2199年の外", "outside 1868–2199")));
    }
    if let Some(e) = era {
        let d = (date.year, date.month, date.day);
        if d < e.first || d > e.last {
            return Err(bad((&format!("{}の期間外", e.name), &format!("outside the {} era", e.name))));
        }
    }
    Ok(date)
}

/// Reads a month field: `GYYMM` or `YYYYMM`; gives `YYYYMM`.
pub fn parse_month(s: &str) -> Result<u32, String> {
    let bad = |(ja, en): (&str, &str)| format!("'{s}' は年月ではありません（{ja}）/ '{s}' is not a month ({en}): {MONTH_EXPECTED}");
    let n = digits(s).ok_or_else(|| bad(("数字以外", "not digits")))?;
    let (year, month, era) = match s.len() {
        5 => {
            let e = era(n / 10_000).map_err(|(ja, en)| bad((&ja, &en)))?;
            let yy = (n / 100 % 100) as u16;
            if yy == 0 {
                return Err(bad(("元号の年 00", "year 00 of an era")));
            }
            (e.offset + yy, (n % 100) as u8, Some(e))
        }
        6 => ((n / 100) as u16, (n % 100) as u8, None),
        _ => return Err(bad(("桁数", "length"))),
    };
    if !(1..=12).contains(&month) {
        return Err(bad(("月が 1〜12 の外", "month outside 1–12")));
    }
    if !(1868..=2199).contains(&year) {
        return Err(bad(("1868〜2199年の外", "outside 1868–2199")));
    }
    if let Some(e) = era
        && ((year, month) < (e.first.0, e.first.1) || (year, month) > (e.last.0, e.last.1))
    {
        return Err(bad((&format!("{}の期間外", e.name), &format!("outside the {} era", e.name))));
    }
    Ok(u32::from(year) * 100 + u32::from(month))
}

/// `YYYYMM` written as the older files do: `GYYMM` (a month in which an era began is written in
/// the new era: 1989-01 as 平成元年1月).
pub fn wareki_month(yyyymm: u32) -> Option<String> {
    let (year, month) = ((yyyymm / 100) as u16, (yyyymm % 100) as u8);
    let era = ERAS.iter().rev().find(|e| (year, month) >= (e.first.0, e.first.1))?;
    Some(format!("{}{:02}{:02}", era.digit, year - era.offset, month))
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn both_calendars_read_alike() -> Result<(), String> {
        assert_eq!(parse_date("4070208")?, Date { year: 1995, month: 2, day: 8 });
        assert_eq!(parse_date("19950208")?, Date { year: 1995, month: 2, day: 8 });
        assert_eq!(parse_date("5011225")?, Date { year: 2019, month: 12, day: 25 });
        assert_eq!(parse_date("3640107")?, Date { year: 1989, month: 1, day: 7 });
        assert_eq!(parse_date("4010108")?, Date { year: 1989, month: 1, day: 8 });
        assert_eq!(parse_date("1450729")?, Date { year: 1912, month: 7, day: 29 });
        assert_eq!(parse_month("43101")?, 201_901);
        assert_eq!(parse_month("202404")?, 202_404);
        assert_eq!(parse_date("20240229")?.wareki().as_deref(), Some("5060229"));
        assert_eq!(wareki_month(201_905).as_deref(), Some("50105"));
        assert_eq!(wareki_month(201_904).as_deref(), Some("43104"));
        Ok(())
    }

    #[test]
    fn impossible_dates_say_why() {
        for (s, why) in [
            ("20230229", "no such day"),
            ("20241301", "no such day"),
            ("4310501", "outside the 平成 era"),
            ("3640108", "outside the 昭和 era"),
            ("6010101", "era digit 6"),
            ("400101", "length"),
            ("2024O101", "not digits"),
            ("0000101", "era digit 0"),
            ("4000101", "year 00"),
            ("", "not digits"),
        ] {
            let e = parse_date(s).expect_err(s);
            assert!(e.contains(why) && e.contains("GYYMMDD"), "{s}: {e}");
        }
        for s in ["43113", "20241", "2024000", "43105", "-2024"] {
            assert!(parse_month(s).is_err(), "{s}");
        }
    }
}
