//! Types the [`crate::Store`] trait speaks.

use chrono::{DateTime, Utc};
pub use wavegate_core::access::{Environment, Grant, Role, TokenKind, TokenRecord};

/// Who is changing something, why, and when (time comes from the caller's clock).
#[derive(Debug, Clone)]
pub struct Change {
    /// The principal making the change.
    pub actor: String,
    /// How they signed in ([`wavegate_core::audit::AuditEvent::via`]); `None` for the
    /// controller and the system.
    pub via: Option<String>,
    /// Their stated reason.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The versioned things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Flags.
    Flag,
    /// Segments.
    Segment,
    /// Rollout plans.
    Plan,
    /// Go/no-go scorecard item states, one per plan (keyed by the plan's key).
    Scorecard,
    /// Server-wide settings (`freeze`).
    Setting,
}

impl Kind {
    /// `flag` / `segment`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Flag => "flag",
            Kind::Segment => "segment",
            Kind::Plan => "plan",
            Kind::Scorecard => "scorecard",
            Kind::Setting => "setting",
        }
    }
    /// Its table of current heads (`flags`…).
    pub(crate) fn table(self) -> String {
        format!("{}s", self.as_str())
    }
    /// Its table of versions (`flag_versions`…).
    pub(crate) fn versions_table(self) -> String {
        format!("{}_versions", self.as_str())
    }
}

/// The current state of a flag or segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Its key.
    pub key: String,
    /// Its current version.
    pub version: i64,
    /// Its content (a `FlagSpec` / `SegmentSpec` as JSON).
    pub spec: serde_json::Value,
    /// Archived things are kept but no longer served.
    pub archived: bool,
    /// When the current version was written.
    pub updated_at: DateTime<Utc>,
    /// Who wrote it.
    pub updated_by: String,
    /// Hex SHA-256 of the stored spec text, as read (what the audit entry for this version
    /// records as `content_sha256` unless the row was changed outside wavegate).
    pub content_sha256: String,
}

/// One immutable version.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    /// Key of the flag or segment.
    pub key: String,
    /// Version number, from 1, without gaps.
    pub version: i64,
    /// Full content.
    pub spec: serde_json::Value,
    /// Whether this version archived it.
    pub archived: bool,
    /// Who made it.
    pub actor: String,
    /// What made it (`flag.create`, `flag.update`, `flag.revert`, `flag.archive`…).
    pub action: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Hex SHA-256 of the stored spec text, as read.
    pub content_sha256: String,
}

/// One write in an [`crate::Store::apply`] batch.
#[derive(Debug, Clone)]
pub struct Put {
    /// Flag or segment.
    pub kind: Kind,
    /// Its key.
    pub key: String,
    /// The new content.
    pub spec: serde_json::Value,
    /// The new archived state.
    pub archived: bool,
    /// Refuse with `Conflict` unless the current version is this (0: must not exist).
    pub expected_version: Option<i64>,
    /// The audit action's verb (`create`/`update` chosen automatically when `None`).
    pub action: Option<String>,
    /// Extra audit particulars (e.g. `{"reverted_to": 3}`).
    pub details: serde_json::Value,
}

/// What one put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// Flag or segment.
    pub kind: Kind,
    /// Its key.
    pub key: String,
    /// The version now current.
    pub version: i64,
    /// `false` when the content equalled the current version (no new version).
    pub changed: bool,
}

/// A token to store: its secret is already hashed. The fields mean what [`TokenRecord`]'s do.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct NewToken {
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    pub kind: TokenKind,
    pub environments: Vec<String>,
    pub principal: String,
    pub user_admin: bool,
    pub evaluate_only: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Stored for an admin-kind token only.
    pub roles: Vec<Grant>,
    pub groups: Vec<String>,
}

/// An audit entry as stored. `at`, `actor`, `action` and `target` are read from the chained
/// canonical bytes (what the hash covers), never from the table's listing columns, which only
/// index the log; where a column disagrees with the entry, `forged_columns` says how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The chained entry (sequence, hashes, canonical bytes).
    pub entry: wavegate_core::audit::ChainedEntry,
    /// When, as chained.
    pub at: String,
    /// Who, as chained.
    pub actor: String,
    /// What, as chained.
    pub action: String,
    /// To what, as chained.
    pub target: String,
    /// The listing columns that disagree with the chained entry (`actor column "x", entry
    /// "y"`), or `None` when they agree.
    pub forged_columns: Option<String>,
}

