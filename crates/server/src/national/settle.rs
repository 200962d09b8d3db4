//! Settlement: pre-settlement (2206 / 2303), settlement (2207 / 2304), its cancellation (2208 / 2305)
//! and the settlement query (5203). A settlement is prepared outside the writer (the visit, the person's
//! identities on the day, the policy in force) and computed inside it against the locked accumulators.

use baozhang_core::claim::{Filing, HospGrade, Place, Site};
use baozhang_core::engine::{reverse, settle, within_bounds, Settlement};
use baozhang_core::policy::Policy;
use baozhang_core::{Bill, Claim, Date, Fen, HospLevel, Identity, IdentitySet, MedType};
use baozhang_ingest::output::{explanation_json, setldetail_json, setlinfo_json, SetlAmounts};
use baozhang_ingest::worklist::mask_id;
use baozhang_store::ledger::{self, Batch, SettlementHead, StoredSettlement, Totals};
use baozhang_store::service::{self, FeeLine, Institution, Mdtrt, PersonRecord};
use baozhang_store::{date_num, num_date, Backend, StoreError, Tx};
use serde_json::{Map, Value};

use super::envelope::{amount_field, date_field, input_obj, refused, req_amount, req_str, str_field, Envelope, Infno, NResult, NatError};
use super::person::{age_on, gend};
use crate::writer::{ExecError, Job};
use crate::{clock, AppState, Policies};

/// 2206 / 2207 / 2303 / 2304 as read from the message.
#[derive(Clone, Debug)]
pub struct SettleReq {
    pub inpatient: bool,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub cert_no: Option<String>,
    pub mdtrt_cert_type: String,
    pub stated_total: Fen,
    pub stated_parts: Option<[Fen; 4]>,
    /// Discharge or settlement date the message states (else the visit's discharge, else its start).
    pub setl_date: Option<Date>,
}

/// 2208 / 2305 / 5203: a settlement named by its number, visit and person.
#[derive(Clone, Debug)]
pub struct SettleRef {
    pub setl_id: String,
    pub mdtrt_id: String,
    pub psn_no: String,
}

/// Who was settled, as the answer names them to the institution where the certificate was presented.
#[derive(Clone, Debug)]
pub struct SetlPerson {
    pub name: String,
    pub certno: String,
    pub gend: &'static str,
    pub brdy: Option<Date>,
    pub mdtrt_cert_type: String,
}

/// Everything a settlement needs that does not change under it (read before it is queued).
#[derive(Clone, Debug)]
pub struct PreparedSettle {
    pub mdtrt: Mdtrt,
    pub psn_no: String,
    pub village_code: Option<String>,
    pub institution: Institution,
    pub setl_date: Date,
    pub identities: IdentitySet,
    pub policy_version: String,
    /// The four parts the message states (checked against the uploaded fee lines, or used when none).
    pub stated_total: Fen,
    pub stated_parts: Option<[Fen; 4]>,
    pub person: SetlPerson,
    /// Where the care happened and under what filing (from the insured area, the institution and the
    /// person's 2501 referral filings).
    pub place: Place,
    pub filing: Filing,
}

pub fn parse_settle(infno: Infno, env: &Envelope) -> NResult<SettleReq> {
    let (data, at) = input_obj(env, &["data", "mdtrtinfo"])?;
    let parts = [
        amount_field(data, "fulamt_ownpay_amt", &at)?,
        amount_field(data, "overlmt_selfpay", &at)?,
        amount_field(data, "preselfpay_amt", &at)?,
        amount_field(data, "inscp_scp_amt", &at)?,
    ];
    Ok(SettleReq {
        inpatient: infno.inpatient(),
        mdtrt_id: req_str(data, "mdtrt_id", &at)?,
        psn_no: req_str(data, "psn_no", &at)?,
        cert_no: str_field(data, "mdtrt_cert_no", &at)?.filter(|c| !c.is_empty()),
        mdtrt_cert_type: super::envelope::code_field(data, "mdtrt_cert_type", &at)?.unwrap_or_else(|| "02".to_string()),
        stated_total: req_amount(data, "medfee_sumamt", &at)?,
        stated_parts: if parts.iter().any(Option::is_some) { Some(parts.map(|p| p.unwrap_or(Fen::ZERO))) } else { None },
        setl_date: date_field(data, "dscg_time", &at)?.or(date_field(data, "setl_time", &at)?).or(date_field(data, "endtime", &at)?),
    })
}

