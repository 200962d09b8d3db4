//! Users, roles and scopes; argon2 passwords; bearer sessions that expire.
//!
//! | role | scope | may |
//! |---|---|---|
//! | `admin` | — | everything, manage users and institutions |
//! | `bureau` | region code (county / township) | read its region, unmask (logged) |
//! | `hospital` | `fixmedins_code` | its own settlements; a person only by the certificate presented |
//! | `cadre` | village code | read its village, unmask (logged) |
//! | `auditor` | region code | read its region, always masked |

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use baozhang_store::service::User;
use baozhang_store::Store;

use crate::api::ApiError;
use crate::{clock, random_hex, sha256_hex, AppState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Bureau,
    Hospital,
    Cadre,
    Auditor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s.trim() {
            "admin" | "管理员" => Role::Admin,
            "bureau" | "医保局" => Role::Bureau,
            "hospital" | "医院" | "定点医疗机构" => Role::Hospital,
            "cadre" | "村干部" => Role::Cadre,
            "auditor" | "审计" | "督查" => Role::Auditor,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Bureau => "bureau",
            Role::Hospital => "hospital",
            Role::Cadre => "cadre",
            Role::Auditor => "auditor",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Role::Admin => "系统管理员",
            Role::Bureau => "医保局工作人员",
            Role::Hospital => "定点医疗机构",
            Role::Cadre => "村干部",
            Role::Auditor => "审计督查人员",
        }
    }
}

/// Checks a scope against the role: region roles need a 6-digit county, 9-digit township or 12-digit
/// village code (a cadre a village), a hospital its institution code.
pub fn check_scope(role: Role, scope: &str) -> Result<(), String> {
    let digits = !scope.is_empty() && scope.bytes().all(|b| b.is_ascii_digit());
    match role {
        Role::Admin if scope.is_empty() => Ok(()),
        Role::Admin => Err("管理员不设范围".into()),
        Role::Bureau | Role::Auditor if digits && matches!(scope.len(), 2 | 4 | 6 | 9 | 12) => Ok(()),
        Role::Bureau | Role::Auditor => Err(format!("范围“{scope}”应为区划代码（县 6 位、乡镇 9 位）")),
        Role::Cadre if digits && scope.len() == 12 => Ok(()),
        Role::Cadre => Err(format!("村干部的范围“{scope}”应为 12 位村级区划代码")),
        Role::Hospital if !scope.is_empty() => Ok(()),
        Role::Hospital => Err("医院账号的范围应为定点医药机构编号".into()),
    }
}

/// The authenticated caller of the REST API.
#[derive(Clone, Debug)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    pub scope: String,
}

impl Principal {
    /// The region prefix the caller may read; `None` for hospitals (no region listings).
    pub fn region(&self) -> Option<&str> {
        match self.role {
            Role::Admin => Some(""),
            Role::Bureau | Role::Cadre | Role::Auditor => Some(&self.scope),
            Role::Hospital => None,
        }
    }
    /// Whether personal information under `village_code` is within the caller's region.
    pub fn covers(&self, village_code: Option<&str>) -> bool {
        match self.region() {
            Some("") => true,
            Some(r) => village_code.is_some_and(|v| v.starts_with(r)),
            None => false,
        }
    }
    /// Whether a person is in the region (hospitals aside): by village, or, for someone the registry has
    /// no village for, by a county they are insured in. The API and the pages decide alike.
    pub fn covers_person(&self, village_code: Option<&str>, enrolments: &[baozhang_store::registry::EnrolmentRow]) -> bool {
        self.covers(village_code) || (village_code.is_none() && enrolments.iter().any(|e| self.covers(Some(&e.insured_admdvs))))
    }
    /// Whether the role may ask for names and ID numbers in clear (every such view is logged).
    pub fn may_unmask(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Bureau | Role::Cadre | Role::Hospital)
    }
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("{}无权进行此操作", self.role.name_zh())))
        }
    }
}

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the operating system's random source works");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default parameters").to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Checks a new password: at least 8 characters, not all of one kind.
pub fn check_password(p: &str) -> Result<(), String> {
    if p.chars().count() < 8 {
        return Err("密码至少 8 位".into());
    }
    let kinds = [p.chars().any(|c| c.is_ascii_digit()), p.chars().any(|c| c.is_alphabetic()), p.chars().any(|c| !c.is_alphanumeric())];
    if kinds.iter().filter(|k| **k).count() < 2 {
        return Err("密码应包含字母、数字、符号中的至少两类".into());
    }
    Ok(())
}

/// Creates a user (the CLI and the admin API both come here).
pub async fn create_user(
    store: &Store,
    actor: &str,
    username: &str,
    display_name: &str,
    role: Role,
    scope: &str,
    password: &str,
) -> Result<(), String> {
    if username.is_empty()
        || username.len() > 64
        || !username.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err("用户名应为 1–64 位字母、数字或 _ . -".into());
    }
    check_scope(role, scope)?;
    check_password(password)?;
    if store.user(username).await.map_err(|e| e.to_string())?.is_some() {
        return Err(format!("用户 {username} 已存在"));
    }
    let u = User {
        username: username.to_string(),
        display_name: display_name.to_string(),
        role: role.as_str().to_string(),
        scope: scope.to_string(),
        password_hash: hash_password(password),
        disabled: false,
    };
    store.add_user(actor, &u).await.map_err(|e| e.to_string())
}

