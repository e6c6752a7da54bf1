//! Adoption reports: `GET /api/v1/rollouts/{id}/adoption` — of the users served a rollout's new
//! variant in the last 30, 60 and 90 days, the share who did the key task, by cohort attribute,
//! lagging cohorts flagged (`wavegate_rollout::adoption`), as JSON, Markdown or HTML; and
//! `GET /api/v1/reports/adoption` — a summary of every rollout whose plan tracks adoption.
//!
//! Event ingest (`events.rs`) keeps the per-user rows these read.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_rollout::adoption::{AdoptionReport, WINDOWS, to_html, to_markdown};
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::report::{DOCUMENT_FORMATS, Format};
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::service::reports;
use crate::state::AppState;

/// Adoption routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rollouts/{id}/adoption", get(rollout_adoption))
        .route("/api/v1/reports/adoption", get(adoption_summary))
}

#[derive(Deserialize)]
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

fn with_about(report: &AdoptionReport, about: Value) -> Value {
    let mut out = about;
    if let (Value::Object(o), Ok(Value::Object(r))) = (&mut out, serde_json::to_value(report)) {
        o.extend(r);
    }
    out
}

/// `GET /api/v1/rollouts/{id}/adoption`.
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
    let title = format!(
        "{} ({}, {}, as of {})",
        about["release"].as_str().unwrap_or(""),
        id,
        row.environment,
        about["as_of"].as_str().unwrap_or("")
    );
    Ok(match format {
        Format::Markdown => crate::http::reports::document(format, to_markdown(&title, &rep)),
        Format::Html => crate::http::reports::document(format, to_html(&title, &rep)),
        _ => axum::Json(with_about(&rep, about)).into_response(),
    })
}

#[derive(Deserialize)]
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
        if about["tracking"] != true && q.all != Some(true) {
            continue;
        }
        let mut item = about;
        item["key_task"] = json!(rep.key_task);
        item["windows"] = json!(rep.windows);
        item["lagging_window"] = json!(rep.lagging_window);
        item["overall"] = json!(rep.overall);
        item["lagging"] = json!(rep.lagging);
        out.push(item);
    }
    Ok(axum::Json(json!({ "rollouts": out })).into_response())
}
