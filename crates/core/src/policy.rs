//! Policy as data (POLICY §2.2): a region's TOML file, checked and compiled into the form the engine
//! runs. `check` reports *every* problem with its place; the version of a policy is the hash of its
//! content (comments and layout do not change it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::claim::{Claim, Filing, HospGrade, MedType, Place, ALL_FILINGS, ALL_MED_TYPES, ALL_PLACES, GRADE_NAMES};
use crate::date::Date;
use crate::identity::{Identity, IdentitySet};
use crate::money::{Fen, Ratio};

/// Most layers a policy may have; lets settlements and accumulators live in fixed arrays (no heap in
/// the hot path).
pub const MAX_LAYERS: usize = 12;

// ───────────────────────────── funds ─────────────────────────────

/// The fund a layer pays from (POLICY §2.2 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Fund {
    /// 390100 基本医保
    Basic,
    /// 390200 大病保险
    CriticalIllness,
    /// 620100 补充保险（扶贫保、特惠保，商保兜底）
    Supplemental,
    /// 610100 医疗救助
    Assistance,
    /// 640100 政府兜底 / 重大疾病补助
    Fallback,
    /// 999996 医院承担
    Hospital,
}

pub const ALL_FUNDS: [Fund; 6] = [Fund::Basic, Fund::CriticalIllness, Fund::Supplemental, Fund::Assistance, Fund::Fallback, Fund::Hospital];

impl Fund {
    pub fn code(self) -> &'static str {
        match self {
            Fund::Basic => "390100",
            Fund::CriticalIllness => "390200",
            Fund::Supplemental => "620100",
            Fund::Assistance => "610100",
            Fund::Fallback => "640100",
            Fund::Hospital => "999996",
        }
    }
    pub fn from_code(c: &str) -> Option<Fund> {
        ALL_FUNDS.into_iter().find(|f| f.code() == c)
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Fund::Basic => "城乡居民基本医疗保险基金",
            Fund::CriticalIllness => "城乡居民大病保险",
            Fund::Supplemental => "补充保险（扶贫保/特惠保）",
            Fund::Assistance => "医疗救助基金",
            Fund::Fallback => "政府兜底/重大疾病补助",
            Fund::Hospital => "医院承担",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

// ───────────────────────────── raw form ─────────────────────────────

/// A money value in the file: an integer (yuan) or a string ("1234.56"). Floats are refused so that
/// no value passes through binary floating point. Written as `{ value = 2000, mark = "S", source = "…",
/// quote = "…" }` it also carries its provenance (see [`Provenance`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RawMoney(toml::Value);

/// A ratio in the file: a string ("85%", "12.5%"), or `{ value = "85%", mark = …, … }` with its
/// provenance.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RawRatio(toml::Value);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyFile {
    pub policy: RawMeta,
    #[serde(default)]
    pub layers: Vec<Spanned<RawLayer>>,
    /// Annual limits shared by several layers (e.g. basic insurance and critical illness together).
    #[serde(default)]
    pub shared_caps: Vec<Spanned<RawSharedCap>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSharedCap {
    pub name: String,
    pub layers: Vec<String>,
    pub annual: RawMoney,
}

/// One of the policy's own hospital tiers: the hospitals of `level` (1–3) with one of `grades` (national
/// 医院等级 codes, "02" = 三级甲等; any when omitted) and, when given, primary care or not.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub id: String,
    pub name: String,
    pub level: u8,
    #[serde(default)]
    pub grades: Vec<String>,
    pub primary_care: Option<bool>,
}

/// The region's per-capita disposable income of a year (上年度居民人均可支配收入): claims of `year` + 1
/// use it for deductibles written as a share of income.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncome {
    pub year: u16,
    pub amount: RawMoney,
}

/// A premium subsidy (参保资助) of an insurance year for the persons holding one of `identities`: an
/// amount, or `amount = "full"` for the whole individual premium.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubsidy {
    pub year: u16,
    pub identities: Vec<String>,
    pub amount: RawMoney,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    pub id: String,
    pub name: String,
    pub region_code: String,
    #[serde(default)]
    pub region_name: String,
    /// Other region codes this policy also governs (e.g. a city's counties).
    #[serde(default)]
    pub covers: Vec<String>,
    pub year: u16,
    pub effective_from: String,
    #[serde(default)]
    pub effective_to: Option<String>,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub note: Option<String>,
    /// The med types the policy settles (default 21 and 14); a claim of another type is refused.
    #[serde(default)]
    pub med_types: Option<Vec<u16>>,
    #[serde(default)]
    pub tiers: Vec<RawTier>,
    #[serde(default)]
    pub income: Vec<RawIncome>,
    #[serde(default)]
    pub subsidies: Vec<RawSubsidy>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// What values name it by (`source = "…"`), and the name of its text: `sources/<id>.txt` beside the
    /// policy file. Optional for files that cite no source from a value.
    #[serde(default)]
    pub id: Option<String>,
    /// S (seed document), P (published guide) or I (illustrative default).
    pub mark: String,
    pub title: String,
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCond {
    pub identities: Option<Vec<String>>,
    pub med_type: Option<Vec<u16>>,
    pub hosp_lv: Option<Vec<u8>>,
    pub in_county: Option<bool>,
    pub referral_ok: Option<bool>,
    pub major_disease: Option<bool>,
    pub total_at_least: Option<RawMoney>,
    pub total_above: Option<RawMoney>,
    pub total_below: Option<RawMoney>,
    /// The policy's tier ids (`[[policy.tiers]]`).
    pub tier: Option<Vec<String>>,
    /// county, prefecture, province, out_of_province, outside_county (= all but county).
    pub place: Option<Vec<String>>,
    /// resident, referral, emergency, unfiled, none.
    pub filing: Option<Vec<String>>,
    pub primary_care: Option<bool>,
}

/// A ratio adjustment of a layer: when its conditions hold, each ratio is lowered by `minus_points`
/// and then multiplied by `factor` ("按 85% 结算").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdjust {
    pub name: Option<String>,
    #[serde(default)]
    pub when: RawCond,
    pub factor: Option<RawRatio>,
    pub minus_points: Option<RawRatio>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayer {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub fund: Option<String>,
    #[serde(default)]
    pub when: RawCond,
    pub base: Option<String>,
    pub accumulation: Option<String>,
    pub select: Option<String>,
    #[serde(default)]
    pub branches: Vec<Spanned<RawBranch>>,
    pub per_claim_cap: Option<RawMoney>,
    pub outpatient_cap: Option<RawMoney>,
    pub annual_cap: Option<RawMoney>,
    // floor_topup, oop_cap, ceiling
    pub ratio: Option<RawRatio>,
    pub reference: Option<String>,
    pub counted_layers: Option<Vec<String>>,
    pub limit: Option<String>,
    pub amount: Option<RawMoney>,
    pub ratio_of: Option<String>,
    pub combine: Option<String>,
    pub clawback: Option<Vec<String>>,
    pub note: Option<String>,
    #[serde(default)]
    pub adjust: Vec<RawAdjust>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub name: Option<String>,
    #[serde(default)]
    pub when: RawCond,
    pub deductible: Option<RawMoney>,
    pub deductible_by_level: Option<BTreeMap<String, RawMoney>>,
    #[serde(default)]
    pub deductible_for: Vec<RawDeductibleFor>,
    pub repeat_stay: Option<RawRepeat>,
    pub ratio: Option<RawRatio>,
    pub ratio_by_level: Option<BTreeMap<String, RawRatio>>,
    pub segments: Option<Vec<RawSegment>>,
    pub segments_by_level: Option<BTreeMap<String, Vec<RawSegment>>>,
    #[serde(default)]
    pub ratio_bonus: Vec<RawBonus>,
    pub per_claim_cap: Option<RawMoney>,
    pub outpatient_cap: Option<RawMoney>,
    pub annual_cap: Option<RawMoney>,
    /// Identities for whom the branch's and layer's caps do not apply (取消封顶线).
    pub uncapped_for: Option<Vec<String>>,
}

