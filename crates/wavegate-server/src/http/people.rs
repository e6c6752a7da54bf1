//! Rolling out to people: feedback that closes (`GET /api/v1/feedback`,
//! `POST /api/v1/feedback/{id}/status`), success targets (`GET /api/v1/rollouts/{id}/success`)
//! and incidents and support tickets (`POST /api/v1/incidents` and the PagerDuty and Opsgenie
//! webhook shapes, `GET /api/v1/incidents`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::reports::{
    FeedbackEntry, FeedbackList, FeedbackStatusBody, Incident, IncidentBody, SuccessReport,
};
use wavegate_store::{FeedbackRow, IncidentRow, Kind, Role, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath, ApiQuery as Query, JsonBody};
use crate::http::openapi::{
    BadRequest, Forbidden, Invalid, NotFound, RateLimited, TooLarge, Unauthorized, api_routes,
};
use crate::http::scope;
use crate::service::incidents::{self, Report};
use crate::state::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_feedback))
        .routes(api_routes!(feedback_status))
        .routes(api_routes!(rollout_success))
        .routes(api_routes!(post_incident))
        .routes(api_routes!(pagerduty_incident))
        .routes(api_routes!(opsgenie_incident))
        .routes(api_routes!(list_incidents))
}

fn entry(f: FeedbackRow) -> FeedbackEntry {
    FeedbackEntry {
        id: f.id,
        release: f.release,
        category: f.category,
        cohort: f.cohort,
        sentiment: f.sentiment,
        text: f.body,
        at: f.at,
        blocker: f.blocker,
        status: f.status,
        resolution: f.resolution,
        fixed_in: f.fixed_in,
        closed_at: f.closed_at,
        closed_by: f.closed_by,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReleaseQuery {
    /// The release (`name`, or `name version`).
    release: String,
}

/// `GET /api/v1/feedback?release=…`: every item about a release with its status. Read as the
/// digest is: an environment-scoped token only for a release in one of its environments.
#[utoipa::path(get, path = "/api/v1/feedback", tag = "Reports",
    params(ReleaseQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The items", body = FeedbackList),
        BadRequest, Unauthorized, Forbidden))]
async fn list_feedback(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<ReleaseQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let envs = scope::release_environments(&state, &q.release).await?;
    if !scope::release_readable(&p.0, &envs) {
        return Err(ApiError::forbidden(format!(
            "release {:?} has no plan or rollout in this token's environments",
            q.release
        )));
    }
    let items = state.store.feedback(&q.release).await?.into_iter().map(entry).collect();
    Ok(axum::Json(FeedbackList { release: q.release, items }).into_response())
}

/// `POST /api/v1/feedback/{id}/status`: closes a feedback item as `fixed` (with the flag or plan
/// version that fixed it) or `wont_fix` (with a note), or reopens it; audited
/// (`feedback.status`). Editors and releasers of an environment the release is in.
#[utoipa::path(post, path = "/api/v1/feedback/{id}/status", tag = "Reports",
    params(("id" = i64, Path, description = "The item's id")),
    request_body = FeedbackStatusBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The item", body = FeedbackEntry),
        BadRequest, Unauthorized, Forbidden, NotFound, Invalid))]
