//! Weighing a new policy (what OpenFisca calls a reform): the same claims settled under an old and a new
//! policy, and what changes — per layer and fund, per identity, per township, the poor inpatients' actual
//! reimbursement ratio, the persons most affected (`baozhang policy compare`, docs/SETTLEMENT.md).
//!
//! Each side settles every person-year on its own, in date order from fresh accumulators, as
//! `baozhang settle` and `engine::resettle_year` do; a claim a side refuses is recorded with its reason and
//! leaves that side's accumulators as they were. The tables compare the claims **both** sides settled, so
//! every change is a change of the same bills; what one side refused is counted and listed per side.
//!
//! Claims in ([`ClaimSet`], read from a settle CSV by [`read_claims_csv`] or loaded from the ledger by
//! [`load_year`]), a view out ([`Comparison`], built by the pure [`compare`]). [`load_year`] and
//! [`name_affected`] are the only I/O here, shared by `policy compare --year` and the workbench's policy page.
//! Money stays integer fen, ratios are basis points computed with integer arithmetic. The view keeps ID
//! numbers and names as they are; its text and sheets mask them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use baozhang_core::claim::{Claim, MedType};
use baozhang_core::engine::{settle_in_place, within_bounds, Accumulators, Settlement, MAX_ANNUAL_FEN};
use baozhang_core::identity::{IdentitySet, ALL_IDENTITIES, POOR};
use baozhang_core::policy::{Fund, Policy, ALL_FUNDS};
use baozhang_core::Fen;

use crate::claims::{ClaimReader, ClaimRow, ReadError, RowError};
use crate::settle_run::PolicyChoice;
use crate::table::{Sheet, TableError};
use crate::worklist::{mask_id, mask_name};
use baozhang_store::resettle;
use baozhang_store::{Store, StoreError};

/// The most claims one comparison holds in memory (both sides' results are kept per person-year only, but
/// the claims themselves are sorted into person-years first). A county's year is far below it.
pub const MAX_CLAIMS: usize = 2_000_000;
/// The most persons `--top` may list.
pub const MAX_TOP: usize = 1_000;
/// The township of every claim of a file without a region column.
pub const ALL_TOWNSHIPS: &str = "全部";
/// The township of a ledger claim without a village code.
pub const UNKNOWN_TOWNSHIP: &str = "未知乡镇";
/// Columns of a claims file that may carry the claim's place, most precise first: a village code gives its
/// township (first 9 digits), a county code stands for itself.
pub const REGION_COLUMNS: [&str; 6] = ["village_code", "insuplc_admdvs", "region_code", "admdvs", "参保地区划", "区划代码"];

/// One claim to settle under both policies.
#[derive(Clone, Debug)]
pub struct CompareClaim {
    /// Where a person finds the claim: "第 12 行（C1）" in a file, the settlement id in the ledger.
    pub label: String,
    /// The person: the file's `psn_no`, or the ID number in the ledger.
    pub person: String,
    /// Township code (9 digits), a coarser region code, or [`ALL_TOWNSHIPS`] / [`UNKNOWN_TOWNSHIP`].
    pub township: String,
    pub claim: Claim,
    /// The identities the person holds on the claim date.
    pub identities: IdentitySet,
}

/// The claims of a comparison and what is known around them.
#[derive(Clone, Debug, Default)]
pub struct ClaimSet {
    /// Where they come from, for people ("文件 claims.csv", "数据库 2019 年度有效结算").
    pub source: String,
    pub claims: Vec<CompareClaim>,
    /// Township names by code (the registry's; empty for a file, whose codes are shown as they are).
    pub township_names: HashMap<String, String>,
    /// What could not be read as a claim at all (a person-year whose stored data is incomplete): reported
    /// with the comparison, never dropped silently.
    pub unreadable: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Old,
    New,
}

impl Side {
    pub fn name_zh(self) -> &'static str {
        match self {
            Side::Old => "原政策",
            Side::New => "新政策",
        }
    }
}

/// An amount under the old and the new policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    pub old_fen: i64,
    pub new_fen: i64,
}

impl Pair {
    pub fn change_fen(self) -> i64 {
        self.new_fen - self.old_fen
    }
    fn add(&mut self, old_fen: i64, new_fen: i64) {
        self.old_fen += old_fen;
        self.new_fen += new_fen;
    }
}

/// A claim one side did not settle: which, the field named and why (Chinese, as `baozhang settle` says it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub label: String,
    pub field: String,
    pub reason: String,
}

/// One side's own run: its policy, what it settled and refused (all claims, not only the compared ones).
#[derive(Clone, Debug, Default)]
pub struct SideRun {
    /// "name（id）" of each policy that settled a claim (one, unless chosen by region and date).
    pub policies: Vec<String>,
    pub versions: Vec<String>,
    pub settled: u64,
    pub refused: Vec<Refusal>,
}

/// A layer's payments, matched across the policies by layer id (0 on the side without the layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRow {
    pub id: String,
    /// The layer's name in the old policy, if it has the layer.
    pub old_name: Option<String>,
    pub new_name: Option<String>,
    pub old_fund: Option<Fund>,
    pub new_fund: Option<Fund>,
    pub amount: Pair,
}

impl LayerRow {
    pub fn name(&self) -> String {
        match (&self.old_name, &self.new_name) {
            (Some(o), Some(n)) if o != n => format!("{o} → {n}"),
            (Some(o), _) => o.clone(),
            (None, Some(n)) => format!("{n}（仅新政策）"),
            (None, None) => self.id.clone(),
        }
    }
    pub fn fund_zh(&self) -> String {
        let f = |x: Option<Fund>| x.map_or("—", |f| f.name_zh());
        if self.old_name.is_some() && self.new_name.is_some() && self.old_fund != self.new_fund {
            format!("{} → {}", f(self.old_fund), f(self.new_fund))
        } else {
            f(self.new_fund.or(self.old_fund)).to_string()
        }
    }
}

