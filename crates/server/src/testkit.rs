//! What tests and the `bench serve` benchmark need: a registry of synthetic people (imported through
//! the real roster import), registered hospitals, and a signing client for the national endpoint.

use std::path::Path;

use baozhang_core::{Date, IdCardNo, Sex};
use baozhang_ingest::rosters::{import_file, ImportOptions, RosterKind};
use baozhang_store::registry::RegionRow;
use baozhang_store::Store;
use serde_json::{json, Value};

use crate::national::sign;

/// The test county (Huining, Gansu) and two of its villages.
pub const COUNTY: &str = "620422";
pub const VILLAGES: [&str; 2] = ["620422100201", "620422100202"];

#[derive(Clone, Debug)]
pub struct SeedPerson {
    pub psn_no: String,
    pub id_no: String,
    pub village: String,
    pub poor: bool,
}

/// Imports `n` people insured in 2018 in the test county, every second one registered poor, half in
/// each village, through the poverty and enrolment rosters.
pub async fn seed_people(store: &Store, n: usize, dir: &Path) -> Result<Vec<SeedPerson>, String> {
    let regions = [
        ("62", "甘肃省", 1, None),
        ("6204", "白银市", 2, Some("62")),
        ("620422", "会宁县", 3, Some("6204")),
        ("620422100", "会师镇", 4, Some("620422")),
        ("620422100201", "南关村", 5, Some("620422100")),
        ("620422100202", "东关村", 5, Some("620422100")),
    ];
    let rows: Vec<RegionRow> = regions
        .iter()
        .map(|(c, name, l, p)| RegionRow { code: c.to_string(), name: name.to_string(), level: *l, parent_code: p.map(str::to_string) })
        .collect();
    store.load_regions(&rows).await.map_err(|e| e.to_string())?;
    let mut people = Vec::with_capacity(n);
    let mut poverty = String::from("户编号,姓名,证件号码,性别,与户主关系,行政区划代码,贫困状态,识别年度\n");
    let mut enrol = String::from("人员编号,证件号码,姓名,参保年度,参保状态,参保地区划,人员类别,标识日期,个人缴费,资助金额,资助来源\n");
    for i in 0..n {
        let birth = Date::from_days(Date::new(1950, 1, 1).expect("date").to_days() + (i as i32 * 37) % 20_000);
        let sex = if i % 2 == 0 { Sex::Male } else { Sex::Female };
        let id = IdCardNo::synthesize(COUNTY, birth, (i % 1000) as u16, sex);
        let village = VILLAGES[i % 2].to_string();
        let poor = i % 2 == 0;
        let psn_no = format!("P{:010}", i + 1);
        let name = format!("测试{i}");
        if poor {
            poverty.push_str(&format!("H{:08},{name},{},{},户主,{village},未脱贫,2017\n", i, id.as_str(), sex.name_zh()));
        }
        let (flag, subsidy, source) = if poor { ("建档立卡", "180", "医疗救助") } else { ("", "0", "") };
        enrol.push_str(&format!("{psn_no},{},{name},2018,正常参保,{COUNTY},{flag},2018-01-01,180,{subsidy},{source}\n", id.as_str()));
        people.push(SeedPerson { psn_no, id_no: id.as_str().to_string(), village, poor });
    }
    for (kind, name, text) in [(RosterKind::Poverty, "poverty.csv", &poverty), (RosterKind::Enrolment, "enrolment.csv", &enrol)] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let rep = import_file(store, kind, &path, &ImportOptions::default(), &mut |_| {}).await.map_err(|e| e.to_string())?;
        if rep.rows_rejected > 0 {
            return Err(format!("{name}: {} rows rejected", rep.rows_rejected));
        }
    }
    Ok(people)
}

/// A national-interface client for one institution: signs, numbers messages, and keeps the sign_no.
#[derive(Clone)]
pub struct NatClient {
    pub http: reqwest::Client,
    pub base: String,
    pub fixmedins_code: String,
    pub secret: String,
    pub sign_no: String,
    pub insuplc_admdvs: String,
    pub seq: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Distinguishes clients of one institution in msgids.
    pub prefix: String,
    /// Signs as a gateway account (paasid, token) with the national gateway's SHA-256 signature, instead
    /// of the institution's own HMAC.
    pub gateway: Option<(String, String)>,
    /// The path after the host (real clients use `/fsi/api/fsiIntegratedService` or `/fsi/api/<service>/<infno>`).
    pub path: String,
    pub content_type: String,
}

