//! Server integration tests: the real router over a real SQLite file, driven without a socket.

mod admin;
mod adoption;
mod authz;
mod checks;
mod contention;
mod evaluate_only;
mod forecast;
mod four_eyes;
mod freeze;
mod late_events;
mod notify;
mod ofrep;
mod ofrep_events;
mod openapi;
mod outbound;
mod prometheus;
mod rollouts;
mod scopes;
mod scorecard;
mod secrets;
mod stream;
mod streams;
mod support;
mod tamper;
mod unleash;
