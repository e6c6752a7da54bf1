//! Plans and rollouts over HTTP, and [`persist`]: carrying the state machine's actions out
//! against the store in one transaction (shared by people's commands and the controller).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;

use crate::json::{ApiPath as Path, ApiQuery as Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_core::spec::FlagSpec;
use wavegate_rollout::exposure::with_rollout_rules;
use wavegate_rollout::lint::{Severity, lint};
use wavegate_rollout::machine::{self, Action, Command, Rollout, State as RState};
use wavegate_rollout::plan::{CheckWhen, PlanSpec};
use wavegate_store::{Kind, Put, RolloutRow, RolloutWrite, TokenKind, VerdictRow};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::json::JsonBody;
use crate::state::AppState;

/// The JSON Schema of the plan format.
pub const PLAN_SCHEMA: &str = include_str!("../../../docs/plan.schema.json");

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

/// Validates a parsed plan against what the store holds (flag, variants, environment, segments).
async fn check_plan_against_store(state: &AppState, plan: &PlanSpec) -> ApiResult<FlagSpec> {
    let envs = state.snapshot.load().environments.clone();
    if !envs.contains(&plan.environment) {
        return Err(ApiError::invalid(
            "environment",
            format!("unknown environment {:?}; known: {}", plan.environment, envs.join(", ")),
        ));
    }
    let head = state.store.get(Kind::Flag, &plan.flag).await?.filter(|h| !h.archived).ok_or_else(
        || {
            ApiError::invalid(
                "flag",
                format!("flag {:?} does not exist (or is archived)", plan.flag),
            )
        },
    )?;
    let flag: FlagSpec = serde_json::from_value(head.spec).map_err(ApiError::internal)?;
    for (field, v) in
        [("new_variant", &plan.new_variant), ("control_variant", &plan.control_variant)]
    {
        if !flag.variants.contains_key(v) {
            return Err(ApiError::invalid(
                field,
                format!("flag {:?} has no variant {v:?}", plan.flag),
            ));
        }
    }
    for (i, e) in plan.promotion_path.iter().enumerate() {
        if !envs.contains(e) {
            return Err(ApiError::invalid(
                format!("promotion_path[{i}]"),
                format!("unknown environment {e:?}; known: {}", envs.join(", ")),
            ));
        }
    }
    let segments: Vec<String> =
        state.store.list(Kind::Segment, false).await?.into_iter().map(|h| h.key).collect();
    for (i, w) in plan.waves.iter().enumerate() {
        for s in &w.segments {
            if !segments.contains(s) {
                return Err(ApiError::invalid(
                    format!("waves[{i}].segments"),
                    format!("unknown segment {s:?}"),
                ));
            }
        }
    }
    Ok(flag)
}

async fn apply_plan(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    p.require_admin()?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("plan is not valid UTF-8"))?;
    let (plan, findings) = lint(text);
    if let Some(e) = findings.iter().find(|f| f.severity == Severity::Error) {
        let field = e.line.map(|l| format!("line {l}, column {}", e.column.unwrap_or(0)));
        return Err(ApiError {
            field,
            ..ApiError::bad_request(format!("plan does not lint ({}): {}", e.code, e.message))
        });
    }
    let plan = plan.ok_or_else(|| ApiError::bad_request("plan does not parse"))?;
    p.require_env(&plan.environment)?;
    check_plan_against_store(&state, &plan).await?;
    let spec = serde_json::to_value(&plan).map_err(ApiError::internal)?;
    let put = Put {
        kind: Kind::Plan,
        key: plan.name.clone(),
        spec,
        archived: false,
        expected_version: None,
        action: None,
        details: json!({}),
    };
    let reason = headers
        .get(crate::admin::REASON_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let out = state.store.apply(&[put], &state.change(p.name(), reason)).await?;
    let warnings: Vec<Value> = findings.iter().map(|f| json!(f)).collect();
    let status =
        if out[0].changed && out[0].version == 1 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"name": plan.name, "version": out[0].version, "changed": out[0].changed, "warnings": warnings}))).into_response())
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
    let drilled: PlanSpec = serde_json::from_value(body.plan)
        .map_err(|e| ApiError::invalid("plan", format!("not a plan: {e}")))?;
    if drilled.name != name {
        return Err(ApiError::invalid(
            "plan",
            format!("the drilled plan is {:?}, not {name:?}", drilled.name),
        ));
    }
    let drilled = serde_json::to_value(&drilled).map_err(ApiError::internal)?;
    let versions = state.store.versions(Kind::Plan, &name).await?;
    let version = versions.iter().rev().find(|v| v.spec == drilled).ok_or_else(|| {
        ApiError::conflict(format!(
            "no stored version of plan {name:?} matches the drilled file; `plan apply` it first"
        ))
    })?;
    let passed =
        body.report.get("passed").and_then(Value::as_bool).ok_or_else(|| {
            ApiError::invalid("report.passed", "the report has no boolean `passed`")
        })?;
    let scenario =
        body.report.get("scenario").and_then(Value::as_str).unwrap_or("unnamed").to_owned();
    let row = wavegate_store::DrillRow {
        id: 0,
        plan: name.clone(),
        plan_version: version.version,
        scenario: scenario.clone(),
        passed,
        report: body.report,
        at: state.clock.now(),
        actor: p.name().to_owned(),
    };
    let id = state.store.add_drill(&row, &state.change(p.name(), None)).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "plan": name, "plan_version": version.version, "scenario": scenario, "passed": passed}))).into_response())
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

