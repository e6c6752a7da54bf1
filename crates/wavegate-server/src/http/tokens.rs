//! Tokens: mint (the secret shown once), list and revoke. Secrets are stored hashed; a
//! principal's name already issued by someone else cannot be minted by a third party, and
//! minting for another principal at all is user administration (a capability of its own,
//! which the bootstrap admin token holds and grants): approvals, sign-offs and waivers rest on
//! principals being distinct people ([`crate::service::duties`]).

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::tokens::{CreatedToken, NewToken, Revoked, RoleGrant, Token};
use wavegate_store::{Grant, Role, TokenKind};

use crate::http::auth::{Principal, mint};
use crate::http::convert::IntoApi;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, JsonBody};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, ReasonHeader, TooLarge, Unauthorized,
};
use crate::http::{reason, require_all_envs, scope};
use crate::state::AppState;

/// Token routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_tokens, create_token))
        .routes(api_routes!(revoke_token))
}

/// Mints a token; its secret is in the answer, this once. A principal already issued by someone
/// else cannot be minted by a third party.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "Tokens",
    params(ReasonHeader),
    request_body = NewToken,
    security(("bearer" = [])),
    responses((status = 201, description = "Minted; `token` is the secret", body = CreatedToken),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid))]
async fn create_token(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    p.require(&[TokenKind::Admin])?;
    let kind = TokenKind::parse(&body.kind).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!("unknown token kind {:?}; use admin, server-sdk or client-sdk", body.kind),
        )
    })?;
    // SDK tokens (for services) are the admin role's to mint; a person's own admin-kind token
    // anyone's, within the roles they hold (checked below).
    let p = match kind {
        TokenKind::Admin => p,
        TokenKind::ServerSdk | TokenKind::ClientSdk => p.require_admin()?,
    };
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
        // With an identity provider a person's own admin token acts as them.
        None if state.access.oidc.is_some() && kind == TokenKind::Admin => p.name().to_owned(),
        None => format!("{}-{}", p.name(), kind.as_str()),
    };
    // The caller's own name, or its default SDK names (`<me>-<kind>`), need no user
    // administration; anyone else's name, or granting user administration, does.
    let own = principal == p.name()
        || TokenKind::ALL.iter().any(|k| principal == format!("{}-{}", p.name(), k.as_str()));
    if body.user_admin && kind != TokenKind::Admin {
        return Err(ApiError::invalid(
            "user_admin",
            "only an admin token may hold user administration",
        ));
    }
    // A signed-in admin for every environment administers users (service accounts: people are
    // the identity provider's).
    let user_admin = p.0.user_admin
        || (state.access.oidc.is_some() && p.0.id.starts_with("ses_") && p.0.admin_everywhere());
    if (!own || body.user_admin) && !user_admin {
        let what = if own {
            "granting user administration".to_owned()
        } else {
            format!("issuing a token for another principal ({principal:?})")
        };
        return Err(ApiError::forbidden(format!(
            "{what} is user administration, which this token does not have; ask an admin who \
             has it (the bootstrap admin token does), or leave out the principal to mint your \
             own {}-{} token",
            p.name(),
            kind.as_str()
        )));
    }
    // With an identity provider, people are who it says: nobody mints a person's token in their
    // name (they sign in and mint their own); automation gets a service account, `svc:<name>`.
    if state.access.oidc.is_some()
        && kind == TokenKind::Admin
        && principal != p.name()
        && !principal.starts_with("svc:")
    {
        return Err(ApiError::forbidden(format!(
            "people sign in through the identity provider here, so a token in {principal:?}'s \
             name is theirs to mint after signing in; a token for automation is a service \
             account: name it svc:<name>"
        )));
    }
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
    if body.evaluate_only && kind != TokenKind::ServerSdk {
        return Err(ApiError::invalid(
            "evaluate_only",
            "only a server-sdk token can be evaluation-only (a client-sdk token already is)",
        ));
    }
    let expires_at = match &body.expires_at {
        None => None,
        Some(text) => {
            let at = chrono::DateTime::parse_from_rfc3339(text.trim())
                .map_err(|e| {
                    ApiError::invalid(
                        "expires_at",
                        format!(
                            "expires_at must be an RFC 3339 time like 2027-01-31T00:00:00Z ({e})"
                        ),
                    )
                })?
                .to_utc();
            let now = state.clock.now();
            if at <= now || at > now + chrono::Duration::days(5 * 366) {
                return Err(ApiError::invalid(
                    "expires_at",
                    "expires_at must be in the future and at most 5 years away",
                ));
            }
            Some(at)
        }
    };
    let roles = match kind {
        TokenKind::Admin => granted_roles(&p, &body.environments, body.roles.as_deref())?,
        TokenKind::ServerSdk | TokenKind::ClientSdk if body.roles.is_some() => {
            return Err(ApiError::invalid(
                "roles",
                "only an admin token holds roles (an SDK token's kind says what it may do)",
            ));
        }
        TokenKind::ServerSdk | TokenKind::ClientSdk => Vec::new(),
    };
    if body.user_admin && !roles.iter().any(|g| g.role == Role::Admin) {
        return Err(ApiError::invalid("user_admin", "user administration needs the admin role"));
    }
    let mut minted = mint(kind, body.environments, principal);
    minted.record.roles = roles;
    minted.record.user_admin = body.user_admin;
    minted.record.evaluate_only = body.evaluate_only;
    minted.record.expires_at = expires_at;
    let record =
        state.store.create_token(&minted.record, &state.change(&p.who(), reason(&headers))).await?;
    state.tokens.clear();
    let created = CreatedToken { record: (&record).into_api(), token: minted.secret };
    Ok((StatusCode::CREATED, Json(created)))
}

