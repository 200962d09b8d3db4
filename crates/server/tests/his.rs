//! A hospital information system as it really connects: through a gateway account with the national
//! gateway's signature, fee lines by catalogue code only, a lost answer reversed with 2601, the day's
//! totals and detail statement with their files, discharge, queries and sign-out — on SQLite and
//! PostgreSQL.

mod common;

use baozhang_ingest::stmt_file::{self, DetailRow, Limits, StmtResult};
use baozhang_server::testkit::{NatClient, SeedPerson};
use baozhang_store::catalogue::CatalogueMapRow;
use baozhang_store::service::Account;
use common::{assert_ledger_ok, ok, refused, spawn_app, App, BACKENDS};
use serde_json::{json, Value};

const PAASID: &str = "PAAS-HUINING-RMYY";
const TOKEN: &str = "t0ken-issued-by-the-bureau-8f2c";

/// Loads the sample catalogue and a code map for the test hospital, opens a gateway account for it, and
/// returns a client that talks as a real HIS does (gateway signature, text/plain, `/<service>/<infno>`).
async fn his(app: &App) -> NatClient {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/catalogue/");
    let items = baozhang_ingest::catalogue::read_items(
        &std::path::PathBuf::from(dir).join("sample_catalogue.csv"),
        &baozhang_ingest::catalogue::limits(),
    )
    .unwrap();
    app.store.import_catalogue_items("test", "sample_catalogue.csv", "sha-test", &items).await.unwrap();
    let map = vec![CatalogueMapRow {
        fixmedins_code: app.hospital.fixmedins_code.clone(),
        medins_list_codg: "HIS-YP-0001".into(),
        medins_list_name: "奥美拉唑肠溶胶囊20mg".into(),
        hilist_code: "XA02BCA211A001010100445".into(),
        begndate: 20180101,
        enddate: None,
    }];
    app.store.import_catalogue_map("test", "map.csv", "sha-map", &map).await.unwrap();
    let account = Account {
        paasid: PAASID.into(),
        name: "会宁县人民医院 HIS".into(),
        scheme: "gateway".into(),
        token: TOKEN.into(),
        prev_token: None,
        prev_until: None,
        disabled: false,
        institutions: vec![app.hospital.fixmedins_code.clone()],
    };
    app.store.add_account("test", &account).await.unwrap();
    let mut c = NatClient::new(&app.base, &app.hospital.fixmedins_code, "not-used").through_gateway(PAASID, TOKEN);
    c.content_type = "text/plain;charset=utf-8".into();
    c.prefix = "G".into();
    c.sign_in().await.unwrap();
    c
}

fn line(sn: &str, p: &SeedPerson, mdtrt: &str, code: (&str, &str), amount: &str, cnt: &str, pric: &str) -> Value {
    let mut l = json!({"feedetl_sn": sn, "mdtrt_id": mdtrt, "psn_no": p.psn_no, "med_type": "21", "fee_ocur_time": "2018-06-02 09:00:00",
        "det_item_fee_sumamt": amount, "cnt": cnt, "pric": pric, "bilg_dept_codg": "A03", "bilg_dr_codg": "D001", "hosp_appr_flag": "1"});
    l[code.0] = Value::String(code.1.to_string());
    l
}

