//! Batched event reporting to `POST /api/v1/events`.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::{Error, Inner};

/// Events waiting to be sent, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    events: VecDeque<Value>,
}

impl Queue {
    /// Adds events; drops the oldest beyond `max`; returns how many were dropped.
    pub fn push(&mut self, events: Vec<Value>, max: usize) -> u64 {
        self.events.extend(events);
        let over = self.events.len().saturating_sub(max);
        self.events.drain(..over);
        over as u64
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    fn take(&mut self, n: usize) -> Vec<Value> {
        let n = n.min(self.events.len());
        self.events.drain(..n).collect()
    }

    fn put_back(&mut self, batch: Vec<Value>) {
        for e in batch.into_iter().rev() {
            self.events.push_front(e);
        }
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
        if batch.is_empty() {
            return Ok(sent);
        }
        let n = batch.len();
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
async fn post(inner: &Inner, batch: &[Value]) -> Result<(), (bool, String)> {
    let s = &inner.settings;
    let resp = inner
        .http
        .post(format!("{}/api/v1/events", s.url))
        .bearer_auth(&s.token)
        .header("x-wavegate-environment", &s.environment)
        .timeout(std::time::Duration::from_secs(10))
        .json(&json!({"events": batch}))
        .send()
        .await
        .map_err(|e| (true, format!("could not reach the server: {e}")))?;
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
    fn the_queue_drops_the_oldest_beyond_its_bound_and_keeps_order_on_retry() {
        let mut q = Queue::default();
        assert_eq!(q.push((0..5).map(|i| json!(i)).collect(), 3), 2);
        let batch = q.take(2);
        assert_eq!(batch, [json!(2), json!(3)]);
        q.put_back(batch);
        assert_eq!(q.take(10), [json!(2), json!(3), json!(4)]);
    }
}
