//! Plans, rollouts and events through the router, with the controller ticked by hand.

use axum::http::{Method, StatusCode};
use serde_json::json;
use wavegate_testkit::fixtures::on_off;

use crate::support::{ADMIN, TestApp, guarded_plan, spawn_app};

fn flag() -> String {
    on_off(&["checkout"])
}

fn plan() -> String {
    guarded_plan("p1", "checkout")
}

async fn started(app: &TestApp) -> String {
    app.prepare(&flag(), &plan()).await;
    app.start("p1").await
}

#[tokio::test]
async fn plans_are_linted_validated_and_idempotent() {
    let app = spawn_app().await;
    app.apply_yaml(&flag()).await;
    let r = app.post_plan(&plan().replace("{ exposure: 20% }", "{ exposure: 60% }")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("first-wave-too-large"), "{:?}", r.body);
    assert_eq!(r.body["field"], "line 12, column 5");
    let r = app.post_plan(&plan().replace("new_variant: \"on\"", "new_variant: \"maybe\"")).await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("new_variant"))
    );
    assert_eq!(app.post_plan(&plan()).await.body["version"], 1);
    let again = app.post_plan(&plan()).await;
    assert_eq!(
        (again.status, again.body["changed"].clone(), again.body["version"].clone()),
        (StatusCode::OK, json!(false), json!(1))
    );
    let schema = app.raw(Method::GET, "/api/v1/schemas/plan.json", None, &[], vec![]).await.body;
    assert_eq!(schema["title"], "wavegate rollout plan");
    // Every top-level key of a stored plan is in the schema.
    let stored = app.admin(Method::GET, "/api/v1/plans/p1", None).await.body;
    for key in stored["spec"].as_object().unwrap().keys() {
        assert!(schema["properties"].get(key).is_some(), "schema lacks {key}");
    }
}

#[tokio::test]
async fn events_are_validated_whole_and_counted_by_arm() {
    let app = spawn_app().await;
    let id = started(&app).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let good = |k: &str, variant: &str, err: bool| json!({"type": "outcome", "flag": "checkout", "variant": variant, "context": {"targetingKey": k}, "error": err, "latency_ms": 12.5});
    let bad_batch = json!({"events": [good("u1", "on", false), {"type": "click", "flag": "checkout", "variant": "on", "context": {}}]});
    let r = app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(bad_batch)).await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("events[1]"))
    );
    assert!(r.body["message"].as_str().unwrap().contains("type must be exposure or outcome"));
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&sdk),
            Some(json!({"events": [good("u1", "on", false)], "extra": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown fields are refused");
    let r = app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(json!({"events": [{"type": "outcome", "flag": "checkout", "variant": "on", "context": {}, "latency_ms": -1}]}))).await;
    assert_eq!(r.body["field"], "events[0]");
    let status = app.rollout(&id).await;
    assert_eq!(status["signals"], json!([]), "nothing from a refused batch was counted");

    // Evaluate as the SDK would, then report what each context was served.
    let client = app.token("client-sdk", &["prod"]).await;
    let mut events = Vec::new();
    for i in 0..400 {
        let k = format!("user-{i}");
        let v = app.ofrep(&client, "checkout", json!({"targetingKey": k})).await.body["variant"]
            .as_str()
            .unwrap()
            .to_owned();
        events.push(good(&k, &v, false));
    }
    let r =
        app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(json!({"events": events}))).await;
    assert_eq!((r.status, r.body["counted"].clone()), (StatusCode::ACCEPTED, json!(400)));

    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["wave"], 2, "{status}");
    let v = status["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "errors" && v["wave"] == 1)
        .unwrap()
        .clone();
    assert_eq!(v["verdict"], "pass");
    let n = v["report"]["treatment"]["n"].as_f64().unwrap()
        + v["report"]["control"]["n"].as_f64().unwrap();
    assert_eq!(n, 400.0);

    // The dashboard's chart of that guardrail: SVG drawn from the stored verdicts.
    let chart = app
        .admin(Method::GET, &format!("/api/v1/rollouts/{id}/guardrails/errors/chart"), None)
        .await;
    assert_eq!(chart.status, StatusCode::OK);
    assert!(chart.headers["content-type"].to_str().unwrap().starts_with("image/svg+xml"));
    let svg = chart.body.as_str().unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("tolerance") && svg.contains("always-valid bound"),
        "{svg}"
    );
    assert!(svg.contains("pass: "), "the last point carries its verdict: {svg}");
    // The post-rollout report's HTML page carries the same chart.
    let page =
        app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/report?format=html"), None).await;
    let page = page.body.as_str().unwrap();
    assert!(page.contains("<h2>Charts</h2>") && page.contains("<figure><svg"), "{page}");
    assert!(page.contains("<figcaption>Guardrail errors</figcaption>"), "{page}");
    let r =
        app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/guardrails/nope/chart"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["message"].as_str().unwrap().contains("errors"), "names the guardrails it has");
}

