//! Plans and rollouts over HTTP: parse and authorise, call `service::{plans, rollouts}`, and
//! shape the answer.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;

use crate::http::json::{ApiPath as Path, ApiQuery as Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_rollout::machine::{Command, Rollout, State as RState};
use wavegate_store::{Kind, RolloutRow, TokenKind, VerdictRow};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::JsonBody;
use crate::service::{plans, rollouts};
use crate::state::AppState;

/// The JSON Schema of the plan format.
pub const PLAN_SCHEMA: &str = include_str!("../../../../docs/plan.schema.json");

/// Plan and rollout routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/schemas/plan.json",
            get(|| async {
                ([(axum::http::header::CONTENT_TYPE, "application/json")], PLAN_SCHEMA)
            }),
        )
        .route("/api/v1/plans", get(list_plans).post(apply_plan))
        .route("/api/v1/plans/{name}", get(get_plan))
        .route("/api/v1/plans/{name}/versions", get(plan_versions))
        .route("/api/v1/plans/{name}/drills", get(list_drills).post(record_drill))
        .route("/api/v1/rollouts", get(list_rollouts).post(start_rollout))
        .route("/api/v1/rollouts/{id}", get(get_rollout))
        .route("/api/v1/rollouts/{id}/verdicts", get(rollout_verdicts))
        .route("/api/v1/rollouts/{id}/{command}", post(rollout_command))
}

// ---------- plans ----------

async fn apply_plan(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    p.require_admin()?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("plan is not valid UTF-8"))?;
    let (plan, findings) = plans::parse(text)?;
    p.require_env(&plan.environment)?;
    let reason = crate::http::reason(&headers);
    let out = plans::apply(&state, &plan, &state.change(p.name(), reason)).await?;
    let warnings: Vec<Value> = findings.iter().map(|f| json!(f)).collect();
    let status = if out.changed && out.version == 1 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"name": out.name, "version": out.version, "changed": out.changed, "warnings": warnings}))).into_response())
}

async fn list_plans(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let heads: Vec<_> = state
        .store
        .list(Kind::Plan, false)
        .await?
        .into_iter()
        .filter(|h| h.spec["environment"].as_str().is_some_and(|e| p.0.allows_env(e)))
        .collect();
    Ok(Json(json!(heads.iter().map(|h| json!({"name": h.key, "version": h.version, "updated_at": h.updated_at, "updated_by": h.updated_by, "spec": h.spec})).collect::<Vec<_>>())))
}

