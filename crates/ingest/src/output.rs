//! Writers for settlements: the CSV of `baozhang settle` and JSONL with the national `setlinfo`,
//! `setldetail[]` and the explanation. Amounts are yuan with exactly two decimals, written from
//! integer fen (never through a float).

use baozhang_core::engine::Settlement;
use baozhang_core::explain::explain;
use baozhang_core::policy::{Fund, Policy, ALL_FUNDS};
use baozhang_core::Fen;

pub const SETTLEMENT_CSV_HEADER: &str = "claim_id,psn_no,act_pay_dedc,hifp_pay,hifmi_pay,maf_pay,oth_pay,hosp_part_amt,fund_pay_sumamt,psn_part_amt,fund_390100,fund_390200,fund_620100,fund_610100,fund_640100,fund_999996\n";

/// Column order of the `fund_*` columns.
const CSV_FUNDS: [Fund; 6] = [Fund::Basic, Fund::CriticalIllness, Fund::Supplemental, Fund::Assistance, Fund::Fallback, Fund::Hospital];

/// Appends a CSV field, quoted only when needed.
pub fn push_csv_field(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// One CSV row of the settle contract.
pub fn push_settlement_csv(out: &mut Vec<u8>, claim_id: &str, psn_no: &str, s: &Settlement) {
    push_csv_field(out, claim_id);
    out.push(b',');
    push_csv_field(out, psn_no);
    for v in [s.act_pay_dedc, s.hifp_pay(), s.hifmi_pay(), s.maf_pay(), s.oth_pay(), s.hosp_part_amt, s.fund_pay_sumamt, s.psn_part_amt] {
        out.push(b',');
        v.write_yuan(out);
    }
    for f in CSV_FUNDS {
        out.push(b',');
        s.fund(f).write_yuan(out);
    }
    out.push(b'\n');
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_json_amt(out: &mut String, key: &str, v: Fen) {
    push_json_str(out, key);
    out.push(':');
    out.push_str(&v.to_string());
}

/// The amounts of a settlement as the national interface reports them (fen). Built from an engine
/// [`Settlement`] and its bill, or from a stored ledger row; negated for a cancellation (冲销).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetlAmounts {
    pub medfee_sumamt: Fen,
    pub fulamt_ownpay_amt: Fen,
    pub overlmt_selfpay: Fen,
    pub preselfpay_amt: Fen,
    pub inscp_scp_amt: Fen,
    pub act_pay_dedc: Fen,
    /// By `Fund::index()`.
    pub funds_fen: [i64; 6],
    pub fund_pay_sumamt: Fen,
    pub hosp_part_amt: Fen,
    pub psn_part_amt: Fen,
    pub clr_type: u16,
}

impl SetlAmounts {
    pub fn of(s: &Settlement, bill: &baozhang_core::Bill) -> SetlAmounts {
        SetlAmounts {
            medfee_sumamt: s.medfee_sumamt,
            fulamt_ownpay_amt: bill.fulamt_ownpay(),
            overlmt_selfpay: bill.overlmt_selfpay(),
            preselfpay_amt: bill.preselfpay(),
            inscp_scp_amt: s.inscp_scp_amt,
            act_pay_dedc: s.act_pay_dedc,
            funds_fen: s.funds_fen,
            fund_pay_sumamt: s.fund_pay_sumamt,
            hosp_part_amt: s.hosp_part_amt,
            psn_part_amt: s.psn_part_amt,
            clr_type: s.med_type.code(),
        }
    }
    pub fn fund(&self, f: Fund) -> Fen {
        Fen(self.funds_fen[f.index()])
    }
    pub fn negated(&self) -> SetlAmounts {
        let mut n = *self;
        for v in [
            &mut n.medfee_sumamt,
            &mut n.fulamt_ownpay_amt,
            &mut n.overlmt_selfpay,
            &mut n.preselfpay_amt,
            &mut n.inscp_scp_amt,
            &mut n.act_pay_dedc,
            &mut n.fund_pay_sumamt,
            &mut n.hosp_part_amt,
            &mut n.psn_part_amt,
        ] {
            *v = -*v;
        }
        for f in n.funds_fen.iter_mut() {
            *f = -*f;
        }
        n
    }
}

/// The national `setlinfo` object (POLICY §6) as JSON text; amounts are JSON numbers with 2 decimals.
pub fn setlinfo_json(mdtrt_id: &str, setl_id: &str, psn_no: &str, a: &SetlAmounts) -> String {
    let mut o = String::with_capacity(900);
    o.push('{');
    push_json_str(&mut o, "mdtrt_id");
    o.push(':');
    push_json_str(&mut o, mdtrt_id);
    o.push(',');
    push_json_str(&mut o, "setl_id");
    o.push(':');
    push_json_str(&mut o, setl_id);
    o.push(',');
    push_json_str(&mut o, "psn_no");
    o.push(':');
    push_json_str(&mut o, psn_no);
    let z = Fen::ZERO;
    let hifp = a.fund(Fund::Basic);
    // pool_prop_selfpay is a ratio (0–1), as the national interface defines it: here the share of the
    // compliant amount above the deductible that the basic fund paid, to four decimals.
    let base = (a.inscp_scp_amt - a.act_pay_dedc).0.abs();
    let pool_bp = if base > 0 { baozhang_core::money::div_round_half_away(hifp.0.abs() * 10_000, base).clamp(0, 10_000) } else { 0 };
    let fields: [(&str, Fen); 21] = [
        ("medfee_sumamt", a.medfee_sumamt),
        ("fulamt_ownpay_amt", a.fulamt_ownpay_amt),
        ("overlmt_selfpay", a.overlmt_selfpay),
        ("preselfpay_amt", a.preselfpay_amt),
        ("inscp_scp_amt", a.inscp_scp_amt),
        ("act_pay_dedc", a.act_pay_dedc),
        ("hifp_pay", hifp),
        ("cvlserv_pay", z),
        ("hifes_pay", z),
        ("hifmi_pay", a.fund(Fund::CriticalIllness)),
        ("hifob_pay", z),
        ("maf_pay", a.fund(Fund::Assistance)),
        ("oth_pay", a.fund(Fund::Supplemental) + a.fund(Fund::Fallback)),
        ("fund_pay_sumamt", a.fund_pay_sumamt),
        ("psn_part_amt", a.psn_part_amt),
        ("acct_pay", z),
        ("psn_cash_pay", a.psn_part_amt),
        ("hosp_part_amt", a.hosp_part_amt),
        ("balc", z),
        ("acct_mulaid_pay", z),
        ("hifdm_pay", z),
    ];
    for (k, v) in fields.iter() {
        o.push(',');
        push_json_amt(&mut o, k, *v);
    }
    o.push_str(&format!(",\"pool_prop_selfpay\":{}.{:04}", pool_bp / 10_000, pool_bp % 10_000));
    o.push(',');
    push_json_str(&mut o, "clr_type");
    o.push(':');
    push_json_str(&mut o, &a.clr_type.to_string());
    o.push('}');
    o
}

/// `setldetail[]`: one entry per fund that paid.
pub fn setldetail_json(a: &SetlAmounts) -> String {
    let mut o = String::from("[");
    let mut first = true;
    for f in ALL_FUNDS {
        let amt = a.fund(f);
        if amt.0 == 0 {
            continue;
        }
        if !first {
            o.push(',');
        }
        first = false;
        o.push('{');
        push_json_str(&mut o, "fund_pay_type");
        o.push(':');
        push_json_str(&mut o, f.code());
        o.push(',');
        push_json_str(&mut o, "fund_pay_type_name");
        o.push(':');
        push_json_str(&mut o, f.name_zh());
        o.push(',');
        push_json_amt(&mut o, "inscp_scp_amt", a.inscp_scp_amt);
        o.push(',');
        push_json_amt(&mut o, "fund_payamt", amt);
        o.push(',');
        // 本次可支付限额金额: what the fund could pay on this claim — what it paid (its layers' caps applied).
        push_json_amt(&mut o, "crt_payb_lmt_amt", amt);
        o.push(',');
        push_json_str(&mut o, "setl_proc_info");
        o.push(':');
        push_json_str(&mut o, "");
        o.push('}');
    }
    o.push(']');
    o
}

/// The explanation, per layer: base, deductible, segments used, ratio, cap, amount, a line of text, and
/// the provenance of the values used (`illustrative`, `basis`).
pub fn explanation_json(policy: &Policy, s: &Settlement) -> String {
    let mut o = String::from("[");
    for (i, e) in explain(policy, s).iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('{');
        push_json_str(&mut o, "layer");
        o.push(':');
        push_json_str(&mut o, &e.layer_id);
        o.push(',');
        push_json_str(&mut o, "name");
        o.push(':');
        push_json_str(&mut o, &e.layer_name);
        o.push(',');
        push_json_str(&mut o, "fund");
        o.push(':');
        match e.fund_code {
            Some(c) => push_json_str(&mut o, c),
            None => o.push_str("null"),
        }
        o.push_str(",\"applied\":");
        o.push_str(if e.applied { "true" } else { "false" });
        o.push(',');
        push_json_str(&mut o, "branch");
        o.push(':');
        match &e.branch {
            Some(b) => push_json_str(&mut o, b),
            None => o.push_str("null"),
        }
        o.push(',');
        push_json_amt(&mut o, "base", e.base);
        o.push(',');
        push_json_amt(&mut o, "deductible", e.deductible);
        o.push_str(",\"segments\":[");
        for (k, seg) in e.segments.iter().enumerate() {
            if k > 0 {
                o.push(',');
            }
            push_json_str(&mut o, seg);
        }
        o.push_str("],\"ratio\":");
        match &e.ratio {
            Some(r) => push_json_str(&mut o, r),
            None => o.push_str("null"),
        }
        o.push_str(",\"cap\":");
        match e.cap {
            Some(c) => push_json_str(&mut o, c),
            None => o.push_str("null"),
        }
        o.push(',');
        push_json_amt(&mut o, "amount", e.amount);
        o.push(',');
        push_json_amt(&mut o, "clawed_back", e.clawed_back);
        o.push(',');
        push_json_str(&mut o, "text");
        o.push(':');
        push_json_str(&mut o, &e.text);
        // Where the values used come from (docs/SETTLEMENT.md "Sources as data"): some illustrative (示意值),
        // and the titles of the sources (依据); `text` ends with the same as a short marker.
        o.push_str(",\"illustrative\":");
        o.push_str(if e.illustrative { "true" } else { "false" });
        o.push_str(",\"basis\":[");
        for (k, b) in e.basis.iter().enumerate() {
            if k > 0 {
                o.push(',');
            }
            push_json_str(&mut o, b);
        }
        o.push_str("]}");
    }
    o.push(']');
    o
}

