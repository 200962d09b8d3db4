//! Supervision rules (POLICY §4): which villages are put under 挂牌督战 and why (R-SUP-1), when the
//! monthly reports are due and whether they came on time (R-SUP-3), assessment forms as data and
//! how an answer scores (R-SUP-4), what makes a household fail the exit check (R-EXIT-1), and how a
//! hospital's annual budget splits into the 60 % prepayment and the assessed 40 % (R-FUND-1).
//!
//! Readings taken (noted in docs/ARCHITECTURE.md):
//! - Seed 000 lists the selection criteria side by side ("贫困发生率1－3%、剩余贫困30人以上、边缘户100人
//!   以上"); a village meeting **any** of them is a candidate, and every criterion it meets is its reason.
//!   Incidence is remaining (not exited) registered poor over the village's living registered residents.
//! - The 40 % after assessment is paid in proportion to the assessment result (a share in basis points);
//!   what is not paid is withheld. All parts are integer fen and add up to the budget.

use std::collections::HashSet;

use serde::Deserialize;

use crate::date::Date;
use crate::money::div_round_half_away;

// ───────────────────────────── village selection (R-SUP-1) ─────────────────────────────

/// The thresholds of data/supervision/thresholds.toml.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Poverty incidence range, basis points, inclusive (100–300 = 1–3 %).
    pub incidence_min_bp: i64,
    pub incidence_max_bp: i64,
    /// At least this many remaining poor.
    pub remaining_poor_min: i64,
    /// At least this many marginal-household people.
    pub marginal_min: i64,
}

impl Thresholds {
    pub fn parse(text: &str) -> Result<Thresholds, String> {
        let t: Thresholds = toml::from_str(text).map_err(|e| format!("督战村选择条件配置无效：{e}"))?;
        if t.incidence_min_bp < 0 || t.incidence_max_bp < t.incidence_min_bp || t.incidence_max_bp > 10_000 {
            return Err(format!("督战村选择条件配置无效：贫困发生率范围 {}–{} 万分点", t.incidence_min_bp, t.incidence_max_bp));
        }
        if t.remaining_poor_min < 1 || t.marginal_min < 1 {
            return Err("督战村选择条件配置无效：人数条件须为正数".into());
        }
        Ok(t)
    }
}

/// What the registry says about a village on a date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VillageFacts {
    /// Living registered residents.
    pub population: i64,
    /// Registered poor not exited.
    pub remaining_poor: i64,
    /// Monitored / marginal-household people (not poor).
    pub marginal: i64,
}

impl VillageFacts {
    /// Poverty incidence in basis points (rounded half up); `None` for an empty village.
    pub fn incidence_bp(&self) -> Option<i64> {
        (self.population > 0).then(|| div_round_half_away(self.remaining_poor * 10_000, self.population))
    }
}

/// Every criterion a village meets, in Chinese, each naming the figure and the threshold. Empty: not a
/// candidate.
pub fn selection_reasons(f: &VillageFacts, t: &Thresholds) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(bp) = f.incidence_bp() {
        if (t.incidence_min_bp..=t.incidence_max_bp).contains(&bp) {
            out.push(format!("贫困发生率 {}（{}–{}）", pct(bp), pct(t.incidence_min_bp), pct(t.incidence_max_bp)));
        }
    }
    if f.remaining_poor >= t.remaining_poor_min {
        out.push(format!("剩余贫困人口 {} 人（≥{}）", f.remaining_poor, t.remaining_poor_min));
    }
    if f.marginal >= t.marginal_min {
        out.push(format!("边缘户人口 {} 人（≥{}）", f.marginal, t.marginal_min));
    }
    out
}

/// Basis points as a percentage with two decimals.
pub fn pct(bp: i64) -> String {
    format!("{}.{:02}%", bp / 100, (bp % 100).abs())
}

// ───────────────────────────── reports (R-SUP-3) ─────────────────────────────

/// The monthly reports that have a due day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// 挂牌督战进展 from each county to the city, by the 18th (seed 000).
    CountyProgress,
    /// 月度信息交换: insurance, civil affairs and the insurer to the health department, by the 10th (001).
    InfoExchange,
}

