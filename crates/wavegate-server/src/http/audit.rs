//! The audit log (`GET /api/v1/audit`), its verification (`GET /api/v1/audit/verify`) and
//! backups (`GET /api/v1/backup`).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::state::AppState;

/// Audit and backup routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(list_audit))
        .route("/api/v1/audit/verify", get(verify_audit))
        .route("/api/v1/backup", get(backup))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
    /// Only entries about this target (a rollout id, flag key, …): its newest `limit`.
    #[serde(default)]
    target: Option<String>,
}

fn default_limit() -> i64 {
    100
}

async fn list_audit(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    if !(1..=1000).contains(&q.limit) {
        return Err(ApiError::invalid("limit", "limit must be from 1 to 1000"));
    }
    if q.target.is_some() && q.after != 0 {
        return Err(ApiError::invalid("after", "use either target or after, not both"));
    }
    let rows = match &q.target {
        Some(t) => state.store.audit_of(t, q.limit).await?,
        None => state.store.audit(q.after, q.limit).await?,
    };
    let entries: Vec<Value> = rows.iter().map(crate::runtime::feed::audit_json).collect();
    Ok(Json(json!(entries)))
}

async fn verify_audit(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let (v, broken) = wavegate_store::verify_audit_chain(&*state.store).await?;
    if let Some(b) = broken {
        return Ok(Json(json!({
            "ok": false,
            "verified": v.verified(),
            "first_bad": {"seq": b.seq, "problem": b.problem},
        })));
    }
    Ok(Json(json!({"ok": true, "verified": v.verified(), "head": v.head(), "first_bad": null})))
}

/// `GET /api/v1/backup`: every table in one read transaction. It holds token hashes and every
/// environment, so only an admin token for all environments may take it.
async fn backup(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden(
            "a backup holds every environment; it needs an admin token scoped to all (*)",
        ));
    }
    let backup = state.store.export().await?;
    tracing::info!(actor = %p.0.principal, "backup taken");
    Ok(Json(serde_json::to_value(backup).map_err(ApiError::internal)?))
}