pub fn parse_settle_ref(env: &Envelope) -> NResult<SettleRef> {
    let (data, at) = input_obj(env, &["data"])?;
    Ok(SettleRef {
        setl_id: req_str(data, "setl_id", &at)?,
        mdtrt_id: req_str(data, "mdtrt_id", &at)?,
        psn_no: req_str(data, "psn_no", &at)?,
    })
}

fn setl_person(p: &PersonRecord, mdtrt_cert_type: &str) -> SetlPerson {
    SetlPerson {
        name: p.name.clone(),
        certno: p.id_no.clone(),
        gend: gend(p),
        brdy: num_date(p.birth_date),
        mdtrt_cert_type: mdtrt_cert_type.chars().take(3).collect(),
    }
}

pub async fn prepare_settle(state: &AppState, env: &Envelope, inst: &Institution, r: &SettleReq) -> NResult<PreparedSettle> {
    let (mdtrt, person) = state
        .store
        .mdtrt_with_person(&r.mdtrt_id)
        .await?
        .ok_or_else(|| refused(format!("就诊 {} 不存在，请先办理挂号或入院", r.mdtrt_id)))?;
    check_own_visit(&mdtrt, env, &r.psn_no)?;
    if let Some(cert) = &r.cert_no {
        if cert.to_ascii_uppercase() != mdtrt.id_no {
            return Err(refused("就诊凭证号码与就诊人员不符"));
        }
    }
    if mdtrt.status == "cancelled" {
        return Err(refused(format!("就诊 {} 已撤销", mdtrt.mdtrt_id)));
    }
    let inpatient = r.inpatient;
    if (mdtrt.med_type == 21) != inpatient {
        return Err(refused(if inpatient {
            "该就诊为门诊，请使用门诊结算交易（2206/2207）"
        } else {
            "该就诊为住院，请使用住院结算交易（2303/2304）"
        }));
    }
    let begn = num_date(mdtrt.begn_date).ok_or_else(|| NatError::Internal("就诊日期数据有误".into()))?;
    let setl_date = match r.setl_date.or(mdtrt.end_date.and_then(num_date)) {
        Some(d) if d < begn => return Err(refused("出院（结算）日期早于就诊开始日期")),
        Some(d) => d,
        None => begn,
    };
    if setl_date.year() != begn.year() && !inpatient {
        return Err(refused("门诊结算日期应与挂号在同一年度"));
    }
    let (village_code, periods) = person.ok_or_else(|| refused("就诊人员已不在人员库中"))?;
    let record = state.store.person(&mdtrt.id_no).await?.ok_or_else(|| refused("就诊人员已不在人员库中"))?;
    let d = date_num(setl_date);
    let mut ids = IdentitySet::EMPTY;
    for p in &periods {
        if p.start_date <= d && p.end_date.is_none_or(|e| e > d) {
            if let Some(i) = Identity::parse(&p.identity) {
                ids = ids.with(i);
            }
        }
    }
    let policy = state
        .policies
        .for_area(&mdtrt.insuplc_admdvs, setl_date)
        .ok_or_else(|| refused(format!("参保地 {} 在 {setl_date} 没有生效的结算政策，请联系医保局配置", mdtrt.insuplc_admdvs)))?;
    // Care outside the insured prefecture (the pool) needs a filing: a live 2501 referral filing for this
    // institution makes it a referral, else it is unfiled. Inside the pool no filing applies.
    let place = Place::from_divisions(&mdtrt.insuplc_admdvs, &inst.admdvs);
    let filing = match place {
        Place::Province | Place::OutOfProvince => {
            if state.store.referral_filed(&mdtrt.psn_no, d, &inst.fixmedins_code, &inst.admdvs).await? {
                Filing::Referral
            } else {
                Filing::Unfiled
            }
        }
        _ => Filing::None,
    };
    Ok(PreparedSettle {
        place,
        filing,
        psn_no: mdtrt.psn_no.clone(),
        village_code,
        mdtrt,
        institution: inst.clone(),
        setl_date,
        identities: ids,
        policy_version: policy.version.clone(),
        stated_total: r.stated_total,
        stated_parts: r.stated_parts,
        person: setl_person(&record, &r.mdtrt_cert_type),
    })
}

