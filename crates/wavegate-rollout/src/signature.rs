//! Signed artifacts (pure): minisign public keys and detached signatures, verified against the
//! artifact's BLAKE2b-512 digest. minisign (0.11 and later by default) signs that digest
//! rather than the file (its `ED` algorithm), so the server never needs the artifact itself:
//! whoever starts the rollout offers the artifact's SHA-256 (checked against the plan's
//! `release.artifact_sha256`), its BLAKE2b-512 and the `.minisig` text; both digests are
//! computed from the same file by `wavegate rollout start --artifact`.
//!
//! A plan asks for a signature with `release.signed_by`: each entry is a minisign public key
//! (the base64 line of a `.pub` file) or the key id (hex, as minisign prints it) of a key the server trusts
//! (`serve --trusted-keys`). A start is refused unless the signature verifies under one of them,
//! its trusted comment included. What was verified is kept as [`ArtifactEvidence`].

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The most text of a `.minisig` accepted (a real one is about 300 bytes).
pub const MAX_SIGNATURE_TEXT: usize = 4096;

/// A minisign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Its key id, as minisign stores it (little-endian).
    id: [u8; 8],
    /// The Ed25519 public key.
    key: [u8; 32],
}

/// A text that is not a minisign key or signature, or a signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not a minisign public key.
    #[error("not a minisign public key ({0})")]
    BadKey(String),
    /// Not a minisign signature.
    #[error("not a minisign signature ({0})")]
    BadSignature(String),
    /// A legacy (non-prehashed) signature: it signs the whole file, which the server never sees.
    #[error(
        "a legacy minisign signature (algorithm Ed) signs the whole file; sign a prehashed one (minisign 0.11+, or minisign -S -H)"
    )]
    Legacy,
    /// Signed by a key the plan does not accept.
    #[error("signed by key {got}, which the plan does not accept (it accepts {})", want.join(", "))]
    UnknownKey {
        /// The signature's key id.
        got: String,
        /// The key ids the plan accepts.
        want: Vec<String>,
    },
    /// The signature does not verify: the artifact is not the one that was signed.
    #[error("the signature by key {0} does not match the artifact")]
    Mismatch(String),
    /// The trusted comment was altered after signing.
    #[error("the trusted comment of the signature by key {0} does not verify (it was altered)")]
    CommentAltered(String),
}

fn decode(text: &str, want: usize, what: &str) -> Result<Vec<u8>, String> {
    let bytes = STANDARD.decode(text.trim()).map_err(|e| format!("{what}: not base64: {e}"))?;
    if bytes.len() != want {
        return Err(format!("{what}: {} bytes, want {want}", bytes.len()));
    }
    Ok(bytes)
}

/// The id minisign prints for a key: its little-endian number in upper-case hex, without
/// leading zeros (so one key in sixteen prints fewer than 16 digits).
fn id_text(id: [u8; 8]) -> String {
    format!("{:X}", u64::from_le_bytes(id))
}

impl PublicKey {
    /// Parses the base64 line of a minisign `.pub` file (`RW…`), or the whole file (its
    /// `untrusted comment:` line is skipped).
    pub fn parse(text: &str) -> Result<PublicKey, SignatureError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or_else(|| SignatureError::BadKey("empty".into()))?;
        let bytes = decode(line, 42, "key").map_err(SignatureError::BadKey)?;
        if &bytes[..2] != b"Ed" {
            return Err(SignatureError::BadKey("its algorithm is not Ed25519".into()));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[2..10]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[10..]);
        Ok(PublicKey { id, key })
    }

    /// Every key of a trusted-keys file: minisign `.pub` files concatenated (comment lines,
    /// `#` lines and blank lines skipped); the first line that is not a key is the error.
    pub fn parse_many(text: &str) -> Result<Vec<PublicKey>, (usize, SignatureError)> {
        text.lines()
            .enumerate()
            .map(|(n, l)| (n + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .filter(|(_, l)| !l.starts_with("untrusted comment:"))
            .map(|(n, l)| PublicKey::parse(l).map_err(|e| (n, e)))
            .collect()
    }

    /// Its key id, as minisign prints it (up to 16 hex digits).
    pub fn id(&self) -> String {
        id_text(self.id)
    }

    /// The key as the base64 line of a `.pub` file.
    pub fn to_text(&self) -> String {
        let mut bytes = b"Ed".to_vec();
        bytes.extend_from_slice(&self.id);
        bytes.extend_from_slice(&self.key);
        STANDARD.encode(bytes)
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.key).verify(message, signature).is_ok()
    }
}

