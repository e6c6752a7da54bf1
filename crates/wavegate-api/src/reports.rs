//! Reports: DORA metrics (`GET /api/v1/reports/dora`), the release calendar
//! (`GET /api/v1/calendar`), pilot feedback (`POST /api/v1/feedback`,
//! `GET /api/v1/feedback/digest`), adoption by cohort (`GET /api/v1/rollouts/{id}/adoption`,
//! `GET /api/v1/reports/adoption`) and the post-rollout report
//! (`GET /api/v1/rollouts/{id}/report`), as JSON (`format=json`, the default; Markdown, HTML
//! and iCalendar answers are text).
//!
//! The reports are built by `wavegate-rollout`, whose types only serialise (they hold
//! `&'static str`s); the types here mirror them field for field so that clients can read them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---------- DORA ----------

pub use wavegate_rollout::report::{DoraReport, GroupReport, Metric};

// ---------- calendar ----------

/// One calendar entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CalendarEntry {
    /// `rollout`, `scheduled`, `blackout`, `freeze` or `conflict`.
    pub kind: String,
    /// What it is.
    pub title: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End (for a live rollout: at the earliest, after its remaining holds).
    pub end: DateTime<Utc>,
    /// Environment, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Plan, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Rollout id(s), when it has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<String>,
}

/// `GET /api/v1/calendar` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Calendar {
    /// From (now).
    pub from: DateTime<Utc>,
    /// To (now plus the days asked for).
    pub to: DateTime<Utc>,
    /// The entries, by start.
    pub entries: Vec<CalendarEntry>,
}

// ---------- feedback ----------

/// One piece of pilot feedback (`POST /api/v1/feedback` takes one, or
/// [`FeedbackBatch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackItem {
    /// The release it is about.
    pub release: String,
    /// Its category (`usability`, `performance`…).
    pub category: String,
    /// Who gave it (a cohort: team, region, role…).
    pub cohort: String,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: String,
    /// What they said.
    pub text: String,
    /// It blocks the release until fixed (a wave's feedback gate counts open blockers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocker: bool,
}

/// A stored feedback item with its status (`GET /api/v1/feedback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackEntry {
    /// Its id.
    pub id: i64,
    /// The release it is about.
    pub release: String,
    /// Its category.
    pub category: String,
    /// Who gave it.
    pub cohort: String,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: String,
    /// What they said.
    pub text: String,
    /// When it was received.
    pub at: DateTime<Utc>,
    /// Whether it blocks the release.
    pub blocker: bool,
    /// `open`, `fixed` or `wont_fix`.
    pub status: String,
    /// The note that closed it.
    #[schema(required = true)]
    pub resolution: Option<String>,
    /// What fixed it (`flag <key> v<N>`, `plan <name> v<N>`).
    #[schema(required = true)]
    pub fixed_in: Option<String>,
    /// When it was closed.
    #[schema(required = true)]
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it.
    #[schema(required = true)]
    pub closed_by: Option<String>,
}

/// `GET /api/v1/feedback?release=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackList {
    /// The release.
    pub release: String,
    /// Its items, oldest first.
    pub items: Vec<FeedbackEntry>,
}

/// `POST /api/v1/feedback/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackStatusBody {
    /// `open`, `fixed` or `wont_fix`.
    pub status: String,
    /// What was done, or why not (needed to close an item).
    #[serde(default)]
    pub note: Option<String>,
    /// What fixed it: `{kind: flag|plan, key, version}`; checked against the stored versions.
    #[serde(default)]
    pub fixed_in: Option<FixedIn>,
}

/// The stored version that fixed a feedback item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedIn {
    /// `flag` or `plan`.
    pub kind: String,
    /// The flag's key or the plan's name.
    pub key: String,
    /// Its version.
    pub version: i64,
}

pub use wavegate_rollout::success::{Status as SuccessState, SuccessStatus as SuccessTarget};

/// `GET /api/v1/rollouts/{id}/success`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SuccessReport {
    /// The rollout.
    pub rollout: String,
    /// Each target with its status.
    pub targets: Vec<SuccessTarget>,
    /// Every target met (`null` without targets).
    #[schema(required = true)]
    pub all_met: Option<bool>,
}

/// An incident or support ticket (`POST /api/v1/incidents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentBody {
    /// Its id where it was raised (a retry with the same id is stored once); default: a new id.
    #[serde(default)]
    pub id: Option<String>,
    /// `incident` (default) or `ticket`.
    #[serde(default)]
    pub kind: Option<String>,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    /// The service it is about (a plan's `release.service`).
    pub service: String,
    /// The user affected, when known (`targetingKey`): counted in the arm that user is served.
    #[serde(default)]
    pub user: Option<String>,
    /// More of the user's context (attributes the flag's rules read).
    #[serde(default)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    /// What happened.
    pub title: String,
    /// When it was raised (default: now).
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// Where a recorded incident counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentArm {
    /// Rollout id.
    pub rollout: String,
    /// The wave (1-based; the watch is the one after the last).
    pub wave: i64,
    /// `treatment` or `control`.
    pub arm: String,
}

