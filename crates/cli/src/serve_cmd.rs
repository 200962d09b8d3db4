//! `baozhang serve`, `ledger verify`, `user add|list`, `institution add|list`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use baozhang_core::policy::parse_policy;
use baozhang_server::auth::{self, Role};
use baozhang_server::{AppState, Config, Policies};
use clap::{Args, Subcommand};

use crate::data_cmd::{open_store, redact_url, runtime, DbArgs};

#[derive(Args)]
pub struct ServeArgs {
    /// 监听地址
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// 另加载的政策文件（内置四个参考政策之外；同地区同日期时后加载者优先）
    #[arg(long = "policy")]
    pub policies: Vec<PathBuf>,
    /// 请求体上限（字节）
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// 同时处理的请求上限
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
}

#[derive(Subcommand)]
pub enum LedgerCmd {
    /// 由台账分录重算每人每年的累计值，与存储的累计值比对；检查每笔结算各部分相加、冲销一一对应、无重复结算
    Verify,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// 添加用户（密码从环境变量 BAOZHANG_PASSWORD 或标准输入读取）
    Add {
        username: String,
        /// admin、bureau、hospital、cadre、auditor
        #[arg(long)]
        role: String,
        /// 区划代码（bureau/auditor：县或乡镇；cadre：村）或机构编号（hospital）
        #[arg(long, default_value = "")]
        scope: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    List,
}

#[derive(Subcommand)]
pub enum InstitutionCmd {
    /// 登记定点医药机构，打印其签名密钥（只显示这一次）
    Add {
        code: String,
        #[arg(long)]
        name: String,
        /// 医院等级：1 乡镇、2 县级、3 市级及以上
        #[arg(long)]
        level: i64,
        /// 机构所在县级区划（6 位）
        #[arg(long)]
        admdvs: String,
    },
    List,
}

pub fn load_policies(files: &[PathBuf]) -> Result<Policies, String> {
    let mut p = Policies::reference();
    for f in files {
        let src = std::fs::read_to_string(f).map_err(|e| format!("无法读取政策文件 {}：{e}", f.display()))?;
        let policy = parse_policy(&src).map_err(|e| format!("政策文件 {} 有误：\n{e}", f.display()))?;
        p.add(policy);
    }
    Ok(p)
}

pub fn serve(db: DbArgs, args: ServeArgs) -> ExitCode {
    let policies = match load_policies(&args.policies) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_INVALID);
        }
    };
    runtime().block_on(async move {
        let store =
            match baozhang_store::Store::open_with(&db.database_url, baozhang_store::OpenOptions { background_checkpoint: true }).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("错误：无法打开数据库 {}：{e}", redact_url(&db.database_url));
                    return ExitCode::from(crate::EXIT_IO);
                }
            };
        if let Err(e) = first_admin(&store).await {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_IO);
        }
        let config =
            Config { addr: args.addr, max_body_bytes: args.max_body_bytes, max_in_flight: args.max_in_flight, ..Config::default() };
        run_server(store, policies, config, &redact_url(&db.database_url)).await
    })
}

