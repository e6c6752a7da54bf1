//! The audit log (`GET /api/v1/audit`), its verification (`GET /api/v1/audit/verify`), the
//! checkpoint signing key (`GET /api/v1/audit/checkpoint`) and
//! backups (`GET /api/v1/backup`).

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::audit::{AuditEntry, Checkpoints, Verification};
use wavegate_store::Role;

use crate::http::auth::Principal;
use crate::http::convert::IntoApi;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, Unauthorized};
use crate::http::scope::AuditReader;
use crate::state::AppState;

/// Audit and backup routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_audit))
        .routes(api_routes!(verify_audit))
        .routes(api_routes!(audit_checkpoint))
        .routes(api_routes!(backup))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only entries after this sequence number (default 0: from the first).
    #[serde(default)]
    after: i64,
    /// How many entries, 1 to 1000 (default 100).
    #[serde(default = "default_limit")]
    limit: i64,
    /// Only entries about this target (a rollout id, flag key, …): its newest `limit`.
    #[serde(default)]
    target: Option<String>,
}

fn default_limit() -> i64 {
    100
}

/// Audit entries, oldest first from `after`; or, with `target`, that target's newest `limit`.
/// An environment-scoped admin sees only the entries about its environments (`http::scope`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "Audit",
    params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The entries", body = Vec<AuditEntry>),
        BadRequest, Unauthorized, Forbidden, Invalid))]
async fn list_audit(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let p = p.acting_as(&[Role::Viewer])?;
    if !(1..=1000).contains(&q.limit) {
        return Err(ApiError::invalid("limit", "limit must be from 1 to 1000"));
    }
    if q.target.is_some() && q.after != 0 {
        return Err(ApiError::invalid("after", "use either target or after, not both"));
    }
    let mut reader = AuditReader::new(&*state.store, &p.0);
    let mut out = Vec::new();
    if let Some(t) = &q.target {
        for row in state.store.audit_of(t, q.limit).await? {
            out.extend(reader.view(row.into_api()).await?);
        }
        return Ok(Json(out));
    }
    // An environment-scoped admin sees only some entries: read on until the page is full or
    // the log ends, so a short page still means the end.
    let mut after = q.after;
    loop {
        let rows = state.store.audit(after, q.limit).await?;
        let end = (rows.len() as i64) < q.limit;
        for row in &rows {
            after = row.entry.seq;
            if let Some(e) = reader.view(row.into_api()).await? {
                out.push(e);
                if out.len() as i64 == q.limit {
                    return Ok(Json(out));
                }
            }
        }
        if end {
            return Ok(Json(out));
        }
    }
}

/// The record verified: the chain from its stored canonical bytes, the listing columns, and
/// every version and head row against its entry's `content_sha256`, and that the log still
/// holds the entries this server verified before (not cut short, not rewritten and chained
/// again); `head` only when the chain verifies.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "Audit",
    security(("bearer" = [])),
    responses((status = 200, description = "Whether the chain verifies, and where not",
        body = Verification), Unauthorized, Forbidden))]
async fn verify_audit(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Verification>> {
    p.acting_as(&[Role::Viewer])?;
    state.record.catch_up(&*state.store).await?;
    Ok(Json(state.record.reverify(&*state.store).await?))
}

/// The public key this server signs audit checkpoints with (`serve --checkpoint-key`), to pin
/// in `wavegate audit verify --public-key`, and the newest checkpoint it signed.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "Audit",
    security(("bearer" = [])),
    responses((status = 200, description = "The signing key and the newest checkpoint (both null \
        when the server signs none)", body = Checkpoints), Unauthorized, Forbidden))]
async fn audit_checkpoint(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Checkpoints>> {
    p.acting_as(&[Role::Viewer])?;
    let c = state.record.checkpointing();
    Ok(Json(Checkpoints {
        public_key: c.as_ref().map(|c| c.public_key.clone()),
        latest: c.and_then(|c| c.latest),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BackupQuery {
    /// `true` to include the notification targets' signing secrets and full webhook URLs
    /// (audited as `backup.secrets`). By default they are left out: such targets restore
    /// `withheld`, sending nothing until their URL is set again.
    #[serde(default)]
    secrets: bool,
}

/// `GET /api/v1/backup`: every table in one read transaction. It holds token hashes and every
/// environment, so only an admin token for all environments may take it; the notification
/// targets' secrets only when asked for (`?secrets=true`), and that is audited.
#[utoipa::path(get, path = "/api/v1/backup", tag = "Audit",
    summary = "A backup of every table",
    description = "Every table in one read transaction (`wavegate backup`; `wavegate restore` \
        reads it). It holds token hashes and every environment, so only an admin token for all \
        environments may take it. Notification targets' signing secrets and webhook URLs (a \
        URL's path is often a secret: Slack's) are left out unless `secrets=true` asks for them \
        (recorded in the audit log as `backup.secrets`); `secrets_omitted` says which it is.",
    params(BackupQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The backup document", body = Object),
        BadRequest, Unauthorized, Forbidden))]
async fn backup(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<BackupQuery>,
) -> ApiResult<Json<Value>> {
    let p = p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden(
            "a backup holds every environment; it needs an admin token scoped to all (*)",
        ));
    }
    if q.secrets {
        // Recorded before the export, so the backup holds the record of its own taking.
        let details = serde_json::json!({"secrets": true});
        let change = state.change(&p.who(), Some("backup with secrets".into()));
        state.store.audit_event("backup.secrets", "backup", &details, &change).await?;
    }
    let mut backup = state.store.export().await?;
    if !q.secrets {
        crate::runtime::notify::spec::omit_secrets(&mut backup);
    }
    tracing::info!(actor = %p.0.principal, secrets = q.secrets, "backup taken");
    Ok(Json(serde_json::to_value(backup).map_err(ApiError::internal)?))
}
