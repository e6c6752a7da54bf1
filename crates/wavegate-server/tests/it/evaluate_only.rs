//! Issue 16, item 13 (in part): an evaluation-only server-sdk token reads and evaluates flags
//! like any server-sdk token but cannot post the events and Unleash metrics that drive a
//! rollout's guardrails; server-sdk tokens keep posting by default, each within its budget of
//! events a second.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN, FLAGS, spawn_app};

#[tokio::test]
async fn an_evaluation_only_token_evaluates_but_posts_nothing() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let body = json!({"kind": "server-sdk", "environments": ["prod"], "evaluate_only": true});
    let r = app.mint(ADMIN, body).await;
    assert_eq!((r.status, r.body["evaluate_only"].clone()), (StatusCode::CREATED, json!(true)));
    let quiet = r.body["token"].as_str().unwrap().to_owned();
    let poster = app.token("server-sdk", &["prod"]).await;

    let ctx = json!({"targetingKey": "u1"});
    assert_eq!(app.ofrep(&quiet, "banner-color", ctx).await.status, StatusCode::OK);
    let r = app.call(Method::GET, "/api/v1/flags", Some(&quiet), None).await;
    assert_eq!(r.status, StatusCode::OK, "it reads flags: {:?}", r.body);
    let r = app.call(Method::GET, "/api/client/features", Some(&quiet), None).await;
    assert_eq!(r.status, StatusCode::OK, "Unleash server SDKs fetch with it");

    let events = json!({"events": []});
    let r = app.call(Method::POST, "/api/v1/events", Some(&quiet), Some(events.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("evaluates only"), "{:?}", r.body);
    let r = app.call(Method::POST, "/api/v1/events", Some(&poster), Some(events)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "a server-sdk token posts by default");
    let metrics = json!({"appName": "a", "instanceId": "i", "bucket": {"start": "2026-01-01T00:00:00Z",
        "stop": "2026-01-01T00:01:00Z", "toggles": {"banner-color": {"yes": 5, "no": 1}}}});
    let r =
        app.call(Method::POST, "/api/client/metrics", Some(&quiet), Some(metrics.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app.call(Method::POST, "/api/client/metrics", Some(&poster), Some(metrics)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);

    // Only a server-sdk token can be made evaluation-only.
    for kind in ["admin", "client-sdk"] {
        let body = json!({"kind": kind, "environments": ["prod"], "evaluate_only": true});
        let r = app.mint(ADMIN, body).await;
        assert_eq!(
            (r.status, r.body["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("evaluate_only"))
        );
    }
    let list = app.admin(Method::GET, "/api/v1/tokens", None).await.body;
    let flagged = list.as_array().unwrap().iter().filter(|t| t["evaluate_only"] == true).count();
    assert_eq!(flagged, 1);
}

#[tokio::test]
async fn each_token_posts_within_its_budget_of_events_a_second() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    app.state.routing.event_budget.set(5); // a bucket of 50
    let (a, b) =
        (app.token("server-sdk", &["prod"]).await, app.token("server-sdk", &["prod"]).await);
    let batch = |n: usize| {
        let e = json!({"type": "exposure", "flag": "banner-color", "variant": "red", "context": {"targetingKey": "u1"}});
        json!({"events": vec![e; n]})
    };
    let post = async |token: &str, n| {
        app.call(Method::POST, "/api/v1/events", Some(token), Some(batch(n))).await
    };
    assert_eq!(post(&a, 50).await.status, StatusCode::ACCEPTED, "a burst of ten seconds' worth");
    let r = post(&a, 5).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "1", "one second brings five back");
    assert_eq!(post(&b, 50).await.status, StatusCode::ACCEPTED, "another token has its own");
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(post(&a, 5).await.status, StatusCode::ACCEPTED);
    let r = post(&a, 1).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
    );
}

/// Issue 19, item 2 (in part): a token may expire (a person's token for their own scripts);
/// after `expires_at` it is refused like a revoked one, on the admin API and on OFREP, and the
/// list says so. An expiring admin token keeps no lasting way in.
#[tokio::test]
async fn tokens_expire() {
    use wavegate_server::clock::Clock as _;
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let at = |hours: i64| (app.clock.now() + chrono::Duration::hours(hours)).to_rfc3339();
    for bad in [json!("tomorrow"), json!(at(-1)), json!(at(24 * 366 * 6))] {
        let body = json!({"kind": "admin", "environments": ["*"], "expires_at": bad});
        let r = app.mint(ADMIN, body).await;
        assert_eq!(
            (r.status, r.body["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("expires_at")),
            "{bad}: {:?}",
            r.body
        );
    }
    let body = json!({"kind": "admin", "environments": ["*"], "expires_at": at(1)});
    let r = app.mint(ADMIN, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["expires_at"].is_string(), "{:?}", r.body);
    let (brief, id) =
        (r.body["token"].as_str().unwrap().to_owned(), r.body["id"].as_str().unwrap().to_owned());
    let client = json!({"kind": "client-sdk", "environments": ["prod"], "expires_at": at(1)});
    let client = app.mint(ADMIN, client).await.body["token"].as_str().unwrap().to_owned();
    let ctx = json!({"targetingKey": "u1"});
    assert_eq!(
        app.call(Method::GET, "/api/v1/flags", Some(&brief), None).await.status,
        StatusCode::OK
    );
    assert_eq!(app.ofrep(&client, "banner-color", ctx.clone()).await.status, StatusCode::OK);

    app.clock.advance(chrono::Duration::hours(2));
    let r = app.call(Method::GET, "/api/v1/flags", Some(&brief), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["message"].as_str().unwrap().contains("expired"), "{:?}", r.body);
    assert_eq!(app.ofrep(&client, "banner-color", ctx).await.status, StatusCode::UNAUTHORIZED);
    let list = app.admin(Method::GET, "/api/v1/tokens", None).await.body;
    let listed = list.as_array().unwrap().iter().find(|t| t["id"] == json!(id)).unwrap();
    assert!(listed["expires_at"].is_string(), "{listed}");
}
