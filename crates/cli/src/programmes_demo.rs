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
    let o = baozhang_ingest::oversight::run_audit(store, i64::from(year), "", baozhang_ingest::oversight::DEFAULT_RULES, BY)
        .await
        .map_err(e)?;
    let leads = store.audit_leads(o.run_id, "", None).await.map_err(e)?;
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
        store.audit_leads(o.run_id, "", None).await.map_err(e)?.into_iter().filter(|l| l.state == "confirmed").take(3).collect();
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
        // Two people: the bureau requests 销号 with the evidence, the auditor reviews and approves it.
        store.request_close(*first, "退回违规费用的收据及医院整改报告", BY).await.map_err(e)?;
        store.review_rectification(*first, true, "", "auditor").await.map_err(e)?;
    }
    if let Some(second) = made.get(1) {
        store.request_close(*second, "补办参保登记表（村委会盖章）", BY).await.map_err(e)?;
    }
    println!("整改台账：{} 项（其中逾期 2 项、已销号 1 项、待复核销号 1 项）。", made.len());
    Ok(())
}

/// 挂牌督战, reports and funds of the demo county (issue 7): the villages that meet the thresholds
/// most strongly put under supervision (and one by hand), two responsibility zones, inspections whose
/// findings went to the ledger, a year of monthly report submissions (some late, some missing), budgets
/// with prepayment and assessment, and the quarterly fallback statements (one paid late, one unpaid).
pub async fn demo_supervise(store: &Store, county: &str, year: u16) -> Result<(), String> {
    use baozhang_core::supervise::{selection_reasons, ReportKind, Thresholds, REPORT_KINDS};
    use baozhang_store::oversight::Rectification;
    use baozhang_store::supervise::{Inspection, Submission, Zone};
    let y = i64::from(year);
    if !store.sup_villages(county, y).await.map_err(e)?.is_empty() {
        return Ok(());
    }
    let t = Thresholds::parse(include_str!("../../../data/supervision/thresholds.toml"))?;
    let facts = store.village_facts(county, y * 10_000 + 1231).await.map_err(e)?;
    let mut cands: Vec<_> = facts.iter().map(|(v, f)| (v, f, selection_reasons(f, &t))).filter(|c| !c.2.is_empty()).collect();
    cands.sort_by(|a, b| b.2.len().cmp(&a.2.len()).then(b.1.remaining_poor.cmp(&a.1.remaining_poor)).then(a.0.cmp(b.0)));
    let zones = [("北片", "赵振华", "孙立新"), ("南片", "钱文斌", "周建国")];
    let mut zone_ids = Vec::new();
    for (name, city, county_leader) in zones {
        let z =
            Zone { id: 0, name: name.into(), region_code: county.into(), city_leader: city.into(), county_leader: county_leader.into() };
        zone_ids.push(store.add_zone(&z, BY).await.map_err(e)?);
    }
    let mut chosen = Vec::new();
    for (k, (v, _, reasons)) in cands.iter().take(6).enumerate() {
        store.select_village(v, y, &reasons.join("；"), false, Some(zone_ids[k % 2]), BY).await.map_err(e)?;
        chosen.push((*v).clone());
    }
    // By hand: a resettlement village, and (a small demo county's villages rarely reach the thresholds)
    // the villages with the most remaining poor until there are three, each with its figure.
    if let Some((v, _)) = facts.iter().find(|(v, _)| !chosen.contains(v)) {
        store.select_village(v, y, "手工纳入：易地扶贫搬迁安置村，遗留问题较多", true, Some(zone_ids[0]), BY).await.map_err(e)?;
        chosen.push(v.clone());
    }
    let mut most: Vec<_> = facts.iter().filter(|(v, _)| !chosen.contains(v)).collect();
    most.sort_by(|a, b| b.1.remaining_poor.cmp(&a.1.remaining_poor).then(a.0.cmp(&b.0)));
    for (v, f) in most.into_iter().take(3usize.saturating_sub(chosen.len())) {
        let why = format!("手工纳入：剩余贫困人口 {} 人，居全县前列", f.remaining_poor);
        store.select_village(v, y, &why, true, Some(zone_ids[1]), BY).await.map_err(e)?;
        chosen.push(v.clone());
    }
    let findings = ["无", "2 户贫困户成员未参保，资助未到位", "村卫生室未张贴医保扶贫政策", "慢病患者随访记录不全"];
    let modes = ["field", "phone", "remote", "field"];
    let mut inspected = 0;
    for (k, v) in chosen.iter().take(4).enumerate() {
        let on = y * 10_000 + 1_105 + 7 * k as i64;
        let i = Inspection {
            village_code: v.clone(),
            on_date: on,
            mode: modes[k].into(),
            inspector: "县医保局督导组".into(),
            findings: findings[k].into(),
            ..Default::default()
        };
        let id = store.add_inspection(&i, BY).await.map_err(e)?;
        inspected += 1;
        if findings[k] != "无" {
            let r = Rectification {
                problem: findings[k].into(),
                source: "督查检查".into(),
                source_ref: Some(format!("inspection:{id}")),
                region_code: v.clone(),
                subject: "挂牌督战督导".into(),
                responsible_unit: "乡镇人民政府、村委会".into(),
                responsible_person: "驻村工作队".into(),
                deadline: on + 100,
                measures: "按督导意见整改".into(),
                ..Default::default()
            };
            if let Some(item) = store.add_rectification(&r, BY).await.map_err(e)? {
                store.link_inspection(id, item).await.map_err(e)?;
            }
        }
    }
    println!("挂牌督战（{year} 年）：符合条件的村 {} 个，纳入督战 {} 个，督导 {inspected} 次。", cands.len(), chosen.len());

    // A year of monthly reports: most on time, some late, the last month's missing for two units.
    let mut n = 0;
    for kind in REPORT_KINDS {
        for (ui, (unit, _)) in kind.units().iter().enumerate() {
            for m in 1..=12i64 {
                let period = y * 100 + m;
                let due = kind.due_day() as i64;
                let day = match (kind, ui, m) {
                    (_, _, 12) if ui > 0 || kind == ReportKind::CountyProgress => continue,
                    (ReportKind::CountyProgress, _, 3 | 8) => due + 3,
                    (ReportKind::InfoExchange, 2, m) if m % 4 == 0 => due + 5,
                    _ => due - 2 - (m + ui as i64) % 4,
                };
                let s = Submission {
                    kind: kind.id().into(),
                    region_code: county.into(),
                    unit: (*unit).into(),
                    period,
                    submitted_on: period * 100 + day,
                    submitted_by: BY.into(),
                    note: String::new(),
                };
                n += usize::from(store.submit_report(&s).await.map_err(e)?);
            }
        }
    }
    println!("月报报送：{n} 次（含迟报与未报，见工作台“月报与分析”）。");

    // Budgets (60 % prepaid in January, half assessed), and the quarterly fallback statements. The batch
    // settlements of the demo name one hospital per level (DEMO-LV1, DEMO-LV2); they are registered as
    // the county's hospitals of those levels (disabled: they never call the national interface).
    for (code, name, lv) in [("DEMO-LV1", "乡镇卫生院（演示汇总）", 1), ("DEMO-LV2", "县级定点医院（演示汇总）", 2)]
    {
        if store.institution(code).await.map_err(e)?.is_none() {
            let inst = baozhang_store::service::Institution {
                fixmedins_code: code.into(),
                name: name.into(),
                hosp_lv: lv,
                admdvs: county.into(),
                secret: baozhang_server::random_hex(32),
                disabled: true,
                hosp_grade: 0,
                primary_care: false,
            };
            store.add_institution(BY, &inst).await.map_err(e)?;
        }
    }
    let hospitals: Vec<_> = store.institutions().await.map_err(e)?.into_iter().filter(|h| h.admdvs.starts_with(county)).collect();
    for (k, h) in hospitals.iter().enumerate() {
        let budget = match h.hosp_lv {
            1 => 3_000_000 * 100,
            2 => 40_000_000 * 100,
            _ => 80_000_000 * 100,
        } + 1_000_000 * 100 * (k as i64 % 3);
        store.set_budget(&h.fixmedins_code, y, budget, BY).await.map_err(e)?;
        if k != 1 {
            store.budget_step(&h.fixmedins_code, y, Some(y * 10_000 + 115), None, BY).await.map_err(e)?;
        }
        if k % 2 == 0 {
            store
                .budget_step(&h.fixmedins_code, y, None, Some((9_250 - 150 * k as i64 % 1_000, (y + 1) * 10_000 + 120)), BY)
                .await
                .map_err(e)?;
        }
    }
    let codes: Vec<&str> = hospitals.iter().map(|h| h.fixmedins_code.as_str()).collect();
    let mut statements = 0;
    for (k, (code, q, amount, claims)) in store.fallback_by_quarter(y).await.map_err(e)?.into_iter().enumerate() {
        if !codes.contains(&code.as_str()) {
            continue;
        }
        let Some(id) = store.draw_up_statement(&code, y, q, amount, claims, BY).await.map_err(e)? else { continue };
        statements += 1;
        let (ny, nm) = if q == 4 { (y + 1, 1) } else { (y, 3 * q + 1) };
        let base = ny * 10_000 + nm * 100;
        let submitted = base + if k % 7 == 3 { 14 } else { 8 };
        store.statement_step(id, "submit", submitted, BY).await.map_err(e)?;
        let accepted = submitted + 2;
        store.statement_step(id, "accept", accepted, BY).await.map_err(e)?;
        // Paid within 15 working days, except one paid a month late and the last quarter's first unpaid.
        let paid = match (k % 11, q) {
            (_, 4) if k % 2 == 0 => None,
            (5, _) => Some(base + 100 + 20),
            _ => Some(base + 20),
        };
        if let Some(p) = paid {
            let p = baozhang_store::num_date(p).map(baozhang_store::date_num).unwrap_or(base + 28);
            store.statement_step(id, "pay", p, BY).await.map_err(e)?;
        }
    }
    println!("资金拨付：{} 家定点医疗机构年度预算，兜底资金季度对账表 {statements} 张。", hospitals.len());
    Ok(())
}

