//! Settlement slips (结算单) as A5 PDF.
//!
//! A slip is typeset by [typst](https://typst.app) from one fixed template (`src/slip.typ`). The
//! slip's data never becomes Typst markup: [`SlipRenderer::render`] writes it as JSON into a
//! virtual file `data.json`, and the template reads it with `json("data.json")`, so names such as
//! `张*三#` or an institution called `[某]医院` are printed literally, with nothing to escape.
//!
//! Money is integer fen throughout; [`format_yuan`] turns fen into the yuan text the slip shows.
//!
//! Fonts: a CJK font is found once, in [`SlipRenderer::new`] (see there), and kept in memory; a
//! renderer is `Send + Sync` and is meant to be shared (e.g. in an `Arc`) by all requests.
//!
//! Architecture invariant: this crate knows nothing of the engine, the store or HTTP; callers
//! hand it a finished [`SlipData`] (already masked: it prints `id_no_masked` as given).

mod fonts;

use std::path::PathBuf;

use serde_json::json;
use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

/// The environment variable naming a directory (searched recursively) of fonts to try first.
pub const FONT_DIR_ENV: &str = "BAOZHANG_FONT_DIR";

/// Where the system's fonts are (Debian's `fonts-noto-cjk` and `fonts-wqy-microhei` install here).
pub const SYSTEM_FONT_DIR: &str = "/usr/share/fonts";

/// The fixed template; see the module docs.
const TEMPLATE: &str = include_str!("slip.typ");
/// The report template (A4 landscape tables).
const REPORT_TEMPLATE: &str = include_str!("report.typ");

/// One table of a report: every cell is text as it is to be printed (amounts already formatted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTable {
    pub title: String,
    pub columns: Vec<String>,
    /// Right-aligned columns (numbers), one flag per column.
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// A report: title, a subtitle line (unit, period, date) and its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportData {
    pub title: String,
    pub subtitle: String,
    /// Printed at the foot of every page (e.g. 制表单位、制表时间).
    pub footer: String,
    pub tables: Vec<ReportTable>,
}

/// How many renders a memoised Typst result may go unused before it is dropped. Typst memoises
/// across compilations in a process-wide cache (`comemo`); without eviction it grows with every
/// slip. A small age keeps what every slip shares (the parsed template, the library, font data).
const CACHE_MAX_AGE: usize = 8;

/// One payment on the slip: a fund that paid, or the hospital's share (医院承担).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipLine {
    /// Fund name, e.g. 基本医保统筹基金.
    pub name: String,
    /// National fund code, e.g. 390100 (empty: none is printed).
    pub fund_code: String,
    pub amount_fen: i64,
    /// One line, Chinese: the rule behind the amount (printed small).
    pub rule: String,
    /// 依据: the titles of the documents (or published guides) the values used come from, printed under
    /// the rule.
    pub basis: Vec<String>,
    /// Some value used is illustrative (示意值, not an official figure): the line is flagged and the slip
    /// carries a note saying what that means.
    pub illustrative: bool,
}

/// Everything a slip shows. All strings are printed literally (no markup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipData {
    /// e.g. 会宁县基本医疗保险“一站式”结算单.
    pub title: String,
    pub setl_id: String,
    pub mdtrt_id: String,
    pub institution: String,
    pub institution_code: String,
    pub patient_name: String,
    /// Printed as given: the caller masks it.
    pub id_no_masked: String,
    pub psn_no: String,
    /// e.g. 建档立卡贫困人口、低保对象.
    pub identities: String,
    /// 住院 / 门诊慢特病 …
    pub med_type: String,
    pub begin_date: String,
    pub setl_date: String,
    /// Policy name and version.
    pub policy: String,
    pub medfee_sumamt_fen: i64,
    pub fulamt_ownpay_fen: i64,
    pub overlmt_selfpay_fen: i64,
    pub preselfpay_fen: i64,
    pub inscp_scp_fen: i64,
    /// Every fund that paid, plus 医院承担 when non-zero, in the order to print.
    pub lines: Vec<SlipLine>,
    pub fund_pay_sumamt_fen: i64,
    pub hosp_part_fen: i64,
    /// What the patient pays.
    pub psn_part_fen: i64,
    pub operator: String,
    pub printed_at: String,
    /// Prints a large 已冲销 mark (and a watermark): the settlement was reversed.
    pub cancelled: bool,
    /// A re-settlement slip: the settlement as it is after this adjustment (the lines and totals above
    /// are then the new amounts), with why and what changed for the patient.
    pub adjustment: Option<SlipAdjustment>,
}

