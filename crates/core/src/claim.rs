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
}

impl MedType {
    pub fn code(self) -> u16 {
        match self {
            MedType::Inpatient => 21,
            MedType::OutpatientChronic => 14,
        }
    }
    pub fn from_code(c: u16) -> Option<MedType> {
        match c {
            21 => Some(MedType::Inpatient),
            14 => Some(MedType::OutpatientChronic),
            _ => None,
        }
    }
    pub fn parse(s: &str) -> Result<MedType, String> {
        s.trim()
            .parse::<u16>()
            .ok()
            .and_then(MedType::from_code)
            .ok_or_else(|| format!("医疗类别“{}”无效（21 住院，14 门诊慢特病）", s.trim()))
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            MedType::Inpatient => "住院",
            MedType::OutpatientChronic => "门诊慢特病",
        }
    }
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
}

impl Claim {
    /// Insurance year: the calendar year of the settlement date.
    pub fn year(&self) -> u16 {
        self.setl_date.year()
    }
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
