//! Early warning of illness-caused (re)poverty (因病返贫致贫预警, R-RISK-1): from a person's settlements,
//! their personal medical payment over the last 12 months, compared with a warning line.
//!
//! Readings taken (POLICY.md leaves them open; see also issue 6):
//! - **The window** is the 12 months ending on the day of assessment: settlement dates in
//!   `(as_of − 12 months, as_of]`, "12 months back" being the same day a year earlier (29 February → 28
//!   February). A cancellation counts on its own date with its negative amount.
//! - **The line** is a share of the county's rural per-capita disposable income, set per region and year
//!   (default 50 %), rounded half up to the fen.
//! - **Levels** (the highest that applies):
//!   - `Over` (超过预警线): the 12-month payment is at or above the line;
//!   - `Near` (接近预警线): it is at or above `near_bp` of the line (default 80 %);
//!   - `Rising` (快速上升): below that, but the last 3 months' payment, if repeated once more, would take
//!     the 12-month payment to the line — the pace that crosses the line within a quarter.
//! - **A household** is compared per head: its members' 12-month payments summed, against the line times
//!   the number of members (so a household of four is flagged at four lines).

use crate::date::{days_in_month, Date};

/// One settlement's personal payment (`psn_part_amt`), fen; negative for a cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payment {
    pub date: Date,
    pub psn_part_fen: i64,
}

/// The warning line of a region and year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarningLine {
    /// The line itself, fen a year.
    pub line_fen: i64,
    /// "Near" from this share of the line, basis points (8,000 = 80 %).
    pub near_bp: i64,
}

impl WarningLine {
    /// `share_bp` of a rural per-capita disposable income (fen a year), rounded half up to the fen.
    pub fn from_income(income_fen: i64, share_bp: i64) -> WarningLine {
        let num = i128::from(income_fen.max(0)) * i128::from(share_bp.max(0));
        let line = (num + 5_000) / 10_000;
        WarningLine { line_fen: line as i64, near_bp: 8_000 }
    }

    /// The "near" threshold, fen (rounded up: near means at least this share).
    pub fn near_fen(&self) -> i64 {
        let num = i128::from(self.line_fen) * i128::from(self.near_bp);
        ((num + 9_999) / 10_000) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    None,
    Rising,
    Near,
    Over,
}

impl Level {
    pub fn name_zh(self) -> &'static str {
        match self {
            Level::None => "未预警",
            Level::Rising => "快速上升",
            Level::Near => "接近预警线",
            Level::Over => "超过预警线",
        }
    }
    pub fn id(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Rising => "rising",
            Level::Near => "near",
            Level::Over => "over",
        }
    }
}

/// What an assessment found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// Personal payment over the 12 months ending on the day, fen.
    pub twelve_months_fen: i64,
    /// Of which in the last 3 months, fen.
    pub three_months_fen: i64,
    /// Settlements in the 12 months (cancellations count −1).
    pub settlements: i64,
    pub level: Level,
}

/// The same day `months` months earlier (the last day of that month if it is shorter).
pub fn months_back(d: Date, months: u32) -> Date {
    let total = i64::from(d.year()) * 12 + i64::from(d.month()) - 1 - i64::from(months);
    let (y, m) = ((total / 12) as u16, (total % 12 + 1) as u8);
    let day = d.day().min(days_in_month(y, m));
    Date::new(y, m, day).expect("a valid day of a valid month")
}

/// The level of a payment over 12 months (and its last 3) against a line, for `heads` people.
pub fn level_of(twelve_months_fen: i64, three_months_fen: i64, line: &WarningLine, heads: i64) -> Level {
    let heads = heads.max(1);
    let (limit, near) = (line.line_fen.saturating_mul(heads), line.near_fen().saturating_mul(heads));
    if limit <= 0 {
        return Level::None;
    }
    if twelve_months_fen >= limit {
        Level::Over
    } else if twelve_months_fen >= near {
        Level::Near
    } else if three_months_fen > 0 && twelve_months_fen.saturating_add(three_months_fen) >= limit {
        Level::Rising
    } else {
        Level::None
    }
}