/// One JSONL line (with the trailing newline).
pub fn push_settlement_jsonl(out: &mut Vec<u8>, policy: &Policy, claim_id: &str, psn_no: &str, s: &Settlement, bill: &baozhang_core::Bill) {
    let mut o = String::with_capacity(4096);
    o.push('{');
    push_json_str(&mut o, "claim_id");
    o.push(':');
    push_json_str(&mut o, claim_id);
    o.push(',');
    push_json_str(&mut o, "psn_no");
    o.push(':');
    push_json_str(&mut o, psn_no);
    o.push(',');
    push_json_str(&mut o, "policy");
    o.push(':');
    push_json_str(&mut o, &policy.meta.id);
    o.push(',');
    push_json_str(&mut o, "policy_version");
    o.push(':');
    push_json_str(&mut o, &policy.version);
    o.push_str(",\"setlinfo\":");
    let amounts = SetlAmounts::of(s, bill);
    o.push_str(&setlinfo_json(claim_id, claim_id, psn_no, &amounts));
    o.push_str(",\"setldetail\":");
    o.push_str(&setldetail_json(&amounts));
    o.push_str(",\"explanation\":");
    o.push_str(&explanation_json(policy, s));
    o.push_str("}\n");
    out.extend_from_slice(o.as_bytes());
}
