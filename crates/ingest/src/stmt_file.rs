//! The files of the national interface's daily reconciliation (3202 对明细账) and its file transfer
//! (9101 upload, 9102 download): pure, bounded functions, no I/O beyond the bytes given.
//!
//! - The **detail file** a hospital uploads with 9101 before 3202: a ZIP holding one tab-separated text
//!   file (a plain, unzipped text file is accepted too), one settlement a line:
//!   `setl_id  mdtrt_id  psn_no  medfee_sumamt  fund_pay_sumamt  acct_pay  refd_setl_flag`
//!   (amounts in yuan with at most two decimals; `refd_setl_flag` 0 a settlement, 1 a refund, i.e. a
//!   cancellation). A header line of the field names, a UTF-8 BOM, `\r\n` line ends, blank lines and
//!   columns beyond the seventh are tolerated; the literal `null` in a text field reads as empty.
//!   A refund's amounts may be written with or without a minus sign: they are read as negative, as the
//!   centre's cancellation rows are (a settlement's amounts must not be negative).
//! - The **result file** the centre answers 3202 with (downloaded with 9102): a ZIP holding one
//!   tab-separated text file, no header, one line per settlement either side has:
//!   `psn_no  mdtrt_id  setl_id  msgid  stmt_rslt  refd_setl_flag  memo  medfee_sumamt  fund_pay_sumamt  acct_pay`
//!   with `stmt_rslt` 0 平, 1 中心多, 2 机构多, 3 不一致. The amounts are the centre's (医保中心医疗费总额,
//!   基金支付总额, 个人账户支出); on a 机构多 line, where the centre has nothing, the institution's, as
//!   its memo says.
//!
//! Both layouts follow what public HIS integration code reads and writes for these transactions
//! (column order of the detail upload and of the result file).
//!
//! Untrusted bytes are read with bounded memory and time ([`Limits`]): the compressed size, the number
//! of archive entries (read from the archive's end record before the directory is parsed), the
//! uncompressed size (checked against the declared size and enforced while inflating, so an archive that
//! lies about it is stopped too), the number of rows and the length of a line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Read, Write};

use baozhang_core::money::MoneyError;
use baozhang_core::Fen;

/// Bounds on a detail file from outside.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Bytes of the file as uploaded (zipped or not).
    pub max_compressed_bytes: usize,
    /// Bytes of the text once inflated.
    pub max_uncompressed_bytes: u64,
    /// Entries in the archive (directories included); more than one file is refused anyway.
    pub max_entries: u64,
    /// Settlement lines (a header not counted).
    pub max_rows: usize,
    /// Bytes of one line.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    /// A county hospital's month of settlements fits (200,000 lines of ~100 bytes: 20 MB of text,
    /// a few MB zipped).
    fn default() -> Limits {
        Limits {
            max_compressed_bytes: 32 << 20,
            max_uncompressed_bytes: 64 << 20,
            max_entries: 16,
            max_rows: 200_000,
            max_line_bytes: 4096,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StmtFileError {
    #[error("对账明细文件不是有效的 ZIP 压缩包：{0}")]
    BadZip(String),
    #[error("对账明细压缩包应只含一个文件，实际含 {0} 个")]
    Entries(u64),
    #[error("对账明细文件超出上限：{what}（上限 {limit}）")]
    TooLarge { what: String, limit: String },
    #[error("对账明细文件第 {line} 行{}：{reason}", field.map(|f| format!(" {f}")).unwrap_or_default())]
    Line { line: u64, field: Option<&'static str>, reason: String },
}

/// One settlement line of a hospital's detail file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailRow {
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    /// Negative on a refund line.
    pub medfee_sumamt: Fen,
    pub fund_pay_sumamt: Fen,
    pub acct_pay: Fen,
    /// A refund (cancellation) line.
    pub refd_setl_flag: bool,
}

/// The field names of a detail line, in file order.
pub const DETAIL_FIELDS: [&str; 7] = ["setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag"];

/// The field names of a result line, in file order.
pub const RESULT_FIELDS: [&str; 10] =
    ["psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag", "memo", "medfee_sumamt", "fund_pay_sumamt", "acct_pay"];

/// Reads a hospital's detail file: a ZIP with exactly one file in it, or the tab-separated text itself.
pub fn read_detail_zip(bytes: &[u8], limits: &Limits) -> Result<Vec<DetailRow>, StmtFileError> {
    if bytes.len() > limits.max_compressed_bytes {
        return Err(too_large(format!("文件 {} 字节", bytes.len()), format!("{} 字节", limits.max_compressed_bytes)));
    }
    if !bytes.starts_with(b"PK\x03\x04") && !bytes.starts_with(b"PK\x05\x06") {
        if bytes.len() as u64 > limits.max_uncompressed_bytes {
            return Err(too_large(format!("文本 {} 字节", bytes.len()), format!("{} 字节", limits.max_uncompressed_bytes)));
        }
        return read_detail_text(bytes, limits);
    }
    match eocd_entries(bytes) {
        Some(n) if n > limits.max_entries => return Err(StmtFileError::Entries(n)),
        Some(_) => {}
        None => return Err(StmtFileError::BadZip("找不到压缩包目录（或为不支持的 ZIP64）".into())),
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| StmtFileError::BadZip(e.to_string()))?;
    let mut file_index = None;
    let mut files = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| StmtFileError::BadZip(e.to_string()))?;
        if !entry.is_dir() {
            files += 1;
            file_index = Some(i);
        }
    }
    let (1, Some(index)) = (files, file_index) else { return Err(StmtFileError::Entries(files)) };
    let entry = zip.by_index(index).map_err(|e| StmtFileError::BadZip(e.to_string()))?;
    if entry.encrypted() {
        return Err(StmtFileError::BadZip("文件已加密".into()));
    }
    if entry.size() > limits.max_uncompressed_bytes {
        return Err(too_large(format!("解压后 {} 字节", entry.size()), format!("{} 字节", limits.max_uncompressed_bytes)));
    }
    // The declared size may lie: inflate no more than the cap (plus one byte, to notice).
    let mut limited = entry.take(limits.max_uncompressed_bytes + 1);
    let rows = read_detail_lines(&mut BufReader::new(&mut limited), limits);
    if limited.limit() == 0 {
        return Err(too_large(
            format!("解压后超过 {} 字节", limits.max_uncompressed_bytes),
            format!("{} 字节", limits.max_uncompressed_bytes),
        ));
    }
    rows
}

