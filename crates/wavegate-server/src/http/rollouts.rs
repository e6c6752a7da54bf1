//! Plans and rollouts over HTTP: parse and authorise, call `service::{plans, rollouts}`, and
//! shape the answer.

use crate::http::openapi::api_routes;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::plans::{
    Drill, DrillRecorded, PlanApplied, PlanHead, PlanLint, PlanVersion, RecordDrill,
};
use wavegate_api::rollouts::{
    self as api, RolloutCommand, RolloutVerdicts, Scheduled, StartRollout, Verdict,
};
use wavegate_rollout::duties::Vouch;
use wavegate_rollout::machine::{Command, Rollout};
use wavegate_store::{Kind, Role, RolloutRow, TokenKind, VerdictRow};

use crate::http::auth::Principal;
use crate::http::convert::IntoApi;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, ApiQuery as Query, JsonBody};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, ReasonHeader, TooLarge, TooLargeText,
    Unauthorized,
};
use crate::service::{plans, rollouts};
use crate::state::AppState;

/// The JSON Schema of the plan format.
pub const PLAN_SCHEMA: &str = include_str!("../../../../docs/plan.schema.json");

/// Plan and rollout routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(plan_schema))
        .routes(api_routes!(lint_plan))
        .routes(api_routes!(list_plans, apply_plan))
        .routes(api_routes!(get_plan))
        .routes(api_routes!(plan_versions))
        .routes(api_routes!(list_drills, record_drill))
        .routes(api_routes!(run_drill))
        .routes(api_routes!(list_rollouts, start_rollout))
        .routes(api_routes!(get_rollout))
        .routes(api_routes!(rollout_verdicts))
        .routes(api_routes!(rollout_contributions))
        .routes(api_routes!(rollout_command))
}

/// The JSON Schema of the plan format (public: it holds no data).
#[utoipa::path(get, path = "/api/v1/schemas/plan.json", tag = "Plans",
    responses((status = 200, description = "The plan format's JSON Schema", body = Object)))]
async fn plan_schema() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], PLAN_SCHEMA).into_response()
}

// ---------- plans ----------

/// Stores a plan (YAML) as a new version when it changed. Lint errors are refused with their
/// line and column; warnings come back with the answer.
#[utoipa::path(post, path = "/api/v1/plans", tag = "Plans",
    params(ReasonHeader),
    request_body(content = String, content_type = "application/yaml",
        description = "The plan file (see `GET /api/v1/schemas/plan.json`)"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored, or already so (`changed: false`)", body = PlanApplied),
        (status = 201, description = "Stored as its first version", body = PlanApplied),
        BadRequest, Unauthorized, Forbidden, TooLargeText, Invalid,
    ))]
async fn apply_plan(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let p = p.acting_as(&[Role::Editor])?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("plan is not valid UTF-8"))?;
    let (plan, mut findings) = plans::parse(text)?;
    p.require_env(&plan.environment)?;
    findings.extend(plans::store_findings(&state, text, &plan).await?);
    // Moving a plan out of an environment is a change there too.
    if let Some(old) = state.head(Kind::Plan, &plan.name).await? {
        p.require_env(old.spec["environment"].as_str().unwrap_or_default())?;
    }
    let reason = crate::http::reason(&headers);
    let out = plans::apply(&state, &plan, &state.change(&p.who(), reason)).await?;
    let warnings = findings.iter().map(IntoApi::into_api).collect();
    let status = if out.changed && out.version == 1 { StatusCode::CREATED } else { StatusCode::OK };
    let applied =
        PlanApplied { name: out.name, version: out.version, changed: out.changed, warnings };
    Ok((status, Json(applied)).into_response())
}

/// Forecast settings for [`lint_plan`].
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LintQuery {
    /// Requests per second reaching the flag, for the time-to-decision forecast (a guardrail's
    /// own `traffic` wins); 0 < traffic ≤ 10,000,000.
    #[serde(default)]
    traffic: Option<f64>,
}

