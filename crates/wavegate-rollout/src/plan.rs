//! Rollout plans: the YAML format (`PlanSpec`), its validation, and `lint`.
//!
//! A plan says how a flag's new variant widens in waves, which guardrails stop it and how, who
//! owns and approves it, and when nothing may happen (blackout windows).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use wavegate_core::Percent;

use crate::blackout::BlackoutSpec;
use crate::duration::Span;

/// A plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// The plan's key (how `plan apply` and `rollout start` name it).
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What ships.
    pub release: ReleaseSpec,
    /// The flag this plan rolls out.
    pub flag: String,
    /// The variant being rolled out (treatment).
    pub new_variant: String,
    /// The variant it is compared against (control).
    pub control_variant: String,
    /// The environment it runs in.
    pub environment: String,
    /// Who owns it.
    pub owners: OwnersSpec,
    /// Distinct approvers needed at each approval gate (default: 1 for high risk, else 0…
    /// and at least 1 wherever a wave's promotion is `approval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<u32>,
    /// What success means: a direction (reported), or a target with a horizon, judged
    /// on-track / at-risk / met / missed (`wavegate_rollout::success`). Never gates a wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_metrics: Vec<SuccessMetricSpec>,
    /// Stop conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<GuardrailSpec>,
    /// Exposure steps, increasing.
    pub waves: Vec<WaveSpec>,
    /// Windows in which nothing but pause and rollback happens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blackouts: Vec<BlackoutSpec>,
    /// Markdown steps per stop condition (guardrail name, `srm`, `max_duration`, …).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub runbook: IndexMap<String, String>,
    /// Where the rollout's rule goes among the flag's rules.
    #[serde(default)]
    pub placement: Placement,
    /// Checks run before the start, after every exposure change (smoke tests) and before
    /// each promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// Significance of the sample-ratio check (default 0.001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srm_alpha: Option<f64>,
    /// How long a completed rollout must hold clean at 100% before its flag is marked stale
    /// ("remove from code"); default 7d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Span>,
    /// Environments this release must have completed in (a rollout of the same release name
    /// and version at 100%) before a rollout of it starts here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotion_path: Vec<String>,
    /// Start by itself once the release has completed in every environment of
    /// `promotion_path` (a release pipeline): the controller starts it through every start
    /// check, as the person who started the rollout in the path's first environment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_start: bool,
    /// The go/no-go scorecard. Declared, it blocks the start and promotions at `max_red`;
    /// absent, the seven default items are shown as warnings that never block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorecard: Option<crate::scorecard::ScorecardSpec>,
    /// Adoption tracking: the cohort attributes and the key task the adoption report reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<crate::adoption::AdoptionSpec>,
    /// How OpenTelemetry spans (`POST /v1/traces`) feed the arms: the user attribute, which
    /// spans count, inheritance from the trace root, and further outcome metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel: Option<crate::otel::OtelSpec>,
    /// A watch after the last wave: a small control arm held back for a while, the guardrails
    /// still judged, before the rollout completes at 100%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchSpec>,
    /// Who answers for each cohort (attribute → value → sponsor, champion, training owner):
    /// a lagging cohort's champion and training owner are told, with the numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stakeholders: Option<crate::people::Stakeholders>,
    /// Work that closes the rollout after it completes (documentation updated, runbook updated
    /// from the retro, security review…), ticked off with `rollout close-item`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_release: Vec<String>,
}

/// The `watch:` section: after the last wave passes, the rollout stays `running` (phase
/// `watching`) for `for`, with `holdback` of the audience kept on the control variant so the
/// guardrails still compare arms; a late regression stops it as any failure does; at the end
/// the holdback is released (audited) and the rollout completes. While the rollout runs, every
/// wave's exposure is capped at 100% − holdback, so nobody loses the new variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    /// How long to watch (e.g. `72h`).
    #[serde(rename = "for")]
    pub period: Span,
    /// The share kept on the control variant during the watch (e.g. `1%`).
    pub holdback: Percent,
}

/// The largest holdback a watch may keep.
pub const MAX_HOLDBACK_BP: u16 = 2_000;

