//! Tokens: mint (the secret shown once), list and revoke. Secrets are stored hashed; a
//! principal's name already issued by someone else cannot be minted by a third party.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_store::{TokenKind, TokenRecord};

use crate::http::auth::{Principal, mint};
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, JsonBody};
use crate::http::{reason, require_all_envs};
use crate::state::AppState;

/// Token routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    kind: String,
    environments: Vec<String>,
    #[serde(default)]
    principal: Option<String>,
}

fn token_dto(t: &TokenRecord) -> Value {
    json!({
        "id": t.id,
        "kind": t.kind.as_str(),
        "environments": t.environments,
        "principal": t.principal,
        "created_at": t.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "created_by": t.created_by,
        "revoked_at": t.revoked_at.map(|r| r.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    })
}

async fn create_token(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let kind = TokenKind::parse(&body.kind).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!("unknown token kind {:?}; use admin, server-sdk or client-sdk", body.kind),
        )
    })?;
    if body.environments.is_empty() {
        return Err(ApiError::invalid(
            "environments",
            "name at least one environment, or \"*\" for all",
        ));
    }
    let known = state.snapshot.load().environments.clone();
    for e in &body.environments {
        if e == "*" {
            require_all_envs(&p, "a token for all environments")?;
        } else if !known.contains(e) {
            return Err(ApiError::invalid(
                "environments",
                format!("unknown environment {e:?}; known: {}", known.join(", ")),
            ));
        } else {
            p.require_env(e)?;
        }
    }
    let principal = match body.principal {
        Some(name) => {
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    "principal",
                    "principal must be 1 to 128 printable characters",
                ));
            }
            name
        }
        None => format!("{}-{}", p.name(), kind.as_str()),
    };
    if ["system", "controller", "automatic"].contains(&principal.as_str()) {
        return Err(ApiError::invalid(
            "principal",
            format!("{principal:?} is reserved for wavegate itself"),
        ));
    }
    // Approvals rest on principals being distinct people: a name already issued by someone else
    // cannot be minted again by a third party (that would let a requester approve as "bob").
    if principal != p.name() {
        let tokens = state.store.tokens().await?;
        if let Some(other) = tokens.iter().find(|t| {
            t.principal == principal && t.created_by != p.name() && t.created_by != principal
        }) {
            return Err(ApiError::forbidden(format!(
                "principal {principal:?} already has tokens issued by {}; ask them (or {principal}) to issue more",
                other.created_by
            )));
        }
    }
    let minted = mint(kind, body.environments, principal);
    let record =
        state.store.create_token(&minted.record, &state.change(p.name(), reason(&headers))).await?;
    state.tokens.clear();
    let mut dto = token_dto(&record);
    dto["token"] = json!(minted.secret);
    Ok((StatusCode::CREATED, Json(dto)).into_response())
}

async fn list_tokens(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let tokens = state.store.tokens().await?;
    Ok(Json(json!(tokens.iter().map(token_dto).collect::<Vec<_>>())))
}

async fn revoke_token(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let target =
        state.store.tokens().await?.into_iter().find(|t| t.id == id && t.revoked_at.is_none());
    let Some(target) = target else {
        return Err(ApiError::not_found(format!("live token {id:?} not found")));
    };
    if !p.0.all_envs() && !target.environments.iter().all(|e| p.0.allows_env(e)) {
        return Err(ApiError::forbidden("this token may not revoke a token with a wider scope"));
    }
    state.store.revoke_token(&id, &state.change(p.name(), reason(&headers))).await?;
    state.tokens.clear();
    Ok(Json(json!({"id": id, "revoked": true})))
}
