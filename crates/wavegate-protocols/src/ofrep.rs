//! OFREP (OpenFeature Remote Evaluation Protocol): single and bulk evaluation.
//!
//! Real providers are stricter than the spec (research/clients.md), so every success carries
//! `key`, `value`, `variant` and a standard `reason`, and every error body carries `key` (when
//! there is one), `errorCode` and `errorDetails`. 401/403 carry no OFREP body. Errors are
//! FLAG_NOT_FOUND (404), PARSE_ERROR, TARGETING_KEY_MISSING, INVALID_CONTEXT and GENERAL (400);
//! a source that cannot check a token answers GENERAL (500).
//!
//! Bulk answers carry an ETag ([`crate::etag::bulk`]) and answer a matching `If-None-Match`
//! with 304.
// Early-return helpers hand back a finished `Response` as their error: it is the natural shape
// for OFREP's per-error bodies, and these are cold paths.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wavegate_core::context::{AttrRef, AttrValue, CURRENT_TIME};
use wavegate_core::{Context, EvalError, Flag, evaluate_in};

use crate::auth::{self, Denied, Shapes};
use crate::{Config, FlagSet, FlagSource, Protocols, etag};

/// An OFREP error response: `{key?, errorCode, errorDetails}`.
pub fn ofrep_error(
    status: StatusCode,
    key: Option<&str>,
    code: &str,
    details: impl Into<String>,
) -> Response {
    let mut body = json!({"errorCode": code, "errorDetails": details.into()});
    if let Some(k) = key {
        body["key"] = json!(k);
    }
    (status, Json(body)).into_response()
}

/// A refusal as OFREP providers expect it: 401/403 bare, the rest as OFREP errors.
fn denied(d: Denied, key: Option<&str>) -> Response {
    let general = |details: String| ofrep_error(StatusCode::BAD_REQUEST, key, "GENERAL", details);
    match d {
        Denied::Lookup(e) => {
            tracing::error!(error = %e, "internal error");
            ofrep_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "GENERAL",
                "internal error; see the server log",
            )
        }
        Denied::SpansSeveral => general(
            "this token spans several environments; name one in the X-Wavegate-Environment header"
                .into(),
        ),
        Denied::UnknownEnvironment(env) => general(format!("unknown environment {env:?}")),
        other => other.status().into_response(),
    }
}

/// Parses `{"context": {...}}` (an empty body is an empty context) into the context and its
/// raw JSON, with OFREP error responses for bad input; gives the context the source's time as
/// `currentTime` when it has none, and fresh entropy for `random` stickiness.
fn parse_context(
    source: &dyn FlagSource,
    body: &[u8],
    key: Option<&str>,
) -> Result<(Context, Value), Response> {
    let parse_err = |d: String| ofrep_error(StatusCode::BAD_REQUEST, key, "PARSE_ERROR", d);
    let raw = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        let text = std::str::from_utf8(body)
            .map_err(|_| parse_err("request body is not valid UTF-8".into()))?;
        let v: Value =
            serde_json::from_str(text).map_err(|e| parse_err(format!("malformed JSON: {e}")))?;
        match v {
            Value::Object(mut m) => m.remove("context").unwrap_or_else(|| json!({})),
            _ => {
                return Err(parse_err(
                    "request body must be a JSON object like {\"context\": {…}}".into(),
                ));
            }
        }
    };
    let mut ctx = Context::from_json(&raw)
        .map_err(|e| ofrep_error(StatusCode::BAD_REQUEST, key, "INVALID_CONTEXT", e.to_string()))?;
    if !ctx.has_current_time() {
        let now = source.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        ctx.set(CURRENT_TIME, AttrValue::String(now));
    }
    Ok((ctx.with_entropy(rand::random()), raw))
}

