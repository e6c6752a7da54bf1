//! `/api/v1/plans/…`: rollout plans (stored versioned, like flags) and the drills recorded as
//! evidence for them. A plan's `spec` is the plan format of `wavegate_rollout::plan`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use wavegate_rollout::lint::Severity;

/// One lint finding (`wavegate_rollout::lint::Finding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line, when known.
    #[schema(required = true)]
    pub line: Option<u64>,
    /// 1-based column, when known.
    #[schema(required = true)]
    pub column: Option<u64>,
    /// A stable code, like `first-wave-too-large`.
    pub code: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The answer to `POST /api/v1/plans/lint`: a plan file checked without storing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanLint {
    /// No errors (warnings may remain).
    pub ok: bool,
    /// The plan's name, when it parses.
    #[serde(default)]
    pub plan: Option<String>,
    /// Errors and warnings, each at its line and column when known.
    pub findings: Vec<Finding>,
    /// Per wave × guardrail, how long a decision takes at the traffic given (seconds; the
    /// fields `wavegate plan lint --json` prints).
    #[schema(value_type = Vec<Object>)]
    pub forecast: Vec<serde_json::Value>,
    /// The file as written, as JSON, when it parses as YAML (whatever its findings): the
    /// dashboard's guided form edits it.
    #[serde(default)]
    #[schema(required = true, value_type = Option<Object>)]
    pub document: Option<serde_json::Value>,
}

/// The answer to `POST /api/v1/plans` (a plan file, YAML): stored as a new version when it
/// changed. Lint warnings come back; errors are refused (422).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanApplied {
    /// The plan's name.
    pub name: String,
    /// Its version now.
    pub version: i64,
    /// Whether this request made that version.
    pub changed: bool,
    /// The lint warnings.
    pub warnings: Vec<Finding>,
}

/// A plan's current version (`GET /api/v1/plans`, `GET /api/v1/plans/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanHead {
    /// The plan's name.
    pub name: String,
    /// Its current version.
    pub version: i64,
    /// When that version was stored.
    pub updated_at: DateTime<Utc>,
    /// Who stored it.
    pub updated_by: String,
    /// The plan (`wavegate_rollout::plan::PlanSpec` as JSON).
    #[schema(value_type = Object)]
    pub spec: Value,
}

impl PlanHead {
    /// The parts of the plan that listings show.
    pub fn outline(&self) -> Result<PlanOutline, serde_json::Error> {
        PlanOutline::deserialize(&self.spec)
    }
}

/// A view of a plan's spec: what it rolls out where (unknown fields ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PlanOutline {
    /// The flag it rolls out.
    pub flag: String,
    /// The environment it rolls out in.
    pub environment: String,
}

/// One version of a plan (`GET /api/v1/plans/{name}/versions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanVersion {
    /// The version's number.
    pub version: i64,
    /// Who stored it.
    pub actor: String,
    /// `put`…
    pub action: String,
    /// Why, when given.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The plan as stored in that version.
    #[schema(value_type = Object)]
    pub spec: Value,
}

/// `POST /api/v1/plans/{name}/drills`: a drill run recorded as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDrill {
    /// The plan as drilled (matched to a stored version by content).
    #[schema(value_type = Object)]
    pub plan: Value,
    /// The drill report (`wavegate drill --json`).
    #[schema(value_type = Object)]
    pub report: Value,
}

/// The answer to recording a drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DrillRecorded {
    /// The drill's id.
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// The stored plan version it rehearsed.
    pub plan_version: i64,
    /// The scenario's name.
    pub scenario: String,
    /// Whether it passed.
    pub passed: bool,
}

/// A recorded drill (`GET /api/v1/plans/{name}/drills`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Drill {
    /// Its id.
    pub id: i64,
    /// The plan version it rehearsed.
    pub plan_version: i64,
    /// The scenario's name.
    pub scenario: String,
    /// Whether it passed.
    pub passed: bool,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who recorded it.
    pub actor: String,
    /// The full drill report.
    #[schema(value_type = Object)]
    pub report: Value,
}
