//! OFREP's event stream: bulk evaluation responses advertise it in `eventStreams`, and it
//! sends only `refetchEvaluation` notifications (no flag data), as OFREP's ADR-0008 describes.
//!
//! `GET /ofrep/v1/events?environment=E&ticket=T` is server-sent events. Browser providers
//! open it with `EventSource`, which cannot send an `Authorization` header, so the advertised
//! URL carries a **ticket** instead of the token: `<token id>~<expiry>~<HMAC>` keyed by the
//! token's stored hash, valid for one environment and [`tickets::TICKET_TTL`], and good for nothing but
//! this notification stream. Server SDKs may send their token in `Authorization` instead.
//! Revoking the token ends its tickets at their next use and its open streams at once; its
//! streams count towards the token's cap (`http::sse`).

use crate::http::openapi::api_routes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_protocols::Caller;
use wavegate_protocols::tickets::{self, Ticket};
use wavegate_store::{TokenKind, TokenRecord};

use crate::http::auth::{Principal, secret_from_headers};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Invalid, TooManyStreams};
use crate::http::sse::{self, Ended, Sender};
use crate::state::AppState;

/// The route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(ofrep_events))
}

/// The `eventStreams` entry of a bulk response for `env`, or `None` when the server cannot
/// say where it is reachable (no `--public-url` and no `Host` header). The ticket is signed
/// with the token's stored hash (`wavegate_protocols::tickets`).
pub async fn advertise(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    env: &str,
) -> Option<serde_json::Value> {
    let origin = match &state.outbound.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => tickets::request_origin(headers)?,
    };
    let now = state.clock.now();
    let cache = &state.streams.tickets;
    let t = match cache.get(&caller.token, env, now) {
        Some(t) => t,
        None => {
            // The ticket is keyed by the stored token; the lookup is the cached one just made.
            let token = state.tokens.lookup(state, secret_from_headers(headers)?).await.ok()??;
            cache.issue(token.hash.as_bytes(), &token.id, env, now)
        }
    };
    Some(tickets::advertisement(&origin, env, &t))
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
    let ticket = Ticket::parse(ticket).ok_or_else(denied)?;
    let tokens = state.store.tokens().await.map_err(|e| {
        tracing::warn!(error = %e, "could not read tokens");
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    })?;
    let now = state.clock.now();
    let token = tokens
        .into_iter()
        .find(|t| t.id == ticket.id && t.revoked_at.is_none() && !t.expired(now))
        .ok_or_else(denied)?;
    if ticket.valid(token.hash.as_bytes(), env, now) { Ok(token) } else { Err(denied()) }
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
