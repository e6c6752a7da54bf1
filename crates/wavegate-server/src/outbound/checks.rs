//! Plan checks: HTTP probes and webhook gates run before a rollout starts, right after every
//! exposure change (smoke tests) and before each promotion. Each attempt has a timeout; a check
//! is retried before it counts as failed; the response is kept as evidence.

use std::time::Duration;

use serde_json::{Value, json};
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::{CheckSpec, CheckWhen};

/// Longest response body kept as evidence, in bytes.
pub const EVIDENCE_BYTES: usize = 2048;

/// One check's result.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The check.
    pub spec: CheckSpec,
    /// Whether it passed.
    pub passed: bool,
    /// What it saw: status, body (truncated), error, attempts.
    pub evidence: Value,
}

fn point_name(p: CheckWhen) -> &'static str {
    match p {
        CheckWhen::BeforeStart => "before_start",
        CheckWhen::AfterExposure => "after_exposure",
        CheckWhen::BeforePromotion => "before_promotion",
    }
}

/// The longest pause between two attempts of a check.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(10);

/// How checks are run: the HTTP client, and the pause before the first retry (doubled before
/// each later one, up to [`MAX_RETRY_PAUSE`]), so a struggling endpoint is not hammered.
#[derive(Clone)]
pub struct Checker {
    /// The client (its own timeouts are per attempt, from the check).
    pub http: reqwest::Client,
    /// The pause before the first retry.
    pub retry_pause: Duration,
}

/// The pause before attempt `attempt` (2 or later) when the first retry waits `first`.
pub fn retry_pause(first: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(2).min(16);
    first.saturating_mul(1 << doublings).min(MAX_RETRY_PAUSE)
}

/// Runs every check of the rollout's plan declared for `point`, in order.
pub async fn run(checker: &Checker, r: &Rollout, point: CheckWhen) -> Vec<CheckOutcome> {
    let mut out = Vec::new();
    for c in r.plan.checks.iter().filter(|c| c.when.contains(&point)) {
        out.push(run_one(checker, r, c, point).await);
    }
    out
}

async fn run_one(checker: &Checker, r: &Rollout, c: &CheckSpec, point: CheckWhen) -> CheckOutcome {
    let timeout = Duration::from_secs(c.timeout.map_or(5, |t| t.secs().max(1)));
    let attempts = 1 + c.retries.unwrap_or(2);
    let mut evidence = json!({});
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(retry_pause(checker.retry_pause, attempt)).await;
        }
        let (passed, mut ev) = attempt_once(&checker.http, r, c, point, timeout).await;
        ev["attempt"] = json!(attempt);
        evidence = ev;
        if passed {
            return CheckOutcome { spec: c.clone(), passed: true, evidence };
        }
    }
    evidence["attempts"] = json!(attempts);
    CheckOutcome { spec: c.clone(), passed: false, evidence }
}

fn facts(r: &Rollout, point: CheckWhen) -> Value {
    json!({
        "rollout": r.id,
        "plan": r.plan.name,
        "flag": r.plan.flag,
        "environment": r.plan.environment,
        "wave": r.wave + 1,
        "exposure": r.plan.waves.get(r.wave).map(|w| w.exposure.to_string()),
        "release": {"name": r.plan.release.name, "version": r.plan.release.version},
        "point": point_name(point),
    })
}

async fn attempt_once(
    http: &reqwest::Client,
    r: &Rollout,
    c: &CheckSpec,
    point: CheckWhen,
    timeout: Duration,
) -> (bool, Value) {
    let (request, expect_status) = match (&c.http, &c.webhook) {
        (Some(h), _) => {
            let method = h.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
            let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
                return (false, json!({"error": format!("invalid method {method:?}")}));
            };
            (http.request(method, &h.url), h.expect_status.unwrap_or(200))
        }
        (None, Some(w)) => (http.post(&w.url).json(&facts(r, point)), 0),
        (None, None) => return (false, json!({"error": "check has neither http nor webhook"})),
    };
    let resp = match request.timeout(timeout).send().await {
        Ok(resp) => resp,
        Err(e) => return (false, json!({"error": crate::outbound::failure(&e)})),
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let mut body = text.clone();
    if body.len() > EVIDENCE_BYTES {
        let mut cut = EVIDENCE_BYTES;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    let mut ev = json!({"status": status, "body": body});
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let passed = match (&c.http, &c.webhook) {
        (Some(h), _) => {
            let status_ok = status == expect_status;
            let field_ok = match (&h.json_field, &h.expect_value) {
                (Some(path), Some(want)) => {
                    let got =
                        parsed.as_ref().and_then(|v| path.split('.').try_fold(v, |v, k| v.get(k)));
                    ev["field"] = json!({"path": path, "got": got, "want": want});
                    got == Some(want)
                }
                _ => true,
            };
            status_ok && field_ok
        }
        _ => {
            // A webhook gate answers 2xx with {"pass": true|false, "reason": …}.
            let pass = parsed.as_ref().and_then(|v| v.get("pass")).and_then(Value::as_bool);
            if let Some(reason) = parsed.as_ref().and_then(|v| v.get("reason")) {
                ev["reason"] = reason.clone();
            }
            (200..300).contains(&status) && pass == Some(true)
        }
    };
    (passed, ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_pause_longer_each_time_up_to_a_cap() {
        let first = Duration::from_secs(1);
        let pauses: Vec<u64> = (2..=7).map(|a| retry_pause(first, a).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 10, 10]);
        assert_eq!(retry_pause(first, u32::MAX), MAX_RETRY_PAUSE);
        assert_eq!(retry_pause(Duration::ZERO, 5), Duration::ZERO);
    }
}