/// What ships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// Release name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the artifact, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_sha256: Option<String>,
    /// Keys one of which must have signed the artifact (minisign): a public key (the base64 line
    /// of its `.pub`) or the key id (hex, as minisign prints it) of a key the server trusts
    /// (`serve --trusted-keys`). A start
    /// without a signature that verifies under one of them is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed_by: Vec<String>,
    /// When the release's commit was made (RFC 3339), for lead time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Declared risk.
    pub risk: Risk,
    /// Change-record id (CAB ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_record: Option<String>,
    /// Owning team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Service name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Regions touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Services this one depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Kind of change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<ChangeType>,
    /// The release migrates data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_migration: bool,
    /// The release has a step that cannot be undone by switching the flag back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub irreversible: bool,
}

impl ReleaseSpec {
    /// `name version`, as reports, feedback and audit details name a release.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

/// Risk classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// Kinds of change (hotfix/emergency count as rework in DORA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ChangeType {
    Feature,
    Enhancement,
    Fix,
    Hotfix,
    Emergency,
}

/// Owners.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnersSpec {
    /// Who asks for the rollout.
    #[serde(default)]
    pub requester: String,
    /// Who may approve gated waves: people, or groups at the identity provider written
    /// `group:<name>` (anyone signed in with that group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Who may call no-go (reject).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_go: Vec<String>,
}

/// Someone acting: their name and, when they signed in through the identity provider, their
/// groups there.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    /// The principal's name.
    pub name: &'a str,
    /// Their groups (empty for a token).
    pub groups: &'a [String],
}

impl<'a> Person<'a> {
    /// Someone known by name only (a token's principal).
    pub fn named(name: &'a str) -> Person<'a> {
        Person { name, groups: &[] }
    }

    /// Whether `list` (approvers, no-go callers) names them, or one of their groups
    /// (`group:<name>`).
    pub fn listed_in(&self, list: &[String]) -> bool {
        list.iter().any(|entry| match entry.strip_prefix("group:") {
            Some(group) => self.groups.iter().any(|g| g == group),
            None => entry == self.name,
        })
    }
}

/// A success metric (reported alongside guardrails; never gates a wave).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuccessMetricSpec {
    /// Metric name as events report it; `adoption` (or `weekly_active`, or the adoption key
    /// task's name) for the adoption report's key-task rate.
    pub metric: String,
    /// Which way is better.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The target: a share for adoption (`>= 70%`), a relative lift against control for
    /// another metric (`>= 2%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::people::Threshold>,
    /// How long after the start the target must be met (default 30d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Span>,
    /// For adoption: `all` (default) or one cohort, `<attribute>=<value>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
}

/// Directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Direction {
    Increase,
    Decrease,
}

/// What a failed guardrail does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum StopAction {
    Pause,
    Rollback,
    Escalate,
}

impl StopAction {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            StopAction::Pause => "pause",
            StopAction::Rollback => "rollback",
            StopAction::Escalate => "escalate",
        }
    }
}

/// How a guardrail compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Treatment vs control, as a fraction of control (`tolerance: 0.1` = 10% worse).
    #[default]
    Relative,
    /// Treatment vs control, in the metric's units.
    Absolute,
    /// Treatment alone against `bound`.
    Bound,
}

