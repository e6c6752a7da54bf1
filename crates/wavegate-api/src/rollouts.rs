//! `/api/v1/rollouts/…`: starting rollouts, reading them (with their verdicts, scorecard,
//! signals and latency), and people's commands (approve, reject, pause, resume, rollback).

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use wavegate_rollout::plan::GuardrailSpec;
use wavegate_rollout::stats::{SrmReport, VerdictReport};

use crate::schedules::Schedule;
use crate::scorecard::Item;

/// A rollout's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Exposing the current wave.
    Running,
    /// Held by a person or a stop condition; exposure unchanged.
    Paused,
    /// Reached its last wave and finished.
    Completed,
    /// Its flag is back at the pre-rollout version.
    RolledBack,
    /// Ended without finishing or rolling back.
    Aborted,
}

impl RolloutState {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::Completed => "completed",
            RolloutState::RolledBack => "rolled_back",
            RolloutState::Aborted => "aborted",
        }
    }
}

impl std::fmt::Display for RolloutState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use wavegate_rollout::machine::Phase;

/// A release's declared risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High: needs an approver other than the requester.
    High,
}

/// What a rollout ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Declared risk.
    pub risk: Risk,
}

pub use wavegate_rollout::machine::{Approval, Exclusion};

/// What one token contributed to a rollout's aggregates, every wave
/// (`GET /api/v1/rollouts/{id}/contributions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenContribution {
    /// The token's id (empty for counts kept before contributions were kept per token).
    pub token: String,
    /// The principal it acts as (`null` when the token is not known, e.g. deleted).
    #[schema(required = true)]
    pub principal: Option<String>,
    /// Its kind (`null` when not known).
    #[schema(required = true)]
    pub kind: Option<crate::tokens::TokenKind>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// Whether the rollout's verdicts leave it out.
    pub excluded: bool,
    /// Its counts, by wave (1-based), arm and metric.
    pub cells: Vec<ContributionCell>,
    /// When it last contributed.
    pub last_at: DateTime<Utc>,
}

/// One cell of a token's contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContributionCell {
    /// The wave, 1-based (one past the last wave: the watch).
    pub wave: i64,
    /// `treatment` or `control`.
    pub arm: String,
    /// `exposure`, `error`, `latency_ms` or an outcome metric.
    pub metric: String,
    /// How many events.
    pub n: f64,
}

/// `GET /api/v1/rollouts/{id}/contributions`: who contributed to a rollout's signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contributions {
    /// The rollout's id.
    pub id: String,
    /// One entry per contributing token, the largest exposure count first.
    pub tokens: Vec<TokenContribution>,
}

/// The public view of a rollout: what `POST /api/v1/rollouts`, `GET /api/v1/rollouts` and the
/// commands answer. `GET /api/v1/rollouts/{id}` adds `verdicts`, `scorecard`, `signals`,
/// `latency` and `runbook`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rollout {
    /// Its id (`ro_…`).
    pub id: String,
    /// The plan's name.
    pub plan: String,
    /// The plan version it runs.
    pub plan_version: i64,
    /// The flag it rolls out.
    pub flag: String,
    /// The environment.
    pub environment: String,
    /// What ships.
    pub release: Release,
    /// The owning team.
    #[schema(required = true)]
    pub team: Option<String>,
    /// The service.
    #[schema(required = true)]
    pub service: Option<String>,
    /// Regions touched.
    pub regions: Vec<String>,
    /// Its state.
    pub state: RolloutState,
    /// Where within the wave (running rollouts only).
    #[schema(required = true)]
    pub phase: Option<Phase>,
    /// Why it paused, rolled back or aborted.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The current wave, 1-based.
    pub wave: u64,
    /// How many waves the plan has.
    pub waves: u64,
    /// The current wave's exposure (`"25%"`; `null` for a stored rollout whose plan lacks its
    /// wave).
    #[schema(required = true)]
    pub exposure: Option<String>,
    /// The principal whose token started it.
    pub requester: String,
    /// Approvals of the current wave.
    pub approvals: Vec<Approval>,
    /// Approvals a gated wave needs.
    pub approvals_needed: u32,
    /// Tokens whose contributions the verdicts leave out.
    #[serde(default)]
    pub excluded_tokens: Vec<Exclusion>,
    /// The plan's `after_release` items ticked off, by item: who and when.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub after_release_done: IndexMap<String, Approval>,
    /// The blackout window (or freeze) holding promotion, if any.
    #[schema(required = true)]
    pub blackout: Option<String>,
    /// What was verified of the artifact's signature at the start, if a signature was offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The coordinated release (`/api/v1/releases/{name}`) whose run started it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_run: Option<String>,
    /// The flag version rollback restores.
    pub pre_rollout_version: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When the current wave started.
    pub wave_started_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// `GET …/{id}` only: the latest verdict per guardrail and wave, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<Vec<Verdict>>,
    /// `GET …/{id}` only: the plan's go/no-go scorecard, assessed now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorecard: Option<RolloutScorecard>,
    /// `GET …/{id}` only: the current wave's event aggregates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<Vec<Signal>>,
    /// `GET …/{id}` only: the current wave's latency quantiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Vec<Latency>>,
    /// `GET …/{id}` only: the plan's runbook (situation → what to do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<IndexMap<String, String>>,
}

/// The evidence of a signed artifact, verified when its rollout started (with the `.minisig`
/// text verified, which a release pipeline may offer again in the next environment).
pub use wavegate_rollout::signature::ArtifactEvidence as Artifact;

impl Rollout {
    /// The current wave's exposure in percent (`"12.5%"` → 12.5).
    pub fn exposure_percent(&self) -> Option<f64> {
        self.exposure.as_deref()?.trim_end_matches('%').parse().ok()
    }

