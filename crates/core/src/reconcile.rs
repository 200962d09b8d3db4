//! Reconciliation (数据比对, R-ENR-2) as pure rules: what is wrong with one person, given that person's
//! records in each roster as stored in the registry. The store feeds every person who has a record that
//! some class looks at (`is_candidate`) through [`classify`] in one pass over the rosters; nothing here
//! knows where the records come from. The classes and their wording are those of docs/ROSTERS.md.
//!
//! Dates are the registry's: a period is in force on day `d` when it started on or before `d` and has no
//! end or ends after `d` (ends are exclusive); a death counts from its day on, whatever its end.

use crate::{Date, Identity};

/// A reconciliation class: id, Chinese name, the action it calls for (the order of [`Class::ALL`]).
pub const CLASSES: [(&str, &str, &str); 12] = [
    ("poor_not_insured", "贫困人口未参保", "参保"),
    ("new_poor_not_insured", "新识别贫困人口/新生儿未参保", "参保（新增一人、标识一人、参保一人）"),
    ("poor_not_flagged", "已参保未标识贫困身份", "标识"),
    ("flagged_not_poor", "已标识但已不是贫困人口", "取消标识"),
    ("dead_still_counted", "已死亡仍在册或参保", "清理"),
    ("military_still_counted", "服兵役仍在册参保", "清理"),
    ("insured_elsewhere", "异地参保", "核实"),
    ("duplicate_person", "重复人员", "去重"),
    ("marginal_not_insured", "监测对象未参保", "参保"),
    ("marginal_not_flagged", "监测对象未标识", "标识"),
    ("subsidy_missing", "应资助未资助", "补资助"),
    ("subsidy_excess", "重复或超额资助", "追回"),
];

/// The class of an id, with its name and action.
pub fn class_info(id: &str) -> Option<(&'static str, &'static str, &'static str)> {
    CLASSES.iter().find(|c| c.0 == id).copied()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    PoorNotInsured = 0,
    NewPoorNotInsured = 1,
    PoorNotFlagged = 2,
    FlaggedNotPoor = 3,
    DeadStillCounted = 4,
    MilitaryStillCounted = 5,
    InsuredElsewhere = 6,
    DuplicatePerson = 7,
    MarginalNotInsured = 8,
    MarginalNotFlagged = 9,
    SubsidyMissing = 10,
    SubsidyExcess = 11,
}

impl Class {
    pub const ALL: [Class; 12] = [
        Class::PoorNotInsured,
        Class::NewPoorNotInsured,
        Class::PoorNotFlagged,
        Class::FlaggedNotPoor,
        Class::DeadStillCounted,
        Class::MilitaryStillCounted,
        Class::InsuredElsewhere,
        Class::DuplicatePerson,
        Class::MarginalNotInsured,
        Class::MarginalNotFlagged,
        Class::SubsidyMissing,
        Class::SubsidyExcess,
    ];
    pub fn id(self) -> &'static str {
        CLASSES[self as usize].0
    }
    pub fn name_zh(self) -> &'static str {
        CLASSES[self as usize].1
    }
    pub fn action_zh(self) -> &'static str {
        CLASSES[self as usize].2
    }
}

/// A special state of the registry (R-REG-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    Death,
    Military,
}

impl StateKind {
    /// The stored id (`special_states.state`); other states are no class's concern.
    pub fn parse(s: &str) -> Option<StateKind> {
        match s {
            "death" => Some(StateKind::Death),
            "military" => Some(StateKind::Military),
            _ => None,
        }
    }
}

/// A span of days: from `start`, until `end` (exclusive) or open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Date,
    pub end: Option<Date>,
}

impl Span {
    pub fn in_force(&self, d: Date) -> bool {
        self.start <= d && self.end.is_none_or(|e| e > d)
    }
}

/// One current (not superseded) enrolment record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolment {
    pub year: i64,
    pub insured: bool,
    /// 参保地: the county (6-digit division) where the person is insured.
    pub insured_admdvs: String,
    /// The identities flagged in the insurance system, as an `IdentitySet`'s bits.
    pub flags: u16,
    pub premium_fen: i64,
    pub subsidy_fen: i64,
    /// When the insurance system flagged the identities (标识日期), if it says.
    pub flag_date: Option<Date>,
}

