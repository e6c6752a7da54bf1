//! OFREP (OpenFeature Remote Evaluation Protocol): single and bulk evaluation.
//!
//! Real providers are stricter than the spec (research/clients.md), so every success carries
//! `key`, `value`, `variant` and a standard `reason`, and every error body carries `key` (when
//! there is one), `errorCode` and `errorDetails`. 401/403 carry no OFREP body.
// Early-return helpers hand back a finished `Response` as their error: it is the natural shape
// for OFREP's per-error bodies, and these are cold paths.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use wavegate_core::context::{AttrValue, CURRENT_TIME};
use wavegate_core::{Context, EvalError, Flag, FlagLookup, evaluate_in};
use wavegate_store::TokenKind;

use crate::auth::{Principal, secret_from_headers};
use crate::error::ApiError;
use crate::state::AppState;

/// Request header that picks the environment when a token spans several.
pub const ENV_HEADER: &str = "x-wavegate-environment";

/// OFREP routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_one))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_bulk))
}

/// An OFREP error response: `{key?, errorCode, errorDetails}` (also used by `wavegate edge`).
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
    (status, axum::Json(body)).into_response()
}

/// Authenticates an OFREP caller; 401/403 without an OFREP body, as providers expect.
async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let Some(secret) = secret_from_headers(headers) else {
        return Err(StatusCode::UNAUTHORIZED.into_response());
    };
    match state.tokens.lookup(state, secret).await {
        Ok(Some(t)) => Ok(Principal(t)),
        Ok(None) => Err(StatusCode::UNAUTHORIZED.into_response()),
        Err(e) => Err(ofrep_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "GENERAL",
            ApiError::internal(e).message,
        )),
    }
}

/// Picks the environment: the header if given, else the token's single environment.
fn environment(
    p: &Principal,
    headers: &HeaderMap,
    envs: &[String],
    key: Option<&str>,
) -> Result<String, Response> {
    let named = headers.get(ENV_HEADER).map(|v| v.to_str().unwrap_or("").trim().to_owned());
    let env = match named {
        Some(e) if !e.is_empty() => e,
        _ => match p.0.environments.as_slice() {
            [one] if one != "*" => one.clone(),
            _ => {
                return Err(ofrep_error(
                    StatusCode::BAD_REQUEST,
                    key,
                    "GENERAL",
                    "this token spans several environments; name one in the X-Wavegate-Environment header",
                ));
            }
        },
    };
    if !envs.contains(&env) {
        return Err(ofrep_error(
            StatusCode::BAD_REQUEST,
            key,
            "GENERAL",
            format!("unknown environment {env:?}"),
        ));
    }
    if !p.0.allows_env(&env) {
        return Err(StatusCode::FORBIDDEN.into_response());
    }
    Ok(env)
}

/// Parses `{"context": {...}}` (an empty body is an empty context) into the context and its
/// raw JSON, with OFREP error responses for bad input. Shared with `wavegate edge`.
pub fn request_context(body: &[u8], key: Option<&str>) -> Result<(Context, Value), Response> {
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
    let ctx = Context::from_json(&raw)
        .map_err(|e| ofrep_error(StatusCode::BAD_REQUEST, key, "INVALID_CONTEXT", e.to_string()))?;
    Ok((ctx, raw))
}

/// [`request_context`], with the server's clock as `currentTime` when the context has none
/// and fresh entropy for `random` stickiness.
fn parse_context(
    state: &AppState,
    body: &[u8],
    key: Option<&str>,
) -> Result<(Context, Value), Response> {
    let (mut ctx, raw) = request_context(body, key)?;
    if !ctx.has_current_time() {
        let now = state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        ctx.set(CURRENT_TIME, AttrValue::String(now));
    }
    let ctx = ctx.with_entropy(rand::random());
    Ok((ctx, raw))
}

/// The OFREP body for an evaluation result, and its HTTP status (shared with `wavegate edge`).
pub fn resolution_json(
    key: &str,
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

/// One evaluation as an OFREP success or error object, plus its HTTP status.
fn resolve(
    state: &AppState,
    flags: &dyn FlagLookup,
    flag: &Flag,
    ctx: &Context,
) -> (StatusCode, Value) {
    let r = evaluate_in(flag, ctx, flags);
    state.metrics.evaluation(flag.key(), r.reason.as_str());
    resolution_json(flag.key(), r.value, r.variant, r.reason, r.rule, r.error)
}

async fn evaluate_one(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.require(&[TokenKind::ClientSdk, TokenKind::ServerSdk, TokenKind::Admin]).is_err() {
        return StatusCode::FORBIDDEN.into_response();
    }
    let snap = state.snapshot.load();
    let env = match environment(&p, &headers, &snap.environments, Some(&key)) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let (ctx, _) = match parse_context(&state, &body, Some(&key)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(flags) = snap.flags.get(&env) else {
        return ofrep_error(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            format!("flag {key:?} not found in {env}"),
        );
    };
    let Some(flag) = flags.get(&key) else {
        return ofrep_error(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            format!("flag {key:?} not found in {env}"),
        );
    };
    let (status, body) = resolve(&state, flags, flag, &ctx);
    (status, axum::Json(body)).into_response()
}

async fn evaluate_bulk(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.require(&[TokenKind::ClientSdk, TokenKind::ServerSdk, TokenKind::Admin]).is_err() {
        return StatusCode::FORBIDDEN.into_response();
    }
    let snap = state.snapshot.load();
    let env = match environment(&p, &headers, &snap.environments, None) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let (ctx, raw) = match parse_context(&state, &body, None) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // The ETag covers the configuration revision, the environment and the canonical context,
    // so a new context never gets a stale 304. Where a date rule reads the server's clock, the
    // time the server filled in is part of it too (the answer may change with time alone).
    let clock = match ctx.attribute(CURRENT_TIME) {
        Some(wavegate_core::context::AttrRef::Str(t))
            if raw.get(CURRENT_TIME).is_none() && snap.time_dependent.contains(&env) =>
        {
            t.to_owned()
        }
        _ => String::new(),
    };
    let etag = format!(
        "\"{}\"",
        &wavegate_core::audit::sha256_hex(&format!(
            "{}\n{env}\n{}\n{clock}",
            snap.revision,
            wavegate_core::canonical::canonical_json(&raw)
        ))[..32]
    );
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_value =
        HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    let empty = crate::snapshot::FlagMap::default();
    let env_flags = snap.flags.get(&env).unwrap_or(&empty);
    let mut keys: Vec<&String> = env_flags.keys().collect();
    keys.sort();
    let flags: Vec<Value> = keys
        .into_iter()
        .filter_map(|k| env_flags.get(k))
        .map(|f| resolve(&state, env_flags, f, &ctx).1)
        .collect();
    let mut body = json!({"flags": flags, "metadata": {}});
    if let Some(stream) = crate::ofrep_events::advertise(&state, &headers, &p.0, &env) {
        body["eventStreams"] = json!([stream]);
    }
    (StatusCode::OK, [(header::ETAG, etag_value)], axum::Json(body)).into_response()
}