fn check_own_visit(m: &Mdtrt, env: &Envelope, psn_no: &str) -> NResult<()> {
    if m.fixmedins_code != env.fixmedins_code {
        return Err(refused("该就诊不属于本机构，无权查看或结算"));
    }
    if m.psn_no != psn_no {
        return Err(refused("人员编号与就诊记录不符"));
    }
    Ok(())
}

/// The bill: the sum of the uploaded fee lines (checked against what the message states), or, when
/// nothing was uploaded, the four parts the message states.
fn bill_for(p: &PreparedSettle, lines: &[FeeLine]) -> NResult<Bill> {
    if lines.is_empty() {
        let Some([ful, over, pre, inscp]) = p.stated_parts else {
            return Err(refused("该就诊没有上传费用明细（2301/2204），结算报文也未给出费用四项金额"));
        };
        return Bill::new(p.stated_total, ful, over, pre, inscp).map_err(|e| refused(e.to_string()));
    }
    let sum = |f: fn(&FeeLine) -> i64| Fen(lines.iter().map(f).sum());
    let bill = Bill::new(
        sum(|l| l.det_item_fee_sumamt),
        sum(|l| l.fulamt_ownpay_amt),
        sum(|l| l.overlmt_selfpay),
        sum(|l| l.preselfpay_amt),
        sum(|l| l.inscp_scp_amt),
    )
    .map_err(|e| refused(e.to_string()))?;
    if bill.total() != p.stated_total {
        return Err(refused(format!(
            "结算报文的医疗费总额 {} 元与已上传的 {} 条费用明细合计 {} 元不符",
            p.stated_total,
            lines.len(),
            bill.total()
        )));
    }
    if let Some([ful, over, pre, inscp]) = p.stated_parts {
        if [ful, over, pre, inscp] != [bill.fulamt_ownpay(), bill.overlmt_selfpay(), bill.preselfpay(), bill.compliant()] {
            return Err(refused("结算报文的费用四项与已上传的费用明细合计不符"));
        }
    }
    Ok(bill)
}

fn claim_for(p: &PreparedSettle, bill: Bill) -> NResult<Claim> {
    let med_type = MedType::from_code(p.mdtrt.med_type as u16).ok_or_else(|| NatError::Internal("就诊医疗类别数据有误".into()))?;
    let hosp_lv = HospLevel::new(p.institution.hosp_lv as u8).ok_or_else(|| refused("本机构的医院等级未正确登记，请联系医保局"))?;
    // The institution's registered grade and primary care; the place and filing found when prepared.
    let site = Site {
        grade: HospGrade::new(p.institution.hosp_grade.clamp(0, 11) as u8)
            .filter(|g| g.level().is_none_or(|l| l == hosp_lv))
            .unwrap_or_default(),
        primary_care: p.institution.primary_care && hosp_lv.get() == 1,
        place: p.place,
        filing: p.filing,
    };
    Ok(Claim {
        site,
        setl_date: p.setl_date,
        med_type,
        hosp_lv,
        in_county: p.institution.admdvs == p.mdtrt.insuplc_admdvs,
        referral_ok: p.mdtrt.referral_ok,
        major_disease: p.mdtrt.major_disease,
        bill,
    })
}

