//! What rosters typed by hand in townships and passed through Excel contain, put right where it is
//! unambiguous and named where it is not (issue 20, "what real roster files contain"):
//!
//! - ID numbers with invisible characters (a zero-width space pasted from a web form, a no-break space),
//!   spaces, full-width digits from a Chinese input method (`６２０４…`), a lowercase `x`: cleaned;
//! - a 15-digit ID number of the first generation: converted to 18 digits by GB 11643 (`19` inserted
//!   before the year, the check digit computed);
//! - an ID number saved as a number (`6.20422E+17`): refused with what happened and what to do — its last
//!   digits are lost, nothing can restore them;
//! - dates as Excel and people write them (`1980/1/10`, `1980.1.10`, `19800110`, `1980年1月10日`,
//!   `1980-1-10`, an Excel day number of five digits such as `29230`): read as that day;
//! - names with spaces inside (`测　辛`, a full-width space) or invisible characters: those removed, so the
//!   name matches the same person's name in another roster.
//!
//! Every change is returned as a note, which the import report lists per row and field.

use baozhang_core::{Date, IdCardNo};

/// Characters that show as nothing: zero-width space, non-joiner and joiner, word joiner, BOM, soft
/// hyphen, the bidirectional marks.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{202A}'..='\u{202E}')
}

/// A full-width ASCII character (`０`–`９`, `Ｘ`, `－`, `／`, …) as its ASCII form.
fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// The result of cleaning one cell: the text to read and what was changed (empty: nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cleaned {
    pub text: String,
    pub notes: Vec<String>,
}

/// Why an ID number cannot be read, said so that a township clerk knows what to fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdHint {
    #[error("证件号码被 Excel 保存成了数字（显示为科学计数法，如 6.20422E+17），后几位已经丢失：请把该列设置为“文本”格式，从原始数据重新导出或重新录入")]
    SavedAsNumber,
    #[error("{0}")]
    Invalid(#[from] baozhang_core::idcard::IdCardError),
    #[error("15 位旧证件号码无效：{0}")]
    Old15(String),
}

/// Whether `s` looks like a number Excel printed in scientific notation (`6.20422E+17`, `6.2E17`).
fn scientific(s: &str) -> bool {
    let t = s.trim();
    let Some((mantissa, exp)) = t.split_once(['E', 'e']) else { return false };
    let exp = exp.strip_prefix('+').unwrap_or(exp);
    !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mantissa.chars().any(|c| c.is_ascii_digit())
        && !exp.is_empty()
        && exp.chars().all(|c| c.is_ascii_digit())
}

/// An ID number as typed, cleaned and read: the number and what was changed.
pub fn id_number(raw: &str) -> Result<(IdCardNo, Vec<String>), IdHint> {
    let mut notes = Vec::new();
    let mut hidden = 0usize;
    let mut spaces = 0usize;
    let mut wide = 0usize;
    let mut text = String::with_capacity(raw.len());
    for c in raw.chars() {
        if invisible(c) {
            hidden += 1;
            continue;
        }
        let h = half_width(c);
        if h != c {
            wide += 1;
        }
        if h.is_whitespace() {
            spaces += 1;
            continue;
        }
        text.push(h);
    }
    if scientific(&text) {
        return Err(IdHint::SavedAsNumber);
    }
    if hidden > 0 {
        notes.push(format!("去除了 {hidden} 个不可见字符"));
    }
    if spaces > 0 {
        notes.push(format!("去除了 {spaces} 个空格"));
    }
    if wide > 0 {
        notes.push("全角字符已转为半角".to_string());
    }
    if text.len() == 15 && text.bytes().all(|b| b.is_ascii_digit()) {
        let id = IdCardNo::from_15(&text).map_err(|e| IdHint::Old15(e.to_string()))?;
        notes.push("15 位旧证件号码已按 GB 11643 转换为 18 位".to_string());
        return Ok((id, notes));
    }
    let id = IdCardNo::parse(&text)?;
    Ok((id, notes))
}

/// A name with the spaces and invisible characters inside it removed (`测　辛` → `测辛`); a space between
/// two Latin letters (a foreign name) stays, as one space.
pub fn name(raw: &str) -> Cleaned {
    let chars: Vec<char> = raw.chars().filter(|c| !invisible(*c)).collect();
    let hidden = raw.chars().count() - chars.len();
    let mut out = String::with_capacity(raw.len());
    let mut removed = 0usize;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() || c == '\u{3000}' {
            let prev = out.chars().last();
            let next = chars[i + 1..].iter().copied().find(|c| !c.is_whitespace());
            let latin = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphabetic());
            if latin(prev) && latin(next) && !out.ends_with(' ') {
                out.push(' ');
            } else if prev.is_some() && next.is_some() {
                removed += 1;
            }
            continue;
        }
        out.push(c);
    }
    let mut notes = Vec::new();
    if removed > 0 {
        notes.push(format!("姓名中间的 {removed} 个空格已删除"));
    }
    if hidden > 0 {
        notes.push(format!("姓名中的 {hidden} 个不可见字符已删除"));
    }
    Cleaned { text: out, notes }
}

