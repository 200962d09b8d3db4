//! `baozhang bench web`: the server time of each workbench page on a prepared database (the demo
//! county of `baozhang demo --no-serve`), as the pages are used: a county user drilling down from the
//! county to a person, the worklists, the policy calculator, the Excel exports, the slip.
//!
//! The server runs in-process on 127.0.0.1:0. The dashboard figures' first computation is reported
//! apart, then the start-up work `serve` does (each county's kept pages) is done and timed; each page
//! is then requested once (the first view after a restart) and `rounds` times more. The server's own
//! time is read from its `Server-Timing` header; the client's time (loopback, body read) is measured too.

use std::time::{Duration, Instant};

use baozhang_store::Store;

use crate::bench::percentile;
use crate::{AppState, Config, Policies};

#[derive(Clone, Debug)]
pub struct WebBenchOptions {
    pub database_url: String,
    /// The demo's accounts (`county`) and their password.
    pub username: String,
    pub password: String,
    pub rounds: usize,
}

#[derive(Clone, Debug, Default)]
pub struct PageTiming {
    pub name: String,
    pub path: String,
    pub bytes: usize,
    /// The first request, after the start-up work `serve` does (the first view after a restart).
    pub first: Duration,
    /// Server time of the following requests.
    pub server_p50: Duration,
    pub server_p95: Duration,
    pub server_max: Duration,
    /// Client time (loopback, whole body) of the following requests.
    pub client_p50: Duration,
}

pub struct WebBenchReport {
    pub pages: Vec<PageTiming>,
    /// The dashboard figures of the year, computed once (then cached and rolled up in memory).
    pub figures: Duration,
    /// What `serve` builds at start, after the figures (the kept county pages), waited for.
    pub warm: Duration,
    pub year: i64,
}

struct Client {
    http: reqwest::Client,
    base: String,
    cookie: String,
    /// The session's CSRF token (read from a page's `<meta name="csrf-token">`), sent with every post.
    csrf: String,
}

struct Answer {
    status: u16,
    location: String,
    server: Duration,
    client: Duration,
    body: String,
    bytes: usize,
}

impl Client {
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Answer, String> {
        let t = Instant::now();
        let r = rb.header("cookie", &self.cookie).send().await.map_err(|e| format!("no answer: {e}"))?;
        let status = r.status().as_u16();
        let header = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let location = header("location");
        let server = parse_server_timing(&header("server-timing")).unwrap_or_default();
        let is_text = header("content-type").starts_with("text/");
        let bytes = r.bytes().await.map_err(|e| format!("no body: {e}"))?;
        let client = t.elapsed();
        let body = if is_text { String::from_utf8_lossy(&bytes).into_owned() } else { String::new() };
        Ok(Answer { status, location, server, client, body, bytes: bytes.len() })
    }

    async fn get(&self, path: &str) -> Result<Answer, String> {
        self.send(self.http.get(format!("{}{path}", self.base))).await.map_err(|e| format!("GET {path}: {e}"))
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<Answer, String> {
        let body = serde_urlencoded::to_string(form).map_err(|e| e.to_string())?;
        let rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(crate::guard::CSRF_HEADER, &self.csrf)
            .header("origin", &self.base)
            .body(body);
        self.send(rb).await.map_err(|e| format!("POST {path}: {e}"))
    }
}

/// `app;dur=12.345` → 12.345 ms.
fn parse_server_timing(v: &str) -> Option<Duration> {
    let dur = v.split(';').find_map(|p| p.trim().strip_prefix("dur="))?;
    let (ms, frac) = dur.split_once('.').unwrap_or((dur, "0"));
    let micros = ms.parse::<u64>().ok()? * 1000 + format!("{frac:0<3}")[..3].parse::<u64>().ok()?;
    Some(Duration::from_micros(micros))
}

/// The first `href="<prefix>…"` of a page whose rest matches `ok`.
fn first_link(html: &str, prefix: &str, ok: impl Fn(&str) -> bool) -> Option<String> {
    let needle = format!("href=\"{prefix}");
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        let tail = &rest[i + 6..];
        let end = tail.find('"')?;
        let link = tail[..end].replace("&amp;", "&");
        if ok(&link[prefix.len()..]) {
            return Some(link);
        }
        rest = &tail[end..];
    }
    None
}

