//! `baozhang account`: gateway application accounts (x-tif-paasid) — who may call the national
//! interface for which institutions, with which token (docs/SERVICE.md, docs/SECURITY.md).

use std::process::ExitCode;

use baozhang_store::service::Account;
use clap::Subcommand;

use crate::data_cmd::{open_store, DbArgs};

#[derive(Subcommand)]
pub enum AccountCmd {
    /// 开通接入账号（x-tif-paasid），打印令牌（只显示这一次）
    Add {
        /// 接入账号，如 PAAS-620422-RMYY（字母、数字、- 或 _，最多 64 位）
        paasid: String,
        /// 名称（如 会宁县人民医院 HIS）
        #[arg(long)]
        name: String,
        /// 可代表的定点医药机构编号，逗号分隔（同一医院集团的多个机构）
        #[arg(long, value_delimiter = ',')]
        institutions: Vec<String>,
        /// 签名方式：gateway（国家网关：SHA-256(时间戳+令牌+随机数+时间戳)）或 hmac（对报文体做 HMAC，更强）
        #[arg(long, default_value = "gateway")]
        scheme: String,
    },
    /// 更换令牌；旧令牌在宽限期内仍可用
    Rotate {
        paasid: String,
        /// 旧令牌继续有效的小时数
        #[arg(long, default_value_t = 24)]
        grace_hours: i64,
    },
    /// 允许账号代表一个机构（--revoke 取消）
    Grant {
        paasid: String,
        fixmedins_code: String,
        #[arg(long)]
        revoke: bool,
    },
    /// 停用账号（--enable 恢复）
    Disable {
        paasid: String,
        #[arg(long)]
        enable: bool,
    },
    List,
}

fn paasid_ok(p: &str) -> bool {
    (1..=64).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn run(db: DbArgs, cmd: AccountCmd) -> ExitCode {
    crate::data_cmd::runtime().block_on(async move {
        let store = match open_store(&db).await {
            Ok(s) => s,
            Err(c) => return c,
        };
        let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "cli".into()));
        let fail = |e: String, code: u8| {
            eprintln!("错误：{e}");
            ExitCode::from(code)
        };
        let io = |e: baozhang_store::StoreError| fail(e.to_string(), crate::EXIT_IO);
        match cmd {
            AccountCmd::Add { paasid, name, institutions, scheme } => {
                if !paasid_ok(&paasid) {
                    return fail(format!("接入账号“{paasid}”应为 1–64 位字母、数字、- 或 _"), crate::EXIT_INVALID);
                }
                if scheme != "gateway" && scheme != "hmac" {
                    return fail(format!("签名方式“{scheme}”无效：应为 gateway 或 hmac"), crate::EXIT_INVALID);
                }
                if institutions.is_empty() {
                    return fail("请用 --institutions 指定账号可代表的机构".into(), crate::EXIT_INVALID);
                }
                for code in &institutions {
                    match store.institution(code).await {
                        Ok(Some(_)) => {}
                        Ok(None) => return fail(format!("机构 {code} 未登记（先用 baozhang institution add 登记）"), crate::EXIT_INVALID),
                        Err(e) => return io(e),
                    }
                }
                match store.account(&paasid).await {
                    Ok(Some(_)) => return fail(format!("接入账号 {paasid} 已存在"), crate::EXIT_INVALID),
                    Ok(None) => {}
                    Err(e) => return io(e),
                }
                let token = baozhang_server::random_hex(24);
                let a = Account {
                    paasid: paasid.clone(),
                    name,
                    scheme,
                    token: token.clone(),
                    prev_token: None,
                    prev_until: None,
                    disabled: false,
                    institutions,
                };
                match store.add_account(&actor, &a).await {
                    Ok(()) => {
                        println!("已开通接入账号 {paasid}，可代表：{}。令牌（只显示这一次）：\n{token}", a.institutions.join("、"));
                        ExitCode::SUCCESS
                    }
                    Err(e) => io(e),
                }
            }
            AccountCmd::Rotate { paasid, grace_hours } => {
                if !(0..=24 * 30).contains(&grace_hours) {
                    return fail("宽限期应为 0–720 小时".into(), crate::EXIT_INVALID);
                }
                let token = baozhang_server::random_hex(24);
                let until = baozhang_server::clock::unix_now() + grace_hours * 3600;
                match store.rotate_account(&actor, &paasid, &token, until).await {
                    Ok(true) => {
                        println!("已更换接入账号 {paasid} 的令牌；旧令牌在 {grace_hours} 小时内仍可用。新令牌（只显示这一次）：\n{token}");
                        ExitCode::SUCCESS
                    }
                    Ok(false) => fail(format!("接入账号 {paasid} 不存在"), crate::EXIT_INVALID),
                    Err(e) => io(e),
                }
            }
            AccountCmd::Grant { paasid, fixmedins_code, revoke } => {
                match (store.account(&paasid).await, store.institution(&fixmedins_code).await) {
                    (Ok(None), _) => return fail(format!("接入账号 {paasid} 不存在"), crate::EXIT_INVALID),
                    (_, Ok(None)) if !revoke => return fail(format!("机构 {fixmedins_code} 未登记"), crate::EXIT_INVALID),
                    (Err(e), _) | (_, Err(e)) => return io(e),
                    _ => {}
                }
                match store.grant_account(&actor, &paasid, &fixmedins_code, !revoke).await {
                    Ok(()) => {
                        println!("{}接入账号 {paasid} 代表机构 {fixmedins_code}", if revoke { "已取消" } else { "已允许" });
                        ExitCode::SUCCESS
                    }
                    Err(e) => io(e),
                }
            }
            AccountCmd::Disable { paasid, enable } => match store.set_account_disabled(&actor, &paasid, !enable).await {
                Ok(true) => {
                    println!("接入账号 {paasid} 已{}", if enable { "恢复" } else { "停用" });
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("接入账号 {paasid} 不存在"), crate::EXIT_INVALID),
                Err(e) => io(e),
            },
            AccountCmd::List => match store.accounts().await {
                Ok(list) => {
                    println!("接入账号\t名称\t签名方式\t可代表机构\t状态");
                    for a in list {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            a.paasid,
                            a.name,
                            a.scheme,
                            a.institutions.join(","),
                            if a.disabled { "停用" } else { "正常" }
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => io(e),
            },
        }
    })
}