/// The first Excel day number of a date we accept (1900-01-01 is day 1; 25569 is 1970-01-01).
const EXCEL_1970: i32 = 25_569;

/// A date as people and Excel write it: the day and a note when it was not written `YYYY-MM-DD`.
/// `None` when it is no date at all.
pub fn date(raw: &str) -> Option<(Date, Option<String>)> {
    let t: String = raw.chars().filter(|c| !invisible(*c)).map(half_width).collect::<String>().trim().to_string();
    if let Ok(d) = Date::parse(&t) {
        return Some((d, None));
    }
    let note = |d: Date| Some((d, Some(format!("日期“{t}”按 {d} 读取"))));
    // 19800110
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        let (y, m, d) = (t[..4].parse().ok()?, t[4..6].parse().ok()?, t[6..].parse().ok()?);
        return Date::new(y, m, d).and_then(note);
    }
    // An Excel day number (a date cell read as its number), five digits: 1927-05-18 (10000) to
    // 2100-12-31 (73415). Four digits or fewer are more likely a year or a typing slip than a day.
    if t.len() == 5 && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = t.parse().ok()?;
        if (10_000..=73_415).contains(&n) {
            return note(Date::from_days(n - EXCEL_1970));
        }
        return None;
    }
    // 1980/1/10, 1980.1.10, 1980-1-10, 1980年1月10日
    let parts: Vec<&str> = t.trim_end_matches('日').split(['/', '.', '-', '年', '月']).collect();
    if parts.len() == 3
        && parts[0].len() == 4
        && parts.iter().all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let (y, m, d) = (parts[0].parse().ok()?, parts[1].parse().ok()?, parts[2].parse().ok()?);
        return Date::new(y, m, d).and_then(note);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "620422198001011230";

    #[test]
    fn invisible_characters_spaces_and_full_width_digits_are_cleaned_and_said() {
        let (id, notes) = id_number(&format!("\u{200B}{ID}")).unwrap();
        assert_eq!(id.as_str(), ID);
        assert_eq!(notes, ["去除了 1 个不可见字符"]);
        let wide: String = ID.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap()).collect();
        let (id, notes) = id_number(&wide).unwrap();
        assert_eq!(id.as_str(), ID);
        assert_eq!(notes, ["全角字符已转为半角"]);
        let (id, notes) = id_number(" 620422 19800101 1230\u{3000}").unwrap();
        assert_eq!(id.as_str(), ID);
        assert!(notes.iter().any(|n| n.contains("空格")), "{notes:?}");
        assert!(id_number(ID).unwrap().1.is_empty(), "a clean number has no note");
    }

    #[test]
    fn a_number_saved_by_excel_says_what_happened() {
        for s in ["6.20422E+17", "6.20422e17", "6.20422198001E+17"] {
            let e = id_number(s).unwrap_err();
            assert_eq!(e, IdHint::SavedAsNumber, "{s}");
            assert!(e.to_string().contains("文本"), "{e}");
        }
    }

    #[test]
    fn a_fifteen_digit_number_is_converted_by_gb_11643() {
        // 620422 800101 123 → 620422 19800101 123 + check digit.
        let (id, notes) = id_number("620422800101123").unwrap();
        assert_eq!(id.as_str(), ID);
        assert_eq!(notes, ["15 位旧证件号码已按 GB 11643 转换为 18 位"]);
        assert!(matches!(id_number("620422801301123"), Err(IdHint::Old15(_))), "month 13");
    }

    #[test]
    fn other_errors_stay_the_id_cards_own() {
        assert!(matches!(id_number("62042219800101123"), Err(IdHint::Invalid(_))));
        assert!(matches!(id_number("620422198001011231"), Err(IdHint::Invalid(_))));
    }

    #[test]
    fn names_lose_inner_spaces_but_latin_names_keep_one() {
        assert_eq!(name("测\u{3000}辛"), Cleaned { text: "测辛".into(), notes: vec!["姓名中间的 1 个空格已删除".into()] });
        assert_eq!(name("测 辛").text, "测辛");
        assert_eq!(name("张三").notes, Vec::<String>::new());
        assert_eq!(name("Anna  Smith").text, "Anna Smith");
        assert_eq!(name("阿依古丽·买买提").text, "阿依古丽·买买提");
        assert_eq!(name("王\u{200B}五").text, "王五");
    }

    #[test]
    fn dates_as_excel_and_people_write_them() {
        let d = |s: &str| date(s).map(|(d, _)| d.to_string());
        for s in ["1980-01-10", "1980/1/10", "1980.1.10", "19800110", "1980年1月10日", "1980-1-10", "1980/01/10", "２９２３０"] {
            assert_eq!(d(s).as_deref(), Some("1980-01-10"), "{s}");
        }
        assert!(date("1980-01-10").unwrap().1.is_none(), "the standard form has no note");
        assert!(date("1980/1/10").unwrap().1.unwrap().contains("1980-01-10"));
        for s in ["1980/2/30", "80/1/10", "10/1/1980", "abc", "1980", "12", "99999"] {
            assert_eq!(d(s), None, "{s}");
        }
    }
}
