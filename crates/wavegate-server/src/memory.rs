//! Giving the system back the memory the server freed.
//!
//! The `wavegate` binary allocates with jemalloc (issue 21, item 10), which keeps freed pages
//! for reuse and returns them only as they decay (seconds later, and lazily); glibc's
//! allocator, which SQLite still uses, keeps them until asked. [`release`] asks both.
//!
//! Glibc's allocator keeps what a thread freed in that thread's arena for reuse instead of
//! returning it: 3,000 stream subscribers that came and went left the server at 122 MiB
//! resident instead of the 54 MiB it had before them (issue 17, item 10). [`release`] asks
//! glibc to return the free pages of every arena (`malloc_trim(0)`), which brought it back to
//! 55 MiB; [`after_bursts`] calls it once a burst of closing streams has settled, and after a
//! large configuration was replaced (a write of thousands of flags leaves the request's and the
//! store's transient memory free in the arenas: 10,000 flags applied in files of 2,000 left
//! about 1.4 KiB per flag more resident than a trim did).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::http::sse::Live;

/// How long after a stream closes (and no other has closed since) the freed memory is
/// returned: a burst of closes (a deploy of the clients, a revoked token) costs one call.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Asks the allocators to return the memory they hold free to the system; whether either
/// returned any. With the `jemalloc` feature (the `wavegate` binary's global allocator), every
/// jemalloc arena is purged; on glibc, `malloc_trim` returns what C code (SQLite) and, without
/// jemalloc, Rust freed. Walks and locks each arena in turn, so it is called after a burst, never
/// per request.
pub fn release() -> bool {
    let jemalloc = purge_jemalloc();
    trim_glibc() || jemalloc
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_glibc() -> bool {
    // SAFETY: `malloc_trim` takes no pointers and has no caller-side invariants; glibc locks
    // each arena while it trims it, as every allocator call does.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_glibc() -> bool {
    false
}

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[allow(unsafe_code)]
fn purge_jemalloc() -> bool {
    // `arena.<i>.purge` for i = MALLCTL_ARENAS_ALL (4096): every arena's unused dirty pages.
    let name = c"arena.4096.purge";
    // SAFETY: the name is a NUL-terminated string that outlives the call; this command reads
    // and writes no value, so every value pointer is null and the length 0, as it requires.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    status == 0
}

#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
fn purge_jemalloc() -> bool {
    false
}

/// Returns freed memory to the system [`SETTLE`] after streams stop closing (or large
/// configurations stop being replaced: [`Live::freed`]), until the server closes.
pub async fn after_bursts(live: Arc<Live>, mut closing: watch::Receiver<bool>) {
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
            Ok(released) => tracing::debug!(released, "returned freed memory after a burst"),
            Err(e) => tracing::warn!(error = %e, "returning freed memory failed"),
        }
    }
}
