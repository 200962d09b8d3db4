//! The rules of the health programmes (POLICY.md §3): the family-doctor fee split and prepayment
//! (R-FDC-1), follow-up schedules (R-FDC-3), the reproducible monthly draw of new chronic-disease cards
//! for audit (R-CHR-2), and matching a diagnosis against a major-disease list (R-MDT-1).
//!
//! Readings taken (POLICY.md leaves them open):
//! - **Fee split.** A package's fee is split in two halves, the first half rounded half up to the fen,
//!   the second the rest, so the parts add up exactly. Insured that year: insurance fund / public-health
//!   funds; not insured: public-health funds / the person.
//! - **Prepayment.** 60 % of a hospital's insurance share for the year's contracts, rounded half up,
//!   at the start of the year; at year-end the fund owes its share of the contracts whose services were
//!   actually delivered (at least one service record in the year), less what it prepaid — which can be
//!   negative (the hospital returns the difference).
//! - **Follow-ups.** A key chronic patient (one of the four diseases under national public-health
//!   management) needs 6 a year: the k-th is due by the end of month 2k (February, April, …,
//!   December). One of the six further chronic diseases needs 1 a year, due by 31 December. Someone
//!   with both needs 6. A follow-up counts in the year it was made; extra ones early in the year count
//!   toward later ones.
//! - **Audit draw.** At least 10 % of the month's new cards, rounded up (so 1 card of 1–10), drawn
//!   without replacement by a partial Fisher–Yates shuffle driven by SplitMix64 from the recorded
//!   seed over the cards sorted by card number: the same seed and the same cards give the same draw.

use crate::date::Date;
use crate::money::div_round_half_away;

// ───────────────────────────── family-doctor contracts (R-FDC-1) ─────────────────────────────

/// A service package.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Package {
    /// 基础包, 50 yuan.
    Basic,
    /// 中级包, 100 yuan (includes the basic package).
    Intermediate,
}

impl Package {
    pub const ALL: [Package; 2] = [Package::Basic, Package::Intermediate];

    pub fn fee_fen(self) -> i64 {
        match self {
            Package::Basic => 5_000,
            Package::Intermediate => 10_000,
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Package::Basic => "基础包",
            Package::Intermediate => "中级包",
        }
    }
    pub fn parse(s: &str) -> Option<Package> {
        match s.trim() {
            "基础包" | "基础" | "basic" => Some(Package::Basic),
            "中级包" | "中级" | "intermediate" => Some(Package::Intermediate),
            _ => None,
        }
    }
}

/// Who pays a contract's fee (fen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeeSplit {
    /// The basic-insurance fund's share (prepaid 60 %, the rest at year-end).
    pub fund_fen: i64,
    pub public_health_fen: i64,
    pub person_fen: i64,
}

impl FeeSplit {
    pub fn total(&self) -> i64 {
        self.fund_fen + self.public_health_fen + self.person_fen
    }
}

/// The split of one contract's fee: 50 % fund / 50 % public health when insured, 50 % public health /
/// 50 % the person when not. The first half is rounded half up; the parts always add up to the fee.
pub fn split_fee(fee_fen: i64, insured: bool) -> FeeSplit {
    let first = div_round_half_away(fee_fen, 2);
    let second = fee_fen - first;
    if insured {
        FeeSplit { fund_fen: first, public_health_fen: second, person_fen: 0 }
    } else {
        FeeSplit { fund_fen: 0, public_health_fen: first, person_fen: second }
    }
}

/// The prepayment share (60 %), basis points.
pub const PREPAY_BP: i64 = 6_000;

/// The start-of-year prepayment of a hospital's insurance share for the year: 60 %, rounded half up.
pub fn prepayment(fund_share_fen: i64) -> i64 {
    div_round_half_away(fund_share_fen * PREPAY_BP, 10_000)
}

/// A hospital's year: what the fund owes against delivered services, and the year-end balance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct YearEnd {
    /// The fund's share of all the year's contracts.
    pub fund_share_fen: i64,
    pub prepaid_fen: i64,
    /// The fund's share of the contracts with services delivered.
    pub earned_fen: i64,
    /// `earned − prepaid`: paid to the hospital at year-end (negative: the hospital returns it).
    pub balance_fen: i64,
}

