//! The health programmes' comparisons and figures (POLICY §3), over what `store::programmes` holds:
//! chronic registry against card holders (R-CHR-1), the monthly card draw (R-CHR-2), family-doctor
//! contract rates, the fee statement per hospital and follow-up status per village doctor
//! (R-FDC-1/3), and the major-disease lists and cases found in settlements (R-MDT-1).

use std::collections::{BTreeMap, HashMap, HashSet};

use baozhang_core::programmes::{self, follow_up_status, icd_matches, split_fee, year_end, FollowUpStatus, Schedule, YearEnd};
use baozhang_core::Date;
use baozhang_store::programmes::{CardRow, ContractRow, MdtCase, MdtDisease, MdtList, RegistryRow, ServiceRow, Who, With};
use baozhang_store::{num_date, Store, StoreError};
use serde::Deserialize;

// ───────────────────────────── chronic cards (R-CHR-1) ─────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CardClass {
    /// 应办未办: a poor patient the registry says meets the criteria has no valid card → issue and flag.
    Missing,
    /// 用药保障: a poor patient who does not meet the criteria → medication guarantee, flagged.
    MedicationGuarantee,
    /// 持卡待核查: a valid card the registry does not support (not registered, or registered as not
    /// meeting the criteria) → check.
    Unsupported,
    /// 账账相符: registered, eligible and holding a valid card.
    Matched,
}

