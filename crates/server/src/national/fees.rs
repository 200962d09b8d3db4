//! Fees and the catalogue: fee-line upload (2204 / 2301) classified by the medical-insurance catalogue,
//! withdrawing fee lines (2205 / 2302), the fee-line queries (5204, 5205) and the catalogue query (1312).
//!
//! With a catalogue loaded, every line must name an item the catalogue knows on the line's day (by the
//! national code `med_list_codg`, or by the hospital's own `medins_list_codg` through its mapping) and is
//! split by [`baozhang_core::catalogue::classify`]; what the hospital states about the split is ignored.
//! With no catalogue loaded (a deployment that has not imported one yet), the hospital's four parts or
//! its `chrgitm_lv` are used as before, and the answer says so in `warn_msg`.

use std::collections::HashMap;

use baozhang_core::catalogue::{classify, parse_prop_bp, prop_text, ChrgitmLv, Qty, UnitPrice};
use baozhang_core::money::div_round_half_away;
use baozhang_core::{Bill, Date, Fen};
use baozhang_store::ledger::Batch;
use baozhang_store::service::{self, FeeDetail, FeeLine, Withdraw};
use baozhang_store::{date_num, num_date, Tx};
use serde_json::{json, Map, Value};

use super::envelope::{amount_field, code_field, date_field, input_obj, refused, req_amount, req_str, str_field, Envelope, Infno, NResult};
use super::visits::{own_visit, VisitRef};
use crate::writer::ExecError;
use crate::AppState;

pub const MAX_FEE_LINES: usize = 5_000;

/// One line of a 2204 / 2301 upload as sent.
#[derive(Clone, Debug)]
pub struct SentLine {
    pub at: String,
    pub feedetl_sn: String,
    pub total: Fen,
    /// The four parts, when the hospital states them.
    pub parts: Option<[Fen; 4]>,
    pub chrgitm_lv: Option<String>,
    pub selfpay_prop_bp: Option<i64>,
    pub med_list_codg: Option<String>,
    pub medins_list_codg: Option<String>,
    pub cnt: Option<Qty>,
    pub cnt_text: Option<String>,
    pub pric: Option<UnitPrice>,
    pub pric_text: Option<String>,
    pub fee_ocur: Option<Date>,
    pub hosp_appr_flag: Option<String>,
    pub chrg_bchno: Option<String>,
}

/// A fee-line upload as read from the message: one visit, its lines.
#[derive(Clone, Debug)]
pub struct FeeUpload {
    pub visit: VisitRef,
    pub lines: Vec<SentLine>,
}

/// 2205 / 2302: which lines to withdraw.
#[derive(Clone, Debug)]
pub enum FeeWhich {
    All,
    Serials(Vec<String>),
    Batch(String),
}

#[derive(Clone, Debug)]
pub struct FeeCancel {
    pub visit: VisitRef,
    pub which: FeeWhich,
}

/// 1312.
#[derive(Clone, Debug)]
pub struct CatalogueQuery {
    pub code: Option<String>,
    pub valid_on: Option<Date>,
    pub updated_since: Option<String>,
    pub page_num: i64,
    pub page_size: i64,
}

/// 5205: a person's 门诊慢特病 drug lines at this institution.
#[derive(Clone, Debug)]
pub struct ChronicDrugQuery {
    pub psn_no: String,
    pub from: Option<Date>,
    pub to: Option<Date>,
}

/// A self-pay proportion like `0.1` or `"0.15"` in basis points (at most 4 decimals, at most 1).
fn prop_of(o: &Map<String, Value>, key: &str, at: &str) -> NResult<Option<i64>> {
    let t = match o.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(refused(format!("字段 {at}.{key} 应为 0–1 的比例"))),
    };
    parse_prop_bp(&t).map(Some).map_err(|e| refused(format!("字段 {at}.{key}：{e}")))
}

