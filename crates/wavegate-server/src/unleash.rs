//! Unleash's client and frontend APIs, so Unleash SDKs work against wavegate unchanged.
//!
//! - `GET /api/client/features` (and `/api/client/features/{name}`): the environment's flags in
//!   Unleash's format ([`wavegate_core::unleash::export`]), with `ETag` / `If-None-Match` → 304;
//!   `POST /api/client/register`; `POST /api/client/metrics`, whose yes/no and variant counts
//!   become exposures of the flag's live rollout. Tokens: `server-sdk` (Unleash's client
//!   tokens) or `admin`.
//! - `GET|POST /api/frontend`, `/api/frontend/all`, `/api/frontend/features/{name}`: evaluated
//!   server-side for browser SDKs, with `client-sdk` tokens (Unleash's frontend tokens), or any
//!   token that may evaluate. `POST /api/frontend/client/{register,metrics}` are accepted.
//!
//! **Tokens** arrive in `Authorization` as Unleash SDKs send them: bare, `Bearer X`, or in
//! Unleash's shape `<project>:<environment>.<secret>` (the secret is a wavegate token; the
//! environment names the one to serve). The environment is, in order: the
//! `X-Wavegate-Environment` header, the token's `<environment>` part, the token's only
//! environment.
//!
//! The pure parts (documents, toggles, contexts) are shared with `wavegate edge`.
#![allow(clippy::result_large_err)] // handlers return ready responses as errors, as in ofrep.rs

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_core::context::{AttrValue, CURRENT_TIME};
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::unleash::export::{export_flag, export_segments};
use wavegate_core::unleash::{ClientFeature, ClientFeatures, context_from_unleash};
use wavegate_core::{Context, Flag, FlagLookup, Reason, ValueType, evaluate_in};
use wavegate_store::{AggregateDelta, TokenKind, TokenRecord};

use crate::state::AppState;

/// Most toggles one metrics report may carry.
pub const MAX_METRIC_TOGGLES: usize = 10_000;
/// Largest count one metrics bucket may report for one toggle.
pub const MAX_METRIC_COUNT: u64 = 1_000_000_000;

/// Unleash routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/client/features", get(client_features))
        .route("/api/client/features/{name}", get(client_feature))
        .route("/api/client/register", post(client_register))
        .route("/api/client/metrics", post(client_metrics))
        .route("/api/frontend", get(frontend_get).post(frontend_post))
        .route("/api/frontend/all", get(frontend_all_get).post(frontend_all_post))
        .route("/api/frontend/features/{name}", get(frontend_feature))
        .route("/api/frontend/client/register", post(frontend_accept))
        .route("/api/frontend/client/metrics", post(frontend_accept))
}

// ---------- the features document ----------

/// One environment's features document, built once per configuration revision.
#[derive(Debug)]
pub struct FeaturesDoc {
    /// The document, without filters.
    pub doc: ClientFeatures,
    /// Its serialised form.
    pub body: Bytes,
    /// Strong ETag of the unfiltered document.
    pub etag: String,
    /// Flags whose export is approximate, with the reasons.
    pub approximate: BTreeMap<String, Vec<String>>,
}

/// Features documents by environment, for one snapshot.
#[derive(Debug, Default)]
pub struct ExportCache(Mutex<HashMap<String, Arc<FeaturesDoc>>>);

impl ExportCache {
    /// The document for `env`, building it on first use.
    pub fn get_or_build(&self, env: &str, build: impl FnOnce() -> FeaturesDoc) -> Arc<FeaturesDoc> {
        if let Some(d) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(env) {
            return d.clone();
        }
        let doc = Arc::new(build());
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(env.to_owned(), doc.clone());
        doc
    }
}

