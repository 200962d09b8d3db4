//! Tables as officials exchange them: CSV (UTF-8, optional BOM) or XLSX (first sheet, header in row 1),
//! read row by row with Chinese headers mapped to columns, whatever their order. Also the writers of
//! reports and templates (XLSX with ID numbers as text, and CSV).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use calamine::{Data, Reader};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("无法打开 {file}：{reason}")]
    Open { file: String, reason: String },
    #[error("{file} 缺少列：{columns}")]
    MissingColumns { file: String, columns: String },
    #[error("{file} 是空文件（没有表头）")]
    Empty { file: String },
    #[error("{file} 第 {row} 行无法读取：{reason}")]
    Row { file: String, row: u64, reason: String },
    #[error("写出 {file} 失败：{reason}")]
    Write { file: String, reason: String },
    /// Beyond a configured bound ([`ReadLimits`]): the file is refused whole, nothing is imported.
    #[error("{file} 超出导入上限：{what}（{limit}）；请拆分文件后分批导入")]
    TooLarge { file: String, what: String, limit: String },
}

/// Bounds on a table read from outside: an untrusted file must not take unbounded memory or time.
#[derive(Clone, Debug)]
pub struct ReadLimits {
    /// Data rows (the header not counted).
    pub max_rows: u64,
    /// Columns of any row (a cell beyond is refused, not silently dropped).
    pub max_cols: u32,
    /// Characters of one cell (Excel's own limit is 32,767).
    pub max_cell_chars: usize,
    /// XLSX: the uncompressed size of all parts of the workbook together, as declared by the archive
    /// (a few kilobytes of zip can declare gigabytes).
    pub max_uncompressed_bytes: u64,
}

impl Default for ReadLimits {
    /// For files on the server's own disk (`baozhang import`): a province's roster fits.
    fn default() -> ReadLimits {
        ReadLimits { max_rows: 50_000_000, max_cols: 512, max_cell_chars: 32_767, max_uncompressed_bytes: 8 << 30 }
    }
}

impl ReadLimits {
    /// For uploads from the browser (the workbench's 名单导入): a county's roster fits.
    pub fn upload() -> ReadLimits {
        ReadLimits { max_rows: 2_000_000, max_cols: 256, max_cell_chars: 32_767, max_uncompressed_bytes: 1 << 30 }
    }
}

enum Source {
    Csv(Box<csv::Reader<Box<dyn Read + Send>>>, csv::StringRecord),
    /// XLSX is streamed cell by cell by a reader thread of its own (calamine's cell reader borrows the
    /// workbook); rows arrive through a small bounded channel, so memory stays one row deep.
    Xlsx(std::sync::mpsc::Receiver<Result<(u64, Vec<String>), TableError>>),
}

/// A table being read: header positions by name, then rows.
pub struct TableReader {
    file: String,
    src: Source,
    header: Vec<String>,
    cols: HashMap<String, usize>,
    /// 1-based row number of the row last returned (the header is row 1).
    row: u64,
    limits: ReadLimits,
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        // Excel keeps numbers as binary doubles; the shortest representation that round-trips is what
        // the official typed (money is then parsed exactly from that text; ID numbers must be text).
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else if f.abs() >= 1e15 {
                // Beyond a double's exact digits (an ID number Excel stored as a number): shown as Excel
                // shows it, 6.20422198001011E+17, so the reader can say the digits are lost.
                let e = format!("{f:E}");
                match e.split_once('E') {
                    Some((m, x)) if !x.starts_with('-') => format!("{m}E+{x}"),
                    _ => e,
                }
            } else {
                format!("{f}")
            }
        }
        Data::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Data::DateTime(dt) => dt.as_datetime().map(|t| t.date().to_string()).unwrap_or_else(|| dt.to_string()),
        Data::DateTimeIso(s) => s.chars().take(10).collect(),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#ERR {e:?}"),
    }
}

