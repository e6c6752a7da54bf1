//! Release pipelines: a release that completes in staging starts in prod by itself (a plan with
//! `auto_start` and `promotion_path: [staging]`), through prod's start checks, as the person who
//! started it in staging, and stops at prod's approval, which that person may not give.

use axum::http::{Method, StatusCode};
use serde_json::json;
use wavegate_testkit::fixtures::Plan;

use crate::support::{ADMIN, spawn_app};

const FLAG: &str = "flags:\n  checkout:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      staging: { enabled: true }\n      prod: { enabled: true }\n";

fn release(name: &str) -> Plan {
    Plan::new(name, "checkout")
        .release("version: 2.0.0, risk: low")
        .owners("{ requester: alice, approvers: [bob] }")
}

#[tokio::test]
async fn a_release_completed_in_staging_starts_in_prod_and_stops_at_its_approval() {
    let app = spawn_app().await;
    assert_eq!(app.apply_yaml(FLAG).await.status, StatusCode::OK);
    let prod = release("checkout-prod")
        .section("promotion_path: [staging]\nauto_start: true\n")
        .waves(&["{ exposure: 20%, promotion: approval }", "{ exposure: 100% }"]);
    assert_eq!(app.post_plan(&prod.to_string()).await.status, StatusCode::CREATED);
    let staging = release("checkout-staging").environment("staging");
    assert_eq!(app.post_plan(&staging.to_string()).await.status, StatusCode::CREATED);
    // A plan that starts by itself needs a path to wait for.
    let lone = release("lone").section("auto_start: true\n").to_string();
    let r = app.post_plan(&lone).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("auto-start-without-path"),
        "{:?}",
        r.body
    );
    // Nor can it pass a vulnerability check that waits for an SBOM sent with the start.
    let blind = release("blind")
        .section("promotion_path: [staging]\nauto_start: true\nchecks:\n  - { name: v, when: [before_start], vulnerabilities: { fail_on: high }, action: pause }\n")
        .to_string();
    let r = app.post_plan(&blind).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("auto-start-needs-sbom-url"),
        "{:?}",
        r.body
    );

    let token = |who: &str| json!({"kind": "admin", "environments": ["*"], "principal": who});
    let alice = app.mint(ADMIN, token("alice")).await.body["token"].as_str().unwrap().to_owned();
    let bob = app.mint(ADMIN, token("bob")).await.body["token"].as_str().unwrap().to_owned();
    let body = json!({"plan": "checkout-staging"});
    let r = app.call(Method::POST, "/api/v1/rollouts", Some(&alice), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let staged = r.body["id"].as_str().unwrap().to_owned();
    app.tick().await;
    assert_eq!(app.count("/api/v1/rollouts?environment=prod").await, 0, "staging still runs");
    app.tick().await;
    assert_eq!(app.rollout(&staged).await["state"], "completed");
    app.tick().await;
    let prod_rollouts =
        app.admin(Method::GET, "/api/v1/rollouts?environment=prod", None).await.body;
    let list = prod_rollouts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{prod_rollouts}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (list[0]["plan"].as_str(), list[0]["requester"].as_str()),
        (Some("checkout-prod"), Some("alice"))
    );
    // Started once: more ticks start nothing more.
    app.tick().await;
    app.tick().await;
    assert_eq!(app.count("/api/v1/rollouts?environment=prod").await, 1);
    let status = app.rollout(&id).await;
    assert_eq!(
        (status["state"].as_str(), status["phase"].as_str()),
        (Some("running"), Some("awaiting_approval")),
        "{status}"
    );
    // Alice started it (through her staging rollout): she may not approve; bob may.
    let approve = format!("/api/v1/rollouts/{id}/approve");
    let r = app.call(Method::POST, &approve, Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app.call(Method::POST, &approve, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.tick().await;
    assert_eq!(app.rollout(&id).await["wave"], 2);

    let audit = app.admin(Method::GET, "/api/v1/audit?limit=200", None).await.body;
    let entries = audit.as_array().unwrap();
    let start = entries
        .iter()
        .find(|e| e["action"] == "rollout.start" && e["details"]["rollout"] == id.as_str())
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(start["actor"], "alice");
    assert_eq!(start["via"], format!("release pipeline after {staged}"));
    let outcome = entries.iter().find(|e| e["action"] == "setting.pipeline_started").unwrap();
    assert_eq!(outcome["details"]["after"], json!([staged]));
}

/// A pipeline start refused by a start check (the flag is off in prod) is recorded once with
/// its reason and not tried again; a person starts it when the cause is gone.
#[tokio::test]
async fn a_refused_pipeline_start_is_recorded_once() {
    let app = spawn_app().await;
    // Switched off in prod: the start check refuses.
    app.apply_yaml(&FLAG.replace("prod: { enabled: true }", "prod: { enabled: false }")).await;
    let prod = release("checkout-prod").section("promotion_path: [staging]\nauto_start: true\n");
    app.post_plan(&prod.to_string()).await;
    app.post_plan(&release("checkout-staging").environment("staging").to_string()).await;
    let staged = app.start("checkout-staging").await;
    app.tick().await;
    app.tick().await;
    assert_eq!(app.rollout(&staged).await["state"], "completed");
    for _ in 0..3 {
        app.tick().await;
    }
    assert_eq!(app.count("/api/v1/rollouts?environment=prod").await, 0);
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=200", None).await.body;
    let refused: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "setting.pipeline_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{audit}");
    let error = refused[0]["details"]["outcome"]["error"].as_str().unwrap();
    assert!(error.contains("is disabled in prod"), "{error}");
}
