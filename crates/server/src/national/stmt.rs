//! Reconciliation and files: 3201 对总账 (daily totals), 9101 文件上传 / 3202 对明细账 / 9102 文件下载 (the
//! detail statement as a zipped tab-separated file and its result), and 4101A 结算清单 (the settlement list
//! stored for the bureau).
//!
//! The centre's side is the ledger as it stands: settlements and cancellations of the institution whose
//! settlement date falls in the range, with re-settlement adjustments (`store::files`). The comparisons
//! themselves are pure (`ingest::stmt_file`).

use baozhang_core::{Date, Fen};
use baozhang_ingest::stmt_file::{self, CentreRow, Limits, StmtTotals};
use baozhang_store::files::{self, Direction, ExchangeFile, NewSettlementList};
use baozhang_store::ledger::Batch;
use baozhang_store::{date_num, Tx};
use serde_json::{json, Value};

use super::envelope::{amount_field, code_field, date_field, input_obj, refused, req_amount, req_str, str_field, Envelope, NResult};
use super::Outcome;
use crate::writer::{ExecError, Job};
use crate::{clock, AppState};

/// How long a file stays downloadable (seconds).
const FILE_TTL_SECS: i64 = 7 * 24 * 3600;

/// 3201 as read.
#[derive(Clone, Debug)]
pub struct TotalsStatement {
    pub insutype: Option<String>,
    pub clr_type: Option<String>,
    pub setl_optins: String,
    pub from: Date,
    pub to: Date,
    pub stated: StmtTotals,
}

/// 3202 as read.
#[derive(Clone, Debug)]
pub struct DetailStatement {
    pub setl_optins: String,
    pub file_qury_no: String,
    pub clr_type: Option<String>,
    pub from: Date,
    pub to: Date,
    pub stated: StmtTotals,
}

/// 4101A as read: the list is stored as sent.
#[derive(Clone, Debug)]
pub struct SettlementList {
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub body: String,
}

