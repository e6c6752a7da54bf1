//! Notifications against real local HTTP receivers: one that fails first and then succeeds
//! (retried with backoff on the injected clock), Slack and JSON payloads rendered per
//! audience, the delivery log, and a receiver that never answers while a rollback goes through.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use wavegate_testkit::fixtures::{Plan, on_off};
use wavegate_testkit::poll::until;

use crate::support::{TestApp, spawn_app};

/// How long a delivery may take to show.
const WAIT: Duration = Duration::from_secs(20);

/// What a receiver saw: (headers of interest, body).
pub(crate) type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A receiver on a free port: answers 500 to the first `fail_first` requests, then 200; or
/// never answers when `hang`.
pub(crate) async fn receiver(fail_first: usize, hang: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let event = headers
                    .get("x-wavegate-event")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let n = {
                    let mut seen = s.lock().await;
                    seen.push((event, body));
                    seen.len()
                };
                if hang {
                    std::future::pending::<()>().await;
                }
                if n <= fail_first {
                    (StatusCode::INTERNAL_SERVER_ERROR, "receiver down for maintenance")
                } else {
                    (StatusCode::OK, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

/// Starts the notifier over `app` as the leading replica, with a 2 s retry base on the
/// app's manual clock, a fast poll and `timeout` per attempt.
pub(crate) fn notifier(app: &TestApp, timeout: Duration) -> tokio::sync::watch::Sender<bool> {
    let mut state = app.state.clone();
    state.outbound.notify = wavegate_server::runtime::notify::NotifyConfig {
        retry_base: Duration::from_secs(2),
        max_attempts: 3,
        timeout,
        poll: Duration::from_millis(20),
    };
    state.outbound.public_url = Some("https://wavegate.example.com".into());
    state.leadership.leading.store(true, std::sync::atomic::Ordering::Relaxed);
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(wavegate_server::runtime::notify::run(state, rx));
    tx
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app.admin(Method::GET, &format!("/api/v1/notifications/deliveries{query}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

/// Starts a rollout of `checkout` (20% → 100%); its id.
async fn start(app: &TestApp) -> String {
    app.prepare(&on_off(&["checkout"]), &Plan::new("p1", "checkout").to_string()).await;
    app.start("p1").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_first_gets_the_rollback_on_retry() {
    let app = spawn_app().await;
    let (pager_url, pager) = receiver(1, false).await;
    let (mgr_url, mgr) = receiver(0, false).await;
    let r = app
        .admin(
            Method::PUT,
            "/api/v1/notifications/targets/pager",
            Some(json!({"audience": "on-call", "url": pager_url, "format": "slack", "events": ["rolled_back", "paused"], "environments": ["prod"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let template = "{{ title }}: {{ release }} at {{ exposure }} ({{ reason }}) by {{ actor }}";
    let r = app
        .admin(
            Method::PUT,
            "/api/v1/notifications/targets/release-managers",
            Some(json!({"audience": "manager", "url": mgr_url, "templates": {"rolled_back": template}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let _stop = notifier(&app, Duration::from_secs(5));

    let id = start(&app).await;
    let r = app.command(&id, "rollback", "checkout errors up").await;
    assert_eq!(r.body["state"], "rolled_back", "{:?}", r.body);

    // The manager target hears of nothing it did not ask for… it asked for everything, and
    // only the rollback happened (start is not an event).
    until("the manager's rollback notice", WAIT, || async { !mgr.lock().await.is_empty() }).await;
    let (event, body) = mgr.lock().await[0].clone();
    assert_eq!(event, "rolled_back");
    assert_eq!(body["audience"], "manager");
    assert_eq!(body["text"], "Rolled back: checkout 1.0.0 at 20% (checkout errors up) by admin");
    assert_eq!(body["url"], format!("https://wavegate.example.com/#/rollouts/{id}"));
    assert_eq!(body["rollout"]["id"], id.as_str());

    // The pager's first attempt fails (500) and is retried after the backoff.
    until("the pager's first attempt", WAIT, || async {
        deliveries(&app, "?target=pager").await.first().is_some_and(|d| d["attempts"] == 1)
    })
    .await;
    let d = &deliveries(&app, "?target=pager").await[0];
    assert_eq!((d["status"].clone(), d["http_status"].clone()), (json!("pending"), json!(500)));
    assert!(d["last_error"].as_str().unwrap().contains("receiver down for maintenance"), "{d}");
    assert_eq!(pager.lock().await.len(), 1, "not retried before its backoff is due");
    app.clock.advance(chrono::Duration::seconds(2));
    until("the retry to be delivered", WAIT, || async {
        deliveries(&app, "?target=pager").await[0]["status"] == "delivered"
    })
    .await;
    let d = &deliveries(&app, "?target=pager").await[0];
    assert_eq!((d["attempts"].clone(), d["http_status"].clone()), (json!(2), json!(200)));
    let seen = pager.lock().await.clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, seen[1].1, "the retry sends the same payload");
    let slack = &seen[1].1;
    let text = slack["text"].as_str().unwrap();
    assert!(text.starts_with("[prod] ROLLED BACK"), "{text}");
    assert!(text.contains("checkout errors up"), "{text}");
    assert_eq!(slack["blocks"][0]["type"], "section");
    assert!(
        slack["blocks"][1]["elements"][0]["text"].as_str().unwrap().contains("Open in wavegate")
    );

    // Filters and validation of the log.
    assert_eq!(deliveries(&app, "?status=delivered").await.len(), 2);
    assert!(deliveries(&app, "?status=failed").await.is_empty());
    let r = app.admin(Method::GET, "/api/v1/notifications/deliveries?status=lost", None).await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("status"))
    );
    let m = app.raw(Method::GET, "/metrics", None, &[], vec![]).await.body;
    assert!(m.as_str().unwrap().contains("wavegate_notifications_delivered_total 2"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_does_not_delay_a_rollback() {
    let app = spawn_app().await;
    let (url, seen) = receiver(0, true).await;
    let r = app
        .admin(
            Method::PUT,
            "/api/v1/notifications/targets/black-hole",
            Some(json!({"audience": "on-call", "url": url})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Attempts may take an hour: the receiver will still be holding the first one below.
    let _stop = notifier(&app, Duration::from_secs(3600));
    let id = start(&app).await;
    let r = app.command(&id, "pause", "look").await;
    assert_eq!(r.body["state"], "paused");
    until("the receiver to be holding the pause notice", WAIT, || async {
        !seen.lock().await.is_empty()
    })
    .await;

    // While that request hangs, a rollback goes through, and its own notice queues.
    let r = app.command(&id, "rollback", "bad").await;
    assert_eq!(r.body["state"], "rolled_back");
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert_eq!(flag["spec"]["environments"]["prod"], json!({"enabled": true}), "flag restored");
    until("both notices to be in flight", WAIT, || async { seen.lock().await.len() == 2 }).await;
    let log = deliveries(&app, "").await;
    assert_eq!(log.len(), 2);
    assert!(
        log.iter().all(|d| d["status"] == "pending" && d["attempts"] == 0),
        "both still waiting on the receiver: {log:?}"
    );
}

#[tokio::test]
async fn targets_are_validated_audited_and_need_a_global_admin() {
    let app = spawn_app().await;
    let put = |body: Value| {
        let app = &app;
        async move { app.admin(Method::PUT, "/api/v1/notifications/targets/t1", Some(body)).await }
    };
    let r = put(json!({"audience": "on-call", "url": "not a url"})).await;
    assert_eq!(
        (r.status, r.body["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("url"))
    );
    let r = put(json!({"audience": "board", "url": "http://x/"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("`on-call`"), "{:?}", r.body);
    let r = put(
        json!({"audience": "manager", "url": "http://x/", "templates": {"paused": "{% if %}"}}),
    )
    .await;
    assert_eq!(r.body["field"], "templates.paused", "{:?}", r.body);
    let r = put(json!({"audience": "manager", "url": "https://hooks.example.com/services/SECRET"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["events"].as_array().unwrap().len(), 12, "all events by default");
    // A champion target reaches one person; no other audience names one.
    let r = put(json!({"audience": "champion", "url": "http://x/"})).await;
    assert_eq!(r.body["field"], "person", "{:?}", r.body);
    let r = put(json!({"audience": "manager", "person": "dana", "url": "http://x/"})).await;
    assert_eq!(r.body["field"], "person", "{:?}", r.body);
    let r = put(json!({"audience": "manager", "url": "https://hooks.example.com/services/SECRET"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let audit = app.admin(Method::GET, "/api/v1/audit?target=notify:t1", None).await.body;
    assert_eq!(audit.as_array().unwrap().len(), 1, "unchanged puts are not audited");
    assert!(!audit.to_string().contains("SECRET"), "webhook secrets stay out of the audit log");

    let r = app.admin(Method::DELETE, "/api/v1/notifications/targets/t1", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.admin(Method::DELETE, "/api/v1/notifications/targets/t1", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_button_reports_how_the_receiver_answered() {
    let app = spawn_app().await;
    let (url, seen) = receiver(1, false).await;
    app.admin(
        Method::PUT,
        "/api/v1/notifications/targets/t",
        Some(json!({"audience": "executive", "url": url})),
    )
    .await;
    let r = app.admin(Method::POST, "/api/v1/notifications/targets/t/test", None).await;
    assert_eq!((r.body["ok"].clone(), r.body["http_status"].clone()), (json!(false), json!(500)));
    let r =
        app.admin(Method::POST, "/api/v1/notifications/targets/t/test?event=completed", None).await;
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    assert_eq!(r.body["text"], "example 1.2.3 is live for everyone in prod.");
    assert_eq!(seen.lock().await.len(), 2);
    assert!(deliveries(&app, "").await.is_empty(), "tests are not in the delivery log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_targets_sign_each_request_and_never_show_their_secret() {
    let app = spawn_app().await;
    type Raw = Arc<Mutex<Vec<(axum::http::HeaderMap, axum::body::Bytes)>>>;
    let raw: Raw = Arc::default();
    let r2 = raw.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let r2 = r2.clone();
            async move {
                r2.lock().await.push((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    let secret = "s3cret-signing-key-0123456789";
    let r = app
        .admin(
            Method::PUT,
            "/api/v1/notifications/targets/signed",
            Some(json!({"audience": "on-call", "url": url, "secret": secret})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["signed"], true);
    assert!(!r.body.to_string().contains(secret), "the secret is never shown: {}", r.body);
    let audit = app.admin(Method::GET, "/api/v1/audit?target=notify:signed", None).await.body;
    assert!(!audit.to_string().contains(secret), "nor audited");
    let r = app
        .admin(
            Method::PUT,
            "/api/v1/notifications/targets/weak",
            Some(json!({"audience": "on-call", "url": "http://x/", "secret": "short"})),
        )
        .await;
    assert_eq!(r.body["field"], "secret");

    let r = app.admin(Method::POST, "/api/v1/notifications/targets/signed/test", None).await;
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
    let (headers, body) = raw.lock().await[0].clone();
    let ts: i64 = headers["x-wavegate-timestamp"].to_str().unwrap().parse().unwrap();
    let sig = headers["x-wavegate-signature"].to_str().unwrap();
    assert_eq!(sig, wavegate_server::runtime::notify::signature(secret, ts, &body));
    // Verified independently of wavegate's own function.
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&body);
    assert_eq!(sig, format!("sha256={}", hex::encode(mac.finalize().into_bytes())));
    assert_ne!(
        sig,
        wavegate_server::runtime::notify::signature("another-secret-entirely", ts, &body)
    );
}

/// Issue 16 item 2: signed checkpoints also go to the notification targets that name the
/// `checkpoint` event (none hears it by default), whole, so the receiver can keep them for
/// `audit verify --checkpoints`; one for the entry a rollback notice reports goes out too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_go_to_the_targets_that_ask_for_them() {
    use wavegate_server::checkpoint::Signer;
    let app = spawn_app().await;
    let (auditors_url, auditors) = receiver(0, false).await;
    let (all_url, all) = receiver(0, false).await;
    let targets = [
        (
            "auditors",
            json!({"audience": "manager", "url": auditors_url, "events": ["checkpoint", "rolled_back"]}),
        ),
        ("everything", json!({"audience": "on-call", "url": all_url})),
    ];
    for (name, spec) in targets {
        let path = format!("/api/v1/notifications/targets/{name}");
        let r = app.admin(Method::PUT, &path, Some(spec)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let id = start(&app).await;
    let r = app.command(&id, "rollback", "checkpoint drill").await;
    assert_eq!(r.body["state"], "rolled_back", "{:?}", r.body);
    let signer = Signer::from_pkcs8(Signer::generate_pem().unwrap().as_bytes()).unwrap();
    let key = signer.public_key().to_owned();
    let cfg = wavegate_server::runtime::checkpoint::CheckpointConfig {
        signer: Arc::new(signer),
        dir: None,
        every: Duration::from_secs(3600),
    };
    let cp = wavegate_server::runtime::checkpoint::checkpoint(&app.state, &cfg).await.unwrap();
    let cp = cp.expect("a head to sign");
    let _stop = notifier(&app, Duration::from_secs(5));

    until("the checkpoint and the rollback notice", WAIT, || async {
        auditors.lock().await.len() >= 2
    })
    .await;
    let seen = auditors.lock().await.clone();
    let events: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
    assert!(events.contains(&"checkpoint") && events.contains(&"rolled_back"), "{events:?}");
    let body = &seen.iter().find(|(e, _)| e == "checkpoint").unwrap().1;
    assert_eq!(body["audit_seq"], cp.seq, "{body}");
    // The checkpoint signs the rollback's own entry: both deliveries share its sequence number.
    let rollback = &seen.iter().find(|(e, _)| e == "rolled_back").unwrap().1;
    assert_eq!(rollback["audit_seq"], cp.seq, "{rollback}");
    let sent: wavegate_server::checkpoint::Checkpoint =
        serde_json::from_value(body["checkpoint"].clone()).unwrap();
    assert_eq!(sent, cp);
    wavegate_server::checkpoint::verify(&sent, Some(&key)).expect("the signature verifies");
    assert!(body["text"].as_str().unwrap().contains("audit verify --checkpoints"), "{body}");
    // The target that asked for every rollout event hears the rollback, not the checkpoint.
    until("the other target's rollback notice", WAIT, || async { !all.lock().await.is_empty() })
        .await;
    assert!(all.lock().await.iter().all(|(e, _)| e != "checkpoint"));
    let log = deliveries(&app, "?target=auditors").await;
    assert!(log.iter().any(|d| d["event"] == "checkpoint"), "{log:?}");
}

/// Issue 19, items 4–5: reviewers hear of a change request for a protected environment, and the
/// on-call of an emergency change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_hear_of_change_requests_and_on_call_of_emergencies() {
    let app = spawn_app().await;
    let (mgr_url, mgr) = receiver(0, false).await;
    let (pager_url, pager) = receiver(0, false).await;
    for (name, audience, url) in [("cab", "manager", &mgr_url), ("pager", "on-call", &pager_url)] {
        let body = json!({"audience": audience, "url": url, "environments": ["prod"]});
        let r = app
            .admin(Method::PUT, &format!("/api/v1/notifications/targets/{name}"), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    app.apply_yaml(&on_off(&["checkout"])).await;
    let r = app
        .admin(Method::PUT, "/api/v1/environments/prod/protection", Some(json!({"approvals": 1})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let _stop = notifier(&app, Duration::from_secs(5));

    let flag = json!({"variants": {"on": true, "off": false}, "default": "off",
                      "environments": {"prod": {"enabled": false}}});
    let change =
        json!({"description": "checkout off", "record": "CHG-9", "flags": {"checkout": flag}});
    let r = app.admin(Method::POST, "/api/v1/changes", Some(change)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    until("the reviewers' notice", WAIT, || async { !mgr.lock().await.is_empty() }).await;
    let (event, body) = mgr.lock().await[0].clone();
    assert_eq!(event, "change_proposed");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with(&format!("Review needed: change request {id} by admin for prod: checkout off (1 approval(s), record CHG-9)")), "{text}");

    let mut hot = flag.clone();
    hot["description"] = json!("hotfix");
    let emergency = json!({"description": "back on", "flags": {"checkout": hot}, "emergency": "INC-4 checkout down"});
    let r = app.admin(Method::POST, "/api/v1/changes", Some(emergency)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let hot_id = r.body["id"].as_str().unwrap().to_owned();
    until("the on-call's emergency notice", WAIT, || async {
        pager.lock().await.iter().any(|(e, _)| e == "emergency")
    })
    .await;
    let seen = pager.lock().await.clone();
    let (_, body) = seen.iter().find(|(e, _)| e == "emergency").unwrap();
    let text = body["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "[dev, prod, staging] EMERGENCY change {hot_id} by admin: INC-4 checkout down (back on). Post-incident review due."
        )
    );
}

/// Issue 23 item 6: Microsoft Teams gets an Adaptive Card; PagerDuty's Events API v2 gets a
/// trigger when a rollout is paused and a resolve with the same dedup key when it moves on, the
/// routing key (the target's secret) in the body sent but never in the delivery log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_get_adaptive_cards_and_pagerduty_a_trigger_then_a_resolve() {
    let app = spawn_app().await;
    let (teams_url, teams) = receiver(0, false).await;
    let (pd_url, pd) = receiver(0, false).await;
    let put = |name: &str, body: Value| {
        let path = format!("/api/v1/notifications/targets/{name}");
        let app = &app;
        async move { app.admin(Method::PUT, &path, Some(body)).await }
    };
    let r = put("teams", json!({"audience": "manager", "url": teams_url, "format": "teams"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r =
        put("pd-nokey", json!({"audience": "on-call", "url": pd_url, "format": "pagerduty"})).await;
    assert_eq!(r.body["field"], "secret", "{:?}", r.body);
    let key = "R0UT1NGKEY0123456789abcdef";
    let r = put(
        "pd",
        json!({"audience": "on-call", "url": pd_url, "format": "pagerduty", "secret": key}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let _stop = notifier(&app, Duration::from_secs(5));

    let id = start(&app).await;
    let r = app.command(&id, "pause", "checkout errors up [see](https://evil.example)").await;
    assert_eq!(r.body["state"], "paused", "{:?}", r.body);
    until("the PagerDuty trigger", WAIT, || async { !pd.lock().await.is_empty() }).await;
    let trigger = pd.lock().await[0].1.clone();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], key);
    assert_eq!(trigger["dedup_key"], format!("wavegate-{id}"));
    assert_eq!(
        (trigger["payload"]["severity"].clone(), trigger["payload"]["source"].clone()),
        (json!("warning"), json!("wavegate"))
    );
    assert!(trigger["payload"]["summary"].as_str().unwrap().contains("PAUSED"), "{trigger}");
    let logged = deliveries(&app, "?target=pd").await;
    assert!(
        !logged[0].to_string().contains(key),
        "the routing key stays out of the log: {}",
        logged[0]
    );

    until("the Teams card", WAIT, || async { !teams.lock().await.is_empty() }).await;
    let card = teams.lock().await[0].1.clone();
    assert_eq!(card["type"], "message");
    let content = &card["attachments"][0]["content"];
    assert_eq!(
        (card["attachments"][0]["contentType"].clone(), content["type"].clone()),
        (json!("application/vnd.microsoft.card.adaptive"), json!("AdaptiveCard"))
    );
    let text = content["body"][1]["text"].as_str().unwrap();
    assert!(
        text.contains("paused") && text.contains(r"\[see\](https"),
        "a reason cannot make a link: {text}"
    );
    assert_eq!(content["body"][2]["type"], "FactSet");

    // Resumed and promoted: PagerDuty resolves the same alert.
    app.command(&id, "resume", "fixed").await;
    app.tick().await;
    until("the PagerDuty resolve", WAIT, || async { pd.lock().await.len() >= 2 }).await;
    let resolve = pd.lock().await[1].1.clone();
    assert_eq!(
        (resolve["event_action"].clone(), resolve["dedup_key"].clone()),
        (json!("resolve"), json!(format!("wavegate-{id}")))
    );
    assert!(resolve.get("payload").is_none(), "{resolve}");
}
