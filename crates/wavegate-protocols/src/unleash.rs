//! Unleash's client and frontend APIs, so Unleash SDKs work against wavegate unchanged.
//!
//! - `GET /api/client/features` (and `/api/client/features/{name}`): the environment's flags in
//!   Unleash's format ([`wavegate_core::unleash::export`]), with `ETag` / `If-None-Match` → 304;
//!   `POST /api/client/register`; `POST /api/client/metrics`, whose yes/no and variant counts
//!   the [`FlagSource`] takes (the server: as exposures of the flag's live rollout). Tokens:
//!   `server-sdk` (Unleash's client tokens) or `admin`.
//! - `GET|POST /api/frontend`, `/api/frontend/all`, `/api/frontend/features/{name}`: evaluated
//!   server-side for browser SDKs, with `client-sdk` tokens (Unleash's frontend tokens), or any
//!   token that may evaluate. `POST /api/frontend/client/{register,metrics}` are accepted.
//!
//! Tokens may take Unleash's shape `<project>:<environment>.<secret>` ([`crate::auth`]).
// Handlers return ready responses as errors, as in ofrep.rs.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wavegate_core::context::{AttrValue, CURRENT_TIME};
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::unleash::export::{export_flag, export_segments};
use wavegate_core::unleash::{ClientFeature, ClientFeatures, context_from_unleash};
use wavegate_core::{Context, Flag, FlagLookup, Reason, ValueType, evaluate_in};

use crate::auth::{self, Denied, Grant, Shapes};
use crate::{FlagSource, Protocols, Refusal, Report, TokenKind, etag};

/// Most toggles one metrics report may carry.
pub const MAX_METRIC_TOGGLES: usize = 10_000;
/// Largest count one metrics bucket may report for one toggle.
pub const MAX_METRIC_COUNT: u64 = 1_000_000_000;

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

/// Features documents by environment, for one configuration (a new configuration starts with
/// an empty cache, so documents never outlive the revision they describe).
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

/// Builds `env`'s features document from flag and segment specs at `revision`: its features,
/// and of the segments only those its features use.
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
    // Only the segments this environment's features use: the others' members (user ids) are
    // not for its tokens, and an SDK needs nothing it does not refer to.
    let used: std::collections::BTreeSet<i64> =
        features.iter().flat_map(|f| &f.strategies).flat_map(|s| &s.segments).copied().collect();
    let segments = useg.into_iter().filter(|s| used.contains(&s.id)).collect();
    let doc = ClientFeatures {
        version: 2,
        features,
        segments,
        query: Some(json!({"environment": env, "inlineSegmentConstraints": false})),
        meta: Some(json!({"revisionId": revision})),
    };
    let body = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    let etag = etag::of_bytes(&body);
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
        let etag = etag::of_bytes(&body);
        (body, etag)
    };
    tagged_json(headers, body, &etag)
}

/// A JSON `body` with `etag`, or `304 Not Modified` when the request's `If-None-Match` names it.
fn tagged_json(headers: &HeaderMap, body: Bytes, etag: &str) -> Response {
    if etag::if_none_match(headers, etag) {
        return etag::not_modified(etag);
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag::header_value(etag)),
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ],
        body,
    )
        .into_response()
}

/// A frontend answer, tagged with a hash of its bytes: the answer depends on the context (in
/// the request) and the clock as well as the configuration, so only its bytes can say whether
/// the client's copy is current (unleash-proxy-client sends its last ETag back).
fn frontend_json(headers: &HeaderMap, value: &impl Serialize, size_hint: usize) -> Response {
    let mut body = Vec::with_capacity(size_hint);
    if serde_json::to_writer(&mut body, value).is_err() {
        body.clear();
    }
    let etag = etag::of_bytes(&body);
    tagged_json(headers, Bytes::from(body), &etag)
}

// ---------- frontend evaluation ----------

/// The toggle object Unleash's frontend API returns for one flag, serialised straight from the
/// evaluation (no `serde_json::Value` in between): `{"name", "enabled", "variant": {"name",
/// "enabled", "feature_enabled"[, "payload": {"type", "value"}]}, "impressionData"}`, in this
/// order.
#[derive(Debug, Serialize)]
pub struct Toggle<'a> {
    name: &'a str,
    /// Whether the flag is on for the context.
    pub enabled: bool,
    variant: ToggleVariant<'a>,
    #[serde(rename = "impressionData")]
    impression_data: bool,
}

#[derive(Debug, Serialize)]
struct ToggleVariant<'a> {
    name: &'a str,
    enabled: bool,
    feature_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload<'a>>,
}

#[derive(Debug, Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: std::borrow::Cow<'a, str>,
}

