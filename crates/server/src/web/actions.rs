//! The workbench's long actions, each started as a job (`web::jobs`): 立即重新比对 and 运行审核规则. The
//! checks (role, scope, parameters) run before the job starts, so a refusal answers at once; the job's
//! page then follows the work and links to what it produced.

use axum::extract::State;
use axum::response::Response;
use axum::Form;
use baozhang_ingest::oversight::{run_audit, AuditError, DEFAULT_RULES};
use baozhang_store::reconcile::ReconcileParams;
use serde::Deserialize;

use super::jobs::{started, Outcome};
use super::{WebError, WebUser};
use crate::auth::Role;
use crate::AppState;

/// `POST /web/worklist/reconcile`: a reconciliation as of the previous run's date (bureau and
/// administrators whose region covers the whole registry).
pub async fn reconcile(State(state): State<AppState>, u: WebUser) -> Result<Response, WebError> {
    if !matches!(u.p.role, Role::Admin | Role::Bureau) {
        return Err(WebError::forbidden("只有医保局工作人员可以发起比对"));
    }
    // A reconciliation runs over the whole registry: only a user whose region covers all of it may start one.
    let own = u.region()?.to_string();
    if state.store.anyone_outside(&own).await? {
        return Err(WebError::forbidden(format!("名单中有您的范围（{own}）以外的人员，全库比对须由上级医保部门或系统管理员发起")));
    }
    let as_of = state.store.reconcile_runs(1).await?.first().and_then(|r| baozhang_store::num_date(r.1));
    // The subsidies per class are the policy's of the user's region for the year of the date.
    let day = as_of.unwrap_or_else(crate::clock::today);
    let subsidy_by_class = state.policies.for_area(&own, day).map(|p| p.subsidy_classes(day.year())).unwrap_or_default();
    let params = ReconcileParams { as_of, new_window_days: 90, subsidy_standard_fen: None, subsidy_by_class };
    let (st, user) = (state.clone(), u.p.username.clone());
    let id = state.web.jobs.start("reconcile", "重新比对", &u.p.username, move |p| async move {
        p.stage(format!("正在比对全部名单（基准日 {}，十二类问题）", day));
        let summary = st.store.reconcile(&params).await?;
        st.store.audit(&user, "web.reconcile", &format!("run {}", summary.run_id)).await?;
        st.web.dashboard.invalidate();
        st.web.pages.forget();
        Ok(Outcome {
            message: format!(
                "第 {} 次比对完成：发现问题 {} 条，其中新增 {} 条，已消除 {} 条。",
                summary.run_id, summary.findings, summary.new_findings, summary.resolved
            ),
            link: Some(("查看工作清单".into(), "/web/worklist".into())),
            ..Default::default()
        })
    });
    Ok(started(id))
}

#[derive(Deserialize)]
pub struct RunForm {
    year: String,
}

/// `POST /web/audit/run`: the audit rules over the year's settlements of the runner's region.
pub async fn audit_run(State(state): State<AppState>, u: WebUser, Form(f): Form<RunForm>) -> Result<Response, WebError> {
    if !matches!(u.p.role, Role::Admin | Role::Bureau) {
        return Err(WebError::forbidden(format!("{}不能运行审核", u.p.role.name_zh())));
    }
    let year: i64 = super::health::parse_year(&f.year)?;
    // A run covers the settlements of the runner's region only (a county bureau audits its own fund).
    let region = u.region()?.to_string();
    let (st, user) = (state.clone(), u.p.username.clone());
    let id = state.web.jobs.start("audit", &format!("运行审核规则 · {year} 年"), &u.p.username, move |p| async move {
        p.stage(format!("正在按审核规则检查 {year} 年的结算"));
        let o = run_audit(&st.store, year, &region, DEFAULT_RULES, &user).await.map_err(|e| match e {
            AuditError::Params(m) => WebError::bad(m),
            AuditError::Store(s) => WebError::from(s),
        })?;
        st.store.audit(&user, "audit.run", &format!("year {year}: run {} with {} leads", o.run_id, o.leads.len())).await?;
        Ok(Outcome {
            message: format!(
                "第 {} 次审核完成：检查结算 {} 笔，发现疑点线索 {} 条。",
                o.run_id,
                super::count(o.claims as i64),
                super::count(o.leads.len() as i64)
            ),
            link: Some(("查看疑点线索".into(), format!("/web/audit?run={}", o.run_id))),
            ..Default::default()
        })
    });
    Ok(started(id))
}
