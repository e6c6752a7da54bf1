//! Batched event reporting to `POST /api/v1/events`.
//!
//! **Invariant:** a batch is cut once, gets an idempotency key, and is retried byte for byte
//! with that key until the server answers, so a batch whose answer was lost after the server
//! committed it counts once; new events wait behind it instead of being sliced into it.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::Rng as _;
use serde_json::{Value, json};

use crate::{Error, Inner};

/// A batch as sent: its body and its idempotency key, kept unchanged across retries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// How many events it holds.
    pub events: usize,
}

impl Batch {
    fn new(events: &[Value]) -> Batch {
        let mut key = [0u8; 16];
        rand::rng().fill_bytes(&mut key);
        let key = key.iter().map(|b| format!("{b:02x}")).collect();
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap_or_default();
        Batch { key, body, events: events.len() }
    }
}

/// Events waiting to be sent, oldest first, behind the batch being retried (if any).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    retry: Option<Batch>,
    events: VecDeque<Value>,
}

impl Queue {
    /// Adds events; drops the oldest beyond `max` (never from the batch being retried);
    /// returns how many were dropped.
    pub fn push(&mut self, events: Vec<Value>, max: usize) -> u64 {
        self.events.extend(events);
        let over = self.len().saturating_sub(max).min(self.events.len());
        self.events.drain(..over);
        over as u64
    }

    pub fn len(&self) -> usize {
        self.events.len() + self.retry.as_ref().map_or(0, |b| b.events)
    }

    /// The batch to send next: the one being retried, else up to `n` new events, cut now.
    fn take(&mut self, n: usize) -> Option<Batch> {
        if let Some(b) = self.retry.take() {
            return Some(b);
        }
        let n = n.min(self.events.len());
        if n == 0 {
            return None;
        }
        let events: Vec<Value> = self.events.drain(..n).collect();
        Some(Batch::new(&events))
    }

    /// Keeps `batch` to send again first, unchanged.
    fn put_back(&mut self, batch: Batch) {
        self.retry = Some(batch);
    }
}

/// Sends a batch every flush interval (or at once when a batch fills) until shutdown.
pub(crate) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            () = tokio::time::sleep(inner.settings.flush_interval) => {}
            () = inner.flush_now.notified() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = flush_all(&inner).await {
            tracing::debug!(error = %e, "event report failed; will retry");
        }
    }
}

/// Sends everything queued, batch by batch; on failure puts the batch back and stops.
pub(crate) async fn flush_all(inner: &Inner) -> Result<usize, Error> {
    let _sending = inner.send_lock.lock().await;
    let mut sent = 0;
    loop {
        let batch = {
            let mut q = inner.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            q.take(inner.settings.max_batch)
        };
        let Some(batch) = batch else { return Ok(sent) };
        let n = batch.events;
        match post(inner, &batch).await {
            Ok(()) => sent += n,
            Err((retry, e)) => {
                if retry {
                    inner
                        .queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .put_back(batch);
                } else {
                    tracing::error!(error = %e, events = n, "the server refused an event batch; dropped");
                    inner.lock_state().dropped += n as u64;
                }
                inner.lock_state().last_error = Some(e.clone());
                return Err(Error::Report(e));
            }
        }
    }
}

/// `Err((retry, message))`: retry on network errors and 5xx, not on 4xx.
async fn post(inner: &Inner, batch: &Batch) -> Result<(), (bool, String)> {
    let s = &inner.settings;
    let resp = inner
        .http
        .post(format!("{}/api/v1/events", s.url))
        .bearer_auth(&s.token)
        .header("x-wavegate-environment", &s.environment)
        .header("idempotency-key", &batch.key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(std::time::Duration::from_secs(10))
        .body(batch.body.clone())
        .send()
        .await
        .map_err(|e| {
            let e = wavegate_core::error::root_cause(&e);
            (
                true,
                format!("could not reach the server: {}", wavegate_core::text::redact_urls_in(&e)),
            )
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err((status.is_server_error() || status.as_u16() == 429, format!("HTTP {status}: {body}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_drops_the_oldest_beyond_its_bound() {
        let mut q = Queue::default();
        assert_eq!(q.push((0..5).map(|i| json!(i)).collect(), 3), 2);
        let batch = q.take(2).unwrap();
        assert_eq!(batch.body, br#"{"events":[2,3]}"#);
        assert_eq!(q.take(10).unwrap().body, br#"{"events":[4]}"#);
        assert_eq!(q.take(10), None);
    }

    #[test]
    fn a_failed_batch_is_retried_unchanged_with_its_key_before_newer_events() {
        let mut q = Queue::default();
        q.push((0..3).map(|i| json!(i)).collect(), 100);
        let first = q.take(10).unwrap();
        assert_eq!(first.key.len(), 32);
        // It failed; more events arrived meanwhile.
        q.put_back(first.clone());
        q.push((3..6).map(|i| json!(i)).collect(), 100);
        assert_eq!(q.len(), 6);
        let again = q.take(10).unwrap();
        assert_eq!(again, first, "the same bytes and key, not re-sliced with newer events");
        let next = q.take(10).unwrap();
        assert_eq!(next.body, br#"{"events":[3,4,5]}"#);
        assert_ne!(next.key, first.key);
        // The bound never drops events of the batch being retried.
        q.put_back(next.clone());
        assert_eq!(q.push(vec![json!(6), json!(7)], 3), 2);
        assert_eq!(q.take(10).unwrap(), next);
    }
}
