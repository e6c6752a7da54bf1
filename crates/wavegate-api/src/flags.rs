//! Flags and segments: heads, versions, diffs, reverts, archiving, and applying a flag file
//! (`/api/v1/flags/…`, `/api/v1/segments/…`, `/api/v1/apply`). Flags and segments share their
//! shapes; a head's `spec` is the flags-as-code document (`wavegate_core::spec`), redacted to
//! what the token may read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The current version of a flag or segment (`GET /api/v1/flags`, `GET /api/v1/flags/{key}`,
/// and the same under `/api/v1/segments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Head {
    /// Its key.
    pub key: String,
    /// Its current version.
    pub version: i64,
    /// Archived ones are kept but no longer served.
    pub archived: bool,
    /// When the current version was written (RFC 3339 with milliseconds).
    pub updated_at: String,
    /// Who wrote it.
    pub updated_by: String,
    /// The flag or segment as flags-as-code (redacted to the token's environments).
    #[schema(value_type = Object)]
    pub spec: Value,
    /// `GET /api/v1/flags?stale=true` only: the completed rollout that made it stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<Stale>,
    /// `GET /api/v1/flags/{key}` only: whether Unleash SDKs may answer differently from
    /// wavegate for some contexts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unleash_approximate: Option<bool>,
    /// `GET /api/v1/flags/{key}` only, when approximate: why, by environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unleash_notes: Option<BTreeMap<String, Vec<String>>>,
}

impl Head {
    /// The parts of a flag's spec that listings show.
    pub fn outline(&self) -> Result<FlagOutline, serde_json::Error> {
        FlagOutline::deserialize(&self.spec)
    }
}

/// Why a flag is stale: its rollout completed and held clean for the plan's settle time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stale {
    /// The rollout's id.
    pub rollout: String,
    /// Its environment.
    pub environment: String,
    /// When the flag was marked stale.
    pub since: DateTime<Utc>,
}

/// A view of a flag's spec: its state per environment (unknown fields ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FlagOutline {
    /// Per environment, in the order written.
    #[serde(default)]
    pub environments: IndexMap<String, EnvironmentOutline>,
}

/// A view of a flag's state in one environment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EnvironmentOutline {
    /// Whether it is served (false: the disabled variant).
    #[serde(default)]
    pub enabled: bool,
}

impl FlagOutline {
    /// The environments it is enabled in, in the order written.
    pub fn enabled_in(&self) -> Vec<&str> {
        self.environments.iter().filter(|(_, e)| e.enabled).map(|(k, _)| k.as_str()).collect()
    }
}

/// One immutable version (`GET /api/v1/flags/{key}/versions[/{version}]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Version {
    /// The flag's or segment's key.
    pub key: String,
    /// This version's number.
    pub version: i64,
    /// Whether this version archived it.
    pub archived: bool,
    /// Who made it.
    pub actor: String,
    /// `put`, `apply`, `archive`, `revert`, `rollout`, `restore`…
    pub action: String,
    /// Why, when given.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// When (RFC 3339 with milliseconds).
    pub created_at: String,
    /// The content (redacted to the token's environments).
    #[schema(value_type = Object)]
    pub spec: Value,
}

/// `GET /api/v1/flags/{key}/diff?from=…&to=…`: a unified diff of two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Diff {
    /// The key.
    pub key: String,
    /// The older version.
    pub from: i64,
    /// The newer version.
    pub to: i64,
    /// Unified diff of `{archived, spec}` as pretty JSON.
    pub diff: String,
}

/// `POST /api/v1/flags/{key}/revert`: make a new version equal to an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revert {
    /// The version to restore.
    pub version: i64,
    /// Why (else the `X-Wavegate-Reason` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a revert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reverted {
    /// The key.
    pub key: String,
    /// The version now current.
    pub version: i64,
    /// The version its content came from.
    pub reverted_to: i64,
    /// Whether a new version was made (false: it already was that content).
    pub changed: bool,
}

/// The answer to `POST /api/v1/flags/{key}/archive` and `…/unarchive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Archived {
    /// The key.
    pub key: String,
    /// The version now current.
    pub version: i64,
    /// Whether it is archived now.
    pub archived: bool,
    /// Whether a new version was made.
    pub changed: bool,
}

/// The answer to `PUT /api/v1/flags/{key}`: `{changed, flag}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlagPut {
    /// Whether a new version was made.
    pub changed: bool,
    /// The flag's head after the write.
    pub flag: Head,
}

/// The answer to `PUT /api/v1/segments/{key}`: `{changed, segment}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentPut {
    /// Whether a new version was made.
    pub changed: bool,
    /// The segment's head after the write.
    pub segment: Head,
}

/// What `POST /api/v1/apply` did with one segment or flag of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplyOutcome {
    /// `flag` or `segment`.
    pub kind: String,
    /// Its key.
    pub key: String,
    /// Its version after the apply.
    pub version: i64,
    /// Whether this apply made that version.
    pub changed: bool,
}

/// The answer to `POST /api/v1/apply` (a flag file applied in one transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Applied {
    /// How many segments and flags got a new version.
    pub changed: u64,
    /// How many were already as written.
    pub unchanged: u64,
    /// Segments first, then flags, in the file's order.
    pub results: Vec<ApplyOutcome>,
}

/// The answer to checking a flag or segment document without storing it
/// (`POST /api/v1/flags/{key}/check`, `POST /api/v1/segments/{key}/check`): the dashboard's
/// editor calls it as the YAML is typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpecCheck {
    /// Whether the document parses and validates (a `PUT` of `spec` would be accepted, scope
    /// and concurrent changes aside).
    pub ok: bool,
    /// The document as JSON, when it parses (even when it does not validate).
    #[schema(required = true, value_type = Option<Object>)]
    pub spec: Option<Value>,
    /// The document as YAML in wavegate's layout, when it validates.
    #[schema(required = true)]
    pub yaml: Option<String>,
    /// What is wrong, when something is.
    #[schema(required = true)]
    pub error: Option<SpecProblem>,
}

/// What is wrong with a checked document, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpecProblem {
    /// The field it concerns, as a path (`body.environments.prod.rules[0].split`), when the
    /// document parses.
    #[schema(required = true)]
    pub field: Option<String>,
    /// The 1-based line, when the YAML does not parse.
    #[schema(required = true)]
    pub line: Option<u64>,
    /// The 1-based column, when the YAML does not parse.
    #[schema(required = true)]
    pub column: Option<u64>,
    /// What is wrong, for people.
    pub message: String,
}