/// A person's assessment on `as_of` from their payments (any order, any dates).
pub fn assess(payments: &[Payment], as_of: Date, line: &WarningLine) -> Assessment {
    let (from12, from3) = (months_back(as_of, 12), months_back(as_of, 3));
    let (mut twelve, mut three, mut n) = (0i64, 0i64, 0i64);
    for p in payments.iter().filter(|p| p.date > from12 && p.date <= as_of) {
        twelve += p.psn_part_fen;
        n += if p.psn_part_fen < 0 { -1 } else { 1 };
        if p.date > from3 {
            three += p.psn_part_fen;
        }
    }
    Assessment { twelve_months_fen: twelve, three_months_fen: three, settlements: n, level: level_of(twelve, three, line, 1) }
}

/// A household's assessment from its members' (per head: the line times the members).
pub fn assess_household(members: &[Assessment], line: &WarningLine) -> Assessment {
    let twelve = members.iter().map(|a| a.twelve_months_fen).sum();
    let three = members.iter().map(|a| a.three_months_fen).sum();
    let settlements = members.iter().map(|a| a.settlements).sum();
    Assessment {
        twelve_months_fen: twelve,
        three_months_fen: three,
        settlements,
        level: level_of(twelve, three, line, members.len() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: u16, m: u8, day: u8) -> Date {
        Date::new(y, m, day).unwrap()
    }

    fn pay(date: Date, yuan: i64) -> Payment {
        Payment { date, psn_part_fen: yuan * 100 }
    }

    /// Huining 2018: rural per-capita disposable income 7,286 yuan (illustrative) → line 3,643 yuan.
    fn line() -> WarningLine {
        WarningLine::from_income(728_600, 5_000)
    }

    #[test]
    fn the_line_is_a_share_of_income_rounded_half_up() {
        assert_eq!(line().line_fen, 364_300);
        assert_eq!(WarningLine::from_income(1_001, 5_000).line_fen, 501, "500.5 fen rounds up");
        assert_eq!(WarningLine::from_income(1_000, 5_000).line_fen, 500);
        assert_eq!(line().near_fen(), 291_440);
        assert_eq!(WarningLine { line_fen: 1_001, near_bp: 8_000 }.near_fen(), 801, "800.8 fen: near from 801");
    }

    #[test]
    fn twelve_months_back_is_the_same_day_a_year_earlier() {
        assert_eq!(months_back(d(2018, 12, 31), 12), d(2017, 12, 31));
        assert_eq!(months_back(d(2020, 2, 29), 12), d(2019, 2, 28));
        assert_eq!(months_back(d(2018, 5, 31), 3), d(2018, 2, 28));
        assert_eq!(months_back(d(2018, 1, 15), 3), d(2017, 10, 15));
    }

    #[test]
    fn the_window_is_the_twelve_months_ending_on_the_day() {
        let ps = [pay(d(2017, 12, 31), 1_000), pay(d(2018, 1, 1), 200), pay(d(2018, 12, 31), 300), pay(d(2019, 1, 1), 5_000)];
        let a = assess(&ps, d(2018, 12, 31), &line());
        assert_eq!(a.twelve_months_fen, 50_000, "31 Dec 2017 is out, 1 Jan 2019 is after the day");
        assert_eq!(a.three_months_fen, 30_000);
        assert_eq!(a.settlements, 2);
        assert_eq!(a.level, Level::None);
    }

    #[test]
    fn levels_over_near_rising() {
        let l = line();
        assert_eq!(assess(&[pay(d(2018, 3, 1), 3_643)], d(2018, 12, 31), &l).level, Level::Over, "at the line is over");
        assert_eq!(assess(&[pay(d(2018, 3, 1), 3_642)], d(2018, 12, 31), &l).level, Level::Near);
        assert_eq!(assess(&[pay(d(2018, 3, 1), 2_914)], d(2018, 12, 31), &l).level, Level::None, "2,914.00 < 80 % (2,914.40)");
        // 2,000 over the year, 1,700 of it in the last quarter: another such quarter crosses the line.
        let rising = [pay(d(2018, 3, 1), 300), pay(d(2018, 11, 20), 1_700)];
        assert_eq!(assess(&rising, d(2018, 12, 31), &l).level, Level::Rising);
        // The same 2,000 spread evenly is not rising.
        let even = [pay(d(2018, 3, 1), 1_000), pay(d(2018, 7, 1), 700), pay(d(2018, 11, 20), 300)];
        assert_eq!(assess(&even, d(2018, 12, 31), &l).level, Level::None);
    }

    #[test]
    fn a_cancellation_takes_its_payment_back() {
        let ps = [pay(d(2018, 5, 1), 4_000), pay(d(2018, 5, 3), -4_000), pay(d(2018, 6, 1), 100)];
        let a = assess(&ps, d(2018, 12, 31), &line());
        assert_eq!((a.twelve_months_fen, a.settlements, a.level), (10_000, 1, Level::None));
    }

    #[test]
    fn a_household_is_compared_per_head() {
        let l = line();
        let one = assess(&[pay(d(2018, 3, 1), 3_643)], d(2018, 12, 31), &l);
        let none = assess(&[], d(2018, 12, 31), &l);
        assert_eq!(one.level, Level::Over);
        let h = assess_household(&[one, none, none, none], &l);
        assert_eq!(h.twelve_months_fen, 364_300);
        assert_eq!(h.level, Level::None, "one line's payment in a household of four is a quarter of its line");
        assert_eq!(assess_household(&[one, one], &l).level, Level::Over);
    }

    #[test]
    fn no_line_flags_nobody() {
        let l = WarningLine { line_fen: 0, near_bp: 8_000 };
        assert_eq!(assess(&[pay(d(2018, 3, 1), 100_000)], d(2018, 12, 31), &l).level, Level::None);
    }

    fn payments() -> impl Strategy<Value = Vec<Payment>> {
        prop::collection::vec((0i32..800, 0i64..2_000_000), 0..30)
            .prop_map(|v| v.into_iter().map(|(day, fen)| Payment { date: d(2017, 10, 1).add_days(day), psn_part_fen: fen }).collect())
    }

    proptest! {
        /// Paying more never lowers the level (for payments, not cancellations).
        #[test]
        fn more_payment_never_lowers_the_level(ps in payments(), extra in 1i64..1_000_000, day in 0i32..800) {
            let (l, as_of) = (line(), d(2018, 12, 31));
            let before = assess(&ps, as_of, &l);
            let mut more = ps.clone();
            more.push(Payment { date: d(2017, 10, 1).add_days(day), psn_part_fen: extra });
            let after = assess(&more, as_of, &l);
            prop_assert!(after.level >= before.level, "{before:?} → {after:?}");
            prop_assert!(after.twelve_months_fen >= before.twelve_months_fen);
        }

        /// The order of the payments does not matter; the 3-month part is within the 12 months.
        #[test]
        fn order_does_not_matter(ps in payments()) {
            let (l, as_of) = (line(), d(2018, 12, 31));
            let mut rev = ps.clone();
            rev.reverse();
            let a = assess(&ps, as_of, &l);
            prop_assert_eq!(a, assess(&rev, as_of, &l));
            prop_assert!(a.three_months_fen <= a.twelve_months_fen);
        }

        /// A household of one is its member.
        #[test]
        fn a_household_of_one_is_its_member(ps in payments()) {
            let (l, as_of) = (line(), d(2018, 12, 31));
            let a = assess(&ps, as_of, &l);
            prop_assert_eq!(assess_household(&[a], &l), a);
        }
    }
}
