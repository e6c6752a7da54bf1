//! Issue 19, item 2: roles. A person's (admin-kind) token holds roles, each in some
//! environments: viewer reads, editor changes flags, segments and plans, releaser starts and
//! commands rollouts, approver approves and signs, admin does everything. Nobody grants a role
//! they do not hold; every refusal names the role it needed.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, TestApp, spawn_app};

/// A person's token minted by the bootstrap admin: `roles` as the API takes them.
async fn person(app: &TestApp, name: &str, envs: &[&str], roles: Value) -> String {
    let body = json!({"kind": "admin", "environments": envs, "principal": name, "roles": roles});
    let r = app.mint(ADMIN, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

fn refused(r: &crate::support::Reply, role: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let msg = r.body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("needs the {role} role")), "{msg}");
}

fn flag_off_in(env: &str) -> Value {
    let mut f = json!({"variants": {"on": true, "off": false}, "default": "off",
        "environments": {"prod": {"enabled": true}, "staging": {"enabled": true}}});
    f["environments"][env]["enabled"] = json!(false);
    f
}

#[tokio::test]
async fn each_role_opens_its_own_operations_in_its_own_environments() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["checkout", "search"])).await;
    // Erin edits in staging and only reads prod.
    let erin = person(
        &app,
        "erin",
        &["prod", "staging"],
        json!([{"role": "editor", "environments": ["staging"]}, {"role": "viewer", "environments": ["prod"]}]),
    )
    .await;
    let put = |env: &str| (Method::PUT, "/api/v1/flags/checkout", Some(flag_off_in(env)));
    let (m, path, body) = put("staging");
    let r = app.call(m, path, Some(&erin), body).await;
    assert_eq!(r.status, StatusCode::OK, "editor in staging: {:?}", r.body);
    let (m, path, body) = put("prod");
    let r = app.call(m, path, Some(&erin), body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a viewer of prod: {:?}", r.body);
    let r = app.call(Method::GET, "/api/v1/flags/checkout", Some(&erin), None).await;
    assert_eq!(r.status, StatusCode::OK, "every role reads");
    let who = app.call(Method::GET, "/api/v1/whoami", Some(&erin), None).await.body;
    assert_eq!(who["roles"][0], json!({"role": "editor", "environments": ["staging"]}));
    assert_eq!(who["can_command"], false, "an editor commands no rollout");

    // A plan in prod (erin may not write it there), started by rita the releaser, approved by
    // abe the approver.
    let plan = Plan::new("p", "search")
        .owners("{ requester: rita, approvers: [abe] }")
        .waves(&["{ exposure: 20%, promotion: approval }", "{ exposure: 100% }"]);
    let r = app.post_plan_as(&erin, &plan.to_string()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(app.post_plan(&plan.to_string()).await.status, StatusCode::CREATED);
    let rita = person(&app, "rita", &["*"], json!([{"role": "releaser"}])).await;
    let abe = person(&app, "abe", &["*"], json!([{"role": "approver"}])).await;
    let who = app.call(Method::GET, "/api/v1/whoami", Some(&rita), None).await.body;
    assert_eq!(who["can_command"], true);
    // Abe may not start it, erin neither; rita may.
    let start = json!({"plan": "p"});
    let r = app.call(Method::POST, "/api/v1/rollouts", Some(&abe), Some(start.clone())).await;
    refused(&r, "releaser");
    let r = app.call(Method::POST, "/api/v1/rollouts", Some(&erin), Some(start.clone())).await;
    refused(&r, "releaser");
    let r = app.call(Method::POST, "/api/v1/rollouts", Some(&rita), Some(start)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Rita may not approve (the approver's), abe may not pause (the releaser's).
    let approve = format!("/api/v1/rollouts/{id}/approve");
    let r = app.call(Method::POST, &approve, Some(&rita), Some(json!({}))).await;
    refused(&r, "approver");
    let pause = format!("/api/v1/rollouts/{id}/pause");
    let r = app.call(Method::POST, &pause, Some(&abe), Some(json!({"reason": "x"}))).await;
    refused(&r, "releaser");
    let r = app.call(Method::POST, &approve, Some(&abe), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.tick().await;
    assert_eq!(app.rollout(&id).await["wave"], 2, "abe's approval promoted it");
    let r = app.call(Method::POST, &pause, Some(&rita), Some(json!({"reason": "look"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // A person's token posts no events (they feed the guardrails): only the admin role does.
    let events = json!({"events": [{"type": "exposure", "flag": "search", "variant": "on",
        "context": {"targetingKey": "u1"}}]});
    let r = app
        .raw(
            Method::POST,
            "/api/v1/events",
            Some(&rita),
            &[("content-type", "application/json"), ("x-wavegate-environment", "prod")],
            serde_json::to_vec(&events).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // Tokens, environments and the freeze are the admin's.
    let r =
        app.call(Method::PUT, "/api/v1/freeze", Some(&rita), Some(json!({"reason": "x"}))).await;
    refused(&r, "admin");
    let r = app
        .call(Method::POST, "/api/v1/environments", Some(&erin), Some(json!({"name": "qa"})))
        .await;
    refused(&r, "admin");
}

#[tokio::test]
async fn nobody_grants_a_role_they_do_not_hold() {
    let app = spawn_app().await;
    let erin = person(&app, "erin", &["prod", "staging"], json!([{"role": "editor"}])).await;
    let mint = |roles: Value, envs: &[&str]| json!({"kind": "admin", "environments": envs, "roles": roles, "expires_at": "2030-01-01T00:00:00Z"});
    // More than she holds: refused, naming the role and where.
    let r = app.mint(&erin, mint(json!([{"role": "releaser"}]), &["staging"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("may not grant the releaser role in staging"), "{msg}");
    let r = app.mint(&erin, mint(json!([{"role": "admin"}]), &["prod"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // What she holds, or less, for her own scripts: granted.
    let r = app.mint(&erin, mint(json!([{"role": "viewer"}]), &["prod"])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["roles"], json!([{"role": "viewer", "environments": ["prod"]}]));
    // Without roles: hers, within the new token's environments.
    let r = app.mint(&erin, json!({"kind": "admin", "environments": ["staging"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["roles"], json!([{"role": "editor", "environments": ["staging"]}]));
    let own = r.body["id"].as_str().unwrap().to_owned();
    // SDK tokens are the admin's to mint.
    let r = app.mint(&erin, json!({"kind": "server-sdk", "environments": ["prod"]})).await;
    refused(&r, "admin");
    // Malformed grants say where.
    for (roles, field) in [
        (json!([{"role": "owner"}]), "roles[0].role"),
        (json!([{"role": "viewer", "environments": ["dev"]}]), "roles[0].environments"),
        (json!([]), "roles"),
    ] {
        let r = app.mint(&erin, mint(roles, &["prod"])).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert_eq!(r.body["field"], field, "{:?}", r.body);
    }
    let r = app
        .mint(
            ADMIN,
            json!({"kind": "client-sdk", "environments": ["prod"], "roles": [{"role": "viewer"}]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("roles"))
    );

    // She lists and revokes her own tokens, nobody else's.
    let list = app.call(Method::GET, "/api/v1/tokens", Some(&erin), None).await.body;
    let mine = |t: &Value| t["principal"] == "erin" || t["created_by"] == "erin";
    let list = list.as_array().unwrap();
    assert!(list.len() == 3 && list.iter().all(mine), "{list:?}");
    let r = app.call(Method::DELETE, &format!("/api/v1/tokens/{own}"), Some(&erin), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let all = app.admin(Method::GET, "/api/v1/tokens", None).await.body;
    let root = all.as_array().unwrap().iter().find(|t| t["principal"] == "admin").unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", root["id"].as_str().unwrap()),
            Some(&erin),
            None,
        )
        .await;
    refused(&r, "admin");
    // The audit entry of each mint records the roles granted.
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=500", None).await.body;
    let granted = audit.as_array().unwrap().iter().filter(|e| e["action"] == "token.create");
    assert!(granted.clone().any(|e| e["details"]["roles"] == json!([{"role": "viewer", "environments": ["prod"]}])));
}
