//! Tables of the workbench: rendered as HTML that `app.js` sorts, filters and pages in the browser, and
//! exported to Excel from the same rows (`?export=<id>`), so what is exported is what is shown.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{Format, Workbook};

use super::{esc, pct, urlencode, yuan, WebError};

#[derive(Clone)]
pub enum Cell {
    Text(String),
    /// Text linking to a page.
    Link(String, String),
    Int(i64),
    /// Money in fen, shown in yuan.
    Yuan(i64),
    /// A ratio in basis points, shown as a percentage.
    Pct(Option<i64>),
    /// Trusted HTML (buttons, forms) and the text to export for it.
    Html(String, String),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    fn sort_key(&self) -> Option<String> {
        match self {
            Cell::Int(n) | Cell::Yuan(n) => Some(n.to_string()),
            Cell::Pct(Some(b)) => Some(b.to_string()),
            Cell::Pct(None) => Some("-1".into()),
            _ => None,
        }
    }
    fn html(&self) -> String {
        match self {
            Cell::Text(s) => esc(s),
            Cell::Link(s, href) => format!("<a href=\"{}\">{}</a>", esc(href), esc(s)),
            Cell::Int(n) => n.to_string(),
            Cell::Yuan(f) => yuan(*f),
            Cell::Pct(b) => pct(*b),
            Cell::Html(h, _) => h.clone(),
        }
    }
    fn numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Yuan(_) | Cell::Pct(_))
    }
}

pub struct Table {
    /// Unique on the page; the export parameter.
    pub id: &'static str,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub page_size: usize,
    /// Shown when there are no rows.
    pub empty: &'static str,
    /// Where the 导出 Excel button points when the page cannot be fetched again by its address (the
    /// result of an upload): a `data:` URI of the table's own workbook. `None`: `<page>?export=<id>`.
    pub export_href: Option<String>,
    /// Lines above the header row in the workbook (the report's title, unit and period), each merged
    /// across the columns: the layout officials file.
    pub heading: Vec<String>,
    /// A last row in bold (合计), after the data rows, in the page and the workbook.
    pub total: Option<Vec<Cell>>,
}

impl Table {
    pub fn new(id: &'static str, title: impl Into<String>, columns: Vec<&str>) -> Table {
        Table {
            id,
            title: title.into(),
            columns: columns.into_iter().map(str::to_string).collect(),
            rows: Vec::new(),
            page_size: 20,
            empty: "暂无数据",
            export_href: None,
            heading: Vec::new(),
            total: None,
        }
    }

    /// The table with its tools; `path` is the page's own path and query (for the export link).
    pub fn html(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        let export = match &self.export_href {
            Some(h) => h.clone(),
            None => format!("{path}{sep}export={}", urlencode(self.id)),
        };
        let mut o = String::with_capacity(256 + self.rows.len() * 128);
        o.push_str(&format!(
            "<section class=\"tbl\" data-page-size=\"{}\"><div class=\"tbl-head\"><h2>{}</h2><span class=\"count\">共 {} 条</span>\
             <input type=\"search\" class=\"tbl-filter\" placeholder=\"筛选…\" aria-label=\"筛选{}\">\
             <a class=\"btn\" href=\"{}\" download>导出 Excel</a></div><div class=\"tbl-scroll\"><table id=\"{}\"><thead><tr>",
            self.page_size,
            esc(&self.title),
            self.rows.len(),
            esc(&self.title),
            esc(&export),
            esc(self.id)
        ));
        let numeric: Vec<bool> =
            (0..self.columns.len()).map(|c| self.rows.first().and_then(|r| r.get(c)).is_some_and(Cell::numeric)).collect();
        for (c, name) in self.columns.iter().enumerate() {
            o.push_str(&format!(
                "<th data-type=\"{}\" tabindex=\"0\" title=\"点击排序\">{}</th>",
                if numeric[c] { "num" } else { "text" },
                esc(name)
            ));
        }
        o.push_str("</tr></thead><tbody>");
        if self.rows.is_empty() {
            o.push_str(&format!("<tr class=\"empty\"><td colspan=\"{}\">{}</td></tr>", self.columns.len(), esc(self.empty)));
        }
        for row in &self.rows {
            o.push_str("<tr>");
            for cell in row {
                match cell.sort_key() {
                    Some(k) => o.push_str(&format!("<td class=\"num\" data-v=\"{k}\">{}</td>", cell.html())),
                    None => o.push_str(&format!("<td>{}</td>", cell.html())),
                }
            }
            o.push_str("</tr>");
        }
        o.push_str("</tbody>");
        if let Some(total) = &self.total {
            o.push_str("<tfoot><tr class=\"total\">");
            for cell in total {
                let cls = if cell.numeric() { " class=\"num\"" } else { "" };
                o.push_str(&format!("<th{cls}>{}</th>", cell.html()));
            }
            o.push_str("</tr></tfoot>");
        }
        o.push_str("</table></div><div class=\"pager\"></div></section>");
        o
    }

