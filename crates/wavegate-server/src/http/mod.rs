//! The HTTP layer: handlers that parse and authorise a request, call a service (or, for plain
//! reads, the store), and shape the answer. Grouped by what they serve: the admin resources
//! (`config`: environments, flags, segments; `tokens`; `audit`), plans and rollouts, events,
//! reports, scorecards, the freeze, schedules and notifications; the live views (`stream`,
//! the dashboard, OFREP's refetch events, and `sse`, what their streams share: the cap per
//! token, revocation, bounded queues); and the server as the protocols' flag source
//! (`protocols`). `error`, `json` and `auth` are what every handler shares.

pub mod adoption;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod conceal;
pub mod config;
pub mod convert;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod freeze;
pub mod gates;
pub mod json;
pub mod notify;
pub mod ofrep_events;
pub mod openapi;
pub mod otlp;
pub mod people;
pub mod protocols;
pub mod releases;
pub mod reports;
pub mod rollouts;
pub mod schedule;
pub mod scope;
pub mod scorecard;
pub mod signin;
pub mod sse;
pub mod stream;
pub mod tokens;
pub mod waivers;

use axum::http::HeaderMap;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};

/// Header carrying the reason for a change.
pub const REASON_HEADER: &str = "x-wavegate-reason";

/// The reason for a change a request gives in [`REASON_HEADER`], trimmed (None when empty).
pub fn reason(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REASON_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Refuses `what` to a token that is not scoped to every environment.
pub fn require_all_envs(p: &Principal, what: &str) -> ApiResult<()> {
    if p.0.all_envs() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("{what} needs an admin token for all environments")))
    }
}
