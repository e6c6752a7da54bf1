//! What the server asks of the outside world on a rollout's behalf: plan checks (HTTP probes
//! and webhook gates) and Prometheus queries. Each call has a timeout and keeps its evidence.

pub mod checks;
pub mod prometheus;