/// Binds, serves the national interface, the REST API and the workbench until Ctrl-C / SIGTERM, and
/// warms the workbench's dashboard figures in the background.
pub async fn run_server(store: baozhang_store::Store, policies: Policies, config: Config, db_label: &str) -> ExitCode {
    let addr = config.addr;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("错误：无法监听 {addr}：{e}");
            return ExitCode::from(crate::EXIT_IO);
        }
    };
    let addr = listener.local_addr().unwrap_or(addr);
    eprintln!(
        "baozhang 服务：http://{addr}（数据库 {db_label}；政策 {} 个）\n  工作台 http://{addr}/   国家接口 POST /fsi/api/…   REST 接口 /api/…   接口文档 http://{addr}/api/docs/",
        policies.all().len(),
    );
    tracing::info!(%addr, "serving");
    let state = AppState::new(store, policies, config);
    baozhang_server::web::dashboard::warm(&state);
    match baozhang_server::serve(listener, state, baozhang_server::shutdown_signal()).await {
        Ok(()) => {
            eprintln!("服务已停止（所有已受理的结算均已提交）");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("错误：服务异常退出：{e}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}

/// On first start there is no account: create `admin` with a random password and print it once.
async fn first_admin(store: &baozhang_store::Store) -> Result<(), String> {
    if !store.users().await.map_err(|e| e.to_string())?.is_empty() {
        return Ok(());
    }
    let password = format!("Bz-{}", baozhang_server::random_hex(8));
    auth::create_user(store, "system", "admin", "系统管理员", Role::Admin, "", &password).await?;
    eprintln!("已创建初始管理员账号 admin，密码：{password}（只显示这一次，请登录后妥善保管）");
    Ok(())
}

pub fn ledger(db: DbArgs, cmd: LedgerCmd) -> ExitCode {
    let LedgerCmd::Verify = cmd;
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        match baozhang_store::ledger::verify(&store).await {
            Ok(rep) => {
                println!(
                    "台账核对：结算 {} 笔，冲销 {} 笔，分录 {} 条，人员年度累计 {} 个",
                    rep.settlements, rep.cancellations, rep.entries, rep.person_years
                );
                if rep.ok() {
                    println!("结果：一致（累计值 = 分录之和；每笔结算各部分相加等于总额；冲销一一对应；无重复结算）");
                    ExitCode::SUCCESS
                } else {
                    for p in &rep.problems {
                        println!("问题：{p}");
                    }
                    println!("结果：发现 {} 处不一致", rep.problems.len());
                    ExitCode::from(crate::EXIT_INVALID)
                }
            }
            Err(e) => {
                eprintln!("错误：{e}");
                ExitCode::from(crate::EXIT_IO)
            }
        }
    })
}

fn read_password() -> Result<String, String> {
    if let Ok(p) = std::env::var("BAOZHANG_PASSWORD") {
        return Ok(p);
    }
    eprint!("密码：");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("无法读取密码：{e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn user(db: DbArgs, cmd: UserCmd) -> ExitCode {
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        match cmd {
            UserCmd::Add { username, role, scope, name } => {
                let Some(role) = Role::parse(&role) else {
                    eprintln!("错误：角色“{role}”无效（admin、bureau、hospital、cadre、auditor）");
                    return ExitCode::from(crate::EXIT_INVALID);
                };
                let password = match read_password() {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("错误：{e}");
                        return ExitCode::from(crate::EXIT_IO);
                    }
                };
                let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
                match auth::create_user(&store, &format!("cli:{actor}"), &username, &name, role, &scope, &password).await {
                    Ok(()) => {
                        println!("已添加用户 {username}（{}，范围 {}）", role.name_zh(), if scope.is_empty() { "全部" } else { &scope });
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("错误：{e}");
                        ExitCode::from(crate::EXIT_INVALID)
                    }
                }
            }
            UserCmd::List => match store.users().await {
                Ok(users) => {
                    println!("用户名\t角色\t范围\t姓名\t状态");
                    for u in users {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            u.username,
                            u.role,
                            u.scope,
                            u.display_name,
                            if u.disabled { "停用" } else { "正常" }
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("错误：{e}");
                    ExitCode::from(crate::EXIT_IO)
                }
            },
        }
    })
}

pub fn institution(db: DbArgs, cmd: InstitutionCmd) -> ExitCode {
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        match cmd {
            InstitutionCmd::Add { code, name, level, admdvs } => {
                let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
                match baozhang_server::api::register_institution(&store, &format!("cli:{actor}"), &code, &name, level, &admdvs).await {
                    Ok(secret) => {
                        println!("已登记机构 {code}（{name}）。签名密钥（只显示这一次）：\n{secret}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("错误：{e}");
                        ExitCode::from(crate::EXIT_INVALID)
                    }
                }
            }
            InstitutionCmd::List => match store.institutions().await {
                Ok(list) => {
                    println!("机构编号\t名称\t等级\t所在区划\t状态");
                    for i in list {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            i.fixmedins_code,
                            i.name,
                            i.hosp_lv,
                            i.admdvs,
                            if i.disabled { "停用" } else { "正常" }
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("错误：{e}");
                    ExitCode::from(crate::EXIT_IO)
                }
            },
        }
    })
}
