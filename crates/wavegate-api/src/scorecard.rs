//! `/api/v1/plans/{name}/scorecard[/{item}]`: a plan's go/no-go scorecard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An item's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Done.
    Green,
    /// Not done.
    Red,
    /// Not needed here, with a reason; counts as green.
    Waived,
    /// Nobody has said (counts as not green).
    Unset,
}

impl ItemStatus {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Green => "green",
            ItemStatus::Red => "red",
            ItemStatus::Waived => "waived",
            ItemStatus::Unset => "unset",
        }
    }
}

/// One scorecard item, assessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    /// Its key.
    pub key: String,
    /// What it asks.
    pub title: String,
    /// Its status (an automatic item's check, unless a person waived it).
    pub status: ItemStatus,
    /// Whether the status came from an automatic check.
    pub automatic: bool,
    /// Who set it (`wavegate` for an automatic check).
    #[schema(required = true)]
    pub by: Option<String>,
    /// When a person set it.
    #[schema(required = true)]
    pub at: Option<DateTime<Utc>>,
    /// Evidence or the waiver's reason.
    #[schema(required = true)]
    pub note: Option<String>,
}

/// A plan's scorecard, assessed: `GET …/scorecard` (with `plan` and `plan_version`), the
/// answer to `PUT …/scorecard/{item}` (with `plan`), and `scorecard` in a rollout's view
/// (without either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Scorecard {
    /// Whether the plan declares a scorecard (only then does it block).
    pub declared: bool,
    /// The no-go threshold.
    pub max_red: u32,
    /// The items.
    pub items: Vec<Item>,
    /// Items not green (waived counts as green).
    pub not_green: u32,
    /// Go: fewer than `max_red` items not green.
    pub go: bool,
    /// Whether it holds the start and promotions (declared and no-go).
    pub blocks: bool,
    /// The plan's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The plan version assessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_version: Option<i64>,
    /// Why it blocks, naming the items (`null` when it does not).
    #[schema(required = true)]
    pub block_reason: Option<String>,
}

/// `PUT /api/v1/plans/{name}/scorecard/{item}`: set an item green or red with evidence, or
/// waive it with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetItem {
    /// `green`, `red` or `waived` (sent as given; the server says what it accepts).
    pub status: String,
    /// Evidence; required for `waived` (the reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
