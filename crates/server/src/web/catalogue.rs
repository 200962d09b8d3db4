//! 医保目录 (the medical-insurance catalogue): search by code or name, 50 a page, with each item's class,
//! 甲/乙/丙, 先行自付比例, 最高限价, 限定支付范围 and validity in words. Public data: every signed-in role may
//! read it. The bureau (admin, bureau) uploads catalogue and code-map files here (the same reader and
//! checks as `baozhang catalogue import`; a file with any bad row is refused whole, every bad row listed).
//!
//! The page is loaded from the store, turned into a view model by a pure function ([`view`]) and rendered
//! by `templates/catalogue.html` (auto-escaped).

// One import at a time, rosters and catalogues alike (they compete for the one database writer).
use super::import::{safe_file_name, IMPORTS};
use askama::Template;
use axum::extract::{Multipart, Query, State};
use baozhang_core::catalogue::{med_chrgitm_type_zh, ChrgitmLv, ListType};
use baozhang_ingest::catalogue::{import_file, limits, parse_date_loose, CatalogueFileError, CatalogueKind};
use baozhang_store::catalogue::{CatalogueImport, CatalogueImportReport, CatalogueItem, CatalogueQuery};
use baozhang_store::date_num;
use serde::Deserialize;

use super::{count, date_text, pct, urlencode, yuan, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

/// Rows a page shows.
pub const PAGE_SIZE: i64 = 50;
/// Largest catalogue file accepted from the browser (bigger ones: `baozhang catalogue import`).
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

fn may_upload(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau)
}

#[derive(Deserialize, Default, Clone, Debug, PartialEq, Eq)]
pub struct CatalogueQ {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub list_type: String,
    /// A date (2024-06-01): only the items valid on it.
    #[serde(default)]
    pub on: String,
    #[serde(default)]
    pub page: Option<i64>,
}

/// One item as the page shows it.
#[derive(Debug, PartialEq, Eq)]
pub struct ItemRow {
    pub code: String,
    pub name: String,
    pub list_type: String,
    pub chrgitm_type: String,
    pub lv: String,
    /// CSS class of the 甲/乙/丙 tag.
    pub lv_class: &'static str,
    pub prop: String,
    pub ceiling: String,
    pub scope: String,
    pub validity: String,
    pub valid: bool,
}

/// The outcome of an upload, shown above the search.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UploadResult {
    pub ok: bool,
    pub summary: String,
    /// (row, field, value, reason)
    pub errors: Vec<(u64, String, String, String)>,
    pub more: u64,
}

#[derive(Template, Debug)]
#[template(path = "catalogue.html")]
pub struct CatalogueView {
    pub q: String,
    pub list_type: String,
    pub on: String,
    pub list_types: Vec<(&'static str, &'static str)>,
    pub total: String,
    pub page: i64,
    pub pages: i64,
    pub prev_href: String,
    pub next_href: String,
    pub rows: Vec<ItemRow>,
    /// No catalogue loaded at all (the server then classifies fee lines as before).
    pub empty_catalogue: bool,
    pub upload: bool,
    pub max_upload_mb: usize,
    pub imports: Vec<(String, String, String, String, String)>,
    pub result: Option<UploadResult>,
}

