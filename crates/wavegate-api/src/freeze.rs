//! `/api/v1/freeze`: the global freeze ("stop the line").

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The freeze setting, as stored: `{active: true, reason, by, at}` while on,
/// `{active: false, lifted_by, at}` once lifted, `{active: false}` when never set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Freeze {
    /// Whether every rollout holds and new ones are refused.
    pub active: bool,
    /// Why (while on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who turned it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Who lifted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<String>,
    /// When it was turned on or lifted (RFC 3339, whole seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// `PUT /api/v1/freeze`: turn the freeze on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeOn {
    /// Why (1 to 500 characters).
    pub reason: String,
}
