//! The global freeze ("stop the line"): `GET|PUT|DELETE /api/v1/freeze`. While it is on, every
//! running rollout holds as in a blackout window (stop conditions, pause and rollback still
//! act; nothing is promoted) and new rollouts are refused. Stored as the versioned `freeze`
//! setting, so every change is a version with an audit entry.

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::freeze::{Freeze, FreezeOn};
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::JsonBody;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, ReasonHeader, TooLarge, Unauthorized};
use crate::service::freeze;
use crate::state::AppState;

/// Freeze routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(show_freeze, start_freeze, lift_freeze))
}

/// The freeze as stored (`{active: false}` when there has never been one).
#[utoipa::path(get, path = "/api/v1/freeze", tag = "Governance",
    security(("bearer" = [])),
    responses((status = 200, description = "The freeze", body = Freeze), Unauthorized, Forbidden))]
async fn show_freeze(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Freeze>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    Ok(Json(freeze::show(&state).await?))
}

/// Turns the freeze on: every running rollout holds, new ones are refused.
#[utoipa::path(put, path = "/api/v1/freeze", tag = "Governance",
    request_body = FreezeOn,
    security(("bearer" = [])),
    responses((status = 200, description = "The freeze, on", body = Freeze),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid))]
async fn start_freeze(
    State(state): State<AppState>,
    p: Principal,
    JsonBody(body): JsonBody<FreezeOn>,
) -> ApiResult<Json<Freeze>> {
    let p = p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden("a freeze needs an admin token for all environments"));
    }
    let reason = body.reason.trim().to_owned();
    if reason.is_empty() || reason.len() > 500 {
        return Err(ApiError::invalid("reason", "a freeze needs a reason of 1 to 500 characters"));
    }
    Ok(Json(freeze::set(&state, Some(&reason), &p.who(), format!("freeze: {reason}")).await?))
}

/// Lifts the freeze (the reason, if any, from `X-Wavegate-Reason`).
#[utoipa::path(delete, path = "/api/v1/freeze", tag = "Governance",
    params(ReasonHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "The freeze, lifted", body = Freeze),
        Unauthorized, Forbidden))]
async fn lift_freeze(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
) -> ApiResult<Json<Freeze>> {
    let p = p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden(
            "lifting a freeze needs an admin token for all environments",
        ));
    }
    let why = headers
        .get("x-wavegate-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("freeze lifted")
        .to_owned();
    Ok(Json(freeze::set(&state, None, &p.who(), why).await?))
}
