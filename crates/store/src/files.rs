//! Files of the national interface and what daily reconciliation reads (migration 13):
//!
//! - **Exchange files** (`exchange_files`): what a hospital uploads with 9101 (the 3202 detail file) and
//!   what the centre writes for it to download with 9102 (the 3202 result file). A file belongs to its
//!   institution: it is read by (file_qury_no, fixmedins_code), so another institution's file is never
//!   found. Files expire ([`Store::prune_files`]).
//! - **Settlement lists** (`settlement_lists`, 4101A 结算清单): the body as received, versioned per
//!   institution and settlement; the latest version counts, the earlier ones are kept.
//! - **The centre's figures** for 3201 对总账 and 3202 对明细账, read (never written) from the ledger:
//!   [`Store::centre_totals`], [`Store::centre_rows`].
//!
//! How the ledger is counted (the same rules as `ledger::effective_totals` and cancellations):
//! - A settlement's amounts are its row's plus its re-settlement adjustments' (`ledger_adjustments` with
//!   its `setl_id`; an adjustment moves money between the fund, the hospital's share and the personal
//!   part, never the bill total). Adjustments count with their settlement, on its `setl_date`, whenever
//!   they were made.
//! - A cancellation is a row of its own (`reverses` set; `refd_setl_flag` 1 in the national files) with the
//!   negated effective amounts of the settlement it cancels, on its own `setl_date`: the day it was made.
//! - Totals are net: amounts add the cancellation rows' negative amounts, and the count is settlements
//!   minus cancellations in the range (a settlement cancelled within the range counts 0 and adds 0).
//! - There is no personal account in this system: `acct_pay` is 0.
//! - `clr_type` is compared with the settlement's `med_type` (the national 医疗类别 codes: 11 门诊,
//!   14 门诊慢特病, 21 住院 …); the caller maps a national 清算类别 to it.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;

use crate::{get_i64, get_opt_text, get_text, now_text, Result, Store, StoreError};

/// Which way a file went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Direction {
    /// From the institution (9101).
    Up,
    /// From the centre, for the institution to download (9102).
    Down,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            _ => None,
        }
    }
}

/// A file exchanged with an institution.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExchangeFile {
    pub file_qury_no: String,
    pub fixmedins_code: String,
    pub filename: String,
    pub direction: Direction,
    #[serde(skip)]
    pub content: Vec<u8>,
    /// Lower-case hex SHA-256 of `content`.
    pub sha256: String,
    pub created_at: String,
    /// Unix seconds; the file is pruned after.
    pub expires_at: i64,
}

impl std::fmt::Debug for ExchangeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeFile")
            .field("file_qury_no", &self.file_qury_no)
            .field("fixmedins_code", &self.fixmedins_code)
            .field("filename", &self.filename)
            .field("direction", &self.direction)
            .field("size", &self.content.len())
            .field("sha256", &self.sha256)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl ExchangeFile {
    /// A file with its digest and creation time (now).
    pub fn new(
        file_qury_no: &str,
        fixmedins_code: &str,
        filename: &str,
        direction: Direction,
        content: Vec<u8>,
        expires_at: i64,
    ) -> ExchangeFile {
        ExchangeFile {
            file_qury_no: file_qury_no.to_string(),
            fixmedins_code: fixmedins_code.to_string(),
            filename: filename.to_string(),
            direction,
            sha256: sha256_hex(&content),
            content,
            created_at: now_text(),
            expires_at,
        }
    }

    pub fn size(&self) -> i64 {
        self.content.len() as i64
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Stores a file (inside the caller's transaction: `&mut *tx`). A file_qury_no already taken is a
/// [`StoreError::Conflict`] (the caller mints unique ones; on PostgreSQL the transaction is then spoilt).
pub async fn insert_file(c: &mut sqlx::AnyConnection, f: &ExchangeFile) -> Result<()> {
    debug_assert_eq!(f.sha256, sha256_hex(&f.content), "ExchangeFile::sha256 does not match its content");
    let r = sqlx::query(
        "INSERT INTO exchange_files (file_qury_no, fixmedins_code, filename, direction, content, size, sha256, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(f.file_qury_no.clone())
    .bind(f.fixmedins_code.clone())
    .bind(f.filename.clone())
    .bind(f.direction.as_str())
    .bind(f.content.clone())
    .bind(f.size())
    .bind(f.sha256.clone())
    .bind(f.created_at.clone())
    .bind(f.expires_at)
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Conflict(format!("文件查询号 {} 已存在", f.file_qury_no)))
        }
        Err(e) => Err(e.into()),
    }
}

fn file_from_row(r: &AnyRow) -> Result<ExchangeFile> {
    let direction = get_text(r, 3)?;
    let f = ExchangeFile {
        file_qury_no: get_text(r, 0)?,
        fixmedins_code: get_text(r, 1)?,
        filename: get_text(r, 2)?,
        direction: Direction::parse(&direction).ok_or_else(|| StoreError::Corrupt(format!("文件方向“{direction}”无效")))?,
        content: sqlx::Row::try_get::<Vec<u8>, _>(r, 4)?,
        sha256: get_text(r, 5)?,
        created_at: get_text(r, 6)?,
        expires_at: get_i64(r, 7)?,
    };
    if sha256_hex(&f.content) != f.sha256 {
        return Err(StoreError::Corrupt(format!("文件 {} 的内容与其 SHA-256 不符", f.file_qury_no)));
    }
    Ok(f)
}

/// A new version of a settlement list (4101A).
#[derive(Clone, Debug)]
pub struct NewSettlementList<'a> {
    pub fixmedins_code: &'a str,
    pub setl_id: &'a str,
    pub mdtrt_id: &'a str,
    pub psn_no: &'a str,
    pub msgid: &'a str,
    /// The list as received (JSON text).
    pub body: &'a str,
}

