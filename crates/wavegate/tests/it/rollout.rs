//! Guarded waves end to end against real server processes: traffic through OFREP, outcomes
//! posted as events, an injected regression rolled back by the controller, an approval gate
//! that only another principal can pass, and a `kill -9` in the middle.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wavegate_testkit::api::ofrep;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{
    ADMIN, apply, cli, cli_json, eventually, http_receiver, start_rollout, start_with, stderr,
    stdout, token, write,
};

/// The flag every rollout here changes: `checkout`, off for everyone.
pub(crate) fn flags() -> String {
    on_off(&["checkout"])
}

/// Three waves (10% → 50%, held two minutes → 100%) behind an error-rate guardrail that rolls
/// back; alice requests, bob approves.
fn plan() -> String {
    Plan::new("checkout-v2", "checkout")
        .release("version: 2.0.0, risk: medium")
        .owners(ALICE_AND_BOB)
        .section(ERRORS)
        .section("runbook:\n  errors: Check the error dashboard.\n")
        // The second wave is long enough that only the regression can end it.
        .waves(&["{ exposure: 10% }", "{ exposure: 50%, hold: 2m }", "{ exposure: 100% }"])
        .to_string()
}

/// An error-rate guardrail (a tolerance of 5 points, 100 samples per arm before a pass) that
/// rolls back.
pub(crate) const ERRORS: &str = "guardrails:
  - name: errors
    metric: error
    comparison: absolute
    tolerance: 0.05
    mde: 0.05
    min_sample: 100
    action: rollback
";

/// alice requests, bob approves.
pub(crate) const ALICE_AND_BOB: &str = "{ requester: alice, approvers: [bob] }";

/// A first wave (10%) that waits for an approval, then 100%.
pub(crate) fn gated() -> String {
    Plan::new("checkout-gated", "checkout")
        .release("version: 2.0.1, risk: high")
        .owners(ALICE_AND_BOB)
        .waves(&["{ exposure: 10%, promotion: approval }", "{ exposure: 100% }"])
        .to_string()
}

const TICK_MS: u64 = 100;

