//! A quantile guardrail (issue 18 item 3) through the router: the treatment's p95 held to an
//! SLO from the latency sketches of posted outcomes; a slow tail rolls back while most
//! requests stay fast, and the verdict shows both arms' quantiles.

use axum::http::{Method, StatusCode};
use serde_json::json;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::spawn_app;

#[tokio::test]
async fn a_p95_slo_rolls_back_a_slow_tail_and_shows_the_quantiles() {
    let app = spawn_app().await;
    let guardrail = "guardrails:
  - { name: p95, metric: latency_ms, quantile: 0.95, comparison: bound, bound: 250, min_sample: 100, action: rollback }
runbook: { p95: look }
";
    let plan = Plan::new("p", "checkout").section(guardrail).to_string();
    app.prepare(&on_off(&["checkout"]), &plan).await;
    let id = app.start("p").await;
    let client = app.token("client-sdk", &["prod"]).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut events = Vec::new();
    for i in 0..1500 {
        let key = format!("user-{i}");
        let r = app.ofrep(&client, "checkout", json!({"targetingKey": key})).await;
        let variant = r.body["variant"].as_str().unwrap().to_owned();
        // One in five of the new variant's requests is slow; the rest are as fast as control.
        let slow = variant == "on" && i % 5 == 0;
        events.push(json!({"type": "outcome", "flag": "checkout", "variant": variant,
            "context": {"targetingKey": key}, "version": r.body["metadata"]["version"],
            "latency_ms": if slow { 900.0 } else { 80.0 + f64::from(i % 40) }}));
    }
    let r =
        app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(json!({"events": events}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["state"], "rolled_back", "{status}");
    let verdict = status["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "p95")
        .unwrap_or_else(|| panic!("{status}"))
        .clone();
    let q = &verdict["report"]["quantiles"];
    assert_eq!((q["q"].clone(), q["threshold"].clone()), (json!(0.95), json!(250.0)), "{verdict}");
    assert!(q["treatment"].as_f64().unwrap() > 800.0, "{verdict}");
    assert!(q["control"].as_f64().unwrap() < 130.0, "{verdict}");
    let explanation = verdict["report"]["explanation"].as_str().unwrap();
    assert!(explanation.starts_with("p95 treatment"), "{explanation}");
}
