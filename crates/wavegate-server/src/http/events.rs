//! `POST /api/v1/events`: batches of exposures and outcomes from SDKs. The handler parses
//! the body and resolves the environment; `service::events` validates, attributes and commits
//! (see its invariants).

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use wavegate_core::wire::EventBatch;
use wavegate_store::{Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::JsonBody;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, RateLimited, TooLarge, Unauthorized};
use crate::service::events::Ingested;
use crate::state::AppState;

pub use crate::service::events::{MAX_EVENTS, MAX_VALUE};

/// The header that carries a batch's idempotency key: a retry with the same key counts once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Events routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(post_events))
}

/// A `POST /api/v1/events` body as it arrives on the wire, before any validation.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct Batch(EventBatch);

impl Batch {
    /// Parses a request body with the handler's own code (the same extractor function and
    /// serde types), so the ingest benchmark's parse-only baseline times exactly this step.
    pub fn parse(body: &[u8]) -> ApiResult<Batch> {
        crate::http::json::parse_json(body)
    }

    /// How many events the batch holds.
    pub fn event_count(&self) -> usize {
        self.0.events.len()
    }
}

/// A batch of exposures and outcomes, validated whole; answered once its effect on the
/// rollouts' aggregates is committed.
#[utoipa::path(post, path = "/api/v1/events", tag = "Events",
    params(("X-Wavegate-Environment" = Option<String>, Header,
        description = "The environment (needed when the token spans several)"),
        ("Idempotency-Key" = Option<String>, Header,
        description = "1 to 128 visible ASCII characters: a batch sent again with the same key \
            (its answer lost) counts once and is answered `duplicate: true`")),
    request_body(content = Object, description = "`{events: [{type: exposure|outcome, flag, \
        variant, context, error?, latency_ms?, metrics?}]}`, at most 10000 events"),
    security(("bearer" = [])),
    responses((status = 202, description = "Committed", body = Ingested),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid, RateLimited))]
async fn post_events(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(batch): JsonBody<Batch>,
) -> ApiResult<(StatusCode, Json<Ingested>)> {
    let env = reporter_scope(&state, &p, &headers, batch.0.events.len() as u64)?;
    let key = match headers.get(IDEMPOTENCY_KEY) {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::invalid("Idempotency-Key", "an idempotency key is visible ASCII")
        })?),
        None => None,
    };
    let out = crate::service::events::ingest(&state, &env, &p.0.id, batch.0.events, key).await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// Who may report events (exposures, outcomes, spans) and for which environment: a server-sdk
/// or admin token not minted evaluate-only, for the environment its `X-Wavegate-Environment`
/// header names (or its only one), within its events-per-second budget for `n` more.
pub(crate) fn reporter_scope(
    state: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    n: u64,
) -> ApiResult<String> {
    p.require(&[TokenKind::ServerSdk, TokenKind::Admin])?;
    if p.0.evaluate_only {
        return Err(ApiError::forbidden(
            "this token evaluates only and may not post events; use a server-sdk token minted \
             without --evaluate-only",
        ));
    }
    let env = match headers
        .get(wavegate_protocols::ENV_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        Some(e) => e.to_owned(),
        None => match p.0.environments.as_slice() {
            [one] if one != "*" => one.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "this token spans several environments; name one in the X-Wavegate-Environment header",
                ));
            }
        },
    };
    p.require_env(&env)?;
    if p.0.kind == TokenKind::Admin && !p.0.holds(Role::Admin, &env) {
        return Err(ApiError::forbidden(format!(
            "a person's token posts events only with the admin role in {env:?}; send them with a \
             server-sdk token"
        )));
    }
    spend_budget(state, p, n)?;
    Ok(env)
}

/// Takes `n` events from the token's events-per-second budget (`serve --events-per-token`),
/// or answers 429 with when to send them again.
pub(crate) fn spend_budget(state: &AppState, p: &Principal, n: u64) -> ApiResult<()> {
    state.routing.event_budget.take(&p.0.id, n, state.clock.now()).map_err(|wait| {
        ApiError::rate_limited(
            format!(
                "this token may post {} events a second (serve --events-per-token); send these \
                 {n} again in {wait} s",
                state.routing.event_budget.per_second()
            ),
            wait,
        )
    })
}
