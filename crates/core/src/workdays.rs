//! Working days (R-FUND-1): payment to the patient's card within 15 working days of acceptance, counted
//! on a calendar of public holidays and adjusted working weekends configured per year
//! (data/calendar/cn.toml, from the State Council's yearly notice); and the due day of the quarterly
//! reconciliation of the fallback money hospitals advanced (the 10th of the month after the quarter).
//!
//! Readings taken: "within N working days of acceptance" counts the working days *after* the day of
//! acceptance, so the N-th working day after it is the last day on time. A year missing from the
//! calendar is counted Monday to Friday, and the caller is told (`Calendar::knows`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::date::Date;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calendar {
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
    years: BTreeSet<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
}

impl Calendar {
    /// Reads a calendar: one table per year with `holidays` and `workdays` (adjusted working weekends).
    pub fn parse(toml_text: &str) -> Result<Calendar, String> {
        let years: BTreeMap<String, YearFile> = toml::from_str(toml_text).map_err(|e| format!("节假日配置无效：{e}"))?;
        let mut c = Calendar::default();
        for (y, f) in years {
            let year: u16 = y.parse().map_err(|_| format!("节假日配置：“{y}”不是年份"))?;
            c.years.insert(year);
            for (list, into) in [(&f.holidays, &mut c.holidays), (&f.workdays, &mut c.workdays)] {
                for d in list {
                    let d = Date::parse(d).map_err(|e| format!("节假日配置 {y} 年：{e}"))?;
                    if d.year() != year {
                        return Err(format!("节假日配置 {y} 年：{d} 不在该年"));
                    }
                    into.insert(d);
                }
            }
        }
        if let Some(d) = c.holidays.intersection(&c.workdays).next() {
            return Err(format!("节假日配置：{d} 既是放假日又是调休上班日"));
        }
        Ok(c)
    }

    /// Whether the calendar has the year (else weekends only).
    pub fn knows(&self, year: u16) -> bool {
        self.years.contains(&year)
    }

    pub fn is_working(&self, d: Date) -> bool {
        if self.holidays.contains(&d) {
            return false;
        }
        if self.workdays.contains(&d) {
            return true;
        }
        // 1970-01-01 was a Thursday: days % 7 == 2 is Saturday, 3 is Sunday.
        !matches!(d.to_days().rem_euclid(7), 2 | 3)
    }

    /// The `n`-th working day after `d` (n ≥ 1); `d` itself for n = 0.
    pub fn add_working_days(&self, d: Date, n: u32) -> Date {
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day = day.add_days(1);
            if self.is_working(day) {
                left -= 1;
            }
        }
        day
    }

    /// Working days after `from` up to and including `to` (0 when `to` ≤ `from`).
    pub fn working_days_between(&self, from: Date, to: Date) -> u32 {
        let mut n = 0;
        let mut day = from;
        while day < to {
            day = day.add_days(1);
            if self.is_working(day) {
                n += 1;
            }
        }
        n
    }
}

/// The last day on time for a payment accepted on `accepted`: 15 working days after it.
pub const PAYMENT_WORKING_DAYS: u32 = 15;

pub fn payment_due(cal: &Calendar, accepted: Date) -> Date {
    cal.add_working_days(accepted, PAYMENT_WORKING_DAYS)
}

/// The due day of the quarterly reconciliation of quarter `q` (1–4) of `year`: the 10th of the month
/// after the quarter.
pub fn quarter_reconciliation_due(year: u16, q: u8) -> Option<Date> {
    match q {
        1..=3 => Date::new(year, 3 * q + 1, 10),
        4 => Date::new(year + 1, 1, 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn cn() -> Calendar {
        Calendar::parse(include_str!("../../../data/calendar/cn.toml")).expect("the shipped calendar")
    }

    #[test]
    fn weekends_holidays_and_adjusted_working_days() {
        let c = cn();
        assert!(c.is_working(d("2018-09-28")), "a Friday");
        assert!(c.is_working(d("2018-09-29")), "a Saturday worked for National Day");
        assert!(!c.is_working(d("2018-10-01")) && !c.is_working(d("2018-10-05")), "National Day");
        assert!(!c.is_working(d("2018-10-13")), "an ordinary Saturday");
        assert!(!c.is_working(d("2018-10-14")), "an ordinary Sunday");
        assert!(c.is_working(d("2018-10-08")));
        assert!(!c.is_working(d("2020-02-01")), "2020: the Spring Festival extension cancelled this working Saturday");
        assert!(c.knows(2019) && !c.knows(2030));
    }

    #[test]
    fn fifteen_working_days_across_national_day() {
        let c = cn();
        // Accepted on Friday 28 September 2018: the 29th and 30th are worked, 1–7 October are off.
        assert_eq!(payment_due(&c, d("2018-09-28")), d("2018-10-24"));
        assert_eq!(c.working_days_between(d("2018-09-28"), d("2018-10-24")), 15);
        assert_eq!(c.working_days_between(d("2018-09-28"), d("2018-10-23")), 14, "the day before is still on time");
        // Without the holidays it would have been 19 October.
        assert_eq!(payment_due(&Calendar::default(), d("2018-09-28")), d("2018-10-19"));
        // Across the Spring Festival of 2019 (4–10 February off, 2–3 February worked).
        assert_eq!(payment_due(&c, d("2019-01-31")), d("2019-02-26"));
        assert_eq!(c.add_working_days(d("2018-09-28"), 0), d("2018-09-28"));
    }

    #[test]
    fn quarterly_reconciliation_is_due_on_the_tenth_after_the_quarter() {
        assert_eq!(quarter_reconciliation_due(2018, 1), Some(d("2018-04-10")));
        assert_eq!(quarter_reconciliation_due(2018, 3), Some(d("2018-10-10")));
        assert_eq!(quarter_reconciliation_due(2018, 4), Some(d("2019-01-10")));
        assert_eq!(quarter_reconciliation_due(2018, 5), None);
    }

    #[test]
    fn a_bad_calendar_is_refused_in_chinese() {
        assert!(Calendar::parse("[2018]\nholidays = [\"2018-02-30\"]").unwrap_err().contains("2018"));
        assert!(Calendar::parse("[2018]\nholidays = [\"2019-01-01\"]").unwrap_err().contains("不在该年"));
        assert!(Calendar::parse("[2018]\nholidays = [\"2018-01-01\"]\nworkdays = [\"2018-01-01\"]").unwrap_err().contains("既是"));
        assert!(Calendar::parse("[abc]").is_err());
    }
}
