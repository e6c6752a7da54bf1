//! The global freeze ("stop the line"): `GET|PUT|DELETE /api/v1/freeze`. While it is on, every
//! running rollout holds as in a blackout window (stop conditions, pause and rollback still
//! act; nothing is promoted) and new rollouts are refused. Stored as the versioned `freeze`
//! setting, so every change is a version with an audit entry.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::JsonBody;
use crate::service::freeze;
use crate::state::AppState;

/// Freeze routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/freeze", get(show).put(on).delete(off))
}

async fn show(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    Ok(Json(freeze::show(&state).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBody {
    reason: String,
}

async fn on(
    State(state): State<AppState>,
    p: Principal,
    JsonBody(body): JsonBody<OnBody>,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden("a freeze needs an admin token for all environments"));
    }
    let reason = body.reason.trim().to_owned();
    if reason.is_empty() || reason.len() > 500 {
        return Err(ApiError::invalid("reason", "a freeze needs a reason of 1 to 500 characters"));
    }
    Ok(Json(freeze::set(&state, Some(&reason), p.name(), format!("freeze: {reason}")).await?))
}

async fn off(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
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
    Ok(Json(freeze::set(&state, None, p.name(), why).await?))
}
