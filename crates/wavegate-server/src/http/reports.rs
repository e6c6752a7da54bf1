//! Reports: `GET /api/v1/reports/dora` — DORA metrics from the rollouts that ended in a period
//! (`wavegate_rollout::report`), as JSON, Markdown or HTML; `GET /api/v1/calendar` — the release
//! calendar (`wavegate_rollout::calendar`), as JSON or iCalendar.

use crate::http::openapi::api_routes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::reports::{
    Calendar, DoraReport, FeedbackAccepted, FeedbackBatch, FeedbackDigest, FeedbackItem,
    PostRolloutReport,
};
use wavegate_rollout::report::{DOCUMENT_FORMATS, Format, to_html, to_markdown};
use wavegate_rollout::retro;
use wavegate_store::TokenKind;

use crate::http::auth::Principal;
use crate::http::convert::IntoApi;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, NotFound, TooLarge, Unauthorized};
use crate::http::scope;
use crate::service::reports;
use crate::state::AppState;

/// Report routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(dora_report))
        .routes(api_routes!(calendar))
        .routes(api_routes!(post_feedback))
        .routes(api_routes!(feedback_digest))
        .routes(api_routes!(rollout_report))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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

/// DORA metrics of the rollouts that ended in a period, per service or team.
#[utoipa::path(get, path = "/api/v1/reports/dora", tag = "Reports",
    params(DoraQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The report", content(
            (DoraReport = "application/json"),
            (String = "text/markdown"),
            (String = "text/html"),
        )), BadRequest, Unauthorized, Forbidden, Invalid))]
async fn dora_report(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<DoraQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let format = format(q.format.as_deref(), &DOCUMENT_FORMATS)?;
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
    let allows = |e: &str| p.0.allows_env(e);
    let report =
        reports::dora_report(&state, allows, q.environment.as_deref(), (since, until), by_team)
            .await?;
    Ok(match format {
        Format::Markdown => document(format, to_markdown(&report)),
        Format::Html => document(format, to_html(&report)),
        _ => axum::Json(report).into_response(),
    })
}

/// The `format=` of a report, parsed (422 naming the allowed ones).
pub(crate) fn format(given: Option<&str>, allowed: &[Format]) -> ApiResult<Format> {
    Format::parse(given, allowed).map_err(|m| ApiError::invalid("format", m))
}

/// What a rendered report may do in a browser: show itself, with its inline style and inline
/// SVG charts. No script, no fetches, no forms, no frames, no loaded images.
pub const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A rendered report document with its content type, `X-Content-Type-Options: nosniff` (a
/// browser never takes Markdown or a calendar for HTML) and [`REPORT_CSP`].
pub(crate) fn document(format: Format, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, format.content_type()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, REPORT_CSP),
    ];
    (headers, body).into_response()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CalendarQuery {
    /// Days ahead to show (1–366, default 14).
    #[serde(default)]
    days: Option<i64>,
    /// `json` (default) or `ics`.
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/calendar`: live rollouts (to their earliest end), blackout windows of every
/// plan, the freeze, and conflicts between dependent services, as JSON or iCalendar.
#[utoipa::path(get, path = "/api/v1/calendar", tag = "Reports",
    params(CalendarQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The calendar", content(
            (Calendar = "application/json"),
            (String = "text/calendar"),
        )), BadRequest, Unauthorized, Forbidden, Invalid))]
async fn calendar(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<CalendarQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let format = format(q.format.as_deref(), &[Format::Json, Format::Ics])?;
    let days = q.days.unwrap_or(14);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid("days", "days must be 1 to 366"));
    }
    let now = state.clock.now();
    let entries = reports::calendar(&state, |e| p.0.allows_env(e), now, days).await?;
    let to = now + chrono::Duration::days(days);
    Ok(match format {
        Format::Ics => document(format, wavegate_rollout::calendar::to_ics(&entries, now)),
        _ => {
            let entries = entries.into_iter().map(IntoApi::into_api).collect();
            axum::Json(Calendar { from: now, to, entries }).into_response()
        }
    })
}

/// Most feedback items per request.
pub const MAX_FEEDBACK: usize = 1000;

/// One item, or `{"feedback": [...]}` (whose unknown fields are ignored).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum FeedbackBody {
    Many(FeedbackBatch),
    One(FeedbackItem),
}

/// The refusal of a release outside an environment-scoped token's environments.
fn not_yours(p: &Principal, release: &str) -> ApiError {
    ApiError::forbidden(format!(
        "release {release:?} has no plan or rollout in this token's environments ({})",
        p.0.environments.join(", ")
    ))
}

/// `POST /api/v1/feedback`: one item, or `{"feedback": [...]}`; validated whole. An
/// environment-scoped token posts about a release that has a plan or a rollout in its
/// environments, or none anywhere yet (never about another environment's release).
#[utoipa::path(post, path = "/api/v1/feedback", tag = "Reports",
    request_body(content = FeedbackBody, description = "One item, or 1 to 1000 as `{feedback: […]}`"),
    security(("bearer" = [])),
    responses((status = 201, description = "Stored", body = FeedbackAccepted),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid))]
async fn post_feedback(
    State(state): State<AppState>,
    p: Principal,
    crate::http::json::JsonBody(body): crate::http::json::JsonBody<FeedbackBody>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let items = match body {
        FeedbackBody::Many(batch) => batch.feedback,
        FeedbackBody::One(f) => vec![f],
    };
    if items.is_empty() || items.len() > MAX_FEEDBACK {
        return Err(ApiError::invalid("feedback", format!("send 1 to {MAX_FEEDBACK} items")));
    }
    let now = state.clock.now();
    let mut rows = Vec::with_capacity(items.len());
    for (i, f) in items.into_iter().enumerate() {
        let at = |field: &str| format!("feedback[{i}].{field}");
        for (field, v, max) in [
            ("release", &f.release, 128),
            ("category", &f.category, 64),
            ("cohort", &f.cohort, 64),
            ("text", &f.text, 4000),
        ] {
            if v.trim().is_empty() || v.len() > max {
                return Err(ApiError::invalid(
                    at(field),
                    format!("{field} must be 1 to {max} characters"),
                ));
            }
        }
        if !matches!(f.sentiment.as_str(), "positive" | "neutral" | "negative") {
            return Err(ApiError::invalid(
                at("sentiment"),
                "sentiment must be positive, neutral or negative",
            ));
        }
        rows.push(wavegate_store::FeedbackRow {
            id: 0,
            release: f.release.trim().to_owned(),
            category: f.category.trim().to_lowercase(),
            cohort: f.cohort.trim().to_owned(),
            sentiment: f.sentiment,
            body: f.text,
            at: now,
            principal: p.name().to_owned(),
            blocker: f.blocker,
            ..Default::default()
        });
    }
    // What is said about a release belongs to the environments it is rolled out in.
    let releases: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.release.as_str()).collect();
    for release in releases {
        let envs = scope::release_environments(&state, release).await?;
        if !scope::release_writable(&p.0, &envs) {
            return Err(not_yours(&p, release));
        }
    }
    let ids = state.store.add_feedback(&rows).await?;
    let accepted = FeedbackAccepted { accepted: ids.len() as u64, ids };
    Ok((axum::http::StatusCode::CREATED, axum::Json(accepted)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DigestQuery {
    /// The release (`name version`).
    release: String,
    /// `json` (default), `markdown` or `html`.
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/feedback/digest?release=…`: themes by category and cohort. An
/// environment-scoped token reads the digest of a release only when the release has a plan or
/// a rollout in one of its environments.
#[utoipa::path(get, path = "/api/v1/feedback/digest", tag = "Reports",
    params(DigestQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The digest", content(
            (FeedbackDigest = "application/json"),
            (String = "text/markdown"),
            (String = "text/html"),
        )), BadRequest, Unauthorized, Forbidden, Invalid))]
