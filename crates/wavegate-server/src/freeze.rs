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
use serde_json::{Value, json};
use wavegate_store::{Kind, Put, TokenKind};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::json::JsonBody;
use crate::state::AppState;

const KEY: &str = "freeze";

/// Freeze routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/freeze", get(show).put(on).delete(off))
}

/// The freeze's reason when it is on.
pub async fn active(state: &AppState) -> crate::service::ServiceResult<Option<String>> {
    Ok(state.store.get(Kind::Setting, KEY).await?.and_then(|h| {
        (h.spec["active"] == Value::Bool(true))
            .then(|| h.spec["reason"].as_str().unwrap_or("").to_owned())
    }))
}

async fn show(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    Ok(Json(match state.store.get(Kind::Setting, KEY).await? {
        Some(h) => h.spec,
        None => json!({"active": false}),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBody {
    reason: String,
}

async fn write(
    state: &AppState,
    p: &Principal,
    spec: Value,
    why: String,
) -> ApiResult<Json<Value>> {
    let put = Put {
        kind: Kind::Setting,
        key: KEY.into(),
        spec: spec.clone(),
        archived: false,
        expected_version: None,
        action: None,
        details: json!({}),
    };
    state.store.apply(&[put], &state.change(p.name(), Some(why))).await?;
    Ok(Json(spec))
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
    let at = state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let spec = json!({"active": true, "reason": reason, "by": p.name(), "at": at});
    write(&state, &p, spec, format!("freeze: {reason}")).await
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
    let at = state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let spec = json!({"active": false, "lifted_by": p.name(), "at": at});
    write(&state, &p, spec, why).await
}
