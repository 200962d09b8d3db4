//! The medical-insurance catalogue (医保目录) as a rule: how one fee line of a 2301 upload splits into
//! the four parts of POLICY §2.1 — 全自费 (`fulamt_ownpay`), 超限价自付 (`overlmt`), 先行自付
//! (`preselfpay`) and 符合政策范围 (`inscp`) — given the catalogue entry of its item.
//!
//! Pure: the catalogue entry ([`ItemRule`]) comes from the store (`store::catalogue`), the line from the
//! hospital. Money is integer fen, ratios basis points, quantities integer ten-thousandths ([`Qty`]);
//! no `f64` anywhere.
//!
//! ## Readings
//!
//! The national interface documents fix the fields (`chrgitm_lv`, `selfpay_prop`,
//! `hilist_pric_uplmt_amt`, `lmt_used_flag`, `hosp_appr_flag`) but not the arithmetic; these are the
//! readings this module implements, in the order they apply:
//!
//! 1. **丙类 (`chrgitm_lv` 03)**: outside the list — the whole amount is 全自费; nothing else applies.
//! 2. **Restricted item refused**: an item with 限制使用标志 (`lmt_used_flag` = 1) whose line says
//!    `hosp_appr_flag` = "2" (医院审批不通过 / 转自费) is wholly 全自费. Any other flag ("1" 已审批, "0",
//!    absent) leaves the line in the list: the platform cannot see the indication, the hospital answers
//!    for it and fund supervision audits it afterwards.
//! 3. **Price ceiling (最高限价)**: with a ceiling per unit, the amount allowed is
//!    `round_half_away(pric_uplmt × cnt)`; `overlmt = max(0, amount − allowed)`. When the line's unit
//!    price `pric` is given and is within the ceiling, nothing is over the limit (`overlmt = 0`): a
//!    difference then comes from the hospital's rounding of the amount, not from the price.
//! 4. **Within the list** (`amount − overlmt`): 甲类 (01) is all 符合政策范围; 乙类 (02) pays its
//!    先行自付比例 first: `preselfpay = round_half_away(within × selfpay_prop_bp / 10000)`,
//!    `inscp = within − preselfpay`. A 甲类 item's `selfpay_prop` is not applied (甲类 has none).
//!
//! The four parts are never negative and always add up to the amount (`assert!`, release builds too).
//! The split reports the ratio it applied (`selfpay_prop_bp`: 10 000 for a wholly self-paid line, 0 for
//! 甲类) and the ceiling, as the national 2301 answer carries them.

use std::fmt;

use crate::money::{div_round_half_away, Fen, BP_ONE, MAX_FEN};

/// 收费项目等级 (`chrgitm_lv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChrgitmLv {
    /// 01 甲类: paid within the policy in full.
    A,
    /// 02 乙类: the insured pays a share first (先行自付), the rest is within the policy.
    B,
    /// 03 丙类: outside the list, paid by the insured.
    C,
}

impl ChrgitmLv {
    pub const ALL: [ChrgitmLv; 3] = [ChrgitmLv::A, ChrgitmLv::B, ChrgitmLv::C];

    /// The national code: "01", "02", "03".
    pub fn code(self) -> &'static str {
        match self {
            ChrgitmLv::A => "01",
            ChrgitmLv::B => "02",
            ChrgitmLv::C => "03",
        }
    }

    /// "01" / "1" / "甲" / "甲类" (and 乙, 丙 likewise); `None` for anything else.
    pub fn parse(s: &str) -> Option<ChrgitmLv> {
        match s.trim() {
            "01" | "1" | "甲" | "甲类" => Some(ChrgitmLv::A),
            "02" | "2" | "乙" | "乙类" => Some(ChrgitmLv::B),
            "03" | "3" | "丙" | "丙类" => Some(ChrgitmLv::C),
            _ => None,
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            ChrgitmLv::A => "甲类",
            ChrgitmLv::B => "乙类",
            ChrgitmLv::C => "丙类",
        }
    }
}

impl fmt::Display for ChrgitmLv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

/// 目录类别 (`list_type`), the national dictionary's codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListType {
    /// 101 西药中成药
    WesternAndPatent,
    /// 102 中药饮片
    HerbalPieces,
    /// 103 自制剂 (a hospital's own preparations)
    SelfPrepared,
    /// 104 民族药
    Ethnic,
    /// 201 医疗服务项目
    MedicalService,
    /// 301 医用耗材
    Consumable,
}