/// An identity's deductible: a fixed `amount`, a `share_of_income` (of the prior year's per-capita
/// disposable income, `[[policy.income]]`), or a `factor` of the schedule's deductible ("降低 50%" =
/// factor "50%"). Exactly one.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeductibleFor {
    pub identities: Vec<String>,
    pub amount: Option<RawMoney>,
    pub share_of_income: Option<RawRatio>,
    pub factor: Option<RawRatio>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepeat {
    /// Once any earlier stay this year: the deductible lower by this amount.
    pub lower_by: Option<RawMoney>,
    /// For each earlier stay this year: lower by this amount (down to `floor`).
    pub lower_each_by: Option<RawMoney>,
    /// The least a lowered deductible goes down to (never raises a lower one).
    pub floor: Option<RawMoney>,
    /// The deductible of the 1st, 2nd, 3rd … stay as a share of the schedule's ("100%", "50%", "0%");
    /// the last share holds for later stays.
    pub by_order: Option<Vec<RawRatio>>,
    /// Count only the earlier stays in the same tier (hospital level) — "同级医院".
    pub same_tier: Option<bool>,
    #[serde(default)]
    pub waive_same_level: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    /// Upper end of the segment (exclusive); omitted on the last, open segment.
    pub to: Option<RawMoney>,
    pub ratio: RawRatio,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBonus {
    pub identities: Vec<String>,
    pub points: RawRatio,
}

// ───────────────────────────── compiled form ─────────────────────────────

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Base {
    /// C
    Compliant,
    /// C − earlier fund payments (个人自负合规费用)
    CompliantRemainder,
    /// T − everything earlier layers paid
    TotalRemainder,
    /// O = fulamt + overlmt + preselfpay
    OutOfScope,
    /// T
    Total,
}

impl Base {
    fn parse(s: &str) -> Option<Base> {
        Some(match s {
            "compliant" => Base::Compliant,
            "compliant_remainder" => Base::CompliantRemainder,
            "total_remainder" => Base::TotalRemainder,
            "out_of_scope" => Base::OutOfScope,
            "total" => Base::Total,
            _ => return None,
        })
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Base::Compliant => "政策范围内费用",
            Base::CompliantRemainder => "个人自负合规费用",
            Base::TotalRemainder => "个人负担总费用",
            Base::OutOfScope => "政策范围外费用",
            Base::Total => "医疗费总额",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reference {
    Compliant,
    Total,
}

impl Reference {
    fn parse(s: &str) -> Option<Reference> {
        match s {
            "compliant" => Some(Reference::Compliant),
            "total" => Some(Reference::Total),
            _ => None,
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Reference::Compliant => "合规费用",
            Reference::Total => "总费用",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Select {
    First,
    MostFavourable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Combine {
    /// The larger cap: the patient is protected once either condition holds (the literal "或").
    Either,
    /// The smaller cap: both conditions must hold.
    Both,
}

/// Conditions of a layer or a branch; every condition given must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cond {
    pub identities: Option<IdentitySet>,
    /// bit 0: inpatient (21), bit 1: outpatient chronic (14); 0 = any.
    pub med_types: u8,
    /// bit l-1 for level l; 0 = any.
    pub levels: u8,
    pub in_county: Option<bool>,
    pub referral_ok: Option<bool>,
    pub major_disease: Option<bool>,
    pub total_at_least: Option<Fen>,
    pub total_above: Option<Fen>,
    pub total_below: Option<Fen>,
    /// bit t for the policy's tier t; 0 = any. (The new conditions are left out of the version hash
    /// when unset, so policies that do not use them keep their version.)
    #[serde(skip_serializing_if = "is_zero")]
    pub tiers: u8,
    /// Bits of [`place_bit`]; 0 = any.
    #[serde(skip_serializing_if = "is_zero")]
    pub places: u8,
    /// Bits of [`filing_bit`]; 0 = any.
    #[serde(skip_serializing_if = "is_zero")]
    pub filings: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_care: Option<bool>,
    /// Whether any of tiers, places, filings or primary care is set: the engine's hot path tests the
    /// four only then (set when compiled).
    #[serde(skip)]
    pub site: bool,
}

fn no_identities(v: &IdentitySet) -> bool {
    v.is_empty()
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

fn med_bit(m: MedType) -> u8 {
    m.bit()
}

/// Bit of a place of care in [`Cond::places`]; care outside the county with no more detail has its own bit.
pub fn place_bit(p: Place) -> u8 {
    match p {
        Place::County => 1,
        Place::Prefecture => 2,
        Place::Province => 4,
        Place::OutOfProvince => 8,
        Place::Unspecified => 16,
    }
}

/// Bit of a filing kind in [`Cond::filings`].
pub fn filing_bit(f: Filing) -> u8 {
    match f {
        Filing::Resident => 1,
        Filing::Referral => 2,
        Filing::Emergency => 4,
        Filing::Unfiled => 8,
        Filing::None => 16,
    }
}

const OUTSIDE_COUNTY: u8 = 2 | 4 | 8 | 16;

impl Cond {
    /// Whether the conditions hold for `claim` in tier `tier` (see [`Policy::tier_of`]) for a person
    /// holding `ids`.
    #[inline]
    pub fn matches(&self, claim: &Claim, tier: usize, ids: IdentitySet) -> bool {
        if self.site && !self.matches_site(claim, tier) {
            return false;
        }
        if let Some(set) = self.identities {
            if !set.intersects(ids) {
                return false;
            }
        }
        if self.med_types != 0 && self.med_types & med_bit(claim.med_type) == 0 {
            return false;
        }
        if self.levels != 0 && self.levels & (1 << claim.hosp_lv.index()) == 0 {
            return false;
        }
        if self.in_county.is_some_and(|v| v != claim.in_county)
            || self.referral_ok.is_some_and(|v| v != claim.referral_ok)
            || self.major_disease.is_some_and(|v| v != claim.major_disease)
        {
            return false;
        }
        let t = claim.bill.total();
        if self.total_at_least.is_some_and(|x| t < x)
            || self.total_above.is_some_and(|x| t <= x)
            || self.total_below.is_some_and(|x| t >= x)
        {
            return false;
        }
        true
    }

    #[cold]
    fn matches_site(&self, claim: &Claim, tier: usize) -> bool {
        !(self.tiers != 0 && self.tiers & (1 << tier) == 0
            || self.places != 0 && self.places & place_bit(claim.place()) == 0
            || self.filings != 0 && self.filings & filing_bit(claim.site.filing) == 0
            || self.primary_care.is_some_and(|v| v != claim.site.primary_care))
    }

    /// Chinese description, "" when unconditional; `tiers` names the policy's tiers.
    pub fn describe(&self, tiers: &[Tier]) -> String {
        let mut parts = Vec::new();
        if self.tiers != 0 {
            let names: Vec<&str> =
                tiers.iter().enumerate().filter(|(i, _)| self.tiers & (1 << i) != 0).map(|(_, t)| t.name.as_str()).collect();
            parts.push(names.join("/"));
        }
        if let Some(s) = self.identities {
            parts.push(s.names_zh());
        }
        if self.med_types != 0 && self.med_types != 7 {
            let names: Vec<&str> = ALL_MED_TYPES.iter().filter(|m| self.med_types & m.bit() != 0).map(|m| m.name_zh()).collect();
            parts.push(names.join("/"));
        }
        if self.levels != 0 && self.levels != 7 {
            let lv: Vec<String> = (1..=3).filter(|l| self.levels & (1 << (l - 1)) != 0).map(|l| l.to_string()).collect();
            parts.push(format!("{}级医院", lv.join("/")));
        }
        if let Some(v) = self.in_county {
            parts.push(if v { "县域内".into() } else { "县域外".into() });
        }
        if self.places != 0 {
            if self.places == OUTSIDE_COUNTY {
                parts.push("县域外".into());
            } else {
                let names: Vec<&str> = ALL_PLACES.iter().filter(|p| self.places & place_bit(**p) != 0).map(|p| p.name_zh()).collect();
                parts.push(names.join("/"));
            }
        }
        if self.filings != 0 {
            let mut names: Vec<&str> = ALL_FILINGS.iter().filter(|f| self.filings & filing_bit(**f) != 0).map(|f| f.name_zh()).collect();
            if self.filings & filing_bit(Filing::None) != 0 {
                names.push(Filing::None.name_zh());
            }
            parts.push(names.join("/"));
        }
        if let Some(v) = self.primary_care {
            parts.push(if v { "基层医疗机构".into() } else { "非基层医疗机构".into() });
        }
        if let Some(v) = self.referral_ok {
            parts.push(if v { "转诊合规".into() } else { "未按规定转诊".into() });
        }
        if let Some(v) = self.major_disease {
            parts.push(if v { "重大疾病病种".into() } else { "非重大疾病病种".into() });
        }
        if let Some(x) = self.total_at_least {
            parts.push(format!("总费用≥{}", x.grouped()));
        }
        if let Some(x) = self.total_above {
            parts.push(format!("总费用>{}", x.grouped()));
        }
        if let Some(x) = self.total_below {
            parts.push(format!("总费用<{}", x.grouped()));
        }
        parts.join("，")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Caps {
    pub per_claim: Option<Fen>,
    /// Counts only the layer's outpatient (14) payments of the year.
    pub outpatient: Option<Fen>,
    pub annual: Option<Fen>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// Exclusive upper end; `None` = open.
    pub to: Option<Fen>,
    pub ratio: Ratio,
}

/// Deductible and segments for one hospital level. A single ratio is one open segment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Schedule {
    pub deductible: Fen,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepeatStay {
    pub lower_by: Fen,
    pub waive_same_level: IdentitySet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_each_by: Option<Fen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<Fen>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_order: Vec<Ratio>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub same_tier: bool,
}

impl RepeatStay {
    /// The deductible of a stay after `earlier` stays (counted as `same_tier` says), from the
    /// deductible `d` the schedule and identities give.
    /// Its rules in Chinese (without the identity waiver).
    pub fn describe(&self) -> Vec<String> {
        let mut v = Vec::new();
        let scope = if self.same_tier { "同级" } else { "" };
        if self.lower_by.0 > 0 {
            v.push(format!("年内{scope}再次住院起付线降低 {}", self.lower_by.grouped()));
        }
        if let Some(each) = self.lower_each_by {
            let floor = self.floor.map(|f| format!("，最低 {}", f.grouped())).unwrap_or_default();
            v.push(format!("年内{scope}每多住院一次起付线降低 {}{floor}", each.grouped()));
        }
        if !self.by_order.is_empty() {
            let parts: Vec<String> = self.by_order.iter().enumerate().map(|(i, r)| format!("第{}次 {r}", i + 1)).collect();
            v.push(format!("年内{scope}住院起付线：{}（此后同最后一次）", parts.join("、")));
        }
        v
    }

    pub fn apply(&self, d: i64, earlier: u32) -> i64 {
        if earlier == 0 {
            return d;
        }
        let mut out = (d - self.lower_by.0).max(0);
        if let Some(each) = self.lower_each_by {
            let floor = self.floor.map_or(0, |f| f.0).min(d);
            let cut = each.0.saturating_mul(i64::from(earlier));
            out = out.min((d - cut).max(floor));
        }
        if let Some(share) = self.by_order.get((earlier as usize).min(self.by_order.len().saturating_sub(1))) {
            out = out.min(share.apply(Fen(d)).0);
        }
        out
    }
}

/// An identity's deductible written as a share of income or a factor of the schedule's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeductibleRule {
    /// Share of the prior year's per-capita disposable income (`PolicyMeta::income`).
    ShareOfIncome(Ratio),
    /// Factor of the schedule's deductible.
    Factor(Ratio),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Branch {
    pub name: String,
    pub when: Cond,
    /// One schedule per tier (index = tier; without `[[policy.tiers]]`, hospital level − 1).
    pub levels: Vec<Schedule>,
    pub deductible_for: Vec<(IdentitySet, Fen)>,
    pub repeat: Option<RepeatStay>,
    pub bonus: Vec<(IdentitySet, Ratio)>,
    pub caps: Caps,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deductible_rules: Vec<(IdentitySet, DeductibleRule)>,
    /// Identities for whom the caps do not apply (取消封顶线).
    #[serde(skip_serializing_if = "no_identities")]
    pub uncapped: IdentitySet,
}

/// A ratio adjustment of a layer ("按 85% 结算", "降低 10 个百分点"): the first whose conditions hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adjust {
    pub name: String,
    pub when: Cond,
    pub minus_points: Ratio,
    pub factor: Ratio,
}

/// An annual limit shared by several layers (e.g. basic + critical illness "年度最高支付限额合计").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedCap {
    pub name: String,
    pub layers: Vec<usize>,
    pub annual: Fen,
}

/// One of the policy's hospital tiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tier {
    pub id: String,
    pub name: String,
    /// 1–3
    pub level: u8,
    /// Bit g for national grade code g; 0 = any.
    pub grades: u16,
    pub primary_care: Option<bool>,
}

impl Tier {
    fn matches(&self, level: u8, grade: HospGrade, primary: bool) -> bool {
        self.level == level
            && (self.grades == 0 || self.grades & (1 << grade.code()) != 0)
            && self.primary_care.is_none_or(|p| p == primary)
    }
}

/// A premium subsidy of a year: `None` = the whole individual premium (全额资助).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subsidy {
    pub year: u16,
    pub identities: IdentitySet,
    pub amount: Option<Fen>,
}

/// Most tiers a policy may define.
pub const MAX_TIERS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LayerKind {
    Ratio { base: Base, annual: bool, select: Select, branches: Vec<Branch> },
    FloorTopup { ratio: Ratio, reference: Reference, counted: Vec<usize>, limit: Base },
    OopCap { base: Base, annual: bool, amount: Option<Fen>, ratio: Option<Ratio>, ratio_of: Reference, combine: Combine },
    Ceiling { ratio: Ratio, reference: Reference, clawback: Vec<usize> },
    HospitalBears { base: Base },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    pub id: String,
    pub name: String,
    /// `None` only for a ceiling, which pays nothing itself.
    pub fund: Option<Fund>,
    pub when: Cond,
    pub kind: LayerKind,
    pub caps: Caps,
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adjust: Vec<Adjust>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Provenance, like the values' marks: not serialised, so not part of the version hash.
    #[serde(skip)]
    pub id: Option<String>,
    pub mark: String,
    pub title: String,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyMeta {
    pub id: String,
    pub name: String,
    pub region_code: String,
    pub region_name: String,
    pub covers: Vec<String>,
    pub year: u16,
    pub effective_from: Date,
    pub effective_to: Option<Date>,
    pub sources: Vec<Source>,
    pub note: Option<String>,
    /// Bits of the med types settled ([`MedType::bit`]); 3 = inpatient and outpatient chronic.
    #[serde(skip_serializing_if = "is_default_med_types")]
    pub med_types: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// (year, per-capita disposable income of that year), ascending by year.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub income: Vec<(u16, Fen)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subsidies: Vec<Subsidy>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_caps: Vec<SharedCap>,
}

fn is_default_med_types(v: &u8) -> bool {
    *v == DEFAULT_MED_TYPES
}

const DEFAULT_MED_TYPES: u8 = 3;

/// Why a policy does not settle a claim (checked before the engine runs): the claim field and the
/// reason in Chinese.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSettled {
    pub field: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub meta: PolicyMeta,
    /// Content hash (sha256 of the canonical form, 16 hex digits); recorded on every settlement.
    pub version: String,
    /// The same hash as a number, carried by every `Settlement`.
    pub version_id: u64,
    pub layers: Vec<Layer>,
    /// Tier of (level − 1, grade code, primary care): computed from `meta.tiers` (or the level itself).
    #[serde(skip)]
    pub tier_table: [[[u8; 2]; 12]; 3],
    /// Per layer: the shared caps it counts against.
    #[serde(skip)]
    pub shared_of: Vec<Vec<usize>>,
    /// Where the values written with a mark come from, in file order. Not part of the version: the
    /// hash covers `meta` and `layers` only, so adding, changing or removing a mark, source or quote
    /// leaves the version as it is (like a comment).
    pub provenance: Vec<Provenance>,
}

// ───────────────────────────── provenance ─────────────────────────────

/// Where a value comes from (the marks of docs/SETTLEMENT.md "Sources as data").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mark {
    /// Stated in an official document (a seed).
    S,
    /// From a published guide.
    P,
    /// Illustrative: not an official figure; a bureau replaces it with its own document's.
    I,
}

impl Mark {
    pub fn parse(s: &str) -> Option<Mark> {
        match s {
            "S" => Some(Mark::S),
            "P" => Some(Mark::P),
            "I" => Some(Mark::I),
            _ => None,
        }
    }
    pub fn letter(self) -> &'static str {
        match self {
            Mark::S => "S",
            Mark::P => "P",
            Mark::I => "I",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Mark::S => "文件规定",
            Mark::P => "公开指南",
            Mark::I => "示意值",
        }
    }
}

/// The caps a value may be (for [`ValueUse::Cap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CapKind {
    PerClaim,
    Outpatient,
    Annual,
}

/// When a settlement of the layer (and branch) the value belongs to used it — what the explanation
/// counts as "the values the layer used". Levels are bit sets (bit l-1 for hospital level l).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ValueUse {
    /// Whenever the layer (branch) applies: a condition's amount, a floor, an oop cap, a ceiling.
    Always,
    /// The schedule's deductible at these levels, when no identity deductible replaced it.
    Deductible { levels: u8 },
    /// The single ratio at these levels.
    Ratio { levels: u8 },
    /// Segment `index` (its upper end and ratio) at these levels, when the base reached it.
    Segment { levels: u8, index: u8 },
    /// An identity's deductible of this amount: when it is the deductible in force.
    DeductibleFor(Fen),
    /// An identity bonus of these points: when it is the bonus applied.
    Bonus(Ratio),
    /// The repeat-stay reduction: when the deductible in force is below the schedule's.
    RepeatStay,
    /// A cap: when it limited the payment.
    Cap(CapKind),
    /// An identity's deductible written as a share of income or a factor: when it is in force.
    DeductibleRule(IdentitySet),
    /// A layer's ratio adjustment (index): when it applied.
    Adjust(u8),
}

/// The provenance of one value written as `{ value = …, mark = …, source = …, quote = … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Index of the layer in `Policy::layers`.
    pub layer: usize,
    /// Index of the branch in the layer's branches (`None`: a layer-wide value).
    pub branch: Option<usize>,
    /// What value, in Chinese: "基本医保·住院·起付线（2级）".
    pub place: String,
    /// Where it is in the file: "layers[0] (basic) → branches[0] (住院) → deductible_by_level.2".
    pub path: String,
    /// 1-based line of its layer or branch in the file.
    pub line: Option<usize>,
    /// The value as shown: "2,000.00", "85%".
    pub value: String,
    pub mark: Mark,
    /// The id of one of the policy's `[[policy.sources]]` (required for S and P).
    pub source_id: Option<String>,
    /// Words of the source the value is taken from (checked by `policy check` against the source's text).
    pub quote: Option<String>,
    pub used: ValueUse,
}

