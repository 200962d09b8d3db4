//! The four reference policies of POLICY §2.4 (2018–2020) and the four regions' 2024–2026 policies
//! (issue 16, written with the 2021+ constructs; their local values are illustrative), shipped inside the
//! binary so `--policy NAME` works anywhere. The files themselves live in `policies/` at the repository root.

pub const REFERENCE_POLICIES: [(&str, &str); 8] = [
    ("gansu-huining-2018", include_str!("../../../policies/gansu-huining-2018.toml")),
    ("ningxia-zhongwei-2018", include_str!("../../../policies/ningxia-zhongwei-2018.toml")),
    ("yunnan-2020", include_str!("../../../policies/yunnan-2020.toml")),
    ("neimenggu-2020", include_str!("../../../policies/neimenggu-2020.toml")),
    ("gansu-huining-2024", include_str!("../../../policies/gansu-huining-2024.toml")),
    ("ningxia-zhongwei-2024", include_str!("../../../policies/ningxia-zhongwei-2024.toml")),
    ("yunnan-2024", include_str!("../../../policies/yunnan-2024.toml")),
    ("neimenggu-2024", include_str!("../../../policies/neimenggu-2024.toml")),
];

/// The hand-computed cases beside each shipped policy (`policies/tests/<id>.toml`, read by
/// `baozhang_ingest::policy_tests`), shipped too so `baozhang policy test NAME` works anywhere.
pub const REFERENCE_POLICY_TESTS: [(&str, &str); 8] = [
    ("gansu-huining-2018", include_str!("../../../policies/tests/gansu-huining-2018.toml")),
    ("ningxia-zhongwei-2018", include_str!("../../../policies/tests/ningxia-zhongwei-2018.toml")),
    ("yunnan-2020", include_str!("../../../policies/tests/yunnan-2020.toml")),
    ("neimenggu-2020", include_str!("../../../policies/tests/neimenggu-2020.toml")),
    ("gansu-huining-2024", include_str!("../../../policies/tests/gansu-huining-2024.toml")),
    ("ningxia-zhongwei-2024", include_str!("../../../policies/tests/ningxia-zhongwei-2024.toml")),
    ("yunnan-2024", include_str!("../../../policies/tests/yunnan-2024.toml")),
    ("neimenggu-2024", include_str!("../../../policies/tests/neimenggu-2024.toml")),
];

/// The texts of the shipped policies' sources (`policies/sources/<source id>.txt`: the seed documents, as
/// UTF-8 text), by source id; the quotes of the policies' values are checked against them
/// (`policy::check_quotes`, `baozhang policy check`). A source with no text here (a published guide, the
/// illustrative defaults) has no quotes.
pub const REFERENCE_SOURCE_TEXTS: [(&str, &str); 7] = [
    ("huining-pioneer-2018", include_str!("../../../policies/sources/huining-pioneer-2018.txt")),
    ("zhongwei-tasks-2018", include_str!("../../../policies/sources/zhongwei-tasks-2018.txt")),
    ("yunnan-100days-2020", include_str!("../../../policies/sources/yunnan-100days-2020.txt")),
    ("baotou-sibuzhai-2020", include_str!("../../../policies/sources/baotou-sibuzhai-2020.txt")),
    // Published third-party transcriptions of national documents and statistics (P), for the 2024 policies.
    ("national-assistance-2021", include_str!("../../../policies/sources/national-assistance-2021.txt")),
    ("national-medins-2024", include_str!("../../../policies/sources/national-medins-2024.txt")),
    ("neimenggu-income-2023-news", include_str!("../../../policies/sources/neimenggu-income-2023-news.txt")),
];

