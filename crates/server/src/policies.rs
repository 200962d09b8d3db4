//! The policies a service settles under, found by the insured area (`insuplc_admdvs`) and the date of
//! service, and by version (a cancellation reverses under the policy its settlement used).

use std::collections::HashMap;

use baozhang_core::policy::{parse_policy, Policy};
use baozhang_core::reference::REFERENCE_POLICIES;
use baozhang_core::Date;

#[derive(Debug, Default)]
pub struct Policies {
    list: Vec<Policy>,
    by_version: HashMap<String, usize>,
}

impl Policies {
    /// The four reference policies shipped with the product.
    pub fn reference() -> Policies {
        let mut p = Policies::default();
        for (_, src) in REFERENCE_POLICIES {
            p.add(parse_policy(src).expect("shipped policies check clean (tested in core)"));
        }
        p
    }

    /// Adds a policy; a later one with the same area and dates takes precedence over earlier ones.
    pub fn add(&mut self, policy: Policy) {
        self.by_version.insert(policy.version.clone(), self.list.len());
        self.list.push(policy);
    }

    pub fn all(&self) -> &[Policy] {
        &self.list
    }

    /// The policy of the insured area in force on `date`: one that names the area (its own code or
    /// `covers`), else one whose region is a province or prefecture containing it (`530000` covers
    /// `530102`). The most specific match wins; among equals, the one added last.
    pub fn for_area(&self, admdvs: &str, date: Date) -> Option<&Policy> {
        baozhang_core::policy::choose(&self.list, admdvs, date)
    }

    pub fn by_version(&self, version: &str) -> Option<&Policy> {
        self.by_version.get(version).map(|&i| &self.list[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn the_insured_area_and_date_choose_the_policy() {
        let p = Policies::reference();
        assert_eq!(p.for_area("620422", d("2018-06-01")).unwrap().meta.id, "gansu-huining-2018");
        assert!(p.for_area("620422", d("2017-12-31")).is_none(), "before the policy took effect");
        assert_eq!(p.for_area("640521", d("2018-06-01")).unwrap().meta.id, "ningxia-zhongwei-2018");
        assert_eq!(p.for_area("530102", d("2020-06-01")).unwrap().meta.id, "yunnan-2020", "a province's policy covers its counties");
        assert_eq!(p.for_area("150203", d("2020-06-01")).unwrap().meta.id, "neimenggu-2020");
        assert!(p.for_area("110101", d("2020-06-01")).is_none());
        let v = p.for_area("620422", d("2018-06-01")).unwrap().version.clone();
        assert_eq!(p.by_version(&v).unwrap().meta.id, "gansu-huining-2018");
    }
}