/// The claims of a group (an identity, a township): their cost, fund payments and personal part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRow {
    pub code: String,
    pub name: String,
    pub claims: u64,
    pub persons: usize,
    pub medfee_fen: i64,
    pub fund_pay: Pair,
    pub psn: Pair,
}

/// Totals of the compared claims.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub claims: u64,
    pub persons: usize,
    pub medfee_fen: i64,
    /// By `Fund::index()`.
    pub funds: [Pair; 6],
    /// Every fund except the hospital's share (`fund_pay_sumamt`).
    pub fund_pay: Pair,
    pub psn: Pair,
}

/// 实际报销比例 of the poor inpatients: fund payments ÷ total cost of the inpatient claims of persons
/// holding registered_poor or exited_poor on the claim date, in basis points (1 bp = 0.01 %).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoorRatio {
    pub claims: u64,
    pub medfee_fen: i64,
    pub fund_pay: Pair,
    /// `None` when there is no cost to divide by.
    pub old_bp: Option<i64>,
    pub new_bp: Option<i64>,
}

impl PoorRatio {
    /// In basis points: new − old, as the two shown figures differ.
    pub fn change_bp(&self) -> Option<i64> {
        Some(self.new_bp? - self.old_bp?)
    }
}

/// A person-year and how its personal part changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Affected {
    /// As in [`CompareClaim::person`] — unmasked; the text and sheets mask it.
    pub person: String,
    /// The registry's name, filled in by the caller where it has one (unmasked).
    pub name: Option<String>,
    pub year: u16,
    pub township: String,
    /// Every identity held on any of the compared claims.
    pub identities: IdentitySet,
    pub claims: u64,
    pub medfee_fen: i64,
    pub psn: Pair,
}

/// The comparison as a view: every table of the report.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub source: String,
    /// Claims read (both sides tried each).
    pub claims_read: usize,
    pub unreadable: Vec<String>,
    pub old: SideRun,
    pub new: SideRun,
    /// Claims both sides settled: what every table below covers.
    pub total: Totals,
    pub layers: Vec<LayerRow>,
    /// Per identity (in `ALL_IDENTITIES` order), then ordinary residents (code ""): only groups with claims.
    pub identities: Vec<GroupRow>,
    pub townships: Vec<GroupRow>,
    pub poor: PoorRatio,
    /// The person-years whose personal part changes most (both directions), largest change first.
    pub affected: Vec<Affected>,
    pub top: usize,
}

/// `num / den` in basis points, rounded half away from zero, in integers (`None` when `den` is 0).
pub fn ratio_bp(num_fen: i64, den_fen: i64) -> Option<i64> {
    if den_fen == 0 {
        return None;
    }
    let (n, d) = (i128::from(num_fen) * 10_000, i128::from(den_fen));
    let q = (2 * n.abs() + d.abs()) / (2 * d.abs());
    let q = if (n < 0) != (d < 0) { -q } else { q };
    Some(q as i64)
}

/// Basis points as a percentage with two decimals: 8_537 → "85.37%".
pub fn percent(bp: i64) -> String {
    let sign = if bp < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}%", bp.abs() / 100, bp.abs() % 100)
}

/// A change in basis points as percentage points: "+1.25 个百分点".
pub fn points(bp: i64) -> String {
    let sign = match bp.signum() {
        1 => "+",
        -1 => "-",
        _ => "",
    };
    format!("{sign}{}.{:02} 个百分点", bp.abs() / 100, bp.abs() % 100)
}

/// Yuan with two decimals from fen, for cells ("-12.30").
fn yuan(f: i64) -> String {
    Fen(f).to_string()
}

/// A change for people: "+12.30" / "-4.00" / "0.00".
fn signed(f: i64) -> String {
    if f > 0 {
        format!("+{}", Fen(f).grouped())
    } else {
        Fen(f).grouped()
    }
}

// ───────────────────────────── reading a claims file ─────────────────────────────

#[derive(Debug, thiserror::Error)]
pub enum CompareReadError {
    #[error("{0}")]
    Header(#[from] ReadError),
    #[error("{0}")]
    Row(RowError),
    #[error("理赔超过 {max} 条，无法一次比较；请按年度或地区分开比较")]
    TooMany { max: usize },
}

/// The township of a region code: a village's or township's first 9 digits, a coarser code as it is.
fn township_of(code: &str) -> String {
    if code.len() >= 9 {
        code[..9].to_string()
    } else {
        code.to_string()
    }
}

/// Reads the settle CSV (the reader of `baozhang settle`, identities from the file). The township is the
/// first of [`REGION_COLUMNS`] the file has, else [`ALL_TOWNSHIPS`]. A bad row, a repeated claim id or more
/// than `max_claims` claims end the reading with the line and field named.
pub fn read_claims_csv<R: Read>(input: R, max_claims: usize) -> Result<ClaimSet, CompareReadError> {
    let mut reader = ClaimReader::new(input)?;
    let region_col = REGION_COLUMNS.iter().find_map(|name| {
        reader
            .header()
            .iter()
            .position(|h| std::str::from_utf8(h).map(|s| s.trim().trim_start_matches('\u{feff}')) == Ok(*name))
            .map(|pos| (pos, *name))
    });
    let mut set = ClaimSet::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut row = ClaimRow::default();
    while reader.next_row(&mut row).map_err(CompareReadError::Row)? {
        if set.claims.len() >= max_claims {
            return Err(CompareReadError::TooMany { max: max_claims });
        }
        if !seen.insert(row.claim_id.clone()) {
            return Err(CompareReadError::Row(RowError {
                line: row.line,
                field: "claim_id".into(),
                reason: format!("结算单号“{}”在文件中重复，不能重复结算", row.claim_id),
            }));
        }
        let township = match region_col {
            None => ALL_TOWNSHIPS.to_string(),
            Some((pos, name)) => {
                let raw = reader.raw_record().get(pos).unwrap_or(b"");
                let code = std::str::from_utf8(raw).unwrap_or("").trim();
                if code.is_empty() {
                    UNKNOWN_TOWNSHIP.to_string()
                } else if code.len() > 12 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CompareReadError::Row(RowError {
                        line: row.line,
                        field: name.into(),
                        reason: format!("区划代码“{code}”应为至多 12 位数字"),
                    }));
                } else {
                    township_of(code)
                }
            }
        };
        set.claims.push(CompareClaim {
            label: format!("第 {} 行（{}）", row.line, row.claim_id),
            person: row.psn_no.clone(),
            township,
            claim: row.claim.take().expect("a parsed row has its claim"),
            identities: row.identities,
        });
    }
    Ok(set)
}

