//! County pages that take seconds to compute (家庭医生, 慢病卡, 挂牌督战, 月报与分析, 健康扶贫指标, 退出验收,
//! 资金拨付):
//! built once per region and parameters, kept, and answered at once.
//!
//! - A page is built by its handler's `build` function into a [`Built`]: the body (from its templates)
//!   and its tables (for the Excel export), without the header (user, CSRF token), which is added when
//!   it is sent. A page shown unmasked is never kept (every such view is logged and built afresh).
//! - A workbench or REST write (any successful POST to `/web/` or `/api/`) makes every kept page
//!   stale ([`forget_on_write`]): the next view builds it again, so a user sees their own change at
//!   once.
//! - Settlements (the national interface) and other processes' imports do not: a kept page older than
//!   [`PageCache::TTL`] is answered as it is and rebuilt in the background, like the dashboard's
//!   figures; the page's footer says when it was computed.
//! - `serve` builds the county pages of the default year at start ([`warm`]), so the first view after
//!   a restart is fast too.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::table::Table;
use super::{Page, WebError, WebUser};
use crate::AppState;

/// A page as built: what goes inside the header and footer, and the tables its export serves.
pub struct Built {
    pub title: String,
    pub crumbs: Vec<(String, String)>,
    pub body: String,
    pub tables: Vec<Table>,
    /// After the tables (a form below them).
    pub tail: String,
    /// Tables the export serves instead of the shown one of the same id (the export has rows the page
    /// leaves out).
    pub exports: Vec<Table>,
    pub computed: Instant,
    /// The time the build took (ms), said in the footer.
    pub compute_ms: u128,
}

impl Built {
    pub fn new(page: Page, tables: Vec<Table>) -> Built {
        Built {
            title: page.title,
            crumbs: page.crumbs,
            body: page.body,
            tables,
            tail: String::new(),
            exports: Vec::new(),
            computed: Instant::now(),
            compute_ms: 0,
        }
    }

    /// The page for `u`: the body, each table, and a line saying how old the figures are.
    pub fn page(&self, u: &WebUser) -> Page {
        let mut p = Page::new(self.title.clone());
        p.crumbs = self.crumbs.clone();
        p.push(&self.body);
        p.tables(u, &self.tables.iter().collect::<Vec<_>>());
        p.push(&self.tail);
        let age = self.computed.elapsed().as_secs();
        p.push(&super::render_fragment(&AgeNote {
            age: if age < 5 { "刚刚计算".to_string() } else { format!("计算于 {} 前", age_text(age)) },
            ms: self.compute_ms.to_string(),
        }));
        p
    }

    /// The tables an export may name: the export versions first.
    pub fn export_tables(&self) -> Vec<&Table> {
        let mut v: Vec<&Table> = self.exports.iter().collect();
        v.extend(self.tables.iter().filter(|t| !self.exports.iter().any(|e| e.id == t.id)));
        v
    }
}

#[derive(askama::Template)]
#[template(
    source = "<p class=\"muted page-age\" data-testid=\"page-age\">本页数据{{ age }}（用时 {{ ms }} 毫秒）；数据有变动时自动更新。</p>",
    ext = "html"
)]
struct AgeNote {
    age: String,
    ms: String,
}

fn age_text(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} 秒"),
        60..=3599 => format!("{} 分钟", secs / 60),
        _ => format!("{} 小时", secs / 3600),
    }
}

pub type BuildFuture = Pin<Box<dyn Future<Output = Result<Built, WebError>> + Send>>;
/// Builds a page again (for a refresh in the background).
pub type Builder = Arc<dyn Fn() -> BuildFuture + Send + Sync>;
/// A page's build from the application, the user it is built for (at the page's own address), the
/// region and the year.
pub type BuildFn = fn(AppState, WebUser, String, i64) -> BuildFuture;

/// The kept page `page` of `region` and `year` for `u`'s role and scope (`address`: the page's own,
/// for the links it builds), built by `build` when not kept or stale.
pub async fn kept(
    state: &AppState,
    u: &WebUser,
    page: &str,
    address: String,
    region: &str,
    year: i64,
    build: BuildFn,
) -> Result<Arc<Built>, WebError> {
    let key = format!("{page}|{region}|{year}|{}|{}", u.p.role.as_str(), u.p.scope);
    let (st, who, region) = (state.clone(), u.for_build(address), region.to_string());
    let builder: Builder = Arc::new(move || build(st.clone(), who.clone_user(), region.clone(), year));
    state.web.pages.get(key, builder).await
}

struct Slot {
    built: Arc<Built>,
    generation: u64,
    refreshing: bool,
}

/// The kept pages, by key (page, region, parameters, what the role may do).
#[derive(Default)]
pub struct PageCache {
    generation: AtomicU64,
    slots: Mutex<HashMap<String, Slot>>,
}

impl PageCache {
    /// A kept page older than this is rebuilt in the background.
    pub const TTL: Duration = Duration::from_secs(60);
    /// Pages kept at most (a county's pages for a few years and roles; each is up to ~1 MB).
    pub const MAX: usize = 48;

