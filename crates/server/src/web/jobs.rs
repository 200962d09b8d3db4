//! Long actions of the workbench (重新比对, 自动评分, 运行审核规则, 名单导入): started by a POST that answers at
//! once with the job's page, run in the background, and followed on that page (stage, rows done, time
//! taken), which polls its status box every second (htmx) until the job ends and then shows the
//! outcome with a link to what it produced. Nothing blocks the page; a second start of the same action
//! while one runs is taken to the running job.
//!
//! A job is seen by the user who started it (and administrators); jobs are kept in memory for an hour.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::{fragment, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

/// How a job ended: what to tell the user, and where to look at the result.
#[derive(Default)]
pub struct Outcome {
    pub message: String,
    pub link: Option<(String, String)>,
    /// More to show under the message, rendered by the job's own template (an import's counts and
    /// rejected rows: `import_done.html`).
    pub detail: Option<String>,
}

struct State_ {
    stage: String,
    done: u64,
    total: u64,
    end: Option<(Instant, Result<Outcome, String>)>,
}

pub struct Job {
    id: u64,
    kind: &'static str,
    title: String,
    owner: String,
    started: Instant,
    started_at: String,
    state: Mutex<State_>,
}

/// What a running job reports.
#[derive(Clone)]
pub struct Progress(Arc<Job>);

impl Progress {
    /// The step now under way ("正在读取名单").
    pub fn stage(&self, text: impl Into<String>) {
        self.0.state.lock().expect("job lock").stage = text.into();
    }
    /// Items done out of a total (0 when the total is not known).
    pub fn count(&self, done: u64, total: u64) {
        let mut s = self.0.state.lock().expect("job lock");
        s.done = done;
        s.total = total;
    }
}

#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    map: Mutex<HashMap<u64, Arc<Job>>>,
}

impl Jobs {
    /// Finished jobs are forgotten after this.
    pub const KEEP: Duration = Duration::from_secs(3600);
    pub const MAX: usize = 200;

