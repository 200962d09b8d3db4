//! Time as the national interface writes it: Beijing time (UTC+8), `yyyy-MM-dd HH:mm:ss` and
//! `yyyyMMddHHmmssSSS`.

use std::time::{SystemTime, UNIX_EPOCH};

use baozhang_core::Date;

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn parts(ms: i64) -> (Date, i64, i64, i64, i64) {
    let local = ms + 8 * 3_600_000;
    let secs = local.div_euclid(1000);
    let d = Date::from_days(secs.div_euclid(86_400) as i32);
    let rem = secs.rem_euclid(86_400);
    (d, rem / 3600, rem % 3600 / 60, rem % 60, local.rem_euclid(1000))
}

pub fn unix_ms_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `yyyyMMddHHmmssSSS`.
pub fn compact(ms: i64) -> String {
    let (d, h, m, s, milli) = parts(ms);
    format!("{:04}{:02}{:02}{h:02}{m:02}{s:02}{milli:03}", d.year(), d.month(), d.day())
}

/// Today in Beijing time.
pub fn today() -> Date {
    parts(unix_ms_now()).0
}

/// `yyyy-MM-dd HH:mm:ss`.
pub fn readable(ms: i64) -> String {
    let (d, h, m, s, _) = parts(ms);
    format!("{d} {h:02}:{m:02}:{s:02}")
}

/// A stored UTC time (`yyyy-MM-ddTHH:mm:ssZ`, the store's `now_text`) as Beijing time
/// `yyyy-MM-dd HH:mm:ss`; text of another shape is returned as it is.
pub fn beijing_text(utc: &str) -> String {
    let b = utc.as_bytes();
    let shaped = b.len() == 20 && b[10] == b'T' && b[19] == b'Z';
    let parsed = shaped
        .then(|| {
            let d = Date::parse(&utc[..10]).ok()?;
            let hms: Vec<i64> = utc[11..19].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            let [h, m, s] = hms[..] else { return None };
            Some((i64::from(d.to_days()) * 86_400 + h * 3600 + m * 60 + s) * 1000)
        })
        .flatten();
    parsed.map_or_else(|| utc.to_string(), readable)
}

/// A stored UTC time as Beijing time to the minute, `yyyy-MM-dd HH:mm` (what lists show).
pub fn beijing_minute(utc: &str) -> String {
    let t = beijing_text(utc).replace('T', " ");
    t.get(..16).unwrap_or(&t).to_string()
}

/// The Beijing date of a stored UTC time, `yyyy-MM-dd` (an act at 01:00 Beijing time is on that day,
/// not on the UTC day before).
pub fn beijing_day(utc: &str) -> String {
    let t = beijing_text(utc);
    t.get(..10).unwrap_or(&t).to_string()
}

/// The date part of `yyyy-MM-dd[ HH:mm:ss]` or `yyyyMMdd…`.
pub fn parse_date_prefix(s: &str) -> Option<Date> {
    let s = s.trim();
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return Date::parse(&s[..10]).ok();
    }
    if s.len() >= 8 && s.as_bytes()[..8].iter().all(u8::is_ascii_digit) {
        let n: u32 = s[..8].parse().ok()?;
        return Date::new((n / 10_000) as u16, (n / 100 % 100) as u8, (n % 100) as u8);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_utc_times_read_in_beijing_time() {
        assert_eq!(beijing_text("2018-03-01T16:30:05Z"), "2018-03-02 00:30:05");
        assert_eq!(beijing_text("不是时间"), "不是时间");
    }

    #[test]
    fn lists_show_beijing_minutes_and_days() {
        assert_eq!(beijing_minute("2018-12-31T16:30:05Z"), "2019-01-01 00:30");
        assert_eq!(beijing_day("2018-12-31T16:30:05Z"), "2019-01-01");
        assert_eq!(beijing_day("2018-12-31T15:59:59Z"), "2018-12-31");
        // Text of another shape (older rows, hand-entered) is shown as it is, cut to the minute or day.
        assert_eq!(beijing_minute("2018-12-31 10:00:00"), "2018-12-31 10:00");
        assert_eq!(beijing_day(""), "");
    }

    #[test]
    fn beijing_time_is_utc_plus_8() {
        // 2018-03-01T16:30:05.123Z = 2018-03-02 00:30:05.123 in Beijing.
        let ms = 1_519_921_805_123;
        assert_eq!(compact(ms), "20180302003005123");
        assert_eq!(readable(ms), "2018-03-02 00:30:05");
    }

    #[test]
    fn dates_are_read_from_both_forms() {
        assert_eq!(parse_date_prefix("2018-03-02 10:00:00").unwrap().to_string(), "2018-03-02");
        assert_eq!(parse_date_prefix("20180302").unwrap().to_string(), "2018-03-02");
        assert!(parse_date_prefix("2018-02-30").is_none());
        assert!(parse_date_prefix("x").is_none());
    }
}