pub const REPORT_KINDS: [ReportKind; 2] = [ReportKind::CountyProgress, ReportKind::InfoExchange];

impl ReportKind {
    pub fn id(self) -> &'static str {
        match self {
            ReportKind::CountyProgress => "county_progress",
            ReportKind::InfoExchange => "info_exchange",
        }
    }
    pub fn parse(s: &str) -> Option<ReportKind> {
        REPORT_KINDS.into_iter().find(|k| k.id() == s)
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            ReportKind::CountyProgress => "挂牌督战工作进展月报",
            ReportKind::InfoExchange => "健康扶贫月度信息交换",
        }
    }
    /// The day of the month the report is due (inclusive).
    pub fn due_day(self) -> u8 {
        match self {
            ReportKind::CountyProgress => 18,
            ReportKind::InfoExchange => 10,
        }
    }
    /// The units that report: (code, name).
    pub fn units(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ReportKind::CountyProgress => &[("county", "县（区）医保局")],
            ReportKind::InfoExchange => &[("insurance", "医保部门"), ("civil", "民政部门"), ("insurer", "商业保险公司")],
        }
    }
    /// Due date of the report *on* month `period` (yyyymm): the month's work is reported in that month
    /// (the county's progress by the 18th) — the period is the month the report is due in.
    pub fn due(self, period: i64) -> Option<Date> {
        let (y, m) = (period / 100, period % 100);
        Date::new(u16::try_from(y).ok()?, u8::try_from(m).ok()?, self.due_day())
    }
}

/// How a report stands on `today`: submitted on time, late (days late), or missing (overdue or not yet due).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportStatus {
    OnTime,
    Late(i32),
    Overdue(i32),
    NotDue,
}

pub fn report_status(due: Date, submitted: Option<Date>, today: Date) -> ReportStatus {
    match submitted {
        Some(s) if s <= due => ReportStatus::OnTime,
        Some(s) => ReportStatus::Late(s.to_days() - due.to_days()),
        None if today > due => ReportStatus::Overdue(today.to_days() - due.to_days()),
        None => ReportStatus::NotDue,
    }
}

impl ReportStatus {
    pub fn name_zh(self) -> String {
        match self {
            ReportStatus::OnTime => "按时".into(),
            ReportStatus::Late(d) => format!("迟报 {d} 天"),
            ReportStatus::Overdue(d) => format!("逾期未报 {d} 天"),
            ReportStatus::NotDue => "未到期".into(),
        }
    }
    /// Counted in the on-time rate's denominator (due by now).
    pub fn counted(self) -> bool {
        self != ReportStatus::NotDue
    }
}

// ───────────────────────────── score sheets (R-SUP-4) ─────────────────────────────