async fn feedback_digest(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<DigestQuery>,
) -> ApiResult<Response> {
    use wavegate_rollout::feedback::to_markdown;
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let format = format(q.format.as_deref(), &DOCUMENT_FORMATS)?;
    let envs = scope::release_environments(&state, &q.release).await?;
    if !scope::release_readable(&p.0, &envs) {
        return Err(not_yours(&p, &q.release));
    }
    let d = reports::feedback_digest(&state, &q.release).await?;
    Ok(match format {
        Format::Markdown => document(format, to_markdown(&q.release, &d)),
        Format::Html => {
            let figures = if d.overall.count == 0 {
                vec![]
            } else {
                vec![(
                    "Sentiment by category and cohort".to_owned(),
                    wavegate_rollout::feedback::sentiment_svg(&d),
                )]
            };
            let page = wavegate_rollout::report::markdown_page_with(
                &format!("Pilot feedback: {}", q.release),
                &to_markdown(&q.release, &d),
                &figures,
            );
            document(format, page)
        }
        _ => axum::Json(FeedbackDigest { release: q.release, digest: d }).into_response(),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RolloutReportQuery {
    /// `json` (default), `markdown` or `html` (with charts).
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/rollouts/{id}/report`: timeline, decisions with their verdicts, feedback
/// themes, adoption and retro prompts (JSON, Markdown or HTML with charts).
#[utoipa::path(get, path = "/api/v1/rollouts/{id}/report", tag = "Reports",
    params(("id" = String, Path, description = "The rollout's id"), RolloutReportQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The report", content(
            (PostRolloutReport = "application/json"),
            (String = "text/markdown"),
            (String = "text/html"),
        )), BadRequest, Unauthorized, Forbidden, NotFound, Invalid))]
async fn rollout_report(
    State(state): State<AppState>,
    p: Principal,
    crate::http::json::ApiPath(id): crate::http::json::ApiPath<String>,
    Query(q): Query<RolloutReportQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let format = format(q.format.as_deref(), &DOCUMENT_FORMATS)?;
    let (row, r) = crate::http::rollouts::load(&state, &p, &id).await?;
    let (report, figures) = reports::post_rollout_report(&state, &row, &r).await?;
    Ok(match format {
        Format::Markdown => document(format, retro::to_markdown(&report)),
        Format::Html => {
            let page = wavegate_rollout::report::markdown_page_with(
                &format!("Post-rollout report: {id}"),
                &retro::to_markdown(&report),
                &figures,
            );
            document(format, page)
        }
        _ => axum::Json(report).into_response(),
    })
}
