//! Adoption reports: `GET /api/v1/rollouts/{id}/adoption` — of the users served a rollout's new
//! variant in the last 30, 60 and 90 days, the share who did the key task, by cohort attribute,
//! lagging cohorts flagged (`wavegate_rollout::adoption`), as JSON, Markdown or HTML; and
//! `GET /api/v1/reports/adoption` — a summary of every rollout whose plan tracks adoption.
//!
//! Event ingest (`events.rs`) keeps the per-user rows these read.

use crate::http::openapi::api_routes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::reports::{AdoptionSummary, AdoptionSummaryItem, RolloutAdoption};
use wavegate_rollout::adoption::{WINDOWS, to_html, to_markdown};
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::report::{DOCUMENT_FORMATS, Format};
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, NotFound, Unauthorized};
use crate::service::reports;
use crate::state::AppState;

/// Adoption routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(rollout_adoption)).routes(api_routes!(adoption_summary))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AdoptionQuery {
    /// The window lagging cohorts are judged in: 30 (default), 60 or 90 days.
    #[serde(default)]
    window: Option<u32>,
    /// `json` (default), `markdown` or `html`.
    #[serde(default)]
    format: Option<String>,
}

fn window(w: Option<u32>) -> ApiResult<u32> {
    let w = w.unwrap_or(WINDOWS[0]);
    if WINDOWS.contains(&w) {
        Ok(w)
    } else {
        Err(ApiError::invalid("window", format!("window must be 30, 60 or 90 (days), got {w}")))
    }
}

/// `GET /api/v1/rollouts/{id}/adoption`: of the users served the new variant in the last 30,
/// 60 and 90 days, the share who did the key task, by cohort attribute, lagging cohorts flagged.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}/adoption", tag = "Reports",
    params(("id" = String, Path, description = "The rollout's id"), AdoptionQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The adoption report", content(
            (RolloutAdoption = "application/json"),
            (String = "text/markdown"),
            (String = "text/html"),
        )), BadRequest, Unauthorized, Forbidden, NotFound, Invalid))]
async fn rollout_adoption(
    State(state): State<AppState>,
    p: Principal,
    crate::http::json::ApiPath(id): crate::http::json::ApiPath<String>,
    Query(q): Query<AdoptionQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let lagging_window = window(q.window)?;
    let format = crate::http::reports::format(q.format.as_deref(), &DOCUMENT_FORMATS)?;
    let (row, r) = crate::http::rollouts::load(&state, &p, &id).await?;
    let (rep, about) = reports::adoption(&state, &row, &r, lagging_window).await?;
    let title = format!("{} ({}, {}, as of {})", about.release, id, row.environment, about.as_of);
    Ok(match format {
        Format::Markdown => crate::http::reports::document(format, to_markdown(&title, &rep)),
        Format::Html => crate::http::reports::document(format, to_html(&title, &rep)),
        _ => axum::Json(RolloutAdoption { about, report: rep }).into_response(),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    /// Only rollouts in this environment.
    #[serde(default)]
    environment: Option<String>,
    /// The window lagging cohorts are judged in (30, 60 or 90).
    #[serde(default)]
    window: Option<u32>,
    /// Also rollouts whose tracking period has ended (default false).
    #[serde(default)]
    all: Option<bool>,
}

/// Most rollouts a summary lists.
const SUMMARY_LIMIT: usize = 50;

/// `GET /api/v1/reports/adoption`: every rollout whose plan tracks adoption (newest first, still
/// tracking unless `all=true`) with its overall adoption per window and its lagging cohorts.
#[utoipa::path(get, path = "/api/v1/reports/adoption", tag = "Reports",
    params(SummaryQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The summary", body = AdoptionSummary),
        BadRequest, Unauthorized, Forbidden, Invalid))]
async fn adoption_summary(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let lagging_window = window(q.window)?;
    let mut out = Vec::new();
    for row in state.store.rollouts(false).await? {
        if out.len() >= SUMMARY_LIMIT {
            break;
        }
        if !p.0.allows_env(&row.environment)
            || q.environment.as_ref().is_some_and(|e| *e != row.environment)
            || row.doc.get("plan").and_then(|p| p.get("adoption")).is_none()
        {
            continue;
        }
        let Ok(r) = serde_json::from_value::<Rollout>(row.doc.clone()) else { continue };
        let (rep, about) = reports::adoption(&state, &row, &r, lagging_window).await?;
        if !about.tracking && q.all != Some(true) {
            continue;
        }
        out.push(AdoptionSummaryItem {
            about,
            key_task: rep.key_task,
            windows: rep.windows,
            lagging_window: rep.lagging_window,
            overall: rep.overall,
            lagging: rep.lagging,
        });
    }
    Ok(axum::Json(AdoptionSummary { rollouts: out }).into_response())
}
