//! What environment-scoped tokens may do and see (issue 16, "Scopes"): regressions for the gaps
//! an outside review found. Which route answers which token is the matrix's (`authz.rs`); these
//! follow a finding through to its effect (the flag still archived, the schedule still pending,
//! what an answer holds).

use axum::http::{Method, StatusCode as S};
use serde_json::{Value, json};

use crate::support::{ADMIN, TestApp, spawn_app};

/// An admin token for `envs` with its own principal.
async fn admin_for(app: &TestApp, principal: &str, envs: &[&str]) -> String {
    let body = json!({"kind": "admin", "environments": envs, "principal": principal});
    let r = app.mint(ADMIN, body).await;
    assert_eq!(r.status, S::CREATED, "{:?}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

fn simple_flag() -> Value {
    json!({"variants": {"on": true, "off": false}, "default": "off",
           "environments": {"prod": {"enabled": true}, "staging": {"enabled": true}}})
}

async fn archived(app: &TestApp, key: &str) -> bool {
    let r = app.admin(Method::GET, &format!("/api/v1/flags/{key}"), None).await;
    r.body["archived"].as_bool().unwrap()
}

// See: issue 16, item 3.
#[tokio::test]
async fn issue_16_3_archiving_through_any_route_needs_every_environment() {
    let app = spawn_app().await;
    let prod = admin_for(&app, "prod-lead", &["prod"]).await;
    let flag = "/api/v1/flags/paywall";
    assert_eq!(app.admin(Method::PUT, flag, Some(simple_flag())).await.status, S::CREATED);
    app.admin(Method::POST, &format!("{flag}/archive"), None).await; // v2, archived
    assert!(archived(&app, "paywall").await);

    // Putting the same content back would serve it again in every environment.
    let r = app.call(Method::PUT, flag, Some(&prod), Some(simple_flag())).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("unarchives"), "{:?}", r.body);
    // So would a flag file naming it.
    let file = json!({"flags": {"paywall": simple_flag()}});
    let r = app.call(Method::POST, "/api/v1/apply", Some(&prod), Some(file)).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    // And a revert to a version that was live.
    let r = app
        .call(Method::POST, &format!("{flag}/revert"), Some(&prod), Some(json!({"version": 1})))
        .await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert!(archived(&app, "paywall").await, "still archived");

    // Live again (v3): a revert to the archived version would take it away everywhere.
    app.admin(Method::POST, &format!("{flag}/unarchive"), None).await;
    let r = app
        .call(Method::POST, &format!("{flag}/revert"), Some(&prod), Some(json!({"version": 2})))
        .await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("archives"), "{:?}", r.body);
    assert!(!archived(&app, "paywall").await, "still served");

    // What the token may do stays allowed: its own environment of a live flag.
    let mut change = simple_flag();
    change["environments"]["prod"]["enabled"] = json!(false);
    let r = app.call(Method::PUT, flag, Some(&prod), Some(change)).await;
    assert_eq!(r.status, S::OK, "{:?}", r.body);
    let r = app
        .call(Method::POST, &format!("{flag}/revert"), Some(&prod), Some(json!({"version": 3})))
        .await;
    assert_eq!(r.status, S::OK, "{:?}", r.body);
    // And the all-environment admin may still bring an archived flag back by putting it.
    app.admin(Method::POST, &format!("{flag}/archive"), None).await;
    assert_eq!(app.admin(Method::PUT, flag, Some(simple_flag())).await.status, S::OK);
    assert!(!archived(&app, "paywall").await);
}