/// The roles a new admin-kind token holds: those asked for (each within the token's
/// environments), or, when none are, the creator's own within them. Every one must be a role
/// the creator holds wherever it is granted: nobody grants more than they have.
fn granted_roles(
    p: &Principal,
    environments: &[String],
    asked: Option<&[RoleGrant]>,
) -> ApiResult<Vec<Grant>> {
    let all = environments.iter().any(|e| e == "*");
    let Some(asked) = asked else {
        // The creator's roles, each narrowed to the new token's environments.
        let mut out: Vec<Grant> = Vec::new();
        for g in &p.0.roles {
            let envs: Vec<String> = if all {
                g.environments.clone()
            } else {
                environments.iter().filter(|e| g.covers(e)).cloned().collect()
            };
            if !envs.is_empty() {
                out.push(Grant { role: g.role, environments: envs });
            }
        }
        if out.is_empty() {
            return Err(ApiError::forbidden(format!(
                "{} holds no role in {}; a token cannot hold more than its creator",
                p.name(),
                environments.join(", ")
            )));
        }
        return Ok(out);
    };
    if asked.is_empty() {
        return Err(ApiError::invalid(
            "roles",
            "name at least one role (viewer, editor, releaser, approver, admin), or leave roles out to copy yours",
        ));
    }
    let mut out = Vec::new();
    for (i, g) in asked.iter().enumerate() {
        let field = format!("roles[{i}]");
        let role = Role::parse(g.role.trim()).ok_or_else(|| {
            ApiError::invalid(
                format!("{field}.role"),
                format!(
                    "unknown role {:?}; use viewer, editor, releaser, approver or admin",
                    g.role
                ),
            )
        })?;
        let envs =
            if g.environments.is_empty() { environments.to_vec() } else { g.environments.clone() };
        for e in &envs {
            if !(all || environments.contains(e)) {
                return Err(ApiError::invalid(
                    format!("{field}.environments"),
                    format!(
                        "{e:?} is not one of the token's environments ({})",
                        environments.join(", ")
                    ),
                ));
            }
            let held = p.0.holds(role, e);
            if !held {
                return Err(ApiError::forbidden(format!(
                    "{} may not grant the {} role in {e}: nobody grants a role they do not hold there",
                    p.name(),
                    role.as_str()
                )));
            }
        }
        out.push(Grant { role, environments: envs });
    }
    Ok(out)
}

/// Whether `t` is `p`'s own: it acts as `p`, or `p` issued it (its scripts' tokens).
fn owns(p: &Principal, t: &wavegate_store::TokenRecord) -> bool {
    t.principal == p.name() || t.created_by == p.name()
}

/// Every token, revoked ones included (never their secrets); an environment-scoped admin sees
/// the tokens whose scope lies within its own (the ones it may revoke); a person without the
/// admin role their own (those they act as or issued).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "Tokens",
    security(("bearer" = [])),
    responses((status = 200, description = "The tokens", body = Vec<Token>),
        Unauthorized, Forbidden))]
async fn list_tokens(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Vec<Token>>> {
    p.require(&[TokenKind::Admin])?;
    let tokens = state.store.tokens().await?;
    // An admin sees the tokens within its scope; anyone else their own.
    let admin = p.require_admin().ok();
    let visible = tokens.iter().filter(|t| match &admin {
        Some(a) => scope::token_visible(&a.0, t),
        None => owns(&p, t),
    });
    Ok(Json(visible.map(IntoApi::into_api).collect()))
}

/// Revokes a live token (not one with a wider scope than the caller's, and never the last
/// admin token for all environments: 409).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "Tokens",
    params(("id" = String, Path, description = "The token's id (`tok_…`)"), ReasonHeader),
    security(("bearer" = [])),
    responses((status = 200, description = "Revoked", body = Revoked),
        Unauthorized, Forbidden, NotFound, Conflict))]
async fn revoke_token(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Revoked>> {
    p.require(&[TokenKind::Admin])?;
    let target =
        state.store.tokens().await?.into_iter().find(|t| t.id == id && t.revoked_at.is_none());
    let Some(target) = target else {
        return Err(ApiError::not_found(format!("live token {id:?} not found")));
    };
    // Anyone may revoke their own tokens (a leaked one cannot wait for an admin); an admin
    // those within its scope.
    if !owns(&p, &target) {
        let admin = p.require_admin()?;
        if !scope::token_visible(&admin.0, &target) {
            return Err(ApiError::forbidden(
                "this token may not revoke a token with a wider scope",
            ));
        }
    }
    state.store.revoke_token(&id, &state.change(&p.who(), reason(&headers))).await?;
    state.tokens.clear();
    // Its open streams end now (other replicas end theirs as the feed tells them).
    if state.streams.live.revoke(&id) {
        tracing::info!(token = %id, "token revoked: ending its streams");
    }
    Ok(Json(Revoked { id, revoked: true }))
}
