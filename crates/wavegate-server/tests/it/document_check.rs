//! `POST /api/v1/{flags,segments}/{key}/check`: the dashboard's editors check YAML as it is
//! typed — where it does not parse (line and column), which field does not validate, the
//! document as JSON, and as YAML that reads back to the same flag. Nothing is stored.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN, TestApp, spawn_app};

async fn check(app: &TestApp, kind: &str, key: &str, text: &str) -> crate::support::Reply {
    let yaml = [("content-type", "application/yaml")];
    let path = format!("/api/v1/{kind}/{key}/check");
    app.raw(Method::POST, &path, Some(ADMIN), &yaml, text.as_bytes().to_vec()).await
}

const FLAG: &str = r#"
description: the new checkout
variants: { "on": true, "off": false }
default: "off"
environments:
  prod:
    enabled: true
    rules:
      - name: pilots
        constraints: [{ attribute: country, op: in, values: [NO, SE] }]
        split: { "on": 10%, "off": 90% }
        stickiness: accountId
"#;

#[tokio::test]
async fn documents_are_checked_at_their_line_or_field_and_nothing_is_stored() {
    let app = spawn_app().await;

    // Valid: the JSON, and YAML that parses back to the same flag (NO stays a string).
    let r = check(&app, "flags", "checkout", FLAG).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["ok"].as_bool(), &r.body["error"]),
        (Some(true), &json!(null)),
        "{:?}",
        r.body
    );
    let rule = &r.body["spec"]["environments"]["prod"]["rules"][0];
    assert_eq!(rule["constraints"][0]["values"], json!(["NO", "SE"]));
    let yaml = r.body["yaml"].as_str().unwrap();
    let again = check(&app, "flags", "checkout", yaml).await;
    assert_eq!(again.body["spec"], r.body["spec"], "the YAML round-trips:\n{yaml}");
    assert_eq!(again.body["yaml"].as_str(), Some(yaml), "and is stable");

    // YAML that does not parse: where.
    let r = check(&app, "flags", "checkout", "variants: { on: true\ndefault: off\n").await;
    assert_eq!(r.body["ok"], false);
    let e = &r.body["error"];
    assert!(e["line"].as_u64().is_some() && e["column"].as_u64().is_some(), "{e}");
    assert_eq!(e["field"], json!(null));

    // Parses, does not validate: which field, and the document still comes back.
    let bad = FLAG.replace("\"off\": 90%", "\"off\": 80%");
    let r = check(&app, "flags", "checkout", &bad).await;
    assert_eq!(r.body["ok"], false);
    let field = r.body["error"]["field"].as_str().unwrap();
    assert!(field.starts_with("body.environments.prod.rules[0]"), "{field}: {:?}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("100"), "{:?}", r.body);
    assert!(r.body["spec"].is_object() && r.body["yaml"].is_null());
    let r =
        check(&app, "flags", "checkout", &FLAG.replace("name: pilots", "segment: nobody")).await;
    let field = r.body["error"]["field"].as_str().unwrap();
    assert!(field.starts_with("body.environments.prod.rules[0]"), "{field}");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("nobody"), "{:?}", r.body);
    let r = check(&app, "flags", "bad%20key!", FLAG).await;
    assert_eq!(r.body["error"]["field"], "key", "{:?}", r.body);

    // Segments too.
    let r = check(&app, "segments", "pilots", "keys: [u1, u2]\n").await;
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    let r = check(&app, "segments", "pilots", "keys: [u1]\ncolour: red\n").await;
    assert_eq!(r.body["ok"], false, "an unknown field is refused: {:?}", r.body);

    // Not text: 400. Nothing was stored by any of it.
    let yaml = [("content-type", "application/yaml")];
    let r =
        app.raw(Method::POST, "/api/v1/flags/x/check", Some(ADMIN), &yaml, vec![0xff, 0xfe]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for path in ["/api/v1/flags/checkout", "/api/v1/segments/pilots"] {
        assert_eq!(app.admin(Method::GET, path, None).await.status, StatusCode::NOT_FOUND);
    }
}
