//! Issue 16, item 11: URLs that arrive through the API (plan checks and webhook gates, a
//! guardrail's `prometheus_url`, notification targets) reach no loopback, link-local or
//! metadata address unless `serve --allow-outbound` says so — not as written, not as resolved,
//! not through a redirect; what a response says is kept short and shown only to admins for all
//! environments; checks and gates are signed like notifications.
//! See: issue 16, item 11.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use wavegate_server::outbound::policy::Policy;
use wavegate_server::outbound::reply::WITHHELD;
use wavegate_server::outbound::{Guard, Lookup};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{TestApp, spawn_app_allowing};

/// What a test server saw: each request's headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// Serves `app` on `ip`, port 0; its base URL.
async fn serve_on(ip: &str, app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A server on 127.0.0.1 that answers every request with `status` and `body`, counting them
/// and keeping what it was sent.
async fn endpoint(status: StatusCode, body: String) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, bytes: axum::body::Bytes| {
        let (s, body) = (s.clone(), body.clone());
        async move {
            s.lock().await.push((headers, bytes.to_vec()));
            (status, [("content-type", "application/json")], body)
        }
    });
    (serve_on("127.0.0.1", app).await, seen)
}

/// A Prometheus that reads 0.01 for every query, counting the queries.
async fn prometheus() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async {
                axum::Json(json!({"status": "success", "data": {"resultType": "vector",
                    "result": [{"metric": {}, "value": [0, "0.01"]}]}}))
            }
        }),
    );
    (serve_on("127.0.0.1", app).await, hits)
}

/// Plan `name` for flag `flag` with `section` (checks or guardrails).
fn plan(name: &str, flag: &str, section: &str) -> String {
    Plan::new(name, flag).section(section).to_string()
}

fn check(url: &str, when: &str) -> String {
    format!(
        "checks:\n  - name: health\n    when: [{when}]\n    http: {{ url: \"{url}\" }}\n    retries: 0\n    action: rollback\n"
    )
}

fn prometheus_guardrail(url: &str) -> String {
    format!(
        "guardrails:\n  - name: errors\n    source: prometheus\n    prometheus_url: \"{url}\"\n    query: 'x'\n    comparison: bound\n    bound: 0.05\n    action: rollback\n"
    )
}

/// Swaps `app`'s outbound guard, as restarting `serve` with other `--allow-outbound` does.
fn restart_with(app: &mut TestApp, guard: Guard) {
    app.state.outbound.guard = guard;
    app.router = wavegate_server::app(app.state.clone());
}