/// Re-settlement in the demo county (issue 17): two persons not on any roster applied for assistance
/// after discharge; one application is approved (低保 recognised from 1 January, the person's year
/// re-settled: the critical-illness deductible falls and the difference is paid back), one waits for the
/// bureau on 重新结算.
pub async fn demo_resettle(store: &Store, year: u16) -> Result<(), String> {
    use baozhang_store::resettle::{self, NewApplication, Reason, RunCtx};
    if !store.applications("", None, 1).await.map_err(e)?.is_empty() {
        return Ok(());
    }
    // The largest inpatient bills of people with no identity at all (ordinary residents).
    let rows = store.largest_plain_inpatients(year, 2).await.map_err(e)?;
    if rows.len() < 2 {
        return Ok(());
    }
    let policies = baozhang_server::Policies::reference();
    for (k, (psn_no, id_no, village)) in rows.iter().enumerate() {
        let app = NewApplication {
            psn_no: psn_no.clone(),
            id_no: id_no.clone(),
            village_code: village.clone(),
            year,
            kind: baozhang_core::Identity::Dibao,
            effective_from: i64::from(year) * 10_000 + 101,
            documents: "申请书、低保证复印件、出院小结、费用清单".into(),
        };
        let id = store.record_application(&app, "county").await.map_err(e)?;
        if k == 0 {
            store.decide_application(id, true, "材料齐全，低保自 1 月 1 日起", "county").await.map_err(e)?;
            let mut tx = store.begin_write().await.map_err(e)?;
            let region = village.clone().unwrap_or_default();
            let run_id = resettle::create_run_in(
                &mut tx,
                year,
                &region,
                Some(psn_no),
                Reason::Application,
                &format!("依申请救助 #{id}"),
                "county",
                1,
            )
            .await
            .map_err(e)?;
            tx.commit().await.map_err(e)?;
            let run = RunCtx { run_id, reason: Reason::Application, opter: "county".into() };
            let o = resettle::drive_run(
                store,
                &run,
                year,
                std::slice::from_ref(psn_no),
                resettle::STEP,
                &policies,
                &baozhang_server::resettle::explain,
                &mut |_, _| {},
            )
            .await
            .map_err(e)?;
            store.link_application_run(id, run_id).await.map_err(e)?;
            let back: i64 = o.adjusted.iter().map(|a| -a.psn_fen).sum();
            println!(
                "重新结算：依申请救助 1 件已批准并重算（调整 {} 笔，补付个人 {} 元），1 件待审核。",
                o.adjusted.len(),
                baozhang_core::Fen(back).grouped()
            );
        }
    }
    Ok(())
}

