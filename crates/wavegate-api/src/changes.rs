//! `/api/v1/changes`: change requests for protected environments, and the emergency path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/changes`: a proposed change (flags and segments in the flags-as-code format,
/// plans as their YAML).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChange {
    /// What it does and why (shown to reviewers).
    pub description: String,
    /// The change record's id in the change board's system (e.g. `CHG-1042`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Flags, by key, as `PUT /api/v1/flags/{key}` takes them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Segments, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub segments: BTreeMap<String, serde_json::Value>,
    /// Plans, each as its YAML text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<String>,
    /// Declares an emergency, with its reason: applied at once (by a releaser), marked, and
    /// open until an approver records the post-incident review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<String>,
}

/// Who did something, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stamp {
    /// The person.
    pub by: String,
    /// When (RFC 3339 with milliseconds).
    pub at: String,
}

/// One item of a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeItem {
    /// `flag`, `segment` or `plan`.
    pub kind: String,
    /// Its key (a plan's name).
    pub key: String,
    /// The version it was proposed against (0: new); applying refuses if the head has moved.
    pub base_version: i64,
    /// The content proposed.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// The environments it changes.
    pub environments: Vec<String>,
}

/// A comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Comment {
    /// Who and when.
    #[serde(flatten)]
    pub stamp: Stamp,
    /// What they said.
    pub text: String,
}

/// A reason given with a stamp (rejection, emergency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reasoned {
    /// Who and when.
    #[serde(flatten)]
    pub stamp: Stamp,
    /// Why.
    pub reason: String,
}

/// An emergency change's post-incident review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentReview {
    /// Who recorded it, and when.
    #[serde(flatten)]
    pub stamp: Stamp,
    /// Where the post-mortem lives.
    pub link: String,
    /// What it concluded.
    pub summary: String,
}

/// A change request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeRequest {
    /// Its id (`cr_…`).
    pub id: String,
    /// `open`, `approved`, `applied`, `rejected` or `withdrawn`.
    pub state: String,
    /// Who proposed it, and when.
    pub author: Stamp,
    /// What it does and why.
    pub description: String,
    /// The change record's id, if given.
    #[serde(default)]
    pub record: Option<String>,
    /// The environments it changes.
    pub environments: Vec<String>,
    /// The protected ones among them, and the approvals they need (the most of them).
    pub protected: Vec<String>,
    /// Approvals needed (distinct people, never the author).
    pub required_approvals: u32,
    /// What it changes.
    pub items: Vec<ChangeItem>,
    /// Whether it changes a plan's `runbook` or `checks` (reviewers look twice).
    pub touches_runbook: bool,
    /// Approvals given.
    pub approvals: Vec<Stamp>,
    /// Comments.
    pub comments: Vec<Comment>,
    /// The rejection, if rejected.
    #[serde(default)]
    pub rejected: Option<Reasoned>,
    /// When it was applied, and by whom.
    #[serde(default)]
    pub applied: Option<Stamp>,
    /// The emergency declared, if it was one.
    #[serde(default)]
    pub emergency: Option<Reasoned>,
    /// The post-incident review (emergencies only).
    #[serde(default)]
    pub review: Option<IncidentReview>,
    /// An emergency change without its review yet: open on the dashboard and in reports.
    pub awaiting_review: bool,
}

/// `POST /api/v1/changes/{id}/{action}`: what an action carries (`reason` for reject, `text`
/// for comment, `link` and `summary` for review).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAction {
    /// Why (reject, withdraw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A comment's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The post-mortem's address (review).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The review's conclusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// `PUT /api/v1/environments/{name}/protection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Protection {
    /// Approvals (distinct people, not the author) a change there needs: 1 to 10.
    pub approvals: u32,
}

/// The protected environments and what each needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Protections {
    /// Environment → approvals needed.
    pub environments: BTreeMap<String, u32>,
}