impl NatClient {
    pub fn new(base: &str, fixmedins_code: &str, secret: &str) -> NatClient {
        NatClient {
            http: reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("http client"),
            base: base.trim_end_matches('/').to_string(),
            fixmedins_code: fixmedins_code.to_string(),
            secret: secret.to_string(),
            sign_no: String::new(),
            insuplc_admdvs: COUNTY.to_string(),
            seq: Default::default(),
            prefix: "A".to_string(),
            gateway: None,
            path: "/fsi/api/fsiIntegratedService".to_string(),
            content_type: "application/json".to_string(),
        }
    }

    /// The same institution through a gateway account, as a real HIS integration signs.
    pub fn through_gateway(mut self, paasid: &str, token: &str) -> NatClient {
        self.gateway = Some((paasid.to_string(), token.to_string()));
        self
    }

    /// A fresh msgid: up to 12 characters of the institution code, a client prefix, and a counter.
    pub fn next_msgid(&self) -> String {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let code: String = self.fixmedins_code.chars().take(12).collect();
        let mut id = format!("{code}{}{n:012}", self.prefix);
        id.truncate(30);
        id
    }

    /// The envelope of a transaction.
    pub fn envelope(&self, infno: &str, msgid: &str, input: Value) -> Value {
        json!({
            "infno": infno,
            "msgid": msgid,
            "mdtrtarea_admvs": COUNTY,
            "insuplc_admdvs": self.insuplc_admdvs,
            "recer_sys_code": "HIS",
            "infver": "V1.0",
            "opter_type": "1",
            "opter": "001",
            "opter_name": "收费员",
            "inf_time": "2018-06-01 10:00:00",
            "fixmedins_code": self.fixmedins_code,
            "fixmedins_name": "测试医院",
            "sign_no": self.sign_no,
            "input": input,
        })
    }

    /// Posts raw bytes, signed; returns the response text.
    pub async fn post_raw(&self, body: Vec<u8>) -> Result<String, String> {
        let ts = crate::clock::unix_now().to_string();
        let nonce = crate::random_hex(8);
        let (paasid, sig) = match &self.gateway {
            Some((paasid, token)) => (paasid.clone(), crate::national::gateway_sign(token, &ts, &nonce)),
            None => (self.fixmedins_code.clone(), sign(&self.secret, &ts, &nonce, &body)),
        };
        let r = self
            .http
            .post(format!("{}{}", self.base, self.path))
            .header("content-type", &self.content_type)
            .header("x-tif-paasid", paasid)
            .header("x-tif-timestamp", ts)
            .header("x-tif-nonce", nonce)
            .header("x-tif-signature", sig)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        r.text().await.map_err(|e| e.to_string())
    }

    /// Sends a transaction with a given msgid; returns the parsed response.
    pub async fn call_with(&self, infno: &str, msgid: &str, input: Value) -> Result<Value, String> {
        let body = serde_json::to_vec(&self.envelope(infno, msgid, input)).expect("json");
        let text = self.post_raw(body).await?;
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
    }

    pub async fn call(&self, infno: &str, input: Value) -> Result<Value, String> {
        let id = self.next_msgid();
        self.call_with(infno, &id, input).await
    }

    /// 9001: signs in and keeps the sign_no.
    pub async fn sign_in(&mut self) -> Result<(), String> {
        let r = self.call("9001", json!({"signIn": {"opter_no": "001", "mac": "", "ip": "127.0.0.1"}})).await?;
        self.sign_no = r["output"]["signinoutb"]["sign_no"].as_str().ok_or_else(|| format!("sign-in failed: {r}"))?.to_string();
        Ok(())
    }

    /// 2401 admission; returns the mdtrt_id.
    pub async fn admit(&self, p: &SeedPerson, date: &str) -> Result<String, String> {
        let r = self
            .call(
                "2401",
                json!({"mdtrtinfo": {"psn_no": p.psn_no, "insutype": "390", "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no,
                    "med_type": "21", "ipt_no": "", "begntime": format!("{date} 08:00:00")}}),
            )
            .await?;
        r["output"]["result"]["mdtrt_id"].as_str().map(str::to_string).ok_or_else(|| format!("admission failed: {r}"))
    }

    /// The 2304 input of a bill given by its four parts (yuan text).
    pub fn settle_input(p: &SeedPerson, mdtrt_id: &str, total: &str, ful: &str, over: &str, pre: &str, inscp: &str) -> Value {
        json!({"data": {"psn_no": p.psn_no, "mdtrt_id": mdtrt_id, "mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no, "insutype": "390",
            "medfee_sumamt": total, "fulamt_ownpay_amt": ful, "overlmt_selfpay": over, "preselfpay_amt": pre, "inscp_scp_amt": inscp}})
    }
}

/// Registers a hospital and returns its secret.
pub async fn add_hospital(store: &Store, code: &str, hosp_lv: i64) -> Result<String, String> {
    crate::api::register_institution(store, "test", code, &format!("测试医院{code}"), hosp_lv, COUNTY).await
}