/// A stored rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRow {
    /// Id.
    pub id: String,
    /// Plan key.
    pub plan: String,
    /// Flag key.
    pub flag: String,
    /// Environment.
    pub environment: String,
    /// State name (`running`, `paused`, `completed`, `rolled_back`, `aborted`).
    pub state: String,
    /// Revision, bumped by every write.
    pub rev: i64,
    /// The state machine's stored form.
    pub doc: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A stored verdict (guardrail or sample-ratio check) with its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictRow {
    /// Sequence.
    pub id: i64,
    /// Rollout id.
    pub rollout: String,
    /// Wave, 0-based.
    pub wave: i64,
    /// `guardrail` or `srm`.
    pub kind: String,
    /// Guardrail name (or `srm`).
    pub name: String,
    /// pass / fail / inconclusive (or mismatch / ok).
    pub verdict: String,
    /// The full report.
    pub report: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// One write of a rollout: its new row, and everything that goes with it, in one transaction.
#[derive(Debug, Clone)]
pub struct RolloutWrite {
    /// The row (its `rev` is the revision read; 0 for a new rollout).
    pub row: RolloutRow,
    /// A flag change (exposure or restore) to apply with it.
    pub flag_put: Option<Put>,
    /// Verdicts to store.
    pub verdicts: Vec<VerdictRow>,
    /// Audit events for the transitions: (action, target, details).
    pub audit: Vec<(String, String, serde_json::Value)>,
    /// For the controller's writes: the leadership epoch they were decided under. The write is
    /// refused (conflict) if another replica has led since, so a deposed leader cannot write.
    pub leader_epoch: Option<i64>,
}

/// What one [`crate::Store::add_aggregates`] call adds, in one transaction: deltas to aggregate
/// cells, bucket counts to sketches and users' adoption, received at `at`, with the batch's
/// idempotency key if it has one.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct AggregateBatch {
    pub deltas: Vec<AggregateDelta>,
    pub sketches: Vec<SketchDelta>,
    /// At most one row per (rollout, user).
    pub adoption: Vec<AdoptionDelta>,
    pub at: DateTime<Utc>,
    pub key: Option<String>,
}

/// A delta to one aggregate cell.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateDelta {
    /// Rollout id.
    pub rollout: String,
    /// Wave, 0-based.
    pub wave: i64,
    /// `treatment` or `control`.
    pub arm: String,
    /// Metric name (`exposure`, `error`, `latency_ms`, …).
    pub metric: String,
    /// Added count.
    pub n: f64,
    /// Added sum.
    pub sum: f64,
    /// Added sum of squares.
    pub sumsq: f64,
    /// The token that contributed it (its id; empty when no token did): kept apart per
    /// token so that an admin can leave one token's contributions out of a rollout's verdicts.
    pub source: String,
}

/// One user's adoption of a rollout's new variant, as an event batch saw it (the adoption
/// report's input: one row per rollout and user, the latest days win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptionDelta {
    /// Rollout id.
    pub rollout: String,
    /// The user (`targetingKey`, else `sessionId`).
    pub user: String,
    /// The user's cohort: their values of the plan's cohort attributes, as a JSON array of
    /// strings in the plan's order.
    pub cohort: String,
    /// Day (days since 1970-01-01, UTC) the user was last served the new variant.
    pub exposed_day: i64,
    /// Day the user last did the key task, if they did in this batch.
    pub task_day: Option<i64>,
    /// The rollout's wave (0-based) when this batch saw the user: the first one seen is kept.
    pub wave: i64,
}

/// Users first served a rollout's new variant in one wave, and of those, users who did the
/// key task (ever since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveCount {
    /// The wave, 0-based.
    pub wave: i64,
    /// Users first served in it.
    pub exposed: i64,
    /// Of those, users who did the key task.
    pub adopted: i64,
}

/// Users of one cohort in a window: served the new variant, and of those, did the key task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptionCount {
    /// The cohort, as stored ([`AdoptionDelta::cohort`]).
    pub cohort: String,
    /// Users last served the new variant on or after the window's first day.
    pub exposed: i64,
    /// Of those, users who last did the key task on or after that day.
    pub adopted: i64,
}

/// One aggregate cell: the fields mean what [`AggregateDelta`]'s do, summed.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct AggregateRow {
    pub arm: String,
    pub metric: String,
    pub n: f64,
    pub sum: f64,
    pub sumsq: f64,
    /// When it last changed.
    pub last_at: DateTime<Utc>,
}

/// Bucket counts to add to one latency sketch (see `wavegate_rollout::sketch`); its cell's
/// fields mean what [`AggregateDelta`]'s do.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct SketchDelta {
    pub rollout: String,
    pub wave: i64,
    pub arm: String,
    pub metric: String,
    /// Bucket index → added count.
    pub counts: std::collections::BTreeMap<i32, u64>,
    /// The token that contributed it ([`AggregateDelta::source`]); empty in a sketch read back
    /// summed over tokens.
    pub source: String,
}