async fn feedback_status(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<FeedbackStatusBody>,
) -> ApiResult<Response> {
    let p = p.acting_as(&[Role::Editor, Role::Releaser])?;
    let missing = || ApiError::not_found(format!("feedback item {id:?} not found"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    let item = state.store.feedback_item(id).await?.ok_or_else(missing)?;
    let envs = scope::release_environments(&state, &item.release).await?;
    // A release nobody plans yet is answered by whoever may act everywhere.
    if !(p.0.all_envs() || envs.iter().any(|e| p.0.allows_env(e))) {
        return Err(ApiError::forbidden(format!(
            "feedback item {id} is about release {:?}, which is not rolled out in this token's environments",
            item.release
        )));
    }
    let note = body.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.len() > 2000) {
        return Err(ApiError::invalid("note", "a note is at most 2000 characters"));
    }
    let fixed_in = match (body.status.as_str(), &body.fixed_in) {
        ("open", None) => None,
        ("open", Some(_)) => return Err(ApiError::invalid("fixed_in", "an open item has no fix")),
        ("wont_fix", Some(_)) => {
            return Err(ApiError::invalid("fixed_in", "a wont_fix item was not fixed by anything"));
        }
        ("fixed" | "wont_fix", _) if note.is_none() => {
            return Err(ApiError::invalid(
                "note",
                "say what was done (fixed) or why not (wont_fix): the note is what users are told",
            ));
        }
        ("fixed", Some(f)) => {
            let kind = match f.kind.as_str() {
                "flag" => Kind::Flag,
                "plan" => Kind::Plan,
                other => {
                    return Err(ApiError::invalid(
                        "fixed_in.kind",
                        format!("flag or plan, got {other:?}"),
                    ));
                }
            };
            if state.store.version(kind, &f.key, f.version).await?.is_none() {
                return Err(ApiError::invalid(
                    "fixed_in",
                    format!("{} {:?} has no version {}", f.kind, f.key, f.version),
                ));
            }
            Some(format!("{} {} v{}", f.kind, f.key, f.version))
        }
        ("fixed" | "wont_fix", None) => None,
        (other, _) => {
            return Err(ApiError::invalid(
                "status",
                format!("status is open, fixed or wont_fix, got {other:?}"),
            ));
        }
    };
    let status = wavegate_store::FeedbackStatus {
        status: body.status.clone(),
        resolution: note.map(str::to_owned),
        fixed_in,
    };
    let change = state.change(&p.who(), note.map(str::to_owned));
    let row = state
        .store
        .set_feedback_status(id, &status, &change)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("feedback item {id} not found")))?;
    Ok(axum::Json(entry(row)).into_response())
}

/// `GET /api/v1/rollouts/{id}/success`: the plan's success targets judged now — on track, at
/// risk, met, missed or unknown — with the estimate, its 95% interval and the numbers.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}/success", tag = "Reports",
    params(("id" = String, Path, description = "The rollout's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The targets", body = SuccessReport),
        Unauthorized, Forbidden, NotFound))]
async fn rollout_success(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (row, r) = crate::http::rollouts::load(&state, &p, &id).await?;
    let judged = crate::service::people::success(&state, &row, &r).await?;
    let all_met = wavegate_rollout::success::all_met(&judged);
    Ok(axum::Json(SuccessReport { rollout: id, targets: judged, all_met }).into_response())
}

/// Severities incidents are recorded with.
const SEVERITIES: [&str; 4] = wavegate_rollout::incidents::SEVERITIES;

/// Who may report incidents: a server-sdk token, or an admin token acting as a releaser; its
/// environments bound which rollouts an incident is attributed in.
fn reporter(state: &AppState, p: &Principal) -> ApiResult<Principal> {
    let p = if p.0.kind == TokenKind::ServerSdk {
        Principal(p.0.clone())
    } else {
        p.acting_as(&[Role::Releaser])?
    };
    // Each delivery (recorded or ignored) costs one event of the token's budget
    // (`serve --events-per-token`): an incident source cannot flood the store either.
    crate::http::events::spend_budget(state, &p, 1)?;
    Ok(p)
}

fn text(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > max {
        return Err(ApiError::invalid(field, format!("{field} must be 1 to {max} characters")));
    }
    Ok(v.to_owned())
}

/// An incident as reported: each text checked (1 to its limit) and named by the field it came
/// from, so a refusal says where.
struct Reported<'a> {
    source: &'static str,
    kind: String,
    external_id: (&'static str, &'a str),
    severity: String,
    service: &'a str,
    user: Option<(&'static str, &'a str)>,
    title: (&'static str, &'a str),
    at: chrono::DateTime<chrono::Utc>,
}

impl Reported<'_> {
    fn row(self, p: &Principal) -> ApiResult<IncidentRow> {
        Ok(IncidentRow {
            id: 0,
            source: self.source.into(),
            external_id: text(self.external_id.0, self.external_id.1, 128)?,
            kind: self.kind,
            severity: self.severity,
            service: text("service", self.service, 128)?,
            user: self.user.map(|(field, u)| text(field, u, 256)).transpose()?,
            title: text(self.title.0, self.title.1, 1000)?,
            at: self.at,
            principal: p.name().to_owned(),
            arms: Vec::new(),
        })
    }
}

async fn record(
    state: &AppState,
    p: &Principal,
    incident: IncidentRow,
    context: Option<Value>,
) -> ApiResult<Response> {
    let (row, new) =
        incidents::record(state, Report { incident, context }, |env| p.0.allows_env(env)).await?;
    let answer = incident_view(row, new, |_| true);
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(answer)).into_response())
}

