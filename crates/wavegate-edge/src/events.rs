//! OFREP's event stream at the edge (`GET /ofrep/v1/events`): `refetchEvaluation`
//! notifications, no flag data, after each change of an environment's configuration that the
//! edge hears of — as the server's own stream, so providers connected to an edge refetch from
//! it instead of polling.
//!
//! Bulk answers advertise it in `eventStreams` with a **ticket** instead of the token (browser
//! providers open it with `EventSource`, which cannot send `Authorization`):
//! `<token id>~<expiry>~<HMAC>`, keyed by a secret this edge process draws at start, valid for
//! one environment and [`tickets::TICKET_TTL`]. A ticket holds only while the edge knows its token valid
//! (the token cache: revocation ends it within [`crate::TOKEN_TTL`]). Server SDKs may send their
//! token in `Authorization` instead.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wavegate_protocols::auth::secret_from_headers;
use wavegate_protocols::tickets::{self, Ticket, TicketCache};
use wavegate_protocols::{Caller, FlagSource, TokenKind};

use crate::routes::EdgeState;
use crate::source::EdgeSource;

/// How often an idle stream carries a comment, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Most event streams one token may hold open on this edge (as the server's default).
pub(crate) const MAX_STREAMS_PER_TOKEN: usize = 100;

/// The event streams open, by token; a [`Slot`] holds one.
#[derive(Default)]
pub(crate) struct Open(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One open stream of a token; dropping it (the client went away) frees it.
struct Slot {
    source: std::sync::Arc<EdgeSource>,
    token: String,
}

impl Open {
    fn join(source: &std::sync::Arc<EdgeSource>, token: &str) -> Option<Slot> {
        let mut open = source.open.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = open.entry(token.to_owned()).or_default();
        if *n >= MAX_STREAMS_PER_TOKEN {
            return None;
        }
        *n += 1;
        Some(Slot { source: source.clone(), token: token.to_owned() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.source.open.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

/// The secret tickets are signed with: drawn at start, never stored or sent
/// (`wavegate_protocols::tickets`).
pub(crate) struct Tickets {
    key: [u8; 32],
    issued: TicketCache,
}

impl Tickets {
    pub(crate) fn new() -> Tickets {
        Tickets { key: rand::random(), issued: TicketCache::default() }
    }

    /// A ticket for token `id` to hear `env`'s notifications (the one issued before while at
    /// least half its lifetime is left).
    pub(crate) fn issue(&self, id: &str, env: &str) -> String {
        let now = chrono::Utc::now();
        self.issued.get(id, env, now).unwrap_or_else(|| self.issued.issue(&self.key, id, env, now))
    }

    /// The token id a valid, unexpired ticket for `env` names.
    fn check<'a>(&self, ticket: &'a str, env: &str) -> Option<&'a str> {
        let t = Ticket::parse(ticket)?;
        t.valid(&self.key, env, chrono::Utc::now()).then_some(t.id)
    }
}

/// The `eventStreams` entry of a bulk answer for `env` from this edge, or `None` when the
/// caller's token id is unknown (an upstream too old to say it) or the request names no host.
pub(crate) fn advertise(
    source: &EdgeSource,
    headers: &HeaderMap,
    caller: &Caller,
    env: &str,
) -> Option<Value> {
    if caller.token.is_empty() {
        return None;
    }
    let origin = tickets::request_origin(headers)?;
    let ticket = source.tickets.issue(&caller.token, env);
    Some(tickets::advertisement(&origin, env, &ticket))
}

/// `GET /ofrep/v1/events?environment=E[&ticket=T]`.
pub(crate) async fn ofrep_events(
    State(state): State<EdgeState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let source = state.source.clone();
    let (mut env, mut ticket) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match &*k {
            "environment" => env = Some(v.into_owned()),
            "ticket" => ticket = Some(v.into_owned()),
            _ => {
                let body = json!({"code": "bad_request", "message": format!("unknown query parameter {k:?}")});
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            }
        }
    }
    let Some(env) = env else {
        let body = json!({"code": "invalid", "message": "environment is required", "field": "environment"});
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
    };
    let caller: Option<Caller> = match (&ticket, secret_from_headers(&headers)) {
        (Some(t), _) => source.tickets.check(t, &env).and_then(|id| source.tokens.known_id(id)),
        (None, Some(secret)) => match source.caller(secret).await {
            Ok(c) => c,
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        (None, None) => None,
    };
    let Some(caller) = caller else { return StatusCode::UNAUTHORIZED.into_response() };
    let kinds = [TokenKind::ClientSdk, TokenKind::ServerSdk, TokenKind::Admin];
    let Some(feed) = source.feed(&env) else { return StatusCode::FORBIDDEN.into_response() };
    if !kinds.contains(&caller.kind) || !caller.allows_env(&env) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let holder = if caller.token.is_empty() { caller.principal.clone() } else { caller.token };
    let Some(slot) = Open::join(&source, &holder) else {
        let body = json!({"code": "too_many_streams", "message": format!(
            "this token already holds {MAX_STREAMS_PER_TOKEN} open event streams on this edge; \
             close one, or give each client its own token")});
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    };
    let changes = feed.sdk.changes();
    let stream = futures_util::stream::unfold((changes, slot), |(mut rx, slot)| async move {
        let frame = match tokio::time::timeout(HEARTBEAT, rx.changed()).await {
            // The client went away with the edge (its SDK client closed).
            Ok(Err(_)) => return None,
            Ok(Ok(())) => {
                let version = *rx.borrow_and_update();
                let data = json!({
                    "type": "refetchEvaluation",
                    "etag": format!("\"edge-{version}\""),
                    "lastModified": chrono::Utc::now().timestamp(),
                });
                format!("data: {data}\n\n")
            }
            Err(_) => ": heartbeat\n\n".to_owned(),
        };
        Some((Ok::<_, Infallible>(Bytes::from(frame)), (rx, slot)))
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
        Body::from_stream(stream),
    )
        .into_response()
}
