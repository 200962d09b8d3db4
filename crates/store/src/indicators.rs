//! What the workbench reads and writes: indicators per village for a year (POLICY §5: enrolment of the
//! registered poor and of monitored people, flagging delay, discrepancies of the latest reconciliation,
//! settlements from the ledger, the actual reimbursement ratio of poor inpatients, the distribution of
//! personal payments, people over the R-RISK-1 warning line), the households and members of a village,
//! and the worklist marks of R-ENR-2 (a cadre marks a finding done; the next run confirms or reopens it).
//!
//! Indicators are set-based: a handful of `GROUP BY village_code` queries for a whole county, integers
//! only (counts, fen); ratios are computed from them (basis points) so that villages add up into
//! townships and counties ([`VillageStats::add`]).
//!
//! Ledger sums are net of cancellations: a cancellation row has `reverses` set and negated amounts, so
//! amounts add up to what stands; settlements are counted as rows without `reverses` minus rows with it,
//! and a count of settlements "in a bucket" or "hitting a layer" counts the cancellation in the same
//! bucket (by the absolute amount) or layer (a negative amount) with −1.

use std::collections::BTreeMap;

use baozhang_core::policy::ALL_FUNDS;
use baozhang_core::{Date, Identity};
use sqlx::Row;

use crate::reconcile::{dead_by, enrolled, Finding, CLASSES};
use crate::{date_num, get_i64, get_opt_i64, get_opt_text, get_text, now_text, Result, Store, StoreError, Tx};

/// Upper bounds (inclusive, fen) of the personal-payment buckets per settlement: 0, ≤ 500, ≤ 1,000,
/// ≤ 2,000, ≤ 5,000, ≤ 10,000 yuan; the last bucket ([`N_BUCKETS`] − 1) is above 10,000 yuan.
pub const PSN_PART_BUCKETS_FEN: [i64; 6] = [0, 50_000, 100_000, 200_000, 500_000, 1_000_000];
pub const N_BUCKETS: usize = PSN_PART_BUCKETS_FEN.len() + 1;

/// Funds in the order of `baozhang_core::policy::ALL_FUNDS` (and `Fund::index`): 390100 basic,
/// 390200 critical illness, 620100 supplemental, 610100 assistance, 640100 fallback, 999996 hospital.
pub const N_FUNDS: usize = 6;

/// The identity bits that make a settlement a "poor" one: registered or exited poor (四不摘), as the
/// policies and `settlement_totals` count them.
pub const POOR_BITS: i64 = (1 << Identity::RegisteredPoor as i64) | (1 << Identity::ExitedPoor as i64);

/// Inpatient (住院) in `med_type`.
const MED_TYPE_INPATIENT: i64 = 21;

/// Indicators of one village (or, after [`VillageStats::add`], of a township or county).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VillageStats {
    pub village_code: String,
    // ── Registry on the date (R-ENR-3, as `Store::enrolment_indicators`): living persons only. ──
    /// Registered or exited poor on the date, and those of them insured in the year.
    pub poor: i64,
    pub poor_insured: i64,
    /// Monitored / marginal people (not poor) on the date, and those insured.
    pub marginal: i64,
    pub marginal_insured: i64,
    /// Σ days from the poverty period's start to the insurance flag, and how many were flagged.
    pub flag_delay_days_sum: i64,
    pub flagged: i64,
    // ── The latest reconciliation run. ──
    /// Findings by class, in the order of `reconcile::CLASSES`.
    pub findings: [i64; CLASSES.len()],
    // ── The settlement ledger, settlements of the year (net of cancellations). ──
    pub settlements: i64,
    pub inpatient: i64,
    pub medfee_fen: i64,
    pub inscp_fen: i64,
    pub fund_pay_fen: i64,
    pub hosp_part_fen: i64,
    pub psn_part_fen: i64,
    /// Paid by each fund ([`N_FUNDS`], `ALL_FUNDS` order), and in how many settlements it paid (> 0).
    pub funds_fen: [i64; N_FUNDS],
    pub fund_hits: [i64; N_FUNDS],
    /// Settlements by personal payment ([`PSN_PART_BUCKETS_FEN`]).
    pub psn_part_buckets: [i64; N_BUCKETS],
    /// Inpatient settlements of poor people ([`POOR_BITS`] in the identities recorded with the settlement).
    pub poor_inpatient: i64,
    pub poor_inpatient_medfee_fen: i64,
    pub poor_inpatient_inscp_fen: i64,
    pub poor_inpatient_fund_pay_fen: i64,
    pub poor_inpatient_psn_part_fen: i64,
    pub poor_inpatient_psn_part_buckets: [i64; N_BUCKETS],
    // ── Person-years (R-RISK-1): the year's personal payment of each person, all medical types. ──
    /// People with at least one settlement standing in the year.
    pub persons_settled: i64,
    /// People whose personal payment in the year is above the warning line.
    pub over_warning_line: i64,
    /// People above 80 % of the line but not above it (about to reach it).
    pub near_warning_line: i64,
}

/// `num / den` in basis points, rounded half away from zero; `None` when `den` is 0.
pub fn bp(num: i64, den: i64) -> Option<i64> {
    ratio_rounded(i128::from(num) * 10_000, i128::from(den))
}

/// `num / den` rounded half away from zero (an average); `None` when `den` is 0.
pub fn avg(num: i64, den: i64) -> Option<i64> {
    ratio_rounded(i128::from(num), i128::from(den))
}

