//! Roster import from the browser: upload a CSV or XLSX roster (the same formats and checks as
//! `baozhang import`), see what was accepted and every rejected row with its reason, and download the
//! rejected rows as Excel.

use axum::extract::{Multipart, State};
use baozhang_ingest::rosters::{import_file, ImportOptions, RosterKind, ALL_KINDS};

use askama::Template;
use baozhang_ingest::rosters::ImportReport;
use baozhang_ingest::worklist::{mask_id, mask_name};

use super::jobs::{started, Outcome};
use super::table::{Cell, Table, TableView};
use super::{count, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

use super::table::{base64, XLSX_TYPE as XLSX};

/// Largest roster accepted from the browser (bigger ones: `baozhang import` on the server).
pub const MAX_UPLOAD_BYTES: usize = 64 << 20;

fn require(u: &WebUser) -> Result<(), WebError> {
    if matches!(u.p.role, Role::Admin | Role::Bureau) {
        Ok(())
    } else {
        Err(WebError::forbidden(format!("{}不能导入名单", u.p.role.name_zh())))
    }
}

/// The import page (`templates/import.html`): the form and the blank templates.
#[derive(Template)]
#[template(path = "import.html")]
pub struct ImportView {
    /// (id, name) of the roster kinds.
    pub kinds: Vec<(&'static str, &'static str)>,
    /// The kind chosen (the form keeps it).
    pub kind: &'static str,
    pub max_mb: usize,
}

/// What an upload did.
#[derive(Debug, PartialEq, Eq)]
pub struct ImportResult {
    pub file: String,
    pub kind: &'static str,
    /// The file had been imported before, as this batch: nothing changed.
    pub already_imported_as: Option<i64>,
    pub total: String,
    pub accepted: String,
    pub rejected: String,
    pub conflicts: String,
    pub changes: String,
    /// (file name, `data:` address) of the rejected rows with their original content.
    pub rejected_download: Option<(String, String)>,
}

/// An import's result (`templates/import_done.html`), shown on its job's page: the counts, the rows put
/// right on the way in, the rejected rows with their reasons and their workbook.
#[derive(Template)]
#[template(path = "import_done.html")]
pub struct ImportDone<'a> {
    pub r: ImportResult,
    pub normalised: Option<TableView<'a>>,
    pub rejected: Option<TableView<'a>>,
}

/// The view model of the page: the form, with `kind` chosen.
pub fn import_view(kind: Option<RosterKind>) -> ImportView {
    ImportView {
        kinds: ALL_KINDS.iter().map(|k| (k.id(), k.name_zh())).collect(),
        kind: kind.map_or("", RosterKind::id),
        max_mb: MAX_UPLOAD_BYTES >> 20,
    }
}

/// The result of an upload of `file` as `kind`; `rejected_xlsx`: the rejected rows' workbook.
pub fn import_result(file: &str, kind: RosterKind, r: &ImportReport, rejected_xlsx: Option<&[u8]>) -> ImportResult {
    ImportResult {
        file: file.to_string(),
        kind: kind.name_zh(),
        already_imported_as: r.already_imported_as,
        total: count(r.rows_total as i64),
        accepted: count(r.rows_accepted as i64),
        rejected: count(r.rows_rejected as i64),
        conflicts: count(r.conflicts as i64),
        changes: count(r.changes as i64),
        rejected_download: rejected_xlsx.map(|b| (format!("{file}.rejected.xlsx"), format!("data:{XLSX};base64,{}", base64(b)))),
    }
}