/// Column letters of a 0-based column index (0 → A, 26 → AA).
fn column_letters(mut c: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Refuses a workbook whose parts declare more uncompressed bytes than allowed (a zip bomb), before
/// calamine inflates anything.
fn check_archive(path: &Path, file: &str, limits: &ReadLimits) -> Result<(), TableError> {
    let f = std::fs::File::open(path).map_err(|e| TableError::Open { file: file.to_string(), reason: e.to_string() })?;
    check_archive_of(std::io::BufReader::new(f), file, limits)
}

fn check_archive_of<R: Read + std::io::Seek>(r: R, file: &str, limits: &ReadLimits) -> Result<(), TableError> {
    let open_err = |reason: String| TableError::Open { file: file.to_string(), reason };
    // The zip library's reason is for the log; the clerk is told what the file is not.
    let bad_zip = |e: zip::result::ZipError| {
        tracing::info!(file, error = %e, "not a zip archive");
        open_err("不是有效的 XLSX 文件（文件已损坏，或不是 Excel 保存的 .xlsx）".to_string())
    };
    let mut zip = zip::ZipArchive::new(r).map_err(bad_zip)?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(bad_zip)?;
        total = total.saturating_add(entry.size());
    }
    if total > limits.max_uncompressed_bytes {
        return Err(TableError::TooLarge {
            file: file.to_string(),
            what: format!("解压后 {} MB", total >> 20),
            limit: format!("{} MB", limits.max_uncompressed_bytes >> 20),
        });
    }
    Ok(())
}

/// Streams the first sheet's rows (header included) into `tx`, each with its 1-based row number. Stops
/// at the first cell beyond the limits, sending the error.
fn stream_xlsx(path: &Path, file: &str, limits: &ReadLimits, tx: &std::sync::mpsc::SyncSender<Result<(u64, Vec<String>), TableError>>) {
    let open_err = |reason: String| TableError::Open { file: file.to_string(), reason };
    let send = |r| tx.send(r).is_ok();
    let mut wb: calamine::Xlsx<std::io::BufReader<std::fs::File>> = match calamine::open_workbook(path) {
        Ok(w) => w,
        Err(e) => {
            send(Err(open_err(e.to_string())));
            return;
        }
    };
    let Some(name) = wb.sheet_names().first().cloned() else {
        send(Err(open_err("工作簿没有工作表".into())));
        return;
    };
    let mut cells = match wb.worksheet_cells_reader(&name) {
        Ok(c) => c,
        Err(e) => {
            send(Err(open_err(e.to_string())));
            return;
        }
    };
    let mut current: Option<(u32, Vec<String>)> = None;
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                let row = current.as_ref().map_or(1, |(r, _)| u64::from(*r) + 1);
                send(Err(TableError::Row { file: file.to_string(), row, reason: e.to_string() }));
                return;
            }
        };
        let (r, c) = cell.get_position();
        let text = cell_text(&Data::from(cell.get_value().clone()));
        if text.is_empty() {
            continue;
        }
        let beyond = if c >= limits.max_cols {
            Some(TableError::TooLarge {
                file: file.to_string(),
                what: format!("第 {} 行 {} 列有内容", u64::from(r) + 1, column_letters(c)),
                limit: format!("最多 {} 列", limits.max_cols),
            })
        } else if u64::from(r) > limits.max_rows {
            Some(TableError::TooLarge {
                file: file.to_string(),
                what: format!("第 {} 行有内容", u64::from(r) + 1),
                limit: format!("最多 {} 行数据", limits.max_rows),
            })
        } else if text.chars().count() > limits.max_cell_chars {
            Some(TableError::Row {
                file: file.to_string(),
                row: u64::from(r) + 1,
                reason: format!("{} 列内容超过 {} 个字符", column_letters(c), limits.max_cell_chars),
            })
        } else {
            None
        };
        if let Some(e) = beyond {
            // The rows before it first, in order (the reader stops at the error either way).
            if let Some((cr, row)) = current.take() {
                if u64::from(cr) != u64::from(r) && !send(Ok((u64::from(cr) + 1, row))) {
                    return;
                }
            }
            send(Err(e));
            return;
        }
        match &mut current {
            Some((cr, row)) if *cr == r => {
                if row.len() <= c as usize {
                    row.resize(c as usize + 1, String::new());
                }
                row[c as usize] = text;
            }
            _ => {
                if let Some((cr, row)) = current.take() {
                    if !send(Ok((u64::from(cr) + 1, row))) {
                        return;
                    }
                }
                let mut row = vec![String::new(); c as usize + 1];
                row[c as usize] = text;
                current = Some((r, row));
            }
        }
    }
    if let Some((cr, row)) = current {
        send(Ok((u64::from(cr) + 1, row)));
    }
}

