//! 政策测算（新旧政策比较） on the policy page, through HTTP against a real server on both databases: a
//! bureau user weighs gansu-huining-2018 against an uploaded copy with a lower critical-illness deductible on
//! the year the test settles, and sees the fund totals computed here independently (the engine over the
//! stored bills, and by hand); the workbook is a valid one with the same figures; users just outside the
//! role or the scope are refused; a broken policy file gives its problems with line numbers, not a 500.

mod common;

use std::collections::BTreeMap;

use baozhang_core::engine::{settle, Accumulators};
use baozhang_core::policy::{parse_policy, Fund, Policy, ALL_FUNDS};
use baozhang_core::reference::reference_source;
use baozhang_core::{Bill, Claim, Fen, HospLevel, IdentitySet, MedType};
use baozhang_server::auth::{create_user, Role};
use baozhang_server::testkit::{NatClient, SeedPerson, COUNTY, VILLAGES};
use baozhang_store::ledger::StoredSettlement;
use common::{ok, spawn_app, Browser, BACKENDS, PASSWORD};
use serde_json::json;

const OTHER_COUNTY: &str = "620421";
const OLD: &str = "gansu-huining-2018";

async fn users(app: &common::App) {
    for (user, role, scope) in [
        ("bureau1", Role::Bureau, COUNTY),
        ("town_bureau", Role::Bureau, "620422100"),
        ("other_bureau", Role::Bureau, OTHER_COUNTY),
        ("audit1", Role::Auditor, COUNTY),
        ("cadre_a", Role::Cadre, VILLAGES[0]),
        ("hosp1", Role::Hospital, "H62042200001"),
    ] {
        create_user(&app.store, "test", user, "", role, scope, PASSWORD).await.unwrap();
    }
}

/// Admits and settles an inpatient stay of `total` yuan (10 % out of scope, the rest compliant).
async fn stay(h: &NatClient, p: &SeedPerson, date: &str, total: i64) {
    let mdtrt = h.admit(p, date).await.unwrap();
    let ful = total / 10;
    let mut input = NatClient::settle_input(p, &mdtrt, &total.to_string(), &ful.to_string(), "0", "0", &(total - ful).to_string());
    input["data"]["setl_time"] = json!(format!("{date} 16:00:00"));
    let r = h.call("2304", input).await.unwrap();
    ok(&r);
}

/// The shipped Huining file with the ordinary residents' critical-illness deductible at `yuan`, under its
/// own id.
fn reform_toml(yuan: u32) -> String {
    let src = reference_source(OLD).unwrap();
    let old = "deductible = { value = 5000, mark = \"S\"";
    assert!(src.contains(old), "the shipped file still writes the deductible this way");
    src.replace(old, &format!("deductible = {{ value = {yuan}, mark = \"S\""))
        .replace(&format!("id = \"{OLD}\""), "id = \"huining-reform\"")
}

fn claim_of(s: &StoredSettlement) -> Claim {
    let flags = s.claim_flags.expect("settlements record their conditions");
    Claim {
        site: Default::default(),
        setl_date: baozhang_store::num_date(s.setl_date).unwrap(),
        med_type: MedType::from_code(s.med_type as u16).unwrap(),
        hosp_lv: HospLevel::new(s.hosp_lv as u8).unwrap(),
        in_county: flags & 1 != 0,
        referral_ok: flags & 2 != 0,
        major_disease: flags & 4 != 0,
        bill: Bill::new(
            Fen(s.medfee_sumamt),
            Fen(s.fulamt_ownpay_amt),
            Fen(s.overlmt_selfpay),
            Fen(s.preselfpay_amt),
            Fen(s.inscp_scp_amt),
        )
        .unwrap(),
    }
}

/// Per fund (by `Fund::index()`), then the personal part: each person's live settlements of the year
/// settled in order from fresh accumulators under `policy`, with the identities they were settled with.
fn totals(policy: &Policy, settled: &[StoredSettlement]) -> ([i64; 6], i64) {
    let mut by_person: BTreeMap<&str, Vec<&StoredSettlement>> = BTreeMap::new();
    for s in settled {
        by_person.entry(s.psn_no.as_str()).or_default().push(s);
    }
    let (mut funds, mut psn) = ([0i64; 6], 0i64);
    for claims in by_person.values() {
        let mut acc = Accumulators::default();
        for s in claims {
            let (out, after) = settle(policy, &claim_of(s), IdentitySet::from_bits(s.identities as u16), &acc);
            acc = after;
            for f in ALL_FUNDS {
                funds[f.index()] += out.funds_fen[f.index()];
            }
            psn += out.psn_part_amt.0;
        }
    }
    (funds, psn)
}

