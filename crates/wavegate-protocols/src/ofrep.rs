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
use serde::Serialize;
use serde_json::{Value, json};
use wavegate_core::context::{AttrRef, AttrValue, CURRENT_TIME};
use wavegate_core::{Context, EvalError, Flag, evaluate_in};

use crate::auth::{self, Denied, Shapes};
use crate::{Caller, Config, FlagSet, FlagSource, Protocols, etag};

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

/// One evaluation as OFREP writes it: a success, or the error of a flag that could not be
/// evaluated for this context. Serialized straight from the compiled flag's values, without an
/// intermediate JSON tree (bulk answers write one per flag).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Resolution<'a> {
    /// `{key, value, variant, reason, metadata}`.
    Success {
        key: &'a str,
        value: &'a Value,
        variant: &'a str,
        reason: &'static str,
        metadata: ResolutionMetadata<'a>,
    },
    /// `{key, errorCode, errorDetails}`.
    Error {
        key: &'a str,
        #[serde(rename = "errorCode")]
        error_code: &'static str,
        #[serde(rename = "errorDetails")]
        error_details: String,
    },
}

/// A success's `metadata`.
#[derive(Debug, Serialize)]
struct ResolutionMetadata<'a> {
    /// The rule that decided, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    /// The configuration the answer came from (OpenFeature's `feature_flag.version`): events
    /// that carry it are counted in the wave that produced them.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
}

impl Resolution<'_> {
    /// The HTTP status of a single evaluation answering this.
    fn status(&self) -> StatusCode {
        match self {
            Resolution::Success { .. } => StatusCode::OK,
            Resolution::Error { .. } => StatusCode::BAD_REQUEST,
        }
    }
}

/// One evaluation as an OFREP success or error object; counted.
fn resolve<'a>(
    source: &dyn FlagSource,
    flags: &'a dyn FlagSet,
    flag: &'a Flag,
    ctx: &'a Context,
) -> Resolution<'a> {
    let r = evaluate_in(flag, ctx, flags);
    source.evaluated(flag.key(), r.reason);
    match r.error {
        Some(EvalError::TargetingKeyMissing) => Resolution::Error {
            key: flag.key(),
            error_code: "TARGETING_KEY_MISSING",
            error_details: format!(
                "rule {:?} splits on targetingKey, and the context has none",
                r.rule.unwrap_or("")
            ),
        },
        None => Resolution::Success {
            key: flag.key(),
            value: r.value,
            variant: r.variant,
            reason: r.reason.as_str(),
            metadata: ResolutionMetadata { rule: r.rule, version: flag.version() },
        },
    }
}

/// A bulk answer: `{flags, metadata, eventStreams?}`.
#[derive(Debug, Serialize)]
struct BulkAnswer<'a> {
    flags: Vec<Resolution<'a>>,
    metadata: Empty,
    #[serde(rename = "eventStreams", skip_serializing_if = "Option::is_none")]
    event_streams: Option<[Value; 1]>,
}

/// `{}`.
#[derive(Debug, Serialize)]
struct Empty {}

/// What both evaluations start from: the caller, the environment, its configuration, and the
/// request's context (parsed, with the source's time and fresh entropy) and raw JSON.
type Started = (Caller, String, Arc<dyn Config>, Context, Value);

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
    Ok((g.caller, g.environment, g.config, ctx, raw))
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub(crate) async fn evaluate_one(
    State(Protocols(source)): State<Protocols>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, env, config, ctx, _) = match begin(&*source, &headers, &body, Some(&key)).await {
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
    let answer = resolve(&*source, flags, flag, &ctx);
    (answer.status(), Json(answer)).into_response()
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the environment, with an ETag.
pub(crate) async fn evaluate_bulk(
    State(Protocols(source)): State<Protocols>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, env, config, ctx, raw) = match begin(&*source, &headers, &body, None).await {
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
    let event_streams = source.ofrep_event_stream(&headers, &caller, &env).await.map(|s| [s]);
    let flags = match config.flags(&env) {
        Some(set) => set
            .keys()
            .into_iter()
            .filter_map(|k| set.flag(k))
            .map(|f| resolve(&*source, set, f, &ctx))
            .collect(),
        None => Vec::new(),
    };
    let body = BulkAnswer { flags, metadata: Empty {}, event_streams };
    (StatusCode::OK, [(header::ETAG, etag::header_value(&etag))], Json(body)).into_response()
}
