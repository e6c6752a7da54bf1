//! What the audit chain says each versioned row holds.
//!
//! Every write of a flag, segment, plan, scorecard or setting appends an entry whose target is
//! `<kind>:<key>` and whose details carry the new `version`, its `archived` state and the
//! `content_sha256` of the stored spec text. A [`Ledger`] collects those claims from verified
//! entries so that version rows and head rows, which live in ordinary tables, can be tied back
//! to the chain: a row whose content no longer hashes to its entry's claim was changed outside
//! wavegate.

use std::collections::{BTreeMap, HashMap};

/// What one chained entry says a version holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The entry that made the claim.
    pub seq: i64,
    /// Hex SHA-256 of the stored spec text.
    pub sha256: String,
    /// Whether that version archived the item.
    pub archived: bool,
}

/// Claims by `(kind, key)` and version, from verified entries.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    claims: HashMap<(String, String), BTreeMap<i64, Claim>>,
}

/// How a row differs from what the chain says it holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// No verified entry records this version.
    #[error("no audit entry records version {0}")]
    Unrecorded(i64),
    /// The row's content does not hash to the entry's `content_sha256`.
    #[error("its content does not match the content_sha256 of audit entry {seq}")]
    Content {
        /// The entry whose claim the row fails.
        seq: i64,
    },
    /// The row's archived state is not the one the entry records.
    #[error("its archived state is not the one audit entry {seq} records")]
    Archived {
        /// The entry whose claim the row fails.
        seq: i64,
    },
    /// A head row is not at the newest version the chain records.
    #[error("it is at version {found}, but the audit log's newest version is {recorded}")]
    Stale {
        /// The head row's version.
        found: i64,
        /// The newest version the chain records.
        recorded: i64,
    },
}

impl Ledger {
    /// Records the claim of one entry, given as its parsed canonical document. Entries that
    /// make no claim (tokens, rollouts, leadership…) are ignored. Returns whether it made one.
    pub fn record(&mut self, seq: i64, entry: &serde_json::Value) -> bool {
        let Some((kind, key)) =
            entry.get("target").and_then(|t| t.as_str()).and_then(|t| t.split_once(':'))
        else {
            return false;
        };
        let details = entry.get("details");
        let field = |name: &str| details.and_then(|d| d.get(name));
        let (Some(version), Some(sha256)) = (
            field("version").and_then(|v| v.as_i64()),
            field("content_sha256").and_then(|v| v.as_str()),
        ) else {
            return false;
        };
        let archived = field("archived").and_then(|v| v.as_bool()).unwrap_or(false);
        self.claims
            .entry((kind.to_owned(), key.to_owned()))
            .or_default()
            .insert(version, Claim { seq, sha256: sha256.to_owned(), archived });
        true
    }

    /// The claim about `version` of `kind:key`.
    pub fn claim(&self, kind: &str, key: &str, version: i64) -> Option<&Claim> {
        self.versions(kind, key)?.get(&version)
    }

    /// Every recorded version of `kind:key`, oldest first.
    pub fn versions(&self, kind: &str, key: &str) -> Option<&BTreeMap<i64, Claim>> {
        self.claims.get(&(kind.to_owned(), key.to_owned()))
    }

    /// The newest recorded version of `kind:key`.
    pub fn newest(&self, kind: &str, key: &str) -> Option<i64> {
        self.versions(kind, key)?.keys().next_back().copied()
    }

    /// Every `(kind, key)` with a recorded version.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.claims.keys().map(|(k, key)| (k.as_str(), key.as_str()))
    }

    /// Checks a row of `kind:key` at `version`: its content hash (of the stored spec text)
    /// and archived state must be what the entry recording that version says.
    pub fn check(
        &self,
        kind: &str,
        key: &str,
        version: i64,
        sha256: &str,
        archived: bool,
    ) -> Result<(), Mismatch> {
        let claim = self.claim(kind, key, version).ok_or(Mismatch::Unrecorded(version))?;
        if sha256 != claim.sha256 {
            return Err(Mismatch::Content { seq: claim.seq });
        }
        if archived != claim.archived {
            return Err(Mismatch::Archived { seq: claim.seq });
        }
        Ok(())
    }

    /// Checks that a head row at `version` is at the newest version recorded (after
    /// [`Ledger::check`] of its content).
    pub fn check_newest(&self, kind: &str, key: &str, version: i64) -> Result<(), Mismatch> {
        match self.newest(kind, key) {
            Some(recorded) if recorded != version => {
                Err(Mismatch::Stale { found: version, recorded })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Ledger, Mismatch};
    use crate::audit::sha256_hex;

    fn entry(key: &str, version: i64, text: &str, archived: bool) -> serde_json::Value {
        json!({"target": format!("flag:{key}"), "action": "flag.update", "details": {
            "key": key, "version": version, "archived": archived,
            "content_sha256": sha256_hex(text)}})
    }

    fn sha(text: &str) -> String {
        sha256_hex(text)
    }

    #[test]
    fn rows_are_tied_to_their_claims() {
        let mut l = Ledger::default();
        assert!(l.record(1, &entry("a", 1, r#"{"on":true}"#, false)));
        assert!(l.record(2, &entry("a", 2, r#"{"on":false}"#, false)));
        assert!(!l.record(3, &json!({"target": "token:x", "details": {}})));
        assert_eq!(l.check("flag", "a", 1, &sha(r#"{"on":true}"#), false), Ok(()));
        assert_eq!(
            l.check("flag", "a", 1, &sha(r#"{"on":false}"#), false),
            Err(Mismatch::Content { seq: 1 })
        );
        assert_eq!(
            l.check("flag", "a", 2, &sha(r#"{"on":false}"#), true),
            Err(Mismatch::Archived { seq: 2 })
        );
        assert_eq!(l.check("flag", "a", 3, &sha("{}"), false), Err(Mismatch::Unrecorded(3)));
        assert_eq!(
            l.check("flag", "a", 1, &sha(r#"{"on":true}"#), false)
                .and_then(|()| l.check_newest("flag", "a", 1)),
            Err(Mismatch::Stale { found: 1, recorded: 2 })
        );
        assert_eq!(l.check_newest("flag", "a", 2), Ok(()));
        assert_eq!(l.newest("flag", "a"), Some(2));
        assert_eq!(l.newest("segment", "a"), None);
    }
}
