//! 政策测算（新旧政策比较） on the policy page: the bureau weighs a new policy against the one in force. A
//! year's live settlements of the user's region are settled again under both — an OLD and a NEW among the
//! loaded policies, or a NEW policy file uploaded for the purpose (checked by `core::policy::parse_policy`,
//! never stored) — and the page shows what changes per layer and fund, per identity, per township, the poor
//! inpatients' actual reimbursement ratio and the persons most affected (masked); the same as Excel.
//!
//! The loading is `ingest::policy_compare::load_year` (shared with `baozhang policy compare --year`), the
//! computation `ingest::policy_compare::compare`, off the async executor. Nothing is written but the audit
//! line. The page is a view model ([`view`], pure) rendered by `templates/policy_compare.html`.
//!
//! Bounds: admin and bureau only; only person-years of the user's region; a policy file of at most
//! [`MAX_POLICY_BYTES`]; at most `MAX_CLAIMS` claims (as the CLI); one comparison at a time per server.
//! The workbook is answered by its own POST, which checks role and scope again and computes it again (no
//! result is kept between requests, so nothing computed for one user can be fetched by another).

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use baozhang_core::policy::{parse_policy, Policy, ALL_FUNDS};
use baozhang_core::Fen;
use baozhang_ingest::policy_compare::{
    compare, load_year, name_affected, percent, points, Comparison, GroupRow, LoadYearError, Pair, MAX_CLAIMS,
};
use baozhang_ingest::settle_run::PolicyChoice;
use baozhang_ingest::worklist::{mask_id, mask_name};

use super::{Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

/// Largest policy file accepted (the shipped ones are under 40 KiB).
pub const MAX_POLICY_BYTES: usize = 256 << 10;
/// The request body of the route: the file (or its text carried back by the download form) and a few fields.
pub const MAX_BODY_BYTES: usize = MAX_POLICY_BYTES + (64 << 10);
/// Persons listed as most affected.
pub const TOP: usize = 50;
/// Refusals listed on the page per policy (every one is in the workbook).
const SHOWN_REFUSALS: usize = 50;
/// One comparison at a time per server: settling a county's year twice keeps a core busy for a while, and
/// the machine is shared with the settlement interface.
static RUNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

pub fn may_compare(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau)
}

// ───────────────────────────── the view ─────────────────────────────

/// An amount under both policies, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRow {
    /// `data-testid` suffix: a layer id, a fund code, `FUND` or `PSN`.
    pub key: String,
    pub name: String,
    pub fund: String,
    pub old: String,
    pub new: String,
    pub change: String,
    /// "up", "down" or "" (CSS of the change).
    pub class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub code: String,
    pub name: String,
    pub claims: u64,
    pub persons: usize,
    pub medfee: String,
    pub fund: PairRow,
    pub psn: PairRow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedView {
    pub id: String,
    pub name: String,
    pub year: u16,
    pub township: String,
    pub identities: String,
    pub claims: u64,
    pub psn: PairRow,
}

/// A comparison's result on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultView {
    pub old_label: String,
    pub new_label: String,
    pub old_version: String,
    pub new_version: String,
    pub source: String,
    pub year: u16,
    /// (label, text) lines: claims read, settled, refused, compared, persons, cost.
    pub counts: Vec<(String, String)>,
    pub layers: Vec<PairRow>,
    /// Every fund, then the fund total and the personal part.
    pub funds: Vec<PairRow>,
    pub identities: Vec<GroupView>,
    pub townships: Vec<GroupView>,
    pub poor_claims: u64,
    pub poor_medfee: String,
    pub poor_old: String,
    pub poor_new: String,
    pub poor_change: String,
    pub affected: Vec<AffectedView>,
    pub refusals: Vec<String>,
    pub more_refusals: usize,
    /// What the download form posts again.
    pub old_id: String,
    pub new_id: String,
    pub new_toml: String,
}