fn item_row(i: &CatalogueItem) -> ItemRow {
    let lv = ChrgitmLv::parse(&i.chrgitm_lv);
    let validity = match i.enddate {
        Some(e) => format!("{} 至 {}", date_text(i.begndate), date_text(e)),
        None => format!("{} 起", date_text(i.begndate)),
    };
    ItemRow {
        code: i.hilist_code.clone(),
        name: i.hilist_name.clone(),
        list_type: ListType::parse(&i.list_type).map_or_else(|| i.list_type.clone(), |l| l.name_zh().to_string()),
        chrgitm_type: med_chrgitm_type_zh(&i.med_chrgitm_type).map_or_else(|| i.med_chrgitm_type.clone(), str::to_string),
        lv: lv.map_or_else(|| i.chrgitm_lv.clone(), |l| l.name_zh().to_string()),
        lv_class: match lv {
            Some(ChrgitmLv::A) => "done",
            Some(ChrgitmLv::B) => "",
            _ => "new",
        },
        prop: if lv == Some(ChrgitmLv::B) || i.selfpay_prop_bp > 0 { pct(Some(i.selfpay_prop_bp)) } else { "—".into() },
        ceiling: i.pric_uplmt_fen.map_or_else(|| "—".into(), |f| format!("{} 元", yuan(f))),
        scope: if i.lmt_used_flag {
            if i.lmt_scope.is_empty() {
                "限定支付（范围未载明）".into()
            } else {
                i.lmt_scope.clone()
            }
        } else {
            String::new()
        },
        validity,
        valid: i.vali_flag,
    }
}

/// The address of another page of the same search.
fn page_href(q: &CatalogueQ, page: i64) -> String {
    format!(
        "/web/catalogue?q={}&list_type={}&on={}&page={page}",
        urlencode(q.q.trim()),
        urlencode(q.list_type.trim()),
        urlencode(q.on.trim())
    )
}

/// The view model: pure, from what the store returned.
#[allow(clippy::too_many_arguments)]
pub fn view(
    q: &CatalogueQ,
    page: i64,
    total: i64,
    items: &[CatalogueItem],
    catalogue_size: i64,
    upload: bool,
    imports: &[CatalogueImport],
    result: Option<UploadResult>,
) -> CatalogueView {
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    CatalogueView {
        q: q.q.trim().to_string(),
        list_type: q.list_type.trim().to_string(),
        on: q.on.trim().to_string(),
        list_types: ListType::ALL.iter().map(|l| (l.code(), l.name_zh())).collect(),
        total: count(total),
        page,
        pages,
        prev_href: if page > 1 { page_href(q, page - 1) } else { String::new() },
        next_href: if page < pages { page_href(q, page + 1) } else { String::new() },
        rows: items.iter().map(item_row).collect(),
        empty_catalogue: catalogue_size == 0,
        upload,
        max_upload_mb: MAX_UPLOAD_BYTES >> 20,
        imports: imports
            .iter()
            .map(|i| {
                (
                    format!("#{}", i.id),
                    if i.kind == "map" { "医疗机构对照".to_string() } else { "医保目录".to_string() },
                    i.file_name.clone(),
                    format!("{} 行：新增 {}，更新 {}", count(i.rows_total), count(i.added), count(i.superseded)),
                    format!("{} · {}", i.actor, crate::clock::beijing_text(&i.imported_at)),
                )
            })
            .collect(),
        result,
    }
}

/// The store's query for a search; refuses a date that is not one.
fn query_of(q: &CatalogueQ) -> Result<CatalogueQuery, WebError> {
    let on = q.on.trim();
    let valid_on = if on.is_empty() {
        None
    } else {
        Some(date_num(parse_date_loose(on).ok_or_else(|| WebError::bad(format!("日期“{on}”无效（如 2024-06-01）")))?))
    };
    let text: String = q.q.trim().chars().take(100).collect();
    let list_type = q.list_type.trim();
    Ok(CatalogueQuery {
        text: Some(text).filter(|t| !t.is_empty()),
        list_type: Some(list_type.to_string()).filter(|l| ListType::parse(l).is_some()),
        valid_on,
        ..Default::default()
    })
}

async fn load(state: &AppState, u: &WebUser, q: &CatalogueQ, result: Option<UploadResult>) -> Result<CatalogueView, WebError> {
    let query = query_of(q)?;
    let (total, _) = state.store.catalogue_page(&query, 1, 1).await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let (total, items) = state.store.catalogue_page(&query, page, PAGE_SIZE).await?;
    let size = state.store.catalogue_size().await?;
    let imports = if may_upload(u) { state.store.catalogue_imports(10).await? } else { Vec::new() };
    Ok(view(q, page, total, &items, size, may_upload(u), &imports, result))
}

