//! Tests beside each policy (issue 16): `policies/tests/<policy id>.toml` holds a policy's
//! hand-computed cases — each the claim in the column names of the settle CSV, a one-line reason and
//! the expected settlement to the fen. This module reads such a file, settles its cases exactly as
//! `baozhang settle` settles a claims file (the same reader, the same streaming run, file order,
//! accumulators per person and calendar year) and compares every field.
//!
//! ```toml
//! policy = "gansu-huining-2018"        # the policy's id
//! notes = '''notation, readings…'''     # optional, free text
//!
//! [[cases]]
//! id = "G01"                           # becomes claim_id; unique in the file
//! reason = "ordinary resident, compliant amount exactly at the level-1 deductible"
//! psn_no = "P-G01"
//! identities = ""                      # required: "" is an ordinary resident
//! setl_date = "2018-03-01"
//! hosp_lv = 1
//! in_county = 1
//! med_type = 21
//! referral_ok = 1                      # optional (0), like major_disease and dise_codg
//! major_disease = 0
//! medfee_sumamt = "175.50"             # yuan, as text (or whole yuan as an integer)
//! fulamt_ownpay_amt = "20.00"
//! overlmt_selfpay = "0.00"
//! preselfpay_amt = "5.50"
//! inscp_scp_amt = "150.00"
//! [cases.expected]                     # every column of the settle CSV after psn_no
//! act_pay_dedc = "150.00"
//! hifp_pay = "0.00"
//! # … hifmi_pay, maf_pay, oth_pay, hosp_part_amt, fund_pay_sumamt, psn_part_amt, fund_390100 …
//! ```
//!
//! A claim `baozhang settle` must refuse (a date outside the policy's effective dates, say) expects
//! `refused = "<the field named>"` in `[cases.expected]` instead of the amounts.

use std::collections::{BTreeMap, BTreeSet};

use baozhang_core::policy::Policy;
use baozhang_core::Fen;
use toml::Spanned;

use crate::claims::{ClaimReader, ClaimRow, CLAIM_COLUMNS, OPTIONAL_CLAIM_COLUMNS};
use crate::output::{push_csv_field, SETTLEMENT_CSV_HEADER};
use crate::settle_run::{settle_stream, Format, PolicyChoice, SettleOptions};

/// The expected values of a case: every column of the settle CSV after `claim_id` and `psn_no`, in
/// that order.
pub const EXPECTED_COLUMNS: [&str; 14] = [
    "act_pay_dedc",
    "hifp_pay",
    "hifmi_pay",
    "maf_pay",
    "oth_pay",
    "hosp_part_amt",
    "fund_pay_sumamt",
    "psn_part_amt",
    "fund_390100",
    "fund_390200",
    "fund_620100",
    "fund_610100",
    "fund_640100",
    "fund_999996",
];

/// One hand-computed case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The claim id (`claim_id` of the settle CSV).
    pub id: String,
    /// One line: what the case shows.
    pub reason: String,
    /// 1-based line of the case in its file.
    pub line: usize,
    pub psn_no: String,
    /// The claim's columns as text, by settle CSV column name (without `claim_id`; optional columns
    /// the case leaves out are absent).
    pub input: BTreeMap<&'static str, String>,
    pub expected: Expected,
}

/// What a case expects of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The settlement, by [`EXPECTED_COLUMNS`].
    Settlement([Fen; 14]),
    /// The claim is refused, naming this field (a column of the settle CSV, e.g. `setl_date`).
    Refused(String),
}

impl Case {
    /// The expected settlement, unless the case expects a refusal.
    pub fn expected_settlement(&self) -> Option<&[Fen; 14]> {
        match &self.expected {
            Expected::Settlement(v) => Some(v),
            Expected::Refused(_) => None,
        }
    }
}

/// A parsed case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFile {
    /// The id of the policy the cases are for.
    pub policy: String,
    pub notes: Option<String>,
    pub cases: Vec<Case>,
}

/// A problem in a case file: where (line, case), what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    /// The case's id, when the problem is inside a case.
    pub case: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(l) = self.line {
            write!(f, "第 {l} 行，")?;
        }
        if let Some(c) = &self.case {
            write!(f, "案例 {c}：")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a case file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("案例文件有 {} 处问题：\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct CaseFileErrors(pub Vec<Problem>);

/// One field where the settlement differs from the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Difference {
    pub field: &'static str,
    pub expected: Fen,
    pub got: Fen,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}：应为 {}，实际 {}（差 {}）", self.field, self.expected, self.got, Fen(self.got.0 - self.expected.0))
    }
}