fn policy_of<'a>(policies: &'a Policies, p: &PreparedSettle) -> NResult<&'a Policy> {
    policies.by_version(&p.policy_version).ok_or_else(|| NatError::Internal("结算政策已变更，请重试".into()))
}

/// What the answer says about the settlement besides its money.
pub struct SetlContext<'a> {
    pub mdtrt_id: &'a str,
    pub setl_id: &'a str,
    pub psn_no: &'a str,
    pub med_type: i64,
    pub setl_date: Option<Date>,
    pub insuplc_admdvs: &'a str,
    /// The person, named to the institution where the certificate was presented (None: not named).
    pub person: Option<&'a SetlPerson>,
    /// When it was settled (Beijing time); None: now (a settlement being answered).
    pub setl_time: Option<String>,
}

/// `setlinfo` (the money of `setlinfo_json` and the person and visit fields real clients read),
/// `setldetail`, and the explanation of a pre-settlement.
pub fn settlement_output(c: &SetlContext, a: &SetlAmounts, explanation: Option<&str>) -> String {
    let money = setlinfo_json(c.mdtrt_id, c.setl_id, c.psn_no, a);
    let mut info: Map<String, Value> = serde_json::from_str(&money).expect("setlinfo_json writes a JSON object");
    let text = |v: &str| Value::String(v.to_string());
    if let Some(p) = c.person {
        info.insert("psn_name".into(), text(&p.name));
        info.insert("psn_cert_type".into(), text("01"));
        info.insert("certno".into(), text(&p.certno));
        info.insert("gend".into(), text(p.gend));
        info.insert("naty".into(), text(""));
        info.insert("brdy".into(), p.brdy.map_or(Value::Null, |b| Value::String(b.to_string())));
        let on = c.setl_date.unwrap_or_else(clock::today);
        info.insert("age".into(), p.brdy.map_or(Value::Null, |b| Value::from(age_on(b, on))));
        info.insert("mdtrt_cert_type".into(), text(&p.mdtrt_cert_type));
    }
    info.insert("insutype".into(), text("390"));
    info.insert("psn_type".into(), text("1501"));
    info.insert("cvlserv_flag".into(), text("0"));
    info.insert("setl_time".into(), text(&c.setl_time.clone().unwrap_or_else(|| clock::readable(clock::unix_ms_now()))));
    info.insert("med_type".into(), text(&c.med_type.to_string()));
    info.insert("medins_setl_id".into(), text(c.setl_id));
    info.insert("clr_optins".into(), text(c.insuplc_admdvs));
    info.insert("clr_way".into(), text("1"));
    let mut o = format!("{{\"setlinfo\":{},\"setldetail\":{}", Value::Object(info), setldetail_json(a));
    if let Some(e) = explanation {
        o.push_str(",\"explanation\":");
        o.push_str(e);
    }
    o.push('}');
    o
}

impl PreparedSettle {
    fn context<'a>(&'a self, setl_id: &'a str) -> SetlContext<'a> {
        SetlContext {
            mdtrt_id: &self.mdtrt.mdtrt_id,
            setl_id,
            psn_no: &self.psn_no,
            med_type: self.mdtrt.med_type,
            setl_date: Some(self.setl_date),
            insuplc_admdvs: &self.mdtrt.insuplc_admdvs,
            person: Some(&self.person),
            setl_time: None,
        }
    }
}