fn ratio_rounded(num: i128, den: i128) -> Option<i64> {
    if den == 0 {
        return None;
    }
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let q = if num >= 0 { (num + den / 2) / den } else { -((-num + den / 2) / den) };
    i64::try_from(q).ok()
}

impl VillageStats {
    /// Adds another unit's figures (rolling villages up into a township or county); the code stays.
    pub fn add(&mut self, o: &VillageStats) {
        self.poor += o.poor;
        self.poor_insured += o.poor_insured;
        self.marginal += o.marginal;
        self.marginal_insured += o.marginal_insured;
        self.flag_delay_days_sum += o.flag_delay_days_sum;
        self.flagged += o.flagged;
        for (a, b) in self.findings.iter_mut().zip(&o.findings) {
            *a += b;
        }
        self.settlements += o.settlements;
        self.inpatient += o.inpatient;
        self.medfee_fen += o.medfee_fen;
        self.inscp_fen += o.inscp_fen;
        self.fund_pay_fen += o.fund_pay_fen;
        self.hosp_part_fen += o.hosp_part_fen;
        self.psn_part_fen += o.psn_part_fen;
        for k in 0..N_FUNDS {
            self.funds_fen[k] += o.funds_fen[k];
            self.fund_hits[k] += o.fund_hits[k];
        }
        for k in 0..N_BUCKETS {
            self.psn_part_buckets[k] += o.psn_part_buckets[k];
            self.poor_inpatient_psn_part_buckets[k] += o.poor_inpatient_psn_part_buckets[k];
        }
        self.poor_inpatient += o.poor_inpatient;
        self.poor_inpatient_medfee_fen += o.poor_inpatient_medfee_fen;
        self.poor_inpatient_inscp_fen += o.poor_inpatient_inscp_fen;
        self.poor_inpatient_fund_pay_fen += o.poor_inpatient_fund_pay_fen;
        self.poor_inpatient_psn_part_fen += o.poor_inpatient_psn_part_fen;
        self.persons_settled += o.persons_settled;
        self.over_warning_line += o.over_warning_line;
        self.near_warning_line += o.near_warning_line;
    }

    /// Enrolment rate of the registered poor (bp).
    pub fn poor_enrolment_bp(&self) -> Option<i64> {
        bp(self.poor_insured, self.poor)
    }
    /// Enrolment rate of monitored / marginal people (bp).
    pub fn marginal_enrolment_bp(&self) -> Option<i64> {
        bp(self.marginal_insured, self.marginal)
    }
    /// Average flagging delay in days.
    pub fn flag_delay_avg_days(&self) -> Option<i64> {
        avg(self.flag_delay_days_sum, self.flagged)
    }
    /// All findings of the latest run.
    pub fn findings_total(&self) -> i64 {
        self.findings.iter().sum()
    }
    /// Findings of one class (`reconcile::CLASSES` id); 0 for an unknown class.
    pub fn findings_of(&self, class: &str) -> i64 {
        CLASSES.iter().position(|c| c.0 == class).map_or(0, |i| self.findings[i])
    }
    /// Share of the total cost paid by fund `k` (bp).
    pub fn fund_share_bp(&self, k: usize) -> Option<i64> {
        bp(self.funds_fen[k], self.medfee_fen)
    }
    /// Share of settlements in which fund `k` paid (bp).
    pub fn fund_hit_bp(&self, k: usize) -> Option<i64> {
        bp(self.fund_hits[k], self.settlements)
    }
    /// Share of the total cost the patients paid (bp).
    pub fn psn_part_share_bp(&self) -> Option<i64> {
        bp(self.psn_part_fen, self.medfee_fen)
    }
    /// Average personal payment per settlement (fen).
    pub fn psn_part_avg_fen(&self) -> Option<i64> {
        avg(self.psn_part_fen, self.settlements)
    }
    /// Actual reimbursement ratio of poor inpatients on the total cost (funds paid ÷ total, bp).
    pub fn poor_inpatient_ratio_total_bp(&self) -> Option<i64> {
        bp(self.poor_inpatient_fund_pay_fen, self.poor_inpatient_medfee_fen)
    }
    /// Actual reimbursement ratio of poor inpatients on the compliant cost (funds paid ÷ compliant, bp).
    pub fn poor_inpatient_ratio_compliant_bp(&self) -> Option<i64> {
        bp(self.poor_inpatient_fund_pay_fen, self.poor_inpatient_inscp_fen)
    }
    /// Average personal payment per poor inpatient settlement (fen).
    pub fn poor_inpatient_psn_part_avg_fen(&self) -> Option<i64> {
        avg(self.poor_inpatient_psn_part_fen, self.poor_inpatient)
    }
}

/// The bucket of `expr` (a non-negative amount in fen) as a SQL CASE over [`PSN_PART_BUCKETS_FEN`].
fn bucket_case(expr: &str) -> String {
    let mut s = String::from("CASE");
    for (i, b) in PSN_PART_BUCKETS_FEN.iter().enumerate() {
        s.push_str(&format!(" WHEN {expr} <= {b} THEN {i}"));
    }
    s.push_str(&format!(" ELSE {} END", PSN_PART_BUCKETS_FEN.len()));
    s
}

/// +1 for a settlement row, −1 for a cancellation (SQL, alias s).
const SIGN: &str = "CASE WHEN s.reverses IS NULL THEN 1 ELSE -1 END";