/// A year of periodic forms (issue 19) from every unit that must report them: most on time, some late,
/// a few missing, some returned by the bureau and corrected. Values are generated to pass each form's
/// checks (the sums add up; answered right ≤ asked), with plausible sizes: about 85 % of township
/// hospitals connected to remote consultation, policy awareness around 95 %.
pub async fn demo_forms(store: &Store, county: &str, year: u16) -> Result<(), String> {
    use baozhang_core::forms::{format_number, parse_number, FieldKind, Op, Units, Values};
    use baozhang_store::forms::Filing;
    let y = i64::from(year);
    if !store.form_reports(county, Some("expired_drugs"), y * 100 + 1, y * 100 + 12).await.map_err(e)?.is_empty() {
        return Ok(());
    }
    let cal = baozhang_core::workdays::Calendar::parse(include_str!("../../../data/calendar/cn.toml"))?;
    let regions = store.regions_upto(5, Some(county)).await.map_err(e)?;
    let townships: Vec<String> =
        regions.iter().filter(|r| r.code.len() == 9 && r.code.starts_with(county)).map(|r| r.code.clone()).collect();
    let hospitals = store.institutions().await.map_err(e)?;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(year);
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    let (mut filed, mut late, mut missing, mut corrected) = (0, 0, 0, 0);
    for def in baozhang_core::forms::shipped() {
        // The monthly R-SUP-3 reports are filled by demo_supervise.
        if def.id == "county_progress" || def.id == "info_exchange" {
            continue;
        }
        let units: Vec<String> = match &def.units {
            Units::Townships => townships.clone(),
            Units::Hospitals(l) => hospitals
                .iter()
                .filter(|h| h.admdvs == county && l.contains(&h.hosp_lv) && !h.disabled)
                .map(|h| h.fixmedins_code.clone())
                .collect(),
            Units::Offices(o) => o.iter().map(|(c, _)| c.clone()).collect(),
        };
        for (ui, unit) in units.iter().enumerate() {
            for p in def.periods_of_year(year) {
                let roll = next(100);
                if roll < 4 {
                    missing += 1;
                    continue;
                }
                let due = def.due.date(p, &cal);
                let on = if roll < 14 { due.add_days(1 + next(9) as i32) } else { due.add_days(-(next(6) as i32)) };
                let on = on.max(p.first_day());
                late += usize::from(on > due);
                let mut v = Values::default();
                let gen = |kind: &FieldKind, key: &str, k: &mut dyn FnMut(u64) -> u64| -> String {
                    match kind {
                        FieldKind::Integer => (k(12) + if key == "staff" || key.ends_with("total") { 4 } else { 0 }).to_string(),
                        FieldKind::Decimal { .. } if key == "fines" => format_number(k(50) as i64 * 100, 4),
                        FieldKind::Decimal { scale } => format_number(k(300) as i64 * 10i64.pow(u32::from(*scale)) / 10, *scale),
                        FieldKind::YesNo if key == "connected" => if k(100) < 86 { "是" } else { "否" }.into(),
                        FieldKind::YesNo => if k(100) < 90 { "是" } else { "否" }.into(),
                        FieldKind::Choice(c) => c[k(c.len() as u64) as usize].clone(),
                        FieldKind::Text { .. } if key == "connected_on" => String::new(),
                        FieldKind::Text { max_chars } if *max_chars <= 20 => ["李明", "王芳", "张伟", "刘洋"][k(4) as usize].into(),
                        FieldKind::Text { .. } if key == "summary" || key == "progress" => "按方案完成本期工作，问题已督促整改。".into(),
                        FieldKind::Text { .. } => String::new(),
                    }
                };
                for f in &def.fields {
                    let x = gen(&f.kind, &f.key, &mut next);
                    if !x.is_empty() {
                        v.fields.insert(f.key.clone(), x);
                    }
                }
                if let Some(t) = &def.table {
                    let n = match def.id.as_str() {
                        "awareness" => 6,
                        _ => 2,
                    };
                    for i in 0..n.min(t.max_rows) {
                        let mut row = std::collections::BTreeMap::new();
                        for c in &t.columns {
                            let x = match (c.key.as_str(), &c.kind) {
                                ("hospital", _) => ["白银市第一人民医院", "甘肃省人民医院", "兰州大学第二医院"][i % 3].to_string(),
                                ("question", FieldKind::Choice(ch)) => ch[i % ch.len()].clone(),
                                ("asked", _) => (30 + next(30)).to_string(),
                                ("team", _) => (2 + next(5)).to_string(),
                                _ => gen(&c.kind, &c.key, &mut next),
                            };
                            row.insert(c.key.clone(), x);
                        }
                        v.rows.push(row);
                    }
                }
                // Make the checks hold: a total is its parts; a part of a whole is 85–100 % of it.
                for c in &def.checks {
                    let scale = def.field(&c.left[0]).map_or(0, |f| f.kind.scale());
                    let fix = |vals: &mut std::collections::BTreeMap<String, String>, pct: u64| {
                        let sum: i64 = c.right.iter().map(|k| vals.get(k).and_then(|x| parse_number(x, scale).ok()).unwrap_or(0)).sum();
                        let value = match c.op {
                            Op::Eq => sum,
                            Op::Le => sum * pct as i64 / 100,
                            Op::Ge => sum,
                        };
                        vals.insert(c.left[0].clone(), format_number(value, scale));
                    };
                    if c.per_row {
                        for row in &mut v.rows {
                            fix(row, 88 + next(13));
                        }
                    } else {
                        fix(&mut v.fields, 85 + next(16));
                    }
                }
                let values = def.check(&v).map_err(|p| format!("演示报表 {} 不符合校验：{:?}", def.id, p.first()))?;
                let json = serde_json::to_string(&values).map_err(e)?;
                let f = Filing {
                    form_id: def.id.clone(),
                    county: county.into(),
                    unit: unit.clone(),
                    period: p.code(),
                    seen_version: 0,
                    filed_on: baozhang_store::date_num(on),
                    values_json: json.clone(),
                    note: String::new(),
                    actor: BY.into(),
                };
                store.file_form(&f).await.map_err(e)?.map_err(|r| format!("演示报表 {}：{r:?}", def.id))?;
                filed += 1;
                // Every ninth report is returned and corrected a few days later.
                if (ui + usize::from(p.index)) % 9 == 4 {
                    let back = Filing { seen_version: 1, filed_on: baozhang_store::date_num(on.add_days(2)), ..f.clone() };
                    store.return_form(&back, "数据与台账不一致，请核对后重新报送").await.map_err(e)?.map_err(|r| format!("{r:?}"))?;
                    let mut fixed = values.clone();
                    if let Some(first) = def
                        .fields
                        .iter()
                        .find(|f| f.kind.numeric() && !def.checks.iter().any(|c| c.left.contains(&f.key) || c.right.contains(&f.key)))
                    {
                        let old = fixed.fields.get(&first.key).and_then(|x| parse_number(x, first.kind.scale()).ok()).unwrap_or(0);
                        fixed.fields.insert(first.key.clone(), format_number(old + 1, first.kind.scale()));
                    }
                    let again = Filing {
                        seen_version: 2,
                        filed_on: baozhang_store::date_num(on.add_days(4)),
                        values_json: serde_json::to_string(&fixed).map_err(e)?,
                        note: "已按台账更正".into(),
                        ..f
                    };
                    store.file_form(&again).await.map_err(e)?.map_err(|r| format!("{r:?}"))?;
                    corrected += 1;
                }
            }
        }
    }
    println!(
        "定期报表（{year} 年）：报送 {filed} 份，其中迟报 {late} 份、退回后更正 {corrected} 份；未报 {missing} 份（见工作台“定期报表”）。"
    );
    Ok(())
}
