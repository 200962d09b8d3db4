//! A claim (one inpatient stay, or one outpatient chronic-disease visit) as the engine sees it.
//! Built only through [`Bill::new`] / [`Claim`] fields that are already parsed, so the engine never
//! meets a bill whose parts do not add up.

use crate::date::Date;
use crate::money::Fen;

/// National `med_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MedType {
    /// 21 住院
    Inpatient,
    /// 14 门诊慢特病
    OutpatientChronic,
    /// 11 普通门诊（门诊统筹）
    GeneralOutpatient,
}

pub const ALL_MED_TYPES: [MedType; 3] = [MedType::Inpatient, MedType::OutpatientChronic, MedType::GeneralOutpatient];

impl MedType {
    pub fn code(self) -> u16 {
        match self {
            MedType::Inpatient => 21,
            MedType::OutpatientChronic => 14,
            MedType::GeneralOutpatient => 11,
        }
    }
    pub fn from_code(c: u16) -> Option<MedType> {
        ALL_MED_TYPES.into_iter().find(|m| m.code() == c)
    }
    pub fn parse(s: &str) -> Result<MedType, String> {
        s.trim()
            .parse::<u16>()
            .ok()
            .and_then(MedType::from_code)
            .ok_or_else(|| format!("医疗类别“{}”无效（21 住院，14 门诊慢特病，11 普通门诊）", s.trim()))
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            MedType::Inpatient => "住院",
            MedType::OutpatientChronic => "门诊慢特病",
            MedType::GeneralOutpatient => "普通门诊",
        }
    }
    /// Bit of this type in a set of med types (policy conditions, the types a policy settles).
    pub fn bit(self) -> u8 {
        match self {
            MedType::Inpatient => 1,
            MedType::OutpatientChronic => 2,
            MedType::GeneralOutpatient => 4,
        }
    }
}

/// National hospital grade (医院等级, dictionary HOSP_LV): 01 三级特等 … 10 一级丙等, 11 无等级; 0 when the
/// claim does not say. A policy maps grades (with the level and whether the place is primary care) to
/// its own tiers (see `policy::Tier`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HospGrade(u8);

pub const GRADE_NAMES: [&str; 12] = [
    "未说明",
    "三级特等",
    "三级甲等",
    "三级乙等",
    "三级丙等",
    "二级甲等",
    "二级乙等",
    "二级丙等",
    "一级甲等",
    "一级乙等",
    "一级丙等",
    "无等级",
];

impl HospGrade {
    pub const UNKNOWN: HospGrade = HospGrade(0);
    pub const UNGRADED: HospGrade = HospGrade(11);
    pub fn new(code: u8) -> Option<HospGrade> {
        (code <= 11).then_some(HospGrade(code))
    }
    /// "02", "2", or the Chinese name ("三级甲等", "三甲"); "" is unknown.
    pub fn parse(s: &str) -> Result<HospGrade, String> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(HospGrade::UNKNOWN);
        }
        if let Ok(n) = t.parse::<u8>() {
            if (1..=11).contains(&n) {
                return Ok(HospGrade(n));
            }
        }
        let short = ["", "三特", "三甲", "三乙", "三丙", "二甲", "二乙", "二丙", "一甲", "一乙", "一丙", "未定级"];
        (1..=11u8)
            .find(|&i| GRADE_NAMES[usize::from(i)] == t || short[usize::from(i)] == t)
            .map(HospGrade)
            .ok_or_else(|| format!("医院等级“{t}”无效（01 三级特等、02 三级甲等 … 10 一级丙等、11 无等级）"))
    }
    pub fn code(self) -> u8 {
        self.0
    }
    pub fn is_known(self) -> bool {
        self.0 != 0
    }
    /// The level (1–3) the grade belongs to; `None` for unknown and 无等级.
    pub fn level(self) -> Option<HospLevel> {
        match self.0 {
            1..=4 => Some(HospLevel(3)),
            5..=7 => Some(HospLevel(2)),
            8..=10 => Some(HospLevel(1)),
            _ => None,
        }
    }
    pub fn name_zh(self) -> &'static str {
        GRADE_NAMES[usize::from(self.0.min(11))]
    }
}

/// Where the care happened, seen from the person's insured area (参保地).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Place {
    /// Not said beyond the county flag: `Claim::in_county` decides (in the county, or outside it).
    #[default]
    Unspecified,
    /// 县域内
    County,
    /// 县外、市（统筹区）内
    Prefecture,
    /// 市外、省内
    Province,
    /// 省外
    OutOfProvince,
}

pub const ALL_PLACES: [Place; 4] = [Place::County, Place::Prefecture, Place::Province, Place::OutOfProvince];