/// The unit a settlement counts in (SQL, alias s): its person's village, or — for a person the registry
/// has no village for — the county they are insured in, as the ledger's region scopes do.
const UNIT: &str = "COALESCE(s.village_code, s.insuplc_admdvs)";

/// `as_of` moved into `year` (its first or last day) when it lies outside it.
fn date_in_year(year: i64, as_of: Date) -> Option<Date> {
    let y = u16::try_from(year).ok()?;
    if i64::from(as_of.year()) == year {
        Some(as_of)
    } else if i64::from(as_of.year()) > year {
        Date::new(y, 12, 31)
    } else {
        Date::new(y, 1, 1)
    }
}

impl Store {
    /// Indicators per village for `year`: the registry as of `as_of` (moved into the year if outside it:
    /// its last day for a past year), the latest reconciliation run, and the ledger's settlements of the
    /// year. `warning_line_fen` is the R-RISK-1 threshold of a person's annual personal payment.
    /// In code order, every village with persons, findings or settlements once — and, for settlements and
    /// findings of people the registry has no village for (most insured people are on no village roster),
    /// one row per insured county under its 6-digit code: a county's figures are the sum of the rows under
    /// its code, a township's those of its villages.
    pub async fn village_indicators(&self, year: i64, as_of: Date, warning_line_fen: i64) -> Result<Vec<VillageStats>> {
        let Some(as_of) = date_in_year(year, as_of) else { return Ok(Vec::new()) };
        let started = std::time::Instant::now();
        let mut by: BTreeMap<String, VillageStats> = BTreeMap::new();
        fn at(by: &mut BTreeMap<String, VillageStats>, v: String) -> &mut VillageStats {
            by.entry(v.clone()).or_insert_with(|| VillageStats { village_code: v, ..Default::default() })
        }

        // 1. Registry: the R-ENR-3 indicators exactly as reconciliation's module computes them.
        for e in self.enrolment_indicators(as_of).await? {
            let v = at(&mut by, e.village_code);
            v.poor = e.poor;
            v.poor_insured = e.poor_insured;
            v.marginal = e.marginal;
            v.marginal_insured = e.marginal_insured;
            v.flag_delay_days_sum = e.flag_delay_days_sum;
            v.flagged = e.flagged;
        }
        let t_registry = started.elapsed();

        // 2. Findings of the latest run by class; a person on no village roster (a death or military
        //    record only) in the county of their current enrolment, like their settlements.
        if let Some(run) = self.latest_run().await? {
            let rows = sqlx::query(
                "SELECT f.unit_code, f.class, CAST(COUNT(*) AS BIGINT) FROM reconcile_findings f \
                 WHERE f.run_id = $1 AND f.unit_code IS NOT NULL GROUP BY f.unit_code, f.class",
            )
            .bind(run)
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                let class = get_text(r, 1)?;
                if let Some(k) = CLASSES.iter().position(|c| c.0 == class) {
                    at(&mut by, get_text(r, 0)?).findings[k] += get_i64(r, 2)?;
                }
            }
        }
        let t_findings = started.elapsed();

        // 3. Settlements of the year by (unit, inpatient, poor inpatient, personal-payment bucket).
        let sql = format!(
            "SELECT {UNIT}, CAST(CASE WHEN s.med_type = {MED_TYPE_INPATIENT} THEN 1 ELSE 0 END AS BIGINT), \
             CAST(CASE WHEN s.med_type = {MED_TYPE_INPATIENT} AND (s.identities & {POOR_BITS}) <> 0 THEN 1 ELSE 0 END AS BIGINT), \
             CAST({} AS BIGINT), CAST(SUM({SIGN}) AS BIGINT), CAST(SUM(s.medfee_sumamt) AS BIGINT), CAST(SUM(s.inscp_scp_amt) AS BIGINT), \
             CAST(SUM(s.fund_pay_sumamt) AS BIGINT), CAST(SUM(s.hosp_part_amt) AS BIGINT), CAST(SUM(s.psn_part_amt) AS BIGINT) \
             FROM ledger_settlements s WHERE s.year = {year} GROUP BY 1, 2, 3, 4",
            bucket_case("ABS(s.psn_part_amt)")
        );
        for r in &sqlx::query(&sql).fetch_all(self.pool()).await? {
            let v = at(&mut by, get_text(r, 0)?);
            let (inpatient, poor_inpatient) = (get_i64(r, 1)? == 1, get_i64(r, 2)? == 1);
            let bucket = (get_i64(r, 3)? as usize).min(N_BUCKETS - 1);
            let n = get_i64(r, 4)?;
            let (medfee, inscp, fund_pay, hosp, psn) = (get_i64(r, 5)?, get_i64(r, 6)?, get_i64(r, 7)?, get_i64(r, 8)?, get_i64(r, 9)?);
            v.settlements += n;
            v.medfee_fen += medfee;
            v.inscp_fen += inscp;
            v.fund_pay_fen += fund_pay;
            v.hosp_part_fen += hosp;
            v.psn_part_fen += psn;
            v.psn_part_buckets[bucket] += n;
            if inpatient {
                v.inpatient += n;
            }
            if poor_inpatient {
                v.poor_inpatient += n;
                v.poor_inpatient_medfee_fen += medfee;
                v.poor_inpatient_inscp_fen += inscp;
                v.poor_inpatient_fund_pay_fen += fund_pay;
                v.poor_inpatient_psn_part_fen += psn;
                v.poor_inpatient_psn_part_buckets[bucket] += n;
            }
        }
        let t_settlements = started.elapsed();