fn read_detail_text(bytes: &[u8], limits: &Limits) -> Result<Vec<DetailRow>, StmtFileError> {
    read_detail_lines(&mut BufReader::new(bytes), limits)
}

fn too_large(what: String, limit: String) -> StmtFileError {
    StmtFileError::TooLarge { what, limit }
}

/// The number of entries an archive declares in its end-of-central-directory record (the last 22 bytes
/// plus a comment of at most 64 KiB), read before the directory is parsed. `None` when there is no such
/// record or it defers to ZIP64.
fn eocd_entries(bytes: &[u8]) -> Option<u64> {
    let start = bytes.len().saturating_sub(22 + 65_535);
    let tail = &bytes[start..];
    let at = tail.windows(4).rposition(|w| w == b"PK\x05\x06")?;
    let rec = tail.get(at..at + 22)?;
    let total = u16::from_le_bytes([rec[10], rec[11]]);
    (total != 0xFFFF).then_some(u64::from(total))
}

fn line_err(line: u64, field: Option<&'static str>, reason: impl Into<String>) -> StmtFileError {
    StmtFileError::Line { line, field, reason: reason.into() }
}

fn read_detail_lines<R: BufRead>(r: &mut R, limits: &Limits) -> Result<Vec<DetailRow>, StmtFileError> {
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0u64;
    let mut first = true;
    loop {
        buf.clear();
        let n = r
            .by_ref()
            .take(limits.max_line_bytes as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| StmtFileError::BadZip(e.to_string()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > limits.max_line_bytes {
            return Err(line_err(line_no, None, format!("一行超过 {} 字节", limits.max_line_bytes)));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let mut line: &[u8] = &buf;
        if line_no == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| line_err(line_no, None, "不是 UTF-8 文本"))?;
        let cells: Vec<&str> = text.split('\t').map(str::trim).collect();
        if std::mem::take(&mut first) && is_header(cells[0]) {
            continue;
        }
        if rows.len() >= limits.max_rows {
            return Err(too_large(format!("超过 {} 行", limits.max_rows), format!("{} 行", limits.max_rows)));
        }
        let row = parse_detail(line_no, &cells)?;
        if let Some(prev) = seen.insert(row.setl_id.clone(), line_no) {
            return Err(line_err(line_no, Some("setl_id（结算ID）"), format!("“{}”与第 {prev} 行重复", row.setl_id)));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn is_header(first_cell: &str) -> bool {
    let c = first_cell.trim_start_matches('\u{feff}');
    c.eq_ignore_ascii_case("setl_id") || c == "结算ID" || c.eq_ignore_ascii_case("结算id")
}

/// A detail field as errors name it: its national name and its Chinese name.
fn field_name(i: usize) -> &'static str {
    const NAMES: [&str; 7] = [
        "setl_id（结算ID）",
        "mdtrt_id（就诊ID）",
        "psn_no（人员编号）",
        "medfee_sumamt（医疗费总额）",
        "fund_pay_sumamt（基金支付总额）",
        "acct_pay（个人账户支出）",
        "refd_setl_flag（退费结算标志）",
    ];
    NAMES[i]
}

fn text_cell(s: &str) -> String {
    if s.eq_ignore_ascii_case("null") {
        String::new()
    } else {
        s.to_string()
    }
}

fn parse_detail(line: u64, cells: &[&str]) -> Result<DetailRow, StmtFileError> {
    if cells.len() < DETAIL_FIELDS.len() {
        return Err(line_err(
            line,
            None,
            format!("应有 {} 列（{}，以制表符分隔），实际 {} 列", DETAIL_FIELDS.len(), DETAIL_FIELDS.join("、"), cells.len()),
        ));
    }
    let setl_id = text_cell(cells[0]);
    if setl_id.is_empty() {
        return Err(line_err(line, Some(field_name(0)), "为空"));
    }
    let refd = match cells[6] {
        "0" => false,
        "1" => true,
        other => return Err(line_err(line, Some(field_name(6)), format!("“{other}”应为 0（结算）或 1（退费）"))),
    };
    let amount = |i: usize| -> Result<Fen, StmtFileError> {
        let s = cells[i];
        let err = |e: MoneyError| line_err(line, Some(field_name(i)), e.to_string());
        if refd {
            // A refund's amounts are negative whether or not the file writes the sign.
            let body = s.strip_prefix('-').unwrap_or(s);
            if body.starts_with('-') || body.starts_with('+') {
                return Err(err(MoneyError::NotANumber(s.to_string())));
            }
            Fen::parse_yuan(body).map(|f| -f).map_err(err)
        } else {
            Fen::parse_yuan(s).map_err(err)
        }
    };
    Ok(DetailRow {
        setl_id,
        mdtrt_id: text_cell(cells[1]),
        psn_no: text_cell(cells[2]),
        medfee_sumamt: amount(3)?,
        fund_pay_sumamt: amount(4)?,
        acct_pay: amount(5)?,
        refd_setl_flag: refd,
    })
}

/// Writes a detail file (for test clients and the demo): one entry `inner_name`, no header.
pub fn write_detail_zip(rows: &[DetailRow], inner_name: &str) -> Vec<u8> {
    let mut text = Vec::with_capacity(rows.len() * 96);
    for r in rows {
        for s in [&r.setl_id, &r.mdtrt_id, &r.psn_no] {
            text.extend_from_slice(clean(s).as_bytes());
            text.push(b'\t');
        }
        for f in [r.medfee_sumamt, r.fund_pay_sumamt, r.acct_pay] {
            f.write_yuan(&mut text);
            text.push(b'\t');
        }
        text.push(if r.refd_setl_flag { b'1' } else { b'0' });
        text.push(b'\n');
    }
    zip_one(inner_name, &text)
}

/// A text field as written into a tab-separated line: tabs and line ends become spaces.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\t', '\n', '\r']) {
        std::borrow::Cow::Owned(s.replace(['\t', '\n', '\r'], " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A ZIP with one deflated entry (fixed timestamp: the same rows give the same bytes).
fn zip_one(inner_name: &str, content: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    // Writing into memory cannot fail but for a bug; the zip crate's errors are I/O errors here.
    w.start_file(inner_name, opts).expect("zip entry in memory");
    w.write_all(content).expect("zip write in memory");
    w.finish().expect("zip finish in memory").into_inner()
}

/// The class of one line of the result file (对账结果).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum StmtResult {
    /// 平: both have it, with the same amounts.
    Balanced = 0,
    /// 中心多: only the centre has it.
    CentreOnly = 1,
    /// 机构多: only the institution has it.
    InstitutionOnly = 2,
    /// 不一致: both have it, something differs.
    Differs = 3,
}

impl StmtResult {
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn from_code(c: u8) -> Option<StmtResult> {
        Some(match c {
            0 => StmtResult::Balanced,
            1 => StmtResult::CentreOnly,
            2 => StmtResult::InstitutionOnly,
            3 => StmtResult::Differs,
            _ => return None,
        })
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            StmtResult::Balanced => "平",
            StmtResult::CentreOnly => "中心多",
            StmtResult::InstitutionOnly => "机构多",
            StmtResult::Differs => "不一致",
        }
    }
}

/// One settlement (or cancellation) row as the centre has it, with its effective amounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentreRow {
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    /// The message that settled (or cancelled).
    pub msgid: String,
    pub medfee_sumamt: Fen,
    pub fund_pay_sumamt: Fen,
    pub acct_pay: Fen,
    pub refd_setl_flag: bool,
}

/// One line of the result file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultRow {
    pub psn_no: String,
    pub mdtrt_id: String,
    pub setl_id: String,
    pub msgid: String,
    pub stmt_rslt: StmtResult,
    pub refd_setl_flag: bool,
    pub memo: String,
    /// The centre's amounts; the institution's on a 机构多 line.
    pub medfee_sumamt: Fen,
    pub fund_pay_sumamt: Fen,
    pub acct_pay: Fen,
}

/// Compares the centre's rows with the institution's, by `setl_id`: one result line per settlement
/// either side has, sorted by `setl_id`. Both sides having a row with the same amounts (医疗费总额, 基金支付,
/// 个人账户) and refund flag, and no conflicting 就诊ID / 人员编号 (an empty one on the institution's side
/// does not conflict), is 平; anything else both have is 不一致 with the differences in the memo.
pub fn compare(centre: &[CentreRow], institution: &[DetailRow]) -> Vec<ResultRow> {
    let inst: HashMap<&str, &DetailRow> = institution.iter().map(|r| (r.setl_id.as_str(), r)).collect();
    let centre_ids: std::collections::HashSet<&str> = centre.iter().map(|r| r.setl_id.as_str()).collect();
    let mut out = Vec::with_capacity(centre.len().max(institution.len()));
    for c in centre {
        let Some(i) = inst.get(c.setl_id.as_str()) else {
            out.push(result_of_centre(c, StmtResult::CentreOnly, "中心有此结算，机构明细中没有".into()));
            continue;
        };
        let mut diffs = Vec::new();
        if i.refd_setl_flag != c.refd_setl_flag {
            diffs.push(format!("退费结算标志：机构 {}，中心 {}", u8::from(i.refd_setl_flag), u8::from(c.refd_setl_flag)));
        }
        if !i.mdtrt_id.is_empty() && i.mdtrt_id != c.mdtrt_id {
            diffs.push(format!("就诊ID：机构 {}，中心 {}", i.mdtrt_id, c.mdtrt_id));
        }
        if !i.psn_no.is_empty() && i.psn_no != c.psn_no {
            diffs.push(format!("人员编号：机构 {}，中心 {}", i.psn_no, c.psn_no));
        }
        for (name, a, b) in [
            ("医疗费总额", i.medfee_sumamt, c.medfee_sumamt),
            ("基金支付总额", i.fund_pay_sumamt, c.fund_pay_sumamt),
            ("个人账户支出", i.acct_pay, c.acct_pay),
        ] {
            if a != b {
                diffs.push(format!("{name}：机构 {} 元，中心 {} 元", a.grouped(), b.grouped()));
            }
        }
        if diffs.is_empty() {
            out.push(result_of_centre(c, StmtResult::Balanced, String::new()));
        } else {
            out.push(result_of_centre(c, StmtResult::Differs, diffs.join("；")));
        }
    }
    for i in institution {
        if !centre_ids.contains(i.setl_id.as_str()) {
            out.push(ResultRow {
                psn_no: i.psn_no.clone(),
                mdtrt_id: i.mdtrt_id.clone(),
                setl_id: i.setl_id.clone(),
                msgid: String::new(),
                stmt_rslt: StmtResult::InstitutionOnly,
                refd_setl_flag: i.refd_setl_flag,
                memo: "中心无此结算（金额为机构所报）".into(),
                medfee_sumamt: i.medfee_sumamt,
                fund_pay_sumamt: i.fund_pay_sumamt,
                acct_pay: i.acct_pay,
            });
        }
    }
    out.sort_by(|a, b| a.setl_id.cmp(&b.setl_id));
    out
}

fn result_of_centre(c: &CentreRow, stmt_rslt: StmtResult, memo: String) -> ResultRow {
    ResultRow {
        psn_no: c.psn_no.clone(),
        mdtrt_id: c.mdtrt_id.clone(),
        setl_id: c.setl_id.clone(),
        msgid: c.msgid.clone(),
        stmt_rslt,
        refd_setl_flag: c.refd_setl_flag,
        memo,
        medfee_sumamt: c.medfee_sumamt,
        fund_pay_sumamt: c.fund_pay_sumamt,
        acct_pay: c.acct_pay,
    }
}

/// How many lines of each class a result has: [平, 中心多, 机构多, 不一致].
pub fn result_counts(rows: &[ResultRow]) -> [usize; 4] {
    let mut n = [0usize; 4];
    for r in rows {
        n[usize::from(r.stmt_rslt.code())] += 1;
    }
    n
}

/// Writes the result file: one entry `inner_name`, tab-separated, no header ([`RESULT_FIELDS`]).
pub fn write_result_zip(rows: &[ResultRow], inner_name: &str) -> Vec<u8> {
    let mut text = Vec::with_capacity(rows.len() * 128);
    for r in rows {
        for s in [&r.psn_no, &r.mdtrt_id, &r.setl_id, &r.msgid] {
            text.extend_from_slice(clean(s).as_bytes());
            text.push(b'\t');
        }
        text.push(b'0' + r.stmt_rslt.code());
        text.push(b'\t');
        text.push(if r.refd_setl_flag { b'1' } else { b'0' });
        text.push(b'\t');
        text.extend_from_slice(clean(&r.memo).as_bytes());
        for f in [r.medfee_sumamt, r.fund_pay_sumamt, r.acct_pay] {
            text.push(b'\t');
            f.write_yuan(&mut text);
        }
        text.push(b'\n');
    }
    zip_one(inner_name, &text)
}

/// Reads a result file back (what a hospital does after 9102; for tests and the demo). Trusted input
/// of our own making, still bounded by `limits`.
pub fn read_result_zip(bytes: &[u8], limits: &Limits) -> Result<Vec<ResultRow>, StmtFileError> {
    let text = unzip_one(bytes, limits)?;
    let text = std::str::from_utf8(&text).map_err(|_| line_err(0, None, "不是 UTF-8 文本"))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        if rows.len() >= limits.max_rows {
            return Err(too_large(format!("超过 {} 行", limits.max_rows), format!("{} 行", limits.max_rows)));
        }
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() != RESULT_FIELDS.len() {
            return Err(line_err(line_no, None, format!("应有 {} 列，实际 {} 列", RESULT_FIELDS.len(), c.len())));
        }
        let stmt_rslt = c[4]
            .parse::<u8>()
            .ok()
            .and_then(StmtResult::from_code)
            .ok_or_else(|| line_err(line_no, Some("stmt_rslt（对账结果）"), format!("“{}”不是 0–3", c[4])))?;
        let amount = |s: &str, field: &'static str| -> Result<Fen, StmtFileError> {
            let (neg, body) = s.strip_prefix('-').map_or((false, s), |b| (true, b));
            let f = Fen::parse_yuan(body).map_err(|e| line_err(line_no, Some(field), e.to_string()))?;
            Ok(if neg { -f } else { f })
        };
        rows.push(ResultRow {
            psn_no: c[0].into(),
            mdtrt_id: c[1].into(),
            setl_id: c[2].into(),
            msgid: c[3].into(),
            stmt_rslt,
            refd_setl_flag: c[5] == "1",
            memo: c[6].into(),
            medfee_sumamt: amount(c[7], "medfee_sumamt")?,
            fund_pay_sumamt: amount(c[8], "fund_pay_sumamt")?,
            acct_pay: amount(c[9], "acct_pay")?,
        });
    }
    Ok(rows)
}