/// Whether `entry` of `release.signed_by` is well formed: a minisign public key or a key id.
pub fn check_entry(entry: &str) -> Result<(), SignatureError> {
    if is_key_id(entry) { Ok(()) } else { PublicKey::parse(entry).map(|_| ()) }
}

/// A key id as minisign prints it: 1 to 16 hex digits (a public key is 56 base64 characters).
fn is_key_id(entry: &str) -> bool {
    (1..=16).contains(&entry.len()) && entry.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `entry` (a key id) names `key`, with or without leading zeros, in either case.
fn names(entry: &str, key: &PublicKey) -> bool {
    u64::from_str_radix(entry, 16).is_ok_and(|n| n == u64::from_le_bytes(key.id))
}

/// A parsed `.minisig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    prehashed: bool,
    key_id: [u8; 8],
    signature: Vec<u8>,
    trusted_comment: String,
    global: Vec<u8>,
}

impl Signature {
    /// Parses a `.minisig` file's text: an untrusted comment, the signature, the trusted comment
    /// and the global signature over the signature and the trusted comment.
    pub fn parse(text: &str) -> Result<Signature, SignatureError> {
        let bad = |m: &str| SignatureError::BadSignature(m.to_owned());
        if text.len() > MAX_SIGNATURE_TEXT {
            return Err(bad(&format!("longer than {MAX_SIGNATURE_TEXT} bytes")));
        }
        let mut lines = text.lines();
        let comment = lines.next().ok_or_else(|| bad("empty"))?;
        if !comment.starts_with("untrusted comment:") {
            return Err(bad("its first line is not an untrusted comment"));
        }
        let sig = lines.next().ok_or_else(|| bad("no signature line"))?;
        let sig = decode(sig, 74, "signature").map_err(SignatureError::BadSignature)?;
        let prehashed = match &sig[..2] {
            b"ED" => true,
            b"Ed" => false,
            _ => return Err(bad("its algorithm is not Ed25519")),
        };
        let trusted = lines.next().ok_or_else(|| bad("no trusted comment"))?;
        let trusted_comment = trusted
            .strip_prefix("trusted comment: ")
            .ok_or_else(|| bad("its third line is not a trusted comment"))?
            .to_owned();
        let global = lines.next().ok_or_else(|| bad("no global signature"))?;
        let global =
            decode(global, 64, "global signature").map_err(SignatureError::BadSignature)?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&sig[2..10]);
        Ok(Signature { prehashed, key_id, signature: sig[10..].to_vec(), trusted_comment, global })
    }

    /// The id of the key that made it.
    pub fn key_id(&self) -> String {
        id_text(self.key_id)
    }
}

/// What a start offers about its artifact.
#[derive(Debug, Clone, Copy)]
pub struct Offered<'a> {
    /// The artifact's BLAKE2b-512, hex.
    pub blake2b: &'a str,
    /// The `.minisig` text.
    pub signature: &'a str,
}

/// What was verified, kept on the rollout and in its audit entry, and shown with the rollout
/// (`artifact` of `GET /api/v1/rollouts/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ArtifactEvidence {
    /// The artifact's SHA-256, as offered and checked against the plan (when it declares one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The artifact's BLAKE2b-512, the digest the signature covers.
    pub blake2b: String,
    /// The id of the key that signed it (as minisign prints it).
    pub key_id: String,
    /// That public key (the base64 line of its `.pub` file).
    pub public_key: String,
    /// Where the key came from: `plan` (`release.signed_by`) or `server` (`--trusted-keys`).
    pub key_source: String,
    /// The signature's trusted comment (minisign puts the signing time and file name there).
    pub trusted_comment: String,
    /// The `.minisig` text verified, so a release pipeline can offer it again in the next
    /// environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Why a start's artifact is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactRefusal {
    /// The plan asks for a signature and none was offered.
    #[error(
        "the plan's release must be signed (release.signed_by) and no signature was offered; start with --artifact FILE (and FILE.minisig beside it, or --signature)"
    )]
    Unsigned,
    /// The plan names a key id the server does not trust.
    #[error(
        "release.signed_by names key {0}, which is not among the server's trusted keys (serve --trusted-keys)"
    )]
    UntrustedKeyId(String),
    /// The offered digest is not BLAKE2b-512 hex.
    #[error("artifact_blake2b must be 128 hex digits (BLAKE2b-512)")]
    BadDigest,
    /// The signature is malformed or does not verify.
    #[error("artifact signature refused: {0}")]
    Signature(#[from] SignatureError),
}