/// `GET /web/import/template/{kind}`: the blank template of a roster (XLSX: headers on the data sheet, the
/// example on a sheet of its own), for those who may import.
pub async fn template(u: WebUser, axum::extract::Path(kind): axum::extract::Path<String>) -> WebResult {
    use axum::response::IntoResponse;
    require(&u)?;
    let kind = ALL_KINDS.iter().copied().find(|k| k.id() == kind).ok_or_else(|| WebError::not_found("没有这种名单模板"))?;
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("template.xlsx");
        baozhang_ingest::rosters::write_template(kind, &path).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| WebError::internal(&format!("template task failed: {e}")))?
    .map_err(|e| WebError::internal(&format!("writing a roster template: {e}")))?;
    let name = format!("{}模板.xlsx", kind.name_zh());
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, XLSX.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"template.xlsx\"; filename*=UTF-8''{}", super::urlencode(&name)),
            ),
        ],
        bytes,
    )
        .into_response())
}

pub async fn import_page(u: WebUser) -> WebResult {
    require(&u)?;
    let mut page = Page::new("名单导入");
    page.view(&import_view(None))?;
    Ok(page.render(&u))
}

/// Keeps letters, digits, CJK and `._-` of an uploaded file's name (it is recorded with the import).
pub(crate) fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let s: String = base.chars().filter(|c| c.is_alphanumeric() || "._-（）()".contains(*c)).take(100).collect();
    if s.is_empty() || s.starts_with('.') {
        format!("upload{s}")
    } else {
        s
    }
}

/// Imports run one at a time, each on a worker thread of its own: a roster import is long and
/// memory-hungry, and two at once would only compete for the single database writer.
pub(crate) static IMPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

pub async fn upload(
    State(state): State<AppState>,
    u: WebUser,
    pending: Option<axum::Extension<crate::guard::CsrfPending>>,
    mut mp: Multipart,
) -> WebResult {
    require(&u)?;
    let pending = pending.map(|p| p.0);
    let mut csrf_ok = pending.is_none();
    let mut kind: Option<RosterKind> = None;
    let mut file: Option<(String, axum::body::Bytes)> = None;
    while let Some(field) = mp.next_field().await.map_err(|e| WebError::bad(format!("上传内容无法读取：{}", e.body_text())))? {
        match field.name() {
            Some(crate::guard::CSRF_FIELD) => {
                let v = field.text().await.map_err(|_| WebError::bad("校验码无法读取"))?;
                csrf_ok = crate::guard::check_pending(pending.as_ref(), Some(v.trim()));
            }
            // The token comes first in the form: a file without it is not even read.
            Some("file") if !csrf_ok => {
                return Err(WebError::forbidden(crate::guard::CSRF_REFUSAL));
            }
            Some("kind") => {
                let v = field.text().await.map_err(|_| WebError::bad("名单类型无法读取"))?;
                kind = Some(RosterKind::parse(&v).ok_or_else(|| WebError::bad(format!("名单类型“{v}”无效")))?);
            }
            Some("file") => {
                let name = safe_file_name(field.file_name().unwrap_or("upload.xlsx"));
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
    let kind = kind.ok_or_else(|| WebError::bad("请选择名单类型"))?;
    let (name, bytes) = file.filter(|(_, b)| !b.is_empty()).ok_or_else(|| WebError::bad("请选择要上传的文件"))?;
    let lower = name.to_lowercase();
    if lower.ends_with(".xls") {
        return Err(WebError::bad(format!("文件“{name}”是旧版 Excel 97-2003（.xls）格式，请在 Excel 中“另存为” .xlsx 或 CSV 后再上传")));
    }
    if !(lower.ends_with(".xlsx") || lower.ends_with(".csv")) {
        return Err(WebError::bad(format!("文件“{name}”不是 .xlsx 或 .csv")));
    }
    let dir = tempfile::tempdir().map_err(|e| {
        tracing::error!(error = %e, "no temporary directory for an upload");
        WebError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "服务器无法保存上传的文件")
    })?;
    let path = dir.path().join(&name);
    std::fs::write(&path, &bytes).map_err(|e| {
        tracing::error!(error = %e, "could not store an upload");
        WebError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "服务器无法保存上传的文件")
    })?;
    let opts = ImportOptions {
        report_dir: Some(dir.path().join("rejected")),
        limits: baozhang_ingest::table::ReadLimits::upload(),
        ..Default::default()
    };
    tracing::info!(kind = kind.id(), bytes = bytes.len(), user = %u.p.username, "roster upload");
    let Ok(one_at_a_time) = IMPORTS.try_acquire() else {
        return Err(WebError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "另一份名单正在导入，请稍后再上传"));
    };
    // The import runs as a job: the page answers at once and follows it (rows read, then the result).
    let (st, user) = (state.clone(), u.p.username.clone());
    let id = state.web.jobs.start("import", &format!("名单导入 · {}", kind.name_zh()), &u.p.username, move |p| async move {
        let _permit = one_at_a_time;
        p.stage(format!("正在读取并校验“{name}”"));
        // The import's future holds a `&mut dyn FnMut` (not `Send`): it runs on a thread of its own. A
        // panic there ends that thread only (the channel is dropped and the page says so).
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (store, import_path, progress) = (st.store.clone(), path.clone(), p.clone());
        std::thread::spawn(move || {
            let mut rows = |n: u64| progress.count(n, 0);
            let r = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(import_file(&store, kind, &import_path, &opts, &mut rows)).map_err(|e| e.to_string()));
            let _ = tx.send(r);
        });
        let report = rx
            .await
            .map_err(|_| WebError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "导入中断"))?
            // The message names the uploaded file, not the server's temporary path.
            .map_err(|e| WebError::bad(format!("{name}：{}", e.replace(&format!("{}/", dir.path().display()), ""))))?;
        st.store
            .audit(
                &user,
                "web.import",
                &format!("{} {name}: accepted {} rejected {}", kind.id(), report.rows_accepted, report.rows_rejected),
            )
            .await?;
        st.web.dashboard.invalidate();
        st.web.exit.invalidate();
        st.web.pages.forget();
        p.stage("正在整理导入结果");
        let detail = import_done_html(&name, kind, &report)?;
        Ok(Outcome {
            message: match report.already_imported_as {
                Some(b) => format!("此文件已于导入批次 #{b} 导入过，未做任何更改。"),
                None => format!(
                    "导入完成：共 {} 行，接受 {} 行，拒绝 {} 行。",
                    count(report.rows_total as i64),
                    count(report.rows_accepted as i64),
                    count(report.rows_rejected as i64)
                ),
            },
            link: Some(("继续导入".into(), "/web/import".into())),
            detail: Some(detail),
        })
    });
    Ok(started(id))
}

