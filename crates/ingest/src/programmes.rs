//! Health-programme files (POLICY §3) read by `baozhang import` and the workbench's upload, with the
//! same row-by-row validation and reject reports as the rosters: the health department's chronic
//! registry, the card register, family-doctor teams, contracts and service records. Rows are merged
//! in the import's one transaction (`store::programmes`, versioned), so a rejected row is not applied
//! and the same file twice changes nothing.

use std::collections::{HashMap, HashSet};

use baozhang_core::programmes::{Package, FURTHER_DISEASES, KEY_DISEASES};
use baozhang_store::programmes::{parse_team_level, CardRow, ContractRow, RegistryRow, ServiceRow, TeamRow};
use baozhang_store::registry::Import;
use baozhang_store::{date_num, Store};

use crate::rosters::{ImportError, Reject, Rejection, RosterKind, Row};
use crate::table::TableReader;

/// The chronic diseases a registry row or card may name.
pub fn is_chronic_disease(d: &str) -> bool {
    KEY_DISEASES.contains(&d) || FURTHER_DISEASES.contains(&d)
}

/// Kinds of service records.
pub const SERVICE_KINDS: [&str; 3] = ["随访", "送医上门", "送人就医"];

pub fn columns(kind: RosterKind) -> &'static [(&'static str, bool)] {
    match kind {
        RosterKind::ChronicRegistry => {
            &[("证件号码", true), ("姓名", true), ("病种", true), ("是否符合慢病卡标准", true), ("确诊日期", false), ("管理机构", false)]
        }
        RosterKind::ChronicCards => {
            &[("卡号", true), ("证件号码", true), ("姓名", true), ("病种", true), ("办卡日期", true), ("发卡机构", false), ("状态", false)]
        }
        RosterKind::FdcTeams => {
            &[("团队编号", true), ("团队名称", true), ("团队级别", true), ("结算医疗机构", true), ("服务区划代码", true), ("团队长", false)]
        }
        RosterKind::FdcContracts => &[
            ("证件号码", true),
            ("姓名", true),
            ("签约年度", true),
            ("团队编号", true),
            ("责任医生", true),
            ("服务包", true),
            ("签约日期", true),
        ],
        RosterKind::FdcServices => &[
            ("证件号码", true),
            ("姓名", true),
            ("服务日期", true),
            ("服务类型", true),
            ("病种", false),
            ("服务医生", true),
            ("备注", false),
        ],
        _ => &[],
    }
}

pub fn example(kind: RosterKind) -> &'static [&'static str] {
    match kind {
        RosterKind::ChronicRegistry => &["620422198001011230", "张三", "高血压", "是", "2016-05-10", "会宁县某某乡卫生院"],
        RosterKind::ChronicCards => &["MB2018000001", "620422198001011230", "张三", "高血压", "2018-03-01", "会宁县医疗保障局", "有效"],
        RosterKind::FdcTeams => &["T620422100", "某某乡卫生院第一团队", "乡级", "H62042200001", "620422100", "李医生"],
        RosterKind::FdcContracts => &["620422198001011230", "张三", "2018", "T620422100", "王村医", "基础包", "2018-01-20"],
        RosterKind::FdcServices => &["620422198001011230", "张三", "2018-02-20", "随访", "高血压", "王村医", "血压 150/95，调整用药"],
        _ => &[],
    }
}

fn yes_no(row: &Row, col: &str) -> Result<bool, Reject> {
    match row.required(col)? {
        "是" | "Y" | "y" | "1" => Ok(true),
        "否" | "N" | "n" | "0" => Ok(false),
        v => Err((col.into(), format!("“{v}”无效（是 / 否）"))),
    }
}

fn disease(row: &Row, col: &str, required: bool) -> Result<String, Reject> {
    let v = if required { row.required(col)? } else { row.get(col) };
    if v.is_empty() || is_chronic_disease(v) {
        Ok(v.to_string())
    } else {
        Err((col.into(), format!("病种“{v}”无效（{}、{}）", KEY_DISEASES.join("、"), FURTHER_DISEASES.join("、"))))
    }
}

fn code(row: &Row, col: &str) -> Result<String, Reject> {
    let v = row.required(col)?;
    if v.chars().count() > 40 || v.chars().any(char::is_whitespace) {
        return Err((col.into(), format!("“{v}”无效（不超过 40 个字符，不含空格）")));
    }
    Ok(v.to_string())
}