/// Checks a plan file without storing it: its findings at their line and column, and how long
/// each wave's guardrails take to decide at the traffic given (the dashboard's editor calls it
/// as the plan is typed).
#[utoipa::path(post, path = "/api/v1/plans/lint", tag = "Plans",
    params(LintQuery),
    request_body(content = String, content_type = "application/yaml",
        description = "The plan file (see `GET /api/v1/schemas/plan.json`)"),
    security(("bearer" = [])),
    responses((status = 200, description = "The findings and the forecast", body = PlanLint),
        BadRequest, Unauthorized, Forbidden, TooLargeText))]
async fn lint_plan(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<LintQuery>,
    body: Bytes,
) -> ApiResult<Json<PlanLint>> {
    p.acting_as(&[Role::Viewer])?;
    if q.traffic.is_some_and(|t| !(t > 0.0 && t <= 10_000_000.0)) {
        return Err(ApiError::bad_request(
            "traffic must be a number of requests per second above 0 (at most 10,000,000)",
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("plan is not valid UTF-8"))?
        .to_owned();
    // The forecast simulates: off the async workers, with fewer runs than the CLI's.
    let answer = tokio::task::spawn_blocking(move || {
        let (plan, mut findings) = wavegate_rollout::lint::lint(&text);
        let opts = wavegate_rollout::forecast::Options {
            traffic: q.traffic,
            runs: 100,
            ..Default::default()
        };
        let forecast = plan
            .as_ref()
            .map(|p| wavegate_rollout::forecast::forecast(p, &opts))
            .unwrap_or_default();
        if let Some(p) = &plan {
            findings.extend(wavegate_rollout::lint::forecast_findings(p, &forecast));
        }
        PlanLint {
            document: wavegate_core::flagfile::parse_yaml::<serde_json::Value>(&text).ok(),
            ok: !wavegate_rollout::lint::has_errors(&findings),
            plan: plan.map(|p| p.name),
            findings: findings.iter().map(IntoApi::into_api).collect(),
            forecast: forecast.iter().filter_map(|f| serde_json::to_value(f).ok()).collect(),
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let mut answer = answer;
    // The segments a first wave names are in the store: judged after the pure lint.
    let text = std::str::from_utf8(&body).unwrap_or_default();
    if let Ok(plan) = wavegate_core::flagfile::parse_yaml::<wavegate_rollout::plan::PlanSpec>(text)
    {
        answer.findings.extend(
            plans::store_findings(&state, text, &plan).await?.iter().map(IntoApi::into_api),
        );
    }
    Ok(Json(answer))
}

/// The plans of the environments the token may read.
#[utoipa::path(get, path = "/api/v1/plans", tag = "Plans",
    security(("bearer" = [])),
    responses((status = 200, description = "The plans' current versions", body = Vec<PlanHead>),
        Unauthorized, Forbidden))]
async fn list_plans(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Vec<PlanHead>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let heads: Vec<_> = state
        .store
        .list(Kind::Plan, false)
        .await?
        .into_iter()
        .filter(|h| h.spec["environment"].as_str().is_some_and(|e| p.0.allows_env(e)))
        .map(IntoApi::into_api)
        .collect();
    Ok(Json(heads))
}

/// A plan's current version.
#[utoipa::path(get, path = "/api/v1/plans/{name}", tag = "Plans",
    params(("name" = String, Path, description = "The plan's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The plan", body = PlanHead),
        Unauthorized, Forbidden, NotFound))]
async fn get_plan(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<PlanHead>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let h = state
        .store
        .get(Kind::Plan, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plan {name:?} not found")))?;
    p.require_env(h.spec["environment"].as_str().unwrap_or(""))?;
    Ok(Json(h.into_api()))
}

/// Every version of a plan, oldest first: those in the token's environments, when the plan's
/// current version is in one of them.
#[utoipa::path(get, path = "/api/v1/plans/{name}/versions", tag = "Plans",
    params(("name" = String, Path, description = "The plan's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "Its versions", body = Vec<PlanVersion>),
        Unauthorized, Forbidden, NotFound))]
async fn plan_versions(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<PlanVersion>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let v = state.store.versions(Kind::Plan, &name).await?;
    let env = |v: &wavegate_store::VersionRecord| {
        v.spec["environment"].as_str().unwrap_or_default().to_owned()
    };
    let Some(current) = v.last().map(env) else {
        return Err(ApiError::not_found(format!("plan {name:?} not found")));
    };
    p.require_env(&current)?;
    let readable = v.into_iter().filter(|v| p.0.allows_env(&env(v)));
    Ok(Json(readable.map(IntoApi::into_api).collect()))
}

/// Records a drill as evidence for the stored plan version it rehearsed.
#[utoipa::path(post, path = "/api/v1/plans/{name}/drills", tag = "Plans",
    params(("name" = String, Path, description = "The plan's name")),
    request_body = RecordDrill,
    security(("bearer" = [])),
    responses((status = 201, description = "Recorded", body = DrillRecorded),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, Invalid))]
