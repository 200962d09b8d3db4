//! Policy as data (POLICY §2.2): a region's TOML file, checked and compiled into the form the engine
//! runs. `check` reports *every* problem with its place; the version of a policy is the hash of its
//! content (comments and layout do not change it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::claim::{Claim, MedType};
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
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeductibleFor {
    pub identities: Vec<String>,
    pub amount: RawMoney,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRepeat {
    pub lower_by: Option<RawMoney>,
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
}

fn med_bit(m: MedType) -> u8 {
    match m {
        MedType::Inpatient => 1,
        MedType::OutpatientChronic => 2,
    }
}

impl Cond {
    #[inline]
    pub fn matches(&self, claim: &Claim, ids: IdentitySet) -> bool {
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

    /// Chinese description, "" when unconditional.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.identities {
            parts.push(s.names_zh());
        }
        match self.med_types {
            1 => parts.push("住院".into()),
            2 => parts.push("门诊慢特病".into()),
            _ => {}
        }
        if self.levels != 0 && self.levels != 7 {
            let lv: Vec<String> = (1..=3).filter(|l| self.levels & (1 << (l - 1)) != 0).map(|l| l.to_string()).collect();
            parts.push(format!("{}级医院", lv.join("/")));
        }
        if let Some(v) = self.in_county {
            parts.push(if v { "县域内".into() } else { "县域外".into() });
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Branch {
    pub name: String,
    pub when: Cond,
    /// Index 0..3 = hospital level 1..3.
    pub levels: [Schedule; 3],
    pub deductible_for: Vec<(IdentitySet, Fen)>,
    pub repeat: Option<RepeatStay>,
    pub bonus: Vec<(IdentitySet, Ratio)>,
    pub caps: Caps,
}

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub meta: PolicyMeta,
    /// Content hash (sha256 of the canonical form, 16 hex digits); recorded on every settlement.
    pub version: String,
    /// The same hash as a number, carried by every `Settlement`.
    pub version_id: u64,
    pub layers: Vec<Layer>,
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
}

impl Checker<'_> {
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
                    None => {
                        self.push(&format!("{place} → when.med_type"), line, format!("医疗类别 {m} 不受支持（21 住院，14 门诊慢特病）"))
                    }
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
    let mut ck = Checker { src, problems: Vec::new(), sources: Vec::new(), ctx: ValueCtx::default(), provenance: Vec::new() };

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
                    // The levels each way of writing a schedule serves (for the values' provenance): a value
                    // by level wins over the branch-wide one.
                    let key_mask = |keys: Option<Vec<&String>>| -> u8 {
                        keys.unwrap_or_default().into_iter().filter_map(|k| level_key(k)).fold(0, |a, i| a | 1 << i)
                    };
                    let dbl = key_mask(b.deductible_by_level.as_ref().map(|m| m.keys().collect()));
                    let rbl = key_mask(b.ratio_by_level.as_ref().map(|m| m.keys().collect()));
                    let sbl = key_mask(b.segments_by_level.as_ref().map(|m| m.keys().collect()));
                    let bwhen = ck.cond(&bplace, bline, &b.when);
                    let base_ded = ck.opt_money(
                        &format!("{bplace} → deductible"),
                        bline,
                        &b.deductible,
                        what("起付线", ValueUse::Deductible { levels: 7 & !dbl }),
                    );
                    let mut ded_by = [base_ded; 3];
                    if let Some(map) = &b.deductible_by_level {
                        for (k, v) in map {
                            match level_key(k) {
                                Some(i) => {
                                    ded_by[i] = ck.money(
                                        &format!("{bplace} → deductible_by_level.{k}"),
                                        bline,
                                        v,
                                        what(format!("起付线（{k}级）"), ValueUse::Deductible { levels: 1 << i }),
                                    )
                                }
                                None => ck.push(&bplace, bline, format!("deductible_by_level 的键“{k}”应为 1、2 或 3")),
                            }
                        }
                    }
                    let mut sched: [Option<Vec<Segment>>; 3] = [None, None, None];
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
                    for lv in 0..3 {
                        let d = ded_by[lv].unwrap_or(Fen::ZERO);
                        let by_seg = b.segments_by_level.as_ref().and_then(|m| m.get(&(lv + 1).to_string()));
                        let by_ratio = b.ratio_by_level.as_ref().and_then(|m| m.get(&(lv + 1).to_string()));
                        let wide = 7 & !sbl & !rbl;
                        sched[lv] = if let Some(segs) = by_seg {
                            Some(ck.segments(
                                &format!("{bplace} → segments_by_level.{}", lv + 1),
                                bline,
                                segs,
                                d,
                                &format!("{}级", lv + 1),
                                1 << lv,
                            ))
                        } else if let Some(r) = by_ratio {
                            let w = what(format!("报销比例（{}级）", lv + 1), ValueUse::Ratio { levels: 1 << lv });
                            Some(vec![Segment {
                                to: None,
                                ratio: ck.ratio(&format!("{bplace} → ratio_by_level.{}", lv + 1), bline, r, w).unwrap_or(Ratio::ZERO),
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
                    for map_keys in [
                        b.segments_by_level.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>()),
                        b.ratio_by_level.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>()),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        for k in map_keys {
                            if level_key(&k).is_none() {
                                ck.push(&bplace, bline, format!("按等级设置的键“{k}”应为 1、2 或 3"));
                            }
                        }
                    }
                    let applies_at = |lv: usize| bwhen.levels == 0 || bwhen.levels & (1 << lv) != 0;
                    let applies_in = |lv: usize| when.levels == 0 || when.levels & (1 << lv) != 0;
                    let mut levels: [Schedule; 3] = Default::default();
                    for lv in 0..3 {
                        match &sched[lv] {
                            Some(segs) => levels[lv] = Schedule { deductible: ded_by[lv].unwrap_or(Fen::ZERO), segments: segs.clone() },
                            None if count > 0 && applies_at(lv) && applies_in(lv) => {
                                ck.push(&bplace, bline, format!("缺少 {} 级医院的报销比例", lv + 1));
                            }
                            None => {}
                        }
                    }
                    let mut deductible_for = Vec::new();
                    for (di, d) in b.deductible_for.iter().enumerate() {
                        let p = format!("{bplace} → deductible_for[{di}]");
                        let set = ck.identities(&p, bline, &d.identities);
                        // The used-when test needs the amount, known only once read: peek at it.
                        let peek = match &d.amount.0 {
                            toml::Value::Table(t) => t.get("value").cloned(),
                            v => Some(v.clone()),
                        };
                        let amount_of = peek.and_then(|v| match v {
                            toml::Value::Integer(i) if (0..=100_000_000).contains(&i) => Some(Fen::yuan(i)),
                            toml::Value::String(s) => Fen::parse_yuan(&s).ok(),
                            _ => None,
                        });
                        let w = what(format!("起付线（{}）", set.names_zh()), ValueUse::DeductibleFor(amount_of.unwrap_or(Fen::ZERO)));
                        if let Some(a) = ck.money(&format!("{p} → amount"), bline, &d.amount, w) {
                            deductible_for.push((set, a));
                        }
                    }
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
                        }
                    });
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
                    branches.push(Branch { name: bname, when: bwhen, levels, deductible_for, repeat, bonus, caps });
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
        seen_ids.push(l.id.clone());
        layers.push(Layer { id: l.id.clone(), name: l.name.clone(), fund, when, kind, caps, note: l.note.clone() });
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
    };
    // The version hashes the compiled policy, so layout, comments and how a value is written
    // (150000 or "150000", "85%" or "85.00%", plain or `{ value = …, mark = … }`) do not change it; any
    // value or name that matters does. Provenance (marks, source ids, quotes) is left out like comments:
    // it is not in `meta` or `layers` (a source's id is not serialised).
    let canonical = serde_json::to_string(&(&meta, &layers)).expect("policy serialises");
    let digest = Sha256::digest(canonical.as_bytes());
    let version: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(Policy { meta, version_id: u64::from_str_radix(&version, 16).expect("hex"), version, layers, provenance: ck.provenance })
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
        let cond = l.when.describe();
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
                    let same = b.levels[0] == b.levels[1] && b.levels[1] == b.levels[2];
                    if same {
                        calc.push(describe_schedule(&b.levels[0]));
                    } else {
                        for (lv, s) in b.levels.iter().enumerate() {
                            if !s.segments.is_empty() {
                                calc.push(format!("{}级：{}", lv + 1, describe_schedule(s)));
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
                    if let Some(r) = &b.repeat {
                        if r.lower_by.0 > 0 {
                            calc.push(format!("年内再次住院起付线降低 {}", r.lower_by.grouped()));
                        }
                        if !r.waive_same_level.is_empty() {
                            calc.push(format!("{}同级再次住院免起付线", r.waive_same_level.names_zh()));
                        }
                    }
                    for (ids, p) in &b.bonus {
                        calc.push(format!("{}提高 {} 个百分点", ids.names_zh(), p.to_string().trim_end_matches('%')));
                    }
                    let bc = b.when.describe();
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
    }
    rows
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
