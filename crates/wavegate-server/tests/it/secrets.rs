//! Issue 16 (items 9, 10, 14, 15, 16): secrets stay secret and access stays bounded. URL
//! credentials never reach verdicts; backups leave webhook secrets out unless asked; Slack
//! messages and reports cannot be made to ping, link or run script by what they quote; the
//! admin API answers only the browser origins it was told of; the last way in cannot be
//! revoked; `/metrics` can require a token.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_server::access::Access;
use wavegate_store::{SqlStore, Store};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, TestApp, spawn_app};

/// Issue 16, item 9: a `--prometheus-url` with `user:password@` does not leak its password into
/// the verdicts (which server-sdk tokens read) when the query fails.
#[tokio::test]
async fn issue_16_prometheus_credentials_stay_out_of_verdicts() {
    let mut app = spawn_app().await;
    // Nothing listens on port 9: the query fails and its error becomes the explanation.
    app.state.outbound.prometheus_url = Some("http://reader:s3cret-pw@127.0.0.1:9".into());
    app.router = wavegate_server::app(app.state.clone());
    let guardrail = "guardrails:
  - { name: http-errors, source: prometheus, query: 'up', comparison: bound, bound: 1.0, action: pause }
";
    let plan = Plan::new("prom", "checkout").section(guardrail).to_string();
    app.prepare(&on_off(&["checkout"]), &plan).await;
    let id = app.start("prom").await;
    app.tick().await;

    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut seen = String::new();
    for path in [format!("/api/v1/rollouts/{id}"), format!("/api/v1/rollouts/{id}/verdicts")] {
        let r = app.call(Method::GET, &path, Some(&sdk), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        seen.push_str(&r.body.to_string());
    }
    assert!(seen.contains("http-errors"), "a verdict was recorded: {seen}");
    assert!(seen.contains("reader:***@127.0.0.1:9"), "the URL is named, redacted: {seen}");
    assert!(!seen.contains("s3cret-pw"), "the password never shows: {seen}");
}

/// A notification target with a signing secret and a secret path, as Slack's are.
async fn secret_target(app: &TestApp) {
    let target = json!({"audience": "on-call", "url": "https://hooks.example.com/services/T0/B0/p4th-s3cret?token=q5ery",
        "format": "slack", "secret": "signing-s3cret-0123456789"});
    let r = app.admin(Method::PUT, "/api/v1/notifications/targets/oncall", Some(target)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// Issue 16, item 10: a backup leaves webhook secrets and URL paths out unless asked, asking is
/// for admins of every environment and audited, and the API never shows the signing secret.
#[tokio::test]
async fn issue_16_backups_leave_webhook_secrets_out_unless_asked() {
    let app = spawn_app().await;
    secret_target(&app).await;
    let secrets = ["signing-s3cret", "p4th-s3cret", "q5ery"];

    let r = app.admin(Method::GET, "/api/v1/backup", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.to_string();
    for s in secrets {
        assert!(!text.contains(s), "{s} is left out: {text}");
    }
    assert_eq!(r.body["secrets_omitted"], true);
    let spec: Value =
        serde_json::from_str(r.body["tables"]["notify_targets"][0][1].as_str().unwrap()).unwrap();
    assert_eq!(spec["url"], "https://hooks.example.com/…", "{spec}");
    assert_eq!((spec["withheld"].clone(), spec.get("secret")), (json!(true), None));

    let dev_admin = app.token("admin", &["dev"]).await;
    let r = app.call(Method::GET, "/api/v1/backup?secrets=true", Some(&dev_admin), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.admin(Method::GET, "/api/v1/backup?secrets=true", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["secrets_omitted"], false);
    let text = r.body.to_string();
    for s in secrets {
        assert!(text.contains(s), "{s} is kept when asked for");
    }
    let audit = app.admin(Method::GET, "/api/v1/audit?target=backup", None).await.body;
    assert_eq!(audit[0]["action"], "backup.secrets", "{audit}");
    assert_eq!(audit[0]["actor"], "admin");

    // The API shows neither the secret nor, anywhere but the target itself, the URL's path.
    let shown = app.admin(Method::GET, "/api/v1/notifications/targets", None).await.body;
    assert!(!shown.to_string().contains("signing-s3cret"), "{shown}");
    let audited = app.admin(Method::GET, "/api/v1/audit?target=notify:oncall", None).await.body;
    assert!(!audited.to_string().contains("p4th-s3cret"), "{audited}");
}

/// Issue 16, item 10: a backup without secrets restores; its targets come back withheld and
/// send nothing (saying why) until they are set again.
#[tokio::test]
async fn issue_16_a_backup_without_secrets_restores_with_targets_withheld() {
    let app = spawn_app().await;
    secret_target(&app).await;
    let mut backup = app.state.store.export().await.unwrap();
    assert_eq!(wavegate_server::runtime::notify::spec::omit_secrets(&mut backup), 1);
    assert_eq!(wavegate_server::runtime::notify::spec::withheld_targets(&backup), ["oncall"]);
    let backup: wavegate_store::backup::Backup =
        serde_json::from_value(serde_json::to_value(&backup).unwrap()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let restored = SqlStore::open(dir.path().join("restored.db").to_str().unwrap()).await.unwrap();
    restored.import(&backup).await.unwrap();
    let clock = app.clock.clone();
    let mut state = wavegate_server::AppState::new(Arc::new(restored), clock).await.unwrap();
    // As `spawn_app` does: the target is set again at a loopback address below.
    let loopback = wavegate_server::outbound::policy::Policy::parse(["127.0.0.1"]).unwrap();
    state.outbound.guard = wavegate_server::outbound::Guard::new(loopback);
    let router = wavegate_server::app(state);
    let call = |method: Method, path: &str, body: Option<Value>| {
        let router = router.clone();
        let path = path.to_owned();
        async move {
            use tower::ServiceExt as _;
            let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
            let req = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(bytes))
                .unwrap();
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes =
                http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };
    let (status, target) = call(Method::GET, "/api/v1/notifications/targets/oncall", None).await;
    assert_eq!(status, StatusCode::OK, "the restored admin token works: {target}");
    assert_eq!(
        (target["withheld"].clone(), target["signed"].clone(), target["url"].clone()),
        (json!(true), json!(false), json!("https://hooks.example.com/…"))
    );
    let (_, sent) = call(Method::POST, "/api/v1/notifications/targets/oncall/test", None).await;
    assert_eq!(sent["ok"], false, "{sent}");
    assert!(sent["error"].as_str().unwrap().contains("without secrets"), "{sent}");
    // `withheld` is the restore's to set, never a PUT's; a PUT without it sets the target again.
    let mut again =
        json!({"audience": "on-call", "url": "http://127.0.0.1:9/hook", "withheld": true});
    let (status, r) =
        call(Method::PUT, "/api/v1/notifications/targets/oncall", Some(again.clone())).await;
    assert_eq!((status, r["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("withheld")));
    again.as_object_mut().unwrap().remove("withheld");
    let (status, r) = call(Method::PUT, "/api/v1/notifications/targets/oncall", Some(again)).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r.get("withheld"), None, "{r}");
}

/// Issue 16, item 14: a Slack message quotes reasons and plan fields escaped, so they cannot
/// ping `<!here>`/`<!channel>` or write links; the operator's own template text is sent as
/// written.
#[tokio::test]
async fn issue_16_slack_messages_escape_what_they_quote() {
    let app = spawn_app().await;
    let plan = Plan::new("p1", "checkout").release("version: '2.0 <!channel>', risk: low");
    app.prepare(&on_off(&["checkout"]), &plan.to_string()).await;
    let id = app.start("p1").await;
    for (name, templates) in
        [("slack", json!({})), ("own", json!({"paused": "<!here> {{ reason }}"}))]
    {
        let target = json!({"audience": "manager", "url": "http://127.0.0.1:9/hook", "format": "slack", "templates": templates});
        let path = format!("/api/v1/notifications/targets/{name}");
        assert_eq!(app.admin(Method::PUT, &path, Some(target)).await.status, StatusCode::CREATED);
    }
    let reason = "<!here> see <https://evil.example|the fix> & <@U123>";
    let r = app.command(&id, "pause", reason).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    wavegate_server::runtime::notify::enqueue_new(&app.state).await.unwrap();
    let r = app.admin(Method::GET, "/api/v1/notifications/deliveries", None).await;
    let texts: Vec<(String, String)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["target"].as_str().unwrap().into(), d["text"].as_str().unwrap().into()))
        .collect();
    let text = |t: &str| texts.iter().find(|(n, _)| n == t).map(|(_, x)| x.clone()).unwrap();
    let slack = text("slack");
    assert!(
        slack
            .contains("&lt;!here&gt; see &lt;https://evil.example|the fix&gt; &amp; &lt;@U123&gt;")
            && slack.contains("2.0 &lt;!channel&gt;"),
        "{slack}"
    );
    assert!(!slack.contains("<!") && !slack.contains("<http") && !slack.contains("<@"), "{slack}");
    let own = text("own");
    assert!(own.starts_with("<!here> &lt;!here&gt; see"), "the template's own ping stays: {own}");
}

/// Issue 16, item 14: report documents carry a Content-Security-Policy without script and
/// `nosniff`, and Markdown reports escape what SDKs and plans put in them.
#[tokio::test]
async fn issue_16_reports_forbid_script_and_escape_markdown() {
    let app = spawn_app().await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let hostile = "[click](https://evil.example) <img src=x onerror=alert(1)> | x";
    let feedback = json!({"release": "checkout 1.0", "category": "ux", "cohort": hostile,
        "sentiment": "negative", "text": "hmm"});
    let r = app.call(Method::POST, "/api/v1/feedback", Some(&sdk), Some(feedback)).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let base = "/api/v1/feedback/digest?release=checkout%201.0";
    for format in ["markdown", "html"] {
        let r = app.admin(Method::GET, &format!("{base}&format={format}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{format}: {:?}", r.body);
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{format}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
        let body = r.body.as_str().unwrap();
        // In Markdown a `<` that is not escaped would open raw HTML.
        let unescaped = if format == "markdown" { body.replace("\\<", "") } else { body.into() };
        assert!(!unescaped.contains("<img"), "{format}: {body}");
    }
    let md = app.admin(Method::GET, &format!("{base}&format=markdown"), None).await;
    let md = md.body.as_str().unwrap();
    assert!(
        md.contains(r"| \[click\](https://evil.example) \<img src=x onerror=alert(1)\> \| x | 1 |"),
        "one cell, escaped: {md}"
    );
    let html = app.admin(Method::GET, &format!("{base}&format=html"), None).await;
    let html = html.body.as_str().unwrap();
    assert!(
        html.contains(
            "<td>[click](https://evil.example) &lt;img src=x onerror=alert(1)&gt; | x</td>"
        ),
        "the escapes read as the text itself: {html}"
    );
}

/// A CORS preflight from `origin` for `path`: the `Access-Control-Allow-Origin` answered.
async fn preflight(app: &TestApp, path: &str, origin: &str) -> Option<String> {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization,content-type"),
    ];
    let r = app.raw(Method::OPTIONS, path, None, &headers, vec![]).await;
    assert!(r.status.is_success(), "{path}: {}", r.status);
    r.headers.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

/// Issue 16, item 14: the admin API answers browsers only from the origins it was told of;
/// OFREP and Unleash's APIs answer any origin, as browser SDKs need.
#[tokio::test]
async fn issue_16_cors_opens_the_admin_api_only_to_configured_origins() {
    let mut app = spawn_app().await;
    let evil = "https://evil.example";
    let ops = "https://ops.example.com";
    for path in ["/api/v1/flags", "/api/v1/tokens", "/api/v1/backup", "/metrics"] {
        assert_eq!(preflight(&app, path, evil).await, None, "{path}");
    }
    for path in [
        "/ofrep/v1/evaluate/flags",
        "/ofrep/v1/events",
        "/api/client/features",
        "/api/frontend",
        "/api/frontend/client/metrics",
    ] {
        assert_eq!(preflight(&app, path, evil).await.as_deref(), Some(evil), "{path}");
    }
    // A page on a configured origin may call the admin API; others still may not.
    app.state.access = Arc::new(Access {
        cors_origins: vec![wavegate_server::access::parse_origin(ops).unwrap()],
        ..Access::default()
    });
    app.router = wavegate_server::app(app.state.clone());
    assert_eq!(preflight(&app, "/api/v1/flags", ops).await.as_deref(), Some(ops));
    assert_eq!(preflight(&app, "/api/v1/flags", evil).await, None);
    let r = app.raw(Method::GET, "/api/v1/flags", Some(ADMIN), &[("origin", ops)], vec![]).await;
    assert_eq!(r.headers["access-control-allow-origin"], ops);
}

/// Issue 16, item 15: the last admin token for all environments cannot be revoked (409), so
/// there is always a way in; once another exists, the first can go.
#[tokio::test]
async fn issue_16_the_last_admin_token_for_all_environments_cannot_be_revoked() {
    let app = spawn_app().await;
    let tokens = app.admin(Method::GET, "/api/v1/tokens", None).await.body;
    let bootstrap = tokens[0]["id"].as_str().unwrap().to_owned();
    // Admins of one environment do not count.
    app.token("admin", &["prod"]).await;
    let r = app.admin(Method::DELETE, &format!("/api/v1/tokens/{bootstrap}"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["code"], "conflict");
    assert!(r.body["message"].as_str().unwrap().contains("last admin token"), "{:?}", r.body);

    let r =
        app.mint(ADMIN, json!({"kind": "admin", "environments": ["*"], "principal": "ops"})).await;
    let (ops, ops_id) = (r.body["token"].as_str().unwrap(), r.body["id"].as_str().unwrap());
    // Nor is the last token that may issue tokens for other people (issue 16, item 7).
    let r = app.admin(Method::DELETE, &format!("/api/v1/tokens/{bootstrap}"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("other people"), "{:?}", r.body);
    let grant = json!({"kind": "admin", "environments": ["prod"], "principal": "people", "user_admin": true});
    assert_eq!(app.mint(ADMIN, grant).await.status, StatusCode::CREATED);
    let r = app.admin(Method::DELETE, &format!("/api/v1/tokens/{bootstrap}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.call(Method::DELETE, &format!("/api/v1/tokens/{ops_id}"), Some(ops), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = app.call(Method::GET, "/api/v1/tokens", Some(ops), None).await;
    assert_eq!(r.status, StatusCode::OK, "still a way in");
}

/// Issue 16, item 15: a start that still sets `WAVEGATE_BOOTSTRAP_ADMIN_TOKEN` after that token
/// was revoked (in a database from before the refusal above) starts normally, and the revoked
/// token stays revoked; a new secret then gives a way in again.
#[tokio::test]
async fn issue_16_a_revoked_bootstrap_token_neither_blocks_a_restart_nor_comes_back() {
    let app = spawn_app().await;
    let store = app.state.store.clone();
    let now = chrono::Utc::now();
    // Still live: nothing to do.
    assert_eq!(wavegate_server::ensure_admin_token(&*store, Some(ADMIN), now).await.unwrap(), None);
    sqlx::query("UPDATE tokens SET revoked_at = '2026-01-01T00:00:00Z'")
        .execute(app.sqlite.pool())
        .await
        .unwrap();
    assert!(!store.has_admin_token().await.unwrap());
    for _ in 0..2 {
        let started = wavegate_server::ensure_admin_token(&*store, Some(ADMIN), now).await;
        assert_eq!(started.unwrap(), None, "a restart with the same secret starts");
    }
    assert!(!store.has_admin_token().await.unwrap(), "the revoked token stays revoked");
    let fresh = "wg_a-new-bootstrap-secret-0123456789abcdef";
    assert_eq!(wavegate_server::ensure_admin_token(&*store, Some(fresh), now).await.unwrap(), None);
    assert!(store.has_admin_token().await.unwrap());
}

/// Issue 16, item 16: with a metrics token, `/metrics` answers only to it.
#[tokio::test]
async fn issue_16_metrics_can_require_a_token() {
    let mut app = spawn_app().await;
    let open = app.raw(Method::GET, "/metrics", None, &[], vec![]).await;
    assert_eq!(open.status, StatusCode::OK, "open by default");
    let token = "scrape-token-0123456789";
    app.state.access = Arc::new(Access {
        metrics_token: Some(wavegate_server::http::auth::hash_secret(token)),
        ..Access::default()
    });
    app.router = wavegate_server::app(app.state.clone());
    let r = app.raw(Method::GET, "/metrics", None, &[], vec![]).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    let r = app.raw(Method::GET, "/metrics", Some(ADMIN), &[], vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "an API token is not the metrics token");
    let r = app.raw(Method::GET, "/metrics", Some(token), &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.as_str().unwrap().contains("wavegate_storage_writable"), "{:?}", r.body);
}

/// Issue 16, item 16: with `/metrics` on a listener of its own, the main one answers 404 for
/// it and the metrics router serves it (with the health probes).
#[tokio::test]
async fn issue_16_metrics_can_move_to_their_own_listener() {
    let mut app = spawn_app().await;
    app.state.access = Arc::new(Access { metrics_elsewhere: true, ..Access::default() });
    app.router = wavegate_server::app(app.state.clone());
    let r = app.raw(Method::GET, "/metrics", None, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.router = wavegate_server::metrics_app(app.state.clone());
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(app.raw(Method::GET, path, None, &[], vec![]).await.status, StatusCode::OK);
    }
    let r = app.raw(Method::GET, "/api/v1/flags", Some(ADMIN), &[], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "only metrics and probes there");
}