async fn record_drill(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<RecordDrill>,
) -> ApiResult<Response> {
    let p = p.acting_as(&[Role::Releaser])?;
    p.require_env(&plans::get(&state, &name).await?.0.environment)?;
    let d = plans::record_drill(&state, &name, body.plan, body.report, &p.who()).await?;
    let recorded = DrillRecorded {
        id: d.id,
        plan: name,
        plan_version: d.plan_version,
        scenario: d.scenario,
        passed: d.passed,
    };
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

/// Most simulated ticks a drill run by the server may take: it runs on the server's CPU (seven
/// days at the default 10 s tick are 60,480).
const MAX_DRILL_TICKS: u64 = 100_000;

/// Rehearses the plan's current version against a scenario on the server (as `wavegate drill
/// --record` does locally) and records the outcome as the plan's evidence.
#[utoipa::path(post, path = "/api/v1/plans/{name}/drills/run", tag = "Plans",
    params(("name" = String, Path, description = "The plan's name")),
    request_body(content = String, content_type = "application/yaml",
        description = "The drill scenario (traffic, baseline, faults, expectation), as `wavegate drill --scenario` reads it"),
    security(("bearer" = [])),
    responses((status = 201, description = "Run against the plan's current version and recorded", body = Drill),
        BadRequest, Unauthorized, Forbidden, NotFound, TooLargeText, Invalid))]
async fn run_drill(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let p = p.acting_as(&[Role::Releaser])?;
    let (plan, _) = plans::get(&state, &name).await?;
    p.require_env(&plan.environment)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the scenario is not valid UTF-8"))?;
    let scenario: wavegate_rollout::drill::Scenario = wavegate_core::flagfile::parse_yaml(text)
        .map_err(|e| ApiError::invalid("scenario", e.to_string()))?;
    let tick = scenario.tick.map_or(10, |t| t.secs().max(1));
    let horizon = scenario.duration.map_or(7 * 86_400, |d| d.secs());
    if horizon / tick > MAX_DRILL_TICKS {
        return Err(ApiError::invalid(
            "scenario.tick",
            format!(
                "the scenario runs {} ticks ({horizon} s at {tick} s); a drill on the server runs at most {MAX_DRILL_TICKS}: lengthen `tick` or shorten `duration` (or run `wavegate drill` locally)",
                horizon / tick
            ),
        ));
    }
    let drilled = plan.clone();
    let report =
        tokio::task::spawn_blocking(move || wavegate_rollout::drill::run(&drilled, &scenario))
            .await
            .map_err(ApiError::internal)?
            .map_err(|m| ApiError::invalid("scenario", m))?;
    let report = serde_json::to_value(&report).map_err(ApiError::internal)?;
    let plan = serde_json::to_value(&plan).map_err(ApiError::internal)?;
    let d = plans::record_drill(&state, &name, plan, report, &p.who()).await?;
    Ok((StatusCode::CREATED, Json(d.into_api())).into_response())
}

/// The drills recorded for a plan (in the token's environments).
#[utoipa::path(get, path = "/api/v1/plans/{name}/drills", tag = "Plans",
    params(("name" = String, Path, description = "The plan's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "Its drills", body = Vec<Drill>),
        Unauthorized, Forbidden, NotFound))]
async fn list_drills(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Drill>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    p.require_env(&plans::get(&state, &name).await?.0.environment)?;
    let rows = state.store.drills(&name).await?;
    Ok(Json(rows.into_iter().map(IntoApi::into_api).collect()))
}

// ---------- rollouts ----------

/// The public view of a rollout (what a start, the list and the commands answer).
pub fn rollout_view(row: &RolloutRow, r: &Rollout) -> api::Rollout {
    (row, r).into_api()
}

