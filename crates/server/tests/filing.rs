//! Care outside the insured area through the national interface (issue 16, R-POL-22): a person of
//! Huining (620422) admitted at a 三级甲等 hospital in Kunming (530102) is settled by the Huining
//! 2024–2026 policy as unfiled care (按 60% 结算) until their home hospital files a referral with 2501
//! (转院备案, 按 85% 结算); revoking it with 2502 makes it unfiled again — on SQLite and PostgreSQL.

mod common;

use baozhang_ingest::rosters::{import_file, ImportOptions, RosterKind};
use baozhang_server::testkit::NatClient;
use common::{ok, refused, spawn_app, BACKENDS};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_filing_decides_how_care_outside_the_province_is_settled() {
    for db in BACKENDS {
        let app = spawn_app(db, 2).await;
        let p = &app.people[1];
        // Insured in 2025 too (an ordinary resident).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enrol2025.csv");
        std::fs::write(
            &path,
            format!(
                "人员编号,证件号码,姓名,参保年度,参保状态,参保地区划,人员类别,标识日期,个人缴费,资助金额,资助来源\n{},{},测试1,2025,正常参保,620422,,2025-01-01,400,0,\n",
                p.psn_no, p.id_no
            ),
        )
        .unwrap();
        let rep = import_file(&app.store, RosterKind::Enrolment, &path, &ImportOptions::default(), &mut |_| {}).await.unwrap();
        assert_eq!(rep.rows_rejected, 0, "{db:?}");

        // The Kunming hospital: level 3, registered as 三级甲等.
        let secret =
            baozhang_server::api::register_institution(&app.store, "test", "H53010200001", "昆明测试医院", 3, "530102").await.unwrap();
        assert!(app.store.set_institution_site("test", "H53010200001", 2, false).await.unwrap());
        let mut km = NatClient::new(&app.base, "H53010200001", &secret);
        km.sign_in().await.unwrap();
        let mdtrt = km.admit(p, "2025-03-01").await.unwrap();
        let input = NatClient::settle_input(p, &mdtrt, "10000.00", "0", "0", "0", "10000.00");
        let basic = |r: &serde_json::Value| r["output"]["setlinfo"]["hifp_pay"].to_string().trim_matches('"').to_string();

        // Unfiled: tier 三级甲等 (deductible 1,400, 60 %), 按 60% 结算: 8,600 × 60 % × 60 % = 3,096.00.
        let pre = km.call("2303", input.clone()).await.unwrap();
        ok(&pre);
        assert_eq!(basic(&pre), "3096.00", "{db:?}: {pre}");

        // A referral is filed by a hospital that treats the person: before the home hospital has a visit
        // of theirs it is refused, with the same words as for a 人员编号 that does not exist.
        let body = |psn: &str, area: &str| {
            json!({"refmedin": {"psn_no": psn, "insutype": "390", "diag_code": "C16.900", "diag_name": "胃恶性肿瘤",
                "reflin_medins_no": "H53010200001", "reflin_medins_name": "昆明测试医院", "mdtrtarea_admdvs": area,
                "hosp_agre_refl_flag": "1", "refl_type": "2", "refl_date": "2025-02-27", "refl_rea": "病情需要", "refl_opnn": "同意",
                "begndate": "2025-02-27", "enddate": "2025-12-31"}})
        };
        let untreated = refused(&app.hospital.call("2501", body(&p.psn_no, "530102")).await.unwrap());
        let nobody = refused(&app.hospital.call("2501", body("P99999999999", "530102")).await.unwrap());
        assert_eq!(untreated, nobody, "{db:?}: the refusal tells nothing of whether the 人员编号 exists");
        assert!(untreated.contains("就诊记录"), "{db:?}: {untreated}");
        app.hospital.admit(p, "2025-02-20").await.unwrap();
        // The target's area must be where the target is.
        let r = app.hospital.call("2501", body(&p.psn_no, "620422")).await.unwrap();
        assert!(refused(&r).contains("mdtrtarea_admdvs"), "{db:?}: {r}");

        // The home hospital files the referral to the Kunming hospital (2501).
        let filing = app
            .hospital
            .call(
                "2501",
                json!({"refmedin": {"psn_no": p.psn_no, "insutype": "390", "diag_code": "C16.900", "diag_name": "胃恶性肿瘤",
                    "reflin_medins_no": "H53010200001", "reflin_medins_name": "昆明测试医院", "mdtrtarea_admdvs": "530102",
                    "hosp_agre_refl_flag": "1", "refl_type": "2", "refl_date": "2025-02-27", "refl_rea": "病情需要", "refl_opnn": "同意",
                    "begndate": "2025-02-27", "enddate": "2025-12-31"}}),
            )
            .await
            .unwrap();
        ok(&filing);
        let sn = filing["output"]["result"]["trt_dcla_detl_sn"].as_str().unwrap().to_string();
        // Filed referral: 按 85% 结算: 8,600 × 60 % × 85 % = 4,386.00.
        let pre = km.call("2303", input.clone()).await.unwrap();
        assert_eq!(basic(&pre), "4386.00", "{db:?}: {pre}");

        // A filing for another institution, or by one that did not declare it, changes nothing.
        let r = km.call("2502", json!({"data": {"trt_dcla_detl_sn": sn, "psn_no": p.psn_no}})).await.unwrap();
        assert!(refused(&r).contains("转院备案"), "{db:?}: only the declaring institution revokes: {r}");
        // A filing to one's own institution, or with dates the wrong way round, is refused with the field.
        let r = app
            .hospital
            .call(
                "2501",
                json!({"refmedin": {"psn_no": p.psn_no, "diag_code": "C16.900", "reflin_medins_no": "H53010200001", "mdtrtarea_admdvs": "530102",
                    "refl_type": "2", "refl_date": "2025-02-27", "begndate": "2025-03-01", "enddate": "2025-02-01"}}),
            )
            .await
            .unwrap();
        assert!(refused(&r).contains("enddate"), "{db:?}: {r}");

        // 2502 by the declaring hospital: unfiled again.
        ok(&app.hospital.call("2502", json!({"data": {"trt_dcla_detl_sn": sn, "psn_no": p.psn_no}})).await.unwrap());
        let pre = km.call("2303", input.clone()).await.unwrap();
        assert_eq!(basic(&pre), "3096.00", "{db:?}: {pre}");
        app.stop().await;
    }
}