fn text_of(o: &Map<String, Value>, key: &str) -> Option<String> {
    match o.get(key) {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

pub fn parse_fee_upload(env: &Envelope) -> NResult<FeeUpload> {
    let lines = match env.input.get("feedetail") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(refused("字段 input.feedetail 应为数组")),
        None => return Err(refused("缺少费用明细 input.feedetail")),
    };
    if lines.is_empty() {
        return Err(refused("费用明细 input.feedetail 为空"));
    }
    if lines.len() > MAX_FEE_LINES {
        return Err(refused(format!("一次最多上传 {MAX_FEE_LINES} 条费用明细，请分批上传")));
    }
    let mut visit: Option<VisitRef> = None;
    let mut out = Vec::with_capacity(lines.len());
    let mut seen = std::collections::HashSet::new();
    for (k, line) in lines.iter().enumerate() {
        let at = format!("input.feedetail[{k}]");
        let Value::Object(o) = line else { return Err(refused(format!("{at} 应为 JSON 对象"))) };
        let sn = req_str(o, "feedetl_sn", &at)?;
        if sn.chars().count() > 30 {
            return Err(refused(format!("{at}.feedetl_sn 超过 30 位")));
        }
        if !seen.insert(sn.clone()) {
            return Err(refused(format!("{at}：明细流水号 {sn} 在本次上传中重复")));
        }
        let v = VisitRef { mdtrt_id: req_str(o, "mdtrt_id", &at)?, psn_no: req_str(o, "psn_no", &at)? };
        match &visit {
            None => visit = Some(v),
            Some(first) if first.mdtrt_id != v.mdtrt_id || first.psn_no != v.psn_no => {
                return Err(refused(format!("{at}：一次上传的明细应属于同一就诊（mdtrt_id、psn_no 相同）")));
            }
            Some(_) => {}
        }
        let total = req_amount(o, "det_item_fee_sumamt", &at)?;
        let parts = ["fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt"];
        let given: Vec<Option<Fen>> = parts.iter().map(|p| amount_field(o, p, &at)).collect::<NResult<_>>()?;
        let parts = given.iter().any(Option::is_some).then(|| {
            let v: Vec<Fen> = given.iter().map(|x| x.unwrap_or(Fen::ZERO)).collect();
            [v[0], v[1], v[2], v[3]]
        });
        // "01", or 1 written as a number.
        let numeric = matches!(o.get("chrgitm_lv"), Some(Value::Number(_)));
        let chrgitm_lv =
            code_field(o, "chrgitm_lv", &at)?.filter(|c| !c.is_empty()).map(|c| if numeric && c.len() == 1 { format!("0{c}") } else { c });
        let cnt_text = text_of(o, "cnt");
        let cnt = match &cnt_text {
            None => None,
            Some(t) => Some(Qty::parse(t).map_err(|e| refused(format!("字段 {at}.cnt：{e}")))?),
        };
        let pric_text = text_of(o, "pric");
        let pric = match &pric_text {
            None => None,
            Some(t) => Some(UnitPrice::parse_yuan(t).map_err(|e| refused(format!("字段 {at}.pric：{e}")))?),
        };
        let code = |k: &str| -> NResult<Option<String>> {
            let c = str_field(o, k, &at)?.filter(|c| !c.is_empty());
            if c.as_ref().is_some_and(|c| c.chars().count() > 50) {
                return Err(refused(format!("字段 {at}.{k} 超过 50 位")));
            }
            Ok(c)
        };
        out.push(SentLine {
            feedetl_sn: sn,
            total,
            parts,
            chrgitm_lv,
            selfpay_prop_bp: prop_of(o, "selfpay_prop", &at)?,
            med_list_codg: code("med_list_codg")?,
            medins_list_codg: code("medins_list_codg")?,
            cnt,
            cnt_text,
            pric,
            pric_text,
            fee_ocur: date_field(o, "fee_ocur_time", &at)?,
            hosp_appr_flag: code_field(o, "hosp_appr_flag", &at)?,
            chrg_bchno: str_field(o, "chrg_bchno", &at)?.filter(|c| !c.is_empty()).map(|c| c.chars().take(30).collect()),
            at,
        });
    }
    Ok(FeeUpload { visit: visit.expect("at least one line"), lines: out })
}

/// The split by what the hospital states (no catalogue loaded): its four parts, or its chrgitm_lv
/// with selfpay_prop.
fn stated_split(l: &SentLine) -> NResult<([Fen; 4], FeeDetail)> {
    let at = &l.at;
    let mut d = detail_of(l);
    if let Some(p) = l.parts {
        d.basis = "stated".into();
        return Ok((p, d));
    }
    let total = l.total;
    let parts = match l.chrgitm_lv.as_deref() {
        Some("01") => [Fen::ZERO, Fen::ZERO, Fen::ZERO, total],
        Some("03") => [total, Fen::ZERO, Fen::ZERO, Fen::ZERO],
        Some("02") => {
            let bp = l
                .selfpay_prop_bp
                .ok_or_else(|| refused(format!("{at}：乙类项目（chrgitm_lv=02）需要先行自付比例 selfpay_prop（0–1，最多 4 位小数）")))?;
            let pre = Fen(div_round_half_away(total.0 * bp, 10_000));
            [Fen::ZERO, Fen::ZERO, pre, total - pre]
        }
        Some(other) => return Err(refused(format!("{at}：收费项目等级 chrgitm_lv=“{other}”无效（01 甲类、02 乙类、03 丙类）"))),
        None => {
            return Err(refused(format!(
                "{at}：缺少费用分类——本系统尚未导入医保目录，请提供 fulamt_ownpay_amt、overlmt_amt、preselfpay_amt、inscp_scp_amt 四项金额，或收费项目等级 chrgitm_lv"
            )))
        }
    };
    d.basis = "level".into();
    d.selfpay_prop_bp = l.selfpay_prop_bp;
    Ok((parts, d))
}

fn detail_of(l: &SentLine) -> FeeDetail {
    FeeDetail {
        medins_list_codg: l.medins_list_codg.clone(),
        cnt: l.cnt_text.clone(),
        pric: l.pric_text.clone(),
        chrgitm_lv: l.chrgitm_lv.clone(),
        selfpay_prop_bp: None,
        pric_uplmt_fen: None,
        basis: String::new(),
        msgid: None,
        chrg_bchno: l.chrg_bchno.clone(),
        lmt_used_flag: None,
        med_chrgitm_type: None,
    }
}

/// Classifies an upload's lines: by the catalogue when one is loaded, else by what the hospital states.
/// Returns the lines to store and a warning for the answer.
pub async fn classify_upload(state: &AppState, env: &Envelope, up: &FeeUpload, msg_key: &str) -> NResult<(Vec<FeeLine>, Option<String>)> {
    let catalogue = state.cache.catalogue_size(&state.store).await? > 0;
    let visit_day = match state.store.mdtrt(&up.visit.mdtrt_id).await? {
        Some(m) if m.fixmedins_code == env.fixmedins_code => {
            if (m.med_type == 21) != env.infno.inpatient() {
                return Err(refused(if m.med_type == 21 {
                    "该就诊为住院，请使用住院费用明细上传（2301）"
                } else {
                    "该就诊为门诊，请使用门诊费用明细上传（2204）"
                }));
            }
            m.begn_date
        }
        Some(_) => return Err(refused("该就诊不属于本机构，不能上传费用")),
        None => return Err(refused(format!("就诊 {} 不存在，请先办理挂号或入院", up.visit.mdtrt_id))),
    };
    let day_of = |l: &SentLine| l.fee_ocur.map_or(visit_day, date_num);
    let mut out = Vec::with_capacity(up.lines.len());
    if !catalogue {
        for l in &up.lines {
            let (p, mut d) = stated_split(l)?;
            Bill::new(l.total, p[0], p[1], p[2], p[3]).map_err(|e| refused(format!("{}：{e}", l.at)))?;
            d.msgid = Some(msg_key.to_string());
            out.push(fee_line(l, p, d));
        }
        return Ok((out, Some("本系统尚未导入医保目录：费用按机构上传的分类计算".to_string())));
    }
    // Hospital codes → national codes, then the items valid on each line's day.
    let mut c = state.store.pool().acquire().await.map_err(baozhang_store::StoreError::from)?;
    let mut national: Vec<Option<String>> = up.lines.iter().map(|l| l.med_list_codg.clone()).collect();
    let mut by_day: HashMap<i64, Vec<&str>> = HashMap::new();
    for l in up.lines.iter().filter(|l| l.med_list_codg.is_none()) {
        if let Some(h) = &l.medins_list_codg {
            by_day.entry(day_of(l)).or_default().push(h.as_str());
        }
    }
    let mut mapped: HashMap<(i64, String), String> = HashMap::new();
    for (day, codes) in &by_day {
        for (h, n) in baozhang_store::catalogue::mapped_codes(&mut c, &env.fixmedins_code, codes, *day).await? {
            mapped.insert((*day, h), n);
        }
    }
    for (k, l) in up.lines.iter().enumerate() {
        if national[k].is_none() {
            let Some(h) = &l.medins_list_codg else {
                return Err(refused(format!("{}：缺少医保目录编码 med_list_codg（或已对照的医院项目编码 medins_list_codg）", l.at)));
            };
            national[k] = Some(mapped.get(&(day_of(l), h.clone())).cloned().ok_or_else(|| {
                refused(format!("{}：医院项目编码 {h} 没有与医保目录对照（或对照在费用发生日已失效），请先完成目录对照", l.at))
            })?);
        }
    }
    let mut codes_by_day: HashMap<i64, Vec<&str>> = HashMap::new();
    for (k, l) in up.lines.iter().enumerate() {
        codes_by_day.entry(day_of(l)).or_default().push(national[k].as_deref().expect("set above"));
    }
    let mut items = HashMap::new();
    for (day, codes) in &codes_by_day {
        for (code, item) in baozhang_store::catalogue::items_on(&mut c, codes, *day).await? {
            items.insert((*day, code), item);
        }
    }
    drop(c);
    for (k, l) in up.lines.iter().enumerate() {
        let code = national[k].clone().expect("set above");
        let day = day_of(l);
        let Some(item) = items.get(&(day, code.clone())) else {
            let on = num_date(day).map_or_else(String::new, |d| d.to_string());
            return Err(refused(format!("{}：医保目录编码 {code} 在医保目录中不存在或在 {on} 不在有效期内", l.at)));
        };
        let rule = item.rule();
        let cnt = l.cnt.unwrap_or(Qty(baozhang_core::catalogue::QTY_ONE));
        let split = classify(&rule, l.total, cnt, l.pric, l.hosp_appr_flag.as_deref()).map_err(|e| refused(format!("{}：{e}", l.at)))?;
        let mut d = detail_of(l);
        d.chrgitm_lv = Some(rule.chrgitm_lv.code().to_string());
        d.selfpay_prop_bp = Some(split.selfpay_prop_bp);
        d.pric_uplmt_fen = split.pric_uplmt.map(|f| f.0);
        d.basis = "catalogue".into();
        d.msgid = Some(msg_key.to_string());
        d.lmt_used_flag = Some(item.lmt_used_flag);
        d.med_chrgitm_type = Some(item.med_chrgitm_type.clone()).filter(|t| !t.is_empty());
        let mut line = fee_line(l, [split.fulamt_ownpay, split.overlmt, split.preselfpay, split.inscp], d);
        line.med_list_codg = Some(code);
        out.push(line);
    }
    Ok((out, None))
}

fn fee_line(l: &SentLine, p: [Fen; 4], detail: FeeDetail) -> FeeLine {
    FeeLine {
        feedetl_sn: l.feedetl_sn.clone(),
        det_item_fee_sumamt: l.total.0,
        fulamt_ownpay_amt: p[0].0,
        overlmt_selfpay: p[1].0,
        preselfpay_amt: p[2].0,
        inscp_scp_amt: p[3].0,
        med_list_codg: l.med_list_codg.clone(),
        detail,
    }
}

/// An amount as the national answers carry it: a JSON number in yuan with two decimals (exact text).
pub fn yuan(f: Fen) -> Value {
    serde_json::from_str(&f.to_string()).expect("a yuan amount is a JSON number")
}

/// A stored line as the 2301 answer and 5204 return it.
pub fn line_json(l: &FeeLine, mdtrt_id: &str, psn_no: &str) -> Value {
    let d = &l.detail;
    let lv = d.chrgitm_lv.clone().unwrap_or_else(|| {
        if l.inscp_scp_amt == l.det_item_fee_sumamt {
            "01"
        } else if l.fulamt_ownpay_amt == l.det_item_fee_sumamt {
            "03"
        } else {
            "02"
        }
        .to_string()
    });
    let lv_known = ChrgitmLv::parse(&lv);
    json!({
        "feedetl_sn": l.feedetl_sn,
        "mdtrt_id": mdtrt_id,
        "psn_no": psn_no,
        "med_list_codg": l.med_list_codg,
        "medins_list_codg": d.medins_list_codg,
        "det_item_fee_sumamt": yuan(Fen(l.det_item_fee_sumamt)),
        "cnt": d.cnt,
        "pric": d.pric,
        "pric_uplmt_amt": d.pric_uplmt_fen.map(|f| yuan(Fen(f))),
        "selfpay_prop": d.selfpay_prop_bp.map(prop_text),
        "fulamt_ownpay_amt": yuan(Fen(l.fulamt_ownpay_amt)),
        "overlmt_amt": yuan(Fen(l.overlmt_selfpay)),
        "preselfpay_amt": yuan(Fen(l.preselfpay_amt)),
        "inscp_scp_amt": yuan(Fen(l.inscp_scp_amt)),
        "chrgitm_lv": lv,
        "chrgitm_lv_name": lv_known.map(ChrgitmLv::name_zh),
        "med_chrgitm_type": d.med_chrgitm_type,
        "bas_medn_flag": "0",
        "hi_nego_drug_flag": "0",
        "chld_medc_flag": "0",
        "list_sp_item_flag": "0",
        "lmt_used_flag": if d.lmt_used_flag == Some(true) { "1" } else { "0" },
        "drt_reim_flag": "0",
        "chrg_bchno": d.chrg_bchno,
        "memo": match d.basis.as_str() {
            "catalogue" => "按医保目录分类",
            "level" => "按机构上传的收费项目等级分类（未导入医保目录）",
            _ => "按机构上传的费用分类（未导入医保目录）",
        },
    })
}

pub fn fee_result_json(lines: &[FeeLine], mdtrt_id: &str, psn_no: &str) -> String {
    json!({ "result": lines.iter().map(|l| line_json(l, mdtrt_id, psn_no)).collect::<Vec<_>>() }).to_string()
}

pub fn parse_fee_cancel(infno: Infno, env: &Envelope) -> NResult<FeeCancel> {
    if infno == Infno::InpatientFeeCancel {
        // 2302: data is an array of {feedetl_sn, mdtrt_id, psn_no}; feedetl_sn "0000" withdraws all.
        let rows: Vec<&Map<String, Value>> = match env.input.get("data") {
            Some(Value::Array(a)) => {
                a.iter().map(|v| v.as_object().ok_or_else(|| refused("input.data 的每一项应为 JSON 对象"))).collect::<NResult<_>>()?
            }
            Some(Value::Object(o)) => vec![o],
            _ => return Err(refused("缺少交易输入 input.data")),
        };
        if rows.is_empty() || rows.len() > MAX_FEE_LINES {
            return Err(refused(format!("input.data 应有 1–{MAX_FEE_LINES} 项")));
        }
        let mut visit: Option<VisitRef> = None;
        let mut serials = Vec::new();
        for (k, o) in rows.iter().enumerate() {
            let at = format!("input.data[{k}]");
            let v = VisitRef { mdtrt_id: req_str(o, "mdtrt_id", &at)?, psn_no: req_str(o, "psn_no", &at)? };
            if visit.as_ref().is_some_and(|f| f.mdtrt_id != v.mdtrt_id || f.psn_no != v.psn_no) {
                return Err(refused(format!("{at}：一次撤销的明细应属于同一就诊")));
            }
            visit.get_or_insert(v);
            serials.push(str_field(o, "feedetl_sn", &at)?.unwrap_or_default());
        }
        let which = if serials.iter().any(|s| s.is_empty() || s == "0000") { FeeWhich::All } else { FeeWhich::Serials(serials) };
        return Ok(FeeCancel { visit: visit.expect("one row"), which });
    }
    let (data, at) = input_obj(env, &["data"])?;
    let visit = VisitRef { mdtrt_id: req_str(data, "mdtrt_id", &at)?, psn_no: req_str(data, "psn_no", &at)? };
    let which = match str_field(data, "chrg_bchno", &at)?.filter(|b| !b.is_empty() && b != "0000") {
        Some(b) => FeeWhich::Batch(b),
        None => FeeWhich::All,
    };
    Ok(FeeCancel { visit, which })
}

pub fn parse_catalogue_query(env: &Envelope) -> NResult<CatalogueQuery> {
    let (data, at) = input_obj(env, &["data"])?;
    let num = |k: &str, default: i64, max: i64| -> NResult<i64> {
        match code_field(data, k, &at)? {
            None => Ok(default),
            Some(s) if s.is_empty() => Ok(default),
            Some(s) => {
                s.parse::<i64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| refused(format!("字段 {at}.{k} 应为 1–{max} 的整数")))
            }
        }
    };
    Ok(CatalogueQuery {
        code: str_field(data, "hilist_code", &at)?.filter(|c| !c.is_empty()),
        valid_on: date_field(data, "query_date", &at)?,
        updated_since: str_field(data, "updt_time", &at)?.filter(|c| !c.is_empty()),
        page_num: num("page_num", 1, 1_000_000)?,
        page_size: num("page_size", 100, 500)?,
    })
}