/// The year-end settlement of one hospital from its contracts' fund shares and whether each was served.
pub fn year_end(contracts: impl IntoIterator<Item = (i64, bool)>) -> YearEnd {
    let (mut share, mut earned) = (0i64, 0i64);
    for (fund, served) in contracts {
        share += fund;
        if served {
            earned += fund;
        }
    }
    let prepaid = prepayment(share);
    YearEnd { fund_share_fen: share, prepaid_fen: prepaid, earned_fen: earned, balance_fen: earned - prepaid }
}

// ───────────────────────────── follow-ups (R-FDC-3) ─────────────────────────────

/// The four diseases under national public-health management (key chronic patients, 6 follow-ups a year).
pub const KEY_DISEASES: [&str; 4] = ["高血压", "2型糖尿病", "严重精神障碍", "肺结核"];
/// The six further chronic diseases (at least one follow-up a year).
pub const FURTHER_DISEASES: [&str; 6] = ["脑血管病", "冠心病", "慢性阻塞性肺疾病", "老年慢性支气管炎", "类风湿性关节炎", "骨关节炎"];

/// How many follow-ups a year a person needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Schedule {
    None,
    /// One of the six further diseases: 1 a year.
    Yearly,
    /// A key chronic patient: 6 a year.
    KeyChronic,
}

impl Schedule {
    /// The schedule of someone with these registered diseases.
    pub fn of<'a>(diseases: impl IntoIterator<Item = &'a str>) -> Schedule {
        let mut s = Schedule::None;
        for d in diseases {
            if KEY_DISEASES.contains(&d) {
                return Schedule::KeyChronic;
            }
            if FURTHER_DISEASES.contains(&d) {
                s = Schedule::Yearly;
            }
        }
        s
    }
    pub fn per_year(self) -> u32 {
        match self {
            Schedule::None => 0,
            Schedule::Yearly => 1,
            Schedule::KeyChronic => 6,
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Schedule::None => "无",
            Schedule::Yearly => "每年 1 次",
            Schedule::KeyChronic => "每年 6 次",
        }
    }
    /// The due date of the k-th follow-up of a year (1-based).
    pub fn due(self, year: u16, k: u32) -> Option<Date> {
        match self {
            Schedule::None => None,
            Schedule::Yearly => (k == 1).then(|| Date::new(year, 12, 31)).flatten(),
            Schedule::KeyChronic => {
                if !(1..=6).contains(&k) {
                    return None;
                }
                let m = (2 * k) as u8;
                Date::new(year, m, crate::date::days_in_month(year, m))
            }
        }
    }
    /// Follow-ups due by the end of `as_of` (in its year).
    pub fn due_by(self, as_of: Date) -> u32 {
        (1..=self.per_year()).filter(|&k| self.due(as_of.year(), k).is_some_and(|d| d <= as_of)).count() as u32
    }
}

/// Where a person's follow-ups of a year stand on a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowUpStatus {
    pub schedule: Schedule,
    /// Follow-ups made in the year up to and including `as_of`.
    pub done: u32,
    /// Follow-ups that should have been made by `as_of`.
    pub due: u32,
    /// Missing follow-ups (`due − done`, at least 0).
    pub overdue: u32,
    /// The due date of the next follow-up not yet made (none when the year's are all done).
    pub next_due: Option<Date>,
}

/// A person's follow-up status on `as_of`, from the dates of their follow-ups (any year; those of
/// `as_of`'s year up to `as_of` count).
pub fn follow_up_status(schedule: Schedule, follow_ups: &[Date], as_of: Date) -> FollowUpStatus {
    let done = follow_ups.iter().filter(|d| d.year() == as_of.year() && **d <= as_of).count() as u32;
    let due = schedule.due_by(as_of);
    let next_due = if done < schedule.per_year() { schedule.due(as_of.year(), done + 1) } else { None };
    FollowUpStatus { schedule, done, due, overdue: due.saturating_sub(done), next_due }
}

// ───────────────────────────── the audit draw (R-CHR-2) ─────────────────────────────

/// The minimum share of a month's new cards drawn, basis points.
pub const DRAW_BP: u64 = 1_000;

/// How many of `population` cards are drawn: at least 10 %, rounded up.
pub fn draw_size(population: usize) -> usize {
    (population as u64 * DRAW_BP).div_ceil(10_000) as usize
}

