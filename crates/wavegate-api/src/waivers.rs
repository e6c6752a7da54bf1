//! `/api/v1/plans/{name}/waivers[/{finding}]`: waivers of vulnerability findings, granted by
//! approvers for one plan until they expire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A waiver of one vulnerability finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Waiver {
    /// The vulnerability's id (`GHSA-…`, `PYSEC-…`) or one of its aliases (a CVE).
    pub finding: String,
    /// Why it is acceptable for this release.
    pub reason: String,
    /// When it stops counting.
    pub expires: DateTime<Utc>,
    /// The approver who granted it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Whether it has expired.
    pub expired: bool,
}

/// `PUT /api/v1/plans/{name}/waivers/{finding}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantWaiver {
    /// Why (at most 2,000 characters).
    pub reason: String,
    /// When it expires: an RFC 3339 time or a span from now (`30d`), within a year.
    pub expires: String,
}