pub fn parse_chronic_query(env: &Envelope) -> NResult<ChronicDrugQuery> {
    let (data, at) = input_obj(env, &["data"])?;
    Ok(ChronicDrugQuery {
        psn_no: req_str(data, "psn_no", &at)?,
        from: date_field(data, "begntime", &at)?,
        to: date_field(data, "endtime", &at)?,
    })
}

pub async fn catalogue_query(state: &AppState, q: &CatalogueQuery) -> NResult<String> {
    let filter = baozhang_store::catalogue::CatalogueQuery {
        text: None,
        code: q.code.clone(),
        name_contains: None,
        list_type: None,
        valid_on: q.valid_on.map(date_num),
        updated_since: q.updated_since.clone(),
    };
    let (total, items) = state.store.catalogue_page(&filter, q.page_num, q.page_size).await?;
    let d = |n: i64| num_date(n).map_or_else(String::new, |d| d.to_string());
    let data: Vec<Value> = items
        .iter()
        .map(|i| {
            json!({
                "hilist_code": i.hilist_code,
                "hilist_name": i.hilist_name,
                "insu_admdvs": i.insu_admdvs,
                "begndate": d(i.begndate),
                "enddate": i.enddate.map(d),
                "med_chrgitm_type": i.med_chrgitm_type,
                "chrgitm_lv": i.chrgitm_lv,
                "lmt_used_flag": if i.lmt_used_flag { "1" } else { "0" },
                "list_type": i.list_type,
                "selfpay_prop": prop_text(i.selfpay_prop_bp),
                "hilist_pric_uplmt_amt": i.pric_uplmt_fen.map(|f| yuan(Fen(f))),
                "memo": i.lmt_scope,
                "vali_flag": if i.vali_flag { "1" } else { "0" },
                "updt_time": i.updt_time,
            })
        })
        .collect();
    Ok(json!({
        "data": data,
        "recordCounts": total,
        "pageNum": q.page_num,
        "pageSize": q.page_size,
        "pages": (total + q.page_size - 1) / q.page_size,
        "firstPage": q.page_num == 1,
        "lastPage": q.page_num * q.page_size >= total,
    })
    .to_string())
}