fn money(v: &Value) -> String {
    v.to_string().trim_matches('"').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inpatient_stay_walks_as_a_real_his_sends_it() {
    for db in BACKENDS {
        let app = spawn_app(db, 6).await;
        let mut h = his(&app).await;
        let p = &app.people[0];

        // 1101: the person behind the certificate, named to the window that holds it.
        let info =
            h.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no, "psn_cert_type": "01"}})).await.unwrap();
        ok(&info);
        for k in ["warn_msg", "cainfo", "signtype"] {
            assert!(info.as_object().unwrap().contains_key(k), "{db:?}: every answer carries {k}: {info}");
        }
        assert_eq!(info["output"]["baseinfo"]["certno"], p.id_no.as_str());
        assert!(info["output"]["baseinfo"].get("exp_content").is_some());

        // 2401 at /fsi/api/<service>/<infno>: answered as output.result.
        h.path = "/fsi/api/hospService/2401".into();
        let adm = h
            .call(
                "2401",
                json!({"mdtrtinfo": {"psn_no": p.psn_no, "insutype": "390", "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no,
                "med_type": "21", "ipt_no": "ZY2018000123", "begntime": "2018-06-01 08:00:00", "adm_diag_dscr": "肺炎",
                "dscg_maindiag_code": "J18.900", "dscg_maindiag_name": "肺炎"},
                "diseinfo": [{"diag_type": "1", "maindiag_flag": "1", "diag_srt_no": "1", "diag_code": "J18.900", "diag_name": "肺炎"}]}),
            )
            .await
            .unwrap();
        ok(&adm);
        h.path = "/fsi/api/fsiIntegratedService".into();
        let mdtrt = adm["output"]["result"]["mdtrt_id"].as_str().unwrap().to_string();
        assert_eq!(adm["output"]["result"]["ipt_otp_no"], "ZY2018000123");

        // 2301 with catalogue codes only: the platform classifies each line.
        let bad = h
            .call("2301", json!({"feedetail": [line("9", p, &mdtrt, ("med_list_codg", "XX-NOT-IN-CATALOGUE"), "10.00", "1", "10")]}))
            .await
            .unwrap();
        assert!(refused(&bad).contains("XX-NOT-IN-CATALOGUE"), "{db:?}: the unknown code is named: {bad}");
        let ended = h
            .call("2301", json!({"feedetail": [line("9", p, &mdtrt, ("med_list_codg", "001201000010000"), "10.00", "1", "10")]}))
            .await
            .unwrap();
        assert!(refused(&ended).contains("有效期"), "{db:?}: an item not valid on the day is refused: {ended}");
        let lines = json!({"feedetail": [
            line("1", p, &mdtrt, ("medins_list_codg", "HIS-YP-0001"), "120.00", "4", "30"),
            line("2", p, &mdtrt, ("med_list_codg", "XA02BCL123A001010102343"), "200.00", "10", "20"),
            line("3", p, &mdtrt, ("med_list_codg", "001102000010000"), "300.00", "10", "30"),
            line("4", p, &mdtrt, ("med_list_codg", "002203000010000"), "480.00", "1", "480"),
            line("5", p, &mdtrt, ("med_list_codg", "001301000010000"), "5.00", "1", "5"),
        ]});
        let up = h.call("2301", lines.clone()).await.unwrap();
        ok(&up);
        let r = up["output"]["result"].as_array().unwrap();
        let split =
            |i: usize| ["fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt", "chrgitm_lv"].map(|k| money(&r[i][k]));
        assert_eq!(split(0), ["0.00", "0.00", "0.00", "120.00", "01"], "{db:?}: 甲类 through the hospital's own code");
        assert_eq!(split(1), ["0.00", "0.00", "20.00", "180.00", "02"], "{db:?}: 乙类 10 %");
        assert_eq!(split(2), ["0.00", "50.00", "0.00", "250.00", "01"], "{db:?}: bed over its 25-yuan ceiling");
        assert_eq!(split(3), ["0.00", "0.00", "48.00", "432.00", "02"]);
        assert_eq!(split(4), ["5.00", "0.00", "0.00", "0.00", "03"], "{db:?}: 丙类");
        assert_eq!(money(&r[1]["selfpay_prop"]), "0.1");
        assert_eq!(money(&r[2]["pric_uplmt_amt"]), "25.00");
        assert_eq!(r[0]["med_list_codg"], "XA02BCA211A001010100445");
        assert_eq!(r[0]["med_chrgitm_type"], "09", "{db:?}: the item's 医疗收费项目类别 from the catalogue");
        assert!(r.iter().all(|l| l["lmt_used_flag"] == "0"), "{db:?}: none of these items is restricted");

        // 2303 then 2304, whose answer is lost.
        let settle_in = json!({"data": {"psn_no": p.psn_no, "mdtrt_id": mdtrt, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no,
            "insutype": "390", "medfee_sumamt": "1105.00", "psn_setlway": "01", "acct_used_flag": "0", "mid_setl_flag": "0"}});
        let pre = h.call("2303", settle_in.clone()).await.unwrap();
        ok(&pre);
        let lost = h.next_msgid();
        let first = h.call_with("2304", &lost, settle_in.clone()).await.unwrap();
        ok(&first);
        let s1 = first["output"]["setlinfo"].clone();
        assert_eq!(money(&s1["medfee_sumamt"]), "1105.00");
        assert_eq!(money(&s1["inscp_scp_amt"]), "982.00");
        assert_eq!(s1["certno"], p.id_no.as_str(), "{db:?}: setlinfo names the person: {s1}");
        for k in [
            "psn_name",
            "gend",
            "brdy",
            "age",
            "insutype",
            "psn_type",
            "setl_time",
            "med_type",
            "clr_type",
            "clr_way",
            "clr_optins",
            "medins_setl_id",
        ] {
            assert!(s1.get(k).is_some_and(|v| !v.is_null()), "{db:?}: setlinfo.{k}: {s1}");
        }
        let ratio = money(&s1["pool_prop_selfpay"]);
        assert!(ratio.starts_with("0.") || ratio == "1.0000", "{db:?}: pool_prop_selfpay is a ratio, not an amount: {ratio}");
        assert!(first["output"]["setldetail"].as_array().unwrap().iter().all(|d| d.get("crt_payb_lmt_amt").is_some()));

        // 2601: the HIS never saw the answer, so it reverses that message.
        let rev = h.call("2601", json!({"data": {"psn_no": p.psn_no, "omsgid": lost, "oinfno": "2304"}})).await.unwrap();
        ok(&rev);
        assert!(rev["output"]["data"]["rvs_rslt"].as_str().unwrap().contains("已冲正"), "{rev}");
        let again = h.call("2601", json!({"data": {"psn_no": p.psn_no, "omsgid": lost, "oinfno": "2304"}})).await.unwrap();
        ok(&again);
        assert!(
            again["output"]["data"]["rvs_rslt"].as_str().unwrap().contains("无需"),
            "{db:?}: a second reversal changes nothing: {again}"
        );
        let never = h.call("2601", json!({"data": {"psn_no": p.psn_no, "omsgid": "NEVERARRIVED0001", "oinfno": "2304"}})).await.unwrap();
        ok(&never);
        assert!(never["output"]["data"]["rvs_rslt"].as_str().unwrap().contains("无需冲正"), "{never}");
        let rep = assert_ledger_ok(&app.store).await;
        assert_eq!((rep.settlements, rep.cancellations), (1, 1), "{db:?}");

        // Settled again, for good; another institution cannot reverse it.
        let second = h.call("2304", settle_in.clone()).await.unwrap();
        ok(&second);
        let s2 = second["output"]["setlinfo"].clone();
        let setl_id = s2["setl_id"].as_str().unwrap().to_string();
        let other = app.other_hospital("H62042200002").await;
        let foreign = other.call("2601", json!({"data": {"psn_no": p.psn_no, "omsgid": lost, "oinfno": "2304"}})).await.unwrap();
        assert!(foreign["infcode"] != 0 || foreign["output"]["data"]["rvs_rslt"].as_str().unwrap().contains("无需"), "{foreign}");
        assert_eq!(app.store.settlement(&setl_id).await.unwrap().unwrap().cancelled_by, None, "{db:?}: still standing");

        // 3201: totals balanced, then not.
        let fund = money(&s2["fund_pay_sumamt"]);
        let totals = |cnt: i64, medfee: &str| {
            json!({"data": {"insutype": "390", "clr_type": "21", "setl_optins": "620422", "stmt_begndate": "2018-01-01", "stmt_enddate": "2018-12-31",
                "medfee_sumamt": medfee, "fund_pay_sumamt": fund, "acct_pay": "0", "fixmedins_setl_cnt": cnt.to_string()}})
        };
        let bal = h.call("3201", totals(1, "1105.00")).await.unwrap();
        ok(&bal);
        assert_eq!(bal["output"]["stmtinfo"]["stmt_rslt"], "0", "{db:?}: {bal}");
        let unbal = h.call("3201", totals(2, "2210.00")).await.unwrap();
        ok(&unbal);
        assert_eq!(unbal["output"]["stmtinfo"]["stmt_rslt"], "1");
        assert!(unbal["output"]["stmtinfo"]["stmt_rslt_dscr"].as_str().unwrap().contains("结算笔数"), "{unbal}");

        // 9101 → 3202 → 9102: the detail file, one row missing and one the centre never had.
        let centre = app.store.centre_rows(&h.fixmedins_code, 20180101, 20181231, None, 100).await.unwrap();
        assert_eq!(centre.len(), 3, "{db:?}: settlement, its cancellation, the settlement again");
        let mut rows: Vec<DetailRow> = centre
            .iter()
            .map(|c| DetailRow {
                setl_id: c.setl_id.clone(),
                mdtrt_id: c.mdtrt_id.clone(),
                psn_no: c.psn_no.clone(),
                medfee_sumamt: baozhang_core::Fen(c.medfee_sumamt),
                fund_pay_sumamt: baozhang_core::Fen(c.fund_pay_sumamt),
                acct_pay: baozhang_core::Fen(0),
                refd_setl_flag: c.reverses.is_some(),
            })
            .collect();
        rows.remove(0);
        rows.push(DetailRow {
            setl_id: "HIS-ONLY-1".into(),
            mdtrt_id: mdtrt.clone(),
            psn_no: p.psn_no.clone(),
            medfee_sumamt: baozhang_core::Fen(100),
            fund_pay_sumamt: baozhang_core::Fen(0),
            acct_pay: baozhang_core::Fen(0),
            refd_setl_flag: false,
        });
        let zip = stmt_file::write_detail_zip(&rows, "detail.txt");
        let b64 = base64_std(&zip);
        let upl = h
            .call("9101", json!({"fsUploadIn": {"in": b64, "filename": "detail.txt.zip", "fixmedins_code": h.fixmedins_code}}))
            .await
            .unwrap();
        ok(&upl);
        let fq = upl["output"]["file_qury_no"].as_str().unwrap().to_string();
        let stmt = h
            .call("3202", json!({"data": {"setl_optins": "620422", "file_qury_no": fq, "stmt_begndate": "2018-01-01", "stmt_enddate": "2018-12-31",
                "medfee_sumamt": "1105.00", "fund_pay_sumamt": fund, "cash_payamt": money(&s2["psn_part_amt"]), "fixmedins_setl_cnt": "1"}}))
            .await
            .unwrap();
        ok(&stmt);
        let result_no = stmt["output"]["fileinfo"]["file_qury_no"].as_str().unwrap().to_string();
        let body = serde_json::to_vec(&h.envelope(
            "9102",
            &h.next_msgid(),
            json!({"fsDownloadIn": {"file_qury_no": result_no, "filename": "", "fixmedins_code": h.fixmedins_code}}),
        ))
        .unwrap();
        let bytes = post_bytes(&h, body).await;
        let result = stmt_file::read_result_zip(&bytes, &Limits::default()).unwrap();
        let count = |k: StmtResult| result.iter().filter(|r| r.stmt_rslt == k).count();
        assert_eq!((count(StmtResult::Balanced), count(StmtResult::CentreOnly), count(StmtResult::InstitutionOnly)), (2, 1, 1), "{db:?}");
        let stranger = other.call("9102", json!({"fsDownloadIn": {"file_qury_no": result_no}})).await.unwrap();
        assert_eq!(stranger["infcode"], -1, "{db:?}: another institution cannot download the file");

        // 2402 discharge, 5203 query, 4101A list, 9002 sign-out.
        ok(&h.call("2402", json!({"dscginfo": {"mdtrt_id": mdtrt, "psn_no": p.psn_no, "insutype": "390", "endtime": "2018-06-10 10:00:00", "dise_codg": "J18.900", "dscg_way": "1"}})).await.unwrap());
        let q = h.call("5203", json!({"data": {"psn_no": p.psn_no, "setl_id": setl_id, "mdtrt_id": mdtrt}})).await.unwrap();
        ok(&q);
        assert_eq!(money(&q["output"]["setlinfo"]["fund_pay_sumamt"]), fund);
        assert_eq!(q["output"]["setlinfo"]["vali_flag"], "1");
        let fees = h.call("5204", json!({"data": {"psn_no": p.psn_no, "mdtrt_id": mdtrt}})).await.unwrap();
        assert_eq!(fees["output"]["feedetail"].as_array().unwrap().len(), 5);
        let list = h.call("4101A", json!({"setlinfo": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no, "psn_name": "x"}, "diseinfo": [], "iteminfo": []})).await.unwrap();
        ok(&list);
        assert_eq!(app.store.settlement_lists(Some(&h.fixmedins_code), 10).await.unwrap().len(), 1);
        ok(&h.call("9002", json!({"signOut": {"sign_no": h.sign_no, "opter_no": "001"}})).await.unwrap());
        let after = h.call("5201", json!({"data": {"psn_no": p.psn_no}})).await.unwrap();
        assert!(refused(&after).contains("签到"), "{db:?}: signed out: {after}");
        assert_ledger_ok(&app.store).await;
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outpatient_visit_and_a_reversed_cancellation() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = his(&app).await;
        let p = &app.people[0];
        let reg = h.call("2201", json!({"data": {"psn_no": p.psn_no, "insutype": "390", "begntime": "2018-03-01 09:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": p.id_no, "ipt_otp_no": "MZ0001", "atddr_no": "D01", "dr_name": "李医生", "dept_code": "A01", "dept_name": "内科", "caty": "A03"}}))
            .await
            .unwrap();
        ok(&reg);
        let mdtrt = reg["output"]["data"]["mdtrt_id"].as_str().unwrap().to_string();
        ok(&h
            .call(
                "2203",
                json!({"mdtrtinfo": {"mdtrt_id": mdtrt, "psn_no": p.psn_no, "med_type": "14", "begntime": "2018-03-01 09:00:00",
            "dise_codg": "E11.900", "dise_name": "2型糖尿病"}, "diseinfo": []}),
            )
            .await
            .unwrap());
        let mut l1 = line("1", p, &mdtrt, ("med_list_codg", "XA10BAE045A001010104187"), "60.00", "2", "30");
        l1["chrg_bchno"] = json!("B1");
        let mut l2 = line("2", p, &mdtrt, ("med_list_codg", "XA02BCL123A001010102343"), "40.00", "2", "20");
        l2["chrg_bchno"] = json!("B2");
        // A restricted item (限制使用) the hospital did not approve (hosp_appr_flag 2) is wholly self-paid.
        let mut l3 = line("3", p, &mdtrt, ("med_list_codg", "XA10AEG112B002010100216"), "90.00", "1", "90");
        l3["chrg_bchno"] = json!("B2");
        l3["hosp_appr_flag"] = json!("2");
        let up = h.call("2204", json!({"feedetail": [l1, l2, l3]})).await.unwrap();
        ok(&up);
        let restricted = &up["output"]["result"][2];
        assert_eq!(
            (restricted["lmt_used_flag"].as_str(), money(&restricted["fulamt_ownpay_amt"])),
            (Some("1"), "90.00".to_string()),
            "{db:?}: {restricted}"
        );
        // 2205 withdraws one charge batch; the other stays.
        ok(&h.call("2205", json!({"data": {"mdtrt_id": mdtrt, "psn_no": p.psn_no, "chrg_bchno": "B2"}})).await.unwrap());
        let fees = h.call("5204", json!({"data": {"psn_no": p.psn_no, "mdtrt_id": mdtrt}})).await.unwrap();
        assert_eq!(fees["output"]["feedetail"].as_array().unwrap().len(), 1, "{db:?}: {fees}");
        let input = json!({"data": {"psn_no": p.psn_no, "mdtrt_id": mdtrt, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no, "med_type": "14",
            "medfee_sumamt": "60.00", "psn_setlway": "01", "insutype": "390", "acct_used_flag": "0"}});
        ok(&h.call("2206", input.clone()).await.unwrap());
        let done = h.call("2207", input.clone()).await.unwrap();
        ok(&done);
        let setl_id = done["output"]["setlinfo"]["setl_id"].as_str().unwrap().to_string();
        let cancel_msg = h.next_msgid();
        let cancelled =
            h.call_with("2208", &cancel_msg, json!({"data": {"setl_id": setl_id, "mdtrt_id": mdtrt, "psn_no": p.psn_no}})).await.unwrap();
        ok(&cancelled);
        // The cancellation's answer was lost: reversing it settles the visit again from its bill.
        let rev = h.call("2601", json!({"data": {"psn_no": p.psn_no, "omsgid": cancel_msg, "oinfno": "2208"}})).await.unwrap();
        ok(&rev);
        let new_id = rev["output"]["data"]["setl_id"].as_str().unwrap_or_else(|| panic!("{db:?}: {rev}")).to_string();
        assert_ne!(new_id, setl_id);
        let now = app.store.settlement(&new_id).await.unwrap().unwrap();
        assert_eq!(now.medfee_sumamt, 6000);
        let twice = h.call("2601", json!({"data": {"psn_no": p.psn_no, "omsgid": cancel_msg, "oinfno": "2208"}})).await.unwrap();
        ok(&twice);
        assert!(twice["output"]["data"]["rvs_rslt"].as_str().unwrap().contains("无需"), "{twice}");
        let visits = h.call("5201", json!({"data": {"psn_no": p.psn_no}})).await.unwrap();
        assert_eq!(visits["output"]["mdtrtinfo"][0]["setl_flag"], "1");
        // A registration with nothing on it is cancelled with 2202; one reversed with 2601 likewise.
        let reg2_msg = h.next_msgid();
        let reg2 = h
            .call_with(
                "2201",
                &reg2_msg,
                json!({"data": {"psn_no": p.psn_no, "begntime": "2018-04-01 09:00:00", "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}}),
            )
            .await
            .unwrap();
        ok(&reg2);
        ok(&h.call("2601", json!({"data": {"psn_no": p.psn_no, "omsgid": reg2_msg, "oinfno": "2201"}})).await.unwrap());
        let m = app.store.mdtrt(reg2["output"]["data"]["mdtrt_id"].as_str().unwrap()).await.unwrap().unwrap();
        assert_eq!(m.status, "cancelled", "{db:?}");
        let rep = assert_ledger_ok(&app.store).await;
        assert_eq!((rep.settlements, rep.cancellations), (2, 1), "{db:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_accounts_act_only_for_their_institutions_and_rotate() {
    let app = spawn_app(common::Db::Sqlite, 2).await;
    let h = his(&app).await;
    // The same account for an institution it was not granted.
    app.other_hospital("H62042200003").await;
    let mut stranger = NatClient::new(&app.base, "H62042200003", "x").through_gateway(PAASID, TOKEN);
    let r = stranger.call("9001", json!({"signIn": {"opter_no": "1"}})).await.unwrap();
    assert!(refused(&r).contains("无权代表"), "{r}");
    assert!(stranger.sign_in().await.is_err());
    // A wrong token.
    let wrong = NatClient::new(&app.base, &h.fixmedins_code, "x").through_gateway(PAASID, "wrong-token");
    assert!(refused(&wrong.call("9001", json!({})).await.unwrap()).contains("签名无效"));
    // Rotation: the old token works until the grace ends, the new one at once.
    let second = Account {
        paasid: "PAAS-2".into(),
        name: "另一接入".into(),
        scheme: "gateway".into(),
        token: "old-token-1".into(),
        prev_token: None,
        prev_until: None,
        disabled: false,
        institutions: vec![h.fixmedins_code.clone()],
    };
    app.store.add_account("test", &second).await.unwrap();
    let until = baozhang_server::clock::unix_now() + 3600;
    assert!(app.store.rotate_account("test", "PAAS-2", "new-token-2", until).await.unwrap());
    for (k, token) in ["old-token-1", "new-token-2"].iter().enumerate() {
        let mut c = NatClient::new(&app.base, &h.fixmedins_code, "x").through_gateway("PAAS-2", token);
        c.prefix = format!("R{k}");
        c.sign_in().await.unwrap_or_else(|e| panic!("{token}: {e}"));
    }
    app.stop().await;
}

fn base64_std(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Posts a signed body and returns the raw answer bytes (9102 answers with the file itself).
async fn post_bytes(h: &NatClient, body: Vec<u8>) -> Vec<u8> {
    let ts = baozhang_server::clock::unix_now().to_string();
    let nonce = baozhang_server::random_hex(8);
    let (paasid, token) = h.gateway.clone().unwrap();
    let r = h
        .http
        .post(format!("{}{}", h.base, h.path))
        .header("x-tif-paasid", paasid)
        .header("x-tif-timestamp", &ts)
        .header("x-tif-signature", baozhang_server::national::gateway_sign(&token, &ts, &nonce))
        .header("x-tif-nonce", nonce)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    r.bytes().await.unwrap().to_vec()
}
