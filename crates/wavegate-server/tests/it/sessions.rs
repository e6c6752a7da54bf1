//! Issue 19, item 1: a signed-in person's session as the dashboard carries it (the HttpOnly
//! `wg_session` cookie): read with it, change only with the CSRF token, refused once it has
//! expired or when the cookie holds an API token. (Signing in itself, against a real provider,
//! is `crates/wavegate/tests/it/oidc.rs`.)

use axum::http::{Method, StatusCode};
use serde_json::json;
use wavegate_server::http::auth::{csrf_token, mint};
use wavegate_store::{Grant, Role, TokenKind};

use crate::support::{ADMIN, TestApp, spawn_app};

/// A session for `principal` as the sign-in opens one: an expiring `ses_` token.
async fn session(app: &TestApp, principal: &str, roles: Vec<Grant>, hours: i64) -> String {
    let mut minted = mint(TokenKind::Admin, vec!["*".into()], principal.into());
    minted.record.id = minted.record.id.replacen("tok_", "ses_", 1);
    minted.record.roles = roles;
    minted.record.expires_at = Some(app.state.clock.now() + chrono::Duration::hours(hours));
    app.state.store.create_token(&minted.record, &app.state.change(principal, None)).await.unwrap();
    app.state.tokens.clear();
    minted.secret
}

async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> crate::support::Reply {
    let cookie = format!("theme=dark; wg_session={cookie}");
    let mut headers = vec![("cookie", cookie.as_str()), ("content-type", "application/json")];
    if let Some(c) = csrf {
        headers.push(("x-csrf-token", c));
    }
    let flag = json!({"variants": {"on": true, "off": false}, "default": "off"});
    let body = if method == Method::GET { Vec::new() } else { serde_json::to_vec(&flag).unwrap() };
    app.raw(method, path, None, &headers, body).await
}

#[tokio::test]
async fn a_session_cookie_reads_changes_only_with_its_csrf_token_and_ends_when_it_expires() {
    let app = spawn_app().await;
    let editor = vec![Grant { role: Role::Editor, environments: vec!["*".into()] }];
    let secret = session(&app, "erin@example.com", editor, 8).await;

    let me = with_cookie(&app, Method::GET, "/api/v1/whoami", &secret, None).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(
        (me.body["signed_in"].as_bool(), me.body["principal"].as_str()),
        (Some(true), Some("erin@example.com"))
    );
    let csrf = me.body["csrf"].as_str().unwrap().to_owned();
    assert_eq!(csrf, csrf_token(&secret));

    // A change without the token, or with another session's, is refused; with it, done.
    let path = "/api/v1/flags/signed-in";
    for wrong in [None, Some("0".repeat(32).as_str()), Some(csrf_token("another").as_str())] {
        let r = with_cookie(&app, Method::PUT, path, &secret, wrong).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{wrong:?}: {:?}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("X-CSRF-Token"), "{:?}", r.body);
    }
    let r = with_cookie(&app, Method::PUT, path, &secret, Some(&csrf)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let history = app.admin(Method::GET, "/api/v1/flags/signed-in/versions", None).await.body;
    assert_eq!(history[0]["actor"], "erin@example.com", "the change names the person");

    // An API token in the cookie is no session: only a sign-in sets that cookie.
    let r = with_cookie(&app, Method::GET, "/api/v1/whoami", ADMIN, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);

    // Eight hours on, it has ended.
    app.clock.advance(chrono::Duration::hours(8) + chrono::Duration::seconds(1));
    let r = with_cookie(&app, Method::GET, "/api/v1/whoami", &secret, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("sign-in has ended"), "{:?}", r.body);
}
