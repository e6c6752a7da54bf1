//! `POST /api/v1/events`: batches of exposures and outcomes. The request is the wire type of
//! `wavegate-core` ([`EventBatch`]), which the SDK also sends.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
pub use wavegate_core::wire::{Event, EventBatch};

/// The answer to an event batch (202, once its effect is committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ingested {
    /// Events in the batch.
    pub accepted: u64,
    /// Events that counted in a rollout's arms.
    pub counted: u64,
    /// Events not counted because an earlier wave's configuration produced them (by their
    /// `version`, else their `at`; or the rule now serves their context another variant).
    pub stale: u64,
    /// Events not counted because they could not be placed in a wave: a flag version this
    /// server has not loaded yet, or (without a version) an `at` within the clock-skew
    /// allowance of the wave's start. Disjoint from `counted` and `stale`.
    #[serde(default)]
    pub unattributed: u64,
    /// Sent (as `true`) only for a batch whose `Idempotency-Key` was already committed: a
    /// retry, which counts nothing now because its first copy counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}