    /// Starts `work` in the background as `kind` for `owner`, or returns the job of that kind the owner
    /// already has running.
    pub fn start<F, Fut>(&self, kind: &'static str, title: &str, owner: &str, work: F) -> u64
    where
        F: FnOnce(Progress) -> Fut,
        Fut: Future<Output = Result<Outcome, WebError>> + Send + 'static,
    {
        let mut map = self.map.lock().expect("jobs lock");
        map.retain(|_, j| j.state.lock().expect("job lock").end.as_ref().is_none_or(|(at, _)| at.elapsed() < Self::KEEP));
        if let Some(j) = map.values().find(|j| j.kind == kind && j.owner == owner && j.state.lock().expect("job lock").end.is_none()) {
            return j.id;
        }
        if map.len() >= Self::MAX {
            if let Some(oldest) =
                map.values().filter(|j| j.state.lock().expect("job lock").end.is_some()).min_by_key(|j| j.started).map(|j| j.id)
            {
                map.remove(&oldest);
            }
        }
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let job = Arc::new(Job {
            id,
            kind,
            title: title.to_string(),
            owner: owner.to_string(),
            started: Instant::now(),
            started_at: crate::clock::beijing_text(&baozhang_store::now_text()),
            state: Mutex::new(State_ { stage: "已开始".into(), done: 0, total: 0, end: None }),
        });
        map.insert(id, job.clone());
        let fut = work(Progress(job.clone()));
        tokio::spawn(async move {
            let r = fut.await.map_err(|e| e.message);
            if let Err(e) = &r {
                tracing::warn!(job = job.kind, id = job.id, error = %e, "job failed");
            }
            job.state.lock().expect("job lock").end = Some((Instant::now(), r));
        });
        id
    }

    fn get(&self, id: u64, u: &WebUser) -> Result<Arc<Job>, WebError> {
        let job = self.map.lock().expect("jobs lock").get(&id).cloned();
        match job {
            Some(j) if j.owner == u.p.username || u.p.role == Role::Admin => Ok(j),
            _ => Err(WebError::not_found("没有这项任务（任务只对发起人可见，结束一小时后不再保留）")),
        }
    }

    /// Whether the job has ended (tests wait on it).
    pub fn ended(&self, id: u64) -> bool {
        self.map.lock().expect("jobs lock").get(&id).is_some_and(|j| j.state.lock().expect("job lock").end.is_some())
    }
}

/// The address of a job's page (where a starting POST redirects).
pub fn job_href(id: u64) -> String {
    format!("/web/jobs/{id}")
}

/// A job's status box, as its template shows it.
#[derive(Template)]
#[template(path = "job.html")]
pub struct JobView {
    pub id: u64,
    pub title: String,
    pub started_at: String,
    pub stage: String,
    pub elapsed: String,
    /// (done, total) when a total is known.
    pub counts: Option<(u64, u64)>,
    pub done_text: String,
    pub running: bool,
    pub ok: bool,
    pub message: String,
    pub link: Option<(String, String)>,
    pub detail: Option<String>,
}

fn view(j: &Job) -> JobView {
    let s = j.state.lock().expect("job lock");
    let elapsed = match &s.end {
        Some((at, _)) => at.duration_since(j.started),
        None => j.started.elapsed(),
    };
    let (running, ok, message, link, detail) = match &s.end {
        None => (true, true, String::new(), None, None),
        Some((_, Ok(o))) => (false, true, o.message.clone(), o.link.clone(), o.detail.clone()),
        Some((_, Err(e))) => (false, false, e.clone(), None, None),
    };
    JobView {
        id: j.id,
        title: j.title.clone(),
        started_at: j.started_at.clone(),
        stage: s.stage.clone(),
        elapsed: format!("{:.1} 秒", elapsed.as_secs_f64()),
        counts: (s.total > 0).then_some((s.done.min(s.total), s.total)),
        done_text: if s.done > 0 { super::count(s.done as i64) } else { String::new() },
        running,
        ok,
        message,
        link,
        detail,
    }
}

/// `GET /web/jobs/{id}`: the job's page.
pub async fn job_page(State(state): State<AppState>, u: WebUser, Path(id): Path<u64>) -> WebResult {
    let j = state.web.jobs.get(id, &u)?;
    let mut page = Page::new(j.title.clone());
    page.view(&view(&j))?;
    Ok(page.render(&u))
}

/// `GET /web/jobs/{id}/status`: the status box (polled by the page while the job runs).
pub async fn job_status(State(state): State<AppState>, u: WebUser, Path(id): Path<u64>) -> Response {
    match state.web.jobs.get(id, &u) {
        Ok(j) => fragment(super::render_fragment(&view(&j))),
        Err(e) => e.into_response(),
    }
}

/// The answer to a POST that started a job: to its page.
pub fn started(id: u64) -> Response {
    Redirect::to(&job_href(id)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_reports_its_progress_and_its_outcome_and_runs_once_per_owner() {
        let jobs = Jobs::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let id = jobs.start("reconcile", "重新比对", "county", |p| async move {
            p.stage("正在比对");
            p.count(3, 12);
            let _ = rx.await;
            Ok(Outcome { message: "完成".into(), link: Some(("查看".into(), "/web/worklist".into())), ..Default::default() })
        });
        tokio::task::yield_now().await;
        let again = jobs.start("reconcile", "重新比对", "county", |_| async {
            Ok(Outcome { message: "x".into(), link: None, ..Default::default() })
        });
        assert_eq!(again, id, "the running job is taken, not a second one started");
        let other = jobs.start("reconcile", "重新比对", "town", |_| async {
            Ok(Outcome { message: "x".into(), link: None, ..Default::default() })
        });
        assert_ne!(other, id);
        let j = jobs.map.lock().unwrap().get(&id).cloned().unwrap();
        let v = view(&j);
        assert!(v.running);
        assert_eq!(v.stage, "正在比对");
        assert_eq!(v.counts, Some((3, 12)));
        let html = v.render().unwrap();
        assert!(html.contains("hx-trigger=\"every 1s\""), "a running job polls: {html}");
        tx.send(()).unwrap();
        for _ in 0..100 {
            if jobs.ended(id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let v = view(&j);
        assert!(!v.running && v.ok);
        assert_eq!(v.message, "完成");
        let html = v.render().unwrap();
        assert!(!html.contains("hx-trigger"), "an ended job stops polling: {html}");
        assert!(html.contains("href=\"/web/worklist\""), "{html}");
    }

    #[tokio::test]
    async fn a_failed_job_says_why() {
        let jobs = Jobs::default();
        let id = jobs.start("audit", "运行审核规则", "county", |_| async { Err(WebError::bad("年度无效")) });
        for _ in 0..100 {
            if jobs.ended(id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let j = jobs.map.lock().unwrap().get(&id).cloned().unwrap();
        let v = view(&j);
        assert!(!v.ok);
        assert_eq!(v.message, "年度无效");
    }
}
