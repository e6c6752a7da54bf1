//! The go/no-go scorecard over HTTP: `GET /api/v1/plans/{name}/scorecard` (the assessment)
//! and `PUT /api/v1/plans/{name}/scorecard/{item}` (set green, red or waived, with evidence);
//! `service::scorecard` keeps the states and computes the assessment.

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::scorecard::{Scorecard, SetItem};
use wavegate_rollout::duties::Vouch;
use wavegate_store::{Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::convert::IntoApi;
use crate::http::error::ApiResult;
use crate::http::json::{ApiPath as Path, JsonBody};
use crate::http::openapi::{BadRequest, Forbidden, Invalid, NotFound, TooLarge, Unauthorized};
use crate::service::scorecard::{assessment, rollout_for};
use crate::state::AppState;

/// Scorecard routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(show_scorecard)).routes(api_routes!(set_scorecard_item))
}

/// A plan's go/no-go scorecard, assessed now (automatic items from their checks).
#[utoipa::path(get, path = "/api/v1/plans/{name}/scorecard", tag = "Governance",
    params(("name" = String, Path, description = "The plan's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The scorecard, with the plan's name and version",
        body = Scorecard), Unauthorized, Forbidden, NotFound))]
async fn show_scorecard(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Scorecard>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (plan, version) = crate::service::plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    let r = rollout_for(&state, &plan, version).await;
    let a = assessment(&state, &plan, version, r.as_ref(), None).await?;
    let card: Scorecard = (&a).into_api();
    Ok(Json(Scorecard { plan: Some(name), plan_version: Some(version), ..card }))
}

/// Sets an item green or red with evidence, or waives it with a reason; answers the scorecard
/// (with the plan's name, without its version).
#[utoipa::path(put, path = "/api/v1/plans/{name}/scorecard/{item}", tag = "Governance",
    params(("name" = String, Path, description = "The plan's name"),
        ("item" = String, Path, description = "The item's key")),
    request_body = SetItem,
    security(("bearer" = [])),
    responses((status = 200, description = "The scorecard after the change", body = Scorecard),
        BadRequest, Unauthorized, Forbidden, NotFound, TooLarge, Invalid))]
async fn set_scorecard_item(
    State(state): State<AppState>,
    p: Principal,
    Path((name, item)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetItem>,
) -> ApiResult<Json<Scorecard>> {
    // Signing and waiving are the approver's; raising red anyone's who works on releases.
    let p = match body.status.as_str() {
        "red" => p.acting_as(&[Role::Editor, Role::Releaser, Role::Approver])?,
        _ => p.acting_as(&[Role::Approver])?,
    };
    let (plan, version) = crate::service::plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    crate::service::scorecard::require_item(&plan, &item)?;
    // Green and waived vouch for the plan (wavegate_rollout::duties); anyone may raise red.
    let r = rollout_for(&state, &plan, version).await;
    let vouch = match body.status.as_str() {
        "green" => Some(Vouch::Sign),
        "waived" => {
            Some(Vouch::Waive { automatic: wavegate_rollout::scorecard::is_automatic(&item) })
        }
        _ => None,
    };
    if let Some(what) = vouch {
        let started = r.as_ref().map(|r| (r.requester.as_str(), r.id.as_str()));
        crate::service::duties::require_may_vouch(&state, &p.0, what, &plan, version, started)
            .await?;
    }
    crate::service::scorecard::set_item(&state, &plan, &item, &body.status, body.note, &p.who())
        .await?;
    let a = assessment(&state, &plan, version, r.as_ref(), None).await?;
    let card: Scorecard = (&a).into_api();
    Ok(Json(Scorecard { plan: Some(name), ..card }))
}
