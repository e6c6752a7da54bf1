//! Unleash's client and frontend APIs on `wavegate edge`, from the configuration the edge
//! holds (so they keep answering while the upstream is away). Documents, toggles and contexts
//! are built by the same code as on the server (`wavegate_server::unleash`). Metrics and
//! registrations are passed upstream.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_sdk::config::Compiled;
use wavegate_server::unleash::{
    FeaturesDoc, features_document, features_response, frontend_context, frontend_toggles, toggle,
};

use super::Edge;

/// The features document of the configuration it was built from.
#[derive(Default)]
pub(super) struct DocCache(Mutex<Option<(Arc<Compiled>, Arc<FeaturesDoc>)>>);

const CLIENT_KINDS: &[&str] = &["server-sdk", "admin"];
const FRONTEND_KINDS: &[&str] = &["client-sdk", "server-sdk", "admin"];

/// Unleash routes of the edge.
pub(super) fn router() -> Router<Arc<Edge>> {
    Router::new()
        .route("/api/client/features", get(client_features))
        .route("/api/client/register", post(pass_upstream))
        .route("/api/client/metrics", post(pass_upstream))
        .route("/api/frontend", get(frontend_get).post(frontend_post))
        .route("/api/frontend/all", get(frontend_all_get).post(frontend_all_post))
        .route("/api/frontend/features/{name}", get(frontend_feature))
        .route("/api/frontend/client/register", post(accept))
        .route("/api/frontend/client/metrics", post(accept))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": status.canonical_reason(), "message": message.into()})))
        .into_response()
}

impl Edge {
    fn features_doc(&self) -> Arc<FeaturesDoc> {
        let config = self.sdk.config();
        let mut cache = self.unleash_doc.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c, d)) = cache.as_ref()
            && Arc::ptr_eq(c, &config)
        {
            return d.clone();
        }
        let flags: Vec<(String, FlagSpec)> = config
            .specs
            .flags
            .iter()
            .filter_map(|(k, v)| serde_json::from_value(v.clone()).ok().map(|s| (k.clone(), s)))
            .collect();
        let segments: Vec<(String, SegmentSpec)> = config
            .specs
            .segments
            .iter()
            .filter_map(|(k, v)| serde_json::from_value(v.clone()).ok().map(|s| (k.clone(), s)))
            .collect();
        let revision = config.specs.last_event_id.unwrap_or(0);
        let doc = Arc::new(features_document(
            flags.iter().map(|(k, s)| (k, s)),
            segments.iter().map(|(k, s)| (k, s)),
            &self.environment,
            revision,
        ));
        *cache = Some((config, doc.clone()));
        doc
    }
}

async fn client_features(
    State(edge): State<Arc<Edge>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(s) = edge.authorise(&headers, CLIENT_KINDS).await {
        return error(s, "this token cannot read features here");
    }
    features_response(&edge.features_doc(), query.as_deref(), &headers)
}

/// Registrations and metrics go to the upstream, with the edge's own token (the caller's was
/// checked here). The upstream's answer is passed back.
async fn pass_upstream(
    State(edge): State<Arc<Edge>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(s) = edge.authorise(&headers, CLIENT_KINDS).await {
        return error(s, "this token cannot report here");
    }
    if serde_json::from_slice::<Value>(&body).is_err() {
        return error(StatusCode::BAD_REQUEST, "the body is not valid JSON");
    }
    let sent = edge
        .http
        .post(format!("{}{}", edge.upstream, uri.path()))
        .header("authorization", format!("Bearer {}", edge.token))
        .header("x-wavegate-environment", &edge.environment)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) => StatusCode::from_u16(r.status().as_u16())
            .unwrap_or(StatusCode::BAD_GATEWAY)
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, path = uri.path(), "upstream unreachable; Unleash report dropped");
            error(StatusCode::BAD_GATEWAY, "the upstream is unreachable; try again later")
        }
    }
}

async fn frontend(
    edge: Arc<Edge>,
    headers: HeaderMap,
    query: Option<String>,
    body: Option<Bytes>,
    all: bool,
) -> Response {
    if let Err(s) = edge.authorise(&headers, FRONTEND_KINDS).await {
        return error(s, "this token cannot evaluate here");
    }
    let ctx = match frontend_context(query.as_deref(), body.as_deref()) {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let config = edge.sdk.config();
    let toggles = frontend_toggles(config.flags.keys(), &config.flags, &ctx, all);
    axum::Json(json!({"toggles": toggles})).into_response()
}

async fn frontend_get(State(e): State<Arc<Edge>>, RawQuery(q): RawQuery, h: HeaderMap) -> Response {
    frontend(e, h, q, None, false).await
}

async fn frontend_post(
    State(e): State<Arc<Edge>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    frontend(e, h, q, Some(b), false).await
}

async fn frontend_all_get(
    State(e): State<Arc<Edge>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    frontend(e, h, q, None, true).await
}

async fn frontend_all_post(
    State(e): State<Arc<Edge>>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    frontend(e, h, q, Some(b), true).await
}

async fn frontend_feature(
    State(edge): State<Arc<Edge>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(s) = edge.authorise(&headers, FRONTEND_KINDS).await {
        return error(s, "this token cannot evaluate here");
    }
    let ctx = match frontend_context(query.as_deref(), None) {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let config = edge.sdk.config();
    match config.flags.get(&name).map(|f| toggle(&name, f, &config.flags, &ctx)) {
        Some((true, t)) => axum::Json(t).into_response(),
        Some((false, _)) => error(
            StatusCode::NOT_FOUND,
            format!("feature {name:?} is not enabled for this context"),
        ),
        None => error(StatusCode::NOT_FOUND, format!("feature {name:?} not found")),
    }
}

async fn accept(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(s) = edge.authorise(&headers, FRONTEND_KINDS).await {
        return error(s, "this token cannot report here");
    }
    if serde_json::from_slice::<Value>(&body).is_err() {
        return error(StatusCode::BAD_REQUEST, "the body is not valid JSON");
    }
    StatusCode::ACCEPTED.into_response()
}
