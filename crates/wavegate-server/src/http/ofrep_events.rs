//! OFREP's event stream: bulk evaluation responses advertise it in `eventStreams`, and it
//! sends only `refetchEvaluation` notifications (no flag data), as OFREP's ADR-0008 describes.
//!
//! `GET /ofrep/v1/events?environment=E&ticket=T` is server-sent events. Browser providers
//! open it with `EventSource`, which cannot send an `Authorization` header, so the advertised
//! URL carries a **ticket** instead of the token: `<token id>~<expiry>~<HMAC>` keyed by the
//! token's stored hash, valid for one environment and [`TICKET_TTL`], and good for nothing but
//! this notification stream. Server SDKs may send their token in `Authorization` instead.
//! Revoking the token ends its tickets at their next use and its open streams at once; its
//! streams count towards the token's cap (`http::sse`).

use crate::http::openapi::api_routes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_core::text::percent_encode as enc;
use wavegate_store::{TokenKind, TokenRecord};

use crate::http::auth::{Principal, secret_from_headers};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Invalid, TooManyStreams};
use crate::http::sse::{self, Ended, Sender};
use crate::state::AppState;

/// How long a ticket stays valid (a provider reconnecting later refetches the bulk response
/// and gets a fresh one).
pub const TICKET_TTL: chrono::Duration = chrono::Duration::hours(24);

/// Seconds of inactivity after which a client may close the stream (advertised).
pub const INACTIVITY_DELAY_SEC: u64 = 120;

/// The route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(ofrep_events))
}

fn signature(token: &TokenRecord, env: &str, expiry: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.hash.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(format!("ofrep-events\n{}\n{env}\n{expiry}", token.id).as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// A ticket for `token` to hear `env`'s refetch notifications until `now + TICKET_TTL`.
pub fn ticket(token: &TokenRecord, env: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let expiry = (now + TICKET_TTL).timestamp();
    format!("{}~{expiry}~{}", token.id, signature(token, env, expiry))
}

/// The `eventStreams` entry of a bulk response for `env`, or `None` when the server cannot
/// say where it is reachable (no `--public-url` and no `Host` header).
pub fn advertise(
    state: &AppState,
    headers: &HeaderMap,
    token: &TokenRecord,
    env: &str,
) -> Option<serde_json::Value> {
    let origin = match &state.outbound.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let proto = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .filter(|p| *p == "https" || *p == "http")
                .unwrap_or("http");
            format!("{proto}://{host}")
        }
    };
    let t = ticket(token, env, state.clock.now());
    Some(json!({
        "type": "sse",
        "url": format!("{origin}/ofrep/v1/events?environment={}&ticket={}", enc(env), enc(&t)),
        "inactivityDelaySec": INACTIVITY_DELAY_SEC,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// The environment whose changes to hear of.
    environment: String,
    /// The ticket a bulk evaluation advertised (instead of a token in `Authorization`).
    #[serde(default)]
    ticket: Option<String>,
}

/// Checks a ticket against the stored token it names.
async fn check_ticket(state: &AppState, ticket: &str, env: &str) -> Result<TokenRecord, Response> {
    let denied = || StatusCode::UNAUTHORIZED.into_response();
    let mut parts = ticket.split('~');
    let (Some(id), Some(expiry), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(denied());
    };
    let expiry: i64 = expiry.parse().map_err(|_| denied())?;
    if expiry < state.clock.now().timestamp() {
        return Err(denied());
    }
    let tokens = state.store.tokens().await.map_err(|e| {
        tracing::warn!(error = %e, "could not read tokens");
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    })?;
    let token =
        tokens.into_iter().find(|t| t.id == id && t.revoked_at.is_none()).ok_or_else(denied)?;
    let expected = signature(&token, env, expiry);
    // Constant-time comparison through the MAC's own verifier is overkill for a hex string of
    // a keyed hash; compare without early exit anyway.
    let same = expected.len() == sig.len()
        && expected.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same { Ok(token) } else { Err(denied()) }
}

/// OFREP's event stream: `refetchEvaluation` notifications (server-sent events) after each
/// configuration change; no flag data.
#[utoipa::path(get, path = "/ofrep/v1/events", tag = "OFREP",
    params(EventsQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream",
            body = String),
        BadRequest,
        (status = 401, description = "No valid ticket or token (no body)"),
        (status = 403, description = "The token may not read this environment (no body)"),
        Invalid,
        TooManyStreams,
        (status = 503, description = "The tokens could not be read (no body)"),
    ))]
async fn ofrep_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    if !state.snapshot.load().environments.contains(&q.environment) {
        return crate::http::error::ApiError::invalid(
            "environment",
            format!("unknown environment {:?}", q.environment),
        )
        .into_response();
    }
    let token = match (&q.ticket, secret_from_headers(&headers)) {
        (Some(t), _) => match check_ticket(&state, t, &q.environment).await {
            Ok(t) => t,
            Err(r) => return r,
        },
        (None, Some(secret)) => match state.tokens.lookup(&state, secret).await {
            Ok(Some(t)) => t,
            _ => return StatusCode::UNAUTHORIZED.into_response(),
        },
        (None, None) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    let p = Principal(token);
    if p.require(&[TokenKind::ClientSdk, TokenKind::ServerSdk, TokenKind::Admin]).is_err()
        || p.require_env(&q.environment).is_err()
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    let slot = match state.streams.live.join(&p.0, state.streams.limits.per_token) {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    let (tx, response) = sse::channel(&state.streams.limits, state.streams.heartbeat);
    tokio::spawn(async move {
        sse::run(&state, slot, &tx, "/ofrep/v1/events", notify_refetch(&state, &tx)).await;
    });
    response
}

/// Sends one `refetchEvaluation` per new snapshot revision (bursts coalesce) until the
/// client goes away.
async fn notify_refetch(state: &AppState, tx: &Sender) -> Result<(), Ended> {
    let mut rx = state.streams.config_rev.subscribe();
    rx.borrow_and_update();
    while rx.changed().await.is_ok() {
        let revision = *rx.borrow_and_update();
        let data = json!({
            "type": "refetchEvaluation",
            "etag": format!("\"rev-{revision}\""),
            "lastModified": state.clock.now().timestamp(),
        });
        tx.send(sse::frame(None, None, &data.to_string())).await?;
    }
    Ok(())
}
