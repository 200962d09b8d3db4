//! `baozhang settle` as a library: stream a claims CSV through the engine in file order, keeping
//! accumulators per (person, calendar year), and write one output row per claim.

use std::io::{Read, Write};

use baozhang_core::engine::{settle_in_place, Accumulators, Settlement};
use baozhang_core::policy::{choose, Fund, Policy, ALL_FUNDS};
use baozhang_core::{Date, Fen};

use crate::claims::{ClaimReader, ClaimRow, ReadError, RowError};
use crate::intern::KeyIndex;
use crate::output::{push_csv_field, push_settlement_csv, push_settlement_jsonl, SETTLEMENT_CSV_HEADER};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(Clone, Copy, Debug)]
pub struct SettleOptions {
    pub format: Format,
    /// Settle the valid rows and report the rejected ones instead of stopping at the first.
    pub skip_invalid: bool,
    /// Size of the input if known (0 if not): sizes the tables up front.
    pub size_hint_bytes: u64,
}

/// Totals of a run, for the summary line and for checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettleSummary {
    pub settled: u64,
    pub rejected: u64,
    pub person_years: usize,
    pub medfee_sumamt: Fen,
    pub funds_fen: [i64; 6],
    pub psn_part_amt: Fen,
}

impl SettleSummary {
    pub fn fund(&self, f: Fund) -> Fen {
        Fen(self.funds_fen[f.index()])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettleRunError {
    #[error("{0}")]
    Header(#[from] ReadError),
    #[error("{0}")]
    Row(RowError),
    #[error("写出失败：{0}")]
    Io(#[from] std::io::Error),
}

/// Which policy settles a claim: one policy (a claim outside its effective dates is refused), or the
/// policy in force on each claim's date for a region, chosen among `list` as the server chooses
/// (`core::policy::choose`).
#[derive(Clone, Copy, Debug)]
pub enum PolicyChoice<'a> {
    One(&'a Policy),
    Region { admdvs: &'a str, list: &'a [Policy] },
}

impl<'a> PolicyChoice<'a> {
    /// The policy for a claim settled on `date`, or why there is none (Chinese, for the row's report).
    pub fn pick(&self, date: Date) -> Result<&'a Policy, String> {
        match *self {
            PolicyChoice::One(p) if p.in_force(date) => Ok(p),
            PolicyChoice::One(p) => Err(format!(
                "结算日期 {date} 不在政策“{}”（{}）的有效期（{}）内；请用当时有效的政策结算，或用 --policy <区划代码> 按日期自动选择",
                p.meta.name,
                p.meta.id,
                p.dates_zh()
            )),
            PolicyChoice::Region { admdvs, list } => choose(list, admdvs, date).ok_or_else(|| {
                let known: Vec<String> =
                    list.iter().map(|p| format!("{}（{}，{}）", p.meta.id, p.meta.region_code, p.dates_zh())).collect();
                format!("区划 {admdvs} 在 {date} 没有生效的政策；可用的政策：{}", known.join("、"))
            }),
        }
    }
}

/// Settles every claim of `input` in order, writing to `out`. With `skip_invalid`, a rejected row is
/// written to `rejected` (line, field, reason, then the row as it was) and the run goes on; without it,
/// the first bad row ends the run with its line and field.
pub fn settle_stream<R: Read, W: Write>(
    policies: PolicyChoice<'_>,
    input: R,
    out: &mut W,
    mut rejected: Option<&mut dyn Write>,
    opts: SettleOptions,
) -> Result<SettleSummary, SettleRunError> {
    let mut reader = ClaimReader::new(input)?;
    let mut sum = SettleSummary::default();
    // Rows expected (≈ 90 bytes a row) so the tables are sized once, not rehashed as they grow.
    let rows = (opts.size_hint_bytes / 90) as usize;
    let mut person_years = KeyIndex::with_capacity(rows / 3, rows / 3 * 12);
    let mut accs: Vec<Accumulators> = Vec::with_capacity(rows / 3);
    // The policy each person-year is settled under (one policy per person-year, as on the server).
    let mut py_policy: Vec<&Policy> = Vec::with_capacity(rows / 3);
    // A claim id settles once per file: a replayed row is refused, never counted twice.
    let mut seen = KeyIndex::with_capacity(rows, rows * 12);
    let mut row = ClaimRow::default();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut key: Vec<u8> = Vec::with_capacity(64);
    let mut s = Settlement::blank();

    if opts.format == Format::Csv {
        buf.extend_from_slice(SETTLEMENT_CSV_HEADER.as_bytes());
    }
    if let Some(rej) = rejected.as_deref_mut() {
        let mut h = b"line,field,reason".to_vec();
        for f in reader.header().iter() {
            h.push(b',');
            push_csv_field(&mut h, &String::from_utf8_lossy(f));
        }
        h.push(b'\n');
        rej.write_all(&h)?;
    }
    loop {
        let res = reader.next_row(&mut row).and_then(|more| {
            if more && !seen.intern(row.claim_id.as_bytes()).1 {
                return Err(RowError {
                    line: row.line,
                    field: "claim_id".into(),
                    reason: format!("结算单号“{}”在文件中重复，不能重复结算", row.claim_id),
                });
            }
            Ok(more)
        });
        // A refused row: reported (with `skip_invalid`) and skipped, or the end of the run.
        macro_rules! reject {
            ($e:expr) => {{
                let e: RowError = $e;
                if !opts.skip_invalid {
                    return Err(SettleRunError::Row(e));
                }
                sum.rejected += 1;
                if let Some(rej) = rejected.as_deref_mut() {
                    let mut line = Vec::with_capacity(256);
                    line.extend_from_slice(e.line.to_string().as_bytes());
                    line.push(b',');
                    push_csv_field(&mut line, &e.field);
                    line.push(b',');
                    push_csv_field(&mut line, &e.reason);
                    for f in reader.raw_record().iter() {
                        line.push(b',');
                        push_csv_field(&mut line, &String::from_utf8_lossy(f));
                    }
                    line.push(b'\n');
                    rej.write_all(&line)?;
                }
                continue;
            }};
        }
        match res {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => reject!(e),
        }
        let claim = row.claim.expect("a parsed row has its claim");
        let policy = match policies.pick(claim.setl_date) {
            Ok(p) => p,
            Err(reason) => reject!(RowError { line: row.line, field: "setl_date".into(), reason }),
        };
        if let Err(n) = policy.accepts(&claim) {
            reject!(RowError { line: row.line, field: n.field.into(), reason: n.reason });
        }
        key.clear();
        key.extend_from_slice(row.psn_no.as_bytes());
        key.extend_from_slice(&claim.year().to_le_bytes());
        let (py, new) = person_years.intern(&key);
        if new {
            accs.push(Accumulators::default());
            py_policy.push(policy);
        } else if !std::ptr::eq(py_policy[py as usize], policy) {
            let had = py_policy[py as usize];
            reject!(RowError {
                line: row.line,
                field: "setl_date".into(),
                reason: format!(
                    "该人员本年度已按政策 {} 结算，本次结算日期适用政策 {}；同一人员同一年度只能按一个政策结算，请由医保局做年度重算",
                    had.meta.id, policy.meta.id
                ),
            });
        }
        settle_in_place(policy, &claim, row.identities, &mut accs[py as usize], &mut s);
        sum.settled += 1;
        sum.medfee_sumamt += s.medfee_sumamt;
        sum.psn_part_amt += s.psn_part_amt;
        for f in ALL_FUNDS {
            sum.funds_fen[f.index()] += s.funds_fen[f.index()];
        }
        match opts.format {
            Format::Csv => push_settlement_csv(&mut buf, &row.claim_id, &row.psn_no, &s),
            Format::Jsonl => push_settlement_jsonl(&mut buf, policy, &row.claim_id, &row.psn_no, &s, &claim.bill),
        }
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    sum.person_years = person_years.len();
    Ok(sum)
}
