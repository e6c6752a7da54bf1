//! Issue 16, item 13: a leaked server-sdk token posting forged outcomes drove a production
//! rollout to an automatic rollback. Every aggregate now keeps the token that contributed it;
//! an admin sees who contributed (`GET …/contributions`) and can leave one token's
//! contributions out of the rollout's verdicts (`POST …/exclude`, audited), or count them again
//! (`…/include`). Idempotency keys are each token's own.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::on_off;

use crate::support::{ADMIN, TestApp, errors_plan, spawn_app};

/// Two waves behind the error-rate guardrail (rolls back), no approvals.
fn plan() -> String {
    errors_plan(&["{ exposure: 20% }", "{ exposure: 100% }"], "")
}

/// Who is served what: (user key, variant) for `user-{i}`, over OFREP.
async fn served(app: &TestApp, users: std::ops::Range<usize>) -> Vec<(String, String)> {
    let client = app.token("client-sdk", &["prod"]).await;
    let mut out = Vec::new();
    for i in users {
        let key = format!("user-{i}");
        let r = app.ofrep(&client, "checkout", json!({"targetingKey": key})).await;
        out.push((key, r.body["variant"].as_str().unwrap().to_owned()));
    }
    out
}

/// Outcomes for `users`: an error for each one `error` picks.
fn outcomes(users: &[(String, String)], error: impl Fn(&str) -> bool) -> Value {
    let events: Vec<Value> = users
        .iter()
        .map(|(key, variant)| {
            json!({"type": "outcome", "flag": "checkout", "variant": variant,
                "context": {"targetingKey": key}, "error": error(variant)})
        })
        .collect();
    json!({ "events": events })
}

