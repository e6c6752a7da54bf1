//! Scheduled starts: `POST /api/v1/rollouts` with `start_at` stores a schedule (the versioned
//! setting `schedule.<plan>`), `GET /api/v1/schedules` lists them, `DELETE
//! /api/v1/schedules/{plan}` cancels one. The controller starts due ones with every start check
//! run then; a schedule that cannot start is closed with the reason in the audit log.

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::schedules::{Cancelled, Schedule};
use wavegate_store::{Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiPath as Path;
use crate::http::openapi::{Forbidden, NotFound, Unauthorized};
use crate::service::schedules::{self, Pending};
use crate::state::AppState;

/// Schedule routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(list_schedules)).routes(api_routes!(cancel_schedule))
}

/// Pending scheduled starts in the token's environments (the environment each was scheduled
/// in), soonest first.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "Governance",
    security(("bearer" = [])),
    responses((status = 200, description = "The schedules", body = Vec<Schedule>),
        Unauthorized, Forbidden))]
async fn list_schedules(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<Schedule>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let visible = schedules::pending(&state).await?.into_iter().filter(|s| readable(&p, s));
    Ok(Json(visible.map(|s| s.view()).collect()))
}

/// Whether `p` may see (and, as an admin, cancel) a schedule: one in its environments (one
/// whose plan is gone: all-environment tokens only).
fn readable(p: &Principal, s: &Pending) -> bool {
    s.environment.as_deref().map_or(p.0.all_envs(), |e| p.0.allows_env(e))
}

/// Cancels a plan's scheduled start (an admin token for the environment it was scheduled in).
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
    let p = p.acting_as(&[Role::Releaser])?;
    let Some(pending) = schedules::find(&state, &plan).await? else {
        return Err(ApiError::not_found(format!("no scheduled start of plan {plan:?}")));
    };
    if !readable(&p, &pending) {
        return Err(ApiError::forbidden(format!(
            "this start is scheduled in {}; cancelling it needs an admin token for that environment",
            pending.environment.as_deref().unwrap_or("an environment that no longer has the plan")
        )));
    }
    schedules::cancel(&state, &pending, &p.who()).await?;
    Ok(Json(Cancelled { plan, cancelled: true }))
}
