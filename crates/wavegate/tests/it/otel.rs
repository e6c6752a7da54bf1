//! Guardrails fed by OpenTelemetry, end to end with real clients from PyPI and no wavegate code
//! in the application: `openfeature-sdk` with the OFREP provider, the OpenFeature tracing hook
//! and the OpenTelemetry SDK's OTLP/HTTP exporter, both pointed at a real `wavegate serve`. A
//! healthy new variant is promoted; once its spans start failing, the rollout rolls back.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{
    ADMIN, apply, cli_json, eventually, prod_token, start_rollout, start_with, stderr, stdout,
};

fn python() -> PathBuf {
    crate::sdk::python()
}

/// Runs the instrumented application for `users` users from `first`; its summary line.
fn app(url: &str, token: &str, first: usize, users: usize, fail_new: bool) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/otel_app.py");
    let o = Command::new(python())
        .arg(script)
        .args([
            url,
            token,
            &first.to_string(),
            &users.to_string(),
            if fail_new { "1" } else { "0" },
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "the application failed:\n{}\n{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn spans_from_the_opentelemetry_sdk_promote_a_healthy_variant_and_roll_back_a_failing_one() {
    let dir = tempfile::tempdir().unwrap();
    // The application and the server share this machine's clock: a small skew allowance.
    let extra = ["--tick", "100ms", "--event-clock-skew", "50ms"];
    let server = start_with(&dir.path().join("w.db"), Some(ADMIN), &extra);
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", &on_off(&["checkout"]));
    let guardrail = "guardrails:
  - { name: errors, metric: error, comparison: absolute, tolerance: 0.05, mde: 0.05, min_sample: 50, action: rollback }
runbook: { errors: look }
otel: { services: [checkout-service] }
";
    let plan = Plan::new("p", "checkout").section(guardrail).waves(&[
        "{ exposure: 25% }",
        "{ exposure: 60% }",
        "{ exposure: 100% }",
    ]);
    apply(&url, dir.path(), "plan", "plan.yaml", &plan.to_string());
    let id = start_rollout(&url, ADMIN, "p");
    let token = prod_token(&url, "server-sdk");
    let status = || cli_json(&url, ADMIN, &["rollout", "status", &id]);

    // Healthy: wave 1 passes on the spans alone and is promoted.
    let out = app(&url, &token, 0, 400, false);
    println!("healthy: {out}");
    eventually("the healthy wave to be promoted", Duration::from_secs(30), || {
        status()["wave"].as_u64() == Some(2)
    });

    // The new variant's requests start failing: rolled back automatically.
    let mut first = 400;
    eventually("the failing variant to be rolled back", Duration::from_secs(60), || {
        if status()["state"] == "rolled_back" {
            return true;
        }
        println!("failing: {}", app(&url, &token, first, 200, true));
        first += 200;
        false
    });
    let s = status();
    assert!(s["reason"].as_str().unwrap_or_default().contains("errors"), "{s}");
}