/// The toggles of a frontend answer.
#[derive(Serialize)]
struct Toggles<'a> {
    toggles: Vec<Toggle<'a>>,
}

/// Whether `flag` is on for `ctx` as an Unleash SDK would say (boolean: serving `true`;
/// otherwise enabled with its prerequisites met), and the toggle object Unleash's frontend API
/// returns for it.
pub fn toggle<'a>(
    key: &'a str,
    flag: &'a Flag,
    flags: &dyn FlagLookup,
    ctx: &Context,
) -> Toggle<'a> {
    let r = evaluate_in(flag, ctx, flags);
    let enabled = match flag.value_type() {
        ValueType::Bool => r.value == &Value::Bool(true),
        _ => r.reason != Reason::Disabled,
    };
    let variant = if enabled && flag.value_type() != ValueType::Bool {
        let payload = match r.value {
            Value::String(s) => Payload { kind: "string", value: s.as_str().into() },
            Value::Number(n) => Payload { kind: "number", value: n.to_string().into() },
            other => Payload { kind: "json", value: other.to_string().into() },
        };
        ToggleVariant {
            name: r.variant,
            enabled: true,
            feature_enabled: true,
            payload: Some(payload),
        }
    } else {
        ToggleVariant { name: "disabled", enabled: false, feature_enabled: enabled, payload: None }
    };
    Toggle { name: key, enabled, variant, impression_data: false }
}

/// A frontend context from a query string (`userId=…&properties[country]=NO&plan=pro`) or a
/// POST body (`{"context": {…}}` or the context itself), with `now` as `currentTime` (unless
/// the context brings one) and entropy for random stickiness.
pub fn frontend_context(
    query: Option<&str>,
    body: Option<&[u8]>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Context, String> {
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
        let now = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        ctx.set(CURRENT_TIME, AttrValue::String(now));
    }
    Ok(ctx.with_entropy(rand::random()))
}

// ---------- errors and tokens ----------

fn unleash_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": status.canonical_reason(), "message": message.into()})))
        .into_response()
}

fn denied(d: Denied) -> Response {
    let status = d.status();
    let message = match d {
        Denied::NoToken => "no token: send your wavegate token in the Authorization header".into(),
        Denied::UnknownToken => "unknown or revoked token".into(),
        Denied::Lookup(e) => {
            tracing::error!(error = %e, "token lookup failed");
            "token lookup failed; try again".into()
        }
        Denied::WrongKind { kind, needs } => format!(
            "a {} token cannot use this API; it needs {}",
            kind.as_str(),
            needs.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")
        ),
        Denied::SpansSeveral => "this token spans several environments; name one in the X-Wavegate-Environment header or use a token shaped <project>:<environment>.<secret>".into(),
        Denied::UnknownEnvironment(env) => format!("unknown environment {env:?}"),
        Denied::NotAllowed(env) => format!("this token is not valid for environment {env:?}"),
        Denied::NotServed(env) => format!("environment {env:?} is not served here"),
    };
    unleash_error(status, message)
}

/// Authorises an Unleash request for `kinds`; the refusal is a ready Unleash error response.
async fn authorise(
    source: &dyn FlagSource,
    headers: &HeaderMap,
    kinds: &'static [TokenKind],
) -> Result<Grant, Response> {
    auth::authorise(source, headers, kinds, Shapes::Unleash).await.map_err(denied)
}

// ---------- client API handlers ----------

pub(crate) async fn client_features(
    State(Protocols(source)): State<Protocols>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let g = match authorise(&*source, &headers, auth::READ_RULES).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    features_response(&g.config.unleash_features(&g.environment), query.as_deref(), &headers)
}

pub(crate) async fn client_feature(
    State(Protocols(source)): State<Protocols>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let g = match authorise(&*source, &headers, auth::READ_RULES).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let doc = g.config.unleash_features(&g.environment);
    match doc.doc.features.iter().find(|f| f.name == name) {
        Some(f) => Json(f).into_response(),
        None => unleash_error(
            StatusCode::NOT_FOUND,
            format!("feature {name:?} not found in {}", g.environment),
        ),
    }
}

/// An SDK's registration. Fields vary by SDK; these are checked when present.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The application's name (1 to 256 characters).
    pub app_name: String,
    /// The SDK instance.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The SDK and its version.
    #[serde(default)]
    pub sdk_version: Option<String>,
    /// Seconds (Python) or milliseconds (Node); only logged.
    #[serde(default)]
    pub interval: Option<Value>,
}

/// An SDK's metrics report.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsReport {
    /// The application's name (not empty).
    pub app_name: String,
    /// The counts.
    pub bucket: MetricsBucket,
}