/// What [`insert_settlement_list`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListVersion {
    /// The version now latest (1 for the first upload).
    pub version: i64,
    /// False when the body equals the latest version's: nothing was written.
    pub added: bool,
}

/// Stores a settlement list as the next version of its (institution, settlement), inside the caller's
/// transaction; the same body as the latest version writes nothing. Two transactions adding a version of
/// the same settlement at once (PostgreSQL): the second gets [`StoreError::Conflict`].
pub async fn insert_settlement_list(c: &mut sqlx::AnyConnection, l: &NewSettlementList<'_>) -> Result<ListVersion> {
    let sha = sha256_hex(l.body.as_bytes());
    let latest = sqlx::query(
        "SELECT version, body_sha256 FROM settlement_lists WHERE fixmedins_code = $1 AND setl_id = $2 ORDER BY version DESC LIMIT 1",
    )
    .bind(l.fixmedins_code.to_string())
    .bind(l.setl_id.to_string())
    .fetch_optional(&mut *c)
    .await?;
    let version = match &latest {
        Some(r) if get_text(r, 1)? == sha => return Ok(ListVersion { version: get_i64(r, 0)?, added: false }),
        Some(r) => get_i64(r, 0)? + 1,
        None => 1,
    };
    let r = sqlx::query(
        "INSERT INTO settlement_lists (fixmedins_code, setl_id, version, mdtrt_id, psn_no, msgid, body, body_sha256, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(l.fixmedins_code.to_string())
    .bind(l.setl_id.to_string())
    .bind(version)
    .bind(l.mdtrt_id.to_string())
    .bind(l.psn_no.to_string())
    .bind(l.msgid.to_string())
    .bind(l.body.to_string())
    .bind(sha)
    .bind(now_text())
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(ListVersion { version, added: true }),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Conflict(format!("结算清单 {} 正被另一请求更新", l.setl_id)))
        }
        Err(e) => Err(e.into()),
    }
}

/// One stored version of a settlement list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SettlementList {
    pub id: i64,
    pub fixmedins_code: String,
    pub setl_id: String,
    pub version: i64,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub msgid: String,
    pub body: String,
    pub received_at: String,
}

const LIST_COLS: &str = "l.id, l.fixmedins_code, l.setl_id, l.version, l.mdtrt_id, l.psn_no, l.msgid, l.body, l.received_at";

fn list_from_row(r: &AnyRow) -> Result<SettlementList> {
    Ok(SettlementList {
        id: get_i64(r, 0)?,
        fixmedins_code: get_text(r, 1)?,
        setl_id: get_text(r, 2)?,
        version: get_i64(r, 3)?,
        mdtrt_id: get_text(r, 4)?,
        psn_no: get_text(r, 5)?,
        msgid: get_text(r, 6)?,
        body: get_text(r, 7)?,
        received_at: get_text(r, 8)?,
    })
}

