//! A watch after 100% (issue 18 item 5), through the router with the controller ticked by
//! hand: the last wave keeps a holdback on the control variant, the rollout watches in phase
//! `watching`, a late regression rolls it back, and the end releases the holdback (audited).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::on_off;

use crate::support::{TestApp, errors_plan, spawn_app};

fn plan() -> String {
    errors_plan(
        &["{ exposure: 20% }", "{ exposure: 100% }"],
        "watch: { for: 1h, holdback: 10% }
",
    )
}

/// Users `users` evaluate over OFREP and report outcomes (stamped with the flag version);
/// those served the new variant fail when `fail_new`. Returns how many were served "on".
pub(crate) async fn traffic(app: &TestApp, users: std::ops::Range<usize>, fail_new: bool) -> usize {
    let client = app.token("client-sdk", &["prod"]).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut events = Vec::new();
    let mut on = 0;
    for i in users {
        let key = format!("user-{i}");
        let r = app.ofrep(&client, "checkout", json!({"targetingKey": key})).await;
        let variant = r.body["variant"].as_str().unwrap().to_owned();
        on += usize::from(variant == "on");
        events.push(json!({"type": "exposure", "flag": "checkout", "variant": variant,
            "context": {"targetingKey": key}, "version": r.body["metadata"]["version"]}));
        events.push(json!({"type": "outcome", "flag": "checkout", "variant": variant,
            "context": {"targetingKey": key}, "version": r.body["metadata"]["version"],
            "error": fail_new && variant == "on"}));
    }
    let r =
        app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(json!({"events": events}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    on
}

async fn rollout_rule(app: &TestApp) -> Value {
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    flag["spec"]["environments"]["prod"]["rules"][0].clone()
}

async fn audited(app: &TestApp, action: &str) -> bool {
    let log = app.admin(Method::GET, "/api/v1/audit?limit=200", None).await.body;
    log.as_array().unwrap().iter().any(|e| e["action"] == action)
}

/// Starts the rollout and drives it to the watch.
async fn watching(app: &TestApp) -> String {
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let id = app.start("p").await;
    traffic(app, 0..400, false).await;
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["wave"], 2, "{status}");
    // The last wave serves 90%: the holdback stays on control.
    assert_eq!(rollout_rule(app).await["split"], json!({"on": "90%", "off": "10%"}));
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(
        (status["state"].clone(), status["phase"].clone()),
        (json!("running"), json!("watching")),
        "{status}"
    );
    assert!(audited(app, "rollout.watch").await);
    assert_eq!(status["exposure"], "90%", "the status says what is served: {status}");
    id
}

#[tokio::test]
async fn the_watch_releases_the_holdback_at_its_end() {
    let app = spawn_app().await;
    let id = watching(&app).await;
    let on = traffic(&app, 1000..1600, false).await;
    assert!((480..=600).contains(&on), "about 90% served the new variant: {on}");
    app.clock.advance(chrono::Duration::minutes(30));
    app.tick().await;
    assert_eq!(app.rollout(&id).await["phase"], "watching", "half way through");
    app.clock.advance(chrono::Duration::minutes(31));
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(
        (status["state"].clone(), status["exposure"].clone()),
        (json!("completed"), json!("100%")),
        "{status}"
    );
    assert!(audited(&app, "rollout.release").await);
    assert_eq!(rollout_rule(&app).await["split"], json!({"on": "100%", "off": "0%"}));
    // The watch's traffic was judged apart from the last wave's.
    let watch = app.state.store.aggregates(&id, 2, &[]).await.unwrap();
    let n: f64 = watch.iter().filter(|a| a.metric == "exposure").map(|a| a.n).sum();
    assert_eq!(n, 600.0, "{watch:?}");
}

#[tokio::test]
async fn a_late_regression_during_the_watch_rolls_back() {
    let app = spawn_app().await;
    let id = watching(&app).await;
    app.clock.advance(chrono::Duration::minutes(20));
    traffic(&app, 1000..2000, true).await;
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["state"], "rolled_back", "{status}");
    assert!(audited(&app, "rollout.rollback").await);
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert!(
        flag["spec"]["environments"]["prod"]["rules"].as_array().is_none_or(Vec::is_empty),
        "{flag}"
    );
}