/// A stop condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSpec {
    /// Its name (used by the runbook).
    pub name: String,
    /// `error` (the events' error flag, a proportion), `latency_ms`, or a named metric (for
    /// `source: events`; Prometheus guardrails name their signal in `query`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metric: String,
    /// Relative or absolute vs control, or an absolute bound.
    #[serde(default)]
    pub comparison: Comparison,
    /// For `comparison: bound`: the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Which way is harm (default: increase).
    #[serde(default = "harm_default")]
    pub harmful: Direction,
    /// How much harm is acceptable (relative: a fraction; absolute: metric units). Default 0.
    #[serde(default)]
    pub tolerance: f64,
    /// Design effect: the smallest harm worth detecting quickly (tunes the test). Default:
    /// 0.2 relative, else the tolerance or 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde: Option<f64>,
    /// Samples per arm before a pass is possible (default 100).
    #[serde(default = "min_sample_default")]
    pub min_sample: u64,
    /// For `metric: latency_ms` from events: judge this quantile (e.g. 0.95, 0.99) instead of
    /// the mean. `comparison: bound` holds the treatment's quantile to `bound` (an SLO: p95
    /// ≤ 300 ms); `relative`/`absolute` to the control's quantile plus `tolerance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// False-alarm rate (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Missed-detection rate at the design effect (default 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Aggregation window the source needs (for lint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Span>,
    /// Planned traffic in requests per second (for lint forecasts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<f64>,
    /// How long the source may stay silent before the controller escalates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent: Option<Span>,
    /// What the metric looks like today (for lint forecasts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<MetricBaseline>,
    /// Where the signal comes from (default: events posted by SDKs).
    #[serde(default)]
    pub source: SignalSource,
    /// For `source: prometheus`: a PromQL instant query for the treatment, templated with
    /// `{{variant}}`, `{{control_variant}}`, `{{wave}}`, `{{environment}}`, `{{flag}}`, `{{rollout}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// For `source: prometheus` vs control: the control's query (default: `query` with
    /// `{{variant}}` set to the control variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_query: Option<String>,
    /// For `source: prometheus`: the server's URL (default: `serve --prometheus-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_url: Option<String>,
    /// For `source: prometheus`: bad readings tolerated before the guardrail acts (Argo's
    /// `failureLimit`). Default 0: the first bad reading acts, as before this field existed.
    /// A tolerated bad reading is `inconclusive`, so it holds promotion without acting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
    /// For `source: prometheus`: how bad readings count toward `failure_limit`:
    /// `consecutive` (default; a good reading starts the count again) or `total` (every bad
    /// reading since the wave began, as Argo counts over an analysis run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<FailureCount>,
    /// For `source: prometheus`: judge over the wave so far instead of one instant reading
    /// per tick: each tick runs the queries as range queries from the wave's start to now at
    /// this step, and every step is one reading. Default: unset (one instant query per tick,
    /// its bad readings counted across ticks in the rollout's record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_step: Option<Span>,
    /// For `source: incidents`: count incidents at or above this severity (`low`, `medium`,
    /// `high`, `critical`); default every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// For `source: incidents`: the window before the rollout started that sets the baseline
    /// rate (default 7d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_window: Option<Span>,
    /// What to do when it fails.
    pub action: StopAction,
}

/// Where a guardrail's signal comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignalSource {
    /// Exposures and outcomes posted to `/api/v1/events` (sequential test on the arms).
    #[default]
    Events,
    /// A PromQL instant query per tick (threshold comparison of the readings).
    Prometheus,
    /// Incidents and support tickets of the plan's `release.service` (`POST /api/v1/incidents`,
    /// PagerDuty and Opsgenie webhooks): the arms' incident rates when incidents name their
    /// user, else the rate since the wave began against the pre-rollout baseline
    /// (`wavegate_rollout::incidents`).
    Incidents,
}

/// How a Prometheus guardrail's bad readings count toward its `failure_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailureCount {
    /// Bad readings in a row: a good reading starts the count again.
    #[default]
    Consecutive,
    /// Every bad reading since the wave began.
    Total,
}

impl FailureCount {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCount::Consecutive => "consecutive",
            FailureCount::Total => "total",
        }
    }
}

/// A metric's current behaviour, for forecasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricBaseline {
    /// For `error`: the share of requests that fail today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// For other metrics: the mean today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// For other metrics: the standard deviation today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
}

fn harm_default() -> Direction {
    Direction::Increase
}
fn min_sample_default() -> u64 {
    100
}

/// How a wave is promoted once its gates pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Promotion {
    /// By the controller.
    #[default]
    Auto,
    /// By `required_approvals` distinct approvers.
    Approval,
}

/// One exposure step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveSpec {
    /// Share of the audience (of the segments, when given) served the new variant.
    pub exposure: Percent,
    /// Restrict this wave to these segments (rings); earlier waves' audiences stay exposed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    /// Minimum time in this wave before promotion.
    #[serde(default)]
    pub hold: Span,
    /// auto or approval.
    #[serde(default)]
    pub promotion: Promotion,
    /// Escalate when the wave has not decided by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Span>,
    /// People gates on leaving this wave: adoption of the users it first served, and the
    /// release's feedback. A failing gate holds (phase `gated`), never rolls back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<crate::people::GatesSpec>,
}

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckWhen {
    /// Before the rollout starts (a failure refuses the start).
    BeforeStart,
    /// Right after every exposure change (smoke test).
    AfterExposure,
    /// Before each promotion and before completing.
    BeforePromotion,
}

