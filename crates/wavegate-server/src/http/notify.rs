//! `/api/v1/notifications`: targets (list, put, remove, test) and the delivery log.
//!
//! Targets affect every environment they name, so changing them needs an admin token for all
//! environments; the delivery log shows an environment-scoped admin only its environments.

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::notify::{Delivery, NotifyEvent, PutTarget, Target, TestSent};
use wavegate_core::flag::validate_key;
use wavegate_store::{DeliveryQuery, NotifyTargetRow, Role};

use crate::http::auth::Principal;
use crate::http::convert::IntoApi;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, ApiQuery as Query, JsonBody};
use crate::http::openapi::{
    BadRequest, Forbidden, Invalid, NotFound, ReasonHeader, TooLarge, Unauthorized,
};
use crate::runtime::notify::render;
use crate::runtime::notify::spec::{ALL_EVENTS, Event, TargetSpec};
use crate::state::AppState;

/// Notification routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_targets))
        .routes(api_routes!(get_target, put_target, delete_target))
        .routes(api_routes!(test_target))
        .routes(api_routes!(list_deliveries))
}

fn require_global_admin(p: &Principal) -> ApiResult<()> {
    let p = p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden(
            "notification targets span environments; this needs an admin token scoped to all (*)",
        ));
    }
    Ok(())
}

/// A target as the API shows it: its settings without the secret (`signed` says whether it has
/// one), its name and times.
fn target(t: &NotifyTargetRow) -> ApiResult<Target> {
    let spec: TargetSpec = serde_json::from_value(t.spec.clone()).map_err(ApiError::internal)?;
    Ok(Target {
        audience: spec.audience,
        url: spec.url,
        format: spec.format,
        events: spec.events,
        environments: spec.environments,
        person: spec.person,
        templates: spec.templates.into_iter().map(|(e, t)| (e.as_str().to_owned(), t)).collect(),
        signed: spec.secret.is_some(),
        withheld: spec.withheld,
        name: t.name.clone(),
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

/// Every notification target (admin tokens for all environments).
#[utoipa::path(get, path = "/api/v1/notifications/targets", tag = "Notifications",
    security(("bearer" = [])),
    responses((status = 200, description = "The targets", body = Vec<Target>),
        Unauthorized, Forbidden))]
async fn list_targets(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Vec<Target>>> {
    require_global_admin(&p)?;
    let targets = state.store.notify_targets().await?;
    Ok(Json(targets.iter().map(target).collect::<ApiResult<_>>()?))
}

async fn find(state: &AppState, name: &str) -> ApiResult<NotifyTargetRow> {
    state
        .store
        .notify_targets()
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::not_found(format!("notification target {name:?} not found")))
}

/// One notification target.
#[utoipa::path(get, path = "/api/v1/notifications/targets/{name}", tag = "Notifications",
    params(("name" = String, Path, description = "The target's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The target", body = Target),
        Unauthorized, Forbidden, NotFound))]
async fn get_target(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Target>> {
    require_global_admin(&p)?;
    Ok(Json(target(&find(&state, &name).await?)?))
}

/// Creates or replaces a notification target.
#[utoipa::path(put, path = "/api/v1/notifications/targets/{name}", tag = "Notifications",
    params(("name" = String, Path, description = "The target's name (a key)"), ReasonHeader),
    request_body = PutTarget,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Target),
        (status = 201, description = "Created", body = Target),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid,
    ))]
async fn put_target(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<TargetSpec>,
) -> ApiResult<(StatusCode, Json<Target>)> {
    require_global_admin(&p)?;
    validate_key(&name).map_err(|e| ApiError::invalid("name", e))?;
    spec.validate(&state.snapshot.load().environments, state.outbound.guard.policy())?;
    let value = serde_json::to_value(&spec).map_err(ApiError::internal)?;
    let reason = crate::http::reason(&headers);
    let created = state
        .store
        .put_notify_target(&name, &value, &spec.audit_details(), &state.change(&p.who(), reason))
        .await?;
    let body = Json(target(&find(&state, &name).await?)?);
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, body))
}

/// Removes a notification target (answers no body).
#[utoipa::path(delete, path = "/api/v1/notifications/targets/{name}", tag = "Notifications",
    params(("name" = String, Path, description = "The target's name"), ReasonHeader),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed"), Unauthorized, Forbidden, NotFound))]
