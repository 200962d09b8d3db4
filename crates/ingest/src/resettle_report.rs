//! What a re-settlement owes each party (issue 17): per person, what to pay back to the patient (补付) or
//! recover (追回), with each fund's change; per hospital, the change in what it advanced at the window;
//! per fund, the year's total change. From the adjustments of a run (or of a dry run).

use std::collections::BTreeMap;

use baozhang_core::policy::{Fund, ALL_FUNDS};
use baozhang_core::Fen;
use baozhang_store::resettle::Adjusted;

use crate::table::Sheet;
use crate::worklist::mask_id;

/// The sum of some adjustments: claims, each fund's change, the personal part's change.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Owed {
    pub claims: usize,
    pub village_code: Option<String>,
    /// By `Fund::index()`: what each fund pays more (+) or less (−) than before.
    pub funds_fen: [i64; 6],
    pub fund_pay_fen: i64,
    /// The personal part's change: negative = paid back to the patient (补付), positive = recovered (追回).
    pub psn_fen: i64,
}

impl Owed {
    fn add(&mut self, a: &Adjusted) {
        self.claims += 1;
        if self.village_code.is_none() {
            self.village_code = a.village_code.clone();
        }
        for (t, f) in self.funds_fen.iter_mut().zip(a.funds_fen) {
            *t += f;
        }
        self.fund_pay_fen += a.fund_pay_fen;
        self.psn_fen += a.psn_fen;
    }
    /// 补付 to the patient (≥ 0).
    pub fn pay_back_fen(&self) -> i64 {
        (-self.psn_fen).max(0)
    }
    /// 追回 from the patient (≥ 0).
    pub fn recover_fen(&self) -> i64 {
        self.psn_fen.max(0)
    }
}

/// The three views of a run's adjustments.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct OwedReport {
    /// By ID number.
    pub persons: BTreeMap<String, Owed>,
    /// By institution code.
    pub hospitals: BTreeMap<String, Owed>,
    pub total: Owed,
}

pub fn owed(adjusted: &[Adjusted]) -> OwedReport {
    let mut r = OwedReport::default();
    for a in adjusted {
        r.persons.entry(a.id_no.clone()).or_default().add(a);
        r.hospitals.entry(a.fixmedins_code.clone()).or_default().add(a);
        r.total.add(a);
    }
    r
}

fn yuan(f: i64) -> String {
    Fen(f).to_string()
}

/// "补付 12.30" / "追回 4.00" / "—" for a personal change.
pub fn direction_zh(psn_fen: i64) -> String {
    match psn_fen {
        0 => "—".to_string(),
        p if p < 0 => format!("补付 {}", Fen(-p).grouped()),
        p => format!("追回 {}", Fen(p).grouped()),
    }
}

/// Excel sheets of a report: persons (ID numbers masked unless `unmasked`), hospitals, funds.
pub fn sheets(r: &OwedReport, hospital_name: &dyn Fn(&str) -> String, unmasked: bool) -> Vec<Sheet> {
    let fund_heads: Vec<String> = ALL_FUNDS.iter().map(|f| format!("{}（元）", f.name_zh())).collect();
    let mut head = vec!["证件号码".to_string(), "村（社区）代码".into(), "调整结算笔数".into()];
    head.extend(fund_heads.iter().cloned());
    head.extend(["个人负担变化（元）".to_string(), "应补付个人（元）".into(), "应追回个人（元）".into()]);
    let person_rows = r
        .persons
        .iter()
        .map(|(id, o)| {
            let mut row =
                vec![if unmasked { id.clone() } else { mask_id(id) }, o.village_code.clone().unwrap_or_default(), o.claims.to_string()];
            row.extend(o.funds_fen.iter().map(|&f| yuan(f)));
            row.extend([yuan(o.psn_fen), yuan(o.pay_back_fen()), yuan(o.recover_fen())]);
            row
        })
        .collect();
    let mut hhead = vec!["定点医疗机构".to_string(), "机构编码".into(), "调整结算笔数".into()];
    hhead.extend(fund_heads);
    hhead.extend(["其中救助与兜底垫付变化（元）".to_string(), "个人负担变化（元）".into()]);
    let hospital_rows = r
        .hospitals
        .iter()
        .map(|(code, o)| {
            let mut row = vec![hospital_name(code), code.clone(), o.claims.to_string()];
            row.extend(o.funds_fen.iter().map(|&f| yuan(f)));
            row.extend([yuan(o.funds_fen[Fund::Assistance.index()] + o.funds_fen[Fund::Fallback.index()]), yuan(o.psn_fen)]);
            row
        })
        .collect();
    let mut fund_rows: Vec<Vec<String>> =
        ALL_FUNDS.iter().map(|f| vec![f.code().to_string(), f.name_zh().to_string(), yuan(r.total.funds_fen[f.index()])]).collect();
    fund_rows.push(vec!["PSN".into(), "个人负担".into(), yuan(r.total.psn_fen)]);
    vec![
        ("按人员".to_string(), head, person_rows),
        ("按医疗机构".to_string(), hhead, hospital_rows),
        ("按基金".to_string(), vec!["基金编码".into(), "基金".into(), "本年度变化（元）".into()], fund_rows),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adj(id: &str, hosp: &str, assist: i64) -> Adjusted {
        let mut funds_fen = [0i64; 6];
        funds_fen[Fund::Assistance.index()] = assist;
        Adjusted {
            setl_id: "S".into(),
            mdtrt_id: "V".into(),
            fixmedins_code: hosp.into(),
            village_code: Some("620422100201".into()),
            id_no: id.into(),
            setl_date: 20180601,
            funds_fen,
            fund_pay_fen: assist,
            hosp_fen: 0,
            psn_fen: -assist,
        }
    }

    #[test]
    fn a_fund_paying_more_is_paid_back_to_the_patient_and_totals_agree_in_every_view() {
        let r = owed(&[adj("A", "H1", 1_000), adj("A", "H2", 250), adj("B", "H1", -300)]);
        assert_eq!(r.persons["A"].pay_back_fen(), 1_250);
        assert_eq!(r.persons["B"].recover_fen(), 300);
        assert_eq!(r.hospitals["H1"].funds_fen[Fund::Assistance.index()], 700);
        assert_eq!(r.total.psn_fen, -950);
        let by_person: i64 = r.persons.values().map(|o| o.psn_fen).sum();
        let by_hospital: i64 = r.hospitals.values().map(|o| o.psn_fen).sum();
        assert_eq!((by_person, by_hospital), (-950, -950));
        assert_eq!(direction_zh(-1_250), "补付 12.50");
        assert_eq!(direction_zh(300), "追回 3.00");
        let s = sheets(&r, &|c| format!("医院{c}"), false);
        assert_eq!(s.len(), 3);
        assert!(s[0].2[0][0].contains('*'), "ID numbers masked: {:?}", s[0].2[0][0]);
    }
}