/// A refusal because of too many failures: when to try again, in Chinese.
fn locked_message(l: &crate::guard::Locked, now: i64) -> String {
    let mins = ((l.until - now).max(1) + 59) / 60;
    if l.by_address {
        format!("本机登录失败次数过多，请 {mins} 分钟后再试")
    } else {
        format!("该账号登录失败次数过多，已暂时锁定，请 {mins} 分钟后再试或联系管理员")
    }
}

/// Logs in; returns the bearer token (only its hash is stored) and its expiry (unix seconds).
///
/// Failures count per account and per address (`ip`); past the limits both are locked for a back-off
/// that doubles with every further failure, and a locked login is refused before any hash is computed.
/// Every failure and lock is in the audit log. The argon2 check runs on the blocking pool behind a small
/// semaphore, so a burst of logins neither starves the async workers nor takes unbounded memory.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<(String, i64, User), ApiError> {
    let now = clock::unix_now();
    let shown: String = username.chars().filter(|c| !c.is_control()).take(64).collect();
    let from = ip.map_or_else(|| "-".to_string(), |i| i.to_string());
    if username.len() > 256 || password.len() > 1024 {
        return Err(ApiError::Unauthorized("用户名或密码错误".into()));
    }
    if let Some(l) = state.guard.locked(username, ip, now) {
        tracing::warn!("login refused: locked after repeated failures");
        state.store.audit(&shown, "login.locked", &format!("refused while locked (from {from})")).await?;
        return Err(ApiError::TooMany(locked_message(&l, now)));
    }
    let user = state.store.user(username).await?;
    // A missing or disabled account spends the same time as a real check, so timing does not reveal
    // which usernames exist.
    let phc = match &user {
        Some(u) if !u.disabled => u.password_hash.clone(),
        _ => "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$W2Wdw5xkw3E8u0s0mJc8cQy3kBYbJmYKQ6tqfS8b3Lk".to_string(),
    };
    let pw = password.to_string();
    let verified = state.guard.hash_work(move || verify_password(&pw, &phc)).await;
    let ok = verified && user.as_ref().is_some_and(|u| !u.disabled);
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!("login refused");
        let lock = state.guard.failed(&state.config, username, ip, now);
        state.store.audit(&shown, "login.failed", &format!("wrong username or password (from {from})")).await?;
        if let Some(l) = lock {
            state.store.audit(&shown, "login.locked", &format!("locked until {} (from {from})", l.until)).await?;
            return Err(ApiError::TooMany(locked_message(&l, now)));
        }
        return Err(ApiError::Unauthorized("用户名或密码错误".into()));
    };
    state.guard.succeeded(username);
    let token = random_hex(32);
    let expires_at = clock::unix_now() + state.config.session_ttl_secs;
    state.store.add_session(&sha256_hex(token.as_bytes()), &user.username, expires_at).await?;
    Ok((token, expires_at, user))
}

/// The workbench's session cookie (HttpOnly, SameSite=Strict): the same token as the API's bearer token.
pub const SESSION_COOKIE: &str = "bz_session";

/// The session token from the `Cookie` header, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == SESSION_COOKIE && !v.is_empty()).then(|| v.to_string())
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Principal, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .or_else(|| session_cookie(&parts.headers))
            .ok_or_else(|| ApiError::Unauthorized("请先登录（Authorization: Bearer 令牌）".into()))?;
        let token = token.as_str();
        let username = state
            .store
            .session_user(&sha256_hex(token.as_bytes()), clock::unix_now())
            .await?
            .ok_or_else(|| ApiError::Unauthorized("登录已过期，请重新登录".into()))?;
        let user = state.store.user(&username).await?.filter(|u| !u.disabled).ok_or_else(|| ApiError::Unauthorized("账号已停用".into()))?;
        let role = Role::parse(&user.role).ok_or_else(|| ApiError::Forbidden("账号角色无效".into()))?;
        Ok(Principal { username: user.username, role, scope: user.scope })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("s3cret-pass");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret-pass", &h));
        assert!(!verify_password("s3cret-pasS", &h));
        assert!(!verify_password("s3cret-pass", "not a hash"));
    }

    #[test]
    fn scopes_fit_roles() {
        assert!(check_scope(Role::Bureau, "620422").is_ok());
        assert!(check_scope(Role::Bureau, "620422100").is_ok());
        assert!(check_scope(Role::Cadre, "620422100201").is_ok());
        assert!(check_scope(Role::Cadre, "620422").is_err());
        assert!(check_scope(Role::Hospital, "").is_err());
        assert!(check_scope(Role::Admin, "620422").is_err());
        assert!(check_password("short1").is_err());
        assert!(check_password("onlyletters").is_err());
        assert!(check_password("letters123").is_ok());
    }

    #[test]
    fn a_cadre_covers_only_their_village() {
        let p = Principal { username: "c".into(), role: Role::Cadre, scope: "620422100201".into() };
        assert!(p.covers(Some("620422100201")));
        assert!(!p.covers(Some("620422100202")));
        assert!(!p.covers(None));
        let h = Principal { username: "h".into(), role: Role::Hospital, scope: "H1".into() };
        assert!(!h.covers(Some("620422100201")));
    }
}