impl CardClass {
    pub const ALL: [CardClass; 4] = [CardClass::Missing, CardClass::MedicationGuarantee, CardClass::Unsupported, CardClass::Matched];
    pub fn name_zh(self) -> &'static str {
        match self {
            CardClass::Missing => "应办未办",
            CardClass::MedicationGuarantee => "纳入用药保障",
            CardClass::Unsupported => "持卡待核查",
            CardClass::Matched => "账账相符",
        }
    }
    pub fn action_zh(self) -> &'static str {
        match self {
            CardClass::Missing => "办理慢病卡并在系统中标识",
            CardClass::MedicationGuarantee => "不符合办卡标准：纳入用药保障并标识",
            CardClass::Unsupported => "持卡依据不足：核查诊断证明与办卡流程",
            CardClass::Matched => "无需处理",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardFinding {
    pub class: CardClass,
    pub id_no: String,
    pub who: Who,
    pub disease: String,
    pub card_no: String,
    pub detail: String,
}

/// Compares the registry with the card register. `poor` are the registered poor of the region on the
/// day; cards of people outside the region are not in `cards` (the caller filters both the same way).
pub fn compare_cards(registry: &[With<RegistryRow>], cards: &[With<CardRow>], poor: &HashSet<String>) -> Vec<CardFinding> {
    let valid: HashMap<(&str, &str), &With<CardRow>> =
        cards.iter().filter(|c| c.row.status == "有效").map(|c| ((c.row.id_no.as_str(), c.row.disease.as_str()), c)).collect();
    let reg: HashMap<(&str, &str), &With<RegistryRow>> =
        registry.iter().map(|r| ((r.row.id_no.as_str(), r.row.disease.as_str()), r)).collect();
    let mut out = Vec::new();
    for r in registry {
        let key = (r.row.id_no.as_str(), r.row.disease.as_str());
        let card = valid.get(&key);
        let is_poor = poor.contains(&r.row.id_no);
        let (class, detail) = match (r.row.eligible, card) {
            (true, Some(c)) => (CardClass::Matched, format!("卡号 {}", c.row.card_no)),
            (true, None) if is_poor => (CardClass::Missing, "卫健部门登记符合认定标准，无有效慢病卡".to_string()),
            (false, None) if is_poor => (CardClass::MedicationGuarantee, "卫健部门登记不符合慢病卡认定标准".to_string()),
            (false, Some(c)) => (CardClass::Unsupported, format!("卫健部门登记不符合认定标准，却持有慢病卡 {}", c.row.card_no)),
            _ => continue,
        };
        out.push(CardFinding {
            class,
            id_no: r.row.id_no.clone(),
            who: r.who.clone(),
            disease: r.row.disease.clone(),
            card_no: card.map(|c| c.row.card_no.clone()).unwrap_or_default(),
            detail,
        });
    }
    for c in cards.iter().filter(|c| c.row.status == "有效") {
        if !reg.contains_key(&(c.row.id_no.as_str(), c.row.disease.as_str())) {
            out.push(CardFinding {
                class: CardClass::Unsupported,
                id_no: c.row.id_no.clone(),
                who: c.who.clone(),
                disease: c.row.disease.clone(),
                card_no: c.row.card_no.clone(),
                detail: format!("持卡人不在卫健部门慢病登记中（{} 办卡）", c.row.issue_date),
            });
        }
    }
    out.sort_by(|a, b| (a.class, &a.who.village_code, &a.id_no, &a.disease).cmp(&(b.class, &b.who.village_code, &b.id_no, &b.disease)));
    out
}

/// Coverage of registered chronic patients: poor patients meeting the criteria with a valid card, of all
/// poor patients meeting them (`(covered, eligible)`).
pub fn card_coverage(findings: &[CardFinding], poor: &HashSet<String>) -> (usize, usize) {
    let covered = findings.iter().filter(|f| f.class == CardClass::Matched && poor.contains(&f.id_no)).count();
    let missing = findings.iter().filter(|f| f.class == CardClass::Missing).count();
    (covered, covered + missing)
}

// ───────────────────────────── the monthly draw (R-CHR-2) ─────────────────────────────

/// The cards issued in a month (yyyymm), sorted by card number: the population of that month's draw.
pub fn new_cards_of_month(cards: &[With<CardRow>], month: i64) -> Vec<&With<CardRow>> {
    let mut v: Vec<_> = cards.iter().filter(|c| c.row.issue_date / 100 == month).collect();
    v.sort_by(|a, b| a.row.card_no.cmp(&b.row.card_no));
    v
}

/// The card numbers drawn from a month's population with `seed` (reproducible: `core::programmes::draw`).
pub fn drawn_cards(population: &[&With<CardRow>], seed: u64) -> Vec<String> {
    programmes::draw(population.len(), seed).into_iter().map(|i| population[i].row.card_no.clone()).collect()
}

/// A fresh seed for a draw (recorded with it, so the draw can be re-done and checked).
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // Kept below 2^53 so it survives spreadsheets and JSON intact.
    (t ^ (t >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11
}

// ───────────────────────────── family doctors (R-FDC-1/3) ─────────────────────────────

/// Contract rates of the registered poor and of key people among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContractRate {
    pub poor: usize,
    pub contracted: usize,
    /// Key people: registered poor with a chronic disease in the registry or a major-disease case.
    pub key: usize,
    pub key_contracted: usize,
}

pub fn contract_rate(poor: &[(String, Who)], contracts: &[With<ContractRow>], key_ids: &HashSet<String>) -> ContractRate {
    let signed: HashSet<&str> = contracts.iter().map(|c| c.row.id_no.as_str()).collect();
    let mut r = ContractRate::default();
    for (id, _) in poor {
        let s = signed.contains(id.as_str());
        r.poor += 1;
        r.contracted += usize::from(s);
        if key_ids.contains(id) {
            r.key += 1;
            r.key_contracted += usize::from(s);
        }
    }
    r
}

/// One hospital's line of the year's fee statement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeeLine {
    pub institution: String,
    pub contracts: usize,
    pub basic: usize,
    pub intermediate: usize,
    pub fee_fen: i64,
    pub public_health_fen: i64,
    pub person_fen: i64,
    /// Contracts with at least one service record in the year.
    pub served: usize,
    pub year: YearEnd,
}