/// Starts a rollout now, or (with `start_at`) schedules its start: the controller starts it
/// when due, with every start check run then.
#[utoipa::path(post, path = "/api/v1/rollouts", tag = "Rollouts",
    description = "Checks the scorecard, the freeze, blackout windows and the artifact's digest, \
        then sets wave 1 (the principal whose token starts it is its requester).",
    request_body = StartRollout,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Started", body = api::Rollout),
        (status = 202, description = "Scheduled (`start_at` given)", body = Scheduled),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, Invalid,
    ))]
async fn start_rollout(
    State(state): State<AppState>,
    p: Principal,
    JsonBody(body): JsonBody<StartRollout>,
) -> ApiResult<Response> {
    let p = p.acting_as(&[Role::Releaser])?;
    let (plan, _) = plans::get(&state, &body.plan).await?;
    p.require_env(&plan.environment)?;
    let artifact = rollouts::ArtifactOffer {
        sha256: body.artifact_sha256,
        blake2b: body.artifact_blake2b,
        signature: body.artifact_signature,
        sbom: body.sbom,
    };
    if let Some(at) = &body.start_at {
        let scheduled = crate::service::schedules::schedule(
            &state,
            &p.who(),
            &body.plan,
            &plan.environment,
            at,
            body.reason,
            artifact,
        )
        .await?;
        return Ok((StatusCode::ACCEPTED, Json(Scheduled { scheduled })).into_response());
    }
    let req =
        rollouts::StartRequest { plan: body.plan, reason: body.reason, artifact, release: None };
    let (row, r) = rollouts::start(&state, &p.who(), req).await?;
    Ok((StatusCode::CREATED, Json(rollout_view(&row, &r))).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListRollouts {
    /// Only rollouts in this state (`running`, `paused`, `completed`, `rolled_back`, `aborted`).
    #[serde(default)]
    state: Option<String>,
    /// Only rollouts in this environment.
    #[serde(default)]
    environment: Option<String>,
    /// Only rollouts of this flag.
    #[serde(default)]
    flag: Option<String>,
}

/// The rollouts in the environments the token may read, filtered as asked.
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "Rollouts",
    params(ListRollouts),
    security(("bearer" = [])),
    responses((status = 200, description = "The rollouts", body = Vec<api::Rollout>),
        BadRequest, Unauthorized, Forbidden))]
async fn list_rollouts(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<ListRollouts>,
) -> ApiResult<Json<Vec<api::Rollout>>> {
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
        out.push(rollout_view(&row, &crate::service::decode("rollout", &row.doc)?));
    }
    Ok(Json(out))
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

/// A rollout with the latest verdict per guardrail and wave, its scorecard, the current wave's
/// signals and latency, and the plan's runbook.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}", tag = "Rollouts",
    params(("id" = String, Path, description = "The rollout's id (`ro_…`)")),
    security(("bearer" = [])),
    responses((status = 200, description = "The rollout's full view", body = api::Rollout),
        Unauthorized, Forbidden, NotFound))]
async fn get_rollout(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Rollout>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (row, r) = load(&state, &p, &id).await?;
    let mut view = rollout_view(&row, &r);
    let verdicts = state.store.verdicts(&id, 200).await?;
    let mut latest: Vec<&VerdictRow> = Vec::new();
    for v in &verdicts {
        if !latest.iter().any(|l| l.name == v.name && l.wave == v.wave) {
            latest.push(v);
        }
    }
    view.verdicts = Some(latest.into_iter().map(IntoApi::into_api).collect());
    let card =
        crate::service::scorecard::assessment(&state, &r.plan, r.plan_version, Some(&r), None)
            .await;
    view.scorecard = card.ok().map(|card| (&card).into_api());
    // The signals the verdicts see: without the contributions of excluded tokens.
    let excluded = r.excluded_sources();
    let aggs = state.store.aggregates(&id, r.signal_wave() as i64, &excluded).await?;
    view.signals = Some(aggs.iter().map(IntoApi::into_api).collect());
    let sketches = state.store.sketches(&id, r.signal_wave() as i64, &excluded).await?;
    view.latency = Some(
        sketches
            .iter()
            .map(|sk| {
                let s = wavegate_rollout::sketch::Sketch::from_counts(sk.counts.clone());
                api::Latency {
                    arm: sk.arm.clone(),
                    metric: sk.metric.clone(),
                    count: s.count(),
                    p50: s.quantile(0.5),
                    p95: s.quantile(0.95),
                    p99: s.quantile(0.99),
                }
            })
            .collect(),
    );
    view.runbook = Some(r.plan.runbook.clone());
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct VerdictQuery {
    /// Only this wave's verdicts (1-based).
    #[serde(default)]
    wave: Option<i64>,
    /// How many of the newest verdicts, 1 to 100000 (default 10000).
    #[serde(default = "verdict_limit")]
    limit: i64,
}

fn verdict_limit() -> i64 {
    10_000
}

/// Every stored verdict (oldest first) with the plan's guardrails, so a client can reproduce
/// each verdict from its stored inputs (`wavegate rollout explain`).
#[utoipa::path(get, path = "/api/v1/rollouts/{id}/verdicts", tag = "Rollouts",
    params(("id" = String, Path, description = "The rollout's id"), VerdictQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Its verdicts and guardrails", body = RolloutVerdicts),
        BadRequest, Unauthorized, Forbidden, NotFound, Invalid))]
