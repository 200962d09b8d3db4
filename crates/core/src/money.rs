//! Money and ratios, exact: integer fen and integer basis points. No floating point.

use std::fmt;

/// One bp = 0.01 %; 10 000 bp = 100 %.
pub const BP_ONE: i64 = 10_000;

/// Largest amount a single bill field may carry: 100 million yuan. Keeps every product
/// `fen × bp` far inside `i64` (1e10 × 1e4 = 1e14), so no intermediate can overflow.
pub const MAX_FEN: i64 = 10_000_000_000;

/// An amount of money in fen (分, 0.01 yuan). Signed because reversals and differences are negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Fen(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("金额为空")]
    Empty,
    #[error("金额“{0}”不是有效数字（应为元，如 1234.56）")]
    NotANumber(String),
    #[error("金额“{0}”超过两位小数")]
    TooManyDecimals(String),
    #[error("金额“{0}”为负数")]
    Negative(String),
    #[error("金额“{0}”超出上限（1 亿元）")]
    TooLarge(String),
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// Parses a non-negative amount in yuan with at most two decimals ("1234", "1234.5", "1234.56").
    /// Exponents, signs other than a leading '-', thousands separators and more decimals are refused.
    pub fn parse_yuan(s: &str) -> Result<Fen, MoneyError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (neg, body) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        let nan = || MoneyError::NotANumber(t.to_string());
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(nan());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(nan());
        }
        if body.contains('.') && frac_part.is_empty() && int_part.is_empty() {
            return Err(nan());
        }
        if frac_part.len() > 2 {
            // "12.340" is still exact; only non-zero digits beyond the fen are refused.
            if frac_part[2..].bytes().any(|b| b != b'0') {
                return Err(MoneyError::TooManyDecimals(t.to_string()));
            }
        }
        let digits = int_part.trim_start_matches('0');
        if digits.len() > 9 {
            return Err(MoneyError::TooLarge(t.to_string()));
        }
        let mut fen: i64 = 0;
        for b in digits.bytes() {
            fen = fen * 10 + i64::from(b - b'0');
        }
        let mut f = frac_part.bytes();
        let d1 = f.next().map_or(0, |b| i64::from(b - b'0'));
        let d2 = f.next().map_or(0, |b| i64::from(b - b'0'));
        fen = fen * 100 + d1 * 10 + d2;
        if fen > MAX_FEN {
            return Err(MoneyError::TooLarge(t.to_string()));
        }
        if neg && fen != 0 {
            return Err(MoneyError::Negative(t.to_string()));
        }
        Ok(Fen(fen))
    }

    /// Whole yuan as fen.
    pub const fn yuan(y: i64) -> Fen {
        Fen(y * 100)
    }

    /// Appends "123.45" (always two decimals) to `out`, without allocating.
    pub fn write_yuan(self, out: &mut Vec<u8>) {
        let v = self.0;
        let neg = v < 0;
        let a = v.unsigned_abs();
        if neg {
            out.push(b'-');
        }
        let int = a / 100;
        let frac = (a % 100) as u8;
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut n = int;
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&buf[i..]);
        out.push(b'.');
        out.push(b'0' + frac / 10);
        out.push(b'0' + frac % 10);
    }

    /// "12,345.67" — for people (tables, slips).
    pub fn grouped(self) -> String {
        let plain = self.to_string();
        let (sign, rest) = plain.strip_prefix('-').map_or(("", plain.as_str()), |r| ("-", r));
        let (int, frac) = rest.split_once('.').unwrap_or((rest, "00"));
        let mut g = String::new();
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                g.push(',');
            }
            g.push(ch);
        }
        format!("{sign}{g}.{frac}")
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(24);
        self.write_yuan(&mut v);
        f.write_str(std::str::from_utf8(&v).expect("ascii"))
    }
}

impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, o: Fen) -> Fen {
        Fen(self.0 + o.0)
    }
}
impl std::ops::Sub for Fen {
    type Output = Fen;
    fn sub(self, o: Fen) -> Fen {
        Fen(self.0 - o.0)
    }
}
impl std::ops::AddAssign for Fen {
    fn add_assign(&mut self, o: Fen) {
        self.0 += o.0;
    }
}
impl std::ops::Neg for Fen {
    type Output = Fen;
    fn neg(self) -> Fen {
        Fen(-self.0)
    }
}
impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

/// Divides `num` by `den` (> 0), rounding half away from zero.
#[inline]
pub fn div_round_half_away(num: i64, den: i64) -> i64 {
    debug_assert!(den > 0);
    let half = den / 2;
    if num >= 0 {
        (num + half) / den
    } else {
        -((-num + half) / den)
    }
}

/// A ratio in basis points (0..=10 000 for policy ratios).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Ratio(pub u16);

impl Ratio {
    pub const ZERO: Ratio = Ratio(0);
    pub const ONE: Ratio = Ratio(10_000);