/// The non-empty cells of one sheet of a small workbook held in memory (a filled-in form), by 0-based
/// (row, column): the sheet named `sheet`, else the first. Bounded like every upload: the archive's
/// declared uncompressed size is checked before anything is inflated; cells are streamed, and the first
/// one beyond `max_rows` × `max_cols` or longer than `max_cell_chars` refuses the file.
pub fn read_cells(
    bytes: &[u8],
    file: &str,
    sheet: &str,
    limits: &ReadLimits,
) -> Result<std::collections::BTreeMap<(u32, u32), String>, TableError> {
    let open_err = |reason: &str| TableError::Open { file: file.to_string(), reason: reason.to_string() };
    check_archive_of(std::io::Cursor::new(bytes), file, limits)?;
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).map_err(|e| {
        tracing::info!(file, error = %e, "workbook refused");
        open_err("不是有效的 Excel（.xlsx）文件")
    })?;
    let names = wb.sheet_names();
    let name = names.iter().find(|n| n.as_str() == sheet).or_else(|| names.first()).cloned().ok_or_else(|| open_err("文件中没有工作表"))?;
    let mut cells = wb.worksheet_cells_reader(&name).map_err(|e| {
        tracing::info!(file, error = %e, "sheet refused");
        open_err("工作表无法读取")
    })?;
    let mut out = std::collections::BTreeMap::new();
    while let Some(cell) = cells.next_cell().map_err(|e| {
        tracing::info!(file, error = %e, "sheet cell refused");
        open_err("工作表内容无法读取")
    })? {
        let (r, c) = cell.get_position();
        let text = cell_text(&Data::from(cell.get_value().clone()));
        if text.is_empty() {
            continue;
        }
        if c >= limits.max_cols || u64::from(r) >= limits.max_rows {
            return Err(TableError::TooLarge {
                file: file.to_string(),
                what: format!("{}{} 单元格有内容", column_letters(c), u64::from(r) + 1),
                limit: format!("最多 {} 行 × {} 列", limits.max_rows, limits.max_cols),
            });
        }
        if text.chars().count() > limits.max_cell_chars {
            return Err(TableError::Row {
                file: file.to_string(),
                row: u64::from(r) + 1,
                reason: format!("{} 列内容超过 {} 个字符", column_letters(c), limits.max_cell_chars),
            });
        }
        out.insert((r, c), text);
    }
    Ok(out)
}

impl TableReader {
    /// Opens a table with the limits for files on the server's own disk.
    pub fn open(path: &Path) -> Result<TableReader, TableError> {
        TableReader::open_with(path, &ReadLimits::default())
    }

