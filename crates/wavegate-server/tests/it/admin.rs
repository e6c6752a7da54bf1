//! The admin API: versions, revert, diff, archive, validation, scope, audit, paths.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN, FLAGS, spawn_app};

#[tokio::test]
async fn flags_version_revert_and_diff() {
    let app = spawn_app().await;
    let v1 = json!({"variants": {"on": true, "off": false}, "default": "off", "environments": {"prod": {"enabled": true}}});
    let r = app.admin(Method::PUT, "/api/v1/flags/dark-mode", Some(v1.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["flag"]["version"], 1);
    let r = app.admin(Method::PUT, "/api/v1/flags/dark-mode", Some(v1.clone())).await;
    assert_eq!(
        (r.status, r.body["changed"].clone(), r.body["flag"]["version"].clone()),
        (StatusCode::OK, json!(false), json!(1))
    );

    let mut v2 = v1.clone();
    v2["environments"]["prod"]["enabled"] = json!(false);
    let r = app.call(Method::PUT, "/api/v1/flags/dark-mode", Some(ADMIN), Some(v2)).await;
    assert_eq!(r.body["flag"]["version"], 2);

    // Optimistic concurrency with If-Match.
    let r = app
        .raw(
            Method::PUT,
            "/api/v1/flags/dark-mode",
            Some(ADMIN),
            &[("if-match", "\"1\"")],
            serde_json::to_vec(&v1).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let d = app.admin(Method::GET, "/api/v1/flags/dark-mode/diff?from=1&to=2", None).await;
    let diff = d.body["diff"].as_str().unwrap();
    assert!(
        diff.contains("-        \"enabled\": true") && diff.contains("+        \"enabled\": false"),
        "{diff}"
    );

    let r = app
        .admin(
            Method::POST,
            "/api/v1/flags/dark-mode/revert",
            Some(json!({"version": 1, "reason": "back"})),
        )
        .await;
    assert_eq!(r.body["version"], 3, "{:?}", r.body);
    let versions = app.admin(Method::GET, "/api/v1/flags/dark-mode/versions", None).await.body;
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(
        versions[2]["spec"], versions[0]["spec"],
        "revert makes a new version equal to the old one"
    );
    assert_eq!(
        (versions[2]["action"].clone(), versions[2]["reason"].clone()),
        (json!("flag.revert"), json!("back"))
    );

    let r = app.admin(Method::POST, "/api/v1/flags/dark-mode/archive", None).await;
    assert_eq!(r.body["archived"], true);
    let t = app.token("client-sdk", &["prod"]).await;
    assert_eq!(app.ofrep(&t, "dark-mode", json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.admin(Method::GET, "/api/v1/flags", None).await.body, json!([]));
    assert_eq!(app.count("/api/v1/flags?archived=true").await, 1);
    app.admin(Method::POST, "/api/v1/flags/dark-mode/unarchive", None).await;
    assert_eq!(app.ofrep(&t, "dark-mode", json!({})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn applying_a_file_is_idempotent_and_atomic() {
    let app = spawn_app().await;
    let r = app.apply_yaml(FLAGS).await;
    assert_eq!((r.status, r.body["changed"].clone()), (StatusCode::OK, json!(6)), "{:?}", r.body);
    let rev = app.revision().await;
    let r = app.apply_yaml(FLAGS).await;
    assert_eq!((r.body["changed"].clone(), r.body["unchanged"].clone()), (json!(0), json!(6)));
    assert_eq!(app.revision().await, rev, "the same file twice makes no new version");

    // One bad flag and nothing in the file lands.
    let bad = FLAGS
        .replace("default: blue", "default: purple")
        .replace("10%", "20%")
        .replace("90%", "80%");
    let r = app.apply_yaml(&bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["field"], "flags.banner-color.default");
    assert_eq!(app.revision().await, rev);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let rev = app.revision().await;
    let audit_len = app.count("/api/v1/audit?limit=1000").await;

    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("malformed JSON", b"{\"variants\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed JSON"),
        ("wrong type", br#"{"variants": {"a": 1}, "default": 5}"#.to_vec(), StatusCode::BAD_REQUEST, "invalid type"),
        ("unknown field", br#"{"variants": {"a": 1}, "default": "a", "colour": "red"}"#.to_vec(), StatusCode::BAD_REQUEST, "unknown field `colour`"),
        ("non-UTF-8", b"{\"variants\": {\"\xc3\x28\": 1}, \"default\": \"a\"}".to_vec(), StatusCode::BAD_REQUEST, "UTF-8"),
        ("empty", Vec::new(), StatusCode::BAD_REQUEST, "empty"),
        (
            "invalid regex",
            br#"{"variants": {"a": 1}, "default": "a", "environments": {"prod": {"enabled": true, "rules": [{"serve": "a", "constraints": [{"attribute": "x", "op": "regex", "values": ["(unclosed"]}]}]}}}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid regex",
        ),
        (
            "huge regex",
            format!(r#"{{"variants": {{"a": 1}}, "default": "a", "environments": {{"prod": {{"enabled": true, "rules": [{{"serve": "a", "constraints": [{{"attribute": "x", "op": "regex", "values": ["{}"]}}]}}]}}}}}}"#, "a{1000}{1000}").into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "regex",
        ),
        ("oversized", vec![b' '; 2 * 1024 * 1024], StatusCode::PAYLOAD_TOO_LARGE, "too large"),
    ];
    for (name, body, status, needle) in cases {
        let r = app
            .raw(
                Method::PUT,
                "/api/v1/flags/new-checkout",
                Some(ADMIN),
                &[("content-type", "application/json")],
                body,
            )
            .await;
        assert_eq!(r.status, status, "{name}: {:?}", r.body);
        let msg = r.body["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{name}: {msg:?} should mention {needle:?}");
    }
    let r = app
        .raw(
            Method::PUT,
            "/api/v1/flags/bad%20key",
            Some(ADMIN),
            &[],
            br#"{"variants": {"a": 1}, "default": "a"}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("key"))
    );
    let r = app
        .apply_yaml("flags:\n  x:\n    variants: { a: 1 }\n    default: a\n    colour: red\n")
        .await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("line 5, column 5"))
    );
    let r = app.mint(ADMIN, json!({"kind": "root", "environments": ["prod"]})).await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("kind"))
    );

    assert_eq!(app.revision().await, rev, "no bad input may change anything");
    let after = app.count("/api/v1/audit?limit=1000").await;
    assert_eq!(after, audit_len);
}

#[tokio::test]
async fn environment_scoped_admins_change_only_their_environments() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let r = app
        .mint(ADMIN, json!({"kind": "admin", "environments": ["dev"], "principal": "dev-lead"}))
        .await;
    let dev_admin = r.body["token"].as_str().unwrap().to_owned();
    let flag =
        app.admin(Method::GET, "/api/v1/flags/new-checkout", None).await.body["spec"].clone();

    let mut dev_change = flag.clone();
    dev_change["environments"]["dev"]["enabled"] = json!(true);
    let r = app
        .call(Method::PUT, "/api/v1/flags/new-checkout", Some(&dev_admin), Some(dev_change))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["flag"]["updated_by"], "dev-lead");

    // Refusals outside its environments are the authorization matrix's (`authz.rs`).
}

#[tokio::test]
async fn segments_in_use_cannot_be_archived() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let r = app.admin(Method::POST, "/api/v1/segments/beta-testers/archive", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["message"].as_str().unwrap().contains("new-checkout"));
    let r = app
        .admin(Method::PUT, "/api/v1/segments/pilots", Some(json!({"keys": ["u1", "u2"]})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.admin(Method::PUT, "/api/v1/segments/pilots", Some(json!({"keys": ["u1"]}))).await;
    assert_eq!(r.body["segment"]["version"], 2);
    assert_eq!(app.count("/api/v1/segments/pilots/versions").await, 2);
    assert_eq!(
        app.admin(Method::POST, "/api/v1/segments/pilots/archive", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn audit_verifies_and_names_the_first_tampered_entry() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    app.admin(Method::POST, "/api/v1/flags/limits/archive", None).await;
    let v = app.admin(Method::GET, "/api/v1/audit/verify", None).await.body;
    assert_eq!(v["ok"], true);
    let n = v["verified"].as_i64().unwrap();
    assert!(n >= 8, "{v}");

    let list = app.admin(Method::GET, "/api/v1/audit?limit=3", None).await.body;
    assert_eq!(list[0]["action"], "token.create");
    assert_eq!(list[0]["actor"], "system");

    // Someone with database access rewrites entry 4 (after removing the append-only guard).
    sqlx::query("DROP TRIGGER audit_log_no_update").execute(app.sqlite.pool()).await.unwrap();
    sqlx::query("UPDATE audit_log SET canonical = replace(canonical, '\"actor\":\"admin\"', '\"actor\":\"mallory\"') WHERE seq = 4")
        .execute(app.sqlite.pool())
        .await
        .unwrap();
    let v = app.admin(Method::GET, "/api/v1/audit/verify", None).await.body;
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad"]["seq"], 4, "{v}");
    assert_eq!(v["verified"], 3);
}

#[tokio::test]
async fn unnormalised_paths_are_refused_before_auth() {
    let app = spawn_app().await;
    for path in [
        "/healthz/../api/v1/tokens",
        "/api/v1/flags/%2e%2e/tokens",
        "/api/v1//tokens",
        "/api/v1/./tokens",
    ] {
        let r = app.raw(Method::GET, path, None, &[], vec![]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let r = app.raw(Method::GET, "/api/v1/tokens", None, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "unauthorized");
}

#[tokio::test]
async fn openapi_documents_every_route_that_exists() {
    let app = spawn_app().await;
    let doc = app.raw(Method::GET, "/api/v1/openapi.json", None, &[], vec![]).await.body;
    assert_eq!(doc["openapi"].as_str().map(|s| s.starts_with("3.")), Some(true));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{} paths", paths.len());
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let concrete =
                path.replace("{key}", "k").replace("{version}", "1").replace("{id}", "tok_x");
            let r = app.raw(m.clone(), &concrete, None, &[], vec![]).await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                r.status != StatusCode::NOT_FOUND
                    || r.body.get("errorCode").is_some()
                    || r.body["message"] != "no such route; see /api/v1/openapi.json",
                "{method} {path} is documented but not routed"
            );
        }
    }
}

/// Review findings, kept as regressions.
#[tokio::test]
async fn scoped_tokens_read_only_their_environments() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    app.admin(Method::PUT, "/api/v1/segments/pilots", Some(json!({"keys": ["u1", "u2"]}))).await;
    let dev = app.token("server-sdk", &["dev"]).await;
    let f = app.call(Method::GET, "/api/v1/flags/new-checkout", Some(&dev), None).await.body;
    let envs: Vec<&String> = f["spec"]["environments"].as_object().unwrap().keys().collect();
    assert_eq!(envs, ["dev"], "prod rules are not shown to a dev token");
    let list = app.call(Method::GET, "/api/v1/flags", Some(&dev), None).await.body;
    assert!(
        list.as_array().unwrap().iter().all(|f| f["spec"]["environments"].get("prod").is_none())
    );
    let s = app.call(Method::GET, "/api/v1/segments/pilots", Some(&dev), None).await.body;
    assert!(s["spec"].get("keys").is_none() && s["spec"]["keys_redacted"] == true, "{s}");
    let v = app.call(Method::GET, "/api/v1/segments/pilots/versions", Some(&dev), None).await.body;
    assert!(v[0]["spec"].get("keys").is_none());
    let all = app.admin(Method::GET, "/api/v1/segments/pilots", None).await.body;
    assert_eq!(all["spec"]["keys"], json!(["u1", "u2"]));
}

#[tokio::test]
async fn a_principal_cannot_be_impersonated_by_another_admin() {
    let app = spawn_app().await;
    let r = app
        .mint(ADMIN, json!({"kind": "admin", "environments": ["*"], "principal": "alice"}))
        .await;
    let alice = r.body["token"].as_str().unwrap().to_owned();
    app.mint(ADMIN, json!({"kind": "admin", "environments": ["*"], "principal": "bob"})).await;
    let r =
        app.mint(&alice, json!({"kind": "admin", "environments": ["*"], "principal": "bob"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = app
        .mint(&alice, json!({"kind": "client-sdk", "environments": ["prod"], "principal": "alice"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "one may always mint for oneself");
    let r = app
        .mint(ADMIN, json!({"kind": "admin", "environments": ["*"], "principal": "controller"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn bad_paths_and_queries_get_json_errors() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    for path in [
        "/api/v1/flags/new-checkout/versions/abc",
        "/api/v1/audit?limit=x",
        "/api/v1/flags/new-checkout/diff?from=one",
    ] {
        let r = app.admin(Method::GET, path, None).await;
        assert_eq!(
            (r.status, r.body["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("bad_request")),
            "{path}: {:?}",
            r.body
        );
    }
}

/// A date rule's answer changes only when the clock reaches its date (issue 21, item 3): 304s
/// continue while the clock moves short of it, and end when it gets there.
#[tokio::test]
async fn date_rules_never_get_a_stale_304() {
    use wavegate_server::clock::Clock as _;
    let app = spawn_app().await;
    let launch = (app.clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    let yaml = format!(
        "flags:\n  launch:\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"off\"\n    environments:\n      prod: {{ enabled: true, rules: [ {{ constraints: [{{ attribute: currentTime, op: date_after, values: [\"{launch}\"] }}], serve: \"on\" }} ] }}\n"
    );
    assert_eq!(app.apply_yaml(&yaml).await.status, StatusCode::OK);
    let t = app.token("client-sdk", &["prod"]).await;
    let ctx = br#"{"context":{"targetingKey":"u"}}"#;
    let r = app.bulk(&t, &[], ctx).await;
    assert_eq!(r.body["flags"][0]["value"], false, "{:?}", r.body);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let same = app.bulk(&t, &[("if-none-match", &etag)], ctx).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED, "same instant, same answer");
    app.clock.advance(chrono::Duration::minutes(59));
    let later = app.bulk(&t, &[("if-none-match", &etag)], ctx).await;
    assert_eq!(later.status, StatusCode::NOT_MODIFIED, "the clock moved, the answer cannot have");
    app.clock.advance(chrono::Duration::minutes(2));
    let again = app.bulk(&t, &[("if-none-match", &etag)], ctx).await;
    assert_eq!(again.status, StatusCode::OK, "the clock passed the launch date");
    assert_eq!(again.body["flags"][0]["value"], true, "{:?}", again.body);
    // With the client's own currentTime, the answer is a function of the request: 304 is safe.
    let body = br#"{"context":{"targetingKey":"u","currentTime":"2026-07-01T00:00:00Z"}}"#;
    let r = app.bulk(&t, &[], body).await;
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let again = app.bulk(&t, &[("if-none-match", &etag)], body).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}