/// 5204: the fee lines of one of this institution's visits.
pub async fn fee_query(state: &AppState, env: &Envelope, v: &VisitRef) -> NResult<String> {
    let m = state.store.mdtrt(&v.mdtrt_id).await?.filter(|m| m.fixmedins_code == env.fixmedins_code && m.psn_no == v.psn_no);
    let Some(m) = m else { return Err(refused(format!("本机构没有人员 {} 的就诊 {}", v.psn_no, v.mdtrt_id))) };
    let lines = state.store.fee_lines_of(&m.mdtrt_id).await?;
    Ok(json!({ "feedetail": lines.iter().map(|l| line_json(l, &m.mdtrt_id, &m.psn_no)).collect::<Vec<_>>() }).to_string())
}

/// 5205: a person's 门诊慢特病 (14) fee lines at this institution within the dates.
pub async fn chronic_query(state: &AppState, env: &Envelope, q: &ChronicDrugQuery) -> NResult<String> {
    let visits = state.store.visits_of(&env.fixmedins_code, &q.psn_no, q.from.map(date_num), q.to.map(date_num), 200).await?;
    let mut out = Vec::new();
    for m in visits.iter().filter(|m| m.med_type == 14 && m.status != "cancelled") {
        for l in state.store.fee_lines_of(&m.mdtrt_id).await? {
            let mut j = line_json(&l, &m.mdtrt_id, &m.psn_no);
            j["fee_ocur_time"] = Value::String(num_date(m.begn_date).map_or_else(String::new, |d| format!("{d} 00:00:00")));
            out.push(j);
            if out.len() >= MAX_FEE_LINES {
                break;
            }
        }
    }
    Ok(json!({ "feedetail": out }).to_string())
}