impl ListType {
    pub const ALL: [ListType; 6] = [
        ListType::WesternAndPatent,
        ListType::HerbalPieces,
        ListType::SelfPrepared,
        ListType::Ethnic,
        ListType::MedicalService,
        ListType::Consumable,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ListType::WesternAndPatent => "101",
            ListType::HerbalPieces => "102",
            ListType::SelfPrepared => "103",
            ListType::Ethnic => "104",
            ListType::MedicalService => "201",
            ListType::Consumable => "301",
        }
    }

    /// The code ("101") or the name ("西药中成药").
    pub fn parse(s: &str) -> Option<ListType> {
        let t = s.trim();
        ListType::ALL.into_iter().find(|l| l.code() == t || l.name_zh() == t)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            ListType::WesternAndPatent => "西药中成药",
            ListType::HerbalPieces => "中药饮片",
            ListType::SelfPrepared => "自制剂",
            ListType::Ethnic => "民族药",
            ListType::MedicalService => "医疗服务项目",
            ListType::Consumable => "医用耗材",
        }
    }
}

/// 医疗收费项目类别 (`med_chrgitm_type`): the national dictionary's 14 classes, code → name.
pub const MED_CHRGITM_TYPES: [(&str, &str); 14] = [
    ("01", "床位费"),
    ("02", "诊察费"),
    ("03", "检查费"),
    ("04", "化验费"),
    ("05", "治疗费"),
    ("06", "手术费"),
    ("07", "护理费"),
    ("08", "卫生材料费"),
    ("09", "西药费"),
    ("10", "中药饮片费"),
    ("11", "中成药费"),
    ("12", "一般诊疗费"),
    ("13", "挂号费"),
    ("14", "其他费"),
];

/// The name of a 医疗收费项目类别 code ("09" → "西药费").
pub fn med_chrgitm_type_zh(code: &str) -> Option<&'static str> {
    MED_CHRGITM_TYPES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// What the catalogue says about one item on a date: everything [`classify`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemRule {
    pub chrgitm_lv: ChrgitmLv,
    /// 先行自付比例 in basis points (0..=10 000); applied to 乙类 only.
    pub selfpay_prop_bp: i64,
    /// 最高限价 per unit (医保目录定价上限金额), if any.
    pub pric_uplmt: Option<Fen>,
    /// 限制使用标志: the item is paid only within its 限定支付范围.
    pub lmt_used_flag: bool,
}

/// Largest quantity of one line: a million units (`cnt` ≤ 1 000 000).
pub const MAX_QTY: i64 = 1_000_000 * QTY_ONE;
/// One unit in [`Qty`]'s ten-thousandths.
pub const QTY_ONE: i64 = 10_000;

/// A quantity (`cnt`) exactly: integer ten-thousandths of a unit ("2.5" = 25 000). Non-negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Qty(pub i64);

/// A unit price (`pric`) exactly: integer millionths of a yuan (= ten-thousandths of a fen), as the
/// national 2301 `pric` carries up to 6 decimals. Non-negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitPrice(pub i64);

/// A value of the catalogue or a fee line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("数量为空")]
    EmptyQty,
    #[error("数量“{0}”不是有效数字（如 2、0.5，最多 4 位小数）")]
    BadQty(String),
    #[error("数量“{0}”超过 4 位小数")]
    QtyDecimals(String),
    #[error("数量“{0}”为负数")]
    NegativeQty(String),
    #[error("数量“{0}”超出上限（1,000,000）")]
    QtyTooLarge(String),
    #[error("单价“{0}”不是有效金额（元，最多 6 位小数）")]
    BadPrice(String),
    #[error("单价“{0}”为负数")]
    NegativePrice(String),
    #[error("单价“{0}”超出上限（1 亿元）")]
    PriceTooLarge(String),
    #[error("比例“{0}”不是 0 到 1 之间的小数（如 0.1，最多 4 位小数；或百分数如 10%）")]
    BadProp(String),
    #[error("金额 {0} 元为负数")]
    NegativeAmount(Fen),
    #[error("金额 {0} 元超出上限（1 亿元）")]
    AmountTooLarge(Fen),
    #[error("先行自付比例 {0} 不在 0–10000 基点之间")]
    PropOutOfRange(i64),
    #[error("最高限价 {0} 元无效")]
    BadCeiling(Fen),
}