// ───────────────────────────── comparing ─────────────────────────────

/// One side settling one person-year: its accumulators and the policy the person-year is settled under.
struct SideState<'a> {
    choice: PolicyChoice<'a>,
    run: SideRun,
    seen: HashSet<u64>,
}

impl<'a> SideState<'a> {
    fn new(choice: PolicyChoice<'a>) -> Self {
        SideState { choice, run: SideRun::default(), seen: HashSet::new() }
    }

    /// Settles a person-year's claims (in order) and returns each claim's settlement and policy, or `None`
    /// for a claim refused (recorded).
    fn settle_year(&mut self, claims: &[&CompareClaim]) -> Vec<Option<(Settlement, &'a Policy)>> {
        let mut acc = Accumulators::default();
        let mut year_policy: Option<&'a Policy> = None;
        let mut s = Settlement::blank();
        let mut out = Vec::with_capacity(claims.len());
        for c in claims {
            let refuse = |field: &str, reason: String| Refusal { label: c.label.clone(), field: field.into(), reason };
            let policy = match self.choice.pick(c.claim.setl_date) {
                Ok(p) => p,
                Err(reason) => {
                    self.run.refused.push(refuse("setl_date", reason));
                    out.push(None);
                    continue;
                }
            };
            // A field the policy does not settle (a med type it has no benefits for, an income year it lacks).
            if let Err(n) = policy.accepts(&c.claim) {
                self.run.refused.push(refuse(n.field, n.reason));
                out.push(None);
                continue;
            }
            if let Some(had) = year_policy.filter(|had| !std::ptr::eq(*had, policy)) {
                self.run.refused.push(refuse(
                    "setl_date",
                    format!(
                        "该人员本年度已按政策 {} 结算，本次结算日期适用政策 {}；同一人员同一年度只能按一个政策结算",
                        had.meta.id, policy.meta.id
                    ),
                ));
                out.push(None);
                continue;
            }
            if !within_bounds(&c.claim, &acc) {
                self.run.refused.push(refuse("medfee_sumamt", format!("本年度累计将超过系统上限（{} 元）", Fen(MAX_ANNUAL_FEN).grouped())));
                out.push(None);
                continue;
            }
            year_policy = Some(policy);
            if self.seen.insert(policy.version_id) {
                self.run.policies.push(format!("{}（{}）", policy.meta.name, policy.meta.id));
                self.run.versions.push(policy.version.clone());
            }
            settle_in_place(policy, &c.claim, c.identities, &mut acc, &mut s);
            self.run.settled += 1;
            out.push(Some((s, policy)));
        }
        out
    }
}

/// Layer rows by id, old policy's layers first, in the order first seen.
#[derive(Default)]
struct Layers {
    rows: Vec<LayerRow>,
    index: HashMap<String, usize>,
    seeded: HashSet<(bool, u64)>,
}

impl Layers {
    fn seed(&mut self, p: &Policy, side: Side) {
        if !self.seeded.insert((side == Side::New, p.version_id)) {
            return;
        }
        for l in &p.layers {
            let i = *self.index.entry(l.id.clone()).or_insert_with(|| {
                self.rows.push(LayerRow {
                    id: l.id.clone(),
                    old_name: None,
                    new_name: None,
                    old_fund: None,
                    new_fund: None,
                    amount: Pair::default(),
                });
                self.rows.len() - 1
            });
            let r = &mut self.rows[i];
            match side {
                Side::Old if r.old_name.is_none() => (r.old_name, r.old_fund) = (Some(l.name.clone()), l.fund),
                Side::New if r.new_name.is_none() => (r.new_name, r.new_fund) = (Some(l.name.clone()), l.fund),
                _ => {}
            }
        }
    }
    fn add(&mut self, p: &Policy, s: &Settlement, side: Side) {
        self.seed(p, side);
        for (l, o) in p.layers.iter().zip(s.layers()) {
            let r = &mut self.rows[self.index[&l.id]];
            match side {
                Side::Old => r.amount.old_fen += o.amount_fen,
                Side::New => r.amount.new_fen += o.amount_fen,
            }
        }
    }
}

/// A group being summed, with the persons seen in it.
#[derive(Default)]
struct Group<'c> {
    row: GroupRow,
    persons: HashSet<&'c str>,
}

impl<'c> Group<'c> {
    fn add(&mut self, person: &'c str, medfee_fen: i64, o: &Settlement, n: &Settlement) {
        self.row.claims += 1;
        self.persons.insert(person);
        self.row.medfee_fen += medfee_fen;
        self.row.fund_pay.add(o.fund_pay_sumamt.0, n.fund_pay_sumamt.0);
        self.row.psn.add(o.psn_part_amt.0, n.psn_part_amt.0);
    }
    fn finish(mut self) -> GroupRow {
        self.row.persons = self.persons.len();
        self.row
    }
}

