//! End-to-end tests of the `wavegate` binary: real processes, a real SQLite file, real HTTP,
//! and the real OpenFeature Python SDK.

mod backup;
mod browser_sdks;
mod checkpoints;
mod cli;
mod crash;
mod dashboard;
mod demo;
mod edge;
mod faults;
mod inputs;
mod lifecycle;
mod memory;
mod oidc;
mod otel;
mod replicas;
mod rollout;
mod sdk;
mod support;