/// What the registry holds about one person that the classes look at: the person (when on the poverty
/// or household roster), identity periods and special states not retracted, open roster conflicts, and
/// current enrolments of every year.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    pub identities: Vec<(Identity, Span)>,
    pub states: Vec<(StateKind, Span)>,
    /// The details of the person's open roster conflicts (重复人员).
    pub conflicts: Vec<String>,
    pub enrolments: Vec<Enrolment>,
}

/// The person's own row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub village_code: Option<String>,
    pub birth_date: Date,
}

/// How the expected premium subsidy is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubsidyRule {
    /// The policy's subsidies per class (`[[policy.subsidies]]`): a person's expected subsidy is the
    /// largest of those of the classes they hold on the day (`None` = the whole individual premium); the
    /// first entry of a class counts.
    ByClass(Vec<(Identity, Option<i64>)>),
    /// One fixed amount per person (Yunnan 2021: 180 yuan).
    Standard(i64),
    /// No amount known: a subsidised class with a premium and no subsidy is missing one, a subsidy above
    /// the premium is excess.
    Unknown,
}

/// The day and parameters of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub as_of: Date,
    /// Days within which a newly registered poor person counts as "new" (新增一人); 0 = 90.
    pub new_window_days: i32,
    pub subsidy: SubsidyRule,
}

/// One finding of a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub class: Class,
    pub detail: String,
}

const POOR_BITS: u16 = (1 << Identity::RegisteredPoor as u16) | (1 << Identity::ExitedPoor as u16);
const MARGINAL_BITS: u16 = 1 << Identity::Marginal as u16;
/// Who is subsidised when the policy names no classes.
const SUBSIDISED_BY_DEFAULT: [Identity; 4] = [Identity::RegisteredPoor, Identity::ExitedPoor, Identity::Dibao, Identity::ExtremePoor];

/// Whether any class could hold a person with these records in `year`: an identity period, a special
/// state, an open conflict, or an enrolment of the year that is flagged or subsidised. Everyone else
/// (most of a county) is not looked at; [`classify`] of them finds nothing while premiums and subsidies
/// are not negative.
pub fn is_candidate(r: &Records, year: i64) -> bool {
    !r.identities.is_empty()
        || !r.states.is_empty()
        || !r.conflicts.is_empty()
        || r.enrolments.iter().any(|e| e.year == year && (e.flags != 0 || e.subsidy_fen != 0))
}

/// The unit a person's findings are counted in: the village, or for a person on no village roster the
/// county of their enrolment (the largest code of their current enrolments of any year).
pub fn unit_of(p: &Person, r: &Records) -> Option<String> {
    p.village_code.clone().or_else(|| r.enrolments.iter().map(|e| e.insured_admdvs.as_str()).max().map(str::to_string))
}

/// What a person is on a day, as the classes and the enrolment indicators (R-ENR-3) count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// Registered or exited poor (四不摘).
    pub poor: bool,
    /// A monitored / marginal person (边缘户、监测对象), whether or not also poor.
    pub marginal: bool,
    /// Died on or before the day.
    pub dead: bool,
    /// Serving in the army on the day.
    pub serving: bool,
    /// Insured (正常参保) in the day's year.
    pub insured: bool,
}

pub fn standing(r: &Records, d: Date) -> Standing {
    let y = i64::from(d.year());
    let holds = |ids: &[Identity]| r.identities.iter().any(|(i, s)| ids.contains(i) && s.in_force(d));
    Standing {
        poor: holds(&[Identity::RegisteredPoor, Identity::ExitedPoor]),
        marginal: holds(&[Identity::Marginal]),
        dead: r.states.iter().any(|(k, s)| *k == StateKind::Death && s.start <= d),
        serving: r.states.iter().any(|(k, s)| *k == StateKind::Military && s.in_force(d)),
        insured: r.enrolments.iter().any(|e| e.year == y && e.insured),
    }
}

