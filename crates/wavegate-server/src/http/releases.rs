//! Coordinated releases over HTTP: `PUT /api/v1/releases/{name}` (the document),
//! `GET …/{name}` (with its run and members), `POST …/{name}/start` and `GET …/{name}/report`
//! (one timeline of every member and the release itself). Each needs access to every member's
//! environment; `service::releases` keeps them and runs them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::releases::{
    MemberStatus, ReleaseDoc, ReleaseEvent, ReleaseReport, ReleaseStatus,
};
use wavegate_core::text::escape_markdown;
use wavegate_rollout::release::{MemberState, ReleaseSpec};
use wavegate_store::{Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, JsonBody};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, ReasonHeader, TooLarge, Unauthorized,
    api_routes,
};
use crate::service::releases::{self, Stored};
use crate::state::AppState;

/// Release routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_releases))
        .routes(api_routes!(put_release, show_release))
        .routes(api_routes!(start_release))
        .routes(api_routes!(release_report))
}

/// The caller may act in every member's environment (a member that is no plan is a 404).
async fn require_members(state: &AppState, p: &Principal, spec: &ReleaseSpec) -> ApiResult<()> {
    for plan in releases::member_plans(state, spec).await? {
        p.require_env(&plan.environment)?;
    }
    Ok(())
}

async fn view(state: &AppState, name: &str, s: &Stored) -> ApiResult<ReleaseStatus> {
    let mut states = match &s.run {
        Some(run) => releases::member_states(state, run).await?,
        None => Default::default(),
    };
    let members = s
        .spec
        .members
        .iter()
        .map(|m| {
            let (st, rollout) = states.remove(&m.plan).unwrap_or((MemberState::Waiting, None));
            let (label, wave) = match st {
                MemberState::Waiting => ("waiting", None),
                MemberState::Live { wave, paused: true, .. } => ("paused", Some(wave as u64 + 1)),
                MemberState::Live { wave, .. } => ("running", Some(wave as u64 + 1)),
                MemberState::Completed => ("completed", None),
                MemberState::Failed { .. } => ("failed", None),
            };
            MemberStatus { plan: m.plan.clone(), state: label.into(), rollout, wave }
        })
        .collect();
    let run = s.run.as_ref();
    Ok(ReleaseStatus {
        name: name.to_owned(),
        doc: ReleaseDoc::from(&s.spec),
        version: s.version,
        state: run.map_or("draft".to_owned(), |r| r.state.clone()),
        started_by: run.map(|r| r.by.clone()),
        started_at: run.map(|r| r.at),
        failure: run.and_then(|r| r.failure.clone()),
        waiting: run.and_then(|r| r.waiting.clone()),
        members,
    })
}

/// Stores a release document: its members (stored plans), their order (`after`) and pace
/// (`with`), and what a member's failure does (`on_failure`). Refused while it runs.
#[utoipa::path(put, path = "/api/v1/releases/{name}", tag = "Releases",
    params(("name" = String, Path, description = "The release's name")),
    request_body = ReleaseDoc,
    security(("bearer" = [])),
    responses((status = 200, description = "Stored (or unchanged)", body = ReleaseStatus),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, Invalid))]
async fn put_release(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ReleaseDoc>,
) -> ApiResult<Json<ReleaseStatus>> {
    let p = p.acting_as(&[Role::Editor])?;
    wavegate_core::flag::validate_key(&name).map_err(|e| ApiError::invalid("name", e))?;
    let spec = body.into_spec(&name).map_err(|(field, m)| ApiError::invalid(&field, m))?;
    spec.validate().map_err(|(field, m)| ApiError::invalid(&field, m))?;
    require_members(&state, &p, &spec).await?;
    // Changing a release is a change in the environments of the members it had.
    if let Ok(old) = releases::get(&state, &name).await {
        require_members(&state, &p, &old.spec).await?;
    }
    releases::put(&state, spec, &p.who()).await?;
    let stored = releases::get(&state, &name).await?;
    Ok(Json(view(&state, &name, &stored).await?))
}

/// The releases whose every member is in the token's environments, by name.
#[utoipa::path(get, path = "/api/v1/releases", tag = "Releases",
    security(("bearer" = [])),
    responses((status = 200, description = "The releases", body = Vec<ReleaseStatus>),
        Unauthorized, Forbidden))]