/// The one file of an archive, inflated within `limits`.
fn unzip_one(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, StmtFileError> {
    if bytes.len() > limits.max_compressed_bytes {
        return Err(too_large(format!("文件 {} 字节", bytes.len()), format!("{} 字节", limits.max_compressed_bytes)));
    }
    match eocd_entries(bytes) {
        Some(n) if n > limits.max_entries => return Err(StmtFileError::Entries(n)),
        Some(_) => {}
        None => return Err(StmtFileError::BadZip("找不到压缩包目录".into())),
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| StmtFileError::BadZip(e.to_string()))?;
    if zip.len() != 1 {
        return Err(StmtFileError::Entries(zip.len() as u64));
    }
    let entry = zip.by_index(0).map_err(|e| StmtFileError::BadZip(e.to_string()))?;
    let mut out = Vec::new();
    entry.take(limits.max_uncompressed_bytes + 1).read_to_end(&mut out).map_err(|e| StmtFileError::BadZip(e.to_string()))?;
    if out.len() as u64 > limits.max_uncompressed_bytes {
        return Err(too_large(
            format!("解压后超过 {} 字节", limits.max_uncompressed_bytes),
            format!("{} 字节", limits.max_uncompressed_bytes),
        ));
    }
    Ok(out)
}

/// Totals of one side of 3201 对总账 (or of the totals 3202 states). `acct_pay` and `cash_payamt` are
/// compared only when both sides give them (3201 states 个人账户支出, 3202 现金支付).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StmtTotals {
    /// Settlements net of refunds (a refund counts −1).
    pub count: i64,
    pub medfee_sumamt: Fen,
    pub fund_pay_sumamt: Fen,
    pub acct_pay: Option<Fen>,
    pub cash_payamt: Option<Fen>,
}

