//! `/api/v1/notifications`: targets (list, put, remove, test) and the delivery log.
//!
//! Targets affect every environment they name, so changing them needs an admin token for all
//! environments; the delivery log shows an environment-scoped admin only its environments.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_core::flag::validate_key;
use wavegate_store::{Delivery, DeliveryQuery, NotifyTargetRow};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, ApiQuery as Query, JsonBody};
use crate::runtime::notify::render;
use crate::runtime::notify::spec::{ALL_EVENTS, Event, TargetSpec};
use crate::state::AppState;

/// Notification routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/notifications/targets", get(list_targets))
        .route(
            "/api/v1/notifications/targets/{name}",
            get(get_target).put(put_target).delete(delete_target),
        )
        .route("/api/v1/notifications/targets/{name}/test", post(test_target))
        .route("/api/v1/notifications/deliveries", get(list_deliveries))
}

fn require_global_admin(p: &Principal) -> ApiResult<()> {
    p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden(
            "notification targets span environments; this needs an admin token scoped to all (*)",
        ));
    }
    Ok(())
}

fn target_json(t: &NotifyTargetRow) -> Value {
    let mut v = t.spec.clone();
    if let Some(o) = v.as_object_mut() {
        let signed = o.remove("secret").is_some();
        o.insert("signed".into(), json!(signed));
        o.insert("name".into(), json!(t.name));
        o.insert("created_at".into(), json!(t.created_at));
        o.insert("updated_at".into(), json!(t.updated_at));
    }
    v
}

async fn list_targets(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    require_global_admin(&p)?;
    let targets = state.store.notify_targets().await?;
    Ok(Json(json!(targets.iter().map(target_json).collect::<Vec<_>>())))
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

async fn get_target(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    require_global_admin(&p)?;
    Ok(Json(target_json(&find(&state, &name).await?)))
}

async fn put_target(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
    JsonBody(spec): JsonBody<TargetSpec>,
) -> ApiResult<Response> {
    require_global_admin(&p)?;
    validate_key(&name).map_err(|e| ApiError::invalid("name", e))?;
    spec.validate(&state.snapshot.load().environments)?;
    let value = serde_json::to_value(&spec).map_err(ApiError::internal)?;
    let reason = crate::http::reason(&headers);
    let created = state
        .store
        .put_notify_target(&name, &value, &spec.audit_details(), &state.change(p.name(), reason))
        .await?;
    let body = Json(target_json(&find(&state, &name).await?));
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, body).into_response())
}

async fn delete_target(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_global_admin(&p)?;
    let reason = crate::http::reason(&headers);
    state.store.delete_notify_target(&name, &state.change(p.name(), reason)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestParams {
    /// The event to render (default: promoted).
    #[serde(default)]
    event: Option<Event>,
}

/// Sends one sample message now (not retried, not logged) and says how the receiver answered.
async fn test_target(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<TestParams>,
) -> ApiResult<Json<Value>> {
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
    let outcome = crate::runtime::notify::post(
        &state,
        &target.url,
        target.secret.as_deref(),
        &payload,
        event.as_str(),
        0,
    )
    .await;
    Ok(Json(match outcome {
        Ok(code) => json!({"ok": true, "http_status": code, "text": text}),
        Err((code, error)) => {
            json!({"ok": false, "http_status": code, "error": error, "text": text})
        }
    }))
}

fn sample_context(state: &AppState, event: Event, target: &TargetSpec) -> Value {
    let url =
        state.public_url.as_deref().map(|b| format!("{}/#/rollouts", b.trim_end_matches('/')));
    json!({
        "event": event.as_str(),
        "title": event.title(),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryParams {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    rollout: Option<String>,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "audit_seq": d.audit_seq,
        "target": d.target,
        "audience": d.audience,
        "event": d.event,
        "rollout": d.rollout,
        "environment": d.environment,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "http_status": d.http_status,
        "next_at": if d.status == "pending" { json!(d.next_at) } else { Value::Null },
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "text": d.payload.get("text"),
    })
}

async fn list_deliveries(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<DeliveryParams>,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
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
    let visible: Vec<Value> =
        rows.iter().filter(|d| p.0.allows_env(&d.environment)).map(delivery_json).collect();
    Ok(Json(json!(visible)))
}