#[derive(Template, Debug)]
#[template(path = "policy_compare.html")]
pub struct CompareView {
    /// (id, "name（region）") of each loaded policy.
    pub policies: Vec<(String, String)>,
    pub old: String,
    pub new: String,
    pub year: i64,
    pub max_kib: usize,
    pub region: String,
    /// The uploaded file's problems, each with its line where known (Chinese).
    pub problems: Vec<String>,
    pub problem_file: String,
    pub result: Option<ResultView>,
}

fn yuan(fen: i64) -> String {
    Fen(fen).grouped()
}

fn signed(fen: i64) -> String {
    if fen > 0 {
        format!("+{}", Fen(fen).grouped())
    } else {
        Fen(fen).grouped()
    }
}

fn pair_row(key: &str, name: &str, fund: &str, p: Pair) -> PairRow {
    PairRow {
        key: key.to_string(),
        name: name.to_string(),
        fund: fund.to_string(),
        old: yuan(p.old_fen),
        new: yuan(p.new_fen),
        change: signed(p.change_fen()),
        class: match p.change_fen().signum() {
            1 => "up",
            -1 => "down",
            _ => "",
        },
    }
}

fn group_view(g: &GroupRow) -> GroupView {
    GroupView {
        code: g.code.clone(),
        name: g.name.clone(),
        claims: g.claims,
        persons: g.persons,
        medfee: yuan(g.medfee_fen),
        fund: pair_row(&g.code, "基金支付", "", g.fund_pay),
        psn: pair_row(&g.code, "个人负担", "", g.psn),
    }
}

fn policy_label(p: &Policy) -> String {
    format!("{}（{}）", p.meta.name, p.meta.id)
}

/// The result view of a comparison: pure, unit-tested on its fields. ID numbers and names masked.
pub fn result_view(c: &Comparison, year: u16, old: &Policy, new: &Policy, new_id: &str, new_toml: &str) -> ResultView {
    let refused = |r: &[baozhang_ingest::policy_compare::Refusal], side: &str| {
        r.iter().take(SHOWN_REFUSALS).map(|x| format!("{side}未结算：{}，字段 {}：{}", x.label, x.field, x.reason)).collect::<Vec<_>>()
    };
    let mut refusals = refused(&c.old.refused, "原政策");
    refusals.extend(refused(&c.new.refused, "新政策"));
    refusals.extend(c.unreadable.iter().take(SHOWN_REFUSALS).map(|u| format!("未参与比较：{u}")));
    let more_refusals = c.old.refused.len().saturating_sub(SHOWN_REFUSALS)
        + c.new.refused.len().saturating_sub(SHOWN_REFUSALS)
        + c.unreadable.len().saturating_sub(SHOWN_REFUSALS);
    let town_name = |code: &str| c.townships.iter().find(|t| t.code == code).map_or_else(|| code.to_string(), |t| t.name.clone());
    let mut funds: Vec<PairRow> =
        ALL_FUNDS.iter().map(|f| pair_row(f.code(), f.name_zh(), f.name_zh(), c.total.funds[f.index()])).collect();
    funds.push(pair_row("FUND", "基金支付合计", "", c.total.fund_pay));
    funds.push(pair_row("PSN", "个人负担", "", c.total.psn));
    let na = || "—".to_string();
    ResultView {
        old_label: policy_label(old),
        new_label: policy_label(new),
        old_version: old.version.clone(),
        new_version: new.version.clone(),
        source: c.source.clone(),
        year,
        counts: vec![
            ("读入理赔".into(), format!("{} 笔", c.claims_read)),
            ("原政策结算".into(), format!("{} 笔，未结算 {} 笔", c.old.settled, c.old.refused.len())),
            ("新政策结算".into(), format!("{} 笔，未结算 {} 笔", c.new.settled, c.new.refused.len())),
            ("两项政策都结算".into(), format!("{} 笔，{} 人（以下各表只含这些理赔）", c.total.claims, c.total.persons)),
            ("医疗费总额".into(), format!("{} 元", yuan(c.total.medfee_fen))),
        ],
        layers: c.layers.iter().map(|l| pair_row(&l.id, &l.name(), &l.fund_zh(), l.amount)).collect(),
        funds,
        identities: c.identities.iter().map(group_view).collect(),
        townships: c.townships.iter().map(group_view).collect(),
        poor_claims: c.poor.claims,
        poor_medfee: yuan(c.poor.medfee_fen),
        poor_old: c.poor.old_bp.map_or_else(na, percent),
        poor_new: c.poor.new_bp.map_or_else(na, percent),
        poor_change: c.poor.change_bp().map_or_else(na, points),
        affected: c
            .affected
            .iter()
            .map(|a| AffectedView {
                id: mask_id(&a.person),
                name: a.name.as_deref().map(mask_name).unwrap_or_default(),
                year: a.year,
                township: town_name(&a.township),
                identities: a.identities.names_zh(),
                claims: a.claims,
                psn: pair_row("", "个人负担", "", a.psn),
            })
            .collect(),
        refusals,
        more_refusals,
        old_id: old.meta.id.clone(),
        new_id: new_id.to_string(),
        new_toml: new_toml.to_string(),
    }
}

