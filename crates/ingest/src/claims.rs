//! The claims CSV of `baozhang settle` (the contract in README "settle"): header row, columns in any
//! order, amounts in yuan. Streams with one reused record; nothing is allocated per row but the
//! strings the caller keeps.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::rc::Rc;

use baozhang_core::claim::{check_site, Bill, Claim, Filing, HospGrade, HospLevel, MedType, Place, Site};
use baozhang_core::{Date, Fen, IdentitySet};

pub const CLAIM_COLUMNS: [&str; 19] = [
    "claim_id",
    "psn_no",
    "identities",
    "setl_date",
    "hosp_lv",
    "in_county",
    "med_type",
    "referral_ok",
    "major_disease",
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "dise_codg",
    "hosp_grade",
    "primary_care",
    "place",
    "filing",
];
/// The columns a claims file may leave out: `referral_ok` and `major_disease` then read as 0, `dise_codg`
/// as no diagnosis; `hosp_grade` (national 医院等级 01–11), `primary_care` (0/1), `place` (county,
/// prefecture, province, out_of_province) and `filing` (resident, referral, emergency, unfiled) as not
/// said. Every other column of [`CLAIM_COLUMNS`] is required.
pub const OPTIONAL_CLAIM_COLUMNS: [&str; 7] =
    ["referral_ok", "major_disease", "dise_codg", "hosp_grade", "primary_care", "place", "filing"];
const C_CLAIM_ID: usize = 0;
const C_PSN_NO: usize = 1;
const C_IDENTITIES: usize = 2;
const C_SETL_DATE: usize = 3;
const C_HOSP_LV: usize = 4;
const C_IN_COUNTY: usize = 5;
const C_MED_TYPE: usize = 6;
const C_REFERRAL_OK: usize = 7;
const C_MAJOR_DISEASE: usize = 8;
const C_MEDFEE: usize = 9;
const C_FULAMT: usize = 10;
const C_OVERLMT: usize = 11;
const C_PRESELF: usize = 12;
const C_INSCP: usize = 13;
/// Optional: the main diagnosis (ICD-10), for the major-disease ledger.
const C_DISE_CODG: usize = 14;
const C_HOSP_GRADE: usize = 15;
const C_PRIMARY_CARE: usize = 16;
const C_PLACE: usize = 17;
const C_FILING: usize = 18;

/// A problem with one row: which line, which field, why (Chinese, for the person fixing the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("第 {line} 行，字段 {field}：{reason}")]
pub struct RowError {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("表头缺少列：{0}")]
    MissingColumns(String),
    #[error("表头中列“{0}”重复")]
    DuplicateColumn(String),
    #[error("文件为空（没有表头）")]
    Empty,
    #[error("读取失败：{0}")]
    Csv(#[from] csv::Error),
}

/// Where the newlines of the stream are, so a record's line can be computed from its byte offset.
/// (The `csv` crate's own line numbers lag on CRLF files and skip blank lines — rust-csv#395.)
#[derive(Default)]
struct NewlineLog {
    /// Bytes read so far.
    pos: u64,
    /// Offsets of `\r` / `\n` bytes not yet passed (bounded by the csv reader's read-ahead), and whether
    /// each is a `\n`.
    pending: VecDeque<(u64, bool)>,
    /// `\n` bytes passed so far.
    passed: u64,
}

impl NewlineLog {
    /// 1-based line of the record the csv reader says starts at `offset` (offsets must not decrease).
    /// The reader's offset can point into the terminators before the record (the `\n` of a CRLF, blank
    /// lines), so a run of `\r`/`\n` right at the offset is skipped first.
    fn line_of(&mut self, mut offset: u64) -> u64 {
        loop {
            match self.pending.front() {
                Some(&(p, nl)) if p <= offset => {
                    self.pending.pop_front();
                    self.passed += u64::from(nl);
                    if p == offset {
                        offset += 1;
                    }
                }
                _ => break,
            }
        }
        self.passed + 1
    }
}

struct Tracked<R> {
    inner: R,
    log: Rc<RefCell<NewlineLog>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut log = self.log.borrow_mut();
        let base = log.pos;
        log.pending.extend(memchr::memchr2_iter(b'\n', b'\r', &buf[..n]).map(|i| (base + i as u64, buf[i] == b'\n')));
        log.pos += n as u64;
        Ok(n)
    }
}

/// One parsed row. Reused between rows by [`ClaimReader::next_row`].
#[derive(Debug, Clone, Default)]
pub struct ClaimRow {
    pub line: u64,
    pub claim_id: String,
    pub psn_no: String,
    pub identities: IdentitySet,
    pub claim: Option<Claim>,
    /// The main diagnosis (ICD-10, upper case), empty when the file has none.
    pub dise_codg: String,
}

pub struct ClaimReader<R: Read> {
    rdr: csv::Reader<Tracked<R>>,
    lines: Rc<RefCell<NewlineLog>>,
    /// Position in the record of each of `CLAIM_COLUMNS`.
    cols: [usize; CLAIM_COLUMNS.len()],
    record: csv::ByteRecord,
    header: csv::ByteRecord,
}

