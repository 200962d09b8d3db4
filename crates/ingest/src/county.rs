//! A synthetic county (R-REG-*, R-ENR-*): residents in households over the county's villages, the
//! rosters officials exchange (docs/ROSTERS.md: `poverty.csv`, `enrolment.csv`, `dibao.csv`,
//! `extreme_poor.csv`, `death.csv`, `military.csv`), a year of hospital claims in the format of
//! `baozhang settle` (`claims.csv`), and `truth.json`: the discrepancies planted on purpose, by
//! reconciliation class, with the ID numbers of the people concerned, and the rows planted with
//! invalid data (file and row number), so reconciliation and import rejection can be tested against
//! a known answer.
//!
//! Deterministic: the same [`CountyParams`] give the same bytes. Memory is proportional to the
//! number of people; the files are streamed through buffered writers.
//!
//! How the data are meant to be read (what "correct" means here, so the planted classes are the only
//! discrepancies):
//! - poor = 贫困状态 未脱贫 or 已脱贫 on the poverty roster. Every poor person not planted is
//!   正常参保 in the county, flagged (建档立卡 / 已脱贫) and subsidised with the full individual premium
//!   by 医疗救助 (exited poor too — "四不摘"); so are the dibao and the extreme poor. Monitored
//!   (边缘户) and ordinary residents pay their own premium (资助金额 0).
//! - Deaths not planted happened before `year` (no enrolment record) or during `year` (record 停保);
//!   those people are not on the poverty roster. Planted dead died in `year − 1`.
//! - Soldiers not planted are serving with enrolment 停保 (or have been discharged before `year`).
//! - Some ordinary residents (never poor, monitored, dibao or extreme poor) have no enrolment record
//!   or are 未参保: not a discrepancy of any class.
//! - `insured_elsewhere` people are 正常参保 in another county, with no flags and no subsidy there;
//!   `dead_still_counted` people may be 停保 (poverty roster not cleaned). A reconciler should not
//!   also report them as not flagged / subsidy missing / not insured: each planted person belongs to
//!   exactly one class.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use baozhang_core::idcard::check_digit;
use baozhang_core::{Date, Fen, IdCardNo, Sex};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::synth::Rng;

/// A village the generator may put households in (12-digit statistical code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VillageRef {
    pub code: String,
    pub name: String,
    pub township_code: String,
    pub township_name: String,
}

#[derive(Clone, Debug)]
pub struct CountyParams {
    /// 6 digits (GB/T 2260), e.g. 620422 会宁县. Area code of every ID number generated.
    pub county_code: String,
    pub villages: Vec<VillageRef>,
    pub seed: u64,
    /// 1.0 = Huining's size (about 580,000 residents, 63,656 registered poor).
    pub scale: f64,
    /// The enrolment and claims year, e.g. 2018.
    pub year: u16,
}

/// The reconciliation classes of docs/ROSTERS.md, in its order.
pub const CLASSES: [&str; 12] = [
    "poor_not_insured",
    "new_poor_not_insured",
    "poor_not_flagged",
    "flagged_not_poor",
    "dead_still_counted",
    "military_still_counted",
    "insured_elsewhere",
    "duplicate_person",
    "marginal_not_insured",
    "marginal_not_flagged",
    "subsidy_missing",
    "subsidy_excess",
];

const C_POOR_NOT_INSURED: usize = 0;
const C_NEW_POOR: usize = 1;
const C_POOR_NOT_FLAGGED: usize = 2;
const C_FLAGGED_NOT_POOR: usize = 3;
const C_DEAD: usize = 4;
const C_MILITARY: usize = 5;
const C_ELSEWHERE: usize = 6;
const C_DUPLICATE: usize = 7;
const C_MARGINAL_NOT_INSURED: usize = 8;
const C_MARGINAL_NOT_FLAGGED: usize = 9;
const C_SUBSIDY_MISSING: usize = 10;
const C_SUBSIDY_EXCESS: usize = 11;

pub const POVERTY_HEADER: &str = "户编号,姓名,证件号码,性别,出生日期,与户主关系,行政区划代码,贫困状态,识别年度,脱贫年度,监测对象类型,纳入监测日期,致贫原因,残疾等级,变动日期\n";
pub const ENROLMENT_HEADER: &str = "人员编号,证件号码,姓名,参保年度,参保状态,参保地区划,人员类别,标识日期,个人缴费,资助金额,资助来源\n";
pub const CIVIL_HEADER: &str = "证件号码,姓名,行政区划代码,保障起始日期,保障终止日期\n";
pub const DEATH_HEADER: &str = "证件号码,姓名,死亡日期\n";
pub const MILITARY_HEADER: &str = "证件号码,姓名,入伍日期,退役日期\n";
pub const CLAIMS_HEADER: &str = "claim_id,psn_no,identities,setl_date,hosp_lv,in_county,med_type,referral_ok,major_disease,medfee_sumamt,fulamt_ownpay_amt,overlmt_selfpay,preselfpay_amt,inscp_scp_amt,dise_codg\n";

/// A row planted with invalid data, for testing import rejection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InvalidRow {
    pub file: String,
    /// 1-based; the header is row 1.
    pub row: u64,
    /// The column at fault (Chinese header).
    pub field: String,
    pub reason: String,
    /// The 证件号码 as written (possibly invalid).
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub name: String,
    /// Data rows (without the header), invalid rows included.
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GenerateSummary {
    pub residents: u64,
    pub households: u64,
    /// People on the poverty roster with 未脱贫 (dead-but-listed included).
    pub registered_poor: u64,
    /// 已脱贫.
    pub exited_poor: u64,
    /// Members of monitored households (监测对象类型 set).
    pub marginal: u64,
    /// Current (保障终止日期 empty).
    pub dibao: u64,
    pub extreme_poor: u64,
    pub deaths: u64,
    pub military: u64,
    pub claims: u64,
    pub inpatient_claims: u64,
    pub chronic_claims: u64,
    /// Per class id (docs/ROSTERS.md), number of people planted.
    pub planted: BTreeMap<String, u64>,
    pub invalid_rows: u64,
    pub files: Vec<FileSummary>,
}

/// The individual premium of resident insurance (城乡居民医保个人缴费标准, yuan per person-year).
pub fn individual_premium(year: u16) -> Fen {
    Fen::yuan(match year {
        ..=2015 => 120,
        2016 => 150,
        2017 => 180,
        2018 => 220,
        2019 => 250,
        2020 => 280,
        2021 => 320,
        2022 => 350,
        2023 => 380,
        _ => 400,
    })
}

