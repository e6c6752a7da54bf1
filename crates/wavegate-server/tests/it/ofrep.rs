//! OFREP: shapes, errors, ETags, CORS, auth.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN, FLAGS, TestApp, spawn_app};

/// Evaluates `key` over OFREP with a raw body.
async fn evaluate(
    app: &TestApp,
    token: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> crate::support::Reply {
    let path = format!("/ofrep/v1/evaluate/flags/{key}");
    app.raw(Method::POST, &path, Some(token), headers, body.to_vec()).await
}

#[tokio::test]
async fn success_carries_key_value_variant_reason() {
    let app = spawn_app().await;
    assert_eq!(app.apply_yaml(FLAGS).await.status, StatusCode::OK);
    let t = app.token("client-sdk", &["prod"]).await;

    let r = app
        .ofrep(&t, "new-checkout", json!({"targetingKey": "u1", "email": "x@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"key": "new-checkout", "value": true, "variant": "on", "reason": "TARGETING_MATCH", "metadata": {"rule": "internal", "version": 1}})
    );
    assert_eq!(r.headers["content-type"], "application/json");

    let r = app.ofrep(&t, "banner-color", json!({"targetingKey": "u1"})).await;
    assert_eq!(
        (r.body["value"].clone(), r.body["reason"].clone()),
        (json!("#00f"), json!("DEFAULT"))
    );

    // Floats keep their decimal point on the wire (the Python provider checks isinstance float).
    let r = evaluate(&app, &t, "price-factor", &[], br#"{"context":{"targetingKey":"u"}}"#).await;
    assert_eq!(r.body["reason"], "STATIC");
    assert!(r.body["value"].is_f64(), "{:?}", r.body);
    let r = app.ofrep(&t, "limits", json!({})).await;
    assert_eq!(r.body["value"], json!({"max": 10, "tier": "free"}));

    let r = app.ofrep(&t, "new-checkout", json!({"targetingKey": "u1", "country": "NO"})).await;
    assert_eq!(r.body["reason"], "SPLIT");
}

#[tokio::test]
async fn ofrep_errors_have_the_spec_shapes() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let t = app.token("client-sdk", &["prod"]).await;

    let r = app.ofrep(&t, "missing", json!({"targetingKey": "u"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        (r.body["key"].clone(), r.body["errorCode"].clone()),
        (json!("missing"), json!("FLAG_NOT_FOUND"))
    );

    let parse_error = (StatusCode::BAD_REQUEST, json!("PARSE_ERROR"));
    let r = evaluate(&app, &t, "new-checkout", &[], b"{\"context\": {").await;
    assert_eq!((r.status, r.body["errorCode"].clone()), parse_error);
    assert_eq!(r.body["key"], "new-checkout");

    let r = evaluate(&app, &t, "new-checkout", &[], b"{\"context\": {\"a\": \"\xff\xfe\"}}").await;
    assert_eq!((r.status, r.body["errorCode"].clone()), parse_error);
    assert!(r.body["errorDetails"].as_str().unwrap().contains("UTF-8"));

    let r = app.ofrep(&t, "new-checkout", json!({"targetingKey": 42})).await;
    assert_eq!(
        (r.status, r.body["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("INVALID_CONTEXT"))
    );

    let r = app
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags/new-checkout",
            Some(&t),
            Some(json!({"context": [1, 2]})),
        )
        .await;
    assert_eq!(r.body["errorCode"], "INVALID_CONTEXT");

    // A split on targetingKey with no targeting key: TARGETING_KEY_MISSING, not a random answer.
    let r = app.ofrep(&t, "strict-split", json!({"email": "a@b.c"})).await;
    assert_eq!(
        (r.status, r.body["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("TARGETING_KEY_MISSING"))
    );
    // The default stickiness falls back instead (sessionId here).
    let r = app.ofrep(&t, "new-checkout", json!({"country": "NO", "sessionId": "s1"})).await;
    assert_eq!((r.status, r.body["reason"].clone()), (StatusCode::OK, json!("SPLIT")));

    // Oversized context.
    let big: serde_json::Map<_, _> = (0..300).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = app.ofrep(&t, "new-checkout", serde_json::Value::Object(big)).await;
    assert_eq!(r.body["errorCode"], "INVALID_CONTEXT");
    let r = evaluate(&app, &t, "new-checkout", &[], &vec![b' '; 2 * 1024 * 1024]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn auth_and_environment_scope() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let prod = app.token("client-sdk", &["prod"]).await;
    let dev = app.token("client-sdk", &["dev"]).await;

    let r = app
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags/new-checkout",
            None,
            Some(json!({"context": {}})),
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::UNAUTHORIZED, serde_json::Value::Null));
    let r = app.ofrep("wg_not_a_real_token", "new-checkout", json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The dev token evaluates in dev (disabled there); what it may not ask for, and what
    // revoked tokens get, is the authorization matrix's (`authz.rs`).
    let r = app.ofrep(&dev, "new-checkout", json!({"targetingKey": "u"})).await;
    assert_eq!(r.body["reason"], "DISABLED");

    // An admin token spans every environment, so it must name one.
    let r = app.ofrep(ADMIN, "new-checkout", json!({})).await;
    assert_eq!(
        (r.status, r.body["errorCode"].clone()),
        (StatusCode::BAD_REQUEST, json!("GENERAL"))
    );

    // client-sdk tokens evaluate only, and are told so in the admin API's error body.
    let r = app.call(Method::GET, "/api/v1/flags", Some(&prod), None).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")));
}

#[tokio::test]
async fn bulk_etag_and_304() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let t = app.token("client-sdk", &["prod"]).await;
    let ctx = br#"{"context":{"targetingKey":"u1","country":"NO"}}"#;
    let r = app.bulk(&t, &[], ctx).await;
    assert_eq!(r.status, StatusCode::OK);
    let flags = r.body["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 5);
    let strict = flags.iter().find(|f| f["key"] == "strict-split").unwrap();
    assert_eq!(strict["reason"], "SPLIT");
    let etag = r.headers["etag"].to_str().unwrap().to_owned();

    let if_none_match = [("if-none-match", etag.as_str())];
    let r = app.bulk(&t, &if_none_match, ctx).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    // A proxy that compressed the answer weakened its ETag: the weak form still matches.
    let weak = format!("W/{etag}");
    let r = app.bulk(&t, &[("if-none-match", weak.as_str())], ctx).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    // Another context never gets a stale 304.
    let r = app.bulk(&t, &if_none_match, br#"{"context":{"targetingKey":"u2"}}"#).await;
    assert_eq!(r.status, StatusCode::OK);
    // A change to any flag changes the ETag.
    app.apply_yaml(&FLAGS.replace("10%, \"off\": 90%", "25%, \"off\": 75%")).await;
    let r = app.bulk(&t, &if_none_match, ctx).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_exposes_etag() {
    let app = spawn_app().await;
    let r = app
        .raw(
            Method::OPTIONS,
            "/ofrep/v1/evaluate/flags",
            None,
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization,content-type,if-none-match"),
            ],
            vec![],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(r.headers["access-control-allow-origin"], "http://localhost:3000");
    let allowed = r.headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("if-none-match"), "{allowed}");
    let app2 = spawn_app().await;
    app2.apply_yaml(FLAGS).await;
    let t = app2.token("client-sdk", &["prod"]).await;
    let r = app2.bulk(&t, &[("origin", "http://localhost:3000")], b"{}").await;
    assert_eq!(
        r.headers["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase(),
        "etag"
    );
}

#[tokio::test]
async fn metrics_count_requests_and_evaluations() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    let t = app.token("client-sdk", &["prod"]).await;
    for _ in 0..3 {
        app.ofrep(&t, "banner-color", json!({"plan": "vip"})).await;
    }
    let r = app.raw(Method::GET, "/metrics", None, &[], vec![]).await;
    let text = r.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"wavegate_evaluations_total{flag="banner-color",reason="TARGETING_MATCH"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"wavegate_http_requests_total{method="POST",route="/ofrep/v1/evaluate/flags/{key}",status="200"} 3"#), "{text}");
    assert!(text.contains("wavegate_http_request_duration_seconds_bucket"), "{text}");
    assert_eq!(app.raw(Method::GET, "/healthz", None, &[], vec![]).await.status, StatusCode::OK);
    assert_eq!(app.raw(Method::GET, "/readyz", None, &[], vec![]).await.status, StatusCode::OK);
}