/// 9101 as read.
#[derive(Clone, Debug)]
pub struct FileUpload {
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// 9102 as read.
#[derive(Clone, Debug)]
pub struct FileDownload {
    pub file_qury_no: String,
}

/// What the writer stores.
#[derive(Debug)]
pub enum StmtOp {
    /// 9101: the uploaded file.
    Upload(ExchangeFile),
    /// 3202: the result file, with the statement's verdict.
    DetailResult { file: ExchangeFile, balanced: bool, description: String, setl_optins: String },
    /// 4101A.
    SettlementList(SettlementList),
}

fn range(data: &serde_json::Map<String, Value>, at: &str) -> NResult<(Date, Date)> {
    let from = date_field(data, "stmt_begndate", at)?.ok_or_else(|| refused(format!("缺少字段 {at}.stmt_begndate")))?;
    let to = date_field(data, "stmt_enddate", at)?.ok_or_else(|| refused(format!("缺少字段 {at}.stmt_enddate")))?;
    if to < from {
        return Err(refused(format!("{at}：对账结束日期早于开始日期")));
    }
    if to.to_days() - from.to_days() > 366 {
        return Err(refused(format!("{at}：一次对账的日期范围不能超过一年")));
    }
    Ok((from, to))
}

fn count_of(data: &serde_json::Map<String, Value>, at: &str) -> NResult<i64> {
    match code_field(data, "fixmedins_setl_cnt", at)? {
        None => Err(refused(format!("缺少字段 {at}.fixmedins_setl_cnt"))),
        Some(s) => s.parse::<i64>().map_err(|_| refused(format!("字段 {at}.fixmedins_setl_cnt 应为整数（结算笔数）"))),
    }
}

pub fn parse_totals(env: &Envelope) -> NResult<TotalsStatement> {
    let (data, at) = input_obj(env, &["data"])?;
    let (from, to) = range(data, &at)?;
    Ok(TotalsStatement {
        insutype: code_field(data, "insutype", &at)?.filter(|s| !s.is_empty()),
        clr_type: code_field(data, "clr_type", &at)?.filter(|s| !s.is_empty()),
        setl_optins: code_field(data, "setl_optins", &at)?.unwrap_or_default(),
        from,
        to,
        stated: StmtTotals {
            count: count_of(data, &at)?,
            medfee_sumamt: req_amount(data, "medfee_sumamt", &at)?,
            fund_pay_sumamt: req_amount(data, "fund_pay_sumamt", &at)?,
            acct_pay: amount_field(data, "acct_pay", &at)?,
            cash_payamt: None,
        },
    })
}

pub fn parse_detail(env: &Envelope) -> NResult<DetailStatement> {
    let (data, at) = input_obj(env, &["data"])?;
    let (from, to) = range(data, &at)?;
    Ok(DetailStatement {
        setl_optins: code_field(data, "setl_optins", &at)?.unwrap_or_default(),
        file_qury_no: req_str(data, "file_qury_no", &at)?,
        clr_type: code_field(data, "clr_type", &at)?.filter(|s| !s.is_empty()),
        from,
        to,
        stated: StmtTotals {
            count: count_of(data, &at)?,
            medfee_sumamt: req_amount(data, "medfee_sumamt", &at)?,
            fund_pay_sumamt: req_amount(data, "fund_pay_sumamt", &at)?,
            acct_pay: None,
            cash_payamt: amount_field(data, "cash_payamt", &at)?,
        },
    })
}

pub fn parse_settlement_list(env: &Envelope) -> NResult<SettlementList> {
    let (data, at) = input_obj(env, &["setlinfo"])?;
    Ok(SettlementList {
        setl_id: req_str(data, "setl_id", &at)?,
        mdtrt_id: str_field(data, "mdtrt_id", &at)?.unwrap_or_default(),
        psn_no: str_field(data, "psn_no", &at)?.unwrap_or_default(),
        body: Value::Object(env.input.clone()).to_string(),
    })
}

pub fn parse_upload(env: &Envelope) -> NResult<FileUpload> {
    let (data, at) = input_obj(env, &["fsUploadIn", "data"])?;
    let filename = req_str(data, "filename", &at)?;
    if filename.chars().count() > 100 || filename.contains(['/', '\\']) {
        return Err(refused(format!("字段 {at}.filename 应为不含路径的文件名（最多 100 字）")));
    }
    let content = data.get("in").ok_or_else(|| refused(format!("缺少文件内容 {at}.in")))?;
    let bytes = stmt_file::decode_upload_bytes(content).map_err(|e| refused(format!("字段 {at}.in：{e}")))?;
    if bytes.is_empty() {
        return Err(refused(format!("字段 {at}.in：文件为空")));
    }
    Ok(FileUpload { filename, bytes })
}

pub fn parse_download(env: &Envelope) -> NResult<FileDownload> {
    let (data, at) = input_obj(env, &["fsDownloadIn", "data"])?;
    Ok(FileDownload { file_qury_no: req_str(data, "file_qury_no", &at)? })
}

/// The national 清算类别 as baozhang's medical type: 21 住院; 11 / 14 门诊 (门诊慢特病 is the outpatient care
/// settled here); anything else: all.
fn med_type_of_clr(clr_type: Option<&str>) -> Option<i64> {
    match clr_type {
        Some("21") => Some(21),
        Some("11") | Some("14") => Some(14),
        _ => None,
    }
}

fn dld_endtime(expires_at: i64) -> String {
    clock::readable(expires_at * 1000)
}

/// 3201: the institution's stated totals against the centre's.
pub async fn totals_statement(state: &AppState, env: &Envelope, t: &TotalsStatement) -> NResult<String> {
    let centre = if t.insutype.as_deref().is_some_and(|i| i != "390") {
        // Only resident insurance (390) is settled here: the centre has nothing of another insurance type.
        files::CentreTotals::default()
    } else {
        state.store.centre_totals(&env.fixmedins_code, date_num(t.from), date_num(t.to), med_type_of_clr(t.clr_type.as_deref())).await?
    };
    let centre = StmtTotals {
        count: centre.count,
        medfee_sumamt: Fen(centre.medfee_sumamt),
        fund_pay_sumamt: Fen(centre.fund_pay_sumamt),
        acct_pay: Some(Fen(centre.acct_pay)),
        cash_payamt: Some(Fen(centre.psn_part_amt)),
    };
    let (balanced, dscr) = stmt_file::totals_balance(&t.stated, &centre);
    Ok(json!({"stmtinfo": {"setl_optins": t.setl_optins, "stmt_rslt": if balanced { "0" } else { "1" }, "stmt_rslt_dscr": dscr}})
        .to_string())
}

fn new_file_no() -> String {
    format!("F{}", crate::random_hex(15))
}

pub fn prepare_upload(state: &AppState, env: &Envelope, f: FileUpload) -> NResult<StmtOp> {
    let limit = Limits::default().max_compressed_bytes;
    if f.bytes.len() > limit {
        return Err(refused(format!("文件超过 {limit} 字节")));
    }
    let _ = state;
    let expires = clock::unix_now() + FILE_TTL_SECS;
    Ok(StmtOp::Upload(ExchangeFile::new(&new_file_no(), &env.fixmedins_code, &f.filename, Direction::Up, f.bytes, expires)))
}

/// 3202: reads the uploaded detail file, compares it with the centre's rows, and prepares the result file.
pub async fn prepare_detail(state: &AppState, env: &Envelope, d: &DetailStatement) -> NResult<StmtOp> {
    let file = state
        .store
        .file(&d.file_qury_no, &env.fixmedins_code)
        .await?
        .filter(|f| f.direction == Direction::Up && f.expires_at > clock::unix_now())
        .ok_or_else(|| refused(format!("本机构没有文件查询号 {} 的上传文件，或已过期（请先用 9101 上传对账明细）", d.file_qury_no)))?;
    let limits = Limits::default();
    let rows = stmt_file::read_detail_zip(&file.content, &limits).map_err(|e| refused(format!("文件 {}：{e}", file.filename)))?;
    let centre = state
        .store
        .centre_rows(
            &env.fixmedins_code,
            date_num(d.from),
            date_num(d.to),
            med_type_of_clr(d.clr_type.as_deref()),
            limits.max_rows as i64 + 1,
        )
        .await?;
    if centre.len() > limits.max_rows {
        return Err(refused(format!("对账期间中心结算超过 {} 笔，请缩短对账日期范围", limits.max_rows)));
    }
    let prefix = format!("{}/", env.fixmedins_code);
    let centre: Vec<CentreRow> = centre
        .iter()
        .map(|c| CentreRow {
            setl_id: c.setl_id.clone(),
            mdtrt_id: c.mdtrt_id.clone(),
            psn_no: c.psn_no.clone(),
            msgid: c.msgid.strip_prefix(&prefix).unwrap_or(&c.msgid).to_string(),
            medfee_sumamt: Fen(c.medfee_sumamt),
            fund_pay_sumamt: Fen(c.fund_pay_sumamt),
            acct_pay: Fen(c.acct_pay),
            refd_setl_flag: c.refd_setl_flag(),
        })
        .collect();
    let result = stmt_file::compare(&centre, &rows);
    let counts = stmt_file::result_counts(&result);
    // The statement's totals: the centre's own figures against what the institution states.
    let t =
        state.store.centre_totals(&env.fixmedins_code, date_num(d.from), date_num(d.to), med_type_of_clr(d.clr_type.as_deref())).await?;
    let centre_totals = StmtTotals {
        count: t.count,
        medfee_sumamt: Fen(t.medfee_sumamt),
        fund_pay_sumamt: Fen(t.fund_pay_sumamt),
        acct_pay: None,
        cash_payamt: Some(Fen(t.psn_part_amt)),
    };
    let (totals_ok, totals_dscr) = stmt_file::totals_balance(&d.stated, &centre_totals);
    let balanced = totals_ok && counts[1] == 0 && counts[2] == 0 && counts[3] == 0;
    let description =
        format!("{totals_dscr}；明细：平 {} 笔，中心多 {} 笔，机构多 {} 笔，不一致 {} 笔", counts[0], counts[1], counts[2], counts[3]);
    let inner = format!("{}_result.txt", d.file_qury_no);
    let zip = stmt_file::write_result_zip(&result, &inner);
    let expires = clock::unix_now() + FILE_TTL_SECS;
    let name = format!("{}_result.zip", d.file_qury_no);
    Ok(StmtOp::DetailResult {
        file: ExchangeFile::new(&new_file_no(), &env.fixmedins_code, &name, Direction::Down, zip, expires),
        balanced,
        description,
        setl_optins: d.setl_optins.clone(),
    })
}

/// 4101A names one of this institution's settlements.
pub async fn check_settlement_list(state: &AppState, env: &Envelope, l: &SettlementList) -> NResult<()> {
    match state.store.settlement(&l.setl_id).await? {
        Some(s) if s.fixmedins_code == env.fixmedins_code && s.reverses.is_none() => {
            if (!l.mdtrt_id.is_empty() && l.mdtrt_id != s.mdtrt_id) || (!l.psn_no.is_empty() && l.psn_no != s.psn_no) {
                return Err(refused(format!("结算清单的就诊ID或人员编号与结算 {} 不符", l.setl_id)));
            }
            Ok(())
        }
        _ => Err(refused(format!("本机构没有结算 {}，不能上传其结算清单", l.setl_id))),
    }
}

/// 9102: a file of this institution, sent as it is.
pub async fn download(state: &AppState, env: &Envelope, f: &FileDownload) -> Outcome {
    match state.store.file(&f.file_qury_no, &env.fixmedins_code).await {
        Ok(Some(file)) if file.expires_at > clock::unix_now() => Outcome::File { name: file.filename, bytes: file.content },
        Ok(_) => Outcome::Fresh(Err(refused(format!("本机构没有文件查询号 {} 的文件，或文件已过下载期限", f.file_qury_no)))),
        Err(e) => Outcome::Fresh(Err(e.into())),
    }
}

/// Stores what a statement transaction produced, inside the writer's transaction.
pub async fn execute(tx: &mut Tx<'_>, _batch: &mut Batch, job: &Job, op: &StmtOp) -> Result<String, ExecError> {
    match op {
        StmtOp::Upload(f) => {
            files::insert_file(tx, f).await?;
            Ok(json!({"file_qury_no": f.file_qury_no, "filename": f.filename, "dld_endtime": dld_endtime(f.expires_at)}).to_string())
        }
        StmtOp::DetailResult { file, balanced, description, setl_optins } => {
            files::insert_file(tx, file).await?;
            Ok(json!({
                "fileinfo": {"file_qury_no": file.file_qury_no, "filename": file.filename, "dld_endtime": dld_endtime(file.expires_at)},
                "stmtinfo": {"setl_optins": setl_optins, "stmt_rslt": if *balanced { "0" } else { "1" }, "stmt_rslt_dscr": description},
            })
            .to_string())
        }
        StmtOp::SettlementList(l) => {
            let v = files::insert_settlement_list(
                tx,
                &NewSettlementList {
                    fixmedins_code: &job.fixmedins_code,
                    setl_id: &l.setl_id,
                    mdtrt_id: &l.mdtrt_id,
                    psn_no: &l.psn_no,
                    msgid: &job.msgid,
                    body: &l.body,
                },
            )
            .await?;
            Ok(json!({"setl_list_id": format!("{}-{}", l.setl_id, v.version), "setl_id": l.setl_id, "version": v.version}).to_string())
        }
    }
}