    /// Opens a table, refusing it (with the file and the limit named) once it goes beyond `limits`.
    pub fn open_with(path: &Path, limits: &ReadLimits) -> Result<TableReader, TableError> {
        let file = path.display().to_string();
        let open_err = |reason: String| TableError::Open { file: file.clone(), reason };
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        let (src, header) = if ext == "xls" {
            // The old binary format is read whole into a dense grid by the only reader available; a
            // crafted file could claim a huge one. Officials save as .xlsx or CSV in one step.
            return Err(open_err("不支持旧版 Excel 97-2003（.xls）文件，请在 Excel 中“另存为” .xlsx 或 CSV 后再导入".into()));
        } else if ext == "xlsx" || ext == "xlsm" {
            check_archive(path, &file, limits)?;
            let (tx, rx) = std::sync::mpsc::sync_channel(256);
            let (p, f, l) = (path.to_path_buf(), file.clone(), limits.clone());
            std::thread::Builder::new()
                .name("bz-xlsx".into())
                .spawn(move || stream_xlsx(&p, &f, &l, &tx))
                .map_err(|e| open_err(e.to_string()))?;
            // The header is the first row with content (as calamine's ranges start there).
            let header = match rx.recv() {
                Ok(Ok((_, h))) => h,
                Err(_) => return Err(TableError::Empty { file }),
                Ok(Err(e)) => return Err(e),
            };
            (Source::Xlsx(rx), header)
        } else {
            let f = std::fs::File::open(path).map_err(|e| open_err(e.to_string()))?;
            let inner: Box<dyn Read + Send> = Box::new(std::io::BufReader::with_capacity(1 << 20, f));
            let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(inner);
            let mut h = csv::StringRecord::new();
            let ok = rdr.read_record(&mut h).map_err(|e| open_err(format!("不是有效的 UTF-8 CSV：{e}")))?;
            if !ok {
                return Err(TableError::Empty { file });
            }
            let header: Vec<String> = h.iter().map(|s| s.trim().trim_start_matches('\u{feff}').to_string()).collect();
            if header.len() > limits.max_cols as usize {
                return Err(TableError::TooLarge {
                    file,
                    what: format!("表头 {} 列", header.len()),
                    limit: format!("最多 {} 列", limits.max_cols),
                });
            }
            (Source::Csv(Box::new(rdr), csv::StringRecord::new()), header)
        };
        let cols = header.iter().enumerate().filter(|(_, h)| !h.is_empty()).map(|(i, h)| (h.clone(), i)).collect();
        Ok(TableReader { file, src, header, cols, row: 1, limits: limits.clone() })
    }

    pub fn file(&self) -> &str {
        &self.file
    }
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Errors unless every column in `required` is in the header.
    pub fn require(&self, required: &[&str]) -> Result<(), TableError> {
        let missing: Vec<&str> = required.iter().filter(|c| !self.cols.contains_key(**c)).copied().collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(TableError::MissingColumns { file: self.file.clone(), columns: missing.join("、") })
        }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.cols.get(name).copied()
    }

    /// The next non-blank row into `out` (cells trimmed); `Ok(None)` at the end, else its row number.
    pub fn next_row(&mut self, out: &mut Vec<String>) -> Result<Option<u64>, TableError> {
        loop {
            out.clear();
            match &mut self.src {
                Source::Csv(rdr, rec) => {
                    match rdr.read_record(rec) {
                        Ok(false) => return Ok(None),
                        Ok(true) => {}
                        Err(e) => {
                            self.row += 1;
                            return Err(TableError::Row { file: self.file.clone(), row: self.row, reason: e.to_string() });
                        }
                    }
                    // The csv crate's line numbers drift on CRLF; rows are what officials count anyway.
                    self.row += 1;
                    if self.row - 1 > self.limits.max_rows {
                        return Err(TableError::TooLarge {
                            file: self.file.clone(),
                            what: format!("第 {} 行有内容", self.row),
                            limit: format!("最多 {} 行数据", self.limits.max_rows),
                        });
                    }
                    if rec.len() > self.limits.max_cols as usize {
                        return Err(TableError::TooLarge {
                            file: self.file.clone(),
                            what: format!("第 {} 行有 {} 列", self.row, rec.len()),
                            limit: format!("最多 {} 列", self.limits.max_cols),
                        });
                    }
                    if let Some(i) =
                        rec.iter().position(|c| c.len() > self.limits.max_cell_chars * 4 || c.chars().count() > self.limits.max_cell_chars)
                    {
                        return Err(TableError::Row {
                            file: self.file.clone(),
                            row: self.row,
                            reason: format!("第 {} 列内容超过 {} 个字符", i + 1, self.limits.max_cell_chars),
                        });
                    }
                    out.extend(rec.iter().map(|s| s.trim().to_string()));
                }
                Source::Xlsx(rx) => match rx.recv() {
                    Err(_) => return Ok(None),
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok((n, r))) => {
                        self.row = n;
                        out.extend(r);
                    }
                },
            }
            if out.iter().any(|c| !c.is_empty()) {
                return Ok(Some(self.row));
            }
        }
    }
}