/// The text of a shipped source by its id.
pub fn reference_source_text(id: &str) -> Option<&'static str> {
    REFERENCE_SOURCE_TEXTS.iter().find(|(n, _)| *n == id).map(|(_, s)| *s)
}

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

    /// The versions settlements of the shipped policies carry. Writing their values with marks, sources and
    /// quotes (issue 16) left them as they were: provenance is not part of the hash.
    const SHIPPED_VERSIONS: [(&str, &str); 4] = [
        ("gansu-huining-2018", "0a722ad43ec3a05d"),
        ("ningxia-zhongwei-2018", "b54422a7e82d3bb6"),
        ("yunnan-2020", "2e523a81a8a4cb0e"),
        ("neimenggu-2020", "3591d773402a64c4"),
    ];

    #[test]
    fn the_shipped_versions_are_unchanged() {
        for (name, version) in SHIPPED_VERSIONS {
            let p = crate::policy::parse_policy(reference_source(name).unwrap()).unwrap();
            assert_eq!(p.version, version, "{name}");
        }
    }

    #[test]
    fn provenance_is_left_out_of_the_version_and_values_are_not() {
        let src = reference_source("gansu-huining-2018").unwrap();
        let version = |s: &str| crate::policy::parse_policy(s).unwrap_or_else(|e| panic!("{e}\n{s}")).version;
        let v0 = version(src);
        let same = [
            // A value written plain instead of with its mark.
            src.replacen("annual_cap = { value = 150000, mark = \"I\" }", "annual_cap = 150000", 1),
            // Another mark (and source) for a value.
            src.replacen(
                "deductible = { value = 0, mark = \"I\" }",
                "deductible = { value = 0, mark = \"S\", source = \"huining-pioneer-2018\" }",
                1,
            ),
            // Another quote, and none.
            src.replacen("quote = \"建档立卡贫困人口合规医疗费用实际补偿比不低于85%\"", "quote = \"实际补偿比不低于85%\"", 1),
            src.replacen(", quote = \"建档立卡贫困人口合规医疗费用实际补偿比不低于85%\"", "", 1),
            // Another source id, everywhere.
            src.replace("huining-pioneer-2018", "huining-2018"),
        ];
        for (i, s) in same.iter().enumerate() {
            assert_ne!(s, src, "change {i} applies");
            assert_eq!(version(s), v0, "change {i} is provenance only");
        }
        let changed = src.replacen("annual_cap = { value = 150000, mark = \"I\" }", "annual_cap = { value = 150001, mark = \"I\" }", 1);
        assert_ne!(changed, src);
        assert_ne!(version(&changed), v0, "a value changed inside the marked form changes the version");
        let changed = src.replacen("{ value = \"85%\", mark = \"S\"", "{ value = \"86%\", mark = \"S\"", 1);
        assert_ne!(changed, src);
        assert_ne!(version(&changed), v0, "so does a ratio");
    }

    #[test]
    fn every_quote_of_a_shipped_policy_occurs_in_its_shipped_source() {
        let mut checked = 0;
        for (name, src) in REFERENCE_POLICIES {
            let p = crate::policy::parse_policy(src).unwrap();
            let r = crate::policy::check_quotes(&p, |id| reference_source_text(id).map(str::to_string));
            assert!(r.problems.is_empty(), "{name}: {:#?}", r.problems);
            assert!(r.missing_texts.is_empty(), "{name}: quotes of sources without a shipped text: {:?}", r.missing_texts);
            checked += r.checked;
            // Every S source (a seed document) ships its text, and every S value quotes it.
            for s in p.meta.sources.iter().filter(|s| s.mark == "S") {
                let id = s.id.as_deref().unwrap_or_else(|| panic!("{name}: S source {} has an id", s.title));
                assert!(reference_source_text(id).is_some(), "{name}: the text of {id} is shipped");
            }
            for v in p.provenance.iter().filter(|v| v.mark == crate::policy::Mark::S) {
                assert!(v.quote.is_some(), "{name}: {} ({}) is marked S and quotes its source", v.place, v.path);
            }
        }
        // The S values of the 2018–2020 policies (6 Gansu, 2 Zhongwei, 1 Neimenggu) and the P quotes of the
        // 2024 ones (per policy: 特困 full subsidy × 3 years, the 低保 assistance ratio; Neimenggu's income).
        assert_eq!(checked, 9 + 4 * 4 + 1);
        // A quote that is not in its text is reported with the value's place.
        let src = reference_source("gansu-huining-2018").unwrap().replacen("实际补偿比不低于85%", "实际补偿比不低于86%", 1);
        let p = crate::policy::parse_policy(&src).unwrap();
        let r = crate::policy::check_quotes(&p, |id| reference_source_text(id).map(str::to_string));
        assert_eq!(r.problems.len(), 1, "{:#?}", r.problems);
        assert!(r.problems[0].place.contains("insurer_topup") && r.problems[0].place.contains("目标补偿比"), "{}", r.problems[0]);
        assert!(r.problems[0].message.contains("huining-pioneer-2018"), "{}", r.problems[0]);
        // Without the texts, the quotes are not checked: a warning per source, not a problem.
        let r = crate::policy::check_quotes(&p, |_| None);
        assert!(r.problems.is_empty());
        assert_eq!(r.missing_texts, vec![("huining-pioneer-2018".to_string(), "会宁县健康扶贫先锋行动实施意见（2018）".to_string(), 6)]);
    }

    /// Every money and ratio value of the shipped policies is written with its mark (issue 16): a value
    /// key whose value is not `{ value = …, mark = … }` is listed.
    #[test]
    fn every_value_of_a_shipped_policy_carries_its_mark() {
        const VALUE_KEYS: [&str; 18] = [
            "lower_each_by",
            "floor",
            "factor",
            "minus_points",
            "share_of_income",
            "annual",
            "annual_cap",
            "per_claim_cap",
            "outpatient_cap",
            "deductible",
            "amount",
            "ratio",
            "to",
            "points",
            "lower_by",
            "total_at_least",
            "total_above",
            "total_below",
        ];
        fn marked(v: &toml::Value) -> bool {
            v.as_table().is_some_and(|t| t.contains_key("value") && t.contains_key("mark"))
        }
        fn walk(path: &str, v: &toml::Value, bare: &mut Vec<String>) {
            match v {
                toml::Value::Table(t) => {
                    for (k, x) in t {
                        let p = format!("{path}.{k}");
                        if path.ends_with("deductible_by_level") || path.ends_with("ratio_by_level") || VALUE_KEYS.contains(&k.as_str()) {
                            if !marked(x) {
                                bare.push(p);
                            }
                        } else {
                            walk(&p, x, bare);
                        }
                    }
                }
                toml::Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(&format!("{path}[{i}]"), x, bare)),
                _ => {}
            }
        }
        for (name, src) in REFERENCE_POLICIES {
            let v: toml::Value = toml::from_str(src).unwrap();
            let mut bare = Vec::new();
            walk("", v.get("layers").unwrap(), &mut bare);
            for key in ["shared_caps"] {
                if let Some(x) = v.get(key) {
                    walk(key, x, &mut bare);
                }
            }
            for key in ["income", "subsidies"] {
                if let Some(x) = v.get("policy").and_then(|p| p.get(key)) {
                    walk(key, x, &mut bare);
                }
            }
            assert!(bare.is_empty(), "{name}: values without a mark: {bare:?}");
        }
    }
}
