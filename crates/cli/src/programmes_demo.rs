//! The demo county's health programmes (issue 6): programme files written from the imported registry
//! and imported like any other file, the major-disease lists and the cases found in the year's
//! settlements, a few cases entered by hand, and monthly card audits with recorded seeds.

use std::path::Path;

use baozhang_ingest::health::{cases_from_settlements, drawn_cards, new_cards_of_month, shipped_mdt_lists};
use baozhang_ingest::health_demo::write_programme_files;
use baozhang_store::programmes::MdtCase;
use baozhang_store::Store;

use crate::data_cmd::import_one;

const BY: &str = "demo";

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// Loads the programme data of the demo county once (a second run changes nothing).
pub async fn demo_programmes(store: &Store, county: &str, year: u16, data: &Path, seed: u64) -> Result<(), String> {
    store.ensure_mdt_lists(&shipped_mdt_lists()).await.map_err(e)?;
    if store.count("fdc_teams").await.map_err(e)? > 0 {
        println!("数据库已有健康项目数据，跳过生成与导入。");
        return Ok(());
    }
    let dir = data.join("programmes");
    let files = write_programme_files(store, county, year, &dir, seed).await.map_err(e)?;
    println!("健康项目演示数据：慢病登记 {} 条，家庭医生签约 {} 人。", files.patients, files.contracts);
    for (kind, path) in &files.files {
        import_one(store, *kind, path, Some(dir.join("rejected")), false).await?;
    }
    let y = i64::from(year);
    let (listed, opened) = cases_from_settlements(store, county, y, BY).await.map_err(e)?;
    println!("大病集中救治台账：{listed} 次结算的诊断在病种目录内，新建病例 {opened} 个。");

    // A few cases found by village doctors' screening, not (yet) in any settlement.
    let poor = store.registered_poor(county, y * 10_000 + 1231).await.map_err(e)?;
    let lists = store.mdt_lists().await.map_err(e)?;
    if let Some(list) = baozhang_ingest::health::list_for(&lists, county) {
        let pick = |name: &str| list.diseases.iter().find(|d| d.name.contains(name)).or(list.diseases.first());
        let manual =
            [("白内障", "待救治", "H25.9"), ("终末期肾病", "救治中", "N18.5"), ("食管癌", "已转诊", "C15.9"), ("胃癌", "待救治", "C16.9")];
        for (k, (name, status, code)) in manual.iter().enumerate() {
            let (Some(d), Some((id_no, _))) = (pick(name), poor.get(100 + 997 * k)) else { continue };
            let case = MdtCase {
                id: 0,
                id_no: id_no.clone(),
                list_code: list.list_code.clone(),
                disease_no: d.no,
                dise_codg: code.to_string(),
                hospital: "H62042200001".into(),
                diagnosis_date: y * 10_000 + 1_001 + 100 * (k as i64 % 2),
                status: status.to_string(),
                treated_date: None,
                referral: if *status == "已转诊" { "甘肃省人民医院 肿瘤科".into() } else { String::new() },
                origin: "手工".into(),
                setl_id: String::new(),
                updated_at: String::new(),
            };
            if store.add_mdt_case(&case, BY).await.map_err(e)? {
                if let Some(c) =
                    store.mdt_cases(county).await.map_err(e)?.into_iter().find(|c| c.row.id_no == case.id_no && c.row.disease_no == d.no)
                {
                    store
                        .mdt_follow_up(c.row.id, y * 10_000 + 1_115, status, None, "村医随访：已告知定点医院与免押金政策", BY)
                        .await
                        .map_err(e)?;
                }
            }
        }
    }

    // Card audits, March to November, each with its recorded seed; the last two months not yet checked.
    let cards = store.chronic_cards(county).await.map_err(e)?;
    let mut drawn_total = 0;
    for m in 3..=11i64 {
        let month = y * 100 + m;
        let pop = new_cards_of_month(&cards, month);
        let seed = (20_181_000 + m) as u64;
        let drawn = drawn_cards(&pop, seed);
        drawn_total += drawn.len();
        if let Some(id) = store.record_chronic_audit(county, month, seed as i64, pop.len() as i64, &drawn, BY).await.map_err(e)? {
            if m <= 9 {
                for (k, card) in drawn.iter().enumerate() {
                    let (result, note) = match (k * 7 + m as usize) % 13 {
                        0 => ("人情卡", "诊断证明与病历不符，建议注销"),
                        1 => ("流程不规范", "缺少专家组鉴定意见"),
                        _ => ("合规", ""),
                    };
                    store.set_audit_result(id, card, result, note, BY).await.map_err(e)?;
                }
            }
        }
    }
    println!("慢病卡抽审：3—11 月共抽取 {drawn_total} 张（每月新办卡的 10% 以上，种子已记录）。");
    Ok(())
}