/// How an item is scored by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreRule {
    /// 是: full points; 否: 0.
    Yes,
    /// 否: full points; 是: 0.
    No,
    /// 否: full points; 是: the annual rating is 差 outright.
    VetoNo,
    /// 0..=points judged by hand.
    Partial,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormItem {
    pub no: String,
    pub section: String,
    pub indicator: String,
    pub points: i64,
    #[serde(default)]
    pub accountable: String,
    pub rule: ScoreRule,
    #[serde(default)]
    pub evaluation: String,
    /// The data check that can answer the item (`AUTO_CHECKS`).
    #[serde(default)]
    pub auto: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Form {
    pub id: String,
    pub title: String,
    pub source: String,
    pub unit: String,
    #[serde(default)]
    pub exact: bool,
    pub items: Vec<FormItem>,
}

/// The data checks a form item may name: (key, what it checks, in Chinese).
pub const AUTO_CHECKS: [(&str, &str); 14] = [
    ("poor_all_insured", "建档立卡贫困人口参保率 100%"),
    ("critical_2000_ratio_85_fallback_3000", "大病保险起付线 ≤2000 元、合规费用实际补偿比 ≥85%、救助兜底 3000 元"),
    ("critical_2000", "贫困人口大病保险起付线 ≤2000 元"),
    ("ratio_85", "贫困住院患者合规费用实际补偿比 ≥85%"),
    ("fallback_3000", "合规自付年累计超 3000 元部分由救助兜底"),
    ("prepay_60_no_deposit_no_deductible", "医保基金 60% 预付已拨付；贫困人口不设起付线"),
    ("one_stop", "贫困患者住院“一站式”结算"),
    ("mdt_treatment", "大病专项救治率 100%"),
    ("fdc_contract_95", "建档立卡贫困人口家庭医生签约率 ≥95%"),
    ("escort_case", "当年有“送人就医”服务记录"),
    ("chronic_cards_90", "慢病随访规范率 ≥90% 且应办未办慢病卡少于 2 人"),
    ("poor_subsidy", "贫困人口参保资助全部到位"),
    ("remote_80_in_county_90", "远程会诊覆盖县级医院和 ≥80% 的乡镇卫生院；2020 年起县域内就诊率 ≥90%（定期报表、结算）"),
    ("awareness_95", "健康扶贫政策群众知晓率 ≥95%（入户调查报表）"),
];

impl Form {
    pub fn parse(text: &str) -> Result<Form, String> {
        let f: Form = toml::from_str(text).map_err(|e| format!("考核表配置无效：{e}"))?;
        if f.items.is_empty() {
            return Err(format!("考核表“{}”没有考核项", f.title));
        }
        let mut seen = HashSet::new();
        for it in &f.items {
            if !seen.insert(it.no.as_str()) {
                return Err(format!("考核表“{}”：序号 {} 重复", f.title, it.no));
            }
            if it.points <= 0 {
                return Err(format!("考核表“{}”第 {} 项：分值须为正数", f.title, it.no));
            }
            if let Some(a) = &it.auto {
                if !AUTO_CHECKS.iter().any(|(k, _)| k == a) {
                    return Err(format!("考核表“{}”第 {} 项：未知的自动评分项“{a}”", f.title, it.no));
                }
            }
        }
        Ok(f)
    }
    pub fn total_points(&self) -> i64 {
        self.items.iter().map(|i| i.points).sum()
    }
    pub fn item(&self, no: &str) -> Option<&FormItem> {
        self.items.iter().find(|i| i.no == no)
    }
}

/// An answer to an item: 是 / 否, or points given by hand (partial items).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    Points(i64),
}

impl Answer {
    pub fn parse(s: &str) -> Option<Answer> {
        match s.trim() {
            "是" | "yes" => Some(Answer::Yes),
            "否" | "no" => Some(Answer::No),
            n => n.parse().ok().map(Answer::Points),
        }
    }
    pub fn text(self) -> String {
        match self {
            Answer::Yes => "是".into(),
            Answer::No => "否".into(),
            Answer::Points(p) => p.to_string(),
        }
    }
}

/// The points an answer earns and whether it vetoes the annual rating; `Err` for an answer that does
/// not fit the item (in Chinese).
pub fn score(item: &FormItem, answer: Answer) -> Result<(i64, bool), String> {
    match (item.rule, answer) {
        (ScoreRule::Yes, Answer::Yes) | (ScoreRule::No | ScoreRule::VetoNo, Answer::No) => Ok((item.points, false)),
        (ScoreRule::Yes | ScoreRule::No, Answer::No | Answer::Yes) => Ok((0, false)),
        (ScoreRule::VetoNo, Answer::Yes) => Ok((0, true)),
        (ScoreRule::Partial, Answer::Points(p)) if (0..=item.points).contains(&p) => Ok((p, false)),
        (ScoreRule::Partial, Answer::Points(p)) => Err(format!("第 {} 项得分 {p} 超出 0–{} 分", item.no, item.points)),
        (ScoreRule::Partial, Answer::Yes) => Ok((item.points, false)),
        (ScoreRule::Partial, Answer::No) => Ok((0, false)),
        (_, Answer::Points(_)) => Err(format!("第 {} 项只能答“是”或“否”", item.no)),
    }
}