/// Splits "12.345" into (sign, integer digits, fraction digits); `None` unless it is plain decimal text.
fn decimal_parts(t: &str) -> Option<(bool, &str, &str)> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (i, f) = body.split_once('.').unwrap_or((body, ""));
    if (i.is_empty() && f.is_empty()) || !i.bytes().all(|b| b.is_ascii_digit()) || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((neg, i, f))
}

/// `int.frac` scaled by 10^scale, exactly; `None` when a non-zero digit lies beyond `scale` decimals or
/// the value exceeds `max`.
fn scaled(int: &str, frac: &str, scale: usize, max: i64) -> Result<i64, bool> {
    if frac.len() > scale && frac[scale..].bytes().any(|b| b != b'0') {
        return Err(true);
    }
    let digits = int.trim_start_matches('0');
    if digits.len() > 15 {
        return Err(false);
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        v = v * 10 + i64::from(b - b'0');
    }
    let mut fb = frac.bytes();
    for _ in 0..scale {
        v = v.checked_mul(10).ok_or(false)? + fb.next().map_or(0, |b| i64::from(b - b'0'));
    }
    if v > max {
        return Err(false);
    }
    Ok(v)
}

impl Qty {
    /// Whole units.
    pub const fn units(n: i64) -> Qty {
        Qty(n * QTY_ONE)
    }

    /// Parses "2", "2.5", "0.0001" (at most 4 decimals that are not zero; no sign, no exponent).
    pub fn parse(s: &str) -> Result<Qty, CatalogueError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(CatalogueError::EmptyQty);
        }
        let (neg, i, f) = decimal_parts(t).ok_or_else(|| CatalogueError::BadQty(t.to_string()))?;
        let v = scaled(i, f, 4, MAX_QTY).map_err(|decimals| {
            if decimals {
                CatalogueError::QtyDecimals(t.to_string())
            } else {
                CatalogueError::QtyTooLarge(t.to_string())
            }
        })?;
        if neg && v != 0 {
            return Err(CatalogueError::NegativeQty(t.to_string()));
        }
        Ok(Qty(v))
    }
}

impl fmt::Display for Qty {
    /// "2", "2.5", "0.0001": no trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (i, r) = (self.0 / QTY_ONE, self.0 % QTY_ONE);
        if r == 0 {
            write!(f, "{i}")
        } else {
            let frac = format!("{r:04}");
            write!(f, "{i}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl UnitPrice {
    /// Millionths of a yuan per fen.
    pub const PER_FEN: i64 = 10_000;

    pub const fn from_fen(f: Fen) -> UnitPrice {
        UnitPrice(f.0 * UnitPrice::PER_FEN)
    }

    /// Parses a price in yuan with at most 6 decimals ("12.5", "0.000123").
    pub fn parse_yuan(s: &str) -> Result<UnitPrice, CatalogueError> {
        let t = s.trim();
        let (neg, i, f) = decimal_parts(t).ok_or_else(|| CatalogueError::BadPrice(t.to_string()))?;
        let v = scaled(i, f, 6, MAX_FEN * UnitPrice::PER_FEN).map_err(|decimals| {
            if decimals {
                CatalogueError::BadPrice(t.to_string())
            } else {
                CatalogueError::PriceTooLarge(t.to_string())
            }
        })?;
        if neg && v != 0 {
            return Err(CatalogueError::NegativePrice(t.to_string()));
        }
        Ok(UnitPrice(v))
    }
}

/// Parses a ratio 0–1 as the national `selfpay_prop` carries it ("0.1", "0.05", "1", at most 4
/// decimals), or a percentage ("10%", "7.5%", at most 2 decimals), into basis points.
pub fn parse_prop_bp(s: &str) -> Result<i64, CatalogueError> {
    let t = s.trim();
    let bad = || CatalogueError::BadProp(t.to_string());
    let (v, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim(), 2),
        None => (t, 4),
    };
    let (neg, i, f) = decimal_parts(v).ok_or_else(bad)?;
    if neg {
        return Err(bad());
    }
    let bp = scaled(i, f, scale, if scale == 2 { 10_000 } else { BP_ONE }).map_err(|_| bad())?;
    Ok(bp)
}

/// Basis points as the national decimal ratio: 1000 → "0.1", 10000 → "1", 0 → "0".
pub fn prop_text(bp: i64) -> String {
    let (i, r) = (bp / BP_ONE, bp % BP_ONE);
    if r == 0 {
        i.to_string()
    } else {
        format!("{i}.{}", format!("{r:04}").trim_end_matches('0'))
    }
}

/// Why a line split as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitBasis {
    /// 丙类: the whole amount is 全自费.
    OutsideList,
    /// A restricted item the hospital did not approve (`hosp_appr_flag` = "2").
    NotApproved,
    /// Within the list (甲类 or 乙类), after the price ceiling.
    InList,
}

