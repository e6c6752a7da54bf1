//! HTTP hardening every wavegate listener applies around its routes: browsers may call (CORS,
//! with `ETag` exposed), and unnormalised paths are refused before routing and authorisation.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::ENV_HEADER;

/// CORS for browser clients (OFREP's web provider, Unleash's frontend SDKs, the dashboard).
/// Tokens travel in headers, never cookies, so any origin may call. `ETag` is exposed, or a
/// browser provider never learns it and never sends `If-None-Match` (research/clients.md).
/// `extra_headers` are allowed besides the ones the protocols read.
pub fn cors(extra_headers: &[HeaderName]) -> CorsLayer {
    let mut headers = vec![
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::IF_NONE_MATCH,
        header::IF_MATCH,
        HeaderName::from_static("x-api-key"),
        HeaderName::from_static(ENV_HEADER),
    ];
    headers.extend_from_slice(extra_headers);
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers(headers)
        .expose_headers([header::ETAG])
        .max_age(Duration::from_secs(600))
}

/// Middleware: refuses paths with `.`/`..` segments, empty segments or encoded separators
/// before any routing or authorisation (an OpenFlagr CVE bypassed auth with `/health/../flags`).
pub async fn reject_unnormalised_paths(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let lower = path.to_ascii_lowercase();
    let bad = path.split('/').skip(1).any(|seg| seg == "." || seg == "..")
        || path.contains("//")
        || lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || path.contains('\\');
    if bad {
        let message = "request path is not normalised (no '.', '..', '//' or encoded separators)";
        return (StatusCode::BAD_REQUEST, Json(json!({"code": "bad_request", "message": message})))
            .into_response();
    }
    next.run(req).await
}