/// A sheet's total: (points, of the items answered, any veto).
pub fn total<'a>(form: &Form, answers: impl IntoIterator<Item = (&'a str, Answer)>) -> (i64, usize, bool) {
    let (mut pts, mut n, mut veto) = (0, 0, false);
    for (no, a) in answers {
        if let Some(Ok((p, v))) = form.item(no).map(|it| score(it, a)) {
            pts += p;
            n += 1;
            veto |= v;
        }
    }
    (pts, n, veto)
}

// ───────────────────────────── exit check (R-EXIT-1) ─────────────────────────────

/// What the data says about one member of a household for the exit check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitMember {
    pub dead: bool,
    /// In the year's basic insurance (anywhere).
    pub insured: bool,
    /// Inpatient settlements in the year, and those settled without the poverty identity (so without
    /// the poor's preferences, critical-illness reductions and assistance).
    pub inpatient: i64,
    pub without_preferences: i64,
    /// In the health department's chronic registry.
    pub chronic: bool,
    pub contracted: bool,
    /// Follow-ups owed by now and missing.
    pub follow_ups_missing: u32,
    /// A major-disease case not treated.
    pub untreated_case: bool,
}

/// Every reason the member fails the exit check ("basic medical care guaranteed"), in Chinese; empty
/// when the member passes.
pub fn exit_failures(m: &ExitMember) -> Vec<String> {
    let mut out = Vec::new();
    if m.dead {
        return out;
    }
    if !m.insured {
        out.push("未参加基本医疗保险".to_string());
    }
    if m.without_preferences > 0 {
        out.push(format!("{} 次住院未按贫困人口享受倾斜政策（基本医保、大病保险、医疗救助）", m.without_preferences));
    }
    if m.chronic && !m.contracted {
        out.push("慢病患者未签约家庭医生".to_string());
    }
    if m.chronic && m.contracted && m.follow_ups_missing > 0 {
        out.push(format!("慢病患者欠随访 {} 次", m.follow_ups_missing));
    }
    if m.untreated_case {
        out.push("大病患者未救治".to_string());
    }
    out
}

// ───────────────────────────── funds (R-FUND-1) ─────────────────────────────

/// A hospital's annual budget: 60 % prepaid, the 40 % paid as assessed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetSplit {
    pub budget_fen: i64,
    pub prepay_fen: i64,
    /// The 40 % held for the assessment.
    pub held_fen: i64,
    /// Of the held part, paid after the assessment, and withheld. `None` before the assessment.
    pub assessed_pay_fen: Option<i64>,
    pub withheld_fen: Option<i64>,
}

pub fn budget_split(budget_fen: i64, assessed_bp: Option<i64>) -> BudgetSplit {
    let prepay = crate::programmes::prepayment(budget_fen);
    let held = budget_fen - prepay;
    let pay = assessed_bp.map(|bp| div_round_half_away(held * bp.clamp(0, 10_000), 10_000));
    BudgetSplit { budget_fen, prepay_fen: prepay, held_fen: held, assessed_pay_fen: pay, withheld_fen: pay.map(|p| held - p) }
}

// ───────────────────────────── policy probes (R-SUP-4 auto-fill) ─────────────────────────────

/// What a policy does for a registered poor inpatient in the county, found by settling test claims
/// with the engine (so the answer is what the settlement would do, not what a field says).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyProbe {
    /// Deductible applied to a 500-yuan, all-compliant stay at a township hospital.
    pub deductible_fen: i64,
    /// The compliant amount left after basic insurance at which critical-illness insurance starts
    /// paying (at a county hospital); `None` if it never pays up to 1,000,000 yuan.
    pub critical_start_fen: Option<i64>,
    /// The patient's part of a 200,000-yuan, all-compliant stay at a county hospital.
    pub oop_200k_fen: i64,
}

