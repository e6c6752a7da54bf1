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
    app.state
        .store
        .create_token(
            &minted.record,
            &app.state.change(&wavegate_server::service::Who::own(principal), None),
        )
        .await
        .unwrap();
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

/// `app` with sign-in through an identity provider configured (none is contacted here).
fn with_provider(app: &mut TestApp) {
    let site = ["https://idp.example", "wavegate", "s3cret", "https://wavegate.example"];
    let approvers = wavegate_server::oidc::parse_role_mapping("cab=approver").unwrap();
    let config = wavegate_server::oidc::OidcConfig::new(site, vec![approvers]);
    app.state.access = std::sync::Arc::new(wavegate_server::access::Access {
        oidc: Some(std::sync::Arc::new(wavegate_server::oidc::Provider::new(config))),
        ..Default::default()
    });
    app.router = wavegate_server::app(app.state.clone());
}

async fn bearer(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> crate::support::Reply {
    app.call(method, path, Some(token), Some(body)).await
}

#[tokio::test]
async fn with_an_identity_provider_nobody_mints_a_person_and_approver_lists_name_groups() {
    let mut app = spawn_app().await;
    with_provider(&mut app);
    let all = |role| vec![Grant { role, environments: vec!["*".into()] }];

    // Not even the bootstrap admin mints a token in a person's name; a service account, yes.
    let alice = json!({"kind": "admin", "environments": ["*"], "principal": "alice@example.com"});
    let r = app.mint(ADMIN, alice).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("svc:<name>"), "{:?}", r.body);
    let svc = json!({"kind": "admin", "environments": ["prod"], "principal": "svc:deployer",
        "roles": [{"role": "releaser"}]});
    assert_eq!(app.mint(ADMIN, svc).await.status, StatusCode::CREATED);
    // A signed-in admin for every environment makes service accounts; an editor does not, and
    // an editor's own token acts as them.
    let sam = session(&app, "sam@example.com", all(Role::Admin), 8).await;
    let ci = json!({"kind": "admin", "environments": ["*"], "principal": "svc:ci", "roles": [{"role": "editor"}]});
    assert_eq!(
        bearer(&app, &sam, Method::POST, "/api/v1/tokens", ci.clone()).await.status,
        StatusCode::CREATED
    );
    let erin = session(&app, "erin@example.com", all(Role::Editor), 8).await;
    let r = bearer(&app, &erin, Method::POST, "/api/v1/tokens", ci).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let own =
        json!({"kind": "admin", "environments": ["prod"], "expires_at": "2030-01-01T00:00:00Z"});
    let r = bearer(&app, &erin, Method::POST, "/api/v1/tokens", own).await;
    assert_eq!(
        (r.status, r.body["principal"].as_str()),
        (StatusCode::CREATED, Some("erin@example.com"))
    );

    // A plan approved by the change board's group: a member approves, another approver not.
    app.apply_yaml(&wavegate_testkit::fixtures::on_off(&["checkout"])).await;
    let plan = wavegate_testkit::fixtures::Plan::new("p", "checkout")
        .owners("{ requester: rita, approvers: [group:cab] }")
        .waves(&["{ exposure: 20%, promotion: approval }", "{ exposure: 100% }"]);
    assert_eq!(app.post_plan(&plan.to_string()).await.status, StatusCode::CREATED);
    let id = app.start("p").await;
    let (mut minted, mut outsider) = (Vec::new(), Vec::new());
    for (name, groups, into) in [
        ("cora@example.com", vec!["cab".to_owned()], &mut minted),
        ("otto@example.com", vec![], &mut outsider),
    ] {
        let mut m = mint(TokenKind::Admin, vec!["*".into()], name.into());
        m.record.id = m.record.id.replacen("tok_", "ses_", 1);
        m.record.roles = all(Role::Approver);
        m.record.groups = groups;
        m.record.expires_at = Some(app.state.clock.now() + chrono::Duration::hours(1));
        app.state
            .store
            .create_token(
                &m.record,
                &app.state.change(&wavegate_server::service::Who::own(name), None),
            )
            .await
            .unwrap();
        into.push(m.secret);
    }
    app.state.tokens.clear();
    let approve = format!("/api/v1/rollouts/{id}/approve");
    let r = bearer(&app, &outsider[0], Method::POST, &approve, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("not an approver"), "{:?}", r.body);
    let who = bearer(&app, &minted[0], Method::GET, "/api/v1/whoami", json!(null)).await;
    assert_eq!(who.body["groups"], json!(["cab"]));
    let r = bearer(&app, &minted[0], Method::POST, &approve, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.tick().await;
    assert_eq!(app.rollout(&id).await["wave"], 2, "the group member's approval promoted it");
}
