//! The hash-chained audit log's pure half: building entries, hashing, verifying.
//!
//! `hash = sha256(prev_hash ‖ canonical)`, where `canonical` is the RFC 8785 encoding of the
//! entry (its `prev_hash` included) and `prev_hash` of the first entry is 64 zeros.
//! **Invariant:** an entry is verified from its stored canonical bytes alone, never from
//! re-serialised columns, so the chain verifies after any faithful copy of those bytes.

use sha2::{Digest, Sha256};

use crate::canonical::canonical_json;

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// When, RFC 3339 with milliseconds, UTC.
    pub at: String,
    /// The principal who did it.
    pub actor: String,
    /// How they signed in, with the credential used (`oidc session ses_…`, `token tok_…`,
    /// `service account token tok_…`); `None` for the controller and the system, and for
    /// every entry written before this was recorded (it is chained only when present, so
    /// their hashes are unchanged).
    pub via: Option<String>,
    /// What was done, like `flag.update`.
    pub action: String,
    /// What it was done to, like `flag:new-checkout`.
    pub target: String,
    /// Why, as the actor said.
    pub reason: Option<String>,
    /// Evidence and particulars.
    pub details: serde_json::Value,
}

/// An entry as stored: its sequence number, hashes and canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    /// 1-based position in the chain.
    pub seq: i64,
    /// The previous entry's hash (GENESIS_HASH for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
    /// The canonical JSON the hash covers.
    pub canonical: String,
}

impl AuditEvent {
    /// Chains this event after an entry with `prev_seq` and `prev_hash`.
    pub fn chain(&self, prev_seq: i64, prev_hash: &str) -> ChainedEntry {
        let seq = prev_seq + 1;
        let mut doc = serde_json::json!({
            "seq": seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
            "details": self.details,
            "prev_hash": prev_hash,
        });
        if let (Some(via), Some(map)) = (&self.via, doc.as_object_mut()) {
            map.insert("via".to_owned(), serde_json::Value::String(via.clone()));
        }
        let canonical = canonical_json(&doc);
        let hash = entry_hash(prev_hash, &canonical);
        ChainedEntry { seq, prev_hash: prev_hash.to_owned(), hash, canonical }
    }
}

/// `hex(sha256(prev_hash ‖ canonical))`.
pub fn entry_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// `hex(sha256(data))`, e.g. to bind an audit entry to a version's content.
pub fn sha256_hex(data: &str) -> String {
    sha256_hex_bytes(data.as_bytes())
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex_bytes(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The first entry that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq} does not verify: {problem}")]
pub struct ChainBreak {
    /// Its sequence number.
    pub seq: i64,
    /// What is wrong with it.
    pub problem: String,
}

/// Incremental verifier: feed entries in sequence order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    last_seq: i64,
    last_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { last_seq: 0, last_hash: GENESIS_HASH.to_owned() }
    }
}

impl ChainVerifier {
    /// A verifier that expects the entry after `seq`, whose hash is `hash`: to go on past a
    /// break that has been reported, or from a checkpoint.
    pub fn after(seq: i64, hash: &str) -> ChainVerifier {
        ChainVerifier { last_seq: seq, last_hash: hash.to_owned() }
    }

    /// Checks the next entry.
    pub fn push(&mut self, e: &ChainedEntry) -> Result<(), ChainBreak> {
        let fail = |problem: String| ChainBreak { seq: e.seq, problem };
        if e.seq != self.last_seq + 1 {
            return Err(fail(format!(
                "expected entry {} next; entry {} is missing or out of order",
                self.last_seq + 1,
                self.last_seq + 1
            )));
        }
        if e.prev_hash != self.last_hash {
            return Err(fail(
                "its prev_hash does not equal the hash of the entry before it".into(),
            ));
        }
        let doc: serde_json::Value = serde_json::from_str(&e.canonical)
            .map_err(|err| fail(format!("stored bytes are not JSON: {err}")))?;
        if doc.get("seq").and_then(|v| v.as_i64()) != Some(e.seq) {
            return Err(fail(
                "the sequence number inside the entry does not match its position".into(),
            ));
        }
        if doc.get("prev_hash").and_then(|v| v.as_str()) != Some(e.prev_hash.as_str()) {
            return Err(fail("the prev_hash inside the entry does not match the chain".into()));
        }
        if canonical_json(&doc) != e.canonical {
            return Err(fail("stored bytes are not in canonical form".into()));
        }
        if entry_hash(&e.prev_hash, &e.canonical) != e.hash {
            return Err(fail(
                "its hash does not match its contents (the entry was altered)".into(),
            ));
        }
        self.last_seq = e.seq;
        self.last_hash = e.hash.clone();
        Ok(())
    }

    /// How many entries verified so far.
    pub fn verified(&self) -> i64 {
        self.last_seq
    }

    /// The hash of the last verified entry (the chain head).
    pub fn head(&self) -> &str {
        &self.last_hash
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::audit::{AuditEvent, ChainVerifier, GENESIS_HASH};

    fn event(n: i64) -> AuditEvent {
        AuditEvent {
            at: "2026-11-22T10:00:00.000Z".into(),
            actor: "admin".into(),
            via: None,
            action: "flag.update".into(),
            target: format!("flag:f{n}"),
            reason: Some("because".into()),
            details: json!({"version": n}),
        }
    }

    fn chain(n: i64) -> Vec<crate::audit::ChainedEntry> {
        let mut out: Vec<crate::audit::ChainedEntry> = Vec::new();
        for i in 0..n {
            let (seq, prev) =
                out.last().map_or((0, GENESIS_HASH.to_owned()), |e| (e.seq, e.hash.clone()));
            out.push(event(i).chain(seq, &prev));
        }
        out
    }

    #[test]
    fn how_the_actor_signed_in_is_chained_only_when_known() {
        let plain = event(1).chain(0, GENESIS_HASH);
        assert!(!plain.canonical.contains("\"via\""), "{}", plain.canonical);
        let signed_in = AuditEvent { via: Some("oidc session ses_1".into()), ..event(1) };
        let entry = signed_in.chain(0, GENESIS_HASH);
        assert!(entry.canonical.contains(r#""via":"oidc session ses_1""#), "{}", entry.canonical);
        assert_ne!(entry.hash, plain.hash, "the hash covers how the actor signed in");
        let mut v = ChainVerifier::default();
        v.push(&entry).unwrap();
    }

    #[test]
    fn a_clean_chain_verifies() {
        let mut v = ChainVerifier::default();
        for e in &chain(5) {
            v.push(e).unwrap();
        }
        assert_eq!(v.verified(), 5);
    }

    #[test]
    fn tampering_names_the_first_bad_entry() {
        let mut entries = chain(5);
        entries[2].canonical = entries[2].canonical.replace("because", "no reason");
        let mut v = ChainVerifier::default();
        let err = entries.iter().try_for_each(|e| v.push(e)).unwrap_err();
        assert_eq!(err.seq, 3);
        assert!(err.problem.contains("altered"), "{}", err.problem);

        let mut entries = chain(5);
        entries.remove(1);
        let mut v = ChainVerifier::default();
        assert_eq!(entries.iter().try_for_each(|e| v.push(e)).unwrap_err().seq, 3);
    }
}