    /// The latest verdicts of the current wave (none outside `GET …/{id}`).
    pub fn current_verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().flatten().filter(|v| v.wave == self.wave as i64)
    }
}

/// The plan's go/no-go scorecard as a rollout's view shows it: the fields of
/// [`Scorecard`](crate::scorecard::Scorecard)
/// without the plan's name and version, in their own order (`declared`, `go`, `blocks`,
/// `not_green`, `max_red`, `items`, `block_reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RolloutScorecard {
    /// Whether the plan declares a scorecard (only then does it block).
    pub declared: bool,
    /// Go: fewer than `max_red` items not green.
    pub go: bool,
    /// Whether it holds promotions (declared and no-go).
    pub blocks: bool,
    /// Items not green (waived counts as green).
    pub not_green: u32,
    /// The no-go threshold.
    pub max_red: u32,
    /// The items.
    pub items: Vec<Item>,
    /// Why it blocks, naming the items (`null` when it does not).
    #[schema(required = true)]
    pub block_reason: Option<String>,
}

/// A stored verdict: a guardrail's (`kind: guardrail`), the sample-ratio check's (`srm`) or
/// a before-promotion check's (`check`), with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    /// The wave, 1-based.
    pub wave: i64,
    /// `guardrail`, `srm` or `check`.
    pub kind: String,
    /// The guardrail's or check's name (`srm` for the sample-ratio check).
    pub name: String,
    /// `pass`, `fail`, `inconclusive` (guardrails, checks), `ok`, `mismatch` (srm).
    pub verdict: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The evidence: a guardrail report, a sample-ratio report, or a check's evidence.
    pub report: Value,
}

impl Verdict {
    /// A guardrail verdict's report (`None` for other kinds or a report that does not read).
    pub fn guardrail_report(&self) -> Option<VerdictReport> {
        if self.kind != "guardrail" {
            return None;
        }
        VerdictReport::deserialize(&self.report).ok()
    }

    /// A sample-ratio verdict's report (`None` for other kinds or a report that does not read).
    pub fn srm_report(&self) -> Option<SrmReport> {
        if self.kind != "srm" {
            return None;
        }
        SrmReport::deserialize(&self.report).ok()
    }

    /// The report's explanation, when it has one (guardrail reports and check evidence carry
    /// one; the evidence is otherwise free-form).
    pub fn explanation(&self) -> Option<&str> {
        self.report.get("explanation").and_then(Value::as_str)
    }
}

/// An event aggregate of the current wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Signal {
    /// `treatment` or `control`.
    pub arm: String,
    /// The metric (`exposure`, `error`, `latency_ms`…).
    pub metric: String,
    /// How many observations.
    pub n: f64,
    /// Their mean (0 without any).
    pub mean: f64,
    /// When it last changed.
    pub last_at: DateTime<Utc>,
}

/// Latency quantiles of the current wave, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Latency {
    /// `treatment` or `control`.
    pub arm: String,
    /// The metric.
    pub metric: String,
    /// How many observations.
    pub count: u64,
    /// Median.
    #[schema(required = true)]
    pub p50: Option<f64>,
    /// 95th percentile.
    #[schema(required = true)]
    pub p95: Option<f64>,
    /// 99th percentile.
    #[schema(required = true)]
    pub p99: Option<f64>,
}

/// `POST /api/v1/rollouts`: start a stored plan now, or schedule its start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRollout {
    /// The plan's name.
    pub plan: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Start later, at this RFC 3339 time (the answer is then a [`Scheduled`], 202).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// SHA-256 of the artifact being released, checked against the plan's release digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    /// BLAKE2b-512 of the artifact (128 hex digits): the digest its minisign signature covers.
    /// Given with `artifact_signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_blake2b: Option<String>,
    /// The artifact's detached minisign signature: the text of its `.minisig` file (at most
    /// 4 KiB), verified against the plan's `release.signed_by` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_signature: Option<String>,
    /// The release's SBOM (a CycloneDX or SPDX JSON document), for the plan's vulnerability
    /// checks that name no `sbom` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub sbom: Option<serde_json::Value>,
}

/// The answer to a `POST /api/v1/rollouts` with `start_at` (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Scheduled {
    /// The stored schedule.
    pub scheduled: Schedule,
}

/// `POST /api/v1/rollouts/{id}/{approve|reject|pause|resume|rollback|exclude|include}`; pause,
/// reject, rollback and exclude need a reason; exclude and include name a token. The answer is
/// the [`Rollout`] after the command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutCommand {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `exclude` and `include`: the token's id (`tok_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `close-item`: the plan's `after_release` item ticked off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// `GET /api/v1/rollouts/{id}/verdicts`: every stored verdict (oldest first) with the plan's
/// guardrails, so a client can reproduce each verdict from its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutVerdicts {
    /// The rollout's id.
    pub id: String,
    /// Its state.
    pub state: RolloutState,
    /// The plan's guardrails (`wavegate_rollout::plan::GuardrailSpec` as JSON).
    #[schema(value_type = Vec<Object>)]
    pub guardrails: Vec<Value>,
    /// The sample-ratio check's α.
    pub srm_alpha: f64,
    /// The verdicts, oldest first.
    pub verdicts: Vec<Verdict>,
}

impl RolloutVerdicts {
    /// The guardrails, read in the plan format.
    pub fn guardrail_specs(&self) -> Result<Vec<GuardrailSpec>, serde_json::Error> {
        self.guardrails.iter().map(GuardrailSpec::deserialize).collect()
    }
}
