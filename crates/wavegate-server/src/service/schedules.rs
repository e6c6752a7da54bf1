//! Scheduled starts: a start of a plan at a time, stored as the versioned setting
//! `schedule.<plan>` with the environment the plan was in when it was scheduled (which decides
//! who may see and cancel it); the controller's tick starts due ones through the same start
//! checks as a start now, and closes each with its outcome (started, or refused with the reason)
//! in the audit log. A plan moved to another environment since is not started there.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wavegate_api::schedules::Schedule;
use wavegate_store::{Kind, Put};

use crate::service::{ServiceError, ServiceResult, Who, plans, rollouts};
use crate::state::AppState;

/// Schedules are the settings `schedule.<plan>`.
pub const PREFIX: &str = "schedule.";

fn put(plan: &str, environment: Option<&str>, spec: Value, archived: bool, action: &str) -> Put {
    Put {
        kind: Kind::Setting,
        key: format!("{PREFIX}{plan}"),
        spec,
        archived,
        expected_version: None,
        action: Some(action.into()),
        details: json!({"plan": plan, "environment": environment}),
    }
}

/// A pending scheduled start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The plan to start.
    pub plan: String,
    /// When.
    pub start_at: DateTime<Utc>,
    /// Who scheduled it.
    pub requester: String,
    /// Why.
    pub reason: Option<String>,
    /// The environment the plan was in when it was scheduled (for a schedule stored before
    /// that was recorded, the plan's current one; `None` when the plan is gone).
    pub environment: Option<String>,
    /// What the scheduler offered about the artifact, checked when the start runs.
    pub artifact: rollouts::ArtifactOffer,
}

impl Pending {
    /// The API's view.
    pub fn view(&self) -> Schedule {
        Schedule {
            plan: self.plan.clone(),
            start_at: self.start_at,
            requester: self.requester.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// Stores a start of `plan` (in `environment`) at `at` (RFC 3339, in the future, within a
/// year) requested by `requester`; returns the stored schedule.
pub async fn schedule(
    state: &AppState,
    requester: &Who,
    plan: &str,
    environment: &str,
    at: &str,
    reason: Option<String>,
    artifact: rollouts::ArtifactOffer,
) -> ServiceResult<Schedule> {
    let when = DateTime::parse_from_rfc3339(at)
        .map_err(|_| {
            ServiceError::invalid(
                "start_at",
                format!("start_at must be an RFC 3339 time, got {at:?}"),
            )
        })?
        .with_timezone(&Utc);
    artifact.signature()?;
    let now = state.clock.now();
    if when <= now || when > now + chrono::Duration::days(366) {
        return Err(ServiceError::invalid(
            "start_at",
            "start_at must be in the future, within a year",
        ));
    }
    let scheduled =
        Schedule { plan: plan.into(), start_at: when, requester: requester.name.clone(), reason };
    let mut spec = serde_json::to_value(&scheduled).map_err(ServiceError::internal)?;
    spec["environment"] = json!(environment);
    if !artifact.is_empty() {
        spec["artifact"] = serde_json::to_value(&artifact).map_err(ServiceError::internal)?;
    }
    state
        .store
        .apply(
            &[put(plan, Some(environment), spec, false, "schedule")],
            &state.change(requester, Some(format!("start scheduled for {when}"))),
        )
        .await?;
    Ok(scheduled)
}

/// The pending start of `plan`, if there is one.
pub async fn find(state: &AppState, plan: &str) -> ServiceResult<Option<Pending>> {
    Ok(pending(state).await?.into_iter().find(|s| s.plan == plan))
}

/// Cancels `pending`, as `actor`.
pub async fn cancel(state: &AppState, pending: &Pending, actor: &Who) -> ServiceResult<()> {
    let plan = &pending.plan;
    let spec = json!({"plan": plan, "cancelled_by": actor.name});
    state
        .store
        .apply(
            &[put(plan, pending.environment.as_deref(), spec, true, "cancel")],
            &state.change(actor, None),
        )
        .await?;
    Ok(())
}

/// Live schedules, soonest first.
pub async fn pending(state: &AppState) -> ServiceResult<Vec<Pending>> {
    let mut out = Vec::new();
    for h in state.heads(Kind::Setting, false).await? {
        let Some(plan) = h.key.strip_prefix(PREFIX) else { continue };
        let Some(at) =
            h.spec["start_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        let environment = match h.spec["environment"].as_str() {
            Some(env) => Some(env.to_owned()),
            None => plans::get(state, plan).await.ok().map(|(spec, _)| spec.environment),
        };
        out.push(Pending {
            plan: plan.to_owned(),
            start_at: at.with_timezone(&Utc),
            requester: h.spec["requester"].as_str().unwrap_or("scheduler").to_owned(),
            reason: h.spec["reason"].as_str().map(str::to_owned),
            environment,
            // A schedule whose stored offer does not parse offers nothing: a signed plan's
            // start then fails, saying it is unsigned.
            artifact: serde_json::from_value(h.spec["artifact"].clone()).unwrap_or_default(),
        });
    }
    out.sort_by_key(|s| s.start_at);
    Ok(out)
}

/// Starts every due schedule (called by the controller's tick) and closes it. A schedule whose
/// plan has moved to another environment since is not started: whoever scheduled it may not
/// have been allowed to start it there.
pub async fn run_due(state: &AppState) -> ServiceResult<()> {
    let now = state.clock.now();
    for s in pending(state).await? {
        let Pending { plan, start_at: at, requester, reason, environment, artifact } = s;
        if at > now {
            continue;
        }
        let req = rollouts::StartRequest {
            plan: plan.clone(),
            reason: reason.clone(),
            artifact,
            release: None,
        };
        let moved = match plans::get(state, &plan).await {
            Ok((spec, _)) => environment.as_ref().filter(|e| **e != spec.environment).map(|e| {
                format!(
                    "plan {plan:?} was scheduled in {e} and has moved to {} since; schedule it again there",
                    spec.environment
                )
            }),
            Err(_) => None,
        };
        let started = match moved {
            Some(why) => Err(ServiceError::conflict(why)),
            // The requester starts it, by their schedule (they are not signed in now).
            None => {
                let who = Who { name: requester.clone(), via: Some("scheduled start".into()) };
                rollouts::start(state, &who, req).await
            }
        };
        let (action, details) = match started {
            Ok((row, _)) => ("started", json!({"plan": plan, "rollout": row.id})),
            Err(e) => {
                // The person reads why; a server-side failure says only that it was one.
                let error = crate::http::error::ApiError::from(e).message;
                tracing::warn!(%plan, %error, "scheduled start refused");
                ("failed", json!({"plan": plan, "error": error}))
            }
        };
        let mut w = put(
            &plan,
            environment.as_deref(),
            json!({"plan": plan, "start_at": at, "requester": requester, "environment": environment, "outcome": details}),
            true,
            action,
        );
        w.details = details;
        w.details["environment"] = json!(environment);
        state.store.apply(&[w], &state.change(&Who::own("controller"), reason)).await?;
    }
    Ok(())
}
