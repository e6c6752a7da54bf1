//! wavegate's pure rollout logic: plans and their lint, blackout windows, sequential
//! statistics, and the rollout state machine.
//!
//! **Boundary:** like `wavegate-core`, this crate does no I/O and reads no clock: `now` and the
//! signals come in as values, and decisions go out as [`machine::Action`]s that the server
//! carries out.
#![warn(missing_docs)]

pub mod adoption;
pub mod arms;
pub mod blackout;
pub mod calendar;
pub mod chart;
pub mod drill;
pub mod duration;
pub mod duties;
pub mod exposure;
pub mod feedback;
pub mod forecast;
pub mod gates;
pub mod incidents;
pub mod lint;
pub mod machine;
pub mod otel;
pub mod people;
pub mod plan;
pub mod readings;
pub mod release;
pub mod report;
pub mod retro;
pub mod scorecard;
pub mod signature;
pub mod sim;
pub mod sketch;
pub mod sprt;
pub mod start;
pub mod stats;
pub mod success;
pub mod template;
pub mod vulns;