/// What one token contributed to one aggregate cell of a rollout (`GET
/// /api/v1/rollouts/{id}/contributions`): the fields mean what [`AggregateRow`]'s do.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct Contribution {
    /// The token's id (empty: counts from before contributions were kept per token).
    pub source: String,
    pub wave: i64,
    pub arm: String,
    pub metric: String,
    pub n: f64,
    pub last_at: DateTime<Utc>,
}

/// A stored drill run (evidence for a plan version).
#[derive(Debug, Clone, PartialEq)]
pub struct DrillRow {
    /// Sequence.
    pub id: i64,
    /// Plan key.
    pub plan: String,
    /// The plan version it rehearsed.
    pub plan_version: i64,
    /// Scenario name.
    pub scenario: String,
    /// Whether it passed.
    pub passed: bool,
    /// The full report.
    pub report: serde_json::Value,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: String,
}

/// A stored notification target. The server owns the shape of `spec` (audience, URL,
/// format, events, environments, templates); the store keeps it as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyTargetRow {
    /// Unique name.
    pub name: String,
    /// The target's settings.
    pub spec: serde_json::Value,
    /// The audit entry that created it: only later entries are notified to it.
    pub since_seq: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A notification to send: one audit entry for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// The audit entry it reports.
    pub audit_seq: i64,
    /// Target name.
    pub target: String,
    /// The target's audience.
    pub audience: String,
    /// Event name (`rolled_back`, `promoted`…).
    pub event: String,
    /// Rollout id.
    pub rollout: String,
    /// The rollout's environment.
    pub environment: String,
    /// The body to POST.
    pub payload: serde_json::Value,
    /// When it was queued (and first due).
    pub at: DateTime<Utc>,
}

/// A delivery in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Sequence.
    pub id: i64,
    /// What was queued (its `at` is when).
    pub queued: NewDelivery,
    /// Where it stands (its `at`: when that last changed).
    pub state: DeliveryState,
}

/// Where a delivery stands: as queued, or after its latest attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryState {
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// The last attempt's HTTP status, if the receiver answered.
    pub http_status: Option<i64>,
    /// When the next attempt is due (pending only).
    pub next_at: DateTime<Utc>,
    /// When it was reached.
    pub at: DateTime<Utc>,
}

/// Filters for the delivery log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only this rollout.
    pub rollout: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// One piece of pilot feedback about a release (`Default`: an empty status is stored as `open`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackRow {
    /// Sequence (0 when new).
    pub id: i64,
    /// The release it is about (a plan's `release.name`).
    pub release: String,
    /// Category (`bug`, `usability`, `performance`, …).
    pub category: String,
    /// The cohort it came from (a team, location, function…).
    pub cohort: String,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: String,
    /// What was said.
    pub body: String,
    /// When it was received.
    pub at: DateTime<Utc>,
    /// The token's principal that sent it.
    pub principal: String,
    /// It blocks the release until fixed (a feedback gate counts open blockers).
    pub blocker: bool,
    /// `open`, `fixed` or `wont_fix`.
    pub status: String,
    /// The note that closed it (what was done, or why not).
    pub resolution: Option<String>,
    /// What fixed it: `flag <key> v<N>` or `plan <name> v<N>`.
    pub fixed_in: Option<String>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it.
    pub closed_by: Option<String>,
}

/// A feedback item's new status (`POST /api/v1/feedback/{id}/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackStatus {
    /// `open`, `fixed` or `wont_fix`.
    pub status: String,
    /// The note: what was done, or why not.
    pub resolution: Option<String>,
    /// What fixed it.
    pub fixed_in: Option<String>,
}

/// An incident or support ticket, and the arm of each live rollout its user was in.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// Sequence (0 when new).
    pub id: i64,
    /// `api`, `pagerduty` or `opsgenie`.
    pub source: String,
    /// Its id at the source (a retry of the same id is stored once).
    pub external_id: String,
    /// `incident` or `ticket`.
    pub kind: String,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    /// The service it is about (a plan's `release.service`).
    pub service: String,
    /// The user affected, when known.
    pub user: Option<String>,
    /// What happened.
    pub title: String,
    /// When it was raised.
    pub at: DateTime<Utc>,
    /// The token's principal that reported it.
    pub principal: String,
    /// The live rollouts whose rule served the user, with the arm and wave.
    pub arms: Vec<IncidentArm>,
}

/// Where an incident counts in one rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentArm {
    /// Rollout id.
    pub rollout: String,
    /// The wave's signal index.
    pub wave: i64,
    /// `treatment` or `control`.
    pub arm: String,
}

/// Incidents of one severity in one arm of a rollout wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentCount {
    /// `treatment` or `control`.
    pub arm: String,
    /// Severity.
    pub severity: String,
    /// How many.
    pub count: i64,
}
