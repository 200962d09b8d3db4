//! Tables of the workbench: rendered as HTML that `app.js` sorts, filters and pages in the browser, and
//! exported to Excel from the same rows (`?export=<id>`), so what is exported is what is shown.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{Format, Workbook};

use askama::Template;

use super::{pct, urlencode, yuan, WebError};

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
    /// Tags, links, folded lists and small forms (buttons): data the template writes out. The filter
    /// and the export see their text, not the buttons' labels.
    Parts(Vec<Part>),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    /// One coloured label.
    pub fn tag(class: &str, text: impl Into<String>) -> Cell {
        Cell::Parts(vec![Part::tag(class, text)])
    }
    /// One action form (the export shows nothing for it).
    pub fn form(f: InlineForm) -> Cell {
        Cell::Parts(vec![Part::form(f)])
    }
    fn sort_key(&self) -> Option<String> {
        match self {
            Cell::Int(n) | Cell::Yuan(n) => Some(n.to_string()),
            Cell::Pct(Some(b)) => Some(b.to_string()),
            Cell::Pct(None) => Some("-1".into()),
            _ => None,
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
        let view = self.view(path);
        view.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, table = self.id, "table template failed");
            String::from("<p>表格渲染失败</p>")
        })
    }

    /// What `templates/table.html` writes: every cell as parts, numeric cells with their sort key.
    pub fn view(&self, path: &str) -> TableView<'_> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let export = match &self.export_href {
            Some(h) => h.clone(),
            None => format!("{path}{sep}export={}", urlencode(self.id)),
        };
        let numeric: Vec<bool> =
            (0..self.columns.len()).map(|c| self.rows.first().and_then(|r| r.get(c)).is_some_and(Cell::numeric)).collect();
        TableView {
            id: self.id,
            title: &self.title,
            page_size: self.page_size,
            count: self.rows.len(),
            export,
            columns: self.columns.iter().zip(&numeric).map(|(c, n)| (c.as_str(), if *n { "num" } else { "text" })).collect(),
            rows: self.rows.iter().map(|r| r.iter().map(CellView::of).collect()).collect(),
            total: self.total.as_ref().map(|r| r.iter().map(CellView::of).collect()),
            empty: self.empty,
        }
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
                    Cell::Text(_) | Cell::Link(..) | Cell::Parts(_) => {
                        ws.write_string(r, c, cell.shown_text()).map_err(fail)?;
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
        let text = Cell::shown_text;
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
    pub fn shown_text(&self) -> String {
        match self {
            Cell::Text(s) | Cell::Link(s, _) => s.clone(),
            Cell::Parts(parts) => {
                let texts: Vec<&str> = parts.iter().map(Part::shown_text).filter(|t| !t.is_empty()).collect();
                texts.join(" ")
            }
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
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"export.xlsx\"; filename*=UTF-8''{}", urlencode(filename))),
        ],
        bytes,
    )
        .into_response())
}

/// A table as `templates/table.html` writes it.
#[derive(Template)]
#[template(path = "table.html")]
pub struct TableView<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub page_size: usize,
    pub count: usize,
    pub export: String,
    /// (name, `num` or `text`: how the browser sorts it)
    pub columns: Vec<(&'a str, &'static str)>,
    pub rows: Vec<Vec<CellView>>,
    pub total: Option<Vec<CellView>>,
    pub empty: &'a str,
}

/// One cell: its parts, and for numbers the key the browser sorts by.
pub struct CellView {
    pub sort: Option<String>,
    pub parts: Vec<Part>,
}

impl CellView {
    fn of(c: &Cell) -> CellView {
        let parts = match c {
            Cell::Text(s) => vec![Part::Text(s.clone())],
            Cell::Link(s, href) => vec![Part::link(s.clone(), href.clone())],
            Cell::Int(_) | Cell::Yuan(_) | Cell::Pct(_) => vec![Part::Text(c.shown_text())],
            Cell::Parts(p) => p.clone(),
        };
        CellView { sort: c.sort_key(), parts }
    }
}
// ───────────────────────────── cell parts ─────────────────────────────