/// The flagging delays of a person on day `d` (R-ENR-3): for each registered-poor period in force and
/// each enrolment of the year flagged poor with a flag date, the days from the period's start to the
/// flag (0 if flagged first).
pub fn flag_delays(r: &Records, d: Date) -> impl Iterator<Item = i64> + '_ {
    let y = i64::from(d.year());
    let periods = r.identities.iter().filter(move |(i, s)| *i == Identity::RegisteredPoor && s.in_force(d));
    periods.flat_map(move |(_, s)| {
        r.enrolments
            .iter()
            .filter(move |e| e.year == y && e.flags & POOR_BITS != 0)
            .filter_map(move |e| e.flag_date.map(|f| i64::from((f.to_days() - s.start.to_days()).max(0))))
    })
}

/// The first six characters of a village code: its county.
fn county_of(village: &str) -> &str {
    village.char_indices().nth(6).map_or(village, |(i, _)| &village[..i])
}

/// The findings of one person on `rules.as_of`, in the order of [`Class::ALL`].
pub fn classify(p: &Person, r: &Records, rules: &Rules) -> Vec<Finding> {
    let d = rules.as_of;
    let y = i64::from(d.year());
    let window = if rules.new_window_days > 0 { rules.new_window_days } else { 90 };
    let recent = d.add_days(-window);
    let holds = |ids: &[Identity]| r.identities.iter().any(|(i, s)| ids.contains(i) && s.in_force(d));
    let Standing { poor, marginal, dead, serving, insured } = standing(r, d);
    let year: Vec<&Enrolment> = r.enrolments.iter().filter(|e| e.year == y).collect();
    let village = p.village_code.as_deref();
    // Insured in the person's own county, or not on a village roster (nothing to compare with).
    let local_or_unplaced = |e: &Enrolment| village.is_none_or(|v| e.insured_admdvs == county_of(v));
    let new_poor = p.birth_date >= Date::new(d.year(), 1, 1).unwrap_or(d)
        || r.identities.iter().any(|(i, s)| *i == Identity::RegisteredPoor && s.start > recent && s.start <= d);

    // The expected subsidy for an enrolment, by the classes held on the day (None: no class of the rule).
    let by_class = |e: &Enrolment| -> Option<i64> {
        let SubsidyRule::ByClass(classes) = &rules.subsidy else { return None };
        r.identities
            .iter()
            .filter(|(_, s)| s.in_force(d))
            .filter_map(|(i, _)| classes.iter().find(|(c, _)| c == i).map(|(_, amount)| amount.unwrap_or(e.premium_fen)))
            .max()
    };
    let eligible = match &rules.subsidy {
        SubsidyRule::ByClass(classes) => r.identities.iter().any(|(i, s)| s.in_force(d) && classes.iter().any(|(c, _)| c == i)),
        _ => holds(&SUBSIDISED_BY_DEFAULT),
    };
    let subsidy_low = |e: &Enrolment| match &rules.subsidy {
        SubsidyRule::ByClass(_) => e.subsidy_fen < by_class(e).unwrap_or(0),
        SubsidyRule::Standard(std) => e.subsidy_fen < *std,
        SubsidyRule::Unknown => e.subsidy_fen == 0 && e.premium_fen > 0,
    };
    let subsidy_high = |e: &Enrolment| match &rules.subsidy {
        SubsidyRule::ByClass(_) => e.subsidy_fen > e.premium_fen || e.subsidy_fen > by_class(e).unwrap_or(e.premium_fen),
        SubsidyRule::Standard(std) => e.subsidy_fen > e.premium_fen || e.subsidy_fen > *std,
        SubsidyRule::Unknown => e.subsidy_fen > e.premium_fen,
    };

    let mut out = Vec::new();
    let mut found = |class: Class, detail: String| out.push(Finding { class, detail });
    let counted = !dead && !serving;
    if poor && counted && !insured {
        if new_poor {
            found(Class::NewPoorNotInsured, "新识别或新出生，尚未参保".into());
        } else {
            found(Class::PoorNotInsured, "无当年有效参保记录".into());
        }
    }
    if poor && counted && year.iter().any(|e| e.insured && e.flags & POOR_BITS == 0 && local_or_unplaced(e)) {
        found(Class::PoorNotFlagged, "医保系统未标识建档立卡身份".into());
    }
    if !poor && !dead && year.iter().any(|e| e.flags & POOR_BITS != 0) {
        found(Class::FlaggedNotPoor, "扶贫部门已不认定为贫困人口".into());
    }
    if dead && (poor || insured) {
        let day = r.states.iter().filter(|(k, _)| *k == StateKind::Death).map(|(_, s)| s.start).min();
        found(Class::DeadStillCounted, format!("死亡日期 {}", day.map_or(String::new(), yyyymmdd)));
    }
    if serving && !dead && insured {
        found(Class::MilitaryStillCounted, "服役期间参加城乡居民医保".into());
    }
    if let Some(v) = village {
        if poor && !dead && year.iter().any(|e| e.insured && e.insured_admdvs != county_of(v)) {
            let place = year.iter().map(|e| e.insured_admdvs.as_str()).min().unwrap_or_default();
            found(Class::InsuredElsewhere, format!("参保地 {place}"));
        }
    }
    if let Some(detail) = r.conflicts.iter().min() {
        found(Class::DuplicatePerson, detail.clone());
    }
    if marginal && !poor && counted && !insured {
        found(Class::MarginalNotInsured, "监测对象无当年有效参保记录".into());
    }
    if marginal && !poor && counted && year.iter().any(|e| e.insured && e.flags & MARGINAL_BITS == 0) {
        found(Class::MarginalNotFlagged, "医保系统未标识监测对象身份".into());
    }
    if eligible && !dead && year.iter().any(|e| e.insured && local_or_unplaced(e) && subsidy_low(e)) {
        let least = year.iter().map(|e| e.subsidy_fen).min().unwrap_or_default();
        found(Class::SubsidyMissing, format!("资助 {least} 分"));
    }
    if year.iter().any(|e| e.insured && subsidy_high(e)) {
        let most = year.iter().map(|e| e.subsidy_fen).max().unwrap_or_default();
        let premium = year.iter().map(|e| e.premium_fen).max().unwrap_or_default();
        found(Class::SubsidyExcess, format!("资助 {most} 分，个人缴费 {premium} 分"));
    }
    out.sort_by_key(|f| f.class);
    out
}

