//! Waivers of vulnerability findings: an approver accepts one finding (by its id or an alias)
//! for one plan, with a reason, until it expires. Kept as the versioned setting
//! `waivers.<plan>`, so each grant and revocation is in the audit record (`setting.waive`,
//! `setting.unwaive`, with the finding, reason and expiry) and a concurrent one is never lost.

use chrono::{DateTime, Utc};
use serde_json::json;
use wavegate_rollout::vulns::Waiver;
use wavegate_store::{Kind, Put, StoreError};

use crate::service::{ServiceError, ServiceResult, Who};
use crate::state::AppState;

/// Waivers are the settings `waivers.<plan>`.
pub const PREFIX: &str = "waivers.";

/// How many times a write is tried against concurrent ones (every waiver of a plan is one
/// setting, so approvers granting at once take turns).
const ATTEMPTS: u32 = 20;

/// The longest a waiver may last.
pub const MAX_DAYS: i64 = 366;

async fn read(state: &AppState, plan: &str) -> ServiceResult<(Vec<Waiver>, i64)> {
    Ok(match state.head(Kind::Setting, &format!("{PREFIX}{plan}")).await? {
        Some(h) if !h.archived => {
            (serde_json::from_value(h.spec["waivers"].clone()).unwrap_or_default(), h.version)
        }
        Some(h) => (Vec::new(), h.version),
        None => (Vec::new(), 0),
    })
}

/// The waivers granted for `plan`, expired ones included.
pub async fn list(state: &AppState, plan: &str) -> ServiceResult<Vec<Waiver>> {
    Ok(read(state, plan).await?.0)
}

/// The expiry `text` names: an RFC 3339 time or a span from `now` (`30d`), in the future and
/// within [`MAX_DAYS`].
pub fn expiry(text: &str, now: DateTime<Utc>) -> ServiceResult<DateTime<Utc>> {
    let at = match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let span = wavegate_rollout::duration::parse_span(text).map_err(|e| {
                ServiceError::invalid(
                    "expires",
                    format!("expires must be an RFC 3339 time or a span like 30d: {e}"),
                )
            })?;
            now + chrono::Duration::seconds(span.secs().min(i64::MAX as u64 / 2) as i64)
        }
    };
    if at <= now || at > now + chrono::Duration::days(MAX_DAYS) {
        return Err(ServiceError::invalid(
            "expires",
            format!("a waiver must expire in the future, within {MAX_DAYS} days"),
        ));
    }
    Ok(at)
}

/// Whether `finding` looks like a vulnerability id (`GHSA-…`, `CVE-…`, `PYSEC-…`).
fn check_finding(finding: &str) -> ServiceResult<()> {
    let ok = (3..=100).contains(&finding.len())
        && finding.contains('-')
        && finding
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "finding",
            format!("{finding:?} is not a vulnerability id (GHSA-…, CVE-…, PYSEC-…)"),
        ))
    }
}

/// Writes `change` to the waivers of `plan` as `actor`, retried on a concurrent write.
async fn write<F>(
    state: &AppState,
    plan: &str,
    actor: &Who,
    verb: &str,
    details: serde_json::Value,
    mut change: F,
) -> ServiceResult<Vec<Waiver>>
where
    F: FnMut(&mut Vec<Waiver>) -> ServiceResult<()>,
{
    for attempt in 1..=ATTEMPTS {
        let (mut waivers, version) = read(state, plan).await?;
        change(&mut waivers)?;
        let put = Put {
            kind: Kind::Setting,
            key: format!("{PREFIX}{plan}"),
            spec: json!({"plan": plan, "waivers": waivers}),
            archived: false,
            expected_version: Some(version),
            action: Some(verb.into()),
            details: details.clone(),
        };
        let reason = details["reason"].as_str().map(str::to_owned);
        match state.store.apply(&[put], &state.change(actor, reason)).await {
            Ok(_) => return Ok(waivers),
            Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// Grants (or renews) a waiver of `finding` for `plan`, as `actor`.
pub async fn grant(
    state: &AppState,
    plan: &str,
    finding: &str,
    reason: &str,
    expires: &str,
    actor: &Who,
) -> ServiceResult<Vec<Waiver>> {
    check_finding(finding)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(ServiceError::invalid(
            "reason",
            "a waiver needs a reason of at most 2000 characters",
        ));
    }
    let now = state.clock.now();
    let expires = expiry(expires, now)?;
    let w = Waiver {
        finding: finding.to_ascii_uppercase(),
        reason: reason.to_owned(),
        expires,
        by: actor.name.clone(),
        at: now,
    };
    let details =
        json!({"plan": plan, "finding": w.finding, "reason": w.reason, "expires": w.expires});
    write(state, plan, actor, "waive", details, |list| {
        list.retain(|o| !o.finding.eq_ignore_ascii_case(&w.finding));
        list.push(w.clone());
        Ok(())
    })
    .await
}

/// Revokes the waiver of `finding` for `plan`, as `actor`.
pub async fn revoke(
    state: &AppState,
    plan: &str,
    finding: &str,
    actor: &Who,
) -> ServiceResult<Vec<Waiver>> {
    let details = json!({"plan": plan, "finding": finding});
    write(state, plan, actor, "unwaive", details, |list| {
        let before = list.len();
        list.retain(|o| !o.finding.eq_ignore_ascii_case(finding));
        if list.len() == before {
            return Err(ServiceError::not_found(format!(
                "plan {plan:?} has no waiver of {finding:?}"
            )));
        }
        Ok(())
    })
    .await
}
