//! Scheduled starts: a start of a plan at a time, stored as the versioned setting
//! `schedule.<plan>`; the controller's tick starts due ones through the same start checks as a
//! start now, and closes each with its outcome (started, or refused with the reason) in the
//! audit log.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wavegate_api::schedules::Schedule;
use wavegate_store::{Kind, Put};

use crate::service::{ServiceError, ServiceResult, rollouts};
use crate::state::AppState;

const PREFIX: &str = "schedule.";

fn put(plan: &str, spec: Value, archived: bool, action: &str) -> Put {
    Put {
        kind: Kind::Setting,
        key: format!("{PREFIX}{plan}"),
        spec,
        archived,
        expected_version: None,
        action: Some(action.into()),
        details: json!({"plan": plan}),
    }
}

/// Stores a start of `plan` at `at` (RFC 3339, in the future, within a year) requested by
/// `requester`; returns the stored schedule.
pub async fn schedule(
    state: &AppState,
    requester: &str,
    plan: &str,
    at: &str,
    reason: Option<String>,
) -> ServiceResult<Schedule> {
    let when = DateTime::parse_from_rfc3339(at)
        .map_err(|_| {
            ServiceError::invalid(
                "start_at",
                format!("start_at must be an RFC 3339 time, got {at:?}"),
            )
        })?
        .with_timezone(&Utc);
    let now = state.clock.now();
    if when <= now || when > now + chrono::Duration::days(366) {
        return Err(ServiceError::invalid(
            "start_at",
            "start_at must be in the future, within a year",
        ));
    }
    let scheduled =
        Schedule { plan: plan.into(), start_at: when, requester: requester.into(), reason };
    let spec = serde_json::to_value(&scheduled).map_err(ServiceError::internal)?;
    state
        .store
        .apply(
            &[put(plan, spec, false, "schedule")],
            &state.change(requester, Some(format!("start scheduled for {when}"))),
        )
        .await?;
    Ok(scheduled)
}

/// Cancels the pending start of `plan`, as `actor` (404 when there is none).
pub async fn cancel(state: &AppState, plan: &str, actor: &str) -> ServiceResult<()> {
    if !pending(state).await?.iter().any(|s| s.0 == plan) {
        return Err(ServiceError::not_found(format!("no scheduled start of plan {plan:?}")));
    }
    state
        .store
        .apply(
            &[put(plan, json!({"plan": plan, "cancelled_by": actor}), true, "cancel")],
            &state.change(actor, None),
        )
        .await?;
    Ok(())
}

/// Live schedules: `(plan, start_at, requester, reason)`.
pub async fn pending(
    state: &AppState,
) -> ServiceResult<Vec<(String, DateTime<Utc>, String, Option<String>)>> {
    let mut out = Vec::new();
    for h in state.heads(Kind::Setting, false).await? {
        let Some(plan) = h.key.strip_prefix(PREFIX) else { continue };
        let Some(at) =
            h.spec["start_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        out.push((
            plan.to_owned(),
            at.with_timezone(&Utc),
            h.spec["requester"].as_str().unwrap_or("scheduler").to_owned(),
            h.spec["reason"].as_str().map(str::to_owned),
        ));
    }
    out.sort_by_key(|s| s.1);
    Ok(out)
}

/// Starts every due schedule (called by the controller's tick) and closes it.
pub async fn run_due(state: &AppState) -> ServiceResult<()> {
    let now = state.clock.now();
    for (plan, at, requester, reason) in pending(state).await? {
        if at > now {
            continue;
        }
        let req = rollouts::StartRequest {
            plan: plan.clone(),
            reason: reason.clone(),
            artifact_sha256: None,
        };
        let (action, details) = match rollouts::start(state, &requester, req).await {
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
            json!({"plan": plan, "start_at": at, "requester": requester, "outcome": details}),
            true,
            action,
        );
        w.details = details;
        state.store.apply(&[w], &state.change("controller", reason)).await?;
    }
    Ok(())
}