/// Whether the institution's stated totals balance with the centre's, and a description in Chinese
/// (对账结果说明): on a balance the figures agreed on, otherwise each differing figure with both sides,
/// e.g. "医疗费总额：机构 1,234.00 元，中心 1,200.00 元".
pub fn totals_balance(stated: &StmtTotals, centre: &StmtTotals) -> (bool, String) {
    let mut diffs = Vec::new();
    if stated.count != centre.count {
        diffs.push(format!("结算笔数：机构 {} 笔，中心 {} 笔", stated.count, centre.count));
    }
    let mut money =
        vec![("医疗费总额", stated.medfee_sumamt, centre.medfee_sumamt), ("基金支付总额", stated.fund_pay_sumamt, centre.fund_pay_sumamt)];
    if let (Some(a), Some(b)) = (stated.acct_pay, centre.acct_pay) {
        money.push(("个人账户支出", a, b));
    }
    if let (Some(a), Some(b)) = (stated.cash_payamt, centre.cash_payamt) {
        money.push(("现金支付", a, b));
    }
    for (name, a, b) in money {
        if a != b {
            diffs.push(format!("{name}：机构 {} 元，中心 {} 元", a.grouped(), b.grouped()));
        }
    }
    if diffs.is_empty() {
        (
            true,
            format!(
                "对账平：结算 {} 笔，医疗费总额 {} 元，基金支付总额 {} 元",
                centre.count,
                centre.medfee_sumamt.grouped(),
                centre.fund_pay_sumamt.grouped()
            ),
        )
    } else {
        (false, format!("对账不平：{}", diffs.join("；")))
    }
}