    /// Parses "85%", "62.5%", "0.01%". At most two decimals of a percent (1 bp), at most 100 %
    /// unless `allow_over` (used for identity bonuses checked elsewhere).
    pub fn parse_percent(s: &str) -> Result<Ratio, String> {
        let t = s.trim();
        let Some(num) = t.strip_suffix('%') else {
            return Err(format!("比例“{t}”应写成百分数，如 \"85%\""));
        };
        let num = num.trim();
        let (i, f) = num.split_once('.').unwrap_or((num, ""));
        if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("比例“{t}”不是有效的百分数"));
        }
        if f.len() > 2 {
            return Err(format!("比例“{t}”精度超过 0.01%"));
        }
        if i.len() > 4 {
            return Err(format!("比例“{t}”超过 100%"));
        }
        let mut bp: u32 = i.parse::<u32>().map_err(|_| format!("比例“{t}”无效"))? * 100;
        let mut fb = f.bytes();
        bp += fb.next().map_or(0, |b| u32::from(b - b'0')) * 10;
        bp += fb.next().map_or(0, |b| u32::from(b - b'0'));
        if bp > 10_000 {
            return Err(format!("比例“{t}”超过 100%"));
        }
        Ok(Ratio(bp as u16))
    }

    /// `self × amount`, rounded to the fen half away from zero.
    #[inline]
    pub fn apply(self, amount: Fen) -> Fen {
        Fen(div_round_half_away(amount.0 * i64::from(self.0), BP_ONE))
    }

    /// Adds percentage points, never above 100 %.
    #[inline]
    pub fn plus_capped(self, bonus: Ratio) -> Ratio {
        Ratio((self.0 + bonus.0).min(10_000))
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.0 / 100;
        let r = self.0 % 100;
        if r == 0 {
            write!(f, "{i}%")
        } else if r.is_multiple_of(10) {
            write!(f, "{i}.{}%", r / 10)
        } else {
            write!(f, "{i}.{r:02}%")
        }
    }
}

/// Text for people with every amount written in fen ("资助 18000 分", as stored findings say) rewritten in
/// yuan ("资助 180.00 元"): officials read money in 元, never in 分. Only for text whose 分 are money (not
/// score points).
pub fn yuan_in_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(" 分") {
        let head = &rest[..i];
        let digits_start =
            head.rfind(|c: char| !c.is_ascii_digit() && c != '-').map_or(0, |j| j + head[j..].chars().next().map_or(1, char::len_utf8));
        let number = &head[digits_start..];
        match number.parse::<i64>() {
            Ok(f) if !number.is_empty() => {
                out.push_str(&head[..digits_start]);
                out.push_str(&Fen(f).grouped());
                out.push_str(" 元");
            }
            _ => {
                out.push_str(head);
                out.push_str(" 分");
            }
        }
        rest = &rest[i + " 分".len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yuan_exactly() {
        assert_eq!(Fen::parse_yuan("1234.56"), Ok(Fen(123456)));
        assert_eq!(Fen::parse_yuan("0.1"), Ok(Fen(10)));
        assert_eq!(Fen::parse_yuan(".5"), Ok(Fen(50)));
        assert_eq!(Fen::parse_yuan("7"), Ok(Fen(700)));
        assert_eq!(Fen::parse_yuan("7."), Ok(Fen(700)));
        assert_eq!(Fen::parse_yuan(" 00012.30 "), Ok(Fen(1230)));
        assert_eq!(Fen::parse_yuan("12.300"), Ok(Fen(1230)));
        assert_eq!(Fen::parse_yuan("-0"), Ok(Fen(0)));
    }

    #[test]
    fn refuses_what_it_cannot_represent() {
        assert!(matches!(Fen::parse_yuan("1.234"), Err(MoneyError::TooManyDecimals(_))));
        assert!(matches!(Fen::parse_yuan("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(Fen::parse_yuan("1e5"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_yuan("1,000"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_yuan("."), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Fen::parse_yuan(""), Err(MoneyError::Empty)));
        assert!(matches!(Fen::parse_yuan("1000000000"), Err(MoneyError::TooLarge(_))));
        assert!(Fen::parse_yuan("100000000").is_ok());
    }

    #[test]
    fn formats_two_decimals() {
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(-123456).to_string(), "-1234.56");
        assert_eq!(Fen(123456789).grouped(), "1,234,567.89");
        assert_eq!(Fen(-100).grouped(), "-1.00");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round_half_away(5, 10), 1);
        assert_eq!(div_round_half_away(4, 10), 0);
        assert_eq!(div_round_half_away(-5, 10), -1);
        assert_eq!(div_round_half_away(-4, 10), 0);
        // 70 % of 0.05 yuan = 3.5 fen → 4 fen
        assert_eq!(Ratio(7000).apply(Fen(5)), Fen(4));
        assert_eq!(Ratio(7000).apply(Fen(-5)), Fen(-4));
    }

    #[test]
    fn parses_percent() {
        assert_eq!(Ratio::parse_percent("85%"), Ok(Ratio(8500)));
        assert_eq!(Ratio::parse_percent("62.5%"), Ok(Ratio(6250)));
        assert_eq!(Ratio::parse_percent("0.01%"), Ok(Ratio(1)));
        assert_eq!(Ratio::parse_percent("100%"), Ok(Ratio(10000)));
        assert!(Ratio::parse_percent("100.01%").is_err());
        assert!(Ratio::parse_percent("0.85").is_err());
        assert!(Ratio::parse_percent("1.001%").is_err());
        assert_eq!(Ratio(6250).to_string(), "62.5%");
        assert_eq!(Ratio(1).to_string(), "0.01%");
    }

    #[test]
    fn amounts_in_fen_are_written_in_yuan() {
        assert_eq!(yuan_in_text("资助 18000 分"), "资助 180.00 元");
        assert_eq!(yuan_in_text("资助 1234567 分，个人缴费 0 分"), "资助 12,345.67 元，个人缴费 0.00 元");
        assert_eq!(yuan_in_text("没有金额"), "没有金额");
        assert_eq!(yuan_in_text("十 分"), "十 分");
    }
}