/// Builds `env`'s features document from flag and segment specs at `revision`.
pub fn features_document<'a>(
    flags: impl IntoIterator<Item = (&'a String, &'a FlagSpec)>,
    segments: impl IntoIterator<Item = (&'a String, &'a SegmentSpec)>,
    env: &str,
    revision: i64,
) -> FeaturesDoc {
    let (useg, ids) = export_segments(segments);
    let mut features = Vec::new();
    let mut approximate = BTreeMap::new();
    for (key, spec) in flags {
        let e = export_flag(key, spec, env, &ids);
        if !e.approximate.is_empty() {
            approximate.insert(key.clone(), e.approximate);
        }
        features.push(e.feature);
    }
    features.sort_by(|a, b| a.name.cmp(&b.name));
    let doc = ClientFeatures {
        version: 2,
        features,
        segments: useg,
        query: Some(json!({"environment": env, "inlineSegmentConstraints": false})),
        meta: Some(json!({"revisionId": revision})),
    };
    let body = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let etag = format!("\"{}\"", &wavegate_core::audit::sha256_hex_bytes(&body)[..32]);
    FeaturesDoc { doc, body, etag, approximate }
}

/// Filters Unleash SDKs send on `/api/client/features`.
#[derive(Debug, Default, PartialEq)]
pub struct FeatureQuery {
    /// Only features whose name starts with this.
    pub name_prefix: Option<String>,
    /// Only these projects (wavegate has one: `default`).
    pub projects: Vec<String>,
}

impl FeatureQuery {
    /// Reads `namePrefix` and `project` from a query string (other keys, like Node's `tag`,
    /// are ignored).
    pub fn parse(query: Option<&str>) -> FeatureQuery {
        let mut q = FeatureQuery::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "namePrefix" if !v.is_empty() => q.name_prefix = Some(v.into_owned()),
                "project" | "project[]" if !v.is_empty() => q.projects.push(v.into_owned()),
                _ => {}
            }
        }
        q
    }

    fn keeps(&self, f: &ClientFeature) -> bool {
        self.name_prefix.as_deref().is_none_or(|p| f.name.starts_with(p))
            && (self.projects.is_empty()
                || self.projects.iter().any(|p| Some(p.as_str()) == f.project.as_deref()))
    }
}

/// The `/api/client/features` response for `doc`, honouring filters and `If-None-Match`.
pub fn features_response(doc: &FeaturesDoc, query: Option<&str>, headers: &HeaderMap) -> Response {
    let q = FeatureQuery::parse(query);
    let (body, etag) = if q == FeatureQuery::default() {
        (doc.body.clone(), doc.etag.clone())
    } else {
        let mut filtered = doc.doc.clone();
        filtered.features.retain(|f| q.keeps(f));
        let body = Bytes::from(serde_json::to_vec(&filtered).unwrap_or_default());
        let etag = format!("\"{}\"", &wavegate_core::audit::sha256_hex_bytes(&body)[..32]);
        (body, etag)
    };
    let etag_value =
        HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    if if_none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag_value),
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ],
        body,
    )
        .into_response()
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

// ---------- frontend evaluation ----------

/// Whether `flag` is on for `ctx` as an Unleash SDK would say (boolean: serving `true`;
/// otherwise enabled with its prerequisites met), and the toggle object Unleash's frontend API
/// returns for it.
pub fn toggle(key: &str, flag: &Flag, flags: &dyn FlagLookup, ctx: &Context) -> (bool, Value) {
    let r = evaluate_in(flag, ctx, flags);
    let enabled = match flag.value_type() {
        ValueType::Bool => r.value == &Value::Bool(true),
        _ => r.reason != Reason::Disabled,
    };
    let variant = if enabled && flag.value_type() != ValueType::Bool {
        let payload = match r.value {
            Value::String(s) => json!({"type": "string", "value": s}),
            Value::Number(n) => json!({"type": "number", "value": n.to_string()}),
            other => json!({"type": "json", "value": other.to_string()}),
        };
        json!({"name": r.variant, "enabled": true, "feature_enabled": true, "payload": payload})
    } else {
        json!({"name": "disabled", "enabled": false, "feature_enabled": enabled})
    };
    (enabled, json!({"name": key, "enabled": enabled, "variant": variant, "impressionData": false}))
}

/// The frontend API's toggles for `ctx`: every flag (`all`) or only those that are on,
/// sorted by name.
pub fn frontend_toggles<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    flags: &dyn FlagLookup,
    ctx: &Context,
    all: bool,
) -> Vec<Value> {
    let mut keys: Vec<&String> = keys.into_iter().collect();
    keys.sort();
    keys.into_iter()
        .filter_map(|k| flags.flag(k).map(|f| toggle(k, f, flags, ctx)))
        .filter(|(on, _)| all || *on)
        .map(|(_, t)| t)
        .collect()
}

