//! The global freeze ("stop the line"): while it is on, every running rollout holds as in a
//! blackout window (stop conditions, pause and rollback still act; nothing is promoted) and
//! new rollouts are refused. Stored as the versioned `freeze` setting, so every change is a
//! version with an audit entry.

use serde_json::{Value, json};
use wavegate_api::freeze::Freeze;
use wavegate_store::{Kind, Put};

use crate::service::{ServiceError, Who};

use crate::service::ServiceResult;
use crate::state::AppState;

/// The key of the setting that holds the freeze.
pub const KEY: &str = "freeze";

/// The freeze's reason when it is on.
pub async fn active(state: &AppState) -> ServiceResult<Option<String>> {
    Ok(state.head(Kind::Setting, KEY).await?.and_then(|h| {
        (h.spec["active"] == Value::Bool(true))
            .then(|| h.spec["reason"].as_str().unwrap_or("").to_owned())
    }))
}

/// The stored freeze setting (`{"active": false}` when there has never been one).
pub async fn show(state: &AppState) -> ServiceResult<Freeze> {
    Ok(match state.head(Kind::Setting, KEY).await? {
        Some(h) => serde_json::from_value(h.spec).map_err(ServiceError::internal)?,
        None => Freeze { active: false, reason: None, by: None, lifted_by: None, at: None },
    })
}

/// Turns the freeze on with `reason` (Some) or lifts it (None), as `actor`, recording `why`.
/// Returns the stored setting.
pub async fn set(
    state: &AppState,
    reason: Option<&str>,
    actor: &Who,
    why: String,
) -> ServiceResult<Freeze> {
    let at = Some(state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let freeze = match reason {
        Some(reason) => Freeze {
            active: true,
            reason: Some(reason.into()),
            by: Some(actor.name.clone()),
            lifted_by: None,
            at,
        },
        None => Freeze {
            active: false,
            reason: None,
            by: None,
            lifted_by: Some(actor.name.clone()),
            at,
        },
    };
    let put = Put {
        kind: Kind::Setting,
        key: KEY.into(),
        spec: serde_json::to_value(&freeze).map_err(ServiceError::internal)?,
        archived: false,
        expected_version: None,
        action: None,
        details: json!({}),
    };
    state.store.apply(&[put], &state.change(actor, Some(why))).await?;
    Ok(freeze)
}
