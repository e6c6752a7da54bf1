//! HTTP hardening every wavegate listener applies around its routes: browsers may call the
//! protocols from any origin (CORS, with `ETag` exposed; other routes only from the origins a
//! server allows), and unnormalised paths are refused before routing and authorisation.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::ENV_HEADER;

/// CORS for browser clients (OFREP's web provider, Unleash's frontend SDKs): any origin may
/// call. Tokens travel in headers, never cookies. `ETag` is exposed, or a browser provider never
/// learns it and never sends `If-None-Match` (research/clients.md). `extra_headers` are allowed
/// besides the ones the protocols read.
pub fn cors(extra_headers: &[HeaderName]) -> CorsLayer {
    cors_by(extra_headers, |_, _| true)
}

/// [`cors`], answering a page of origin `o` that calls path `p` only when `allow(o, p)`;
/// otherwise the answer carries no `Access-Control-Allow-Origin` and the browser keeps it from
/// the page. A server that serves more than the protocols lets [`open_to_any_origin`] paths
/// answer any origin and its own routes only the origins it was told of.
pub fn cors_by(
    extra_headers: &[HeaderName],
    allow: impl Fn(&HeaderValue, &str) -> bool + Send + Sync + 'static,
) -> CorsLayer {
    let mut headers = vec![
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::IF_NONE_MATCH,
        header::IF_MATCH,
        HeaderName::from_static("x-api-key"),
        HeaderName::from_static(ENV_HEADER),
        // Unleash's frontend SDK (unleash-proxy-client, under the React, Vue and Svelte SDKs)
        // sends these on every request; a preflight that refuses them leaves it with no toggles.
        HeaderName::from_static("unleash-appname"),
        HeaderName::from_static("unleash-sdk"),
        HeaderName::from_static("unleash-connection-id"),
        HeaderName::from_static("unleash-interval"),
    ];
    headers.extend_from_slice(extra_headers);
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| allow(origin, parts.uri.path())))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers(headers)
        .expose_headers([header::ETAG])
        .max_age(Duration::from_secs(600))
}

/// Whether `path` belongs to what browser SDKs call, which must answer pages of any origin:
/// OFREP (`/ofrep/…`, its event stream included) and Unleash's client and frontend APIs
/// (`/api/client/…`, `/api/frontend…`).
pub fn open_to_any_origin(path: &str) -> bool {
    path.starts_with("/ofrep/")
        || path.starts_with("/api/client/")
        || path == "/api/frontend"
        || path.starts_with("/api/frontend/")
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
