//! `/api/v1/notifications/…`: notification targets (webhooks worded for an audience) and the
//! delivery log.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who a target speaks to; each audience has its own default wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    /// Sponsors: one line, business terms.
    Executive,
    /// Release managers: state, next step, who acted.
    Manager,
    /// The people using the feature: friendly, no internals.
    EndUser,
    /// The engineer on call: technical, with the reason and the runbook.
    OnCall,
    /// One person who champions or trains a cohort (the target's `person`, as a plan's
    /// `stakeholders` names them): hears only of the cohorts addressed to them
    /// (`cohort_lagging`), with the numbers and the enablement steps.
    Champion,
}

impl Audience {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Executive => "executive",
            Audience::Manager => "manager",
            Audience::EndUser => "end-user",
            Audience::OnCall => "on-call",
            Audience::Champion => "champion",
        }
    }
}

/// What happened to a rollout, as targets hear of it (ordered as a rollout's life goes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A wave waits for approval.
    ApprovalRequested,
    /// A wave was promoted.
    Promoted,
    /// Paused by a person or a stop condition.
    Paused,
    /// Rolled back.
    RolledBack,
    /// Escalated.
    Escalated,
    /// Reached 100% and finished.
    Completed,
    /// Held clean at 100% for the settle time: the flag can be removed from code.
    Stale,
    /// A change request for a protected environment awaits its reviewers.
    ChangeProposed,
    /// An emergency change was applied without review; its post-incident review is due.
    Emergency,
    /// A signed checkpoint of the audit chain's head (`serve --checkpoint-key`): kept outside
    /// the database, it lets `wavegate audit verify --checkpoints` detect a log cut short or
    /// rewritten. Only targets that name it hear of it.
    Checkpoint,
    /// A people gate (adoption, feedback) holds a wave's promotion.
    Gated,
    /// A cohort's adoption lags: told to its champion and training owner.
    CohortLagging,
    /// "You said → we did": the feedback fixed so far, told when a wave is promoted or the
    /// rollout completes (end users by default).
    YouSaidWeDid,
}

impl NotifyEvent {
    /// Every rollout event, in the order of a rollout's life (a target hears all of them by
    /// default; `Checkpoint` only when it names it).
    pub const ALL: [NotifyEvent; 12] = [
        NotifyEvent::ApprovalRequested,
        NotifyEvent::Promoted,
        NotifyEvent::Paused,
        NotifyEvent::RolledBack,
        NotifyEvent::Escalated,
        NotifyEvent::Completed,
        NotifyEvent::Stale,
        NotifyEvent::ChangeProposed,
        NotifyEvent::Emergency,
        NotifyEvent::Gated,
        NotifyEvent::CohortLagging,
        NotifyEvent::YouSaidWeDid,
    ];

    /// Its name in the API and in templates.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::ApprovalRequested => "approval_requested",
            NotifyEvent::Promoted => "promoted",
            NotifyEvent::Paused => "paused",
            NotifyEvent::RolledBack => "rolled_back",
            NotifyEvent::Escalated => "escalated",
            NotifyEvent::Completed => "completed",
            NotifyEvent::Stale => "stale",
            NotifyEvent::ChangeProposed => "change_proposed",
            NotifyEvent::Emergency => "emergency",
            NotifyEvent::Checkpoint => "checkpoint",
            NotifyEvent::Gated => "gated",
            NotifyEvent::CohortLagging => "cohort_lagging",
            NotifyEvent::YouSaidWeDid => "you_said_we_did",
        }
    }
}

/// The payload shape a target receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// `{event, audience, text, rollout, url, audit_seq, at}`.
    #[default]
    Json,
    /// Slack's incoming-webhook shape: `{text, blocks}`.
    Slack,
    /// Microsoft Teams: a message carrying an Adaptive Card (title, text, facts, a link).
    Teams,
    /// PagerDuty Events API v2 (`https://events.pagerduty.com/v2/enqueue`): a stop condition
    /// triggers an alert, completion or a later promotion resolves it, with one dedup key per
    /// rollout; the target's `secret` is the integration's routing key (added when sending,
    /// never stored in the delivery log). Other events are not sent.
    Pagerduty,
}

impl PayloadFormat {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Json => "json",
            PayloadFormat::Slack => "slack",
            PayloadFormat::Teams => "teams",
            PayloadFormat::Pagerduty => "pagerduty",
        }
    }
}

/// A target as the API shows it (`GET …/targets[/{name}]`, and the answer to `PUT`): its
/// settings without the secret, whether it has one, and its name and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// Who it speaks to.
    pub audience: Audience,
    /// The webhook URL.
    pub url: String,
    /// Payload shape.
    pub format: PayloadFormat,
    /// Events it hears of.
    pub events: Vec<NotifyEvent>,
    /// Environments it hears of (`*`: all).
    pub environments: Vec<String>,
    /// For the `champion` audience: the person it reaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// minijinja templates replacing the audience's default wording, by event.
    pub templates: IndexMap<String, String>,
    /// Whether requests are signed (`X-Wavegate-Signature`).
    pub signed: bool,
    /// True when the target came from a backup taken without secrets: `url` is only where it
    /// led and the signing secret is gone, so nothing is sent until it is set again (`PUT`).
    /// Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// `PUT /api/v1/notifications/targets/{name}`: create or replace a target. Names are sent as
/// given; the server validates them (and says which it knows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PutTarget {
    /// `executive`, `manager`, `end-user`, `on-call` or `champion`.
    pub audience: String,
    /// For `champion`: the person it reaches (as a plan's `stakeholders` names them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The webhook URL (http or https).
    pub url: String,
    /// `json` (default), `slack`, `teams` or `pagerduty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Events it hears of (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Environments it hears of (default: `["*"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Templates by event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<IndexMap<String, String>>,
    /// A signing secret (at least 16 characters); never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The answer to `POST /api/v1/notifications/targets/{name}/test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TestSent {
    /// Whether the receiver took it (a 2xx).
    pub ok: bool,
    /// The receiver's HTTP status, if it answered.
    #[schema(required = true)]
    pub http_status: Option<i64>,
    /// Why it was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The message as rendered.
    pub text: String,
}

/// One delivery (`GET /api/v1/notifications/deliveries`, newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The audit entry it reports.
    pub audit_seq: i64,
    /// The target's name.
    pub target: String,
    /// The target's audience.
    pub audience: String,
    /// The event.
    pub event: String,
    /// The rollout's id.
    pub rollout: String,
    /// The rollout's environment.
    pub environment: String,
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// The last attempt's error, if it failed.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// The last attempt's HTTP status, if the receiver answered.
    #[schema(required = true)]
    pub http_status: Option<i64>,
    /// When the next attempt is due (pending ones only).
    #[schema(required = true)]
    pub next_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The message.
    #[schema(required = true)]
    pub text: Option<String>,
}
