//! The typed request and response shapes of wavegate's HTTP API (`/api/v1/…`, plus the OFREP
//! answers the CLI reads), shared by the clients (the `wavegate` CLI and its demo) and the server,
//! which builds its answers and parses its request bodies with them and generates its OpenAPI
//! document from them (every type derives `utoipa::ToSchema`).
//!
//! One module per resource: [`environments`], [`flags`] (flags and segments: heads, versions,
//! diffs, reverts, apply), [`tokens`], [`audit`], [`plans`], [`rollouts`], [`schedules`],
//! [`scorecard`], [`freeze`], [`reports`], [`notify`], [`events`], [`ofrep`], and [`error`]
//! for the error body every failure carries.
//!
//! **Invariant:** each type mirrors the JSON the server sends today, field for field: the
//! same names, the same optionality (a field the server always sends, even as `null`, is an
//! `Option` that serialises as `null`; a field it sometimes leaves out is skipped when `None`),
//! the same JSON types (integers stay integers, floats floats). Reading an answer tolerates
//! unknown fields, so an older client reads a newer server; request bodies refuse them, as the
//! server (which parses them with these types) always has. The tests round-trip a realistic example
//! of each family through its type and back to the same JSON value.
//!
//! Times are [`chrono::DateTime<Utc>`](chrono::DateTime) where the server serialises a
//! `DateTime` (chrono's RFC 3339 form), and `String` where it formats the text itself (flag and
//! segment heads and versions, tokens and audit entries carry milliseconds; the freeze carries
//! seconds), so that a value re-serialises to exactly what was read.
//!
//! Documents whose shape belongs to another format stay [`serde_json::Value`]: a flag's or
//! segment's spec (the flags-as-code format of `wavegate-core`), a plan's spec (the plan format
//! of `wavegate-rollout`), audit details, check evidence and drill reports. Where a client
//! reads into one, a typed view deserialises it on demand ([`plans::PlanHead::outline`],
//! [`flags::Head::outline`], [`audit::AuditEntry::rollout_details`],
//! [`rollouts::Verdict::guardrail_report`]…).
//!
//! **Boundary:** no HTTP, no store: this crate depends on `wavegate-core` and
//! `wavegate-rollout` (whose report types it mirrors, since those serialise only) and on
//! serde, chrono and utoipa.
#![warn(missing_docs)]

pub mod audit;
pub mod changes;
pub mod environments;
pub mod error;
pub mod events;
pub mod flags;
pub mod freeze;
pub mod notify;
pub mod ofrep;
pub mod plans;
pub mod releases;
pub mod reports;
pub mod rollouts;
pub mod schedules;
pub mod scorecard;
pub mod signin;
pub mod tokens;
pub mod waivers;

#[cfg(test)]
mod tests;
