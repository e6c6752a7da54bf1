//! The go/no-go scorecard: a declared one blocks the start and promotions at `max_red`,
//! naming the items; waivers need a reason and count green; automatic items follow their
//! checks; a plan without one only warns.

use axum::http::{Method, StatusCode};
use serde_json::json;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, TestApp, spawn_app};

/// A declared scorecard of three items (`rollback-tested` automatic), at most two not green.
const SCORECARD: &str = "scorecard:\n  max_red: 2\n  items: [{ key: baseline }, { key: communications }, { key: rollback-tested }]\n";

async fn post_plan(app: &TestApp, plan: Plan) {
    let r = app.post_plan(&plan.to_string()).await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

/// Sets an item as carol, an admin who neither requested, applied nor started the plan
/// (separation of duties: `duties.rs`).
async fn set(app: &TestApp, item: &str, body: serde_json::Value) -> crate::support::Reply {
    let r = app
        .mint(ADMIN, json!({"kind": "admin", "environments": ["*"], "principal": "carol"}))
        .await;
    let carol = r.body["token"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/plans/p1/scorecard/{item}");
    app.call(Method::PUT, &path, Some(&carol), Some(body)).await
}

#[tokio::test]
async fn a_declared_scorecard_gates_start_and_promotion() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    let plan = Plan::new("p1", "checkout").owners("{ requester: alice }").section(SCORECARD);
    post_plan(&app, plan).await;
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
    assert_eq!(r.body["items"][1]["by"], "carol");
    assert_eq!(
        r.body["items"][1]["note"], "internal tool, no announcement",
        "a waiver keeps its reason"
    );

    // Started by dave: neither he nor whom he issued tokens to may sign from now on.
    let dave =
        app.mint(ADMIN, json!({"kind": "admin", "environments": ["*"], "principal": "dave"})).await;
    let dave = dave.body["token"].as_str().unwrap().to_owned();
    let start = json!({"plan": "p1"});
    let r = app.call(Method::POST, "/api/v1/rollouts", Some(&dave), Some(start)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // Red again: promotion holds in `no_go`, with one audit entry naming the items.
    set(&app, "baseline", json!({"status": "red", "note": "baseline moved"})).await;
    for _ in 0..2 {
        app.tick().await;
    }
    let status = app.rollout(&id).await;
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
    let r = set(&app, "baseline", json!({"status": "green", "note": "re-measured"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["wave"], 2, "{status}");
}

#[tokio::test]
async fn without_a_scorecard_section_the_seven_defaults_only_warn() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    post_plan(&app, Plan::new("p1", "checkout")).await;
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
    let release = |name: &str| Plan::new(name, "checkout").release("version: 2.0.0, risk: low");
    post_plan(&app, release("p1").section("promotion_path: [staging]\n")).await;
    post_plan(&app, release("stg").environment("staging")).await;
    let bad =
        app.post_plan(&release("p9").section("promotion_path: [nowhere]\n").to_string()).await;
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
        app.tick().await;
    }
    let st = app.rollout(&sid).await;
    assert_eq!(st["state"], "completed", "{st}");
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// A rollout that completes and holds clean for the plan's settle time marks its flag stale,
/// once, with an audit entry that notification targets hear as `stale`.
#[tokio::test]
async fn completed_rollouts_mark_their_flag_stale_after_settling() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    post_plan(&app, Plan::new("p1", "checkout").section("settle: 2h\n")).await;
    let id = app.start("p1").await;
    for _ in 0..2 {
        app.tick().await;
    }
    let st = app.rollout(&id).await;
    assert_eq!(st["state"], "completed");
    app.clock.advance(chrono::Duration::minutes(90));
    app.tick().await;
    assert_eq!(stale_flags(&app).await, json!([]), "not yet settled");
    app.clock.advance(chrono::Duration::minutes(31));
    app.tick().await;
    app.tick().await;
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
    assert_eq!(app.count("/api/v1/flags").await, 1);
}

async fn stale_flags(app: &TestApp) -> serde_json::Value {
    app.admin(Method::GET, "/api/v1/flags?stale=true", None).await.body
}