/// What the run did with a case's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Settled: the settlement by [`EXPECTED_COLUMNS`].
    Settled([Fen; 14]),
    /// Refused as `baozhang settle` refuses a row: the field named and why.
    Refused { field: String, reason: String },
}

/// A case run: what the run did and where that differs from the hand computation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult<'a> {
    pub case: &'a Case,
    pub outcome: Outcome,
    /// Settled where a refusal was expected, refused where a settlement was, or refused for another
    /// field: what was expected and what happened.
    pub mismatch: Option<String>,
    /// Every field of the settlement that differs from the expected one.
    pub differences: Vec<Difference>,
}

impl CaseResult<'_> {
    pub fn passed(&self) -> bool {
        self.mismatch.is_none() && self.differences.is_empty()
    }
}

/// Every field where `got` differs from `expected`, in [`EXPECTED_COLUMNS`] order.
pub fn compare(expected: &[Fen; 14], got: &[Fen; 14]) -> Vec<Difference> {
    EXPECTED_COLUMNS
        .iter()
        .zip(expected.iter().zip(got))
        .filter(|(_, (e, g))| e != g)
        .map(|(field, (e, g))| Difference { field, expected: *e, got: *g })
        .collect()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: String,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    cases: Vec<Spanned<toml::Table>>,
}

fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The claim columns a case gives (all of the settle CSV's but `claim_id`, which is the case's id).
fn input_columns() -> impl Iterator<Item = &'static str> {
    CLAIM_COLUMNS.into_iter().filter(|c| *c != "claim_id")
}

fn amount(v: &toml::Value) -> Result<Fen, String> {
    match v {
        toml::Value::String(s) => Fen::parse_yuan(s).map_err(|e| e.to_string()),
        toml::Value::Integer(i) if (0..=100_000_000).contains(i) => Ok(Fen::yuan(*i)),
        toml::Value::Integer(_) => Err("金额应在 0 到 1 亿元之间".into()),
        toml::Value::Float(_) => Err("带小数的金额请写成字符串，如 \"1234.56\"（避免浮点误差）".into()),
        _ => Err("金额应写成字符串（元），如 \"1234.56\"".into()),
    }
}