/// The fee split and the fund's 60 % prepayment / year-end settlement per hospital (the team's
/// institution). `insured`: who was insured that year; `served`: who had a service record that year.
pub fn fee_statement(
    contracts: &[With<ContractRow>],
    team_institution: &HashMap<String, String>,
    insured: &HashSet<String>,
    served: &HashSet<String>,
) -> Vec<FeeLine> {
    let mut by: BTreeMap<String, (FeeLine, Vec<(i64, bool)>)> = BTreeMap::new();
    for c in contracts {
        let inst = team_institution.get(&c.row.team_code).cloned().unwrap_or_else(|| format!("（团队 {} 未登记）", c.row.team_code));
        let e = by.entry(inst.clone()).or_insert_with(|| (FeeLine { institution: inst, ..Default::default() }, Vec::new()));
        let split = split_fee(c.row.fee_fen, insured.contains(&c.row.id_no));
        let was_served = served.contains(&c.row.id_no);
        e.0.contracts += 1;
        if c.row.fee_fen >= programmes::Package::Intermediate.fee_fen() {
            e.0.intermediate += 1;
        } else {
            e.0.basic += 1;
        }
        e.0.fee_fen += c.row.fee_fen;
        e.0.public_health_fen += split.public_health_fen;
        e.0.person_fen += split.person_fen;
        e.0.served += usize::from(was_served);
        e.1.push((split.fund_fen, was_served));
    }
    by.into_values()
        .map(|(mut l, shares)| {
            l.year = year_end(shares);
            debug_assert_eq!(l.year.fund_share_fen + l.public_health_fen + l.person_fen, l.fee_fen);
            l
        })
        .collect()
}

/// A patient's follow-ups of the year, with the responsible doctor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowUpRow {
    pub id_no: String,
    pub who: Who,
    pub diseases: Vec<String>,
    pub doctor: String,
    pub status: FollowUpStatus,
    pub last: Option<Date>,
}

/// Follow-up status on `as_of` of every registered chronic patient among `people` (the registered
/// poor), from their service records of kind 随访; the doctor is the contract's (else 未签约).
pub fn follow_ups(
    people: &[(String, Who)],
    registry: &[With<RegistryRow>],
    contracts: &[With<ContractRow>],
    services: &[ServiceRow],
    as_of: Date,
) -> Vec<FollowUpRow> {
    let mut diseases: HashMap<&str, Vec<String>> = HashMap::new();
    for r in registry {
        diseases.entry(r.row.id_no.as_str()).or_default().push(r.row.disease.clone());
    }
    let doctor: HashMap<&str, &str> = contracts.iter().map(|c| (c.row.id_no.as_str(), c.row.doctor.as_str())).collect();
    let mut dates: HashMap<&str, Vec<Date>> = HashMap::new();
    for s in services.iter().filter(|s| s.kind == "随访") {
        if let Some(d) = num_date(s.service_date) {
            dates.entry(s.id_no.as_str()).or_default().push(d);
        }
    }
    let mut out = Vec::new();
    for (id, who) in people {
        let Some(ds) = diseases.get(id.as_str()) else { continue };
        let schedule = Schedule::of(ds.iter().map(String::as_str));
        if schedule == Schedule::None {
            continue;
        }
        let fus = dates.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let status = follow_up_status(schedule, fus, as_of);
        out.push(FollowUpRow {
            id_no: id.clone(),
            who: who.clone(),
            diseases: ds.clone(),
            doctor: doctor.get(id.as_str()).map_or_else(|| "未签约".to_string(), |d| d.to_string()),
            status,
            last: fus.iter().filter(|d| **d <= as_of).max().copied(),
        });
    }
    out
}

/// Follow-up completion: made (up to what was due) of due.
pub fn follow_up_completion(rows: &[FollowUpRow]) -> (u32, u32) {
    rows.iter().fold((0, 0), |(m, d), r| (m + r.status.done.min(r.status.due), d + r.status.due))
}

// ───────────────────────────── major diseases (R-MDT-1) ─────────────────────────────

#[derive(Deserialize)]
struct ListFile {
    code: String,
    name: String,
    region: String,
    source: String,
    exact: bool,
    note: String,
    disease: Vec<DiseaseFile>,
}

#[derive(Deserialize)]
struct DiseaseFile {
    no: i64,
    name: String,
    icd10: Vec<String>,
}