/// A recorded incident (the answer to a report, and `GET /api/v1/incidents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    /// wavegate's id.
    pub id: i64,
    /// `api`, `pagerduty` or `opsgenie`.
    pub source: String,
    /// Its id at the source.
    pub external_id: String,
    /// `incident` or `ticket`.
    pub kind: String,
    /// Severity.
    pub severity: String,
    /// Service.
    pub service: String,
    /// The user, when known.
    #[schema(required = true)]
    pub user: Option<String>,
    /// What happened.
    pub title: String,
    /// When it was raised.
    pub at: DateTime<Utc>,
    /// Where it counts.
    pub arms: Vec<IncidentArm>,
    /// False when this id was already recorded (a retry).
    pub new: bool,
}

/// What a deployment tool is told about a plan (`GET /api/v1/gates/argo/{plan}`, and the body of
/// every Flagger webhook answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GateAnswer {
    /// The plan.
    pub plan: String,
    /// `go`, `wait` or `stop` (Argo Rollouts: `successCondition: result.verdict == "go"`,
    /// `failureCondition: result.verdict == "stop"`).
    pub verdict: String,
    /// `verdict == "go"`.
    pub go: bool,
    /// Why.
    pub reason: String,
    /// The plan's latest rollout, if any.
    #[schema(required = true)]
    pub rollout: Option<String>,
    /// Its state.
    #[schema(required = true)]
    pub state: Option<String>,
    /// Its wave, 1-based.
    #[schema(required = true)]
    pub wave: Option<u64>,
    /// Its guardrails' latest verdicts in the current wave.
    pub guardrails: Vec<GateGuardrail>,
}

/// A guardrail's latest verdict, as a gate reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GateGuardrail {
    /// The guardrail.
    pub name: String,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
}

/// The body of a Flagger webhook call (`CanaryWebhookPayload`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlaggerPayload {
    /// The canary's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The canary's phase (`Progressing`, `Waiting`, `Promoting`…).
    #[serde(default)]
    pub phase: Option<String>,
    /// Flagger's checksum of the canary's configuration.
    #[serde(default)]
    pub checksum: Option<String>,
    /// The webhook's metadata; `token` carries the wavegate token (Flagger sends no headers).
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// `POST /api/v1/feedback` with several items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackBatch {
    /// 1 to 1000 items.
    pub feedback: Vec<FeedbackItem>,
}

/// The answer to `POST /api/v1/feedback` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackAccepted {
    /// Items stored.
    pub accepted: u64,
    /// Their ids.
    pub ids: Vec<i64>,
}

pub use wavegate_rollout::feedback::{CategoryDigest, CohortDigest, Digest, Tally};

/// `GET /api/v1/feedback/digest?release=…` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackDigest {
    /// The release.
    pub release: String,
    /// Its digest.
    pub digest: Digest,
}

// ---------- adoption ----------

pub use wavegate_rollout::adoption::{
    AdoptionReport, AttributeAdoption, CohortAdoption, Lagging, Rate,
};

/// What an adoption report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AdoptionAbout {
    /// The rollout's id.
    pub rollout: String,
    /// Its plan.
    pub plan: String,
    /// Its flag.
    pub flag: String,
    /// Its environment.
    pub environment: String,
    /// Its state (`running`, `completed`…).
    pub state: String,
    /// `name version` of the release.
    pub release: String,
    /// When the rollout started.
    pub started_at: DateTime<Utc>,
    /// When tracking ends (the plan's `adoption.track` after the start).
    pub tracked_until: DateTime<Utc>,
    /// Whether its users are still being tracked.
    pub tracking: bool,
    /// The day the counts are from (`YYYY-MM-DD`, UTC).
    pub as_of: String,
}

/// `GET /api/v1/rollouts/{id}/adoption` (JSON): what it is about, then the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutAdoption {
    /// What the report is about.
    #[serde(flatten)]
    pub about: AdoptionAbout,
    /// The report.
    #[serde(flatten)]
    pub report: AdoptionReport,
}

/// One rollout in the adoption summary: what it is about and its overall adoption and lagging
/// cohorts (not the per-attribute breakdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdoptionSummaryItem {
    /// What it is about.
    #[serde(flatten)]
    pub about: AdoptionAbout,
    /// The key task's metric.
    pub key_task: String,
    /// The windows in days.
    pub windows: Vec<u32>,
    /// The window lagging cohorts are judged in.
    pub lagging_window: u32,
    /// All users, per window.
    pub overall: Vec<Rate>,
    /// Lagging cohorts, worst first.
    pub lagging: Vec<Lagging>,
}

/// `GET /api/v1/reports/adoption`: every rollout whose plan tracks adoption, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdoptionSummary {
    /// The rollouts (at most 50).
    pub rollouts: Vec<AdoptionSummaryItem>,
}

// ---------- post-rollout report ----------

pub use wavegate_rollout::retro::{AfterReleaseItem, Decision, PostRolloutReport, TimelineEntry};