/// One fund-supervision audit of the demo year (once), with a few leads already handled.
pub async fn demo_audit(store: &Store, year: u16) -> Result<(), String> {
    if !store.audit_runs().await.map_err(e)?.is_empty() {
        return Ok(());
    }
    let o =
        baozhang_ingest::oversight::run_audit(store, i64::from(year), baozhang_ingest::oversight::DEFAULT_RULES, BY).await.map_err(e)?;
    let leads = store.audit_leads(o.run_id, None).await.map_err(e)?;
    for (k, l) in leads.iter().enumerate().filter(|(k, _)| k % 9 == 0).take(12) {
        let (action, note) =
            if k % 2 == 0 { ("confirm", "核对病历与费用清单，确认") } else { ("dismiss", "病情需要，排除") };
        store.act_on_lead(l.id, action, false, BY, "医保局工作人员", note).await.map_err(e)?;
    }
    println!("基金监管审核（{year} 年）：结算 {} 条，疑点线索 {} 条（工作台“基金监管”查看与处理）。", o.claims, o.leads.len());

    // The rectification ledger: confirmed leads, an inspection's findings (two overdue), one closed.
    use baozhang_store::oversight::Rectification;
    let y = i64::from(year);
    let mut made = Vec::new();
    let confirmed: Vec<_> =
        store.audit_leads(o.run_id, None).await.map_err(e)?.into_iter().filter(|l| l.state == "confirmed").take(3).collect();
    for l in &confirmed {
        let r = Rectification {
            problem: format!("基金监管线索 #{}：{}", l.id, l.evidence),
            source: "基金监管".into(),
            source_ref: Some(format!("lead:{}", l.id)),
            region_code: crate::demo_cmd::DEMO_COUNTY.into(),
            subject: l.subject.clone(),
            responsible_unit: l.fixmedins_code.clone(),
            responsible_person: "医疗机构负责人".into(),
            deadline: y * 10_000 + 1_231,
            measures: "核查并退回违规费用".into(),
            ..Default::default()
        };
        made.extend(store.add_rectification(&r, BY).await.map_err(e)?);
    }
    let villages = store.regions_upto(5, Some(crate::demo_cmd::DEMO_COUNTY)).await.map_err(e)?;
    let today = baozhang_store::date_num(baozhang_core::Date::parse(&baozhang_store::now_text()[..10]).map_err(e)?);
    for (k, v) in villages.iter().filter(|r| r.level == 5).step_by(40).take(5).enumerate() {
        let r = Rectification {
            problem: [
                "贫困人口参保资助未到位",
                "村卫生室未公示医保扶贫政策",
                "慢病患者随访记录不全",
                "家庭医生签约未履约",
                "一站式结算窗口未设置",
            ][k]
                .into(),
            source: "督查检查".into(),
            region_code: v.code.clone(),
            subject: v.name.clone(),
            responsible_unit: "乡镇人民政府".into(),
            responsible_person: "分管副乡长".into(),
            deadline: if k < 2 { y * 10_000 + 1_130 } else { today + 10_000 },
            measures: "逐户核实并补办".into(),
            ..Default::default()
        };
        made.extend(store.add_rectification(&r, BY).await.map_err(e)?);
    }
    if let Some(first) = made.first() {
        store.close_rectification(*first, "退回违规费用的收据及医院整改报告", "auditor", BY).await.map_err(e)?;
    }
    println!("整改台账：{} 项（其中逾期 2 项、已销号 1 项）。", made.len());
    Ok(())
}