/// What a re-settlement changed on a settlement (printed on the adjustment's slip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipAdjustment {
    /// e.g. 身份认定滞后（重算批次 #12，2018-11-02）.
    pub reason: String,
    /// What the patient paid before this adjustment.
    pub psn_before_fen: i64,
    /// The change of the personal part: negative = paid back (补付), positive = recovered (追回).
    pub psn_change_fen: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SlipError {
    #[error(
        "未找到可用的中文字体（已查找：{searched}）。请安装 Debian 软件包 fonts-noto-cjk 或 \
         fonts-wqy-microhei（例如 apt-get install fonts-noto-cjk），或设置环境变量 \
         BAOZHANG_FONT_DIR 指向含中文字体（.ttc/.otf/.ttf）的目录"
    )]
    NoFont {
        /// The directories searched, for the message.
        searched: String,
    },
    /// The template failed to compile: a bug here, not bad data (data is never markup).
    #[error("结算单排版失败：{0}")]
    Typeset(String),
    #[error("结算单导出 PDF 失败：{0}")]
    Pdf(String),
}

/// Formats fen as yuan with two decimals and thousands separators: 123456 → `1,234.56`,
/// -5 → `-0.05`. Exact for every `i64` (no float).
pub fn format_yuan(fen: i64) -> String {
    let abs = fen.unsigned_abs();
    let (yuan, cents) = (abs / 100, abs % 100);
    let digits = yuan.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 4);
    if fen < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out.push('.');
    out.push(char::from(b'0' + (cents / 10) as u8));
    out.push(char::from(b'0' + (cents % 10) as u8));
    out
}

/// Renders slips. Create once (it loads the fonts) and share: it is `Send + Sync`, holds only
/// immutable state, and each [`render`](Self::render) builds its own small Typst world, so
/// concurrent renders need no lock.
pub struct SlipRenderer {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    /// The template, parsed once.
    main: Source,
    main_id: FileId,
    report: Source,
    report_id: FileId,
    data_id: FileId,
    /// Font families for `set text(font: ..)`, best first (Simplified Chinese forms first).
    families: Vec<String>,
    /// The first family has no bold face: the template outlines glyphs instead.
    fake_bold: bool,
}

impl std::fmt::Debug for SlipRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlipRenderer")
            .field("families", &self.families)
            .field("faces", &self.fonts.len())
            .field("fake_bold", &self.fake_bold)
            .finish_non_exhaustive()
    }
}

impl SlipRenderer {
    /// Finds a CJK font: first in `$BAOZHANG_FONT_DIR` (recursively), then in `/usr/share/fonts`.
    /// Prefers Noto Sans CJK (regular + bold; Debian `fonts-noto-cjk`), then WenQuanYi Micro Hei
    /// (`fonts-wqy-microhei`), then Noto Serif CJK, then any font file with CJK faces; only one
    /// family's files are kept in memory. [`SlipError::NoFont`] when there is none.
    pub fn new() -> Result<SlipRenderer, SlipError> {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::var_os(FONT_DIR_ENV).filter(|d| !d.is_empty()) {
            dirs.push(PathBuf::from(dir));
        }
        dirs.push(PathBuf::from(SYSTEM_FONT_DIR));
        Self::with_font_dirs(&dirs)
    }

    /// As [`new`](Self::new), searching only `dirs`, in order (the first directory that yields a
    /// CJK font wins).
    pub fn with_font_dirs(dirs: &[PathBuf]) -> Result<SlipRenderer, SlipError> {
        let found = fonts::find_cjk(dirs)
            .ok_or_else(|| SlipError::NoFont { searched: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join("、") })?;
        let main_id = project_file("main.typ");
        let report_id = project_file("report.typ");
        let data_id = project_file("data.json");
        Ok(SlipRenderer {
            library: LazyHash::new(Library::default()),
            book: LazyHash::new(FontBook::from_fonts(&found.fonts)),
            fonts: found.fonts,
            main: Source::new(main_id, TEMPLATE.to_owned()),
            main_id,
            report: Source::new(report_id, REPORT_TEMPLATE.to_owned()),
            report_id,
            data_id,
            families: found.families,
            fake_bold: !found.has_bold,
        })
    }