/// A frontend context from a query string (`userId=…&properties[country]=NO&plan=pro`) or a
/// POST body (`{"context": {…}}` or the context itself), with the server's time for date
/// constraints and entropy for random stickiness.
pub fn frontend_context(query: Option<&str>, body: Option<&[u8]>) -> Result<Context, String> {
    let mut raw = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let k = k.into_owned();
        let name = k
            .strip_prefix("properties[")
            .or_else(|| k.strip_prefix("context[properties]["))
            .or_else(|| k.strip_prefix("context["))
            .and_then(|r| r.strip_suffix(']'))
            .map(str::to_owned)
            .unwrap_or(k);
        if name.is_empty() {
            return Err("a query parameter has an empty name".into());
        }
        raw.insert(name, Value::String(v.into_owned()));
    }
    if let Some(b) = body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) {
        let v: Value =
            serde_json::from_slice(b).map_err(|e| format!("the body is not valid JSON: {e}"))?;
        let ctx = v.get("context").cloned().unwrap_or(v);
        let Value::Object(o) = ctx else {
            return Err("the context must be a JSON object".into());
        };
        raw.extend(o);
    }
    let mut ctx =
        context_from_unleash(&Value::Object(raw)).map_err(|e| format!("invalid context: {e}"))?;
    if !ctx.has_current_time() {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        ctx.set(CURRENT_TIME, AttrValue::String(now));
    }
    Ok(ctx.with_entropy(rand::random()))
}

// ---------- tokens ----------

/// The secret in an Unleash-shaped token `<project>:<environment>.<secret>`, and the
/// environment it names.
pub fn split_unleash_token(token: &str) -> Option<(&str, &str)> {
    let (project, rest) = token.split_once(':')?;
    let (env, secret) = rest.split_once('.')?;
    (!project.is_empty() && !env.is_empty() && !secret.is_empty()).then_some((env, secret))
}

fn unleash_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": status.canonical_reason(), "message": message.into()})))
        .into_response()
}

