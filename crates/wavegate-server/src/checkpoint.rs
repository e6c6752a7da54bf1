//! Signed checkpoints of the audit chain: the anchor outside the database.
//!
//! The hash chain shows that no entry was changed *relative to the entries after it*, but
//! someone who can write the database can cut off its tail, or rewrite an entry and chain
//! everything after it again, and the chain verifies. A checkpoint is the chain head (sequence
//! number and hash) at a moment, signed with an ed25519 key that the operator provides
//! (`serve --checkpoint-key`) and written outside the database (`serve --checkpoint-dir`, and
//! notification targets subscribed to `checkpoint`). Checked against a chain
//! ([`compare`]), a checkpoint whose entry is missing proves truncation, and one whose entry has
//! another hash proves a rewrite. `wavegate audit verify --checkpoints DIR --public-key KEY`
//! does that, online or on the database itself (`--db`).
//!
//! What a checkpoint cannot prove: entries appended after the newest checkpoint and removed
//! again before anyone looked; and nothing, if the same person holds the database, the key and
//! the checkpoint directory.

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// The format tag inside every checkpoint (and the first line of what is signed).
pub const FORMAT: &str = "wavegate-checkpoint/1";

pub use wavegate_api::audit::Checkpoint;

/// The bytes signed: the format, the sequence number, the hash and the time, one a line.
pub fn message(seq: i64, hash: &str, at: &str) -> Vec<u8> {
    format!("{FORMAT}\n{seq}\n{hash}\n{at}\n").into_bytes()
}

/// Checks `cp`'s signature, by `trusted` (`ed25519:<base64>`) when given, else by the key the
/// checkpoint names (which proves only that the checkpoint is whole, not who made it).
pub fn verify(cp: &Checkpoint, trusted: Option<&str>) -> Result<(), String> {
    if cp.format != FORMAT {
        return Err(format!("format is {:?}, not {FORMAT:?}", cp.format));
    }
    let key = trusted.unwrap_or(&cp.key);
    if trusted.is_some_and(|t| t.trim() != cp.key) {
        return Err(format!("signed by {}, not by the trusted key {key}", cp.key));
    }
    let public = parse_public_key(key)?;
    let signature =
        B64.decode(&cp.signature).map_err(|e| format!("signature is not base64: {e}"))?;
    UnparsedPublicKey::new(&ED25519, public)
        .verify(&message(cp.seq, &cp.hash, &cp.at), &signature)
        .map_err(|_| "the signature does not verify".to_owned())
}

/// Parses `ed25519:<base64 of 32 bytes>`.
pub fn parse_public_key(key: &str) -> Result<Vec<u8>, String> {
    let b64 = key
        .trim()
        .strip_prefix("ed25519:")
        .ok_or_else(|| format!("public key {key:?} does not start with \"ed25519:\""))?;
    let bytes = B64.decode(b64).map_err(|e| format!("public key is not base64: {e}"))?;
    if bytes.len() != 32 {
        return Err(format!("an ed25519 public key has 32 bytes, not {}", bytes.len()));
    }
    Ok(bytes)
}

/// The operator's signing key.
#[derive(Debug)]
pub struct Signer {
    pair: Ed25519KeyPair,
    public: String,
}

impl Signer {
    /// Reads a PKCS#8 ed25519 private key, PEM (`openssl genpkey -algorithm ed25519`, or
    /// `wavegate audit keygen`) or DER.
    pub fn load(path: &Path) -> Result<Signer, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("could not read the checkpoint key {}: {e}", path.display()))?;
        Signer::from_pkcs8(&bytes)
            .map_err(|e| format!("the checkpoint key {} is not usable: {e}", path.display()))
    }

    /// A signer from PKCS#8 bytes, PEM or DER.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Signer, String> {
        let der = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => pem_body(text)?,
            _ => bytes.to_vec(),
        };
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| format!("not a PKCS#8 ed25519 private key ({e})"))?;
        let public = format!("ed25519:{}", B64.encode(pair.public_key().as_ref()));
        Ok(Signer { pair, public })
    }

    /// A new key, as PKCS#8 PEM (for `wavegate audit keygen`).
    pub fn generate_pem() -> Result<String, String> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| e.to_string())?;
        let b64 = B64.encode(doc.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        Ok(format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ))
    }

    /// The public half, `ed25519:<base64>`.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// Signs the head `seq`/`hash` at `at`.
    pub fn sign(&self, seq: i64, hash: &str, at: chrono::DateTime<chrono::Utc>) -> Checkpoint {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let signature = self.pair.sign(&message(seq, hash, &at));
        Checkpoint {
            format: FORMAT.to_owned(),
            seq,
            hash: hash.to_owned(),
            at,
            key: self.public.clone(),
            signature: B64.encode(signature.as_ref()),
        }
    }
}

