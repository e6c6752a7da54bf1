//! Issue 19, item 3: separation of duties. The plan's requester, whoever started its rollout
//! and whoever applied the plan version may not approve its promotions, sign or waive its
//! scorecard items; an automatic item is waived only by an approver; approvals count distinct
//! people, not tokens. Each refusal names its rule.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, TestApp, spawn_app};

/// A person: an admin token for every environment, minted by the bootstrap admin.
async fn person(app: &TestApp, name: &str) -> String {
    let body = json!({"kind": "admin", "environments": ["*"], "principal": name});
    let r = app.mint(ADMIN, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

/// Plan `p` (requested by alice, approved by bob or carol, two approvals, a gated first wave,
/// a declared scorecard with the automatic `rollback-tested`), applied by pat.
async fn prepared(app: &TestApp) {
    app.apply_yaml(&on_off(&["checkout"])).await;
    let plan = Plan::new("p", "checkout")
        .owners("{ requester: alice, approvers: [bob, carol] }")
        .section("required_approvals: 2\n")
        .section(
            "scorecard:\n  max_red: 3\n  items: [{ key: baseline }, { key: rollback-tested }]\n",
        )
        .waves(&["{ exposure: 20%, promotion: approval }", "{ exposure: 100% }"]);
    let pat = person(app, "pat").await;
    let r = app.post_plan_as(&pat, &plan.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn refused(app: &TestApp, token: &str, method: Method, path: &str, body: Value, rule: &str) {
    let r = app.call(method, path, Some(token), Some(body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {:?}", r.body);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains(&format!("separation of duties (rule \"{rule}\")")), "{msg}");
}

#[tokio::test]
async fn the_people_behind_a_change_may_not_vouch_for_it() {
    let app = spawn_app().await;
    prepared(&app).await;
    let (alice, pat, sam) =
        (person(&app, "alice").await, person(&app, "pat").await, person(&app, "sam").await);
    let (bob, carol, dana) =
        (person(&app, "bob").await, person(&app, "carol").await, person(&app, "dana").await);
    let item = |i: &str| format!("/api/v1/plans/p/scorecard/{i}");
    let green = json!({"status": "green", "note": "https://wiki/baseline"});
    let waive = json!({"status": "waived", "note": "drilled by hand"});

    // Before the start: the requester and the plan's author.
    refused(&app, &alice, Method::PUT, &item("baseline"), green.clone(), "requester").await;
    refused(&app, &pat, Method::PUT, &item("baseline"), green.clone(), "plan-author").await;
    // An automatic item is waived by an approver only (dana may sign, not waive it).
    refused(&app, &dana, Method::PUT, &item("rollback-tested"), waive.clone(), "waiver-approver")
        .await;
    let r = app.call(Method::PUT, &item("rollback-tested"), Some(&bob), Some(waive)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Anyone may raise red, the requester too.
    let red = json!({"status": "red", "note": "baseline unclear"});
    let r = app.call(Method::PUT, &item("baseline"), Some(&alice), Some(red)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Sam starts the rollout; from then on he may not vouch either.
    let start = json!({"plan": "p"});
    let r = app.call(Method::POST, "/api/v1/rollouts", Some(&sam), Some(start)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    refused(&app, &sam, Method::PUT, &item("baseline"), green.clone(), "starter").await;
    let approve = format!("/api/v1/rollouts/{id}/approve");
    refused(&app, &alice, Method::POST, &approve, json!({}), "requester").await;
    refused(&app, &sam, Method::POST, &approve, json!({}), "starter").await;
    refused(&app, &pat, Method::POST, &approve, json!({}), "plan-author").await;
    let r = app.call(Method::PUT, &item("baseline"), Some(&dana), Some(green)).await;
    assert_eq!(r.status, StatusCode::OK, "dana is nobody behind the change: {:?}", r.body);

    // Two approvals are two people: bob's second token adds nothing.
    let r = app.call(Method::POST, &approve, Some(&bob), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let bob_again = person(&app, "bob").await;
    let r = app.call(Method::POST, &approve, Some(&bob_again), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("bob already approved"), "{:?}", r.body);
    app.tick().await;
    assert_eq!(app.rollout(&id).await["wave"], 1, "one person's approval of two needed");
    let r = app.call(Method::POST, &approve, Some(&carol), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.tick().await;
    assert_eq!(app.rollout(&id).await["wave"], 2, "two people approved");
}