pub async fn pre_settle(state: &AppState, p: &PreparedSettle) -> NResult<String> {
    if p.mdtrt.status != "open" {
        // Its own settlement is already in the accumulators: a computation now would be a second one.
        return Err(refused(format!(
            "就诊 {} 已结算（结算编号 {}），不能预结算；如需重新结算请先撤销",
            p.mdtrt.mdtrt_id,
            p.mdtrt.setl_id.as_deref().unwrap_or("-")
        )));
    }
    let mut c = state.store.pool().acquire().await.map_err(StoreError::from)?;
    let lines = service::fee_lines(&mut c, &p.mdtrt.mdtrt_id).await?;
    drop(c);
    let bill = bill_for(p, &lines)?;
    let claim = claim_for(p, bill)?;
    let policy = policy_of(&state.policies, p)?;
    policy.accepts(&claim).map_err(|n| refused(n.reason))?;
    let acc = ledger::read_accumulators(&state.store, &p.psn_no, claim.year()).await?;
    if !acc.policy_id.is_empty() && acc.policy_id != policy.meta.id {
        return Err(policy_mismatch(&acc.policy_id, policy));
    }
    if !within_bounds(&claim, &acc.acc) {
        return Err(beyond_bounds());
    }
    let (s, _) = settle(policy, &claim, p.identities, &acc.acc);
    let a = SetlAmounts::of(&s, &bill);
    // The answer names the person: logged, as the settlement's is (PIPL).
    state
        .store
        .log_access(&p.institution.fixmedins_code, "hospital", "pre-settlement", &mask_id(&p.mdtrt.id_no), "预结算应答含姓名与证件号")
        .await?;
    Ok(settlement_output(&p.context(""), &a, Some(&explanation_json(policy, &s))))
}

fn beyond_bounds() -> NatError {
    refused(format!(
        "该人员本年度累计医疗费用将超过系统上限（{} 元），不能按一站式结算办理；请联系医保经办机构核查",
        Fen(baozhang_core::engine::MAX_ANNUAL_FEN).grouped()
    ))
}

fn policy_mismatch(had: &str, policy: &Policy) -> NatError {
    refused(format!("该人员本年度已按政策 {had} 结算，与本次适用的政策 {} 不同；请由医保局做年度重算", policy.meta.id))
}

pub async fn settle_in_tx(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    backend: Backend,
    policies: &Policies,
    job: &Job,
    p: &PreparedSettle,
) -> Result<String, ExecError> {
    let mdtrt_id = &p.mdtrt.mdtrt_id;
    let visit = match batch.visit(mdtrt_id) {
        Some(v) => Some(v.clone()),
        None => service::mdtrt_status_and_lines(tx, mdtrt_id).await?,
    };
    let (mut status, mut current_setl, lines) = visit.ok_or_else(|| refused(format!("就诊 {mdtrt_id} 不存在")))?;
    if let Some((st, setl)) = batch.pending_status(mdtrt_id) {
        (status, current_setl) = (st.to_string(), setl.map(str::to_string));
    }
    if status != "open" {
        return Err(refused(format!(
            "就诊 {mdtrt_id} 已结算（结算编号 {}），不能重复结算；如需重新结算请先撤销",
            current_setl.as_deref().unwrap_or("-")
        ))
        .into());
    }
    let bill = bill_for(p, &lines)?;
    let claim = claim_for(p, bill)?;
    let policy = policy_of(policies, p)?;
    policy.accepts(&claim).map_err(|n| refused(n.reason))?;
    let locked = ledger::lock_accumulators(tx, batch, &p.psn_no, claim.year()).await?;
    if !locked.policy_id.is_empty() && locked.policy_id != policy.meta.id {
        return Err(policy_mismatch(&locked.policy_id, policy).into());
    }
    if !within_bounds(&claim, &locked.acc) {
        return Err(beyond_bounds().into());
    }
    let (s, after) = settle(policy, &claim, p.identities, &locked.acc);
    let seq = ledger::next_seq(tx, backend, batch).await?;
    let setl_id = setl_id_of(seq);
    let entries = ledger::entries_of(policy, &s);
    let head = SettlementHead {
        setl_id: setl_id.clone(),
        seq,
        reverses: None,
        msgid: job.msgid.clone(),
        mdtrt_id: mdtrt_id.clone(),
        psn_no: p.psn_no.clone(),
        id_no: p.mdtrt.id_no.clone(),
        village_code: p.village_code.clone(),
        fixmedins_code: job.fixmedins_code.clone(),
        insuplc_admdvs: p.mdtrt.insuplc_admdvs.clone(),
        setl_date: date_num(p.setl_date),
        hosp_lv: p.institution.hosp_lv,
        identities: i64::from(p.identities.bits()),
        policy_id: policy.meta.id.clone(),
        policy_version: policy.version.clone(),
        fulamt_ownpay_amt: bill.fulamt_ownpay().0,
        overlmt_selfpay: bill.overlmt_selfpay().0,
        preselfpay_amt: bill.preselfpay().0,
        outcome_json: explanation_json(policy, &s),
        opter: job.opter.clone(),
        claim_flags: Some(ledger::claim_flags(claim.in_county, claim.referral_ok, claim.major_disease)),
    };
    // The visit moves open → settled at flush, conditionally: if another process settled it since we read
    // it above, the flush fails and the batch is retried, and the retry sees it settled and refuses.
    batch.set_status(mdtrt_id, "open", "settled", Some(&setl_id));
    ledger::append(batch, &head, &Totals::of(&s), &entries, &locked, &after, &policy.meta.id, policy.layers.len())?;
    let a = SetlAmounts::of(&s, &bill);
    tracing::debug!(setl_id = %setl_id, psn_no = %p.psn_no, "settled");
    // The answer names the person (the certificate was presented at this window): logged, PIPL.
    service::log_access_in(
        tx,
        &format!("{}/{}", job.fixmedins_code, job.opter),
        "hospital",
        &job.infno,
        &mask_id(&p.mdtrt.id_no),
        "结算应答含姓名与证件号",
    )
    .await?;
    Ok(settlement_output(&p.context(&setl_id), &a, None))
}

