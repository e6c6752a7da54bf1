//! Waivers of vulnerability findings over HTTP: `GET /api/v1/plans/{name}/waivers`,
//! `PUT …/waivers/{finding}` (an approver grants or renews one) and `DELETE …/waivers/{finding}`
//! (an approver revokes one); `service::waivers` keeps them, the vulnerability check reads them.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::waivers::{GrantWaiver, Waiver};
use wavegate_rollout::duties::Vouch;
use wavegate_store::{Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::ApiResult;
use crate::http::json::{ApiPath as Path, JsonBody};
use crate::http::openapi::{
    BadRequest, Forbidden, Invalid, NotFound, TooLarge, Unauthorized, api_routes,
};
use crate::service::waivers;
use crate::state::AppState;

/// Waiver routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_waivers))
        .routes(api_routes!(grant_waiver, revoke_waiver))
}

fn view(
    list: Vec<wavegate_rollout::vulns::Waiver>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Waiver> {
    list.into_iter()
        .map(|w| Waiver {
            expired: w.expires <= now,
            finding: w.finding,
            reason: w.reason,
            expires: w.expires,
            by: w.by,
            at: w.at,
        })
        .collect()
}

/// The waivers granted for a plan's vulnerability findings, expired ones included.
#[utoipa::path(get, path = "/api/v1/plans/{name}/waivers", tag = "Governance",
    params(("name" = String, Path, description = "The plan's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The waivers", body = Vec<Waiver>),
        Unauthorized, Forbidden, NotFound))]
async fn list_waivers(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Waiver>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (plan, _) = crate::service::plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    let list = waivers::list(&state, &name).await?;
    Ok(Json(view(list, state.clock.now())))
}

/// Grants (or renews) a waiver of one finding: an approver of the plan who is not behind its
/// change (separation of duties, rule `waiver-approver`); audited as `setting.waive`.
#[utoipa::path(put, path = "/api/v1/plans/{name}/waivers/{finding}", tag = "Governance",
    params(("name" = String, Path, description = "The plan's name"),
        ("finding" = String, Path, description = "The vulnerability's id or alias (GHSA-…, CVE-…)")),
    request_body = GrantWaiver,
    security(("bearer" = [])),
    responses((status = 200, description = "The plan's waivers after the grant", body = Vec<Waiver>),
        BadRequest, Unauthorized, Forbidden, NotFound, TooLarge, Invalid))]
async fn grant_waiver(
    State(state): State<AppState>,
    p: Principal,
    Path((name, finding)): Path<(String, String)>,
    JsonBody(body): JsonBody<GrantWaiver>,
) -> ApiResult<Json<Vec<Waiver>>> {
    let p = p.acting_as(&[Role::Approver])?;
    let (plan, version) = crate::service::plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    let r = crate::service::scorecard::rollout_for(&state, &plan, version).await;
    let started = r.as_ref().map(|r| (r.requester.as_str(), r.id.as_str()));
    crate::service::duties::require_may_vouch(
        &state,
        &p.0,
        Vouch::WaiveFinding,
        &plan,
        version,
        started,
    )
    .await?;
    let list =
        waivers::grant(&state, &name, &finding, &body.reason, &body.expires, &p.who()).await?;
    Ok(Json(view(list, state.clock.now())))
}

/// Revokes a waiver (an approver of the plan); audited as `setting.unwaive`.
#[utoipa::path(delete, path = "/api/v1/plans/{name}/waivers/{finding}", tag = "Governance",
    params(("name" = String, Path, description = "The plan's name"),
        ("finding" = String, Path, description = "The waived finding")),
    security(("bearer" = [])),
    responses((status = 200, description = "The plan's waivers after the revocation", body = Vec<Waiver>),
        Unauthorized, Forbidden, NotFound))]
async fn revoke_waiver(
    State(state): State<AppState>,
    p: Principal,
    Path((name, finding)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Waiver>>> {
    let p = p.acting_as(&[Role::Approver])?;
    let (plan, _) = crate::service::plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    let list = waivers::revoke(&state, &name, &finding, &p.who()).await?;
    Ok(Json(view(list, state.clock.now())))
}