/// Settles `set` under `old` and `new` and builds the view; `top` persons most affected (at most [`MAX_TOP`]).
pub fn compare(old: PolicyChoice<'_>, new: PolicyChoice<'_>, set: &ClaimSet, top: usize) -> Comparison {
    let top = top.min(MAX_TOP);
    let mut sides = [SideState::new(old), SideState::new(new)];
    let mut layers = Layers::default();
    // A single policy's layers are known before any claim: listed even if nothing is settled under both.
    for (choice, side) in [(old, Side::Old), (new, Side::New)] {
        if let PolicyChoice::One(p) = choice {
            layers.seed(p, side);
        }
    }
    // Person-years, each in date order (the file's or ledger's order among claims of one day).
    let mut order: Vec<usize> = (0..set.claims.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&set.claims[a], &set.claims[b]);
        (x.person.as_str(), x.claim.year(), x.claim.setl_date, a).cmp(&(y.person.as_str(), y.claim.year(), y.claim.setl_date, b))
    });
    let mut total = Totals::default();
    let mut persons: HashSet<&str> = HashSet::new();
    let mut by_identity: BTreeMap<usize, Group> = BTreeMap::new();
    let mut by_town: BTreeMap<&str, Group> = BTreeMap::new();
    let mut poor = PoorRatio::default();
    let mut affected: Vec<Affected> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let first = &set.claims[order[start]];
        let mut end = start + 1;
        while end < order.len() && {
            let c = &set.claims[order[end]];
            c.person == first.person && c.claim.year() == first.claim.year()
        } {
            end += 1;
        }
        let year: Vec<&CompareClaim> = order[start..end].iter().map(|&i| &set.claims[i]).collect();
        start = end;
        let olds = sides[0].settle_year(&year);
        let news = sides[1].settle_year(&year);
        let mut person =
            Affected { person: first.person.clone(), year: first.claim.year(), township: first.township.clone(), ..Affected::default() };
        for ((&c, o), n) in year.iter().zip(olds).zip(news) {
            let (Some((o, op)), Some((n, np))) = (o, n) else { continue };
            let fee = c.claim.bill.total().0;
            total.claims += 1;
            persons.insert(&c.person);
            total.medfee_fen += fee;
            for f in ALL_FUNDS {
                total.funds[f.index()].add(o.funds_fen[f.index()], n.funds_fen[f.index()]);
            }
            total.fund_pay.add(o.fund_pay_sumamt.0, n.fund_pay_sumamt.0);
            total.psn.add(o.psn_part_amt.0, n.psn_part_amt.0);
            layers.add(op, &o, Side::Old);
            layers.add(np, &n, Side::New);
            if c.identities.is_empty() {
                by_identity.entry(usize::MAX).or_default().add(&c.person, fee, &o, &n);
            }
            for (k, id) in ALL_IDENTITIES.iter().enumerate() {
                if c.identities.contains(*id) {
                    by_identity.entry(k).or_default().add(&c.person, fee, &o, &n);
                }
            }
            by_town.entry(c.township.as_str()).or_default().add(&c.person, fee, &o, &n);
            if c.claim.med_type == MedType::Inpatient && c.identities.intersects(POOR) {
                poor.claims += 1;
                poor.medfee_fen += fee;
                poor.fund_pay.add(o.fund_pay_sumamt.0, n.fund_pay_sumamt.0);
            }
            person.claims += 1;
            person.medfee_fen += fee;
            for id in c.identities.iter() {
                person.identities = person.identities.with(id);
            }
            person.psn.add(o.psn_part_amt.0, n.psn_part_amt.0);
        }
        if person.psn.change_fen() != 0 {
            affected.push(person);
        }
    }
    total.persons = persons.len();
    poor.old_bp = ratio_bp(poor.fund_pay.old_fen, poor.medfee_fen);
    poor.new_bp = ratio_bp(poor.fund_pay.new_fen, poor.medfee_fen);
    affected.sort_by(|a, b| {
        b.psn.change_fen().abs().cmp(&a.psn.change_fen().abs()).then_with(|| (&a.person, a.year).cmp(&(&b.person, b.year)))
    });
    affected.truncate(top);
    let identities = by_identity
        .into_iter()
        .map(|(k, g)| {
            let mut r = g.finish();
            match ALL_IDENTITIES.get(k) {
                Some(id) => (r.code, r.name) = (id.id().to_string(), id.name_zh().to_string()),
                None => (r.code, r.name) = (String::new(), IdentitySet::EMPTY.names_zh()),
            }
            r
        })
        .collect();
    let townships = by_town
        .into_iter()
        .map(|(code, g)| {
            let mut r = g.finish();
            r.name = set.township_names.get(code).cloned().unwrap_or_else(|| code.to_string());
            r.code = code.to_string();
            r
        })
        .collect();
    let [o, n] = sides;
    Comparison {
        source: set.source.clone(),
        claims_read: set.claims.len(),
        unreadable: set.unreadable.clone(),
        old: o.run,
        new: n.run,
        total,
        layers: layers.rows,
        identities,
        townships,
        poor,
        affected,
        top,
    }
}

// ───────────────────────────── the view for people ─────────────────────────────

impl Comparison {
    fn side(&self, s: Side) -> &SideRun {
        match s {
            Side::Old => &self.old,
            Side::New => &self.new,
        }
    }

    /// A township's name for a code (the code itself where the registry has none).
    fn town_name(&self, code: &str) -> String {
        self.townships.iter().find(|t| t.code == code).map_or_else(|| code.to_string(), |t| t.name.clone())
    }

