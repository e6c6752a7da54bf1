//! Rolling out to people (issue 22), through the router with the controller ticked by hand and
//! the notifier sending to real local receivers: a wave held by its adoption and feedback gates
//! while the guardrails pass, the lagging cohort's champion told with the numbers, the gates
//! clearing when adoption recovers and the blocker is fixed, "you said → we did" reaching end
//! users, the success target met at the end; and an incident guardrail fed by PagerDuty-shaped
//! webhooks rolling a rollout back.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};
use wavegate_testkit::poll::until;

use crate::notify::{Seen, notifier, receiver};
use crate::support::{TestApp, errors_guardrail, spawn_app};

const WAIT: Duration = Duration::from_secs(20);

const PEOPLE: &str = r#"adoption: { cohorts: [function], key_task: report_exported, min_users: 10 }
stakeholders:
  function:
    support: { champion: dana, training_owner: tom, sponsor: vp-support }
    sales: { champion: sam }
success_metrics:
  - { metric: adoption, target: ">= 60%", within: 30d }
"#;

fn plan() -> String {
    Plan::new("reports-v3", "reports")
        .release("version: 3.0.0, risk: low, service: reports")
        .section(&format!(
            "{}{PEOPLE}",
            errors_guardrail(50).replace(
                "runbook: { errors: look }",
                "runbook:\n  errors: look\n  enablement: \"Walk the cohort through exporting a report\""
            )
        ))
        .waves(&[
            "{ exposure: 20%, hold: 1h }",
            r#"{ exposure: 50%, hold: 1h, gates: { adoption: { key_task_rate: ">= 0.9 × previous wave", min_users: 30 }, feedback: { open_blockers: 0 } } }"#,
            "{ exposure: 100%, hold: 1h }",
        ])
        .to_string()
}

fn function(i: usize) -> &'static str {
    ["support", "sales", "eng", "sales"][i % 4]
}

fn context(i: usize) -> Value {
    json!({"targetingKey": format!("user-{i}"), "function": function(i)})
}