        // 4. Funds: each settlement's entries summed per fund first (one row per settlement, a column per
        //    fund; two layers of a policy may share a fund), so that a settlement counts once for a fund
        //    it was paid from — and a cancellation −1, its amounts being negative.
        let pivot: Vec<String> = ALL_FUNDS
            .iter()
            .map(|f| format!("SUM(CASE WHEN fund = '{}' THEN amount_fen ELSE 0 END) AS f{}", f.code(), f.index()))
            .collect();
        let sums: Vec<String> = ALL_FUNDS
            .iter()
            .map(|f| {
                let k = f.index();
                format!("CAST(SUM(f.f{k}) AS BIGINT), CAST(SUM(CASE WHEN f.f{k} > 0 THEN 1 WHEN f.f{k} < 0 THEN -1 ELSE 0 END) AS BIGINT)")
            })
            .collect();
        let sql = format!(
            "SELECT {UNIT}, {} FROM (SELECT setl_id, {} FROM ledger_entries WHERE year = {year} AND layer >= 0 GROUP BY setl_id) f \
             JOIN ledger_settlements s ON s.setl_id = f.setl_id GROUP BY 1",
            sums.join(", "),
            pivot.join(", ")
        );
        for r in &sqlx::query(&sql).fetch_all(self.pool()).await? {
            let v = at(&mut by, get_text(r, 0)?);
            for k in 0..N_FUNDS {
                v.funds_fen[k] += get_i64(r, 1 + 2 * k)?;
                v.fund_hits[k] += get_i64(r, 2 + 2 * k)?;
            }
        }
        let t_funds = started.elapsed();

        // 5. Person-years against the warning line (R-RISK-1); a person counts in one unit.
        let sql = format!(
            "SELECT t.v, CAST(SUM(CASE WHEN t.n > 0 THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN t.psn > $1 THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN t.psn * 5 > $2 AND t.psn <= $3 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM (SELECT s.id_no, MAX({UNIT}) AS v, SUM({SIGN}) AS n, SUM(s.psn_part_amt) AS psn FROM ledger_settlements s \
                   WHERE s.year = {year} GROUP BY s.id_no) t GROUP BY t.v"
        );
        let rows = sqlx::query(&sql)
            .bind(warning_line_fen)
            .bind(warning_line_fen.saturating_mul(4))
            .bind(warning_line_fen)
            .fetch_all(self.pool())
            .await?;
        for r in &rows {
            let v = at(&mut by, get_text(r, 0)?);
            v.persons_settled += get_i64(r, 1)?;
            v.over_warning_line += get_i64(r, 2)?;
            v.near_warning_line += get_i64(r, 3)?;
        }
        tracing::info!(
            villages = by.len(),
            registry_ms = t_registry.as_millis() as u64,
            findings_ms = (t_findings - t_registry).as_millis() as u64,
            settlements_ms = (t_settlements - t_findings).as_millis() as u64,
            funds_ms = (t_funds - t_settlements).as_millis() as u64,
            persons_ms = (started.elapsed() - t_funds).as_millis() as u64,
            "village indicators"
        );
        Ok(by.into_values().collect())
    }
}

/// A household of a village with its members' situation in a year.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HouseholdRow {
    pub household_no: String,
    /// The name of the member whose relation is 户主, if the registry has one.
    pub head_name: Option<String>,
    /// Living members (not dead by the date).
    pub members: i64,
    /// Living members registered or exited poor on the date, and those of them insured in the year.
    pub poor: i64,
    pub poor_insured: i64,
    /// Living members insured in the year.
    pub insured: i64,
    /// The members' settlements of the year in this village (net of cancellations) and their personal part.
    pub settlements: i64,
    pub psn_part_fen: i64,
}

/// A member of a household.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HouseholdMember {
    pub id_no: String,
    pub name: String,
    pub sex: String,
    pub birth_date: i64,
    pub relation: Option<String>,
    pub village_code: Option<String>,
    pub psn_no: Option<String>,
    /// Dead by the date (a death record in force).
    pub dead: bool,
    /// Identities in force on the date (`identity_periods.identity`, e.g. `registered_poor`), sorted.
    pub identities: Vec<String>,
    /// Insured in the year (a current enrolment with `insured` = 1).
    pub insured: bool,
    pub settlements: i64,
    pub psn_part_fen: i64,
}

