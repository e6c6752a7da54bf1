//! The go/no-go scorecard over HTTP: `GET /api/v1/plans/{name}/scorecard` (the assessment)
//! and `PUT /api/v1/plans/{name}/scorecard/{item}` (set green, red or waived, with evidence);
//! `service::scorecard` keeps the states and computes the assessment.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, JsonBody};
use crate::service::scorecard::{assessment, rollout_for};
use crate::state::AppState;

/// Scorecard routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plans/{name}/scorecard", get(show))
        .route("/api/v1/plans/{name}/scorecard/{item}", put(set))
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (plan, version) = crate::service::plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    let r = rollout_for(&state, &plan, version).await;
    let a = assessment(&state, &plan, version, r.as_ref(), None).await?;
    let mut out = serde_json::to_value(&a).map_err(ApiError::internal)?;
    out["plan"] = json!(name);
    out["plan_version"] = json!(version);
    out["block_reason"] = json!(a.block_reason());
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    status: String,
    #[serde(default)]
    note: Option<String>,
}

async fn set(
    State(state): State<AppState>,
    p: Principal,
    Path((name, item)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetBody>,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let (plan, version) = crate::service::plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    crate::service::scorecard::set_item(&state, &plan, &item, &body.status, body.note, p.name())
        .await?;
    let r = rollout_for(&state, &plan, version).await;
    let a = assessment(&state, &plan, version, r.as_ref(), None).await?;
    let mut out = serde_json::to_value(&a).map_err(ApiError::internal)?;
    out["plan"] = json!(name);
    out["block_reason"] = json!(a.block_reason());
    Ok(Json(out))
}
