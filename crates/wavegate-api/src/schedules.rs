//! `/api/v1/schedules`: scheduled rollout starts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A scheduled start (`GET /api/v1/schedules`, and `scheduled` in the answer to a start with
/// `start_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// The plan to start.
    pub plan: String,
    /// When.
    pub start_at: DateTime<Utc>,
    /// Who scheduled it (the rollout's requester).
    pub requester: String,
    /// Why.
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// The answer to `DELETE /api/v1/schedules/{plan}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cancelled {
    /// The plan whose start was cancelled.
    pub plan: String,
    /// Always true.
    pub cancelled: bool,
}