/// A made-up village list for a county without division data: `townships` townships
/// (`{county}100`, `{county}101`, …) of `per_township` villages each (`{township}201`, …).
pub fn synthetic_villages(county_code: &str, townships: u32, per_township: u32) -> Vec<VillageRef> {
    let mut v = Vec::new();
    for t in 0..townships {
        let tcode = format!("{county_code}{:03}", 100 + t);
        let tname = format!("第{}镇", t + 1);
        for k in 0..per_township {
            v.push(VillageRef {
                code: format!("{tcode}{:03}", 201 + k),
                name: format!("{tname}第{}村", k + 1),
                township_code: tcode.clone(),
                township_name: tname.clone(),
            });
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Names

const SURNAMES: &[&str] = &[
    "王", "张", "李", "刘", "杨", "陈", "赵", "马", "魏", "牛", "郭", "周", "吴", "徐", "孙", "胡", "朱", "高", "何", "罗", "梁", "宋",
    "郑", "谢", "韩", "唐", "冯", "董", "程", "曹", "袁", "许", "曾", "彭", "吕", "苏", "卢", "蒋", "蔡", "贾", "丁", "薛", "叶", "阎",
    "余", "潘", "杜", "戴", "夏", "汪", "田", "任", "姜", "范", "方", "石", "姚", "谭", "邹", "金", "陆", "郝", "孔", "白", "崔", "康",
    "毛", "秦", "史", "顾", "侯", "邵", "孟", "万", "段", "钱", "汤", "尹", "常", "武", "乔", "贺", "文", "柴", "雷", "祁", "安", "党",
    "窦", "焦", "景", "慕", "岳", "包", "鲁", "严", "裴", "俞", "满", "车", "苟", "火", "豆", "把", "米", "强", "拓", "岳", "芦", "漆",
    "禄", "靳", "逯", "付", "柳", "童", "葛", "左", "温", "连", "冉", "来", "候", "路", "孛", "滕", "师", "权",
];
const GIVEN_MALE: &[&str] = &[
    "建", "国", "军", "平", "明", "华", "强", "伟", "文", "斌", "涛", "勇", "刚", "杰", "磊", "龙", "鹏", "辉", "海", "宏", "峰", "亮",
    "成", "福", "德", "贵", "生", "才", "忠", "义", "孝", "兴", "旺", "宝", "虎", "天", "祥", "荣", "发", "林", "武", "俊", "博", "浩",
    "宇", "轩", "泽", "晨", "阳", "飞", "东", "新", "民", "志", "永", "学", "富", "有", "山", "全", "喜", "贤", "仁", "顺", "江", "波",
    "立", "彪", "振", "昌", "元", "奎", "恒", "瑞", "鑫", "鸿", "毅", "睿", "锋", "栋", "继", "怀", "存", "录", "满", "仓", "银", "保",
    "来", "禄",
];
const GIVEN_FEMALE: &[&str] = &[
    "芳", "娟", "霞", "梅", "兰", "英", "玲", "燕", "丽", "萍", "琴", "花", "秀", "珍", "凤", "娥", "桂", "翠", "敏", "静", "婷", "雪",
    "慧", "艳", "莉", "娜", "云", "彩", "巧", "琳", "佳", "欣", "怡", "悦", "妍", "莲", "菊", "香", "玉", "荷", "洁", "晶", "倩", "蓉",
    "瑶", "璐", "蕾", "薇", "茹", "淑", "君", "妮", "媛", "叶", "芬", "霞", "颖", "萱", "琪", "瑾",
];
const GIVEN_NEUTRAL: &[&str] =
    &["小", "海", "红", "春", "晓", "金", "永", "明", "新", "文", "雨", "子", "思", "一", "亚", "彦", "丹", "青", "秋", "冬"];

const NONE16: u16 = u16::MAX;
const TAG_FEMALE: u16 = 0x4000;
const TAG_NEUTRAL: u16 = 0x8000;

fn given_str(g: u16) -> &'static str {
    match g & 0xC000 {
        0 => GIVEN_MALE[usize::from(g)],
        TAG_FEMALE => GIVEN_FEMALE[usize::from(g & 0x3FFF)],
        _ => GIVEN_NEUTRAL[usize::from(g & 0x3FFF)],
    }
}

fn draw_given_char(rng: &mut Rng, sex: Sex) -> u16 {
    if rng.chance(180) {
        return TAG_NEUTRAL | rng.below(GIVEN_NEUTRAL.len() as u64) as u16;
    }
    match sex {
        Sex::Male => rng.below(GIVEN_MALE.len() as u64) as u16,
        Sex::Female => TAG_FEMALE | rng.below(GIVEN_FEMALE.len() as u64) as u16,
    }
}

fn draw_given(rng: &mut Rng, sex: Sex) -> [u16; 2] {
    let a = draw_given_char(rng, sex);
    if rng.chance(720) {
        let mut b = draw_given_char(rng, sex);
        if b == a && rng.chance(500) {
            b = draw_given_char(rng, sex);
        }
        [a, b]
    } else {
        [a, NONE16]
    }
}

/// Skewed towards the common surnames at the front of the list.
fn draw_surname(rng: &mut Rng) -> u16 {
    let n = SURNAMES.len() as u64;
    rng.below(n).min(rng.below(n)) as u16
}

fn push_name(line: &mut Vec<u8>, name: [u16; 3]) {
    line.extend_from_slice(SURNAMES[usize::from(name[0])].as_bytes());
    for g in [name[1], name[2]] {
        if g != NONE16 {
            line.extend_from_slice(given_str(g).as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The population

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rel {
    Head,
    Spouse,
    Child,
    Parent,
    Grandchild,
    Sibling,
    Other,
}

impl Rel {
    fn zh(self) -> &'static str {
        match self {
            Rel::Head => "户主",
            Rel::Spouse => "配偶",
            Rel::Child => "子女",
            Rel::Parent => "父母",
            Rel::Grandchild => "孙子女",
            Rel::Sibling => "兄弟姐妹",
            Rel::Other => "其他",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    None,
    Registered,
    Exited,
    Cleared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mil {
    None,
    /// Serving, enrolment 停保 (correct).
    Serving,
    /// Discharged before the year.
    Retired,
    /// Serving and still 正常参保 (planted).
    ServingPlanted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeadKind {
    /// On the roster 未脱贫 and 正常参保.
    PoorInsured,
    /// On the roster 未脱贫, enrolment 停保.
    PoorStopped,
    /// Ordinary resident, 正常参保.
    OrdinaryInsured,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plant {
    None,
    PoorNotInsured { no_record: bool },
    NewPoor,
    PoorNotFlagged,
    FlaggedNotPoor,
    Dead(DeadKind),
    Military,
    Elsewhere(u8),
    Duplicate,
    MarginalNotInsured { no_record: bool },
    MarginalNotFlagged,
    SubsidyMissing,
    SubsidyExcess,
}

impl Plant {
    fn class(self) -> Option<usize> {
        Some(match self {
            Plant::None => return None,
            Plant::PoorNotInsured { .. } => C_POOR_NOT_INSURED,
            Plant::NewPoor => C_NEW_POOR,
            Plant::PoorNotFlagged => C_POOR_NOT_FLAGGED,
            Plant::FlaggedNotPoor => C_FLAGGED_NOT_POOR,
            Plant::Dead(_) => C_DEAD,
            Plant::Military => C_MILITARY,
            Plant::Elsewhere(_) => C_ELSEWHERE,
            Plant::Duplicate => C_DUPLICATE,
            Plant::MarginalNotInsured { .. } => C_MARGINAL_NOT_INSURED,
            Plant::MarginalNotFlagged => C_MARGINAL_NOT_FLAGGED,
            Plant::SubsidyMissing => C_SUBSIDY_MISSING,
            Plant::SubsidyExcess => C_SUBSIDY_EXCESS,
        })
    }
}

/// Where planted insured-elsewhere people are insured (neighbouring Gansu counties, Zhongwei).
const OTHER_COUNTIES: [&str; 8] = ["620421", "620423", "620402", "620403", "620102", "621121", "620521", "640502"];

struct Person {
    birth: Date,
    hh: u32,
    /// Surname index, two given-name characters (NONE16 = none).
    name: [u16; 3],
    sex: Sex,
    rel: Rel,
    /// 0 none, 1..=4 一级..四级.
    disab: u8,
    dibao: bool,
    extreme: bool,
    mil: Mil,
    /// Ordinary resident without insurance: 0 no, 1 no record, 2 未参保.
    uninsured: u8,
    plant: Plant,
    /// 0 = no enrolment record written (yet).
    psn: u32,
}

struct Household {
    village: u32,
    seq: u32,
    first: u32,
    len: u32,
    status: Status,
    ident_year: u16,
    exit_year: u16,
    /// 变动日期 of the household's rows (new and cleared households).
    change: Option<Date>,
    /// 0 none, 1 边缘易致贫户, 2 脱贫不稳定户, 3 突发严重困难户.
    monitor: u8,
    monitor_date: Date,
    /// 1 因病, 2 因残, 3 因学, 4 缺劳力, 5 缺资金, 6 其他 (0 none).
    cause: u8,
    late_new: bool,
    cleared_planted: bool,
}

struct Deceased {
    id: IdCardNo,
    name: [u16; 3],
    /// Died during the year: enrolment record 停保.
    stopped_record: bool,
    psn: u32,
}

#[derive(Clone, Copy)]
enum Who {
    Pop(u32),
    Dec(u32),
}

const CAUSES: [&str; 7] = ["", "因病", "因残", "因学", "缺劳力", "缺资金", "其他"];
const MONITORS: [&str; 4] = ["", "边缘易致贫户", "脱贫不稳定户", "突发严重困难户"];
const DISAB: [&str; 5] = ["", "一级", "二级", "三级", "四级"];

const F_REGISTERED: u8 = 1;
const F_EXITED: u8 = 2;
const F_MARGINAL: u8 = 4;
const F_DIBAO: u8 = 8;
const F_EXTREME: u8 = 16;
const FLAG_NAMES: [(u8, &str); 5] =
    [(F_REGISTERED, "建档立卡"), (F_EXITED, "已脱贫"), (F_MARGINAL, "边缘户"), (F_DIBAO, "低保"), (F_EXTREME, "特困供养")];

fn ymd(y: u16, m: u8, d: u8) -> Date {
    Date::new(y, m, d).expect("valid date")
}

fn rand_date(rng: &mut Rng, from: Date, to: Date) -> Date {
    let (a, b) = (from.to_days(), to.to_days());
    if b <= a {
        return from;
    }
    Date::from_days(a + rng.below((b - a + 1) as u64) as i32)
}

/// Stateless per-item randomness (so values derived at writing time don't depend on order).
fn mix(seed: u64, a: u64, salt: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn scaled(x: f64, scale: f64, min: usize) -> usize {
    ((x * scale).round() as usize).max(min)
}

/// Unique ID numbers: an order code per (birth date, sex), starting at a pseudo-random offset.
struct IdAlloc {
    area: String,
    seed: u64,
    used: FxHashMap<(i32, bool), u16>,
}

impl IdAlloc {
    fn next(&mut self, birth: Date, sex: Sex) -> IdCardNo {
        let key = (birth.to_days(), sex == Sex::Male);
        let k = self.used.entry(key).or_insert(0);
        let n = *k;
        *k += 1;
        assert!(n < 500, "more than 500 people of one sex born on {birth}");
        let start = (mix(self.seed, (key.0 as i64 * 2 + i64::from(key.1)) as u64, 7) % 500) as u16;
        let k500 = (start + n) % 500;
        IdCardNo::synthesize(&self.area, birth, k500 * 2 + u16::from(key.1), sex)
    }
}

struct Draft {
    rel: Rel,
    sex: Sex,
    age: i32,
    /// Takes the family surname (else a surname of their own).
    fam: bool,
}

fn draw_size(rng: &mut Rng) -> u32 {
    let r = rng.below(1000);
    match r {
        0..=99 => 1,
        100..=269 => 2,
        270..=479 => 3,
        480..=719 => 4,
        720..=879 => 5,
        880..=959 => 6,
        _ => 7,
    }
}

fn child_sex(rng: &mut Rng) -> Sex {
    if rng.chance(520) {
        Sex::Male
    } else {
        Sex::Female
    }
}

/// Members of one household: relation, sex, age at the end of the year.
fn draft_household(rng: &mut Rng, out: &mut Vec<Draft>) {
    out.clear();
    let size = draw_size(rng);
    if size == 1 {
        let (age, sex) = if rng.chance(650) {
            let a = 60 + rng.below(21) + rng.below(16);
            (a as i32, if rng.chance(560) { Sex::Female } else { Sex::Male })
        } else {
            let a = 22 + rng.below(38);
            (a as i32, if rng.chance(750) { Sex::Male } else { Sex::Female })
        };
        out.push(Draft { rel: Rel::Head, sex, age, fam: true });
        return;
    }
    let r = rng.below(1000);
    let h: i32 = match r {
        0..=179 => 25 + rng.below(10),
        180..=419 => 35 + rng.below(10),
        420..=679 => 45 + rng.below(10),
        680..=859 => 55 + rng.below(10),
        _ => 65 + rng.below(16),
    } as i32;
    let head_sex = if rng.chance(880) { Sex::Male } else { Sex::Female };
    let spouse = rng.chance(if size == 2 { 850 } else { 920 });
    out.push(Draft { rel: Rel::Head, sex: head_sex, age: h, fam: !(head_sex == Sex::Female && spouse) });
    let mut mother = h;
    if spouse {
        let a = (h + rng.below(9) as i32 - 5).clamp(20, 95);
        let a = if head_sex == Sex::Male { a.min(h + 3) } else { a.max(h - 2) };
        out.push(Draft { rel: Rel::Spouse, sex: head_sex.opposite(), age: a, fam: head_sex == Sex::Female });
        if head_sex == Sex::Male {
            mother = a;
        }
    }
    let mut left = size as usize - out.len();
    let mut kids = Vec::new();
    if h < 55 {
        let mut next = mother - (21 + rng.below(10) as i32);
        while left > 0 && kids.len() < 4 && next >= 0 {
            kids.push(next);
            out.push(Draft { rel: Rel::Child, sex: child_sex(rng), age: next, fam: true });
            left -= 1;
            next -= 1 + rng.below(5) as i32;
        }
        let mut parents = 0;
        while left > 0 {
            let pa = h + 22 + rng.below(10) as i32;
            if parents < 2 && pa <= 95 {
                let sex = if parents == 0 {
                    if rng.chance(400) {
                        Sex::Male
                    } else {
                        Sex::Female
                    }
                } else {
                    out.last().map(|d| d.sex.opposite()).unwrap_or(Sex::Female)
                };
                out.push(Draft { rel: Rel::Parent, sex, age: pa, fam: sex == Sex::Male });
                parents += 1;
            } else {
                out.push(Draft { rel: Rel::Sibling, sex: child_sex(rng), age: (h - 8 + rng.below(16) as i32).clamp(16, 95), fam: true });
            }
            left -= 1;
        }
    } else {
        let n = left.min(1 + rng.below(2) as usize);
        let mut next = mother - (22 + rng.below(10) as i32);
        let mut son = None;
        for _ in 0..n {
            let age = next.max(14);
            let sex = child_sex(rng);
            if sex == Sex::Male && age >= 22 && son.is_none() {
                son = Some(age);
            }
            kids.push(age);
            out.push(Draft { rel: Rel::Child, sex, age, fam: true });
            left -= 1;
            next -= 2 + rng.below(5) as i32;
        }
        if let (Some(sa), true) = (son, left > 0) {
            out.push(Draft { rel: Rel::Other, sex: Sex::Female, age: (sa - 3 + rng.below(5) as i32).max(20), fam: false });
            left -= 1;
        }
        let oldest = kids.iter().copied().max().unwrap_or(0);
        let mut g = oldest - (21 + rng.below(8) as i32);
        while left > 0 {
            if g >= 0 {
                out.push(Draft { rel: Rel::Grandchild, sex: child_sex(rng), age: g, fam: true });
                g -= 1 + rng.below(4) as i32;
            } else {
                out.push(Draft { rel: Rel::Other, sex: child_sex(rng), age: 10 + rng.below(50) as i32, fam: false });
            }
            left -= 1;
        }
    }
    for d in out.iter_mut() {
        d.age = d.age.clamp(0, 95);
    }
}

fn birth_for_age(rng: &mut Rng, year: u16, age: i32) -> Date {
    let y = year - age as u16;
    let len = if baozhang_core::date::is_leap(y) { 366 } else { 365 };
    ymd(y, 1, 1).add_days(rng.below(len) as i32)
}

struct VillageInfo {
    weight: u64,
    poverty: u64,
    dominant: [u16; 4],
    households: u32,
}

struct Gen<'a> {
    p: &'a CountyParams,
    year: u16,
    rng: Rng,
    alloc: IdAlloc,
    villages: Vec<VillageInfo>,
    hh: Vec<Household>,
    ps: Vec<Person>,
    ids: Vec<IdCardNo>,
    /// (person, 保障起始日期, 保障终止日期), in person order.
    dibao: Vec<(u32, Date, Option<Date>)>,
    extreme: Vec<(u32, Date, Option<Date>)>,
    military: Vec<(u32, Date, Option<Date>)>,
    deceased: Vec<Deceased>,
    deaths: Vec<(Who, Date)>,
    /// (person, second household) for duplicate_person.
    dup_rows: Vec<(u32, u32)>,
    planted: Vec<Vec<IdCardNo>>,
    invalid: Vec<InvalidRow>,
    next_psn: u32,
    premium: Fen,
}

/// Generates the county into `out_dir` (created if missing). `progress` gets a stage name and a
/// count (people, rows) as work advances. Stages, in order: `population`, `planted`, `poverty.csv`,
/// `enrolment.csv` (also every 100,000 rows), `dibao.csv`, `extreme_poor.csv`, `death.csv`,
/// `military.csv`, `claims` (claims drawn), `claims.csv` (every 100,000 rows and at the end),
/// `done` (count = residents). Errors: invalid parameters (`InvalidInput`) and I/O.
pub fn generate(params: &CountyParams, out_dir: &Path, progress: &mut dyn FnMut(&str, u64)) -> io::Result<GenerateSummary> {
    validate(params)?;
    std::fs::create_dir_all(out_dir)?;
    let mut g = Gen {
        p: params,
        year: params.year,
        rng: Rng::new(params.seed),
        alloc: IdAlloc { area: params.county_code.clone(), seed: params.seed, used: FxHashMap::default() },
        villages: Vec::new(),
        hh: Vec::new(),
        ps: Vec::new(),
        ids: Vec::new(),
        dibao: Vec::new(),
        extreme: Vec::new(),
        military: Vec::new(),
        deceased: Vec::new(),
        deaths: Vec::new(),
        dup_rows: Vec::new(),
        planted: vec![Vec::new(); CLASSES.len()],
        invalid: Vec::new(),
        next_psn: 0,
        premium: individual_premium(params.year),
    };
    g.build_population();
    progress("population", g.ps.len() as u64);
    g.assign_poverty();
    g.assign_civil_affairs();
    g.assign_military_and_uninsured();
    g.plant();
    g.deaths_register();
    progress("planted", g.planted.iter().map(|v| v.len() as u64).sum());

    let mut summary = g.summary();
    let mut files = Vec::new();
    files.push(g.write_poverty(out_dir)?);
    progress("poverty.csv", files.last().map_or(0, |f: &FileSummary| f.rows));
    files.push(g.write_enrolment(out_dir, progress)?);
    progress("enrolment.csv", files.last().map_or(0, |f| f.rows));
    files.push(g.write_civil(out_dir, true)?);
    progress("dibao.csv", files.last().map_or(0, |f| f.rows));
    files.push(g.write_civil(out_dir, false)?);
    progress("extreme_poor.csv", files.last().map_or(0, |f| f.rows));
    files.push(g.write_death(out_dir)?);
    progress("death.csv", files.last().map_or(0, |f| f.rows));
    files.push(g.write_military(out_dir)?);
    progress("military.csv", files.last().map_or(0, |f| f.rows));
    let (claims_file, inpatient, chronic) = g.write_claims(out_dir, progress)?;
    files.push(claims_file);
    progress("claims.csv", inpatient + chronic);
    summary.claims = inpatient + chronic;
    summary.inpatient_claims = inpatient;
    summary.chronic_claims = chronic;
    summary.invalid_rows = g.invalid.len() as u64;
    summary.files = files;
    let truth = g.write_truth(out_dir, &summary)?;
    summary.files.push(truth);
    progress("done", summary.residents);
    Ok(summary)
}

fn validate(p: &CountyParams) -> io::Result<()> {
    let bad = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(&p.county_code, 6) {
        return bad(format!("县级区划代码“{}”应为6位数字", p.county_code));
    }
    if p.villages.is_empty() {
        return bad("没有可用的村（行政区划）".into());
    }
    for v in &p.villages {
        if !digits(&v.code, 12) || !v.code.starts_with(&p.county_code) {
            return bad(format!("村代码“{}”应为以{}开头的12位数字", v.code, p.county_code));
        }
        if v.code.ends_with("999999") {
            return bad(format!("村代码“{}”保留给无效数据测试", v.code));
        }
    }
    if !(p.scale > 0.0 && p.scale <= 20.0) {
        return bad(format!("规模 {} 应在 (0, 20] 之内", p.scale));
    }
    if !(2014..=2090).contains(&p.year) {
        return bad(format!("年度 {} 无效（应为2014–2090：建档立卡始于2014年）", p.year));
    }
    Ok(())
}

impl Gen<'_> {
    fn year_start(&self) -> Date {
        ymd(self.year, 1, 1)
    }
    fn year_end(&self) -> Date {
        ymd(self.year, 12, 31)
    }
    fn id(&self, i: u32) -> IdCardNo {
        self.ids[i as usize]
    }
    fn hh_of(&self, i: u32) -> &Household {
        &self.hh[self.ps[i as usize].hh as usize]
    }
    fn is_poor(&self, i: u32) -> bool {
        matches!(self.hh_of(i).status, Status::Registered | Status::Exited)
    }
    fn newborn(&self, i: u32) -> bool {
        self.ps[i as usize].birth.year() == self.year
    }
    fn age(&self, i: u32) -> i32 {
        i32::from(self.year) - i32::from(self.ps[i as usize].birth.year())
    }

    // -- population ------------------------------------------------------------------------------

    fn build_population(&mut self) {
        let target = (580_000.0 * self.p.scale).round().max(1.0) as u64;
        let mut township: BTreeMap<String, u64> = BTreeMap::new();
        let params = self.p;
        for v in &params.villages {
            let weight = 40 + self.rng.below(260);
            let tf = *township.entry(v.township_code.clone()).or_insert_with(|| 3 + self.rng.below(6));
            let poverty = tf * (3 + self.rng.below(8));
            let mut dominant = [0u16; 4];
            for d in &mut dominant {
                *d = self.rng.below(60) as u16;
            }
            self.villages.push(VillageInfo { weight, poverty, dominant, households: 0 });
        }
        let total_w: u64 = self.villages.iter().map(|v| v.weight).sum();
        let mut drafts = Vec::with_capacity(8);
        self.ps.reserve(target as usize + target as usize / 50 + 16);
        for v in 0..self.villages.len() {
            let quota = (target * self.villages[v].weight / total_w).max(1);
            let start = self.ps.len() as u64;
            while (self.ps.len() as u64) - start < quota {
                draft_household(&mut self.rng, &mut drafts);
                let hi = self.hh.len() as u32;
                let fam =
                    if self.rng.chance(500) { self.villages[v].dominant[self.rng.below(4) as usize] } else { draw_surname(&mut self.rng) };
                let first = self.ps.len() as u32;
                for d in &drafts {
                    let sur = if d.fam { fam } else { draw_surname(&mut self.rng) };
                    let given = draw_given(&mut self.rng, d.sex);
                    let birth = birth_for_age(&mut self.rng, self.year, d.age);
                    self.ps.push(Person {
                        birth,
                        hh: hi,
                        name: [sur, given[0], given[1]],
                        sex: d.sex,
                        rel: d.rel,
                        disab: 0,
                        dibao: false,
                        extreme: false,
                        mil: Mil::None,
                        uninsured: 0,
                        plant: Plant::None,
                        psn: 0,
                    });
                }
                self.villages[v].households += 1;
                self.hh.push(Household {
                    village: v as u32,
                    seq: self.villages[v].households,
                    first,
                    len: drafts.len() as u32,
                    status: Status::None,
                    ident_year: 0,
                    exit_year: 0,
                    change: None,
                    monitor: 0,
                    monitor_date: ymd(self.year, 1, 1),
                    cause: 0,
                    late_new: false,
                    cleared_planted: false,
                });
            }
        }
        let mut ids = Vec::with_capacity(self.ps.len());
        for p in &self.ps {
            ids.push(self.alloc.next(p.birth, p.sex));
        }
        self.ids = ids;
    }

    fn members(&self, h: u32) -> std::ops::Range<u32> {
        let hh = &self.hh[h as usize];
        hh.first..hh.first + hh.len
    }

    fn pick(&mut self, mut cands: Vec<u32>, n: usize) -> Vec<u32> {
        let n = n.min(cands.len());
        for i in 0..n {
            let j = i + self.rng.below((cands.len() - i) as u64) as usize;
            cands.swap(i, j);
        }
        cands.truncate(n);
        cands
    }

    fn draw_cause(&mut self) -> u8 {
        match self.rng.below(1000) {
            0..=379 => 1,
            380..=469 => 2,
            470..=569 => 3,
            570..=699 => 4,
            700..=949 => 5,
            _ => 6,
        }
    }

    fn range_year(&mut self, lo: u16, hi: u16) -> u16 {
        if hi <= lo {
            lo
        } else {
            lo + self.rng.below(u64::from(hi - lo + 1)) as u16
        }
    }

    // -- poverty roster --------------------------------------------------------------------------

    fn assign_poverty(&mut self) {
        let s = self.p.scale;
        let year = self.year;
        let residents = self.ps.len() as f64;
        let target_reg = (63_656.0 * s).round() as u64;
        let target_exit = (20_000.0 * s).round() as u64;
        let target_cleared = (1_500.0 * s).round() as u64;
        let cleared_planted = scaled(35.0, s, 1);
        let target_marg_ord = (0.024 * residents).round() as u64;
        let target_marg_exit = (0.006 * residents).round() as u64;

        // Poorer villages and households come first: key = U / weight.
        let mut keys: Vec<(u64, u32)> = Vec::with_capacity(self.hh.len());
        for (i, h) in self.hh.iter().enumerate() {
            let head = &self.ps[h.first as usize];
            let age = i32::from(year) - i32::from(head.birth.year());
            let f = if age >= 60 {
                15
            } else if h.len >= 6 {
                13
            } else if h.len == 1 {
                8
            } else {
                10
            };
            let w = self.villages[h.village as usize].poverty * f;
            keys.push((self.rng.below(1 << 40) / w, i as u32));
        }
        keys.sort_unstable();
        let order: Vec<u32> = keys.into_iter().map(|(_, i)| i).collect();
        let mut it = order.into_iter();
        let take = |g: &mut Self, target: u64, status: Status, it: &mut dyn Iterator<Item = u32>| {
            let mut got = 0u64;
            let mut list = Vec::new();
            while got < target {
                let Some(h) = it.next() else { break };
                g.hh[h as usize].status = status;
                got += u64::from(g.hh[h as usize].len);
                list.push(h);
            }
            list
        };
        let reg = take(self, target_reg, Status::Registered, &mut it);
        let exited = take(self, target_exit, Status::Exited, &mut it);
        let cleared = take(self, target_cleared, Status::Cleared, &mut it);
        let mut cleared_p = Vec::new();
        for _ in 0..cleared_planted {
            if let Some(h) = it.next() {
                self.hh[h as usize].status = Status::Cleared;
                self.hh[h as usize].cleared_planted = true;
                cleared_p.push(h);
            }
        }
        let marginal = take(self, target_marg_ord, Status::None, &mut it);

        let last = year.saturating_sub(1).max(2014);
        for &h in &reg {
            let y = if year <= 2014 {
                year
            } else if self.rng.chance(720) {
                2014
            } else {
                self.range_year(2015, last)
            };
            let cause = self.draw_cause();
            let hh = &mut self.hh[h as usize];
            hh.ident_year = y.min(year);
            hh.cause = cause;
        }
        // Newly identified this year: early ones (handled properly) and late ones (planted).
        let n_late = scaled(60.0, s, 1);
        let n_early = scaled(150.0, s, 1);
        let picked = self.pick(reg.clone(), n_late + n_early);
        for (k, &h) in picked.iter().enumerate() {
            let date = if k < n_late {
                rand_date(&mut self.rng, ymd(year, 11, 1), ymd(year, 12, 31))
            } else {
                rand_date(&mut self.rng, ymd(year, 3, 1), ymd(year, 10, 15))
            };
            let hh = &mut self.hh[h as usize];
            hh.ident_year = year;
            hh.change = Some(date);
            hh.late_new = k < n_late;
        }
        for &h in &exited {
            let ident =
                if year <= 2015 || self.rng.chance(800) { 2014.min(year) } else { self.range_year(2015, year.saturating_sub(2).max(2015)) };
            let exit = self.range_year((ident + 1).max(2015), last).min(year);
            let cause = self.draw_cause();
            let hh = &mut self.hh[h as usize];
            hh.ident_year = ident;
            hh.exit_year = exit.max(ident);
            hh.cause = cause;
        }
        for &h in cleared.iter().chain(&cleared_p) {
            let ident = self.range_year(2014, last);
            let date = rand_date(&mut self.rng, ymd(year.saturating_sub(1).max(ident), 3, 1), ymd(year, 6, 30));
            let cause = self.draw_cause();
            let hh = &mut self.hh[h as usize];
            hh.ident_year = ident.min(date.year());
            hh.change = Some(date);
            hh.cause = cause;
        }
        for &h in &marginal {
            let t = if self.rng.chance(850) { 1 } else { 3 };
            let date = rand_date(&mut self.rng, ymd(year - 1, 1, 1), ymd(year, 9, 30));
            let cause = if t == 3 && self.rng.chance(500) { 1 } else { self.draw_cause() };
            let hh = &mut self.hh[h as usize];
            hh.monitor = t;
            hh.monitor_date = date;
            hh.cause = cause;
        }
        // Exited households monitored as 脱贫不稳定户.
        let cands: Vec<u32> = exited.clone();
        let shuffled = self.pick(cands.clone(), cands.len());
        let mut got = 0u64;
        for h in shuffled {
            if got >= target_marg_exit {
                break;
            }
            let date = rand_date(&mut self.rng, ymd(year - 1, 1, 1), ymd(year, 9, 30));
            let hh = &mut self.hh[h as usize];
            hh.monitor = 2;
            hh.monitor_date = date;
            got += u64::from(hh.len);
        }
        // Disability among roster households.
        for h in 0..self.hh.len() as u32 {
            let (status, monitor, cause) = {
                let hh = &self.hh[h as usize];
                (hh.status, hh.monitor, hh.cause)
            };
            if status == Status::None && monitor == 0 {
                continue;
            }
            let members = self.members(h);
            let must = (cause == 2).then(|| members.start + self.rng.below(u64::from(members.end - members.start)) as u32);
            for i in members {
                if Some(i) == must || self.rng.chance(55) {
                    let lv = match self.rng.below(100) {
                        0..=14 => 1,
                        15..=39 => 2,
                        40..=69 => 3,
                        _ => 4,
                    };
                    self.ps[i as usize].disab = lv;
                }
            }
        }
    }

    // -- dibao and extreme poor ------------------------------------------------------------------

    fn assign_civil_affairs(&mut self) {
        let year = self.year;
        let residents = self.ps.len() as f64;
        let target_ext = (0.008 * residents).round() as usize;
        let target_dibao = (0.06 * residents).round() as u64;
        let usable = |h: &Household| !h.late_new && !h.cleared_planted;

        // Extreme poor: old people living alone, and some disabled living alone.
        let cands: Vec<u32> = (0..self.hh.len() as u32)
            .filter(|&h| {
                let hh = &self.hh[h as usize];
                let p = &self.ps[hh.first as usize];
                usable(hh) && hh.len == 1 && (i32::from(year) - i32::from(p.birth.year()) >= 60 || p.disab == 1)
            })
            .collect();
        let chosen = self.pick(cands, target_ext);
        for h in chosen {
            let i = self.hh[h as usize].first;
            self.ps[i as usize].extreme = true;
            let start = rand_date(&mut self.rng, ymd(2012, 1, 1), ymd(year, 6, 30));
            self.extreme.push((i, start, None));
        }

        // Dibao: whole households, 65 % of people among the poor.
        let poor_part = target_dibao * 65 / 100;
        let poor_h: Vec<u32> = (0..self.hh.len() as u32)
            .filter(|&h| {
                let hh = &self.hh[h as usize];
                usable(hh) && matches!(hh.status, Status::Registered | Status::Exited)
            })
            .collect();
        let n = poor_h.len();
        let poor_h = self.pick(poor_h, n);
        let marg_h: Vec<u32> = (0..self.hh.len() as u32)
            .filter(|&h| {
                let hh = &self.hh[h as usize];
                usable(hh) && hh.status == Status::None && hh.monitor != 0
            })
            .collect();
        let n = marg_h.len();
        let marg_h = self.pick(marg_h, n);
        let ord_h: Vec<u32> = (0..self.hh.len() as u32)
            .filter(|&h| {
                let hh = &self.hh[h as usize];
                usable(hh) && hh.status == Status::None && hh.monitor == 0
            })
            .collect();
        let n = ord_h.len();
        let ord_h = self.pick(ord_h, n);
        let mut got = 0u64;
        let mut chosen = Vec::new();
        for h in poor_h {
            if got >= poor_part {
                break;
            }
            got += u64::from(self.hh[h as usize].len);
            chosen.push(h);
        }
        let marg_part = got + (target_dibao - got.min(target_dibao)) / 4;
        for h in marg_h {
            if got >= marg_part {
                break;
            }
            got += u64::from(self.hh[h as usize].len);
            chosen.push(h);
        }
        let mut ord_iter = ord_h.into_iter();
        for h in ord_iter.by_ref() {
            if got >= target_dibao {
                break;
            }
            got += u64::from(self.hh[h as usize].len);
            chosen.push(h);
        }
        for h in chosen {
            let start = rand_date(&mut self.rng, ymd(2010, 1, 1), ymd(year, 6, 30));
            for i in self.members(h) {
                if self.ps[i as usize].extreme {
                    continue;
                }
                self.ps[i as usize].dibao = true;
                self.dibao.push((i, start, None));
            }
        }
        // Former dibao households (ended before the year): on the list with an end date.
        let ended_target = target_dibao / 10;
        let mut ended = 0u64;
        for h in ord_iter {
            if ended >= ended_target {
                break;
            }
            let start = rand_date(&mut self.rng, ymd(2010, 1, 1), ymd(2014.min(year - 2), 12, 31));
            let end = rand_date(&mut self.rng, start.add_days(365), ymd(year - 1, 12, 31));
            for i in self.members(h) {
                // A child born after the household left dibao was never on that list.
                if self.ps[i as usize].extreme || self.ps[i as usize].birth >= end {
                    continue;
                }
                self.dibao.push((i, start, Some(end)));
                ended += 1;
            }
        }
        self.dibao.sort_by_key(|r| r.0);
        self.extreme.sort_by_key(|r| r.0);
    }

    fn ordinary(&self, i: u32) -> bool {
        let p = &self.ps[i as usize];
        let hh = &self.hh[p.hh as usize];
        matches!(hh.status, Status::None | Status::Cleared) && hh.monitor == 0 && !hh.cleared_planted && !p.dibao && !p.extreme
    }

    fn assign_military_and_uninsured(&mut self) {
        let year = self.year;
        let n = (0.0008 * self.ps.len() as f64).round() as usize;
        let young = |g: &Self, i: u32| {
            let a = g.age(i);
            g.ps[i as usize].sex == Sex::Male && (18..=24).contains(&a)
        };
        let cands: Vec<u32> =
            (0..self.ps.len() as u32).filter(|&i| young(self, i) && self.ordinary(i) && self.hh_of(i).status == Status::None).collect();
        for i in self.pick(cands, n) {
            self.ps[i as usize].mil = Mil::Serving;
            let enlist = rand_date(&mut self.rng, ymd(year - 2, 9, 1), ymd(year - 1, 9, 30));
            self.military.push((i, enlist, None));
        }
        let cands: Vec<u32> = (0..self.ps.len() as u32)
            .filter(|&i| {
                let a = self.age(i);
                self.ps[i as usize].sex == Sex::Male
                    && (21..=32).contains(&a)
                    && self.ps[i as usize].mil == Mil::None
                    && !self.hh_of(i).late_new
                    && !self.hh_of(i).cleared_planted
            })
            .collect();
        for i in self.pick(cands, n) {
            self.ps[i as usize].mil = Mil::Retired;
            let enlist = rand_date(&mut self.rng, ymd(year - 7, 9, 1), ymd(year - 3, 9, 30));
            let out = rand_date(&mut self.rng, enlist.add_days(700), enlist.add_days(760).min(ymd(year - 1, 12, 31)));
            self.military.push((i, enlist, Some(out.min(ymd(year - 1, 12, 31)))));
        }
        // Ordinary residents without insurance (not a discrepancy of any class).
        let cands: Vec<u32> = (0..self.ps.len() as u32).filter(|&i| self.ordinary(i) && self.ps[i as usize].mil == Mil::None).collect();
        let n = cands.len() / 50;
        for (k, i) in self.pick(cands, n).into_iter().enumerate() {
            self.ps[i as usize].uninsured = if k % 2 == 0 { 1 } else { 2 };
        }
    }

    // -- planted discrepancies -------------------------------------------------------------------

    /// Not special in any way that could put them in a second class.
    fn plain(&self, i: u32) -> bool {
        let p = &self.ps[i as usize];
        let hh = &self.hh[p.hh as usize];
        p.plant == Plant::None
            && !p.dibao
            && !p.extreme
            && p.mil == Mil::None
            && p.uninsured == 0
            && p.birth.year() != self.year
            && !hh.late_new
            && !hh.cleared_planted
    }

    fn cands(&self, f: impl Fn(&Self, u32) -> bool) -> Vec<u32> {
        (0..self.ps.len() as u32).filter(|&i| self.plain(i) && f(self, i)).collect()
    }

    fn set_plant(&mut self, list: &[u32], plant: impl Fn(usize) -> Plant) {
        for (k, &i) in list.iter().enumerate() {
            self.ps[i as usize].plant = plant(k);
        }
    }

    fn plant(&mut self) {
        let s = self.p.scale;
        let year = self.year;
        let reg_people = self.hh.iter().filter(|h| h.status == Status::Registered).map(|h| u64::from(h.len)).sum::<u64>() as f64;
        let marg_people = self.hh.iter().filter(|h| h.monitor != 0).map(|h| u64::from(h.len)).sum::<u64>() as f64;
        let registered_old = |g: &Self, i: u32| g.hh_of(i).status == Status::Registered && g.hh_of(i).ident_year < year;

        // new_poor_not_insured: every member of the late new households, and newborns.
        for h in 0..self.hh.len() as u32 {
            if self.hh[h as usize].late_new {
                for i in self.members(h) {
                    self.ps[i as usize].plant = Plant::NewPoor;
                }
            }
        }
        let cands: Vec<u32> = (0..self.ps.len() as u32)
            .filter(|&i| {
                let p = &self.ps[i as usize];
                p.plant == Plant::None && p.birth.year() == year && !p.dibao && registered_old(self, i)
            })
            .collect();
        let l = self.pick(cands, scaled(40.0, s, 1));
        self.set_plant(&l, |_| Plant::NewPoor);

        // flagged_not_poor: the planted cleared households.
        for h in 0..self.hh.len() as u32 {
            if self.hh[h as usize].cleared_planted {
                for i in self.members(h) {
                    let p = &mut self.ps[i as usize];
                    if !p.dibao && !p.extreme && p.mil == Mil::None && p.uninsured == 0 {
                        p.plant = Plant::FlaggedNotPoor;
                    }
                }
            }
        }

        let c = self.cands(|g, i| registered_old(g, i) && g.age(i) >= 50);
        let n_dead = scaled(150.0, s, 3);
        let n_dead_poor = n_dead * 3 / 5;
        let l = self.pick(c, n_dead_poor);
        self.set_plant(&l, |k| Plant::Dead(if k % 3 == 2 { DeadKind::PoorStopped } else { DeadKind::PoorInsured }));
        let c = self.cands(|g, i| g.ordinary(i) && g.hh_of(i).status == Status::None && g.age(i) >= 50);
        let l = self.pick(c, n_dead - n_dead_poor);
        self.set_plant(&l, |_| Plant::Dead(DeadKind::OrdinaryInsured));

        let n_mil = scaled(40.0, s, 2);
        let young = |g: &Self, i: u32| {
            let a = g.age(i);
            g.ps[i as usize].sex == Sex::Male && (18..=24).contains(&a)
        };
        let c = self.cands(|g, i| young(g, i) && registered_old(g, i));
        let l = self.pick(c, n_mil / 2);
        self.set_plant(&l, |_| Plant::Military);
        let c = self.cands(|g, i| young(g, i) && g.ordinary(i) && g.hh_of(i).status == Status::None);
        let l = self.pick(c, n_mil - n_mil / 2);
        self.set_plant(&l, |_| Plant::Military);
        for i in 0..self.ps.len() as u32 {
            if self.ps[i as usize].plant == Plant::Military {
                self.ps[i as usize].mil = Mil::ServingPlanted;
                let enlist = rand_date(&mut self.rng, ymd(year - 2, 9, 1), ymd(year - 1, 9, 30));
                self.military.push((i, enlist, None));
            }
        }

        let c = self.cands(|g, i| registered_old(g, i) && g.age(i) >= 1);
        let l = self.pick(c, scaled(0.005 * reg_people, 1.0, 2));
        self.set_plant(&l, |k| Plant::PoorNotInsured { no_record: k % 2 == 0 });

        let c = self.cands(registered_old);
        let l = self.pick(c, scaled(0.004 * reg_people, 1.0, 2));
        self.set_plant(&l, |_| Plant::PoorNotFlagged);

        let c = self.cands(registered_old);
        let l = self.pick(c, scaled(0.003 * reg_people, 1.0, 2));
        self.set_plant(&l, |k| Plant::Elsewhere((k % OTHER_COUNTIES.len()) as u8));

        let c = self.cands(|g, i| registered_old(g, i) && g.age(i) >= 16);
        let l = self.pick(c, scaled(60.0, s, 1));
        self.set_plant(&l, |_| Plant::Duplicate);
        // Their second household: another registered household, in the same village if possible.
        let mut by_village: Vec<Vec<u32>> = vec![Vec::new(); self.villages.len()];
        let mut all_reg = Vec::new();
        for (h, hh) in self.hh.iter().enumerate() {
            if hh.status == Status::Registered && !hh.late_new && hh.ident_year < year {
                by_village[hh.village as usize].push(h as u32);
                all_reg.push(h as u32);
            }
        }
        for &i in &l {
            let own = self.ps[i as usize].hh;
            let v = self.hh[own as usize].village as usize;
            let pool = if by_village[v].len() >= 2 { &by_village[v] } else { &all_reg };
            let mut other = own;
            for _ in 0..64 {
                other = pool[self.rng.below(pool.len() as u64) as usize];
                if other != own {
                    break;
                }
            }
            if other == own {
                // Only one registered household in the county: no duplicate possible.
                self.ps[i as usize].plant = Plant::None;
                continue;
            }
            self.dup_rows.push((i, other));
        }
        self.dup_rows.sort_by_key(|&(i, h)| (h, i));

        let pure_marginal = |g: &Self, i: u32| {
            let hh = g.hh_of(i);
            hh.status == Status::None && hh.monitor != 0
        };
        let c = self.cands(pure_marginal);
        let l = self.pick(c, scaled(0.01 * marg_people, 1.0, 2));
        self.set_plant(&l, |k| Plant::MarginalNotInsured { no_record: k % 2 == 0 });
        let c = self.cands(pure_marginal);
        let l = self.pick(c, scaled(0.015 * marg_people, 1.0, 2));
        self.set_plant(&l, |_| Plant::MarginalNotFlagged);

        let c = self.cands(registered_old);
        let l = self.pick(c, scaled(0.003 * reg_people, 1.0, 2));
        self.set_plant(&l, |_| Plant::SubsidyMissing);
        let c = self.cands(registered_old);
        let l = self.pick(c, scaled(0.0015 * reg_people, 1.0, 2));
        self.set_plant(&l, |_| Plant::SubsidyExcess);

        for i in 0..self.ps.len() as u32 {
            if let Some(c) = self.ps[i as usize].plant.class() {
                let id = self.ids[i as usize];
                self.planted[c].push(id);
            }
        }
        for v in &mut self.planted {
            v.sort_unstable();
        }
        self.military.sort_by_key(|&(i, d, _)| (d, i));
    }

    /// The death register: people who died before the year (no record) or during it (停保), and
    /// the planted dead (died in `year − 1`, still counted).
    fn deaths_register(&mut self) {
        let year = self.year;
        let per_year = (0.0065 * self.ps.len() as f64).round() as usize;
        let n_prev = per_year * 3 / 10;
        for k in 0..per_year + n_prev {
            let in_year = k < per_year;
            let death = if in_year {
                rand_date(&mut self.rng, ymd(year, 1, 1), ymd(year, 12, 20))
            } else {
                rand_date(&mut self.rng, ymd(year - 1, 1, 1), ymd(year - 1, 12, 31))
            };
            let age = match self.rng.below(100) {
                0..=69 => 65 + self.rng.below(31),
                70..=89 => 40 + self.rng.below(25),
                _ => self.rng.below(40),
            } as i32;
            let sex = if self.rng.chance(560) { Sex::Male } else { Sex::Female };
            let mut birth = birth_for_age(&mut self.rng, death.year(), age);
            if birth >= death {
                birth = death.add_days(-1 - self.rng.below(300) as i32);
            }
            if birth.year() < 1900 {
                birth = ymd(1900, 1, 1);
            }
            let given = draw_given(&mut self.rng, sex);
            let name = [draw_surname(&mut self.rng), given[0], given[1]];
            let id = self.alloc.next(birth, sex);
            self.deaths.push((Who::Dec(self.deceased.len() as u32), death));
            self.deceased.push(Deceased { id, name, stopped_record: in_year, psn: 0 });
        }
        for i in 0..self.ps.len() as u32 {
            if let Plant::Dead(_) = self.ps[i as usize].plant {
                let d = rand_date(&mut self.rng, ymd(year - 1, 1, 1), ymd(year - 1, 12, 31));
                let d = d.max(self.ps[i as usize].birth.add_days(1));
                self.deaths.push((Who::Pop(i), d));
            }
        }
        self.deaths.sort_by_key(|&(w, d)| {
            (
                d,
                match w {
                    Who::Pop(i) => (0, i),
                    Who::Dec(i) => (1, i),
                },
            )
        });
    }

    fn summary(&self) -> GenerateSummary {
        let mut s = GenerateSummary { residents: self.ps.len() as u64, households: self.hh.len() as u64, ..GenerateSummary::default() };
        for h in &self.hh {
            let n = u64::from(h.len);
            match h.status {
                Status::Registered => s.registered_poor += n,
                Status::Exited => s.exited_poor += n,
                _ => {}
            }
            if h.monitor != 0 {
                s.marginal += n;
            }
        }
        s.dibao = self.dibao.iter().filter(|r| r.2.is_none()).count() as u64;
        s.extreme_poor = self.extreme.len() as u64;
        s.deaths = self.deaths.len() as u64;
        s.military = self.military.len() as u64;
        for (c, name) in CLASSES.iter().enumerate() {
            s.planted.insert((*name).to_string(), self.planted[c].len() as u64);
        }
        s
    }

    // -- derived per-person values -------------------------------------------------------------

    fn clamp_year(&self, d: Date) -> Date {
        d.min(self.year_end())
    }

    /// 变动日期 of a newborn's row in a roster household.
    fn newborn_change(&self, i: u32) -> Date {
        let p = &self.ps[i as usize];
        let d = p.birth.add_days(3 + (mix(self.p.seed, u64::from(i), 11) % 20) as i32);
        let d = match self.hh_of(i).change {
            Some(c) => d.max(c),
            None => d,
        };
        self.clamp_year(d)
    }

    /// 变动日期 written on person i's poverty row (None = empty).
    fn row_change(&self, i: u32) -> Option<Date> {
        let hh = self.hh_of(i);
        if hh.status == Status::Cleared {
            return hh.change;
        }
        if hh.status != Status::None && self.newborn(i) {
            return Some(self.newborn_change(i));
        }
        hh.change
    }

    /// The flags the insurance system should have, and the date the latest was set.
    fn natural_flags(&self, i: u32) -> (u8, Option<Date>) {
        let p = &self.ps[i as usize];
        let hh = self.hh_of(i);
        let mut f = 0u8;
        let mut base: Option<Date> = None;
        let at = |d: Date, base: &mut Option<Date>| {
            *base = Some(base.map_or(d, |b| b.max(d)));
        };
        match hh.status {
            Status::Registered => {
                f |= F_REGISTERED;
                at(self.row_change(i).unwrap_or(ymd(hh.ident_year, 1, 1)), &mut base);
            }
            Status::Exited => {
                f |= F_EXITED;
                at(ymd(hh.exit_year, 1, 1), &mut base);
                if self.newborn(i) {
                    at(self.newborn_change(i), &mut base);
                }
            }
            _ => {}
        }
        if hh.monitor != 0 {
            f |= F_MARGINAL;
            at(hh.monitor_date.max(p.birth), &mut base);
        }
        if p.dibao {
            f |= F_DIBAO;
            if let Ok(k) = self.dibao.binary_search_by_key(&i, |r| r.0) {
                at(self.dibao[k].1.max(p.birth), &mut base);
            }
        }
        if p.extreme {
            f |= F_EXTREME;
            if let Ok(k) = self.extreme.binary_search_by_key(&i, |r| r.0) {
                at(self.extreme[k].1.max(p.birth), &mut base);
            }
        }
        let date = base.map(|b| self.clamp_year(b.add_days(3 + (mix(self.p.seed, u64::from(i), 13) % 38) as i32)));
        (f, date)
    }

    fn flag_date_with(&self, i: u32, f: u8) -> Option<Date> {
        if f == 0 {
            None
        } else {
            self.natural_flags(i).1.or_else(|| {
                let hh = self.hh_of(i);
                Some(ymd(hh.ident_year.max(1900), 1, 1).add_days(3 + (mix(self.p.seed, u64::from(i), 13) % 38) as i32))
            })
        }
    }

    /// The person's enrolment record for the year, or None when there is none.
    fn enrol_of(&self, i: u32) -> Option<Enrol> {
        let p = &self.ps[i as usize];
        let (flags, fdate) = self.natural_flags(i);
        let entitled = flags & (F_REGISTERED | F_EXITED | F_DIBAO | F_EXTREME) != 0;
        let normal = |flags: u8, subsidy: Fen| Enrol {
            status: "正常参保",
            area: None,
            flags,
            flag_date: if flags == 0 { None } else { self.flag_date_with(i, flags) },
            subsidy,
        };
        let full = if entitled { self.premium } else { Fen(0) };
        let e = match p.plant {
            Plant::PoorNotInsured { no_record: true } | Plant::MarginalNotInsured { no_record: true } | Plant::NewPoor => return None,
            Plant::PoorNotInsured { no_record: false } | Plant::MarginalNotInsured { no_record: false } => {
                Enrol { status: "未参保", area: None, flags, flag_date: fdate, subsidy: Fen(0) }
            }
            Plant::PoorNotFlagged => normal(flags & !(F_REGISTERED | F_EXITED), full),
            Plant::FlaggedNotPoor => normal(F_REGISTERED, Fen(0)),
            Plant::Dead(DeadKind::PoorStopped) => Enrol { status: "停保", area: None, flags, flag_date: fdate, subsidy: Fen(0) },
            Plant::Dead(_) | Plant::Military | Plant::Duplicate => normal(flags, full),
            Plant::Elsewhere(k) => {
                Enrol { status: "正常参保", area: Some(OTHER_COUNTIES[usize::from(k)]), flags: 0, flag_date: None, subsidy: Fen(0) }
            }
            Plant::MarginalNotFlagged => normal(flags & !F_MARGINAL, full),
            Plant::SubsidyMissing => normal(flags, Fen(0)),
            Plant::SubsidyExcess => normal(flags, Fen(self.premium.0 * 2)),
            Plant::None => {
                if p.mil == Mil::Serving {
                    Enrol { status: "停保", area: None, flags: 0, flag_date: None, subsidy: Fen(0) }
                } else if p.uninsured == 1 {
                    return None;
                } else if p.uninsured == 2 {
                    Enrol { status: "未参保", area: None, flags: 0, flag_date: None, subsidy: Fen(0) }
                } else {
                    normal(flags, full)
                }
            }
        };
        Some(e)
    }

    // -- files ---------------------------------------------------------------------------------

    fn fake_person(&mut self) -> (Sex, Date, [u16; 3]) {
        let sex = if self.rng.chance(500) { Sex::Male } else { Sex::Female };
        let age = 20 + self.rng.below(60) as i32;
        let birth = birth_for_age(&mut self.rng, self.year, age);
        let given = draw_given(&mut self.rng, sex);
        (sex, birth, [draw_surname(&mut self.rng), given[0], given[1]])
    }

    /// An ID number whose check character is wrong.
    fn bad_check_id(&mut self) -> (String, [u16; 3]) {
        let (sex, birth, name) = self.fake_person();
        let id = self.alloc.next(birth, sex);
        let s = id.as_str();
        let right = b"10X98765432".iter().position(|&c| c == s.as_bytes()[17]).expect("check char");
        let wrong = b"10X98765432"[(right + 1 + self.rng.below(10) as usize) % 11];
        (format!("{}{}", &s[..17], char::from(wrong)), name)
    }

    /// An ID number born on 30 February (with a check character that would be right).
    fn feb30_id(&mut self) -> (String, [u16; 3]) {
        let (sex, birth, name) = self.fake_person();
        let seq = self.rng.below(500) as u16 * 2 + u16::from(sex == Sex::Male);
        let first17 = format!("{}{:04}0230{:03}", self.p.county_code, birth.year(), seq);
        let c = check_digit(&first17);
        (format!("{first17}{c}"), name)
    }

    fn invalid_entry(file: &str, field: &str, reason: &str, id: &str) -> InvalidRow {
        InvalidRow { file: file.to_string(), row: 0, field: field.to_string(), reason: reason.to_string(), id: id.to_string() }
    }

    fn village_code(&self, v: u32) -> &str {
        &self.p.villages[v as usize].code
    }

    fn poverty_row(&self, line: &mut Vec<u8>, i: u32, h: u32, rel: Rel) {
        let p = &self.ps[i as usize];
        let hh = &self.hh[h as usize];
        let code = self.village_code(hh.village);
        line.clear();
        line.extend_from_slice(code.as_bytes());
        push_u(line, u64::from(hh.seq), 4);
        line.push(b',');
        push_name(line, p.name);
        line.push(b',');
        line.extend_from_slice(self.id(i).as_str().as_bytes());
        line.push(b',');
        line.extend_from_slice(p.sex.name_zh().as_bytes());
        line.push(b',');
        push_date(line, p.birth);
        line.push(b',');
        line.extend_from_slice(rel.zh().as_bytes());
        line.push(b',');
        line.extend_from_slice(code.as_bytes());
        line.push(b',');
        let status = match hh.status {
            Status::None => "",
            Status::Registered => "未脱贫",
            Status::Exited => "已脱贫",
            Status::Cleared => "已清退",
        };
        line.extend_from_slice(status.as_bytes());
        line.push(b',');
        if hh.status != Status::None {
            push_u(line, u64::from(hh.ident_year), 4);
        }
        line.push(b',');
        if hh.status == Status::Exited {
            push_u(line, u64::from(hh.exit_year), 4);
        }
        line.push(b',');
        line.extend_from_slice(MONITORS[usize::from(hh.monitor)].as_bytes());
        line.push(b',');
        if hh.monitor != 0 {
            push_date(line, hh.monitor_date.max(p.birth));
        }
        line.push(b',');
        line.extend_from_slice(CAUSES[usize::from(hh.cause)].as_bytes());
        line.push(b',');
        line.extend_from_slice(DISAB[usize::from(p.disab)].as_bytes());
        line.push(b',');
        // A duplicate's second row records no change of its own.
        if h == p.hh {
            if let Some(d) = self.row_change(i) {
                push_date(line, d);
            }
        }
        line.push(b'\n');
    }

    fn write_poverty(&mut self, dir: &Path) -> io::Result<FileSummary> {
        const FILE: &str = "poverty.csv";
        let on_roster = |h: &Household| h.status != Status::None || h.monitor != 0;
        let n_valid = self.hh.iter().filter(|h| on_roster(h)).map(|h| u64::from(h.len)).sum::<u64>() + self.dup_rows.len() as u64;
        // Invalid rows: single-member households numbered after the village's real ones.
        let mut bad = Vec::new();
        let year = self.year;
        for k in 0..4u32 {
            let v = self.rng.below(self.villages.len() as u64) as u32;
            let seq = self.villages[v as usize].households + 1 + k;
            let mut code = self.village_code(v).to_string();
            let (id, name, sex, birth, field, reason) = match k {
                0 => {
                    let (id, name) = self.bad_check_id();
                    let birth = Date::parse(&format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14])).ok();
                    let sex = if (id.as_bytes()[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female };
                    (id, name, sex, birth, "证件号码", "校验位错误")
                }
                1 => {
                    let (id, name) = self.feb30_id();
                    let sex = if (id.as_bytes()[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female };
                    (id, name, sex, None, "证件号码", "出生日期无效（2月30日）")
                }
                2 => {
                    let (sex, birth, name) = self.fake_person();
                    let id = self.alloc.next(birth, sex).to_string();
                    code = format!("{}999999", self.p.county_code);
                    (id, name, sex, Some(birth), "行政区划代码", "行政区划代码不存在")
                }
                _ => {
                    let (sex, birth, name) = self.fake_person();
                    let id = self.alloc.next(birth, sex).to_string();
                    (id, name, sex.opposite(), Some(birth), "性别", "性别与证件号码不符")
                }
            };
            let mut line = Vec::new();
            line.extend_from_slice(self.village_code(v).as_bytes());
            push_u(&mut line, u64::from(seq), 4);
            line.push(b',');
            push_name(&mut line, name);
            line.push(b',');
            line.extend_from_slice(id.as_bytes());
            line.push(b',');
            line.extend_from_slice(sex.name_zh().as_bytes());
            line.push(b',');
            if let Some(b) = birth {
                push_date(&mut line, b);
            }
            line.extend_from_slice(",户主,".as_bytes());
            line.extend_from_slice(code.as_bytes());
            line.extend_from_slice(",未脱贫,".as_bytes());
            push_u(&mut line, u64::from(2014.min(year)), 4);
            line.extend_from_slice(",,,,因病,,\n".as_bytes());
            bad.push((line, Self::invalid_entry(FILE, field, reason, &id)));
        }
        let mut w = Roster::create(dir, FILE, POVERTY_HEADER)?;
        w.plan_invalid(n_valid, bad);
        let mut line = Vec::with_capacity(256);
        let mut dup = 0usize;
        for h in 0..self.hh.len() as u32 {
            if !on_roster(&self.hh[h as usize]) {
                continue;
            }
            for i in self.members(h) {
                self.poverty_row(&mut line, i, h, self.ps[i as usize].rel);
                w.row(&line)?;
            }
            while dup < self.dup_rows.len() && self.dup_rows[dup].1 == h {
                let i = self.dup_rows[dup].0;
                self.poverty_row(&mut line, i, h, Rel::Other);
                w.row(&line)?;
                dup += 1;
            }
        }
        self.finish(w, dir)
    }

    fn finish(&mut self, w: Roster, dir: &Path) -> io::Result<FileSummary> {
        let file = w.file;
        let (rows, invalid) = w.finish()?;
        self.invalid.extend(invalid);
        let bytes = std::fs::metadata(dir.join(file))?.len();
        Ok(FileSummary { name: file.to_string(), rows, bytes })
    }

    fn psn_no(&self, area: &str, serial: u32, line: &mut Vec<u8>) {
        line.extend_from_slice(area.as_bytes());
        push_u(line, u64::from(serial), 8);
    }

    fn enrol_line(&self, line: &mut Vec<u8>, serial: u32, id: &str, name: [u16; 3], e: &Enrol) {
        line.clear();
        self.psn_no(e.area.unwrap_or(&self.p.county_code), serial, line);
        line.push(b',');
        line.extend_from_slice(id.as_bytes());
        line.push(b',');
        push_name(line, name);
        line.push(b',');
        push_u(line, u64::from(self.year), 4);
        line.push(b',');
        line.extend_from_slice(e.status.as_bytes());
        line.push(b',');
        line.extend_from_slice(e.area.unwrap_or(&self.p.county_code).as_bytes());
        line.push(b',');
        let mut first = true;
        for (bit, name) in FLAG_NAMES {
            if e.flags & bit != 0 {
                if !first {
                    line.push(b';');
                }
                line.extend_from_slice(name.as_bytes());
                first = false;
            }
        }
        line.push(b',');
        if let Some(d) = e.flag_date {
            push_date(line, d);
        }
        line.push(b',');
        self.premium.write_yuan(line);
        line.push(b',');
        e.subsidy.write_yuan(line);
        line.push(b',');
        if e.subsidy.0 > 0 {
            line.extend_from_slice("医疗救助".as_bytes());
        }
        line.push(b'\n');
    }

    fn write_enrolment(&mut self, dir: &Path, progress: &mut dyn FnMut(&str, u64)) -> io::Result<FileSummary> {
        const FILE: &str = "enrolment.csv";
        let records: Vec<Option<Enrol>> = (0..self.ps.len() as u32).map(|i| self.enrol_of(i)).collect();
        let n_valid =
            records.iter().filter(|e| e.is_some()).count() as u64 + self.deceased.iter().filter(|d| d.stopped_record).count() as u64;
        let mut bad = Vec::new();
        for k in 0..2 {
            let (id, name) = if k == 0 { self.bad_check_id() } else { self.feb30_id() };
            self.next_psn += 1;
            let e = Enrol { status: "正常参保", area: None, flags: 0, flag_date: None, subsidy: Fen(0) };
            let mut line = Vec::new();
            self.enrol_line(&mut line, self.next_psn, &id, name, &e);
            let (field, reason) =
                if k == 0 { ("证件号码", "校验位错误") } else { ("证件号码", "出生日期无效（2月30日）") };
            bad.push((line, Self::invalid_entry(FILE, field, reason, &id)));
        }
        let mut w = Roster::create(dir, FILE, ENROLMENT_HEADER)?;
        w.plan_invalid(n_valid, bad);
        let mut line = Vec::with_capacity(256);
        for (i, rec) in records.iter().enumerate() {
            if let Some(e) = rec {
                self.next_psn += 1;
                self.ps[i].psn = self.next_psn;
                let id = self.ids[i];
                self.enrol_line(&mut line, self.next_psn, id.as_str(), self.ps[i].name, e);
                w.row(&line)?;
                if w.rows % 100_000 == 0 {
                    progress("enrolment.csv", w.rows);
                }
            }
        }
        for k in 0..self.deceased.len() {
            if !self.deceased[k].stopped_record {
                continue;
            }
            self.next_psn += 1;
            self.deceased[k].psn = self.next_psn;
            let e = Enrol { status: "停保", area: None, flags: 0, flag_date: None, subsidy: Fen(0) };
            let d = &self.deceased[k];
            self.enrol_line(&mut line, self.next_psn, d.id.as_str(), d.name, &e);
            w.row(&line)?;
        }
        self.finish(w, dir)
    }

    fn write_civil(&mut self, dir: &Path, dibao: bool) -> io::Result<FileSummary> {
        let file: &'static str = if dibao { "dibao.csv" } else { "extreme_poor.csv" };
        let n_valid = if dibao { self.dibao.len() } else { self.extreme.len() } as u64;
        let mut bad = Vec::new();
        for k in 0..3 {
            let v = self.rng.below(self.villages.len() as u64) as u32;
            let mut code = self.village_code(v).to_string();
            let (id, name, field, reason) = match k {
                0 => {
                    let (id, name) = self.bad_check_id();
                    (id, name, "证件号码", "校验位错误")
                }
                1 => {
                    let (id, name) = self.feb30_id();
                    (id, name, "证件号码", "出生日期无效（2月30日）")
                }
                _ => {
                    let (sex, birth, name) = self.fake_person();
                    code = format!("{}999999", self.p.county_code);
                    (self.alloc.next(birth, sex).to_string(), name, "行政区划代码", "行政区划代码不存在")
                }
            };
            let mut line = Vec::new();
            line.extend_from_slice(id.as_bytes());
            line.push(b',');
            push_name(&mut line, name);
            line.push(b',');
            line.extend_from_slice(code.as_bytes());
            line.push(b',');
            push_date(&mut line, ymd(self.year - 1, 3, 1));
            line.extend_from_slice(b",\n");
            bad.push((line, Self::invalid_entry(file, field, reason, &id)));
        }
        let mut w = Roster::create(dir, file, CIVIL_HEADER)?;
        w.plan_invalid(n_valid, bad);
        let mut line = Vec::with_capacity(128);
        let list = if dibao { &self.dibao } else { &self.extreme };
        for &(i, start, end) in list {
            let p = &self.ps[i as usize];
            line.clear();
            line.extend_from_slice(self.ids[i as usize].as_str().as_bytes());
            line.push(b',');
            push_name(&mut line, p.name);
            line.push(b',');
            line.extend_from_slice(self.village_code(self.hh[p.hh as usize].village).as_bytes());
            line.push(b',');
            push_date(&mut line, start.max(p.birth));
            line.push(b',');
            if let Some(e) = end {
                push_date(&mut line, e);
            }
            line.push(b'\n');
            w.row(&line)?;
        }
        self.finish(w, dir)
    }

    fn write_death(&mut self, dir: &Path) -> io::Result<FileSummary> {
        const FILE: &str = "death.csv";
        let mut bad = Vec::new();
        for k in 0..2 {
            let (id, name) = if k == 0 { self.bad_check_id() } else { self.feb30_id() };
            let mut line = Vec::new();
            line.extend_from_slice(id.as_bytes());
            line.push(b',');
            push_name(&mut line, name);
            line.push(b',');
            push_date(&mut line, ymd(self.year, 5, 1));
            line.push(b'\n');
            let reason = if k == 0 { "校验位错误" } else { "出生日期无效（2月30日）" };
            bad.push((line, Self::invalid_entry(FILE, "证件号码", reason, &id)));
        }
        let mut w = Roster::create(dir, FILE, DEATH_HEADER)?;
        w.plan_invalid(self.deaths.len() as u64, bad);
        let mut line = Vec::with_capacity(96);
        for &(who, date) in &self.deaths {
            let (id, name) = match who {
                Who::Pop(i) => (self.ids[i as usize], self.ps[i as usize].name),
                Who::Dec(k) => (self.deceased[k as usize].id, self.deceased[k as usize].name),
            };
            line.clear();
            line.extend_from_slice(id.as_str().as_bytes());
            line.push(b',');
            push_name(&mut line, name);
            line.push(b',');
            push_date(&mut line, date);
            line.push(b'\n');
            w.row(&line)?;
        }
        self.finish(w, dir)
    }

    fn write_military(&mut self, dir: &Path) -> io::Result<FileSummary> {
        const FILE: &str = "military.csv";
        let mut bad = Vec::new();
        for k in 0..2 {
            let (id, name) = if k == 0 { self.bad_check_id() } else { self.feb30_id() };
            let mut line = Vec::new();
            line.extend_from_slice(id.as_bytes());
            line.push(b',');
            push_name(&mut line, name);
            line.push(b',');
            push_date(&mut line, ymd(self.year - 1, 9, 10));
            line.extend_from_slice(b",\n");
            let reason = if k == 0 { "校验位错误" } else { "出生日期无效（2月30日）" };
            bad.push((line, Self::invalid_entry(FILE, "证件号码", reason, &id)));
        }
        let mut w = Roster::create(dir, FILE, MILITARY_HEADER)?;
        w.plan_invalid(self.military.len() as u64, bad);
        let mut line = Vec::with_capacity(96);
        for &(i, enlist, out) in &self.military {
            line.clear();
            line.extend_from_slice(self.ids[i as usize].as_str().as_bytes());
            line.push(b',');
            push_name(&mut line, self.ps[i as usize].name);
            line.push(b',');
            push_date(&mut line, enlist);
            line.push(b',');
            if let Some(d) = out {
                push_date(&mut line, d);
            }
            line.push(b'\n');
            w.row(&line)?;
        }
        self.finish(w, dir)
    }

    // -- claims --------------------------------------------------------------------------------

    fn claim_eligible(&self, i: u32) -> bool {
        let p = &self.ps[i as usize];
        p.psn != 0
            && matches!(
                p.plant,
                Plant::None
                    | Plant::PoorNotFlagged
                    | Plant::FlaggedNotPoor
                    | Plant::Duplicate
                    | Plant::MarginalNotFlagged
                    | Plant::SubsidyMissing
                    | Plant::SubsidyExcess
            )
            && p.mil != Mil::Serving
            && p.uninsured == 0
    }

    fn write_claims(&mut self, dir: &Path, progress: &mut dyn FnMut(&str, u64)) -> io::Result<(FileSummary, u64, u64)> {
        const FILE: &str = "claims.csv";
        let year = self.year;
        let y0 = self.year_start().to_days();
        let y1 = self.year_end().to_days();
        let mut claims: Vec<ClaimRec> = Vec::with_capacity(self.ps.len() * 2 / 3);
        let (mut inpatient, mut chronic) = (0u64, 0u64);
        for i in 0..self.ps.len() as u32 {
            if !self.claim_eligible(i) {
                continue;
            }
            let p = &self.ps[i as usize];
            let age = self.age(i);
            let poor = self.is_poor(i);
            let first_day = p.birth.to_days().max(y0);
            let mut per_mille: u64 = match age {
                0 => 180,
                1..=4 => 120,
                5..=14 => 50,
                15..=44 if p.sex == Sex::Female && (20..=39).contains(&age) => 160,
                15..=44 => 95,
                45..=59 => 185,
                60..=69 => 310,
                70..=79 => 400,
                _ => 450,
            };
            if poor {
                per_mille = per_mille * 135 / 100;
            }
            if p.dibao || p.extreme || p.disab != 0 {
                per_mille = per_mille * 120 / 100;
            }
            let per_mille = per_mille.min(800);
            if self.rng.chance(per_mille) {
                let mut stays = 1;
                while stays < 5 && self.rng.chance(if stays == 1 { 220 } else { 300 }) {
                    stays += 1;
                }
                for _ in 0..stays {
                    let day = first_day + self.rng.below((y1 - first_day + 1) as u64) as i32;
                    let c = self.inpatient(i, day, poor, age);
                    claims.push(c);
                    inpatient += 1;
                }
            }
            let chronic_pm: u64 = match age {
                0..=34 => 4,
                35..=44 => 20,
                45..=59 => 70,
                60..=74 => 160,
                _ => 220,
            } * if poor { 13 } else { 10 }
                / 10;
            if self.rng.chance(chronic_pm) {
                let visits = 3 + self.rng.below(10) as i32;
                let gap = 365 / visits;
                let mut day = first_day + self.rng.below(60) as i32;
                for _ in 0..visits {
                    if day > y1 {
                        break;
                    }
                    let c = self.chronic(i, day);
                    claims.push(c);
                    chronic += 1;
                    day += gap - 5 + self.rng.below(11) as i32;
                }
            }
        }
        progress("claims", claims.len() as u64);
        claims.sort_by_key(|c| c.day);
        let mut w = Roster::create(dir, FILE, CLAIMS_HEADER)?;
        let mut line = Vec::with_capacity(192);
        for (k, c) in claims.iter().enumerate() {
            line.clear();
            line.push(b'C');
            push_u(&mut line, u64::from(year), 4);
            push_u(&mut line, k as u64 + 1, 9);
            line.push(b',');
            self.psn_no(&self.p.county_code, self.ps[c.person as usize].psn, &mut line);
            line.extend_from_slice(b",,");
            push_date(&mut line, Date::from_days(c.day));
            line.push(b',');
            line.push(b'0' + c.lv);
            line.extend_from_slice(if c.in_county { b",1" } else { b",0" });
            line.extend_from_slice(if c.inpatient { b",21" } else { b",14" });
            line.extend_from_slice(if c.referral { b",1" } else { b",0" });
            line.extend_from_slice(if c.major { b",1" } else { b",0" });
            let inscp = c.total - c.ful - c.over - c.pre;
            for v in [c.total, c.ful, c.over, c.pre, inscp] {
                line.push(b',');
                Fen(v).write_yuan(&mut line);
            }
            line.push(b',');
            line.extend_from_slice(diagnosis(c, k).as_bytes());
            line.push(b'\n');
            w.row(&line)?;
            if (k + 1) % 100_000 == 0 {
                progress("claims.csv", k as u64 + 1);
            }
        }
        let f = self.finish(w, dir)?;
        Ok((f, inpatient, chronic))
    }

    fn inpatient(&mut self, i: u32, day: i32, poor: bool, age: i32) -> ClaimRec {
        let r = self.rng.below(1000);
        let lv: u8 = if poor {
            match r {
                0..=449 => 1,
                450..=869 => 2,
                _ => 3,
            }
        } else if age <= 5 {
            match r {
                0..=249 => 1,
                250..=799 => 2,
                _ => 3,
            }
        } else {
            match r {
                0..=329 => 1,
                330..=779 => 2,
                _ => 3,
            }
        };
        let rng = &mut self.rng;
        let yuan: u64 = match lv {
            1 => 800 + rng.below(2200),
            2 => {
                if rng.chance(15) {
                    10_000 + rng.below(30_000)
                } else {
                    3_000 + rng.below(7_000)
                }
            }
            _ => {
                if rng.chance(40) {
                    let base = 60_000u64 << rng.below(3);
                    base + rng.below(base)
                } else {
                    // Skewed towards the lower end of 10k–60k.
                    10_000 + rng.below(50_000) * rng.below(1000) / 1000
                }
            }
        };
        let total = (yuan * 100 + rng.below(100)) as i64;
        let (ful_pm, pre_pm) = match lv {
            1 => (10 + rng.below(50), rng.below(30)),
            2 => (30 + rng.below(70), 20 + rng.below(40)),
            _ => (50 + rng.below(130), 30 + rng.below(50)),
        };
        let over_pm = rng.below(20);
        let in_county = lv < 3 && rng.chance(960);
        let referral = in_county || rng.chance(880);
        let major = lv >= 2 && rng.chance(if lv == 3 { 80 } else { 20 });
        ClaimRec {
            day,
            person: i,
            lv,
            inpatient: true,
            in_county,
            referral,
            major,
            total,
            ful: total * ful_pm as i64 / 1000,
            over: total * over_pm as i64 / 1000,
            pre: total * pre_pm as i64 / 1000,
        }
    }

    fn chronic(&mut self, i: u32, day: i32) -> ClaimRec {
        let rng = &mut self.rng;
        let lv = if rng.chance(600) { 1 } else { 2 };
        let total = ((150 + rng.below(2350)) * 100 + rng.below(100)) as i64;
        let (ful_pm, over_pm, pre_pm) = (rng.below(30), rng.below(10), rng.below(20));
        ClaimRec {
            day,
            person: i,
            lv,
            inpatient: false,
            in_county: true,
            referral: true,
            major: false,
            total,
            ful: total * ful_pm as i64 / 1000,
            over: total * over_pm as i64 / 1000,
            pre: total * pre_pm as i64 / 1000,
        }
    }

    // -- truth ---------------------------------------------------------------------------------

    fn write_truth(&self, dir: &Path, summary: &GenerateSummary) -> io::Result<FileSummary> {
        let mut m = serde_json::Map::new();
        m.insert("county_code".into(), self.p.county_code.clone().into());
        m.insert("year".into(), self.year.into());
        m.insert("seed".into(), self.p.seed.into());
        m.insert("scale".into(), self.p.scale.into());
        for (c, name) in CLASSES.iter().enumerate() {
            let ids: Vec<serde_json::Value> = self.planted[c].iter().map(|id| id.as_str().to_string().into()).collect();
            m.insert((*name).to_string(), ids.into());
        }
        let mut invalid = self.invalid.clone();
        invalid.sort_by(|a, b| (&a.file, a.row).cmp(&(&b.file, b.row)));
        m.insert("invalid_rows".into(), serde_json::to_value(&invalid).map_err(io::Error::other)?);
        m.insert("summary".into(), serde_json::to_value(summary).map_err(io::Error::other)?);
        let path = dir.join("truth.json");
        let mut w = BufWriter::new(File::create(&path)?);
        serde_json::to_writer_pretty(&mut w, &serde_json::Value::Object(m)).map_err(io::Error::other)?;
        w.write_all(b"\n")?;
        w.flush()?;
        Ok(FileSummary { name: "truth.json".into(), rows: 0, bytes: std::fs::metadata(&path)?.len() })
    }
}

struct Enrol {
    status: &'static str,
    /// None = the county.
    area: Option<&'static str>,
    flags: u8,
    flag_date: Option<Date>,
    subsidy: Fen,
}

struct ClaimRec {
    day: i32,
    person: u32,
    lv: u8,
    inpatient: bool,
    in_county: bool,
    referral: bool,
    major: bool,
    total: i64,
    ful: i64,
    over: i64,
    pre: i64,
}

/// A plausible main diagnosis (ICD-10) for a claim, chosen from its index (no draw from the generator's
/// random stream, so adding it changed no other figure): a listed major disease for a major-disease
/// stay (all on the Gansu list, see data/mdt), hypertension or diabetes for a chronic visit, a common
/// diagnosis otherwise.
fn diagnosis(c: &ClaimRec, k: usize) -> &'static str {
    const MAJOR: [&str; 12] = ["C16.9", "C34.9", "C50.9", "C22.0", "C15.9", "C18.9", "N18.5", "I63.9", "I61.9", "H25.9", "C53.9", "I21.9"];
    const CHRONIC: [&str; 3] = ["I10", "E11.9", "I10"];
    const COMMON: [&str; 8] = ["J18.9", "K80.2", "N39.0", "K35.8", "J20.9", "I25.1", "M17.9", "K29.7"];
    let h = (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let pick = |t: &[&'static str]| t[(h % t.len() as u64) as usize];
    if c.major {
        pick(&MAJOR)
    } else if !c.inpatient {
        pick(&CHRONIC)
    } else {
        pick(&COMMON)
    }
}

fn push_u(line: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (buf.len() - i)..width {
        line.push(b'0');
    }
    line.extend_from_slice(&buf[i..]);
}

fn push_date(line: &mut Vec<u8>, d: Date) {
    push_u(line, u64::from(d.year()), 4);
    line.push(b'-');
    push_u(line, u64::from(d.month()), 2);
    line.push(b'-');
    push_u(line, u64::from(d.day()), 2);
}

/// A CSV file being written, with invalid rows slotted in at planned positions.
struct Roster {
    file: &'static str,
    w: BufWriter<File>,
    /// Data rows written (invalid included).
    rows: u64,
    valid: u64,
    /// (before valid row #, line, entry), last = next.
    pending: Vec<(u64, Vec<u8>, InvalidRow)>,
    done: Vec<InvalidRow>,
}

impl Roster {
    fn create(dir: &Path, file: &'static str, header: &str) -> io::Result<Roster> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(dir.join(file))?);
        w.write_all(header.as_bytes())?;
        Ok(Roster { file, w, rows: 0, valid: 0, pending: Vec::new(), done: Vec::new() })
    }

    /// Spreads `rows` evenly among `n_valid` valid rows.
    fn plan_invalid(&mut self, n_valid: u64, rows: Vec<(Vec<u8>, InvalidRow)>) {
        let k = rows.len() as u64;
        let mut v: Vec<_> = rows.into_iter().enumerate().map(|(j, (b, r))| (n_valid * (j as u64 + 1) / (k + 1), b, r)).collect();
        v.reverse();
        self.pending = v;
    }

    fn emit_pending(&mut self, upto: u64) -> io::Result<()> {
        while self.pending.last().is_some_and(|p| p.0 <= upto) {
            let (_, line, mut entry) = self.pending.pop().expect("non-empty");
            self.w.write_all(&line)?;
            self.rows += 1;
            entry.row = self.rows + 1;
            self.done.push(entry);
        }
        Ok(())
    }

    fn row(&mut self, line: &[u8]) -> io::Result<()> {
        self.emit_pending(self.valid)?;
        self.w.write_all(line)?;
        self.rows += 1;
        self.valid += 1;
        Ok(())
    }

    fn finish(mut self) -> io::Result<(u64, Vec<InvalidRow>)> {
        self.emit_pending(u64::MAX)?;
        self.w.flush()?;
        Ok((self.rows, self.done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap, HashSet};

    const COUNTY: &str = "620422";

    fn params(scale: f64, seed: u64) -> CountyParams {
        CountyParams { county_code: COUNTY.into(), villages: synthetic_villages(COUNTY, 3, 10), seed, scale, year: 2018 }
    }

    fn gen(scale: f64, seed: u64) -> (tempfile::TempDir, GenerateSummary) {
        let dir = tempfile::tempdir().unwrap();
        let mut stages = Vec::new();
        let s = generate(&params(scale, seed), dir.path(), &mut |stage, _| stages.push(stage.to_string())).unwrap();
        assert_eq!(stages.last().map(String::as_str), Some("done"));
        (dir, s)
    }

    const FILES: [&str; 8] =
        ["poverty.csv", "enrolment.csv", "dibao.csv", "extreme_poor.csv", "death.csv", "military.csv", "claims.csv", "truth.json"];

    type Row = HashMap<String, String>;

    /// Rows as column-name → value maps, with their 1-based row number (header = 1).
    struct Table {
        rows: Vec<(u64, HashMap<String, String>)>,
    }

    fn read(dir: &Path, file: &str) -> Table {
        let mut r = csv::Reader::from_path(dir.join(file)).unwrap();
        let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        let mut rows = Vec::new();
        for (k, rec) in r.records().enumerate() {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), headers.len(), "{file} row {}", k + 2);
            let m = headers.iter().cloned().zip(rec.iter().map(str::to_string)).collect();
            rows.push((k as u64 + 2, m));
        }
        Table { rows }
    }

    fn truth(dir: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap()
    }

    #[test]
    fn county_is_deterministic() {
        let (a, sa) = gen(0.01, 42);
        let (b, sb) = gen(0.01, 42);
        for f in FILES {
            let x = std::fs::read(a.path().join(f)).unwrap();
            let y = std::fs::read(b.path().join(f)).unwrap();
            assert!(x == y, "{f} differs between two runs with the same seed");
        }
        assert_eq!(sa.residents, sb.residents);
        let (c, _) = gen(0.01, 43);
        assert_ne!(std::fs::read(a.path().join("poverty.csv")).unwrap(), std::fs::read(c.path().join("poverty.csv")).unwrap());
    }

    #[test]
    fn county_counts_follow_scale() {
        let (_a, s1) = gen(0.01, 7);
        let (_b, s2) = gen(0.02, 7);
        let ratio = |a: u64, b: u64| b as f64 / a as f64;
        for (name, a, b) in [
            ("residents", s1.residents, s2.residents),
            ("households", s1.households, s2.households),
            ("registered_poor", s1.registered_poor, s2.registered_poor),
            ("exited_poor", s1.exited_poor, s2.exited_poor),
            ("dibao", s1.dibao, s2.dibao),
            ("claims", s1.claims, s2.claims),
        ] {
            let r = ratio(a, b);
            assert!((1.75..=2.25).contains(&r), "{name}: {a} → {b}");
        }
        // Targets at scale 0.01.
        assert!((5_700..=5_950).contains(&s1.residents), "{}", s1.residents);
        assert!((630..=700).contains(&s1.registered_poor), "{}", s1.registered_poor);
        assert!((195..=260).contains(&s1.exited_poor), "{}", s1.exited_poor);
        let share = |n: u64| n as f64 / s1.residents as f64;
        assert!((0.025..=0.04).contains(&share(s1.marginal)), "{}", s1.marginal);
        assert!((0.055..=0.07).contains(&share(s1.dibao)), "{}", s1.dibao);
        assert!((0.006..=0.01).contains(&share(s1.extreme_poor)), "{}", s1.extreme_poor);
        let avg = s1.residents as f64 / s1.households as f64;
        assert!((3.3..=3.9).contains(&avg), "household size {avg}");
        for c in CLASSES {
            assert!(s1.planted[c] >= 1, "{c} not planted");
        }
    }

    #[test]
    fn county_population_is_plausible() {
        let (dir, s) = gen(0.02, 11);
        let pov = read(dir.path(), "poverty.csv");
        let enr = read(dir.path(), "enrolment.csv");
        let mut ages = [0u64; 10];
        let mut max_age = 0;
        for (_, r) in &enr.rows {
            let Ok(id) = IdCardNo::parse(&r["证件号码"]) else {
                continue;
            };
            let age = 2018 - i32::from(id.birth_date().year());
            max_age = max_age.max(age);
            ages[(age.clamp(0, 99) / 10) as usize] += 1;
        }
        assert!(max_age <= 96, "{max_age}");
        let total: u64 = ages.iter().sum();
        let share = |k: usize| ages[k] as f64 / total as f64;
        // Children, working-age people and old people all well represented.
        assert!(share(0) > 0.08 && share(0) < 0.25, "{ages:?}");
        assert!(share(4) > 0.08, "{ages:?}");
        assert!(share(6) + share(7) + share(8) + share(9) > 0.08, "{ages:?}");
        // Every household has exactly one head.
        let mut heads: HashMap<String, u32> = HashMap::new();
        for (_, r) in &pov.rows {
            let e = heads.entry(r["户编号"].clone()).or_default();
            if r["与户主关系"] == "户主" {
                *e += 1;
            }
        }
        assert!(heads.values().all(|&n| n == 1));
        // Claims: 12–22 % of residents have an inpatient stay; the poor more often.
        let psn_poor: HashSet<String> = {
            let poor: HashSet<&str> = pov
                .rows
                .iter()
                .filter(|(_, r)| matches!(r["贫困状态"].as_str(), "未脱贫" | "已脱贫"))
                .map(|(_, r)| r["证件号码"].as_str())
                .collect();
            enr.rows.iter().filter(|(_, r)| poor.contains(r["证件号码"].as_str())).map(|(_, r)| r["人员编号"].clone()).collect()
        };
        let claims = read(dir.path(), "claims.csv");
        let mut stay: HashSet<&str> = HashSet::new();
        for (_, r) in &claims.rows {
            if r["med_type"] == "21" {
                stay.insert(r["psn_no"].as_str());
            }
        }
        let share = stay.len() as f64 / s.residents as f64;
        assert!((0.12..=0.22).contains(&share), "inpatient share {share}");
        let poor_share = stay.iter().filter(|p| psn_poor.contains(**p)).count() as f64 / psn_poor.len() as f64;
        assert!(poor_share > share, "poor {poor_share} vs all {share}");
    }

    /// Every row is valid except exactly the invalid rows of truth.json; IDs are unique; every
    /// bill adds up; the discrepancy classes recomputed from the files equal truth.json.
    #[test]
    fn county_files_agree_with_truth() {
        let (dir, s) = gen(0.02, 2018);
        let dir = dir.path();
        let t = truth(dir);
        let villages: HashSet<String> = params(0.02, 2018).villages.iter().map(|v| v.code.clone()).collect();
        let invalid: Vec<InvalidRow> = serde_json::from_value(t["invalid_rows"].clone()).unwrap();
        assert_eq!(invalid.len() as u64, s.invalid_rows);
        let mut invalid_at: HashSet<(String, u64)> = HashSet::new();
        for r in &invalid {
            assert!(invalid_at.insert((r.file.clone(), r.row)));
        }
        for f in ["poverty.csv", "enrolment.csv", "dibao.csv", "extreme_poor.csv", "death.csv", "military.csv"] {
            assert!(invalid.iter().filter(|r| r.file == f).count() >= 2, "{f}");
        }

        // Validation as import would do it.
        let check = |file: &str, r: &HashMap<String, String>| -> Result<IdCardNo, String> {
            let id = IdCardNo::parse(&r["证件号码"]).map_err(|e| e.to_string())?;
            if let Some(sx) = r.get("性别").filter(|v| !v.is_empty()) {
                if Sex::parse(sx) != Some(id.sex()) {
                    return Err("性别".into());
                }
            }
            if let Some(b) = r.get("出生日期").filter(|v| !v.is_empty()) {
                if Date::parse(b).ok() != Some(id.birth_date()) {
                    return Err("出生日期".into());
                }
            }
            if let Some(code) = r.get("行政区划代码") {
                let ok = villages.contains(code) || (file != "poverty.csv" && code == COUNTY);
                if !ok {
                    return Err("行政区划代码".into());
                }
            }
            Ok(id)
        };
        let mut tables: HashMap<&str, Vec<(IdCardNo, Row)>> = HashMap::new();
        for f in ["poverty.csv", "enrolment.csv", "dibao.csv", "extreme_poor.csv", "death.csv", "military.csv"] {
            let mut ok = Vec::new();
            for (row, r) in read(dir, f).rows {
                let planted_bad = invalid_at.contains(&(f.to_string(), row));
                match check(f, &r) {
                    Ok(id) => {
                        assert!(!planted_bad, "{f} row {row} should be invalid");
                        ok.push((id, r));
                    }
                    Err(e) => assert!(planted_bad, "{f} row {row} unexpectedly invalid: {e}"),
                }
            }
            tables.insert(f, ok);
        }

        // Unique IDs and psn_no in enrolment; on the poverty roster only duplicate_person twice.
        let mut enrol: HashMap<IdCardNo, &HashMap<String, String>> = HashMap::new();
        let mut psn: HashMap<String, IdCardNo> = HashMap::new();
        for (id, r) in &tables["enrolment.csv"] {
            assert!(enrol.insert(*id, r).is_none(), "{id:?} enrolled twice");
            assert_eq!(r["人员编号"].len(), 14);
            assert!(psn.insert(r["人员编号"].clone(), *id).is_none());
            assert_eq!(r["参保年度"], "2018");
            assert_eq!(r["个人缴费"], "220.00");
        }
        let mut roster: HashMap<IdCardNo, Vec<&HashMap<String, String>>> = HashMap::new();
        for (id, r) in &tables["poverty.csv"] {
            roster.entry(*id).or_default().push(r);
        }
        let dead: HashMap<IdCardNo, Date> = tables["death.csv"].iter().map(|(id, r)| (*id, Date::parse(&r["死亡日期"]).unwrap())).collect();
        assert_eq!(dead.len(), tables["death.csv"].len());
        let serving: HashSet<IdCardNo> =
            tables["military.csv"].iter().filter(|(_, r)| r["退役日期"].is_empty()).map(|(id, _)| *id).collect();
        let current = |f: &str| -> HashSet<IdCardNo> {
            tables[f].iter().filter(|(_, r)| r["保障终止日期"].is_empty()).map(|(id, _)| *id).collect()
        };
        let (dibao, extreme) = (current("dibao.csv"), current("extreme_poor.csv"));
        assert_eq!(dibao.len() as u64, s.dibao);
        assert!(dibao.is_disjoint(&extreme));

        // The classes, each predicate on its own (no precedence), so overlaps show.
        let mut found: BTreeMap<&str, BTreeSet<IdCardNo>> = BTreeMap::new();
        let mut everyone: BTreeSet<IdCardNo> = roster.keys().copied().collect();
        everyone.extend(enrol.keys().copied());
        everyone.extend(dead.keys().copied());
        everyone.extend(serving.iter().copied());
        let ny_cut = Date::new(2018, 11, 1).unwrap();
        for id in &everyone {
            let rows = roster.get(id).map(Vec::as_slice).unwrap_or(&[]);
            let first = rows.first();
            let status = first.map_or("", |r| r["贫困状态"].as_str());
            let poor = matches!(status, "未脱贫" | "已脱贫");
            let marginal = first.is_some_and(|r| !r["监测对象类型"].is_empty());
            let e = enrol.get(id);
            let st = e.map_or("", |r| r["参保状态"].as_str());
            let insured_here = st == "正常参保" && e.is_some_and(|r| r["参保地区划"] == COUNTY);
            let elsewhere = st == "正常参保" && !insured_here;
            let not_insured = e.is_none() || st == "未参保";
            let flags: Vec<&str> = e.map_or(vec![], |r| r["人员类别"].split(';').filter(|f| !f.is_empty()).collect());
            let has = |f: &str| flags.contains(&f);
            let subsidy = e.map_or(Fen(0), |r| Fen::parse_yuan(&r["资助金额"]).unwrap());
            let premium = e.map_or(Fen(0), |r| Fen::parse_yuan(&r["个人缴费"]).unwrap());
            let new_ish = id.birth_date().year() == 2018
                || first.is_some_and(|r| r["识别年度"] == "2018" && Date::parse(&r["变动日期"]).is_ok_and(|d| d >= ny_cut));
            let mut hit = |c: &'static str, cond: bool| {
                if cond {
                    found.entry(c).or_default().insert(*id);
                }
            };
            hit("dead_still_counted", dead.contains_key(id) && (status == "未脱贫" || st == "正常参保"));
            hit("military_still_counted", serving.contains(id) && st == "正常参保");
            let households: BTreeSet<&str> = rows.iter().map(|r| r["户编号"].as_str()).collect();
            hit("duplicate_person", households.len() > 1);
            hit("insured_elsewhere", (poor || marginal) && elsewhere);
            hit("poor_not_insured", poor && not_insured && !new_ish);
            hit("new_poor_not_insured", poor && not_insured && new_ish);
            hit("poor_not_flagged", poor && insured_here && !has("建档立卡") && !has("已脱贫"));
            hit("flagged_not_poor", !poor && (has("建档立卡") || has("已脱贫")));
            hit("marginal_not_insured", marginal && !poor && not_insured);
            hit("marginal_not_flagged", marginal && insured_here && !has("边缘户"));
            let entitled = poor || dibao.contains(id) || extreme.contains(id);
            hit("subsidy_missing", entitled && insured_here && subsidy == Fen(0));
            hit("subsidy_excess", subsidy > premium);
            // Flags agree with the civil-affairs lists.
            if insured_here {
                assert_eq!(has("低保"), dibao.contains(id), "{id:?}");
                assert_eq!(has("特困供养"), extreme.contains(id), "{id:?}");
                assert!(!has("边缘户") || marginal, "{id:?}");
            }
        }
        let mut seen: HashMap<IdCardNo, &str> = HashMap::new();
        for (c, ids) in &found {
            for id in ids {
                if let Some(prev) = seen.insert(*id, c) {
                    panic!("{id:?} is both {prev} and {c}");
                }
            }
        }
        for c in CLASSES {
            let want: BTreeSet<IdCardNo> = t[c].as_array().unwrap().iter().map(|v| IdCardNo::parse(v.as_str().unwrap()).unwrap()).collect();
            let got = found.remove(c).unwrap_or_default();
            assert_eq!(got, want, "class {c}");
            assert_eq!(want.len() as u64, s.planted[c], "{c}");
            assert!(!want.is_empty(), "{c}");
        }

        // Claims: readable by `baozhang settle`, bills add up, persons insured here and alive,
        // sorted by date, within the year and after birth.
        let f = File::open(dir.join("claims.csv")).unwrap();
        let mut rd = crate::claims::ClaimReader::new(io::BufReader::new(f)).unwrap();
        let mut row = crate::claims::ClaimRow::default();
        let mut last = Date::new(2018, 1, 1).unwrap();
        let mut ids = HashSet::new();
        let mut n = 0u64;
        while rd.next_row(&mut row).unwrap() {
            let c = row.claim.expect("claim");
            assert!(row.identities.is_empty());
            assert!(c.setl_date >= last && c.setl_date.year() == 2018);
            last = c.setl_date;
            let id = psn[&row.psn_no];
            assert!(c.setl_date >= id.birth_date());
            assert!(!dead.contains_key(&id) && !serving.contains(&id));
            let e = enrol[&id];
            assert_eq!(e["参保状态"], "正常参保");
            assert_eq!(e["参保地区划"], COUNTY);
            let b = c.bill;
            assert_eq!(b.total(), b.fulamt_ownpay() + b.overlmt_selfpay() + b.preselfpay() + b.compliant());
            assert!(b.total() > Fen(0));
            assert!(ids.insert(row.claim_id.clone()));
            n += 1;
        }
        assert_eq!(n, s.claims);
    }
}

#[cfg(test)]
mod full_scale {
    use super::*;

    /// `cargo test --release -p baozhang-ingest county_full_scale -- --ignored --nocapture`
    /// (set COUNTY_OUT=dir to keep the files).
    #[test]
    #[ignore = "full-size county: run in release mode"]
    fn county_full_scale() {
        let scale: f64 = std::env::var("COUNTY_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::env::var_os("COUNTY_OUT").map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
        let params =
            CountyParams { county_code: "620422".into(), villages: synthetic_villages("620422", 28, 10), seed: 2018, scale, year: 2018 };
        let t0 = std::time::Instant::now();
        let s = generate(&params, &dir, &mut |stage, n| {
            eprintln!("{:>8.2}s {stage} {n}", t0.elapsed().as_secs_f64());
        })
        .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        println!("scale {scale}: {secs:.2} s");
        println!("{}", serde_json::to_string_pretty(&s).unwrap());
        assert!(secs < 30.0, "took {secs:.1} s");
    }
}