/// A date as the registry prints it in details: yyyymmdd.
fn yyyymmdd(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: u16, m: u8, d: u8) -> Date {
        Date::new(y, m, d).unwrap()
    }
    fn open(start: Date) -> Span {
        Span { start, end: None }
    }
    fn rules() -> Rules {
        Rules { as_of: day(2018, 12, 31), new_window_days: 90, subsidy: SubsidyRule::Unknown }
    }
    fn person(village: Option<&str>) -> Person {
        Person { village_code: village.map(str::to_string), birth_date: day(1970, 5, 1) }
    }
    fn enrolment(year: i64, insured: bool, admdvs: &str, flags: u16, premium: i64, subsidy: i64) -> Enrolment {
        Enrolment { year, insured, insured_admdvs: admdvs.into(), flags, premium_fen: premium, subsidy_fen: subsidy, flag_date: None }
    }
    fn classes(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|f| f.class.id()).collect()
    }
    const V: &str = "620422100001";

    #[test]
    fn the_class_table_and_the_enum_agree() {
        for (k, c) in Class::ALL.iter().enumerate() {
            assert_eq!(*c as usize, k);
            assert_eq!(class_info(c.id()).unwrap().1, c.name_zh());
        }
        assert!(class_info("nonsense").is_none());
    }

    #[test]
    fn a_poor_person_without_insurance_is_new_only_if_registered_lately_or_born_this_year() {
        let mut r = Records { identities: vec![(Identity::RegisteredPoor, open(day(2015, 3, 1)))], ..Default::default() };
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["poor_not_insured"]);
        r.identities[0].1.start = day(2018, 11, 1);
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["new_poor_not_insured"]);
        // 2018-11-01 is inside the 90-day window before 2018-12-31; 2018-10-01 (91 days) is not.
        r.identities[0].1.start = day(2018, 10, 1);
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["poor_not_insured"]);
        r.identities[0].1.start = day(2015, 3, 1);
        let baby = Person { village_code: Some(V.into()), birth_date: day(2018, 1, 1) };
        assert_eq!(classes(&classify(&baby, &r, &rules())), ["new_poor_not_insured"]);
        // Insured in the year (any county): not "not insured".
        r.enrolments.push(enrolment(2018, true, "620422", POOR_BITS, 18_000, 18_000));
        assert!(classify(&person(Some(V)), &r, &rules()).is_empty());
        // An enrolment of another year does not count.
        r.enrolments[0].year = 2017;
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["poor_not_insured"]);
    }

    #[test]
    fn a_period_that_ended_or_has_not_begun_is_not_held() {
        let ended = Span { start: day(2015, 1, 1), end: Some(day(2018, 12, 31)) };
        let r = Records { identities: vec![(Identity::RegisteredPoor, ended)], ..Default::default() };
        assert!(classify(&person(Some(V)), &r, &rules()).is_empty());
        let ends_after = Span { start: day(2015, 1, 1), end: Some(day(2019, 1, 1)) };
        let r = Records { identities: vec![(Identity::RegisteredPoor, ends_after)], ..Default::default() };
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["poor_not_insured"]);
        let later = Records { identities: vec![(Identity::RegisteredPoor, open(day(2019, 1, 1)))], ..Default::default() };
        assert!(classify(&person(Some(V)), &later, &rules()).is_empty());
    }

    #[test]
    fn the_dead_and_the_serving_are_cleared_not_insured() {
        let poor = (Identity::ExitedPoor, open(day(2015, 3, 1)));
        let death = (StateKind::Death, Span { start: day(2018, 6, 2), end: Some(day(2018, 6, 3)) });
        let r = Records { identities: vec![poor], states: vec![death], ..Default::default() };
        let f = classify(&person(Some(V)), &r, &rules());
        assert_eq!(classes(&f), ["dead_still_counted"]);
        assert_eq!(f[0].detail, "死亡日期 20180602");
        // A death after the day does not count yet.
        let r = Records { states: vec![(StateKind::Death, open(day(2019, 2, 1)))], ..r };
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["poor_not_insured"]);
        let soldier = Records {
            states: vec![(StateKind::Military, open(day(2017, 9, 1)))],
            enrolments: vec![enrolment(2018, true, "620422", 0, 18_000, 0)],
            ..Default::default()
        };
        assert_eq!(classes(&classify(&person(Some(V)), &soldier, &rules())), ["military_still_counted"]);
    }

    #[test]
    fn insured_elsewhere_names_the_smallest_county_of_the_year() {
        let r = Records {
            identities: vec![(Identity::RegisteredPoor, open(day(2015, 3, 1)))],
            enrolments: vec![enrolment(2018, true, "640502", POOR_BITS, 18_000, 18_000), enrolment(2018, false, "620421", 0, 0, 0)],
            ..Default::default()
        };
        let f = classify(&person(Some(V)), &r, &rules());
        assert_eq!(classes(&f), ["insured_elsewhere"]);
        assert_eq!(f[0].detail, "参保地 620421");
        // Not flagged, but insured elsewhere: only the elsewhere county is told (its flag is not ours).
        let r = Records { enrolments: vec![enrolment(2018, true, "640502", 0, 18_000, 18_000)], ..r };
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["insured_elsewhere"]);
        // Off the village rosters there is nothing to compare with.
        assert_eq!(classes(&classify(&person(None), &r, &rules())), ["poor_not_flagged"]);
    }

    #[test]
    fn flags_marginal_conflicts_and_units() {
        let flagged = Records { enrolments: vec![enrolment(2018, true, "620422", 0b1, 18_000, 0)], ..Default::default() };
        assert_eq!(classes(&classify(&person(Some(V)), &flagged, &rules())), ["flagged_not_poor"]);
        let marginal = Records {
            identities: vec![(Identity::Marginal, open(day(2018, 2, 1)))],
            enrolments: vec![enrolment(2018, true, "620422", 0, 18_000, 0)],
            conflicts: vec!["户编号 B".into(), "户编号 A".into()],
            ..Default::default()
        };
        let f = classify(&person(None), &marginal, &rules());
        assert_eq!(classes(&f), ["duplicate_person", "marginal_not_flagged"]);
        assert_eq!(f[0].detail, "户编号 A");
        let r = Records {
            enrolments: vec![enrolment(2017, true, "620421", 0, 0, 0), enrolment(2018, true, "620422", 0, 0, 0)],
            ..Default::default()
        };
        assert_eq!(unit_of(&person(None), &r).as_deref(), Some("620422"));
        assert_eq!(unit_of(&person(Some(V)), &r).as_deref(), Some(V));
        assert_eq!(unit_of(&person(None), &Records::default()), None);
    }

    #[test]
    fn subsidies_by_rule() {
        let dibao = (Identity::Dibao, open(day(2016, 1, 1)));
        let mut r =
            Records { identities: vec![dibao], enrolments: vec![enrolment(2018, true, "620422", 0, 18_000, 0)], ..Default::default() };
        assert_eq!(classes(&classify(&person(Some(V)), &r, &rules())), ["subsidy_missing"]);
        let standard = Rules { subsidy: SubsidyRule::Standard(18_000), ..rules() };
        r.enrolments[0].subsidy_fen = 17_999;
        let f = classify(&person(Some(V)), &r, &standard);
        assert_eq!((classes(&f), f[0].detail.as_str()), (vec!["subsidy_missing"], "资助 17999 分"));
        r.enrolments[0].subsidy_fen = 18_001;
        let f = classify(&person(Some(V)), &r, &standard);
        assert_eq!((classes(&f), f[0].detail.as_str()), (vec!["subsidy_excess"], "资助 18001 分，个人缴费 18000 分"));
        // By class: dibao 100 yuan, the extreme poor the whole premium; the largest held counts.
        let by_class =
            Rules { subsidy: SubsidyRule::ByClass(vec![(Identity::Dibao, Some(10_000)), (Identity::ExtremePoor, None)]), ..rules() };
        r.enrolments[0].subsidy_fen = 10_000;
        assert!(classify(&person(Some(V)), &r, &by_class).is_empty());
        r.identities.push((Identity::ExtremePoor, open(day(2017, 1, 1))));
        assert_eq!(classes(&classify(&person(Some(V)), &r, &by_class)), ["subsidy_missing"]);
        r.enrolments[0].subsidy_fen = 18_000;
        assert!(classify(&person(Some(V)), &r, &by_class).is_empty());
        // A class the rule does not name is capped by the premium only; a standard of 0 makes any subsidy excess.
        let only_marginal = Records {
            identities: vec![(Identity::Marginal, open(day(2016, 1, 1)))],
            enrolments: vec![enrolment(2018, true, "620422", MARGINAL_BITS, 18_000, 5_000)],
            ..Default::default()
        };
        assert!(classify(&person(Some(V)), &only_marginal, &by_class).is_empty());
        let strict = Rules { subsidy: SubsidyRule::Standard(0), ..rules() };
        assert_eq!(classes(&classify(&person(Some(V)), &only_marginal, &strict)), ["subsidy_excess"]);
    }

    #[test]
    fn standing_and_flag_delays() {
        let mut r = Records {
            identities: vec![(Identity::RegisteredPoor, open(day(2018, 3, 1))), (Identity::Marginal, open(day(2017, 1, 1)))],
            enrolments: vec![Enrolment { flag_date: Some(day(2018, 3, 11)), ..enrolment(2018, true, "620422", 0b1, 18_000, 18_000) }],
            ..Default::default()
        };
        let s = standing(&r, day(2018, 12, 31));
        assert!(s.poor && s.marginal && s.insured && !s.dead && !s.serving);
        assert_eq!(flag_delays(&r, day(2018, 12, 31)).collect::<Vec<_>>(), [10]);
        // Flagged before the period began counts as no delay; unflagged or another year's, not at all.
        r.enrolments[0].flag_date = Some(day(2018, 1, 1));
        assert_eq!(flag_delays(&r, day(2018, 12, 31)).collect::<Vec<_>>(), [0]);
        r.enrolments[0].flags = 0b100;
        assert_eq!(flag_delays(&r, day(2018, 12, 31)).count(), 0);
        assert_eq!(flag_delays(&r, day(2019, 6, 1)).count(), 0);
    }

    #[test]
    fn who_is_a_candidate() {
        assert!(!is_candidate(&Records::default(), 2018));
        let plain = Records { enrolments: vec![enrolment(2018, true, "620422", 0, 18_000, 0)], ..Default::default() };
        assert!(!is_candidate(&plain, 2018));
        assert!(classify(&person(Some(V)), &plain, &rules()).is_empty());
        let subsidised = Records { enrolments: vec![enrolment(2018, true, "620422", 0, 18_000, 1)], ..Default::default() };
        assert!(is_candidate(&subsidised, 2018) && !is_candidate(&subsidised, 2019));
    }
}
