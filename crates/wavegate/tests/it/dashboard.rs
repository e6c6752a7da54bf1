//! The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core
//! from `tests/browser/`): a real server process, a rollout that real traffic brings to an
//! approval gate, and a browser that signs in, watches changes made through the API appear
//! without a reload, reverts a flag, approves the gate and writes a screenshot under `target/`.
//!
//! Needs `node`, `tests/browser/node_modules` (`scripts/setup-browser.sh`) and `chromium`;
//! `.ci/run` installs them. Missing pieces fail the test with what to run, never skip it.

use std::time::{Duration, Instant};

use wavegate_testkit::fixtures::Plan;

use crate::rollout::{ALICE_AND_BOB, ERRORS, Traffic, flags};
use crate::support::{ADMIN, apply, cli_json, http_receiver, start_rollout, start_with, token};

/// A gated first wave (10%), then 50% held an hour, behind an error-rate guardrail, tracking
/// adoption by region; alice requests, bob approves.
fn plan() -> String {
    let runbook = "runbook:
  errors: |
    1. The controller restored the pre-rollout flag version.
    2. Check the checkout error dashboard.
";
    Plan::new("checkout-dashboard", "checkout")
        .release("version: 2.1.0, risk: medium, team: payments, service: checkout, regions: [eu-north-1]")
        .owners(ALICE_AND_BOB)
        .section("adoption: { cohorts: [region], key_task: checkout_completed }\n")
        .section("success_metrics:\n  - { metric: adoption, target: \">= 40%\", within: 30d }\nafter_release: [documentation updated, runbook updated from the retro]\n")
        .section(ERRORS)
        .section(runbook)
        .waves(&["{ exposure: 10%, promotion: approval }", "{ exposure: 50%, hold: 1h }", "{ exposure: 100% }"])
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_changes_and_its_approve_button_promotes_a_gated_wave() {
    let (root, chromium) = crate::support::browser_tools(&["playwright-core"]);

    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("w.db"), Some(ADMIN), &["--tick", "100ms"]);
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", &flags());
    apply(&url, dir.path(), "plan", "plan.yaml", &plan());
    let (hook, heard) = http_receiver(0);
    cli_json(
        &url,
        ADMIN,
        &[
            "notify",
            "set",
            "managers",
            "--audience",
            "manager",
            "--webhook",
            &hook,
            "--events",
            "promoted,paused",
        ],
    );
    let alice = token(&url, "admin", "prod", "alice");
    let bob = token(&url, "admin", "*", "bob");
    let traffic = Traffic {
        http: reqwest::Client::new(),
        url: url.clone(),
        client_token: token(&url, "client-sdk", "prod", "web"),
        server_token: token(&url, "server-sdk", "prod", "checkout-service"),
    };
    let id = start_rollout(&url, &alice, "checkout-dashboard");
    // A release of the same plan, for the releases pages (its member waits: the flag is busy).
    let release = dir.path().join("release.yaml");
    std::fs::write(&release, "name: launch\nmembers:\n  - plan: checkout-dashboard\n").unwrap();
    cli_json(&url, ADMIN, &["release", "apply", "-f", release.to_str().unwrap()]);

    // Healthy traffic until the guardrail passes and the gate asks for approval.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut round = 0;
    loop {
        let st = cli_json(&url, ADMIN, &["rollout", "status", &id]);
        if st["phase"] == "awaiting_approval" {
            break;
        }
        assert_eq!(st["state"], "running", "{st}");
        assert!(Instant::now() < deadline, "the gate never asked for approval: {st}");
        traffic.round(400, round, false).await;
        round += 1;
    }

    let shot = root.join("target/dashboard-rollout.png");
    let _ = std::fs::remove_file(&shot);
    let shot_path = shot.to_string_lossy().into_owned();
    let env = [
        ("WAVEGATE_URL", url.as_str()),
        ("ADMIN_TOKEN", ADMIN),
        ("APPROVER_TOKEN", bob.as_str()),
        ("REQUESTER_TOKEN", alice.as_str()),
        ("ROLLOUT_ID", id.as_str()),
        ("SCREENSHOT", shot_path.as_str()),
        ("EXPECT_NOTIFICATIONS", "1"),
    ];
    let stdout = crate::support::run_browser_script(&root, "dashboard.mjs", &chromium, &env);
    assert!(stdout.contains("ok - approve promoted the gated wave"), "{stdout}");
    assert!(stdout.contains("ok - the notifications page lists"), "{stdout}");
    let bodies = heard.lock().unwrap().clone();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("promoted to wave 2/3 (50%) in prod after approval by bob.")),
        "the managers' channel heard of bob's promotion: {bodies:?}"
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real PNG screenshot");

    // What the browser did is what the server holds.
    let st = cli_json(&url, ADMIN, &["rollout", "status", &id]);
    assert_eq!((st["wave"].as_i64(), st["state"].as_str()), (Some(2), Some("paused")), "{st}");
    let audit = cli_json(&url, ADMIN, &["audit", "list", "--limit", "1000"]);
    let approved = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "rollout.approve")
        .expect("an approval in the audit log");
    assert_eq!(approved["actor"], "bob");
    assert_eq!(approved["reason"], "looks good from the dashboard");
}