async fn rollout_verdicts(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<VerdictQuery>,
) -> ApiResult<Json<RolloutVerdicts>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    if !(1..=100_000).contains(&q.limit) {
        return Err(ApiError::invalid("limit", "limit must be from 1 to 100000"));
    }
    let (_, r) = load(&state, &p, &id).await?;
    let mut rows = state.store.verdicts(&id, q.limit).await?;
    rows.reverse();
    let verdicts: Vec<Verdict> = rows
        .iter()
        .filter(|v| q.wave.is_none_or(|w| v.wave + 1 == w))
        .map(IntoApi::into_api)
        .collect();
    let guardrails = r.plan.guardrails.iter().map(serde_json::to_value);
    Ok(Json(RolloutVerdicts {
        id,
        state: (&r.state).into_api(),
        guardrails: guardrails.collect::<Result<_, _>>().map_err(ApiError::internal)?,
        srm_alpha: r.plan.srm_alpha(),
        verdicts,
    }))
}

/// Who contributed to a rollout's signals: per token (its principal, kind, whether revoked or
/// excluded) the events it posted by wave, arm and metric. Admins only: it names every token.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}/contributions", tag = "Rollouts",
    params(("id" = String, Path, description = "The rollout's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Its contributions by token", body = api::Contributions),
        Unauthorized, Forbidden, NotFound))]
async fn rollout_contributions(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Contributions>> {
    let p = p.require_admin()?;
    let (_, r) = load(&state, &p, &id).await?;
    let tokens = state.store.tokens().await?;
    let mut out: Vec<api::TokenContribution> = Vec::new();
    for c in state.store.contributions(&id).await? {
        let cell = api::ContributionCell { wave: c.wave + 1, arm: c.arm, metric: c.metric, n: c.n };
        match out.last_mut() {
            Some(t) if t.token == c.source => {
                t.cells.push(cell);
                t.last_at = t.last_at.max(c.last_at);
            }
            _ => {
                let known = tokens.iter().find(|t| t.id == c.source);
                out.push(api::TokenContribution {
                    principal: known.map(|t| t.principal.clone()),
                    kind: known.map(|t| t.kind),
                    revoked: known.is_some_and(|t| t.revoked_at.is_some()),
                    excluded: r.excluded_tokens.iter().any(|e| e.token == c.source),
                    token: c.source,
                    cells: vec![cell],
                    last_at: c.last_at,
                });
            }
        }
    }
    let exposures = |t: &api::TokenContribution| -> f64 {
        t.cells.iter().filter(|c| c.metric == "exposure").map(|c| c.n).sum()
    };
    out.sort_by(|a, b| exposures(b).total_cmp(&exposures(a)).then_with(|| a.token.cmp(&b.token)));
    Ok(Json(api::Contributions { id, tokens: out }))
}

/// A person's command: approve (not the requester), reject, pause, resume or roll back; pause,
/// reject and rollback need a reason. `exclude` leaves a token's contributions (events, spans,
/// Unleash metrics) out of the rollout's verdicts from the next decision on (a reason is
/// needed; e.g. a leaked token posting forged events); `include` counts them again. The body
/// may be empty for the others.
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/{command}", tag = "Rollouts",
    params(("id" = String, Path, description = "The rollout's id"),
        ("command" = String, Path,
            description = "`approve`, `reject`, `pause`, `resume`, `rollback`, `exclude` or \
                `include` (others: 404)")),
    request_body(content = Option<RolloutCommand>,
        description = "`{reason}`, `{token, reason}` (exclude, include), or nothing"),
    security(("bearer" = [])),
    responses((status = 200, description = "The rollout after the command", body = api::Rollout),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLargeText, Invalid))]
