//! What the server asks of the outside world on a rollout's behalf: plan checks (HTTP probes
//! and webhook gates) and Prometheus queries. Each call has a timeout and keeps its evidence.

pub mod checks;
pub mod prometheus;

/// Why a request failed, in words a verdict or a log may show: a timeout as such, otherwise the
/// innermost cause (e.g. "Connection refused"), with any URL in it stripped of credentials.
/// reqwest's own message quotes the whole URL, `user:password@` and query included.
pub fn failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    wavegate_core::text::redact_urls_in(&wavegate_core::error::root_cause(e))
}
