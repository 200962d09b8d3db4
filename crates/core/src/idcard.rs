//! Resident ID numbers (公民身份号码, GB 11643-1999), validated (R-REG-2).
//!
//! 18 characters: a 6-digit area code (GB/T 2260), the birth date `YYYYMMDD`, a 3-digit order code
//! whose last digit is odd for men and even for women, and a check character (0–9 or X) computed
//! with ISO 7064 MOD 11-2. An [`IdCardNo`] can only be built through [`IdCardNo::parse`] (or
//! [`IdCardNo::synthesize`] for generators), so holding one means the number is well formed.
//!
//! The number is personal data: `Display` prints it in full (for files and the database — callers
//! decide), `Debug` prints [`IdCardNo::masked`] so a stray `{:?}` in a log never leaks it.

use std::fmt;
use std::str::FromStr;

use crate::date::Date;

/// Weights of the first 17 digits (2^(17−i) mod 11).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character by weighted sum mod 11.
const CHECK: &[u8; 11] = b"10X98765432";

/// An 18-character resident ID number whose check character, birth date and characters are valid.
/// The check character is always stored as an upper-case `X`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdCardNo([u8; 18]);

/// 性别.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    pub fn name_zh(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }

    /// "男" / "女" (surrounding blanks ignored); anything else is `None`.
    pub fn parse(s: &str) -> Option<Sex> {
        match s.trim() {
            "男" => Some(Sex::Male),
            "女" => Some(Sex::Female),
            _ => None,
        }
    }

    pub fn opposite(self) -> Sex {
        match self {
            Sex::Male => Sex::Female,
            Sex::Female => Sex::Male,
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

/// Why a string is not a valid ID number. The messages are for officials (Chinese) and never
/// contain the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdCardError {
    #[error("证件号码长度不是18位（实际 {0} 位）")]
    Length(usize),
    #[error("证件号码含非法字符（前17位须为数字，末位为数字或X）")]
    IllegalChar,
    #[error("证件号码中的出生日期无效（{0}，应为1900-01-01至2100-12-31之间的真实日期）")]
    BirthDate(String),
    #[error("证件号码校验位错误，应为 {expected}（实为 {found}）")]
    CheckDigit { expected: char, found: char },
}

/// The check character for the first 17 digits. Panics unless `first17` is exactly 17 ASCII digits
/// (a programming error; parse input with [`IdCardNo::parse`]).
pub fn check_digit(first17: &str) -> char {
    let b = first17.as_bytes();
    assert!(b.len() == 17 && b.iter().all(u8::is_ascii_digit), "check_digit needs exactly 17 digits");
    check_of(b)
}

fn check_of(first17: &[u8]) -> char {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(&c, w)| u32::from(c - b'0') * w).sum();
    char::from(CHECK[(sum % 11) as usize])
}

fn birth_of(b: &[u8]) -> Option<Date> {
    let num = |r: std::ops::Range<usize>| -> u16 { b[r].iter().fold(0u16, |v, &c| v * 10 + u16::from(c - b'0')) };
    let (y, m, d) = (num(6..10), num(10..12), num(12..14));
    if !(1900..=2100).contains(&y) {
        return None;
    }
    Date::new(y, m as u8, d as u8)
}