/// Parses and checks a case file: structure, every case's fields (each input through the settle CSV's
/// own row reader) and expected values. Every problem is returned, with its line and case.
pub fn parse_case_file(src: &str) -> Result<CaseFile, CaseFileErrors> {
    let raw: RawFile = toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| line_of(src, s.start));
        CaseFileErrors(vec![Problem { line, case: None, message: format!("无法解析：{}", e.message().trim_end()) }])
    })?;
    let mut problems = Vec::new();
    let policy = raw.policy.trim().to_string();
    if policy.is_empty() {
        problems.push(Problem { line: None, case: None, message: "policy（政策标识）不能为空".into() });
    }
    if raw.cases.is_empty() {
        problems.push(Problem { line: None, case: None, message: "没有任何案例（[[cases]]）".into() });
    }
    let known_inputs: Vec<&str> = input_columns().collect();
    let mut seen = BTreeSet::new();
    let mut cases = Vec::with_capacity(raw.cases.len());
    for (k, sc) in raw.cases.iter().enumerate() {
        let line = line_of(src, sc.span().start);
        let t = sc.get_ref();
        let id = match t.get("id") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => format!("第 {} 个", k + 1),
        };
        let mut bad = |message: String| problems.push(Problem { line: Some(line), case: Some(id.clone()), message });
        match t.get("id") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => {
                if !seen.insert(s.trim().to_string()) {
                    bad("案例编号 id 与前面的案例重复".into());
                }
            }
            _ => bad("缺少案例编号 id（非空字符串）".into()),
        }
        let reason = match t.get("reason") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() && !s.contains('\n') => s.trim().to_string(),
            Some(toml::Value::String(s)) if s.contains('\n') => {
                bad("理由 reason 只写一行".into());
                String::new()
            }
            _ => {
                bad("缺少理由 reason（一行文字）".into());
                String::new()
            }
        };
        let mut input = BTreeMap::new();
        for (key, v) in t {
            if matches!(key.as_str(), "id" | "reason" | "expected") {
                continue;
            }
            let Some(col) = known_inputs.iter().find(|c| **c == key.as_str()) else {
                let hint = if key == "claim_id" {
                    "（结算单号写在 id 中）".to_string()
                } else {
                    format!("（可用字段：id, reason, {}, expected）", known_inputs.join(", "))
                };
                bad(format!("未知字段 {key}{hint}"));
                continue;
            };
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
                toml::Value::Float(_) => {
                    bad(format!("{key}：带小数的金额请写成字符串，如 \"1234.56\"（避免浮点误差）"));
                    continue;
                }
                _ => {
                    bad(format!("{key}：应为字符串或数字"));
                    continue;
                }
            };
            input.insert(*col, text);
        }
        for col in input_columns().filter(|c| !OPTIONAL_CLAIM_COLUMNS.contains(c)) {
            if !t.contains_key(col) {
                let why = if col == "identities" { "（普通居民写 identities = \"\"）" } else { "" };
                bad(format!("缺少字段 {col}{why}"));
            }
        }
        let mut amounts = [Fen::ZERO; 14];
        let mut expected = None;
        match t.get("expected") {
            Some(toml::Value::Table(e)) if e.contains_key("refused") => match e.get("refused") {
                Some(toml::Value::String(f)) if CLAIM_COLUMNS.contains(&f.trim()) && e.len() == 1 => {
                    expected = Some(Expected::Refused(f.trim().to_string()));
                }
                Some(toml::Value::String(f)) if CLAIM_COLUMNS.contains(&f.trim()) => {
                    bad("expected 中 refused（应被拒绝）与金额不能同时填写".into());
                }
                _ => bad(format!("expected.refused 应为拒绝时指出的字段（{}）", CLAIM_COLUMNS.join(", "))),
            },
            Some(toml::Value::Table(e)) => {
                for key in e.keys() {
                    if !EXPECTED_COLUMNS.contains(&key.as_str()) {
                        bad(format!("expected 中的未知字段 {key}（可用字段：{}）", EXPECTED_COLUMNS.join(", ")));
                    }
                }
                for (i, col) in EXPECTED_COLUMNS.iter().enumerate() {
                    match e.get(*col).map(amount) {
                        Some(Ok(f)) => amounts[i] = f,
                        Some(Err(m)) => bad(format!("expected.{col}：{m}")),
                        None => bad(format!("expected 缺少 {col}")),
                    }
                }
            }
            Some(_) => bad("expected 应为表（[cases.expected]）".into()),
            None => bad(format!("缺少应得结果 [cases.expected]（{}）", EXPECTED_COLUMNS.join(", "))),
        }
        let psn_no = input.get("psn_no").cloned().unwrap_or_default();
        let expected = expected.unwrap_or(Expected::Settlement(amounts));
        cases.push(Case { id, reason, line, psn_no, input, expected });
    }
    if problems.is_empty() {
        // Every claim through the settle CSV's own row reader: the same rules, the same messages (a case
        // that expects a refusal is left to the run, which reports what it refused).
        let csv = claims_csv(&cases);
        match ClaimReader::new(csv.as_bytes()) {
            Ok(mut reader) => {
                let mut row = ClaimRow::default();
                for case in &cases {
                    match reader.next_row(&mut row) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(_) if matches!(case.expected, Expected::Refused(_)) => {}
                        Err(e) => problems.push(Problem {
                            line: Some(case.line),
                            case: Some(case.id.clone()),
                            message: format!("字段 {}：{}", e.field, e.reason),
                        }),
                    }
                }
            }
            Err(e) => problems.push(Problem { line: None, case: None, message: e.to_string() }),
        }
    }
    if problems.is_empty() {
        Ok(CaseFile { policy, notes: raw.notes, cases })
    } else {
        Err(CaseFileErrors(problems))
    }
}