impl Place {
    pub fn id(self) -> &'static str {
        match self {
            Place::Unspecified => "",
            Place::County => "county",
            Place::Prefecture => "prefecture",
            Place::Province => "province",
            Place::OutOfProvince => "out_of_province",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Place::Unspecified => "未说明",
            Place::County => "县域内",
            Place::Prefecture => "县外市内",
            Place::Province => "市外省内",
            Place::OutOfProvince => "省外",
        }
    }
    /// The id, or the Chinese name officials write; "" is unspecified.
    pub fn parse(s: &str) -> Result<Place, String> {
        Ok(match s.trim() {
            "" => Place::Unspecified,
            "county" | "县域内" | "县内" | "1" => Place::County,
            "prefecture" | "县外市内" | "市内" | "统筹区内" | "2" => Place::Prefecture,
            "province" | "市外省内" | "省内" | "3" => Place::Province,
            "out_of_province" | "省外" | "跨省" | "4" => Place::OutOfProvince,
            o => return Err(format!("就医地“{o}”无效（county 县域内、prefecture 县外市内、province 市外省内、out_of_province 省外）")),
        })
    }
    /// From the insured area's and the institution's 6-digit division codes (参保地, 就医地).
    pub fn from_divisions(insured: &str, care: &str) -> Place {
        let same = |n: usize| insured.len() >= n && care.len() >= n && insured.as_bytes()[..n] == care.as_bytes()[..n];
        if insured.is_empty() || care.is_empty() {
            Place::Unspecified
        } else if same(6) {
            Place::County
        } else if same(4) {
            Place::Prefecture
        } else if same(2) {
            Place::Province
        } else {
            Place::OutOfProvince
        }
    }
}

/// For care outside the insured area: the filing (备案) it was under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Filing {
    /// Not applicable or not said.
    #[default]
    None,
    /// 异地长期居住 / 常驻异地工作 备案
    Resident,
    /// 转诊转院 备案
    Referral,
    /// 急诊抢救（视同备案）
    Emergency,
    /// 未备案
    Unfiled,
}

pub const ALL_FILINGS: [Filing; 4] = [Filing::Resident, Filing::Referral, Filing::Emergency, Filing::Unfiled];

impl Filing {
    pub fn id(self) -> &'static str {
        match self {
            Filing::None => "",
            Filing::Resident => "resident",
            Filing::Referral => "referral",
            Filing::Emergency => "emergency",
            Filing::Unfiled => "unfiled",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Filing::None => "无需备案",
            Filing::Resident => "异地长期居住备案",
            Filing::Referral => "转诊转院备案",
            Filing::Emergency => "急诊抢救",
            Filing::Unfiled => "未备案",
        }
    }
    pub fn parse(s: &str) -> Result<Filing, String> {
        Ok(match s.trim() {
            "" | "none" | "无" | "0" => Filing::None,
            "resident" | "异地长期居住" | "异地长期居住备案" | "常驻异地" | "异地安置" | "1" => Filing::Resident,
            "referral" | "转诊转院" | "转诊转院备案" | "转外就医" | "2" => Filing::Referral,
            "emergency" | "急诊" | "急诊抢救" | "3" => Filing::Emergency,
            "unfiled" | "未备案" | "9" => Filing::Unfiled,
            o => {
                return Err(format!(
                    "备案类型“{o}”无效（resident 异地长期居住、referral 转诊转院、emergency 急诊抢救、unfiled 未备案，空为无需备案）"
                ))
            }
        })
    }
}

/// What the claim says about the institution and the place of care beyond `hosp_lv` / `in_county`.
/// All optional: the default says nothing more, and old contracts stay valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Site {
    pub grade: HospGrade,
    /// 基层医疗机构（乡镇卫生院、社区卫生服务中心）
    pub primary_care: bool,
    pub place: Place,
    pub filing: Filing,
}

/// Hospital level: 1 township, 2 county, 3 city / province.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HospLevel(u8);

impl HospLevel {
    pub fn new(l: u8) -> Option<HospLevel> {
        (1..=3).contains(&l).then_some(HospLevel(l))
    }
    pub fn parse(s: &str) -> Result<HospLevel, String> {
        s.trim()
            .parse::<u8>()
            .ok()
            .and_then(HospLevel::new)
            .ok_or_else(|| format!("医院等级“{}”无效（1 乡镇，2 县级，3 市级及以上）", s.trim()))
    }
    pub fn get(self) -> u8 {
        self.0
    }
    /// 0-based index for per-level tables.
    pub fn index(self) -> usize {
        usize::from(self.0 - 1)
    }
    pub fn name_zh(self) -> &'static str {
        ["一级（乡镇）", "二级（县级）", "三级（市级及以上）"][self.index()]
    }
}