impl CompareView {
    fn new(state: &AppState, region: &str, old: &str, new: &str, year: i64) -> CompareView {
        CompareView {
            policies: state
                .policies
                .all()
                .iter()
                .map(|p| (p.meta.id.clone(), format!("{}（{}）", p.meta.name, p.meta.region_name)))
                .collect(),
            old: old.to_string(),
            new: new.to_string(),
            year,
            max_kib: MAX_POLICY_BYTES >> 10,
            region: region.to_string(),
            problems: Vec::new(),
            problem_file: String::new(),
            result: None,
        }
    }
    fn html(&self) -> Result<String, WebError> {
        self.render().map_err(|e| WebError::internal(&format!("template policy_compare.html: {e}")))
    }
}

/// The form of the policy page (admin and bureau; nothing for other roles): OLD is the policy shown.
pub async fn form_html(state: &AppState, u: &WebUser, shown: &Policy) -> Result<String, WebError> {
    if !may_compare(u) {
        return Ok(String::new());
    }
    let region = u.region()?;
    let year = super::health::year_param(state, None).await?;
    CompareView::new(state, region, &shown.meta.id, &shown.meta.id, year).html()
}

// ───────────────────────────── the request ─────────────────────────────

/// The form as posted (multipart: the token first, then `old`, `new`, `year`, and `file` or `new_toml`).
#[derive(Default)]
struct Posted {
    old: String,
    new: String,
    year: String,
    /// A region inside the user's own (empty: the user's region).
    region: String,
    /// An uploaded policy file: (file name, bytes).
    file: Option<(String, Vec<u8>)>,
    /// The text of an uploaded policy file, carried back by the download form.
    new_toml: String,
}

async fn read_form(pending: Option<crate::guard::CsrfPending>, mut mp: Multipart) -> Result<Posted, WebError> {
    let mut csrf_ok = pending.is_none();
    let mut f = Posted::default();
    let too_big = || WebError::bad(format!("政策文件过大（上限 {} KiB）", MAX_POLICY_BYTES >> 10));
    while let Some(field) = mp.next_field().await.map_err(|e| WebError::bad(format!("提交的内容无法读取：{}", e.body_text())))? {
        let name = field.name().unwrap_or("").to_string();
        if name == crate::guard::CSRF_FIELD {
            let v = field.text().await.map_err(|_| WebError::bad("校验码无法读取"))?;
            csrf_ok = crate::guard::check_pending(pending.as_ref(), Some(v.trim()));
            continue;
        }
        // The token comes first in the form: nothing else is read without it.
        if !csrf_ok {
            return Err(WebError::forbidden(crate::guard::CSRF_REFUSAL));
        }
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or("").to_string();
                let bytes = field.bytes().await.map_err(|_| too_big())?;
                if bytes.len() > MAX_POLICY_BYTES {
                    return Err(too_big());
                }
                if !bytes.is_empty() {
                    f.file = Some((file_name, bytes.to_vec()));
                }
            }
            "old" | "new" | "year" | "region" | "new_toml" => {
                let v = field.text().await.map_err(|_| too_big())?;
                if v.len() > MAX_POLICY_BYTES {
                    return Err(too_big());
                }
                match name.as_str() {
                    "old" => f.old = v.trim().to_string(),
                    "new" => f.new = v.trim().to_string(),
                    "year" => f.year = v.trim().to_string(),
                    "region" => f.region = v.trim().to_string(),
                    _ => f.new_toml = v,
                }
            }
            _ => {}
        }
    }
    if !csrf_ok {
        return Err(WebError::forbidden(crate::guard::CSRF_REFUSAL));
    }
    Ok(f)
}