/// One fee line split by the catalogue. `fulamt_ownpay + overlmt + preselfpay + inscp = amount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineSplit {
    pub fulamt_ownpay: Fen,
    pub overlmt: Fen,
    pub preselfpay: Fen,
    pub inscp: Fen,
    /// The 自付比例 applied: 10 000 for a wholly self-paid line, 0 for 甲类, the item's for 乙类.
    pub selfpay_prop_bp: i64,
    /// The ceiling per unit the line was held to.
    pub pric_uplmt: Option<Fen>,
    pub basis: SplitBasis,
}

impl LineSplit {
    pub fn total(&self) -> Fen {
        self.fulamt_ownpay + self.overlmt + self.preselfpay + self.inscp
    }
}

/// `n / d` rounded half away from zero, in i128 (d > 0).
fn div_round_half_away_128(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    let half = d / 2;
    if n >= 0 {
        (n + half) / d
    } else {
        -((-n + half) / d)
    }
}

/// The amount a ceiling allows for a quantity: `round_half_away(pric_uplmt × cnt)` in fen, computed in
/// i128 (a ceiling of 10¹⁰ fen times 10¹⁰ ten-thousandths does not fit i64).
pub fn allowed_amount(pric_uplmt: Fen, cnt: Qty) -> i128 {
    div_round_half_away_128(i128::from(pric_uplmt.0) * i128::from(cnt.0), i128::from(QTY_ONE))
}

