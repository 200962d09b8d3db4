//! Who is calling: the national gateway's request headers, checked before anything is read.
//!
//! Headers (all required): `x-tif-paasid`, `x-tif-timestamp` (unix seconds), `x-tif-nonce` and
//! `x-tif-signature`. Two schemes, chosen per caller:
//!
//! - **Gateway accounts** (`gateway_accounts`): the application account the bureau issues. An account
//!   may act for several institutions of one hospital group (`gateway_grants`); the envelope's
//!   `fixmedins_code` must be one of them. Its scheme is either
//!   - `gateway` — the national gateway's: `x-tif-signature` = lower-hex SHA-256 of
//!     `timestamp + token + nonce + timestamp`. It proves the caller holds the token and binds the
//!     time and nonce, **not the body**: the nonce, remembered for the whole time window, is what stops a
//!     captured header set from being reused with another body; or
//!   - `hmac` — the stronger option: lower-hex HMAC-SHA256(token, timestamp + "\n" + nonce + "\n" +
//!     body), which also proves the body was not changed on the way.
//!
//!   A rotated token stays valid until `prev_until`, so clients switch over without an outage.
//! - **Institutions without an account** (the first deployments): `x-tif-paasid` is the institution's
//!   own `fixmedins_code` and the signature is the `hmac` scheme with the institution's secret.
//!
//! Every transaction except 9001 must also carry a live `sign_no` of the same institution.

use axum::http::HeaderMap;
use baozhang_store::service::{Account, Institution};
use hmac::{Hmac, Mac};
use sha2::Digest;

use super::envelope::{refused, Envelope, Infno, NResult};
use super::NonceUse;
use crate::{clock, AppState};