    /// The report as lines for the terminal; `refusals` per side at most (the rest counted).
    pub fn summary_lines(&self, refusals: usize) -> Vec<String> {
        let mut o = Vec::new();
        let pol = |s: &SideRun| if s.policies.is_empty() { "（未结算任何理赔）".to_string() } else { s.policies.join("、") };
        o.push(format!("比较：原政策 {} → 新政策 {}", pol(&self.old), pol(&self.new)));
        o.push(format!("理赔来源：{}，读入 {} 笔", self.source, self.claims_read));
        o.push(format!(
            "原政策结算 {} 笔、拒绝 {} 笔；新政策结算 {} 笔、拒绝 {} 笔；两项政策都结算 {} 笔（{} 人），以下各表只含这些理赔",
            self.old.settled,
            self.old.refused.len(),
            self.new.settled,
            self.new.refused.len(),
            self.total.claims,
            self.total.persons
        ));
        if !self.unreadable.is_empty() {
            o.push(format!("无法读取、未参与比较：{} 项", self.unreadable.len()));
        }
        let line = |label: &str, p: Pair| {
            format!("  {label}：原 {} 元，新 {} 元，变化 {} 元", Fen(p.old_fen).grouped(), Fen(p.new_fen).grouped(), signed(p.change_fen()))
        };
        o.push(format!("医疗费总额 {} 元", Fen(self.total.medfee_fen).grouped()));
        o.push("基金：".into());
        for f in ALL_FUNDS {
            let p = self.total.funds[f.index()];
            if p != Pair::default() {
                o.push(line(f.name_zh(), p));
            }
        }
        o.push(line("基金支付合计", self.total.fund_pay));
        o.push(line("个人负担", self.total.psn));
        o.push("报销层：".into());
        for l in &self.layers {
            o.push(line(&format!("{}（{}）", l.name(), l.id), l.amount));
        }
        let p = &self.poor;
        match (p.old_bp, p.new_bp, p.change_bp()) {
            (Some(a), Some(b), Some(c)) => o.push(format!(
                "贫困人口住院实际报销比例：原 {}，新 {}，变化 {}（住院 {} 笔，医疗费 {} 元）",
                percent(a),
                percent(b),
                points(c),
                p.claims,
                Fen(p.medfee_fen).grouped()
            )),
            _ => o.push("贫困人口住院实际报销比例：无贫困人口住院理赔".into()),
        }
        if self.affected.is_empty() {
            o.push("没有人员的个人负担发生变化".into());
        } else {
            o.push(format!("个人负担变化最大的人员（前 {}）：", self.affected.len()));
            for (i, a) in self.affected.iter().enumerate() {
                o.push(format!(
                    "  {}. {}{} {} 年度 {}：原 {} 元，新 {} 元，变化 {} 元",
                    i + 1,
                    mask_id(&a.person),
                    a.name.as_deref().map(|n| format!(" {}", mask_name(n))).unwrap_or_default(),
                    a.year,
                    self.town_name(&a.township),
                    Fen(a.psn.old_fen).grouped(),
                    Fen(a.psn.new_fen).grouped(),
                    signed(a.psn.change_fen())
                ));
            }
        }
        for s in [Side::Old, Side::New] {
            let r = &self.side(s).refused;
            for x in r.iter().take(refusals) {
                o.push(format!("{}拒绝：{}，字段 {}：{}", s.name_zh(), x.label, x.field, x.reason));
            }
            if r.len() > refusals {
                o.push(format!("……{}另拒绝 {} 笔（全部列在 Excel 的“未结算”表中）", s.name_zh(), r.len() - refusals));
            }
        }
        for u in self.unreadable.iter().take(refusals) {
            o.push(format!("无法读取：{u}"));
        }
        o
    }

    /// The sheets: 概况, 分层, 身份, 乡镇, 受影响人员, 未结算. Money as yuan with 2 decimals from fen; ID
    /// numbers and names masked.
    pub fn sheets(&self) -> Vec<Sheet> {
        let pair_cells = |p: Pair| [yuan(p.old_fen), yuan(p.new_fen), yuan(p.change_fen())];
        let pair_head = |what: &str| [format!("{what}（原政策，元）"), format!("{what}（新政策，元）"), format!("{what}变化（元）")];

        // 概况
        let mut summary: Vec<Vec<String>> = Vec::new();
        let mut row3 = |k: &str, a: String, b: String, c: String| summary.push(vec![k.to_string(), a, b, c]);
        row3("政策", self.old.policies.join("、"), self.new.policies.join("、"), String::new());
        row3("版本", self.old.versions.join("、"), self.new.versions.join("、"), String::new());
        row3("理赔来源", self.source.clone(), String::new(), String::new());
        row3("读入理赔（笔）", self.claims_read.to_string(), self.claims_read.to_string(), String::new());
        row3("已结算（笔）", self.old.settled.to_string(), self.new.settled.to_string(), String::new());
        row3("拒绝结算（笔）", self.old.refused.len().to_string(), self.new.refused.len().to_string(), String::new());
        row3("无法读取（项）", self.unreadable.len().to_string(), self.unreadable.len().to_string(), String::new());
        row3("两项政策都结算（笔）", self.total.claims.to_string(), self.total.claims.to_string(), String::new());
        row3("涉及人数", self.total.persons.to_string(), self.total.persons.to_string(), String::new());
        row3("医疗费总额（元）", yuan(self.total.medfee_fen), yuan(self.total.medfee_fen), yuan(0));
        let [a, b, c] = pair_cells(self.total.fund_pay);
        row3("基金支付合计（元）", a, b, c);
        let [a, b, c] = pair_cells(self.total.psn);
        row3("个人负担（元）", a, b, c);
        let p = &self.poor;
        row3("贫困人口住院理赔（笔）", p.claims.to_string(), p.claims.to_string(), String::new());
        row3("贫困人口住院医疗费（元）", yuan(p.medfee_fen), yuan(p.medfee_fen), yuan(0));
        let [a, b, c] = pair_cells(p.fund_pay);
        row3("贫困人口住院基金支付（元）", a, b, c);
        let na = || "—".to_string();
        row3(
            "贫困人口住院实际报销比例",
            p.old_bp.map_or_else(na, percent),
            p.new_bp.map_or_else(na, percent),
            p.change_bp().map_or_else(na, points),
        );
        let summary_sheet = ("概况".to_string(), vec!["项目".into(), "原政策".into(), "新政策".into(), "变化".into()], summary);

        // 分层: layers, then funds, then totals.
        let mut lrows: Vec<Vec<String>> = self
            .layers
            .iter()
            .map(|l| {
                let mut r = vec!["报销层".to_string(), l.id.clone(), l.name(), l.fund_zh()];
                r.extend(pair_cells(l.amount));
                r
            })
            .collect();
        for f in ALL_FUNDS {
            let mut r = vec!["基金".to_string(), f.code().to_string(), f.name_zh().to_string(), f.name_zh().to_string()];
            r.extend(pair_cells(self.total.funds[f.index()]));
            lrows.push(r);
        }
        for (k, name, p) in [("FUND", "基金支付合计", self.total.fund_pay), ("PSN", "个人负担", self.total.psn)] {
            let mut r = vec!["合计".to_string(), k.to_string(), name.to_string(), String::new()];
            r.extend(pair_cells(p));
            lrows.push(r);
        }
        let mut lhead = vec!["类别".to_string(), "标识".into(), "名称".into(), "基金".into()];
        lhead.extend(["原政策（元）".to_string(), "新政策（元）".into(), "变化（元）".into()]);

        // 身份 and 乡镇
        let group_head = |first: [&str; 2]| {
            let mut h: Vec<String> = first.iter().map(|s| s.to_string()).collect();
            h.extend(["理赔笔数".to_string(), "人数".into(), "医疗费总额（元）".into()]);
            h.extend(pair_head("基金支付"));
            h.extend(pair_head("个人负担"));
            h
        };
        let group_rows = |rows: &[GroupRow]| -> Vec<Vec<String>> {
            rows.iter()
                .map(|g| {
                    let mut r = vec![g.code.clone(), g.name.clone(), g.claims.to_string(), g.persons.to_string(), yuan(g.medfee_fen)];
                    r.extend(pair_cells(g.fund_pay));
                    r.extend(pair_cells(g.psn));
                    r
                })
                .collect()
        };

        // 受影响人员
        let mut ahead = vec![
            "序号".to_string(),
            "证件号码（人员编号）".into(),
            "姓名".into(),
            "年度".into(),
            "乡镇".into(),
            "身份".into(),
            "理赔笔数".into(),
            "医疗费总额（元）".into(),
        ];
        ahead.extend(pair_head("个人负担"));
        ahead.push("方向".into());
        let arows = self
            .affected
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut r = vec![
                    (i + 1).to_string(),
                    mask_id(&a.person),
                    a.name.as_deref().map(mask_name).unwrap_or_default(),
                    a.year.to_string(),
                    self.town_name(&a.township),
                    a.identities.names_zh(),
                    a.claims.to_string(),
                    yuan(a.medfee_fen),
                ];
                r.extend(pair_cells(a.psn));
                r.push(if a.psn.change_fen() > 0 { "个人负担增加" } else { "个人负担减少" }.to_string());
                r
            })
            .collect();

        // 未结算
        let mut refused: Vec<Vec<String>> = Vec::new();
        for s in [Side::Old, Side::New] {
            for x in &self.side(s).refused {
                refused.push(vec![s.name_zh().to_string(), x.label.clone(), x.field.clone(), x.reason.clone()]);
            }
        }
        for u in &self.unreadable {
            refused.push(vec!["两项政策".to_string(), String::new(), String::new(), format!("无法读取：{u}")]);
        }

        vec![
            summary_sheet,
            ("分层".to_string(), lhead, lrows),
            ("身份".to_string(), group_head(["身份标识", "身份"]), group_rows(&self.identities)),
            ("乡镇".to_string(), group_head(["乡镇代码", "乡镇"]), group_rows(&self.townships)),
            ("受影响人员".to_string(), ahead, arows),
            ("未结算".to_string(), vec!["政策".into(), "理赔".into(), "字段".into(), "原因".into()], refused),
        ]
    }
}

