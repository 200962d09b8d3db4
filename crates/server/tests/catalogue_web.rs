//! 医保目录 in the workbench through HTTP, on both backends: every role reads it, the bureau uploads
//! catalogue and map files (CSRF, bounded, whole or nothing, every bad row listed), search and pages.

mod common;

use baozhang_server::auth::{create_user, Role};
use baozhang_server::testkit::COUNTY;
use common::{spawn_app, Browser, BACKENDS, PASSWORD};

const HEADER: &str = "hilist_code,hilist_name,list_type,med_chrgitm_type,chrgitm_lv,selfpay_prop,hilist_pric_uplmt_amt,lmt_used_flag,lmt_scope,insu_admdvs,begndate,enddate,vali_flag,updt_time\n";

/// `n` consumables, one a row, with a ceiling and a ratio.
fn consumables(n: usize) -> String {
    let mut s = String::from(HEADER);
    for i in 0..n {
        s.push_str(&format!(
            "C{i:026},测试耗材{i:05}（示例）,301,08,02,0.1,{}.50,0,,620000,2018-01-01,,1,2018-01-01 00:00:00\n",
            i % 900 + 1
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_catalogue_page_is_read_by_every_role_and_filled_by_the_bureau() {
    for db in BACKENDS {
        let app = spawn_app(db, 1).await;
        for (user, role, scope) in
            [("bureau1", Role::Bureau, COUNTY), ("cadre1", Role::Cadre, "620422100201"), ("hosp1", Role::Hospital, "H62042200001")]
        {
            create_user(&app.store, "test", user, "", role, scope, PASSWORD).await.unwrap();
        }
        let bureau = Browser::login(&app.base, "bureau1").await;
        let cadre = Browser::login(&app.base, "cadre1").await;
        let hosp = Browser::login(&app.base, "hosp1").await;

        // Empty: said so; the upload form only for the bureau; the nav links to the page.
        let html = bureau.get("/web/catalogue").await.text();
        assert!(html.contains("尚未导入医保目录") && html.contains("data-testid=\"catalogue-upload\""), "{db:?}: {html}");
        assert!(html.contains("href=\"/web/catalogue\""), "{db:?}: nav");
        let r = cadre.get("/web/catalogue").await;
        assert_eq!(r.status, 200, "{db:?}");
        assert!(!r.text().contains("data-testid=\"catalogue-upload\""), "{db:?}");
        assert_eq!(hosp.get("/web/catalogue").await.status, 200, "{db:?}");
        let r = cadre.post_multipart("/web/catalogue/import", &[("kind", "items")], "cat.csv", consumables(3).as_bytes()).await;
        assert_eq!(r.status, 403, "{db:?}: {}", r.text());
        assert_eq!(app.store.catalogue_size().await.unwrap(), 0, "{db:?}");

        // A file with a bad row: refused whole, every bad row listed.
        let mut bad = consumables(5);
        bad.push_str("XA01,坏行,101,09,04,,,0,,620000,2018-01-01,,1,\nXA02,坏行二,101,09,02,,-1,0,,620000,2018-02-30,,1,\n");
        let r = bureau.post_multipart("/web/catalogue/import", &[("kind", "items")], "bad.csv", bad.as_bytes()).await;
        assert_eq!(r.status, 200, "{db:?}: {}", r.text());
        let html = r.text();
        assert!(html.contains("整个文件未导入") && html.contains("收费项目等级无效") && html.contains("不是有效日期"), "{db:?}: {html}");
        assert!(!html.contains("/tmp/"), "{db:?}: a temporary path on the page: {html}");
        assert_eq!(app.store.catalogue_size().await.unwrap(), 0, "{db:?}: half applied");

        // Over the admission's 1 MB body bound (this route streams its body): imported.
        let big = consumables(12_000);
        assert!(big.len() > 1 << 20);
        let r = bureau.post_multipart("/web/catalogue/import", &[("kind", "items")], "big.csv", big.as_bytes()).await;
        assert_eq!(r.status, 200, "{db:?}: {}", r.text());
        assert!(r.text().contains("新增 12000"), "{db:?}: {}", r.text());
        // The same file again: nothing.
        let r = bureau.post_multipart("/web/catalogue/import", &[("kind", "items")], "big.csv", big.as_bytes()).await;
        assert!(r.text().contains("导入过，未做任何更改"), "{db:?}: {}", r.text());
        // The shipped sample and its map.
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/catalogue");
        let sample = std::fs::read(data.join("sample_catalogue.csv")).unwrap();
        let r = bureau.post_multipart("/web/catalogue/import", &[("kind", "items")], "sample_catalogue.csv", &sample).await;
        assert!(r.text().contains("新增 79"), "{db:?}: {}", r.text());
        let map = std::fs::read(data.join("sample_hospital_map.csv")).unwrap();
        let r = bureau.post_multipart("/web/catalogue/import", &[("kind", "map")], "sample_hospital_map.csv", &map).await;
        assert!(r.text().contains("医疗机构目录对照") && r.text().contains("新增 13"), "{db:?}: {}", r.text());
        assert_eq!(app.store.catalogue_size().await.unwrap(), 12_079, "{db:?}");

        // Search by name and by code, in words; pages of 50.
        let html = hosp.get(&format!("/web/catalogue?q={}", "%E5%A5%A5%E7%BE%8E%E6%8B%89%E5%94%91")).await.text();
        assert!(html.contains("XA02BCA211A001010100445") && html.contains("西药中成药") && html.contains("甲类"), "{db:?}: {html}");
        let prefix = format!("C{}1", "0".repeat(24));
        let html = cadre.get(&format!("/web/catalogue?q={prefix}&list_type=301")).await.text();
        assert!(html.contains("共 10 项"), "{db:?}: C…10 to C…19: {html}");
        assert!(
            html.contains("10.00%") && html.contains("13.50 元") && html.contains("乙类") && html.contains("医用耗材"),
            "{db:?}: {html}"
        );
        let html = cadre.get("/web/catalogue?list_type=301&page=3").await.text();
        assert!(html.contains("第 3/") && html.contains("page=2") && html.contains("page=4"), "{db:?}: {html}");
        assert_eq!(cadre.get("/web/catalogue?on=2018-02-30").await.status, 400, "{db:?}");
        app.stop().await;
    }
}