impl Policy {
    /// The policy's source with this id.
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.meta.sources.iter().find(|s| s.id.as_deref() == Some(id))
    }

    /// The values of layer `layer` that carry a mark.
    pub fn provenance_of(&self, layer: usize) -> impl Iterator<Item = &Provenance> {
        self.provenance.iter().filter(move |p| p.layer == layer)
    }
}

/// What `check_quotes` found: quotes not in their source's text (errors) and sources whose text is
/// missing (warnings: their quotes were not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuoteReport {
    pub checked: usize,
    pub problems: Vec<Problem>,
    /// (source id, its title, how many quotes could not be checked).
    pub missing_texts: Vec<(String, String, usize)>,
}

/// `text` without whitespace (line breaks of a PDF's text, spaces around numbers): quotes are compared
/// on this form.
pub fn squeeze_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Checks that each value's `quote` occurs in the text of its source, whitespace-insensitively.
/// `text_of(id)` gives a source's text (`None`: no text at hand — a warning, not an error).
pub fn check_quotes<F: FnMut(&str) -> Option<String>>(policy: &Policy, mut text_of: F) -> QuoteReport {
    let mut report = QuoteReport::default();
    let mut texts: BTreeMap<String, Option<String>> = BTreeMap::new();
    for p in &policy.provenance {
        let (Some(id), Some(quote)) = (&p.source_id, &p.quote) else { continue };
        let text = texts.entry(id.clone()).or_insert_with(|| text_of(id).map(|t| squeeze_whitespace(&t)));
        match text {
            None => {
                let title = policy.source(id).map(|s| s.title.clone()).unwrap_or_default();
                match report.missing_texts.iter_mut().find(|(i, _, _)| i == id) {
                    Some(m) => m.2 += 1,
                    None => report.missing_texts.push((id.clone(), title, 1)),
                }
            }
            Some(t) => {
                report.checked += 1;
                if !t.contains(&squeeze_whitespace(quote)) {
                    report.problems.push(Problem {
                        place: format!("{}（{}）", p.path, p.place),
                        line: p.line,
                        message: format!("引文不在来源“{id}”的原文中：“{quote}”"),
                    });
                }
            }
        }
    }
    report
}

impl Policy {
    /// The tier of a claim: an index into each branch's schedules (hospital level − 1 without tiers).
    #[inline]
    pub fn tier_of(&self, claim: &Claim) -> usize {
        let g = usize::from(claim.site.grade.code().min(11));
        usize::from(self.tier_table[claim.hosp_lv.index()][g][usize::from(claim.site.primary_care)])
    }

    /// Number of tiers (3 without `[[policy.tiers]]`).
    pub fn tier_count(&self) -> usize {
        if self.meta.tiers.is_empty() {
            3
        } else {
            self.meta.tiers.len()
        }
    }

    /// A tier's name as officials read it.
    pub fn tier_name(&self, tier: usize) -> String {
        match self.meta.tiers.get(tier) {
            Some(t) => t.name.clone(),
            None => crate::claim::HospLevel::new(tier as u8 + 1).map_or_else(|| format!("档次{}", tier + 1), |l| l.name_zh().to_string()),
        }
    }

    /// The per-capita disposable income that claims of `year` use (that of `year` − 1).
    pub fn income_for(&self, year: u16) -> Option<Fen> {
        self.meta.income.iter().find(|(y, _)| *y + 1 == year).map(|(_, f)| *f)
    }

    /// Whether the policy settles this claim: its med type, and for a deductible written as a share of
    /// income, the income of the year before. (Dates are the caller's: see [`choose`].)
    pub fn accepts(&self, claim: &Claim) -> Result<(), NotSettled> {
        if self.meta.med_types & claim.med_type.bit() == 0 {
            return Err(NotSettled {
                field: "med_type",
                reason: format!("政策“{}”不规定{}（{}）的待遇", self.meta.name, claim.med_type.name_zh(), claim.med_type.code()),
            });
        }
        let needs_income = self.layers.iter().any(|l| match &l.kind {
            LayerKind::Ratio { branches, .. } => {
                branches.iter().any(|b| b.deductible_rules.iter().any(|(_, r)| matches!(r, DeductibleRule::ShareOfIncome(_))))
            }
            _ => false,
        });
        if needs_income && self.income_for(claim.year()).is_none() {
            return Err(NotSettled {
                field: "setl_date",
                reason: format!(
                    "政策“{}”未给出 {} 年适用的上年度（{} 年）居民人均可支配收入",
                    self.meta.name,
                    claim.year(),
                    claim.year() - 1
                ),
            });
        }
        Ok(())
    }

    /// The subsidy of `year` for a person holding `ids`: the largest that applies (`Some(None)`: the
    /// whole premium).
    pub fn subsidy_for(&self, year: u16, ids: IdentitySet) -> Option<Option<Fen>> {
        let mut best: Option<Option<Fen>> = None;
        for s in self.meta.subsidies.iter().filter(|s| s.year == year && s.identities.intersects(ids)) {
            best = Some(match (best, s.amount) {
                (Some(None), _) | (_, None) => None,
                (Some(Some(a)), Some(b)) => Some(a.max(b)),
                (None, Some(b)) => Some(b),
            });
        }
        best
    }

    /// The subsidies of `year` per identity (id, fen; `None` = the whole premium), for reconciliation.
    pub fn subsidy_classes(&self, year: u16) -> Vec<(String, Option<i64>)> {
        crate::identity::ALL_IDENTITIES
            .iter()
            .filter_map(|&i| self.subsidy_for(year, IdentitySet::EMPTY.with(i)).map(|a| (i.id().to_string(), a.map(|f| f.0))))
            .collect()
    }

    pub fn layer_index(&self, id: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.id == id)
    }

    /// Whether the policy governs `region_code` on `date`.
    pub fn governs(&self, region_code: &str, date: Date) -> bool {
        (self.meta.region_code == region_code || self.meta.covers.iter().any(|c| c == region_code)) && self.in_force(date)
    }

    /// Whether `date` lies within the policy's effective dates.
    pub fn in_force(&self, date: Date) -> bool {
        date >= self.meta.effective_from && self.meta.effective_to.is_none_or(|to| date <= to)
    }

    /// Its effective dates as officials read them: "2018-01-01 至 2020-12-31" (or "起" when open-ended).
    pub fn dates_zh(&self) -> String {
        match self.meta.effective_to {
            Some(to) => format!("{} 至 {to}", self.meta.effective_from),
            None => format!("{} 起", self.meta.effective_from),
        }
    }
}

/// The policy governing a claim of insured area `admdvs` on `date` among `list`: in force on that date,
/// and for the region itself (its code or `covers`), else for the nearest enclosing region (the longest
/// code prefix: a prefecture's or province's policy covers its counties). Among equally specific ones the
/// later in the list wins (an added policy overrides a shipped one).
pub fn choose<'a>(list: &'a [Policy], admdvs: &str, date: Date) -> Option<&'a Policy> {
    let mut best: Option<(usize, &Policy)> = None;
    for p in list.iter().filter(|p| p.in_force(date)) {
        let exact = p.meta.region_code == admdvs || p.meta.covers.iter().any(|c| c == admdvs);
        let prefix = p.meta.region_code.trim_end_matches("00");
        let specificity = if exact {
            usize::MAX
        } else if prefix.len() < p.meta.region_code.len() && admdvs.starts_with(prefix) {
            prefix.len()
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity >= s) {
            best = Some((specificity, p));
        }
    }
    best.map(|(_, p)| p)
}

// ───────────────────────────── checking ─────────────────────────────

/// One problem found in a policy file: where, and what (Chinese, for the person editing the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// e.g. `layers[2] (critical) → branches[0] → segments[1]`
    pub place: String,
    /// 1-based line in the file, where known.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "第 {l} 行，{}：{}", self.place, self.message),
            None => write!(f, "{}：{}", self.place, self.message),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("政策文件有 {} 处问题：\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct PolicyErrors(pub Vec<Problem>);

/// What a value is, for its provenance: its Chinese name within its layer (and branch) and when a
/// settlement uses it.
struct What {
    zh: String,
    used: ValueUse,
}

fn what(zh: impl Into<String>, used: ValueUse) -> What {
    What { zh: zh.into(), used }
}

/// The layer (and branch) whose values are being read, for their provenance.
#[derive(Default)]
struct ValueCtx {
    layer: usize,
    layer_name: String,
    branch: Option<(usize, String)>,
}

/// A value's provenance as written: mark, source id, quote.
type Written = (Mark, Option<String>, Option<String>);

const VALUE_FORM: &str = "（写法：{ value = 2000, mark = \"S\", source = \"来源 id\", quote = \"原文\" }）";

struct Checker<'a> {
    src: &'a str,
    problems: Vec<Problem>,
    /// The policy's sources that have an id: (id, mark).
    sources: Vec<(String, Option<Mark>)>,
    ctx: ValueCtx,
    provenance: Vec<Provenance>,
    /// The policy's tiers (empty: the three hospital levels).
    tiers: Vec<Tier>,
}

