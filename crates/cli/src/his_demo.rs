//! The demo hospital's own settlement history, made the way a real hospital information system makes
//! it: through the national interface over HTTP, signed by a gateway account, fee lines sent by
//! catalogue code and classified by the sample catalogue (sample data, not an official catalogue).

use baozhang_server::testkit::NatClient;
use baozhang_store::Store;
use serde_json::{json, Value};

/// The demo hospital's gateway account.
pub const DEMO_PAASID: &str = "PAAS-620422-RMYY";
/// Stays made for the demo hospital.
const STAYS: usize = 40;
const SAMPLE_MAP: &str = include_str!("../../../data/catalogue/sample_hospital_map.csv");

/// The demo's stays are the same on every run with the same seed.
use baozhang_core::programmes::SplitMix64 as Rng;

pub async fn demo_his(store: &Store, county: &str, hospital: &str, year: u16, seed: u64, dir: &std::path::Path) -> Result<(), String> {
    let err = |e: baozhang_store::StoreError| e.to_string();
    let first_msgid = format!("DEMOHIS{year}{:04}A", 0);
    if store.mdtrt(&baozhang_server::national::mdtrt_id_of(hospital, &first_msgid)).await.map_err(err)?.is_some() {
        println!("演示医院的国家接口住院结算已办理过，未重复办理。");
        return Ok(());
    }
    // The sample catalogue and the hospital's code map (sample data), unless a catalogue is loaded.
    if store.catalogue_size().await.map_err(err)? == 0 {
        let path = dir.join("sample_catalogue.csv");
        std::fs::write(&path, baozhang_server::bench::SAMPLE_CATALOGUE).map_err(|e| e.to_string())?;
        let items = baozhang_ingest::catalogue::read_items(&path, &baozhang_ingest::catalogue::limits()).map_err(|e| e.to_string())?;
        store.import_catalogue_items("demo", "sample_catalogue.csv（示例数据）", "demo", &items).await.map_err(err)?;
        let path = dir.join("sample_hospital_map.csv");
        std::fs::write(&path, SAMPLE_MAP).map_err(|e| e.to_string())?;
        let map = baozhang_ingest::catalogue::read_map(&path, &baozhang_ingest::catalogue::limits()).map_err(|e| e.to_string())?;
        store.import_catalogue_map("demo", "sample_hospital_map.csv（示例数据）", "demo", &map).await.map_err(err)?;
    }
    let token = baozhang_server::random_hex(24);
    match store.account(DEMO_PAASID).await.map_err(err)? {
        Some(_) => {
            store.rotate_account("demo", DEMO_PAASID, &token, 0).await.map_err(err)?;
        }
        None => {
            let a = baozhang_store::service::Account {
                paasid: DEMO_PAASID.into(),
                name: "会宁县人民医院 HIS（演示）".into(),
                scheme: "gateway".into(),
                token: token.clone(),
                prev_token: None,
                prev_until: None,
                disabled: false,
                institutions: vec![hospital.to_string()],
            };
            store.add_account("demo", &a).await.map_err(err)?;
        }
    }
    // Codes valid in the demo year, and the hospital's own codes mapped to them.
    let (_, items) = store
        .catalogue_page(
            &baozhang_store::catalogue::CatalogueQuery { valid_on: Some(i64::from(year) * 10_000 + 1201), ..Default::default() },
            1,
            1000,
        )
        .await
        .map_err(err)?;
    let codes: Vec<String> = items.iter().map(|i| i.hilist_code.clone()).collect();
    let own: Vec<String> = store.catalogue_map(hospital).await.map_err(err)?.into_iter().map(|m| m.medins_list_codg).collect();
    if codes.is_empty() {
        return Err(format!("医保目录中没有 {year} 年有效的项目"));
    }
    // Insured people of the county with a person number, the first of each of STAYS strides.
    let mut people = Vec::new();
    let mut offset = 0;
    while people.len() < STAYS && offset < 20_000 {
        let batch = store.persons_in(county, None, 500, offset).await.map_err(err)?;
        if batch.is_empty() {
            break;
        }
        offset += 500;
        for p in batch.into_iter().step_by(97) {
            let Some(psn) = p.psn_no.clone() else { continue };
            if store.enrolments_of(&p.id_no).await.map_err(err)?.iter().any(|e| e.year == i64::from(year) && e.insured) {
                people.push((psn, p.id_no));
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let state = baozhang_server::AppState::new(store.clone(), baozhang_server::Policies::reference(), baozhang_server::Config::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(baozhang_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let result = stays(&base, hospital, &token, year, seed, &people, &codes, &own).await;
    let _ = stop.send(());
    let _ = server.await;
    let (settled, lines, refused) = result?;
    println!(
        "演示医院经国家接口（网关账号 {DEMO_PAASID}）办理住院 {settled} 人次：上传费用明细 {lines} 条，按示例医保目录分类后结算{}。",
        if refused > 0 { format!("；{refused} 人次未能结算") } else { String::new() }
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn stays(
    base: &str,
    hospital: &str,
    token: &str,
    year: u16,
    seed: u64,
    people: &[(String, String)],
    codes: &[String],
    own: &[String],
) -> Result<(usize, usize, usize), String> {
    let mut h = NatClient::new(base, hospital, "").through_gateway(DEMO_PAASID, token);
    h.sign_in().await?;
    let mut rng = Rng(seed ^ 0x4849_5344_454d_4f00);
    let (mut settled, mut line_count, mut refused) = (0, 0, 0);
    for (k, (psn_no, id_no)) in people.iter().enumerate() {
        let month = 9 + (k % 3) as u32;
        let day = 1 + rng.below(20) as u32;
        let begin = format!("{year}-{month:02}-{day:02}");
        let end = format!("{year}-{month:02}-{:02}", day + 3 + rng.below(6) as u32);
        let msgid = format!("DEMOHIS{year}{k:04}A");
        let adm = h
            .call_with(
                "2401",
                &msgid,
                json!({"mdtrtinfo": {"psn_no": psn_no, "insutype": "390", "mdtrt_cert_type": "02", "mdtrt_cert_no": id_no, "med_type": "21",
                    "ipt_no": format!("ZY{year}{k:05}"), "begntime": format!("{begin} 08:30:00")}}),
            )
            .await?;
        let Some(mdtrt) = adm["output"]["result"]["mdtrt_id"].as_str().map(str::to_string) else {
            refused += 1;
            continue;
        };
        let n = 8 + rng.below(10) as usize;
        let mut lines: Vec<Value> = Vec::with_capacity(n + 1);
        let mut total = 0i64;
        for j in 0..n {
            let cnt = 1 + rng.below(6) as i64;
            let pric_fen = 500 + rng.below(30_000) as i64;
            total += cnt * pric_fen;
            let y = baozhang_core::Fen(pric_fen).to_string();
            lines.push(json!({"feedetl_sn": format!("{j:04}"), "mdtrt_id": mdtrt, "psn_no": psn_no, "med_type": "21",
                "fee_ocur_time": format!("{begin} 10:00:00"), "med_list_codg": codes[rng.below(codes.len() as u64) as usize],
                "cnt": cnt.to_string(), "pric": y, "det_item_fee_sumamt": baozhang_core::Fen(cnt * pric_fen).to_string(), "hosp_appr_flag": "1"}));
        }
        if let Some(code) = own.get(rng.below(own.len().max(1) as u64) as usize) {
            let pric_fen = 1_000 + rng.below(5_000) as i64;
            total += pric_fen;
            lines.push(json!({"feedetl_sn": format!("{n:04}"), "mdtrt_id": mdtrt, "psn_no": psn_no, "med_type": "21",
                "fee_ocur_time": format!("{begin} 10:00:00"), "medins_list_codg": code, "cnt": "1",
                "pric": baozhang_core::Fen(pric_fen).to_string(), "det_item_fee_sumamt": baozhang_core::Fen(pric_fen).to_string()}));
        }
        let up = h.call("2301", json!({ "feedetail": lines })).await?;
        if up["infcode"] != 0 {
            refused += 1;
            continue;
        }
        line_count += lines.len();
        ok_or_count(
            &h.call("2402", json!({"dscginfo": {"mdtrt_id": mdtrt, "psn_no": psn_no, "endtime": format!("{end} 09:00:00")}})).await?,
            &mut refused,
        );
        let s = h
            .call(
                "2304",
                json!({"data": {"psn_no": psn_no, "mdtrt_id": mdtrt, "mdtrt_cert_type": "02", "mdtrt_cert_no": id_no, "insutype": "390",
                    "medfee_sumamt": baozhang_core::Fen(total).to_string()}}),
            )
            .await?;
        if s["infcode"] == 0 {
            settled += 1;
        } else {
            refused += 1;
        }
    }
    Ok((settled, line_count, refused))
}

fn ok_or_count(v: &Value, refused: &mut usize) {
    if v["infcode"] != 0 {
        *refused += 1;
    }
}
