//! The person page: identity history, enrolment by year, special states, and every settlement with the
//! explanation of every layer.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use baozhang_core::claim::HospLevel;
use baozhang_core::{Identity, IdentitySet};
use baozhang_ingest::rosters::RosterKind;
use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::ledger::{SettlementFilter, StoredSettlement};
use baozhang_store::registry::EnrolmentRow;
use baozhang_store::resettle::{AdjustmentRow, Application};
use baozhang_store::service::{IdentityPeriod, PersonRecord};
use serde::Deserialize;
use serde_json::Value;

use super::pid::PidKey;
use super::table::{Cell, Details, Part, Table};
use super::{date_text, urlencode, Page, WebError, WebResult, WebUser};
use crate::auth::Role;
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct FindQ {
    #[serde(default)]
    q: String,
}

/// The header's search box (posted, so the ID number stays out of the address bar and the history).
pub async fn find_form(State(state): State<AppState>, u: WebUser, axum::Form(q): axum::Form<FindQ>) -> WebResult {
    find_person(&state, &u, q).await
}

/// `GET /web/find?q=`: the same by 人员编号, for a link or a typed address; an ID number in the address
/// is refused.
pub async fn find(State(state): State<AppState>, u: WebUser, Query(q): Query<FindQ>) -> WebResult {
    if super::looks_like_id_no(&q.q) {
        return Err(super::id_in_address());
    }
    find_person(&state, &u, q).await
}

/// An ID number or a person number → that person's page, if in the user's region.
async fn find_person(state: &AppState, u: &WebUser, q: FindQ) -> WebResult {
    u.region()?;
    let q = q.q.trim().to_ascii_uppercase();
    if q.is_empty() {
        return Err(WebError::bad("请输入身份证号码或人员编号"));
    }
    let person = match state.store.person(&q).await? {
        Some(p) => Some(p),
        None => state.store.person_by_psn(&q).await?,
    };
    let in_scope = match &person {
        Some(p) => u.p.covers_person(p.village_code.as_deref(), &state.store.enrolments_of(&p.id_no).await?),
        None => false,
    };
    match person {
        Some(p) if in_scope => {
            let key = state.web.pid_key(&state.store).await?;
            Ok(Redirect::to(&person_href(&key, &p.id_no)).into_response())
        }
        _ => Err(WebError::not_found("未找到该人员，或不在您的管辖范围内")),
    }
}

#[derive(Deserialize, Default)]
pub struct PersonQ {
    #[serde(default)]
    unmasked: Option<String>,
    #[serde(default)]
    export: Option<String>,
}

fn identity_name(id: &str) -> String {
    Identity::parse(id).map(|i| i.name_zh().to_string()).unwrap_or_else(|| id.to_string())
}

pub fn med_type_name(code: i64) -> &'static str {
    match code {
        21 => "住院",
        14 => "门诊慢特病",
        _ => "其他",
    }
}

/// One applied layer of a stored settlement's explanation.
pub struct ExplLine {
    pub name: String,
    pub fund: Option<String>,
    pub amount_fen: i64,
    pub text: String,
    /// Some value used is illustrative (示意值); `text` ends with the marker (absent in older records).
    pub illustrative: bool,
    /// The titles of the sources of the values used (依据).
    pub basis: Vec<String>,
}

impl ExplLine {
    /// The text without the provenance marker it ends with, for a page or slip that shows 依据 and 示意值
    /// as fields of their own.
    pub fn rule(&self) -> &str {
        let marker = baozhang_core::explain::provenance_marker(self.illustrative, &self.basis);
        self.text.strip_suffix(marker.as_str()).unwrap_or(&self.text)
    }
}

/// A JSON amount in yuan (a number or a string, as written by `explanation_json`) in fen.
pub fn json_fen(v: Option<&Value>) -> i64 {
    let t = match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return 0,
    };
    let t = t.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t),
    };
    let f = baozhang_core::Fen::parse_yuan(digits).map(|f| f.0).unwrap_or(0);
    if neg {
        -f
    } else {
        f
    }
}