fn text(row: &Row, col: &str, required: bool) -> Result<Option<String>, Reject> {
    let v = if required { row.required(col)? } else { row.get(col) };
    if v.chars().count() > 200 {
        return Err((col.into(), "内容过长（不超过 200 字）".into()));
    }
    Ok((!v.is_empty()).then(|| v.to_string()))
}

/// What the rows of a programme file turn into.
#[derive(Default)]
struct Rows {
    registry: Vec<RegistryRow>,
    cards: Vec<CardRow>,
    teams: Vec<TeamRow>,
    contracts: Vec<ContractRow>,
    services: Vec<ServiceRow>,
}

/// Parses one row into `out`; returns its key (for duplicates within the file).
fn parse(kind: RosterKind, row: &Row, regions: &HashSet<String>, teams: &HashSet<String>, out: &mut Rows) -> Result<String, Reject> {
    if kind == RosterKind::FdcTeams {
        let team_code = code(row, "团队编号")?;
        let name = text(row, "团队名称", true)?.unwrap_or_default();
        let lv = row.required("团队级别")?;
        let level = parse_team_level(lv).ok_or_else(|| ("团队级别".to_string(), format!("“{lv}”无效（省市级、县级、乡级、村级）")))?;
        let institution = code(row, "结算医疗机构")?;
        let region = row.required("服务区划代码")?;
        if !regions.contains(region) {
            return Err(("服务区划代码".into(), format!("行政区划代码“{region}”不存在")));
        }
        out.teams.push(TeamRow {
            team_code: team_code.clone(),
            name,
            level,
            institution,
            region_code: region.to_string(),
            leader: text(row, "团队长", false)?,
        });
        return Ok(team_code);
    }
    let id = row.person_id()?;
    row.name()?;
    let id_no = id.as_str().to_string();
    match kind {
        RosterKind::ChronicRegistry => {
            let disease = disease(row, "病种", true)?;
            let diagnosed = row.date("确诊日期")?;
            if diagnosed.is_some_and(|d| d < id.birth_date()) {
                return Err(("确诊日期".into(), "确诊日期早于出生日期".into()));
            }
            let key = format!("{id_no}:{disease}");
            out.registry.push(RegistryRow {
                id_no,
                disease,
                eligible: yes_no(row, "是否符合慢病卡标准")?,
                diagnosed_date: diagnosed.map(date_num),
                mgmt_org: text(row, "管理机构", false)?,
            });
            Ok(key)
        }
        RosterKind::ChronicCards => {
            let card_no = code(row, "卡号")?;
            let issue = row.req_date("办卡日期")?;
            if issue < id.birth_date() {
                return Err(("办卡日期".into(), "办卡日期早于出生日期".into()));
            }
            let status = match row.get("状态") {
                "" | "有效" => "有效",
                "注销" => "注销",
                v => return Err(("状态".into(), format!("“{v}”无效（有效 / 注销）"))),
            };
            out.cards.push(CardRow {
                card_no: card_no.clone(),
                id_no,
                disease: disease(row, "病种", true)?,
                issue_date: date_num(issue),
                issuer: text(row, "发卡机构", false)?,
                status: status.to_string(),
            });
            Ok(card_no)
        }
        RosterKind::FdcContracts => {
            let year = row.year("签约年度")?.ok_or_else(|| ("签约年度".to_string(), "必填项为空".to_string()))?;
            let team = code(row, "团队编号")?;
            if !teams.contains(&team) {
                return Err(("团队编号".into(), format!("团队“{team}”不存在（请先导入家庭医生团队）")));
            }
            let p = row.required("服务包")?;
            let package = Package::parse(p).ok_or_else(|| ("服务包".to_string(), format!("“{p}”无效（基础包 50 元 / 中级包 100 元）")))?;
            let signed = row.req_date("签约日期")?;
            if signed < id.birth_date() {
                return Err(("签约日期".into(), "签约日期早于出生日期".into()));
            }
            if i64::from(signed.year()) > year || i64::from(signed.year()) < year - 1 {
                return Err(("签约日期".into(), format!("签约日期 {signed} 与签约年度 {year} 不符")));
            }
            out.contracts.push(ContractRow {
                id_no: id_no.clone(),
                year,
                team_code: team,
                doctor: text(row, "责任医生", true)?.unwrap_or_default(),
                package: package.name_zh().to_string(),
                fee_fen: package.fee_fen(),
                signed_date: date_num(signed),
            });
            Ok(format!("{id_no}:{year}"))
        }
        RosterKind::FdcServices => {
            let day = row.req_date("服务日期")?;
            if day < id.birth_date() {
                return Err(("服务日期".into(), "服务日期早于出生日期".into()));
            }
            let kind = row.required("服务类型")?;
            if !SERVICE_KINDS.contains(&kind) {
                return Err(("服务类型".into(), format!("“{kind}”无效（{}）", SERVICE_KINDS.join("、"))));
            }
            let disease = disease(row, "病种", false)?;
            let key = format!("{id_no}:{}:{kind}:{disease}", date_num(day));
            out.services.push(ServiceRow {
                id_no,
                service_date: date_num(day),
                kind: kind.to_string(),
                disease,
                doctor: text(row, "服务医生", true)?.unwrap_or_default(),
                note: text(row, "备注", false)?,
            });
            Ok(key)
        }
        k => Err((String::new(), format!("{} 不是健康项目文件", k.name_zh()))),
    }
}