impl Store {
    /// The households of a village (by household number) with their members' enrolment and settlements;
    /// `as_of` is moved into `year` like [`Store::village_indicators`], so the figures add up to its.
    pub async fn households_in(&self, village_code: &str, year: i64, as_of: Date) -> Result<Vec<HouseholdRow>> {
        let Some(as_of) = date_in_year(year, as_of) else { return Ok(Vec::new()) };
        let d = date_num(as_of);
        let living = format!("NOT {}", dead_by(d));
        let poor = crate::reconcile::poor_on(d);
        let insured = enrolled(year, "e.insured = 1");
        let sql = format!(
            "SELECT p.household_no, MAX(CASE WHEN p.relation = '户主' THEN p.name END), \
             CAST(SUM(CASE WHEN {living} THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN {living} AND {poor} THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN {living} AND {poor} AND {insured} THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN {living} AND {insured} THEN 1 ELSE 0 END) AS BIGINT) \
             FROM persons p WHERE p.village_code = $1 AND p.household_no IS NOT NULL GROUP BY p.household_no ORDER BY p.household_no"
        );
        let rows = sqlx::query(&sql).bind(village_code.to_string()).fetch_all(self.pool()).await?;
        let mut out: Vec<HouseholdRow> = rows
            .iter()
            .map(|r| {
                Ok(HouseholdRow {
                    household_no: get_text(r, 0)?,
                    head_name: get_opt_text(r, 1)?,
                    members: get_i64(r, 2)?,
                    poor: get_i64(r, 3)?,
                    poor_insured: get_i64(r, 4)?,
                    insured: get_i64(r, 5)?,
                    settlements: 0,
                    psn_part_fen: 0,
                })
            })
            .collect::<Result<_>>()?;
        // The village's persons, then each one's settlements of the year through the (year, id_no) index.
        // `CROSS JOIN` keeps that order on SQLite (its left table is the outer loop), which would otherwise
        // scan the whole year's ledger; PostgreSQL plans it as a join.
        let sql = format!(
            "SELECT p.household_no, CAST(SUM({SIGN}) AS BIGINT), CAST(SUM(s.psn_part_amt) AS BIGINT) FROM persons p CROSS JOIN ledger_settlements s \
             WHERE p.village_code = $1 AND p.household_no IS NOT NULL AND s.year = {year} AND s.id_no = p.id_no AND s.village_code = p.village_code \
             GROUP BY p.household_no"
        );
        let rows = sqlx::query(&sql).bind(village_code.to_string()).fetch_all(self.pool()).await?;
        let idx: std::collections::HashMap<String, usize> = out.iter().enumerate().map(|(i, h)| (h.household_no.clone(), i)).collect();
        for r in &rows {
            // A member who moved to another village since keeps their settlements here, under a household
            // no longer listed in this village: not shown.
            if let Some(&i) = idx.get(&get_text(r, 0)?) {
                out[i].settlements += get_i64(r, 1)?;
                out[i].psn_part_fen += get_i64(r, 2)?;
            }
        }
        Ok(out)
    }

    /// The members of a household (the head first, then by birth date) with their identities on the date,
    /// enrolment and settlements in the year (`as_of` moved into `year` as in [`Store::village_indicators`]).
    pub async fn persons_of_household(&self, household_no: &str, year: i64, as_of: Date) -> Result<Vec<HouseholdMember>> {
        let Some(as_of) = date_in_year(year, as_of) else { return Ok(Vec::new()) };
        let d = date_num(as_of);
        let sql = format!(
            "SELECT p.id_no, p.name, p.sex, p.birth_date, p.relation, p.village_code, p.psn_no, \
             CAST(CASE WHEN {} THEN 1 ELSE 0 END AS BIGINT), CAST(CASE WHEN {} THEN 1 ELSE 0 END AS BIGINT) \
             FROM persons p WHERE p.household_no = $1 ORDER BY CASE WHEN p.relation = '户主' THEN 0 ELSE 1 END, p.birth_date, p.id_no",
            dead_by(d),
            enrolled(year, "e.insured = 1")
        );
        let rows = sqlx::query(&sql).bind(household_no.to_string()).fetch_all(self.pool()).await?;
        let mut out: Vec<HouseholdMember> = rows
            .iter()
            .map(|r| {
                Ok(HouseholdMember {
                    id_no: get_text(r, 0)?,
                    name: get_text(r, 1)?,
                    sex: get_text(r, 2)?,
                    birth_date: get_i64(r, 3)?,
                    relation: get_opt_text(r, 4)?,
                    village_code: get_opt_text(r, 5)?,
                    psn_no: get_opt_text(r, 6)?,
                    dead: get_i64(r, 7)? == 1,
                    insured: get_i64(r, 8)? == 1,
                    ..Default::default()
                })
            })
            .collect::<Result<_>>()?;
        let idx: std::collections::HashMap<String, usize> = out.iter().enumerate().map(|(i, m)| (m.id_no.clone(), i)).collect();
        let sql = format!(
            "SELECT DISTINCT i.id_no, i.identity FROM identity_periods i JOIN persons p ON p.id_no = i.id_no \
             WHERE p.household_no = $1 AND i.retracted_import IS NULL AND i.start_date <= {d} AND (i.end_date IS NULL OR i.end_date > {d}) \
             ORDER BY i.id_no, i.identity"
        );
        for r in &sqlx::query(&sql).bind(household_no.to_string()).fetch_all(self.pool()).await? {
            if let Some(&i) = idx.get(&get_text(r, 0)?) {
                out[i].identities.push(get_text(r, 1)?);
            }
        }
        // As in `households_in`: the members first (CROSS JOIN), their settlements in their village.
        let sql = format!(
            "SELECT s.id_no, CAST(SUM({SIGN}) AS BIGINT), CAST(SUM(s.psn_part_amt) AS BIGINT) FROM persons p CROSS JOIN ledger_settlements s \
             WHERE p.household_no = $1 AND s.year = {year} AND s.id_no = p.id_no AND s.village_code = p.village_code GROUP BY s.id_no"
        );
        for r in &sqlx::query(&sql).bind(household_no.to_string()).fetch_all(self.pool()).await? {
            if let Some(&i) = idx.get(&get_text(r, 0)?) {
                out[i].settlements = get_i64(r, 1)?;
                out[i].psn_part_fen = get_i64(r, 2)?;
            }
        }
        Ok(out)
    }
}

