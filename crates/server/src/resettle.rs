//! Re-settlement in the service (issue 17): a run goes through the writer in jobs of a few
//! person-years, so online settlements interleave with it (a person being re-settled is locked like any
//! settlement: the accumulator row), and each job's adjustments, accumulators and the run's progress
//! commit together. A run left unfinished by a crash is resumed when the server starts.
//!
//! The computation and the writes are `baozhang_store::resettle` (over `core::engine::resettle_year`);
//! this module finds the policies, renders explanations, and drives runs.

use baozhang_core::engine::Settlement;
use baozhang_core::policy::Policy;
use baozhang_core::Date;
use baozhang_store::ledger::Batch;
use baozhang_store::resettle::{self, Reason, RunCtx, StepOutcome};
use baozhang_store::{StoreError, Tx};
use serde_json::json;

use crate::national::RespondCtx;
use crate::writer::{ExecError, Job, WriteOp};
use crate::{clock, AppState, Policies};

/// Person-years per writer job: an online settlement queued behind a re-settlement waits for one job,
/// a few milliseconds, never for the run.
pub const JOB_PERSON_YEARS: usize = 20;

/// The policy by insured area and date, as the online service settles.
impl resettle::PolicySource for Policies {
    fn policy_for(&self, area: &str, date: Date) -> Option<&Policy> {
        self.for_area(area, date)
    }
    fn by_version(&self, version: &str) -> Option<&Policy> {
        Policies::by_version(self, version)
    }
}

/// The per-layer explanation stored with an adjustment (the same JSON as a settlement's).
pub fn explain(policy: &Policy, s: &Settlement) -> String {
    baozhang_ingest::output::explanation_json(policy, s)
}

/// A writer job of a run: re-settles `psns` of `year` in the writer's transaction.
pub async fn execute(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    policies: &Policies,
    run: &RunCtx,
    year: u16,
    psns: &[String],
) -> Result<String, ExecError> {
    let step = resettle::resettle_step(tx, batch, run, year, psns, policies, &explain, true).await?;
    Ok(json!({"person_years": step.person_years, "adjusted": step.adjusted.len(), "refused": step.refused}).to_string())
}

/// What a run is asked to cover.
#[derive(Clone, Debug)]
pub struct Scope {
    pub year: u16,
    /// Region prefix ('' everywhere).
    pub region: String,
    pub psn_no: Option<String>,
}

/// The differences a run would make, without writing (the confirmation page, `dry_run`).
pub async fn preview(state: &AppState, scope: &Scope) -> Result<StepOutcome, StoreError> {
    let psns = resettle::person_years_in_scope(&state.store, scope.year, &scope.region, scope.psn_no.as_deref(), None).await?;
    resettle::preview(&state.store, scope.year, &psns, &*state.policies, &explain).await
}

/// Starts a run in the background; returns its id at once (the page and the API poll it).
pub async fn start(state: &AppState, scope: &Scope, reason: Reason, note: &str, opter: &str) -> Result<i64, StoreError> {
    let psns = resettle::person_years_in_scope(&state.store, scope.year, &scope.region, scope.psn_no.as_deref(), None).await?;
    let mut tx = state.store.begin_write().await?;
    let run_id =
        resettle::create_run_in(&mut tx, scope.year, &scope.region, scope.psn_no.as_deref(), reason, note, opter, psns.len() as i64)
            .await?;
    tx.commit().await?;
    tracing::info!(run_id, year = scope.year, person_years = psns.len(), reason = reason.code(), "re-settlement run started");
    let st = state.clone();
    let run = RunCtx { run_id, reason, opter: opter.to_string() };
    let year = scope.year;
    tokio::spawn(async move { drive(st, run, year, psns).await });
    Ok(run_id)
}

/// Resumes the runs a previous process left unfinished (called when the server starts).
pub async fn resume_unfinished(state: &AppState) -> Result<usize, StoreError> {
    let runs = state.store.resettle_runs("", 1000).await?;
    let mut n = 0;
    for r in runs.into_iter().filter(|r| r.status == "running") {
        let Some(reason) = Reason::parse(&r.reason) else { continue };
        let year = r.year as u16;
        let psns = resettle::person_years_in_scope(&state.store, year, &r.region, r.psn_no.as_deref(), r.last_psn_no.as_deref()).await?;
        tracing::info!(run_id = r.id, left = psns.len(), "resuming an unfinished re-settlement run");
        let st = state.clone();
        let run = RunCtx { run_id: r.id, reason, opter: r.opter.clone() };
        tokio::spawn(async move { drive(st, run, year, psns).await });
        n += 1;
    }
    Ok(n)
}