fn render(u: &WebUser, v: &CatalogueView) -> WebResult {
    let html = v.render().map_err(|e| WebError::internal(&format!("template catalogue.html: {e}")))?;
    let mut page = Page::new("医保目录");
    page.crumbs.push(("医保目录".into(), String::new()));
    page.push(&html);
    Ok(page.render(u))
}

/// `GET /web/catalogue?q=&list_type=&on=&page=`
pub async fn catalogue_page(State(state): State<AppState>, u: WebUser, Query(q): Query<CatalogueQ>) -> WebResult {
    let v = load(&state, &u, &q, None).await?;
    render(&u, &v)
}

/// What an upload's outcome says.
pub fn upload_result(name: &str, kind: CatalogueKind, r: Result<CatalogueImportReport, CatalogueFileError>) -> UploadResult {
    let what = match kind {
        CatalogueKind::Items => "医保目录",
        CatalogueKind::Map => "医疗机构目录对照",
    };
    match r {
        Ok(r) => UploadResult {
            ok: true,
            summary: match r.already_imported_as {
                Some(id) => format!("{name}：此文件已于导入批次 #{id} 导入过，未做任何更改。"),
                None => format!(
                    "{name}（{what}）：导入批次 #{}，共 {} 行，新增 {}，更新 {}（旧版本保留为历史），未变 {}。",
                    r.import_id.unwrap_or_default(),
                    r.rows,
                    r.added,
                    r.superseded,
                    r.unchanged
                ),
            },
            ..Default::default()
        },
        Err(CatalogueFileError::Rejected { rows, errors, more, .. }) => UploadResult {
            ok: false,
            summary: format!("{name}（{what}）共 {rows} 行，其中 {} 处不符合要求，整个文件未导入：", errors.len() as u64 + more),
            errors: errors.into_iter().map(|e| (e.row, e.field, e.value, e.reason)).collect(),
            more,
        },
        Err(CatalogueFileError::Store(e)) => {
            tracing::error!(error = %e, "catalogue import failed");
            UploadResult { ok: false, summary: format!("{name}：系统暂时无法导入，请稍后重试"), ..Default::default() }
        }
        Err(e) => UploadResult { ok: false, summary: e.to_string(), ..Default::default() },
    }
}