/// An incident as the API shows it, with the arms of the rollouts `shown` lets through.
fn incident_view(row: IncidentRow, new: bool, shown: impl Fn(&str) -> bool) -> Incident {
    Incident {
        id: row.id,
        source: row.source,
        external_id: row.external_id,
        kind: row.kind,
        severity: row.severity,
        service: row.service,
        user: row.user,
        title: row.title,
        at: row.at,
        arms: row
            .arms
            .into_iter()
            .filter(|a| shown(&a.rollout))
            .map(|a| wavegate_api::reports::IncidentArm {
                rollout: a.rollout,
                wave: a.wave + 1,
                arm: a.arm,
            })
            .collect(),
        new,
    }
}

fn new_id() -> String {
    use rand::Rng;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("inc_{}", hex::encode(bytes))
}

/// `POST /api/v1/incidents`: records an incident or support ticket of a service. With a `user`
/// it is counted in the arm each live rollout of that service serves the user; without, it
/// counts toward the service's incident rate. A retry with the same `id` is stored once (200).
#[utoipa::path(post, path = "/api/v1/incidents", tag = "Rollouts",
    request_body = IncidentBody,
    security(("bearer" = [])),
    responses((status = 201, description = "Recorded", body = Incident),
        (status = 200, description = "Already recorded (the same id)", body = Incident),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid, RateLimited))]
async fn post_incident(
    State(state): State<AppState>,
    p: Principal,
    JsonBody(body): JsonBody<IncidentBody>,
) -> ApiResult<Response> {
    let p = reporter(&state, &p)?;
    if !SEVERITIES.contains(&body.severity.as_str()) {
        return Err(ApiError::invalid(
            "severity",
            format!("severity is one of {}, got {:?}", SEVERITIES.join(", "), body.severity),
        ));
    }
    let kind = body.kind.unwrap_or_else(|| "incident".into());
    if kind != "incident" && kind != "ticket" {
        return Err(ApiError::invalid("kind", "kind is incident or ticket"));
    }
    let generated = new_id();
    let incident = Reported {
        source: "api",
        kind,
        external_id: ("id", body.id.as_deref().unwrap_or(&generated)),
        severity: body.severity,
        service: &body.service,
        user: body.user.as_deref().map(|u| ("user", u)),
        title: ("title", &body.title),
        at: body.at.unwrap_or_else(|| state.clock.now()),
    }
    .row(&p)?;
    record(&state, &p, incident, body.context.map(Value::Object)).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct WebhookQuery {
    /// The service the incidents are about (a plan's `release.service`), when the payload's
    /// service is named differently.
    #[serde(default)]
    service: Option<String>,
}

/// What a webhook delivery that records nothing answers (202).
fn ignored(why: String) -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"ignored": why}))).into_response()
}

/// P1 → critical, P2 → high, P3 → medium, P4 and P5 → low.
fn priority(p: &str) -> Option<&'static str> {
    Some(match p.trim().to_ascii_uppercase().as_str() {
        "P1" => "critical",
        "P2" => "high",
        "P3" => "medium",
        "P4" | "P5" => "low",
        _ => return None,
    })
}

fn at_of(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    match v {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc()),
        Value::Number(n) => n.as_i64().and_then(chrono::DateTime::from_timestamp_millis),
        _ => None,
    }
}

/// `POST /api/v1/incidents/pagerduty`: a PagerDuty V3 webhook delivery
/// (`{"event": {"event_type": "incident.triggered", "data": {…}}}`). Triggered incidents are
/// recorded (priority P1–P5, else urgency, gives the severity; `?service=` names the service
/// when PagerDuty's differs); other event types are answered 202 and ignored. Send the token in
/// a custom header of the subscription.
#[utoipa::path(post, path = "/api/v1/incidents/pagerduty", tag = "Rollouts",
    params(WebhookQuery),
    request_body(content = Object, description = "A PagerDuty V3 webhook payload"),
    security(("bearer" = [])),
    responses((status = 201, description = "Recorded", body = Incident),
        (status = 200, description = "Already recorded", body = Incident),
        (status = 202, description = "Not an incident trigger: ignored", body = Object),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid, RateLimited))]
