//! The medical-insurance catalogue in the store, on SQLite and PostgreSQL: imports with history,
//! look-ups on a date (also inside a transaction), code maps, the paged search.

use baozhang_core::catalogue::{classify, ChrgitmLv, Qty};
use baozhang_core::Fen;
use baozhang_store::catalogue::{items_on, mapped_codes, CatalogueItem, CatalogueMapRow, CatalogueQuery};

mod common;
use common::{backends, d};

fn item(code: &str, name: &str, lv: &str, bp: i64, ceiling: Option<i64>, begn: &str, end: Option<&str>) -> CatalogueItem {
    CatalogueItem {
        hilist_code: code.into(),
        hilist_name: name.into(),
        list_type: if code.starts_with('X') {
            "101"
        } else if code.starts_with('C') {
            "301"
        } else {
            "201"
        }
        .into(),
        med_chrgitm_type: "09".into(),
        chrgitm_lv: lv.into(),
        selfpay_prop_bp: bp,
        pric_uplmt_fen: ceiling,
        lmt_used_flag: false,
        lmt_scope: String::new(),
        insu_admdvs: "620000".into(),
        begndate: d(begn),
        enddate: end.map(d),
        vali_flag: true,
        updt_time: "2024-01-01 00:00:00".into(),
    }
}

fn catalogue() -> Vec<CatalogueItem> {
    vec![
        item("XA02BCA211A001010100445", "奥美拉唑肠溶胶囊", "01", 0, None, "2024-01-01", None),
        item("XJ01CRA179A001010100445", "阿莫西林克拉维酸钾片", "02", 1_000, None, "2024-01-01", None),
        item("C14010203601001705600000", "一次性使用输液器", "02", 500, Some(800), "2024-01-01", None),
        item("001101000010000", "门诊诊查费", "01", 0, None, "2024-01-01", Some("2024-12-31")),
        item("XN05CFZ061A001010100445", "右佐匹克隆片", "03", 0, None, "2024-03-01", None),
    ]
}