/// Whether a nonce has a sane shape: 6–64 letters, digits, `-` or `_` (the gateway's are 6–32 letters
/// and digits; a UUID with its dashes fits too). Bounded so that nonces cannot fill memory or the table.
fn nonce_ok(n: &str) -> bool {
    (6..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The caller of a request: the institution it acts for, the nonce to record, and through which account.
pub(super) struct Caller {
    pub inst: Institution,
    pub nonce: NonceUse,
}

pub(super) async fn authenticate(state: &AppState, headers: &HeaderMap, body: &[u8], env: &Envelope) -> NResult<Caller> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    let (paasid, ts, nonce, sig) = (h("x-tif-paasid"), h("x-tif-timestamp"), h("x-tif-nonce"), h("x-tif-signature"));
    if paasid.is_empty() || ts.is_empty() || nonce.is_empty() || sig.is_empty() {
        return Err(refused("缺少网关签名（x-tif-paasid、x-tif-timestamp、x-tif-nonce、x-tif-signature）"));
    }
    if paasid.len() > 64 {
        return Err(refused("x-tif-paasid 过长"));
    }
    let t: i64 = ts.parse().map_err(|_| refused("x-tif-timestamp 应为 Unix 秒数"))?;
    let now = clock::unix_now();
    if (t - now).abs() > state.config.signature_window_secs {
        return Err(refused("请求时间戳超出允许范围（请校准机构服务器时间）"));
    }
    // The account, or an institution signing for itself.
    let account = state.cache.account(&state.store, paasid).await?.filter(|a| !a.disabled);
    let nonce_key = match &account {
        Some(a) => {
            if !a.institutions.iter().any(|c| c == &env.fixmedins_code) {
                tracing::warn!(paasid, fixmedins = %env.fixmedins_code, "gateway account used for an institution it may not act for");
                return Err(refused(format!("应用账号 {paasid} 无权代表定点医药机构 {} 办理业务", env.fixmedins_code)));
            }
            if !account_signature_ok(a, ts, nonce, body, sig, now) {
                tracing::warn!(paasid, "national request with a bad gateway signature");
                return Err(refused("网关签名无效（x-tif-signature）"));
            }
            format!("paas:{paasid}")
        }
        None => {
            if paasid != env.fixmedins_code {
                return Err(refused(format!(
                    "签名账号 x-tif-paasid={paasid} 不是已登记的接入账号，也不是报文中的机构 {}；请向医保局申请接入账号",
                    env.fixmedins_code
                )));
            }
            let inst = state.cache.institution(&state.store, paasid).await?.filter(|i| !i.disabled);
            let Some(inst) = inst else {
                return Err(refused(format!("定点医药机构 {paasid} 未登记或已停用")));
            };
            if !hmac_ok(&inst.secret, ts, nonce, body, sig) {
                tracing::warn!(fixmedins = %paasid, "national request with a bad signature");
                return Err(refused("机构签名无效"));
            }
            paasid.to_string()
        }
    };
    let inst = state
        .cache
        .institution(&state.store, &env.fixmedins_code)
        .await?
        .filter(|i| !i.disabled)
        .ok_or_else(|| refused(format!("定点医药机构 {} 未登记或已停用", env.fixmedins_code)))?;
    if !nonce_ok(nonce) {
        return Err(refused("请求随机数 x-tif-nonce 应为 6–64 位字母、数字、- 或 _"));
    }
    let until = t + state.config.signature_window_secs;
    match state.cache.fresh_nonce(&nonce_key, nonce, until, now, state.config.max_nonces_per_institution) {
        crate::NonceCheck::Fresh => {}
        crate::NonceCheck::Reused => {
            tracing::warn!(paasid, "national request with a reused nonce refused");
            return Err(refused(NONCE_REUSED));
        }
        crate::NonceCheck::Flood => {
            tracing::warn!(paasid, "national request refused: the caller's nonce quota is full");
            return Err(refused("本机构请求过于频繁（签名随机数超过限额），请稍后重试"));
        }
    }
    if env.infno != Infno::SignIn {
        let signed = state.cache.sign_in(&state.store, &env.sign_no, now).await?;
        if signed.as_deref() != Some(inst.fixmedins_code.as_str()) {
            return Err(refused("签到编号 sign_no 无效或已过期，请先签到（9001）"));
        }
    }
    Ok(Caller { inst, nonce: NonceUse { key: nonce_key, nonce: nonce.to_string(), until } })
}

pub const NONCE_REUSED: &str = "请求随机数 x-tif-nonce 已使用过（疑似重放）；每次请求请使用新的随机数";

fn account_signature_ok(a: &Account, ts: &str, nonce: &str, body: &[u8], sig: &str, now: i64) -> bool {
    let check = |token: &str| match a.scheme.as_str() {
        "hmac" => hmac_ok(token, ts, nonce, body, sig),
        _ => constant_time_eq(gateway_sign(token, ts, nonce).as_bytes(), sig.to_ascii_lowercase().as_bytes()),
    };
    check(&a.token) || (a.prev_until.is_some_and(|u| u > now) && a.prev_token.as_deref().is_some_and(check))
}

/// The national gateway's signature: lower-hex SHA-256 of `timestamp + token + nonce + timestamp`.
pub fn gateway_sign(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(timestamp.as_bytes());
    h.update(token.as_bytes());
    h.update(nonce.as_bytes());
    h.update(timestamp.as_bytes());
    crate::hex(&h.finalize())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + body), not yet finalised.
fn request_mac(secret: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Hmac<sha2::Sha256> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac
}

/// The body signature: lower-hex HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + body).
pub fn sign(secret: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    crate::hex(&request_mac(secret, timestamp, nonce, body).finalize().into_bytes())
}

/// Checks a body signature in constant time.
fn hmac_ok(secret: &str, timestamp: &str, nonce: &str, body: &[u8], sig: &str) -> bool {
    let Some(raw) = unhex(sig) else { return false };
    request_mac(secret, timestamp, nonce, body).verify_slice(&raw).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_signature_is_sha256_of_time_token_nonce_time() {
        // sha256("1700000000" + "tok" + "abc123" + "1700000000"), computed independently with sha256sum.
        assert_eq!(gateway_sign("tok", "1700000000", "abc123"), "0914dee6ecc3bee83db6ee6655adbc4223e5ededc90d8f0b06f38d1674aef5e1");
    }

    #[test]
    fn a_rotated_token_is_accepted_until_its_grace_ends() {
        let a = Account {
            paasid: "p".into(),
            name: "n".into(),
            scheme: "gateway".into(),
            token: "new".into(),
            prev_token: Some("old".into()),
            prev_until: Some(1_000),
            disabled: false,
            institutions: vec![],
        };
        let old = gateway_sign("old", "900", "nonce1");
        assert!(account_signature_ok(&a, "900", "nonce1", b"", &old, 999));
        assert!(!account_signature_ok(&a, "900", "nonce1", b"", &old, 1_000));
        assert!(account_signature_ok(&a, "900", "nonce1", b"", &gateway_sign("new", "900", "nonce1"), 5_000));
        assert!(!account_signature_ok(&a, "900", "nonce1", b"", &gateway_sign("other", "900", "nonce1"), 5));
    }
}