/// Submits the run's person-years to the writer, a job at a time, then marks the run done.
async fn drive(state: AppState, run: RunCtx, year: u16, psns: Vec<String>) {
    for chunk in psns.chunks(JOB_PERSON_YEARS) {
        let job = Job {
            msgid: format!("resettle/{}/{}", run.run_id, chunk[0]),
            nonce: None,
            fixmedins_code: String::new(),
            infno: "RESETTLE".into(),
            opter: run.opter.clone(),
            body_sha256: String::new(),
            ctx: RespondCtx { received_ms: clock::unix_ms_now(), admdvs: String::new(), warn: None },
            op: WriteOp::Resettle { run: run.clone(), year, psns: chunk.to_vec() },
        };
        if let Err(e) = state.writer.submit(job).await {
            // The run stays 'running' and resumes from its last committed person-year at the next start.
            tracing::error!(run_id = run.run_id, error = %e, "a re-settlement job failed; the run stops here and resumes at the next start");
            return;
        }
    }
    let finish = async {
        let mut tx = state.store.begin_write().await?;
        resettle::finish_run_in(&mut tx, run.run_id).await?;
        tx.commit().await?;
        Ok::<(), StoreError>(())
    };
    match finish.await {
        Ok(()) => tracing::info!(run_id = run.run_id, "re-settlement run finished"),
        Err(e) => tracing::error!(run_id = run.run_id, error = %e, "could not mark a re-settlement run finished"),
    }
}

/// Runs one person-year's re-settlement inside the writer's transaction (a cancellation of a settlement
/// that was not the person-year's last): the run is created in the same transaction.
#[allow(clippy::too_many_arguments)]
pub async fn after_cancellation(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    policies: &Policies,
    psn_no: &str,
    place: &str,
    year: u16,
    cancelled: &str,
    opter: &str,
) -> Result<StepOutcome, ExecError> {
    let run_id =
        resettle::create_run_in(tx, year, place, Some(psn_no), Reason::Cancellation, &format!("撤销结算 {cancelled}"), opter, 1).await?;
    let run = RunCtx { run_id, reason: Reason::Cancellation, opter: opter.to_string() };
    let step = resettle::resettle_step(tx, batch, &run, year, &[psn_no.to_string()], policies, &explain, true).await?;
    if let Some(why) = step.refused.first() {
        // The cancellation is written in this transaction already and a refusal would commit it alone,
        // leaving a wrong year: fail the transaction instead (nothing of this job is written).
        tracing::error!(cancelled, "a cancellation's re-settlement of the person-year was refused; the cancellation is not committed");
        return Err(ExecError::Db(StoreError::Corrupt(format!("re-settlement after cancelling {cancelled} refused: {why}"))));
    }
    resettle::finish_run_in(tx, run_id).await?;
    Ok(step)
}

/// `ledger verify` in full: the ledger's own checks, and every re-settled person-year against the engine
/// (its settlements plus adjustments are what the engine computes with the identities recorded).
pub async fn verify_ledger(store: &baozhang_store::Store, policies: &Policies) -> Result<baozhang_store::ledger::VerifyReport, StoreError> {
    let mut rep = baozhang_store::ledger::verify(store).await?;
    match resettle::verify_resettled(store, policies).await {
        Ok((years, problems)) => {
            rep.resettled_years = years;
            rep.problems.extend(problems);
        }
        Err(resettle::ResettleError::Store(e)) => return Err(e),
        Err(resettle::ResettleError::Refused(why)) => rep.problems.push(why),
    }
    Ok(rep)
}

// ───────────────────────────── REST API ─────────────────────────────

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use baozhang_ingest::resettle_report::{owed, OwedReport};
use baozhang_ingest::worklist::mask_id;
use serde_json::Value;

use crate::api::{list_region, yuan, ApiError, P};
use crate::auth::{Principal, Role};

#[derive(serde::Deserialize)]
pub struct StartBody {
    pub year: u16,
    /// A region inside the caller's (default: the caller's own).
    #[serde(default)]
    pub region: Option<String>,
    /// One person, by the ID number (in the body, never in an address).
    #[serde(default)]
    pub id_no: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// The scope of a request: the region inside the caller's, or one person inside it.
pub async fn scope_of(state: &AppState, p: &Principal, year: u16, region: Option<&str>, id_no: Option<&str>) -> Result<Scope, ApiError> {
    let region = list_region(p, region)?;
    // A region is a prefix of division codes; it goes into a LIKE pattern, so digits only.
    if region.len() > 12 || !region.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Bad(format!("字段 region：区划代码应为数字（至多 12 位），实际为“{region}”")));
    }
    if !(2018..=2100).contains(&year) {
        return Err(ApiError::Bad(format!("字段 year：年度 {year} 无效")));
    }
    let Some(id) = id_no.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Scope { year, region, psn_no: None });
    };
    let id = baozhang_core::IdCardNo::parse(id).map_err(|e| ApiError::Bad(format!("字段 id_no：{e}")))?;
    let not_found = || ApiError::NotFound(format!("{year} 年度没有该人员的结算，或其不在您的范围内"));
    let (psn_no, place) = resettle::person_of_id(&state.store, id.as_str(), year).await?.ok_or_else(not_found)?;
    if !place.starts_with(&region) {
        return Err(not_found());
    }
    // The run is filed under the person's place, so whoever may see the person may see the run.
    Ok(Scope { year, region: place, psn_no: Some(psn_no) })
}