    /// The table as an .xlsx workbook: numbers as numbers (yuan with two decimals), text as text (so ID
    /// numbers keep their digits).
    pub fn xlsx(&self) -> Result<Vec<u8>, WebError> {
        let fail = |e: rust_xlsxwriter::XlsxError| {
            tracing::error!(error = %e, "xlsx export failed");
            WebError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "导出 Excel 失败")
        };
        let mut wb = Workbook::new();
        let bold = Format::new().set_bold();
        let money = Format::new().set_num_format("#,##0.00");
        let percent = Format::new().set_num_format("0.00%");
        let ws = wb.add_worksheet();
        let top = self.heading.len() as u32;
        let title_fmt = Format::new().set_bold().set_font_size(14).set_align(rust_xlsxwriter::FormatAlign::Center);
        let sub_fmt = Format::new().set_align(rust_xlsxwriter::FormatAlign::Center);
        let last_col = self.columns.len().saturating_sub(1) as u16;
        for (i, line) in self.heading.iter().enumerate() {
            let f = if i == 0 { &title_fmt } else { &sub_fmt };
            if last_col > 0 {
                ws.merge_range(i as u32, 0, i as u32, last_col, line, f).map_err(fail)?;
            } else {
                ws.write_string_with_format(i as u32, 0, line, f).map_err(fail)?;
            }
        }
        let name: String = self.title.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
        if !name.is_empty() {
            ws.set_name(&name).map_err(fail)?;
        }
        for (c, col) in self.columns.iter().enumerate() {
            ws.write_string_with_format(top, c as u16, col, &bold).map_err(fail)?;
            ws.set_column_width(c as u16, 14).map_err(fail)?;
        }
        for (r, row) in self.rows.iter().chain(self.total.iter()).enumerate() {
            let r = top + (r + 1) as u32;
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(s) | Cell::Link(s, _) | Cell::Html(_, s) => {
                        ws.write_string(r, c, s).map_err(fail)?;
                    }
                    Cell::Int(n) => {
                        ws.write_number(r, c, *n as f64).map_err(fail)?;
                    }
                    // Display conversion only: the cell shows the exact fen amount with two decimals.
                    Cell::Yuan(f) => {
                        ws.write_number_with_format(r, c, *f as f64 / 100.0, &money).map_err(fail)?;
                    }
                    Cell::Pct(Some(b)) => {
                        ws.write_number_with_format(r, c, *b as f64 / 10_000.0, &percent).map_err(fail)?;
                    }
                    Cell::Pct(None) => {
                        ws.write_string(r, c, "—").map_err(fail)?;
                    }
                }
            }
        }
        wb.save_to_buffer().map_err(fail)
    }
}