/// A deterministic "random" number in 0..100 for a user and round.
fn roll(user: usize, round: usize) -> u64 {
    let mut h = (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (round as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    h % 100
}

pub(crate) struct Traffic {
    pub http: reqwest::Client,
    pub url: String,
    pub client_token: String,
    pub server_token: String,
}

impl Traffic {
    async fn eval(&self, user: &str) -> Value {
        let context = json!({"targetingKey": user});
        ofrep(&self.http, &self.url, &self.client_token, "checkout", &context).await.1
    }

    /// Evaluates every user once and posts an exposure and an outcome for each, each carrying
    /// the flag version its answer came from (as an OpenFeature hook does: an answer from
    /// before a wave change is then not counted in the new wave); returns the number of events
    /// posted.
    pub async fn round(&self, users: usize, round: usize, regression: bool) -> usize {
        let mut events = Vec::new();
        for u in 0..users {
            let user = format!("user-{u}");
            let r = self.eval(&user).await;
            let variant = r["variant"].as_str().unwrap().to_owned();
            let version = r["metadata"]["version"].as_i64().expect("an answer names its version");
            let rate = if regression && variant == "on" { 40 } else { 1 };
            let error = roll(u, round) < rate;
            events.push(json!({"type": "exposure", "flag": "checkout", "variant": variant, "version": version, "context": {"targetingKey": user}}));
            events.push(json!({"type": "outcome", "flag": "checkout", "variant": variant, "version": version, "context": {"targetingKey": user}, "error": error, "latency_ms": 20 + roll(u, round + 7)}));
        }
        let resp = self
            .http
            .post(format!("{}/api/v1/events", self.url))
            .bearer_auth(&self.server_token)
            .json(&json!({"events": events}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().await.unwrap());
        events.len()
    }
}

pub(crate) fn status(url: &str, token: &str, id: &str) -> Value {
    cli_json(url, token, &["rollout", "status", id])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_in_wave_two_is_rolled_back_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        &dir.path().join("w.db"),
        Some(ADMIN),
        &[
            "--tick",
            "100ms",
            "--notify-retry-base",
            "100ms",
            "--public-url",
            "https://wavegate.example.com/",
        ],
    );
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", &flags());
    // The on-call channel's webhook is down for the first message.
    let (hook, heard) = http_receiver(1);
    let set = cli_json(
        &url,
        ADMIN,
        &[
            "notify",
            "set",
            "pager",
            "--audience",
            "on-call",
            "--webhook",
            &hook,
            "--format",
            "slack",
        ],
    );
    assert_eq!(set["audience"], "on-call");
    let plan = write(dir.path(), "plan.yaml", &plan());
    let lint = cli(&url, None, &["plan", "lint", plan.to_str().unwrap()]);
    assert!(lint.status.success(), "{}", stdout(&lint));
    let applied = cli_json(&url, ADMIN, &["plan", "apply", "-f", plan.to_str().unwrap()]);
    assert_eq!(applied["version"], 1);
    let pre = cli_json(&url, ADMIN, &["flag", "get", "checkout"]);
    let alice = token(&url, "admin", "prod", "alice");
    let t = Traffic {
        http: reqwest::Client::new(),
        url: url.clone(),
        client_token: token(&url, "client-sdk", "prod", "web"),
        server_token: token(&url, "server-sdk", "prod", "checkout-service"),
    };

    let started =
        cli_json(&url, &alice, &["rollout", "start", "checkout-v2", "--reason", "ship it"]);
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!((started["wave"].clone(), started["exposure"].clone()), (json!(1), json!("10%")));
    // While the rollout runs it owns the flag.
    let o = cli(
        &url,
        Some(ADMIN),
        &[
            "flag",
            "apply",
            "-f",
            write(dir.path(), "f2.yaml", &flags().replace("default: \"off\"", "default: \"on\""))
                .to_str()
                .unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("409"), "{}", stderr(&o));

    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut round, mut onset): (usize, Option<(Instant, usize)>) = (0, None);
    let mut events_after_onset = 0;
    let final_status = loop {
        assert!(
            Instant::now() < deadline,
            "no rollback before the deadline; last status {}",
            status(&url, ADMIN, &id)
        );
        let st = status(&url, ADMIN, &id);
        if st["state"] == "rolled_back" {
            break st;
        }
        assert_eq!(st["state"], "running", "{st}");
        if st["wave"] == 3 {
            panic!("promoted to 100% without seeing the regression: {st}");
        }
        if st["wave"] == 2 && onset.is_none() {
            onset = Some((Instant::now(), round));
        }
        let n = t.round(400, round, onset.is_some()).await;
        if onset.is_some() {
            events_after_onset += n;
        }
        round += 1;
    };
    let (onset_at, onset_round) = onset.expect("wave 2 was reached");
    let elapsed = onset_at.elapsed();
    println!(
        "regression onset → rollback: {:.1}s ≈ {} ticks of {TICK_MS} ms, {} traffic rounds, {events_after_onset} events",
        elapsed.as_secs_f64(),
        elapsed.as_millis() as u64 / TICK_MS,
        round - onset_round
    );
    assert!(
        final_status["reason"].as_str().unwrap().contains("guardrail \"errors\" failed"),
        "{final_status}"
    );
    let fail = final_status["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["verdict"] == "fail")
        .expect("a stored fail verdict");
    assert_eq!(fail["wave"], 2);
    let report = &fail["report"];
    assert!(report["lower"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["treatment"]["n"].as_f64().unwrap() >= 2.0
            && report["control"]["n"].as_f64().unwrap() >= 2.0,
        "{report}"
    );
    println!("stored verdict: {}", report);
    let latency = final_status["latency"].as_array().unwrap();
    let p50 = latency.iter().find(|l| l["arm"] == "treatment").unwrap()["p50"].as_f64().unwrap();
    assert!((19.0..=121.0).contains(&p50), "latency sketch p50 {p50}");

    // Every stored verdict reproduces from its stored inputs.
    let explained = cli_json(&url, ADMIN, &["rollout", "explain", &id, "--wave", "2"]);
    assert_eq!(explained["mismatches"], 0, "{explained}");
    let list = explained["verdicts"].as_array().unwrap();
    assert!(
        list.iter().all(|v| v["wave"] == 2) && list.iter().any(|v| v["stored"] == "fail"),
        "{explained}"
    );

    // Every context is back on the control value, and the flag equals its pre-rollout version.
    for u in 0..400 {
        let r = t.eval(&format!("user-{u}")).await;
        assert_eq!(r["value"], json!(false), "user-{u}: {r}");
    }
    let after = cli_json(&url, ADMIN, &["flag", "get", "checkout"]);
    assert_eq!(after["spec"], pre["spec"]);

    // Who posted the events the verdicts judged: the checkout service's token, every wave.
    let by = cli_json(&url, ADMIN, &["rollout", "contributions", &id]);
    let tokens = by["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{by}");
    assert_eq!(tokens[0]["principal"], "checkout-service");
    let waves: Vec<i64> = tokens[0]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metric"] == "exposure")
        .map(|c| c["wave"].as_i64().unwrap())
        .collect();
    assert!(waves.contains(&1) && waves.contains(&2), "{by}");
    let human = stdout(&cli(&url, Some(ADMIN), &["rollout", "contributions", &id]));
    assert!(human.contains("checkout-service (server-sdk)"), "{human}");
    // A rollout that ended has no verdicts left to change.
    let token_id = tokens[0]["token"].as_str().unwrap();
    let o = cli(&url, Some(ADMIN), &["rollout", "exclude", &id, token_id, "--reason", "too late"]);
    assert!(!o.status.success() && stderr(&o).contains("has ended"), "{}", stderr(&o));
    let history = cli_json(&url, ADMIN, &["flag", "history", "checkout"]);
    assert_eq!(history.as_array().unwrap().last().unwrap()["action"], "flag.revert");
    let v = cli(&url, Some(ADMIN), &["audit", "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));

    // The on-call channel heard of the promotion and the rollback, the first after a retry.
    eventually("the rollback notice to be delivered", Duration::from_secs(30), || {
        let log = cli_json(&url, ADMIN, &["notify", "deliveries", "--target", "pager"]);
        log.as_array()
            .unwrap()
            .iter()
            .any(|d| d["event"] == "rolled_back" && d["status"] == "delivered")
    });
    let log = cli_json(&url, ADMIN, &["notify", "deliveries"]);
    let events: Vec<&str> =
        log.as_array().unwrap().iter().map(|d| d["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["rolled_back", "promoted"], "newest first: {log}");
    let promoted = &log[1];
    assert_eq!(
        (promoted["attempts"].clone(), promoted["status"].clone()),
        (json!(2), json!("delivered"))
    );
    assert!(promoted["last_error"].is_null(), "{promoted}");
    let bodies = heard.lock().unwrap().clone();
    let rollback: Value = serde_json::from_str(bodies.last().unwrap()).unwrap();
    let text = rollback["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "[prod] ROLLED BACK {id} checkout-v2 at wave 2 (50%) by controller"
        )),
        "{text}"
    );
    assert!(text.contains("guardrail \"errors\" failed"), "{text}");
    assert!(text.contains("Runbook: Check the error dashboard."), "{text}");
    assert!(text.ends_with(&format!("https://wavegate.example.com/#/rollouts/{id}")), "{text}");
    let human = stdout(&cli(&url, Some(ADMIN), &["notify", "deliveries"]));
    assert!(human.contains("rolled_back") && human.contains("delivered"), "{human}");

    let audit = cli_json(&url, ADMIN, &["audit", "list", "--limit", "1000"]);
    let actions: Vec<&str> =
        audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["rollout.start", "rollout.promote", "rollout.rollback", "flag.rollout", "flag.revert"]
    {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_gate_needs_someone_other_than_the_requester_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let mut server = start_with(&db, Some(ADMIN), &["--tick", "100ms"]);
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", &flags());
    apply(&url, dir.path(), "plan", "gated.yaml", &gated());
    let alice = token(&url, "admin", "prod", "alice");
    let bob = token(&url, "admin", "prod", "bob");
    let carol = token(&url, "admin", "prod", "carol");
    let id = start_rollout(&url, &alice, "checkout-gated");

    let mut st = Value::Null;
    eventually("the gate to ask for approval", Duration::from_secs(30), || {
        st = status(&url, ADMIN, &id);
        st["phase"] == "awaiting_approval"
    });
    assert_eq!(st["wave"], 1);
    let o = cli(&url, Some(&alice), &["rollout", "approve", &id]);
    assert_eq!(o.status.code(), Some(2), "the requester may not approve");
    assert!(stderr(&o).contains("separation of duties (rule \"requester\")"), "{}", stderr(&o));
    let o = cli(&url, Some(&carol), &["rollout", "approve", &id]);
    assert_eq!(o.status.code(), Some(2), "carol is not an approver");

    // kill -9, restart: the rollout is exactly where it was.
    server.kill_9();
    drop(server);
    let server = start_with(&db, Some(ADMIN), &["--tick", "100ms"]);
    let url = server.url.clone();
    let resumed = status(&url, ADMIN, &id);
    assert_eq!(
        (resumed["state"].clone(), resumed["wave"].clone(), resumed["phase"].clone()),
        (json!("running"), json!(1), json!("awaiting_approval"))
    );
    // Several ticks later it still has not promoted.
    let ticks_before = Instant::now();
    eventually("a few ticks to pass", Duration::from_secs(30), || {
        ticks_before.elapsed() > Duration::from_millis(5 * TICK_MS)
    });
    assert_eq!(status(&url, ADMIN, &id)["wave"], 1);

    let approved = cli_json(&url, &bob, &["rollout", "approve", &id, "--reason", "CAB ok"]);
    assert_eq!(approved["approvals"][0]["principal"], "bob");
    eventually("promotion after bob's approval", Duration::from_secs(30), || {
        let s = status(&url, ADMIN, &id);
        s["wave"] == 2 || s["state"] == "completed"
    });
    eventually("completion", Duration::from_secs(30), || {
        status(&url, ADMIN, &id)["state"] == "completed"
    });
    assert!(cli(&url, Some(ADMIN), &["audit", "verify"]).status.success());
}