/// A server-sdk token for prod, minted by the admin: (secret, id).
async fn sdk_token(app: &TestApp) -> (String, String) {
    let r = app.mint(ADMIN, json!({"kind": "server-sdk", "environments": ["prod"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (r.body["token"].as_str().unwrap().to_owned(), r.body["id"].as_str().unwrap().to_owned())
}

async fn post(app: &TestApp, token: &str, batch: Value, key: Option<&str>) -> Value {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    let body = serde_json::to_vec(&batch).unwrap();
    let r = app.raw(Method::POST, "/api/v1/events", Some(token), &headers, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body
}

/// A rollout whose treatment users a leaked token reports as failing (and an honest token as
/// fine); with `exclude`, the admin leaves the leaked token out before the controller decides.
/// The rollout's state after one tick.
async fn forged_rollout(exclude: bool) -> (TestApp, String, String, String) {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let (honest, _) = sdk_token(&app).await;
    let (leaked, leaked_id) = sdk_token(&app).await;
    let id = app.start("p").await;
    let users = served(&app, 0..400).await;
    assert!(users.iter().filter(|(_, v)| v == "on").count() >= 50, "enough treatment users");
    post(&app, &leaked, outcomes(&users, |v| v == "on"), None).await;
    post(&app, &honest, outcomes(&users, |_| false), None).await;
    if exclude {
        let r = app
            .admin(
                Method::POST,
                &format!("/api/v1/rollouts/{id}/exclude"),
                Some(json!({"token": leaked_id, "reason": "leaked in a public repo"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    app.tick().await;
    let state = app.rollout(&id).await["state"].as_str().unwrap().to_owned();
    (app, id, leaked_id, state)
}

#[tokio::test]
async fn forged_outcomes_roll_back_unless_their_token_is_excluded() {
    let (_, _, _, state) = forged_rollout(false).await;
    assert_eq!(state, "rolled_back", "the forged errors decide when they count");

    let (app, id, leaked_id, state) = forged_rollout(true).await;
    assert_eq!(state, "running", "left out, they decide nothing");
    let r = app.rollout(&id).await;
    assert_eq!(r["wave"], 2, "the honest outcomes passed wave 1: {r}");
    assert_eq!(r["excluded_tokens"][0]["token"], json!(leaked_id));
    assert_eq!(r["excluded_tokens"][0]["by"], json!("admin"));
    assert_eq!(r["excluded_tokens"][0]["reason"], json!("leaked in a public repo"));

    // Who contributed, the largest exposure count first: both tokens, the leaked one marked.
    let c = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/contributions"), None).await;
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    let tokens = c.body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{:?}", c.body);
    let leaked = tokens.iter().find(|t| t["token"] == json!(leaked_id)).unwrap();
    assert_eq!(
        (leaked["excluded"].clone(), leaked["kind"].clone()),
        (json!(true), json!("server-sdk"))
    );
    let errors: f64 = leaked["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metric"] == "error" && c["arm"] == "treatment" && c["wave"] == 1)
        .map(|c| c["n"].as_f64().unwrap())
        .sum();
    assert!(errors >= 50.0, "{leaked}");

    // Audited, with who, why and which token.
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=50", None).await.body;
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "rollout.exclude_token")
        .unwrap_or_else(|| panic!("no exclusion in {audit}"));
    assert_eq!(entry["actor"], "admin");
    assert_eq!(entry["details"]["token"], json!(leaked_id));

    // Included again (audited too); including twice is a conflict.
    let path = format!("/api/v1/rollouts/{id}/include");
    let r = app.admin(Method::POST, &path, Some(json!({"token": leaked_id}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["excluded_tokens"], json!([]));
    let r = app.admin(Method::POST, &path, Some(json!({"token": leaked_id}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
}

#[tokio::test]
async fn an_exclusion_is_asked_for_clearly() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let (sdk, sdk_id) = sdk_token(&app).await;
    let id = app.start("p").await;
    let path = format!("/api/v1/rollouts/{id}/exclude");
    for (body, field, says) in [
        (json!({"reason": "r"}), "token", "names a token"),
        (json!({"token": "  ", "reason": "r"}), "token", "names a token"),
        (json!({"token": sdk_id}), "reason", "need a reason"),
        (json!({"token": "tok_nosuch", "reason": "r"}), "token", "contributions lists"),
        (json!({"token": "t".repeat(65), "reason": "r"}), "token", "at most 64"),
    ] {
        let r = app.admin(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {:?}", r.body);
        assert_eq!(r.body["field"], field, "{body}: {:?}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains(says), "{body}: {:?}", r.body);
    }
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/rollouts/{id}/pause"),
            Some(json!({"reason": "r", "token": sdk_id})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("token"))
    );
    // Only admins exclude, and only admins see who contributed.
    let body = json!({"token": sdk_id, "reason": "r"});
    let r = app.call(Method::POST, &path, Some(&sdk), Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let contributions = format!("/api/v1/rollouts/{id}/contributions");
    let r = app.call(Method::GET, &contributions, Some(&sdk), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.admin(Method::POST, &path, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "a known token may be excluded before it posts");
    let r = app.admin(Method::POST, &path, Some(body)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("already excluded"), "{:?}", r.body);
}

#[tokio::test]
async fn idempotency_keys_are_each_tokens_own() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let (a, _) = sdk_token(&app).await;
    let (b, _) = sdk_token(&app).await;
    app.start("p").await;
    let users = served(&app, 0..10).await;
    let batch = outcomes(&users, |_| false);
    let first = post(&app, &a, batch.clone(), Some("batch-1")).await;
    assert_eq!((first["counted"].clone(), first["duplicate"].as_bool()), (json!(10), None));
    let again = post(&app, &a, batch.clone(), Some("batch-1")).await;
    assert_eq!(again["duplicate"], true, "a retry by the same token counts once");
    // Another token's batch with the same key is its own: a token that guesses keys cannot
    // swallow another's batches.
    let other = post(&app, &b, batch, Some("batch-1")).await;
    assert_eq!((other["counted"].clone(), other["duplicate"].as_bool()), (json!(10), None));
}
