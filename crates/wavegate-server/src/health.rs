//! Whether the storage takes writes, for `/readyz` and `/metrics`: a small write probe
//! ([`wavegate_store::Store::probe`]: free space where a SQLite file lives, then a one-row
//! rewrite) with a deadline of [`PROBE_DEADLINE`], run at most once a second however often it is asked
//! (so an unauthenticated endpoint cannot be turned into a write load).
//!
//! Failing honestly (DESIGN): while the storage cannot write, readiness says so with the
//! reason, `wavegate_storage_writable` is 0, writes answer 503 `storage_unavailable`, and
//! evaluation keeps serving from memory; nothing needs a restart when the cause goes away.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use wavegate_store::Store;

/// How long a probe may take before the storage counts as not answering (a pool waits up to a
/// second for a connection, then a direct attempt up to another says why there was none).
pub const PROBE_DEADLINE: Duration = Duration::from_millis(2500);

/// How long a probe's answer is reused.
pub const PROBE_REUSE: Duration = Duration::from_secs(1);

/// The last probe's answer.
#[derive(Debug, Default)]
pub struct StorageHealth {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl StorageHealth {
    /// `Ok` when the storage took a write within the last second, else why not.
    pub async fn check(&self, store: &dyn Store) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < PROBE_REUSE
        {
            return answer.clone();
        }
        let answer = match tokio::time::timeout(PROBE_DEADLINE, store.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(wavegate_store::StoreError::Unavailable(reason))) => Err(reason),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the database did not answer a write within {:.1} s",
                PROBE_DEADLINE.as_secs_f64()
            )),
        };
        if let Err(reason) = &answer {
            tracing::warn!(%reason, "storage cannot take writes");
        }
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}
