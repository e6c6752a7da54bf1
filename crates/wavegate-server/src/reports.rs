//! Reports: `GET /api/v1/reports/dora` — DORA metrics from the rollouts that ended in a period
//! (`wavegate_rollout::report`), as JSON, Markdown or HTML.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::report::{Deployment, dora, to_html, to_markdown};
use wavegate_store::TokenKind;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery as Query;
use crate::state::AppState;

/// Report routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/reports/dora", get(dora_report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoraQuery {
    /// A span back from now (`30d`, default) or an RFC 3339 time.
    #[serde(default)]
    since: Option<String>,
    /// RFC 3339; default now.
    #[serde(default)]
    until: Option<String>,
    /// `service` (default) or `team`.
    #[serde(default)]
    by: Option<String>,
    /// Only rollouts in this environment (default: all the token may read).
    #[serde(default)]
    environment: Option<String>,
    /// `json` (default), `markdown` or `html`.
    #[serde(default)]
    format: Option<String>,
}

fn time(
    field: &str,
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    wavegate_rollout::duration::parse_span(s).map(|span| now - span.to_chrono()).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} must be a span like 30d or an RFC 3339 time, got {s:?}"),
        )
    })
}

async fn dora_report(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<DoraQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let now = state.clock.now();
    let since = time("since", q.since.as_deref().unwrap_or("30d"), now)?;
    let until = match &q.until {
        Some(u) => time("until", u, now)?,
        None => now,
    };
    if until <= since {
        return Err(ApiError::invalid("until", "until must be after since"));
    }
    let by_team = match q.by.as_deref().unwrap_or("service") {
        "service" => false,
        "team" => true,
        other => {
            return Err(ApiError::invalid(
                "by",
                format!("by must be service or team, got {other:?}"),
            ));
        }
    };
    let mut deployments = Vec::new();
    for row in state.store.rollouts(false).await? {
        if !p.0.allows_env(&row.environment)
            || q.environment.as_ref().is_some_and(|e| *e != row.environment)
        {
            continue;
        }
        let Ok(r) = serde_json::from_value::<Rollout>(row.doc.clone()) else { continue };
        deployments.extend(Deployment::of(&r, by_team, row.updated_at));
    }
    let report = dora(&deployments, since, until, if by_team { "team" } else { "service" });
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => axum::Json(report).into_response(),
        "markdown" => {
            ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], to_markdown(&report))
                .into_response()
        }
        "html" => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], to_html(&report)).into_response()
        }
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("format must be json, markdown or html, got {other:?}"),
            ));
        }
    })
}
