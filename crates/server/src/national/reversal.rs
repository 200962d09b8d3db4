//! 2601 冲正交易: undoing a message whose answer the hospital never received.
//!
//! The hospital names its own earlier message (`omsgid`, `oinfno`). baozhang looks it up among the
//! answers it committed for **this** institution (`msg_log`, keyed by institution and msgid — another
//! institution's message is simply not found) and undoes its effect with the ordinary write of the
//! opposite kind, in the writer, so the ledger stays consistent:
//!
//! | original | reversal |
//! |---|---|
//! | 2207 / 2304 settlement | the settlement is cancelled (as 2208 / 2305) |
//! | 2208 / 2305 cancellation | the visit is settled again from its bill (a new settlement number) |
//! | 2201 / 2401 registration | the visit is cancelled (as 2202 / 2404; refused while it has fee lines) |
//! | 2204 / 2301 fee upload | exactly the lines that message stored are withdrawn |
//!
//! Reversing twice changes nothing the second time (the answer says it was already undone). A message
//! baozhang never committed — refused, or never arrived — has nothing to reverse: the answer says so
//! and nothing is written.

use baozhang_store::ledger::{self, Batch};
use baozhang_store::{Backend, Tx};
use serde_json::{json, Value};

use super::envelope::{code_field, input_obj, refused, req_str, Envelope, Infno, NResult};
use super::fees::withdraw_upload;
use super::settle::{cancel_in_tx, prepare_settle, settle_in_tx, PreparedSettle, SettleReq};
use super::visits::{self, mdtrt_id_of, VisitOp, VisitRef};
use super::{msg_key, Outcome};
use crate::writer::{ExecError, Job};
use crate::{AppState, Policies};

/// 2601 as read.
#[derive(Clone, Debug)]
pub struct Reversal {
    pub psn_no: String,
    pub omsgid: String,
    pub oinfno: Infno,
}

/// What the writer does for a reversal.
#[derive(Debug)]
pub enum ReverseOp {
    Settlement { omsg_key: String, psn_no: String },
    Cancellation { omsg_key: String, prepared: Box<PreparedSettle> },
    Registration { visit: VisitRef },
    Upload { omsg_key: String, mdtrt_id: String },
}

pub fn parse_reversal(env: &Envelope) -> NResult<Reversal> {
    let (data, at) = input_obj(env, &["data"])?;
    let oinfno = code_field(data, "oinfno", &at)?.filter(|s| !s.is_empty()).ok_or_else(|| refused(format!("缺少字段 {at}.oinfno")))?;
    let oinfno = Infno::parse(&oinfno).ok_or_else(|| refused(format!("字段 {at}.oinfno：原交易编号 {oinfno} 不是本系统的交易")))?;
    Ok(Reversal { psn_no: req_str(data, "psn_no", &at)?, omsgid: req_str(data, "omsgid", &at)?, oinfno })
}

fn answer(r: &Reversal, result: &str, setl_id: Option<&str>) -> String {
    json!({"data": {"omsgid": r.omsgid, "oinfno": r.oinfno.code(), "psn_no": r.psn_no, "rvs_rslt": result, "setl_id": setl_id}}).to_string()
}

/// Looks the original up (outside the writer) and decides what to do. `Err(outcome)` is an answer
/// that writes nothing.
pub async fn prepare(
    state: &AppState,
    env: &Envelope,
    inst: &baozhang_store::service::Institution,
    r: &Reversal,
) -> Result<ReverseOp, Outcome> {
    let fail = |e| Outcome::Fresh(Err(e));
    let key = msg_key(&env.fixmedins_code, &r.omsgid);
    let logged = state.store.msg(&key).await.map_err(|e| fail(e.into()))?;
    let Some(logged) = logged else {
        return Err(Outcome::Fresh(Ok(answer(r, "原交易未在中心登记（未到达或已被拒绝），无需冲正", None))));
    };
    if logged.infno != r.oinfno.code() {
        return Err(fail(refused(format!("原报文 {} 的交易编号是 {}，不是 {}", r.omsgid, logged.infno, r.oinfno))));
    }
    let orig: Value = serde_json::from_str(&logged.response).unwrap_or(Value::Null);
    let out = &orig["output"];
    match r.oinfno {
        Infno::OutpatientSettle | Infno::InpatientSettle => Ok(ReverseOp::Settlement { omsg_key: key, psn_no: r.psn_no.clone() }),
        Infno::OutpatientSettleCancel | Infno::InpatientSettleCancel => {
            let info = &out["setlinfo"];
            let (Some(mdtrt_id), Some(psn_no)) = (info["mdtrt_id"].as_str(), info["psn_no"].as_str()) else {
                return Err(fail(refused("原撤销报文的应答无法解析，不能冲正；请联系医保局")));
            };
            if psn_no != r.psn_no {
                return Err(fail(refused("人员编号与原交易不符")));
            }
            // The original settlement's bill, stated again: its fee lines (if any) must still add up to it.
            let amt = |k: &str| info[k].to_string().trim_matches('"').trim_start_matches('-').to_string();
            let fen = |k: &str| baozhang_core::Fen::parse_yuan(&amt(k)).map_err(|_| fail(refused("原撤销报文的金额无法解析")));
            // Settle again for the day the cancelled settlement was made for (policy and identities of that day).
            let cancelled = state.store.settlement(info["setl_id"].as_str().unwrap_or("")).await.map_err(|e| fail(e.into()))?;
            let orig = match cancelled.as_ref().and_then(|c| c.reverses.clone()) {
                Some(o) => state.store.settlement(&o).await.map_err(|e| fail(e.into()))?,
                None => None,
            };
            let req = SettleReq {
                inpatient: r.oinfno == Infno::InpatientSettleCancel,
                mdtrt_id: mdtrt_id.to_string(),
                psn_no: psn_no.to_string(),
                cert_no: None,
                mdtrt_cert_type: "02".into(),
                stated_total: fen("medfee_sumamt")?,
                stated_parts: Some([fen("fulamt_ownpay_amt")?, fen("overlmt_selfpay")?, fen("preselfpay_amt")?, fen("inscp_scp_amt")?]),
                setl_date: orig.as_ref().and_then(|o| baozhang_store::num_date(o.setl_date)),
            };
            let prepared = prepare_settle(state, env, inst, &req).await.map_err(fail)?;
            Ok(ReverseOp::Cancellation { omsg_key: key, prepared: Box::new(prepared) })
        }
        Infno::OutpatientRegister | Infno::Admission => Ok(ReverseOp::Registration {
            visit: VisitRef { mdtrt_id: mdtrt_id_of(&env.fixmedins_code, &r.omsgid), psn_no: r.psn_no.clone() },
        }),
        Infno::OutpatientFeeUpload | Infno::InpatientFeeUpload => {
            let Some(mdtrt_id) = out["result"].get(0).and_then(|l| l["mdtrt_id"].as_str()) else {
                return Err(fail(refused("原费用上传报文的应答无法解析，不能冲正")));
            };
            Ok(ReverseOp::Upload { omsg_key: key, mdtrt_id: mdtrt_id.to_string() })
        }
        other => Err(fail(refused(format!(
            "交易 {other}（{}）不能冲正；可冲正的交易：2207、2208、2304、2305、2201、2401、2204、2301",
            other.name_zh()
        )))),
    }
}

