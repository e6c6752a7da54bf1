//! The go/no-go scorecard: a declared one blocks the start and promotions at `max_red`,
//! naming the items; waivers need a reason and count green; automatic items follow their
//! checks; a plan without one only warns.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN, TestApp, spawn_app};

const FLAG: &str = "flags:\n  checkout:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      prod: { enabled: true }\n";

const PLAN: &str = r#"name: p1
release: { name: checkout, version: 1.0.0, risk: low }
flag: checkout
new_variant: "on"
control_variant: "off"
environment: prod
owners: { requester: admin }
scorecard:
  max_red: 2
  items: [{ key: baseline }, { key: communications }, { key: rollback-tested }]
waves:
  - { exposure: 20% }
  - { exposure: 100% }
"#;

async fn plan(app: &TestApp, text: &str) {
    let r = app
        .raw(
            Method::POST,
            "/api/v1/plans",
            Some(ADMIN),
            &[("content-type", "application/yaml")],
            text.as_bytes().to_vec(),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

async fn set(app: &TestApp, item: &str, body: serde_json::Value) -> crate::support::Reply {
    app.admin(Method::PUT, &format!("/api/v1/plans/p1/scorecard/{item}"), Some(body)).await
}

#[tokio::test]
async fn a_declared_scorecard_gates_start_and_promotion() {
    let app = spawn_app().await;
    app.apply_yaml(FLAG).await;
    plan(&app, PLAN).await;
    let card = app.admin(Method::GET, "/api/v1/plans/p1/scorecard", None).await.body;
    assert_eq!(
        (card["declared"].clone(), card["not_green"].clone(), card["go"].clone()),
        (json!(true), json!(3), json!(false))
    );
    assert_eq!(card["items"][2]["automatic"], true);
    assert!(card["items"][2]["note"].as_str().unwrap().contains("no passing drill"), "{card}");

    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("baseline (unset)") && msg.contains("rollback-tested (red)"), "{msg}");

    // Bad input says what is wrong.
    assert_eq!(
        set(&app, "communications", json!({"status": "waived"})).await.body["field"],
        "note"
    );
    assert_eq!(set(&app, "baseline", json!({"status": "purple"})).await.body["field"], "status");
    assert_eq!(set(&app, "nope", json!({"status": "green"})).await.status, StatusCode::NOT_FOUND);
    let auto = set(&app, "rollback-tested", json!({"status": "green"})).await;
    assert!(auto.body["message"].as_str().unwrap().contains("only be waived"), "{:?}", auto.body);

    assert_eq!(
        set(&app, "baseline", json!({"status": "green", "note": "https://wiki/baseline"}))
            .await
            .status,
        StatusCode::OK
    );
    let r = set(
        &app,
        "communications",
        json!({"status": "waived", "note": "internal tool, no announcement"}),
    )
    .await;
    assert_eq!((r.body["not_green"].clone(), r.body["go"].clone()), (json!(1), json!(true)));
    assert_eq!(r.body["items"][1]["by"], "admin");
    assert_eq!(
        r.body["items"][1]["note"], "internal tool, no announcement",
        "a waiver keeps its reason"
    );

    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Red again: promotion holds in `no_go`, with one audit entry naming the items.
    set(&app, "baseline", json!({"status": "red", "note": "baseline moved"})).await;
    for _ in 0..2 {
        wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    }
    let status = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body;
    assert_eq!(
        (status["wave"].clone(), status["phase"].clone()),
        (json!(1), json!("no_go")),
        "{status}"
    );
    assert_eq!(status["scorecard"]["blocks"], true);
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=50", None).await.body;
    let holds = audit.as_array().unwrap().iter().filter(|e| e["action"] == "rollout.hold").count();
    assert_eq!(holds, 1, "{audit}");
    // Green: the next tick promotes.
    set(&app, "baseline", json!({"status": "green", "note": "re-measured"})).await;
    wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    let status = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body;
    assert_eq!(status["wave"], 2, "{status}");
}

#[tokio::test]
async fn without_a_scorecard_section_the_seven_defaults_only_warn() {
    let app = spawn_app().await;
    app.apply_yaml(FLAG).await;
    let undeclared = PLAN.replace("scorecard:\n  max_red: 2\n  items: [{ key: baseline }, { key: communications }, { key: rollback-tested }]\n", "");
    plan(&app, &undeclared).await;
    let card = app.admin(Method::GET, "/api/v1/plans/p1/scorecard", None).await.body;
    assert_eq!((card["declared"].clone(), card["blocks"].clone()), (json!(false), json!(false)));
    assert_eq!(card["items"].as_array().unwrap().len(), 7);
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// The promotion path: a release starts in prod only after it completed in staging.
#[tokio::test]
async fn the_promotion_path_requires_earlier_environments_to_complete() {
    let app = spawn_app().await;
    let flag = "flags:\n  checkout:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      staging: { enabled: true }\n      prod: { enabled: true }\n";
    app.apply_yaml(flag).await;
    let body = |name: &str, env: &str, path: &str| {
        format!(
            "name: {name}\nrelease: {{ name: checkout, version: 2.0.0, risk: low }}\nflag: checkout\nnew_variant: \"on\"\ncontrol_variant: \"off\"\nenvironment: {env}\nowners: {{ requester: admin }}\n{path}waves:\n  - {{ exposure: 20% }}\n  - {{ exposure: 100% }}\n"
        )
    };
    plan(&app, &body("p1", "prod", "promotion_path: [staging]\n")).await;
    plan(&app, &body("stg", "staging", "")).await;
    let bad = app
        .raw(
            Method::POST,
            "/api/v1/plans",
            Some(ADMIN),
            &[("content-type", "application/yaml")],
            body("p9", "prod", "promotion_path: [nowhere]\n").into_bytes(),
        )
        .await;
    assert_eq!(bad.body["field"], "promotion_path[0]", "{:?}", bad.body);
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body["message"].as_str().unwrap().contains("has not completed in staging"),
        "{:?}",
        r.body
    );
    let s = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "stg"}))).await;
    let sid = s.body["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    }
    let st = app.admin(Method::GET, &format!("/api/v1/rollouts/{sid}"), None).await.body;
    assert_eq!(st["state"], "completed", "{st}");
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// A rollout that completes and holds clean for the plan's settle time marks its flag stale,
/// once, with an audit entry that notification targets hear as `stale`.
#[tokio::test]
async fn completed_rollouts_mark_their_flag_stale_after_settling() {
    let app = spawn_app().await;
    app.apply_yaml(FLAG).await;
    let text = "name: p1\nrelease: { name: checkout, version: 1.0.0, risk: low }\nflag: checkout\nnew_variant: \"on\"\ncontrol_variant: \"off\"\nenvironment: prod\nowners: { requester: admin }\nsettle: 2h\nwaves:\n  - { exposure: 20% }\n  - { exposure: 100% }\n";
    plan(&app, text).await;
    let id =
        app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await.body["id"]
            .as_str()
            .unwrap()
            .to_owned();
    for _ in 0..2 {
        wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    }
    let st = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body;
    assert_eq!(st["state"], "completed");
    app.clock.advance(chrono::Duration::minutes(90));
    wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    assert_eq!(stale_flags(&app).await, json!([]), "not yet settled");
    app.clock.advance(chrono::Duration::minutes(31));
    wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    let list = stale_flags(&app).await;
    assert_eq!(list[0]["key"], "checkout", "{list}");
    assert_eq!(list[0]["stale"]["rollout"], id.as_str());
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=100", None).await.body;
    let marks = audit.as_array().unwrap().iter().filter(|e| e["action"] == "rollout.stale").count();
    assert_eq!(marks, 1, "marked once");
    let report = app
        .admin(Method::GET, &format!("/api/v1/rollouts/{id}/report?format=markdown"), None)
        .await;
    assert!(
        report.body.as_str().unwrap().contains("Flag `checkout` is stale since"),
        "{:?}",
        report.body
    );
    assert_eq!(
        app.admin(Method::GET, "/api/v1/flags", None).await.body.as_array().unwrap().len(),
        1
    );
}

async fn stale_flags(app: &TestApp) -> serde_json::Value {
    app.admin(Method::GET, "/api/v1/flags?stale=true", None).await.body
}
