//! What the health-programme pages (`chronic`, `fdc`, `mdt`) share: the region and masking of a page,
//! and the cells that name a person.

use std::collections::HashMap;
use std::sync::Arc;

use baozhang_ingest::worklist::{mask_id, mask_name};
use baozhang_store::programmes::Who;

use super::pid::PidKey;
use super::table::Cell;
use super::{WebError, WebUser};
use crate::auth::Role;
use crate::AppState;

/// A programme page's context: the region asked for (inside the user's), names, links, masking.
pub struct Ctx {
    pub region: String,
    pub names: Arc<HashMap<String, String>>,
    pub pid: PidKey,
    pub unmasked: bool,
    /// What the page is (the access log's action).
    what: String,
    /// The people shown in clear so far (masked ID numbers): one access-log row each (PIPL art. 51/55).
    shown: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    /// Checks the region and the unmask request. Every person then shown in clear is remembered and
    /// written to the access log by [`Ctx::log_shown`] before the page or file goes out.
    pub async fn new(state: &AppState, u: &WebUser, region: Option<&str>, unmasked: bool, what: &str) -> Result<Ctx, WebError> {
        let region = u.region_in_scope(region)?.to_string();
        let unmasked = u.may_unmask(unmasked)?;
        Ok(Ctx {
            region,
            names: state.web.region_names(&state.store).await?,
            pid: state.web.pid_key(&state.store).await?,
            unmasked,
            what: what.to_string(),
            shown: std::sync::Mutex::new(Vec::new()),
        })
    }
    /// Notes a person shown in clear (the cells of [`Ctx::person`] do it themselves).
    pub fn note_shown(&self, id_no: &str) {
        if self.unmasked {
            self.shown.lock().expect("shown lock").push(mask_id(id_no));
        }
    }
    /// Writes one access-log row per person shown in clear, saying whether it was a view or an export
    /// (and of which table: the export's purpose). Called before the response is sent.
    pub async fn log_shown(&self, state: &AppState, u: &WebUser, export: Option<&str>) -> Result<(), WebError> {
        if !self.unmasked {
            return Ok(());
        }
        let mut subjects = std::mem::take(&mut *self.shown.lock().expect("shown lock"));
        subjects.sort();
        subjects.dedup();
        let detail = match export {
            Some(table) => format!("导出未脱敏个人信息（{}，表 {table}，区划 {}）", self.what, self.region),
            None => format!("查看未脱敏个人信息（{}，区划 {}）", self.what, self.region),
        };
        state.store.log_access_many(&u.p.username, u.p.role.as_str(), &self.what, &subjects, &detail).await?;
        Ok(())
    }
    pub fn place(&self, code: &str) -> String {
        self.names.get(code).cloned().unwrap_or_else(|| code.to_string())
    }
    /// Village, name (linking to the person page) and ID number, masked unless asked and allowed.
    pub fn person(&self, id_no: &str, who: &Who) -> [Cell; 3] {
        let name = if who.name.is_empty() {
            "（未登记）".to_string()
        } else if self.unmasked {
            who.name.clone()
        } else {
            mask_name(&who.name)
        };
        let id = if self.unmasked { id_no.to_string() } else { mask_id(id_no) };
        self.note_shown(id_no);
        [
            Cell::text(if who.village_code.is_empty() { String::new() } else { self.place(&who.village_code) }),
            if who.village_code.is_empty() { Cell::text(name) } else { Cell::Link(name, super::person::person_href(&self.pid, id_no)) },
            Cell::text(id),
        ]
    }
    /// Whether a row about a person belongs on this page (their village lies in the region; people the
    /// registry does not know only on an unrestricted page).
    pub fn covers(&self, who: &Who) -> bool {
        if who.village_code.is_empty() {
            self.region.is_empty()
        } else {
            who.village_code.starts_with(&self.region)
        }
    }
}

/// `ratio_bp` of counts: a share in basis points, rounded half up; `None` of nothing.
pub fn bp(n: usize, d: usize) -> Option<i64> {
    super::ratio_bp(n as i64, d as i64)
}

/// Roles that manage programme data (draws, audit results, plans, cases, lists).
pub fn may_manage(u: &WebUser) -> bool {
    matches!(u.p.role, Role::Admin | Role::Bureau)
}

pub fn require_manage(u: &WebUser, what: &str) -> Result<(), WebError> {
    u.require(may_manage(u), what)
}

/// A date typed into a form that must not lie in the future (when something was done).
pub fn past_day(s: &str, field: &str) -> Result<baozhang_core::Date, WebError> {
    let d = baozhang_core::Date::parse(s.trim()).map_err(|e| WebError::bad(format!("{field}无效：{e}")))?;
    if d > crate::clock::today() {
        return Err(WebError::bad(format!("{field}不能晚于今天")));
    }
    Ok(d)
}

/// `yyyy-mm-dd` (or empty: the default) → yyyymmdd.
pub fn parse_day(s: Option<&str>, default: i64, field: &str) -> Result<i64, WebError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => baozhang_core::Date::parse(s).map(baozhang_store::date_num).map_err(|e| WebError::bad(format!("{field}“{s}”无效：{e}"))),
    }
}

/// A year typed into a form or address (2000–2100).
pub fn parse_year(s: &str) -> Result<i64, WebError> {
    let s = s.trim();
    s.parse().ok().filter(|y| (2000..=2100).contains(y)).ok_or_else(|| WebError::bad(format!("年度“{s}”无效")))
}

/// The `year` of a page's query (the dashboard's latest year when absent).
pub async fn year_param(state: &AppState, s: Option<&str>) -> Result<i64, WebError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(super::dashboard::default_year(state).await),
        Some(y) => parse_year(y),
    }
}

/// The day a year's figures are counted on: today in the current year, else the year's last day.
pub fn count_day(year: i64) -> Result<baozhang_core::Date, WebError> {
    let year_end = baozhang_core::Date::new(u16::try_from(year).unwrap_or(0), 12, 31).ok_or_else(|| WebError::bad("年度无效"))?;
    let today = crate::clock::today();
    Ok(if i64::from(today.year()) == year { today } else { year_end })
}

/// The mask toggle shown to roles that may unmask.
/// The link that shows a page unmasked (or masked again), for roles that may unmask: for templates'
/// `parts::unmask` macro.
pub struct UnmaskLink {
    pub href: String,
    pub text: &'static str,
    pub note: &'static str,
}

pub fn unmask_view(u: &WebUser, ctx: &Ctx) -> Option<UnmaskLink> {
    if !u.p.may_unmask() {
        return None;
    }
    let base = u.path.replace("&unmasked=1", "").replace("?unmasked=1", "?");
    Some(if ctx.unmasked {
        UnmaskLink { href: base, text: "恢复脱敏显示", note: "本次查看已记录" }
    } else {
        let sep = if base.contains('?') { '&' } else { '?' };
        UnmaskLink { href: format!("{base}{sep}unmasked=1"), text: "显示完整姓名与证件号码", note: "将记入访问日志" }
    })
}
