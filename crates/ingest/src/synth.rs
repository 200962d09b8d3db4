//! Synthetic claims: deterministic from a seed, plausible in shape (most bills small, a long tail of
//! big inpatient stays, a poor share like a poverty county's). For benchmarks and the demo.

use std::io::Write;

use baozhang_core::claim::{Bill, Claim, HospLevel, MedType};
use baozhang_core::{Date, Fen, Identity, IdentitySet};

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// True with probability per_mille / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// One synthetic claim with who it belongs to.
#[derive(Clone, Debug)]
pub struct SynthClaim {
    /// Index of the person in 0..persons (the same person as `psn_no`).
    pub person: usize,
    pub claim_id: String,
    pub psn_no: String,
    pub identities: IdentitySet,
    pub claim: Claim,
}

/// A person's identities, drawn once per person so all their claims agree.
pub fn person_identities(rng: &mut Rng) -> IdentitySet {
    let mut s = IdentitySet::EMPTY;
    let r = rng.below(1000);
    if r < 110 {
        s = s.with(Identity::RegisteredPoor);
    } else if r < 160 {
        s = s.with(Identity::ExitedPoor);
    } else if r < 185 {
        s = s.with(Identity::Marginal);
    }
    if rng.chance(60) {
        s = s.with(Identity::Dibao);
    }
    if rng.chance(8) {
        s = s.with(Identity::ExtremePoor);
    }
    s
}

/// A bill in fen: inpatient totals from a few hundred yuan to a few hundred thousand (heavy tail),
/// outpatient chronic visits small. The parts always add up.
pub fn synth_claim(rng: &mut Rng, year: u16) -> Claim {
    let inpatient = rng.chance(800);
    let level = if inpatient { [1u8, 1, 2, 2, 2, 3, 3][rng.below(7) as usize] } else { 1 + rng.below(2) as u8 };
    let total_fen: i64 = if inpatient {
        // 300 yuan × 2^(0..10) × (1 + u), a rough log-uniform spread with a tail to ~600,000 yuan.
        let scale = 1i64 << rng.below(11);
        30_000 * scale + rng.below((30_000 * scale) as u64) as i64
    } else {
        5_000 + rng.below(300_000) as i64
    };
    let out_pct = rng.below(25) as i64; // 0–24 % out of scope
    let out_of_scope = total_fen * out_pct / 100;
    let ful = out_of_scope / 2;
    let over = out_of_scope / 5;
    let pre = out_of_scope - ful - over;
    let inscp = total_fen - out_of_scope;
    let bill = Bill::new(Fen(total_fen), Fen(ful), Fen(over), Fen(pre), Fen(inscp)).expect("synthetic bill adds up");
    let day = 1 + rng.below(365) as i32;
    let date = Date::new(year, 1, 1).expect("date").add_days(day - 1);
    let date = if date.year() != year { Date::new(year, 12, 31).expect("date") } else { date };
    Claim {
        site: Default::default(),
        setl_date: date,
        med_type: if inpatient { MedType::Inpatient } else { MedType::OutpatientChronic },
        hosp_lv: HospLevel::new(level).expect("level"),
        in_county: level < 3 && rng.chance(900),
        referral_ok: rng.chance(850),
        major_disease: inpatient && rng.chance(50),
        bill,
    }
}

/// `n` claims over `persons` people in one year, in settlement (date) order is NOT guaranteed —
/// claims are emitted in generation order, which is the order they are settled in.
pub fn synth_claims(seed: u64, n: usize, persons: usize, year: u16) -> Vec<SynthClaim> {
    let mut rng = Rng::new(seed);
    let ids: Vec<IdentitySet> = (0..persons).map(|_| person_identities(&mut rng)).collect();
    (0..n)
        .map(|i| {
            let p = rng.below(persons as u64) as usize;
            SynthClaim {
                person: p,
                claim_id: format!("C{year}{i:09}"),
                psn_no: format!("P{p:09}"),
                identities: ids[p],
                claim: synth_claim(&mut rng, year),
            }
        })
        .collect()
}

pub fn write_claims_csv<W: Write>(out: &mut W, claims: &[SynthClaim]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 20);
    buf.extend_from_slice(b"claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,referral_ok,major_disease,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt\n");
    for c in claims {
        let k = &c.claim;
        buf.extend_from_slice(c.claim_id.as_bytes());
        buf.push(b',');
        buf.extend_from_slice(c.psn_no.as_bytes());
        buf.push(b',');
        buf.extend_from_slice(c.identities.to_string().as_bytes());
        buf.push(b',');
        buf.extend_from_slice(k.setl_date.to_string().as_bytes());
        let b = |v: bool| if v { b",1" } else { b",0" };
        buf.push(b',');
        buf.push(b'0' + k.hosp_lv.get());
        buf.extend_from_slice(b(k.in_county));
        buf.push(b',');
        buf.extend_from_slice(k.med_type.code().to_string().as_bytes());
        buf.extend_from_slice(b(k.referral_ok));
        buf.extend_from_slice(b(k.major_disease));
        for v in [k.bill.total(), k.bill.fulamt_ownpay(), k.bill.overlmt_selfpay(), k.bill.preselfpay(), k.bill.compliant()] {
            buf.push(b',');
            v.write_yuan(&mut buf);
        }
        buf.push(b'\n');
        if buf.len() > 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}