    /// The font families in use, best first (e.g. `Noto Sans CJK SC`).
    pub fn font_families(&self) -> &[String] {
        &self.families
    }

    /// Renders one slip as a PDF (A5 portrait; more pages only if the payment lines overflow).
    pub fn render(&self, slip: &SlipData) -> Result<Vec<u8>, SlipError> {
        let data = serde_json::to_vec(&self.data_json(slip)).map_err(|e| SlipError::Typeset(e.to_string()))?;
        let world = SlipWorld { renderer: self, data: Bytes::new(data), report: false };
        let document = typst::compile::<PagedDocument>(&world).output;
        let result = document.map_err(|d| SlipError::Typeset(join_diagnostics(&d))).and_then(|doc| {
            let options = typst_pdf::PdfOptions {
                // A stable document id per settlement (the default hashes the title, which all
                // slips of a county share).
                ident: Smart::Custom(format!(
                    "baozhang-slip/{}/{}{}",
                    slip.setl_id,
                    if slip.cancelled { "cancelled" } else { "valid" },
                    slip.adjustment.as_ref().map_or(String::new(), |a| format!("/{}", a.reason))
                )),
                ..Default::default()
            };
            typst_pdf::pdf(&doc, &options).map_err(|d| SlipError::Pdf(join_diagnostics(&d)))
        });
        typst::comemo::evict(CACHE_MAX_AGE);
        result
    }

    /// Renders a report as a PDF (A4 landscape, as many pages as the tables need). A row with fewer or
    /// more cells than its table has columns is padded or cut, so a caller's slip cannot break the layout.
    pub fn render_report(&self, r: &ReportData) -> Result<Vec<u8>, SlipError> {
        let tables: Vec<_> = r
            .tables
            .iter()
            .map(|t| {
                let n = t.columns.len().max(1);
                let rows: Vec<Vec<String>> =
                    t.rows.iter().map(|row| (0..n).map(|i| row.get(i).cloned().unwrap_or_default()).collect()).collect();
                let numeric: Vec<bool> = (0..n).map(|i| t.numeric.get(i).copied().unwrap_or(false)).collect();
                let columns: Vec<String> = (0..n).map(|i| t.columns.get(i).cloned().unwrap_or_default()).collect();
                json!({ "title": t.title, "columns": columns, "numeric": numeric, "rows": rows })
            })
            .collect();
        let data = json!({
            "fonts": self.families,
            "fake_bold": self.fake_bold,
            "title": r.title,
            "subtitle": r.subtitle,
            "footer": r.footer,
            "tables": tables,
        });
        let data = serde_json::to_vec(&data).map_err(|e| SlipError::Typeset(e.to_string()))?;
        let world = SlipWorld { renderer: self, data: Bytes::new(data), report: true };
        let document = typst::compile::<PagedDocument>(&world).output;
        let result = document.map_err(|d| SlipError::Typeset(join_diagnostics(&d))).and_then(|doc| {
            let options = typst_pdf::PdfOptions { ident: Smart::Custom(format!("baozhang-report/{}", r.title)), ..Default::default() };
            typst_pdf::pdf(&doc, &options).map_err(|d| SlipError::Pdf(join_diagnostics(&d)))
        });
        typst::comemo::evict(CACHE_MAX_AGE);
        result
    }