/// The shipped lists (data/mdt): Gansu 50, Zhongwei 20, Baotou 27, each marked with its source.
pub fn shipped_mdt_lists() -> Vec<MdtList> {
    const FILES: [(&str, &str); 3] = [
        ("gansu-50.toml", include_str!("../../../data/mdt/gansu-50.toml")),
        ("zhongwei-20.toml", include_str!("../../../data/mdt/zhongwei-20.toml")),
        ("baotou-27.toml", include_str!("../../../data/mdt/baotou-27.toml")),
    ];
    FILES
        .iter()
        .map(|(name, text)| {
            let f: ListFile = toml::from_str(text).unwrap_or_else(|e| panic!("data/mdt/{name} is not a valid list: {e}"));
            MdtList {
                list_code: f.code,
                name: f.name,
                region_prefix: f.region,
                source: f.source,
                exact: f.exact,
                note: f.note,
                diseases: f.disease.into_iter().map(|d| MdtDisease { no: d.no, name: d.name, icd10: d.icd10 }).collect(),
            }
        })
        .collect()
}

/// The list in force for a region: the one with the longest region prefix of `code`.
pub fn list_for<'a>(lists: &'a [MdtList], code: &str) -> Option<&'a MdtList> {
    lists.iter().filter(|l| code.starts_with(&l.region_prefix)).max_by_key(|l| l.region_prefix.len())
}

/// The entry of a list a diagnosis falls under.
pub fn disease_of<'a>(list: &'a MdtList, dise_codg: &str) -> Option<&'a MdtDisease> {
    list.diseases.iter().find(|d| icd_matches(dise_codg, &d.icd10))
}

/// Opens a case for every settled, not cancelled visit of the year under `region` whose diagnosis is on
/// the list of the person's region, unless the person already has a case of that disease. Returns
/// `(visits with a listed diagnosis, cases opened)`.
pub async fn cases_from_settlements(store: &Store, region: &str, year: i64, by: &str) -> Result<(usize, usize), StoreError> {
    let lists = store.mdt_lists().await?;
    let visits = store.settled_diagnoses(region, year * 10_000 + 101, year * 10_000 + 1231).await?;
    let (mut listed, mut opened) = (0, 0);
    for v in &visits {
        let Some(list) = list_for(&lists, if v.village_code.is_empty() { region } else { &v.village_code }) else { continue };
        let Some(d) = disease_of(list, &v.dise_codg) else { continue };
        listed += 1;
        let case = MdtCase {
            id: 0,
            id_no: v.id_no.clone(),
            list_code: list.list_code.clone(),
            disease_no: d.no,
            dise_codg: v.dise_codg.clone(),
            hospital: v.fixmedins_code.clone(),
            diagnosis_date: v.setl_date,
            status: "已救治".into(),
            treated_date: Some(v.setl_date),
            referral: String::new(),
            origin: "结算".into(),
            setl_id: v.setl_id.clone(),
            updated_at: String::new(),
        };
        if store.add_mdt_case(&case, by).await? {
            opened += 1;
        }
    }
    Ok((listed, opened))
}

/// Statuses that count as treated (救治率: treated of all cases but those who died untreated).
pub fn is_treated(status: &str) -> bool {
    matches!(status, "已救治" | "救治中" | "已转诊")
}