/// The base64 body of a PEM block.
fn pem_body(text: &str) -> Result<Vec<u8>, String> {
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    B64.decode(body).map_err(|e| format!("the PEM body is not base64: {e}"))
}

/// The file a checkpoint is written to in a checkpoint directory.
pub fn file_name(seq: i64) -> String {
    format!("checkpoint-{seq:012}.json")
}

/// Writes `cp` into `dir` (created if missing) whole or not at all: a temporary file, synced,
/// then renamed. An existing checkpoint of the same entry is kept.
pub fn write(dir: &Path, cp: &Checkpoint) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name(cp.seq));
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{}.tmp", file_name(cp.seq)));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(serde_json::to_string_pretty(cp).expect("a checkpoint serialises").as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// Every checkpoint in `dir` (files `checkpoint-*.json`), in sequence order; a file that does
/// not parse is an error naming it.
pub fn read_dir(dir: &Path) -> Result<Vec<Checkpoint>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("could not read the checkpoint directory {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !(name.starts_with("checkpoint-") && name.ends_with(".json")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("could not read {}: {e}", path.display()))?;
        let cp: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a checkpoint: {e}", path.display()))?;
        out.push(cp);
    }
    out.sort_by_key(|c| c.seq);
    Ok(out)
}

/// What comparing checkpoints with a chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// How many checkpoints were given.
    pub checkpoints: usize,
    /// The newest checkpoint that matches the chain (its sequence number), if any.
    pub newest_matching: Option<i64>,
    /// What is wrong, one line each (empty: every checkpoint matches).
    pub problems: Vec<String>,
}