/// The result of an import, rendered for its job's page.
fn import_done_html(name: &str, kind: RosterKind, report: &ImportReport) -> Result<String, WebError> {
    let normalised = if report.normalised_rows > 0 {
        // What was put right on the way in (the notes name fields, never values).
        let mut t = Table::new("normalised", format!("自动规范的行（{} 行）", report.normalised_rows), vec!["行号", "字段", "处理"]);
        t.page_size = 20;
        for (row, field, note) in &report.normalised {
            t.rows.push(vec![Cell::Int(*row as i64), Cell::text(field), Cell::text(note)]);
        }
        t.export_href = Some(t.data_uri()?);
        Some(t)
    } else {
        None
    };
    let mut rejected_xlsx = None;
    let rejected = match &report.rejections_csv {
        Some(csv_path) => {
            let mut rdr = csv::ReaderBuilder::new()
                .flexible(true)
                .from_path(csv_path)
                .map_err(|e| WebError::bad(format!("拒绝报告无法读取：{e}")))?;
            let headers: Vec<String> = rdr.headers().map(|h| h.iter().map(str::to_string).collect()).unwrap_or_default();
            let records: Vec<Vec<String>> = rdr.records().flatten().take(10_000).map(|r| r.iter().map(str::to_string).collect()).collect();
            let mut t = rejected_table(headers, &records);
            // The result cannot be fetched again: the table's export is its own workbook, inline.
            t.export_href = Some(t.data_uri()?);
            rejected_xlsx = report.rejections_xlsx.as_ref().and_then(|x| std::fs::read(x).ok());
            Some(t)
        }
        None => None,
    };
    let done = ImportDone {
        r: import_result(name, kind, report, rejected_xlsx.as_deref()),
        normalised: normalised.as_ref().map(|t| t.view("/web/import")),
        rejected: rejected.as_ref().map(|t| t.view("/web/import")),
    };
    done.render().map_err(|e| WebError::internal(&format!("template: {e}")))
}

