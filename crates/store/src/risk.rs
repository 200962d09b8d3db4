//! Early warning of illness-caused (re)poverty (R-RISK-1): the warning lines per region and year, and
//! the personal payments of a region's people over a window. The rule itself is `core::risk`.

use std::collections::HashMap;

use baozhang_core::risk::{Payment, WarningLine};
use baozhang_core::Date;

use crate::{date_num, get_i64, get_opt_text, get_text, now_text, num_date, prefix_end, Result, Store};

/// A stored warning line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRow {
    pub region_code: String,
    pub year: i64,
    pub income_fen: i64,
    pub share_bp: i64,
    pub source: String,
    pub set_by: String,
    pub set_at: String,
}

impl LineRow {
    pub fn line(&self) -> WarningLine {
        WarningLine::from_income(self.income_fen, self.share_bp)
    }
}

/// A person of the region with their payments in the window.
#[derive(Clone, Debug)]
pub struct PersonPayments {
    pub id_no: String,
    pub name: String,
    pub village_code: String,
    pub household_no: Option<String>,
    pub payments: Vec<Payment>,
}

fn line_row(r: &sqlx::any::AnyRow) -> Result<LineRow> {
    Ok(LineRow {
        region_code: get_text(r, 0)?,
        year: get_i64(r, 1)?,
        income_fen: get_i64(r, 2)?,
        share_bp: get_i64(r, 3)?,
        source: get_text(r, 4)?,
        set_by: get_text(r, 5)?,
        set_at: get_text(r, 6)?,
    })
}

/// The line in force for `code` among a year's lines (in the order set): the longest region prefix of
/// `code`, and of that region the latest.
pub fn best_line<'a>(lines: &'a [LineRow], code: &str) -> Option<&'a LineRow> {
    let mut best: Option<&LineRow> = None;
    for l in lines.iter().filter(|l| code.starts_with(&l.region_code)) {
        if best.is_none_or(|b| l.region_code.len() >= b.region_code.len()) {
            best = Some(l);
        }
    }
    best
}

impl Store {
    /// Records a warning line (a new row; the latest counts).
    pub async fn set_warning_line(
        &self,
        region_code: &str,
        year: i64,
        income_fen: i64,
        share_bp: i64,
        source: &str,
        by: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO warning_lines (region_code, year, income_fen, share_bp, source, set_by, set_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(region_code.to_string())
        .bind(year)
        .bind(income_fen)
        .bind(share_bp)
        .bind(source.to_string())
        .bind(by.to_string())
        .bind(now_text())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The line in force for a region (or any region under it, `code`) and year: the latest line set for
    /// the longest prefix of `code`.
    pub async fn warning_line(&self, code: &str, year: i64) -> Result<Option<LineRow>> {
        Ok(best_line(&self.warning_lines_of_year(year).await?, code).cloned())
    }

    /// Every line set for a year, in the order they were set.
    pub async fn warning_lines_of_year(&self, year: i64) -> Result<Vec<LineRow>> {
        let rows = sqlx::query(
            "SELECT region_code, year, income_fen, share_bp, source, set_by, set_at FROM warning_lines WHERE year = $1 ORDER BY id",
        )
        .bind(year)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(line_row).collect()
    }

    /// Every line set, newest first (the page's history).
    pub async fn warning_lines(&self) -> Result<Vec<LineRow>> {
        let rows = sqlx::query(
            "SELECT region_code, year, income_fen, share_bp, source, set_by, set_at FROM warning_lines ORDER BY id DESC LIMIT 200",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(line_row).collect()
    }

    /// The people of the villages under `region` with a settlement dated in `(from, to]`, with those
    /// settlements' personal payments (cancellations negative), in village, household, ID order.
    pub async fn payments_in(&self, region: &str, from_exclusive: Date, to: Date) -> Result<Vec<PersonPayments>> {
        let rows = sqlx::query(
            "SELECT s.id_no, s.village_code, s.setl_date, s.psn_part_amt, p.name, p.household_no FROM ledger_settlements s \
             LEFT JOIN persons p ON p.id_no = s.id_no \
             WHERE s.village_code >= $1 AND s.village_code < $2 AND s.setl_date > $3 AND s.setl_date <= $4 \
             ORDER BY s.village_code, p.household_no, s.id_no, s.setl_date, s.seq",
        )
        .bind(region.to_string())
        .bind(prefix_end(region))
        .bind(date_num(from_exclusive))
        .bind(date_num(to))
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<PersonPayments> = Vec::new();
        // A person settled under two villages (moved within the window) is one person, listed where first seen.
        let mut at: HashMap<String, usize> = HashMap::new();
        for r in &rows {
            let id_no = get_text(r, 0)?;
            let Some(date) = num_date(get_i64(r, 2)?) else { continue };
            let pay = Payment { date, psn_part_fen: get_i64(r, 3)? };
            match at.get(&id_no) {
                Some(&i) => out[i].payments.push(pay),
                None => {
                    at.insert(id_no.clone(), out.len());
                    out.push(PersonPayments {
                        id_no,
                        village_code: get_opt_text(r, 1)?.unwrap_or_default(),
                        name: get_opt_text(r, 4)?.unwrap_or_default(),
                        household_no: get_opt_text(r, 5)?,
                        payments: vec![pay],
                    });
                }
            }
        }
        Ok(out)
    }

    /// Members (on the roster, living or not) of the households of the villages under `region`.
    pub async fn household_sizes(&self, region: &str) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT household_no, COUNT(*) FROM persons WHERE village_code >= $1 AND village_code < $2 AND household_no IS NOT NULL GROUP BY household_no",
        )
        .bind(region.to_string())
        .bind(prefix_end(region))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok((get_text(r, 0)?, get_i64(r, 1)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(region: &str, income: i64) -> LineRow {
        LineRow {
            region_code: region.into(),
            year: 2018,
            income_fen: income,
            share_bp: 5_000,
            source: String::new(),
            set_by: String::new(),
            set_at: String::new(),
        }
    }

    #[test]
    fn the_most_specific_and_latest_line_wins() {
        let lines = [l("620422", 100), l("620422100", 200), l("620422", 300)];
        assert_eq!(best_line(&lines, "620422100001").map(|x| x.income_fen), Some(200), "the township's over the county's");
        assert_eq!(best_line(&lines, "620422101001").map(|x| x.income_fen), Some(300), "the county's latest");
        assert_eq!(best_line(&lines, "620421100001"), None, "another county");
        assert_eq!(best_line(&lines, "620422").map(|x| x.income_fen), Some(300));
    }
}
