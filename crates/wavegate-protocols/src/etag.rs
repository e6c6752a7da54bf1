//! ETags and `If-None-Match`, one rule for every source.
//!
//! - Bulk OFREP: a hash of the configuration revision, the environment and the canonical
//!   context (RFC 8785), so a new context never gets a stale 304; where a flag of the
//!   environment reads the clock and the context brings no `currentTime`, the clock's epoch is
//!   hashed too: how many of the dates the answers change at have passed
//!   ([`wavegate_core::timing::TimeDependence::epoch`]), or the time itself when an answer may
//!   change at any moment.
//! - Unleash features: a hash of the document's bytes.
//!
//! `If-None-Match` matches on any listed tag, or `*`, by RFC 9110's weak comparison: `W/"x"`
//! matches `"x"` (proxies that compress a response weaken its ETag; the client then sends the
//! weak form back, and must still get its 304).

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use wavegate_core::audit::sha256_hex;
use wavegate_core::canonical::canonical_json;

/// A strong ETag of 32 hex digits of `hex`.
fn quoted(hex: &str) -> String {
    format!("\"{}\"", &hex[..32])
}

/// The bulk OFREP ETag. `clock` is the epoch of the time the source put into the context, or
/// empty when the answers cannot depend on it.
pub fn bulk(revision: i64, env: &str, context: &Value, clock: &str) -> String {
    quoted(&sha256_hex(&format!("{revision}\n{env}\n{}\n{clock}", canonical_json(context))))
}

/// The ETag of a document's bytes (it tags every frontend answer): the first 16 bytes of its
/// SHA-256, hex-encoded alone rather than all 32.
pub fn of_bytes(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    quoted(&hex::encode(&Sha256::digest(body)[..16]))
}

/// Whether the request's `If-None-Match` matches `etag` (weak comparison: a `W/` prefix on
/// either side is ignored).
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().strip_prefix("W/").unwrap_or(t.trim()).to_owned();
    let ours = opaque(etag);
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == "*" || opaque(t) == ours))
}

/// `etag` as a header value.
pub fn header_value(etag: &str) -> HeaderValue {
    HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// `304 Not Modified` carrying `etag`.
pub fn not_modified(etag: &str) -> Response {
    (axum::http::StatusCode::NOT_MODIFIED, [(header::ETAG, header_value(etag))]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wavegate_core::audit::sha256_hex_bytes;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tag = "\"0123\"";
        for v in ["\"0123\"", "W/\"0123\"", " \"x\", W/\"0123\" ", "*"] {
            assert!(if_none_match(&headers(v), tag), "{v}");
            assert!(if_none_match(&headers(v), "W/\"0123\""), "{v} against a weak tag");
        }
        for v in ["\"0124\"", "W/\"01\"", "0123", "w/\"0123\""] {
            assert!(!if_none_match(&headers(v), tag), "{v}");
        }
        assert!(!if_none_match(&HeaderMap::new(), tag));
    }

    #[test]
    fn of_bytes_is_the_quoted_prefix_of_the_sha256() {
        for body in [&b""[..], b"{\"toggles\":[]}", &[0xffu8; 1000][..]] {
            assert_eq!(of_bytes(body), quoted(&sha256_hex_bytes(body)));
        }
    }
}
