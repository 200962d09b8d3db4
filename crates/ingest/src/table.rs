//! Tables as officials exchange them: CSV (UTF-8, optional BOM) or XLSX (first sheet, header in row 1),
//! read row by row with Chinese headers mapped to columns, whatever their order. Also the writers of
//! reports and templates (XLSX with ID numbers as text, and CSV).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use calamine::{open_workbook_auto, Data, Reader};

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
}

enum Source {
    Csv(Box<csv::Reader<Box<dyn Read>>>, csv::StringRecord),
    /// XLSX is read whole by calamine; rows are handed out one by one.
    Xlsx(std::vec::IntoIter<Vec<String>>),
}

/// A table being read: header positions by name, then rows.
pub struct TableReader {
    file: String,
    src: Source,
    header: Vec<String>,
    cols: HashMap<String, usize>,
    /// 1-based row number of the row last returned (the header is row 1).
    row: u64,
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

impl TableReader {
    pub fn open(path: &Path) -> Result<TableReader, TableError> {
        let file = path.display().to_string();
        let open_err = |reason: String| TableError::Open { file: file.clone(), reason };
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        let (src, header) = if ext == "xlsx" || ext == "xls" || ext == "xlsm" {
            let mut wb = open_workbook_auto(path).map_err(|e| open_err(e.to_string()))?;
            let range =
                wb.worksheet_range_at(0).ok_or_else(|| open_err("工作簿没有工作表".into()))?.map_err(|e| open_err(e.to_string()))?;
            let mut rows: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(cell_text).collect()).collect();
            if rows.is_empty() {
                return Err(TableError::Empty { file });
            }
            let header = rows.remove(0);
            (Source::Xlsx(rows.into_iter()), header)
        } else {
            let f = std::fs::File::open(path).map_err(|e| open_err(e.to_string()))?;
            let inner: Box<dyn Read> = Box::new(std::io::BufReader::with_capacity(1 << 20, f));
            let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(inner);
            let mut h = csv::StringRecord::new();
            let ok = rdr.read_record(&mut h).map_err(|e| open_err(format!("不是有效的 UTF-8 CSV：{e}")))?;
            if !ok {
                return Err(TableError::Empty { file });
            }
            let header = h.iter().map(|s| s.trim().trim_start_matches('\u{feff}').to_string()).collect();
            (Source::Csv(Box::new(rdr), csv::StringRecord::new()), header)
        };
        let cols = header.iter().enumerate().filter(|(_, h)| !h.is_empty()).map(|(i, h)| (h.clone(), i)).collect();
        Ok(TableReader { file, src, header, cols, row: 1 })
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
                    out.extend(rec.iter().map(|s| s.trim().to_string()));
                }
                Source::Xlsx(it) => match it.next() {
                    None => return Ok(None),
                    Some(r) => {
                        self.row += 1;
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
        let mut w = csv::Writer::from_writer(&mut buf);
        w.write_record(header).map_err(|e| werr(e.to_string()))?;
        for r in rows {
            w.write_record(r).map_err(|e| werr(e.to_string()))?;
        }
        w.flush().map_err(|e| werr(e.to_string()))?;
    }
    std::fs::write(path, buf).map_err(|e| werr(e.to_string()))
}