/// Users `users` evaluate over OFREP and report an exposure and a clean outcome, carrying the
/// key task when `task(i)`; returns the users served the new variant.
async fn traffic(
    app: &TestApp,
    users: std::ops::Range<usize>,
    task: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let client = app.token("client-sdk", &["prod"]).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut events = Vec::new();
    let mut on = Vec::new();
    for i in users {
        let r = app.ofrep(&client, "reports", context(i)).await;
        let variant = r.body["variant"].as_str().unwrap().to_owned();
        if variant == "on" {
            on.push(i);
        }
        let version = r.body["metadata"]["version"].clone();
        events.push(json!({"type": "exposure", "flag": "reports", "variant": variant,
            "context": context(i), "version": version}));
        let metrics = if task(i) { json!({"report_exported": 1}) } else { json!({}) };
        events.push(json!({"type": "outcome", "flag": "reports", "variant": variant,
            "context": context(i), "version": version, "error": false, "metrics": metrics}));
    }
    let r =
        app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(json!({"events": events}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    on
}

/// Key-task outcomes for `users` (served the new variant), as they come back to the feature.
async fn adopt(app: &TestApp, users: &[usize]) {
    let sdk = app.token("server-sdk", &["prod"]).await;
    let events: Vec<Value> = users
        .iter()
        .map(|i| {
            json!({"type": "outcome", "flag": "reports", "variant": "on", "context": context(*i),
            "error": false, "metrics": {"report_exported": 1}})
        })
        .collect();
    let r =
        app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(json!({"events": events}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
}

async fn target(app: &TestApp, name: &str, body: Value) {
    let r =
        app.admin(Method::PUT, &format!("/api/v1/notifications/targets/{name}"), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn heard(seen: &Seen, event: &str) -> Vec<Value> {
    seen.lock().await.iter().filter(|(e, _)| e == event).map(|(_, b)| b.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_held_by_its_people_gates_clears_when_adoption_recovers_and_meets_its_target() {
    let app = spawn_app().await;
    let (dana_url, dana) = receiver(0, false).await;
    let (tom_url, tom) = receiver(0, false).await;
    let (sam_url, sam) = receiver(0, false).await;
    let (users_url, users) = receiver(0, false).await;
    target(&app, "dana", json!({"audience": "champion", "person": "dana", "url": dana_url})).await;
    target(&app, "tom", json!({"audience": "champion", "person": "tom", "url": tom_url})).await;
    target(&app, "sam", json!({"audience": "champion", "person": "sam", "url": sam_url})).await;
    target(&app, "users", json!({"audience": "end-user", "url": users_url})).await;
    let _stop = notifier(&app, Duration::from_secs(5));
    app.prepare(&on_off(&["reports"]), &plan()).await;
    let id = app.start("reports-v3").await;

    // Wave 1 (20%): most of sales and eng do the key task, support hardly does.
    let wave1 =
        traffic(&app, 0..400, |i| if function(i) == "support" { i % 40 == 0 } else { i % 5 != 0 })
            .await;
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["wave"], 2, "wave 1 has no gates: {status}");

    // Support lags: its champion and training owner are told, with the numbers and the
    // enablement entry; sales' champion is not (sales does not lag).
    until("the champion's notice", WAIT, || async {
        !heard(&dana, "cohort_lagging").await.is_empty()
    })
    .await;
    let notice = &heard(&dana, "cohort_lagging").await[0];
    let text = notice["text"].as_str().unwrap();
    assert!(
        text.contains("function = support") && text.contains("users did the key task"),
        "{text}"
    );
    assert!(text.contains("Walk the cohort through exporting a report"), "{text}");
    let support_on = wave1.iter().filter(|i| function(**i) == "support").count();
    assert!(text.contains(&format!("of {support_on} users")), "the cohort's numbers: {text}");
    until("the training owner's notice", WAIT, || async {
        !heard(&tom, "cohort_lagging").await.is_empty()
    })
    .await;
    assert!(sam.lock().await.is_empty(), "only the lagging cohort's people are told");

    // Wave 2 (50%): its new users adopt far less, and a pilot files a blocker.
    let wave2 = traffic(&app, 1000..1400, |i| i % 5 == 0).await;
    let r = app
        .admin(Method::POST, "/api/v1/feedback", Some(json!({"release": "reports", "category": "bug",
            "cohort": "support", "sentiment": "negative", "text": "export button does nothing in Firefox", "blocker": true})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let blocker = r.body["ids"][0].as_i64().unwrap();
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(
        (status["state"].clone(), status["phase"].clone()),
        (json!("running"), json!("gated")),
        "{status}"
    );
    let reason = status["reason"].as_str().unwrap();
    assert!(
        reason.contains("adoption: key-task rate of wave 2") && reason.contains("1 open blocker"),
        "{reason}"
    );
    // The guardrails pass meanwhile: the hold is the people gate's alone.
    let verdicts =
        app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/verdicts"), None).await.body;
    let last_errors = verdicts["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|v| v["name"] == "errors")
        .unwrap()
        .clone();
    assert_eq!(last_errors["verdict"], "pass", "{last_errors}");
    app.tick().await;
    assert_eq!(app.rollout(&id).await["phase"], "gated", "held, never rolled back");

    // Adoption recovers (wave 2's users come back and do the task) and the blocker is fixed in a
    // new flag version: the gates clear and the wave is promoted.
    adopt(&app, &wave2).await;
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/feedback/{blocker}/status"),
            Some(json!({"status": "fixed", "note": "fixed the export button in Firefox",
                "fixed_in": {"kind": "flag", "key": "reports", "version": 1}})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["fixed_in"].clone()),
        (StatusCode::OK, json!("flag reports v1")),
        "{:?}",
        r.body
    );
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["wave"], 3, "{status}");
    let audit =
        app.admin(Method::GET, &format!("/api/v1/audit?target=rollout:{id}"), None).await.body;
    let actions: Vec<&str> =
        audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.contains(&"rollout.gated") && actions.contains(&"rollout.gate_cleared"),
        "{actions:?}"
    );

    // You said → we did: end users hear what their feedback changed.
    until("the end users' digest", WAIT, || async {
        !heard(&users, "you_said_we_did").await.is_empty()
    })
    .await;
    let digest = heard(&users, "you_said_we_did").await[0]["text"].as_str().unwrap().to_owned();
    assert!(
        digest.contains("export button does nothing in Firefox")
            && digest.contains("fixed the export button"),
        "{digest}"
    );

    // Complete, and the success target (adoption ≥ 60% within 30 days) is met.
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    assert_eq!(app.rollout(&id).await["state"], "completed");
    let success =
        app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/success"), None).await.body;
    assert_eq!(success["targets"][0]["status"], "met", "{success}");
    assert_eq!(success["all_met"], true);
    let report = app
        .admin(Method::GET, &format!("/api/v1/rollouts/{id}/report?format=markdown"), None)
        .await
        .body;
    let md = report.as_str().unwrap();
    assert!(
        md.contains("## Success targets") && md.contains("| adoption | \\>= 60% | all | met |"),
        "{md}"
    );
    let until = (app.state.clock.now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let dora =
        app.admin(Method::GET, &format!("/api/v1/reports/dora?until={until}"), None).await.body;
    assert_eq!(
        (
            dora["groups"][0]["with_success_targets"].clone(),
            dora["groups"][0]["met_success_targets"].clone()
        ),
        (json!(1), json!(1)),
        "{dora}"
    );
    let _ = wave1;
}

const INCIDENTS: &str = "guardrails:
  - { name: incidents, source: incidents, comparison: absolute, tolerance: 0.1, severity: high, action: rollback }
runbook: { incidents: page the payments on-call }
";

/// A PagerDuty V3 webhook delivery of a triggered incident.
fn pagerduty(id: &str, at: chrono::DateTime<chrono::Utc>, priority: &str) -> Value {
    json!({"event": {"id": format!("ev-{id}"), "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": at.to_rfc3339(), "agent": null, "client": null,
        "data": {"id": id, "type": "incident", "self": format!("https://api.pagerduty.com/incidents/{id}"),
            "html_url": format!("https://acme.pagerduty.com/incidents/{id}"), "number": 7, "status": "triggered",
            "incident_key": format!("key-{id}"), "created_at": at.to_rfc3339(), "title": "Checkout errors",
            "service": {"id": "PF9KMXH", "summary": "Checkout API", "type": "service_reference"},
            "assignees": [], "escalation_policy": {"id": "P", "type": "escalation_policy_reference"},
            "teams": [], "priority": {"id": "PSO75BM", "summary": priority, "type": "priority_reference"},
            "urgency": "high", "conference_bridge": null, "resolve_reason": null}}})
}

#[tokio::test]
async fn an_incident_guardrail_fed_by_pagerduty_rolls_a_rollout_back() {
    let app = spawn_app().await;
    let plan = Plan::new("pay", "checkout")
        .release("version: 2.0.0, risk: low, service: checkout")
        .section(INCIDENTS)
        .waves(&["{ exposure: 20%, hold: 1h }", "{ exposure: 100% }"])
        .to_string();
    app.prepare(&on_off(&["checkout"]), &plan).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let hook = "/api/v1/incidents/pagerduty?service=checkout";
    // The week before: two incidents, one of them below the guardrail's severity floor.
    let now = app.state.clock.now();
    for (id, ago, priority) in
        [("PD-old-1", 50, "P2"), ("PD-old-2", 20, "P4"), ("PD-old-3", 100, "P1")]
    {
        let r = app
            .call(
                Method::POST,
                hook,
                Some(&sdk),
                Some(pagerduty(id, now - chrono::Duration::hours(ago), priority)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["arms"], json!([]), "nothing was rolling out");
    }
    let id = app.start("pay").await;
    app.clock.advance(chrono::Duration::minutes(10));
    app.tick().await;
    assert_eq!(app.rollout(&id).await["state"], "running", "the usual rate holds no one");

    // Then a burst of high-priority incidents; a retried delivery counts once; a resolution is
    // not an incident.
    let at = app.state.clock.now();
    for n in 0..5 {
        let r = app
            .call(Method::POST, hook, Some(&sdk), Some(pagerduty(&format!("PD-new-{n}"), at, "P1")))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["severity"], "critical");
    }
    let again =
        app.call(Method::POST, hook, Some(&sdk), Some(pagerduty("PD-new-0", at, "P1"))).await;
    assert_eq!((again.status, again.body["new"].clone()), (StatusCode::OK, json!(false)));
    let resolved =
        json!({"event": {"event_type": "incident.resolved", "data": {"id": "PD-new-1"}}});
    assert_eq!(
        app.call(Method::POST, hook, Some(&sdk), Some(resolved)).await.status,
        StatusCode::ACCEPTED
    );
    app.clock.advance(chrono::Duration::minutes(10));
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["state"], "rolled_back", "{status}");
    let reason = status["reason"].as_str().unwrap();
    assert!(
        reason.contains("guardrail \"incidents\" failed") && reason.contains("5 in"),
        "{reason}"
    );
    let listed = app.admin(Method::GET, "/api/v1/incidents?service=checkout", None).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 8);
}

/// Wave 1 of `reports` reaching `first` (a flow mapping), with adoption tracked by function.
fn pilot_plan(first: &str) -> String {
    Plan::new("pilot", "reports")
        .section("adoption: { cohorts: [function], key_task: report_exported }\n")
        .waves(&[first, "{ exposure: 100%, hold: 1h }"])
        .to_string()
}

async fn pilot_checks(app: &TestApp, id: &str) -> Vec<Value> {
    let audit =
        app.admin(Method::GET, &format!("/api/v1/audit?target=rollout:{id}"), None).await.body;
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rollout.pilot_checked")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_skewed_first_wave_is_flagged_once_its_hold_ends_and_a_representative_one_is_not() {
    let app = spawn_app().await;
    let segments = json!({"segments": {"sales-team": {"constraints": [{"attribute": "function", "op": "in", "values": ["sales"]}]}}});
    assert!(app.admin(Method::POST, "/api/v1/apply", Some(segments)).await.status.is_success());
    app.prepare(
        &on_off(&["reports"]),
        &pilot_plan("{ exposure: 25%, segments: [sales-team], hold: 1h }"),
    )
    .await;
    let id = app.start("pilot").await;
    let served = traffic(&app, 0..400, |_| false).await;
    assert!(served.iter().all(|i| function(*i) == "sales"), "the ring serves sales only");
    app.tick().await;
    assert!(pilot_checks(&app, &id).await.is_empty(), "judged when the hold ends, not before");
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    app.tick().await;
    let checks = pilot_checks(&app, &id).await;
    assert_eq!(checks.len(), 1, "judged once: {checks:?}");
    let d = &checks[0]["details"];
    assert_eq!(d["representative"], false, "{d}");
    let warning = d["warning"].as_str().unwrap();
    assert!(
        warning.contains("function: sales is 100.0% of the pilot but 50.0% of the flag's users"),
        "{warning}"
    );

    // A first wave that is a share of everyone mirrors the flag's users.
    let app = spawn_app().await;
    app.prepare(&on_off(&["reports"]), &pilot_plan("{ exposure: 25%, hold: 1h }")).await;
    let id = app.start("pilot").await;
    traffic(&app, 0..800, |_| false).await;
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    let checks = pilot_checks(&app, &id).await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["details"]["representative"], true, "{}", checks[0]);
}

/// The `friendly-pilot` findings of linting the pilot plan with wave 1 `first`.
async fn lint(app: &TestApp, first: &str) -> Vec<Value> {
    findings(app, pilot_plan(first), "friendly-pilot").await
}

/// The findings of code `code` of linting plan `yaml` on the server.
async fn findings(app: &TestApp, yaml: String, code: &str) -> Vec<Value> {
    let r = app
        .raw(
            Method::POST,
            "/api/v1/plans/lint",
            Some(crate::support::ADMIN),
            &[("content-type", "application/yaml")],
            yaml.into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["findings"].as_array().unwrap().iter().filter(|f| f["code"] == code).cloned().collect()
}

#[tokio::test]
async fn lint_flags_a_pilot_of_insiders_only_at_its_wave() {
    let app = spawn_app().await;
    let segments = json!({"segments": {
        "staff": {"constraints": [{"attribute": "email", "op": "ends_with", "values": ["@acme.example"]}]},
        "beta": {"constraints": [{"attribute": "plan", "op": "in", "values": ["pro", "free"]}]}}});
    assert!(app.admin(Method::POST, "/api/v1/apply", Some(segments)).await.status.is_success());
    app.prepare(&on_off(&["reports"]), &Plan::new("seed", "reports").to_string()).await;
    let found = lint(&app, "{ exposure: 25%, segments: [staff], hold: 1h }").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["severity"], "warning");
    assert!(found[0]["line"].as_u64().is_some(), "located at wave 1: {found:?}");
    assert!(found[0]["message"].as_str().unwrap().contains("email to @acme.example"), "{found:?}");
    assert!(
        lint(&app, "{ exposure: 25%, segments: [staff, beta], hold: 1h }").await.is_empty(),
        "beta reaches customers"
    );
    assert!(lint(&app, "{ exposure: 5%, hold: 1h }").await.is_empty());
    // A wave whose segment picks a cohort nobody champions is warned about at that wave.
    let sales = json!({"segments": {"sales-team": {"constraints": [{"attribute": "function", "op": "in", "values": ["sales", "support"]}]}}});
    assert!(app.admin(Method::POST, "/api/v1/apply", Some(sales)).await.status.is_success());
    let plan = Plan::new("champions", "reports")
        .section("adoption: { cohorts: [function], key_task: report_exported }\nstakeholders:\n  function:\n    support: { champion: dana }\n")
        .waves(&["{ exposure: 5%, hold: 1h }", "{ exposure: 50%, segments: [sales-team], hold: 1h }", "{ exposure: 100% }"])
        .to_string();
    let unchampioned = findings(&app, plan, "no-champion").await;
    assert_eq!(unchampioned.len(), 1, "{unchampioned:?}");
    let message = unchampioned[0]["message"].as_str().unwrap();
    assert!(message.starts_with("wave 2 reaches function = sales with no champion"), "{message}");
    assert!(unchampioned[0]["line"].as_u64().is_some());
    // Applying it answers the same warning.
    let r = app.post_plan(&pilot_plan("{ exposure: 25%, segments: [staff], hold: 1h }")).await;
    assert!(
        r.body["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "friendly-pilot"),
        "{:?}",
        r.body
    );
}

const CARD: &str = r#"adoption: { cohorts: [function], key_task: report_exported }
stakeholders:
  function:
    support: { champion: dana }
    sales: { training_owner: tom }
scorecard:
  max_red: 1
  items: [{ key: pilot-feedback }, { key: support-staffed }, { key: communications }]
"#;

async fn card_item(app: &TestApp, key: &str) -> Value {
    let card = app.admin(Method::GET, "/api/v1/plans/staffed/scorecard", None).await.body;
    card["items"].as_array().unwrap().iter().find(|i| i["key"] == key).unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_people_items_of_the_scorecard_check_themselves() {
    let app = spawn_app().await;
    let plan = Plan::new("staffed", "reports").section(CARD).to_string();
    app.prepare(&on_off(&["reports"]), &plan).await;

    // Champions: sales has a training owner but no champion.
    let staffed = card_item(&app, "support-staffed").await;
    assert_eq!(
        (staffed["status"].clone(), staffed["automatic"].clone()),
        (json!("red"), json!(true))
    );
    assert!(
        staffed["note"].as_str().unwrap().contains("no champion for function = sales"),
        "{staffed}"
    );

    // Feedback: nothing said yet, then an open blocker (red), then fixed (green).
    assert_eq!(card_item(&app, "pilot-feedback").await["status"], "unset");
    let item = json!({"release": "reports", "category": "bug", "cohort": "sales", "sentiment": "negative",
        "text": "export hangs", "blocker": true});
    let id = app.admin(Method::POST, "/api/v1/feedback", Some(item)).await.body["ids"][0]
        .as_i64()
        .unwrap();
    let fb = card_item(&app, "pilot-feedback").await;
    assert_eq!(fb["status"], "red", "{fb}");
    assert!(fb["note"].as_str().unwrap().contains("1 open blocker"), "{fb}");
    let closed = json!({"status": "fixed", "note": "export no longer hangs"});
    assert_eq!(
        app.admin(Method::POST, &format!("/api/v1/feedback/{id}/status"), Some(closed))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(card_item(&app, "pilot-feedback").await["status"], "green");

    // Communications: a target per audience, each tested; one untested audience keeps it red.
    let (url, _) = receiver(0, false).await;
    for audience in ["executive", "manager", "end-user", "on-call"] {
        target(&app, audience, json!({"audience": audience, "url": url})).await;
    }
    for audience in ["executive", "manager", "end-user"] {
        let r = app
            .admin(Method::POST, &format!("/api/v1/notifications/targets/{audience}/test"), None)
            .await;
        assert_eq!(r.body["ok"], true, "{:?}", r.body);
    }
    let comms = card_item(&app, "communications").await;
    assert_eq!(comms["status"], "red", "{comms}");
    assert!(comms["note"].as_str().unwrap().contains("on-call"), "{comms}");
    app.admin(Method::POST, "/api/v1/notifications/targets/on-call/test", None).await;
    assert_eq!(card_item(&app, "communications").await["status"], "green");
    // A week later the tests are stale.
    app.clock.advance(chrono::Duration::days(8));
    assert_eq!(card_item(&app, "communications").await["status"], "red");
}

async fn close(app: &TestApp, id: &str, item: &str) -> crate::support::Reply {
    let body = json!({"item": item, "reason": "done"});
    app.admin(Method::POST, &format!("/api/v1/rollouts/{id}/close-item"), Some(body)).await
}

#[tokio::test]
async fn a_completed_rollout_is_closed_only_when_its_after_release_items_are_done() {
    let app = spawn_app().await;
    let plan = Plan::new("docs", "reports")
        .section("after_release:\n  - documentation updated\n  - security review of configuration and dependencies\n")
        .to_string();
    app.prepare(&on_off(&["reports"]), &plan).await;
    let id = app.start("docs").await;
    // Ticked off while running: allowed; unknown items and doing one twice are refused.
    assert_eq!(close(&app, &id, "documentation updated").await.status, StatusCode::OK);
    let r = close(&app, &id, "documentation updated").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = close(&app, &id, "write a blog post").await;
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("not one of plan \"docs\"'s after_release items"),
        "{:?}",
        r.body
    );
    app.tick().await;
    app.tick().await;
    assert_eq!(app.rollout(&id).await["state"], "completed");
    let report = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/report"), None).await.body;
    assert_eq!(report["closed"], false, "{report}");
    assert_eq!(report["after_release"][0]["done_by"], "admin");
    let prompts = report["retro_prompts"].to_string();
    assert!(
        prompts.contains("security review of configuration and dependencies"),
        "the retro names what is left: {prompts}"
    );
    assert_eq!(
        close(&app, &id, "security review of configuration and dependencies").await.status,
        StatusCode::OK
    );
    let report = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/report"), None).await.body;
    assert_eq!(report["closed"], true, "{report}");
    let audit =
        app.admin(Method::GET, &format!("/api/v1/audit?target=rollout:{id}"), None).await.body;
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "rollout.closed"), "{audit}");
}