/// A check: an HTTP probe or a webhook gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Its name.
    pub name: String,
    /// When it runs (default: all three points).
    #[serde(default = "all_points")]
    pub when: Vec<CheckWhen>,
    /// An HTTP probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// A webhook that receives the rollout's facts and answers `{"pass": bool, "reason": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookCheck>,
    /// A vulnerability gate: the release's SBOM against the server's OSV data (runs before the
    /// start only, whatever `when` says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<VulnerabilityCheck>,
    /// Per-attempt timeout (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Span>,
    /// Attempts after the first (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// What a failure does (at start, a failure always refuses the start).
    pub action: StopAction,
}

fn all_points() -> Vec<CheckWhen> {
    vec![CheckWhen::BeforeStart, CheckWhen::AfterExposure, CheckWhen::BeforePromotion]
}

/// An HTTP probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// URL (http or https).
    pub url: String,
    /// Method (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Expected status (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// A JSON field (dotted path) whose value must equal `expect_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_field: Option<String>,
    /// The value `json_field` must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_value: Option<serde_json::Value>,
}

/// A vulnerability gate: the release's SBOM (CycloneDX or SPDX JSON) matched against the OSV
/// records in the server's `--osv-dir`; a finding at or above `fail_on` (or unrated) that no
/// unexpired waiver covers refuses the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulnerabilityCheck {
    /// Where the SBOM is (http or https); omitted: the SBOM sent with the start
    /// (`wavegate rollout start --sbom FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// The lowest severity that refuses the start (default `high`).
    #[serde(default = "default_fail_on")]
    pub fail_on: crate::vulns::Severity,
}

fn default_fail_on() -> crate::vulns::Severity {
    crate::vulns::Severity::High
}

/// A webhook gate (like Flagger's confirm-rollout / confirm-promotion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookCheck {
    /// URL receiving a POST with the rollout's facts.
    pub url: String,
}

/// Where the rollout's rule goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// After the flag's existing rules (default): targeted users keep what they had.
    #[default]
    Last,
    /// Before every other rule.
    First,
}

impl PlanSpec {
    /// Distinct approvals needed at an approval gate.
    pub fn approvals_needed(&self) -> u32 {
        let base =
            self.required_approvals.unwrap_or(if self.release.risk == Risk::High { 1 } else { 0 });
        let gated = self.waves.iter().any(|w| w.promotion == Promotion::Approval);
        if gated { base.max(1) } else { base }
    }

    /// The sample-ratio check's significance.
    pub fn srm_alpha(&self) -> f64 {
        self.srm_alpha.unwrap_or(0.001)
    }

    /// The share wave `wave` (0-based) serves the new variant: its exposure, capped at
    /// 100% − the watch's holdback unless `released` (the watch ended).
    pub fn exposure_at(&self, wave: usize, released: bool) -> Percent {
        let e = self.waves.get(wave).map(|w| w.exposure).unwrap_or_default();
        match &self.watch {
            Some(w) if !released => {
                let cap = 10_000u16.saturating_sub(w.holdback.basis_points());
                Percent::from_basis_points(e.basis_points().min(cap)).unwrap_or(e)
            }
            _ => e,
        }
    }
}

impl GuardrailSpec {
    /// α (default 0.05).
    pub fn alpha(&self) -> f64 {
        self.alpha.unwrap_or(0.05)
    }
    /// β (default 0.2).
    pub fn beta(&self) -> f64 {
        self.beta.unwrap_or(0.2)
    }
    /// The design effect in the comparison's units.
    pub fn design_effect(&self) -> f64 {
        match (self.mde, self.comparison) {
            (Some(m), _) if m > 0.0 => m,
            (_, Comparison::Relative) => 0.2,
            _ if self.tolerance > 0.0 => self.tolerance,
            _ => 1.0,
        }
    }
    /// Bad Prometheus readings tolerated before acting (default 0).
    pub fn failure_limit(&self) -> u32 {
        self.failure_limit.unwrap_or(0)
    }
    /// How bad Prometheus readings count (default consecutive).
    pub fn failures(&self) -> FailureCount {
        self.failures.unwrap_or_default()
    }
    /// Whether the metric is a proportion (the events' error flag, incidents per exposure).
    pub fn is_proportion(&self) -> bool {
        self.metric == "error" || self.source == SignalSource::Incidents
    }
    /// For `source: incidents`: the baseline window (default 7d).
    pub fn baseline_window(&self) -> Span {
        self.baseline_window.unwrap_or(Span::from_secs(7 * 86_400))
    }
}
