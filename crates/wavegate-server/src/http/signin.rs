//! `/auth/…`: signing people in through the OpenID Connect provider ([`crate::oidc`]).
//!
//! - `GET /auth/login` sends the browser to the provider (authorization code with PKCE, a
//!   `state` and a `nonce`), remembering them in a sealed, HttpOnly cookie for ten minutes.
//! - `GET /auth/callback` checks the state, trades the code for the ID token, verifies it,
//!   maps the person's groups to roles and opens a session: for the dashboard an HttpOnly,
//!   SameSite=Lax cookie (`wg_session`), for `wavegate login` a one-time code sent to the CLI's
//!   loopback address, which `POST /auth/cli/token` turns into the session's secret when shown
//!   the PKCE verifier the CLI began with.
//! - `POST /auth/logout` ends the caller's session.
//!
//! A session is a token of the admin kind (`ses_…`) that expires; `token list` shows it and an
//! admin may revoke it. Opening one is audited (`token.create`, its roles, "signed in through
//! <issuer>"), and so is ending it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::signin::{CliExchange, CliSession, SignInConfig, SignedOut};
use wavegate_store::{Grant, TokenKind};

use crate::http::auth::{Principal, SESSION_COOKIE, mint};
use crate::http::convert::{IntoApi, millis};
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiQuery as Query, JsonBody};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, ProviderUnavailable, TooLarge,
    Unauthorized, api_routes,
};
use crate::oidc::{self, Provider};
use crate::state::AppState;

/// The cookie that carries a sign-in across the provider's pages.
const LOGIN_COOKIE: &str = "wg_login";
/// How long a sign-in may take at the provider.
const LOGIN_MINUTES: i64 = 10;
/// How long the CLI's one-time code lasts.
const CLI_CODE_SECONDS: i64 = 120;

/// Sign-in routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(signin_config))
        .routes(api_routes!(login))
        .routes(api_routes!(callback))
        .routes(api_routes!(cli_token))
        .routes(api_routes!(logout))
}

fn provider(state: &AppState) -> ApiResult<&Provider> {
    state.access.oidc.as_deref().ok_or_else(|| {
        ApiError::not_found(
            "this server signs nobody in through an identity provider (serve --oidc-issuer); use a token",
        )
    })
}

/// Whether people sign in through an identity provider here, and where.
#[utoipa::path(get, path = "/auth/config", tag = "Sign-in",
    responses((status = 200, description = "The sign-in configuration", body = SignInConfig)))]
async fn signin_config(State(state): State<AppState>, headers: HeaderMap) -> Json<SignInConfig> {
    let oidc = state.access.oidc.as_deref();
    let session = match crate::http::auth::session_secret(&headers) {
        Some(secret) => state
            .tokens
            .lookup(&state, secret)
            .await
            .is_ok_and(|t| t.is_some_and(|t| t.id.starts_with("ses_"))),
        None => false,
    };
    Json(SignInConfig {
        oidc: oidc.is_some(),
        issuer: oidc.map(|p| p.config.issuer.clone()),
        login_url: oidc.map(|_| "/auth/login".to_owned()),
        session,
    })
}

/// Where a sign-in came from and goes back to.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LoginQuery {
    /// The dashboard path to return to (default `/`).
    #[serde(default)]
    return_to: Option<String>,
    /// `wavegate login`: the loopback port it listens on.
    #[serde(default)]
    cli_port: Option<u16>,
    /// `wavegate login`: the S256 challenge of its PKCE verifier.
    #[serde(default)]
    cli_challenge: Option<String>,
    /// `wavegate login`: its state, sent back to it.
    #[serde(default)]
    cli_state: Option<String>,
}

/// A sign-in in flight (sealed in the login cookie).
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    cli: Option<CliPending>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CliPending {
    port: u16,
    challenge: String,
    state: String,
}

/// What the CLI's one-time code stands for (sealed; it expires in two minutes).
#[derive(Debug, Serialize, Deserialize)]
struct CliCode {
    principal: String,
    roles: Vec<Grant>,
    groups: Vec<String>,
    challenge: String,
    via: String,
}

fn cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> String {
    let secure = state.access.oidc.as_deref().is_some_and(|p| p.config.secure_cookies());
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

fn redirect(to: &str, cookies: Vec<String>) -> Response {
    let mut headers: Vec<(header::HeaderName, String)> =
        cookies.into_iter().map(|c| (header::SET_COOKIE, c)).collect();
    headers.push((header::LOCATION, to.to_owned()));
    headers.push((header::CACHE_CONTROL, "no-store".to_owned()));
    (StatusCode::SEE_OTHER, AppendHeaders(headers)).into_response()
}

/// Starts a sign-in: to the provider's page, with a state, a nonce and a PKCE challenge.
#[utoipa::path(get, path = "/auth/login", tag = "Sign-in",
    params(LoginQuery),
    responses((status = 303, description = "To the provider's sign-in page"),
        BadRequest, NotFound, Invalid, ProviderUnavailable))]
