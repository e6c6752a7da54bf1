//! Deployment tooling gates (issue 23 item 3): the requests Argo Rollouts' `web` metric provider
//! and Flagger's webhooks send, answered go / wait / stop from a real rollout's state and
//! verdicts — before it starts, while it runs clean, and after a regression rolled it back.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::on_off;

use crate::support::{ADMIN, TestApp, errors_plan, spawn_app};
use crate::watch::traffic;

/// What Argo Rollouts' web provider sends: a GET with the template's headers.
async fn argo(app: &TestApp, token: &str, plan: &str) -> (StatusCode, Value) {
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let r =
        app.raw(Method::GET, &format!("/api/v1/gates/argo/{plan}"), None, &headers, vec![]).await;
    (r.status, r.body)
}

/// What Flagger sends to a webhook of type `hook`: `CanaryWebhookPayload`, the token in its
/// metadata (Flagger cannot send headers).
async fn flagger(
    app: &TestApp,
    plan: &str,
    hook: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut metadata = json!({"cluster": "eu-north-1"});
    if let Some(t) = token {
        metadata["token"] = json!(t);
    }
    let body = json!({"name": "podinfo", "namespace": "test", "phase": "Progressing",
        "checksum": "85d557f47b", "metadata": metadata});
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/gates/flagger/{plan}/{hook}"),
            None,
            &[("content-type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    (r.status, r.body)
}

#[tokio::test]
async fn argo_and_flagger_hear_go_wait_and_stop_from_a_real_rollout() {
    let app = spawn_app().await;
    app.prepare(
        &on_off(&["checkout"]),
        &errors_plan(&["{ exposure: 20%, hold: 1h }", "{ exposure: 100% }"], ""),
    )
    .await;
    let sdk = app.token("server-sdk", &["prod"]).await;

    // Before the flag's rollout starts: wait — confirm hooks hold, analysis hooks pass.
    let (status, body) = argo(&app, &sdk, "p").await;
    assert_eq!(
        (status, body["verdict"].clone(), body["go"].clone()),
        (StatusCode::OK, json!("wait"), json!(false)),
        "{body}"
    );
    assert_eq!(flagger(&app, "p", "confirm-rollout", Some(&sdk)).await.0, StatusCode::LOCKED);
    assert_eq!(flagger(&app, "p", "rollout", Some(&sdk)).await.0, StatusCode::OK);

    // Running clean: go.
    let id = app.start("p").await;
    traffic(&app, 0..300, false).await;
    app.tick().await;
    let (_, body) = argo(&app, &sdk, "p").await;
    assert_eq!(
        (body["verdict"].clone(), body["rollout"].clone()),
        (json!("go"), json!(id)),
        "{body}"
    );
    assert_eq!(body["guardrails"][0]["name"], "errors");
    let (status, body) = flagger(&app, "p", "confirm-promotion", Some(&sdk)).await;
    assert_eq!((status, body["verdict"].clone()), (StatusCode::OK, json!("go")));
    assert_eq!(
        flagger(&app, "p", "rollback", Some(&sdk)).await.0,
        StatusCode::CONFLICT,
        "no rollback needed"
    );

    // A regression rolls the flag back: stop — Argo's failureCondition holds, Flagger rolls back.
    traffic(&app, 1000..1600, true).await;
    app.tick().await;
    assert_eq!(app.rollout(&id).await["state"], "rolled_back");
    let (_, body) = argo(&app, &sdk, "p").await;
    assert_eq!(body["verdict"], "stop", "{body}");
    assert!(body["reason"].as_str().unwrap().contains("rolled back"), "{body}");
    assert_eq!(flagger(&app, "p", "rollback", Some(&sdk)).await.0, StatusCode::OK);
    assert_eq!(flagger(&app, "p", "rollout", Some(&sdk)).await.0, StatusCode::CONFLICT);
    assert_eq!(
        flagger(&app, "p", "confirm-traffic-increase", Some(&sdk)).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(flagger(&app, "p", "post-rollout", Some(&sdk)).await.0, StatusCode::OK);

    // The token: in the metadata, never in the URL; a client-sdk token may not ask.
    assert_eq!(flagger(&app, "p", "rollout", None).await.0, StatusCode::UNAUTHORIZED);
    let in_url = app
        .raw(
            Method::POST,
            &format!("/api/v1/gates/flagger/p/rollout?token={sdk}"),
            None,
            &[("content-type", "application/json")],
            br#"{"name": "podinfo", "namespace": "test"}"#.to_vec(),
        )
        .await;
    assert_eq!(in_url.status, StatusCode::UNAUTHORIZED, "a token in the URL is not read");
    let client = app.token("client-sdk", &["prod"]).await;
    assert_eq!(flagger(&app, "p", "rollout", Some(&client)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(argo(&app, &client, "p").await.0, StatusCode::FORBIDDEN);
    assert_eq!(flagger(&app, "p", "canary", Some(ADMIN)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(argo(&app, ADMIN, "nope").await.0, StatusCode::NOT_FOUND);
}
