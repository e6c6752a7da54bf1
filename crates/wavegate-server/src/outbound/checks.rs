//! Plan checks: HTTP probes and webhook gates run before a rollout starts, right after every
//! exposure change (smoke tests) and before each promotion. Each attempt has a timeout; a check
//! is retried before it counts as failed; the response is kept as evidence, short and quoted
//! ([`crate::outbound::reply`]). Their URLs come from plans, so they go through the outbound
//! policy ([`crate::outbound::Guard`]); with `serve --check-secret-file`, every request carries
//! the same HMAC signature headers as a signed notification.

use std::time::Duration;

use serde_json::{Value, json};
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::{CheckSpec, CheckWhen};

use crate::outbound::reply;
use crate::state::Outbound;

/// The most of a response read, in bytes: enough for any health document or gate answer;
/// what lies beyond is never read (a JSON field or `pass` past it is not seen).
pub const READ_BYTES: usize = 64 * 1024;

/// One check's result.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The check.
    pub spec: CheckSpec,
    /// Whether it passed.
    pub passed: bool,
    /// What it saw: status, body (an excerpt, quoted), error, attempts.
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

/// How checks are run (the client is the outbound slice's [`crate::outbound::Guard`]): the
/// pause before the first retry (doubled before each later one, up to [`MAX_RETRY_PAUSE`]), so
/// a struggling endpoint is not hammered, and the secret requests are signed with.
#[derive(Clone, Debug)]
pub struct Checker {
    /// The pause before the first retry.
    pub retry_pause: Duration,
    /// Signs every check request when set (`serve --check-secret-file`).
    pub secret: Option<crate::outbound::SigningSecret>,
}

impl Default for Checker {
    fn default() -> Checker {
        Checker { retry_pause: Duration::from_secs(1), secret: None }
    }
}

/// The pause before attempt `attempt` (2 or later) when the first retry waits `first`.
pub fn retry_pause(first: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(2).min(16);
    first.saturating_mul(1 << doublings).min(MAX_RETRY_PAUSE)
}

/// Runs every check of the rollout's plan declared for `point`, in order.
pub async fn run(outbound: &Outbound, r: &Rollout, point: CheckWhen) -> Vec<CheckOutcome> {
    let mut out = Vec::new();
    // Vulnerability checks read the store and local files: `service::vulns` runs them.
    let probes = r.plan.checks.iter().filter(|c| c.vulnerabilities.is_none());
    for c in probes.filter(|c| c.when.contains(&point)) {
        out.push(run_one(outbound, r, c, point).await);
    }
    out
}

async fn run_one(
    outbound: &Outbound,
    r: &Rollout,
    c: &CheckSpec,
    point: CheckWhen,
) -> CheckOutcome {
    let timeout = Duration::from_secs(c.timeout.map_or(5, |t| t.secs().max(1)));
    let attempts = 1 + c.retries.unwrap_or(2);
    let mut evidence = json!({});
    let mut made = 0;
    for attempt in 1..=attempts {
        made = attempt;
        if attempt > 1 {
            tokio::time::sleep(retry_pause(outbound.checks.retry_pause, attempt)).await;
        }
        let (verdict, mut ev) = attempt_once(outbound, r, c, point, timeout).await;
        ev["attempt"] = json!(attempt);
        evidence = ev;
        match verdict {
            Attempt::Passed => return CheckOutcome { spec: c.clone(), passed: true, evidence },
            Attempt::Failed => {}
            // Nothing was sent; another attempt would not be either.
            Attempt::Unsendable => break,
        }
    }
    evidence["attempts"] = json!(made);
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

/// How one attempt went.
enum Attempt {
    Passed,
    Failed,
    /// Not sent: the URL does not parse or the outbound policy refuses its host.
    Unsendable,
}

async fn attempt_once(
    outbound: &Outbound,
    r: &Rollout,
    c: &CheckSpec,
    point: CheckWhen,
    timeout: Duration,
) -> (Attempt, Value) {
    let guard = &outbound.guard;
    let fail = |error: String| (Attempt::Failed, json!({ "error": error }));
    let unsendable =
        |e: crate::outbound::Unsendable| (Attempt::Unsendable, json!({"error": e.to_string()}));
    let (request, body, expect_status) = match (&c.http, &c.webhook) {
        (Some(h), _) => {
            let method = h.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
            let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
                return fail(format!("invalid method {method:?}"));
            };
            match guard.request(method, &h.url) {
                Ok(request) => (request, Vec::new(), h.expect_status.unwrap_or(200)),
                Err(e) => return unsendable(e),
            }
        }
        (None, Some(w)) => match guard.request(reqwest::Method::POST, &w.url) {
            Ok(request) => {
                let body = serde_json::to_vec(&facts(r, point)).unwrap_or_default();
                (request.header("content-type", "application/json"), body, 0)
            }
            Err(e) => return unsendable(e),
        },
        (None, None) => return fail("check has neither http nor webhook".into()),
    };
    let mut request = request
        .timeout(timeout)
        .header("user-agent", concat!("wavegate/", env!("CARGO_PKG_VERSION")));
    // A name that is no header value (a line break, say) is simply not sent.
    if let Ok(name) = reqwest::header::HeaderValue::from_str(&c.name) {
        request = request.header("x-wavegate-check", name);
    }
    if let Some(secret) = &outbound.checks.secret {
        request = secret.sign(request, &body);
    }
    if !body.is_empty() {
        request = request.body(body);
    }
    let resp = match request.send().await {
        Ok(resp) => resp,
        Err(e) => return fail(crate::outbound::failure(&e)),
    };
    let status = resp.status().as_u16();
    let (text, _) = crate::outbound::read_capped(resp, READ_BYTES).await;
    // What the response said is kept short and quoted: only admins for all environments read it.
    let mut ev = json!({"status": status, "body": reply::quote(&text)});
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let passed = match (&c.http, &c.webhook) {
        (Some(h), _) => {
            let status_ok = status == expect_status;
            let field_ok = match (&h.json_field, &h.expect_value) {
                (Some(path), Some(want)) => {
                    let got =
                        parsed.as_ref().and_then(|v| path.split('.').try_fold(v, |v, k| v.get(k)));
                    let shown = got.map(reply::quote_value);
                    ev["field"] = json!({"path": path, "got": shown, "want": want});
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
                ev["reason"] = json!(reply::quote_value(reason));
            }
            (200..300).contains(&status) && pass == Some(true)
        }
    };
    (if passed { Attempt::Passed } else { Attempt::Failed }, ev)
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
