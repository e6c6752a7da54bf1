//! Tickets for OFREP's event stream, one rule for the server and the edge.
//!
//! A bulk answer advertises the stream in `eventStreams` with a ticket instead of the token
//! (browser providers open it with `EventSource`, which cannot send `Authorization`):
//! `<token id>~<expiry>~<HMAC>`, the HMAC-SHA256 (first 16 bytes, hex) of the token id, the
//! environment and the expiry under a key the issuer keeps (the server: the token's stored
//! hash; an edge: a secret it draws at start). Good for one environment, until its expiry,
//! and for nothing but the notification stream.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a ticket stays valid (a provider reconnecting later refetches the bulk answer and
/// gets a fresh one).
pub const TICKET_TTL: chrono::Duration = chrono::Duration::hours(24);

/// Seconds of inactivity after which a client may close the stream (advertised).
pub const INACTIVITY_DELAY_SEC: u64 = 120;

fn signature(key: &[u8], id: &str, env: &str, expiry: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("ofrep-events\n{id}\n{env}\n{expiry}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// A ticket for token `id` to hear `env`'s notifications until `now + TICKET_TTL`, signed
/// with `key`.
pub fn issue(key: &[u8], id: &str, env: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let expiry = (now + TICKET_TTL).timestamp();
    format!("{id}~{expiry}~{}", signature(key, id, env, expiry))
}

/// Most tickets a [`TicketCache`] keeps; past it, it starts again (a deployment's tokens ×
/// environments stay far below it, and every entry names a token that just authenticated).
const MAX_CACHED: usize = 10_000;

/// Tickets already issued, by environment and token id: a bulk answer reuses its token's
/// ticket while at least half of its lifetime is left, instead of signing a new one per request
/// (an HMAC, a format and a hex encoding on every bulk evaluation).
#[derive(Debug, Default)]
pub struct TicketCache {
    /// Environment → token id → (ticket, its expiry in Unix seconds).
    issued: std::sync::RwLock<Issued>,
}

/// Environment → token id → (ticket, its expiry in Unix seconds).
type Issued = HashMap<String, HashMap<String, (String, i64)>>;

impl TicketCache {
    /// The ticket issued for token `id` in `env`, if it is still good for at least half of
    /// [`TICKET_TTL`] at `now`.
    pub fn get(&self, id: &str, env: &str, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let issued = self.issued.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (ticket, expiry) = issued.get(env)?.get(id)?;
        (*expiry - now.timestamp() >= TICKET_TTL.num_seconds() / 2).then(|| ticket.clone())
    }

    /// Issues a ticket for token `id` in `env` signed with `key` (as [`issue`]) and keeps it.
    pub fn issue(
        &self,
        key: &[u8],
        id: &str,
        env: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let ticket = issue(key, id, env, now);
        let expiry = (now + TICKET_TTL).timestamp();
        let mut issued = self.issued.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if issued.values().map(|m| m.len()).sum::<usize>() >= MAX_CACHED {
            issued.clear();
        }
        issued.entry(env.to_owned()).or_default().insert(id.to_owned(), (ticket.clone(), expiry));
        ticket
    }
}

/// A ticket as it arrives: whose it claims to be, until when, and its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket<'a> {
    /// The token id it names.
    pub id: &'a str,
    expiry: i64,
    signature: &'a str,
}

impl<'a> Ticket<'a> {
    /// Splits a ticket; `None` when it is not one.
    pub fn parse(text: &'a str) -> Option<Ticket<'a>> {
        let mut parts = text.split('~');
        let (Some(id), Some(expiry), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Ticket { id, expiry: expiry.parse().ok()?, signature })
    }

    /// Whether it is unexpired at `now` and signed with `key` for `env`.
    pub fn valid(&self, key: &[u8], env: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
        if self.expiry < now.timestamp() {
            return false;
        }
        let expected = signature(key, self.id, env, self.expiry);
        // Without an early exit.
        expected.len() == self.signature.len()
            && expected.bytes().zip(self.signature.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Where the request says this service is reachable (`X-Forwarded-Proto` and `Host`), for an
/// advertised URL; `None` without a `Host` header.
pub fn request_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    Some(format!("{proto}://{host}"))
}

/// The `eventStreams` entry for `origin`'s stream of `env` with `ticket`.
pub fn advertisement(origin: &str, env: &str, ticket: &str) -> serde_json::Value {
    let enc = wavegate_core::text::percent_encode;
    serde_json::json!({
        "type": "sse",
        "url": format!("{}/ofrep/v1/events?environment={}&ticket={}", origin.trim_end_matches('/'), enc(env), enc(ticket)),
        "inactivityDelaySec": INACTIVITY_DELAY_SEC,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_ticket_is_reused_for_half_its_lifetime_then_issued_again() {
        let cache = TicketCache::default();
        let now = chrono::Utc::now();
        assert_eq!(cache.get("tok_1", "prod", now), None);
        let first = cache.issue(b"key", "tok_1", "prod", now);
        assert!(Ticket::parse(&first).unwrap().valid(b"key", "prod", now));
        assert_eq!(cache.get("tok_1", "prod", now).as_deref(), Some(first.as_str()));
        assert_eq!(cache.get("tok_1", "staging", now), None, "another environment");
        assert_eq!(cache.get("tok_2", "prod", now), None, "another token");
        let half = now + TICKET_TTL / 2;
        assert_eq!(cache.get("tok_1", "prod", half).as_deref(), Some(first.as_str()));
        let later = half + chrono::Duration::seconds(1);
        assert_eq!(cache.get("tok_1", "prod", later), None, "less than half its lifetime left");
        let second = cache.issue(b"key", "tok_1", "prod", later);
        assert_ne!(first, second);
        assert_eq!(cache.get("tok_1", "prod", later).as_deref(), Some(second.as_str()));
    }

    #[test]
    fn the_ticket_cache_starts_again_when_full() {
        let cache = TicketCache::default();
        let now = chrono::Utc::now();
        for i in 0..MAX_CACHED {
            cache.issue(b"key", &format!("tok_{i}"), "prod", now);
        }
        assert!(cache.get("tok_0", "prod", now).is_some());
        cache.issue(b"key", "tok_new", "prod", now);
        assert!(cache.get("tok_0", "prod", now).is_none(), "the cache started again");
        assert!(cache.get("tok_new", "prod", now).is_some());
    }

    #[test]
    fn a_ticket_holds_for_its_key_environment_and_time_only() {
        let now = chrono::Utc::now();
        let t = issue(b"key", "tok_1", "prod", now);
        let parsed = Ticket::parse(&t).unwrap();
        assert_eq!(parsed.id, "tok_1");
        assert!(parsed.valid(b"key", "prod", now));
        assert!(!parsed.valid(b"other", "prod", now), "another key");
        assert!(!parsed.valid(b"key", "staging", now), "another environment");
        assert!(!parsed.valid(b"key", "prod", now + TICKET_TTL + chrono::Duration::seconds(1)));
        let forged = format!("{}0", &t[..t.len() - 1]);
        let forged = if forged == t { format!("{}1", &t[..t.len() - 1]) } else { forged };
        assert!(!Ticket::parse(&forged).unwrap().valid(b"key", "prod", now));
        for bad in ["", "a~b", "a~1~s~x", "a~x~s"] {
            assert!(Ticket::parse(bad).is_none(), "{bad}");
        }
    }
}