/// A worksheet to write: name, header, rows.
pub type Sheet = (String, Vec<String>, Vec<Vec<String>>);

/// Writes an XLSX with one header row and rows of text (ID numbers stay text: no float damage).
pub fn write_xlsx(path: &Path, sheets: &[Sheet]) -> Result<(), TableError> {
    use rust_xlsxwriter::{Format, Workbook};
    let werr = |e: rust_xlsxwriter::XlsxError| TableError::Write { file: path.display().to_string(), reason: e.to_string() };
    let mut wb = Workbook::new();
    let head = Format::new().set_bold().set_background_color(rust_xlsxwriter::Color::RGB(0xDDEBF7));
    let text = Format::new().set_num_format("@");
    for (name, header, rows) in sheets {
        let ws = wb.add_worksheet();
        // Excel sheet names: at most 31 characters, none of []:*?/\
        let clean: String = name.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
        ws.set_name(if clean.is_empty() { "Sheet1" } else { &clean }).map_err(werr)?;
        for (c, h) in header.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, &head).map_err(werr)?;
            let w = h.chars().map(|ch| if ch.is_ascii() { 1.0 } else { 2.0 }).sum::<f64>().max(8.0);
            ws.set_column_width(c as u16, w + 2.0).map_err(werr)?;
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                ws.write_string_with_format(r as u32 + 1, c as u16, v, &text).map_err(werr)?;
            }
        }
        ws.set_freeze_panes(1, 0).map_err(werr)?;
    }
    wb.save(path).map_err(werr)
}