/// `(treated, counted)` for the treatment rate.
pub fn treatment_rate(cases: &[With<MdtCase>]) -> (usize, usize) {
    let counted: Vec<_> = cases.iter().filter(|c| !(c.row.status == "死亡" && c.row.treated_date.is_none())).collect();
    (counted.iter().filter(|c| is_treated(&c.row.status) || c.row.treated_date.is_some()).count(), counted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(v: &str) -> Who {
        Who { name: "某".into(), village_code: v.into(), household_no: "H".into() }
    }
    fn reg(id: &str, d: &str, eligible: bool) -> With<RegistryRow> {
        With {
            row: RegistryRow { id_no: id.into(), disease: d.into(), eligible, diagnosed_date: None, mgmt_org: None },
            who: who("620422100001"),
        }
    }
    fn card(no: &str, id: &str, d: &str, status: &str, issue: i64) -> With<CardRow> {
        With {
            row: CardRow {
                card_no: no.into(),
                id_no: id.into(),
                disease: d.into(),
                issue_date: issue,
                issuer: None,
                status: status.into(),
            },
            who: who("620422100001"),
        }
    }

    #[test]
    fn the_registry_and_the_cards_are_compared_class_by_class() {
        let registry = vec![
            reg("A", "高血压", true),    // poor, card → matched
            reg("B", "2型糖尿病", true), // poor, no card → missing
            reg("C", "高血压", false),   // poor, not eligible → medication guarantee
            reg("D", "高血压", true),    // not poor, no card → not ours
            reg("E", "冠心病", false),   // not eligible but holds a card → check
            reg("F", "高血压", true),    // poor, card cancelled → missing
        ];
        let cards = vec![
            card("K1", "A", "高血压", "有效", 20180301),
            card("K2", "E", "冠心病", "有效", 20180302),
            card("K3", "G", "高血压", "有效", 20180303), // not registered → check
            card("K4", "F", "高血压", "注销", 20180101),
            card("K5", "A", "冠心病", "有效", 20180601), // another disease than registered → check
        ];
        let poor: HashSet<String> = ["A", "B", "C", "E", "F", "G"].iter().map(|s| s.to_string()).collect();
        let f = compare_cards(&registry, &cards, &poor);
        let got: Vec<(CardClass, &str, &str)> = f.iter().map(|x| (x.class, x.id_no.as_str(), x.card_no.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (CardClass::Missing, "B", ""),
                (CardClass::Missing, "F", ""),
                (CardClass::MedicationGuarantee, "C", ""),
                (CardClass::Unsupported, "A", "K5"),
                (CardClass::Unsupported, "E", "K2"),
                (CardClass::Unsupported, "G", "K3"),
                (CardClass::Matched, "A", "K1"),
            ]
        );
        assert_eq!(card_coverage(&f, &poor), (1, 3));
    }

    #[test]
    fn a_months_draw_is_of_its_new_cards_and_reproducible() {
        let cards: Vec<_> =
            (0..37).map(|i| card(&format!("K{i:03}"), "A", "高血压", "有效", if i < 25 { 20180610 } else { 20180702 })).collect();
        let june = new_cards_of_month(&cards, 201806);
        assert_eq!(june.len(), 25);
        let a = drawn_cards(&june, 99);
        assert_eq!(a.len(), 3, "10 % of 25, rounded up");
        assert_eq!(a, drawn_cards(&june, 99));
        assert!(a.iter().all(|c| c.as_str() < "K025"), "only June's cards");
        // The population is sorted by card number, so the order of the register does not matter.
        let mut rev: Vec<_> = cards.iter().rev().cloned().collect();
        rev.rotate_left(5);
        assert_eq!(drawn_cards(&new_cards_of_month(&rev, 201806), 99), a);
    }

    fn contract(id: &str, team: &str, fee: i64) -> With<ContractRow> {
        With {
            row: ContractRow {
                id_no: id.into(),
                year: 2018,
                team_code: team.into(),
                doctor: "王".into(),
                package: String::new(),
                fee_fen: fee,
                signed_date: 20180110,
            },
            who: who("620422100001"),
        }
    }

    #[test]
    fn the_fee_statement_splits_prepays_and_settles_per_hospital() {
        let contracts =
            vec![contract("A", "T1", 5_000), contract("B", "T1", 10_000), contract("C", "T2", 5_000), contract("D", "T1", 5_000)];
        let inst: HashMap<String, String> = [("T1", "H1"), ("T2", "H2")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let insured: HashSet<String> = ["A", "B", "C"].iter().map(|s| s.to_string()).collect();
        let served: HashSet<String> = ["A", "D"].iter().map(|s| s.to_string()).collect();
        let s = fee_statement(&contracts, &inst, &insured, &served);
        assert_eq!(s.len(), 2);
        let h1 = &s[0];
        assert_eq!((h1.institution.as_str(), h1.contracts, h1.basic, h1.intermediate), ("H1", 3, 2, 1));
        // A 2,500 + B 5,000 to the fund; D not insured: 2,500 public health, 2,500 the person.
        assert_eq!(h1.year.fund_share_fen, 7_500);
        assert_eq!(h1.year.prepaid_fen, 4_500);
        assert_eq!(h1.year.earned_fen, 2_500, "only A of the insured was served");
        assert_eq!(h1.year.balance_fen, -2_000);
        assert_eq!((h1.public_health_fen, h1.person_fen), (2_500 + 5_000 + 2_500, 2_500));
        assert_eq!(h1.year.fund_share_fen + h1.public_health_fen + h1.person_fen, h1.fee_fen);
        assert_eq!((s[1].year.fund_share_fen, s[1].year.prepaid_fen, s[1].year.balance_fen), (2_500, 1_500, -1_500));
    }

    #[test]
    fn follow_ups_are_listed_per_patient_with_their_doctor() {
        let people = vec![("A".to_string(), who("V")), ("B".to_string(), who("V")), ("C".to_string(), who("V"))];
        let registry = vec![reg("A", "高血压", true), reg("B", "骨关节炎", false), reg("X", "高血压", true)];
        let contracts = vec![contract("A", "T1", 5_000)];
        let fu = |id: &str, d: i64| ServiceRow {
            id_no: id.into(),
            service_date: d,
            kind: "随访".into(),
            disease: String::new(),
            doctor: "王".into(),
            note: None,
        };
        let services = vec![fu("A", 20180215), fu("A", 20180420), fu("B", 20170601)];
        let rows = follow_ups(&people, &registry, &contracts, &services, Date::new(2018, 7, 1).unwrap());
        assert_eq!(rows.len(), 2, "C has no chronic disease, X is not among the people");
        assert_eq!((rows[0].doctor.as_str(), rows[0].status.done, rows[0].status.due, rows[0].status.overdue), ("王", 2, 3, 1));
        assert_eq!((rows[1].doctor.as_str(), rows[1].status.due, rows[1].status.overdue), ("未签约", 0, 0));
        assert_eq!(follow_up_completion(&rows), (2, 3));
    }

    #[test]
    fn the_shipped_lists_have_their_counts_and_match_diagnoses() {
        let lists = shipped_mdt_lists();
        let count = |c: &str| lists.iter().find(|l| l.list_code == c).map(|l| l.diseases.len());
        assert_eq!(count("gansu-50"), Some(50));
        assert_eq!(count("zhongwei-20"), Some(20));
        assert_eq!(count("baotou-27"), Some(27));
        for l in &lists {
            assert!(!l.source.is_empty() && !l.note.is_empty(), "{} says where it comes from", l.list_code);
            for (i, d) in l.diseases.iter().enumerate() {
                assert_eq!(d.no, i as i64 + 1, "{} numbered 1..N", l.list_code);
                assert!(d.icd10.iter().all(|c| programmes::valid_icd(c)), "{} #{}: {:?}", l.list_code, d.no, d.icd10);
            }
        }
        assert!(lists.iter().find(|l| l.list_code == "zhongwei-20").unwrap().diseases.iter().any(|d| d.name.contains("白内障")));
        let gansu = list_for(&lists, "620422100201").unwrap();
        assert_eq!(gansu.list_code, "gansu-50");
        assert_eq!(list_for(&lists, "640502").unwrap().list_code, "zhongwei-20");
        assert!(list_for(&lists, "530102").is_none());
        assert!(disease_of(gansu, "C16.900").is_some_and(|d| d.name.contains("胃癌")));
        assert!(disease_of(gansu, "J06.9").is_none(), "a cold is not a major disease");
    }

    #[test]
    fn treatment_rate_counts_treated_of_all_but_the_untreated_dead() {
        let c = |status: &str, treated: Option<i64>| With {
            row: MdtCase {
                id: 0,
                id_no: String::new(),
                list_code: String::new(),
                disease_no: 1,
                dise_codg: String::new(),
                hospital: String::new(),
                diagnosis_date: 20180101,
                status: status.into(),
                treated_date: treated,
                referral: String::new(),
                origin: String::new(),
                setl_id: String::new(),
                updated_at: String::new(),
            },
            who: who("V"),
        };
        let cases = vec![c("已救治", Some(20180201)), c("救治中", None), c("待救治", None), c("死亡", None), c("死亡", Some(20180301))];
        assert_eq!(treatment_rate(&cases), (3, 4), "treated, then died: treated");
    }
}
