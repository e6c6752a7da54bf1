//! The HTTP layer: handlers that parse and authorise a request, call a service (or, for plain
//! reads, the store), and shape the answer. Grouped by what they serve: the admin resources
//! (flags, segments, environments, tokens, audit: `admin`), plans and rollouts, events,
//! reports, scorecards, the freeze, schedules and notifications; the live views (`stream`,
//! the dashboard, OFREP's refetch events); and the server as the protocols' flag source
//! (`protocols`). `error`, `json` and `auth` are what every handler shares.

pub mod admin;
pub mod adoption;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod freeze;
pub mod json;
pub mod notify;
pub mod ofrep_events;
pub mod protocols;
pub mod reports;
pub mod rollouts;
pub mod schedule;
pub mod scorecard;
pub mod stream;