async fn put_target(app: &TestApp, name: &str, url: &str) -> crate::support::Reply {
    let path = format!("/api/v1/notifications/targets/{name}");
    app.admin(Method::PUT, &path, Some(json!({"audience": "on-call", "url": url}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_urls_naming_refused_addresses_are_refused_when_written() {
    let app = spawn_app_allowing(&[]).await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    for (section, field, why) in [
        (check("http://127.0.0.1:9/health", "before_start"), "checks[0].http.url", "127.0.0.1, a loopback address"),
        (check("http://[::ffff:169.254.169.254]/latest", "before_start"), "checks[0].http.url", "169.254.169.254, a cloud metadata address"),
        ("checks:\n  - { name: gate, webhook: { url: \"http://localhost:8080/gate\" }, action: pause }\n".into(), "checks[0].webhook.url", "localhost, a loopback address"),
        (prometheus_guardrail("http://[::1]:9090"), "guardrails[0].prometheus_url", "::1, a loopback address"),
    ] {
        let r = app.post_plan(&plan("p1", "checkout", &section)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{section}: {:?}", r.body);
        assert_eq!(r.body["field"], field, "{:?}", r.body);
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(why) && message.contains("--allow-outbound"), "{message}");
    }
    for (url, why) in [
        ("http://127.0.0.1:9/hook", "a loopback address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "a cloud metadata address"),
        ("http://[fe80::1]/hook", "a link-local address"),
        ("http://0.0.0.0:9/hook", "an unspecified address"),
    ] {
        let r = put_target(&app, "pager", url).await;
        assert_eq!(
            (r.status, r.body["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("url")),
            "{url}"
        );
        assert!(r.body["message"].as_str().unwrap().contains(why), "{:?}", r.body);
    }
    // Private and public addresses are not the policy's business.
    assert_eq!(put_target(&app, "pager", "http://10.1.2.3/hook").await.status, StatusCode::CREATED);

    // `--allow-outbound 127.0.0.1/32` lets exactly that address through.
    let app = spawn_app_allowing(&["127.0.0.1/32"]).await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    let r = app
        .post_plan(&plan("p1", "checkout", &check("http://127.0.0.1:9/health", "before_start")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        put_target(&app, "pager", "http://127.0.0.1:9/hook").await.status,
        StatusCode::CREATED
    );
    let r = put_target(&app, "other", "http://127.0.0.2:9/hook").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
}

/// The connection-time check holds whatever was stored before (a plan or target written while
/// the server allowed loopback, or restored from a backup).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_stored_loopback_urls_are_never_reached_without_allow_outbound() {
    let (probe, probed) = endpoint(StatusCode::OK, "{}".into()).await;
    let (hook, hooked) = endpoint(StatusCode::OK, "ok".into()).await;
    let (prom, queried) = prometheus().await;
    let mut app = spawn_app_allowing(&["127.0.0.1/32"]).await;
    app.apply_yaml(&on_off(&["checkout", "search"])).await;
    let r = app
        .post_plan(&plan("checked", "checkout", &check(&format!("{probe}/health"), "before_start")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app.post_plan(&plan("measured", "search", &prometheus_guardrail(&prom))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        put_target(&app, "pager", &format!("{hook}/hook")).await.status,
        StatusCode::CREATED
    );

    restart_with(&mut app, Guard::default());
    // A plan check: the start is refused, saying why; nothing was sent.
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "checked"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains("refused by the outbound policy: 127.0.0.1, a loopback address"),
        "{message}"
    );
    assert!(message.contains("serve --allow-outbound 127.0.0.1"), "{message}");
    // A notification target's test send.
    let r = app.admin(Method::POST, "/api/v1/notifications/targets/pager/test", None).await;
    assert_eq!(r.body["ok"], false, "{:?}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("refused by the outbound policy"),
        "{:?}",
        r.body
    );
    // A guardrail's own Prometheus: inconclusive, saying why.
    let id = app.start("measured").await;
    app.tick().await;
    let s = app.rollout(&id).await;
    let v =
        s["verdicts"].as_array().unwrap().iter().find(|v| v["name"] == "errors").unwrap().clone();
    assert_eq!(v["verdict"], "inconclusive", "{v}");
    let why = v["report"]["explanation"].as_str().unwrap();
    assert!(why.contains("not sent: refused by the outbound policy: 127.0.0.1"), "{why}");
    assert!(probed.lock().await.is_empty() && hooked.lock().await.is_empty());
    assert_eq!(queried.load(Ordering::SeqCst), 0);

    // Started again with `--allow-outbound 127.0.0.1/32`, the same URLs work.
    restart_with(&mut app, Guard::new(Policy::parse(["127.0.0.1/32"]).unwrap()));
    app.start("checked").await;
    assert_eq!(probed.lock().await.len(), 1);
    let r = app.admin(Method::POST, "/api/v1/notifications/targets/pager/test", None).await;
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    app.tick().await;
    assert!(queried.load(Ordering::SeqCst) > 0);
}

/// Answers `rebind.test` with 127.0.0.1, as a name an attacker controls can (DNS rebinding).
struct Rebinding;

#[async_trait::async_trait]
impl Lookup for Rebinding {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        match host {
            "rebind.test" => Ok(vec!["127.0.0.1".parse().unwrap()]),
            _ => Err(std::io::Error::other(format!("{host}: no such name"))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_name_resolving_to_loopback_is_refused_as_it_connects() {
    let (probe, probed) = endpoint(StatusCode::OK, "{}".into()).await;
    let port = probe.rsplit(':').next().unwrap();
    let mut app = spawn_app_allowing(&[]).await;
    restart_with(&mut app, Guard::with_lookup(Policy::default(), Arc::new(Rebinding)));
    app.apply_yaml(&on_off(&["checkout"])).await;
    // A name is not refused when written: what it resolves to may change.
    let url = format!("http://rebind.test:{port}/health");
    let r = app.post_plan(&plan("p1", "checkout", &check(&url, "before_start"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains(
            "refused by the outbound policy: rebind.test resolves to 127.0.0.1, a loopback address"
        ),
        "{message}"
    );
    assert!(probed.lock().await.is_empty());
    // Listed by name, it is reached whatever it resolves to.
    let listed = Policy::parse(["rebind.test"]).unwrap();
    restart_with(&mut app, Guard::with_lookup(listed, Arc::new(Rebinding)));
    app.start("p1").await;
    assert_eq!(probed.lock().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_redirects_to_refused_addresses_are_not_followed() {
    // The secret lives on 127.0.0.2, which `--allow-outbound 127.0.0.1/32` does not cover.
    let secret_hits = Arc::new(AtomicUsize::new(0));
    let h = secret_hits.clone();
    let secret = serve_on(
        "127.0.0.2",
        axum::Router::new().fallback(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(json!({"status": "ok", "secret": "s3cr3t"})) }
        }),
    )
    .await;
    let to = format!("{secret}/internal");
    let redirector = serve_on(
        "127.0.0.1",
        axum::Router::new().fallback(move || {
            let to = to.clone();
            async move { axum::response::Redirect::temporary(&to).into_response() }
        }),
    )
    .await;
    let app = spawn_app_allowing(&["127.0.0.1/32"]).await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    let r = app
        .post_plan(&plan("p1", "checkout", &check(&format!("{redirector}/health"), "before_start")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains(&format!("redirect to {secret}/internal not followed")), "{message}");
    assert!(message.contains("127.0.0.2, a loopback address"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_response_bodies_are_short_and_shown_only_to_admins_for_all_environments() {
    // An internal service that answers with a megabyte, its secret at the start.
    let huge = format!("{{\"secret\": \"TOPSECRET\", \"pad\": \"{}\"}}", "x".repeat(1 << 20));
    let (probe, _) = endpoint(StatusCode::SERVICE_UNAVAILABLE, huge.clone()).await;
    let (hook, _) = endpoint(StatusCode::INTERNAL_SERVER_ERROR, huge).await;
    let app = spawn_app_allowing(&["127.0.0.1"]).await;
    app.apply_yaml(&on_off(&["checkout", "search"])).await;
    let prod_admin = app.token("admin", &["prod"]).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let as_prod = |method: Method, path: &str, body: Option<Value>| {
        let (app, token, path) = (&app, prod_admin.clone(), path.to_owned());
        async move { app.call(method, &path, Some(&token), body).await }
    };

    // A notification target whose receiver refuses every message, wordily.
    assert_eq!(
        put_target(&app, "pager", &format!("{hook}/hook")).await.status,
        StatusCode::CREATED
    );

    // A smoke check that fails after the first exposure: the rollout rolls back on its evidence.
    let r = app
        .post_plan(&plan("p1", "checkout", &check(&format!("{probe}/health"), "after_exposure")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = app.start("p1").await;
    let path = format!("/api/v1/rollouts/{id}");
    let full = app.admin(Method::GET, &path, None).await.body;
    assert_eq!(full["state"], "rolled_back", "{full}");
    let evidence = |view: &Value| {
        view["verdicts"].as_array().unwrap().iter().find(|v| v["name"] == "health").unwrap()["report"].clone()
    };
    let body = evidence(&full)["body"].as_str().unwrap().to_owned();
    assert!(body.starts_with("⟦{\"secret\": \"TOPSECRET\"") && body.ends_with("…⟧"), "{body}");
    assert!(body.len() <= 256 + "⟦…⟧".len(), "kept short: {} bytes", body.len());
    for (who, token) in
        [("an admin for prod", prod_admin.as_str()), ("a server-sdk token", sdk.as_str())]
    {
        let view = app.call(Method::GET, &path, Some(token), None).await.body;
        let ev = evidence(&view);
        assert_eq!(
            (ev["status"].clone(), ev["body"].clone()),
            (json!(503), json!(WITHHELD)),
            "{who}: {ev}"
        );
        let verdicts =
            app.call(Method::GET, &format!("{path}/verdicts"), Some(token), None).await.body;
        assert!(!verdicts.to_string().contains("TOPSECRET"), "{who}: {verdicts}");
    }
    let audit =
        as_prod(Method::GET, &format!("/api/v1/audit?target=rollout:{id}"), None).await.body;
    assert!(
        audit.to_string().contains("503") && !audit.to_string().contains("TOPSECRET"),
        "{audit}"
    );
    let report = as_prod(Method::GET, &format!("{path}/report"), None).await.body;
    assert!(!report.to_string().contains("TOPSECRET"), "{report}");
    assert!(
        app.admin(Method::GET, &format!("/api/v1/audit?target=rollout:{id}"), None)
            .await
            .body
            .to_string()
            .contains("TOPSECRET")
    );

    // A refused start tells its requester the status, not what the service said.
    let r = app
        .post_plan(&plan("p2", "search", &check(&format!("{probe}/health"), "before_start")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = as_prod(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p2"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains("503") && message.contains(WITHHELD) && !message.contains("TOPSECRET"),
        "{message}"
    );

    // The delivery log: the receiver's status for every admin, its words for admins of all.
    let r = app.admin(Method::POST, "/api/v1/notifications/targets/pager/test", None).await;
    let error = r.body["error"].as_str().unwrap();
    assert!(
        error.starts_with("HTTP 500: ⟦{\"secret\": \"TOPSECRET\"") && error.len() < 300,
        "{error}"
    );
    wavegate_server::runtime::notify::enqueue_new(&app.state).await.unwrap();
    let mut state = app.state.clone();
    state.leadership.leading.store(true, Ordering::Relaxed);
    state.outbound.notify.max_attempts = 1;
    state.outbound.notify.poll = std::time::Duration::from_millis(20);
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(wavegate_server::runtime::notify::run(state, rx));
    let failed = "/api/v1/notifications/deliveries?status=failed";
    wavegate_testkit::poll::until(
        "the failed delivery",
        std::time::Duration::from_secs(20),
        || async {
            !app.admin(Method::GET, failed, None).await.body.as_array().unwrap().is_empty()
        },
    )
    .await;
    stop.send(true).unwrap();
    let mine = as_prod(Method::GET, failed, None).await.body;
    let d = mine[0].clone();
    assert_eq!(
        (d["http_status"].clone(), d["last_error"].clone()),
        (json!(500), json!(format!("HTTP 500: {WITHHELD}"))),
        "{mine}"
    );
    let all = app.admin(Method::GET, failed, None).await.body;
    assert!(all[0]["last_error"].as_str().unwrap().contains("TOPSECRET"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_checks_and_gates_are_signed_like_notifications() {
    let (gate, gated) = endpoint(StatusCode::OK, json!({"pass": true}).to_string()).await;
    let (probe, probed) = endpoint(StatusCode::OK, "{}".into()).await;
    let mut app = spawn_app_allowing(&["127.0.0.1"]).await;
    let secret = "a-check-signing-secret";
    app.state.outbound.checks.secret =
        Some(wavegate_server::outbound::SigningSecret::new(secret).unwrap());
    app.router = wavegate_server::app(app.state.clone());
    app.apply_yaml(&on_off(&["checkout"])).await;
    let checks = format!(
        "checks:\n  - {{ name: cab, when: [before_start], webhook: {{ url: \"{gate}/gate\" }}, action: pause }}\n  - {{ name: health, when: [before_start], http: {{ url: \"{probe}/health\" }}, action: rollback }}\n"
    );
    let r = app.post_plan(&plan("p1", "checkout", &checks)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    app.start("p1").await;
    for (what, seen) in [("the webhook gate", &gated), ("the probe", &probed)] {
        let seen = seen.lock().await;
        let (headers, body) = seen.first().unwrap_or_else(|| panic!("{what} was not called"));
        let header = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
        };
        let timestamp: i64 = header("x-wavegate-timestamp")
            .parse()
            .unwrap_or_else(|_| panic!("{what}: no timestamp"));
        assert!(
            (chrono::Utc::now().timestamp() - timestamp).abs() < 60,
            "{what}: a current timestamp"
        );
        let want = wavegate_server::runtime::notify::signature(secret, timestamp, body);
        assert_eq!(header("x-wavegate-signature"), want, "{what}");
        assert_eq!(header("x-wavegate-check"), if what == "the probe" { "health" } else { "cab" });
    }
    let gate_body: Value = serde_json::from_slice(&gated.lock().await[0].1).unwrap();
    assert_eq!(gate_body["point"], "before_start", "the signature covers the facts as sent");
    // Never shown: the secret is the operator's file, not the plan's.
    let plan_text = app.admin(Method::GET, "/api/v1/plans/p1", None).await.body.to_string();
    assert!(!plan_text.contains(secret));
}