    /// Every kept page is stale from now on (a write changed the data).
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The kept page under `key` if still current (rebuilt in the background when older than the TTL),
    /// else built now by `build` and kept.
    pub async fn get(self: &Arc<Self>, key: String, build: Builder) -> Result<Arc<Built>, WebError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let refresh = {
            let mut slots = self.slots.lock().expect("page cache lock");
            match slots.get_mut(&key) {
                Some(s) if s.generation == generation => {
                    let stale = s.built.computed.elapsed() > Self::TTL && !s.refreshing;
                    if stale {
                        s.refreshing = true;
                    }
                    Some((s.built.clone(), stale))
                }
                _ => None,
            }
        };
        if let Some((built, stale)) = refresh {
            if stale {
                let me = self.clone();
                tokio::spawn(async move {
                    match me.build_and_keep(key.clone(), generation, &build).await {
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(status = %e.status, page = %key, "background rebuild of a page failed");
                            if let Some(s) = me.slots.lock().expect("page cache lock").get_mut(&key) {
                                s.refreshing = false;
                            }
                        }
                    }
                });
            }
            return Ok(built);
        }
        self.build_and_keep(key, generation, &build).await
    }

    async fn build_and_keep(&self, key: String, generation: u64, build: &Builder) -> Result<Arc<Built>, WebError> {
        let t = Instant::now();
        let mut built = build().await?;
        built.computed = Instant::now();
        built.compute_ms = t.elapsed().as_millis();
        tracing::info!(page = %key, ms = built.compute_ms as u64, "page built");
        let built = Arc::new(built);
        let mut slots = self.slots.lock().expect("page cache lock");
        if slots.len() >= Self::MAX && !slots.contains_key(&key) {
            if let Some(oldest) = slots.iter().min_by_key(|(_, s)| s.built.computed).map(|(k, _)| k.clone()) {
                slots.remove(&oldest);
            }
        }
        slots.insert(key, Slot { built: built.clone(), generation, refreshing: false });
        Ok(built)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().expect("page cache lock").len()
    }
}

/// Posts that change nothing (a search, a calculation, a preview, the window's look-up and
/// pre-settlement): they leave the kept pages as they are.
const READ_ONLY_POSTS: [&str; 10] = [
    "/web/find",
    "/web/window/find",
    "/web/window/presettle",
    "/web/policy/calc",
    "/web/policy/compare",
    "/web/policy/compare/xlsx",
    "/web/resettle/preview",
    "/api/login",
    "/api/logout",
    "/api/persons/lookup",
];

/// Layer: a successful write through the workbench or the REST interface makes the kept pages stale.
pub async fn forget_on_write(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path();
    let ours = write && (path.starts_with("/web/") || path.starts_with("/api/")) && !READ_ONLY_POSTS.contains(&path);
    let res = next.run(req).await;
    if ours && res.status().as_u16() < 400 {
        state.web.pages.forget();
    }
    res
}

/// Builds the county pages of the default year for the county bureau, one at a time (so the first views
/// after a restart are fast and a settlement is not kept waiting); `dashboard::warm` runs it in the
/// background at start.
pub async fn warm_pages(st: &AppState, counties: Vec<String>, year: i64) {
    for county in counties {
        let u = WebUser::warming(&county);
        for (name, r) in [
            ("fdc", super::fdc::cached(st, &u, &county, year).await.map(|_| ())),
            ("chronic", super::chronic::cached(st, &u, &county).await.map(|_| ())),
            ("exit", super::exit::cached(st, &u, &county, year).await.map(|_| ())),
            ("indicators", super::periodic::indicators_cached(st, &u, &county, year).await.map(|_| ())),
            ("supervise", super::supervise::cached(st, &u, &county, year).await.map(|_| ())),
            ("reports", super::reports::cached(st, &u, &county, year).await.map(|_| ())),
            ("funds", super::funds::cached(st, &u, &county, year).await.map(|_| ())),
        ] {
            if let Err(e) = r {
                tracing::warn!(page = name, county = %county, status = %e.status, "warming a page failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(n: Arc<AtomicU64>) -> Builder {
        Arc::new(move || {
            let n = n.clone();
            Box::pin(async move {
                let k = n.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(Built::new(Page::new(format!("第 {k} 次")), Vec::new()))
            })
        })
    }

    #[tokio::test]
    async fn a_kept_page_is_answered_until_a_write_makes_it_stale() {
        let cache = Arc::new(PageCache::default());
        let n = Arc::new(AtomicU64::new(0));
        assert_eq!(cache.get("a".into(), builder(n.clone())).await.unwrap().title, "第 1 次");
        assert_eq!(cache.get("a".into(), builder(n.clone())).await.unwrap().title, "第 1 次", "kept");
        assert_eq!(cache.get("b".into(), builder(n.clone())).await.unwrap().title, "第 2 次", "another key is built");
        cache.forget();
        assert_eq!(cache.get("a".into(), builder(n.clone())).await.unwrap().title, "第 3 次", "rebuilt after a write");
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_build_keeps_nothing_and_the_cache_is_bounded() {
        let cache = Arc::new(PageCache::default());
        let fail: Builder = Arc::new(|| Box::pin(async { Err(WebError::bad("坏")) }));
        assert!(cache.get("x".into(), fail).await.is_err());
        assert_eq!(cache.len(), 0);
        let n = Arc::new(AtomicU64::new(0));
        for k in 0..PageCache::MAX + 5 {
            cache.get(format!("k{k}"), builder(n.clone())).await.unwrap();
        }
        assert_eq!(cache.len(), PageCache::MAX);
    }

    #[test]
    fn ages_read_in_words() {
        assert_eq!(age_text(30), "30 秒");
        assert_eq!(age_text(150), "2 分钟");
        assert_eq!(age_text(7200), "2 小时");
    }
}