impl Table {
    /// The table for a PDF report: cells as the page shows them, the total row last.
    pub fn report_table(&self) -> baozhang_slip::ReportTable {
        let text = |c: &Cell| match c {
            Cell::Text(s) | Cell::Link(s, _) | Cell::Html(_, s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Yuan(f) => super::yuan(*f),
            Cell::Pct(b) => super::pct(*b),
        };
        let numeric = (0..self.columns.len())
            .map(|i| self.rows.first().and_then(|r| r.get(i)).is_some_and(|c| matches!(c, Cell::Int(_) | Cell::Yuan(_) | Cell::Pct(_))))
            .collect();
        baozhang_slip::ReportTable {
            title: self.title.clone(),
            columns: self.columns.clone(),
            numeric,
            rows: self.rows.iter().chain(self.total.iter()).map(|r| r.iter().map(text).collect()).collect(),
        }
    }
}

impl Table {
    /// The table's own workbook as a `data:` address (for a page that answers a POST and cannot be
    /// fetched again by its address).
    pub fn data_uri(&self) -> Result<String, WebError> {
        Ok(format!("data:{XLSX_TYPE};base64,{}", base64(&self.xlsx()?)))
    }
}

pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Standard base64 (for `data:` addresses).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                o.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

impl Cell {
    /// The text a reader sees in the cell (what the filter box matches).
    fn shown_text(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Link(s, _) | Cell::Html(_, s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Yuan(f) => yuan(*f),
            Cell::Pct(b) => pct(*b),
        }
    }
}

/// Whether a row is shown under the filter box's text: some cell contains it, ignoring case — the rule
/// `app.js` applies in the browser.
pub fn row_matches(row: &[Cell], filter_lower: &str) -> bool {
    filter_lower.is_empty() || row.iter().any(|c| c.shown_text().to_lowercase().contains(filter_lower))
}

/// What an export link carries besides the table's id: the filter box's text (`app.js` appends it), so
/// the workbook holds the rows on screen.
#[derive(serde::Deserialize, Default)]
struct ExportQ {
    #[serde(default)]
    filter: String,
    #[serde(default)]
    region: String,
}

/// A file name for Windows and Excel: no path or reserved characters.
fn file_part(s: &str) -> String {
    s.chars().filter(|c| !"\\/:*?\"<>|".contains(*c) && !c.is_control()).collect::<String>().trim().to_string()
}

/// The response to `?export=<id>` on a page of `u`: the named table, filtered as on screen
/// (`&filter=`), as a download named by region, subject and date (会宁县_下辖乡镇_2026-12-06.xlsx).
pub async fn export_for(state: &crate::AppState, u: &super::WebUser, tables: &[&Table], id: &str) -> Result<Response, WebError> {
    let t = tables.iter().find(|t| t.id == id).ok_or_else(|| WebError::bad(format!("没有可导出的表格“{id}”")))?;
    let q: ExportQ = u.path.split_once('?').and_then(|(_, q)| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    let filter = q.filter.trim().to_lowercase();
    if filter.chars().count() > 200 {
        return Err(WebError::bad("筛选条件过长（不超过 200 字）"));
    }
    if super::contains_id_like(&filter) {
        return Err(WebError::bad("筛选条件中请不要输入完整证件号码（表中的证件号码已脱敏）"));
    }
    let names = state.web.region_names(&state.store).await?;
    // The region the page shows: its `region` parameter, the dashboard's /web/region/{code}, else the user's own.
    let on_path = u.path.strip_prefix("/web/region/").map(|r| r.split(['?', '/']).next().unwrap_or(""));
    let region = match (q.region.as_str(), on_path) {
        ("", Some(r)) if !r.is_empty() => r,
        ("", _) => u.p.scope.as_str(),
        (r, _) => r,
    };
    let place = names.get(region).cloned().unwrap_or_default();
    let subject = if filter.is_empty() { t.title.clone() } else { format!("{}（筛选“{}”）", t.title, q.filter.trim()) };
    let name = [place, subject, crate::clock::today().to_string()]
        .iter()
        .map(|p| file_part(p))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let shown;
    let table = if filter.is_empty() {
        *t
    } else {
        shown = Table {
            id: t.id,
            title: t.title.clone(),
            columns: t.columns.clone(),
            rows: t.rows.iter().filter(|r| row_matches(r, &filter)).cloned().collect(),
            page_size: t.page_size,
            empty: t.empty,
            export_href: None,
            heading: t.heading.clone(),
            total: None,
        };
        &shown
    };
    download(table.xlsx()?, &format!("{name}.xlsx"))
}

/// An .xlsx download named `filename` (UTF-8, RFC 5987; an ASCII fallback for old clients).
pub(crate) fn download(bytes: Vec<u8>, filename: &str) -> Result<Response, WebError> {
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"export.xlsx\"; filename*=UTF-8''{}", urlencode(&filename))),
        ],
        bytes,
    )
        .into_response())
}
