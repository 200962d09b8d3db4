//! `baozhang generate` and `baozhang demo`: a realistic synthetic county on the real division tree,
//! imported, reconciled and settled — the product's main job end to end on the embedded default.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use baozhang_core::Fen;
use baozhang_ingest::county::{generate, CountyParams, VillageRef};
use baozhang_ingest::registry_settle::settle_claims_from_registry;
use baozhang_store::Store;

use crate::data_cmd::{ensure_regions, import_one, open_store, progress_bar, run_reconcile, runtime, DbArgs, ReconcileArgs};

#[derive(Args)]
pub struct GenerateArgs {
    /// 县级区划代码（默认会宁县）
    #[arg(long, default_value = "620422")]
    pub county: String,
    #[arg(long, default_value_t = 20181)]
    pub seed: u64,
    /// 规模（1.0 ≈ 58 万常住人口、63,656 名建档立卡贫困人口）
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// 数据年度
    #[arg(long, default_value_t = 2018)]
    pub year: u16,
    /// 输出目录
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct DemoArgs {
    /// 规模（1.0 为全县；0.1 约十分之一，适合快速体验）
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    #[arg(long, default_value_t = 20181)]
    pub seed: u64,
    /// 生成的名单存放目录
    #[arg(long, default_value = "demo-data")]
    pub dir: PathBuf,
    /// 只准备数据后退出（默认在准备完成后启动工作台）
    #[arg(long)]
    pub no_serve: bool,
    /// 工作台监听地址
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
}

/// The demo accounts' password (demo data only; printed with the accounts).
pub const DEMO_PASSWORD: &str = "Demo-2018";
/// The demo county's hospital, registered for the settlement window.
pub const DEMO_HOSPITAL: &str = "H62042200001";

/// One account per role on the demo county (created once; a second run only lists them). The village
/// cadre gets the village with the most reconciliation findings, so the worklist has work in it.
/// The demo county's warning line of illness-caused poverty (R-RISK-1), once: 50 % of an illustrative
/// rural per-capita disposable income (not an official figure; the bureau sets the real one).
pub const DEMO_RURAL_INCOME_FEN: i64 = 750_000;

async fn demo_warning_line(store: &Store) -> Result<(), String> {
    let year = i64::from(DEMO_YEAR);
    if store.warning_line(DEMO_COUNTY, year).await.map_err(|e| e.to_string())?.is_none() {
        store
            .set_warning_line(DEMO_COUNTY, year, DEMO_RURAL_INCOME_FEN, 5_000, "演示数据：示意的农村居民人均可支配收入，非官方统计", "demo")
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn demo_accounts(store: &Store) -> Result<Vec<(String, &'static str, String)>, String> {
    use baozhang_server::auth::{create_user, Role};
    let err = |e: baozhang_store::StoreError| e.to_string();
    if store.institution(DEMO_HOSPITAL).await.map_err(err)?.is_none() {
        let inst = baozhang_store::service::Institution {
            fixmedins_code: DEMO_HOSPITAL.into(),
            name: "会宁县人民医院".into(),
            hosp_lv: 2,
            admdvs: DEMO_COUNTY.into(),
            secret: baozhang_server::random_hex(32),
            disabled: false,
            hosp_grade: 0,
            primary_care: false,
        };
        store.add_institution("demo", &inst).await.map_err(err)?;
    }
    let village = match store.latest_run().await.map_err(err)? {
        Some(run) => {
            let mut n: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
            for f in store.findings(run, Some(DEMO_COUNTY)).await.map_err(err)? {
                if let Some(v) = f.village_code {
                    *n.entry(v).or_default() += 1;
                }
            }
            n.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))).map(|(v, _)| v)
        }
        None => None,
    };
    let village = match village {
        Some(v) => v,
        None => county_villages(store, DEMO_COUNTY).await?.first().map(|v| v.code.clone()).ok_or("没有村级区划")?,
    };
    let wanted: [(&str, Role, String, &str); 5] = [
        ("admin", Role::Admin, String::new(), "系统管理员"),
        ("county", Role::Bureau, DEMO_COUNTY.to_string(), "会宁县医保局"),
        ("hospital", Role::Hospital, DEMO_HOSPITAL.to_string(), "会宁县人民医院结算窗口"),
        ("cadre", Role::Cadre, village, "村卫生健康专干"),
        ("auditor", Role::Auditor, DEMO_COUNTY.to_string(), "审计督查"),
    ];
    let mut out = Vec::new();
    for (name, role, scope, display) in wanted {
        match store.user(name).await.map_err(err)? {
            Some(u) => out.push((u.username, role.name_zh(), u.scope)),
            None => {
                create_user(store, "demo", name, display, role, &scope, DEMO_PASSWORD).await?;
                out.push((name.to_string(), role.name_zh(), scope));
            }
        }
    }
    Ok(out)
}