impl Checker<'_> {
    fn tier_count(&self) -> usize {
        if self.tiers.is_empty() {
            3
        } else {
            self.tiers.len()
        }
    }
    /// The hospital level (1–3) of tier `t`.
    fn tier_level(&self, t: usize) -> u8 {
        self.tiers.get(t).map_or(t as u8 + 1, |x| x.level)
    }
    /// Among the keys of a by-level map, the one serving tier `t`: its id, else its level.
    fn key_for_tier<'k>(&self, keys: &[&'k String], t: usize) -> Option<&'k str> {
        if let Some(tier) = self.tiers.get(t) {
            if let Some(k) = keys.iter().find(|k| ***k == tier.id) {
                return Some(k.as_str());
            }
        }
        let lv = (self.tier_level(t)).to_string();
        keys.iter().find(|k| ***k == lv).map(|k| k.as_str())
    }
    fn key_known(&self, k: &str) -> bool {
        level_key(k).is_some() || self.tiers.iter().any(|t| t.id == k)
    }
    /// A key as officials read it: "3级" or the tier's name.
    fn key_label(&self, k: &str) -> String {
        match self.tiers.iter().find(|t| t.id == k) {
            Some(t) => t.name.clone(),
            None => format!("{k}级"),
        }
    }
    fn tier_label(&self, t: usize) -> String {
        match self.tiers.get(t) {
            Some(x) => x.name.clone(),
            None => format!("{} 级医院", t + 1),
        }
    }
    fn line_of(&self, offset: usize) -> usize {
        self.src[..offset.min(self.src.len())].bytes().filter(|&b| b == b'\n').count() + 1
    }
    fn push(&mut self, place: &str, line: Option<usize>, msg: impl Into<String>) {
        self.problems.push(Problem { place: place.to_string(), line, message: msg.into() });
    }
    /// A value as written: plain, or `{ value = …, mark = …, source = …, quote = … }`. Gives the plain
    /// value and, for the table form, its provenance once checked (`None` when it has a problem, which
    /// is reported); `None` when there is no value to read.
    fn split_value<'v>(&mut self, place: &str, line: Option<usize>, v: &'v toml::Value) -> Option<(&'v toml::Value, Option<Written>)> {
        let toml::Value::Table(t) = v else { return Some((v, None)) };
        let before = self.problems.len();
        for k in t.keys() {
            if !matches!(k.as_str(), "value" | "mark" | "source" | "quote") {
                self.push(place, line, format!("未知的键“{k}”（可用：value, mark, source, quote）{VALUE_FORM}"));
            }
        }
        let Some(value) = t.get("value") else {
            self.push(place, line, format!("缺少 value{VALUE_FORM}"));
            return None;
        };
        if value.is_table() {
            self.push(place, line, "value 应为数值本身，不能再写成表");
            return None;
        }
        let text = |ck: &mut Self, k: &str| -> Option<String> {
            match t.get(k) {
                None => None,
                Some(toml::Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    ck.push(place, line, format!("{k} 应为字符串"));
                    None
                }
            }
        };
        let mark_text = text(self, "mark");
        let source = text(self, "source");
        let quote = text(self, "quote");
        let mark = match mark_text.as_deref() {
            None => {
                self.push(place, line, format!("缺少 mark（S 文件规定、P 公开指南、I 示意值）{VALUE_FORM}"));
                None
            }
            Some(m) => Mark::parse(m).or_else(|| {
                self.push(place, line, format!("mark = “{m}” 无效（S 文件规定、P 公开指南、I 示意值）"));
                None
            }),
        };
        let ids = || self.sources.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ");
        match (&source, mark) {
            (None, Some(m @ (Mark::S | Mark::P))) => {
                let ids = ids();
                let hint = if ids.is_empty() {
                    "本政策的 [[policy.sources]] 还没有 id，请先为来源写 id".to_string()
                } else {
                    format!("可用：{ids}")
                };
                self.push(place, line, format!("mark = “{}” 的数值须用 source 写明来源（[[policy.sources]] 的 id；{hint}）", m.letter()));
            }
            (Some(id), _) => match self.sources.iter().find(|(i, _)| i == id).map(|(_, m)| *m) {
                None => {
                    let ids = ids();
                    let hint = if ids.is_empty() { "本政策的来源都没有 id".to_string() } else { format!("可用：{ids}") };
                    self.push(place, line, format!("source = “{id}” 不是本政策 [[policy.sources]] 中的来源 id（{hint}）"));
                }
                Some(Some(sm)) if mark.is_some_and(|m| m != sm) => {
                    let m = mark.expect("checked");
                    self.push(place, line, format!("来源“{id}”的标记为 {}，与数值的标记 {} 不一致", sm.letter(), m.letter()));
                }
                Some(_) => {}
            },
            _ => {}
        }
        if let Some(q) = &quote {
            if q.trim().is_empty() {
                self.push(place, line, "quote 为空（不引原文就不写 quote）");
            } else if mark == Some(Mark::I) {
                self.push(place, line, "示意值（mark = \"I\"）没有原文可引，不应写 quote");
            }
        }
        match mark {
            Some(m) if self.problems.len() == before => Some((value, Some((m, source, quote)))),
            _ => Some((value, None)),
        }
    }
    /// Keeps a value's provenance (once per place: a branch-wide value is read once per hospital level).
    fn record(&mut self, place: &str, line: Option<usize>, what: What, value: String, written: Written) {
        if self.provenance.iter().any(|p| p.path == place) {
            return;
        }
        let c = &self.ctx;
        let mut zh = c.layer_name.clone();
        if let Some((_, b)) = &c.branch {
            zh.push('·');
            zh.push_str(b);
        }
        zh.push('·');
        zh.push_str(&what.zh);
        let (mark, source_id, quote) = written;
        self.provenance.push(Provenance {
            layer: c.layer,
            branch: c.branch.as_ref().map(|b| b.0),
            place: zh,
            path: place.to_string(),
            line,
            value,
            mark,
            source_id,
            quote,
            used: what.used,
        });
    }
    fn money(&mut self, place: &str, line: Option<usize>, v: &RawMoney, what: What) -> Option<Fen> {
        let (v, written) = self.split_value(place, line, &v.0)?;
        let f = self.plain_money(place, line, v)?;
        if let Some(w) = written {
            self.record(place, line, what, f.grouped(), w);
        }
        Some(f)
    }
    fn plain_money(&mut self, place: &str, line: Option<usize>, v: &toml::Value) -> Option<Fen> {
        match v {
            toml::Value::Integer(i) if *i >= 0 && *i <= 100_000_000 => Some(Fen::yuan(*i)),
            toml::Value::Integer(_) => {
                self.push(place, line, "金额应在 0 到 1 亿元之间");
                None
            }
            toml::Value::String(s) => match Fen::parse_yuan(s) {
                Ok(f) => Some(f),
                Err(e) => {
                    self.push(place, line, e.to_string());
                    None
                }
            },
            toml::Value::Float(_) => {
                self.push(place, line, "带小数的金额请写成字符串，如 \"1234.56\"（避免浮点误差）");
                None
            }
            _ => {
                self.push(place, line, "金额应为整数（元）或字符串，如 \"1234.56\"");
                None
            }
        }
    }
    fn opt_money(&mut self, place: &str, line: Option<usize>, v: &Option<RawMoney>, what: What) -> Option<Fen> {
        v.as_ref().and_then(|m| self.money(place, line, m, what))
    }
    fn ratio(&mut self, place: &str, line: Option<usize>, v: &RawRatio, what: What) -> Option<Ratio> {
        let (v, written) = self.split_value(place, line, &v.0)?;
        let toml::Value::String(s) = v else {
            self.push(place, line, "比例应写成字符串，如 \"85%\"");
            return None;
        };
        let r = match Ratio::parse_percent(s) {
            Ok(r) => r,
            Err(e) => {
                self.push(place, line, e);
                return None;
            }
        };
        if let Some(w) = written {
            self.record(place, line, what, r.to_string(), w);
        }
        Some(r)
    }
    fn identities(&mut self, place: &str, line: Option<usize>, list: &[String]) -> IdentitySet {
        let mut set = IdentitySet::EMPTY;
        for s in list {
            match s.as_str() {
                // "poor" as a shorthand for both registered and exited (四不摘).
                "poor" => set = set.with(Identity::RegisteredPoor).with(Identity::ExitedPoor),
                other => match Identity::parse(other) {
                    Some(i) => set = set.with(i),
                    None => self.push(place, line, format!("未知的身份“{other}”（可用：poor, {}）", crate::identity::known_ids())),
                },
            }
        }
        if list.is_empty() {
            self.push(place, line, "身份列表为空");
        }
        set
    }
    fn cond(&mut self, place: &str, line: Option<usize>, c: &RawCond) -> Cond {
        let mut out = Cond::default();
        if let Some(ids) = &c.identities {
            out.identities = Some(self.identities(&format!("{place} → when.identities"), line, ids));
        }
        if let Some(mts) = &c.med_type {
            for m in mts {
                match MedType::from_code(*m) {
                    Some(mt) => out.med_types |= med_bit(mt),
                    None => self.push(
                        &format!("{place} → when.med_type"),
                        line,
                        format!("医疗类别 {m} 不受支持（21 住院，14 门诊慢特病，11 普通门诊）"),
                    ),
                }
            }
        }
        if let Some(lvs) = &c.hosp_lv {
            for l in lvs {
                if (1..=3).contains(l) {
                    out.levels |= 1 << (l - 1);
                } else {
                    self.push(&format!("{place} → when.hosp_lv"), line, format!("医院等级 {l} 无效（1、2、3）"));
                }
            }
        }
        out.in_county = c.in_county;
        out.referral_ok = c.referral_ok;
        out.major_disease = c.major_disease;
        out.primary_care = c.primary_care;
        if let Some(ts) = &c.tier {
            for t in ts {
                match self.tiers.iter().position(|x| &x.id == t) {
                    Some(i) => out.tiers |= 1 << i,
                    None if self.tiers.is_empty() => self.push(
                        &format!("{place} → when.tier"),
                        line,
                        format!("档次“{t}”不存在：本政策没有定义 [[policy.tiers]]（可用 hosp_lv）"),
                    ),
                    None => {
                        let ids: Vec<&str> = self.tiers.iter().map(|x| x.id.as_str()).collect();
                        self.push(&format!("{place} → when.tier"), line, format!("档次“{t}”不存在（可用：{}）", ids.join(", ")))
                    }
                }
            }
            if ts.is_empty() {
                self.push(&format!("{place} → when.tier"), line, "档次列表为空");
            }
        }
        if let Some(ps) = &c.place {
            for v in ps {
                match v.as_str() {
                    "outside_county" => out.places |= OUTSIDE_COUNTY,
                    other => match Place::parse(other) {
                        Ok(p) if p != Place::Unspecified => out.places |= place_bit(p),
                        _ => self.push(
                            &format!("{place} → when.place"),
                            line,
                            format!("就医地“{other}”无效（county, prefecture, province, out_of_province, outside_county）"),
                        ),
                    },
                }
            }
            if ps.is_empty() {
                self.push(&format!("{place} → when.place"), line, "就医地列表为空");
            }
            if c.in_county.is_some() {
                self.push(&format!("{place} → when.place"), line, "place 与 in_county 只能写一个");
            }
        }
        if let Some(fs) = &c.filing {
            for v in fs {
                match Filing::parse(v) {
                    Ok(f) => out.filings |= filing_bit(f),
                    Err(e) => self.push(&format!("{place} → when.filing"), line, e),
                }
            }
            if fs.is_empty() {
                self.push(&format!("{place} → when.filing"), line, "备案类型列表为空");
            }
        }
        out.total_at_least = self.opt_money(
            &format!("{place} → when.total_at_least"),
            line,
            &c.total_at_least,
            what("条件：总费用不低于", ValueUse::Always),
        );
        out.total_above =
            self.opt_money(&format!("{place} → when.total_above"), line, &c.total_above, what("条件：总费用高于", ValueUse::Always));
        out.total_below =
            self.opt_money(&format!("{place} → when.total_below"), line, &c.total_below, what("条件：总费用低于", ValueUse::Always));
        out.site = out.tiers != 0 || out.places != 0 || out.filings != 0 || out.primary_care.is_some();
        out
    }
    fn caps(&mut self, place: &str, line: Option<usize>, per: &Option<RawMoney>, out: &Option<RawMoney>, ann: &Option<RawMoney>) -> Caps {
        Caps {
            per_claim: self.opt_money(&format!("{place} → per_claim_cap"), line, per, what("单次封顶", ValueUse::Cap(CapKind::PerClaim))),
            outpatient: self.opt_money(
                &format!("{place} → outpatient_cap"),
                line,
                out,
                what("门诊年度封顶", ValueUse::Cap(CapKind::Outpatient)),
            ),
            annual: self.opt_money(&format!("{place} → annual_cap"), line, ann, what("年度封顶", ValueUse::Cap(CapKind::Annual))),
        }
    }
    /// `zh`: the schedule's Chinese prefix ("" or "3级"); `levels`: the levels the schedule serves.
    fn segments(&mut self, place: &str, line: Option<usize>, segs: &[RawSegment], deductible: Fen, zh: &str, levels: u8) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut prev: Option<Fen> = None;
        if segs.is_empty() {
            self.push(place, line, "分段为空");
        }
        for (i, s) in segs.iter().enumerate() {
            let p = format!("{place}[{i}]");
            let used = ValueUse::Segment { levels, index: i.min(usize::from(u8::MAX)) as u8 };
            let to = self.opt_money(&format!("{p} → to"), line, &s.to, what(format!("{zh}分段{}上限", i + 1), used));
            let ratio = self.ratio(&p, line, &s.ratio, what(format!("{zh}分段{}比例", i + 1), used)).unwrap_or(Ratio::ZERO);
            if s.to.is_none() && i + 1 != segs.len() {
                self.push(&p, line, "只有最后一段可以不写上限（to）");
            }
            if let (Some(t), Some(pv)) = (to, prev) {
                if t <= pv {
                    self.push(&p, line, format!("分段重叠或顺序颠倒：上限 {} 不大于上一段上限 {}", t.grouped(), pv.grouped()));
                }
            }
            if i == 0 {
                if let Some(t) = to {
                    if t <= deductible {
                        self.push(&p, line, format!("第一段上限 {} 不高于起付线 {}", t.grouped(), deductible.grouped()));
                    }
                }
            }
            if to.is_some() {
                prev = to;
            }
            out.push(Segment { to, ratio });
        }
        out
    }
}

