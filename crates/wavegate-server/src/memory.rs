//! Giving the system back the memory the server freed.
//!
//! Glibc's allocator keeps what a thread freed in that thread's arena for reuse instead of
//! returning it: 3,000 stream subscribers that came and went left the server at 122 MiB
//! resident instead of the 54 MiB it had before them (issue 17, item 10). [`release`] asks
//! glibc to return the free pages of every arena (`malloc_trim(0)`), which brought it back to
//! 55 MiB; [`after_streams_close`] calls it once a burst of closing streams has settled.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::http::sse::Live;

/// How long after a stream closes (and no other has closed since) the freed memory is
/// returned: a burst of closes (a deploy of the clients, a revoked token) costs one call.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Asks the allocator to return the memory it holds free to the system; whether it returned
/// any. Off glibc it does nothing (other allocators return large blocks themselves). Walks
/// and locks each arena in turn, so it is called after a burst, never per request.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release() -> bool {
    // SAFETY: `malloc_trim` takes no pointers and has no caller-side invariants; glibc locks
    // each arena while it trims it, as every allocator call does.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Asks the allocator to return the memory it holds free to the system; whether it returned
/// any. Off glibc it does nothing (other allocators return large blocks themselves).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release() -> bool {
    false
}

/// Returns freed memory to the system [`SETTLE`] after streams stop closing, until the server
/// closes.
pub async fn after_streams_close(live: Arc<Live>, mut closing: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = live.closed() => {}
            _ = closing.wait_for(|c| *c) => return,
        }
        // Closes that come meanwhile restart the wait: one release after the burst.
        loop {
            tokio::select! {
                _ = live.closed() => continue,
                _ = tokio::time::sleep(SETTLE) => break,
                _ = closing.wait_for(|c| *c) => return,
            }
        }
        match tokio::task::spawn_blocking(release).await {
            Ok(released) => tracing::debug!(released, "returned freed memory after streams closed"),
            Err(e) => tracing::warn!(error = %e, "returning freed memory failed"),
        }
    }
}