/// Inserts an upload's new lines inside the writer's transaction (a line sent again unchanged is
/// accepted and not stored twice; a changed one is refused).
pub async fn execute_upload(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    fixmedins_code: &str,
    visit: &VisitRef,
    lines: &[FeeLine],
    max_per_visit: usize,
) -> Result<String, ExecError> {
    let mdtrt_id = &visit.mdtrt_id;
    let mut m = service::mdtrt(tx, mdtrt_id).await?.ok_or_else(|| refused(format!("就诊 {mdtrt_id} 不存在，请先办理挂号或入院")))?;
    if let Some((st, _)) = batch.pending_status(mdtrt_id) {
        m.status = st.to_string();
    }
    if m.fixmedins_code != fixmedins_code {
        return Err(refused("该就诊不属于本机构，不能上传费用").into());
    }
    if m.psn_no != visit.psn_no {
        return Err(refused("人员编号与就诊记录不符").into());
    }
    if m.status != "open" {
        return Err(refused(format!("就诊 {mdtrt_id} 已结算或已撤销，不能再上传费用；如需更正请先撤销结算")).into());
    }
    let existing = service::fee_lines(tx, mdtrt_id).await?;
    let by_sn: HashMap<&str, &FeeLine> = existing.iter().map(|e| (e.feedetl_sn.as_str(), e)).collect();
    let mut fresh = Vec::new();
    let mut answer = Vec::with_capacity(lines.len());
    for l in lines {
        match by_sn.get(l.feedetl_sn.as_str()) {
            Some(e)
                if e.det_item_fee_sumamt == l.det_item_fee_sumamt
                    && e.inscp_scp_amt == l.inscp_scp_amt
                    && e.fulamt_ownpay_amt == l.fulamt_ownpay_amt
                    && e.preselfpay_amt == l.preselfpay_amt =>
            {
                answer.push((*e).clone())
            }
            Some(_) => return Err(refused(format!("明细流水号 {} 已上传且金额不同；已上传的明细不能修改，请先撤销", l.feedetl_sn)).into()),
            None => {
                fresh.push(l.clone());
                answer.push(l.clone());
            }
        }
    }
    if existing.len() + fresh.len() > max_per_visit {
        return Err(refused(format!(
            "一次就诊最多 {max_per_visit} 条费用明细（已上传 {} 条，本次新增 {} 条）；请按项目汇总后上传",
            existing.len(),
            fresh.len()
        ))
        .into());
    }
    service::insert_fee_lines(tx, mdtrt_id, &fresh).await?;
    batch.forget_visit(mdtrt_id);
    Ok(fee_result_json(&answer, mdtrt_id, &visit.psn_no))
}