fn decode(row: &RolloutRow) -> ApiResult<Rollout> {
    serde_json::from_value(row.doc.clone()).map_err(ApiError::internal)
}

/// The public view of a rollout.
pub fn rollout_dto(row: &RolloutRow, r: &Rollout) -> Value {
    let (phase, reason) = match &r.state {
        RState::Running { phase } => (Some(json!(phase)), None),
        RState::Paused { reason } | RState::RolledBack { reason } | RState::Aborted { reason } => {
            (None, Some(reason.clone()))
        }
        RState::Completed => (None, None),
    };
    let wave = &r.plan.waves[r.wave];
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
        "exposure": wave.exposure.to_string(),
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
pub(crate) struct StartBody {
    pub(crate) plan: String,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// Start later, at this time (RFC 3339): the start is scheduled and the controller starts
    /// it when due, with every start check run then.
    #[serde(default)]
    pub(crate) start_at: Option<String>,
    /// SHA-256 of the artifact being released, checked against the plan's release digest.
    #[serde(default)]
    pub(crate) artifact_sha256: Option<String>,
}

async fn start_rollout(
    State(state): State<AppState>,
    p: Principal,
    JsonBody(body): JsonBody<StartBody>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let head = state
        .store
        .get(Kind::Plan, &body.plan)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plan {:?} not found", body.plan)))?;
    let plan: PlanSpec = serde_json::from_value(head.spec).map_err(ApiError::internal)?;
    p.require_env(&plan.environment)?;
    if let Some(at) = &body.start_at {
        return crate::schedule::schedule(&state, &p, &body.plan, at, body.reason.clone()).await;
    }
    let (row, r) = start_plan(&state, p.name(), body).await?;
    Ok((StatusCode::CREATED, Json(rollout_dto(&row, &r))).into_response())
}

/// Starts plan `body.plan` now, as `requester`: every start check (artifact digest, flag,
/// promotion path, freeze, scorecard, before-start checks), then the first exposure. Shared by
/// `POST /api/v1/rollouts` and scheduled starts.
pub(crate) async fn start_plan(
    state: &AppState,
    requester: &str,
    body: StartBody,
) -> ApiResult<(RolloutRow, Rollout)> {
    let state = state.clone();
    let head = state
        .store
        .get(Kind::Plan, &body.plan)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plan {:?} not found", body.plan)))?;
    let plan: PlanSpec = serde_json::from_value(head.spec).map_err(ApiError::internal)?;
    if let Some(got) = &body.artifact_sha256 {
        let Some(want) = &plan.release.artifact_sha256 else {
            return Err(ApiError::invalid(
                "artifact_sha256",
                "the plan declares no release.artifact_sha256 to check against",
            ));
        };
        if !got.eq_ignore_ascii_case(want) {
            return Err(ApiError::conflict(format!(
                "artifact digest mismatch: the artifact is {got}, the release declares {want}; refusing to start"
            )));
        }
    }
    let flag = check_plan_against_store(&state, &plan).await?;
    if !flag.environments.get(&plan.environment).is_some_and(|e| e.enabled) {
        return Err(ApiError::conflict(format!(
            "flag {:?} is disabled in {}; enable it before rolling out",
            plan.flag, plan.environment
        )));
    }
    let _guard = state.rollout_lock.lock().await;
    let flag_head = state
        .store
        .get(Kind::Flag, &plan.flag)
        .await?
        .ok_or_else(|| ApiError::not_found("flag"))?;
    let mut id_bytes = [0u8; 5];
    rand::rng().fill_bytes(&mut id_bytes);
    let id = format!("ro_{}", hex::encode(id_bytes));
    let now = state.clock.now();
    let (r, mut actions) =
        machine::start(id, plan, head.version, requester.to_owned(), flag_head.version, now)
            .map_err(|e| ApiError::conflict(e.to_string()))?;
    // The promotion path: the same release must have completed in each earlier environment.
    if !r.plan.promotion_path.is_empty() {
        let rows = state.store.rollouts(false).await?;
        let done = |env: &str| {
            rows.iter().any(|row| {
                row.environment == env
                    && row.state == "completed"
                    && serde_json::from_value::<wavegate_rollout::machine::Rollout>(row.doc.clone())
                        .is_ok_and(|done| {
                            done.plan.release.name == r.plan.release.name
                                && done.plan.release.version == r.plan.release.version
                        })
            })
        };
        let missing: Vec<&str> =
            r.plan.promotion_path.iter().map(String::as_str).filter(|e| !done(e)).collect();
        if !missing.is_empty() {
            return Err(ApiError::conflict(format!(
                "release {} {} has not completed in {} (its promotion path); roll it out there first",
                r.plan.release.name,
                r.plan.release.version,
                missing.join(", ")
            )));
        }
    }
    if let Some(why) = crate::freeze::active(&state).await? {
        return Err(ApiError::conflict(format!(
            "a global freeze is on ({why}); no rollout starts until it is lifted"
        )));
    }
    // A declared go/no-go scorecard must say go.
    let card =
        crate::scorecard::assessment(&state, &r.plan, r.plan_version, Some(&r), None).await?;
    if let Some(why) = card.block_reason() {
        return Err(ApiError::conflict(format!("{why}; refusing to start")));
    }
    let before = crate::checks::run(&state.http, &r, CheckWhen::BeforeStart).await;
    if let Some(f) = before.iter().find(|o| !o.passed) {
        return Err(ApiError::conflict(format!(
            "check {:?} failed before the start: {}",
            f.spec.name, f.evidence
        )));
    }
    actions.extend(before.into_iter().map(|o| record(&r, o)));
    let row = persist(&state, None, &r, actions, requester, body.reason).await?;
    after_exposure(&state, row, r).await
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
        out.push(rollout_dto(&row, &decode(&row)?));
    }
    Ok(Json(json!(out)))
}