/// SplitMix64: small, fast, and fixed for ever (a recorded seed must reproduce its draw). Also the
/// demo's generator of made-up stays.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (rejection sampling, no modulo bias); `n` ≥ 1.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// Draws `draw_size(items.len())` of `items` (which the caller sorts, e.g. by card number) with `seed`.
/// Returns the indices drawn, in draw order.
pub fn draw(len: usize, seed: u64) -> Vec<usize> {
    let n = draw_size(len);
    let mut idx: Vec<usize> = (0..len).collect();
    let mut rng = SplitMix64(seed);
    for i in 0..n {
        let j = i + rng.below((len - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(n);
    idx
}

// ───────────────────────────── major-disease lists (R-MDT-1) ─────────────────────────────

/// A diagnosis code normalised for matching: upper case, without dots, spaces or dashes.
pub fn normalise_icd(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// Whether a diagnosis code falls under one of an entry's ICD-10 codes / prefixes.
pub fn icd_matches(diagnosis: &str, entry_codes: &[String]) -> bool {
    let d = normalise_icd(diagnosis);
    !d.is_empty() && entry_codes.iter().map(|c| normalise_icd(c)).any(|c| !c.is_empty() && d.starts_with(&c))
}

/// Whether a string looks like an ICD-10 code or prefix (a letter, two digits, then optionally a dot and
/// up to four more characters).
pub fn valid_icd(code: &str) -> bool {
    let b = code.trim().as_bytes();
    if b.len() < 3 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return false;
    }
    let rest = &b[3..];
    match rest.split_first() {
        None => true,
        Some((b'.', tail)) => (1..=4).contains(&tail.len()) && tail.iter().all(|c| c.is_ascii_alphanumeric()),
        Some(_) => rest.len() <= 4 && rest.iter().all(|c| c.is_ascii_alphanumeric()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn fees_split_in_halves_and_add_up() {
        assert_eq!(split_fee(5_000, true), FeeSplit { fund_fen: 2_500, public_health_fen: 2_500, person_fen: 0 });
        assert_eq!(split_fee(10_000, false), FeeSplit { fund_fen: 0, public_health_fen: 5_000, person_fen: 5_000 });
        assert_eq!(split_fee(5_001, true), FeeSplit { fund_fen: 2_501, public_health_fen: 2_500, person_fen: 0 });
        assert_eq!(Package::Intermediate.fee_fen(), 10_000);
        assert_eq!(Package::parse("中级包"), Some(Package::Intermediate));
        assert_eq!(Package::parse("高级包"), None);
    }

    #[test]
    fn sixty_percent_is_prepaid_and_the_rest_follows_delivered_services() {
        // 3 basic (2,500 each to the fund) and 1 intermediate (5,000): share 12,500, prepaid 7,500.
        let y = year_end([(2_500, true), (2_500, true), (2_500, false), (5_000, true)]);
        assert_eq!(y, YearEnd { fund_share_fen: 12_500, prepaid_fen: 7_500, earned_fen: 10_000, balance_fen: 2_500 });
        // Little delivered: the hospital returns part of the prepayment.
        let y = year_end([(5_000, false), (5_000, false), (5_000, true)]);
        assert_eq!((y.prepaid_fen, y.earned_fen, y.balance_fen), (9_000, 5_000, -4_000));
        assert_eq!(prepayment(1), 1, "0.6 fen rounds half up");
        assert_eq!(prepayment(0), 0);
    }

    #[test]
    fn key_chronic_patients_are_due_every_two_months() {
        let s = Schedule::of(["冠心病", "高血压"]);
        assert_eq!(s, Schedule::KeyChronic);
        assert_eq!(s.due(2018, 1), Some(d("2018-02-28")));
        assert_eq!(s.due(2020, 1), Some(d("2020-02-29")));
        assert_eq!(s.due(2018, 6), Some(d("2018-12-31")));
        assert_eq!(s.due(2018, 7), None);
        assert_eq!(s.due_by(d("2018-02-27")), 0);
        assert_eq!(s.due_by(d("2018-02-28")), 1);
        assert_eq!(s.due_by(d("2018-07-15")), 3);
        // Two made by mid-July (one in the year before does not count): one overdue since 30 June.
        let st = follow_up_status(s, &[d("2017-12-20"), d("2018-01-10"), d("2018-03-02")], d("2018-07-15"));
        assert_eq!((st.done, st.due, st.overdue, st.next_due), (2, 3, 1, Some(d("2018-06-30"))));
        // Made early, counted toward later ones.
        let st = follow_up_status(s, &[d("2018-01-02"), d("2018-01-03"), d("2018-01-04")], d("2018-06-30"));
        assert_eq!((st.done, st.due, st.overdue), (3, 3, 0));
    }

    #[test]
    fn the_six_further_diseases_need_one_a_year() {
        let s = Schedule::of(["骨关节炎"]);
        assert_eq!(s, Schedule::Yearly);
        assert_eq!(s.due_by(d("2018-12-30")), 0);
        let st = follow_up_status(s, &[], d("2018-12-31"));
        assert_eq!((st.due, st.overdue, st.next_due), (1, 1, Some(d("2018-12-31"))));
        let st = follow_up_status(s, &[d("2018-05-01")], d("2018-12-31"));
        assert_eq!((st.overdue, st.next_due), (0, None));
        assert_eq!(Schedule::of(["白内障"]), Schedule::None);
    }

    #[test]
    fn the_draw_is_at_least_ten_percent_and_reproducible() {
        assert_eq!(draw_size(0), 0);
        assert_eq!(draw_size(1), 1);
        assert_eq!(draw_size(10), 1);
        assert_eq!(draw_size(11), 2);
        assert_eq!(draw_size(250), 25);
        let a = draw(250, 20_180_601);
        assert_eq!(a, draw(250, 20_180_601), "the same seed gives the same draw");
        assert_ne!(a, draw(250, 20_180_602), "another seed another draw");
        assert_eq!(a.len(), 25);
        assert_eq!(draw(5, 7).len(), 1);
    }

    #[test]
    fn the_draw_of_a_recorded_seed_never_changes() {
        // Fixed values: if this fails, old audit records can no longer be reproduced.
        assert_eq!(draw(30, 1), PINNED_30_1.to_vec());
    }
    const PINNED_30_1: [usize; 3] = [5, 22, 24];

    #[test]
    fn diagnoses_match_by_prefix() {
        let e = vec!["C16".to_string(), "Q21.0".to_string()];
        assert!(icd_matches("C16.900", &e));
        assert!(icd_matches("c16", &e));
        assert!(icd_matches("Q21.001", &e));
        assert!(!icd_matches("Q21.1", &e));
        assert!(!icd_matches("C15", &e));
        assert!(!icd_matches("", &e));
        assert!(valid_icd("C16") && valid_icd("C91.0") && valid_icd("N18.5") && valid_icd("C91000"));
        assert!(!valid_icd("c16") && !valid_icd("C1") && !valid_icd("高血压") && !valid_icd("C16.") && !valid_icd("C16.12345"));
    }

    proptest! {
        #[test]
        fn splits_always_add_up(fee in 0i64..10_000_000, insured: bool) {
            let s = split_fee(fee, insured);
            prop_assert_eq!(s.total(), fee);
            prop_assert!(s.fund_fen >= 0 && s.public_health_fen >= 0 && s.person_fen >= 0);
            prop_assert!((s.fund_fen + s.person_fen - s.public_health_fen).abs() <= 1);
        }

        #[test]
        fn draws_are_distinct_in_range_and_reproducible(len in 0usize..2_000, seed: u64) {
            let a = draw(len, seed);
            prop_assert_eq!(a.len(), draw_size(len));
            prop_assert!(a.len() * 10 >= len);
            let mut s = a.clone();
            s.sort_unstable();
            s.dedup();
            prop_assert_eq!(s.len(), a.len());
            prop_assert!(a.iter().all(|&i| i < len));
            prop_assert_eq!(a, draw(len, seed));
        }

        #[test]
        fn follow_ups_overdue_never_exceed_what_is_due(k in 0usize..12, day in 0i32..365) {
            let as_of = Date::new(2018, 1, 1).unwrap().add_days(day);
            let fus: Vec<Date> = (0..k).map(|i| Date::new(2018, 1, 1).unwrap().add_days(i as i32 * 30)).collect();
            let st = follow_up_status(Schedule::KeyChronic, &fus, as_of);
            prop_assert!(st.overdue <= st.due && st.due <= 6);
            prop_assert_eq!(st.overdue, st.due.saturating_sub(st.done));
        }
    }
}