fn level_key(k: &str) -> Option<usize> {
    match k {
        "1" => Some(0),
        "2" => Some(1),
        "3" => Some(2),
        _ => None,
    }
}

/// Parses, checks and compiles a policy file. On failure, every problem found is returned.
pub fn parse_policy(src: &str) -> Result<Policy, PolicyErrors> {
    let raw: RawPolicyFile = toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| src[..s.start.min(src.len())].bytes().filter(|&b| b == b'\n').count() + 1);
        PolicyErrors(vec![Problem { place: "文件结构".into(), line, message: format!("无法解析：{}", e.message()) }])
    })?;
    let mut ck =
        Checker { src, problems: Vec::new(), sources: Vec::new(), ctx: ValueCtx::default(), provenance: Vec::new(), tiers: Vec::new() };

    // metadata
    let m = &raw.policy;
    let meta_place = "policy";
    if m.id.trim().is_empty() || !m.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        ck.push(meta_place, None, format!("政策标识 id “{}” 应为非空的字母、数字、连字符", m.id));
    }
    for code in std::iter::once(&m.region_code).chain(m.covers.iter()) {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            ck.push(meta_place, None, format!("行政区划代码“{code}”应为 6 位数字"));
        }
    }
    if !(1990..=2100).contains(&m.year) {
        ck.push(meta_place, None, format!("年度 {} 不合理", m.year));
    }
    let from = Date::parse(&m.effective_from).map_err(|e| ck.push(meta_place, None, format!("effective_from：{e}"))).ok();
    let to = m.effective_to.as_ref().and_then(|s| Date::parse(s).map_err(|e| ck.push(meta_place, None, format!("effective_to：{e}"))).ok());
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            ck.push(meta_place, None, "失效日期早于生效日期");
        }
    }
    for (i, s) in m.sources.iter().enumerate() {
        let place = format!("policy.sources[{i}]");
        if Mark::parse(&s.mark).is_none() {
            ck.push(&place, None, format!("来源标记“{}”应为 S（文件规定）、P（公开指南）或 I（示意值）", s.mark));
        }
        if let Some(id) = &s.id {
            // The id names the source's text file (sources/<id>.txt), so it is kept to file-name characters.
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') || id.starts_with('.')
            {
                ck.push(
                    &place,
                    None,
                    format!("来源 id “{id}” 应为非空的字母、数字、连字符、下划线或点（它也是原文文件名 sources/<id>.txt）"),
                );
            } else if ck.sources.iter().any(|(x, _)| x == id) {
                ck.push(&place, None, format!("来源 id “{id}” 重复"));
            } else {
                ck.sources.push((id.clone(), Mark::parse(&s.mark)));
            }
        }
    }
    let med_types = match &m.med_types {
        None => DEFAULT_MED_TYPES,
        Some(list) => {
            let mut bits = 0;
            for c in list {
                match MedType::from_code(*c) {
                    Some(mt) => bits |= mt.bit(),
                    None => ck.push(meta_place, None, format!("med_types：医疗类别 {c} 不受支持（21 住院，14 门诊慢特病，11 普通门诊）")),
                }
            }
            if list.is_empty() {
                ck.push(meta_place, None, "med_types 为空");
            }
            bits
        }
    };
    let tier_table = compile_tiers(&mut ck, &m.tiers);
    let income = compile_income(&mut ck, &m.income, from, to);
    let subsidies = compile_subsidies(&mut ck, &m.subsidies);
    if raw.layers.is_empty() {
        ck.push("layers", None, "政策没有任何报销层");
    }
    if raw.layers.len() > MAX_LAYERS {
        ck.push("layers", None, format!("报销层不能超过 {MAX_LAYERS} 个"));
    }

    let mut layers: Vec<Layer> = Vec::new();
    let mut seen_ids: Vec<String> = Vec::new();
    for (li, sl) in raw.layers.iter().enumerate() {
        let line = Some(ck.line_of(sl.span().start));
        let l = sl.get_ref();
        let place = format!("layers[{li}] ({})", l.id);
        ck.ctx = ValueCtx { layer: li, layer_name: l.name.clone(), branch: None };
        if l.id.trim().is_empty() {
            ck.push(&place, line, "层标识 id 为空");
        } else if seen_ids.contains(&l.id) {
            ck.push(&place, line, format!("层标识“{}”重复", l.id));
        }
        let when = ck.cond(&place, line, &l.when);
        let caps = ck.caps(&place, line, &l.per_claim_cap, &l.outpatient_cap, &l.annual_cap);
        let fund = match &l.fund {
            Some(code) => match Fund::from_code(code) {
                Some(f) => Some(f),
                None => {
                    ck.push(&place, line, format!("未知的基金代码“{code}”（可用：390100, 390200, 620100, 610100, 640100, 999996）"));
                    None
                }
            },
            None => None,
        };
        let base = |ck: &mut Checker, name: &str, v: &Option<String>, allowed: &[Base]| -> Option<Base> {
            match v {
                None => {
                    ck.push(&place, line, format!("缺少 {name}"));
                    None
                }
                Some(s) => match Base::parse(s) {
                    Some(b) if allowed.contains(&b) => Some(b),
                    Some(_) => {
                        ck.push(&place, line, format!("{name} = “{s}” 不适用于此类层"));
                        None
                    }
                    None => {
                        ck.push(&place, line, format!("{name} 指向不存在的基数“{s}”（可用：compliant, compliant_remainder, total_remainder, out_of_scope, total）"));
                        None
                    }
                },
            }
        };
        let annual = |ck: &mut Checker| -> bool {
            match l.accumulation.as_deref() {
                None | Some("per_claim") => false,
                Some("annual") => true,
                Some(o) => {
                    ck.push(&place, line, format!("accumulation = “{o}” 无效（per_claim 或 annual）"));
                    false
                }
            }
        };
        let reference = |ck: &mut Checker, name: &str, v: &Option<String>| -> Reference {
            match v.as_deref().map(Reference::parse) {
                Some(Some(r)) => r,
                Some(None) => {
                    ck.push(&place, line, format!("{name} 无效（compliant 或 total）"));
                    Reference::Total
                }
                None => {
                    ck.push(&place, line, format!("缺少 {name}"));
                    Reference::Total
                }
            }
        };
        let layer_refs = |ck: &mut Checker, name: &str, ids: &Option<Vec<String>>, earlier: &[Layer]| -> Vec<usize> {
            let Some(ids) = ids else {
                ck.push(&place, line, format!("缺少 {name}"));
                return Vec::new();
            };
            let mut out = Vec::new();
            for id in ids {
                match earlier.iter().position(|x| &x.id == id) {
                    Some(i) if earlier[i].fund == Some(Fund::Hospital) => ck.push(&place, line, format!("{name} 不能包含医院承担层“{id}”")),
                    Some(i) => out.push(i),
                    None => ck.push(&place, line, format!("{name} 引用了不存在（或不在本层之前）的层“{id}”")),
                }
            }
            if ids.is_empty() {
                ck.push(&place, line, format!("{name} 为空"));
            }
            out
        };
        let ratio_field = |ck: &mut Checker, zh: &str| -> Option<Ratio> {
            match &l.ratio {
                Some(r) => ck.ratio(&format!("{place} → ratio"), line, r, what(zh, ValueUse::Always)),
                None => None,
            }
        };
        let needs_fund = |ck: &mut Checker| {
            if l.fund.is_none() {
                ck.push(&place, line, "缺少基金代码 fund");
            }
        };
        let not_branches = |ck: &mut Checker| {
            if !l.branches.is_empty() {
                ck.push(&place, line, format!("{} 类型的层不使用 branches", l.kind));
            }
        };

        let kind = match l.kind.as_str() {
            "ratio" => {
                needs_fund(&mut ck);
                if fund == Some(Fund::Hospital) {
                    ck.push(&place, line, "医院承担（999996）请用 kind = \"hospital_bears\"");
                }
                let b = base(
                    &mut ck,
                    "base",
                    &l.base,
                    &[Base::Compliant, Base::CompliantRemainder, Base::TotalRemainder, Base::OutOfScope, Base::Total],
                );
                let annual = annual(&mut ck);
                let select = match l.select.as_deref() {
                    None | Some("first") => Select::First,
                    Some("most_favourable") => Select::MostFavourable,
                    Some(o) => {
                        ck.push(&place, line, format!("select = “{o}” 无效（first 或 most_favourable）"));
                        Select::First
                    }
                };
                if l.branches.is_empty() {
                    ck.push(&place, line, "按比例支付的层至少需要一个分支（[[layers.branches]]）");
                }
                let mut branches = Vec::new();
                for (bi, sb) in l.branches.iter().enumerate() {
                    let bline = Some(ck.line_of(sb.span().start));
                    let b = sb.get_ref();
                    let bplace = format!("{place} → branches[{bi}]{}", b.name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default());
                    let bname = b.name.clone().unwrap_or_else(|| format!("分支{}", bi + 1));
                    ck.ctx.branch = Some((bi, bname.clone()));
                    // Which key of a by-level map serves each tier: the tier's own id, else its level ("1"–"3").
                    // A value is used at the tiers its key serves (for the values' provenance).
                    let n_t = ck.tier_count();
                    let all_tiers: u8 = ((1u16 << n_t) - 1) as u8;
                    let serving = |ck: &Checker, keys: Vec<&String>, k: &str| -> u8 {
                        (0..n_t).filter(|&t| ck.key_for_tier(&keys, t) == Some(k)).fold(0, |a, t| a | 1 << t)
                    };
                    let keyed = |ck: &Checker, keys: Option<Vec<&String>>| -> u8 {
                        let keys = keys.unwrap_or_default();
                        (0..n_t).filter(|&t| ck.key_for_tier(&keys, t).is_some()).fold(0, |a, t| a | 1 << t)
                    };
                    let dkeys: Vec<&String> = b.deductible_by_level.as_ref().map(|m| m.keys().collect()).unwrap_or_default();
                    let rkeys: Vec<&String> = b.ratio_by_level.as_ref().map(|m| m.keys().collect()).unwrap_or_default();
                    let skeys: Vec<&String> = b.segments_by_level.as_ref().map(|m| m.keys().collect()).unwrap_or_default();
                    let dbl = keyed(&ck, Some(dkeys.clone()));
                    let rbl = keyed(&ck, Some(rkeys.clone()));
                    let sbl = keyed(&ck, Some(skeys.clone()));
                    for (name, keys) in [("deductible_by_level", &dkeys), ("ratio_by_level", &rkeys), ("segments_by_level", &skeys)] {
                        for k in keys.iter() {
                            if !ck.key_known(k) {
                                let hint = if ck.tiers.is_empty() {
                                    "应为 1、2 或 3".to_string()
                                } else {
                                    format!(
                                        "应为 1、2、3 或档次 id（{}）",
                                        ck.tiers.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ")
                                    )
                                };
                                ck.push(&bplace, bline, format!("{name} 的键“{k}”{hint}"));
                            }
                        }
                    }
                    let bwhen = ck.cond(&bplace, bline, &b.when);
                    let base_ded = ck.opt_money(
                        &format!("{bplace} → deductible"),
                        bline,
                        &b.deductible,
                        what("起付线", ValueUse::Deductible { levels: all_tiers & !dbl }),
                    );
                    let mut ded_by = vec![base_ded; n_t];
                    if let Some(map) = &b.deductible_by_level {
                        for (k, v) in map {
                            let mask = serving(&ck, dkeys.clone(), k);
                            if mask == 0 {
                                continue;
                            }
                            let label = ck.key_label(k);
                            let d = ck.money(
                                &format!("{bplace} → deductible_by_level.{k}"),
                                bline,
                                v,
                                what(format!("起付线（{label}）"), ValueUse::Deductible { levels: mask }),
                            );
                            for (t, slot) in ded_by.iter_mut().enumerate() {
                                if mask & (1 << t) != 0 {
                                    *slot = d;
                                }
                            }
                        }
                    }
                    let mut sched: Vec<Option<Vec<Segment>>> = vec![None; n_t];
                    let count = [b.ratio.is_some(), b.ratio_by_level.is_some(), b.segments.is_some(), b.segments_by_level.is_some()]
                        .iter()
                        .filter(|x| **x)
                        .count();
                    if count == 0 {
                        ck.push(&bplace, bline, "缺少报销比例（ratio、ratio_by_level、segments 或 segments_by_level）");
                    }
                    if b.ratio.is_some() && b.segments.is_some() {
                        ck.push(&bplace, bline, "ratio 与 segments 只能写一个");
                    }
                    let wide = all_tiers & !sbl & !rbl;
                    for t in 0..n_t {
                        let d = ded_by[t].unwrap_or(Fen::ZERO);
                        let by_seg = ck.key_for_tier(&skeys, t).map(|k| (k.to_string(), &b.segments_by_level.as_ref().expect("keyed")[k]));
                        let by_ratio = ck.key_for_tier(&rkeys, t).map(|k| (k.to_string(), &b.ratio_by_level.as_ref().expect("keyed")[k]));
                        sched[t] = if let Some((k, segs)) = by_seg {
                            let mask = serving(&ck, skeys.clone(), &k);
                            let label = ck.key_label(&k);
                            Some(ck.segments(&format!("{bplace} → segments_by_level.{k}"), bline, segs, d, &label, mask))
                        } else if let Some((k, r)) = by_ratio {
                            let mask = serving(&ck, rkeys.clone(), &k);
                            let w = what(format!("报销比例（{}）", ck.key_label(&k)), ValueUse::Ratio { levels: mask });
                            Some(vec![Segment {
                                to: None,
                                ratio: ck.ratio(&format!("{bplace} → ratio_by_level.{k}"), bline, r, w).unwrap_or(Ratio::ZERO),
                            }])
                        } else if let Some(segs) = &b.segments {
                            Some(ck.segments(&format!("{bplace} → segments"), bline, segs, d, "", wide))
                        } else {
                            b.ratio.as_ref().map(|r| {
                                let w = what("报销比例", ValueUse::Ratio { levels: wide });
                                vec![Segment {
                                    to: None,
                                    ratio: ck.ratio(&format!("{bplace} → ratio"), bline, r, w).unwrap_or(Ratio::ZERO),
                                }]
                            })
                        };
                    }
                    let applies = |c: &Cond, t: usize| {
                        let lv = ck.tier_level(t);
                        (c.levels == 0 || c.levels & (1 << (lv - 1)) != 0) && (c.tiers == 0 || c.tiers & (1 << t) != 0)
                    };
                    let mut levels: Vec<Schedule> = vec![Schedule::default(); n_t];
                    let mut missing = Vec::new();
                    for t in 0..n_t {
                        match &sched[t] {
                            Some(segs) => levels[t] = Schedule { deductible: ded_by[t].unwrap_or(Fen::ZERO), segments: segs.clone() },
                            None if count > 0 && applies(&bwhen, t) && applies(&when, t) => missing.push(ck.tier_label(t)),
                            None => {}
                        }
                    }
                    if !missing.is_empty() {
                        ck.push(&bplace, bline, format!("缺少 {} 的报销比例", missing.join("、")));
                    }
                    let mut deductible_for = Vec::new();
                    let mut deductible_rules = Vec::new();
                    for (di, d) in b.deductible_for.iter().enumerate() {
                        let p = format!("{bplace} → deductible_for[{di}]");
                        let set = ck.identities(&p, bline, &d.identities);
                        let n = [d.amount.is_some(), d.share_of_income.is_some(), d.factor.is_some()].iter().filter(|x| **x).count();
                        if n != 1 {
                            ck.push(
                                &p,
                                bline,
                                "amount（金额）、share_of_income（占上年度居民人均可支配收入的比例）、factor（起付线的比例）须写且只写一个",
                            );
                        }
                        if let Some(amount) = &d.amount {
                            // The used-when test needs the amount, known only once read: peek at it.
                            let peek = match &amount.0 {
                                toml::Value::Table(t) => t.get("value").cloned(),
                                v => Some(v.clone()),
                            };
                            let amount_of = peek.and_then(|v| match v {
                                toml::Value::Integer(i) if (0..=100_000_000).contains(&i) => Some(Fen::yuan(i)),
                                toml::Value::String(s) => Fen::parse_yuan(&s).ok(),
                                _ => None,
                            });
                            let w = what(format!("起付线（{}）", set.names_zh()), ValueUse::DeductibleFor(amount_of.unwrap_or(Fen::ZERO)));
                            if let Some(a) = ck.money(&format!("{p} → amount"), bline, amount, w) {
                                deductible_for.push((set, a));
                            }
                        }
                        if let Some(r) = &d.share_of_income {
                            let w =
                                what(format!("起付线（{}，占上年度居民人均可支配收入）", set.names_zh()), ValueUse::DeductibleRule(set));
                            if let Some(x) = ck.ratio(&format!("{p} → share_of_income"), bline, r, w) {
                                deductible_rules.push((set, DeductibleRule::ShareOfIncome(x)));
                            }
                        }
                        if let Some(r) = &d.factor {
                            let w = what(format!("起付线（{}，按起付线的比例）", set.names_zh()), ValueUse::DeductibleRule(set));
                            if let Some(x) = ck.ratio(&format!("{p} → factor"), bline, r, w) {
                                deductible_rules.push((set, DeductibleRule::Factor(x)));
                            }
                        }
                    }
                    let uncapped = match &b.uncapped_for {
                        Some(list) => ck.identities(&format!("{bplace} → uncapped_for"), bline, list),
                        None => IdentitySet::EMPTY,
                    };
                    let repeat = b.repeat_stay.as_ref().map(|r| {
                        let p = format!("{bplace} → repeat_stay");
                        RepeatStay {
                            lower_by: ck
                                .opt_money(
                                    &format!("{p} → lower_by"),
                                    bline,
                                    &r.lower_by,
                                    what("年内再次住院起付线降低额", ValueUse::RepeatStay),
                                )
                                .unwrap_or(Fen::ZERO),
                            waive_same_level: if r.waive_same_level.is_empty() {
                                IdentitySet::EMPTY
                            } else {
                                ck.identities(&p, bline, &r.waive_same_level)
                            },
                            lower_each_by: ck.opt_money(
                                &format!("{p} → lower_each_by"),
                                bline,
                                &r.lower_each_by,
                                what("年内每多一次住院起付线降低额", ValueUse::RepeatStay),
                            ),
                            floor: ck.opt_money(
                                &format!("{p} → floor"),
                                bline,
                                &r.floor,
                                what("再次住院起付线最低额", ValueUse::RepeatStay),
                            ),
                            by_order: r
                                .by_order
                                .iter()
                                .flatten()
                                .enumerate()
                                .map(|(i, x)| {
                                    let w = what(format!("第 {} 次住院起付线比例", i + 1), ValueUse::RepeatStay);
                                    ck.ratio(&format!("{p} → by_order[{i}]"), bline, x, w).unwrap_or(Ratio::ONE)
                                })
                                .collect(),
                            same_tier: r.same_tier.unwrap_or(false),
                        }
                    });
                    if let Some(r) = &repeat {
                        if r.floor.is_some() && r.lower_each_by.is_none() {
                            ck.push(&format!("{bplace} → repeat_stay"), bline, "floor 只与 lower_each_by 一起使用");
                        }
                        if r.by_order.len() == 1 {
                            ck.push(
                                &format!("{bplace} → repeat_stay"),
                                bline,
                                "by_order 至少写两项（第 1 次、第 2 次 … 住院的起付线比例）",
                            );
                        }
                    }
                    let mut bonus = Vec::new();
                    for (ri, r) in b.ratio_bonus.iter().enumerate() {
                        let p = format!("{bplace} → ratio_bonus[{ri}]");
                        let set = ck.identities(&p, bline, &r.identities);
                        let peek = match &r.points.0 {
                            toml::Value::Table(t) => t.get("value").and_then(|v| v.as_str()).map(str::to_string),
                            toml::Value::String(s) => Some(s.clone()),
                            _ => None,
                        };
                        let pts_of = peek.and_then(|s| Ratio::parse_percent(&s).ok()).unwrap_or(Ratio::ZERO);
                        let w = what(format!("{}报销比例提高", set.names_zh()), ValueUse::Bonus(pts_of));
                        if let Some(pts) = ck.ratio(&format!("{p} → points"), bline, &r.points, w) {
                            bonus.push((set, pts));
                        }
                    }
                    let caps = ck.caps(&bplace, bline, &b.per_claim_cap, &b.outpatient_cap, &b.annual_cap);
                    ck.ctx.branch = None;
                    branches.push(Branch {
                        name: bname,
                        when: bwhen,
                        levels,
                        deductible_for,
                        repeat,
                        bonus,
                        caps,
                        deductible_rules,
                        uncapped,
                    });
                }
                LayerKind::Ratio { base: b.unwrap_or(Base::Compliant), annual, select, branches }
            }
            "floor_topup" => {
                needs_fund(&mut ck);
                not_branches(&mut ck);
                let r = ratio_field(&mut ck, "目标补偿比");
                if r.is_none() && l.ratio.is_none() {
                    ck.push(&place, line, "缺少目标比例 ratio");
                }
                let reference = reference(&mut ck, "reference", &l.reference);
                let counted = layer_refs(&mut ck, "counted_layers", &l.counted_layers, &layers);
                let limit =
                    base(&mut ck, "limit", &l.limit, &[Base::CompliantRemainder, Base::TotalRemainder]).unwrap_or(Base::CompliantRemainder);
                LayerKind::FloorTopup { ratio: r.unwrap_or(Ratio::ZERO), reference, counted, limit }
            }
            "oop_cap" => {
                needs_fund(&mut ck);
                not_branches(&mut ck);
                let b = base(&mut ck, "base", &l.base, &[Base::CompliantRemainder, Base::TotalRemainder]).unwrap_or(Base::TotalRemainder);
                let annual = annual(&mut ck);
                let amount = ck.opt_money(&format!("{place} → amount"), line, &l.amount, what("个人负担封顶金额", ValueUse::Always));
                let r = ratio_field(&mut ck, "个人负担封顶比例");
                if l.amount.is_none() && l.ratio.is_none() {
                    ck.push(&place, line, "个人负担封顶需要 amount（金额）或 ratio（比例），或两者");
                }
                let ratio_of = if l.ratio.is_some() { reference(&mut ck, "ratio_of", &l.ratio_of) } else { Reference::Total };
                let combine = match l.combine.as_deref() {
                    Some("either") => Combine::Either,
                    Some("both") => Combine::Both,
                    None if !(l.amount.is_some() && l.ratio.is_some()) => Combine::Either,
                    None => {
                        ck.push(&place, line, "同时设置 amount 与 ratio 时必须写 combine = \"either\"（满足其一）或 \"both\"（同时满足）");
                        Combine::Either
                    }
                    Some(o) => {
                        ck.push(&place, line, format!("combine = “{o}” 无效（either 或 both）"));
                        Combine::Either
                    }
                };
                LayerKind::OopCap { base: b, annual, amount, ratio: r, ratio_of, combine }
            }
            "ceiling" => {
                not_branches(&mut ck);
                if l.fund.is_some() {
                    ck.push(&place, line, "封顶（ceiling）层本身不支付，不应设置 fund");
                }
                let r = ratio_field(&mut ck, "报销比例上限");
                if l.ratio.is_none() {
                    ck.push(&place, line, "缺少上限比例 ratio");
                }
                let reference = reference(&mut ck, "reference", &l.reference);
                let clawback = layer_refs(&mut ck, "clawback", &l.clawback, &layers);
                LayerKind::Ceiling { ratio: r.unwrap_or(Ratio::ONE), reference, clawback }
            }
            "hospital_bears" => {
                not_branches(&mut ck);
                if fund.is_some() && fund != Some(Fund::Hospital) {
                    ck.push(&place, line, "医院承担层的基金代码应为 999996");
                }
                let b = base(&mut ck, "base", &l.base, &[Base::OutOfScope, Base::TotalRemainder, Base::CompliantRemainder])
                    .unwrap_or(Base::OutOfScope);
                LayerKind::HospitalBears { base: b }
            }
            other => {
                ck.push(&place, line, format!("未知的层类型“{other}”（可用：ratio, floor_topup, oop_cap, ceiling, hospital_bears）"));
                LayerKind::HospitalBears { base: Base::OutOfScope }
            }
        };
        let fund = if l.kind == "hospital_bears" { Some(Fund::Hospital) } else { fund };
        let mut adjust = Vec::new();
        if !l.adjust.is_empty() && l.kind != "ratio" {
            ck.push(&place, line, "只有按比例支付（ratio）的层可以写 adjust");
        }
        for (ai, a) in l.adjust.iter().enumerate() {
            let p = format!("{place} → adjust[{ai}]");
            let cond = ck.cond(&p, line, &a.when);
            let name = a.name.clone().unwrap_or_else(|| cond.describe(&ck.tiers));
            let used = ValueUse::Adjust(ai.min(usize::from(u8::MAX)) as u8);
            let factor = match &a.factor {
                Some(r) => ck.ratio(&format!("{p} → factor"), line, r, what(format!("{name}：按比例结算"), used)).unwrap_or(Ratio::ONE),
                None => Ratio::ONE,
            };
            let minus = match &a.minus_points {
                Some(r) => {
                    ck.ratio(&format!("{p} → minus_points"), line, r, what(format!("{name}：比例降低"), used)).unwrap_or(Ratio::ZERO)
                }
                None => Ratio::ZERO,
            };
            if a.factor.is_none() && a.minus_points.is_none() {
                ck.push(&p, line, "adjust 需要 factor（按比例结算，如 \"85%\"）或 minus_points（降低的百分点）");
            }
            if cond == Cond::default() {
                ck.push(&p, line, "adjust 没有条件（when），会作用于所有结算；请直接修改比例");
            }
            adjust.push(Adjust { name, when: cond, minus_points: minus, factor });
        }
        seen_ids.push(l.id.clone());
        layers.push(Layer { id: l.id.clone(), name: l.name.clone(), fund, when, kind, caps, note: l.note.clone(), adjust });
    }

    let shared_caps = compile_shared_caps(&mut ck, &raw.shared_caps, &layers);
    let mut shared_of = vec![Vec::new(); layers.len()];
    for (ci, c) in shared_caps.iter().enumerate() {
        for &l in &c.layers {
            shared_of[l].push(ci);
        }
    }
    if !ck.problems.is_empty() {
        // A branch-wide value is checked once per hospital level; report each problem once.
        let mut seen = std::collections::HashSet::new();
        ck.problems.retain(|p| seen.insert((p.place.clone(), p.line, p.message.clone())));
        return Err(PolicyErrors(ck.problems));
    }
    let meta = PolicyMeta {
        id: m.id.clone(),
        name: m.name.clone(),
        region_code: m.region_code.clone(),
        region_name: m.region_name.clone(),
        covers: m.covers.clone(),
        year: m.year,
        effective_from: from.expect("checked"),
        effective_to: to,
        sources: m
            .sources
            .iter()
            .map(|s| Source { id: s.id.clone(), mark: s.mark.clone(), title: s.title.clone(), reference: s.reference.clone() })
            .collect(),
        note: m.note.clone(),
        med_types,
        tiers: ck.tiers.clone(),
        income,
        subsidies,
        shared_caps,
    };
    // The version hashes the compiled policy, so layout, comments and how a value is written
    // (150000 or "150000", "85%" or "85.00%", plain or `{ value = …, mark = … }`) do not change it; any
    // value or name that matters does. Provenance (marks, source ids, quotes) is left out like comments:
    // it is not in `meta` or `layers` (a source's id is not serialised).
    let canonical = serde_json::to_string(&(&meta, &layers)).expect("policy serialises");
    let digest = Sha256::digest(canonical.as_bytes());
    let version: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(Policy {
        meta,
        version_id: u64::from_str_radix(&version, 16).expect("hex"),
        version,
        layers,
        tier_table,
        shared_of,
        provenance: ck.provenance,
    })
}