async fn get_plan(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let h = state
        .store
        .get(Kind::Plan, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plan {name:?} not found")))?;
    p.require_env(h.spec["environment"].as_str().unwrap_or(""))?;
    Ok(Json(
        json!({"name": h.key, "version": h.version, "updated_at": h.updated_at, "updated_by": h.updated_by, "spec": h.spec}),
    ))
}

async fn plan_versions(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let v = state.store.versions(Kind::Plan, &name).await?;
    if v.is_empty() {
        return Err(ApiError::not_found(format!("plan {name:?} not found")));
    }
    Ok(Json(json!(v.iter().map(|v| json!({"version": v.version, "actor": v.actor, "action": v.action, "reason": v.reason, "created_at": v.created_at, "spec": v.spec})).collect::<Vec<_>>())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillBody {
    /// The plan as drilled (matched to a stored version by content).
    plan: Value,
    /// The drill report (`wavegate drill --json`).
    report: Value,
}

/// Records a drill as evidence for the stored plan version it rehearsed.
async fn record_drill(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<DrillBody>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let d = plans::record_drill(&state, &name, body.plan, body.report, p.name()).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": d.id, "plan": name, "plan_version": d.plan_version, "scenario": d.scenario, "passed": d.passed}))).into_response())
}

async fn list_drills(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let rows = state.store.drills(&name).await?;
    Ok(Json(json!(rows.iter().map(|d| json!({"id": d.id, "plan_version": d.plan_version, "scenario": d.scenario, "passed": d.passed, "at": d.at, "actor": d.actor, "report": d.report})).collect::<Vec<_>>())))
}

// ---------- rollouts ----------

/// The public view of a rollout.
pub fn rollout_dto(row: &RolloutRow, r: &Rollout) -> Value {
    let (phase, reason) = match &r.state {
        RState::Running { phase } => (Some(json!(phase)), None),
        RState::Paused { reason } | RState::RolledBack { reason } | RState::Aborted { reason } => {
            (None, Some(reason.clone()))
        }
        RState::Completed => (None, None),
    };
    // A stored rollout whose plan lacks its wave is shown, not a panic (`step` escalates it).
    let exposure = r.plan.waves.get(r.wave).map(|w| w.exposure.to_string());
    json!({
        "id": r.id,
        "plan": r.plan.name,
        "plan_version": r.plan_version,
        "flag": r.plan.flag,
        "environment": r.plan.environment,
        "release": {"name": r.plan.release.name, "version": r.plan.release.version, "risk": r.plan.release.risk},
        "team": r.plan.release.team,
        "service": r.plan.release.service,
        "regions": r.plan.release.regions,
        "state": r.state.name(),
        "phase": phase,
        "reason": reason,
        "wave": r.wave + 1,
        "waves": r.plan.waves.len(),
        "exposure": exposure,
        "requester": r.requester,
        "approvals": r.approvals,
        "approvals_needed": r.plan.approvals_needed(),
        "blackout": r.blackout,
        "pre_rollout_version": r.pre_rollout_version,
        "started_at": r.started_at,
        "wave_started_at": r.wave_started_at,
        "updated_at": row.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    plan: String,
    #[serde(default)]
    reason: Option<String>,
    /// Start later, at this time (RFC 3339): the start is scheduled and the controller starts
    /// it when due, with every start check run then.
    #[serde(default)]
    start_at: Option<String>,
    /// SHA-256 of the artifact being released, checked against the plan's release digest.
    #[serde(default)]
    artifact_sha256: Option<String>,
}

async fn start_rollout(
    State(state): State<AppState>,
    p: Principal,
    JsonBody(body): JsonBody<StartBody>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let (plan, _) = plans::get(&state, &body.plan).await?;
    p.require_env(&plan.environment)?;
    if let Some(at) = &body.start_at {
        let spec =
            crate::service::schedules::schedule(&state, p.name(), &body.plan, at, body.reason)
                .await?;
        return Ok((StatusCode::ACCEPTED, Json(json!({"scheduled": spec}))).into_response());
    }
    let req = rollouts::StartRequest {
        plan: body.plan,
        reason: body.reason,
        artifact_sha256: body.artifact_sha256,
    };
    let (row, r) = rollouts::start(&state, p.name(), req).await?;
    Ok((StatusCode::CREATED, Json(rollout_dto(&row, &r))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRollouts {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    flag: Option<String>,
}

async fn list_rollouts(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<ListRollouts>,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let mut out = Vec::new();
    for row in state.store.rollouts(false).await? {
        if q.state.as_ref().is_some_and(|s| *s != row.state)
            || q.environment.as_ref().is_some_and(|e| *e != row.environment)
            || q.flag.as_ref().is_some_and(|f| *f != row.flag)
            || !p.0.allows_env(&row.environment)
        {
            continue;
        }
        out.push(rollout_dto(&row, &crate::service::decode("rollout", &row.doc)?));
    }
    Ok(Json(json!(out)))
}

/// A rollout the principal may read, decoded (404 when it does not exist).
pub(crate) async fn load(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> ApiResult<(RolloutRow, Rollout)> {
    let (row, r) = rollouts::get(state, id).await?;
    p.require_env(&row.environment)?;
    Ok((row, r))
}

async fn get_rollout(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (row, r) = load(&state, &p, &id).await?;
    let mut dto = rollout_dto(&row, &r);
    let verdicts = state.store.verdicts(&id, 200).await?;
    let mut latest: Vec<&VerdictRow> = Vec::new();
    for v in &verdicts {
        if !latest.iter().any(|l| l.name == v.name && l.wave == v.wave) {
            latest.push(v);
        }
    }
    dto["verdicts"] = json!(latest.iter().map(|v| json!({"wave": v.wave + 1, "kind": v.kind, "name": v.name, "verdict": v.verdict, "at": v.at, "report": v.report})).collect::<Vec<_>>());
    if let Ok(card) =
        crate::service::scorecard::assessment(&state, &r.plan, r.plan_version, Some(&r), None).await
    {
        dto["scorecard"] = json!({"declared": card.declared, "go": card.go, "blocks": card.blocks,
            "not_green": card.not_green, "max_red": card.max_red, "items": card.items,
            "block_reason": card.block_reason()});
    }
    let aggs = state.store.aggregates(&id, r.wave as i64).await?;
    dto["signals"] = json!(aggs.iter().map(|a| json!({"arm": a.arm, "metric": a.metric, "n": a.n, "mean": if a.n > 0.0 { a.sum / a.n } else { 0.0 }, "last_at": a.last_at})).collect::<Vec<_>>());
    let sketches = state.store.sketches(&id, r.wave as i64).await?;
    dto["latency"] = json!(
        sketches
            .iter()
            .map(|sk| {
                let s = wavegate_rollout::sketch::Sketch::from_counts(sk.counts.clone());
                json!({"arm": sk.arm, "metric": sk.metric, "count": s.count(),
                   "p50": s.quantile(0.5), "p95": s.quantile(0.95), "p99": s.quantile(0.99)})
            })
            .collect::<Vec<_>>()
    );
    dto["runbook"] = json!(r.plan.runbook);
    Ok(Json(dto))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictQuery {
    #[serde(default)]
    wave: Option<i64>,
    #[serde(default = "verdict_limit")]
    limit: i64,
}

fn verdict_limit() -> i64 {
    10_000
}

/// Every stored verdict (oldest first) with the plan's guardrails, so a client can reproduce
/// each verdict from its stored inputs (`wavegate rollout explain`).
async fn rollout_verdicts(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<VerdictQuery>,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    if !(1..=100_000).contains(&q.limit) {
        return Err(ApiError::invalid("limit", "limit must be from 1 to 100000"));
    }
    let (_, r) = load(&state, &p, &id).await?;
    let mut rows = state.store.verdicts(&id, q.limit).await?;
    rows.reverse();
    let verdicts: Vec<Value> = rows
        .iter()
        .filter(|v| q.wave.is_none_or(|w| v.wave + 1 == w))
        .map(|v| json!({"wave": v.wave + 1, "kind": v.kind, "name": v.name, "verdict": v.verdict, "at": v.at, "report": v.report}))
        .collect();
    Ok(Json(
        json!({"id": id, "state": r.state.name(), "guardrails": r.plan.guardrails, "srm_alpha": r.plan.srm_alpha(), "verdicts": verdicts}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn rollout_command(
    State(state): State<AppState>,
    p: Principal,
    Path((id, cmd)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let cmd = match cmd.as_str() {
        "approve" => Command::Approve,
        "reject" => Command::Reject,
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "rollback" => Command::Rollback,
        other => {
            return Err(ApiError::not_found(format!(
                "unknown rollout command {other:?}; use approve, reject, pause, resume or rollback"
            )));
        }
    };
    let body: CommandBody = if body.iter().all(u8::is_ascii_whitespace) {
        CommandBody::default()
    } else {
        crate::http::json::parse_json(&body)?
    };
    let reason = body.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if matches!(cmd, Command::Pause | Command::Rollback | Command::Reject) && reason.is_none() {
        return Err(ApiError::invalid(
            "reason",
            "say why: pause, rollback and reject need a reason",
        ));
    }
    load(&state, &p, &id).await?;
    let actor = rollouts::Actor::person(p.name(), reason);
    let (row, next) = rollouts::command(&state, &id, &cmd, &actor).await?;
    Ok(Json(rollout_dto(&row, &next)))
}