/// Withdraws lines of an open visit inside the writer's transaction (2205 / 2302; 2601 of an upload).
pub async fn execute_cancel(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    fixmedins_code: &str,
    msg_key: &str,
    c: &FeeCancel,
) -> Result<String, ExecError> {
    let m = own_visit(tx, batch, fixmedins_code, &c.visit).await?;
    if m.status != "open" {
        return Err(refused(format!("就诊 {} 已结算或已撤销，不能撤销费用明细；请先撤销结算", m.mdtrt_id)).into());
    }
    let mut n = 0;
    match &c.which {
        FeeWhich::All => n += service::withdraw_fee_lines(tx, &m.mdtrt_id, &Withdraw::All, msg_key).await?,
        FeeWhich::Batch(b) => n += service::withdraw_fee_lines(tx, &m.mdtrt_id, &Withdraw::Batch(b), msg_key).await?,
        FeeWhich::Serials(sns) => {
            for sn in sns {
                let k = service::withdraw_fee_lines(tx, &m.mdtrt_id, &Withdraw::Serial(sn), msg_key).await?;
                if k == 0 {
                    return Err(refused(format!("就诊 {} 没有明细流水号 {sn}", m.mdtrt_id)).into());
                }
                n += k;
            }
        }
    }
    Ok(json!({ "mdtrt_id": m.mdtrt_id, "cnt": n }).to_string())
}

/// Withdraws exactly the lines one upload message stored (2601 of a 2204 / 2301).
pub async fn withdraw_upload(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    mdtrt_id: &str,
    uploaded_by: &str,
    msg_key: &str,
) -> Result<u64, ExecError> {
    batch.flush(tx).await?;
    batch.forget_visit(mdtrt_id);
    Ok(service::withdraw_fee_lines(tx, mdtrt_id, &Withdraw::UploadedBy(uploaded_by), msg_key).await?)
}