fn flag(b: &[u8], field: &str) -> Result<bool, String> {
    match b {
        b"1" | b"true" | b"TRUE" | b"\xe6\x98\xaf" => Ok(true),          // 是
        b"0" | b"false" | b"FALSE" | b"\xe5\x90\xa6" | b"" => Ok(false), // 否
        _ => Err(format!("{field} 应为 0 或 1，而不是“{}”", String::from_utf8_lossy(b))),
    }
}

impl<R: Read> ClaimReader<R> {
    pub fn new(inner: R) -> Result<Self, ReadError> {
        let lines = Rc::new(RefCell::new(NewlineLog::default()));
        let inner = Tracked { inner, log: Rc::clone(&lines) };
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(1 << 16).from_reader(inner);
        let mut header = csv::ByteRecord::new();
        if !rdr.read_byte_record(&mut header)? {
            return Err(ReadError::Empty);
        }
        let mut cols = [usize::MAX; CLAIM_COLUMNS.len()];
        for (pos, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw).unwrap_or("").trim().trim_start_matches('\u{feff}');
            if let Some(k) = CLAIM_COLUMNS.iter().position(|c| *c == name) {
                if cols[k] != usize::MAX {
                    return Err(ReadError::DuplicateColumn(name.to_string()));
                }
                cols[k] = pos;
            }
        }
        // `referral_ok` and `major_disease` default to 0 when absent, `dise_codg` to none; everything else is required —
        // `identities` too: without it every poor person would silently settle as an ordinary resident.
        let missing: Vec<&str> = CLAIM_COLUMNS
            .iter()
            .enumerate()
            .filter(|(k, c)| cols[*k] == usize::MAX && !OPTIONAL_CLAIM_COLUMNS.contains(c))
            .map(|(_, c)| *c)
            .collect();
        if !missing.is_empty() {
            return Err(ReadError::MissingColumns(missing.join(", ")));
        }
        Ok(ClaimReader { rdr, lines, cols, record: csv::ByteRecord::new(), header })
    }

    pub fn header(&self) -> &csv::ByteRecord {
        &self.header
    }
    /// The raw fields of the row last read (for reject reports).
    pub fn raw_record(&self) -> &csv::ByteRecord {
        &self.record
    }

    /// Reads the next row into `row`. `Ok(false)` at the end; `Err` for a row that cannot be settled
    /// (the row's line and the first bad field are named; `row.claim_id` is still filled if present).
    pub fn next_row(&mut self, row: &mut ClaimRow) -> Result<bool, RowError> {
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| self.lines.borrow_mut().line_of(p.byte()));
                return Err(RowError { line, field: "(行)".into(), reason: format!("CSV 格式错误：{e}") });
            }
        }
        row.line = self.record.position().map_or(0, |p| self.lines.borrow_mut().line_of(p.byte()));
        row.claim = None;
        let line = row.line;
        if self.record.len() != self.header.len() {
            return Err(RowError {
                line,
                field: "(行)".into(),
                reason: format!("本行有 {} 个字段，表头有 {} 列（可能有未加引号的逗号或缺少字段）", self.record.len(), self.header.len()),
            });
        }
        let rec = &self.record;
        let get = |k: usize| -> &[u8] {
            let c = self.cols[k];
            if c == usize::MAX {
                b""
            } else {
                rec.get(c).unwrap_or(b"")
            }
        };
        let err = |k: usize, reason: String| RowError { line, field: CLAIM_COLUMNS[k].to_string(), reason };
        let text = |k: usize| -> Result<&str, RowError> {
            std::str::from_utf8(get(k)).map(str::trim).map_err(|_| err(k, "不是有效的 UTF-8 文本".into()))
        };

        row.claim_id.clear();
        row.claim_id.push_str(text(C_CLAIM_ID)?);
        if row.claim_id.is_empty() {
            return Err(err(C_CLAIM_ID, "必填".into()));
        }
        row.psn_no.clear();
        row.psn_no.push_str(text(C_PSN_NO)?);
        if row.psn_no.is_empty() {
            return Err(err(C_PSN_NO, "必填".into()));
        }
        row.identities = IdentitySet::parse_list(text(C_IDENTITIES)?).map_err(|e| err(C_IDENTITIES, e))?;
        let setl_date = Date::parse(text(C_SETL_DATE)?).map_err(|e| err(C_SETL_DATE, e.to_string()))?;
        let hosp_lv = HospLevel::parse(text(C_HOSP_LV)?).map_err(|e| err(C_HOSP_LV, e))?;
        let in_county = flag(get(C_IN_COUNTY), "in_county").map_err(|e| err(C_IN_COUNTY, e))?;
        let med_type = MedType::parse(text(C_MED_TYPE)?).map_err(|e| err(C_MED_TYPE, e))?;
        let referral_ok = flag(get(C_REFERRAL_OK), "referral_ok").map_err(|e| err(C_REFERRAL_OK, e))?;
        let major_disease = flag(get(C_MAJOR_DISEASE), "major_disease").map_err(|e| err(C_MAJOR_DISEASE, e))?;
        let money = |k: usize| -> Result<Fen, RowError> { Fen::parse_yuan(text(k)?).map_err(|e| err(k, e.to_string())) };
        let total = money(C_MEDFEE)?;
        let ful = money(C_FULAMT)?;
        let over = money(C_OVERLMT)?;
        let pre = money(C_PRESELF)?;
        let inscp = money(C_INSCP)?;
        let bill = Bill::new(total, ful, over, pre, inscp).map_err(|e| err(C_MEDFEE, e.to_string()))?;
        let dise = text(C_DISE_CODG)?;
        if !dise.is_empty() && !baozhang_core::programmes::valid_icd(&dise.to_ascii_uppercase()) {
            return Err(err(C_DISE_CODG, format!("诊断编码“{dise}”不是 ICD-10 编码（如 C16.9）")));
        }
        row.dise_codg.clear();
        row.dise_codg.push_str(&dise.to_ascii_uppercase());
        let site = Site {
            grade: HospGrade::parse(text(C_HOSP_GRADE)?).map_err(|e| err(C_HOSP_GRADE, e))?,
            primary_care: flag(get(C_PRIMARY_CARE), "primary_care").map_err(|e| err(C_PRIMARY_CARE, e))?,
            place: Place::parse(text(C_PLACE)?).map_err(|e| err(C_PLACE, e))?,
            filing: Filing::parse(text(C_FILING)?).map_err(|e| err(C_FILING, e))?,
        };
        check_site(hosp_lv, in_county, &site).map_err(|(f, e)| RowError { line, field: f.to_string(), reason: e })?;
        row.claim = Some(Claim { site, setl_date, med_type, hosp_lv, in_county, referral_ok, major_disease, bill });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "psn_no,claim_id,setl_date,hosp_lv,in_county,med_type,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt,identities\n";

    #[test]
    fn reads_columns_in_any_order() {
        let data = format!("{HEADER}P1,C1,2018-05-01,2,1,21,1000.50,100,0,0.50,900,建档立卡\n");
        let mut r = ClaimReader::new(data.as_bytes()).unwrap();
        let mut row = ClaimRow::default();
        assert!(r.next_row(&mut row).unwrap());
        assert_eq!(row.claim_id, "C1");
        assert_eq!(row.line, 2);
        let c = row.claim.unwrap();
        assert_eq!(c.bill.total(), Fen(100050));
        assert!(!c.referral_ok);
        assert!(!r.next_row(&mut row).unwrap());
    }

    #[test]
    fn names_the_line_and_field_of_a_bad_row() {
        let data = format!("{HEADER}P1,C1,2018-05-01,2,1,21,1000,100,0,0,900,\nP1,C2,2018-02-30,2,1,21,1000,100,0,0,900,\n");
        let mut r = ClaimReader::new(data.as_bytes()).unwrap();
        let mut row = ClaimRow::default();
        assert!(r.next_row(&mut row).unwrap());
        let e = r.next_row(&mut row).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "setl_date"));
        let data = format!("{HEADER}P1,C1,2018-05-01,2,1,21,1000,100,0,0,899.99,\n");
        let e = ClaimReader::new(data.as_bytes()).unwrap().next_row(&mut row).unwrap_err();
        assert_eq!(e.field, "medfee_sumamt");
        assert!(e.reason.contains("不等于医疗费总额"), "{}", e.reason);
    }

    #[test]
    fn grade_place_and_filing_are_read_and_checked() {
        let header = "claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt,hosp_grade,primary_care,place,filing\n";
        let data =
            format!("{header}C1,P1,,2025-05-01,3,0,21,1000,0,0,0,1000,02,0,省外,未备案\nC2,P1,,2025-05-01,1,1,11,100,0,0,0,100,,1,,\n");
        let mut r = ClaimReader::new(data.as_bytes()).unwrap();
        let mut row = ClaimRow::default();
        assert!(r.next_row(&mut row).unwrap());
        let c = row.claim.unwrap();
        assert_eq!((c.site.grade.name_zh(), c.site.place, c.site.filing), ("三级甲等", Place::OutOfProvince, Filing::Unfiled));
        assert!(r.next_row(&mut row).unwrap());
        let c = row.claim.unwrap();
        assert_eq!((c.med_type, c.site.primary_care, c.place()), (MedType::GeneralOutpatient, true, Place::County));
        // A grade of another level, a place that contradicts in_county, a filing inside the county.
        for (bad, field) in [
            ("3,0,21,1000,0,0,0,1000,05,0,,", "hosp_grade"),
            ("3,1,21,1000,0,0,0,1000,,0,省外,", "place"),
            ("1,1,21,1000,0,0,0,1000,,0,,未备案", "filing"),
        ] {
            let data = format!("{header}C1,P1,,2025-05-01,{bad}\n");
            let e = ClaimReader::new(data.as_bytes()).unwrap().next_row(&mut row).unwrap_err();
            assert_eq!(e.field, field, "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_column_is_named() {
        let e = ClaimReader::new("claim_id,psn_no\n".as_bytes()).err().unwrap();
        assert!(e.to_string().contains("setl_date"));
    }
}