#[tokio::test]
async fn an_import_is_looked_up_on_dates_and_the_same_file_twice_changes_nothing() {
    for db in backends("cat").await {
        let s = &db.store;
        assert_eq!(s.catalogue_size().await.unwrap(), 0);
        let rows = catalogue();
        let r = s.import_catalogue_items("tester", "cat.csv", "sha-1", &rows).await.unwrap();
        assert_eq!((r.rows, r.added, r.superseded, r.unchanged), (5, 5, 0, 0), "{:?}", s.backend());
        assert!(r.import_id.is_some());
        assert_eq!(s.catalogue_size().await.unwrap(), 5);

        let mut c = s.pool().acquire().await.unwrap();
        let codes: Vec<&str> = rows.iter().map(|r| r.hilist_code.as_str()).chain(["UNKNOWN"]).collect();
        // Before every begndate: nothing.
        assert!(items_on(&mut c, &codes, d("2023-12-31")).await.unwrap().is_empty());
        // In 2024-02: four (the 丙类 item begins in March).
        let feb = items_on(&mut c, &codes, d("2024-02-01")).await.unwrap();
        assert_eq!(feb.len(), 4);
        assert!(!feb.contains_key("XN05CFZ061A001010100445"));
        let b = &feb["XJ01CRA179A001010100445"];
        assert_eq!((b.chrgitm_lv.as_str(), b.selfpay_prop_bp), ("02", 1_000));
        // The ceiling reaches the rule and the split.
        let split = classify(&feb["C14010203601001705600000"].rule(), Fen(2_000), Qty::units(2), None, None).unwrap();
        assert_eq!((split.overlmt, split.preselfpay, split.inscp), (Fen(400), Fen(80), Fen(1_520)));
        // After the service's enddate: gone; the 丙类 item is there.
        let next = items_on(&mut c, &codes, d("2025-01-01")).await.unwrap();
        assert!(!next.contains_key("001101000010000"));
        assert_eq!(next["XN05CFZ061A001010100445"].rule().chrgitm_lv, ChrgitmLv::C);
        // On the enddate itself: still valid.
        assert!(items_on(&mut c, &["001101000010000"], d("2024-12-31")).await.unwrap().contains_key("001101000010000"));
        drop(c);

        // The same file again: nothing done, not even recorded.
        let again = s.import_catalogue_items("tester", "cat.csv", "sha-1", &rows).await.unwrap();
        assert_eq!(again.already_imported_as, r.import_id);
        assert_eq!((again.added, again.superseded), (0, 0));
        // The same rows in another file (only update times changed): recorded, nothing changed.
        let touched: Vec<CatalogueItem> =
            rows.iter().map(|r| CatalogueItem { updt_time: "2024-06-01 08:00:00".into(), ..r.clone() }).collect();
        let same = s.import_catalogue_items("tester", "cat2.csv", "sha-2", &touched).await.unwrap();
        assert_eq!((same.added, same.superseded, same.unchanged), (0, 0, 5));
        assert_eq!(s.count("catalogue_items").await.unwrap(), 5);
        assert_eq!(s.catalogue_imports(10).await.unwrap().len(), 2);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn a_changed_row_supersedes_the_live_version_and_keeps_its_history() {
    for db in backends("cathist").await {
        let s = &db.store;
        let rows = catalogue();
        let first = s.import_catalogue_items("tester", "a.csv", "sha-a", &rows).await.unwrap().import_id.unwrap();
        // The 乙类 drug's ratio goes from 10 % to 15 %; a new period is added for the service.
        let mut changed = rows[1].clone();
        changed.selfpay_prop_bp = 1_500;
        let service_2025 = item("001101000010000", "门诊诊查费", "01", 0, None, "2025-01-01", None);
        let r = s.import_catalogue_items("bureau", "b.csv", "sha-b", &[changed.clone(), rows[0].clone(), service_2025]).await.unwrap();
        assert_eq!((r.added, r.superseded, r.unchanged), (1, 1, 1), "{:?}", s.backend());
        let second = r.import_id.unwrap();
        assert_eq!(s.catalogue_size().await.unwrap(), 6);

        let mut tx = s.begin().await.unwrap();
        let now = items_on(&mut tx, &["XJ01CRA179A001010100445", "001101000010000"], d("2025-02-01")).await.unwrap();
        assert_eq!(now["XJ01CRA179A001010100445"].selfpay_prop_bp, 1_500);
        assert_eq!(now["001101000010000"].begndate, d("2025-01-01"));
        tx.rollback().await.unwrap();

        let h = s.catalogue_history("XJ01CRA179A001010100445").await.unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].item.selfpay_prop_bp, h[0].import_id, h[0].superseded_import), (1_000, first, Some(second)));
        assert_eq!((h[1].item.selfpay_prop_bp, h[1].import_id, h[1].superseded_import), (1_500, second, None));
        assert!(!h[0].imported_at.is_empty());
        // Two periods of the service, both live.
        assert_eq!(s.catalogue_history("001101000010000").await.unwrap().iter().filter(|v| v.superseded_import.is_none()).count(), 2);

        // Duplicate keys in one file are refused whole.
        let dup = vec![rows[0].clone(), rows[0].clone()];
        assert!(s.import_catalogue_items("tester", "dup.csv", "sha-dup", &dup).await.is_err());
        assert_eq!(s.catalogue_imports(10).await.unwrap().len(), 2);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn hospital_codes_map_to_national_ones_on_a_date() {
    for db in backends("catmap").await {
        let s = &db.store;
        let m = |inst: &str, own: &str, name: &str, code: &str, begn: &str, end: Option<&str>| CatalogueMapRow {
            fixmedins_code: inst.into(),
            medins_list_codg: own.into(),
            medins_list_name: name.into(),
            hilist_code: code.into(),
            begndate: d(begn),
            enddate: end.map(d),
        };
        let rows = vec![
            m("H62042200001", "YP0001", "奥美拉唑", "XA02BCA211A001010100445", "2024-01-01", None),
            m("H62042200001", "ZL0001", "诊查费", "001101000010000", "2024-01-01", Some("2024-06-30")),
            m("H62042200002", "YP0001", "阿莫西林克拉维酸钾", "XJ01CRA179A001010100445", "2024-01-01", None),
        ];
        let r = s.import_catalogue_map("tester", "map.csv", "sha-m", &rows).await.unwrap();
        assert_eq!((r.added, r.superseded, r.unchanged), (3, 0, 0));
        let mut c = s.pool().acquire().await.unwrap();
        let got = mapped_codes(&mut c, "H62042200001", &["YP0001", "ZL0001", "NONE"], d("2024-03-01")).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["YP0001"], "XA02BCA211A001010100445");
        // Another hospital's same own code maps elsewhere.
        let other = mapped_codes(&mut c, "H62042200002", &["YP0001"], d("2024-03-01")).await.unwrap();
        assert_eq!(other["YP0001"], "XJ01CRA179A001010100445");
        // After the enddate, before the begndate: absent.
        assert!(!mapped_codes(&mut c, "H62042200001", &["ZL0001"], d("2024-07-01")).await.unwrap().contains_key("ZL0001"));
        assert!(mapped_codes(&mut c, "H62042200001", &["YP0001"], d("2023-12-31")).await.unwrap().is_empty());
        drop(c);
        // A corrected mapping supersedes; the same file twice changes nothing.
        let mut fixed = rows[0].clone();
        fixed.hilist_code = "XA02BCA211A001010100446".into();
        let r2 = s.import_catalogue_map("tester", "map2.csv", "sha-m2", &[fixed, rows[1].clone()]).await.unwrap();
        assert_eq!((r2.added, r2.superseded, r2.unchanged), (0, 1, 1));
        assert!(s.import_catalogue_map("tester", "map2.csv", "sha-m2", &rows).await.unwrap().already_imported_as.is_some());
        assert_eq!(s.catalogue_map("H62042200001").await.unwrap()[0].hilist_code, "XA02BCA211A001010100446");
        assert_eq!(s.count("catalogue_maps").await.unwrap(), 4);
        db.drop_pg().await;
    }
}