/// The NEW policy: uploaded (a file, or its text carried back), or one of the loaded ones.
enum NewPolicy {
    Loaded(usize),
    Uploaded { policy: Box<Policy>, text: String },
}

/// What a posted comparison came to.
enum Outcome {
    /// The uploaded file has problems: the form again with them.
    Problems(CompareView),
    Done {
        view: CompareView,
        comparison: Box<Comparison>,
    },
}

fn find_policy(state: &AppState, id: &str, which: &str) -> Result<usize, WebError> {
    if id.is_empty() {
        return Err(WebError::bad(format!("请选择{which}")));
    }
    state.policies.all().iter().position(|p| p.meta.id == id).ok_or_else(|| WebError::bad(format!("{which}：没有政策“{id}”")))
}

/// Checks role and scope, reads the form, loads the year of the user's region and compares (off the
/// executor); logs the run in the audit log (`action`) with the policies and the year, never a person.
async fn weigh(
    state: &AppState,
    u: &WebUser,
    pending: Option<crate::guard::CsrfPending>,
    mp: Multipart,
    action: &str,
) -> Result<Outcome, WebError> {
    u.require(may_compare(u), "进行新旧政策测算（仅医保局和系统管理员可用）")?;
    u.region()?;
    let f = read_form(pending, mp).await?;
    if f.region.len() > 12 {
        return Err(WebError::bad("区划代码应为至多 12 位数字"));
    }
    let region = u.region_in_scope(Some(&f.region))?.to_string();
    let year: u16 = f.year.parse().ok().filter(|y| (2018..=2100).contains(y)).ok_or_else(|| {
        WebError::bad(format!("年度“{}”无效（应为 2018 到 2100 之间的年份）", f.year.chars().take(20).collect::<String>()))
    })?;
    let old = find_policy(state, &f.old, "原政策")?;
    let mut view = CompareView::new(state, &region, &f.old, &f.new, i64::from(year));
    let (file_name, text) = match f.file {
        Some((name, bytes)) => (name, Some(bytes)),
        None if !f.new_toml.trim().is_empty() => ("新政策文件".to_string(), Some(f.new_toml.into_bytes())),
        None => (String::new(), None),
    };
    let new = match text {
        None => NewPolicy::Loaded(find_policy(state, &f.new, "新政策")?),
        Some(bytes) => {
            let shown = if file_name.is_empty() { "上传的政策文件".to_string() } else { format!("政策文件“{file_name}”") };
            let Ok(text) = String::from_utf8(bytes) else {
                view.problem_file = shown;
                view.problems = vec!["文件不是 UTF-8 编码的文本（政策文件应为 UTF-8 编码的 TOML）".into()];
                return Ok(Outcome::Problems(view));
            };
            match parse_policy(&text) {
                Ok(p) => NewPolicy::Uploaded { policy: Box::new(p), text },
                Err(errs) => {
                    view.problem_file = shown;
                    view.problems = errs.0.iter().map(ToString::to_string).collect();
                    return Ok(Outcome::Problems(view));
                }
            }
        }
    };
    let Ok(one_at_a_time) = RUNS.try_acquire() else {
        return Err(WebError::new(StatusCode::SERVICE_UNAVAILABLE, "另一项政策测算正在进行，请稍后再试"));
    };
    let set = load_year(&state.store, year, &region, MAX_CLAIMS).await.map_err(|e| match e {
        LoadYearError::TooMany { .. } => WebError::bad(format!("{e}；请按乡镇分开比较")),
        LoadYearError::Store(e) => WebError::from(e),
    })?;
    let policies = state.policies.clone();
    let started = std::time::Instant::now();
    let (mut c, old_p, new_p, new_toml) = tokio::task::spawn_blocking(move || {
        // The permit lives as long as the computation, not the request: a client that goes away does
        // not free the slot while its comparison still runs.
        let _one_at_a_time = one_at_a_time;
        let old_p = policies.all()[old].clone();
        let (new_p, new_toml) = match new {
            NewPolicy::Loaded(i) => (policies.all()[i].clone(), String::new()),
            NewPolicy::Uploaded { policy, text } => (*policy, text),
        };
        let c = compare(PolicyChoice::One(&old_p), PolicyChoice::One(&new_p), &set, TOP);
        (c, old_p, new_p, new_toml)
    })
    .await
    .map_err(|e| WebError::internal(&format!("policy comparison task failed: {e}")))?;
    tracing::info!(year, claims = c.claims_read, compared = c.total.claims, ms = started.elapsed().as_millis() as u64, "policy comparison");
    name_affected(&state.store, &mut c).await?;
    let uploaded = if new_toml.is_empty() { "" } else { "，上传文件" };
    state
        .store
        .audit(
            &u.p.username,
            action,
            &format!(
                "政策测算：原政策 {}（版本 {}），新政策 {}（版本 {}{uploaded}），{year} 年度，区划 {}，比较 {} 笔",
                old_p.meta.id,
                old_p.version,
                new_p.meta.id,
                new_p.version,
                if region.is_empty() { "全部" } else { &region },
                c.total.claims
            ),
        )
        .await?;
    let new_id = if new_toml.is_empty() { new_p.meta.id.clone() } else { f.new.clone() };
    view.result = Some(result_view(&c, year, &old_p, &new_p, &new_id, &new_toml));
    Ok(Outcome::Done { view, comparison: Box::new(c) })
}