async fn pagerduty_incident(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<WebhookQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let p = reporter(&state, &p)?;
    let event = &body["event"];
    let kind = event["event_type"].as_str().ok_or_else(|| {
        ApiError::invalid("event.event_type", "not a PagerDuty V3 webhook: no event.event_type")
    })?;
    if kind != "incident.triggered" {
        return Ok(ignored(format!("{kind} is not recorded; only incident.triggered is")));
    }
    let data = &event["data"];
    let id = data["id"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("event.data.id", "the incident has no id"))?;
    let severity = data["priority"]["summary"]
        .as_str()
        .and_then(priority)
        .unwrap_or(if data["urgency"].as_str() == Some("high") { "high" } else { "low" });
    let service = q
        .service
        .as_deref()
        .or_else(|| data["service"]["summary"].as_str())
        .ok_or_else(|| ApiError::invalid("event.data.service", "no service: add ?service="))?;
    let incident = Reported {
        source: "pagerduty",
        kind: "incident".into(),
        external_id: ("event.data.id", id),
        severity: severity.into(),
        service,
        user: None,
        title: ("event.data.title", data["title"].as_str().unwrap_or("(untitled)")),
        at: at_of(&data["created_at"])
            .or_else(|| at_of(&event["occurred_at"]))
            .unwrap_or_else(|| state.clock.now()),
    }
    .row(&p)?;
    record(&state, &p, incident, None).await
}

/// `POST /api/v1/incidents/opsgenie`: an Opsgenie webhook delivery (`{"action": "Create",
/// "alert": {…}}`). Created alerts are recorded (priority P1–P5 gives the severity; the service
/// is `?service=`, else the alert's `details.service`, else its `entity`; `details.user`, when
/// present, names the user affected); other actions are answered 202 and ignored.
#[utoipa::path(post, path = "/api/v1/incidents/opsgenie", tag = "Rollouts",
    params(WebhookQuery),
    request_body(content = Object, description = "An Opsgenie webhook payload"),
    security(("bearer" = [])),
    responses((status = 201, description = "Recorded", body = Incident),
        (status = 200, description = "Already recorded", body = Incident),
        (status = 202, description = "Not an alert's creation: ignored", body = Object),
        BadRequest, Unauthorized, Forbidden, TooLarge, Invalid, RateLimited))]
async fn opsgenie_incident(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<WebhookQuery>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Response> {
    let p = reporter(&state, &p)?;
    let action = body["action"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("action", "not an Opsgenie webhook: no action"))?;
    if action != "Create" {
        return Ok(ignored(format!("{action} is not recorded; only Create is")));
    }
    let alert = &body["alert"];
    let id = alert["alertId"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("alert.alertId", "the alert has no alertId"))?;
    let details = &alert["details"];
    let service = q
        .service
        .as_deref()
        .or_else(|| details["service"].as_str())
        .or_else(|| alert["entity"].as_str())
        .ok_or_else(|| ApiError::invalid("alert.details.service", "no service: add ?service="))?;
    let incident = Reported {
        source: "opsgenie",
        kind: "incident".into(),
        external_id: ("alert.alertId", id),
        severity: alert["priority"].as_str().and_then(priority).unwrap_or("medium").into(),
        service,
        user: details["user"].as_str().map(|u| ("alert.details.user", u)),
        title: ("alert.message", alert["message"].as_str().unwrap_or("(untitled)")),
        at: at_of(&alert["createdAt"]).unwrap_or_else(|| state.clock.now()),
    }
    .row(&p)?;
    record(&state, &p, incident, None).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    /// Only this service's.
    #[serde(default)]
    service: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/incidents`: the latest incidents and tickets with where they count (rollouts
/// outside the token's environments left out of each).
#[utoipa::path(get, path = "/api/v1/incidents", tag = "Rollouts",
    params(IncidentQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Newest first", body = Vec<Incident>),
        BadRequest, Unauthorized, Forbidden))]
async fn list_incidents(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<IncidentQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be from 1 to 1000"));
    }
    let rows = state.store.incidents(q.service.as_deref(), limit).await?;
    // Each rollout an incident counts in is shown only within the token's environments.
    let mut envs: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        for a in &row.arms {
            if !envs.contains_key(&a.rollout) {
                let env = state.store.rollout(&a.rollout).await?.map(|r| r.environment);
                envs.insert(a.rollout.clone(), env);
            }
        }
        out.push(incident_view(row, false, |rollout| {
            envs[rollout].as_deref().is_some_and(|e| p.0.allows_env(e))
        }));
    }
    Ok(axum::Json(out).into_response())
}