/// The OFREP body for an evaluation result, and its HTTP status.
pub fn resolution_json(
    key: &str,
    version: Option<i64>,
    value: &Value,
    variant: &str,
    reason: wavegate_core::Reason,
    rule: Option<&str>,
    error: Option<EvalError>,
) -> (StatusCode, Value) {
    match error {
        Some(EvalError::TargetingKeyMissing) => (
            StatusCode::BAD_REQUEST,
            json!({
                "key": key,
                "errorCode": "TARGETING_KEY_MISSING",
                "errorDetails": format!("rule {:?} splits on targetingKey, and the context has none", rule.unwrap_or("")),
            }),
        ),
        None => {
            let mut metadata = serde_json::Map::new();
            if let Some(rule) = rule {
                metadata.insert("rule".into(), json!(rule));
            }
            // The configuration the answer came from (OpenFeature's `feature_flag.version`):
            // events that carry it are counted in the wave that produced them.
            if let Some(v) = version {
                metadata.insert("version".into(), json!(v));
            }
            (
                StatusCode::OK,
                json!({
                    "key": key,
                    "value": value,
                    "variant": variant,
                    "reason": reason.as_str(),
                    "metadata": metadata,
                }),
            )
        }
    }
}

/// One evaluation as an OFREP success or error object, plus its HTTP status; counted.
fn resolve(
    source: &dyn FlagSource,
    flags: &dyn FlagSet,
    flag: &Flag,
    ctx: &Context,
) -> (StatusCode, Value) {
    let r = evaluate_in(flag, ctx, flags);
    source.evaluated(flag.key(), r.reason);
    resolution_json(flag.key(), flag.version(), r.value, r.variant, r.reason, r.rule, r.error)
}

/// What both evaluations start from: the environment, its configuration, and the request's
/// context (parsed, with the source's time and fresh entropy) and raw JSON.
type Started = (String, Arc<dyn Config>, Context, Value);

/// Authorises an evaluation and parses its context; the refusal is a ready OFREP response.
async fn begin(
    source: &dyn FlagSource,
    headers: &HeaderMap,
    body: &[u8],
    key: Option<&str>,
) -> Result<Started, Response> {
    let g = auth::authorise(source, headers, auth::EVALUATE, Shapes::Bare)
        .await
        .map_err(|d| denied(d, key))?;
    let (ctx, raw) = parse_context(source, body, key)?;
    Ok((g.environment, g.config, ctx, raw))
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub(crate) async fn evaluate_one(
    State(Protocols(source)): State<Protocols>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (env, config, ctx, _) = match begin(&*source, &headers, &body, Some(&key)).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let found = config.flags(&env).and_then(|flags| flags.flag(&key).map(|f| (flags, f)));
    let Some((flags, flag)) = found else {
        return ofrep_error(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            format!("flag {key:?} not found in {env}"),
        );
    };
    let (status, body) = resolve(&*source, flags, flag, &ctx);
    (status, Json(body)).into_response()
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the environment, with an ETag.
pub(crate) async fn evaluate_bulk(
    State(Protocols(source)): State<Protocols>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (env, config, ctx, raw) = match begin(&*source, &headers, &body, None).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    // Without a `currentTime` of the client's, the answers used the time the source filled in:
    // the ETag covers which of the moments the answers change at it has passed (not the time
    // itself, so 304s continue between those moments).
    let timing = config.time_dependence(&env);
    let filled_in = match ctx.attribute(CURRENT_TIME) {
        Some(AttrRef::Str(t)) if timing.reads_clock() && raw.get(CURRENT_TIME).is_none() => {
            chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.to_utc())
        }
        _ => None,
    };
    let epoch = filled_in.and_then(|now| timing.epoch(now));
    let etag = etag::bulk(config.revision(), &env, &raw, epoch.as_deref().unwrap_or(""));
    if etag::if_none_match(&headers, &etag) {
        return etag::not_modified(&etag);
    }
    let flags: Vec<Value> = match config.flags(&env) {
        Some(set) => set
            .keys()
            .into_iter()
            .filter_map(|k| set.flag(k))
            .map(|f| resolve(&*source, set, f, &ctx).1)
            .collect(),
        None => Vec::new(),
    };
    let mut body = json!({"flags": flags, "metadata": {}});
    if let Some(stream) = source.ofrep_event_stream(&headers, &env).await {
        body["eventStreams"] = json!([stream]);
    }
    (StatusCode::OK, [(header::ETAG, etag::header_value(&etag))], Json(body)).into_response()
}