/// Reads `[[policy.tiers]]` into `ck.tiers` and builds the lookup (level, grade, primary care) → tier,
/// checking that every hospital a claim can name falls in a tier. Without tiers, the tier is the level.
fn compile_tiers(ck: &mut Checker, raw: &[RawTier]) -> [[[u8; 2]; 12]; 3] {
    let mut table = [[[0u8; 2]; 12]; 3];
    if raw.is_empty() {
        for (lv, row) in table.iter_mut().enumerate() {
            *row = [[lv as u8; 2]; 12];
        }
        return table;
    }
    if raw.len() > MAX_TIERS {
        ck.push("policy.tiers", None, format!("档次不能超过 {MAX_TIERS} 个"));
    }
    for (i, t) in raw.iter().enumerate().take(MAX_TIERS) {
        let place = format!("policy.tiers[{i}] ({})", t.id);
        if t.id.trim().is_empty() || !t.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            ck.push(&place, None, format!("档次 id “{}” 应为非空的字母、数字、下划线或连字符", t.id));
        } else if level_key(&t.id).is_some() {
            ck.push(&place, None, format!("档次 id “{}” 不能是 1、2、3（它们表示医院级别）", t.id));
        } else if ck.tiers.iter().any(|x| x.id == t.id) {
            ck.push(&place, None, format!("档次 id “{}” 重复", t.id));
        }
        if !(1..=3).contains(&t.level) {
            ck.push(&place, None, format!("level = {} 无效（1、2、3）", t.level));
        }
        let mut grades = 0u16;
        for g in &t.grades {
            match HospGrade::parse(g) {
                Ok(gr) if gr.is_known() => {
                    if gr.level().is_some_and(|l| l.get() != t.level) {
                        ck.push(&place, None, format!("等级 {}（{}）不属于 {} 级医院", g, gr.name_zh(), t.level));
                    }
                    grades |= 1 << gr.code();
                }
                Ok(_) => ck.push(&place, None, "grades 中有空的等级"),
                Err(e) => ck.push(&place, None, e),
            }
        }
        ck.tiers.push(Tier { id: t.id.clone(), name: t.name.clone(), level: t.level, grades, primary_care: t.primary_care });
    }
    let mut missing = Vec::new();
    for lv in 1..=3u8 {
        for g in 0..12u8 {
            let grade = HospGrade::new(g).expect("0..=11");
            if grade.level().is_some_and(|l| l.get() != lv) {
                continue;
            }
            for primary in [false, true] {
                match ck.tiers.iter().position(|t| t.matches(lv, grade, primary)) {
                    Some(i) => table[usize::from(lv - 1)][usize::from(g)][usize::from(primary)] = i as u8,
                    None => missing.push(format!("{lv}级·{}{}", GRADE_NAMES[usize::from(g)], if primary { "·基层" } else { "" })),
                }
            }
        }
    }
    if !missing.is_empty() {
        ck.push("policy.tiers", None, format!("这些医院不属于任何档次（请加一个不限 grades 的档次兜底）：{}", missing.join("、")));
    }
    table
}

