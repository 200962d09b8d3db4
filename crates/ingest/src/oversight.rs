//! Fund-supervision audit runs (R-AUD-1): the year's settled claims from the store, the rules of
//! `core::audit` with their parameters (data/audit/rules.toml unless another file is given), and the
//! run stored with its leads and the parameters as used.

use baozhang_core::audit::{run, AuditParams, Lead};
use baozhang_store::{Store, StoreError};

/// The shipped parameters (commented, in Chinese).
pub const DEFAULT_RULES: &str = include_str!("../../../data/audit/rules.toml");

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Params(String),
}

pub struct AuditOutcome {
    pub run_id: i64,
    pub claims: usize,
    pub leads: Vec<Lead>,
}

/// Runs every rule over a year's settlements insured in `region` (`""` = all) and stores the run.
pub async fn run_audit(store: &Store, year: i64, region: &str, params_text: &str, by: &str) -> Result<AuditOutcome, AuditError> {
    let params = AuditParams::parse(params_text).map_err(AuditError::Params)?;
    let claims = store.audit_claims(year, region).await?;
    let leads = run(&params, &claims);
    let run_id = store.record_audit_run(year, region, params_text, claims.len(), &leads, by).await?;
    tracing::info!(year, claims = claims.len(), leads = leads.len(), run_id, "audit run");
    Ok(AuditOutcome { run_id, claims: claims.len(), leads })
}