pub const DEMO_COUNTY: &str = "620422";
const DEMO_YEAR: u16 = 2018;
const DEMO_POLICY: &str = "gansu-huining-2018";

pub async fn county_villages(store: &Store, county: &str) -> Result<Vec<VillageRef>, String> {
    let regions = store.regions_upto(5, Some(county)).await.map_err(|e| e.to_string())?;
    let towns: std::collections::HashMap<&str, &str> =
        regions.iter().filter(|r| r.level == 4).map(|r| (r.code.as_str(), r.name.as_str())).collect();
    let villages: Vec<VillageRef> = regions
        .iter()
        .filter(|r| r.level == 5)
        .filter_map(|r| {
            let t = r.parent_code.as_deref()?;
            Some(VillageRef {
                code: r.code.clone(),
                name: r.name.clone(),
                township_code: t.to_string(),
                township_name: towns.get(t).copied().unwrap_or("").to_string(),
            })
        })
        .collect();
    if villages.is_empty() {
        return Err(format!("区划 {county} 下没有村级区划（请先 baozhang regions load 或 regions import）"));
    }
    Ok(villages)
}

fn run_generate(params: &CountyParams, out: &Path) -> Result<baozhang_ingest::county::GenerateSummary, String> {
    let pb = progress_bar("生成");
    let started = Instant::now();
    let r = generate(params, out, &mut |stage, n| {
        pb.set_message(format!("生成 {stage}"));
        pb.set_position(n);
    })
    .map_err(|e| format!("生成失败：{e}"))?;
    pb.finish_and_clear();
    println!(
        "已生成 {}：常住人口 {}，{} 户，建档立卡 {}（已脱贫 {}），监测对象 {}，低保 {}，特困 {}，理赔 {} 条；用时 {:.1} 秒",
        out.display(),
        r.residents,
        r.households,
        r.registered_poor,
        r.exited_poor,
        r.marginal,
        r.dibao,
        r.extreme_poor,
        r.claims,
        started.elapsed().as_secs_f64()
    );
    Ok(r)
}

pub fn generate_cmd(db: DbArgs, a: GenerateArgs) -> ExitCode {
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        let villages = match ensure_regions(&store).await.and(Ok(())) {
            Ok(()) => county_villages(&store, &a.county).await,
            Err(e) => Err(e),
        };
        let villages = match villages {
            Ok(v) => v,
            Err(e) => {
                eprintln!("错误：{e}");
                return ExitCode::from(crate::EXIT_INVALID);
            }
        };
        let params = CountyParams { county_code: a.county.clone(), villages, seed: a.seed, scale: a.scale, year: a.year };
        match run_generate(&params, &a.out) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}

fn ratio(n: i64, d: i64) -> String {
    if d == 0 {
        return "—".into();
    }
    let bp = (n * 10_000 + d / 2) / d;
    format!("{}.{:02}%", bp / 100, bp % 100)
}