/// The cases' claims as a settle claims CSV (`baozhang settle --claims`): the required columns and
/// the optional ones some case gives, in the contract's order.
pub fn claims_csv(cases: &[Case]) -> String {
    let cols: Vec<&str> = CLAIM_COLUMNS
        .into_iter()
        .filter(|c| *c == "claim_id" || !OPTIONAL_CLAIM_COLUMNS.contains(c) || cases.iter().any(|k| k.input.contains_key(c)))
        .collect();
    let mut out = Vec::with_capacity(128 * (cases.len() + 1));
    out.extend_from_slice(cols.join(",").as_bytes());
    out.push(b'\n');
    for case in cases {
        for (i, col) in cols.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let v = if *col == "claim_id" { case.id.as_str() } else { case.input.get(col).map_or("", String::as_str) };
            push_csv_field(&mut out, v);
        }
        out.push(b'\n');
    }
    String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
}

/// The cases' expected settlements as the settle CSV `baozhang settle` writes for [`claims_csv`] (cases
/// expecting a refusal have no row, as with `--skip-invalid`).
pub fn expected_csv(cases: &[Case]) -> String {
    let mut out = SETTLEMENT_CSV_HEADER.as_bytes().to_vec();
    for case in cases {
        let Some(values) = case.expected_settlement() else { continue };
        push_csv_field(&mut out, &case.id);
        out.push(b',');
        push_csv_field(&mut out, &case.psn_no);
        for v in values.iter().copied() {
            out.push(b',');
            v.write_yuan(&mut out);
        }
        out.push(b'\n');
    }
    String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
}

/// An amount as the settle CSV writes it (two decimals, a leading '-' if negative).
fn output_amount(s: &str) -> Option<Fen> {
    match s.strip_prefix('-') {
        Some(rest) => Fen::parse_yuan(rest).ok().map(|f| Fen(-f.0)),
        None => Fen::parse_yuan(s).ok(),
    }
}