/// A piece of what a cell (or a page) shows, as data: the templates (`templates/parts.html`) write
/// the HTML and escape every string, so no handler builds markup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// A coloured label (`tag done`, `tag new`, …).
    Tag(Tag),
    Link(LinkPart),
    /// A folded list: the summary, and the lines shown when it is opened.
    Details(Details),
    /// A small form posting one action (a button, hidden fields, inputs).
    Form(Box<InlineForm>),
    /// A button handled in the page by `app.js` (it posts nothing): its `data-*` attributes.
    Button(ButtonPart),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ButtonPart {
    pub label: String,
    pub class: String,
    /// (name after `data-`, value)
    pub data: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// CSS classes after `tag` (`done`, `new`, `warn`, or empty).
    pub class: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPart {
    pub text: String,
    pub href: String,
    /// Opens in a new tab (slips).
    pub new_tab: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details {
    pub summary: String,
    pub lines: Vec<String>,
    /// Numbered (`ol class="explain"`) rather than a muted paragraph.
    pub numbered: bool,
}

/// A form of one action. Posted normally (the answer is a page), or with htmx when `target` is set (the
/// answer replaces the target: `closest td`, `#settle-result`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineForm {
    pub action: String,
    pub target: Option<String>,
    /// Asked before posting (`hx-confirm`, htmx forms only).
    pub confirm: Option<String>,
    /// `data-testid` of its button.
    pub testid: Option<String>,
    pub hidden: Vec<(String, String)>,
    pub inputs: Vec<Input>,
    pub button: String,
    /// CSS classes of the button (`small`, `small danger`, `secondary`).
    pub button_class: String,
    /// Instead of the one button: buttons that post a value under a name (批准 / 不予批准).
    pub choices: Vec<Choice>,
}

/// A button posting `name=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub value: String,
    pub label: String,
    pub class: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `kind`: the input's type (`text`, `date`, `number`).
    Text { name: String, kind: &'static str, label: String, placeholder: String, value: String, required: bool, maxlength: u32 },
    /// Options are (value, text); the one equal to `selected` is selected.
    Select { name: String, label: String, options: Vec<(String, String)>, selected: String, required: bool },
}

/// A number card (dashboard style): label, value, a note under it. `templates/parts.html` `cards`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    pub label: String,
    pub value: String,
    pub note: String,
}

impl Card {
    pub fn new(label: impl Into<String>, value: impl Into<String>, note: impl Into<String>) -> Card {
        Card { label: label.into(), value: value.into(), note: note.into() }
    }
}

impl Part {
    pub fn text(s: impl Into<String>) -> Part {
        Part::Text(s.into())
    }
    pub fn tag(class: &str, text: impl Into<String>) -> Part {
        Part::Tag(Tag { class: class.to_string(), text: text.into() })
    }
    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Part {
        Part::Link(LinkPart { text: text.into(), href: href.into(), new_tab: false })
    }
    /// A link opening in a new tab (a slip's PDF).
    pub fn link_new_tab(text: impl Into<String>, href: impl Into<String>) -> Part {
        Part::Link(LinkPart { text: text.into(), href: href.into(), new_tab: true })
    }
    pub fn form(f: InlineForm) -> Part {
        Part::Form(Box::new(f))
    }
    /// What a reader sees of it (the filter's and the export's text); forms (buttons) are not counted.
    pub fn shown_text(&self) -> &str {
        match self {
            Part::Text(s) => s,
            Part::Tag(t) => &t.text,
            Part::Link(l) => &l.text,
            Part::Details(d) => &d.summary,
            Part::Form(_) | Part::Button(_) => "",
        }
    }
}

impl InlineForm {
    /// A plain POST form with one button.
    pub fn post(action: impl Into<String>, button: impl Into<String>) -> InlineForm {
        InlineForm { action: action.into(), button: button.into(), ..InlineForm::default() }
    }
    /// A form posted with htmx, its answer swapped into `target`.
    pub fn htmx(action: impl Into<String>, target: &str, button: impl Into<String>) -> InlineForm {
        InlineForm { action: action.into(), target: Some(target.to_string()), button: button.into(), ..InlineForm::default() }
    }
    pub fn hidden(mut self, name: &str, value: impl ToString) -> InlineForm {
        self.hidden.push((name.to_string(), value.to_string()));
        self
    }
    pub fn input(mut self, i: Input) -> InlineForm {
        self.inputs.push(i);
        self
    }
    pub fn button_class(mut self, class: &str) -> InlineForm {
        self.button_class = class.to_string();
        self
    }
    /// A button posting `name=value` (the form then shows its choices instead of `button`).
    pub fn choice(mut self, name: &str, value: &str, label: &str, class: &str) -> InlineForm {
        self.choices.push(Choice { name: name.into(), value: value.into(), label: label.into(), class: class.into() });
        self
    }
    pub fn confirm(mut self, question: impl Into<String>) -> InlineForm {
        self.confirm = Some(question.into());
        self
    }
    pub fn testid(mut self, id: impl Into<String>) -> InlineForm {
        self.testid = Some(id.into());
        self
    }
}