pub use baozhang_store::ledger::setl_id_of;

#[allow(clippy::too_many_arguments)]
pub async fn cancel_in_tx(
    tx: &mut Tx<'_>,
    batch: &mut Batch,
    backend: Backend,
    policies: &Policies,
    job: &Job,
    setl_id: &str,
    mdtrt_id: &str,
    psn_no: &str,
) -> Result<String, ExecError> {
    // The settlement may have been written earlier in this batch: put pending rows in first.
    batch.flush(tx).await?;
    let orig = ledger::settlement_in_tx(tx, setl_id).await?.ok_or_else(|| refused(format!("结算 {setl_id} 不存在")))?;
    if orig.fixmedins_code != job.fixmedins_code {
        return Err(refused("该结算不属于本机构，无权撤销").into());
    }
    if orig.reverses.is_some() {
        return Err(refused(format!("{setl_id} 本身是一笔撤销记录，不能再撤销")).into());
    }
    if orig.mdtrt_id != mdtrt_id || orig.psn_no != psn_no {
        return Err(refused("结算编号与就诊编号或人员编号不符").into());
    }
    if let Some(by) = &orig.cancelled_by {
        return Err(refused(format!("结算 {setl_id} 已于撤销记录 {by} 撤销")).into());
    }
    let policy = policies
        .by_version(&orig.policy_version)
        .ok_or_else(|| refused(format!("原结算所用政策版本 {} 未加载，无法撤销；请联系医保局", orig.policy_version)))?;
    let year = orig.year as u16;
    let locked = ledger::lock_accumulators(tx, batch, psn_no, year).await?;
    // Read again under the lock: another process may have cancelled it while we waited.
    if let Some(by) = ledger::settlement_in_tx(tx, setl_id).await?.and_then(|o| o.cancelled_by) {
        return Err(refused(format!("结算 {setl_id} 已于撤销记录 {by} 撤销")).into());
    }
    // What the settlement amounts to now: its entries and any re-settlement adjustments of it.
    let entries = ledger::effective_entries(tx, setl_id).await?;
    // Rebuild the original settlement's accumulator effect and let the engine reverse it.
    let mut s = Settlement::blank();
    s.policy_version = policy.version_id;
    s.year = year;
    s.med_type = MedType::from_code(orig.med_type as u16).ok_or_else(|| NatError::Internal("结算医疗类别数据有误".into()))?;
    s.level_index = (orig.hosp_lv - 1).clamp(0, 2) as u8;
    s.n_layers = policy.layers.len() as u8;
    for e in entries.iter().filter(|e| e.layer >= 0) {
        let l = &mut s.layers[e.layer as usize];
        l.amount_fen = e.amount_fen;
        l.acc_base_delta_fen = e.base_delta_fen;
        l.acc_personal_delta_fen = e.personal_delta_fen;
    }
    if let Some(pe) = entries.iter().find(|e| e.stay_level >= 0) {
        s.level_index = pe.stay_level as u8;
    }
    let after = reverse(policy, &s, &locked.acc).map_err(|e| refused(format!("撤销失败：{e}")))?;
    let seq = ledger::next_seq(tx, backend, batch).await?;
    let new_id = setl_id_of(seq);
    let totals = ledger::effective_totals(tx, &orig).await?.negated();
    let head = SettlementHead {
        setl_id: new_id.clone(),
        seq,
        reverses: Some(setl_id.to_string()),
        msgid: job.msgid.clone(),
        mdtrt_id: mdtrt_id.to_string(),
        psn_no: psn_no.to_string(),
        id_no: orig.id_no.clone(),
        village_code: orig.village_code.clone(),
        fixmedins_code: orig.fixmedins_code.clone(),
        insuplc_admdvs: orig.insuplc_admdvs.clone(),
        setl_date: orig.setl_date,
        hosp_lv: orig.hosp_lv,
        identities: orig.identities,
        policy_id: orig.policy_id.clone(),
        policy_version: orig.policy_version.clone(),
        fulamt_ownpay_amt: -orig.fulamt_ownpay_amt,
        overlmt_selfpay: -orig.overlmt_selfpay,
        preselfpay_amt: -orig.preselfpay_amt,
        outcome_json: "[]".to_string(),
        opter: job.opter.clone(),
        claim_flags: orig.claim_flags,
    };
    let neg = ledger::negated(&entries);
    // As in a settlement: the refusal before any write.
    batch.forget_visit(mdtrt_id);
    if !service::set_mdtrt_status(tx, mdtrt_id, "settled", "open", None).await? {
        return Err(refused(format!("就诊 {mdtrt_id} 当前不是已结算状态")).into());
    }
    ledger::append(batch, &head, &totals, &neg, &locked, &after, &orig.policy_id, policy.layers.len())?;
    // A settlement that was not the person-year's last: the later ones were computed on accumulators
    // that included it. Settle the year again in this transaction (adjustment entries, reason
    // 'cancellation'), so the ledger is right the moment the cancellation commits.
    if ledger::later_live_settlements(tx, psn_no, year, orig.seq).await? > 0 {
        batch.flush(tx).await?;
        let place = orig.village_code.clone().unwrap_or_else(|| orig.insuplc_admdvs.clone());
        crate::resettle::after_cancellation(tx, batch, policies, psn_no, &place, year, setl_id, &job.opter).await?;
    }
    let mut funds = [0i64; 6];
    for e in &neg {
        if let Some(f) = baozhang_core::policy::ALL_FUNDS.iter().find(|f| f.code() == e.fund) {
            funds[f.index()] += e.amount_fen;
        }
    }
    let a = SetlAmounts {
        medfee_sumamt: Fen(totals.medfee_sumamt),
        fulamt_ownpay_amt: Fen(head.fulamt_ownpay_amt),
        overlmt_selfpay: Fen(head.overlmt_selfpay),
        preselfpay_amt: Fen(head.preselfpay_amt),
        inscp_scp_amt: Fen(totals.inscp_scp_amt),
        act_pay_dedc: Fen(totals.act_pay_dedc),
        funds_fen: funds,
        fund_pay_sumamt: Fen(totals.fund_pay_sumamt),
        hosp_part_amt: Fen(totals.hosp_part_amt),
        psn_part_amt: Fen(totals.psn_part_amt),
        clr_type: orig.med_type as u16,
    };
    let ctx = SetlContext {
        mdtrt_id,
        setl_id: &new_id,
        psn_no,
        med_type: orig.med_type,
        setl_date: num_date(orig.setl_date),
        insuplc_admdvs: &orig.insuplc_admdvs,
        person: None,
        setl_time: None,
    };
    Ok(settlement_output(&ctx, &a, None))
}

