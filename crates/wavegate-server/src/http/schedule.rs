//! Scheduled starts: `POST /api/v1/rollouts` with `start_at` stores a schedule (the versioned
//! setting `schedule.<plan>`), `GET /api/v1/schedules` lists them, `DELETE
//! /api/v1/schedules/{plan}` cancels one. The controller starts due ones with every start check
//! run then; a schedule that cannot start is closed with the reason in the audit log.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get};
use serde_json::{Value, json};
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiPath as Path;
use crate::service::{plans, schedules};
use crate::state::AppState;

/// Schedule routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedules", get(list))
        .route("/api/v1/schedules/{plan}", delete(cancel))
}

async fn list(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let mut items: Vec<Value> = Vec::new();
    for (plan, at, by, reason) in schedules::pending(&state).await? {
        // Only schedules of plans in the token's environments (a deleted plan's: all-env only).
        let env = plans::get(&state, &plan).await.ok().map(|(spec, _)| spec.environment);
        if env.as_deref().map_or(p.0.all_envs(), |e| p.0.allows_env(e)) {
            items.push(json!({"plan": plan, "start_at": at, "requester": by, "reason": reason}));
        }
    }
    Ok(Json(json!(items)))
}

async fn cancel(
    State(state): State<AppState>,
    p: Principal,
    Path(plan): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    // The plan's environment decides who may cancel (an unknown plan: all-environment tokens).
    match plans::get(&state, &plan).await {
        Ok((spec, _)) => p.require_env(&spec.environment)?,
        Err(_) if !p.0.all_envs() => {
            return Err(ApiError::forbidden(
                "cancelling this schedule needs an admin token for all environments",
            ));
        }
        Err(_) => {}
    }
    schedules::cancel(&state, &plan, p.name()).await?;
    Ok(Json(json!({"plan": plan, "cancelled": true})))
}