async fn list_releases(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<ReleaseStatus>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let mut out = Vec::new();
    for (name, stored) in releases::list(&state).await? {
        // A member whose plan is gone, or in an environment the token lacks, leaves it out.
        let Ok(plans) = releases::member_plans(&state, &stored.spec).await else { continue };
        if plans.iter().all(|plan| p.0.allows_env(&plan.environment)) {
            out.push(view(&state, &name, &stored).await?);
        }
    }
    Ok(Json(out))
}

/// A release: its document, its run and each member's state.
#[utoipa::path(get, path = "/api/v1/releases/{name}", tag = "Releases",
    params(("name" = String, Path, description = "The release's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The release", body = ReleaseStatus),
        Unauthorized, Forbidden, NotFound))]
async fn show_release(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<ReleaseStatus>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let stored = releases::get(&state, &name).await?;
    require_members(&state, &p, &stored.spec).await?;
    Ok(Json(view(&state, &name, &stored).await?))
}

/// Starts a release: its first members now (you are every member's requester), the others as
/// the members they come after complete; a member's failure acts as `on_failure` says.
#[utoipa::path(post, path = "/api/v1/releases/{name}/start", tag = "Releases",
    params(("name" = String, Path, description = "The release's name"), ReasonHeader),
    security(("bearer" = [])),
    responses((status = 201, description = "Started", body = ReleaseStatus),
        Unauthorized, Forbidden, NotFound, Conflict))]
async fn start_release(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let p = p.acting_as(&[Role::Releaser])?;
    let stored = releases::get(&state, &name).await?;
    require_members(&state, &p, &stored.spec).await?;
    releases::start(&state, &name, &p.who(), crate::http::reason(&headers)).await?;
    let stored = releases::get(&state, &name).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &name, &stored).await?)).into_response())
}

/// A release's report: every member's audited events and the release's own on one timeline,
/// each member's outcome, and the same as Markdown.
#[utoipa::path(get, path = "/api/v1/releases/{name}/report", tag = "Releases",
    params(("name" = String, Path, description = "The release's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The report", body = ReleaseReport),
        Unauthorized, Forbidden, NotFound))]
async fn release_report(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<ReleaseReport>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let stored = releases::get(&state, &name).await?;
    require_members(&state, &p, &stored.spec).await?;
    let release = view(&state, &name, &stored).await?;
    let mut sources = vec![(format!("setting:{}{name}", releases::PREFIX), "release".to_owned())];
    for m in &release.members {
        if let Some(id) = &m.rollout {
            sources.push((format!("rollout:{id}"), m.plan.clone()));
        }
    }
    let mut rows = Vec::new();
    for (target, member) in sources {
        for a in state.store.audit_of(&target, 500).await? {
            rows.push((a, member.clone()));
        }
    }
    rows.sort_by_key(|(a, _)| a.entry.seq);
    let timeline: Vec<ReleaseEvent> = rows
        .into_iter()
        .map(|(a, member)| {
            let e: Value = serde_json::from_str(&a.entry.canonical).unwrap_or_default();
            ReleaseEvent {
                at: a.at,
                member,
                actor: a.actor,
                action: a.action,
                reason: e["reason"].as_str().map(str::to_owned),
            }
        })
        .collect();
    let markdown = markdown(&release, &timeline);
    Ok(Json(ReleaseReport { release, timeline, markdown }))
}

fn markdown(r: &ReleaseStatus, timeline: &[ReleaseEvent]) -> String {
    let mut md = format!("# Release report: {}\n\n**{}**", escape_markdown(&r.name), r.state);
    if let Some(by) = &r.started_by {
        md.push_str(&format!(", started by {}", escape_markdown(by)));
    }
    if let Some(f) = &r.failure {
        md.push_str(&format!(". {}", escape_markdown(f)));
    }
    md.push_str(".\n\n## Members\n\n| plan | state | rollout |\n|---|---|---|\n");
    for m in &r.members {
        let rollout = m.rollout.as_deref().map(escape_markdown).unwrap_or_else(|| "-".into());
        md.push_str(&format!("| {} | {} | {rollout} |\n", escape_markdown(&m.plan), m.state));
    }
    md.push_str("\n## Timeline\n\n");
    for e in timeline {
        let reason =
            e.reason.as_ref().map(|r| format!(": {}", escape_markdown(r))).unwrap_or_default();
        md.push_str(&format!(
            "- {} — [{}] {} by {}{reason}\n",
            escape_markdown(&e.at),
            escape_markdown(&e.member),
            escape_markdown(&e.action),
            escape_markdown(&e.actor)
        ));
    }
    md
}