/// The bytes of a 9101 upload's `in`: real clients send either a base64 string (standard or URL-safe
/// alphabet, padding optional, line breaks and a `data:…;base64,` prefix ignored) or the bytes
/// themselves as a JSON array of numbers (Java's signed bytes −128…127 as well as 0…255), sometimes
/// that array as a string ("[80, 75, 3, 4]").
pub fn decode_upload_bytes(v: &serde_json::Value) -> Result<Vec<u8>, String> {
    let bytes = match v {
        serde_json::Value::String(s) => {
            let t = s.trim();
            if t.starts_with('[') {
                let arr: serde_json::Value = serde_json::from_str(t).map_err(|e| format!("文件内容（in）不是字节数组：{e}"))?;
                return decode_upload_bytes(&arr);
            }
            let body = match t.strip_prefix("data:").and_then(|r| r.split_once(";base64,")) {
                Some((_, b)) => b,
                None => t,
            };
            decode_base64(body)?
        }
        serde_json::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let b = item
                    .as_i64()
                    .filter(|n| (-128..=255).contains(n))
                    .ok_or_else(|| format!("文件内容（in）第 {} 个元素“{item}”不是字节（-128…255）", i + 1))?;
                out.push(b.rem_euclid(256) as u8);
            }
            out
        }
        serde_json::Value::Null => return Err("缺少文件内容（in）".into()),
        other => return Err(format!("文件内容（in）应为 base64 字符串或字节数组，实际为 {}", json_kind(other))),
    };
    if bytes.is_empty() {
        return Err("文件内容（in）为空".into());
    }
    Ok(bytes)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "布尔值",
        serde_json::Value::Number(_) => "数字",
        serde_json::Value::String(_) => "字符串",
        serde_json::Value::Array(_) => "数组",
        serde_json::Value::Object(_) => "对象",
    }
}