/// The money of a stored settlement (or cancellation) as it stands: its entries and any re-settlement
/// adjustments (5203).
pub async fn stored_amounts(c: &mut sqlx::AnyConnection, s: &StoredSettlement) -> Result<SetlAmounts, StoreError> {
    let totals = ledger::effective_totals(c, s).await?;
    let entries = ledger::effective_entries(c, &s.setl_id).await?;
    let mut funds = [0i64; 6];
    for e in &entries {
        if let Some(f) = baozhang_core::policy::ALL_FUNDS.iter().find(|f| f.code() == e.fund) {
            funds[f.index()] += e.amount_fen;
        }
    }
    Ok(SetlAmounts {
        medfee_sumamt: Fen(totals.medfee_sumamt),
        fulamt_ownpay_amt: Fen(s.fulamt_ownpay_amt),
        overlmt_selfpay: Fen(s.overlmt_selfpay),
        preselfpay_amt: Fen(s.preselfpay_amt),
        inscp_scp_amt: Fen(totals.inscp_scp_amt),
        act_pay_dedc: Fen(totals.act_pay_dedc),
        funds_fen: funds,
        fund_pay_sumamt: Fen(totals.fund_pay_sumamt),
        hosp_part_amt: Fen(totals.hosp_part_amt),
        psn_part_amt: Fen(totals.psn_part_amt),
        clr_type: s.med_type as u16,
    })
}

