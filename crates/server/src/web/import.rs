//! Roster import from the browser: upload a CSV or XLSX roster (the same formats and checks as
//! `baozhang import`), see what was accepted and every rejected row with its reason, and download the
//! rejected rows as Excel.

use axum::extract::{Multipart, State};
use baozhang_ingest::rosters::{import_file, ImportOptions, RosterKind, ALL_KINDS};

use super::table::{Cell, Table};
use super::{esc, Page, WebError, WebResult, WebUser};
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

fn form(kind: Option<RosterKind>) -> String {
    let templates = ALL_KINDS
        .iter()
        .map(|k| format!("<a href=\"/web/import/template/{}\" download>{}</a>", k.id(), esc(k.name_zh())))
        .collect::<Vec<_>>()
        .join("、");
    let mut opts = String::new();
    for k in ALL_KINDS {
        opts.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            k.id(),
            if Some(k) == kind { " selected" } else { "" },
            esc(k.name_zh())
        ));
    }
    format!(
        "<section class=\"calc\"><form method=\"post\" action=\"/web/import\" enctype=\"multipart/form-data\" class=\"grid-form\" data-testid=\"import-form\">\
         <label>名单类型<select name=\"kind\">{opts}</select></label>\
         <label>文件（.xlsx 或 .csv，不超过 {} MB）<input type=\"file\" name=\"file\" accept=\".xlsx,.csv\" required></label>\
         <div class=\"actions\"><button type=\"submit\">上传并导入</button></div></form>\
         <p class=\"muted\">请用空白模板填写（第一张表只有表头；填写示例在另一张表中，不会被导入）：{templates}。每一行都会校验：身份证校验位、性别与出生日期、区划代码、日期、金额、必填项、重复；\
         有问题的行不导入，并逐行列出原因；其余的行在一个事务中合并入库。同一文件重复上传不会重复导入。</p></section>",
        MAX_UPLOAD_BYTES >> 20
    )
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
    page.push(&form(None));
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
    let Ok(_one_at_a_time) = IMPORTS.try_acquire() else {
        return Err(WebError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "另一份名单正在导入，请稍后再上传"));
    };
    // The import's future holds a `&mut dyn FnMut` (not `Send`): it runs on a thread of its own. A
    // panic there ends that thread only (the channel is dropped and the page says so).
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (store, import_path) = (state.store.clone(), path.clone());
    std::thread::spawn(move || {
        let r = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(import_file(&store, kind, &import_path, &opts, &mut |_| {})).map_err(|e| e.to_string()));
        let _ = tx.send(r);
    });
    let report = rx
        .await
        .map_err(|_| WebError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "导入中断"))?
        // The message names the uploaded file, not the server's temporary path.
        .map_err(|e| WebError::bad(format!("{name}：{}", e.replace(&format!("{}/", dir.path().display()), ""))))?;
    state
        .store
        .audit(
            &u.p.username,
            "web.import",
            &format!("{} {name}: accepted {} rejected {}", kind.id(), report.rows_accepted, report.rows_rejected),
        )
        .await?;
    state.web.dashboard.invalidate();
    state.web.exit.invalidate();

    let mut page = Page::new("名单导入结果");
    let summary = match report.already_imported_as {
        Some(id) => format!("<div class=\"alert ok\" role=\"status\">{}：此文件已于导入批次 #{id} 导入过，未做任何更改。</div>", esc(&name)),
        None => format!(
            "<div class=\"alert ok\" role=\"status\" data-testid=\"import-summary\">{}（{}）：共 {} 行，接受 <strong>{}</strong> 行，拒绝 <strong>{}</strong> 行，冲突 {} 条，数据变更 {} 处。</div>",
            esc(&name),
            esc(kind.name_zh()),
            report.rows_total,
            report.rows_accepted,
            report.rows_rejected,
            report.conflicts,
            report.changes
        ),
    };
    page.push(&summary);
    if report.normalised_rows > 0 {
        // What was put right on the way in (the notes name fields, never values).
        let mut t = Table::new("normalised", format!("自动规范的行（{} 行）", report.normalised_rows), vec!["行号", "字段", "处理"]);
        t.page_size = 20;
        for (row, field, note) in &report.normalised {
            t.rows.push(vec![Cell::Int(*row as i64), Cell::text(field), Cell::text(note)]);
        }
        t.export_href = Some(t.data_uri()?);
        page.push("<p class=\"muted\">以下各行已自动规范后导入：全角数字、不可见字符和空格已去除，15 位旧证件号码已转换为 18 位，日期已统一格式，姓名中的空格已删除。请核对，并在源数据中一并更正。</p>");
        page.push(&t.html("/web/import"));
    }
    if let Some(csv_path) = &report.rejections_csv {
        let mut t = Table::new("rejected", "被拒绝的行及原因", vec![]);
        t.page_size = 50;
        let mut rdr =
            csv::ReaderBuilder::new().flexible(true).from_path(csv_path).map_err(|e| WebError::bad(format!("拒绝报告无法读取：{e}")))?;
        let headers: Vec<String> = rdr.headers().map(|h| h.iter().map(str::to_string).collect()).unwrap_or_default();
        // On screen, ID numbers and names are masked; the Excel download is the uploader's own rows.
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
        for rec in rdr.records().flatten().take(10_000) {
            t.rows.push(
                rec.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        Cell::text(match masks.get(i) {
                            Some(1) => baozhang_ingest::worklist::mask_id(c),
                            Some(2) => baozhang_ingest::worklist::mask_name(c),
                            _ => c.to_string(),
                        })
                    })
                    .collect(),
            );
        }
        // The result of a POST cannot be fetched again: the table's export is its own workbook, inline.
        t.export_href = Some(t.data_uri()?);
        page.push(&t.html("/web/import"));
        if let Some(x) = &report.rejections_xlsx {
            if let Ok(b) = std::fs::read(x) {
                page.push(&format!(
                    "<p><a class=\"btn\" download=\"{}.rejected.xlsx\" href=\"data:{XLSX};base64,{}\">下载被拒绝的行（Excel，含原始内容）</a></p>",
                    esc(&name),
                    base64(&b)
                ));
            }
        }
    }
    page.push(&form(Some(kind)));
    Ok(page.render(&u))
}

#[cfg(test)]
mod tests {
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
}