impl Rows {
    fn len(&self) -> usize {
        self.registry.len() + self.cards.len() + self.teams.len() + self.contracts.len() + self.services.len()
    }
    fn truncate(&mut self, n: [usize; 5]) {
        self.registry.truncate(n[0]);
        self.cards.truncate(n[1]);
        self.teams.truncate(n[2]);
        self.contracts.truncate(n[3]);
        self.services.truncate(n[4]);
    }
    fn mark(&self) -> [usize; 5] {
        [self.registry.len(), self.cards.len(), self.teams.len(), self.contracts.len(), self.services.len()]
    }
}

/// Reads every row of a programme file, then merges the accepted ones into the import's transaction.
/// Returns the rejections and the number of rows read.
pub(crate) async fn read_and_merge(
    store: &Store,
    kind: RosterKind,
    reader: &mut TableReader,
    regions: &HashSet<String>,
    imp: &mut Import,
    fixed: &mut crate::rosters::Normalised,
    progress: &mut dyn FnMut(u64),
) -> Result<(Vec<Rejection>, u64), ImportError> {
    let teams: HashSet<String> =
        if kind == RosterKind::FdcContracts { store.fdc_teams().await?.into_iter().map(|t| t.team_code).collect() } else { HashSet::new() };
    let mut out = Rows::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rejections = Vec::new();
    let mut cells = Vec::new();
    let mut total = 0u64;
    while let Some(rowno) = reader.next_row(&mut cells)? {
        total += 1;
        if total.is_multiple_of(10_000) {
            progress(total);
        }
        let row = Row::new(&cells, reader);
        if crate::rosters::is_example_row(kind, &row) {
            let reason = crate::rosters::EXAMPLE_ROW_REASON.to_string();
            rejections.push(Rejection { row: rowno, field: "证件号码".into(), reason, cells: cells.clone() });
            continue;
        }
        let mark = out.mark();
        let outcome = parse(kind, &row, regions, &teams, &mut out)
            .map_err(|e| crate::rosters::row_problems(kind, &row, regions, e))
            .and_then(|key| match seen.get(&key) {
                Some(first) => Err(vec![(columns(kind)[0].0.to_string(), format!("与第 {first} 行重复"))]),
                None => {
                    seen.insert(key, rowno);
                    Ok(())
                }
            });
        match outcome {
            Ok(()) => fixed.take(rowno, &row),
            Err(problems) => {
                out.truncate(mark);
                rejections.push(crate::rosters::rejection(rowno, problems, &cells));
            }
        }
    }
    progress(total);
    debug_assert_eq!(out.len() as u64, total - rejections.len() as u64);
    match kind {
        RosterKind::ChronicRegistry => imp.merge_chronic_registry(&out.registry).await?,
        RosterKind::ChronicCards => imp.merge_chronic_cards(&out.cards).await?,
        RosterKind::FdcTeams => imp.merge_fdc_teams(&out.teams).await?,
        RosterKind::FdcContracts => imp.merge_fdc_contracts(&out.contracts).await?,
        RosterKind::FdcServices => imp.merge_fdc_services(&out.services).await?,
        _ => {}
    }
    Ok((rejections, total))
}