fn page_of(u: &WebUser, view: &CompareView, status: StatusCode) -> WebResult {
    let mut page = Page::new("政策测算（新旧政策比较）");
    page.crumbs.push(("政策与测算".into(), "/web/policy".into()));
    page.crumbs.push(("政策测算".into(), String::new()));
    page.push(&view.html()?);
    let mut r = page.render(u);
    *r.status_mut() = status;
    Ok(r)
}

/// `POST /web/policy/compare` (multipart): the comparison's page, or the uploaded file's problems (400).
pub async fn compare_page(
    State(state): State<AppState>,
    u: WebUser,
    pending: Option<axum::Extension<crate::guard::CsrfPending>>,
    mp: Multipart,
) -> WebResult {
    match weigh(&state, &u, pending.map(|p| p.0), mp, "policy.compare").await? {
        Outcome::Problems(view) => page_of(&u, &view, StatusCode::BAD_REQUEST),
        Outcome::Done { view, .. } => page_of(&u, &view, StatusCode::OK),
    }
}

/// `POST /web/policy/compare/xlsx` (multipart, the same fields): the comparison as a workbook (概况, 分层,
/// 身份, 乡镇, 受影响人员, 未结算), computed again under the same checks.
pub async fn compare_xlsx(
    State(state): State<AppState>,
    u: WebUser,
    pending: Option<axum::Extension<crate::guard::CsrfPending>>,
    mp: Multipart,
) -> WebResult {
    let (view, c) = match weigh(&state, &u, pending.map(|p| p.0), mp, "policy.compare.xlsx").await? {
        Outcome::Problems(view) => return page_of(&u, &view, StatusCode::BAD_REQUEST),
        Outcome::Done { view, comparison } => (view, comparison),
    };
    let year = view.result.as_ref().map_or(0, |r| r.year);
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("compare.xlsx");
        baozhang_ingest::policy_compare::write_xlsx(&path, &c).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| WebError::internal(&format!("workbook task failed: {e}")))?
    .map_err(|e| WebError::internal(&format!("policy comparison workbook: {e}")))?;
    let name = format!("policy-compare-{year}.xlsx");
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{name}\"; filename*=UTF-8''{}",
        super::urlencode(&format!("政策测算-{year}.xlsx"))
    ))
    .map_err(|e| WebError::internal(&format!("content-disposition: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baozhang_core::reference::reference_source;
    use baozhang_ingest::policy_compare::{read_claims_csv, ClaimSet};

    const HEADER: &str = "claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,referral_ok,major_disease,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt";

    fn huining(deductible: Option<u32>) -> Policy {
        let mut src = reference_source("gansu-huining-2018").unwrap().to_string();
        if let Some(d) = deductible {
            let old = "deductible = { value = 5000, mark = \"S\"";
            assert!(src.contains(old));
            src = src.replace(old, &format!("deductible = {{ value = {d}, mark = \"S\""));
        }
        parse_policy(&src).unwrap()
    }

    fn set(rows: &str) -> ClaimSet {
        read_claims_csv(format!("{HEADER}\n{rows}").as_bytes(), 100).unwrap()
    }

    #[test]
    fn the_view_shows_each_fund_old_new_and_change_and_masks_persons() {
        let (old, new) = (huining(None), huining(Some(4000)));
        let s = set("C1,110101199001011234,,2018-03-01,2,1,21,1,0,20000.00,0,0,0,20000.00\n");
        let mut c = compare(PolicyChoice::One(&old), PolicyChoice::One(&new), &s, TOP);
        c.affected[0].name = Some("张三丰".into());
        let v = result_view(&c, 2018, &old, &new, "", "x = 1");
        let critical = v.funds.iter().find(|f| f.key == "390200").unwrap();
        assert_eq!((critical.old.as_str(), critical.new.as_str(), critical.change.as_str()), ("675.00", "1,175.00", "+500.00"));
        assert_eq!(critical.class, "up");
        let psn = v.funds.iter().find(|f| f.key == "PSN").unwrap();
        assert_eq!((psn.change.as_str(), psn.class), ("-500.00", "down"));
        assert_eq!(v.affected.len(), 1);
        assert_eq!(v.affected[0].id, "110101********1234");
        assert!(!v.affected[0].name.contains("三丰"), "{}", v.affected[0].name);
        assert_eq!(v.new_toml, "x = 1");
        assert_eq!(v.poor_old, "—");
        let html = CompareView { result: Some(v), ..empty_view() }.render().unwrap();
        assert!(!html.contains("110101199001011234"));
        assert!(html.contains("data-testid=\"fund-390200-change\""), "{html}");
    }

    fn empty_view() -> CompareView {
        CompareView {
            policies: vec![("gansu-huining-2018".into(), "会宁".into())],
            old: "gansu-huining-2018".into(),
            new: "gansu-huining-2018".into(),
            year: 2018,
            max_kib: 256,
            region: "620422".into(),
            problems: Vec::new(),
            problem_file: String::new(),
            result: None,
        }
    }

    #[test]
    fn problems_are_listed_and_escaped() {
        let v = CompareView {
            problems: vec!["第 3 行，policy：<b>无法解析</b>".into()], problem_file: "x.toml".into(), ..empty_view()
        };
        let html = v.render().unwrap();
        assert!(html.contains("第 3 行，policy：") && !html.contains("<b>"), "{html}");
        assert!(html.contains("enctype=\"multipart/form-data\""));
    }
}
