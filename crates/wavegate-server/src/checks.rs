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

/// Runs every check of the rollout's plan declared for `point`, in order.
pub async fn run(http: &reqwest::Client, r: &Rollout, point: CheckWhen) -> Vec<CheckOutcome> {
    let mut out = Vec::new();
    for c in r.plan.checks.iter().filter(|c| c.when.contains(&point)) {
        out.push(run_one(http, r, c, point).await);
    }
    out
}

async fn run_one(
    http: &reqwest::Client,
    r: &Rollout,
    c: &CheckSpec,
    point: CheckWhen,
) -> CheckOutcome {
    let timeout = Duration::from_secs(c.timeout.map_or(5, |t| t.secs().max(1)));
    let attempts = 1 + c.retries.unwrap_or(2);
    let mut evidence = json!({});
    for attempt in 1..=attempts {
        let (passed, mut ev) = attempt_once(http, r, c, point, timeout).await;
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
        Err(e) => return (false, json!({"error": e.to_string()})),
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
