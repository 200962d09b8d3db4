//! The 2021+ policy constructs (docs/SETTLEMENT.md R-POL-21..30), each on a small policy with cases
//! computed by hand from the specification.

use baozhang_core::claim::{Bill, Claim, Filing, HospGrade, HospLevel, MedType, Place, Site};
use baozhang_core::engine::{settle, Accumulators, Settlement};
use baozhang_core::policy::{parse_policy, Fund, Policy};
use baozhang_core::{Date, Fen, IdentitySet};

const HEAD: &str = r#"
[policy]
id = "t"
name = "测试"
region_code = "620422"
year = 2025
effective_from = "2025-01-01"
effective_to = "2025-12-31"
"#;

fn policy(body: &str) -> Policy {
    let src = format!("{HEAD}{body}");
    parse_policy(&src).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn problems(body: &str) -> String {
    parse_policy(&format!("{HEAD}{body}")).expect_err("refused").to_string()
}

fn claim(lv: u8, compliant_yuan: i64, site: Site) -> Claim {
    let c = Fen::yuan(compliant_yuan);
    Claim {
        setl_date: Date::new(2025, 5, 1).unwrap(),
        med_type: MedType::Inpatient,
        hosp_lv: HospLevel::new(lv).unwrap(),
        in_county: matches!(site.place, Place::County | Place::Unspecified) && site.filing == Filing::None,
        referral_ok: false,
        major_disease: false,
        bill: Bill::new(c, Fen::ZERO, Fen::ZERO, Fen::ZERO, c).unwrap(),
        site,
    }
}

fn ids(s: &str) -> IdentitySet {
    IdentitySet::parse_list(s).unwrap()
}

fn run(p: &Policy, claims: &[(Claim, IdentitySet)]) -> Vec<Settlement> {
    let mut acc = Accumulators::default();
    claims
        .iter()
        .map(|(c, i)| {
            assert!(p.accepts(c).is_ok(), "{:?}", p.accepts(c));
            let (s, after) = settle(p, c, *i, &acc);
            acc = after;
            s
        })
        .collect()
}

const TIERS: &str = r#"
[[policy.tiers]]
id = "t3a"
name = "三级甲等"
level = 3
grades = ["02"]

[[policy.tiers]]
id = "t3"
name = "三级"
level = 3

[[policy.tiers]]
id = "t2"
name = "二级"
level = 2

[[policy.tiers]]
id = "tw"
name = "乡镇卫生院"
level = 1
primary_care = true

[[policy.tiers]]
id = "t1"
name = "一级"
level = 1
"#;

#[test]
fn tiers_price_by_grade_and_primary_care() {
    let p = policy(&format!(
        r#"{TIERS}
[[layers]]
id = "basic"
name = "基本医保"
fund = "390100"
kind = "ratio"
base = "compliant"

[[layers.branches]]
deductible_by_level.3 = 600
deductible_by_level.t3a = 1400
deductible_by_level.2 = 400
deductible_by_level.1 = 200
deductible_by_level.tw = 100
ratio_by_level.3 = "70%"
ratio_by_level.2 = "80%"
ratio_by_level.1 = "85%"
ratio_by_level.tw = "90%"
"#
    ));
    let site = |g: &str, primary: bool| Site { grade: HospGrade::parse(g).unwrap(), primary_care: primary, ..Site::default() };
    // 三级甲等: (10,000 − 1,400) × 70 % = 6,020; 三级乙等 falls in t3: (10,000 − 600) × 70 % = 6,580.
    let s = run(&p, &[(claim(3, 10_000, site("02", false)), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen::yuan(6_020));
    let s = run(&p, &[(claim(3, 10_000, site("03", false)), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen::yuan(6_580));
    // No grade at level 3 is t3 too; a township health centre: (1,000 − 100) × 90 % = 810; a level-1 clinic
    // that is not primary care: (1,000 − 200) × 85 % = 680.
    let s = run(&p, &[(claim(3, 10_000, Site::default()), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen::yuan(6_580));
    let s = run(&p, &[(claim(1, 1_000, site("", true)), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen::yuan(810));
    let s = run(&p, &[(claim(1, 1_000, site("08", false)), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen::yuan(680));
}

#[test]
fn tiers_must_cover_every_hospital_and_grades_their_level() {
    let e = problems(
        r#"
[[policy.tiers]]
id = "t3a"
name = "三级甲等"
level = 3
grades = ["02", "05"]

[[layers]]
id = "basic"
name = "基本医保"
fund = "390100"
kind = "ratio"
base = "compliant"

[[layers.branches]]
ratio = "50%"
deductible_by_level.t9 = 100
"#,
    );
    assert!(e.contains("不属于 3 级医院"), "{e}");
    assert!(e.contains("不属于任何档次") && e.contains("1级·未说明"), "{e}");
    assert!(e.contains("deductible_by_level 的键“t9”"), "{e}");
}

#[test]
fn a_ratio_adjustment_multiplies_before_rounding() {
    let p = policy(
        r#"
[[layers]]
id = "basic"
name = "基本医保"
fund = "390100"
kind = "ratio"
base = "compliant"

[[layers.adjust]]
name = "未备案"
when = { filing = ["unfiled"] }
factor = "85%"

[[layers.adjust]]
name = "转诊"
when = { filing = ["referral"] }
minus_points = "10%"

[[layers.branches]]
deductible = 0
ratio = "72.5%"
"#,
    );
    let out = |place: Place, filing: Filing| Site { place, filing, ..Site::default() };
    // 1,234.57 × 72.5 % × 85 % = 760.8037625 → 760.80, rounded once.
    let c = |yuan: &str, site| {
        let f = Fen::parse_yuan(yuan).unwrap();
        Claim { bill: Bill::new(f, Fen::ZERO, Fen::ZERO, Fen::ZERO, f).unwrap(), ..claim(2, 0, site) }
    };
    let s = run(&p, &[(c("1234.57", out(Place::OutOfProvince, Filing::Unfiled)), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen(76_080));
    assert_eq!(s[0].layers()[0].adjust, 1);
    // 10 points off: 1,000 × 62.5 % = 625.
    let s = run(&p, &[(c("1000", out(Place::Province, Filing::Referral)), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen::yuan(625));
    // Filed long-term residence: no adjustment, 725.
    let s = run(&p, &[(c("1000", out(Place::Province, Filing::Resident)), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Basic), Fen::yuan(725));
    let text = baozhang_core::explain::explain(&p, &run(&p, &[(c("1000", out(Place::Province, Filing::Unfiled)), IdentitySet::EMPTY)])[0]);
    assert!(text[0].text.contains("未备案：按 85% 结算"), "{}", text[0].text);
}

#[test]
fn repeat_stays_lower_in_steps_by_order_and_per_tier() {
    let p = policy(
        r#"
[[layers]]
id = "basic"
name = "基本医保"
fund = "390100"
kind = "ratio"
base = "compliant"

[[layers.branches]]
name = "逐次降低"
when = { hosp_lv = [2] }
deductible = 500
ratio = "100%"
repeat_stay = { lower_each_by = 150, floor = 100 }

[[layers.branches]]
name = "按次序"
when = { hosp_lv = [3] }
deductible = 1000
ratio = "100%"
repeat_stay = { by_order = ["100%", "50%", "0%"], same_tier = true }
"#,
    );
    let lv2 = (claim(2, 2_000, Site::default()), IdentitySet::EMPTY);
    let lv3 = (claim(3, 2_000, Site::default()), IdentitySet::EMPTY);
    // Level 2: deductibles 500, 350, 200, 100 (floor), 100 → paid 1,500, 1,650, 1,800, 1,900, 1,900.
    let s = run(&p, &[lv2, lv2, lv2, lv2, lv2]);
    let paid: Vec<i64> = s.iter().map(|s| s.fund(Fund::Basic).0 / 100).collect();
    assert_eq!(paid, [1_500, 1_650, 1_800, 1_900, 1_900]);
    // Level 3, same tier only: 1,000, then a level-2 stay (not counted), then 500, then 0.
    let s = run(&p, &[lv3, lv2, lv3, lv3]);
    let paid: Vec<i64> = s.iter().map(|s| s.fund(Fund::Basic).0 / 100).collect();
    // The level-2 stay is the person's second stay: 500 − 150 = 350.
    assert_eq!(paid, [1_000, 1_650, 1_500, 2_000]);
}

#[test]
fn a_shared_cap_limits_the_layers_together_and_spares_the_uncapped() {
    let p = policy(
        r#"
[[layers]]
id = "basic"
name = "基本医保"
fund = "390100"
kind = "ratio"
base = "compliant"
annual_cap = 6000

[[layers.branches]]
ratio = "50%"

[[layers]]
id = "critical"
name = "大病保险"
fund = "390200"
kind = "ratio"
base = "compliant_remainder"
accumulation = "annual"

[[layers.branches]]
deductible = 1000
deductible_for = [{ identities = ["dibao"], factor = "50%" }]
ratio = "60%"
uncapped_for = ["dibao"]

[[shared_caps]]
name = "合计"
layers = ["basic", "critical"]
annual = 8000
"#,
    );
    let c = (claim(2, 10_000, Site::default()), IdentitySet::EMPTY);
    // Claim 1: basic 5,000; critical (5,000 − 1,000) × 60 % = 2,400 → together 7,400 ≤ 8,000.
    // Claim 2: basic 5,000 → its own cap leaves 1,000; critical: base 9,000 more (B 4,000 → 13,000 above d),
    // V = 7,200 − 2,400 = 5,400, but the shared cap leaves 8,000 − 7,400 − 1,000 = −400 → 0.
    let s = run(&p, &[c, c]);
    assert_eq!((s[0].fund(Fund::Basic), s[0].fund(Fund::CriticalIllness)), (Fen::yuan(5_000), Fen::yuan(2_400)));
    assert_eq!((s[1].fund(Fund::Basic), s[1].fund(Fund::CriticalIllness)), (Fen::yuan(600), Fen::ZERO));
    // Dibao: the critical deductible 500 (factor 50 %), and no cap on the critical layer.
    let d = (claim(2, 10_000, Site::default()), ids("dibao"));
    let s = run(&p, &[d, d]);
    // Claim 1: critical (5,000 − 500) × 60 % = 2,700 (together 7,700). Claim 2: basic is not uncapped, so the
    // shared cap leaves it 8,000 − 7,700 = 300; critical, uncapped, on the remainder 9,700: B 5,000 → 14,700,
    // (14,700 − 5,000) × 60 % = 5,820 in full, beyond the shared cap.
    assert_eq!(s[0].fund(Fund::CriticalIllness), Fen::yuan(2_700));
    assert_eq!((s[1].fund(Fund::Basic), s[1].fund(Fund::CriticalIllness)), (Fen::yuan(300), Fen::yuan(5_820)));
}

#[test]
fn assistance_deductibles_follow_the_prior_years_income() {
    let p = policy(
        r#"
[[policy.income]]
year = 2024
amount = "12345.67"

[[layers]]
id = "assistance"
name = "医疗救助"
fund = "610100"
kind = "ratio"
base = "compliant"
accumulation = "annual"

[[layers.branches]]
deductible = 0
deductible_for = [{ identities = ["dibao_edge"], share_of_income = "10%" }, { identities = ["illness_poor"], share_of_income = "25%" }]
ratio = "60%"
"#,
    );
    // 10 % × 12,345.67 = 1,234.567 → 1,234.57; (5,000 − 1,234.57) × 60 % = 2,259.258 → 2,259.26.
    let s = run(&p, &[(claim(2, 5_000, Site::default()), ids("dibao_edge"))]);
    assert_eq!(s[0].fund(Fund::Assistance), Fen(225_926));
    assert_eq!(s[0].layers()[0].deductible_fen, 123_457);
    let text = &baozhang_core::explain::explain(&p, &s[0])[0].text;
    assert!(text.contains("起付线 1,234.57（2024 年居民人均可支配收入 12,345.67 × 10%）"), "{text}");
    // Both classes: the smaller deductible. An ordinary resident: the schedule's 0.
    let s = run(&p, &[(claim(2, 5_000, Site::default()), ids("dibao_edge;illness_poor"))]);
    assert_eq!(s[0].layers()[0].deductible_fen, 123_457);
    let s = run(&p, &[(claim(2, 5_000, Site::default()), IdentitySet::EMPTY)]);
    assert_eq!(s[0].fund(Fund::Assistance), Fen::yuan(3_000));
    // A claim of 2026 has no 2025 income: refused, naming setl_date; a year is required for every year in force.
    let mut c = claim(2, 5_000, Site::default());
    c.setl_date = Date::new(2026, 1, 5).unwrap();
    assert_eq!(p.accepts(&c).unwrap_err().field, "setl_date");
    let e = problems(
        r#"
[[policy.income]]
year = 2023
amount = 10000

[[layers]]
id = "a"
name = "救助"
fund = "610100"
kind = "ratio"
base = "compliant"

[[layers.branches]]
deductible_for = [{ identities = ["dibao"], share_of_income = "5%", amount = 100 }]
ratio = "50%"
"#,
    );
    assert!(e.contains("缺少 2024 年的居民人均可支配收入"), "{e}");
    assert!(e.contains("须写且只写一个"), "{e}");
}

#[test]
fn general_outpatient_is_settled_only_by_a_policy_that_lists_it() {
    let body = r#"
[[layers]]
id = "opd"
name = "普通门诊统筹"
fund = "390100"
kind = "ratio"
base = "compliant"
when = { med_type = [11] }
annual_cap = 150

[[layers.branches]]
when = { primary_care = true }
ratio = "60%"
"#;
    let mut c = claim(1, 100, Site { primary_care: true, ..Site::default() });
    c.med_type = MedType::GeneralOutpatient;
    let without = policy(body);
    assert_eq!(without.accepts(&c).unwrap_err().field, "med_type");
    let src = format!("{HEAD}med_types = [21, 14, 11]\n{body}");
    let p = parse_policy(&src).unwrap();
    // 60, 60, then 30 (annual cap 150), then 0.
    let s = run(&p, &[(c, IdentitySet::EMPTY), (c, IdentitySet::EMPTY), (c, IdentitySet::EMPTY), (c, IdentitySet::EMPTY)]);
    let paid: Vec<i64> = s.iter().map(|s| s.fund(Fund::Basic).0 / 100).collect();
    assert_eq!(paid, [60, 60, 30, 0]);
}