// ───────────────────────────── worklist marks ─────────────────────────────

/// Where a mark stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkState {
    /// Marked done; waiting for the next reconciliation run.
    Pending,
    /// The next run no longer has the finding.
    Confirmed,
    /// The next run still has it.
    Reopened,
    /// Taken back while pending.
    Undone,
}

impl MarkState {
    pub const ALL: [MarkState; 4] = [MarkState::Pending, MarkState::Confirmed, MarkState::Reopened, MarkState::Undone];

    pub fn as_str(self) -> &'static str {
        match self {
            MarkState::Pending => "pending",
            MarkState::Confirmed => "confirmed",
            MarkState::Reopened => "reopened",
            MarkState::Undone => "undone",
        }
    }
    pub fn parse(s: &str) -> Option<MarkState> {
        MarkState::ALL.into_iter().find(|m| m.as_str() == s)
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            MarkState::Pending => "已处理，待比对确认",
            MarkState::Confirmed => "已确认整改",
            MarkState::Reopened => "复核未通过，已重新打开",
            MarkState::Undone => "已撤销",
        }
    }
}

impl std::fmt::Display for MarkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name_zh())
    }
}

/// A cadre's mark on a finding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Mark {
    pub id: i64,
    pub finding_id: i64,
    pub class: String,
    pub id_no: String,
    /// The person's name ('' when the registry no longer has them).
    pub name: String,
    pub village_code: Option<String>,
    pub household_no: Option<String>,
    pub marked_run: i64,
    pub marked_by: String,
    pub marked_at: String,
    pub note: Option<String>,
    pub state: MarkState,
    /// The run that confirmed or reopened it.
    pub resolved_run: Option<i64>,
    pub resolved_at: Option<String>,
    pub undone_by: Option<String>,
    pub undone_at: Option<String>,
}

/// A finding of a run as a worklist item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorklistItem {
    /// `reconcile_findings.id`, what [`Store::mark_finding_done`] takes.
    pub finding_id: i64,
    pub finding: Finding,
    /// The mark on this finding (pending, or since confirmed / reopened), if any; undone marks are not shown.
    pub mark: Option<Mark>,
    /// The earlier mark this run reopened: the finding had been marked done and is still there.
    pub reopened: Option<Mark>,
}

/// Why a mark was refused.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("比对结果 {0} 不存在")]
    UnknownFinding(i64),
    #[error("比对结果 {finding_id} 属于第 {run} 次比对，不是最新一次比对的结果；请在最新的比对结果中处理")]
    NotLatestRun { finding_id: i64, run: i64, latest: Option<i64> },
    #[error("处理标记 {0} 不存在")]
    UnknownMark(i64),
    #[error("处理标记 {id} 的状态为“{state}”，只有待比对确认的标记可以撤销")]
    NotPending { id: i64, state: MarkState },
}

impl From<sqlx::Error> for MarkError {
    fn from(e: sqlx::Error) -> MarkError {
        MarkError::Store(StoreError::Db(e))
    }
}

const MARK_COLS: &str = "m.id, m.finding_id, m.class, m.id_no, m.village_code, m.household_no, m.marked_run, m.marked_by, m.marked_at, \
    m.note, m.state, m.resolved_run, m.resolved_at, m.undone_by, m.undone_at";
const MARK_NCOLS: usize = 15;

/// A mark from `MARK_COLS` starting at column `at` (None when its id is NULL: an outer join without a match).
fn mark_from_row(r: &sqlx::any::AnyRow, at: usize, name: String) -> Result<Option<Mark>> {
    let Some(id) = get_opt_i64(r, at)? else { return Ok(None) };
    let state = get_text(r, at + 10)?;
    Ok(Some(Mark {
        id,
        finding_id: get_i64(r, at + 1)?,
        class: get_text(r, at + 2)?,
        id_no: get_text(r, at + 3)?,
        name,
        village_code: get_opt_text(r, at + 4)?,
        household_no: get_opt_text(r, at + 5)?,
        marked_run: get_i64(r, at + 6)?,
        marked_by: get_text(r, at + 7)?,
        marked_at: get_text(r, at + 8)?,
        note: get_opt_text(r, at + 9)?,
        state: MarkState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("unknown worklist mark state {state}")))?,
        resolved_run: get_opt_i64(r, at + 11)?,
        resolved_at: get_opt_text(r, at + 12)?,
        undone_by: get_opt_text(r, at + 13)?,
        undone_at: get_opt_text(r, at + 14)?,
    }))
}

async fn mark_in(c: &mut sqlx::AnyConnection, id: i64) -> Result<Option<Mark>> {
    let row = sqlx::query(&format!(
        "SELECT {MARK_COLS}, COALESCE(p.name, '') FROM worklist_marks m LEFT JOIN persons p ON p.id_no = m.id_no WHERE m.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        Some(r) => {
            let name = get_text(&r, MARK_NCOLS)?;
            mark_from_row(&r, 0, name)
        }
        None => Ok(None),
    }
}

async fn pending_mark_id(c: &mut sqlx::AnyConnection, class: &str, id_no: &str) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT id FROM worklist_marks WHERE class = $1 AND id_no = $2 AND state = 'pending'")
        .bind(class.to_string())
        .bind(id_no.to_string())
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| get_i64(&r, 0)).transpose()
}