/// The text of the element `data-testid="<id>"` (up to its closing tag).
fn cell(html: &str, id: &str) -> String {
    let key = format!("data-testid=\"{id}\">");
    let at = html.find(&key).unwrap_or_else(|| panic!("no {id} in the page")) + key.len();
    html[at..].split('<').next().unwrap_or("").to_string()
}

fn signed(fen: i64) -> String {
    if fen > 0 {
        format!("+{}", Fen(fen).grouped())
    } else {
        Fen(fen).grouped()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bureau_weighs_an_uploaded_policy_on_its_year_and_sees_the_fund_totals_change() {
    for db in BACKENDS {
        let app = spawn_app(db, 6).await;
        users(&app).await;
        let (poor, a, b) = (&app.people[0], &app.people[1], &app.people[3]);
        assert!(poor.poor && !a.poor && !b.poor);
        stay(&app.hospital, a, "2018-03-05", 60_000).await;
        stay(&app.hospital, b, "2018-04-01", 30_000).await;
        stay(&app.hospital, b, "2018-06-01", 10_000).await;
        stay(&app.hospital, poor, "2018-05-01", 50_000).await;
        let f = baozhang_store::ledger::SettlementFilter { limit: 100, ..Default::default() };
        let settled: Vec<StoredSettlement> =
            app.store.settlements(&f).await.unwrap().into_iter().filter(|s| s.reverses.is_none() && s.cancelled_by.is_none()).collect();
        assert_eq!(settled.len(), 4);

        let toml = reform_toml(4000);
        let old = parse_policy(reference_source(OLD).unwrap()).unwrap();
        let new = parse_policy(&toml).unwrap();
        let (old_funds, old_psn) = totals(&old, &settled);
        let (new_funds, new_psn) = totals(&new, &settled);
        // By hand: both ordinary residents' remainders after the basic insurance exceed 5,000 yuan
        // ((54,000 − 500) × 30 % = 16,050 + 500; (27,000 − 500) × 30 % + 500 = 8,450), so each crosses the lower
        // deductible once in the year: 1,000 yuan × 50 % = 500 yuan more from the critical-illness fund each.
        // The poor keep their own 2,000-yuan deductible: unchanged.
        let critical = Fund::CriticalIllness.index();
        assert_eq!(new_funds[critical] - old_funds[critical], 100_000, "{db:?}: the engine agrees with the hand figure");
        assert_eq!(new_psn - old_psn, -100_000);

        let web = Browser::login(&app.base, "bureau1").await;
        let policy_page = web.page("/web/policy").await.text();
        assert!(policy_page.contains("政策测算（新旧政策比较）") && policy_page.contains("action=\"/web/policy/compare\""));
        let r = web
            .post_multipart("/web/policy/compare", &[("old", OLD), ("new", OLD), ("year", "2018")], "reform.toml", toml.as_bytes())
            .await;
        let html = r.text();
        assert_eq!(r.status, 200, "{db:?}: {html}");
        for fnd in ALL_FUNDS {
            let k = fnd.code();
            let i = fnd.index();
            assert_eq!(cell(&html, &format!("fund-{k}-old")), Fen(old_funds[i]).grouped(), "{db:?}: {} (old)", fnd.name_zh());
            assert_eq!(cell(&html, &format!("fund-{k}-new")), Fen(new_funds[i]).grouped(), "{db:?}: {} (new)", fnd.name_zh());
            assert_eq!(cell(&html, &format!("fund-{k}-change")), signed(new_funds[i] - old_funds[i]), "{db:?}: {}", fnd.name_zh());
        }
        assert_eq!(cell(&html, "fund-390200-change"), "+1,000.00");
        assert_eq!(cell(&html, "fund-PSN-change"), "-1,000.00");
        assert_eq!(cell(&html, "fund-PSN-old"), Fen(old_psn).grouped());
        assert!(html.contains("huining-reform") && html.contains(&new.version), "{db:?}: the uploaded policy is named with its version");
        assert!(html.contains("会师镇") && html.contains("贫困人口住院实际报销比例"), "{db:?}");
        assert!(html.contains("两项政策都结算") && html.contains("4 笔，3 人"), "{db:?}: {html}");
        // The two residents are the persons affected, masked.
        let affected = &html[html.find("data-testid=\"compare-affected\"").unwrap()..];
        for p in [a, b] {
            assert!(!html.contains(&p.id_no), "{db:?}: no ID number on the page");
            assert!(affected.contains(&format!("{}********{}", &p.id_no[..6], &p.id_no[14..])), "{db:?}: {} masked", p.psn_no);
        }
        assert!(affected.contains("-500.00"));
        // The download form carries the uploaded file's text back (the token first).
        let dl = &html[html.find("data-testid=\"compare-download\"").unwrap()..];
        assert!(dl.contains("name=\"new_toml\"") && dl.contains("huining-reform"));

        // The same policy on both sides, chosen from the loaded ones: nothing changes.
        let r = web.post_multipart("/web/policy/compare", &[("old", OLD), ("new", OLD), ("year", "2018")], "", b"").await;
        let same = r.text();
        assert_eq!(r.status, 200, "{same}");
        assert_eq!(cell(&same, "fund-FUND-change"), "0.00");
        assert!(same.contains("没有人员的个人负担发生变化"));

        // The audit log names the user, the policies and the year — never a person.
        let log = app.store.audit_records(20).await.unwrap();
        let run = log.iter().find(|e| e.action == "policy.compare" && e.detail.contains("huining-reform")).expect("the run is logged");
        assert_eq!(run.actor, "bureau1");
        assert!(
            run.detail.contains(OLD)
                && run.detail.contains(&old.version)
                && run.detail.contains(&new.version)
                && run.detail.contains("2018")
        );
        assert!(app.people.iter().all(|p| log.iter().all(|e| !e.detail.contains(&p.id_no))), "{db:?}: no ID number in the log");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_workbook_is_a_valid_xlsx_with_the_same_figures_and_is_checked_again() {
    use calamine::{Reader, Xlsx};
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        users(&app).await;
        stay(&app.hospital, &app.people[1], "2018-03-05", 60_000).await;
        let toml = reform_toml(4000);
        let web = Browser::login(&app.base, "bureau1").await;
        // As the page's download form posts it: the file's text in `new_toml`, no file.
        let fields = [("old", OLD), ("new", OLD), ("year", "2018"), ("new_toml", toml.as_str())];
        let r = web.post_multipart("/web/policy/compare/xlsx", &fields, "", b"").await;
        assert_eq!(r.status, 200, "{db:?}: {}", r.text());
        assert_eq!(r.header("content-type"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
        let cd = r.header("content-disposition");
        assert!(cd.starts_with("attachment;") && cd.contains("2018.xlsx"), "{cd}");
        let mut wb = Xlsx::new(std::io::Cursor::new(r.body.clone())).expect("a valid workbook");
        assert_eq!(wb.sheet_names(), ["概况", "分层", "身份", "乡镇", "受影响人员", "未结算"]);
        let layers = wb.worksheet_range("分层").unwrap();
        let critical = layers.rows().find(|row| row[0] == "基金" && row[1] == "390200").expect("the fund's row");
        assert_eq!(critical[6].to_string(), "500.00", "{db:?}: one resident crosses the lower deductible: {critical:?}");
        let persons = wb.worksheet_range("受影响人员").unwrap();
        let id = persons.rows().nth(1).unwrap()[1].to_string();
        assert_eq!(&id[6..14], "********", "{db:?}: masked in the workbook too");
        assert!(app.store.audit_records(5).await.unwrap().iter().any(|e| e.action == "policy.compare.xlsx" && e.actor == "bureau1"));
        // The download checks the role again.
        let cadre = Browser::login(&app.base, "cadre_a").await;
        let r = cadre.post_multipart("/web/policy/compare/xlsx", &fields, "", b"").await;
        assert_eq!(r.status, 403, "{db:?}");
        assert!(r.header("content-type").starts_with("text/html"));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_just_outside_the_role_or_the_scope_are_refused() {
    for db in BACKENDS {
        let app = spawn_app(db, 4).await;
        users(&app).await;
        stay(&app.hospital, &app.people[1], "2018-03-05", 60_000).await;
        let fields = [("old", OLD), ("new", OLD), ("year", "2018")];
        for user in ["cadre_a", "hosp1", "audit1"] {
            let web = Browser::login(&app.base, user).await;
            if user != "hosp1" {
                let page = web.page("/web/policy").await.text();
                assert!(!page.contains("/web/policy/compare"), "{db:?}: {user} is not offered the comparison");
            }
            for path in ["/web/policy/compare", "/web/policy/compare/xlsx"] {
                let r = web.post_multipart(path, &fields, "", b"").await;
                assert_eq!(r.status, 403, "{db:?}: {user} {path}: {}", r.text());
                assert!(r.text().contains("不能进行新旧政策测算"), "{db:?}: {user}: {}", r.text());
            }
        }
        // A bureau of another county, or of one township, asking for the county: outside their scope.
        for user in ["other_bureau", "town_bureau"] {
            let web = Browser::login(&app.base, user).await;
            let mut f = fields.to_vec();
            f.push(("region", COUNTY));
            for path in ["/web/policy/compare", "/web/policy/compare/xlsx"] {
                let r = web.post_multipart(path, &f, "", b"").await;
                assert_eq!(r.status, 403, "{db:?}: {user} {path}: {}", r.text());
                assert!(r.text().contains("不在您的管辖范围内"), "{db:?}: {}", r.text());
            }
        }
        // Another county's own year: none of this county's settlements.
        let other = Browser::login(&app.base, "other_bureau").await;
        let r = other.post_multipart("/web/policy/compare", &fields, "", b"").await;
        let html = r.text();
        assert_eq!(r.status, 200, "{html}");
        assert!(html.contains("读入理赔</th><td>0 笔"), "{db:?}: {html}");
        assert!(!html.contains("会师镇（"), "{db:?}");
        // Without the session's token: refused before anything is read.
        let bureau = Browser::login(&app.base, "bureau1").await;
        let boundary = "----x";
        let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"old\"\r\n\r\n{OLD}\r\n--{boundary}--\r\n");
        let rb = bureau
            .http
            .post(format!("{}/web/policy/compare", app.base))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        let r = bureau.send(rb).await.unwrap();
        assert_eq!(r.status, 403, "{db:?}: no CSRF token");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_policy_file_is_answered_with_its_problems_in_chinese_with_line_numbers() {
    for db in BACKENDS {
        let app = spawn_app(db, 2).await;
        users(&app).await;
        let web = Browser::login(&app.base, "bureau1").await;
        let fields = [("old", OLD), ("new", OLD), ("year", "2018")];
        // A syntax error on the last line.
        let good = reform_toml(4000);
        let broken = format!("{good}\n= = =\n");
        let line = broken.lines().count();
        let r = web.post_multipart("/web/policy/compare", &fields, "broken.toml", broken.as_bytes()).await;
        let html = r.text();
        assert_eq!(r.status, 400, "{db:?}: {html}");
        assert!(html.contains("data-testid=\"compare-problems\"") && html.contains("broken.toml"), "{html}");
        assert!(html.contains(&format!("第 {line} 行")), "{db:?}: the line is named: {html}");
        // A value out of range: the checker's own problem, with its line.
        let bad = good.replacen("deductible = { value = 4000, mark = \"S\"", "deductible = { value = -4000, mark = \"S\"", 1);
        assert_ne!(bad, good);
        let r = web.post_multipart("/web/policy/compare", &fields, "bad.toml", bad.as_bytes()).await;
        let html = r.text();
        assert_eq!(r.status, 400, "{db:?}: {html}");
        // The checker names the value's line, or that of the table holding it (the branch's header).
        let at = bad.find("value = -4000").unwrap();
        let value_line = bad[..at].matches('\n').count() + 1;
        let header_line = bad[..bad[..at].rfind("[[layers.branches]]").unwrap()].matches('\n').count() + 1;
        assert!(
            [value_line, header_line].iter().any(|l| html.contains(&format!("第 {l} 行，layers[1] (critical)"))),
            "{db:?}: line {value_line} or {header_line}: {html}"
        );
        // Not UTF-8, and too large.
        let r = web.post_multipart("/web/policy/compare", &fields, "gbk.toml", &[0xb9, 0xfa, 0xff, 0xfe]).await;
        assert_eq!(r.status, 400);
        assert!(r.text().contains("UTF-8"));
        let big = vec![b'#'; 300 << 10];
        let r = web.post_multipart("/web/policy/compare", &fields, "big.toml", &big).await;
        assert!(r.status == 400 || r.status == 413, "{db:?}: {}", r.status);
        assert!(r.text().contains("过大"), "{}", r.text());
        // A year out of range.
        let r = web.post_multipart("/web/policy/compare", &[("old", OLD), ("new", OLD), ("year", "1999")], "", b"").await;
        assert_eq!(r.status, 400);
        assert!(r.text().contains("年度"));
        app.stop().await;
    }
}
