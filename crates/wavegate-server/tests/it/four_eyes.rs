//! Issue 16, item 7: four eyes without an identity provider. Issuing a token for another
//! principal is user administration (the bootstrap admin token holds it and grants it); a
//! requester cannot approve, sign off or waive for their own change through a token they issued,
//! directly or through a token they issued.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, TestApp, spawn_app};

/// Mints an admin token for all environments as `by`; the answer.
async fn admin_for(
    app: &TestApp,
    by: &str,
    principal: &str,
    user_admin: bool,
) -> (StatusCode, Value) {
    let body = json!({"kind": "admin", "environments": ["*"], "principal": principal, "user_admin": user_admin});
    let r = app.mint(by, body).await;
    (r.status, r.body)
}

fn secret(body: &Value) -> String {
    body["token"].as_str().unwrap_or_else(|| panic!("no token in {body}")).to_owned()
}

#[tokio::test]
async fn issuing_tokens_for_other_people_is_user_administration() {
    let app = spawn_app().await;
    let (status, alice) = admin_for(&app, ADMIN, "alice", false).await;
    assert_eq!(status, StatusCode::CREATED, "the bootstrap admin issues tokens for people");
    assert_eq!(alice["created_by"], "admin");
    let alice = secret(&alice);

    // An ordinary admin cannot mint a token in someone else's name (the bypass), nor grant
    // user administration, but mints its own SDK tokens as before.
    let (status, body) = admin_for(&app, &alice, "bob", false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("user administration"), "{body}");
    let (status, body) = admin_for(&app, &alice, "alice", true).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "granting needs it too: {body}");
    let sdk = json!({"kind": "server-sdk", "environments": ["prod"]});
    let r = app.mint(&alice, sdk).await;
    assert_eq!(
        (r.status, r.body["principal"].clone()),
        (StatusCode::CREATED, json!("alice-server-sdk"))
    );
    let named =
        json!({"kind": "client-sdk", "environments": ["prod"], "principal": "alice-client-sdk"});
    assert_eq!(app.mint(&alice, named).await.status, StatusCode::CREATED);
    let sdk_admin = json!({"kind": "server-sdk", "environments": ["prod"], "user_admin": true});
    assert_eq!(app.mint(ADMIN, sdk_admin).await.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Granted, it may: and the list says who issued what and who holds the capability.
    let (status, carol) = admin_for(&app, ADMIN, "carol", true).await;
    assert_eq!((status, carol["user_admin"].clone()), (StatusCode::CREATED, json!(true)));
    let (status, dave) = admin_for(&app, &secret(&carol), "dave", false).await;
    assert_eq!((status, dave["created_by"].clone()), (StatusCode::CREATED, json!("carol")));
    let list = app.admin(Method::GET, "/api/v1/tokens", None).await.body;
    let of =
        |p: &str| list.as_array().unwrap().iter().find(|t| t["principal"] == p).unwrap().clone();
    assert_eq!(
        (of("admin")["user_admin"].clone(), of("alice")["user_admin"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(of("dave")["created_by"], "carol");
}

#[tokio::test]
async fn a_requester_never_vouches_through_tokens_they_issued() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    let scorecard =
        "scorecard:\n  max_red: 1\n  items: [{ key: baseline }, { key: communications }]\n";
    let plan = Plan::new("p1", "checkout")
        .owners("{ requester: alice }")
        .section(scorecard)
        .waves(&["{ exposure: 10%, promotion: approval }", "{ exposure: 100% }"]);
    let r = app.post_plan(&plan.to_string()).await;
    assert!(r.status.is_success(), "{:?}", r.body);

    // Alice holds user administration (say she was trusted with onboarding) and requests.
    let alice = secret(&admin_for(&app, ADMIN, "alice", true).await.1);
    let bob = secret(&admin_for(&app, ADMIN, "bob", false).await.1);
    let (status, mallory) = admin_for(&app, &alice, "mallory", false).await;
    assert_eq!(status, StatusCode::CREATED);
    let mallory = secret(&mallory);
    let trent = secret(&admin_for(&app, &alice, "trent", true).await.1);
    let eve = secret(&admin_for(&app, &trent, "eve", false).await.1);

    // Scorecard sign-offs and waivers: not with tokens alice issued, at any remove.
    let item = |i: &str| format!("/api/v1/plans/p1/scorecard/{i}");
    let green = json!({"status": "green", "note": "https://wiki/baseline"});
    let waiver = json!({"status": "waived", "note": "internal only"});
    for (who, token) in [("mallory", &mallory), ("eve", &eve)] {
        for body in [&green, &waiver] {
            let r = app.call(Method::PUT, &item("baseline"), Some(token), Some(body.clone())).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {:?}", r.body);
            assert!(r.body["message"].as_str().unwrap().contains("\"alice\""), "{:?}", r.body);
        }
    }
    let red = json!({"status": "red", "note": "not yet"});
    let r = app.call(Method::PUT, &item("communications"), Some(&mallory), Some(red)).await;
    assert_eq!(r.status, StatusCode::OK, "anyone may raise red: {:?}", r.body);
    let r = app.call(Method::PUT, &item("baseline"), Some(&bob), Some(green)).await;
    assert_eq!(r.status, StatusCode::OK, "bob is independent: {:?}", r.body);
    let r = app.call(Method::PUT, &item("communications"), Some(&bob), Some(waiver)).await;
    assert_eq!((r.status, r.body["go"].clone()), (StatusCode::OK, json!(true)), "{:?}", r.body);

    // Approvals: the same.
    let r =
        app.call(Method::POST, "/api/v1/rollouts", Some(&alice), Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let approve = format!("/api/v1/rollouts/{}/approve", r.body["id"].as_str().unwrap());
    for (who, token) in [("alice", &alice), ("mallory", &mallory), ("eve", &eve)] {
        let r = app.call(Method::POST, &approve, Some(token), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {:?}", r.body);
    }
    let rollout = app.call(Method::POST, &approve, Some(&bob), None).await;
    assert_eq!(rollout.status, StatusCode::OK, "{:?}", rollout.body);
    let approvals: Vec<_> = rollout.body["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["principal"].clone())
        .collect();
    assert_eq!(approvals, [json!("bob")], "only bob's approval is on record");
}