fn compile_income(ck: &mut Checker, raw: &[RawIncome], from: Option<Date>, to: Option<Date>) -> Vec<(u16, Fen)> {
    let mut out: Vec<(u16, Fen)> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let place = format!("policy.income[{i}]");
        ck.ctx = ValueCtx { layer: usize::MAX, layer_name: "政策".into(), branch: None };
        let w = what(format!("{} 年居民人均可支配收入", r.year), ValueUse::Always);
        let Some(a) = ck.money(&format!("{place} → amount"), None, &r.amount, w) else { continue };
        if out.iter().any(|(y, _)| *y == r.year) {
            ck.push(&place, None, format!("{} 年的收入重复", r.year));
        } else {
            out.push((r.year, a));
        }
    }
    out.sort_by_key(|(y, _)| *y);
    if !out.is_empty() {
        if let Some(f) = from {
            let last = to.map_or(f.year(), |t| t.year());
            for y in f.year()..=last {
                if !out.iter().any(|(iy, _)| *iy + 1 == y) {
                    ck.push("policy.income", None, format!("缺少 {} 年的居民人均可支配收入（{y} 年的结算要用）", y - 1));
                }
            }
        }
    }
    out
}

fn compile_subsidies(ck: &mut Checker, raw: &[RawSubsidy]) -> Vec<Subsidy> {
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let place = format!("policy.subsidies[{i}]");
        let identities = ck.identities(&place, None, &r.identities);
        ck.ctx = ValueCtx { layer: usize::MAX, layer_name: "参保资助".into(), branch: None };
        let p = format!("{place} → amount");
        let Some((v, written)) = ck.split_value(&p, None, &r.amount.0) else { continue };
        let amount = match v {
            toml::Value::String(s) if s == "full" => {
                if let Some(w) = written {
                    ck.record(&p, None, what(format!("{} 年{}资助", r.year, identities.names_zh()), ValueUse::Always), "全额".into(), w);
                }
                None
            }
            _ => {
                let w = what(format!("{} 年{}资助", r.year, identities.names_zh()), ValueUse::Always);
                match ck.money(&p, None, &r.amount, w) {
                    Some(a) => Some(a),
                    None => continue,
                }
            }
        };
        out.push(Subsidy { year: r.year, identities, amount });
    }
    out
}

fn compile_shared_caps(ck: &mut Checker, raw: &[Spanned<RawSharedCap>], layers: &[Layer]) -> Vec<SharedCap> {
    let mut out = Vec::new();
    for (i, sc) in raw.iter().enumerate() {
        let line = Some(ck.line_of(sc.span().start));
        let c = sc.get_ref();
        let place = format!("shared_caps[{i}] ({})", c.name);
        ck.ctx = ValueCtx { layer: usize::MAX, layer_name: c.name.clone(), branch: None };
        let annual = ck.money(&format!("{place} → annual"), line, &c.annual, what("合计年度封顶", ValueUse::Always));
        let mut idx = Vec::new();
        for id in &c.layers {
            match layers.iter().position(|l| &l.id == id) {
                Some(j) if layers[j].fund.is_none_or(|f| f == Fund::Hospital) => {
                    ck.push(&place, line, format!("层“{id}”不由基金支付，不能计入合计封顶"))
                }
                Some(j) if idx.contains(&j) => ck.push(&place, line, format!("层“{id}”重复")),
                Some(j) => idx.push(j),
                None => ck.push(&place, line, format!("层“{id}”不存在")),
            }
        }
        if c.layers.len() < 2 {
            ck.push(&place, line, "合计封顶至少包括两个层（单个层请用该层的 annual_cap）");
        }
        if let Some(a) = annual {
            out.push(SharedCap { name: c.name.clone(), layers: idx, annual: a });
        }
    }
    out
}

// ───────────────────────────── description ─────────────────────────────

fn describe_caps(c: &Caps) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(x) = c.per_claim {
        v.push(format!("单次封顶 {}", x.grouped()));
    }
    if let Some(x) = c.outpatient {
        v.push(format!("门诊年封顶 {}", x.grouped()));
    }
    if let Some(x) = c.annual {
        v.push(format!("年度封顶 {}", x.grouped()));
    }
    v
}

fn describe_schedule(s: &Schedule) -> String {
    let mut out = String::new();
    if s.deductible.0 > 0 {
        out.push_str(&format!("起付线 {}，", s.deductible.grouped()));
    }
    if s.segments.len() == 1 && s.segments[0].to.is_none() {
        out.push_str(&s.segments[0].ratio.to_string());
    } else {
        let mut lo = s.deductible;
        let parts: Vec<String> = s
            .segments
            .iter()
            .map(|seg| {
                let txt = match seg.to {
                    Some(t) => format!("{}–{} {}", lo.grouped(), t.grouped(), seg.ratio),
                    None => format!("{} 以上 {}", lo.grouped(), seg.ratio),
                };
                if let Some(t) = seg.to {
                    lo = t.max(lo);
                }
                txt
            })
            .collect();
        out.push_str(&parts.join("；"));
    }
    out
}

