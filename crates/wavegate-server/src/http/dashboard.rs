//! The dashboard: a single-page app embedded in the binary (no CDN, works offline), the
//! `whoami` endpoint it signs in with, and server-rendered guardrail charts.
//!
//! The page itself is public (it holds no data); everything it shows comes from the API with
//! the token the user pasted, kept in the browser's `sessionStorage` and sent as an
//! `Authorization` header (never in a URL). Live updates come from `/api/v1/stream`, read with
//! `fetch` so the header can be sent.

use crate::http::openapi::api_routes;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::tokens::Whoami;
use wavegate_store::{Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::convert::IntoApi;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, ApiQuery as Query};
use crate::http::openapi::{BadRequest, Forbidden, NotFound, Unauthorized};
use crate::state::AppState;
use wavegate_rollout::chart::{guardrail_points, guardrail_svg};

const INDEX_HTML: &str = include_str!("../../dashboard/index.html");
const APP_JS: &str = include_str!("../../dashboard/app.js");
const APP_CSS: &str = include_str!("../../dashboard/app.css");

/// Content-Security-Policy of the dashboard: nothing from anywhere but this server.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Dashboard routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(dashboard))
        .routes(api_routes!(app_js))
        .routes(api_routes!(app_css))
        .routes(api_routes!(whoami))
        .routes(api_routes!(chart))
}

/// The dashboard's page (public: it holds no data; everything comes from the API).
#[utoipa::path(get, path = "/", tag = "Dashboard",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
async fn dashboard() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

/// The dashboard's script.
#[utoipa::path(get, path = "/assets/app.js", tag = "Dashboard",
    responses((status = 200, description = "The script", content_type = "text/javascript",
        body = String)))]
async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

/// The dashboard's style sheet.
#[utoipa::path(get, path = "/assets/app.css", tag = "Dashboard",
    responses((status = 200, description = "The style sheet", content_type = "text/css",
        body = String)))]
async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// Who the token belongs to and what it may do (the dashboard shows buttons accordingly).
#[utoipa::path(get, path = "/api/v1/whoami", tag = "Tokens",
    security(("bearer" = [])),
    responses((status = 200, description = "The token's principal, kind and scope", body = Whoami),
        Unauthorized))]
async fn whoami(p: Principal, headers: axum::http::HeaderMap) -> Json<Whoami> {
    let t = p.0;
    let csrf = crate::http::auth::session_secret(&headers).map(crate::http::auth::csrf_token);
    let signed_in = t.id.starts_with("ses_");
    let can_command = t.acting_as(&[Role::Releaser, Role::Approver]).is_some();
    Json(Whoami {
        principal: t.principal,
        kind: t.kind,
        environments: t.environments,
        token_id: t.id,
        can_command,
        expires_at: t.expires_at.map(crate::http::convert::millis),
        roles: t.roles.iter().map(IntoApi::into_api).collect(),
        signed_in,
        groups: t.groups.clone(),
        csrf,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ChartQuery {
    /// Only this wave (1-based); default: every wave.
    #[serde(default)]
    wave: Option<i64>,
}

/// `image/svg+xml` chart of one guardrail's verdicts over time.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}/guardrails/{name}/chart", tag = "Dashboard",
    params(("id" = String, Path, description = "The rollout's id"),
        ("name" = String, Path, description = "The guardrail's name"), ChartQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The chart", content_type = "image/svg+xml",
        body = String), BadRequest, Unauthorized, Forbidden, NotFound))]
async fn chart(
    State(state): State<AppState>,
    p: Principal,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<ChartQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (_, r) = crate::http::rollouts::load(&state, &p, &id).await?;
    let g = r.plan.guardrails.iter().find(|g| g.name == name).ok_or_else(|| {
        let names: Vec<&str> = r.plan.guardrails.iter().map(|g| g.name.as_str()).collect();
        ApiError::not_found(format!(
            "rollout {id} has no guardrail {name:?}; it has: {}",
            names.join(", ")
        ))
    })?;
    let mut rows = state.store.verdicts(&id, 20_000).await?;
    rows.reverse();
    let verdicts: Vec<_> = rows.iter().map(crate::service::reports::verdict).collect();
    let points = guardrail_points(&verdicts, &name, q.wave);
    let svg = guardrail_svg(&name, g.tolerance, &points);
    let mut resp = svg.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Opened on its own, an SVG is a document that could run script: it may not.
    let csp = HeaderValue::from_static(crate::http::reports::REPORT_CSP);
    resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}