async fn measure(c: &Client, name: &str, path: &str, rounds: usize, post: Option<&[(&str, &str)]>) -> Result<PageTiming, String> {
    let once = || async {
        let a = match post {
            Some(form) => c.post(path, form).await?,
            None => c.get(path).await?,
        };
        if a.status != 200 || a.body.contains("alert error") {
            return Err(format!("{name} {path}: HTTP {} {}", a.status, a.body.chars().take(200).collect::<String>()));
        }
        Ok(a)
    };
    let first = once().await?;
    let mut server = Vec::with_capacity(rounds);
    let mut client = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let a = once().await?;
        server.push(a.server);
        client.push(a.client);
    }
    server.sort();
    client.sort();
    Ok(PageTiming {
        name: name.to_string(),
        path: path.to_string(),
        bytes: first.bytes,
        first: first.server,
        server_p50: percentile(&server, 0.5),
        server_p95: percentile(&server, 0.95),
        server_max: server.last().copied().unwrap_or_default(),
        client_p50: percentile(&client, 0.5),
    })
}

/// Serves the database in-process and measures the pages.
pub async fn run(opts: &WebBenchOptions) -> Result<WebBenchReport, String> {
    let store = Store::open(&opts.database_url).await.map_err(|e| e.to_string())?;
    let year =
        store.latest_enrolment_year().await.map_err(|e| e.to_string())?.ok_or("数据库中没有参保数据：请先运行 baozhang demo --no-serve")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let state = AppState::new(store.clone(), Policies::reference(), Config::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| e.to_string())?;
    let form = [("username", opts.username.as_str()), ("password", opts.password.as_str()), ("next", "/web/")];
    let r = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).map(str::to_string);
    let Some(cookie) = cookie.filter(|_| r.status().as_u16() == 303) else {
        return Err(format!(
            "用户 {} 登录失败（HTTP {}）：请先运行 baozhang demo --no-serve，或用 --username/--password 指定账号",
            opts.username,
            r.status().as_u16()
        ));
    };
    let mut c = Client { http, base, cookie, csrf: String::new() };
    let first = c.get("/web/catalogue").await?;
    c.csrf = first.body.split("name=\"csrf-token\" content=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string();

    // The dashboard figures of the year (computed on first use, then cached).
    let t = Instant::now();
    state.web.dashboard.get(&state, year).await.map_err(|e| e.message)?;
    let figures = t.elapsed();
    // What `serve` builds at start (the kept county pages), waited for: each page's first request below
    // is then the first view after a restart, once the start-up work is done.
    let t = Instant::now();
    crate::web::dashboard::warm(&state).await.map_err(|e| format!("warming the pages: {e}"))?;
    let warm = t.elapsed();

    let home = c.get("/web/region").await?;
    let county = home.location.split('?').next().unwrap_or("").to_string();
    if !county.starts_with("/web/region/") {
        return Err(format!("{} 没有可查看的区域（/web/region → {}）", opts.username, home.location));
    }
    let y = format!("?year={year}");
    let mut pages = Vec::new();
    let county_page = c.get(&format!("{county}{y}")).await?;
    let code = county.trim_start_matches("/web/region/").to_string();
    let township =
        first_link(&county_page.body, &format!("/web/region/{code}"), |rest| rest.split('?').next().is_some_and(|r| !r.is_empty()))
            .ok_or("县页面没有乡镇链接")?;
    let township_page = c.get(&township).await?;
    let tcode = township.trim_start_matches("/web/region/").split('?').next().unwrap_or("").to_string();
    let village =
        first_link(&township_page.body, &format!("/web/region/{tcode}"), |rest| rest.split('?').next().is_some_and(|r| !r.is_empty()))
            .ok_or("乡镇页面没有村链接")?;
    let village_page = c.get(&village).await?;
    let household = first_link(&village_page.body, "/web/household/", |_| true).ok_or("村页面没有户链接")?;
    let household_page = c.get(&household).await?;
    let person = first_link(&household_page.body, "/web/person/", |_| true).ok_or("户页面没有成员链接")?;
    let person_page = c.get(&person).await?;
    let slip = first_link(&person_page.body, "/web/slip/", |_| true);

    pages.push(measure(&c, "登录页", "/login", opts.rounds, None).await?);
    pages.push(measure(&c, "驾驶舱（县）", &format!("{county}{y}"), opts.rounds, None).await?);
    pages.push(measure(&c, "乡镇", &township, opts.rounds, None).await?);
    pages.push(measure(&c, "村", &village, opts.rounds, None).await?);
    pages.push(measure(&c, "户", &household, opts.rounds, None).await?);
    pages.push(measure(&c, "人员档案", &person, opts.rounds, None).await?);
    pages.push(measure(&c, "比对结果（全县）", "/web/worklist", opts.rounds, None).await?);
    let vcode = village.trim_start_matches("/web/region/").split('?').next().unwrap_or("");
    pages.push(measure(&c, "比对结果（一个村）", &format!("/web/worklist?region={vcode}"), opts.rounds, None).await?);
    pages.push(measure(&c, "因病致贫预警（全县）", &format!("/web/risk?region={code}&as_of={year}-12-31"), opts.rounds, None).await?);
    pages.push(measure(&c, "因病致贫预警（一个村）", &format!("/web/risk?region={vcode}&as_of={year}-12-31"), opts.rounds, None).await?);
    pages.push(measure(&c, "慢病卡比对（全县）", &format!("/web/chronic?region={code}"), opts.rounds, None).await?);
    pages.push(measure(&c, "家庭医生（全县）", &format!("/web/fdc?region={code}&year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "家庭医生（一个村）", &format!("/web/fdc?region={vcode}&year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "大病救治台账（全县）", &format!("/web/mdt?region={code}"), opts.rounds, None).await?);
    pages.push(measure(&c, "挂牌督战（全县）", &format!("/web/supervise?region={code}&year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "月报与分析（全县）", &format!("/web/reports?region={code}&year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "定期报表（全县）", &format!("/web/forms?region={code}&year={year}"), opts.rounds, None).await?);
    pages.push(
        measure(&c, "过期药品统计表（全县各乡镇各月）", &format!("/web/forms/expired_drugs?region={code}&year={year}"), opts.rounds, None)
            .await?,
    );
    pages.push(measure(&c, "健康扶贫指标（全县）", &format!("/web/forms/indicators?region={code}&year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "退出验收（全县）", &format!("/web/exit?region={code}&year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "退出验收（一个村）", &format!("/web/exit?region={vcode}&year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "资金拨付", &format!("/web/funds?year={year}"), opts.rounds, None).await?);
    pages.push(measure(&c, "政策与测算", "/web/policy", opts.rounds, None).await?);
    let calc: &[(&str, &str)] = &[
        ("policy", "gansu-huining-2018"),
        ("med_type", "21"),
        ("hosp_lv", "2"),
        ("date", "2018-06-30"),
        ("identity", "registered_poor"),
        ("in_county", "1"),
        ("referral_ok", "1"),
        ("total", "30000"),
        ("fulamt", "1000"),
        ("overlmt", "0"),
        ("preselfpay", "1500"),
    ];
    pages.push(measure(&c, "政策测算（计算）", "/web/policy/calc", opts.rounds, Some(calc)).await?);
    pages.push(measure(&c, "导出 Excel（县的乡镇表）", &format!("{county}{y}&export=children"), opts.rounds, None).await?);
    if let Some(s) = slip {
        pages.push(measure(&c, "结算单 PDF", &s, opts.rounds, None).await?);
    }
    let _ = stop.send(());
    let _ = server.await;
    Ok(WebBenchReport { pages, figures, warm, year })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_is_read_to_the_microsecond() {
        assert_eq!(parse_server_timing("app;dur=12.345"), Some(Duration::from_micros(12_345)));
        assert_eq!(parse_server_timing("app;dur=7"), Some(Duration::from_millis(7)));
        assert_eq!(parse_server_timing("app;dur=0.5"), Some(Duration::from_micros(500)));
        assert_eq!(parse_server_timing(""), None);
    }

    #[test]
    fn links_are_found_by_prefix() {
        let html = r#"<a href="/web/region/620422">县</a><a href="/web/region/620422101?year=2018&amp;x=1">乡</a>"#;
        assert_eq!(first_link(html, "/web/region/620422", |r| !r.is_empty()).as_deref(), Some("/web/region/620422101?year=2018&x=1"));
        assert_eq!(first_link(html, "/web/person/", |_| true), None);
    }
}