/// A rollout the principal may read, decoded (404 when it does not exist).
pub(crate) async fn load(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> ApiResult<(RolloutRow, Rollout)> {
    let row = state
        .store
        .rollout(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("rollout {id:?} not found")))?;
    p.require_env(&row.environment)?;
    let r = decode(&row)?;
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
        crate::scorecard::assessment(&state, &r.plan, r.plan_version, Some(&r), None).await
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
        crate::json::parse_json(&body)?
    };
    let reason = body.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if matches!(cmd, Command::Pause | Command::Rollback | Command::Reject) && reason.is_none() {
        return Err(ApiError::invalid(
            "reason",
            "say why: pause, rollback and reject need a reason",
        ));
    }
    let _guard = state.rollout_lock.lock().await;
    let (row, r) = load(&state, &p, &id).await?;
    let now = state.clock.now();
    let (next, actions) =
        machine::command(&r, now, &cmd, p.name(), reason.as_deref()).map_err(|e| match e {
            machine::CommandError::NotAllowed(m) => ApiError::forbidden(m),
            other => ApiError::conflict(other.to_string()),
        })?;
    let row = persist(&state, Some(&row), &next, actions, p.name(), reason).await?;
    Ok(Json(rollout_dto(&row, &next)))
}

/// A check's result as an action to record.
pub fn record(r: &Rollout, o: crate::checks::CheckOutcome) -> Action {
    Action::RecordCheck { wave: r.wave, name: o.spec.name, passed: o.passed, evidence: o.evidence }
}

/// Runs the smoke checks after an exposure change; a failure carries out the check's action.
pub async fn after_exposure(
    state: &AppState,
    row: RolloutRow,
    r: Rollout,
) -> ApiResult<(RolloutRow, Rollout)> {
    if !matches!(r.state, RState::Running { .. }) {
        return Ok((row, r));
    }
    let outcomes = crate::checks::run(&state.http, &r, CheckWhen::AfterExposure).await;
    if outcomes.is_empty() {
        return Ok((row, r));
    }
    let failed = outcomes
        .iter()
        .find(|o| !o.passed)
        .map(|o| (o.spec.name.clone(), o.spec.action, o.evidence.clone()));
    let records: Vec<Action> = outcomes.into_iter().map(|o| record(&r, o)).collect();
    let (next, mut actions) = match failed {
        Some((name, action, evidence)) => {
            machine::check_failed(&r, state.clock.now(), &name, action, evidence)
        }
        None => (r.clone(), Vec::new()),
    };
    actions.extend(records);
    let row = persist(state, Some(&row), &next, actions, "controller", None).await?;
    Ok((row, next))
}

/// Carries `actions` out together with the new rollout state, in one store transaction, then
/// refreshes what evaluation and event routing read. `prev` is the row read (None: new).
pub async fn persist(
    state: &AppState,
    prev: Option<&RolloutRow>,
    r: &Rollout,
    actions: Vec<Action>,
    actor: &str,
    reason: Option<String>,
) -> ApiResult<RolloutRow> {
    persist_fenced(state, prev, r, actions, actor, reason, None).await
}