pub fn demo(db: DbArgs, a: DemoArgs) -> ExitCode {
    if !(a.scale > 0.0 && a.scale <= 20.0) {
        eprintln!("错误：--scale 应在 0 到 20 之间");
        return ExitCode::from(crate::EXIT_INVALID);
    }
    runtime().block_on(async move {
        match demo_inner(&db, &a).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}

async fn demo_inner(db: &DbArgs, a: &DemoArgs) -> Result<(), String> {
    let started = Instant::now();
    let store = open_store(db).await.map_err(|_| "无法打开数据库".to_string())?;
    println!("数据库：{}", crate::data_cmd::redact_url(&db.database_url));
    ensure_regions(&store).await?;
    let data = a.dir.join(format!("{DEMO_COUNTY}-seed{}-scale{}", a.seed, a.scale));
    if store.count("persons").await.map_err(|e| e.to_string())? == 0 {
        if !data.join("truth.json").exists() {
            let villages = county_villages(&store, DEMO_COUNTY).await?;
            let params = CountyParams { county_code: DEMO_COUNTY.into(), villages, seed: a.seed, scale: a.scale, year: DEMO_YEAR };
            run_generate(&params, &data)?;
        }
        for kind in baozhang_ingest::rosters::IMPORT_ORDER {
            let file = data.join(format!("{}.csv", kind.id()));
            import_one(&store, kind, &file, Some(data.join("rejected")), false).await?;
        }
    } else {
        println!("数据库已有登记数据，跳过生成与导入。");
    }
    let as_of = baozhang_core::Date::new(DEMO_YEAR, 12, 31).expect("date");
    let rec = ReconcileArgs {
        as_of: None,
        export: Some(data.join("worklists")),
        unmasked: false,
        findings: None,
        subsidy_standard: None,
        policy: None,
        new_window_days: 90,
    };
    run_reconcile(&store, &rec, as_of).await?;

    let policy = crate::policy_cmd::load_policy(DEMO_POLICY)?;
    // Into the settlement ledger, as the online service records settlements; claims already in it (an
    // earlier run) are not settled again.
    let pb = progress_bar("结算");
    let t = Instant::now();
    let s = settle_claims_from_registry(&store, &policy, &data.join("claims.csv"), &mut |n| pb.set_position(n))
        .await
        .map_err(|e| e.to_string())?;
    pb.finish_and_clear();
    if s.stored == 0 && s.already_settled > 0 {
        println!("结算台账中已有这些理赔的结算（{} 条），未重复结算。", s.already_settled);
    } else {
        println!(
            "已按 {}（版本 {}）结算 {} 条理赔，记入结算台账 {} 条（此前已入账 {} 条，未找到参保人 {} 条，无效 {} 条，政策不一致 {} 条）；用时 {:.1} 秒",
            policy.meta.name,
            policy.version,
            s.claims,
            s.stored,
            s.already_settled,
            s.unknown_persons,
            s.rejected,
            s.policy_conflicts,
            t.elapsed().as_secs_f64()
        );
    }
    let all = store.settlement_totals(false).await.map_err(|e| e.to_string())?;
    let poor = store.settlement_totals(true).await.map_err(|e| e.to_string())?;
    let names = ["基本医保", "大病保险", "补充保险", "医疗救助", "政府兜底", "医院承担"];
    println!("一站式结算（{} 年，{} 条）：总费用 {} 元", DEMO_YEAR, all.claims, Fen(all.medfee_fen).grouped());
    for (k, n) in names.iter().enumerate() {
        println!("  {n:<8} {:>20} 元  {}", Fen(all.funds_fen[k]).grouped(), ratio(all.funds_fen[k], all.medfee_fen));
    }
    println!("  个人负担 {:>20} 元  {}", Fen(all.psn_part_fen).grouped(), ratio(all.psn_part_fen, all.medfee_fen));
    println!(
        "建档立卡贫困人口住院（{} 人次）实际报销比例：占总费用 {}，占政策范围内费用 {}；医院承担 {} 元",
        poor.claims,
        ratio(poor.fund_pay_fen, poor.medfee_fen),
        ratio(poor.fund_pay_fen, poor.inscp_fen),
        Fen(poor.funds_fen[5]).grouped()
    );
    println!("完成，用时 {:.1} 秒。工作清单在 {}。", started.elapsed().as_secs_f64(), data.join("worklists").display());
    demo_warning_line(&store).await?;
    crate::programmes_demo::demo_programmes(&store, DEMO_COUNTY, DEMO_YEAR, &data, a.seed).await?;
    crate::programmes_demo::demo_audit(&store, DEMO_YEAR).await?;
    crate::programmes_demo::demo_supervise(&store, DEMO_COUNTY, DEMO_YEAR).await?;
    crate::programmes_demo::demo_resettle(&store, DEMO_YEAR).await?;
    let accounts = demo_accounts(&store).await?;
    crate::programmes_demo::demo_forms(&store, DEMO_COUNTY, DEMO_YEAR).await?;
    crate::his_demo::demo_his(&store, DEMO_COUNTY, DEMO_HOSPITAL, DEMO_YEAR, a.seed, &data).await?;
    let regions = store.regions_upto(5, Some(DEMO_COUNTY)).await.map_err(|e| e.to_string())?;
    println!("\n演示账号（密码均为 {DEMO_PASSWORD}，仅用于演示数据）：");
    for (name, role, scope) in &accounts {
        let place = regions.iter().find(|r| &r.code == scope).map(|r| r.name.as_str()).unwrap_or(if scope == DEMO_HOSPITAL {
            "会宁县人民医院"
        } else {
            ""
        });
        println!("  {name:<10} {role:<10} {scope} {place}");
    }
    if a.no_serve {
        return Ok(());
    }
    drop(store);
    let store = Store::open_with(&db.database_url, baozhang_store::OpenOptions { background_checkpoint: true })
        .await
        .map_err(|e| format!("无法打开数据库：{e}"))?;
    let policies = crate::serve_cmd::load_policies(&[])?;
    let config = baozhang_server::Config { addr: a.addr, ..baozhang_server::Config::default() };
    println!("\n工作台：http://{}/ （按 Ctrl-C 停止）", a.addr);
    match crate::serve_cmd::run_server(store, policies, config, &crate::data_cmd::redact_url(&db.database_url)).await {
        c if c == ExitCode::SUCCESS => Ok(()),
        _ => Err("工作台未能启动或异常退出".into()),
    }
}