#[tokio::test]
async fn stream_subscribers_hear_of_changes_that_have_no_audit_entry() {
    let app = spawn_app().await;
    let id = started(&app).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut s =
        crate::stream::Reader::open(&app, app.router.clone(), ADMIN, &[], "").await.unwrap();
    assert_eq!(s.next_event().await.event, "snapshot");
    let events = json!({"events": [{"type": "outcome", "flag": "checkout", "variant": "off", "context": {"targetingKey": "u1"}, "error": false}]});
    let r = app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(events)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.id), ("changed", None), "rollout {id}");
}

#[tokio::test]
async fn people_commands_need_reasons_and_the_flag_is_locked() {
    let app = spawn_app().await;
    let id = started(&app).await;
    let edit_flag = || {
        let body = json!({"variants": {"on": true, "off": false}, "default": "on"});
        app.admin(Method::PUT, "/api/v1/flags/checkout", Some(body))
    };
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert_eq!(flag["version"], 2, "starting set the exposure as a new flag version");
    assert_eq!(flag["spec"]["environments"]["prod"]["rules"][0]["name"], format!("rollout:{id}"));
    let r = edit_flag().await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app.admin(Method::POST, &format!("/api/v1/rollouts/{id}/approve"), None).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the requester (admin) may not approve: {:?}",
        r.body
    );
    let r = app.admin(Method::POST, &format!("/api/v1/rollouts/{id}/pause"), None).await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("reason"))
    );
    let r = app.command(&id, "pause", "investigating").await;
    assert_eq!(r.body["state"], "paused");
    let r = app.command(&id, "rollback", "not today").await;
    assert_eq!(r.body["state"], "rolled_back");
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert_eq!(flag["version"], 3);
    assert_eq!(
        flag["spec"]["environments"]["prod"],
        json!({"enabled": true}),
        "the pre-rollout version is restored exactly"
    );
    let r = app.admin(Method::POST, &format!("/api/v1/rollouts/{id}/resume"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "ended rollouts take no commands");
    let r = edit_flag().await;
    assert_eq!(r.status, StatusCode::OK, "the flag is free again");
    let v = app.admin(Method::GET, "/api/v1/audit/verify", None).await.body;
    assert_eq!(v["ok"], true);
}

/// An app whose plan `p1` pins its artifact to sha256("hello"), and that digest.
async fn pinned_to_hello() -> (TestApp, &'static str) {
    let app = spawn_app().await;
    app.apply_yaml(&flag()).await;
    let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; // sha256("hello")
    let with_digest =
        plan().replace("risk: low }", &format!("risk: low, artifact_sha256: {hello} }}"));
    assert_eq!(app.post_plan(&with_digest).await.status, StatusCode::CREATED);
    (app, hello)
}