/// Splits one fee line by its catalogue entry (see the module's readings). Refuses a negative or
/// too large amount, a ratio outside 0–10 000 bp and a negative ceiling; never panics on other input.
pub fn classify(
    rule: &ItemRule,
    amount: Fen,
    cnt: Qty,
    pric: Option<UnitPrice>,
    hosp_appr_flag: Option<&str>,
) -> Result<LineSplit, CatalogueError> {
    if amount.0 < 0 {
        return Err(CatalogueError::NegativeAmount(amount));
    }
    if amount.0 > MAX_FEN {
        return Err(CatalogueError::AmountTooLarge(amount));
    }
    if !(0..=BP_ONE).contains(&rule.selfpay_prop_bp) {
        return Err(CatalogueError::PropOutOfRange(rule.selfpay_prop_bp));
    }
    if let Some(c) = rule.pric_uplmt {
        if c.0 < 0 || c.0 > MAX_FEN {
            return Err(CatalogueError::BadCeiling(c));
        }
    }
    let whole_ownpay = |basis| LineSplit {
        fulamt_ownpay: amount,
        overlmt: Fen::ZERO,
        preselfpay: Fen::ZERO,
        inscp: Fen::ZERO,
        selfpay_prop_bp: BP_ONE,
        pric_uplmt: rule.pric_uplmt,
        basis,
    };
    let split = if rule.chrgitm_lv == ChrgitmLv::C {
        whole_ownpay(SplitBasis::OutsideList)
    } else if rule.lmt_used_flag && hosp_appr_flag.map(str::trim) == Some("2") {
        whole_ownpay(SplitBasis::NotApproved)
    } else {
        let overlmt = match (rule.pric_uplmt, pric) {
            (Some(c), Some(p)) if p.0 <= c.0.saturating_mul(UnitPrice::PER_FEN) => 0,
            (Some(c), _) => {
                let allowed = allowed_amount(c, cnt);
                // amount ≤ 10¹⁰, so the difference fits i64 whenever it is positive.
                (i128::from(amount.0) - allowed).clamp(0, i128::from(amount.0)) as i64
            }
            (None, _) => 0,
        };
        let within = amount.0 - overlmt;
        let (bp, preselfpay) = match rule.chrgitm_lv {
            ChrgitmLv::A => (0, 0),
            // within ≤ 10¹⁰ and bp ≤ 10⁴: the product stays within 10¹⁴.
            _ => (rule.selfpay_prop_bp, div_round_half_away(within * rule.selfpay_prop_bp, BP_ONE)),
        };
        LineSplit {
            fulamt_ownpay: Fen::ZERO,
            overlmt: Fen(overlmt),
            preselfpay: Fen(preselfpay),
            inscp: Fen(within - preselfpay),
            selfpay_prop_bp: bp,
            pric_uplmt: rule.pric_uplmt,
            basis: SplitBasis::InList,
        }
    };
    assert!(
        split.total() == amount && split.fulamt_ownpay.0 >= 0 && split.overlmt.0 >= 0 && split.preselfpay.0 >= 0 && split.inscp.0 >= 0,
        "catalogue split does not add up: {split:?} of {amount:?}"
    );
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(lv: ChrgitmLv, bp: i64, ceiling: Option<i64>, lmt: bool) -> ItemRule {
        ItemRule { chrgitm_lv: lv, selfpay_prop_bp: bp, pric_uplmt: ceiling.map(Fen), lmt_used_flag: lmt }
    }

    #[test]
    fn codes_parse_and_name() {
        for lv in ChrgitmLv::ALL {
            assert_eq!(ChrgitmLv::parse(lv.code()), Some(lv));
            assert_eq!(ChrgitmLv::parse(lv.name_zh()), Some(lv));
        }
        assert_eq!(ChrgitmLv::parse("2"), Some(ChrgitmLv::B));
        assert_eq!(ChrgitmLv::parse("04"), None);
        for l in ListType::ALL {
            assert_eq!(ListType::parse(l.code()), Some(l));
            assert_eq!(ListType::parse(l.name_zh()), Some(l));
        }
        assert_eq!(ListType::parse("201").unwrap().name_zh(), "医疗服务项目");
        assert_eq!(ListType::parse("999"), None);
        assert_eq!(med_chrgitm_type_zh("08"), Some("卫生材料费"));
        assert_eq!(med_chrgitm_type_zh("99"), None);
    }

    #[test]
    fn quantities_and_prices_are_exact() {
        assert_eq!(Qty::parse("2").unwrap(), Qty(20_000));
        assert_eq!(Qty::parse("2.5").unwrap(), Qty(25_000));
        assert_eq!(Qty::parse("0.0001").unwrap(), Qty(1));
        assert_eq!(Qty::parse(".5").unwrap(), Qty(5_000));
        assert_eq!(Qty::parse("1.50000").unwrap(), Qty(15_000));
        assert!(matches!(Qty::parse("0.00001"), Err(CatalogueError::QtyDecimals(_))));
        assert!(matches!(Qty::parse("-1"), Err(CatalogueError::NegativeQty(_))));
        assert!(matches!(Qty::parse("1e3"), Err(CatalogueError::BadQty(_))));
        assert!(matches!(Qty::parse("1000001"), Err(CatalogueError::QtyTooLarge(_))));
        assert!(matches!(Qty::parse(""), Err(CatalogueError::EmptyQty)));
        assert_eq!(Qty(25_000).to_string(), "2.5");
        assert_eq!(Qty(20_000).to_string(), "2");
        assert_eq!(Qty(1).to_string(), "0.0001");
        assert_eq!(UnitPrice::parse_yuan("12.5").unwrap(), UnitPrice(12_500_000));
        assert_eq!(UnitPrice::parse_yuan("0.000001").unwrap(), UnitPrice(1));
        assert_eq!(UnitPrice::from_fen(Fen(1250)), UnitPrice(12_500_000));
        assert!(UnitPrice::parse_yuan("0.0000001").is_err());
        assert!(matches!(UnitPrice::parse_yuan("-3"), Err(CatalogueError::NegativePrice(_))));
    }

    #[test]
    fn ratios_parse_without_floating_point() {
        assert_eq!(parse_prop_bp("0.1"), Ok(1_000));
        assert_eq!(parse_prop_bp("0.05"), Ok(500));
        assert_eq!(parse_prop_bp("0.0001"), Ok(1));
        assert_eq!(parse_prop_bp("1"), Ok(10_000));
        assert_eq!(parse_prop_bp("0"), Ok(0));
        assert_eq!(parse_prop_bp("10%"), Ok(1_000));
        assert_eq!(parse_prop_bp("7.5%"), Ok(750));
        assert!(parse_prop_bp("1.01").is_err());
        assert!(parse_prop_bp("0.00001").is_err());
        assert!(parse_prop_bp("-0.1").is_err());
        assert!(parse_prop_bp("101%").is_err());
        assert!(parse_prop_bp("abc").is_err());
        assert_eq!(prop_text(1_000), "0.1");
        assert_eq!(prop_text(750), "0.075");
        assert_eq!(prop_text(10_000), "1");
        assert_eq!(prop_text(0), "0");
    }

    #[test]
    fn class_c_is_wholly_self_paid() {
        let s = classify(&rule(ChrgitmLv::C, 0, Some(100), false), Fen(12_345), Qty::units(3), None, None).unwrap();
        assert_eq!((s.fulamt_ownpay, s.overlmt, s.preselfpay, s.inscp), (Fen(12_345), Fen::ZERO, Fen::ZERO, Fen::ZERO));
        assert_eq!((s.selfpay_prop_bp, s.basis), (10_000, SplitBasis::OutsideList));
    }

    #[test]
    fn a_restricted_item_refused_by_the_hospital_is_self_paid_otherwise_in_list() {
        let r = rule(ChrgitmLv::B, 1_000, None, true);
        let s = classify(&r, Fen(10_000), Qty::units(1), None, Some("2")).unwrap();
        assert_eq!((s.fulamt_ownpay, s.basis), (Fen(10_000), SplitBasis::NotApproved));
        for flag in [Some("1"), Some("0"), None] {
            let s = classify(&r, Fen(10_000), Qty::units(1), None, flag).unwrap();
            assert_eq!((s.fulamt_ownpay, s.preselfpay, s.inscp), (Fen::ZERO, Fen(1_000), Fen(9_000)), "{flag:?}");
        }
        // An unrestricted item ignores the flag.
        let s = classify(&rule(ChrgitmLv::A, 0, None, false), Fen(500), Qty::units(1), None, Some("2")).unwrap();
        assert_eq!(s.inscp, Fen(500));
    }

    #[test]
    fn the_price_ceiling_takes_what_is_over_it() {
        // 3 units at 12.00 yuan with a ceiling of 10.00: 6.00 over, 30.00 within (甲类).
        let r = rule(ChrgitmLv::A, 0, Some(1_000), false);
        let s = classify(&r, Fen(3_600), Qty::units(3), Some(UnitPrice::parse_yuan("12").unwrap()), None).unwrap();
        assert_eq!((s.overlmt, s.inscp, s.pric_uplmt), (Fen(600), Fen(3_000), Some(Fen(1_000))));
        // Fractional quantity: 2.5 × 3.33 = 8.325 → 8.33 allowed (half away from zero).
        let r = rule(ChrgitmLv::B, 2_000, Some(333), false);
        let s = classify(&r, Fen(1_000), Qty::parse("2.5").unwrap(), None, None).unwrap();
        assert_eq!(s.overlmt, Fen(167));
        // Within 8.33: 20 % = 1.666 → 1.67 first, 6.66 within the policy.
        assert_eq!((s.preselfpay, s.inscp), (Fen(167), Fen(666)));
        // Under the ceiling: nothing over.
        let s = classify(&r, Fen(800), Qty::parse("2.5").unwrap(), None, None).unwrap();
        assert_eq!((s.overlmt, s.preselfpay, s.inscp), (Fen::ZERO, Fen(160), Fen(640)));
        // A unit price within the ceiling: the hospital's rounding is not "over the limit".
        let s = classify(&r, Fen(834), Qty::parse("2.5").unwrap(), Some(UnitPrice::parse_yuan("3.33").unwrap()), None).unwrap();
        assert_eq!(s.overlmt, Fen::ZERO);
        // Without a price the same amount is 1 fen over.
        let s = classify(&r, Fen(834), Qty::parse("2.5").unwrap(), None, None).unwrap();
        assert_eq!(s.overlmt, Fen(1));
    }

    #[test]
    fn class_a_ignores_a_ratio_and_class_b_rounds_half_away() {
        let s = classify(&rule(ChrgitmLv::A, 3_000, None, false), Fen(999), Qty::units(1), None, None).unwrap();
        assert_eq!((s.preselfpay, s.inscp, s.selfpay_prop_bp), (Fen::ZERO, Fen(999), 0));
        // 5 % of 0.10 yuan = 0.5 fen → 1 fen.
        let s = classify(&rule(ChrgitmLv::B, 500, None, false), Fen(10), Qty::units(1), None, None).unwrap();
        assert_eq!((s.preselfpay, s.inscp, s.selfpay_prop_bp), (Fen(1), Fen(9), 500));
    }

    #[test]
    fn bad_input_is_refused_not_panicked_on() {
        let r = rule(ChrgitmLv::B, 1_000, None, false);
        assert!(matches!(classify(&r, Fen(-1), Qty::units(1), None, None), Err(CatalogueError::NegativeAmount(_))));
        assert!(matches!(classify(&r, Fen(MAX_FEN + 1), Qty::units(1), None, None), Err(CatalogueError::AmountTooLarge(_))));
        let bad = rule(ChrgitmLv::B, 10_001, None, false);
        assert!(matches!(classify(&bad, Fen(1), Qty::units(1), None, None), Err(CatalogueError::PropOutOfRange(_))));
        let bad = rule(ChrgitmLv::A, 0, Some(-1), false);
        assert!(matches!(classify(&bad, Fen(1), Qty::units(1), None, None), Err(CatalogueError::BadCeiling(_))));
        // The largest ceiling times the largest quantity does not overflow.
        let big = rule(ChrgitmLv::A, 0, Some(MAX_FEN), false);
        let s = classify(&big, Fen(MAX_FEN), Qty(MAX_QTY), None, None).unwrap();
        assert_eq!(s.inscp, Fen(MAX_FEN));
        // A zero ceiling leaves nothing within the list.
        let zero = rule(ChrgitmLv::A, 0, Some(0), false);
        assert_eq!(classify(&zero, Fen(700), Qty::units(1), None, None).unwrap().overlmt, Fen(700));
    }

    fn any_rule() -> impl Strategy<Value = ItemRule> {
        (0usize..3, 0i64..=10_000, proptest::option::of(0i64..=MAX_FEN), any::<bool>()).prop_map(|(lv, bp, c, lmt)| ItemRule {
            chrgitm_lv: ChrgitmLv::ALL[lv],
            selfpay_prop_bp: bp,
            pric_uplmt: c.map(Fen),
            lmt_used_flag: lmt,
        })
    }

    proptest! {
        #[test]
        fn parts_add_up_and_none_is_negative(
            r in any_rule(),
            amount in 0i64..=MAX_FEN,
            cnt in 0i64..=MAX_QTY,
            pric in proptest::option::of(0i64..=MAX_FEN * UnitPrice::PER_FEN),
            flag in proptest::option::of(prop_oneof![Just("0"), Just("1"), Just("2")]),
        ) {
            let s = classify(&r, Fen(amount), Qty(cnt), pric.map(UnitPrice), flag).unwrap();
            prop_assert_eq!(s.total(), Fen(amount));
            prop_assert!(s.fulamt_ownpay.0 >= 0 && s.overlmt.0 >= 0 && s.preselfpay.0 >= 0 && s.inscp.0 >= 0);
            if r.chrgitm_lv == ChrgitmLv::C {
                prop_assert_eq!(s.fulamt_ownpay, Fen(amount));
            }
            if r.pric_uplmt.is_none() {
                prop_assert_eq!(s.overlmt, Fen::ZERO);
            }
            if let (Some(c), SplitBasis::InList) = (r.pric_uplmt, s.basis) {
                // What is within the list never exceeds what the ceiling allows.
                prop_assert!(i128::from(s.preselfpay.0 + s.inscp.0) <= allowed_amount(c, Qty(cnt)).max(i128::from(amount - s.overlmt.0)));
                if pric.is_none() {
                    prop_assert!(i128::from(s.preselfpay.0 + s.inscp.0) <= allowed_amount(c, Qty(cnt)));
                }
            }
        }

        #[test]
        fn quantities_round_trip_through_text(q in 0i64..=MAX_QTY) {
            prop_assert_eq!(Qty::parse(&Qty(q).to_string()).unwrap(), Qty(q));
        }

        #[test]
        fn ratios_round_trip_through_text(bp in 0i64..=10_000) {
            prop_assert_eq!(parse_prop_bp(&prop_text(bp)).unwrap(), bp);
        }
    }
}
