//! The four reference policies of POLICY §2.4, shipped inside the binary so `--policy NAME` works
//! anywhere. The files themselves live in `policies/` at the repository root.

pub const REFERENCE_POLICIES: [(&str, &str); 4] = [
    ("gansu-huining-2018", include_str!("../../../policies/gansu-huining-2018.toml")),
    ("ningxia-zhongwei-2018", include_str!("../../../policies/ningxia-zhongwei-2018.toml")),
    ("yunnan-2020", include_str!("../../../policies/yunnan-2020.toml")),
    ("neimenggu-2020", include_str!("../../../policies/neimenggu-2020.toml")),
];

/// The hand-computed cases beside each shipped policy (`policies/tests/<id>.toml`, read by
/// `baozhang_ingest::policy_tests`), shipped too so `baozhang policy test NAME` works anywhere.
pub const REFERENCE_POLICY_TESTS: [(&str, &str); 4] = [
    ("gansu-huining-2018", include_str!("../../../policies/tests/gansu-huining-2018.toml")),
    ("ningxia-zhongwei-2018", include_str!("../../../policies/tests/ningxia-zhongwei-2018.toml")),
    ("yunnan-2020", include_str!("../../../policies/tests/yunnan-2020.toml")),
    ("neimenggu-2020", include_str!("../../../policies/tests/neimenggu-2020.toml")),
];

/// The test cases of a shipped policy by its id.
pub fn reference_tests(name: &str) -> Option<&'static str> {
    REFERENCE_POLICY_TESTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The source text of a shipped policy by its id.
pub fn reference_source(name: &str) -> Option<&'static str> {
    REFERENCE_POLICIES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

pub fn reference_names() -> Vec<&'static str> {
    REFERENCE_POLICIES.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_policy_checks_clean_and_names_itself() {
        for (name, src) in REFERENCE_POLICIES {
            let p = crate::policy::parse_policy(src).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.meta.id, name);
            assert_eq!(p.version.len(), 16);
            assert!(reference_tests(name).is_some_and(|t| t.contains(&format!("policy = \"{name}\""))), "{name}: its tests are shipped");
        }
        assert_eq!(REFERENCE_POLICY_TESTS.map(|(n, _)| n), REFERENCE_POLICIES.map(|(n, _)| n));
    }
}
