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
    #[test]
    fn the_document_is_openapi_3_and_lists_the_national_endpoint() {
        let d = super::document();
        assert!(d["openapi"].as_str().unwrap().starts_with("3."));
        assert!(d["paths"]["/fsi/api/{path}"]["post"].is_object());
        assert!(d["paths"]["/api/settlements/{setl_id}"]["get"].is_object());
    }
}