/// Runs a reversal inside the writer's transaction; returns the `output` text.
pub async fn execute(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    backend: Backend,
    policies: &Policies,
    job: &Job,
    r: &Reversal,
    op: &ReverseOp,
) -> Result<String, ExecError> {
    match op {
        ReverseOp::Settlement { omsg_key, psn_no } => {
            batch.flush(tx).await?;
            let s = ledger::settlement_by_msgid(tx, omsg_key).await?.ok_or_else(|| refused("原结算报文没有结算记录，无需冲正"))?;
            if &s.psn_no != psn_no {
                return Err(refused("人员编号与原交易不符").into());
            }
            if let Some(by) = &s.cancelled_by {
                return Ok(answer(r, &format!("原结算已撤销（撤销记录 {by}），无需再冲正"), None));
            }
            let out = cancel_in_tx(tx, batch, backend, policies, job, &s.setl_id, &s.mdtrt_id, &s.psn_no).await?;
            let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
            Ok(answer(r, "已冲正：原结算已撤销", v["setlinfo"]["setl_id"].as_str()))
        }
        ReverseOp::Cancellation { omsg_key, prepared } => {
            batch.flush(tx).await?;
            let c = ledger::settlement_by_msgid(tx, omsg_key).await?.ok_or_else(|| refused("原撤销报文没有撤销记录，无需冲正"))?;
            if c.reverses.is_none() {
                return Err(refused("原报文不是结算撤销").into());
            }
            let visit = baozhang_store::service::mdtrt(tx, &c.mdtrt_id).await?.ok_or_else(|| refused("原就诊不存在"))?;
            match visit.status.as_str() {
                "open" => {}
                "cancelled" => return Err(refused(format!("就诊 {} 已撤销，不能冲正其结算撤销", visit.mdtrt_id)).into()),
                _ => {
                    return Ok(answer(
                        r,
                        &format!("该就诊已重新结算（结算编号 {}），无需冲正", visit.setl_id.as_deref().unwrap_or("-")),
                        None,
                    ))
                }
            }
            let out = settle_in_tx(tx, batch, backend, policies, job, prepared).await?;
            let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
            Ok(answer(r, "已冲正：该就诊已按原费用重新结算", v["setlinfo"]["setl_id"].as_str()))
        }
        ReverseOp::Registration { visit } => {
            let m = visits::own_visit(tx, batch, &job.fixmedins_code, visit).await?;
            if m.status == "cancelled" {
                return Ok(answer(r, "原就诊已撤销，无需再冲正", None));
            }
            visits::execute(tx, batch, &job.fixmedins_code, &job.infno, &job.msgid, &VisitOp::Cancel(visit.clone())).await?;
            Ok(answer(r, "已冲正：原挂号（入院）已撤销", None))
        }
        ReverseOp::Upload { omsg_key, mdtrt_id } => {
            let m = visits::own_visit(tx, batch, &job.fixmedins_code, &VisitRef { mdtrt_id: mdtrt_id.clone(), psn_no: r.psn_no.clone() })
                .await?;
            if m.status != "open" {
                return Err(refused(format!("就诊 {mdtrt_id} 已结算，不能冲正其费用明细；请先撤销结算")).into());
            }
            let n = withdraw_upload(tx, batch, mdtrt_id, omsg_key, &job.msgid).await?;
            Ok(answer(r, &format!("已冲正：撤销该报文上传的 {n} 条费用明细"), None))
        }
    }
}