/// The rejected rows with their reasons, as the report lists them. On screen, ID numbers and names are
/// masked; the Excel download is the uploader's own rows.
pub fn rejected_table(headers: Vec<String>, records: &[Vec<String>]) -> Table {
    let mut t = Table::new("rejected", "被拒绝的行及原因", vec![]);
    t.page_size = 50;
    let masks: Vec<u8> = headers
        .iter()
        .map(|h| {
            if h.contains("身份证") || h.contains("证件号码") {
                1
            } else if h.contains("姓名") {
                2
            } else {
                0
            }
        })
        .collect();
    t.columns = headers;
    for rec in records {
        t.rows.push(
            rec.iter()
                .enumerate()
                .map(|(i, c)| {
                    Cell::text(match masks.get(i) {
                        Some(1) => mask_id(c),
                        Some(2) => mask_name(c),
                        _ => c.to_string(),
                    })
                })
                .collect(),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn upload_names_are_made_safe() {
        assert_eq!(super::safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(super::safe_file_name("C:\\x\\低保名单.xlsx"), "低保名单.xlsx");
        assert_eq!(super::safe_file_name(".hidden"), "upload.hidden");
    }

    fn report() -> ImportReport {
        ImportReport {
            kind: "dibao".into(),
            file: "x".into(),
            rows_total: 12_345,
            rows_accepted: 12_344,
            rows_rejected: 1,
            changes: 7,
            already_imported_as: None,
            import_id: Some(3),
            rejections_csv: None,
            rejections_xlsx: None,
            conflicts: 0,
            normalised_rows: 0,
            normalised_csv: None,
            normalised: Vec::new(),
        }
    }

    #[test]
    fn the_result_counts_with_separators_and_offers_the_rejected_rows() {
        let r = super::import_result("低保.csv", RosterKind::Dibao, &report(), Some(b"foo"));
        assert_eq!((r.kind, r.total.as_str(), r.accepted.as_str(), r.rejected.as_str()), ("低保对象名单", "12,345", "12,344", "1"));
        assert_eq!(r.already_imported_as, None);
        assert_eq!(r.rejected_download, Some(("低保.csv.rejected.xlsx".to_string(), format!("data:{XLSX};base64,Zm9v"))));
        let html = ImportDone { r, normalised: None, rejected: None }.render().unwrap();
        assert!(html.contains("接受 <strong>12,344</strong> 行") && html.contains("低保.csv.rejected.xlsx"), "{html}");
        let v = super::import_view(Some(RosterKind::Dibao));
        assert_eq!(v.kind, "dibao");
        assert_eq!(v.kinds.len(), ALL_KINDS.len());
        assert_eq!(super::import_view(None).kind, "");
    }

    #[test]
    fn rejected_rows_are_masked_on_screen() {
        let t = super::rejected_table(
            vec!["行号".into(), "姓名".into(), "身份证号码".into(), "原因".into()],
            &[vec!["2".into(), "张小明".into(), "62042219800101123X".into(), "证件号码校验位错误".into()]],
        );
        let shown: Vec<String> = t.rows[0].iter().map(Cell::shown_text).collect();
        assert_eq!(shown, vec!["2", "张**", "620422********123X", "证件号码校验位错误"]);
    }
}