/// The four parts of a bill and its total (POLICY §2.1). Invariant: parts ≥ 0 and add up to the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bill {
    medfee_sumamt: Fen,
    fulamt_ownpay_amt: Fen,
    overlmt_selfpay: Fen,
    preselfpay_amt: Fen,
    inscp_scp_amt: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("{field} 为负数")]
    Negative { field: &'static str },
    #[error("费用四项之和 {sum} 元（全自费 {ful} + 超限价 {over} + 先行自付 {pre} + 符合范围 {inscp}）不等于医疗费总额 {total} 元")]
    PartsDoNotAddUp { sum: Fen, ful: Fen, over: Fen, pre: Fen, inscp: Fen, total: Fen },
}

impl Bill {
    pub fn new(
        medfee_sumamt: Fen,
        fulamt_ownpay_amt: Fen,
        overlmt_selfpay: Fen,
        preselfpay_amt: Fen,
        inscp_scp_amt: Fen,
    ) -> Result<Bill, BillError> {
        for (v, field) in [
            (medfee_sumamt, "medfee_sumamt"),
            (fulamt_ownpay_amt, "fulamt_ownpay_amt"),
            (overlmt_selfpay, "overlmt_selfpay"),
            (preselfpay_amt, "preselfpay_amt"),
            (inscp_scp_amt, "inscp_scp_amt"),
        ] {
            if v.0 < 0 {
                return Err(BillError::Negative { field });
            }
        }
        let sum = fulamt_ownpay_amt + overlmt_selfpay + preselfpay_amt + inscp_scp_amt;
        if sum != medfee_sumamt {
            return Err(BillError::PartsDoNotAddUp {
                sum,
                ful: fulamt_ownpay_amt,
                over: overlmt_selfpay,
                pre: preselfpay_amt,
                inscp: inscp_scp_amt,
                total: medfee_sumamt,
            });
        }
        Ok(Bill { medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt })
    }

    /// T — 医疗费总额
    pub fn total(&self) -> Fen {
        self.medfee_sumamt
    }
    pub fn fulamt_ownpay(&self) -> Fen {
        self.fulamt_ownpay_amt
    }
    pub fn overlmt_selfpay(&self) -> Fen {
        self.overlmt_selfpay
    }
    pub fn preselfpay(&self) -> Fen {
        self.preselfpay_amt
    }
    /// C — 符合政策范围金额
    pub fn compliant(&self) -> Fen {
        self.inscp_scp_amt
    }
    /// O — the three out-of-scope parts.
    pub fn out_of_scope(&self) -> Fen {
        self.medfee_sumamt - self.inscp_scp_amt
    }
}

/// Everything about a claim the engine uses. Who the person is (their identities on the service date)
/// is passed beside it, because the registry, not the hospital, knows that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub setl_date: Date,
    pub med_type: MedType,
    pub hosp_lv: HospLevel,
    pub in_county: bool,
    /// 转诊合规
    pub referral_ok: bool,
    /// One of the region's listed major diseases (大病集中救治病种).
    pub major_disease: bool,
    pub bill: Bill,
    /// Grade, primary care, place and filing (all optional).
    pub site: Site,
}

impl Claim {
    /// Insurance year: the calendar year of the settlement date.
    pub fn year(&self) -> u16 {
        self.setl_date.year()
    }
    /// Where the care happened: the site's place, else from the county flag (outside the county
    /// without more detail is `Unspecified`).
    pub fn place(&self) -> Place {
        match self.site.place {
            Place::Unspecified if self.in_county => Place::County,
            p => p,
        }
    }
}

/// Checks that a claim's site agrees with its level and county flag; the message names the field.
pub fn check_site(hosp_lv: HospLevel, in_county: bool, site: &Site) -> Result<(), (&'static str, String)> {
    if let Some(l) = site.grade.level() {
        if l != hosp_lv {
            return Err(("hosp_grade", format!("医院等级 {}（{}级）与 hosp_lv {} 不一致", site.grade.name_zh(), l.get(), hosp_lv.get())));
        }
    }
    match site.place {
        Place::Unspecified => {}
        Place::County if !in_county => return Err(("place", "就医地为县域内，但 in_county 为 0".into())),
        p if p != Place::County && in_county => return Err(("place", format!("就医地为{}，但 in_county 为 1", p.name_zh()))),
        _ => {}
    }
    if site.filing != Filing::None && (in_county || site.place == Place::County) {
        return Err(("filing", format!("县域内就医不需要备案（备案类型 {}）", site.filing.name_zh())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bill_must_add_up() {
        let f = Fen::yuan;
        assert!(Bill::new(f(100), f(10), f(0), f(0), f(90)).is_ok());
        let e = Bill::new(f(100), f(10), f(0), f(0), f(91)).unwrap_err();
        assert!(e.to_string().contains("不等于医疗费总额 100.00"));
        assert!(matches!(Bill::new(f(100), Fen(-1), f(0), f(0), Fen(10001)), Err(BillError::Negative { .. })));
    }
}
