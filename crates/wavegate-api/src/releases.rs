//! `/api/v1/releases/{name}[/start|/report]`: coordinated releases of several plans.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One member of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMember {
    /// The stored plan it rolls out.
    pub plan: String,
    /// Members that must complete before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Members this one advances with, wave by wave (none more than one wave ahead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub with: Vec<String>,
}

/// `PUT /api/v1/releases/{name}`: the release document (its name is the path's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseDoc {
    /// What it ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its members (1 to 50).
    pub members: Vec<ReleaseMember>,
    /// What a member's failure does to the others: `pause_all` (default), `rollback_all` or
    /// `member` (only it stops; what comes after it never starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
}

/// A member as the release's status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberStatus {
    /// The plan.
    pub plan: String,
    /// `waiting`, `running`, `paused`, `completed` or `failed`.
    pub state: String,
    /// Its rollout in this release's run, once started.
    #[schema(required = true)]
    pub rollout: Option<String>,
    /// Its wave (1-based) while it runs.
    #[schema(required = true)]
    pub wave: Option<u64>,
}

/// A release: its document, and its run once started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseStatus {
    /// Its name.
    pub name: String,
    /// The document.
    pub doc: ReleaseDoc,
    /// The stored revision of the release (its document and its run; each step of the run is
    /// one).
    pub version: i64,
    /// `draft` (never started), `running`, `completed` or `failed`.
    pub state: String,
    /// Who started it.
    #[schema(required = true)]
    pub started_by: Option<String>,
    /// When.
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    /// Why it failed, when a member did.
    #[schema(required = true)]
    pub failure: Option<String>,
    /// Why a member that is due has not started, when its start was refused (tried again each
    /// tick).
    #[schema(required = true)]
    pub waiting: Option<String>,
    /// Its members, in the document's order.
    pub members: Vec<MemberStatus>,
}

/// One entry of a release's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseEvent {
    /// When.
    pub at: String,
    /// The member's plan, or `release` for the release's own entries.
    pub member: String,
    /// Who.
    pub actor: String,
    /// What (`rollout.start`, `rollout.promote`, `setting.release_start`…).
    pub action: String,
    /// Why, when given.
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// `GET /api/v1/releases/{name}/report`: one timeline and each member's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseReport {
    /// The release's status.
    pub release: ReleaseStatus,
    /// Every member's audited events and the release's own, oldest first.
    pub timeline: Vec<ReleaseEvent>,
    /// The report as Markdown.
    pub markdown: String,
}

impl From<&wavegate_rollout::release::ReleaseSpec> for ReleaseDoc {
    fn from(spec: &wavegate_rollout::release::ReleaseSpec) -> ReleaseDoc {
        let policy = serde_json::to_value(spec.on_failure).ok();
        ReleaseDoc {
            description: spec.description.clone(),
            members: spec
                .members
                .iter()
                .map(|m| ReleaseMember {
                    plan: m.plan.clone(),
                    after: m.after.clone(),
                    with: m.with.clone(),
                })
                .collect(),
            on_failure: policy.and_then(|v| v.as_str().map(str::to_owned)),
        }
    }
}

impl ReleaseDoc {
    /// The document as release `name`, or the field and why when `on_failure` is not a policy.
    pub fn into_spec(
        self,
        name: &str,
    ) -> Result<wavegate_rollout::release::ReleaseSpec, (String, String)> {
        use wavegate_rollout::release::{FailurePolicy, Member, ReleaseSpec};
        let on_failure: FailurePolicy = match self.on_failure {
            None => FailurePolicy::default(),
            Some(s) => serde_json::from_value(serde_json::Value::String(s)).map_err(|_| {
                (
                    "on_failure".to_owned(),
                    "on_failure is pause_all, rollback_all or member".to_owned(),
                )
            })?,
        };
        Ok(ReleaseSpec {
            name: name.to_owned(),
            description: self.description,
            members: self
                .members
                .into_iter()
                .map(|m| Member { plan: m.plan, after: m.after, with: m.with })
                .collect(),
            on_failure,
        })
    }
}