fn owed_json(r: &OwedReport, person_years: usize, claims: usize, refused: &[String]) -> Value {
    let back: i64 = r.persons.values().map(|o| o.pay_back_fen()).sum();
    let recover: i64 = r.persons.values().map(|o| o.recover_fen()).sum();
    json!({
        "person_years": person_years,
        "claims": claims,
        "claims_adjusted": r.total.claims,
        "funds": baozhang_core::policy::ALL_FUNDS.iter().map(|f| json!({"fund": f.code(), "name": f.name_zh(), "change": yuan(r.total.funds_fen[f.index()])})).collect::<Vec<_>>(),
        "psn_change": yuan(r.total.psn_fen),
        "pay_back": yuan(back),
        "recover": yuan(recover),
        "persons": r.persons.iter().take(1000).map(|(id, o)| json!({
            "id_no": mask_id(id), "village_code": o.village_code, "claims": o.claims, "psn_change": yuan(o.psn_fen),
            "pay_back": yuan(o.pay_back_fen()), "recover": yuan(o.recover_fen()),
            "funds": o.funds_fen.iter().map(|&f| yuan(f)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "hospitals": r.hospitals.iter().map(|(code, o)| json!({
            "fixmedins_code": code, "claims": o.claims, "funds": o.funds_fen.iter().map(|&f| yuan(f)).collect::<Vec<_>>(), "psn_change": yuan(o.psn_fen),
        })).collect::<Vec<_>>(),
        "refused": refused,
    })
}

/// `POST /api/resettle` (bureau, admin; inside their region): a dry run answers the differences; a
/// real run starts in the background and answers its id (202).
pub async fn api_start(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<StartBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    p.require(&[Role::Admin, Role::Bureau])?;
    let Json(b) = body.map_err(|e| ApiError::Bad(format!("请求体无效：{}", e.body_text())))?;
    let reason = match b.reason.as_deref() {
        None => Reason::YearEnd,
        Some(r) => Reason::parse(r).ok_or_else(|| ApiError::Bad(format!("字段 reason：未知的重算原因“{r}”")))?,
    };
    let scope = scope_of(&state, &p, b.year, b.region.as_deref(), b.id_no.as_deref()).await?;
    if b.dry_run {
        let o = preview(&state, &scope).await?;
        return Ok((StatusCode::OK, Json(owed_json(&owed(&o.adjusted), o.person_years, o.claims, &o.refused))));
    }
    let note: String = b.note.unwrap_or_default().chars().take(200).collect();
    let run_id = start(&state, &scope, reason, &note, &p.username).await?;
    state
        .store
        .audit(
            &p.username,
            "resettle.start",
            &format!("重算批次 #{run_id}：{} 年度，区划 {}，原因 {}", scope.year, scope.region, reason.name_zh()),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"run_id": run_id, "status": "running"}))))
}

fn run_json(r: &resettle::Run) -> Value {
    json!({
        "id": r.id, "year": r.year, "region": r.region, "person": r.psn_no.is_some(), "reason": r.reason,
        "reason_zh": Reason::parse(&r.reason).map(Reason::name_zh), "note": r.note, "opter": r.opter, "status": r.status,
        "person_years": r.person_years, "done_person_years": r.done_person_years, "claims_adjusted": r.claims_adjusted,
        "refused": r.refused, "started_at": r.started_at, "finished_at": r.finished_at,
    })
}

/// `GET /api/resettle`: runs inside the caller's region.
pub async fn api_list(State(state): State<AppState>, p: Principal) -> Result<Json<Value>, ApiError> {
    p.require(&[Role::Admin, Role::Bureau, Role::Auditor])?;
    let region = list_region(&p, None)?;
    let runs = state.store.resettle_runs(&region, 200).await?;
    Ok(Json(json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()})))
}

/// `GET /api/resettle/{run_id}`: a run inside the caller's region, with what it owes each party.
pub async fn api_run(State(state): State<AppState>, p: Principal, P(run_id): P<i64>) -> Result<Json<Value>, ApiError> {
    p.require(&[Role::Admin, Role::Bureau, Role::Auditor])?;
    let region = list_region(&p, None)?;
    let not_found = || ApiError::NotFound("没有这个重算批次，或不在您的范围内".into());
    let run = state.store.resettle_run(run_id).await?.ok_or_else(not_found)?;
    if !run.region.starts_with(&region) {
        return Err(not_found());
    }
    let rows = state.store.adjustments(Some(run_id), &region, None).await?;
    let adjusted: Vec<resettle::Adjusted> = rows.iter().map(resettle::Adjusted::from).collect();
    let refused: Vec<String> = run.problems.lines().map(str::to_string).collect();
    let mut v = owed_json(&owed(&adjusted), run.done_person_years as usize, 0, &refused);
    v["run"] = run_json(&run);
    Ok(Json(v))
}