#[tokio::test]
async fn the_catalogue_is_searched_and_paged() {
    for db in backends("catpage").await {
        let s = &db.store;
        let mut rows = catalogue();
        for i in 0..30 {
            rows.push(item(
                &format!("C0101{i:02}000000000000000000"),
                &format!("医用耗材{i:02}"),
                "02",
                1_000,
                Some(100 + i),
                "2024-01-01",
                None,
            ));
        }
        rows.push(item("001201000010000", "100%_特殊\\名称", "01", 0, None, "2024-01-01", None));
        s.import_catalogue_items("tester", "big.csv", "sha-big", &rows).await.unwrap();
        let q = |f: fn(&mut CatalogueQuery)| {
            let mut q = CatalogueQuery::default();
            f(&mut q);
            q
        };
        let (total, page) = s.catalogue_page(&CatalogueQuery::default(), 1, 10).await.unwrap();
        assert_eq!((total, page.len()), (36, 10));
        let (_, page4) = s.catalogue_page(&CatalogueQuery::default(), 4, 10).await.unwrap();
        assert_eq!(page4.len(), 6);
        assert!(page[0].hilist_code < page[1].hilist_code);
        // Code prefix (case-insensitive input), name part, list type.
        let (t, _) = s.catalogue_page(&q(|q| q.code = Some("c0101".into())), 1, 50).await.unwrap();
        assert_eq!(t, 30);
        let (t, found) = s.catalogue_page(&q(|q| q.text = Some("输液器".into())), 1, 50).await.unwrap();
        assert_eq!((t, found[0].hilist_code.as_str()), (1, "C14010203601001705600000"));
        let (t, _) = s.catalogue_page(&q(|q| q.text = Some("XA02".into())), 1, 50).await.unwrap();
        assert_eq!(t, 1);
        let (t, _) = s.catalogue_page(&q(|q| q.list_type = Some("101".into())), 1, 50).await.unwrap();
        assert_eq!(t, 3);
        // LIKE metacharacters are literal.
        let (t, _) = s.catalogue_page(&q(|q| q.name_contains = Some("100%_".into())), 1, 50).await.unwrap();
        assert_eq!(t, 1);
        let (t, _) = s.catalogue_page(&q(|q| q.name_contains = Some("%".into())), 1, 50).await.unwrap();
        assert_eq!(t, 1);
        // Valid on a date: the service ended, the 丙类 item not begun.
        let (t, _) = s.catalogue_page(&CatalogueQuery { valid_on: Some(d("2025-02-01")), ..Default::default() }, 1, 50).await.unwrap();
        assert_eq!(t, 35);
        let (t, _) = s.catalogue_page(&CatalogueQuery { valid_on: Some(d("2024-02-01")), ..Default::default() }, 1, 50).await.unwrap();
        assert_eq!(t, 35);
        let (t, _) =
            s.catalogue_page(&CatalogueQuery { updated_since: Some("2024-06-01".into()), ..Default::default() }, 1, 50).await.unwrap();
        assert_eq!(t, 0);
        db.drop_pg().await;
    }
}