async fn delete_target(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let reason = crate::http::reason(&headers);
    state.store.delete_notify_target(&name, &state.change(&p.who(), reason)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TestParams {
    /// The event to render (default: promoted).
    #[serde(default)]
    #[param(value_type = Option<NotifyEvent>)]
    event: Option<Event>,
}

/// Sends one sample message now (not retried; audited as `notify.test`, which the scorecard's
/// "communications ready" item reads) and says how the receiver answered.
#[utoipa::path(post, path = "/api/v1/notifications/targets/{name}/test", tag = "Notifications",
    params(("name" = String, Path, description = "The target's name"), TestParams),
    security(("bearer" = [])),
    responses((status = 200, description = "How the receiver answered", body = TestSent),
        BadRequest, Unauthorized, Forbidden, NotFound, Invalid))]
async fn test_target(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<TestParams>,
) -> ApiResult<Json<TestSent>> {
    require_global_admin(&p)?;
    let row = find(&state, &name).await?;
    let target: TargetSpec = serde_json::from_value(row.spec).map_err(ApiError::internal)?;
    let event = q.event.unwrap_or(ALL_EVENTS[1]);
    let ctx = sample_context(&state, event, &target);
    let text = render::text(&target, event, &ctx).map_err(|e| ApiError::invalid("templates", e))?;
    let text = if text.is_empty() {
        format!("(wavegate test: this target says nothing to its audience on {})", event.as_str())
    } else {
        text
    };
    let payload = render::payload(&target, event, &text, &ctx, 0);
    if target.withheld {
        let error = Some(crate::runtime::notify::WITHHELD.to_owned());
        return Ok(Json(TestSent { ok: false, http_status: None, error, text }));
    }
    let outcome = crate::runtime::notify::post(
        &state,
        &target.url,
        target.secret.as_deref(),
        &payload,
        event.as_str(),
        0,
    )
    .await;
    let sent = match outcome {
        Ok(code) => TestSent { ok: true, http_status: Some(code), error: None, text },
        Err((code, error)) => TestSent { ok: false, http_status: code, error: Some(error), text },
    };
    // Audited: the scorecard's "communications ready" reads when each target last answered.
    let details = json!({"target": name, "audience": target.audience.as_str(), "event": event.as_str(),
        "ok": sent.ok, "http_status": sent.http_status});
    state
        .store
        .audit_event(
            "notify.test",
            &format!("notify:{name}"),
            &details,
            &state.change(&p.who(), None),
        )
        .await?;
    Ok(Json(sent))
}

fn sample_context(state: &AppState, event: Event, target: &TargetSpec) -> Value {
    let url = state
        .outbound
        .public_url
        .as_deref()
        .map(|b| format!("{}/#/rollouts", b.trim_end_matches('/')));
    json!({
        "event": event.as_str(),
        "title": crate::runtime::notify::spec::title(event),
        "audience": target.audience.as_str(),
        "actor": "wavegate",
        "at": state.clock.now(),
        "reason": "this is a test message",
        "details": {},
        "url": url,
        "runbook": "Runbook text appears here.",
        "environment": "prod",
        "wave": 2,
        "waves": 3,
        "exposure": "25%",
        "release": "example 1.2.3",
        "release_name": "example",
        "approvers": "bob",
        "rollout": {"id": "ro_test", "plan": "example", "flag": "example", "environment": "prod",
            "state": "running", "wave": 2, "waves": 3, "requester": "alice", "pre_rollout_version": 1,
            "release": {"name": "example", "version": "1.2.3", "risk": "medium"}, "team": null, "service": null},
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveryParams {
    /// Only deliveries in this state: `pending`, `delivered` or `failed`.
    #[serde(default)]
    status: Option<String>,
    /// Only deliveries to this target.
    #[serde(default)]
    target: Option<String>,
    /// Only deliveries about this rollout.
    #[serde(default)]
    rollout: Option<String>,
    /// How many, 1 to 1000 (default 100).
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

/// The delivery log, newest first (an environment-scoped admin sees its environments' only).
#[utoipa::path(get, path = "/api/v1/notifications/deliveries", tag = "Notifications",
    params(DeliveryParams),
    security(("bearer" = [])),
    responses((status = 200, description = "The deliveries", body = Vec<Delivery>),
        BadRequest, Unauthorized, Forbidden, Invalid))]
async fn list_deliveries(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<DeliveryParams>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let p = p.acting_as(&[Role::Viewer])?;
    if !(1..=1000).contains(&q.limit) {
        return Err(ApiError::invalid("limit", "limit must be from 1 to 1000"));
    }
    if let Some(s) = &q.status
        && !["pending", "delivered", "failed"].contains(&s.as_str())
    {
        return Err(ApiError::invalid("status", "status is pending, delivered or failed"));
    }
    let query =
        DeliveryQuery { status: q.status, target: q.target, rollout: q.rollout, limit: q.limit };
    let rows = state.store.deliveries(&query).await?;
    let visible =
        rows.iter().filter(|d| p.0.allows_env(&d.queued.environment)).map(IntoApi::into_api);
    Ok(Json(visible.collect()))
}
