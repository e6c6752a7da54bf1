//! Waiting for something to become true, with a deadline: tests never sleep for time to pass.

use std::time::{Duration, Instant};

/// How often a condition is asked again.
const EVERY: Duration = Duration::from_millis(20);

/// Asks `cond` until it holds; panics naming `what` once `timeout` has passed.
#[track_caller]
pub fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(EVERY);
    }
    panic!("timed out waiting for {what}");
}

/// [`eventually`] for an async condition, on tokio.
#[cfg(feature = "net")]
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(EVERY).await;
    }
    panic!("timed out waiting for {what}");
}