/// One row per layer (and per branch) for `policy show` and the workbench: 序号, 层, 基金, 适用条件, 计算方法, 封顶.
pub fn describe(policy: &Policy) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for (i, l) in policy.layers.iter().enumerate() {
        let fund = l.fund.map(|f| format!("{} {}", f.code(), f.name_zh())).unwrap_or_else(|| "—".into());
        let cond = l.when.describe(&policy.meta.tiers);
        let caps = describe_caps(&l.caps).join("，");
        let no = (i + 1).to_string();
        match &l.kind {
            LayerKind::Ratio { base, annual, select, branches } => {
                let acc = if *annual { "年度累计" } else { "按次" };
                let sel = if *select == Select::MostFavourable { "，多个身份就高" } else { "" };
                rows.push([
                    no,
                    l.name.clone(),
                    fund,
                    if cond.is_empty() { "所有参保人".into() } else { cond },
                    format!("{acc}，基数：{}{sel}", base.name_zh()),
                    caps,
                ]);
                for b in branches {
                    let mut calc = Vec::new();
                    let same = b.levels.windows(2).all(|w| w[0] == w[1]);
                    if same {
                        calc.push(describe_schedule(&b.levels[0]));
                    } else {
                        for (lv, s) in b.levels.iter().enumerate() {
                            if !s.segments.is_empty() {
                                let name = if policy.meta.tiers.is_empty() { format!("{}级", lv + 1) } else { policy.tier_name(lv) };
                                calc.push(format!("{name}：{}", describe_schedule(s)));
                            }
                        }
                    }
                    for (ids, d) in &b.deductible_for {
                        calc.push(if d.0 == 0 {
                            format!("{}免起付线", ids.names_zh())
                        } else {
                            format!("{}起付线 {}", ids.names_zh(), d.grouped())
                        });
                    }
                    for (ids, r) in &b.deductible_rules {
                        calc.push(match r {
                            DeductibleRule::ShareOfIncome(x) => format!("{}起付线为上年度居民人均可支配收入的 {x}", ids.names_zh()),
                            DeductibleRule::Factor(x) => format!("{}起付线按 {x}", ids.names_zh()),
                        });
                    }
                    if let Some(r) = &b.repeat {
                        calc.extend(r.describe());
                        if !r.waive_same_level.is_empty() {
                            calc.push(format!("{}同级再次住院免起付线", r.waive_same_level.names_zh()));
                        }
                    }
                    for (ids, p) in &b.bonus {
                        calc.push(format!("{}提高 {} 个百分点", ids.names_zh(), p.to_string().trim_end_matches('%')));
                    }
                    if !b.uncapped.is_empty() {
                        calc.push(format!("{}不设封顶线", b.uncapped.names_zh()));
                    }
                    let bc = b.when.describe(&policy.meta.tiers);
                    rows.push([
                        String::new(),
                        format!("  └ {}", b.name),
                        String::new(),
                        bc,
                        calc.join("；"),
                        describe_caps(&b.caps).join("，"),
                    ]);
                }
            }
            LayerKind::FloorTopup { ratio, reference, counted, limit } => {
                let names: Vec<&str> = counted.iter().map(|&j| policy.layers[j].name.as_str()).collect();
                rows.push([
                    no,
                    l.name.clone(),
                    fund,
                    cond,
                    format!("补足至{}的 {}（扣除{}已付），不超过{}", reference.name_zh(), ratio, names.join("、"), limit.name_zh()),
                    caps,
                ]);
            }
            LayerKind::OopCap { base, annual, amount, ratio, ratio_of, combine } => {
                let mut capd = Vec::new();
                if let Some(r) = ratio {
                    capd.push(format!("{}的 {}", ratio_of.name_zh(), r));
                }
                if let Some(a) = amount {
                    capd.push(a.grouped());
                }
                let joiner = if *combine == Combine::Either { "或" } else { "且" };
                let scope = if *annual { "年度累计" } else { "单次" };
                let how = match (capd.len(), combine) {
                    (2, Combine::Either) => "（两项满足其一即止）",
                    (2, Combine::Both) => "（两项须同时满足）",
                    _ => "",
                };
                rows.push([
                    no,
                    l.name.clone(),
                    fund,
                    cond,
                    format!("{scope}{}超过 {} 的部分全额支付{how}", base.name_zh(), capd.join(&format!(" {joiner} "))),
                    caps,
                ]);
            }
            LayerKind::Ceiling { ratio, reference, clawback } => {
                let names: Vec<&str> = clawback.iter().map(|&j| policy.layers[j].name.as_str()).collect();
                rows.push([
                    no,
                    l.name.clone(),
                    fund,
                    cond,
                    format!("各基金合计不超过{}的 {}，超出部分依次从{}扣回", reference.name_zh(), ratio, names.join("、")),
                    caps,
                ]);
            }
            LayerKind::HospitalBears { base } => {
                rows.push([no, l.name.clone(), fund, cond, format!("{}由医院承担，患者不负担", base.name_zh()), caps]);
            }
        }
        for a in &l.adjust {
            rows.push([
                String::new(),
                format!("  └ 比例调整：{}", a.name),
                String::new(),
                a.when.describe(&policy.meta.tiers),
                a.describe(),
                String::new(),
            ]);
        }
    }
    for c in &policy.meta.shared_caps {
        let names: Vec<&str> = c.layers.iter().map(|&j| policy.layers[j].name.as_str()).collect();
        rows.push([
            "合计".into(),
            c.name.clone(),
            String::new(),
            String::new(),
            format!("{}年度合计支付不超过 {}", names.join("、"), c.annual.grouped()),
            format!("年度合计封顶 {}", c.annual.grouped()),
        ]);
    }
    rows
}

impl Adjust {
    /// "比例降低 10 个百分点，按 85% 结算".
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.minus_points.0 > 0 {
            v.push(format!("比例降低 {} 个百分点", self.minus_points.to_string().trim_end_matches('%')));
        }
        if self.factor != Ratio::ONE {
            v.push(format!("按 {} 结算", self.factor));
        }
        v.join("，")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small policy whose critical layer's values are given by `branch` (TOML lines of the branch).
    fn with_branch(branch: &str) -> String {
        format!(
            r#"
[policy]
id = "test-sources"
name = "来源测试"
region_code = "620422"
year = 2018
effective_from = "2018-01-01"

[[policy.sources]]
id = "doc"
mark = "S"
title = "某县文件"

[[policy.sources]]
id = "guide"
mark = "P"
title = "某院指南"

[[policy.sources]]
mark = "I"
title = "示意值"

[[layers]]
id = "critical"
name = "大病保险"
fund = "390200"
kind = "ratio"
base = "compliant_remainder"
accumulation = "annual"
annual_cap = {{ value = 300000, mark = "I" }}

[[layers.branches]]
name = "分段"
{branch}
"#
        )
    }

    fn problems(src: &str) -> Vec<Problem> {
        parse_policy(src).map(|_| Vec::new()).unwrap_or_else(|e| e.0)
    }

    #[test]
    fn a_value_may_carry_its_mark_source_and_quote() {
        let p = parse_policy(&with_branch(
            r#"deductible = { value = 5000, mark = "S", source = "doc", quote = "超过5000元的部分" }
deductible_for = [{ identities = ["poor"], amount = { value = "2000.00", mark = "S", source = "doc" } }]
segments = [{ to = { value = 50000, mark = "P", source = "guide" }, ratio = "50%" }, { ratio = { value = "60%", mark = "I" } }]"#,
        ))
        .unwrap();
        type Row<'a> = (&'a str, &'a str, &'a str, Mark, Option<&'a str>, Option<&'a str>);
        let got: Vec<Row> = p
            .provenance
            .iter()
            .map(|v| (v.place.as_str(), v.path.as_str(), v.value.as_str(), v.mark, v.source_id.as_deref(), v.quote.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("大病保险·年度封顶", "layers[0] (critical) → annual_cap", "300,000.00", Mark::I, None, None),
                (
                    "大病保险·分段·起付线",
                    "layers[0] (critical) → branches[0] (分段) → deductible",
                    "5,000.00",
                    Mark::S,
                    Some("doc"),
                    Some("超过5000元的部分")
                ),
                (
                    "大病保险·分段·分段1上限",
                    "layers[0] (critical) → branches[0] (分段) → segments[0] → to",
                    "50,000.00",
                    Mark::P,
                    Some("guide"),
                    None
                ),
                ("大病保险·分段·分段2比例", "layers[0] (critical) → branches[0] (分段) → segments[1]", "60%", Mark::I, None, None),
                (
                    "大病保险·分段·起付线（建档立卡贫困人口、已脱贫人口）",
                    "layers[0] (critical) → branches[0] (分段) → deductible_for[0] → amount",
                    "2,000.00",
                    Mark::S,
                    Some("doc"),
                    None
                ),
            ]
        );
        assert_eq!(p.provenance[0].branch, None);
        assert_eq!(p.provenance[1].branch, Some(0));
        assert_eq!(p.provenance[1].used, ValueUse::Deductible { levels: 7 });
        assert_eq!(p.provenance[4].used, ValueUse::DeductibleFor(Fen::yuan(2000)));
        assert_eq!(p.source("doc").map(|s| s.title.as_str()), Some("某县文件"));
        // The same values written plain: the same policy, the same version, no provenance.
        let plain = parse_policy(&with_branch(
            r#"deductible = 5000
deductible_for = [{ identities = ["poor"], amount = 2000 }]
segments = [{ to = 50000, ratio = "50%" }, { ratio = "60%" }]"#,
        ))
        .unwrap();
        assert_eq!(plain.version, p.version);
        assert_eq!(plain.layers, p.layers);
        assert_eq!(plain.provenance.len(), 1, "only the layer's annual cap");
    }

    #[test]
    fn a_bad_mark_source_or_quote_is_reported_in_chinese_with_its_place() {
        let cases: [(&str, &str, &str); 11] = [
            (r#"ratio = { value = "50%" }"#, "branches[0] (分段) → ratio", "缺少 mark"),
            (r#"ratio = { value = "50%", mark = "s" }"#, "→ ratio", "mark = “s” 无效"),
            (r#"ratio = { mark = "I" }"#, "→ ratio", "缺少 value"),
            (r#"ratio = { value = "50%", mark = "I", note = "x" }"#, "→ ratio", "未知的键“note”"),
            (r#"ratio = { value = "50%", mark = "S" }"#, "→ ratio", "须用 source 写明来源（[[policy.sources]] 的 id；可用：doc, guide）"),
            (r#"ratio = { value = "50%", mark = "S", source = "nowhere" }"#, "→ ratio", "source = “nowhere” 不是本政策"),
            (r#"ratio = { value = "50%", mark = "S", source = "guide" }"#, "→ ratio", "来源“guide”的标记为 P，与数值的标记 S 不一致"),
            (r#"ratio = { value = "50%", mark = "S", source = "doc", quote = " " }"#, "→ ratio", "quote 为空"),
            (r#"ratio = { value = "50%", mark = "I", quote = "原文" }"#, "→ ratio", "不应写 quote"),
            (r#"ratio = { value = { value = "50%" }, mark = "I" }"#, "→ ratio", "不能再写成表"),
            (r#"ratio = 50"#, "→ ratio", "比例应写成字符串"),
        ];
        for (branch, place, message) in cases {
            let ps = problems(&with_branch(branch));
            assert!(
                ps.iter().any(|p| p.place.contains(place) && p.message.contains(message) && p.line.is_some()),
                "{branch}: expected {place} / {message} in {ps:#?}"
            );
        }
        // A float inside the table form is refused as it is outside it.
        let ps = problems(&with_branch("ratio = \"50%\"\nannual_cap = { value = 1500.5, mark = \"I\" }"));
        assert!(ps.iter().any(|p| p.place.ends_with("annual_cap") && p.message.contains("字符串")), "{ps:#?}");
    }

    #[test]
    fn source_ids_are_file_names_and_unique() {
        let src = with_branch("ratio = \"50%\"");
        let ps = problems(&src.replacen("id = \"guide\"", "id = \"doc\"", 1));
        assert!(ps.iter().any(|p| p.place == "policy.sources[1]" && p.message.contains("重复")), "{ps:#?}");
        let ps = problems(&src.replacen("id = \"guide\"", "id = \"../guide\"", 1));
        assert!(ps.iter().any(|p| p.place == "policy.sources[1]" && p.message.contains("sources/<id>.txt")), "{ps:#?}");
        // A file whose sources have no id stays valid as long as no value names one.
        let old = src.replace("id = \"doc\"\n", "").replace("id = \"guide\"\n", "");
        assert!(parse_policy(&old).is_ok());
        let ps = problems(&old.replacen("ratio = \"50%\"", "ratio = { value = \"50%\", mark = \"P\" }", 1));
        assert!(ps.iter().any(|p| p.message.contains("还没有 id")), "{ps:#?}");
    }

    #[test]
    fn quotes_are_found_whitespace_insensitively() {
        let p = parse_policy(&with_branch(
            r#"ratio = { value = "50%", mark = "S", source = "doc", quote = "超过 5000 元的部分 纳入大病保险" }"#,
        ))
        .unwrap();
        let text = "个人自负合规医疗费用超过5000\n\n元的部分纳入大病保险，按比例分段递增报销";
        let r = check_quotes(&p, |id| (id == "doc").then(|| text.to_string()));
        assert_eq!((r.checked, r.problems.len(), r.missing_texts.len()), (1, 0, 0));
        let r = check_quotes(&p, |_| Some("别的文件".to_string()));
        assert_eq!(r.problems.len(), 1);
        assert!(r.problems[0].place.contains("大病保险·分段·报销比例") && r.problems[0].line.is_some(), "{}", r.problems[0]);
    }
}