/// One reporting period's counts.
#[derive(Debug, Deserialize)]
pub struct MetricsBucket {
    /// Counts by toggle name (at most [`MAX_METRIC_TOGGLES`]).
    #[serde(default)]
    pub toggles: BTreeMap<String, ToggleCounts>,
}

/// How often one toggle answered what (each at most [`MAX_METRIC_COUNT`]).
#[derive(Debug, Default, Deserialize)]
pub struct ToggleCounts {
    /// Times it was enabled.
    #[serde(default)]
    pub yes: u64,
    /// Times it was disabled.
    #[serde(default)]
    pub no: u64,
    /// Times each variant was served.
    #[serde(default)]
    pub variants: BTreeMap<String, u64>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| unleash_error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

/// Why a registration is refused, if it is.
fn check_registration(reg: &Registration) -> Option<String> {
    (reg.app_name.trim().is_empty() || reg.app_name.len() > 256)
        .then(|| "appName must be 1 to 256 characters".into())
}

/// Why a metrics report is refused, if it is.
fn check_metrics(report: &MetricsReport) -> Option<String> {
    if report.app_name.trim().is_empty() {
        return Some("appName must not be empty".into());
    }
    let toggles = &report.bucket.toggles;
    if toggles.len() > MAX_METRIC_TOGGLES {
        return Some(format!(
            "bucket.toggles holds at most {MAX_METRIC_TOGGLES} toggles, got {}",
            toggles.len()
        ));
    }
    toggles
        .iter()
        .find(|(_, c)| {
            c.yes > MAX_METRIC_COUNT
                || c.no > MAX_METRIC_COUNT
                || c.variants.values().any(|n| *n > MAX_METRIC_COUNT)
        })
        .map(|(name, _)| {
            format!("bucket.toggles.{name}: counts must be at most {MAX_METRIC_COUNT}")
        })
}

/// Authorises, parses and checks a report, hands it to `take`, and answers 202 once taken.
async fn take_report<T, F>(
    source: &dyn FlagSource,
    headers: &HeaderMap,
    body: &Bytes,
    check: fn(&T) -> Option<String>,
    take: F,
) -> Response
where
    T: serde::de::DeserializeOwned,
    F: AsyncFnOnce(Report<'_, T>) -> Result<(), Refusal>,
{
    let g = match authorise(source, headers, auth::READ_RULES).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let parsed: T = match parse_body(body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(m) = check(&parsed) {
        return unleash_error(StatusCode::BAD_REQUEST, m);
    }
    let report =
        Report { caller: &g.caller, environment: &g.environment, body: &parsed, raw: body };
    match take(report).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(r) => unleash_error(r.status, r.message),
    }
}

pub(crate) async fn client_register(
    State(Protocols(source)): State<Protocols>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    take_report(&*source, &headers, &body, check_registration, async |r| {
        source.unleash_registered(r).await
    })
    .await
}

pub(crate) async fn client_metrics(
    State(Protocols(source)): State<Protocols>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    take_report(&*source, &headers, &body, check_metrics, async |r| source.unleash_metrics(r).await)
        .await
}

// ---------- frontend API handlers ----------

/// `GET|POST /api/frontend[/all]`: the toggles for the request's context (the query string,
/// and for POST the body), sorted by name: every flag (`/all`) or only those that are on.
pub(crate) async fn frontend(
    State(Protocols(source)): State<Protocols>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let all = uri.path().ends_with("/all");
    let g = match authorise(&*source, &headers, auth::EVALUATE).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let body = (method == Method::POST).then_some(&body[..]);
    let ctx = match frontend_context(query.as_deref(), body, source.now()) {
        Ok(c) => c,
        Err(m) => return unleash_error(StatusCode::BAD_REQUEST, m),
    };
    let toggles: Vec<Toggle<'_>> = match g.config.flags(&g.environment) {
        Some(flags) => flags
            .keys()
            .into_iter()
            .filter_map(|k| flags.flag(k).map(|f| toggle(k, f, flags, &ctx)))
            .filter(|t| all || t.enabled)
            .collect(),
        None => Vec::new(),
    };
    // About 130 bytes a toggle: the body is written without growing its buffer.
    let size_hint = 16 + 160 * toggles.len();
    frontend_json(&headers, &Toggles { toggles }, size_hint)
}

pub(crate) async fn frontend_feature(
    State(Protocols(source)): State<Protocols>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Grant { environment: env, config, .. } =
        match authorise(&*source, &headers, auth::EVALUATE).await {
            Ok(g) => g,
            Err(r) => return r,
        };
    let ctx = match frontend_context(query.as_deref(), None, source.now()) {
        Ok(c) => c,
        Err(m) => return unleash_error(StatusCode::BAD_REQUEST, m),
    };
    let Some(flags) = config.flags(&env) else {
        return unleash_error(StatusCode::NOT_FOUND, format!("feature {name:?} not found"));
    };
    match flags.flag(&name).map(|f| toggle(&name, f, flags, &ctx)) {
        Some(t) if t.enabled => frontend_json(&headers, &t, 256),
        // As Unleash: a feature that is off for this context is not found.
        Some(_) => unleash_error(
            StatusCode::NOT_FOUND,
            format!("feature {name:?} is not enabled for this context"),
        ),
        None => {
            unleash_error(StatusCode::NOT_FOUND, format!("feature {name:?} not found in {env}"))
        }
    }
}

/// Frontend SDKs' registrations and metrics: accepted (checked for JSON), not recorded.
pub(crate) async fn frontend_accept(
    State(Protocols(source)): State<Protocols>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorise(&*source, &headers, auth::EVALUATE).await {
        return r;
    }
    if let Err(r) = parse_body::<Value>(&body) {
        return r;
    }
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wavegate_core::flag::Segments;
    use wavegate_core::{SpecPath, parse_flag_file};

    /// The toggles keep the bytes (field order, escapes, payload forms) they had when they were
    /// built through `json!`, which unleash-proxy-client's ETag comparison and Unleash's
    /// frontend API format rely on.
    #[test]
    fn toggles_serialise_as_unleash_frontend_objects() {
        let file = parse_flag_file(
            r#"flags:
  b-on: { variants: { "on": true, "off": false }, default: "on", environments: { prod: { enabled: true } } }
  b-off: { variants: { "on": true, "off": false }, default: "off", environments: { prod: { enabled: true } } }
  b-disabled: { variants: { "on": true, "off": false }, default: "on", environments: { prod: { enabled: false } } }
  s: { variants: { a: "x\"y<é>", b: "z" }, default: a, environments: { prod: { enabled: true } } }
  s-disabled: { variants: { a: "x", b: "z" }, default: a, environments: { prod: { enabled: false } } }
  n: { variants: { one: 1.5, two: 2 }, default: two, environments: { prod: { enabled: true } } }
  j: { variants: { o: { k: [1, "v"] }, p: { k: 2 } }, default: o, environments: { prod: { enabled: true } } }
"#,
            &["prod".to_owned()],
        )
        .unwrap();
        let segments = Segments::default();
        let flags: HashMap<String, Flag> = file
            .flags
            .iter()
            .map(|(k, spec)| {
                (k.clone(), Flag::compile(k, spec, "prod", &segments, &SpecPath::root(k)).unwrap())
            })
            .collect();
        let off = r#""variant":{"name":"disabled","enabled":false,"feature_enabled":false},"impressionData":false}"#;
        let on_bool = r#""variant":{"name":"disabled","enabled":false,"feature_enabled":true},"impressionData":false}"#;
        let expected = [
            ("b-on", format!(r#"{{"name":"b-on","enabled":true,{on_bool}"#)),
            ("b-off", format!(r#"{{"name":"b-off","enabled":false,{off}"#)),
            ("b-disabled", format!(r#"{{"name":"b-disabled","enabled":true,{on_bool}"#)),
            ("s-disabled", format!(r#"{{"name":"s-disabled","enabled":false,{off}"#)),
            ("s", r#"{"name":"s","enabled":true,"variant":{"name":"a","enabled":true,"feature_enabled":true,"payload":{"type":"string","value":"x\"y<é>"}},"impressionData":false}"#.to_owned()),
            ("n", r#"{"name":"n","enabled":true,"variant":{"name":"two","enabled":true,"feature_enabled":true,"payload":{"type":"number","value":"2"}},"impressionData":false}"#.to_owned()),
            ("j", r#"{"name":"j","enabled":true,"variant":{"name":"o","enabled":true,"feature_enabled":true,"payload":{"type":"json","value":"{\"k\":[1,\"v\"]}"}},"impressionData":false}"#.to_owned()),
        ];
        let ctx = Context::default();
        for (key, want) in &expected {
            let t = toggle(key, &flags[*key], &flags, &ctx);
            assert_eq!(serde_json::to_string(&t).unwrap(), *want, "{key}");
        }
        let toggles = vec![toggle("b-on", &flags["b-on"], &flags, &ctx)];
        assert_eq!(
            serde_json::to_string(&Toggles { toggles }).unwrap(),
            format!(r#"{{"toggles":[{}]}}"#, expected[0].1)
        );
    }
}
