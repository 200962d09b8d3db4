//! The OpenAPI document of the REST API and the national endpoint, and the vendored Swagger UI
//! (`/api/docs/`, no CDN: it runs on government intranets).

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

const SWAGGER_INDEX: &str = include_str!("../assets/swagger-ui/index.html");
const SWAGGER_JS: &str = include_str!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &str = include_str!("../assets/swagger-ui/swagger-ui.css");
const SWAGGER_ICON: &[u8] = include_bytes!("../assets/swagger-ui/favicon-32x32.png");
const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], OPENAPI) }))
        .route("/api/docs", get(|| async { Redirect::permanent("/api/docs/") }))
        .route("/api/docs/", get(|| async { asset("text/html; charset=utf-8", SWAGGER_INDEX.as_bytes()) }))
        .route("/api/docs/swagger-ui-bundle.js", get(|| async { asset("application/javascript; charset=utf-8", SWAGGER_JS.as_bytes()) }))
        .route("/api/docs/swagger-ui.css", get(|| async { asset("text/css; charset=utf-8", SWAGGER_CSS.as_bytes()) }))
        .route("/api/docs/favicon-32x32.png", get(|| async { asset("image/png", SWAGGER_ICON) }))
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=86400")], body).into_response()
}

/// The document, parsed (tests check that every route is in it).
pub fn document() -> serde_json::Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON (tested)")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every route of `api::routes()` (axum `{param}` syntax is also OpenAPI's), with its methods.
    /// Keep in step with `crate::api::routes`.
    const API_ROUTES: [(&str, &[&str]); 19] = [
        ("/healthz", &["get"]),
        ("/api/login", &["post"]),
        ("/api/logout", &["post"]),
        ("/api/me", &["get"]),
        ("/api/persons", &["get"]),
        ("/api/persons/lookup", &["post"]),
        ("/api/persons/{key}", &["get"]),
        ("/api/households/{household_no}", &["get"]),
        ("/api/settlements", &["get"]),
        ("/api/settlements/{setl_id}", &["get"]),
        ("/api/reconcile/runs", &["get"]),
        ("/api/reconcile/runs/{run_id}/findings", &["get"]),
        ("/api/users", &["get", "post"]),
        ("/api/institutions", &["get", "post"]),
        ("/api/audit-log", &["get"]),
        ("/api/access-log", &["get"]),
        ("/api/ledger/verify", &["get"]),
        ("/api/resettle", &["get", "post"]),
        ("/api/resettle/{run_id}", &["get"]),
    ];

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(d: &'a Value, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => d.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}")),
            None => v,
        }
    }

    #[test]
    fn the_document_is_openapi_3_and_lists_the_national_endpoint() {
        let d = super::document();
        assert!(d["openapi"].as_str().unwrap().starts_with("3."));
        assert!(d["paths"]["/fsi/api/{path}"]["post"].is_object());
        assert!(d["paths"]["/api/settlements/{setl_id}"]["get"].is_object());
    }

    #[test]
    fn every_api_route_is_documented_with_its_methods_and_path_parameters() {
        let d = super::document();
        assert_eq!(d["openapi"], "3.0.3");
        assert_eq!(d["info"]["version"], "0.1.0");
        for (path, methods) in API_ROUTES {
            let item = &d["paths"][path];
            assert!(item.is_object(), "{path} is missing from openapi.json");
            let params: Vec<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            for m in methods {
                let op = &item[*m];
                assert!(op.is_object(), "{} {path} is missing from openapi.json", m.to_uppercase());
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{m} {path} has no tag");
                let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{m} {path} has no responses"));
                assert!(responses.keys().any(|k| k.starts_with('2')), "{m} {path} has no success response");
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &resolve(&d, r)["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/ErrorResponse", "{m} {path} {status} is not an ErrorResponse");
                    }
                }
                let documented: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().map(|p| resolve(&d, p)).filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                assert_eq!(documented, params, "path parameters of {m} {path}");
            }
        }
        // Nothing documented that the service does not serve.
        let served: Vec<&str> = API_ROUTES.iter().map(|(p, _)| *p).chain(["/fsi/api/{path}", "/api/openapi.json", "/api/docs"]).collect();
        for path in d["paths"].as_object().unwrap().keys() {
            assert!(served.contains(&path.as_str()), "openapi.json documents {path}, which no router serves");
        }
    }

    #[test]
    fn every_national_transaction_has_its_input_and_output_schemas() {
        let d = super::document();
        let schemas = &d["components"]["schemas"];
        for name in [
            "Input9001",
            "Input1101",
            "Input2201",
            "Input2401",
            "Input2301",
            "InputSettle",
            "InputCancel",
            "Output9001",
            "Output1101",
            "Output2201",
            "Output2301",
            "OutputSettle",
            "SetlInfo",
            "SetlDetail",
            "ErrorResponse",
        ] {
            assert!(schemas[name].is_object(), "schema {name} is missing");
        }
        let mapping = d["components"]["schemas"]["NationalRequest"]["discriminator"]["mapping"].as_object().unwrap();
        for infno in crate::national::Infno::ALL {
            assert!(mapping.contains_key(infno.code()), "infno {infno} in the request discriminator");
        }
        for target in mapping.values() {
            resolve(&d, &serde_json::json!({ "$ref": target }));
        }
        let headers: Vec<&str> = d["paths"]["/fsi/api/{path}"]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| resolve(&d, p))
            .filter(|p| p["in"] == "header")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(headers, ["x-tif-paasid", "x-tif-timestamp", "x-tif-nonce", "x-tif-signature"]);
        // The national setlinfo carries every field that the writer in baozhang-ingest produces.
        let a = baozhang_ingest::output::SetlAmounts {
            medfee_sumamt: baozhang_core::Fen(100),
            fulamt_ownpay_amt: baozhang_core::Fen(0),
            overlmt_selfpay: baozhang_core::Fen(0),
            preselfpay_amt: baozhang_core::Fen(0),
            inscp_scp_amt: baozhang_core::Fen(100),
            act_pay_dedc: baozhang_core::Fen(0),
            funds_fen: [60, 0, 0, 0, 0, 0],
            fund_pay_sumamt: baozhang_core::Fen(60),
            hosp_part_amt: baozhang_core::Fen(0),
            psn_part_amt: baozhang_core::Fen(40),
            clr_type: 21,
        };
        let person = crate::national::settle::SetlPerson {
            name: "张三".into(),
            certno: "620422195001010015".into(),
            gend: "1",
            brdy: baozhang_core::Date::new(1950, 1, 1),
            mdtrt_cert_type: "02".into(),
        };
        let ctx = crate::national::settle::SetlContext {
            mdtrt_id: "M",
            setl_id: "S",
            psn_no: "P",
            med_type: 21,
            setl_date: baozhang_core::Date::new(2018, 6, 1),
            insuplc_admdvs: "620422",
            person: Some(&person),
            setl_time: None,
        };
        let out: Value = serde_json::from_str(&crate::national::settle::settlement_output(&ctx, &a, None)).unwrap();
        let documented = schemas["SetlInfo"]["properties"].as_object().unwrap();
        let produced = out["setlinfo"].as_object().unwrap();
        let mut d: Vec<_> = documented.keys().collect();
        let mut p: Vec<_> = produced.keys().collect();
        d.sort();
        p.sort();
        assert_eq!(d, p, "SetlInfo fields");
        let detail: Value = serde_json::from_str(&baozhang_ingest::output::setldetail_json(&a)).unwrap();
        let documented = schemas["SetlDetail"]["properties"].as_object().unwrap();
        let mut d: Vec<_> = documented.keys().collect();
        let mut p: Vec<_> = detail[0].as_object().unwrap().keys().collect();
        d.sort();
        p.sort();
        assert_eq!(d, p, "SetlDetail fields");
    }
}