/// The centre's totals of an institution's settlements over a date range (3201 对总账), net of
/// cancellations (see the module documentation). Amounts in fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CentreTotals {
    /// Settlements minus cancellations.
    pub count: i64,
    /// Settlement rows in the range.
    pub settled: i64,
    /// Cancellation rows in the range.
    pub cancelled: i64,
    pub medfee_sumamt: i64,
    pub fund_pay_sumamt: i64,
    /// Always 0: no personal accounts here.
    pub acct_pay: i64,
    pub hosp_part_amt: i64,
    /// What the person paid (现金支付 in 3202's terms).
    pub psn_part_amt: i64,
}

/// One settlement or cancellation row as the centre has it (3202 对明细账), with its effective amounts in
/// fen (a cancellation's are negative).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CentreSettlementRow {
    pub setl_id: String,
    pub seq: i64,
    /// The settlement a cancellation cancels.
    pub reverses: Option<String>,
    pub msgid: String,
    pub mdtrt_id: String,
    pub psn_no: String,
    pub setl_date: i64,
    pub med_type: i64,
    pub medfee_sumamt: i64,
    pub fund_pay_sumamt: i64,
    /// Always 0: no personal accounts here.
    pub acct_pay: i64,
    pub hosp_part_amt: i64,
    pub psn_part_amt: i64,
}

impl CentreSettlementRow {
    /// A refund (cancellation) row: `refd_setl_flag` 1.
    pub fn refd_setl_flag(&self) -> bool {
        self.reverses.is_some()
    }
}

/// The rows of an institution's settlements and cancellations in a range, effective amounts included.
/// Binds $1 institution, $2 from, $3 to, then $4 med_type when `clr_type` is given.
fn centre_rows_sql(clr_type: Option<i64>) -> String {
    let adj =
        |col: &str| format!("COALESCE((SELECT CAST(SUM(a.{col}) AS BIGINT) FROM ledger_adjustments a WHERE a.setl_id = s.setl_id), 0)");
    format!(
        "SELECT s.setl_id, s.seq, s.reverses, s.msgid, s.mdtrt_id, s.psn_no, s.setl_date, s.med_type, s.medfee_sumamt, \
         s.fund_pay_sumamt + {} AS fund, s.hosp_part_amt + {} AS hosp, s.psn_part_amt + {} AS psn \
         FROM ledger_settlements s WHERE s.fixmedins_code = $1 AND s.setl_date >= $2 AND s.setl_date <= $3{}",
        adj("fund_pay_sumamt"),
        adj("hosp_part_amt"),
        adj("psn_part_amt"),
        if clr_type.is_some() { " AND s.med_type = $4" } else { "" }
    )
}