/// The token and the environment to serve, or the error response.
async fn authorise(
    state: &AppState,
    headers: &HeaderMap,
    kinds: &[TokenKind],
) -> Result<(TokenRecord, String), Response> {
    let Some(raw) = crate::auth::secret_from_headers(headers) else {
        return Err(unleash_error(
            StatusCode::UNAUTHORIZED,
            "no token: send your wavegate token in the Authorization header",
        ));
    };
    let lookup = |s: &str| {
        let s = s.to_owned();
        async move { state.tokens.lookup(state, &s).await }
    };
    let internal = |e: wavegate_store::StoreError| {
        tracing::error!(error = %e, "token lookup failed");
        unleash_error(StatusCode::SERVICE_UNAVAILABLE, "token lookup failed; try again")
    };
    let (token, hinted) = match lookup(raw).await.map_err(internal)? {
        Some(t) => (t, None),
        None => match split_unleash_token(raw) {
            Some((env, secret)) => match lookup(secret).await.map_err(internal)? {
                Some(t) => (t, Some(env.to_owned())),
                None => {
                    return Err(unleash_error(
                        StatusCode::UNAUTHORIZED,
                        "unknown or revoked token",
                    ));
                }
            },
            None => {
                return Err(unleash_error(StatusCode::UNAUTHORIZED, "unknown or revoked token"));
            }
        },
    };
    if !kinds.contains(&token.kind) {
        return Err(unleash_error(
            StatusCode::FORBIDDEN,
            format!(
                "a {} token cannot use this API; it needs {}",
                token.kind.as_str(),
                kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")
            ),
        ));
    }
    let named = headers
        .get(crate::ofrep::ENV_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let env = match named.or(hinted) {
        Some(e) => e,
        None => match token.environments.as_slice() {
            [one] if one != "*" => one.clone(),
            _ => {
                return Err(unleash_error(
                    StatusCode::BAD_REQUEST,
                    "this token spans several environments; name one in the X-Wavegate-Environment header or use a token shaped <project>:<environment>.<secret>",
                ));
            }
        },
    };
    if !state.snapshot.load().environments.contains(&env) {
        return Err(unleash_error(StatusCode::BAD_REQUEST, format!("unknown environment {env:?}")));
    }
    if !token.allows_env(&env) {
        return Err(unleash_error(
            StatusCode::FORBIDDEN,
            format!("this token is not valid for environment {env:?}"),
        ));
    }
    Ok((token, env))
}

const CLIENT_KINDS: &[TokenKind] = &[TokenKind::ServerSdk, TokenKind::Admin];
const FRONTEND_KINDS: &[TokenKind] =
    &[TokenKind::ClientSdk, TokenKind::ServerSdk, TokenKind::Admin];

// ---------- client API handlers ----------

fn doc_for(state: &AppState, env: &str) -> Arc<FeaturesDoc> {
    let snap = state.snapshot.load();
    snap.unleash.get_or_build(env, || {
        features_document(&snap.flag_specs, &snap.segment_specs, env, snap.revision)
    })
}

async fn client_features(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (_, env) = match authorise(&state, &headers, CLIENT_KINDS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    features_response(&doc_for(&state, &env), query.as_deref(), &headers)
}

async fn client_feature(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (_, env) = match authorise(&state, &headers, CLIENT_KINDS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let doc = doc_for(&state, &env);
    match doc.doc.features.iter().find(|f| f.name == name) {
        Some(f) => axum::Json(f).into_response(),
        None => {
            unleash_error(StatusCode::NOT_FOUND, format!("feature {name:?} not found in {env}"))
        }
    }
}

/// An SDK's registration. Fields vary by SDK; these are checked when present.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registration {
    app_name: String,
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default)]
    sdk_version: Option<String>,
    /// Seconds (Python) or milliseconds (Node); only logged.
    #[serde(default)]
    interval: Option<Value>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| unleash_error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

async fn client_register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (token, env) = match authorise(&state, &headers, CLIENT_KINDS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let reg: Registration = match parse_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if reg.app_name.trim().is_empty() || reg.app_name.len() > 256 {
        return unleash_error(StatusCode::BAD_REQUEST, "appName must be 1 to 256 characters");
    }
    tracing::info!(
        app = %reg.app_name,
        instance = reg.instance_id.as_deref().unwrap_or("-"),
        sdk = reg.sdk_version.as_deref().unwrap_or("-"),
        interval = ?reg.interval,
        env = %env,
        principal = %token.principal,
        "Unleash SDK registered"
    );
    StatusCode::ACCEPTED.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricsReport {
    app_name: String,
    bucket: MetricsBucket,
}

#[derive(Debug, Deserialize)]
struct MetricsBucket {
    #[serde(default)]
    toggles: BTreeMap<String, ToggleCounts>,
}

#[derive(Debug, Default, Deserialize)]
struct ToggleCounts {
    #[serde(default)]
    yes: u64,
    #[serde(default)]
    no: u64,
    #[serde(default)]
    variants: BTreeMap<String, u64>,
}

/// Arm counts a metrics report adds to the live rollouts of `env`: for a boolean flag, `yes`
/// counts for the variant serving `true` and `no` for the one serving `false`; otherwise the
/// variant counts. Unleash reports carry no contexts, so a flag's whole count goes to its
/// rollout's arms (contexts served by other rules of the flag included).
fn arm_deltas(
    state: &AppState,
    env: &str,
    toggles: &BTreeMap<String, ToggleCounts>,
) -> Vec<AggregateDelta> {
    let snap = state.snapshot.load();
    let live = state.live.load();
    let mut out = Vec::new();
    for (name, counts) in toggles {
        let Some(ro) = live.get(&(env.to_owned(), name.clone())) else { continue };
        let Some(flag) = snap.flag(env, name) else { continue };
        let count_of = |variant: &str| -> u64 {
            let Some(v) = flag.variants().iter().find(|v| v.name == variant) else { return 0 };
            match &v.value {
                Value::Bool(true) => counts.yes,
                Value::Bool(false) => counts.no,
                _ => counts.variants.get(variant).copied().unwrap_or(0),
            }
        };
        for (arm, variant) in [("treatment", &ro.new_variant), ("control", &ro.control_variant)] {
            let n = count_of(variant) as f64;
            if n > 0.0 {
                out.push(AggregateDelta {
                    rollout: ro.id.clone(),
                    wave: ro.wave,
                    arm: arm.into(),
                    metric: "exposure".into(),
                    n,
                    sum: n,
                    sumsq: n,
                });
            }
        }
    }
    out
}

async fn client_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, env) = match authorise(&state, &headers, CLIENT_KINDS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let report: MetricsReport = match parse_body(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if report.app_name.trim().is_empty() {
        return unleash_error(StatusCode::BAD_REQUEST, "appName must not be empty");
    }
    let toggles = &report.bucket.toggles;
    if toggles.len() > MAX_METRIC_TOGGLES {
        return unleash_error(
            StatusCode::BAD_REQUEST,
            format!(
                "bucket.toggles holds at most {MAX_METRIC_TOGGLES} toggles, got {}",
                toggles.len()
            ),
        );
    }
    for (name, c) in toggles {
        let too_big = c.yes > MAX_METRIC_COUNT
            || c.no > MAX_METRIC_COUNT
            || c.variants.values().any(|n| *n > MAX_METRIC_COUNT);
        if too_big {
            return unleash_error(
                StatusCode::BAD_REQUEST,
                format!("bucket.toggles.{name}: counts must be at most {MAX_METRIC_COUNT}"),
            );
        }
    }
    let deltas = arm_deltas(&state, &env, toggles);
    if !deltas.is_empty()
        && let Err(e) = state.store.add_aggregates(&deltas, &[], &[], state.clock.now()).await
    {
        tracing::error!(error = %e, "could not record Unleash metrics");
        return unleash_error(StatusCode::SERVICE_UNAVAILABLE, "could not record metrics; retry");
    }
    StatusCode::ACCEPTED.into_response()
}

// ---------- frontend API handlers ----------

async fn frontend(
    state: AppState,
    headers: HeaderMap,
    query: Option<String>,
    body: Option<Bytes>,
    all: bool,
) -> Response {
    let (_, env) = match authorise(&state, &headers, FRONTEND_KINDS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let ctx = match frontend_context(query.as_deref(), body.as_deref()) {
        Ok(c) => c,
        Err(m) => return unleash_error(StatusCode::BAD_REQUEST, m),
    };
    let snap = state.snapshot.load();
    let empty = crate::snapshot::FlagMap::default();
    let flags = snap.flags.get(&env).unwrap_or(&empty);
    let toggles = frontend_toggles(flags.keys(), flags, &ctx, all);
    axum::Json(json!({"toggles": toggles})).into_response()
}

async fn frontend_get(State(s): State<AppState>, RawQuery(q): RawQuery, h: HeaderMap) -> Response {
    frontend(s, h, q, None, false).await
}

async fn frontend_post(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    frontend(s, h, q, Some(b), false).await
}

async fn frontend_all_get(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    frontend(s, h, q, None, true).await
}

async fn frontend_all_post(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    frontend(s, h, q, Some(b), true).await
}

async fn frontend_feature(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (_, env) = match authorise(&state, &headers, FRONTEND_KINDS).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let ctx = match frontend_context(query.as_deref(), None) {
        Ok(c) => c,
        Err(m) => return unleash_error(StatusCode::BAD_REQUEST, m),
    };
    let snap = state.snapshot.load();
    let Some(flags) = snap.flags.get(&env) else {
        return unleash_error(StatusCode::NOT_FOUND, format!("feature {name:?} not found"));
    };
    match flags.get(&name) {
        Some(f) => {
            let (on, t) = toggle(&name, f, flags, &ctx);
            if on {
                axum::Json(t).into_response()
            } else {
                // As Unleash: a feature that is off for this context is not found.
                unleash_error(
                    StatusCode::NOT_FOUND,
                    format!("feature {name:?} is not enabled for this context"),
                )
            }
        }
        None => {
            unleash_error(StatusCode::NOT_FOUND, format!("feature {name:?} not found in {env}"))
        }
    }
}

async fn frontend_accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorise(&state, &headers, FRONTEND_KINDS).await {
        return r;
    }
    if let Err(r) = parse_body::<Value>(&body) {
        return r;
    }
    StatusCode::ACCEPTED.into_response()
}