/// Judges the offered signature against the keys `signed_by` names (`trusted` resolves key
/// ids). `None` when the plan asks for no signature and none was offered; a signature offered
/// to a plan that asks for none is still verified against the server's trusted keys when it
/// has some (the evidence is worth keeping), and is otherwise ignored.
pub fn judge(
    signed_by: &[String],
    trusted: &[PublicKey],
    offered: Option<Offered<'_>>,
) -> Result<Option<ArtifactEvidence>, ArtifactRefusal> {
    let Some(offered) = offered else {
        return if signed_by.is_empty() { Ok(None) } else { Err(ArtifactRefusal::Unsigned) };
    };
    let mut keys: Vec<(&PublicKey, &str)> = Vec::new();
    let inline: Vec<PublicKey> = signed_by
        .iter()
        .filter(|e| !is_key_id(e))
        .filter_map(|e| PublicKey::parse(e).ok())
        .collect();
    keys.extend(inline.iter().map(|k| (k, "plan")));
    for e in signed_by.iter().filter(|e| is_key_id(e)) {
        let k = trusted.iter().find(|k| names(e, k)).ok_or_else(|| {
            let shown =
                u64::from_str_radix(e, 16).map_or(e.to_ascii_uppercase(), |n| format!("{n:X}"));
            ArtifactRefusal::UntrustedKeyId(shown)
        })?;
        keys.push((k, "server"));
    }
    if signed_by.is_empty() {
        if trusted.is_empty() {
            return Ok(None);
        }
        keys.extend(trusted.iter().map(|k| (k, "server")));
    }
    if !is_blake2b_hex(offered.blake2b) {
        return Err(ArtifactRefusal::BadDigest);
    }
    let hash = hex::decode(offered.blake2b).map_err(|_| ArtifactRefusal::BadDigest)?;
    let sig = Signature::parse(offered.signature)?;
    if !sig.prehashed {
        return Err(SignatureError::Legacy.into());
    }
    let Some((key, source)) = keys.iter().find(|(k, _)| k.id == sig.key_id) else {
        return Err(SignatureError::UnknownKey {
            got: sig.key_id(),
            want: keys.iter().map(|(k, _)| k.id()).collect(),
        }
        .into());
    };
    if !key.verifies(&hash, &sig.signature) {
        return Err(SignatureError::Mismatch(key.id()).into());
    }
    let mut global = sig.signature.clone();
    global.extend_from_slice(sig.trusted_comment.as_bytes());
    if !key.verifies(&global, &sig.global) {
        return Err(SignatureError::CommentAltered(key.id()).into());
    }
    Ok(Some(ArtifactEvidence {
        sha256: None,
        blake2b: offered.blake2b.to_ascii_lowercase(),
        key_id: key.id(),
        public_key: key.to_text(),
        key_source: (*source).to_owned(),
        trusted_comment: sig.trusted_comment,
        signature: Some(offered.signature.to_owned()),
    }))
}