async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> ApiResult<Response> {
    let p = provider(&state)?;
    let return_to = q.return_to.unwrap_or_else(|| "/".into());
    // Only a path of this server: never another site (an open redirect).
    if !return_to.starts_with('/') || return_to.starts_with("//") || return_to.contains('\\') {
        return Err(ApiError::invalid("return_to", "return_to is a path of this server, like /"));
    }
    let cli = match (q.cli_port, q.cli_challenge, q.cli_state) {
        (None, None, None) => None,
        (Some(port), Some(challenge), Some(cli_state)) => {
            let b64 =
                |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if port < 1024
                || challenge.len() != 43
                || !b64(&challenge)
                || cli_state.len() > 128
                || !b64(&cli_state)
            {
                return Err(ApiError::invalid(
                    "cli_port",
                    "a CLI sign-in names a loopback port (1024 or above), an S256 challenge and a state",
                ));
            }
            Some(CliPending { port, challenge, state: cli_state })
        }
        _ => {
            return Err(ApiError::invalid(
                "cli_port",
                "a CLI sign-in names cli_port, cli_challenge and cli_state together",
            ));
        }
    };
    let pending = Pending {
        state: oidc::random(),
        nonce: oidc::random(),
        verifier: oidc::random(),
        return_to,
        cli,
    };
    let url = p
        .authorize_url(&pending.state, &pending.nonce, &pending.verifier)
        .await
        .map_err(|e| ApiError::provider_unavailable(e.to_string()))?;
    let expires = state.clock.now() + chrono::Duration::minutes(LOGIN_MINUTES);
    let sealed = oidc::seal(&p.config, &pending, expires);
    let c = cookie(&state, LOGIN_COOKIE, &sealed, "/auth", LOGIN_MINUTES * 60);
    Ok(redirect(&url, vec![c]))
}

/// What the provider sends back.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    /// The authorization code.
    #[serde(default)]
    code: Option<String>,
    /// The state the sign-in began with.
    #[serde(default)]
    state: Option<String>,
    /// The provider's error, when it refused.
    #[serde(default)]
    error: Option<String>,
    /// Its explanation.
    #[serde(default)]
    error_description: Option<String>,
    /// The issuer that answered (RFC 9207), when the provider says.
    #[serde(default)]
    iss: Option<String>,
}

/// The provider's answer: checks it, verifies the ID token, opens a session (dashboard: a
/// cookie and back to the page; CLI: a one-time code to its loopback address).
#[utoipa::path(get, path = "/auth/callback", tag = "Sign-in",
    params(CallbackQuery),
    responses((status = 303, description = "Signed in: back to the dashboard, or to the CLI"),
        BadRequest, Unauthorized, Forbidden, NotFound, ProviderUnavailable))]

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> ApiResult<Response> {
    let p = provider(&state)?;
    let now = state.clock.now();
    let pending: Pending = cookie_value(&headers, LOGIN_COOKIE)
        .and_then(|c| oidc::open(&p.config, c, now))
        .ok_or_else(|| {
            ApiError::bad_request(
                "no sign-in in progress in this browser (or it took longer than ten minutes): start again at /auth/login",
            )
        })?;
    if q.state.as_deref() != Some(pending.state.as_str()) {
        return Err(ApiError::bad_request("the sign-in's state does not match: start again"));
    }
    // An answer from another provider (a mix-up) is refused.
    if q.iss.as_deref().is_some_and(|iss| iss != p.config.issuer) {
        return Err(ApiError::bad_request(
            "the answer names another issuer than this server's provider",
        ));
    }
    if let Some(e) = q.error {
        let why = q.error_description.unwrap_or_default();
        return Err(ApiError::unauthorized(format!("the identity provider refused: {e} {why}")));
    }
    let code = q
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| ApiError::bad_request("the provider sent no authorization code"))?;
    let id_token = p.exchange(&code, &pending.verifier).await.map_err(|e| {
        tracing::warn!(error = %e, "sign-in: code exchange failed");
        ApiError::unauthorized(format!("signing in failed: {e}"))
    })?;
    let claims = p.verify(&id_token, Some(&pending.nonce), now).await.map_err(|e| {
        tracing::warn!(error = %e, "sign-in: ID token refused");
        ApiError::unauthorized(format!("signing in failed: {e}"))
    })?;
    let (principal, groups) = oidc::person(&p.config, &claims);
    let roles = p.config.roles_for(&groups);
    // Microsoft Entra ID leaves the groups out when a person has too many ("overage"),
    // pointing at Graph instead: say so rather than "no groups".
    let overage = claims.get("_claim_names").and_then(|c| c.get(&p.config.groups_claim)).is_some()
        || claims.get("hasgroups").and_then(serde_json::Value::as_bool) == Some(true);
    if roles.is_empty() && overage {
        return Err(ApiError::forbidden(format!(
            "{principal} signed in, but the identity provider left their groups out of the ID token (too many to include); limit the groups claim to the groups wavegate maps (in Entra ID: \"Groups assigned to the application\")"
        )));
    }
    if roles.is_empty() {
        return Err(ApiError::forbidden(format!(
            "{principal} signed in, but none of their groups ({}) has a role here; ask an admin to map one (serve --oidc-role GROUP=ROLE)",
            if groups.is_empty() { "none".to_owned() } else { groups.join(", ") }
        )));
    }
    let clear = cookie(&state, LOGIN_COOKIE, "", "/auth", 0);
    match pending.cli {
        None => {
            let (secret, _) =
                open_session(&state, p, &principal, roles, groups, "dashboard").await?;
            let ttl = p.config.session_ttl.num_seconds();
            let session = cookie(&state, SESSION_COOKIE, &secret, "/", ttl);
            Ok(redirect(&pending.return_to, vec![clear, session]))
        }
        Some(cli) => {
            let code =
                CliCode { principal, roles, groups, challenge: cli.challenge, via: "cli".into() };
            let sealed =
                oidc::seal(&p.config, &code, now + chrono::Duration::seconds(CLI_CODE_SECONDS));
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &sealed)
                .append_pair("state", &cli.state)
                .finish();
            Ok(redirect(&format!("http://127.0.0.1:{}/callback?{query}", cli.port), vec![clear]))
        }
    }
}

