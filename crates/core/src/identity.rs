//! Identities a person can hold on a date (R-REG-2). The engine sees a small bit set.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Identity {
    /// 建档立卡贫困人口（未脱贫）
    RegisteredPoor = 0,
    /// 已脱贫（"四不摘"：keeps the policies）
    ExitedPoor = 1,
    /// 边缘户 / 监测户
    Marginal = 2,
    /// 低保
    Dibao = 3,
    /// 特困供养
    ExtremePoor = 4,
    /// 农村兜底保障户
    SafetyNet = 5,
    /// 残疾人
    Disabled = 6,
    /// 因病致贫返贫 / 因病致贫重病患者 (2021+: valid for a period from recognition, e.g. 12 months)
    IllnessPoor = 7,
    /// 低保边缘家庭成员 (2021+ medical-assistance class)
    DibaoEdge = 8,
    /// 返贫致贫人口 (2021+: 大病保险 tilt with 特困 and 低保)
    ReturnedPoor = 9,
}

pub const ALL_IDENTITIES: [Identity; 10] = [
    Identity::RegisteredPoor,
    Identity::ExitedPoor,
    Identity::Marginal,
    Identity::Dibao,
    Identity::ExtremePoor,
    Identity::SafetyNet,
    Identity::Disabled,
    Identity::IllnessPoor,
    Identity::DibaoEdge,
    Identity::ReturnedPoor,
];

impl Identity {
    pub fn id(self) -> &'static str {
        match self {
            Identity::RegisteredPoor => "registered_poor",
            Identity::ExitedPoor => "exited_poor",
            Identity::Marginal => "marginal",
            Identity::Dibao => "dibao",
            Identity::ExtremePoor => "extreme_poor",
            Identity::SafetyNet => "safety_net",
            Identity::Disabled => "disabled",
            Identity::IllnessPoor => "illness_poor",
            Identity::DibaoEdge => "dibao_edge",
            Identity::ReturnedPoor => "returned_poor",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Identity::RegisteredPoor => "建档立卡贫困人口",
            Identity::ExitedPoor => "已脱贫人口",
            Identity::Marginal => "边缘户",
            Identity::Dibao => "低保",
            Identity::ExtremePoor => "特困供养",
            Identity::SafetyNet => "农村兜底保障户",
            Identity::Disabled => "残疾人",
            Identity::IllnessPoor => "因病致贫返贫",
            Identity::DibaoEdge => "低保边缘家庭成员",
            Identity::ReturnedPoor => "返贫致贫人口",
        }
    }

    /// Accepts the id, the Chinese name, and the short names officials write.
    pub fn parse(s: &str) -> Option<Identity> {
        let t = s.trim();
        Some(match t {
            "registered_poor" | "建档立卡" | "建档立卡贫困人口" | "建档立卡贫困户" | "贫困人口" | "未脱贫" => {
                Identity::RegisteredPoor
            }
            "exited_poor" | "已脱贫" | "已脱贫人口" | "脱贫人口" => Identity::ExitedPoor,
            "marginal" | "边缘户" | "监测户" | "边缘易致贫户" | "脱贫不稳定户" | "突发严重困难户" | "防止返贫监测对象" | "监测对象" => {
                Identity::Marginal
            }
            "dibao" | "低保" | "低保户" | "城乡低保" => Identity::Dibao,
            "extreme_poor" | "特困" | "特困供养" | "特困供养人员" | "特困人员" => Identity::ExtremePoor,
            "safety_net" | "农村兜底保障户" | "兜底保障户" => Identity::SafetyNet,
            "disabled" | "残疾人" => Identity::Disabled,
            "illness_poor" | "因病致贫返贫" | "因病致贫" | "因病返贫" | "因病致贫重病患者" => Identity::IllnessPoor,
            "dibao_edge" | "低保边缘" | "低保边缘家庭" | "低保边缘家庭成员" | "低保边缘户" => Identity::DibaoEdge,
            "returned_poor" | "返贫致贫" | "返贫致贫人口" | "返贫人口" => Identity::ReturnedPoor,
            _ => return None,
        })
    }
}

/// A set of identities as a bit set: cheap to copy and to test in the engine's hot path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct IdentitySet(u16);

/// "poor" in the policies: registered or exited (四不摘).
pub const POOR: IdentitySet = IdentitySet((1 << Identity::RegisteredPoor as u16) | (1 << Identity::ExitedPoor as u16));

impl IdentitySet {
    pub const EMPTY: IdentitySet = IdentitySet(0);

    pub fn from_bits(bits: u16) -> IdentitySet {
        IdentitySet(bits & 0x3ff)
    }
    pub fn bits(self) -> u16 {
        self.0
    }
    pub fn with(self, i: Identity) -> IdentitySet {
        IdentitySet(self.0 | (1 << i as u16))
    }
    pub fn contains(self, i: Identity) -> bool {
        self.0 & (1 << i as u16) != 0
    }
    #[inline]
    pub fn intersects(self, other: IdentitySet) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Identity> {
        ALL_IDENTITIES.into_iter().filter(move |i| self.contains(*i))
    }

    /// Parses a `;`-separated list (also `；`, `,`, `、`, `|`); empty = ordinary resident.
    pub fn parse_list(s: &str) -> Result<IdentitySet, String> {
        let mut set = IdentitySet::EMPTY;
        for part in s.split([';', '；', ',', '，', '、', '|']) {
            let p = part.trim();
            if p.is_empty() {
                continue;
            }
            match Identity::parse(p) {
                Some(i) => set = set.with(i),
                None => return Err(format!("未知的身份“{p}”（可用：{}）", known_ids())),
            }
        }
        Ok(set)
    }

    pub fn names_zh(self) -> String {
        if self.is_empty() {
            return "普通居民".to_string();
        }
        self.iter().map(Identity::name_zh).collect::<Vec<_>>().join("、")
    }
}

impl fmt::Display for IdentitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.iter().map(Identity::id).collect();
        f.write_str(&ids.join(";"))
    }
}

pub fn known_ids() -> String {
    ALL_IDENTITIES.iter().map(|i| i.id()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_chinese_names() {
        let s = IdentitySet::parse_list("registered_poor;低保").unwrap();
        assert!(s.contains(Identity::RegisteredPoor) && s.contains(Identity::Dibao));
        assert!(s.intersects(POOR));
        assert_eq!(IdentitySet::parse_list(" ").unwrap(), IdentitySet::EMPTY);
        assert!(IdentitySet::parse_list("特困供养；边缘户").unwrap().contains(Identity::Marginal));
        assert!(IdentitySet::parse_list("rich").is_err());
        assert_eq!(s.to_string(), "registered_poor;dibao");
    }
}