#[tokio::test]
async fn a_mismatched_artifact_refuses_to_start() {
    let (app, hello) = pinned_to_hello().await;
    let r = app
        .admin(
            Method::POST,
            "/api/v1/rollouts",
            Some(json!({"plan": "p1", "artifact_sha256": "00".repeat(32)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["message"].as_str().unwrap().contains("artifact digest mismatch"));
    assert_eq!(
        app.admin(Method::GET, "/api/v1/rollouts", None).await.body,
        json!([]),
        "nothing started"
    );
    let r = app
        .admin(
            Method::POST,
            "/api/v1/rollouts",
            Some(json!({"plan": "p1", "artifact_sha256": hello.to_uppercase()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// A scheduled start keeps what was offered about the artifact and checks it when it runs: a
/// wrong digest refuses it then (it used to be dropped, and the start went ahead unchecked).
#[tokio::test]
async fn a_scheduled_start_checks_the_artifact_it_was_given() {
    let (app, hello) = pinned_to_hello().await;
    let at =
        (wavegate_server::clock::Clock::now(&*app.clock) + chrono::Duration::hours(1)).to_rfc3339();
    let wrong = json!({"plan": "p1", "start_at": at, "artifact_sha256": "00".repeat(32)});
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(wrong)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    assert_eq!(app.admin(Method::GET, "/api/v1/rollouts", None).await.body, json!([]));
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=100", None).await.body;
    let failed = audit.as_array().unwrap().iter().find(|e| e["action"] == "setting.failed");
    let error = failed.map(|e| e["details"]["error"].to_string()).unwrap_or_default();
    assert!(error.contains("artifact digest mismatch"), "{audit}");
    let at =
        (wavegate_server::clock::Clock::now(&*app.clock) + chrono::Duration::hours(1)).to_rfc3339();
    let right = json!({"plan": "p1", "start_at": at, "artifact_sha256": hello});
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(right)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    let rollouts = app.admin(Method::GET, "/api/v1/rollouts", None).await.body;
    assert_eq!(rollouts.as_array().unwrap().len(), 1, "{rollouts}");
}

#[tokio::test]
async fn outcome_values_are_bounded_and_ring_segments_stay() {
    let app = spawn_app().await;
    let ringed =
        plan().replace("  - { exposure: 20% }\n", "  - { exposure: 20%, segments: [beta] }\n");
    app.prepare(&format!("segments:\n  beta:\n    keys: [u1]\n{}", flag()), &ringed).await;
    app.start("p1").await;
    let r = app.admin(Method::POST, "/api/v1/segments/beta/archive", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let sdk = app.token("server-sdk", &["prod"]).await;
    let e = json!({"events": [{"type": "outcome", "flag": "checkout", "variant": "on", "context": {"targetingKey": "u1"}, "latency_ms": 1e200}]});
    let r = app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(e)).await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("events[0]"))
    );
}

#[tokio::test]
async fn a_retried_batch_with_its_idempotency_key_counts_once() {
    let app = spawn_app().await;
    let id = started(&app).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let client = app.token("client-sdk", &["prod"]).await;
    let mut events = Vec::new();
    for i in 0..50 {
        let k = format!("user-{i}");
        let r = app.ofrep(&client, "checkout", json!({"targetingKey": k})).await;
        let v = r.body["variant"].as_str().unwrap().to_owned();
        events.push(json!({"type": "exposure", "flag": "checkout", "variant": v, "context": {"targetingKey": k}}));
    }
    let body = serde_json::to_vec(&json!({ "events": events })).unwrap();
    let post = |key: &'static str| {
        let body = body.clone();
        let sdk = sdk.clone();
        let app = &app;
        async move {
            let headers = [("content-type", "application/json"), ("idempotency-key", key)];
            app.raw(Method::POST, "/api/v1/events", Some(&sdk), &headers, body).await
        }
    };
    let first = post("batch-0001").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    assert_eq!(first.body["counted"], 50, "{:?}", first.body);
    assert!(first.body.get("duplicate").is_none(), "{:?}", first.body);
    let retry = post("batch-0001").await;
    assert_eq!(retry.status, StatusCode::ACCEPTED);
    assert_eq!(
        (retry.body["counted"].clone(), retry.body["duplicate"].clone()),
        (json!(0), json!(true))
    );
    let other = post("batch-0002").await;
    assert_eq!(other.body["counted"], 50, "another key is another batch");
    let status = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body;
    let n: f64 = status["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"] == "exposure")
        .map(|s| s["n"].as_f64().unwrap())
        .sum();
    assert_eq!(n, 100.0, "{status}");
    for bad in ["has space", &"k".repeat(129)] {
        let headers = [("content-type", "application/json"), ("idempotency-key", bad)];
        let r = app.raw(Method::POST, "/api/v1/events", Some(&sdk), &headers, body.clone()).await;
        assert_eq!(
            (r.status, r.body["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("Idempotency-Key")),
            "{bad}"
        );
    }
}
