//! Plausible health-programme files for the demo county, written from the registry already imported
//! (deterministic from a seed): the health department's chronic registry (XLSX, as it arrives), the
//! card register with a few planted bad rows, family-doctor teams at four levels, contracts and a
//! year of service records with some follow-ups missing. `baozhang demo` imports them like any other
//! file, so the reject report and every programme page have content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baozhang_core::programmes::{Package, FURTHER_DISEASES, KEY_DISEASES};
use baozhang_core::{Date, IdCardNo};
use baozhang_store::Store;

use crate::rosters::RosterKind;
use crate::synth::Rng;
use crate::table::{write_csv, write_xlsx, TableError};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Store(#[from] baozhang_store::StoreError),
    #[error("{0}")]
    Table(#[from] TableError),
}

/// What was written, per kind, in import order.
pub struct ProgrammeFiles {
    pub files: Vec<(RosterKind, PathBuf)>,
    pub patients: usize,
    pub contracts: usize,
}

const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"];

/// Writes the five programme files for the registered poor of `county` in `year` into `dir`.
pub async fn write_programme_files(store: &Store, county: &str, year: u16, dir: &Path, seed: u64) -> Result<ProgrammeFiles, DemoError> {
    std::fs::create_dir_all(dir).map_err(|e| TableError::Write { file: dir.display().to_string(), reason: e.to_string() })?;
    let mut rng = Rng::new(seed ^ 0x4845_414c_5448);
    let y = i64::from(year);
    let year_end = y * 10_000 + 1231;
    let poor = store.registered_poor(county, year_end).await?;
    let regions = store.regions_upto(5, Some(county)).await?;
    let townships: Vec<_> = regions.iter().filter(|r| r.level == 4).collect();

    // Teams: a city expert team, a county hospital team, and per township a township and a village team.
    let header = |k: RosterKind| -> Vec<String> { k.columns().iter().map(|c| c.0.to_string()).collect() };
    let mut teams: Vec<Vec<String>> = vec![
        vec![
            format!("T{}-CITY", &county[..4]),
            "市级专家团队".into(),
            "省市级".into(),
            format!("H{}01", &county[..4]),
            county[..4].to_string(),
            "赵主任".into(),
        ],
        vec![
            format!("T{county}-CTY"),
            "县医院家庭医生团队".into(),
            "县级".into(),
            "H62042200001".into(),
            county.to_string(),
            "钱主任".into(),
        ],
    ];
    let mut team_of_township: BTreeMap<String, String> = BTreeMap::new();
    for (i, t) in townships.iter().enumerate() {
        let code = format!("T{}", t.code);
        team_of_township.insert(t.code.clone(), code.clone());
        teams.push(vec![
            code,
            format!("{}卫生院家庭医生团队", t.name),
            "乡级".into(),
            format!("WSY{}", t.code),
            t.code.clone(),
            format!("{}院长", SURNAMES[i % SURNAMES.len()]),
        ]);
        teams.push(vec![
            format!("T{}-V", t.code),
            format!("{}村医团队", t.name),
            "村级".into(),
            format!("WSY{}", t.code),
            t.code.clone(),
            String::new(),
        ]);
    }

    let mut registry = Vec::new();
    let mut cards = Vec::new();
    let mut contracts = Vec::new();
    let mut services = Vec::new();
    let mut card_seq = 0u32;
    let mut patients = 0;
    let as_of = Date::new(year, 12, 31).expect("year end");
    for (id_no, who) in &poor {
        let Ok(id) = IdCardNo::parse(id_no) else { continue };
        let age = i64::from(year) - i64::from(id.birth_date().year());
        let township = who.village_code.get(..9).unwrap_or("").to_string();
        let doctor = format!("{}村医", SURNAMES[(who.village_code.bytes().map(u64::from).sum::<u64>() % 12) as usize]);
        // Chronic diseases: more with age.
        let pm = match age {
            ..=14 => 0,
            15..=34 => 10,
            35..=49 => 90,
            50..=64 => 220,
            _ => 340,
        };
        let mut diseases: Vec<&str> = Vec::new();
        if rng.chance(pm) {
            let d = match rng.below(100) {
                0..=54 => KEY_DISEASES[0],
                55..=79 => KEY_DISEASES[1],
                80..=84 => KEY_DISEASES[2],
                85..=87 => KEY_DISEASES[3],
                _ => FURTHER_DISEASES[rng.below(6) as usize],
            };
            diseases.push(d);
            if rng.chance(150) {
                let d2 = FURTHER_DISEASES[rng.below(6) as usize];
                if d2 != d {
                    diseases.push(d2);
                }
            }
        }
        for d in &diseases {
            patients += 1;
            let eligible = !rng.chance(120);
            let diagnosed = Date::new(year - 1 - rng.below(6) as u16, 1 + rng.below(12) as u8, 1 + rng.below(28) as u8).expect("date");
            registry.push(vec![
                id_no.clone(),
                who.name.clone(),
                d.to_string(),
                if eligible { "是" } else { "否" }.to_string(),
                diagnosed.max(id.birth_date()).to_string(),
                format!("{township}卫生院"),
            ]);
            // Most who qualify hold a card; a few hold one they should not.
            if (eligible && !rng.chance(90)) || (!eligible && rng.chance(80)) {
                card_seq += 1;
                let issue = Date::new(year, 1 + rng.below(12) as u8, 1 + rng.below(28) as u8).expect("date");
                cards.push(vec![
                    format!("MB{year}{card_seq:06}"),
                    id_no.clone(),
                    who.name.clone(),
                    d.to_string(),
                    issue.to_string(),
                    "县医疗保障局".into(),
                    if rng.chance(15) { "注销" } else { "有效" }.to_string(),
                ]);
            }
        }
        // Contracts: nearly everyone, key people more surely.
        let key = !diseases.is_empty();
        if rng.chance(if key { 995 } else { 960 }) {
            let package = if key && rng.chance(400) || rng.chance(150) { Package::Intermediate } else { Package::Basic };
            let team = if rng.chance(700) {
                team_of_township.get(&township).map(|t| format!("{t}-V")).unwrap_or_else(|| format!("T{county}-CTY"))
            } else {
                team_of_township.get(&township).cloned().unwrap_or_else(|| format!("T{county}-CTY"))
            };
            // A child born during the year is signed up after birth.
            let signed = Date::new(year, 1 + rng.below(3) as u8, 1 + rng.below(28) as u8).expect("date").max(id.birth_date());
            contracts.push(vec![
                id_no.clone(),
                who.name.clone(),
                year.to_string(),
                team,
                doctor.clone(),
                package.name_zh().to_string(),
                signed.to_string(),
            ]);
            // Follow-ups of chronic patients: most keep to the schedule, some fall behind.
            if key {
                let per_year = if diseases.iter().any(|d| KEY_DISEASES.contains(d)) { 6 } else { 1 };
                let done = if rng.chance(780) { per_year } else { rng.below(per_year as u64) as u32 };
                for k in 0..done {
                    let month = if per_year == 6 { 2 * k + 1 + rng.below(2) as u32 } else { 3 + rng.below(9) as u32 };
                    let d = Date::new(year, month.min(12) as u8, 1 + rng.below(28) as u8).expect("date").min(as_of);
                    services.push(vec![
                        id_no.clone(),
                        who.name.clone(),
                        d.to_string(),
                        "随访".into(),
                        diseases[0].to_string(),
                        doctor.clone(),
                        String::new(),
                    ]);
                }
                if rng.chance(120) {
                    let d = Date::new(year, 1 + rng.below(12) as u8, 1 + rng.below(28) as u8).expect("date");
                    services.push(vec![
                        id_no.clone(),
                        who.name.clone(),
                        d.to_string(),
                        "送医上门".into(),
                        String::new(),
                        doctor.clone(),
                        "上门送药".into(),
                    ]);
                }
            }
            if rng.chance(15) {
                let d = Date::new(year, 1 + rng.below(12) as u8, 1 + rng.below(28) as u8).expect("date").max(id.birth_date());
                services.push(vec![
                    id_no.clone(),
                    who.name.clone(),
                    d.to_string(),
                    "送人就医".into(),
                    String::new(),
                    doctor.clone(),
                    "陪同至县医院住院".into(),
                ]);
            }
        }
    }
    // A few cards of people the health department has not registered, and two rows a clerk got wrong.
    for (id_no, who) in poor.iter().rev().take(12) {
        card_seq += 1;
        cards.push(vec![
            format!("MB{year}{card_seq:06}"),
            id_no.clone(),
            who.name.clone(),
            "2型糖尿病".into(),
            format!("{year}-06-{:02}", 1 + card_seq % 28),
            "县医疗保障局".into(),
            "有效".into(),
        ]);
    }
    if let Some((id_no, who)) = poor.first() {
        let mut bad = id_no.clone();
        let last = if bad.ends_with('0') { '1' } else { '0' };
        bad.pop();
        bad.push(last);
        cards.push(vec![
            format!("MB{year}999998"),
            bad,
            who.name.clone(),
            "高血压".into(),
            format!("{year}-05-06"),
            String::new(),
            "有效".into(),
        ]);
        cards.push(vec![
            format!("MB{year}999999"),
            id_no.clone(),
            who.name.clone(),
            "感冒".into(),
            format!("{year}-05-06"),
            String::new(),
            "有效".into(),
        ]);
    }

    let mut files = Vec::new();
    let reg_path = dir.join(format!("{}.xlsx", RosterKind::ChronicRegistry.id()));
    write_xlsx(&reg_path, &[(RosterKind::ChronicRegistry.name_zh().to_string(), header(RosterKind::ChronicRegistry), registry)])?;
    files.push((RosterKind::ChronicRegistry, reg_path));
    for (kind, rows) in [
        (RosterKind::ChronicCards, cards),
        (RosterKind::FdcTeams, teams),
        (RosterKind::FdcContracts, contracts.clone()),
        (RosterKind::FdcServices, services),
    ] {
        let path = dir.join(format!("{}.csv", kind.id()));
        write_csv(&path, &header(kind), &rows)?;
        files.push((kind, path));
    }
    Ok(ProgrammeFiles { files, patients, contracts: contracts.len() })
}