impl Store {
    /// An institution's file; `None` if there is none of that number **for this institution** (another
    /// institution's file is never returned). An expired file not yet pruned is returned: the caller
    /// compares `expires_at` with its clock.
    pub async fn file(&self, file_qury_no: &str, fixmedins_code: &str) -> Result<Option<ExchangeFile>> {
        let row = sqlx::query(
            "SELECT file_qury_no, fixmedins_code, filename, direction, content, sha256, created_at, expires_at \
             FROM exchange_files WHERE file_qury_no = $1 AND fixmedins_code = $2",
        )
        .bind(file_qury_no.to_string())
        .bind(fixmedins_code.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(file_from_row).transpose()
    }

    /// Deletes the files expired at `now_unix` (`expires_at <= now_unix`); how many.
    pub async fn prune_files(&self, now_unix: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM exchange_files WHERE expires_at <= $1").bind(now_unix).execute(self.pool()).await?;
        Ok(r.rows_affected())
    }

    /// The latest version of each settlement list, of one institution or all, most recently received
    /// first (at most `limit`, 1–1000).
    pub async fn settlement_lists(&self, fixmedins_code: Option<&str>, limit: i64) -> Result<Vec<SettlementList>> {
        let limit = limit.clamp(1, 1000);
        let latest = "l.version = (SELECT MAX(v.version) FROM settlement_lists v WHERE v.fixmedins_code = l.fixmedins_code AND v.setl_id = l.setl_id)";
        let rows = match fixmedins_code {
            Some(code) => {
                let sql = format!(
                    "SELECT {LIST_COLS} FROM settlement_lists l WHERE l.fixmedins_code = $1 AND {latest} ORDER BY l.id DESC LIMIT {limit}"
                );
                sqlx::query(&sql).bind(code.to_string()).fetch_all(self.pool()).await?
            }
            None => {
                let sql = format!("SELECT {LIST_COLS} FROM settlement_lists l WHERE {latest} ORDER BY l.id DESC LIMIT {limit}");
                sqlx::query(&sql).fetch_all(self.pool()).await?
            }
        };
        rows.iter().map(list_from_row).collect()
    }

    /// The latest settlement list of an institution's settlement (what 4103 would answer).
    pub async fn settlement_list(&self, fixmedins_code: &str, setl_id: &str) -> Result<Option<SettlementList>> {
        let sql = format!(
            "SELECT {LIST_COLS} FROM settlement_lists l WHERE l.fixmedins_code = $1 AND l.setl_id = $2 ORDER BY l.version DESC LIMIT 1"
        );
        let row = sqlx::query(&sql).bind(fixmedins_code.to_string()).bind(setl_id.to_string()).fetch_optional(self.pool()).await?;
        row.as_ref().map(list_from_row).transpose()
    }

    /// Every version of an institution's settlement list, oldest first (its history).
    pub async fn settlement_list_versions(&self, fixmedins_code: &str, setl_id: &str) -> Result<Vec<SettlementList>> {
        let sql = format!("SELECT {LIST_COLS} FROM settlement_lists l WHERE l.fixmedins_code = $1 AND l.setl_id = $2 ORDER BY l.version");
        let rows = sqlx::query(&sql).bind(fixmedins_code.to_string()).bind(setl_id.to_string()).fetch_all(self.pool()).await?;
        rows.iter().map(list_from_row).collect()
    }

    /// The centre's totals of an institution's settlements with `setl_date` in `from..=to` (yyyymmdd),
    /// of one `med_type` when `clr_type` is given; net of cancellations, adjustments included (see the
    /// module documentation).
    pub async fn centre_totals(&self, fixmedins_code: &str, from: i64, to: i64, clr_type: Option<i64>) -> Result<CentreTotals> {
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(CASE WHEN x.reverses IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(x.medfee_sumamt), 0) AS BIGINT), CAST(COALESCE(SUM(x.fund), 0) AS BIGINT), \
             CAST(COALESCE(SUM(x.hosp), 0) AS BIGINT), CAST(COALESCE(SUM(x.psn), 0) AS BIGINT) \
             FROM ({}) x",
            centre_rows_sql(clr_type)
        );
        let mut q = sqlx::query(&sql).bind(fixmedins_code.to_string()).bind(from).bind(to);
        if let Some(m) = clr_type {
            q = q.bind(m);
        }
        let r = q.fetch_one(self.pool()).await?;
        let rows = get_i64(&r, 0)?;
        let settled = get_i64(&r, 1)?;
        Ok(CentreTotals {
            count: settled - (rows - settled),
            settled,
            cancelled: rows - settled,
            medfee_sumamt: get_i64(&r, 2)?,
            fund_pay_sumamt: get_i64(&r, 3)?,
            acct_pay: 0,
            hosp_part_amt: get_i64(&r, 4)?,
            psn_part_amt: get_i64(&r, 5)?,
        })
    }

    /// The centre's settlement and cancellation rows of an institution with `setl_date` in `from..=to`,
    /// of one `med_type` when `clr_type` is given, in commit order, at most `limit` (ask for one more than
    /// you accept to know that there are more).
    pub async fn centre_rows(
        &self,
        fixmedins_code: &str,
        from: i64,
        to: i64,
        clr_type: Option<i64>,
        limit: i64,
    ) -> Result<Vec<CentreSettlementRow>> {
        let sql = format!("{} ORDER BY s.seq LIMIT {}", centre_rows_sql(clr_type), limit.max(0));
        let mut q = sqlx::query(&sql).bind(fixmedins_code.to_string()).bind(from).bind(to);
        if let Some(m) = clr_type {
            q = q.bind(m);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(CentreSettlementRow {
                    setl_id: get_text(r, 0)?,
                    seq: get_i64(r, 1)?,
                    reverses: get_opt_text(r, 2)?,
                    msgid: get_text(r, 3)?,
                    mdtrt_id: get_text(r, 4)?,
                    psn_no: get_text(r, 5)?,
                    setl_date: get_i64(r, 6)?,
                    med_type: get_i64(r, 7)?,
                    medfee_sumamt: get_i64(r, 8)?,
                    fund_pay_sumamt: get_i64(r, 9)?,
                    acct_pay: 0,
                    hosp_part_amt: get_i64(r, 10)?,
                    psn_part_amt: get_i64(r, 11)?,
                })
            })
            .collect()
    }
}