/// Opens a session for `principal` with `roles`: a token of the admin kind (`ses_…`) that
/// expires after the session's lifetime; its secret and record.
async fn open_session(
    state: &AppState,
    p: &Provider,
    principal: &str,
    roles: Vec<Grant>,
    groups: Vec<String>,
    via: &str,
) -> ApiResult<(String, wavegate_store::TokenRecord)> {
    let mut envs: Vec<String> = Vec::new();
    for g in &roles {
        for e in &g.environments {
            if !envs.contains(e) {
                envs.push(e.clone());
            }
        }
    }
    if envs.iter().any(|e| e == "*") {
        envs = vec!["*".into()];
    }
    let mut minted = mint(TokenKind::Admin, envs, principal.to_owned());
    minted.record.id = minted.record.id.replacen("tok_", "ses_", 1);
    minted.record.roles = roles;
    minted.record.groups = groups;
    minted.record.expires_at = Some(state.clock.now() + p.config.session_ttl);
    let why = format!("signed in through {} ({via})", p.config.issuer);
    // The session's own entry: the person, signed in through the identity provider.
    let who = crate::service::Who {
        name: principal.to_owned(),
        via: Some(format!("oidc session {}", minted.record.id)),
    };
    let record = state.store.create_token(&minted.record, &state.change(&who, Some(why))).await?;
    state.tokens.clear();
    tracing::info!(principal, session = %record.id, via, "signed in");
    Ok((minted.secret, record))
}

/// Turns the CLI's one-time code into its session, given the PKCE verifier it began with.
#[utoipa::path(post, path = "/auth/cli/token", tag = "Sign-in",
    request_body = CliExchange,
    responses((status = 201, description = "The session; `token` is its secret", body = CliSession),
        BadRequest, Unauthorized, NotFound, TooLarge))]
async fn cli_token(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CliExchange>,
) -> ApiResult<(StatusCode, Json<CliSession>)> {
    let p = provider(&state)?;
    let code: CliCode = oidc::open(&p.config, &body.code, state.clock.now()).ok_or_else(|| {
        ApiError::unauthorized("the code is unknown or expired: run wavegate login again")
    })?;
    if oidc::challenge(&body.verifier) != code.challenge {
        return Err(ApiError::unauthorized("the verifier does not match the sign-in's challenge"));
    }
    let (secret, record) =
        open_session(&state, p, &code.principal, code.roles, code.groups, &code.via).await?;
    Ok((
        StatusCode::CREATED,
        Json(CliSession {
            token: secret,
            id: record.id.clone(),
            principal: record.principal.clone(),
            roles: record.roles.iter().map(IntoApi::into_api).collect(),
            expires_at: record.expires_at.map(millis).unwrap_or_default(),
        }),
    ))
}

/// Ends the caller's session (its cookie or its bearer secret), on every replica.
#[utoipa::path(post, path = "/auth/logout", tag = "Sign-in",
    security(("bearer" = [])),
    responses((status = 200, description = "Signed out", body = SignedOut),
        Unauthorized, Forbidden, Conflict))]
async fn logout(State(state): State<AppState>, p: Principal) -> ApiResult<Response> {
    if !p.0.id.starts_with("ses_") {
        return Err(ApiError::conflict(
            "this is an API token, not a sign-in: revoke it with wavegate token revoke",
        ));
    }
    let change = state.change(&p.who(), Some("signed out".into()));
    state.store.revoke_token(&p.0.id, &change).await?;
    state.tokens.clear();
    state.streams.live.revoke(&p.0.id);
    let mut provider_logout_url = None;
    if let Some(provider) = state.access.oidc.as_deref()
        && let Ok(d) = provider.discovery().await
        && let Some(end) = d.end_session_endpoint
    {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &provider.config.client_id)
            .finish();
        provider_logout_url =
            Some(format!("{end}{}{q}", if end.contains('?') { '&' } else { '?' }));
    }
    let body = SignedOut { id: p.0.id.clone(), provider_logout_url };
    let clear = cookie(&state, SESSION_COOKIE, "", "/", 0);
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The value of cookie `name` in the request, if it carries one.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}