/// Settles the pending marks against the findings of `run` (called by `reconcile` inside its
/// transaction, after the run's findings are in): a mark whose class and person the run still finds is
/// reopened, the others are confirmed. Returns (confirmed, reopened).
pub(crate) async fn resolve_marks(tx: &mut Tx<'_>, run: i64) -> Result<(i64, i64)> {
    sqlx::query(&format!(
        "UPDATE worklist_marks SET state = CASE WHEN EXISTS (SELECT 1 FROM reconcile_findings f WHERE f.run_id = {run} \
           AND f.class = worklist_marks.class AND f.id_no = worklist_marks.id_no) THEN 'reopened' ELSE 'confirmed' END, \
         resolved_run = {run}, resolved_at = $1 WHERE state = 'pending' AND marked_run < {run}"
    ))
    .bind(now_text())
    .execute(&mut **tx)
    .await?;
    let rows =
        sqlx::query(&format!("SELECT state, CAST(COUNT(*) AS BIGINT) FROM worklist_marks WHERE resolved_run = {run} GROUP BY state"))
            .fetch_all(&mut **tx)
            .await?;
    let (mut confirmed, mut reopened) = (0, 0);
    for r in &rows {
        match get_text(r, 0)?.as_str() {
            "confirmed" => confirmed = get_i64(r, 1)?,
            "reopened" => reopened = get_i64(r, 1)?,
            _ => {}
        }
    }
    tracing::info!(run, confirmed, reopened, "worklist marks resolved");
    Ok((confirmed, reopened))
}