impl Input {
    /// A text box; `label` is its accessible name and, without a placeholder, its placeholder.
    pub fn text(name: &str, label: &str) -> Input {
        Input::Text {
            name: name.into(),
            kind: "text",
            label: label.into(),
            placeholder: label.into(),
            value: String::new(),
            required: false,
            maxlength: 200,
        }
    }
    pub fn required(mut self) -> Input {
        match &mut self {
            Input::Text { required, .. } | Input::Select { required, .. } => *required = true,
        }
        self
    }
    pub fn value(mut self, v: impl Into<String>) -> Input {
        match &mut self {
            Input::Text { value, .. } => *value = v.into(),
            Input::Select { selected, .. } => *selected = v.into(),
        }
        self
    }
    pub fn placeholder(mut self, p: impl Into<String>) -> Input {
        if let Input::Text { placeholder, .. } = &mut self {
            *placeholder = p.into();
        }
        self
    }
    /// A date box (the browser's date picker), with its value as 2018-06-02.
    pub fn date(name: &str, label: &str, value: impl Into<String>) -> Input {
        match Input::text(name, label).value(value) {
            Input::Text { name, label, value, .. } => {
                Input::Text { name, kind: "date", label, placeholder: String::new(), value, required: false, maxlength: 10 }
            }
            other => other,
        }
    }
    pub fn select(name: &str, label: &str, options: Vec<(String, String)>) -> Input {
        Input::Select { name: name.into(), label: label.into(), options, selected: String::new(), required: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new("t", "表<1>", vec!["名称", "金额", "操作"]);
        t.rows.push(vec![
            Cell::text("<script>alert(1)</script>"),
            Cell::Yuan(123_456),
            Cell::Parts(vec![
                Part::tag("new", "逾期\"x\""),
                Part::form(
                    InlineForm::post("/web/x?a=1&b=2", "转整改")
                        .hidden("id", "7\"><b>")
                        .input(Input::text("reason", "理由").required())
                        .testid("go-7"),
                ),
            ]),
        ]);
        t
    }

    #[test]
    fn cells_are_escaped_and_numbers_carry_their_sort_key() {
        let html = table().html("/web/p?region=620422");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("<td class=\"num\" data-v=\"123456\">1,234.56</td>"), "{html}");
        assert!(html.contains("<h2>表&#60;1&#62;</h2>"), "{html}");
        assert!(html.contains("href=\"/web/p?region=620422&#38;export=t\""), "{html}");
        // The hidden value cannot close its attribute.
        assert!(html.contains("value=\"7&#34;&#62;&#60;b&#62;\""), "{html}");
        assert!(html.contains("<form class=\"inline\" method=\"post\" action=\"/web/x?a=1&#38;b=2\">"), "{html}");
        assert!(html.contains("required"), "{html}");
        assert!(html.contains("<button data-testid=\"go-7\">转整改</button>"), "{html}");
    }

    #[test]
    fn the_filter_and_the_export_see_the_text_not_the_buttons() {
        let t = table();
        assert_eq!(t.rows[0][2].shown_text(), "逾期\"x\"");
        assert!(row_matches(&t.rows[0], "逾期"));
        assert!(!row_matches(&t.rows[0], "转整改"), "a button's label is not the row's text");
    }

    #[test]
    fn an_htmx_form_posts_with_htmx_and_asks_first() {
        let mut t = Table::new("v", "就诊", vec!["操作"]);
        t.rows.push(vec![Cell::Parts(vec![
            Part::Button(ButtonPart { label: "选择".into(), class: "small".into(), data: vec![("pick-visit".into(), String::new())] }),
            Part::form(
                InlineForm::htmx("/web/window/cancel", "#settle-result", "冲销").confirm("确认冲销 1？").choice("d", "a", "批准", ""),
            ),
        ])]);
        let html = t.html("/web/window");
        assert!(html.contains("<button type=\"button\" class=\"small\" data-pick-visit=\"\">选择</button>"), "{html}");
        assert!(html.contains("hx-post=\"/web/window/cancel\" hx-target=\"#settle-result\" hx-confirm=\"确认冲销 1？\""), "{html}");
        assert!(html.contains("<button name=\"d\" value=\"a\">批准</button>"), "{html}");
        assert!(!html.contains(">冲销</button>"), "choices replace the one button: {html}");
    }

    #[test]
    fn an_empty_table_says_so_across_its_columns() {
        let t = Table::new("e", "空", vec!["a", "b"]);
        assert!(t.html("/x").contains("<tr class=\"empty\"><td colspan=\"2\">暂无数据</td></tr>"));
    }
}