/// [`persist`] for the controller: refused if this replica's leadership `leader_epoch` has
/// been superseded, so a deposed leader cannot write.
pub async fn persist_fenced(
    state: &AppState,
    prev: Option<&RolloutRow>,
    r: &Rollout,
    actions: Vec<Action>,
    actor: &str,
    reason: Option<String>,
    leader_epoch: Option<i64>,
) -> ApiResult<RolloutRow> {
    let now = state.clock.now();
    let target = format!("rollout:{}", r.id);
    let mut flag_put = None;
    let mut verdicts = Vec::new();
    let mut audit = Vec::new();
    for a in actions {
        match a {
            Action::SetExposure { wave } => {
                let head = state
                    .store
                    .get(Kind::Flag, &r.plan.flag)
                    .await?
                    .ok_or_else(|| ApiError::conflict("the rollout's flag is gone"))?;
                let spec: FlagSpec =
                    serde_json::from_value(head.spec).map_err(ApiError::internal)?;
                let next = with_rollout_rules(&spec, &r.plan, &r.id, wave);
                // Never write a flag version that evaluation could not compile.
                let segments = crate::admin::live_segments(&*state.store).await?;
                let envs = state.snapshot.load().environments.clone();
                wavegate_core::Flag::validate(
                    &r.plan.flag,
                    &next,
                    &envs,
                    &segments,
                    &wavegate_core::SpecPath::root(&r.plan.flag),
                )
                .map_err(|e| {
                    ApiError::conflict(format!("wave {} cannot be exposed: {e}", wave + 1))
                })?;
                flag_put = Some(Put {
                    kind: Kind::Flag,
                    key: r.plan.flag.clone(),
                    spec: serde_json::to_value(next).map_err(ApiError::internal)?,
                    archived: false,
                    expected_version: Some(head.version),
                    action: Some("rollout".into()),
                    details: json!({"rollout": r.id, "wave": wave + 1, "exposure": r.plan.waves[wave].exposure.to_string()}),
                });
            }
            Action::RestoreFlag { version } => {
                let v = state.store.version(Kind::Flag, &r.plan.flag, version).await?.ok_or_else(
                    || {
                        ApiError::internal(format!(
                            "pre-rollout version {version} of {} is missing",
                            r.plan.flag
                        ))
                    },
                )?;
                flag_put = Some(Put {
                    kind: Kind::Flag,
                    key: r.plan.flag.clone(),
                    spec: v.spec,
                    archived: v.archived,
                    expected_version: None,
                    action: Some("revert".into()),
                    details: json!({"rollout": r.id, "reverted_to": version}),
                });
            }
            Action::RecordVerdict { wave, report } => verdicts.push(VerdictRow {
                id: 0,
                rollout: r.id.clone(),
                wave: wave as i64,
                kind: "guardrail".into(),
                name: report.guardrail.clone(),
                verdict: report.verdict.as_str().into(),
                report: json!(report),
                at: now,
            }),
            Action::RecordSrm { wave, report } => verdicts.push(VerdictRow {
                id: 0,
                rollout: r.id.clone(),
                wave: wave as i64,
                kind: "srm".into(),
                name: "srm".into(),
                verdict: if report.mismatch { "mismatch".into() } else { "ok".into() },
                report: json!(report),
                at: now,
            }),
            Action::RecordCheck { wave, name, passed, evidence } => verdicts.push(VerdictRow {
                id: 0,
                rollout: r.id.clone(),
                wave: wave as i64,
                kind: "check".into(),
                name,
                verdict: if passed { "pass".into() } else { "fail".into() },
                report: evidence,
                at: now,
            }),
            Action::RequestApproval { wave, needed } => {
                tracing::info!(rollout = %r.id, wave = wave + 1, needed, "approval requested");
            }
            Action::Escalate { reason } => {
                tracing::warn!(rollout = %r.id, %reason, "rollout escalated");
            }
            Action::Audit { action, details } => audit.push((action, target.clone(), details)),
        }
    }
    let row = RolloutRow {
        id: r.id.clone(),
        plan: r.plan.name.clone(),
        flag: r.plan.flag.clone(),
        environment: r.plan.environment.clone(),
        state: r.state.name().into(),
        rev: prev.map_or(0, |p| p.rev),
        doc: serde_json::to_value(r).map_err(ApiError::internal)?,
        created_at: prev.map_or(now, |p| p.created_at),
        updated_at: now,
    };
    let flag_changed = flag_put.is_some();
    let write = RolloutWrite { row: row.clone(), flag_put, verdicts, audit, leader_epoch };
    let rev = state.store.write_rollout(&write, &state.change(actor, reason)).await?;
    if flag_changed {
        state.reload().await?;
    }
    state.reload_live().await?;
    Ok(RolloutRow { rev, ..row })
}