impl IdCardNo {
    /// A first-generation 15-digit ID number converted to 18 characters as GB 11643 does: the year
    /// `19` + two digits (15-digit numbers were issued before 2000), the check character computed.
    /// The birth date must be real.
    pub fn from_15(s: &str) -> Result<IdCardNo, IdCardError> {
        let t = s.trim();
        if t.len() != 15 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(if t.chars().count() == 15 { IdCardError::IllegalChar } else { IdCardError::Length(t.chars().count()) });
        }
        let first17 = format!("{}19{}", &t[..6], &t[6..]);
        let full = format!("{first17}{}", check_of(first17.as_bytes()));
        IdCardNo::parse(&full)
    }

    /// Validates an 18-character resident ID number (surrounding blanks ignored; a lower-case `x`
    /// check character is accepted and stored as `X`). Checks, in this order: length, characters,
    /// birth date (a real date in 1900–2100), check character.
    pub fn parse(s: &str) -> Result<IdCardNo, IdCardError> {
        let t = s.trim();
        let n = t.chars().count();
        if n != 18 {
            return Err(IdCardError::Length(n));
        }
        let b = t.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x') {
            return Err(IdCardError::IllegalChar);
        }
        if birth_of(b).is_none() {
            return Err(IdCardError::BirthDate(format!("{}年{}月{}日", &t[6..10], &t[10..12], &t[12..14])));
        }
        let expected = check_of(&b[..17]);
        let found = char::from(b[17].to_ascii_uppercase());
        if expected != found {
            return Err(IdCardError::CheckDigit { expected, found });
        }
        let mut out = [0u8; 18];
        out.copy_from_slice(b);
        out[17] = out[17].to_ascii_uppercase();
        Ok(IdCardNo(out))
    }

    /// A valid number for a generator. The order code is `seq` (0..=999) with its last digit's
    /// parity forced to match `sex` (`seq ^ 1` when it does not), so `2k` and `2k + 1` give the same
    /// number for a given sex: a generator wanting distinct numbers should use distinct `k` (up to
    /// 500 per area, birth date and sex). Panics if `area` is not 6 digits, `seq > 999`, or the
    /// birth year is outside 1900–2100.
    pub fn synthesize(area: &str, birth: Date, seq: u16, sex: Sex) -> IdCardNo {
        assert!(area.len() == 6 && area.bytes().all(|c| c.is_ascii_digit()), "area code must be 6 digits");
        assert!(seq <= 999, "order code must be 0..=999");
        assert!((1900..=2100).contains(&birth.year()), "birth year must be 1900..=2100");
        let odd = seq % 2 == 1;
        let seq = if odd == (sex == Sex::Male) { seq } else { seq ^ 1 };
        let mut b = [0u8; 18];
        b[..6].copy_from_slice(area.as_bytes());
        let mut put = |at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(6, u32::from(birth.year()), 4);
        put(10, u32::from(birth.month()), 2);
        put(12, u32::from(birth.day()), 2);
        put(14, u32::from(seq), 3);
        b[17] = check_of(&b[..17]) as u8;
        IdCardNo(b)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII by construction")
    }

    /// The 6-digit area code (GB/T 2260) where the number was issued.
    pub fn area_code(&self) -> &str {
        &self.as_str()[..6]
    }

    pub fn birth_date(&self) -> Date {
        birth_of(&self.0).expect("validated by construction")
    }

    /// The 17th character: odd = 男, even = 女.
    pub fn sex(&self) -> Sex {
        if (self.0[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// First 6 and last 4 characters visible, the 8 in between as `*`: `620422********123X`.
    pub fn masked(&self) -> String {
        let s = self.as_str();
        format!("{}********{}", &s[..6], &s[14..])
    }
}

impl fmt::Display for IdCardNo {
    /// The full number. Mask explicitly ([`IdCardNo::masked`]) where it is shown to people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for IdCardNo {
    /// Masked, so logs never leak the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdCardNo({})", self.masked())
    }
}

impl FromStr for IdCardNo {
    type Err = IdCardError;
    fn from_str(s: &str) -> Result<IdCardNo, IdCardError> {
        IdCardNo::parse(s)
    }
}

impl serde::Serialize for IdCardNo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for IdCardNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IdCardNo, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        IdCardNo::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_valid_numbers() {
        // 6·7+2·9+0·10+4·5+2·8+2·4+1·2+9·1+8·6+0·3+0·7+1·9+0·10+1·5+1·8+2·4+3·2 = 199;
        // 199 mod 11 = 1 → '0'.
        let id = IdCardNo::parse("620422198001011230").unwrap();
        assert_eq!(check_digit("62042219800101123"), '0');
        assert_eq!(id.area_code(), "620422");
        assert_eq!(id.birth_date(), Date::new(1980, 1, 1).unwrap());
        assert_eq!(id.sex(), Sex::Male); // 17th digit 3
        assert_eq!(id.as_str(), "620422198001011230");
        assert_eq!(id.to_string(), "620422198001011230");
        // The standard's own example: sum 167, 167 mod 11 = 2 → 'X'; 17th digit 2 → 女.
        let x = IdCardNo::parse("11010519491231002X").unwrap();
        assert_eq!(x.sex(), Sex::Female);
        assert_eq!(x.birth_date(), Date::new(1949, 12, 31).unwrap());
    }

    #[test]
    fn lower_case_x_is_normalised() {
        let id = IdCardNo::parse(" 11010519491231002x ").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, "11010519491231002X".parse().unwrap());
    }

    #[test]
    fn wrong_check_digit_names_the_right_one() {
        let e = IdCardNo::parse("620422198001011231").unwrap_err();
        assert_eq!(e, IdCardError::CheckDigit { expected: '0', found: '1' });
        assert!(e.to_string().contains("校验位错误，应为 0"));
        let e = IdCardNo::parse("110105194912310021").unwrap_err();
        assert!(e.to_string().contains("应为 X"), "{e}");
    }

    #[test]
    fn rejects_bad_length_chars_and_dates() {
        assert_eq!(IdCardNo::parse("62042219800101123").unwrap_err(), IdCardError::Length(17));
        assert!(IdCardNo::parse("6204221980010112300").unwrap_err().to_string().contains("长度不是18位"));
        assert_eq!(IdCardNo::parse("").unwrap_err(), IdCardError::Length(0));
        // 18 characters but not ASCII.
        assert_eq!(IdCardNo::parse("６２0422198001011230").unwrap_err(), IdCardError::IllegalChar);
        assert_eq!(IdCardNo::parse("62042219800101123A").unwrap_err(), IdCardError::IllegalChar);
        assert_eq!(IdCardNo::parse("6204221980010X1230").unwrap_err(), IdCardError::IllegalChar);
        assert!(IdCardNo::parse("62042219800101123A").unwrap_err().to_string().contains("含非法字符"));
        // 2月30日, with a check digit that would be right.
        let first17 = "62042219800230123";
        let s = format!("{first17}{}", check_digit(first17));
        let e = IdCardNo::parse(&s).unwrap_err();
        assert!(matches!(e, IdCardError::BirthDate(_)));
        assert!(e.to_string().contains("出生日期无效"), "{e}");
        // 1880 (the standard's other example, otherwise valid) is before 1900.
        assert!(matches!(IdCardNo::parse("440524188001010014").unwrap_err(), IdCardError::BirthDate(_)));
        // 2101 is too late.
        let first17 = "62042221010101123";
        let s = format!("{first17}{}", check_digit(first17));
        assert!(matches!(IdCardNo::parse(&s).unwrap_err(), IdCardError::BirthDate(_)));
        // 29 February only in leap years.
        for (y, ok) in [("2000", true), ("1900", false), ("2004", true), ("2003", false)] {
            let first17 = format!("620422{y}0229123");
            let s = format!("{first17}{}", check_digit(&first17));
            assert_eq!(IdCardNo::parse(&s).is_ok(), ok, "{y}");
        }
    }

    #[test]
    fn masking_and_debug() {
        let first17 = "62042219800101123";
        let id = IdCardNo::synthesize("620422", Date::new(1980, 1, 1).unwrap(), 123, Sex::Male);
        assert_eq!(id.as_str(), format!("{first17}{}", check_digit(first17)));
        assert_eq!(id.masked(), "620422********1230");
        let x = IdCardNo::parse("11010519491231002X").unwrap();
        assert_eq!(x.masked(), "110105********002X");
        let dbg = format!("{x:?}");
        assert!(!dbg.contains("19491231"), "{dbg}");
        assert!(dbg.contains("110105********002X"));
        assert_eq!(format!("{x}"), "11010519491231002X");
    }

    #[test]
    fn sex_names() {
        assert_eq!(Sex::parse(" 男 "), Some(Sex::Male));
        assert_eq!(Sex::parse("女"), Some(Sex::Female));
        assert_eq!(Sex::parse("M"), None);
        assert_eq!(Sex::Female.name_zh(), "女");
        assert_eq!(Sex::Male.opposite(), Sex::Female);
    }

    #[test]
    fn synthesize_forces_the_sex_digit() {
        let d = Date::new(1990, 6, 15).unwrap();
        let m = IdCardNo::synthesize("620422", d, 998, Sex::Male);
        assert_eq!(&m.as_str()[14..17], "999");
        let f = IdCardNo::synthesize("620422", d, 999, Sex::Female);
        assert_eq!(&f.as_str()[14..17], "998");
        let f0 = IdCardNo::synthesize("620422", d, 0, Sex::Female);
        assert_eq!(&f0.as_str()[14..17], "000");
        assert_eq!(f0.sex(), Sex::Female);
    }

    #[test]
    fn serde_round_trip_validates() {
        let id = IdCardNo::parse("11010519491231002X").unwrap();
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, "\"11010519491231002X\"");
        let back: IdCardNo = serde_json::from_str(&j).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<IdCardNo>("\"110105194912310021\"").is_err());
    }

    proptest! {
        #[test]
        fn synthesize_then_parse(
            area in 110_000u32..=659_999,
            days in Date::new(1900, 1, 1).unwrap().to_days()..=Date::new(2100, 12, 31).unwrap().to_days(),
            seq in 0u16..=999,
            male in any::<bool>(),
        ) {
            let area = area.to_string();
            let birth = Date::from_days(days);
            let sex = if male { Sex::Male } else { Sex::Female };
            let id = IdCardNo::synthesize(&area, birth, seq, sex);
            let back = IdCardNo::parse(id.as_str()).unwrap();
            prop_assert_eq!(back, id);
            prop_assert_eq!(back.area_code(), area.as_str());
            prop_assert_eq!(back.birth_date(), birth);
            prop_assert_eq!(back.sex(), sex);
            let order: u16 = back.as_str()[14..17].parse().unwrap();
            prop_assert!(order == seq || order == seq ^ 1);
            // Any other check character is rejected.
            let s = back.as_str();
            let wrong = if s.ends_with('0') { '1' } else { '0' };
            let bad = format!("{}{}", &s[..17], wrong);
            prop_assert!(
                matches!(IdCardNo::parse(&bad), Err(IdCardError::CheckDigit { .. })),
                "bad check digit accepted"
            );
        }
    }
}
