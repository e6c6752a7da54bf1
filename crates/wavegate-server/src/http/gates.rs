//! Deployment tooling gates: `GET /api/v1/gates/argo/{plan}` for Argo Rollouts' `web` analysis
//! provider, and `POST /api/v1/gates/flagger/{plan}/{hook}` for Flagger's webhooks, answering
//! from the plan's latest rollout (`wavegate_rollout::gates`). Flagger sends no headers: its
//! token comes in the payload's `metadata.token` (never in the URL).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::reports::{FlaggerPayload, GateAnswer, GateGuardrail};
use wavegate_rollout::gates::{FLAGGER_HOOKS, Verdict, flagger_status, judge};
use wavegate_rollout::machine::Rollout;
use wavegate_store::{Kind, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiPath;
use crate::http::openapi::{
    BadRequest, Forbidden, NotFound, TooLargeText, Unauthorized, api_routes,
};
use crate::service::decode;
use crate::state::AppState;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(argo_gate)).routes(api_routes!(flagger_gate))
}

/// The gate's answer for plan `plan`, as `p` may read it (its environment), and its verdict.
async fn answer(state: &AppState, p: &Principal, plan: &str) -> ApiResult<(GateAnswer, Verdict)> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let head = state
        .store
        .get(Kind::Plan, plan)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("plan {plan:?} not found")))?;
    p.require_env(head.spec["environment"].as_str().unwrap_or_default())?;
    // Rollouts come newest first.
    let latest = state.store.rollouts(false).await?.into_iter().find(|row| row.plan == plan);
    let r: Option<Rollout> = match &latest {
        Some(row) => Some(decode("rollout", &row.doc)?),
        None => None,
    };
    let mut guardrails: Vec<GateGuardrail> = Vec::new();
    if let Some(r) = &r {
        for v in state.store.verdicts(&r.id, 500).await? {
            let current = v.wave == r.signal_wave() as i64 || v.verdict == "fail";
            if v.kind == "guardrail" && current && !guardrails.iter().any(|g| g.name == v.name) {
                guardrails.push(GateGuardrail { name: v.name, verdict: v.verdict });
            }
        }
    }
    let latest_verdicts: Vec<(String, String)> =
        guardrails.iter().map(|g| (g.name.clone(), g.verdict.clone())).collect();
    let (verdict, reason) = judge(plan, r.as_ref(), &latest_verdicts);
    let gate = GateAnswer {
        plan: plan.to_owned(),
        verdict: verdict.as_str().into(),
        go: verdict == Verdict::Go,
        reason,
        rollout: r.as_ref().map(|r| r.id.clone()),
        state: r.as_ref().map(|r| r.state.name().into()),
        wave: r.as_ref().map(|r| r.wave as u64 + 1),
        guardrails,
    };
    Ok((gate, verdict))
}

/// `GET /api/v1/gates/argo/{plan}`: the plan's go / wait / stop, for an Argo Rollouts
/// `AnalysisTemplate` metric with the `web` provider (`successCondition: result.verdict == "go"`,
/// `failureCondition: result.verdict == "stop"`; wait is inconclusive, which pauses).
#[utoipa::path(get, path = "/api/v1/gates/argo/{plan}", tag = "Rollouts",
    params(("plan" = String, Path, description = "The plan's name")),
    security(("bearer" = [])),
    responses((status = 200, description = "The verdict", body = GateAnswer),
        Unauthorized, Forbidden, NotFound))]
async fn argo_gate(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(plan): ApiPath<String>,
) -> ApiResult<Response> {
    Ok(axum::Json(answer(&state, &p, &plan).await?.0).into_response())
}

/// `POST /api/v1/gates/flagger/{plan}/{hook}`: a Flagger webhook of type `hook`
/// (`confirm-rollout`, `pre-rollout`, `rollout`, `confirm-traffic-increase`,
/// `confirm-promotion`, `post-rollout`, `rollback`, `event`) answered from the plan's verdict:
/// confirm hooks 200 on go, 423 on wait, 409 on stop; pre-rollout and rollout hooks 409 on stop,
/// else 200; a rollback hook 200 (roll back) on stop, else 409; post-rollout and event 200.
/// The token is the payload's `metadata.token` (or an `Authorization` header).
#[utoipa::path(post, path = "/api/v1/gates/flagger/{plan}/{hook}", tag = "Rollouts",
    params(("plan" = String, Path, description = "The plan's name"),
        ("hook" = String, Path, description = "The webhook's type")),
    request_body = FlaggerPayload,
    responses((status = 200, description = "Go (for a rollback hook: roll back)", body = GateAnswer),
        (status = 409, description = "Stop (for a rollback hook: no rollback needed)", body = GateAnswer),
        (status = 423, description = "Wait: a confirm hook holds", body = GateAnswer),
        BadRequest, Unauthorized, Forbidden, NotFound, TooLargeText))]
async fn flagger_gate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath((plan, hook)): ApiPath<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    // Who asks comes first (a payload that cannot be read names no token); then the payload.
    let loose: Option<FlaggerPayload> = serde_json::from_slice(&body).ok();
    let secret = wavegate_protocols::auth::secret_from_headers(&headers)
        .or(loose.as_ref().and_then(|b| b.metadata.get("token")).map(String::as_str))
        .ok_or_else(|| {
            ApiError::unauthorized("no token: put it in the webhook's metadata as `token`")
        })?
        .to_owned();
    let token = state
        .tokens
        .lookup(&state, &secret)
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown, revoked or expired token"))?;
    let p = Principal(token);
    let _payload: FlaggerPayload = crate::http::json::parse_json(&body)?;
    if !FLAGGER_HOOKS.contains(&hook.as_str()) {
        return Err(ApiError::not_found(format!(
            "unknown Flagger webhook type {hook:?}; use {}",
            FLAGGER_HOOKS.join(", ")
        )));
    }
    let (gate, verdict) = answer(&state, &p, &plan).await?;
    let code = flagger_status(&hook, verdict).unwrap_or(404);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    Ok((status, axum::Json(gate)).into_response())
}