/// Whether `text` is a BLAKE2b-512 digest in hex (128 digits).
pub fn is_blake2b_hex(text: &str) -> bool {
    text.len() == 128 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    /// A signer as minisign is (key id and formats), for the branches a real tool cannot be
    /// made to produce (altered comments, other keys); the integration tests use minisign.
    struct Signer {
        pair: Ed25519KeyPair,
        id: [u8; 8],
    }

    impl Signer {
        fn new(seed: u8) -> Signer {
            let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
            Signer { pair, id: [seed, 1, 2, 3, 4, 5, 6, 7] }
        }
        fn public(&self) -> String {
            let mut b = b"Ed".to_vec();
            b.extend_from_slice(&self.id);
            b.extend_from_slice(self.pair.public_key().as_ref());
            STANDARD.encode(b)
        }
        fn sign(&self, hash: &[u8], alg: &[u8; 2], comment: &str) -> String {
            let sig = self.pair.sign(hash);
            let mut line = alg.to_vec();
            line.extend_from_slice(&self.id);
            line.extend_from_slice(sig.as_ref());
            let mut g = sig.as_ref().to_vec();
            g.extend_from_slice(comment.as_bytes());
            let global = self.pair.sign(&g);
            format!(
                "untrusted comment: signature from test key\n{}\ntrusted comment: {comment}\n{}\n",
                STANDARD.encode(line),
                STANDARD.encode(global.as_ref())
            )
        }
    }

    const HASH: &str = "ab";

    fn hash() -> String {
        HASH.repeat(64)
    }

    fn offered<'a>(blake2b: &'a str, signature: &'a str) -> Option<Offered<'a>> {
        Some(Offered { blake2b, signature })
    }

    #[test]
    fn a_signature_by_a_named_key_verifies_and_is_kept() {
        let s = Signer::new(7);
        let h = hash();
        let text = s.sign(&hex::decode(&h).unwrap(), b"ED", "timestamp:1 file:app.tar.gz");
        let ev = judge(&[s.public()], &[], offered(&h, &text)).unwrap().unwrap();
        assert_eq!(ev.key_source, "plan");
        assert_eq!(ev.trusted_comment, "timestamp:1 file:app.tar.gz");
        assert_eq!(ev.public_key, s.public());
        assert_eq!(ev.key_id, PublicKey::parse(&s.public()).unwrap().id());
        // By key id, from the server's keys.
        let trusted = vec![PublicKey::parse(&s.public()).unwrap()];
        let ev = judge(&[ev.key_id.to_lowercase()], &trusted, offered(&h, &text)).unwrap().unwrap();
        assert_eq!(ev.key_source, "server");
        // minisign prints ids without leading zeros (this one's top digit is 0); the padded
        // form names the same key.
        assert_eq!(ev.key_id, "706050403020107");
        let padded = format!("0{}", ev.key_id);
        assert!(judge(&[padded], &trusted, offered(&h, &text)).unwrap().is_some());
    }

    #[test]
    fn every_forgery_is_refused() {
        let (s, other) = (Signer::new(7), Signer::new(9));
        let h = hash();
        let text = s.sign(&hex::decode(&h).unwrap(), b"ED", "c");
        // Another artifact.
        let h2 = "cd".repeat(64);
        assert!(matches!(
            judge(&[s.public()], &[], offered(&h2, &text)),
            Err(ArtifactRefusal::Signature(SignatureError::Mismatch(_)))
        ));
        // Another key.
        assert!(matches!(
            judge(&[other.public()], &[], offered(&h, &text)),
            Err(ArtifactRefusal::Signature(SignatureError::UnknownKey { .. }))
        ));
        // The trusted comment altered.
        let altered = text.replace("trusted comment: c", "trusted comment: d");
        assert!(matches!(
            judge(&[s.public()], &[], offered(&h, &altered)),
            Err(ArtifactRefusal::Signature(SignatureError::CommentAltered(_)))
        ));
        // A legacy signature.
        let legacy = s.sign(&hex::decode(&h).unwrap(), b"Ed", "c");
        assert_eq!(
            judge(&[s.public()], &[], offered(&h, &legacy)),
            Err(ArtifactRefusal::Signature(SignatureError::Legacy))
        );
        // None offered, a key id the server lacks, a bad digest.
        assert_eq!(judge(&[s.public()], &[], None), Err(ArtifactRefusal::Unsigned));
        assert_eq!(
            judge(&["00112233AABBCCDD".into()], &[], offered(&h, &text)),
            Err(ArtifactRefusal::UntrustedKeyId("112233AABBCCDD".into()))
        );
        assert_eq!(
            judge(&[s.public()], &[], offered("xyz", &text)),
            Err(ArtifactRefusal::BadDigest)
        );
    }

    #[test]
    fn unsigned_plans_accept_unsigned_starts() {
        assert_eq!(judge(&[], &[], None), Ok(None));
        assert_eq!(judge(&[], &[], offered("ab", "junk")), Ok(None));
    }

    #[test]
    fn key_files_parse_with_their_comments() {
        let s = Signer::new(3);
        let file = format!("untrusted comment: minisign public key\n{}\n\n# ops\n", s.public());
        let keys = PublicKey::parse_many(&file).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].to_text(), s.public());
        let bad = PublicKey::parse_many("RWQnotakey\n").unwrap_err();
        assert_eq!(bad.0, 1);
        assert!(check_entry("00112233aabbccdd").is_ok());
        assert!(check_entry("nope").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,400}") {
            let _ = Signature::parse(&text);
            let _ = PublicKey::parse(&text);
            let _ = judge(&["00112233AABBCCDD".into()], &[], offered(&hash(), &text));
        }
    }
}