async fn rollout_command(
    State(state): State<AppState>,
    p: Principal,
    Path((id, cmd)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<api::Rollout>> {
    // Approving is the approver's, excluding a token the admin's, the rest the releaser's.
    let p = p.acting_as(&[match cmd.as_str() {
        "approve" | "reject" => Role::Approver,
        "exclude" | "include" => Role::Admin,
        _ => Role::Releaser,
    }])?;
    let body: RolloutCommand = if body.iter().all(u8::is_ascii_whitespace) {
        RolloutCommand::default()
    } else {
        crate::http::json::parse_json(&body)?
    };
    let token = || -> ApiResult<String> {
        let t = body.token.as_deref().map(str::trim).unwrap_or_default();
        if t.is_empty() {
            return Err(ApiError::invalid(
                "token",
                format!("{cmd} names a token: {{\"token\": \"tok_…\"}}"),
            ));
        }
        if t.len() > 64 {
            return Err(ApiError::invalid("token", "a token id is at most 64 characters"));
        }
        Ok(t.to_owned())
    };
    let cmd = match cmd.as_str() {
        "approve" => Command::Approve,
        "reject" => Command::Reject,
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "rollback" => Command::Rollback,
        "exclude" => Command::Exclude { token: token()? },
        "include" => Command::Include { token: token()? },
        "close-item" => {
            let item = body.item.as_deref().map(str::trim).unwrap_or_default();
            if item.is_empty() || item.len() > 500 {
                return Err(ApiError::invalid(
                    "item",
                    "close-item names one of the plan's after_release items: {\"item\": \"…\"}",
                ));
            }
            Command::CloseItem { item: item.to_owned() }
        }
        other => {
            return Err(ApiError::not_found(format!(
                "unknown rollout command {other:?}; use approve, reject, pause, resume, rollback, \
                 exclude, include or close-item"
            )));
        }
    };
    if body.item.is_some() && !matches!(cmd, Command::CloseItem { .. }) {
        return Err(ApiError::invalid("item", "only close-item names an item"));
    }
    if body.token.is_some() && !matches!(cmd, Command::Exclude { .. } | Command::Include { .. }) {
        return Err(ApiError::invalid("token", "only exclude and include name a token"));
    }
    let reason = body.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if matches!(cmd, Command::Pause | Command::Rollback | Command::Reject | Command::Exclude { .. })
        && reason.is_none()
    {
        return Err(ApiError::invalid(
            "reason",
            "say why: pause, rollback, reject and exclude need a reason",
        ));
    }
    let (_, current) = load(&state, &p, &id).await?;
    if let Command::Exclude { token } = &cmd {
        // A typo must not pass for an exclusion: the token exists, or has contributed.
        let known = state.store.tokens().await?.iter().any(|t| &t.id == token)
            || state.store.contributions(&id).await?.iter().any(|c| &c.source == token);
        if !known {
            return Err(ApiError::invalid(
                "token",
                format!(
                    "no token {token:?} exists or contributed to rollout {id}; \
                    GET /api/v1/rollouts/{id}/contributions lists those that did"
                ),
            ));
        }
    }
    if matches!(cmd, Command::Approve) {
        let started = Some((current.requester.as_str(), id.as_str()));
        crate::service::duties::require_may_vouch(
            &state,
            &p.0,
            Vouch::Approve,
            &current.plan,
            current.plan_version,
            started,
        )
        .await?;
    }
    let who = p.who();
    let actor = rollouts::Actor { groups: &p.0.groups, ..rollouts::Actor::person(&who, reason) };
    let (row, next) = rollouts::command(&state, &id, &cmd, &actor).await?;
    Ok(Json(rollout_view(&row, &next)))
}