/// `POST /web/catalogue/import` (multipart: `kind` = items | map, `file`): admin and bureau.
pub async fn upload(
    State(state): State<AppState>,
    u: WebUser,
    pending: Option<axum::Extension<crate::guard::CsrfPending>>,
    mut mp: Multipart,
) -> WebResult {
    u.require(may_upload(&u), "导入医保目录")?;
    let pending = pending.map(|p| p.0);
    let mut csrf_ok = pending.is_none();
    let mut kind = CatalogueKind::Items;
    let mut file: Option<(String, axum::body::Bytes)> = None;
    while let Some(field) = mp.next_field().await.map_err(|e| WebError::bad(format!("上传内容无法读取：{}", e.body_text())))? {
        match field.name() {
            Some(crate::guard::CSRF_FIELD) => {
                let v = field.text().await.map_err(|_| WebError::bad("校验码无法读取"))?;
                csrf_ok = crate::guard::check_pending(pending.as_ref(), Some(v.trim()));
            }
            // The token comes first in the form: a file without it is not even read.
            Some("file") if !csrf_ok => return Err(WebError::forbidden(crate::guard::CSRF_REFUSAL)),
            Some("kind") => {
                let v = field.text().await.map_err(|_| WebError::bad("文件类型无法读取"))?;
                kind = match v.trim() {
                    "items" => CatalogueKind::Items,
                    "map" => CatalogueKind::Map,
                    other => return Err(WebError::bad(format!("文件类型“{other}”无效"))),
                };
            }
            Some("file") => {
                let name = safe_file_name(field.file_name().unwrap_or("upload.csv"));
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| WebError::bad(format!("文件过大或上传中断（上限 {} MB）：{}", MAX_UPLOAD_BYTES >> 20, e.body_text())))?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    if !csrf_ok {
        return Err(WebError::forbidden(crate::guard::CSRF_REFUSAL));
    }
    let (name, bytes) = file.filter(|(_, b)| !b.is_empty()).ok_or_else(|| WebError::bad("请选择要上传的文件"))?;
    let lower = name.to_lowercase();
    if lower.ends_with(".xls") {
        return Err(WebError::bad(format!("文件“{name}”是旧版 Excel 97-2003（.xls）格式，请在 Excel 中“另存为” .xlsx 或 CSV 后再上传")));
    }
    if !(lower.ends_with(".xlsx") || lower.ends_with(".csv")) {
        return Err(WebError::bad(format!("文件“{name}”不是 .xlsx 或 .csv")));
    }
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "could not store a catalogue upload");
        WebError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "服务器无法保存上传的文件")
    };
    let dir = tempfile::tempdir().map_err(internal)?;
    let path = dir.path().join(&name);
    std::fs::write(&path, &bytes).map_err(internal)?;
    let Ok(_one_at_a_time) = IMPORTS.try_acquire() else {
        return Err(WebError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "另一份目录文件正在导入，请稍后再上传"));
    };
    tracing::info!(bytes = bytes.len(), user = %u.p.username, "catalogue upload");
    let r = import_file(&state.store, kind, &path, &name, &u.p.username, &limits()).await;
    // Messages name the uploaded file, not the server's temporary path.
    let r = r.map_err(|e| match e {
        CatalogueFileError::Rejected { rows, errors, more, .. } => CatalogueFileError::Rejected { file: name.clone(), rows, errors, more },
        CatalogueFileError::Table(t) => {
            CatalogueFileError::Io { file: name.clone(), reason: t.to_string().replace(&format!("{}/", dir.path().display()), "") }
        }
        other => other,
    });
    // 2301 classifies by the catalogue from the next message on (not after the cache's 30 s).
    state.cache.forget_catalogue();
    let result = upload_result(&name, kind, r);
    let v = load(&state, &u, &CatalogueQ::default(), Some(result)).await?;
    render(&u, &v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baozhang_ingest::catalogue::RowError;

    fn item(code: &str, lv: &str, bp: i64, ceiling: Option<i64>, lmt: Option<&str>, end: Option<i64>) -> CatalogueItem {
        CatalogueItem {
            hilist_code: code.into(),
            hilist_name: "名称<b>".into(),
            list_type: "301".into(),
            med_chrgitm_type: "08".into(),
            chrgitm_lv: lv.into(),
            selfpay_prop_bp: bp,
            pric_uplmt_fen: ceiling,
            lmt_used_flag: lmt.is_some(),
            lmt_scope: lmt.unwrap_or("").into(),
            insu_admdvs: "620000".into(),
            begndate: 20240101,
            enddate: end,
            vali_flag: true,
            updt_time: String::new(),
        }
    }

    #[test]
    fn items_are_shown_in_words() {
        let r = item_row(&item("C1", "02", 1_000, Some(350), Some("限住院"), None));
        assert_eq!((r.list_type.as_str(), r.chrgitm_type.as_str(), r.lv.as_str()), ("医用耗材", "卫生材料费", "乙类"));
        assert_eq!((r.prop.as_str(), r.ceiling.as_str(), r.scope.as_str()), ("10.00%", "3.50 元", "限住院"));
        assert_eq!(r.validity, "2024-01-01 起");
        let r = item_row(&item("C2", "01", 0, None, None, Some(20241231)));
        assert_eq!((r.lv.as_str(), r.lv_class, r.prop.as_str(), r.ceiling.as_str()), ("甲类", "done", "—", "—"));
        assert_eq!(r.validity, "2024-01-01 至 2024-12-31");
        let r = item_row(&item("C3", "03", 0, None, Some(""), None));
        assert_eq!((r.lv.as_str(), r.lv_class, r.scope.as_str()), ("丙类", "new", "限定支付（范围未载明）"));
    }

    #[test]
    fn pages_link_to_their_neighbours_with_the_search() {
        let q = CatalogueQ { q: "奥美 拉唑".into(), list_type: "101".into(), on: "2024-06-01".into(), page: Some(2) };
        let items: Vec<CatalogueItem> = (0..50).map(|i| item(&format!("X{i}"), "01", 0, None, None, None)).collect();
        let v = view(&q, 2, 120, &items, 120, false, &[], None);
        assert_eq!((v.page, v.pages, v.total.as_str(), v.rows.len()), (2, 3, "120", 50));
        assert!(v.prev_href.ends_with("page=1") && v.next_href.ends_with("page=3"), "{} {}", v.prev_href, v.next_href);
        assert!(v.prev_href.contains("q=%E5%A5%A5%E7%BE%8E%20%E6%8B%89%E5%94%91&list_type=101&on=2024-06-01"), "{}", v.prev_href);
        let last = view(&q, 3, 120, &items[..20], 120, false, &[], None);
        assert!(last.next_href.is_empty());
        let none = view(&CatalogueQ::default(), 1, 0, &[], 0, true, &[], None);
        assert!(none.prev_href.is_empty() && none.next_href.is_empty() && none.empty_catalogue && none.upload);
        // Rendered: names escaped, the upload form only for those who may upload.
        let html = v.render().unwrap();
        assert!(html.contains("名称&#60;b&#62;") || html.contains("名称&lt;b&gt;"), "{html}");
        assert!(!html.contains("enctype=\"multipart/form-data\""));
        assert!(none.render().unwrap().contains("enctype=\"multipart/form-data\""));
    }

    #[test]
    fn searches_are_checked() {
        let q = CatalogueQ { q: "  阿莫西林 ".into(), list_type: "999".into(), on: "2024/6/1".into(), page: None };
        let s = query_of(&q).unwrap();
        assert_eq!((s.text.as_deref(), s.list_type, s.valid_on), (Some("阿莫西林"), None, Some(20240601)));
        assert!(query_of(&CatalogueQ { on: "2024-02-30".into(), ..Default::default() }).is_err());
    }

    #[test]
    fn an_upload_says_what_it_did_or_every_bad_row() {
        let ok = upload_result(
            "cat.csv",
            CatalogueKind::Items,
            Ok(CatalogueImportReport { import_id: Some(3), rows: 10, added: 7, superseded: 1, unchanged: 2, ..Default::default() }),
        );
        assert!(ok.ok && ok.summary.contains("新增 7，更新 1") && ok.summary.contains("#3"), "{}", ok.summary);
        let bad = upload_result(
            "cat.csv",
            CatalogueKind::Map,
            Err(CatalogueFileError::Rejected {
                file: "cat.csv".into(),
                rows: 5,
                errors: vec![RowError { row: 3, field: "begndate".into(), value: "x".into(), reason: "不是有效日期".into() }],
                more: 2,
            }),
        );
        assert!(!bad.ok && bad.summary.contains("3 处") && bad.summary.contains("医疗机构目录对照"));
        assert_eq!((bad.errors.len(), bad.more), (1, 2));
        let v = view(&CatalogueQ::default(), 1, 0, &[], 5, true, &[], Some(bad));
        let html = v.render().unwrap();
        assert!(html.contains("不是有效日期") && html.contains("另有 2 处"), "{html}");
    }

    #[test]
    fn upload_names_are_made_safe() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\x\\医保目录.xlsx"), "医保目录.xlsx");
    }
}
