//! Scheduled starts: `POST /api/v1/rollouts` with `start_at` stores a schedule (the versioned
//! setting `schedule.<plan>`), `GET /api/v1/schedules` lists them, `DELETE
//! /api/v1/schedules/{plan}` cancels one. The controller starts due ones with every start check
//! run then; a schedule that cannot start is closed with the reason in the audit log.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wavegate_api::schedules::{Cancelled, Schedule};
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiPath as Path;
use crate::http::openapi::{Forbidden, NotFound, Unauthorized};
use crate::service::{plans, schedules};
use crate::state::AppState;

/// Schedule routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_schedules)).routes(routes!(cancel_schedule))
}

/// Pending scheduled starts of plans in the token's environments, soonest first.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "Governance",
    security(("bearer" = [])),
    responses((status = 200, description = "The schedules", body = Vec<Schedule>),
        Unauthorized, Forbidden))]
async fn list_schedules(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<Schedule>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let mut items = Vec::new();
    for (plan, start_at, requester, reason) in schedules::pending(&state).await? {
        // Only schedules of plans in the token's environments (a deleted plan's: all-env only).
        let env = plans::get(&state, &plan).await.ok().map(|(spec, _)| spec.environment);
        if env.as_deref().map_or(p.0.all_envs(), |e| p.0.allows_env(e)) {
            items.push(Schedule { plan, start_at, requester, reason });
        }
    }
    Ok(Json(items))
}

/// Cancels a plan's scheduled start.
#[utoipa::path(delete, path = "/api/v1/schedules/{plan}", tag = "Governance",
    params(("plan" = String, Path, description = "The plan's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "Cancelled", body = Cancelled),
        Unauthorized, Forbidden, NotFound))]
async fn cancel_schedule(
    State(state): State<AppState>,
    p: Principal,
    Path(plan): Path<String>,
) -> ApiResult<Json<Cancelled>> {
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
    Ok(Json(Cancelled { plan, cancelled: true }))
}