/// The applied layers of a stored settlement, from its explanation.
pub fn explanation_lines(s: &StoredSettlement) -> Vec<ExplLine> {
    let v: Value = serde_json::from_str(&s.outcome).unwrap_or(Value::Null);
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e.get("applied").and_then(Value::as_bool).unwrap_or(false))
                .map(|e| ExplLine {
                    name: e.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    fund: e.get("fund").and_then(Value::as_str).map(str::to_string),
                    amount_fen: json_fen(e.get("amount")),
                    text: e.get("text").and_then(Value::as_str).unwrap_or("").to_string(),
                    illustrative: e.get("illustrative").and_then(Value::as_bool).unwrap_or(false),
                    basis: e
                        .get("basis")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn explanation_cell(s: &StoredSettlement) -> Cell {
    let lines: Vec<String> = explanation_lines(s).into_iter().map(|l| l.text).collect();
    if lines.is_empty() {
        return Cell::tag("muted", "（冲销记录）");
    }
    Cell::Parts(vec![Part::Details(Details { summary: "各层说明".into(), lines, numbered: true })])
}

/// The address of a person's page: an opaque key, never the ID number (see `pid`).
pub fn person_href(key: &PidKey, id_no: &str) -> String {
    format!("/web/person/{}", key.encode(id_no))
}

/// What the page may show of the person: in full (asked for, allowed and logged) or masked.
#[derive(Clone, Copy, Debug)]
pub struct Shown {
    pub unmasked: bool,
    /// The role may ask for the unmasked view (the page offers it).
    pub may_unmask: bool,
    /// The role sees masked information only (auditors): the page says so.
    pub masked_only: bool,
}

/// The person's details (`templates/person.html`); the tables follow it.
#[derive(Template, Debug)]
#[template(path = "person.html")]
pub struct PersonView {
    pub name: String,
    pub id_no: String,
    pub sex: String,
    pub birth: String,
    pub household_no: String,
    pub relation: String,
    pub village: String,
    pub village_code: String,
    pub psn_nos: String,
    pub states: String,
    pub risk_flag: String,
    pub fdc_href: String,
    /// The unmasked view's address, offered to a role that may ask for it.
    pub unmask_href: Option<String>,
    pub masked_only: bool,
}

/// A special state (`death`, `military`) in words.
fn state_name(s: &str) -> &str {
    match s {
        "death" => "死亡",
        "military" => "服兵役",
        other => other,
    }
}

/// Where an identity period came from: the roster by name (`dibao` → 低保对象名单), or an application.
fn source_name(s: &str) -> String {
    match s {
        "application" => "依申请救助认定".to_string(),
        other => RosterKind::parse(other).map_or_else(|| other.to_string(), |k| k.name_zh().to_string()),
    }
}

/// A region's name, else its code.
fn place(names: &HashMap<String, String>, code: &str) -> String {
    names.get(code).cloned().unwrap_or_else(|| code.to_string())
}

/// The hospital level (1–3) in words.
fn level_name(lv: i64) -> String {
    u8::try_from(lv).ok().and_then(HospLevel::new).map_or_else(|| format!("{lv} 级"), |l| l.name_zh().to_string())
}

/// The view model of the person's details: masked unless `shown.unmasked`, places by name.
pub fn person_view(
    person: &PersonRecord,
    shown: Shown,
    psn_nos: &[String],
    states: &[(String, i64)],
    risk_flag: &str,
    here: &str,
    names: &HashMap<String, String>,
) -> PersonView {
    let village_code = person.village_code.clone().unwrap_or_default();
    PersonView {
        name: if shown.unmasked { person.name.clone() } else { mask_name(&person.name) },
        id_no: if shown.unmasked { person.id_no.clone() } else { mask_id(&person.id_no) },
        sex: person.sex.clone(),
        birth: if person.birth_date > 0 { format!("出生日期 {}", date_text(person.birth_date)) } else { String::new() },
        household_no: person.household_no.clone().unwrap_or_default(),
        relation: person.relation.clone().unwrap_or_default(),
        village: if village_code.is_empty() { String::new() } else { place(names, &village_code) },
        village_code,
        psn_nos: psn_nos.join("、"),
        states: if states.is_empty() {
            "无".to_string()
        } else {
            states.iter().map(|(s, d)| format!("{}（{}）", state_name(s), date_text(*d))).collect::<Vec<_>>().join("、")
        },
        risk_flag: risk_flag.to_string(),
        fdc_href: here.replacen("/web/person/", "/web/fdc/person/", 1),
        unmask_href: (!shown.unmasked && shown.may_unmask).then(|| format!("{here}?unmasked=1")),
        masked_only: shown.masked_only,
    }
}

pub fn identities_table(periods: &[IdentityPeriod]) -> Table {
    let mut ids = Table::new("identities", "身份认定历史", vec!["身份", "起始日期", "终止日期", "来源"]);
    ids.empty = "无特殊身份（普通居民）";
    for p in periods {
        ids.rows.push(vec![
            Cell::text(identity_name(&p.identity)),
            Cell::text(date_text(p.start_date)),
            Cell::text(p.end_date.map(date_text).unwrap_or_else(|| "至今".into())),
            Cell::text(source_name(&p.source)),
        ]);
    }
    ids
}

pub fn enrolments_table(enrolments: &[EnrolmentRow], names: &HashMap<String, String>) -> Table {
    let mut enr = Table::new(
        "enrolments",
        "参保记录（按年度）",
        vec!["年度", "人员编号", "参保状态", "参保地", "标识", "标识日期", "个人缴费", "资助金额", "资助来源"],
    );
    enr.empty = "无参保记录";
    for e in enrolments {
        enr.rows.push(vec![
            Cell::Int(e.year),
            Cell::text(&e.psn_no),
            Cell::text(if e.insured { "参保" } else { e.status.as_str() }),
            Cell::text(place(names, &e.insured_admdvs)),
            Cell::text(IdentitySet::from_bits(e.flags as u16).names_zh()),
            Cell::text(e.flag_date.map(date_text).unwrap_or_default()),
            Cell::Yuan(e.premium_fen),
            Cell::Yuan(e.subsidy_fen),
            Cell::text(e.subsidy_source.clone().unwrap_or_default()),
        ]);
    }
    enr
}

pub fn settlements_table(settlements: &[StoredSettlement]) -> Table {
    let mut st = Table::new(
        "settlements",
        "结算记录",
        vec![
            "结算编号",
            "结算日期",
            "医疗类别",
            "医院等级",
            "身份",
            "医疗费总额",
            "政策范围内",
            "基金支付",
            "医院承担",
            "个人负担",
            "实际报销比例",
            "说明",
            "结算单",
        ],
    );
    st.empty = "本人没有结算记录";
    st.page_size = 10;
    for s in settlements {
        let status = match (&s.reverses, &s.cancelled_by) {
            (Some(orig), _) => format!("{}（冲销 {}）", s.setl_id, orig),
            (None, Some(_)) => format!("{}（已冲销）", s.setl_id),
            _ => s.setl_id.clone(),
        };
        st.rows.push(vec![
            Cell::text(status),
            Cell::text(date_text(s.setl_date)),
            Cell::text(med_type_name(s.med_type)),
            Cell::text(level_name(s.hosp_lv)),
            Cell::text(IdentitySet::from_bits(s.identities as u16).names_zh()),
            Cell::Yuan(s.medfee_sumamt),
            Cell::Yuan(s.inscp_scp_amt),
            Cell::Yuan(s.fund_pay_sumamt),
            Cell::Yuan(s.hosp_part_amt),
            Cell::Yuan(s.psn_part_amt),
            Cell::Pct(super::ratio_bp(s.fund_pay_sumamt + s.hosp_part_amt, s.medfee_sumamt)),
            explanation_cell(s),
            if s.reverses.is_none() {
                Cell::Parts(vec![Part::link_new_tab("PDF", format!("/web/slip/{}", urlencode(&s.setl_id)))])
            } else {
                Cell::text("")
            },
        ]);
    }
    st
}

pub fn resettlements_table(adjustments: &[AdjustmentRow]) -> Table {
    let mut rs = Table::new(
        "resettlements",
        "重新结算记录",
        vec!["结算编号", "结算日期", "重算批次", "原因", "按身份", "基金变化", "个人负担变化", "补付 / 追回", "重算时间", "结算单"],
    );
    rs.empty = "没有重新结算";
    for a in adjustments {
        rs.rows.push(vec![
            Cell::text(&a.setl_id),
            Cell::text(date_text(a.setl_date)),
            Cell::Link(format!("#{}", a.run_id), format!("/web/resettle/run/{}", a.run_id)),
            Cell::text(baozhang_store::resettle::Reason::parse(&a.reason).map_or(a.reason.clone(), |r| r.name_zh().to_string())),
            Cell::text(IdentitySet::from_bits(a.identities as u16).names_zh()),
            Cell::Yuan(a.fund_pay_fen + a.hosp_fen),
            Cell::Yuan(a.psn_fen),
            Cell::text(baozhang_ingest::resettle_report::direction_zh(a.psn_fen)),
            Cell::text(crate::clock::beijing_text(&a.created_at)),
            Cell::Parts(vec![Part::link_new_tab("PDF", format!("/web/slip/{}?adj={}", urlencode(&a.setl_id), urlencode(&a.adj_id)))]),
        ]);
    }
    rs
}

pub fn applications_table(apps: &[Application]) -> Table {
    let mut ap = Table::new("applications", "依申请救助", vec!["申请", "年度", "认定身份", "生效日期", "已收材料", "状态", "登记时间"]);
    ap.empty = "没有申请";
    for a in apps {
        ap.rows.push(vec![
            Cell::Int(a.id),
            Cell::Int(a.year),
            Cell::text(identity_name(&a.kind)),
            Cell::text(date_text(a.effective_from)),
            Cell::text(&a.documents),
            Cell::text(match a.status.as_str() {
                "pending" => "待审核".to_string(),
                "approved" => "已批准".to_string(),
                _ => format!("不予批准：{}", a.decision_note.clone().unwrap_or_default()),
            }),
            Cell::text(crate::clock::beijing_text(&a.created_at)),
        ]);
    }
    ap
}

/// `/web/person/{key}`; an ID number typed in place of the key is looked up the same way and answered
/// with a redirect to the key's address, so the page's own links never carry it.
pub async fn person_page(State(state): State<AppState>, u: WebUser, Path(key): Path<String>, Query(q): Query<PersonQ>) -> WebResult {
    u.region()?;
    let pid = state.web.pid_key(&state.store).await?;
    if super::looks_like_id_no(&key) {
        return Err(super::id_in_address());
    }
    let (id_no, typed) = match pid.decode(key.trim()) {
        Some(id) => (id, false),
        None => (key.trim().to_ascii_uppercase(), true),
    };
    let not_found = || WebError::not_found("未找到该人员，或不在您的管辖范围内");
    let person = state.store.person(&id_no).await?.ok_or_else(not_found)?;
    let enrolments = state.store.enrolments_of(&id_no).await?;
    if !u.p.covers_person(person.village_code.as_deref(), &enrolments) {
        return Err(not_found());
    }
    let unmasked = u.may_unmask(q.unmasked.as_deref() == Some("1"))?;
    let here = person_href(&pid, &id_no);
    if typed {
        let query = u.path.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
        return Ok(Redirect::to(&format!("{here}{query}")).into_response());
    }
    if unmasked {
        state.store.log_access(&u.p.username, u.p.role.as_str(), "web.person", &mask_id(&id_no), "查看未脱敏个人信息").await?;
    }
    let periods = state.store.identity_periods(&id_no).await?;
    let states = state.store.special_states(&id_no).await?;
    let mut psn_nos: Vec<String> = enrolments.iter().map(|e| e.psn_no.clone()).chain(person.psn_no.clone()).collect();
    psn_nos.sort();
    psn_nos.dedup();
    let mut settlements = Vec::new();
    for psn in &psn_nos {
        let f = SettlementFilter { psn_no: Some(psn.clone()), limit: 1000, ..Default::default() };
        settlements.extend(state.store.settlements(&f).await?);
    }
    settlements.sort_by_key(|a| (a.setl_date, a.seq));

    let flag_day = baozhang_core::Date::new(super::dashboard::default_year(&state).await as u16, 12, 31).unwrap_or(crate::clock::today());
    let risk_flag = super::risk::person_flag(&state, &person.id_no, person.village_code.as_deref(), flag_day).await?;
    let names = state.web.region_names(&state.store).await?;
    // Re-settlements of this person's settlements and applications for assistance after discharge.
    let mut adjustments = Vec::new();
    for psn in &psn_nos {
        adjustments.extend(state.store.adjustments(None, "", Some(psn)).await?);
    }
    let apps = state.store.applications("", Some(&id_no), 100).await?;
    let ids = identities_table(&periods);
    let enr = enrolments_table(&enrolments, &names);
    let st = settlements_table(&settlements);
    let rs = resettlements_table(&adjustments);
    let ap = applications_table(&apps);
    if let Some(id) = q.export.as_deref() {
        return super::table::export_for(&state, &u, &[&ids, &enr, &st, &rs, &ap], id).await;
    }

    let shown = Shown { unmasked, may_unmask: u.p.may_unmask(), masked_only: u.p.role == Role::Auditor };
    let view = person_view(&person, shown, &psn_nos, &states, &risk_flag, &here, &names);
    let mut page = Page::new(format!("人员档案 · {}", view.name));
    if let Some(v) = &person.village_code {
        page.crumbs = super::dashboard::crumbs_for(&state, &u, v).await?;
        if let Some(h) = &person.household_no {
            page.crumbs.push((format!("户 {h}"), format!("/web/household/{}", urlencode(h))));
        }
    }
    page.crumbs.push((view.name.clone(), String::new()));
    page.view(&view)?;
    page.tables(&u, &[&ids, &enr, &st]);
    if !adjustments.is_empty() || !apps.is_empty() {
        page.tables(&u, &[&rs, &ap]);
    }
    Ok(page.render(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> PersonRecord {
        PersonRecord {
            id_no: "62042219800101123X".into(),
            name: "张小明".into(),
            sex: "男".into(),
            birth_date: 19800101,
            household_no: Some("H1".into()),
            relation: Some("户主".into()),
            village_code: Some("620422100201".into()),
            psn_no: Some("P1".into()),
        }
    }

    fn names() -> HashMap<String, String> {
        [("620422", "会宁县"), ("620422100201", "东关村")].into_iter().map(|(c, n)| (c.to_string(), n.to_string())).collect()
    }

    const MASKED: Shown = Shown { unmasked: false, may_unmask: true, masked_only: false };

    #[test]
    fn the_person_is_masked_unless_unmasked_and_places_are_named() {
        let here = "/web/person/KEY";
        let states = vec![("death".to_string(), 20180301)];
        let v = person_view(&person(), MASKED, &["P1".into(), "P2".into()], &states, "无预警", here, &names());
        assert_eq!((v.name.as_str(), v.id_no.as_str()), ("张**", "620422********123X"));
        assert_eq!((v.village.as_str(), v.village_code.as_str()), ("东关村", "620422100201"));
        assert_eq!(v.psn_nos, "P1、P2");
        assert_eq!(v.states, "死亡（2018-03-01）");
        assert_eq!(v.birth, "出生日期 1980-01-01");
        assert_eq!(v.fdc_href, "/web/fdc/person/KEY");
        assert_eq!(v.unmask_href.as_deref(), Some("/web/person/KEY?unmasked=1"));
        assert!(!v.masked_only);

        let full = Shown { unmasked: true, ..MASKED };
        let v = person_view(&person(), full, &[], &[], "", here, &names());
        assert_eq!((v.name.as_str(), v.id_no.as_str()), ("张小明", "62042219800101123X"));
        assert_eq!(v.unmask_href, None, "already unmasked");
        assert_eq!(v.states, "无");

        let auditor = Shown { unmasked: false, may_unmask: false, masked_only: true };
        let v = person_view(&person(), auditor, &[], &[], "", here, &names());
        assert!(v.unmask_href.is_none() && v.masked_only, "an auditor is not offered the unmasked view");
    }

    #[test]
    fn identity_sources_and_places_are_shown_by_name() {
        let p = |source: &str| IdentityPeriod { identity: "dibao".into(), start_date: 20180101, end_date: None, source: source.into() };
        let t = identities_table(&[p("dibao"), p("application"), p("something_else")]);
        assert_eq!(t.rows[0][0].shown_text(), "低保");
        assert_eq!(t.rows[0][2].shown_text(), "至今");
        assert_eq!(t.rows[0][3].shown_text(), "低保对象名单");
        assert_eq!(t.rows[1][3].shown_text(), "依申请救助认定");
        assert_eq!(t.rows[2][3].shown_text(), "something_else", "an unknown source is shown as recorded");
        let e = EnrolmentRow {
            id_no: "62042219800101123X".into(),
            psn_no: "P1".into(),
            year: 2018,
            status: "正常参保".into(),
            insured: true,
            insured_admdvs: "620422".into(),
            flags: 0,
            flag_date: None,
            premium_fen: 18_000,
            subsidy_fen: 9_000,
            subsidy_source: None,
        };
        let t = enrolments_table(&[e], &names());
        assert_eq!(t.rows[0][2].shown_text(), "参保");
        assert_eq!(t.rows[0][3].shown_text(), "会宁县");
        assert_eq!(t.rows[0][6].shown_text(), "180.00");
        assert_eq!(level_name(2), "二级（县级）");
        assert_eq!(level_name(7), "7 级");
    }
}
