//! Malformed national messages: whatever a hospital system sends, the answer is HTTP 200 with the
//! national envelope, `infcode = -1` and a Chinese `err_msg`, nothing is written, and the service keeps
//! answering. Requests are properly signed (the signature covers any bytes), so the parser is what is
//! tested. The random cases come from a seeded generator: the seed is printed, and `BZ_FUZZ_SEED` /
//! `BZ_FUZZ_CASES` replay or widen a run.

mod common;

use baozhang_server::testkit::NatClient;
use common::{has_cjk, ok, parse_resp, post_signed, post_with_headers, refused, spawn_app, BACKENDS};
use serde_json::{json, Value};

/// splitmix64: small, seedable, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Wrong values for a text field of the envelope.
fn wrong_text_values() -> Vec<Value> {
    vec![json!(true), json!(false), json!([]), json!(["1101"]), json!({}), json!({"a": 1}), json!(1.5), json!(-3), json!(1e300)]
}

/// A JSON value from its text (numbers keep their text: `arbitrary_precision`).
fn raw(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Bad amounts (none of them may parse as a non-negative amount with at most two decimals).
fn bad_amounts() -> Vec<Value> {
    vec![
        json!("1.234"),
        json!(1.234),
        json!("-5"),
        json!(-5),
        json!("-0.01"),
        json!("abc"),
        json!("1e3"),
        raw("1e3"),
        raw("1E2"),
        raw("100.001"),
        raw("-0.5"),
        json!("12,000.00"),
        json!("0x10"),
        json!("NaN"),
        json!("99999999999"),
        json!(true),
        json!([]),
        json!({"yuan": 1}),
        json!("１００"),
        json!("100元"),
    ]
}

/// Removes a fee line's four explicit parts (so that `chrgitm_lv` classifies it).
fn strip_parts(line: &mut Value) {
    for k in ["fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt"] {
        line.as_object_mut().unwrap().remove(k);
    }
}

/// One malformed message: its bytes and what it is (for failure messages).
fn case(rng: &mut Rng, h: &NatClient, valid_2304: &Value, valid_2301: &Value) -> (Vec<u8>, String) {
    let valid_1101 = h.envelope("1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "x"}}));
    match rng.below(11) {
        0 => {
            let n = rng.below(300);
            let b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            (b, "random bytes".into())
        }
        1 => {
            let src = serde_json::to_vec(rng.pick(&[valid_2304.clone(), valid_2301.clone(), valid_1101.clone()])).unwrap();
            let cut = rng.below(src.len());
            (src[..cut].to_vec(), format!("truncated at {cut}"))
        }
        2 => {
            let mut env = valid_2304.clone();
            let fields = ["infno", "msgid", "fixmedins_code", "insuplc_admdvs", "mdtrtarea_admvs", "sign_no", "opter", "input"];
            let f = *rng.pick(&fields);
            let mut values = wrong_text_values();
            match f {
                "infno" => values.extend([json!("11O1"), json!(""), json!("23045"), json!(12345), json!("２３０４")]),
                "msgid" => values.extend([json!(""), json!("has space"), json!("x".repeat(31)), json!("中文编号"), json!(42)]),
                "fixmedins_code" => values.extend([json!(""), json!("H99999999999"), json!(62042200001u64)]),
                "input" => values.retain(|v| !v.is_object()),
                _ => values.push(json!(620422)),
            }
            if f == "input" {
                values.extend([json!(null), json!("{}"), json!(0)]);
            }
            let v = rng.pick(&values).clone();
            env[f] = v.clone();
            (serde_json::to_vec(&env).unwrap(), format!("{f} = {v}"))
        }
        3 => {
            let mut env = valid_1101.clone();
            let infno = *rng.pick(&["9999", "0000", "2501", "9003", "1102", "3101", "2300"]);
            env["infno"] = json!(infno);
            (serde_json::to_vec(&env).unwrap(), format!("unknown infno {infno}"))
        }
        4 => {
            let mut env = valid_2304.clone();
            let f = *rng.pick(&["infno", "msgid", "fixmedins_code", "input"]);
            env.as_object_mut().unwrap().remove(f);
            (serde_json::to_vec(&env).unwrap(), format!("missing {f}"))
        }
        5 => {
            let depth = 129 + rng.below(20_000);
            let mut s = serde_json::to_string(&valid_1101).unwrap();
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let at = s.find("\"input\":").unwrap() + "\"input\":".len();
            let end = at + serde_json::to_string(&valid_1101["input"]).unwrap().len();
            s.replace_range(at..end, &format!("{{\"data\":{nested}}}"));
            (s.into_bytes(), format!("nested {depth} deep"))
        }
        6 => {
            // Nesting the parser accepts, where an object is required.
            let depth = 1 + rng.below(100);
            let mut env = valid_1101.clone();
            let mut v = json!("x");
            for _ in 0..depth {
                v = json!([v]);
            }
            env["input"] = json!({"data": v});
            (serde_json::to_vec(&env).unwrap(), format!("input.data nested {depth} deep"))
        }
        7 => {
            let mut env = valid_2304.clone();
            let f = *rng.pick(&["medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"]);
            let v = rng.pick(&bad_amounts()).clone();
            env["input"]["data"][f] = v.clone();
            if rng.below(2) == 0 {
                env["infno"] = json!("2303");
            }
            (serde_json::to_vec(&env).unwrap(), format!("{} {f} = {v}", env["infno"]))
        }
        8 => {
            let mut env = valid_2301.clone();
            let line = &mut env["input"]["feedetail"][0];
            let (f, v) = match rng.below(4) {
                0 => ("det_item_fee_sumamt", rng.pick(&bad_amounts()).clone()),
                1 => ("inscp_scp_amt", rng.pick(&bad_amounts()).clone()),
                2 => {
                    strip_parts(line);
                    line["chrgitm_lv"] = json!("02");
                    (
                        "selfpay_prop",
                        rng.pick(&[json!("1.5"), json!("-0.1"), json!("0.12345"), json!("abc"), json!(2), json!(null), json!([])]).clone(),
                    )
                }
                _ => {
                    strip_parts(line);
                    ("chrgitm_lv", rng.pick(&[json!("04"), json!("1"), json!(""), json!(true), json!(-1)]).clone())
                }
            };
            line[f] = v.clone();
            (serde_json::to_vec(&env).unwrap(), format!("2301 feedetail[0].{f} = {v}"))
        }
        9 => {
            // Fee lines that do not add up, an empty or oversized list, lines that are not objects.
            let mut env = valid_2301.clone();
            let what = match rng.below(4) {
                0 => {
                    env["input"]["feedetail"][0]["inscp_scp_amt"] = json!("99.99");
                    "parts do not add up"
                }
                1 => {
                    env["input"]["feedetail"] = json!([]);
                    "empty feedetail"
                }
                2 => {
                    env["input"]["feedetail"] = json!(["line", 1]);
                    "lines not objects"
                }
                _ => {
                    let l = env["input"]["feedetail"][0].clone();
                    env["input"]["feedetail"] = json!([l.clone(), l]);
                    "duplicate feedetl_sn"
                }
            };
            (serde_json::to_vec(&env).unwrap(), format!("2301 {what}"))
        }
        _ => {
            // Admission with bad fields.
            let (f, v) = rng
                .pick(&[
                    ("begntime", json!("2018-13-45 08:00:00")),
                    ("begntime", json!("yesterday")),
                    ("begntime", json!(20180601)),
                    ("med_type", json!("99")),
                    ("med_type", json!("14")),
                    ("psn_no", json!("")),
                    ("psn_no", json!(["P1"])),
                    ("refl_flag", json!("2")),
                    ("mdtrt_cert_no", json!("110101190001011234")),
                ])
                .clone();
            let mut env = h.envelope(
                "2401",
                &h.next_msgid(),
                json!({"mdtrtinfo": {"psn_no": valid_2304["input"]["data"]["psn_no"], "insutype": "390", "mdtrt_cert_type": "02",
                    "mdtrt_cert_no": valid_2304["input"]["data"]["mdtrt_cert_no"], "med_type": "21", "begntime": "2018-06-01 08:00:00"}}),
            );
            env["input"]["mdtrtinfo"][f] = v.clone();
            (serde_json::to_vec(&env).unwrap(), format!("2401 {f} = {v}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_malformed_signed_message_is_refused_in_chinese_and_the_service_keeps_answering() {
    let seed: u64 = std::env::var("BZ_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let cases: usize = std::env::var("BZ_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(400);
    eprintln!("malformed messages: BZ_FUZZ_SEED={seed} BZ_FUZZ_CASES={cases}");
    for db in BACKENDS {
        let mut rng = Rng(seed);
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        let mdtrt = h.admit(p, "2018-06-01").await.unwrap();
        let valid_2304 = h.envelope("2304", "TEMPLATE", NatClient::settle_input(p, &mdtrt, "1000.00", "0", "0", "0", "1000.00"));
        let line = json!({"feedetl_sn": "L1", "mdtrt_id": mdtrt, "psn_no": p.psn_no, "det_item_fee_sumamt": "100.00",
            "fulamt_ownpay_amt": "0", "overlmt_amt": "0", "preselfpay_amt": "0", "inscp_scp_amt": "100.00"});
        let valid_2301 = h.envelope("2301", "TEMPLATE", json!({"feedetail": [line]}));
        for i in 0..cases {
            let (mut body, what) = case(&mut rng, h, &valid_2304, &valid_2301);
            // Fresh msgids so that a case is never answered as a replay of another.
            if let Ok(mut v) = serde_json::from_slice::<Value>(&body) {
                if v.get("msgid") == Some(&json!("TEMPLATE")) {
                    v["msgid"] = json!(h.next_msgid());
                    body = serde_json::to_vec(&v).unwrap();
                }
            }
            let (status, text) = post_signed(h, body).await;
            assert_eq!(status, 200, "{db:?} seed {seed} case {i} ({what}): HTTP {status}: {text}");
            let v = parse_resp(&text);
            assert!(v["infcode"] == -1 && v["err_msg"].as_str().is_some_and(has_cjk), "{db:?} seed {seed} case {i} ({what}): {text}");
            assert!(v["output"].is_null(), "{db:?} seed {seed} case {i} ({what}): {text}");
        }
        // Nothing was written by any of them.
        assert_eq!(app.store.count("ledger_settlements").await.unwrap(), 0, "{db:?}");
        assert_eq!(app.store.count("fee_lines").await.unwrap(), 0, "{db:?}");
        assert_eq!(app.store.count("mdtrts").await.unwrap(), 1, "{db:?}");
        // And the service still answers a valid message.
        let info = h.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}})).await.unwrap();
        ok(&info);
        assert_eq!(info["output"]["baseinfo"]["psn_no"], p.psn_no.as_str());
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn byte_mutations_of_a_valid_message_always_get_an_envelope() {
    let seed: u64 = std::env::var("BZ_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    eprintln!("byte mutations: BZ_FUZZ_SEED={seed}");
    for db in BACKENDS {
        let mut rng = Rng(seed);
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        for i in 0..200 {
            let env = h.envelope("1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}}));
            let mut body = serde_json::to_vec(&env).unwrap();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(body.len());
                body[at] = rng.next() as u8;
            }
            let (status, text) = post_signed(h, body).await;
            assert_eq!(status, 200, "{db:?} seed {seed} case {i}: {text}");
            let v = parse_resp(&text);
            if v["infcode"] != 0 {
                refused(&v);
            }
        }
        ok(&h.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}})).await.unwrap());
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_over_one_mebibyte_is_refused_in_chinese() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        for size in [(1 << 20) + 1, 3 << 20] {
            let mut env =
                h.envelope("1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": app.people[0].id_no}}));
            env["padding"] = json!("x".repeat(size));
            let (status, text) = post_signed(h, serde_json::to_vec(&env).unwrap()).await;
            assert_eq!(status, 200, "{db:?}: {text}");
            let m = refused(&parse_resp(&text));
            assert!(m.contains("过大"), "{db:?}: {m}");
        }
        // Just under the limit is read and parsed (and this one is valid).
        let mut env = h.envelope("1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": app.people[0].id_no}}));
        env["padding"] = json!("");
        let base_len = serde_json::to_vec(&env).unwrap().len();
        env["padding"] = json!("x".repeat((1 << 20) - base_len));
        let body = serde_json::to_vec(&env).unwrap();
        assert_eq!(body.len(), 1 << 20);
        let (status, text) = post_signed(h, body).await;
        assert_eq!(status, 200);
        ok(&parse_resp(&text));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsigned_or_badly_signed_messages_are_refused_for_their_signature() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        let h = &app.hospital;
        let p = &app.people[0];
        let body = || {
            serde_json::to_vec(&h.envelope("1101", &h.next_msgid(), json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}})))
                .unwrap()
        };
        let ts = baozhang_server::clock::unix_now().to_string();
        let good = |b: &[u8], ts: &str| baozhang_server::national::sign(&h.secret, ts, "n0nce", b);
        let hdrs = |paasid: &str, ts: &str, nonce: &str, sig: Option<String>| {
            vec![
                ("x-tif-paasid", Some(paasid.to_string())),
                ("x-tif-timestamp", Some(ts.to_string())),
                ("x-tif-nonce", Some(nonce.to_string())),
                ("x-tif-signature", sig),
            ]
        };

        // No signature headers at all.
        let (status, text) = post_with_headers(h, body(), &[]).await;
        assert_eq!(status, 200);
        assert!(refused(&parse_resp(&text)).contains("签名"), "{db:?}: {text}");
        // Headers but no signature.
        let (_, text) = post_with_headers(h, body(), &hdrs(&h.fixmedins_code, &ts, "n0nce", None)).await;
        assert!(refused(&parse_resp(&text)).contains("签名"), "{db:?}: {text}");
        // A signature of other bytes.
        let b = body();
        let sig = good(b"something else", &ts);
        let (_, text) = post_with_headers(h, b, &hdrs(&h.fixmedins_code, &ts, "n0nce", Some(sig))).await;
        assert!(refused(&parse_resp(&text)).contains("签名"), "{db:?}: {text}");
        // Not hex, wrong length, wrong secret.
        for sig in ["zz".repeat(32), "abcd".into(), baozhang_server::national::sign("not-the-secret", &ts, "n0nce", &body())] {
            let (_, text) = post_with_headers(h, body(), &hdrs(&h.fixmedins_code, &ts, "n0nce", Some(sig))).await;
            assert!(refused(&parse_resp(&text)).contains("签名"), "{db:?}: {text}");
        }
        // A valid signature over the body, but the nonce in the header is not the one signed.
        let b = body();
        let sig = good(&b, &ts);
        let (_, text) = post_with_headers(h, b, &hdrs(&h.fixmedins_code, &ts, "other", Some(sig))).await;
        assert!(refused(&parse_resp(&text)).contains("签名"), "{db:?}: {text}");
        // Signed by one institution for a message naming another.
        let b = body();
        let sig = good(&b, &ts);
        let (_, text) = post_with_headers(h, b, &hdrs("H62042200009", &ts, "n0nce", Some(sig))).await;
        assert!(refused(&parse_resp(&text)).contains("签名"), "{db:?}: {text}");
        // A stale timestamp (validly signed).
        let old = (baozhang_server::clock::unix_now() - 3600).to_string();
        let b = body();
        let sig = good(&b, &old);
        let (_, text) = post_with_headers(h, b, &hdrs(&h.fixmedins_code, &old, "n0nce", Some(sig))).await;
        assert!(refused(&parse_resp(&text)).contains("时间"), "{db:?}: {text}");
        // Validly signed, but without a live sign-in.
        let mut unsigned_in = h.clone();
        unsigned_in.sign_no = "0123456789abcdef0123456789abcdef".into();
        let r = unsigned_in.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}})).await.unwrap();
        assert!(refused(&r).contains("签到"), "{db:?}: {r}");
        // The proper request still works.
        ok(&h.call("1101", json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": p.id_no}})).await.unwrap());
        app.stop().await;
    }
}