/// 5203: one of this institution's settlements, as it stands now (with re-settlement adjustments).
pub async fn settlement_query(state: &AppState, env: &Envelope, r: &SettleRef) -> NResult<String> {
    let s = state.store.settlement(&r.setl_id).await?;
    let Some(s) = s.filter(|s| s.fixmedins_code == env.fixmedins_code && s.mdtrt_id == r.mdtrt_id && s.psn_no == r.psn_no) else {
        return Err(refused(format!("本机构没有结算 {}（就诊 {}，人员 {}）", r.setl_id, r.mdtrt_id, r.psn_no)));
    };
    let mut c = state.store.pool().acquire().await.map_err(StoreError::from)?;
    let a = stored_amounts(&mut c, &s).await?;
    drop(c);
    let person = state.store.person(&s.id_no).await?.map(|p| setl_person(&p, "02"));
    if person.is_some() {
        state
            .store
            .log_access(&format!("{}/{}", env.fixmedins_code, env.opter), "hospital", "5203", &mask_id(&s.id_no), "结算信息查询")
            .await?;
    }
    let ctx = SetlContext {
        mdtrt_id: &s.mdtrt_id,
        setl_id: &s.setl_id,
        psn_no: &s.psn_no,
        med_type: s.med_type,
        setl_date: num_date(s.setl_date),
        insuplc_admdvs: &s.insuplc_admdvs,
        person: person.as_ref(),
        setl_time: Some(clock::beijing_text(&s.created_at)),
    };
    let out = settlement_output(&ctx, &a, None);
    // The query also says whether the settlement still stands.
    let mut v: Value = serde_json::from_str(&out).expect("settlement_output writes JSON");
    v["setlinfo"]["refd_setl_flag"] = Value::String(if s.reverses.is_some() { "1" } else { "0" }.into());
    v["setlinfo"]["vali_flag"] = Value::String(if s.cancelled_by.is_some() { "0" } else { "1" }.into());
    Ok(v.to_string())
}