/// Writes the comparison's sheets to an XLSX file.
pub fn write_xlsx(path: &Path, c: &Comparison) -> Result<(), TableError> {
    crate::table::write_xlsx(path, &c.sheets())
}

// ───────────────────────────── a year of the ledger ─────────────────────────────

/// Why a year of the ledger could not be loaded for a comparison.
#[derive(Debug, thiserror::Error)]
pub enum LoadYearError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{year} 年度有效结算超过 {max} 笔，无法一次比较")]
    TooMany { year: u16, max: usize },
}

/// The live settlements of `year` as claims: their stored claim data, each with the identities the registry
/// holds for the person on its date (as re-settlement loads them), and the townships' names. Shared by
/// `baozhang policy compare --year` and the policy page of the workbench.
///
/// `region` is a division-code prefix ("" for every region): the person-years with a live settlement whose
/// village (else insured area) lies in it, as a re-settlement scopes them. A person-year with a settlement
/// outside `region` as well is not compared (its other settlements belong to another region's user) and is
/// listed among the unreadable, by person number. More than `max_claims` claims end the loading.
pub async fn load_year(store: &Store, year: u16, region: &str, max_claims: usize) -> Result<ClaimSet, LoadYearError> {
    let psns = resettle::person_years_in_scope(store, year, region, None, None).await?;
    let source = if region.is_empty() {
        format!("数据库 {year} 年度有效结算")
    } else {
        format!("数据库 {year} 年度有效结算（区划 {region}）")
    };
    let mut set = ClaimSet { source, ..ClaimSet::default() };
    set.township_names = store.regions().await?.into_iter().map(|r| (r.code, r.name)).collect::<HashMap<_, _>>();
    for chunk in psns.chunks(resettle::STEP) {
        // Read-only: the transaction only gives the three reads one snapshot, and is rolled back.
        let mut tx = store.pool().begin().await.map_err(StoreError::from)?;
        let mut loaded = resettle::load_person_years(&mut tx, chunk, year).await?;
        let id_nos: Vec<String> = loaded.values().filter_map(|l| l.as_ref().ok()?.first().map(|c| c.id_no.clone())).collect();
        let periods = resettle::identity_periods_of(&mut tx, &id_nos).await?;
        tx.rollback().await.map_err(StoreError::from)?;
        for psn in chunk {
            match loaded.remove(psn) {
                None => {}
                Some(Err(why)) => set.unreadable.push(format!("人员编号 {psn}：{why}")),
                Some(Ok(claims)) => {
                    let place = |c: &resettle::YearClaim| c.village_code.clone().unwrap_or_else(|| c.insuplc_admdvs.clone());
                    if claims.iter().any(|c| !place(c).starts_with(region)) {
                        set.unreadable.push(format!("人员编号 {psn}：本年度有结算不在区划 {region} 内，未参与比较"));
                        continue;
                    }
                    for c in claims {
                        if set.claims.len() >= max_claims {
                            return Err(LoadYearError::TooMany { year, max: max_claims });
                        }
                        let ids = periods.get(&c.id_no).map_or(Default::default(), |p| resettle::identities_on(p, c.setl_date));
                        let township = match &c.village_code {
                            Some(v) if v.len() >= 9 => v[..9].to_string(),
                            _ => UNKNOWN_TOWNSHIP.to_string(),
                        };
                        set.claims.push(CompareClaim { label: c.setl_id, person: c.id_no, township, claim: c.claim, identities: ids });
                    }
                }
            }
        }
    }
    Ok(set)
}