/// Settles the cases under `policy` exactly as `baozhang settle --skip-invalid` would settle them as a
/// claims file ([`settle_stream`] over [`claims_csv`]) and compares each outcome with its case. A claim
/// the run refuses passes only if its case expects that refusal; the other cases settle as they would
/// without it.
pub fn run<'a>(policy: &Policy, file: &'a CaseFile) -> Result<Vec<CaseResult<'a>>, CaseFileErrors> {
    let one = |message: String| CaseFileErrors(vec![Problem { line: None, case: None, message }]);
    if file.policy != policy.meta.id {
        return Err(one(format!(
            "案例文件是政策“{}”的，而要测试的政策是“{}”（{}）；请改正案例文件中的 policy，或用 --cases 指定该政策的案例",
            file.policy, policy.meta.id, policy.meta.name
        )));
    }
    let csv = claims_csv(&file.cases);
    let mut out = Vec::with_capacity(160 * (file.cases.len() + 1));
    let mut rejected = Vec::new();
    let opts = SettleOptions { format: Format::Csv, skip_invalid: true, size_hint_bytes: csv.len() as u64 };
    settle_stream(PolicyChoice::One(policy), csv.as_bytes(), &mut out, Some(&mut rejected), opts).map_err(|e| one(e.to_string()))?;

    // Refused claims: line, field, reason, then the row (claim_id first, as `claims_csv` writes it).
    let mut refused: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(rejected.as_slice());
    for rec in rdr.records() {
        let rec = rec.map_err(|e| one(format!("拒绝报告无法读取：{e}")))?;
        let (field, reason, id) = (rec.get(1).unwrap_or(""), rec.get(2).unwrap_or(""), rec.get(3).unwrap_or(""));
        refused.insert(id.to_string(), Outcome::Refused { field: field.to_string(), reason: reason.to_string() });
    }
    // Settlements by claim id.
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(out.as_slice());
    let header: Vec<String> = rdr.headers().map_err(|e| one(format!("结算结果无法读取：{e}")))?.iter().map(str::to_string).collect();
    if header.join(",") != SETTLEMENT_CSV_HEADER.trim_end() || header[2..] != EXPECTED_COLUMNS {
        return Err(one(format!("结算结果的列与案例不符：{}", header.join(","))));
    }
    let mut settled: BTreeMap<String, [Fen; 14]> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| one(format!("结算结果无法读取：{e}")))?;
        let id = rec.get(0).unwrap_or("").to_string();
        let mut got = [Fen::ZERO; 14];
        for (i, g) in got.iter_mut().enumerate() {
            let text = rec.get(i + 2).unwrap_or("");
            *g = output_amount(text).ok_or_else(|| one(format!("案例 {id}：结算结果 {} = “{text}” 不是金额", EXPECTED_COLUMNS[i])))?;
        }
        settled.insert(id, got);
    }
    file.cases
        .iter()
        .map(|case| {
            let outcome = match (settled.remove(&case.id), refused.remove(&case.id)) {
                (Some(got), None) => Outcome::Settled(got),
                (None, Some(r)) => r,
                _ => return Err(one(format!("案例 {} 没有结算结果", case.id))),
            };
            let (mismatch, differences) = match (&case.expected, &outcome) {
                (Expected::Settlement(e), Outcome::Settled(g)) => (None, compare(e, g)),
                (Expected::Settlement(_), Outcome::Refused { field, reason }) => {
                    (Some(format!("应结算，实际被拒绝：字段 {field}：{reason}")), Vec::new())
                }
                (Expected::Refused(f), Outcome::Settled(_)) => (Some(format!("应被拒绝（字段 {f}），实际已结算")), Vec::new()),
                (Expected::Refused(f), Outcome::Refused { field, .. }) if f == field => (None, Vec::new()),
                (Expected::Refused(f), Outcome::Refused { field, reason }) => {
                    (Some(format!("应因字段 {f} 被拒绝，实际因字段 {field} 被拒绝：{reason}")), Vec::new())
                }
            };
            Ok(CaseResult { case, outcome, mismatch, differences })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baozhang_core::policy::parse_policy;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Every `policies/tests/*.toml` against its policy file `policies/<policy>.toml`, every case and field.
    #[test]
    fn every_policy_passes_the_cases_beside_it() {
        let dir = repo().join("policies/tests");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        assert!(files.len() >= 4, "the four reference policies have their cases: {files:?}");
        let mut failures = Vec::new();
        let mut cases = 0;
        for f in &files {
            let name = f.file_stem().unwrap().to_string_lossy().to_string();
            let file = parse_case_file(&std::fs::read_to_string(f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert_eq!(file.policy, name, "{}: the file is named after its policy", f.display());
            let policy_file = repo().join("policies").join(format!("{name}.toml"));
            let src = std::fs::read_to_string(&policy_file).unwrap_or_else(|e| panic!("{}: {e}", policy_file.display()));
            let policy = parse_policy(&src).unwrap_or_else(|e| panic!("{}: {e}", policy_file.display()));
            let results = run(&policy, &file).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            cases += results.len();
            for r in results.iter().filter(|r| !r.passed()) {
                failures.push(format!(
                    "{name} {} (line {}, {}):\n{}",
                    r.case.id,
                    r.case.line,
                    r.case.reason,
                    r.mismatch
                        .iter()
                        .cloned()
                        .chain(r.differences.iter().map(ToString::to_string))
                        .map(|d| format!("    {d}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
        }
        assert!(failures.is_empty(), "{} of {cases} cases differ:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn every_policy_file_has_its_cases_beside_it() {
        for e in std::fs::read_dir(repo().join("policies")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let name = p.file_stem().unwrap().to_string_lossy().to_string();
                assert!(repo().join("policies/tests").join(format!("{name}.toml")).is_file(), "policies/tests/{name}.toml");
            }
        }
    }

    #[test]
    fn the_expected_columns_are_the_settle_csvs() {
        let header: Vec<&str> = SETTLEMENT_CSV_HEADER.trim_end().split(',').collect();
        assert_eq!(header[..2], ["claim_id", "psn_no"]);
        assert_eq!(header[2..], EXPECTED_COLUMNS);
    }

    const POLICY: &str = "gansu-huining-2018";

    fn case(id: &str, extra: &str, expected: &str) -> String {
        format!(
            "[[cases]]\nid = \"{id}\"\nreason = \"test\"\npsn_no = \"P-{id}\"\nidentities = \"\"\nsetl_date = \"2018-03-01\"\nhosp_lv = 1\n\
             in_county = 1\nmed_type = 21\nreferral_ok = 1\nmajor_disease = 0\nmedfee_sumamt = \"175.50\"\nfulamt_ownpay_amt = \"20.00\"\n\
             overlmt_selfpay = \"0.00\"\npreselfpay_amt = \"5.50\"\ninscp_scp_amt = \"150.00\"\n{extra}[cases.expected]\n{expected}"
        )
    }

    /// G01 of the Gansu cases: 150.00 compliant, exactly the level-1 deductible.
    const G01_EXPECTED: &str =
        "act_pay_dedc = \"150.00\"\nhifp_pay = \"0.00\"\nhifmi_pay = \"0.00\"\nmaf_pay = \"0.00\"\noth_pay = \"0.00\"\n\
        hosp_part_amt = \"0.00\"\nfund_pay_sumamt = \"0.00\"\npsn_part_amt = \"175.50\"\nfund_390100 = \"0.00\"\nfund_390200 = \"0.00\"\n\
        fund_620100 = \"0.00\"\nfund_610100 = \"0.00\"\nfund_640100 = \"0.00\"\nfund_999996 = 0\n";

    fn gansu() -> Policy {
        parse_policy(baozhang_core::reference::reference_source(POLICY).unwrap()).unwrap()
    }

    fn problems(src: &str) -> Vec<String> {
        parse_case_file(src).expect_err("the file has problems").0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_passing_case_and_a_case_one_fen_off() {
        let wrong = G01_EXPECTED.replace("psn_part_amt = \"175.50\"", "psn_part_amt = \"175.49\"");
        let src = format!("policy = \"{POLICY}\"\n\n{}\n{}", case("A", "", G01_EXPECTED), case("B", "", &wrong));
        let file = parse_case_file(&src).unwrap();
        assert_eq!(file.cases[1].line, line_of(&src, src.find("id = \"B\"").unwrap()) - 1, "the line of the case's [[cases]]");
        let results = run(&gansu(), &file).unwrap();
        assert!(results[0].passed());
        assert_eq!(
            results[1].differences,
            [Difference { field: "psn_part_amt", expected: Fen(17549), got: Fen(17550) }],
            "only the field that differs, to the fen"
        );
        assert_eq!(results[1].differences[0].to_string(), "psn_part_amt：应为 175.49，实际 175.50（差 0.01）");
    }

    #[test]
    fn cases_of_one_person_carry_their_accumulators_in_file_order() {
        // Two cases of one person are one person-year: the claims file carries them in file order under
        // one psn_no (the second stay still pays nothing: per-claim deductible, critical base 300.00).
        let src = format!("policy = \"{POLICY}\"\n{}\n{}", case("A", "", G01_EXPECTED), case("B", "", G01_EXPECTED).replace("P-B", "P-A"));
        let file = parse_case_file(&src).unwrap();
        let csv = claims_csv(&file.cases);
        assert_eq!(csv.lines().nth(2).unwrap(), "B,P-A,,2018-03-01,1,1,21,1,0,175.50,20.00,0.00,5.50,150.00");
        assert_eq!(
            expected_csv(&file.cases).lines().nth(1).unwrap(),
            "A,P-A,150.00,0.00,0.00,0.00,0.00,0.00,0.00,175.50,0.00,0.00,0.00,0.00,0.00,0.00"
        );
        assert!(run(&gansu(), &file).unwrap().iter().all(CaseResult::passed));
    }

    #[test]
    fn every_problem_is_named_with_its_case_and_line() {
        let src = format!(
            "policy = \"{POLICY}\"\n{}\n{}\n{}\n{}",
            case("A", "claim_id = \"A\"\n", G01_EXPECTED),
            case("B", "", &G01_EXPECTED.replace("hifp_pay = \"0.00\"\n", "hifp_pay = 0.5\nhifp = \"1\"\n")),
            case("A", "", G01_EXPECTED).replace("identities = \"\"\n", ""),
            case("D", "", G01_EXPECTED).replace("2018-03-01", "2018-02-30"),
        );
        let p = problems(&src);
        let has = |needle: &str| p.iter().any(|m| m.contains(needle));
        assert!(has("案例 A：未知字段 claim_id"), "{p:#?}");
        assert!(has("案例 B：expected.hifp_pay：带小数的金额请写成字符串"), "{p:#?}");
        assert!(has("案例 B：expected 中的未知字段 hifp"), "{p:#?}");
        assert!(has("案例 A：案例编号 id 与前面的案例重复"), "{p:#?}");
        assert!(has("案例 A：缺少字段 identities"), "{p:#?}");
        assert!(p.iter().all(|m| m.starts_with("第 ")), "every problem has its line: {p:#?}");
        // The claim's own fields are checked by the settle CSV reader once the file's structure is right.
        let src = format!(
            "policy = \"{POLICY}\"\n{}\n{}",
            case("C", "", G01_EXPECTED),
            case("D", "", G01_EXPECTED).replace("2018-03-01", "2018-02-30")
        );
        let p = problems(&src);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("案例 D：字段 setl_date"), "{p:#?}");
        let d_line = line_of(&src, src.find("id = \"D\"").unwrap()) - 1;
        assert!(p[0].starts_with(&format!("第 {d_line} 行")), "{p:#?}");
        let p = problems(&format!("policy = \"{POLICY}\"\n{}", case("E", "", G01_EXPECTED).replace("\"150.00\"\n[", "\"150.01\"\n[")));
        assert!(p[0].contains("案例 E：字段 medfee_sumamt"), "{p:#?}");
    }

    #[test]
    fn a_file_that_is_not_a_case_file_is_refused() {
        assert!(problems("policy = \"x\"\n")[0].contains("没有任何案例"));
        assert!(problems("cases = []\n")[0].contains("policy"));
        assert!(problems(&format!("policy = \"{POLICY}\"\nextra = 1\n{}", case("A", "", G01_EXPECTED)))[0].contains("extra"));
        let p = problems("policy = \"x\"\n[[cases]\n");
        assert!(p[0].starts_with("第 2 行，无法解析"), "{p:?}");
    }

    #[test]
    fn a_claim_the_run_refuses_fails_its_case_and_the_others_still_run() {
        let src = format!(
            "policy = \"{POLICY}\"\n{}\n{}\n{}",
            case("A", "", G01_EXPECTED),
            case("B", "", G01_EXPECTED).replace("2018-03-01", "2017-12-31"),
            case("C", "", G01_EXPECTED)
        );
        let file = parse_case_file(&src).unwrap();
        let results = run(&gansu(), &file).unwrap();
        assert!(results[0].passed() && results[2].passed());
        assert!(!results[1].passed());
        let why = results[1].mismatch.as_deref().unwrap();
        assert!(why.starts_with("应结算，实际被拒绝：字段 setl_date") && why.contains("2017-12-31"), "{why}");
    }

    #[test]
    fn a_case_may_expect_the_refusal() {
        let refused = "refused = \"setl_date\"\n";
        let src = format!(
            "policy = \"{POLICY}\"\n{}\n{}\n{}",
            case("A", "", refused).replace("2018-03-01", "2021-01-01"),
            case("B", "", refused),
            case("C", "", refused).replace("2018-03-01", "2021-01-01").replace("\"175.50\"", "\"175.51\"")
        );
        let file = parse_case_file(&src).unwrap();
        assert_eq!(file.cases[0].expected, Expected::Refused("setl_date".into()));
        assert!(expected_csv(&file.cases).lines().count() == 1, "no settlement expected");
        let results = run(&gansu(), &file).unwrap();
        assert!(results[0].passed(), "{results:?}");
        assert_eq!(results[1].mismatch.as_deref(), Some("应被拒绝（字段 setl_date），实际已结算"));
        assert!(
            results[2].mismatch.as_deref().unwrap().starts_with("应因字段 setl_date 被拒绝，实际因字段 medfee_sumamt 被拒绝"),
            "{results:?}"
        );

        let p = problems(&format!("policy = \"{POLICY}\"\n{}", case("A", "", &format!("{refused}{G01_EXPECTED}"))));
        assert!(p[0].contains("refused（应被拒绝）与金额不能同时填写"), "{p:?}");
        let p = problems(&format!("policy = \"{POLICY}\"\n{}", case("A", "", "refused = \"date\"\n")));
        assert!(p[0].contains("expected.refused 应为拒绝时指出的字段"), "{p:?}");
    }

    #[test]
    fn cases_for_another_policy_are_not_run() {
        let file = parse_case_file(&format!("policy = \"yunnan-2020\"\n{}", case("A", "", G01_EXPECTED))).unwrap();
        let e = run(&gansu(), &file).unwrap_err();
        assert!(e.to_string().contains("yunnan-2020") && e.to_string().contains(POLICY), "{e}");
    }
}
