//! A calendar date, validated (no 2月30日), without a time zone. Enough for settlement years and
//! day arithmetic; kept here so the domain has no date-library dependency.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("日期“{0}”无效（应为真实日期，格式 YYYY-MM-DD）")]
pub struct DateError(pub String);

pub fn is_leap(y: u16) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

pub fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        if !(1900..=2200).contains(&year) || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// Strict `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Date, DateError> {
        let t = s.trim();
        let b = t.as_bytes();
        let err = || DateError(t.to_string());
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Option<u16> {
            let mut v: u16 = 0;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + u16::from(c - b'0');
            }
            Some(v)
        };
        let (y, m, d) = (num(0..4).ok_or_else(err)?, num(5..7).ok_or_else(err)?, num(8..10).ok_or_else(err)?);
        Date::new(y, m as u8, d as u8).ok_or_else(err)
    }

    pub fn year(self) -> u16 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    pub fn to_days(self) -> i32 {
        let y = i32::from(self.year) - i32::from(self.month <= 2);
        let m = i32::from(self.month);
        let d = i32::from(self.day);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days(z: i32) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        Date { year: (y + i32::from(m <= 2)) as u16, month: m, day: d }
    }

    pub fn add_days(self, n: i32) -> Date {
        Date::from_days(self.to_days() + n)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_real_dates() {
        assert!(Date::parse("2020-02-29").is_ok());
        assert!(Date::parse("2019-02-29").is_err());
        assert!(Date::parse("2018-04-31").is_err());
        assert!(Date::parse("2018-4-1").is_err());
        assert!(Date::parse("2018/04/01").is_err());
        assert!(Date::parse("2018-13-01").is_err());
        assert_eq!(Date::parse("2018-04-01").unwrap().to_string(), "2018-04-01");
    }

    #[test]
    fn day_numbers_round_trip() {
        let d = Date::parse("1970-01-01").unwrap();
        assert_eq!(d.to_days(), 0);
        for n in [-1000, 0, 17_000, 18_321, 40_000] {
            assert_eq!(Date::from_days(n).to_days(), n);
        }
        assert_eq!(Date::parse("2020-02-28").unwrap().add_days(1).to_string(), "2020-02-29");
        assert_eq!(Date::parse("2020-12-31").unwrap().add_days(1).to_string(), "2021-01-01");
    }
}