impl Store {
    /// Marks a finding of the latest run done (已处理) on behalf of `actor`, with an optional note, and
    /// writes the audit log. Marking a class and person that already has a pending mark returns that
    /// mark unchanged. The next reconciliation run confirms or reopens it.
    pub async fn mark_finding_done(&self, finding_id: i64, actor: &str, note: Option<&str>) -> std::result::Result<Mark, MarkError> {
        let mut tx = self.begin_write().await?;
        // A mark is kept in the finding's unit (its village, or the county for 村不详), where its scope is checked.
        let row = sqlx::query(
            "SELECT run_id, class, id_no, COALESCE(village_code, unit_code), household_no FROM reconcile_findings WHERE id = $1",
        )
        .bind(finding_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(MarkError::UnknownFinding(finding_id))?;
        let (run, class, id_no) = (get_i64(&row, 0)?, get_text(&row, 1)?, get_text(&row, 2)?);
        let (village_code, household_no) = (get_opt_text(&row, 3)?, get_opt_text(&row, 4)?);
        let latest = sqlx::query("SELECT MAX(id) FROM reconcile_runs WHERE finished_at IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?
            .try_get::<Option<i64>, _>(0)?;
        if latest != Some(run) {
            return Err(MarkError::NotLatestRun { finding_id, run, latest });
        }
        if let Some(id) = pending_mark_id(&mut tx, &class, &id_no).await? {
            let m = mark_in(&mut tx, id).await?;
            tx.rollback().await?;
            return m.ok_or(MarkError::UnknownMark(id));
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
        let inserted = sqlx::query(
            "INSERT INTO worklist_marks (finding_id, class, id_no, village_code, household_no, marked_run, marked_by, marked_at, note, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending') RETURNING id",
        )
        .bind(finding_id)
        .bind(class.clone())
        .bind(id_no.clone())
        .bind(village_code)
        .bind(household_no)
        .bind(run)
        .bind(actor.to_string())
        .bind(now_text())
        .bind(note.clone())
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(r) => get_i64(&r, 0)?,
            // PostgreSQL: another session marked the same class and person in between; theirs stands.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                let mut c = self.pool().acquire().await?;
                let id = pending_mark_id(&mut c, &class, &id_no).await?.ok_or(MarkError::UnknownFinding(finding_id))?;
                return mark_in(&mut c, id).await?.ok_or(MarkError::UnknownMark(id));
            }
            Err(e) => return Err(e.into()),
        };
        let after = format!("{{\"state\":\"pending\",\"finding_id\":{finding_id},\"run\":{run},\"class\":{class:?},\"note\":{note:?}}}");
        crate::service::audit_change(&mut tx, actor, "worklist.mark", &format!("worklist_mark/{id}"), None, Some(&after)).await?;
        let m = mark_in(&mut tx, id).await?.ok_or(MarkError::UnknownMark(id))?;
        tx.commit().await?;
        Ok(m)
    }

    /// Takes back a pending mark (it stays, as `undone`), with an audit record.
    pub async fn undo_mark(&self, mark_id: i64, actor: &str) -> std::result::Result<Mark, MarkError> {
        let mut tx = self.begin_write().await?;
        let n =
            sqlx::query("UPDATE worklist_marks SET state = 'undone', undone_by = $1, undone_at = $2 WHERE id = $3 AND state = 'pending'")
                .bind(actor.to_string())
                .bind(now_text())
                .bind(mark_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            let m = mark_in(&mut tx, mark_id).await?;
            tx.rollback().await?;
            return Err(match m {
                Some(m) => MarkError::NotPending { id: mark_id, state: m.state },
                None => MarkError::UnknownMark(mark_id),
            });
        }
        crate::service::audit_change(
            &mut tx,
            actor,
            "worklist.undo",
            &format!("worklist_mark/{mark_id}"),
            Some("{\"state\":\"pending\"}"),
            Some("{\"state\":\"undone\"}"),
        )
        .await?;
        let m = mark_in(&mut tx, mark_id).await?.ok_or(MarkError::UnknownMark(mark_id))?;
        tx.commit().await?;
        Ok(m)
    }

    pub async fn mark(&self, mark_id: i64) -> Result<Option<Mark>> {
        let mut c = self.pool().acquire().await?;
        mark_in(&mut c, mark_id).await
    }

    /// The findings of a run (all villages, or those under a region code prefix) with their marks, ordered
    /// like [`Store::findings`]: by village, class, ID number.
    pub async fn findings_with_marks(&self, run_id: i64, region_prefix: Option<&str>) -> Result<Vec<WorklistItem>> {
        let prefix = format!("{}%", region_prefix.unwrap_or(""));
        let r_cols = MARK_COLS.replace("m.", "r.");
        let sql = format!(
            "SELECT f.id, f.class, f.id_no, COALESCE(p.name, ''), f.village_code, f.household_no, f.detail, f.is_new, {MARK_COLS}, {r_cols} \
             FROM reconcile_findings f LEFT JOIN persons p ON p.id_no = f.id_no \
             LEFT JOIN worklist_marks m ON m.finding_id = f.id AND m.state <> 'undone' \
             LEFT JOIN worklist_marks r ON r.resolved_run = f.run_id AND r.class = f.class AND r.id_no = f.id_no AND r.state = 'reopened' \
             WHERE f.run_id = $1 AND COALESCE(f.unit_code, '') LIKE $2 ORDER BY f.village_code, f.class, f.id_no, f.id"
        );
        let rows = sqlx::query(&sql).bind(run_id).bind(prefix).fetch_all(self.pool()).await?;
        let mut out: Vec<WorklistItem> = Vec::with_capacity(rows.len());
        for r in &rows {
            let finding_id = get_i64(r, 0)?;
            let name = get_text(r, 3)?;
            let mark = mark_from_row(r, 8, name.clone())?;
            let reopened = mark_from_row(r, 8 + MARK_NCOLS, name.clone())?;
            // Joins cannot multiply a finding (one live mark per finding, one reopened mark per class,
            // person and run), but should they, the first row stands.
            if out.last().is_some_and(|l| l.finding_id == finding_id) {
                continue;
            }
            let finding = Finding {
                class: get_text(r, 1)?,
                id_no: get_text(r, 2)?,
                name,
                village_code: get_opt_text(r, 4)?,
                household_no: get_opt_text(r, 5)?,
                detail: get_opt_text(r, 6)?,
                is_new: get_i64(r, 7)? == 1,
            };
            out.push(WorklistItem { finding_id, finding, mark, reopened });
        }
        Ok(out)
    }

    /// Marks under a region code prefix (all when `None`), optionally in one state; by village, newest first.
    pub async fn marks(&self, region_prefix: Option<&str>, state: Option<MarkState>) -> Result<Vec<Mark>> {
        let mut sql = format!(
            "SELECT {MARK_COLS}, COALESCE(p.name, '') FROM worklist_marks m LEFT JOIN persons p ON p.id_no = m.id_no \
             WHERE COALESCE(m.village_code, '') LIKE $1"
        );
        if state.is_some() {
            sql.push_str(" AND m.state = $2");
        }
        sql.push_str(" ORDER BY m.village_code, m.id DESC");
        let mut q = sqlx::query(&sql).bind(format!("{}%", region_prefix.unwrap_or("")));
        if let Some(s) = state {
            q = q.bind(s.as_str().to_string());
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let name = get_text(r, MARK_NCOLS)?;
            if let Some(m) = mark_from_row(r, 0, name)? {
                out.push(m);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_half_away_and_refuse_a_zero_denominator() {
        assert_eq!(bp(1, 3), Some(3333));
        assert_eq!(bp(2, 3), Some(6667));
        assert_eq!(bp(1, 20_000), Some(1)); // 0.5 bp rounds up
        assert_eq!(bp(-1, 20_000), Some(-1));
        assert_eq!(bp(5, 0), None);
        assert_eq!(avg(7, 2), Some(4));
        assert_eq!(avg(i64::MAX, 1), Some(i64::MAX));
        assert_eq!(bp(i64::MAX, 1), None, "overflow is not a ratio");
    }

    #[test]
    fn buckets_follow_the_bounds() {
        assert_eq!(
            bucket_case("x"),
            "CASE WHEN x <= 0 THEN 0 WHEN x <= 50000 THEN 1 WHEN x <= 100000 THEN 2 WHEN x <= 200000 THEN 3 \
             WHEN x <= 500000 THEN 4 WHEN x <= 1000000 THEN 5 ELSE 6 END"
        );
        assert_eq!(POOR_BITS, 3);
    }

    #[test]
    fn a_date_outside_the_year_moves_into_it() {
        let d = |s: &str| Date::parse(s).unwrap();
        assert_eq!(date_in_year(2018, d("2018-06-30")), Some(d("2018-06-30")));
        assert_eq!(date_in_year(2018, d("2020-03-01")), Some(d("2018-12-31")));
        assert_eq!(date_in_year(2018, d("2017-03-01")), Some(d("2018-01-01")));
    }
}
