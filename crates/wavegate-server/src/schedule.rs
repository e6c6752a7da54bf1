//! Scheduled starts: `POST /api/v1/rollouts` with `start_at` stores a schedule (the versioned
//! setting `schedule.<plan>`), `GET /api/v1/schedules` lists them, `DELETE
//! /api/v1/schedules/{plan}` cancels one. The controller starts due ones with every start check
//! run then; a schedule that cannot start is closed with the reason in the audit log.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wavegate_store::{Kind, Put, TokenKind};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiPath as Path;
use crate::service::{ServiceResult, rollouts};
use crate::state::AppState;

const PREFIX: &str = "schedule.";

/// Schedule routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/schedules", get(list))
        .route("/api/v1/schedules/{plan}", delete(cancel))
}

fn put(plan: &str, spec: Value, archived: bool, action: &str) -> Put {
    Put {
        kind: Kind::Setting,
        key: format!("{PREFIX}{plan}"),
        spec,
        archived,
        expected_version: None,
        action: Some(action.into()),
        details: json!({"plan": plan}),
    }
}

/// Stores a start of `plan` at `at` (RFC 3339, in the future, within a year).
pub async fn schedule(
    state: &AppState,
    p: &Principal,
    plan: &str,
    at: &str,
    reason: Option<String>,
) -> ApiResult<Response> {
    let when = DateTime::parse_from_rfc3339(at)
        .map_err(|_| {
            ApiError::invalid("start_at", format!("start_at must be an RFC 3339 time, got {at:?}"))
        })?
        .with_timezone(&Utc);
    let now = state.clock.now();
    if when <= now || when > now + chrono::Duration::days(366) {
        return Err(ApiError::invalid("start_at", "start_at must be in the future, within a year"));
    }
    let spec = json!({"plan": plan, "start_at": when, "requester": p.name(), "reason": reason});
    state
        .store
        .apply(
            &[put(plan, spec.clone(), false, "schedule")],
            &state.change(p.name(), Some(format!("start scheduled for {when}"))),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"scheduled": spec}))).into_response())
}

/// Live schedules: `(plan, start_at, requester, reason)`.
pub async fn pending(
    state: &AppState,
) -> ServiceResult<Vec<(String, DateTime<Utc>, String, Option<String>)>> {
    let mut out = Vec::new();
    for h in state.store.list(Kind::Setting, false).await? {
        let Some(plan) = h.key.strip_prefix(PREFIX) else { continue };
        let Some(at) =
            h.spec["start_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        out.push((
            plan.to_owned(),
            at.with_timezone(&Utc),
            h.spec["requester"].as_str().unwrap_or("scheduler").to_owned(),
            h.spec["reason"].as_str().map(str::to_owned),
        ));
    }
    out.sort_by_key(|s| s.1);
    Ok(out)
}

/// Starts every due schedule (called by the controller's tick) and closes it.
pub async fn run_due(state: &AppState) -> ServiceResult<()> {
    let now = state.clock.now();
    for (plan, at, requester, reason) in pending(state).await? {
        if at > now {
            continue;
        }
        let req = rollouts::StartRequest {
            plan: plan.clone(),
            reason: reason.clone(),
            artifact_sha256: None,
        };
        let (action, details) = match rollouts::start(state, &requester, req).await {
            Ok((row, _)) => ("started", json!({"plan": plan, "rollout": row.id})),
            Err(e) => {
                // The person reads why; a server-side failure says only that it was one.
                let error = crate::error::ApiError::from(e).message;
                tracing::warn!(%plan, %error, "scheduled start refused");
                ("failed", json!({"plan": plan, "error": error}))
            }
        };
        let mut w = put(
            &plan,
            json!({"plan": plan, "start_at": at, "requester": requester, "outcome": details}),
            true,
            action,
        );
        w.details = details;
        state.store.apply(&[w], &state.change("controller", reason)).await?;
    }
    Ok(())
}

async fn list(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let items: Vec<Value> = pending(&state)
        .await?
        .into_iter()
        .map(|(plan, at, by, reason)| json!({"plan": plan, "start_at": at, "requester": by, "reason": reason}))
        .collect();
    Ok(Json(json!(items)))
}

async fn cancel(
    State(state): State<AppState>,
    p: Principal,
    Path(plan): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    if !pending(&state).await?.iter().any(|s| s.0 == plan) {
        return Err(ApiError::not_found(format!("no scheduled start of plan {plan:?}")));
    }
    state
        .store
        .apply(
            &[put(&plan, json!({"plan": plan, "cancelled_by": p.name()}), true, "cancel")],
            &state.change(p.name(), None),
        )
        .await?;
    Ok(Json(json!({"plan": plan, "cancelled": true})))
}