/// The registry's names of the persons listed as most affected (at most [`MAX_TOP`] look-ups).
pub async fn name_affected(store: &Store, c: &mut Comparison) -> Result<(), StoreError> {
    for p in &mut c.affected {
        p.name = store.person(&p.person).await?.map(|r| r.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use baozhang_core::reference::reference_source;

    const HEADER: &str = "claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,referral_ok,major_disease,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt";

    fn huining() -> Policy {
        baozhang_core::parse_policy(reference_source("gansu-huining-2018").unwrap()).unwrap()
    }

    /// The shipped Huining policy with the ordinary residents' critical-illness deductible changed.
    fn huining_critical_deductible(yuan: u32) -> Policy {
        let src = reference_source("gansu-huining-2018").unwrap();
        let old = "deductible = { value = 5000, mark = \"S\"";
        assert!(src.contains(old), "the shipped file still writes the deductible this way");
        let src = src.replace(old, &format!("deductible = {{ value = {yuan}, mark = \"S\""));
        let src = src.replace("id = \"gansu-huining-2018\"", "id = \"gansu-huining-2018-test\"");
        baozhang_core::parse_policy(&src).unwrap()
    }

    fn claims(rows: &str) -> ClaimSet {
        read_claims_csv(format!("{HEADER}\n{rows}").as_bytes(), MAX_CLAIMS).unwrap()
    }

    #[test]
    fn the_same_policy_on_both_sides_changes_nothing() {
        let p = huining();
        let set = claims("C1,P1,,2018-03-01,2,1,21,1,0,20000.00,0,0,0,20000.00\nC2,P2,registered_poor,2018-04-01,1,1,21,1,0,8000.00,500.00,0,0,7500.00\n");
        let c = compare(PolicyChoice::One(&p), PolicyChoice::One(&p), &set, 10);
        assert_eq!(c.total.claims, 2);
        assert!(c.total.fund_pay.old_fen > 0);
        assert_eq!(c.total.fund_pay.change_fen(), 0);
        assert!(c.layers.iter().all(|l| l.amount.change_fen() == 0));
        assert!(c.affected.is_empty());
        assert_eq!(c.poor.change_bp(), Some(0));
    }

    #[test]
    fn a_lower_critical_deductible_pays_more_to_ordinary_residents_only() {
        // Ordinary resident, level 2, 20,000 compliant: basic (20,000 − 500) × 70 % = 13,650; remainder
        // 6,350; critical (6,350 − 5,000) × 50 % = 675 under the old policy, (6,350 − 4,000) × 50 % = 1,175
        // under the new: +500 to the critical-illness fund, −500 to the person.
        let (old, new) = (huining(), huining_critical_deductible(4000));
        let set = claims(
            "C1,P1,,2018-03-01,2,1,21,1,0,20000.00,0,0,0,20000.00\n\
             C2,P2,registered_poor,2018-04-01,2,1,21,1,0,20000.00,0,0,0,20000.00\n",
        );
        let c = compare(PolicyChoice::One(&old), PolicyChoice::One(&new), &set, 10);
        assert_eq!(c.total.funds[Fund::CriticalIllness.index()].change_fen(), 50_000);
        assert_eq!(c.total.funds[Fund::Basic.index()].change_fen(), 0);
        assert_eq!(c.total.psn.change_fen(), -50_000);
        let critical = c.layers.iter().find(|l| l.id == "critical").unwrap();
        // With the poor claim's (20,000 × 80 % = 16,000 basic; (4,000 − 2,000) × 50 % = 1,000 critical) on both sides.
        assert_eq!((critical.amount.old_fen, critical.amount.new_fen), (67_500 + 100_000, 117_500 + 100_000));
        // The poor (critical deductible 2,000 for them) are untouched.
        assert_eq!(c.affected.len(), 1);
        assert_eq!((c.affected[0].person.as_str(), c.affected[0].psn.change_fen()), ("P1", -50_000));
        let poor = c.identities.iter().find(|g| g.code == "registered_poor").unwrap();
        assert_eq!(poor.psn.change_fen(), 0);
        let ordinary = c.identities.iter().find(|g| g.code.is_empty()).unwrap();
        assert_eq!((ordinary.claims, ordinary.psn.change_fen()), (1, -50_000));
        assert_eq!(c.townships.len(), 1);
        assert_eq!(c.townships[0].code, ALL_TOWNSHIPS);
        assert_eq!(c.poor.change_bp(), Some(0));
    }

    #[test]
    fn a_claim_one_side_refuses_is_listed_with_its_reason_and_left_out_of_the_tables() {
        let old = huining();
        let src =
            reference_source("gansu-huining-2018").unwrap().replace("effective_from = \"2018-01-01\"", "effective_from = \"2019-01-01\"");
        let new = baozhang_core::parse_policy(&src).unwrap();
        let set = claims("C1,P1,,2018-03-01,2,1,21,1,0,1000.00,0,0,0,1000.00\nC2,P1,,2019-03-01,2,1,21,1,0,1000.00,0,0,0,1000.00\n");
        let c = compare(PolicyChoice::One(&old), PolicyChoice::One(&new), &set, 10);
        assert_eq!((c.old.settled, c.new.settled, c.total.claims), (2, 1, 1));
        assert!(c.old.refused.is_empty());
        assert_eq!(c.new.refused.len(), 1);
        assert_eq!(c.new.refused[0].field, "setl_date");
        assert!(c.new.refused[0].label.contains("第 2 行（C1）"), "{:?}", c.new.refused);
        assert!(c.new.refused[0].reason.contains("有效期"), "{:?}", c.new.refused);
        let text = c.summary_lines(20).join("\n");
        assert!(text.contains("新政策拒绝：第 2 行（C1），字段 setl_date"), "{text}");
        let sheets = c.sheets();
        assert_eq!(sheets.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["概况", "分层", "身份", "乡镇", "受影响人员", "未结算"]);
        assert_eq!(sheets[5].2.len(), 1);
    }

    #[test]
    fn a_med_type_only_the_new_policy_settles_is_refused_by_the_old_with_the_field() {
        let old = huining();
        let src = reference_source("gansu-huining-2018").unwrap().replacen("year = 2018\n", "year = 2018\nmed_types = [21, 14, 11]\n", 1);
        let new = baozhang_core::parse_policy(&src).unwrap();
        let set = claims("C1,P1,,2018-03-01,1,1,11,1,0,100.00,0,0,0,100.00\nC2,P1,,2018-03-02,2,1,21,1,0,1000.00,0,0,0,1000.00\n");
        let c = compare(PolicyChoice::One(&old), PolicyChoice::One(&new), &set, 10);
        assert_eq!(c.old.refused.len(), 1, "{:?}", c.old.refused);
        assert_eq!((c.old.refused[0].label.as_str(), c.old.refused[0].field.as_str()), ("第 2 行（C1）", "med_type"));
        assert!(c.new.refused.is_empty(), "{:?}", c.new.refused);
        assert_eq!((c.old.settled, c.new.settled, c.total.claims), (1, 2, 1));
    }

    #[test]
    fn the_poor_inpatients_ratio_is_integer_basis_points() {
        assert_eq!(ratio_bp(85, 100), Some(8_500));
        assert_eq!(ratio_bp(1, 3), Some(3_333));
        assert_eq!(ratio_bp(2, 3), Some(6_667));
        assert_eq!(ratio_bp(1, 20_000), Some(1)); // 0.5 bp rounds away from zero
        assert_eq!(ratio_bp(-1, 20_000), Some(-1));
        assert_eq!(ratio_bp(5, 0), None);
        assert_eq!(percent(8_537), "85.37%");
        assert_eq!(percent(5), "0.05%");
        assert_eq!(points(125), "+1.25 个百分点");
        assert_eq!(points(-50), "-0.50 个百分点");
        // A poor inpatient under Huining: the 85 % floor top-up holds the compliant ratio.
        let p = huining();
        let set = claims("C1,P1,registered_poor,2018-03-01,2,1,21,1,0,10000.00,0,0,0,10000.00\n");
        let c = compare(PolicyChoice::One(&p), PolicyChoice::One(&p), &set, 10);
        assert_eq!(c.poor.claims, 1);
        assert_eq!(c.poor.old_bp, ratio_bp(c.poor.fund_pay.old_fen, 1_000_000));
        assert!(c.poor.old_bp.unwrap() >= 8_500, "{:?}", c.poor);
    }

    #[test]
    fn persons_are_ranked_by_the_size_of_their_change_both_ways_and_masked() {
        let (old, new) = (huining(), huining_critical_deductible(4000));
        // P1 pays 500 less under the new policy; P3 with a smaller claim pays 250 less; P2 is unchanged.
        let set = claims(
            "C1,110101199001011234,,2018-03-01,2,1,21,1,0,20000.00,0,0,0,20000.00\n\
             C2,P2,,2018-03-01,2,1,21,1,0,1000.00,0,0,0,1000.00\n\
             C3,P3,,2018-03-01,2,1,21,1,0,13833.34,0,0,0,13833.34\n",
        );
        let c = compare(PolicyChoice::One(&old), PolicyChoice::One(&new), &set, 10);
        let ranked: Vec<(&str, i64)> = c.affected.iter().map(|a| (a.person.as_str(), a.psn.change_fen())).collect();
        assert_eq!(ranked.len(), 2, "{ranked:?}");
        assert_eq!(ranked, [("110101199001011234", -50_000), ("P3", -25_000)]);
        let c1 = compare(PolicyChoice::One(&old), PolicyChoice::One(&new), &set, 1);
        assert_eq!(c1.affected.len(), 1);
        let sheets = c.sheets();
        assert_eq!(sheets[4].2[0][1], "110101********1234");
        assert!(!c.summary_lines(5).join("\n").contains("110101199001011234"));
    }

    #[test]
    fn a_region_column_gives_the_township_and_a_bad_code_is_named() {
        let h = format!("{HEADER},village_code\n");
        let set = read_claims_csv(format!("{h}C1,P1,,2018-03-01,2,1,21,1,0,100,0,0,0,100,620422100201\n").as_bytes(), 10).unwrap();
        assert_eq!(set.claims[0].township, "620422100");
        let e = read_claims_csv(format!("{h}C1,P1,,2018-03-01,2,1,21,1,0,100,0,0,0,100,abc\n").as_bytes(), 10).unwrap_err();
        assert!(e.to_string().contains("第 2 行，字段 village_code"), "{e}");
        let e = read_claims_csv(
            format!("{HEADER}\nC1,P1,,2018-03-01,2,1,21,1,0,100,0,0,0,100\nC1,P2,,2018-03-01,2,1,21,1,0,100,0,0,0,100\n").as_bytes(),
            10,
        )
        .unwrap_err();
        assert!(e.to_string().contains("第 3 行，字段 claim_id"), "{e}");
        let e = read_claims_csv(
            format!("{HEADER}\nC1,P1,,2018-03-01,2,1,21,1,0,100,0,0,0,100\nC2,P2,,2018-03-01,2,1,21,1,0,100,0,0,0,100\n").as_bytes(),
            1,
        )
        .unwrap_err();
        assert!(matches!(e, CompareReadError::TooMany { max: 1 }));
    }
}