/// Writes a CSV (UTF-8 with BOM, so Excel opens it as UTF-8).
pub fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<(), TableError> {
    let werr = |e: String| TableError::Write { file: path.display().to_string(), reason: e };
    let mut buf: Vec<u8> = "\u{feff}".as_bytes().to_vec();
    {
        // A worksheet's row ends at its last filled cell: short rows are padded to the header, and a row
        // with cells beyond the header keeps them.
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(&mut buf);
        w.write_record(header).map_err(|e| werr(e.to_string()))?;
        let blanks = vec![String::new(); header.len()];
        for r in rows {
            let pad = header.len().saturating_sub(r.len());
            w.write_record(r.iter().chain(&blanks[..pad])).map_err(|e| werr(e.to_string()))?;
        }
        w.flush().map_err(|e| werr(e.to_string()))?;
    }
    std::fs::write(path, buf).map_err(|e| werr(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_report_takes_rows_shorter_and_longer_than_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let rows = vec![vec!["1".to_string()], vec!["2".into(), "b".into(), "c".into(), "extra".into()]];
        write_csv(&path, &["a".to_string(), "b".into(), "c".into()], &rows).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "\u{feff}a,b,c\n1,,\n2,b,c,extra\n");
    }

    #[test]
    fn an_id_number_excel_stored_as_a_number_reads_as_excel_shows_it() {
        let t = cell_text(&Data::Float(620_422_198_001_011_230.0));
        assert!(t.starts_with("6.20422198001011") && t.ends_with("E+17"), "{t}");
        assert!(crate::normalise::id_number(&t).is_err_and(|e| e == crate::normalise::IdHint::SavedAsNumber), "{t}");
        assert_eq!(cell_text(&Data::Float(1234.5)), "1234.5");
        assert_eq!(cell_text(&Data::Float(620_422.0)), "620422");
    }

    fn rows_of(r: &mut TableReader) -> Vec<(u64, Vec<String>)> {
        let mut out = Vec::new();
        let mut row = Vec::new();
        while let Some(n) = r.next_row(&mut row).expect("a row") {
            out.push((n, row.clone()));
        }
        out
    }

    #[test]
    fn an_xlsx_streams_its_rows_with_their_numbers_and_skips_blank_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.xlsx");
        let rows = vec![vec!["1".to_string(), "甲".into()], vec![String::new(), String::new()], vec!["3".into(), "丙".into()]];
        write_xlsx(&p, &[("名单".into(), vec!["序号".into(), "姓名".into()], rows)]).unwrap();
        let mut r = TableReader::open(&p).unwrap();
        assert_eq!(r.header(), ["序号", "姓名"]);
        assert_eq!(r.column("姓名"), Some(1));
        assert_eq!(rows_of(&mut r), vec![(2, vec!["1".to_string(), "甲".into()]), (4, vec!["3".to_string(), "丙".into()])]);
    }

    #[test]
    fn a_cell_beyond_the_limits_refuses_the_sheet_naming_the_file_cell_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("far.xlsx");
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "户编号").unwrap();
        ws.write_string(1, 0, "H1").unwrap();
        ws.write_string(1_048_575, 16_383, "x").unwrap();
        wb.save(&p).unwrap();
        let mut r = TableReader::open_with(&p, &ReadLimits::upload()).unwrap();
        let mut row = Vec::new();
        assert_eq!(r.next_row(&mut row).unwrap(), Some(2));
        let e = r.next_row(&mut row).unwrap_err().to_string();
        assert!(e.contains("far.xlsx") && e.contains("XFD") && e.contains("最多 256 列"), "{e}");
        // Rows too: the same cell in column A of the last row.
        let limits = ReadLimits { max_rows: 10, ..ReadLimits::upload() };
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "户编号").unwrap();
        ws.write_string(1_048_575, 0, "x").unwrap();
        wb.save(&p).unwrap();
        let mut r = TableReader::open_with(&p, &limits).unwrap();
        let e = r.next_row(&mut row).unwrap_err().to_string();
        assert!(e.contains("第 1048576 行") && e.contains("最多 10 行数据"), "{e}");
    }

    #[test]
    fn a_workbook_declaring_more_than_the_uncompressed_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.xlsx");
        let rows: Vec<Vec<String>> = (0..2_000).map(|i| vec![format!("{i:08}"), "x".repeat(50)]).collect();
        write_xlsx(&p, &[("s".into(), vec!["a".into(), "b".into()], rows)]).unwrap();
        let limits = ReadLimits { max_uncompressed_bytes: 64 * 1024, ..ReadLimits::upload() };
        let e = TableReader::open_with(&p, &limits).err().expect("refused").to_string();
        assert!(e.contains("big.xlsx") && e.contains("解压后"), "{e}");
    }

    #[test]
    fn a_csv_row_beyond_the_limits_is_refused_with_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, format!("a,b\n1,2\n3,{}\n", "x".repeat(40_000))).unwrap();
        let mut r = TableReader::open(&p).unwrap();
        let mut row = Vec::new();
        assert_eq!(r.next_row(&mut row).unwrap(), Some(2));
        let e = r.next_row(&mut row).unwrap_err().to_string();
        assert!(e.contains("第 3 行") && e.contains("32767"), "{e}");
        let wide = (0..600).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        std::fs::write(&p, format!("{wide}\n")).unwrap();
        assert!(TableReader::open(&p).err().expect("refused").to_string().contains("最多 512 列"));
        // .xls is refused with what to do.
        let x = dir.path().join("old.xls");
        std::fs::write(&x, b"\xd0\xcf\x11\xe0").unwrap();
        assert!(TableReader::open(&x).err().expect("refused").to_string().contains("另存为"));
    }
}
