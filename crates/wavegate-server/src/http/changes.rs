//! `/api/v1/changes` and environments' protection: change requests for protected environments
//! and the emergency path ([`crate::service::changes`]).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::changes::{ChangeAction, ChangeRequest, NewChange, Protection, Protections};
use wavegate_store::{Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, ApiQuery as Query, JsonBody};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, ReasonHeader, TooLarge, TooLargeText,
    Unauthorized, api_routes,
};
use crate::http::{reason, require_all_envs};
use crate::service::changes;
use crate::state::AppState;

/// Change request routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_changes, propose))
        .routes(api_routes!(get_change))
        .routes(api_routes!(act))
        .routes(api_routes!(list_protection))
        .routes(api_routes!(protect, unprotect))
}

/// Whether `p` may see a change request: one of its environments is the token's.
fn visible(p: &Principal, cr: &ChangeRequest) -> bool {
    p.0.all_envs() || cr.environments.iter().any(|e| p.0.allows_env(e))
}

/// Proposes a change (flags, segments, plans) for review; with `emergency`, a releaser's change
/// applied at once and open until its post-incident review.
#[utoipa::path(post, path = "/api/v1/changes", tag = "Governance",
    request_body = NewChange,
    security(("bearer" = [])),
    responses((status = 201, description = "Proposed (or, in an emergency, applied)", body = ChangeRequest),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid))]
async fn propose(
    State(state): State<AppState>,
    p: Principal,
    JsonBody(body): JsonBody<NewChange>,
) -> ApiResult<(StatusCode, Json<ChangeRequest>)> {
    p.require(&[TokenKind::Admin])?;
    let cr = changes::propose(&state, body, &p.0).await?;
    Ok((StatusCode::CREATED, Json(cr)))
}

/// Which change requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ChangeQuery {
    /// Only those in this state (`open`, `approved`, `applied`, `rejected`, `withdrawn`), or
    /// `awaiting_review` for emergency changes without their post-incident review.
    #[serde(default)]
    state: Option<String>,
}

/// Change requests in the token's environments, newest first.
#[utoipa::path(get, path = "/api/v1/changes", tag = "Governance",
    params(ChangeQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The change requests", body = Vec<ChangeRequest>),
        BadRequest, Unauthorized, Forbidden))]
async fn list_changes(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<ChangeQuery>,
) -> ApiResult<Json<Vec<ChangeRequest>>> {
    p.require(&[TokenKind::Admin])?;
    let all = changes::list(&state).await?;
    let wanted = |cr: &ChangeRequest| match q.state.as_deref() {
        None => true,
        Some("awaiting_review") => cr.awaiting_review,
        Some(s) => cr.state == s,
    };
    Ok(Json(all.into_iter().filter(|cr| visible(&p, cr) && wanted(cr)).collect()))
}

/// One change request.
#[utoipa::path(get, path = "/api/v1/changes/{id}", tag = "Governance",
    params(("id" = String, Path, description = "The change request's id (`cr_…`)")),
    security(("bearer" = [])),
    responses((status = 200, description = "The change request", body = ChangeRequest),
        Unauthorized, Forbidden, NotFound))]
async fn get_change(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ChangeRequest>> {
    p.require(&[TokenKind::Admin])?;
    let (cr, _) = changes::get(&state, &id).await?;
    if !visible(&p, &cr) {
        return Err(ApiError::forbidden(
            "this change request is about environments this token may not read",
        ));
    }
    Ok(Json(cr))
}

/// Acts on a change request: `approve`, `reject` (`{reason}`), `comment` (`{text}`),
/// `withdraw`, `apply`, or `review` (`{link, summary}`, an emergency's post-incident review).
#[utoipa::path(post, path = "/api/v1/changes/{id}/{action}", tag = "Governance",
    params(("id" = String, Path, description = "The change request's id (`cr_…`)"),
        ("action" = String, Path, description = "`approve`, `reject`, `comment`, `withdraw`, `apply` or `review` (others: 404)")),
    request_body(content = Option<ChangeAction>, description = "What the action carries, or nothing"),
    security(("bearer" = [])),
    responses((status = 200, description = "The change request after the action", body = ChangeRequest),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLargeText, Invalid))]
async fn act(
    State(state): State<AppState>,
    p: Principal,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ChangeRequest>> {
    p.require(&[TokenKind::Admin])?;
    let body: ChangeAction = if body.iter().all(u8::is_ascii_whitespace) {
        ChangeAction::default()
    } else {
        crate::http::json::parse_json(&body)?
    };
    let (cr, _) = changes::get(&state, &id).await?;
    if !visible(&p, &cr) {
        return Err(ApiError::forbidden(
            "this change request is about environments this token may not act in",
        ));
    }
    Ok(Json(changes::act(&state, &id, &action, body, &p.0).await?))
}

/// The protected environments and the approvals each needs.
#[utoipa::path(get, path = "/api/v1/protection", tag = "Governance",
    security(("bearer" = [])),
    responses((status = 200, description = "The protected environments", body = Protections),
        Unauthorized, Forbidden))]
async fn list_protection(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Protections>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    Ok(Json(Protections { environments: changes::protections(&state).await? }))
}

/// Protects an environment: its flags, segments and plans then change only through change
/// requests with this many approvals (or an emergency).
#[utoipa::path(put, path = "/api/v1/environments/{name}/protection", tag = "Governance",
    params(("name" = String, Path, description = "The environment"), ReasonHeader),
    request_body = Protection,
    security(("bearer" = [])),
    responses((status = 200, description = "The protected environments", body = Protections),
        BadRequest, Unauthorized, Forbidden, NotFound, TooLarge, Invalid))]
async fn protect(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Protection>,
) -> ApiResult<Json<Protections>> {
    let p = p.acting_as(&[Role::Admin])?;
    require_all_envs(&p, "protecting an environment")?;
    let all =
        changes::set_protection(&state, &name, Some(body.approvals), &p.who(), reason(&headers))
            .await?;
    Ok(Json(Protections { environments: all }))
}

/// Lifts an environment's protection.
#[utoipa::path(delete, path = "/api/v1/environments/{name}/protection", tag = "Governance",
    params(("name" = String, Path, description = "The environment"), ReasonHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "The protected environments", body = Protections),
        Unauthorized, Forbidden, NotFound))]
async fn unprotect(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Protections>> {
    let p = p.acting_as(&[Role::Admin])?;
    require_all_envs(&p, "lifting an environment's protection")?;
    let all = changes::set_protection(&state, &name, None, &p.who(), reason(&headers)).await?;
    Ok(Json(Protections { environments: all }))
}
