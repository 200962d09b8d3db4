//! Settles a year of claims against the registry: each claim's person is found by `psn_no`, their
//! identities are those in force on the settlement date (not what the claims file says), and the
//! results are stored. Used by `baozhang demo`.

use std::collections::HashMap;
use std::path::Path;

use baozhang_core::engine::{settle_in_place, Accumulators, Settlement};
use baozhang_core::policy::{Fund, Policy};
use baozhang_core::{Identity, IdentitySet};
use baozhang_store::registry::PersonFacts;
use baozhang_store::{date_num, Store, StoreError, Val};

use crate::claims::{ClaimReader, ClaimRow};

#[derive(Debug, thiserror::Error)]
pub enum RegistrySettleError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Read(String),
}

#[derive(Clone, Debug, Default)]
pub struct RegistrySettleSummary {
    pub claims: u64,
    pub unknown_persons: u64,
    pub rejected: u64,
    pub stored: u64,
}

/// Identities of a person on a date (yyyymmdd).
pub fn identities_on(facts: &PersonFacts, d: i64) -> IdentitySet {
    let mut set = IdentitySet::EMPTY;
    for (id, start, end) in &facts.periods {
        if *start <= d && end.is_none_or(|e| e > d) {
            if let Some(i) = Identity::parse(id) {
                set = set.with(i);
            }
        }
    }
    set
}

pub async fn settle_claims_from_registry(
    store: &Store,
    policy: &Policy,
    claims: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<RegistrySettleSummary, RegistrySettleError> {
    let facts = store.person_facts_by_psn().await?;
    let f = std::fs::File::open(claims).map_err(|e| RegistrySettleError::Read(format!("无法打开 {}：{e}", claims.display())))?;
    let mut reader =
        ClaimReader::new(std::io::BufReader::new(f)).map_err(|e| RegistrySettleError::Read(format!("{}：{e}", claims.display())))?;
    let mut accs: HashMap<(String, u16), Accumulators> = HashMap::new();
    let mut row = ClaimRow::default();
    let mut out = Vec::with_capacity(10_000);
    let mut st = Settlement::blank();
    let mut sum = RegistrySettleSummary::default();
    loop {
        match reader.next_row(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(line = e.line, field = %e.field, "claim row rejected");
                sum.rejected += 1;
                continue;
            }
        }
        let claim = row.claim.expect("parsed");
        sum.claims += 1;
        let Some(person) = facts.get(&row.psn_no) else {
            sum.unknown_persons += 1;
            continue;
        };
        let d = date_num(claim.setl_date);
        let ids = identities_on(person, d);
        let acc = accs.entry((person.id_no.clone(), claim.year())).or_default();
        settle_in_place(policy, &claim, ids, acc, &mut st);
        out.push(vec![
            Val::T(row.claim_id.clone()),
            Val::T(row.psn_no.clone()),
            Val::T(person.id_no.clone()),
            person.village_code.clone().into(),
            Val::I(d),
            Val::I(i64::from(claim.med_type.code())),
            Val::I(i64::from(claim.hosp_lv.get())),
            Val::I(i64::from(ids.bits())),
            Val::T(policy.meta.id.clone()),
            Val::T(policy.version.clone()),
            Val::I(st.medfee_sumamt.0),
            Val::I(st.inscp_scp_amt.0),
            Val::I(st.act_pay_dedc.0),
            Val::I(st.fund(Fund::Basic).0),
            Val::I(st.fund(Fund::CriticalIllness).0),
            Val::I(st.fund(Fund::Supplemental).0),
            Val::I(st.fund(Fund::Assistance).0),
            Val::I(st.fund(Fund::Fallback).0),
            Val::I(st.fund(Fund::Hospital).0),
            Val::I(st.fund_pay_sumamt.0),
            Val::I(st.psn_part_amt.0),
        ]);
        if out.len() >= 10_000 {
            sum.stored += store.insert_settlements(&out).await?;
            out.clear();
            progress(sum.claims);
        }
    }
    sum.stored += store.insert_settlements(&out).await?;
    progress(sum.claims);
    Ok(sum)
}