impl Comparison {
    /// Whether every checkpoint verified and matched.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compares `checkpoints` with a chain whose newest entry is `head` (0 when empty), where
/// `hash_of(seq)` is the stored hash of entry `seq`. A checkpoint that does not verify (by
/// `trusted`, when given) is named; one past the head proves truncation; one whose entry has
/// another hash proves a rewrite.
pub fn compare(
    checkpoints: &[Checkpoint],
    trusted: Option<&str>,
    head: i64,
    mut hash_of: impl FnMut(i64) -> Option<String>,
) -> Comparison {
    let mut c = Comparison { checkpoints: checkpoints.len(), ..Comparison::default() };
    for cp in checkpoints {
        let name = format!("checkpoint of entry {} ({})", cp.seq, cp.at);
        if let Err(e) = verify(cp, trusted) {
            c.problems.push(format!("{name}: {e}"));
            continue;
        }
        if cp.seq > head {
            c.problems.push(format!(
                "truncated: the chain ends at entry {head}, but the {name} signed entry {} \
                 ({} entries are gone)",
                cp.seq,
                cp.seq - head
            ));
            continue;
        }
        match hash_of(cp.seq) {
            Some(h) if h == cp.hash => c.newest_matching = Some(cp.seq),
            Some(h) => c.problems.push(format!(
                "rewritten: entry {} has hash {h}, but the {name} signed {}",
                cp.seq, cp.hash
            )),
            None => c
                .problems
                .push(format!("truncated: entry {} is missing, but the {name} signed it", cp.seq)),
        }
    }
    c
}

/// [`compare`] against the chain in `store` itself (`wavegate audit verify --db`).
pub async fn compare_store(
    store: &dyn wavegate_store::Store,
    checkpoints: &[Checkpoint],
    trusted: Option<&str>,
) -> wavegate_store::StoreResult<Comparison> {
    let head = store.audit_head().await?;
    let mut hashes = std::collections::BTreeMap::new();
    for cp in checkpoints.iter().filter(|c| c.seq >= 1 && c.seq <= head) {
        let page = store.audit(cp.seq - 1, 1).await?;
        if let Some(row) = page.into_iter().find(|r| r.entry.seq == cp.seq) {
            hashes.insert(cp.seq, row.entry.hash);
        }
    }
    Ok(compare(checkpoints, trusted, head, |seq| hashes.get(&seq).cloned()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn signer() -> Signer {
        Signer::from_pkcs8(Signer::generate_pem().unwrap().as_bytes()).unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_by_its_key_and_by_nothing_else() {
        let s = signer();
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let cp = s.sign(7, "abc", at);
        assert_eq!(cp.at, "2026-12-03T12:00:00.000Z");
        verify(&cp, None).unwrap();
        verify(&cp, Some(s.public_key())).unwrap();
        let other = signer();
        assert!(verify(&cp, Some(other.public_key())).unwrap_err().contains("not by the trusted"));
        for forged in [
            Checkpoint { seq: 8, ..cp.clone() },
            Checkpoint { hash: "abd".into(), ..cp.clone() },
            Checkpoint { at: "2026-12-03T12:00:01.000Z".into(), ..cp.clone() },
        ] {
            assert_eq!(verify(&forged, None).unwrap_err(), "the signature does not verify");
        }
        // Re-signed with another key that claims to be it: refused by the trusted key.
        let swapped = Checkpoint { key: other.public_key().to_owned(), ..other.sign(7, "abc", at) };
        verify(&swapped, None).unwrap();
        assert!(verify(&swapped, Some(s.public_key())).is_err());
    }

    #[test]
    fn compare_names_truncation_and_rewrites() {
        let s = signer();
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let chain: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        let hash_of = |seq: i64| chain.get(usize::try_from(seq - 1).ok()?).cloned();
        let cps = [s.sign(2, "h2", at), s.sign(5, "h5", at)];
        let c = compare(&cps, Some(s.public_key()), 5, hash_of);
        assert!(c.ok(), "{c:?}");
        assert_eq!(c.newest_matching, Some(5));
        let c = compare(&cps, Some(s.public_key()), 3, hash_of);
        assert!(c.problems[0].starts_with("truncated: the chain ends at entry 3"), "{c:?}");
        assert_eq!(c.newest_matching, Some(2));
        let rewritten = |seq: i64| Some(if seq == 5 { "x5".into() } else { format!("h{seq}") });
        let c = compare(&cps, None, 5, rewritten);
        assert!(c.problems[0].starts_with("rewritten: entry 5 has hash x5"), "{c:?}");
    }

    #[test]
    fn keys_are_read_from_pem_and_refused_with_a_reason() {
        let pem = Signer::generate_pem().unwrap();
        let a = Signer::from_pkcs8(pem.as_bytes()).unwrap();
        let der = pem_body(&pem).unwrap();
        assert_eq!(Signer::from_pkcs8(&der).unwrap().public_key(), a.public_key());
        assert!(Signer::from_pkcs8(b"nonsense").unwrap_err().contains("not a PKCS#8 ed25519"));
        assert!(parse_public_key("rsa:AAAA").unwrap_err().contains("ed25519:"));
        assert!(parse_public_key("ed25519:AAAA").unwrap_err().contains("32 bytes"));
    }

    #[test]
    fn checkpoints_are_written_whole_and_read_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = signer();
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        for seq in [10, 2, 33] {
            write(dir.path(), &s.sign(seq, &format!("h{seq}"), at)).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let read = read_dir(dir.path()).unwrap();
        assert_eq!(read.iter().map(|c| c.seq).collect::<Vec<_>>(), [2, 10, 33]);
        std::fs::write(dir.path().join("checkpoint-000000000099.json"), "{").unwrap();
        assert!(read_dir(dir.path()).unwrap_err().contains("checkpoint-000000000099.json"));
    }
}
