//! `/api/v1/audit`: the hash-chained audit log and its verification.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use wavegate_rollout::stats::VerdictReport;

/// One audit entry (`GET /api/v1/audit`; also the data of the stream's and dashboard's
/// audit events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Its position in the chain (1-based).
    pub seq: i64,
    /// When (as recorded).
    pub at: String,
    /// Who (a principal, `controller` or `system`).
    pub actor: String,
    /// How the actor signed in, with the credential used (`oidc session ses_…`, `token tok_…`,
    /// `service account token tok_…`), as chained. Absent for the controller and the system,
    /// and on entries recorded before wavegate kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// What (`flag.put`, `rollout.promote`, `token.create`…).
    pub action: String,
    /// To what (`flag:<key>`, `rollout:<id>`…).
    pub target: String,
    /// Why, when given.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The evidence, shaped by the action (`null` when the entry has none).
    pub details: Value,
    /// This entry's hash (hex SHA-256 over the previous hash and the canonical entry).
    pub hash: String,
    /// The previous entry's hash.
    pub prev_hash: String,
}

impl AuditEntry {
    /// The details of a `rollout.*` entry, read as [`RolloutDetails`].
    pub fn rollout_details(&self) -> Result<RolloutDetails, serde_json::Error> {
        RolloutDetails::deserialize(&self.details)
    }
}

/// A view of the details of `rollout.*` audit entries: each action fills some of these
/// (`rollout.promote`: `from_wave`, `to_wave`, `exposure`, `verdicts`, `approvals`;
/// `rollout.rollback` / `pause` / `escalate` by a guardrail: `wave`, `guardrail`, `verdict`,
/// `reason`, `by`; `rollout.hold`: `blackout` or `scorecard`…). Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RolloutDetails {
    /// The rollout's id.
    #[serde(default)]
    pub rollout: Option<String>,
    /// The wave it concerns, 1-based.
    #[serde(default)]
    pub wave: Option<i64>,
    /// A promotion's wave before, 1-based.
    #[serde(default)]
    pub from_wave: Option<i64>,
    /// A promotion's wave after, 1-based.
    #[serde(default)]
    pub to_wave: Option<i64>,
    /// The new wave's exposure (`"25%"`).
    #[serde(default)]
    pub exposure: Option<String>,
    /// The guardrail verdicts a promotion or completion rested on.
    #[serde(default)]
    pub verdicts: Vec<VerdictReport>,
    /// Who approved a promotion.
    #[serde(default)]
    pub approvals: Vec<String>,
    /// The guardrail that stopped the rollout.
    #[serde(default)]
    pub guardrail: Option<String>,
    /// That guardrail's failing verdict.
    #[serde(default)]
    pub verdict: Option<VerdictReport>,
    /// Why the rollout stopped.
    #[serde(default)]
    pub reason: Option<String>,
    /// `automatic` when the controller stopped it.
    #[serde(default)]
    pub by: Option<String>,
    /// The blackout window (or freeze) holding it.
    #[serde(default)]
    pub blackout: Option<String>,
}

/// `GET /api/v1/audit/verify` (and `wavegate audit verify --db`): the whole chain, checked from
/// its stored canonical bytes; the listing columns against the entries; and every version and
/// head row of flags, segments, plans, scorecards and settings against the `content_sha256`
/// its chained entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    /// Whether every entry and every row verifies.
    pub ok: bool,
    /// How many entries verify (from the first).
    pub verified: i64,
    /// The chain head's hash (only when it verifies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The first entry that does not verify (`null` when all do).
    #[schema(required = true)]
    pub first_bad: Option<BadEntry>,
    /// How many version and head rows were checked against their entries.
    #[serde(default)]
    pub rows_checked: i64,
    /// Rows whose content no longer matches what the chain records (at most 100; the first
    /// is the first found: by kind, key, then version).
    #[serde(default)]
    pub bad_rows: Vec<BadRow>,
}

/// A version or head row that does not match the audit entry recording it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BadRow {
    /// `flag`, `segment`, `plan`, `scorecard` or `setting`.
    pub kind: String,
    /// Its key.
    pub key: String,
    /// The version the row claims (for a missing row, the version the chain records).
    pub version: i64,
    /// `version` (a row of the history) or `head` (the current row, what is served).
    pub row: String,
    /// What is wrong.
    pub problem: String,
}

/// The first audit entry that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BadEntry {
    /// Its sequence number.
    pub seq: i64,
    /// What is wrong with it.
    pub problem: String,
}

/// A signed checkpoint of the audit chain: its head at a moment, signed with the operator's
/// ed25519 key (`serve --checkpoint-key`) and kept outside the database. See
/// `wavegate audit verify --checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// `wavegate-checkpoint/1`.
    pub format: String,
    /// The newest entry's sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// When it was signed (RFC 3339 with milliseconds).
    pub at: String,
    /// The signing key's public half, `ed25519:<base64>`.
    pub key: String,
    /// The ed25519 signature, base64, of the lines `format`, `seq`, `hash` and `at`, each
    /// ended by a newline.
    pub signature: String,
}

/// `GET /api/v1/audit/checkpoint`: the key this server signs checkpoints with and the newest it
/// signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoints {
    /// `ed25519:<base64>`; null when the server signs no checkpoints (no `--checkpoint-key`).
    #[schema(required = true)]
    pub public_key: Option<String>,
    /// The newest checkpoint this process signed.
    #[schema(required = true)]
    pub latest: Option<Checkpoint>,
}