    fn data_json(&self, s: &SlipData) -> serde_json::Value {
        let institution =
            if s.institution_code.is_empty() { s.institution.clone() } else { format!("{}（{}）", s.institution, s.institution_code) };
        let lines: Vec<_> = s
            .lines
            .iter()
            .map(|l| {
                json!({
                    "name": l.name,
                    "fund_code": l.fund_code,
                    "amount": format_yuan(l.amount_fen),
                    "rule": l.rule,
                    "basis": l.basis,
                    "illustrative": l.illustrative,
                })
            })
            .collect();
        json!({
            "fonts": self.families,
            "fake_bold": self.fake_bold,
            "title": s.title,
            "setl_id": s.setl_id,
            "mdtrt_id": s.mdtrt_id,
            "institution": institution,
            "patient_name": s.patient_name,
            "id_no_masked": s.id_no_masked,
            "psn_no": s.psn_no,
            "identities": s.identities,
            "med_type": s.med_type,
            "begin_date": s.begin_date,
            "setl_date": s.setl_date,
            "policy": s.policy,
            "medfee_sumamt": format_yuan(s.medfee_sumamt_fen),
            "fulamt_ownpay": format_yuan(s.fulamt_ownpay_fen),
            "overlmt_selfpay": format_yuan(s.overlmt_selfpay_fen),
            "preselfpay": format_yuan(s.preselfpay_fen),
            "inscp_scp": format_yuan(s.inscp_scp_fen),
            "lines": lines,
            "illustrative": s.lines.iter().any(|l| l.illustrative),
            "fund_pay_sumamt": format_yuan(s.fund_pay_sumamt_fen),
            "hosp_part": format_yuan(s.hosp_part_fen),
            "psn_part": format_yuan(s.psn_part_fen),
            "operator": s.operator,
            "printed_at": s.printed_at,
            "cancelled": s.cancelled,
            "adjustment": s.adjustment.as_ref().map(|a| json!({
                "reason": a.reason,
                "psn_before": format_yuan(a.psn_before_fen),
                "direction": if a.psn_change_fen < 0 { "应补付患者" } else if a.psn_change_fen > 0 { "应向患者追回" } else { "个人负担不变" },
                "change": format_yuan(a.psn_change_fen.abs()),
            })),
        })
    }
}

fn project_file(name: &str) -> FileId {
    let vpath = VirtualPath::new(name).expect("a plain file name is a valid virtual path");
    RootedPath::new(VirtualRoot::Project, vpath).intern()
}

fn join_diagnostics(diags: &[SourceDiagnostic]) -> String {
    diags.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("；")
}

/// The Typst world of one render: the shared renderer plus this slip's `data.json`.
struct SlipWorld<'a> {
    renderer: &'a SlipRenderer,
    data: Bytes,
    /// Typesets the report template instead of the slip's.
    report: bool,
}

impl World for SlipWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.renderer.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.renderer.book
    }

    fn main(&self) -> FileId {
        if self.report {
            self.renderer.report_id
        } else {
            self.renderer.main_id
        }
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.renderer.main_id {
            Ok(self.renderer.main.clone())
        } else if id == self.renderer.report_id {
            Ok(self.renderer.report.clone())
        } else {
            Err(not_found(id))
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.renderer.data_id {
            Ok(self.data.clone())
        } else if id == self.renderer.main_id {
            Ok(Bytes::from_string(self.renderer.main.clone()))
        } else if id == self.renderer.report_id {
            Ok(Bytes::from_string(self.renderer.report.clone()))
        } else {
            Err(not_found(id))
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.renderer.fonts.get(index).cloned()
    }

    /// The template prints dates given by the caller; it never asks for today.
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None
    }
}

fn not_found(id: FileId) -> FileError {
    FileError::NotFound(PathBuf::from(id.vpath().get_with_slash()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_yuan_pads_groups_and_signs() {
        assert_eq!(format_yuan(0), "0.00");
        assert_eq!(format_yuan(5), "0.05");
        assert_eq!(format_yuan(-5), "-0.05");
        assert_eq!(format_yuan(100), "1.00");
        assert_eq!(format_yuan(99_999), "999.99");
        assert_eq!(format_yuan(100_000), "1,000.00");
        assert_eq!(format_yuan(123_456), "1,234.56");
        assert_eq!(format_yuan(123_456_789), "1,234,567.89");
        assert_eq!(format_yuan(-123_456_789), "-1,234,567.89");
        assert_eq!(format_yuan(-100_000), "-1,000.00");
    }

    #[test]
    fn format_yuan_is_exact_at_the_extremes() {
        assert_eq!(format_yuan(i64::MAX), "92,233,720,368,547,758.07");
        assert_eq!(format_yuan(i64::MIN), "-92,233,720,368,547,758.08");
    }

    #[test]
    fn renderer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SlipRenderer>();
    }
}