/// Lenient base64 (RFC 4648 §4 and §5 alphabets, whitespace ignored, padding optional); anything else
/// is refused, as are leftover bits that do not make a byte.
fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    let mut padding = false;
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return Err(format!("文件内容（in）不是 base64：第 {} 个字符“{}”", i + 1, c as char)),
        };
        if padding {
            return Err("文件内容（in）不是 base64：填充符“=”之后还有字符".into());
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        n += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if n % 4 == 1 {
        return Err("文件内容（in）不是 base64：长度不对".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, medfee: i64, fund: i64, refd: bool) -> DetailRow {
        DetailRow {
            setl_id: id.into(),
            mdtrt_id: format!("M{id}"),
            psn_no: format!("P{id}"),
            medfee_sumamt: Fen(medfee),
            fund_pay_sumamt: Fen(fund),
            acct_pay: Fen::ZERO,
            refd_setl_flag: refd,
        }
    }

    fn centre(id: &str, medfee: i64, fund: i64, refd: bool) -> CentreRow {
        CentreRow {
            setl_id: id.into(),
            mdtrt_id: format!("M{id}"),
            psn_no: format!("P{id}"),
            msgid: format!("G{id}"),
            medfee_sumamt: Fen(medfee),
            fund_pay_sumamt: Fen(fund),
            acct_pay: Fen::ZERO,
            refd_setl_flag: refd,
        }
    }

    fn line_err_of(text: &str) -> StmtFileError {
        read_detail_zip(text.as_bytes(), &Limits::default()).unwrap_err()
    }

    #[test]
    fn detail_round_trip_through_zip() {
        let rows = vec![row("S1", 123_456, 100_000, false), row("S2", 5, 0, false), row("S3", -123_456, -100_000, true)];
        let zip = write_detail_zip(&rows, "detail.txt");
        assert!(zip.starts_with(b"PK\x03\x04"));
        assert_eq!(read_detail_zip(&zip, &Limits::default()).unwrap(), rows);
        // Same rows, same bytes.
        assert_eq!(write_detail_zip(&rows, "detail.txt"), zip);
    }

    #[test]
    fn plain_text_with_header_crlf_bom_and_blank_lines() {
        let text = "\u{feff}setl_id\tmdtrt_id\tpsn_no\tmedfee_sumamt\tfund_pay_sumamt\tacct_pay\trefd_setl_flag\r\n\
                    S1\tM1\tP1\t100.5\t80\t0.00\t0\r\n\
                    \r\n\
                    S2\tnull\t\t12.30\t10.00\t0\t1\textra\r\n";
        let rows = read_detail_zip(text.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].medfee_sumamt, Fen(10_050));
        assert_eq!(rows[0].fund_pay_sumamt, Fen(8_000));
        // A refund written without its sign is read as negative; `null` reads as empty.
        assert_eq!(rows[1], DetailRow { mdtrt_id: String::new(), psn_no: String::new(), ..row("S2", -1_230, -1_000, true) });
        // A Chinese header is a header too.
        let zh = "结算ID\t就诊ID\t人员编号\t医疗费总额\t基金支付总额\t个人账户支出\t退费结算标志\nS1\tM1\tP1\t1\t1\t0\t0\n";
        assert_eq!(read_detail_zip(zh.as_bytes(), &Limits::default()).unwrap().len(), 1);
        // An empty file is an institution without settlements.
        assert!(read_detail_zip(b"\n", &Limits::default()).unwrap().is_empty());
    }

    #[test]
    fn a_bad_amount_is_named_by_line_and_field() {
        let e = line_err_of("S1\tM1\tP1\t100.00\t80.00\t0\t0\nS2\tM2\tP2\t1O0.00\t80.00\t0\t0\n");
        assert_eq!(
            e,
            StmtFileError::Line {
                line: 2,
                field: Some("medfee_sumamt（医疗费总额）"),
                reason: MoneyError::NotANumber("1O0.00".into()).to_string()
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("第 2 行") && msg.contains("medfee_sumamt") && msg.contains("医疗费总额"), "{msg}");
        // Too many decimals, a negative settlement, a bad flag, too few columns, a duplicate.
        assert!(line_err_of("S1\tM1\tP1\t1.001\t0\t0\t0\n").to_string().contains("两位小数"));
        let neg = line_err_of("S1\tM1\tP1\t1\t-1\t0\t0\n");
        assert!(matches!(neg, StmtFileError::Line { line: 1, field: Some(f), .. } if f.starts_with("fund_pay_sumamt")), "{neg}");
        assert!(line_err_of("S1\tM1\tP1\t1\t1\t0\t2\n").to_string().contains("refd_setl_flag"));
        assert!(line_err_of("S1,M1,P1,1,1,0,0\n").to_string().contains("应有 7 列"));
        assert!(line_err_of("S1\tM1\tP1\t1\t1\t0\t0\nS1\tM1\tP1\t1\t1\t0\t0\n").to_string().contains("与第 1 行重复"));
        assert!(line_err_of("\tM1\tP1\t1\t1\t0\t0\n").to_string().contains("setl_id"));
    }

    #[test]
    fn too_many_rows_and_long_lines_are_refused() {
        let limits = Limits { max_rows: 10, ..Limits::default() };
        let rows: Vec<DetailRow> = (0..11).map(|i| row(&format!("S{i:02}"), 100, 50, false)).collect();
        let zip = write_detail_zip(&rows, "d.txt");
        assert!(matches!(read_detail_zip(&zip, &limits), Err(StmtFileError::TooLarge { .. })));
        assert_eq!(read_detail_zip(&write_detail_zip(&rows[..10], "d.txt"), &limits).unwrap().len(), 10);
        let long = format!("S1\tM1\t{}\t1\t1\t0\t0\n", "x".repeat(5000));
        assert!(line_err_of(&long).to_string().contains("超过 4096 字节"));
        let big = Limits { max_compressed_bytes: 100, ..Limits::default() };
        assert!(matches!(read_detail_zip(&zip, &big), Err(StmtFileError::TooLarge { .. })));
    }

    /// A highly compressible entry (a zip bomb in small): 8 MiB of blank lines (which the reader skips,
    /// so only the size can stop it) zips to a few KiB.
    fn bomb(size: usize) -> Vec<u8> {
        zip_one("bomb.txt", &vec![b'\n'; size])
    }

    #[test]
    fn a_zip_bomb_is_refused_by_the_uncompressed_cap() {
        let z = bomb(8 << 20);
        assert!(z.len() < 64 << 10, "{}", z.len());
        let limits = Limits { max_uncompressed_bytes: 1 << 20, ..Limits::default() };
        let e = read_detail_zip(&z, &limits).unwrap_err();
        assert!(matches!(e, StmtFileError::TooLarge { .. }), "{e}");
        // The same archive lying about its size (declared 100 bytes, central and local headers) is
        // stopped while inflating.
        let mut lying = z.clone();
        patch_sizes(&mut lying, 100);
        let e = read_detail_zip(&lying, &limits).unwrap_err();
        assert_eq!(e, StmtFileError::TooLarge { what: "解压后超过 1048576 字节".into(), limit: "1048576 字节".into() });
    }

    /// Overwrites the uncompressed size in the local and central headers of every entry.
    fn patch_sizes(z: &mut [u8], size: u32) {
        let mut i = 0;
        while i + 46 <= z.len() {
            if &z[i..i + 4] == b"PK\x03\x04" {
                z[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            } else if &z[i..i + 4] == b"PK\x01\x02" {
                z[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
            i += 1;
        }
    }

    #[test]
    fn archives_with_other_than_one_file_are_refused() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for name in ["a.txt", "b.txt"] {
            w.start_file(name, opts).unwrap();
            w.write_all(b"S1\tM1\tP1\t1\t1\t0\t0\n").unwrap();
        }
        let two = w.finish().unwrap().into_inner();
        assert_eq!(read_detail_zip(&two, &Limits::default()), Err(StmtFileError::Entries(2)));
        let few = Limits { max_entries: 1, ..Limits::default() };
        assert_eq!(read_detail_zip(&two, &few), Err(StmtFileError::Entries(2)));
        // A directory beside the file is fine.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_directory("d/", opts).unwrap();
        w.start_file("d/a.txt", opts).unwrap();
        w.write_all(b"S1\tM1\tP1\t1\t1\t0\t0\n").unwrap();
        let dir = w.finish().unwrap().into_inner();
        assert_eq!(read_detail_zip(&dir, &Limits::default()).unwrap().len(), 1);
        assert!(matches!(read_detail_zip(b"PK\x03\x04garbage", &Limits::default()), Err(StmtFileError::BadZip(_))));
    }

    #[test]
    fn compare_classes_each_settlement() {
        let centre_rows = vec![
            centre("S1", 10_000, 8_000, false),  // balanced
            centre("S2", 20_000, 15_000, false), // only the centre
            centre("S4", 30_000, 20_000, false), // differs in the fund's part
            centre("S5", -5_000, -4_000, true),  // a cancellation, balanced
            centre("S6", 7_000, 7_000, false),   // the institution calls it a refund
        ];
        let inst = vec![
            row("S1", 10_000, 8_000, false),
            row("S3", 1_000, 500, false), // only the institution
            row("S4", 30_000, 20_100, false),
            row("S5", -5_000, -4_000, true),
            row("S6", -7_000, -7_000, true),
        ];
        let res = compare(&centre_rows, &inst);
        let classes: Vec<(&str, StmtResult)> = res.iter().map(|r| (r.setl_id.as_str(), r.stmt_rslt)).collect();
        assert_eq!(
            classes,
            vec![
                ("S1", StmtResult::Balanced),
                ("S2", StmtResult::CentreOnly),
                ("S3", StmtResult::InstitutionOnly),
                ("S4", StmtResult::Differs),
                ("S5", StmtResult::Balanced),
                ("S6", StmtResult::Differs),
            ]
        );
        assert_eq!(res[3].memo, "基金支付总额：机构 201.00 元，中心 200.00 元");
        assert_eq!(res[3].fund_pay_sumamt, Fen(20_000), "the centre's amounts");
        assert_eq!(res[2].msgid, "");
        assert_eq!(res[2].medfee_sumamt, Fen(1_000));
        assert!(res[5].memo.starts_with("退费结算标志：机构 1，中心 0"), "{}", res[5].memo);
        assert_eq!(result_counts(&res), [2, 1, 1, 2]);
        // A differing visit or person is 不一致; an empty one on the institution's side is not.
        let other = DetailRow { mdtrt_id: "MX".into(), ..row("S1", 10_000, 8_000, false) };
        assert_eq!(compare(&centre_rows[..1], &[other])[0].stmt_rslt, StmtResult::Differs);
        let blank = DetailRow { mdtrt_id: String::new(), psn_no: String::new(), ..row("S1", 10_000, 8_000, false) };
        assert_eq!(compare(&centre_rows[..1], &[blank])[0].stmt_rslt, StmtResult::Balanced);
        for c in 0..4 {
            let r = StmtResult::from_code(c).unwrap();
            assert_eq!(r.code(), c);
        }
        assert_eq!(StmtResult::Differs.name_zh(), "不一致");
        assert_eq!(StmtResult::from_code(4), None);
    }

    #[test]
    fn result_file_round_trip_and_layout() {
        let res = compare(&[centre("S1", 10_000, 8_000, false), centre("S2", -500, -400, true)], &[row("S1", 10_000, 8_100, false)]);
        let z = write_result_zip(&res, "result.txt");
        assert_eq!(read_result_zip(&z, &Limits::default()).unwrap(), res);
        let text = String::from_utf8(unzip_one(&z, &Limits::default()).unwrap()).unwrap();
        let first: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
        assert_eq!(
            first,
            vec!["PS1", "MS1", "S1", "GS1", "3", "0", "基金支付总额：机构 81.00 元，中心 80.00 元", "100.00", "80.00", "0.00"]
        );
        assert!(text.lines().nth(1).unwrap().ends_with("\t-5.00\t-4.00\t0.00"));
    }

    #[test]
    fn totals_balance_lists_each_differing_figure() {
        let centre = StmtTotals {
            count: 3,
            medfee_sumamt: Fen(120_000),
            fund_pay_sumamt: Fen(90_000),
            acct_pay: Some(Fen::ZERO),
            cash_payamt: None,
        };
        let (ok, d) = totals_balance(&centre, &centre);
        assert!(ok);
        assert_eq!(d, "对账平：结算 3 笔，医疗费总额 1,200.00 元，基金支付总额 900.00 元");
        let stated = StmtTotals { count: 4, medfee_sumamt: Fen(123_400), acct_pay: Some(Fen(100)), cash_payamt: Some(Fen(5)), ..centre };
        let (ok, d) = totals_balance(&stated, &centre);
        assert!(!ok);
        assert_eq!(d, "对账不平：结算笔数：机构 4 笔，中心 3 笔；医疗费总额：机构 1,234.00 元，中心 1,200.00 元；个人账户支出：机构 1.00 元，中心 0.00 元");
    }

    #[test]
    fn uploads_as_base64_or_byte_arrays() {
        let bytes = write_detail_zip(&[row("S1", 100, 50, false)], "d.txt");
        let b64 = standard_base64(&bytes);
        let v = |s: &str| serde_json::Value::String(s.into());
        assert_eq!(decode_upload_bytes(&v(&b64)).unwrap(), bytes);
        // Line-wrapped, unpadded, URL-safe, with a data: prefix.
        let wrapped: String = b64.as_bytes().chunks(76).map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap())).collect();
        assert_eq!(decode_upload_bytes(&v(&wrapped)).unwrap(), bytes);
        assert_eq!(decode_upload_bytes(&v(b64.trim_end_matches('='))).unwrap(), bytes);
        let url = b64.replace('+', "-").replace('/', "_");
        assert_eq!(decode_upload_bytes(&v(&url)).unwrap(), bytes);
        assert_eq!(decode_upload_bytes(&v(&format!("data:application/zip;base64,{b64}"))).unwrap(), bytes);
        // A JSON array of unsigned or (Java) signed bytes, or that array as a string.
        let unsigned = serde_json::Value::Array(bytes.iter().map(|&b| serde_json::json!(b)).collect());
        assert_eq!(decode_upload_bytes(&unsigned).unwrap(), bytes);
        let signed = serde_json::Value::Array(bytes.iter().map(|&b| serde_json::json!(b as i8)).collect());
        assert_eq!(decode_upload_bytes(&signed).unwrap(), bytes);
        assert_eq!(decode_upload_bytes(&v(&signed.to_string())).unwrap(), bytes);
        assert_eq!(read_detail_zip(&decode_upload_bytes(&signed).unwrap(), &Limits::default()).unwrap().len(), 1);
        // Known vectors and refusals.
        assert_eq!(decode_upload_bytes(&v("Zm9vYmE=")).unwrap(), b"fooba");
        assert_eq!(decode_upload_bytes(&v("Zm9vYg")).unwrap(), b"foob");
        assert!(decode_upload_bytes(&v("Zm9v*")).unwrap_err().contains("第 5 个字符"));
        assert!(decode_upload_bytes(&v("Zm9vY")).is_err());
        assert!(decode_upload_bytes(&v("Zm==9v")).is_err());
        assert!(decode_upload_bytes(&v("")).unwrap_err().contains("为空"));
        assert!(decode_upload_bytes(&serde_json::json!([1, 256])).unwrap_err().contains("第 2 个元素"));
        assert!(decode_upload_bytes(&serde_json::json!([1, 2.5])).is_err());
        assert!(decode_upload_bytes(&serde_json::json!({"a": 1})).unwrap_err().contains("对象"));
        assert!(decode_upload_bytes(&serde_json::Value::Null).is_err());
    }

    fn standard_base64(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in data.chunks(3) {
            let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(A[(n >> (18 - 6 * k)) as usize & 63] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}
