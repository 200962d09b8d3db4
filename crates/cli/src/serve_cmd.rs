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
    /// 同时处理的请求上限（全服务一个限额）
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// 每个来源（机构、登录会话或地址）同时处理的请求上限；超出的排队等候本来源的名额
    #[arg(long, default_value_t = 32)]
    pub max_in_flight_per_party: usize,
    /// 同时打开的连接上限，及每个 IP 地址的连接上限
    #[arg(long, default_value_t = 2048)]
    pub max_connections: usize,
    #[arg(long, default_value_t = 128)]
    pub max_connections_per_ip: usize,
    /// 请求头须在此秒数内收完（防慢速攻击）；请求体须在此秒数内收完
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    #[arg(long, default_value_t = 15)]
    pub body_read_timeout_secs: u64,
    /// 每次就诊最多的费用明细条数
    #[arg(long, default_value_t = 20_000)]
    pub max_fee_lines_per_visit: usize,
    /// 每个机构同时排队的记账业务上限
    #[arg(long, default_value_t = 16)]
    pub max_queued_writes_per_institution: usize,
    /// 登录：同一账号 / 同一地址在 15 分钟内失败多少次后锁定（锁定时间逐次加倍，最长 15 分钟）
    #[arg(long, default_value_t = 5)]
    pub login_max_failures_per_account: u32,
    #[arg(long, default_value_t = 20)]
    pub login_max_failures_per_ip: u32,
    /// 部署在 HTTPS 之后：Cookie 加 Secure，并发送 HSTS
    #[arg(long, env = "BAOZHANG_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// 反向代理改写 Host 时，允许提交表单的页面来源（如 https://ybj.example.gov.cn，可重复）
    #[arg(long = "trusted-origin")]
    pub trusted_origins: Vec<String>,
}

impl ServeArgs {
    /// The service's limits from the command line (everything else as `Config::default`).
    pub fn config(&self) -> Config {
        Config {
            addr: self.addr,
            max_body_bytes: self.max_body_bytes,
            max_in_flight: self.max_in_flight,
            max_in_flight_per_party: self.max_in_flight_per_party,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs.max(1)),
            body_read_timeout: std::time::Duration::from_secs(self.body_read_timeout_secs.max(1)),
            max_fee_lines_per_visit: self.max_fee_lines_per_visit,
            max_queued_writes_per_institution: self.max_queued_writes_per_institution,
            login_max_failures_per_account: self.login_max_failures_per_account,
            login_max_failures_per_ip: self.login_max_failures_per_ip,
            secure_cookies: self.secure_cookies,
            trusted_origins: self.trusted_origins.clone(),
            ..Config::default()
        }
    }
}

#[derive(Subcommand)]
pub enum LedgerCmd {
    /// 由台账分录重算每人每年的累计值，与存储的累计值比对；检查每笔结算各部分相加、冲销一一对应、无重复结算、重算调整与现算结果一致
    Verify {
        /// 另外加载的政策文件（重算时用 --policy 加载过的政策，核对时也要加载）
        #[arg(long = "policy")]
        policies: Vec<PathBuf>,
    },
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
    /// 登记机构的医院等级（国家 HOSP_LV 代码 01–11，如 02 三级甲等）及是否基层医疗机构，供政策按档次结算
    Site {
        code: String,
        /// 医院等级代码或名称（01 三级特等 … 11 无等级；空为未登记）
        #[arg(long, default_value = "")]
        grade: String,
        /// 基层医疗机构（乡镇卫生院、社区卫生服务中心）
        #[arg(long)]
        primary_care: bool,
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
        let config = args.config();
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
    let _warming = baozhang_server::web::dashboard::warm(&state);
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
    let LedgerCmd::Verify { policies } = cmd;
    let policies = match load_policies(&policies) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("错误：{e}");
            return ExitCode::from(crate::EXIT_INVALID);
        }
    };
    runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        match baozhang_server::resettle::verify_ledger(&store, &policies).await {
            Ok(rep) => {
                println!(
                    "台账核对：结算 {} 笔，冲销 {} 笔，重算调整 {} 笔（{} 个人员年度），分录 {} 条，人员年度累计 {} 个",
                    rep.settlements, rep.cancellations, rep.adjustments, rep.resettled_years, rep.entries, rep.person_years
                );
                if rep.ok() {
                    println!(
                        "结果：一致（累计值 = 分录之和；每笔结算各部分相加等于总额；冲销一一对应；无重复结算；重算过的年度 = 原结算 + 调整 = 按记录身份重算）"
                    );
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
            InstitutionCmd::Site { code, grade, primary_care } => {
                let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
                let grade = match baozhang_core::claim::HospGrade::parse(&grade) {
                    Ok(g) => g,
                    Err(e) => {
                        eprintln!("错误：--grade {e}");
                        return ExitCode::from(crate::EXIT_INVALID);
                    }
                };
                let inst = match store.institution(&code).await {
                    Ok(Some(i)) => i,
                    Ok(None) => {
                        eprintln!("错误：机构 {code} 未登记");
                        return ExitCode::from(crate::EXIT_INVALID);
                    }
                    Err(e) => {
                        eprintln!("错误：{e}");
                        return ExitCode::from(crate::EXIT_IO);
                    }
                };
                if let Some(l) = grade.level() {
                    if i64::from(l.get()) != inst.hosp_lv {
                        eprintln!("错误：等级 {}（{} 级）与机构登记的医院级别 {} 不一致", grade.name_zh(), l.get(), inst.hosp_lv);
                        return ExitCode::from(crate::EXIT_INVALID);
                    }
                }
                if primary_care && inst.hosp_lv != 1 {
                    eprintln!("错误：基层医疗机构应为一级（乡镇）医院，机构 {code} 登记为 {} 级", inst.hosp_lv);
                    return ExitCode::from(crate::EXIT_INVALID);
                }
                match store.set_institution_site(&format!("cli:{actor}"), &code, i64::from(grade.code()), primary_care).await {
                    Ok(_) => {
                        println!(
                            "机构 {code}：医院等级 {}，{}",
                            grade.name_zh(),
                            if primary_care { "基层医疗机构" } else { "非基层医疗机构" }
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("错误：{e}");
                        ExitCode::from(crate::EXIT_IO)
                    }
                }
            }
            InstitutionCmd::List => match store.institutions().await {
                Ok(list) => {
                    println!("机构编号\t名称\t级别\t医院等级\t所在区划\t状态");
                    for i in list {
                        println!(
                            "{}\t{}\t{}\t{}{}\t{}\t{}",
                            i.fixmedins_code,
                            i.name,
                            i.hosp_lv,
                            baozhang_core::claim::HospGrade::new(i.hosp_grade.clamp(0, 11) as u8).unwrap_or_default().name_zh(),
                            if i.primary_care { "·基层" } else { "" },
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