pub fn probe_policy(policy: &crate::Policy, date: Date) -> PolicyProbe {
    use crate::claim::{Bill, Claim, HospLevel, MedType};
    use crate::engine::{settle, Accumulators};
    use crate::identity::{Identity, IdentitySet};
    use crate::money::Fen;
    use crate::policy::Fund;
    let ids = IdentitySet::default().with(Identity::RegisteredPoor);
    let run = |total: i64, level: u8| {
        let Ok(bill) = Bill::new(Fen(total), Fen(0), Fen(0), Fen(0), Fen(total)) else { return None };
        let claim = Claim {
            site: Default::default(),
            setl_date: date,
            med_type: MedType::Inpatient,
            hosp_lv: HospLevel::new(level)?,
            in_county: true,
            referral_ok: true,
            major_disease: false,
            bill,
        };
        Some(settle(policy, &claim, ids, &Accumulators::default()).0)
    };
    let deductible_fen = run(50_000, 1).map_or(0, |s| s.act_pay_dedc.0);
    let oop_200k_fen = run(20_000_000, 2).map_or(0, |s| s.psn_part_amt.0);
    let critical = |t: i64| run(t, 2).is_some_and(|s| s.funds_fen[Fund::CriticalIllness.index()] > 0);
    let critical_start_fen = if critical(100_000_000) {
        // The smallest total at which the critical-illness fund pays, then what basic left of it.
        let (mut lo, mut hi) = (0i64, 100_000_000i64);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if critical(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        run(lo, 2).map(|s| lo - s.funds_fen[Fund::Basic.index()])
    } else {
        None
    };
    PolicyProbe { deductible_fen, critical_start_fen, oop_200k_fen }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Thresholds {
        Thresholds::parse(include_str!("../../../data/supervision/thresholds.toml")).unwrap()
    }

    #[test]
    fn a_village_is_selected_for_each_criterion_it_meets_and_says_why() {
        let t = t();
        // 25 remaining poor of 1,250: 2.00 %, inside 1–3 %.
        let f = VillageFacts { population: 1_250, remaining_poor: 25, marginal: 40 };
        assert_eq!(selection_reasons(&f, &t), vec!["贫困发生率 2.00%（1.00%–3.00%）".to_string()]);
        // 35 remaining poor of 700: 5 %, above the range, but ≥ 30 people.
        let f = VillageFacts { population: 700, remaining_poor: 35, marginal: 120 };
        assert_eq!(selection_reasons(&f, &t), vec!["剩余贫困人口 35 人（≥30）".to_string(), "边缘户人口 120 人（≥100）".to_string()]);
        // Nothing: 0.5 %, 5 poor, 99 marginal.
        let f = VillageFacts { population: 1_000, remaining_poor: 5, marginal: 99 };
        assert!(selection_reasons(&f, &t).is_empty());
        // The edges are inclusive: exactly 1 %, exactly 30, exactly 100.
        let f = VillageFacts { population: 3_000, remaining_poor: 30, marginal: 100 };
        assert_eq!(selection_reasons(&f, &t).len(), 3);
        assert!(selection_reasons(&VillageFacts::default(), &t).is_empty(), "an empty village");
        assert!(Thresholds::parse("incidence_min_bp = 300\nincidence_max_bp = 100\nremaining_poor_min = 30\nmarginal_min = 100").is_err());
    }

    #[test]
    fn reports_are_due_on_their_day_and_late_counts_days() {
        let due = ReportKind::CountyProgress.due(201_905).unwrap();
        assert_eq!(due, Date::new(2019, 5, 18).unwrap());
        assert_eq!(ReportKind::InfoExchange.due(201_912).unwrap(), Date::new(2019, 12, 10).unwrap());
        let d = |s: &str| Date::parse(s).unwrap();
        assert_eq!(report_status(due, Some(d("2019-05-18")), d("2019-06-01")), ReportStatus::OnTime, "on the day is on time");
        assert_eq!(report_status(due, Some(d("2019-05-20")), d("2019-06-01")), ReportStatus::Late(2));
        assert_eq!(report_status(due, None, d("2019-05-21")), ReportStatus::Overdue(3));
        assert_eq!(report_status(due, None, d("2019-05-18")), ReportStatus::NotDue);
        assert!(ReportKind::CountyProgress.due(201_913).is_none());
    }

    fn item(rule: ScoreRule, points: i64) -> FormItem {
        FormItem {
            no: "1".into(),
            section: String::new(),
            indicator: String::new(),
            points,
            accountable: String::new(),
            rule,
            evaluation: String::new(),
            auto: None,
        }
    }

    #[test]
    fn answers_score_by_the_items_rule() {
        assert_eq!(score(&item(ScoreRule::Yes, 5), Answer::Yes), Ok((5, false)));
        assert_eq!(score(&item(ScoreRule::Yes, 5), Answer::No), Ok((0, false)));
        assert_eq!(score(&item(ScoreRule::No, 5), Answer::No), Ok((5, false)), "如“否”得5分");
        assert_eq!(score(&item(ScoreRule::No, 5), Answer::Yes), Ok((0, false)));
        assert_eq!(score(&item(ScoreRule::VetoNo, 5), Answer::Yes), Ok((0, true)), "年度考核直接定为“差”");
        assert_eq!(score(&item(ScoreRule::Partial, 5), Answer::Points(3)), Ok((3, false)));
        assert!(score(&item(ScoreRule::Partial, 5), Answer::Points(6)).is_err());
        assert!(score(&item(ScoreRule::Yes, 5), Answer::Points(5)).is_err());
        assert_eq!(Answer::parse(" 是 "), Some(Answer::Yes));
        assert_eq!(Answer::parse("x"), None);
    }

    #[test]
    fn the_shipped_forms_parse_and_add_up() {
        let wudu = Form::parse(include_str!("../../../data/forms/wudu.toml")).unwrap();
        assert_eq!(wudu.items.len(), 26);
        assert_eq!(wudu.total_points(), 95, "the seed's points add up to 95 (its 总分 row is blank)");
        let cadre = Form::parse(include_str!("../../../data/forms/cadre.toml")).unwrap();
        assert!(cadre.items.iter().any(|i| i.rule == ScoreRule::VetoNo));
        let all_yes = wudu.items.iter().map(|i| (i.no.as_str(), Answer::Yes));
        assert_eq!(total(&wudu, all_yes), (95, 26, false));
        assert!(Form::parse(
            "id='x'\ntitle='x'\nsource=''\nunit='county'\n[[items]]\nno='1'\nsection=''\nindicator=''\npoints=1\nrule='yes'\nauto='nope'"
        )
        .is_err());
    }

    #[test]
    fn exit_check_names_every_failure() {
        assert!(exit_failures(&ExitMember { insured: true, ..Default::default() }).is_empty());
        assert!(exit_failures(&ExitMember { dead: true, ..Default::default() }).is_empty(), "the dead are not checked");
        let m = ExitMember {
            insured: false,
            without_preferences: 2,
            chronic: true,
            contracted: false,
            untreated_case: true,
            ..Default::default()
        };
        assert_eq!(exit_failures(&m).len(), 4);
        let m = ExitMember { insured: true, chronic: true, contracted: true, follow_ups_missing: 2, ..Default::default() };
        assert_eq!(exit_failures(&m), vec!["慢病患者欠随访 2 次".to_string()]);
    }

    #[test]
    fn a_budget_splits_to_the_fen() {
        let s = budget_split(1_000_001, Some(9_150));
        assert_eq!(s.prepay_fen, 600_001);
        assert_eq!(s.held_fen, 400_000);
        assert_eq!(s.assessed_pay_fen, Some(366_000));
        assert_eq!(s.withheld_fen, Some(34_000));
        assert_eq!(s.prepay_fen + s.assessed_pay_fen.unwrap() + s.withheld_fen.unwrap(), s.budget_fen);
        assert_eq!(budget_split(5, None).assessed_pay_fen, None);
    }

    #[test]
    fn probing_the_huining_policy_finds_its_promises() {
        let src = crate::reference::reference_source("gansu-huining-2018").expect("shipped");
        let policy = crate::parse_policy(src).expect("parses");
        let p = probe_policy(&policy, Date::new(2018, 6, 1).unwrap());
        assert_eq!(p.deductible_fen, 0, "no deductible for the poor (seed 001)");
        let start = p.critical_start_fen.expect("critical illness pays");
        assert!(start <= 200_000, "critical illness starts by 2,000 yuan, found {start} fen");
        assert!(p.oop_200k_fen <= 300_000, "assistance caps the compliant part at 3,000 yuan, found {} fen", p.oop_200k_fen);
    }
}
