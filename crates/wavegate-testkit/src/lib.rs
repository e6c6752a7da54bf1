//! What wavegate's tests and benchmarks share: the fixtures (flag files, plans) and the
//! helpers for talking to a running server (processes, polling with deadlines, HTTP, the
//! rollout status's numbers), each written once.
//!
//! **Boundary:** a dev-dependency only. No library crate depends on it, nothing here is
//! published, and it asserts as tests do (a helper that cannot do its job panics, naming why).
//! The `net` feature adds what needs tokio or reqwest; without it (the pure crates' tests) the
//! crate needs only `serde_json`.
#![warn(missing_docs)]

#[cfg(feature = "net")]
pub mod api;
pub mod fixtures;
pub mod http;
pub mod poll;
pub mod postgres;
pub mod process;
pub mod signals;

/// The bootstrap admin token every test server starts with (`WAVEGATE_BOOTSTRAP_ADMIN_TOKEN`).
pub const ADMIN: &str = "test-admin-token-0123456789abcdef0123";
