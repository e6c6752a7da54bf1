//! A person and the controller at the same rollout: the controller gathers its facts (here, a
//! before-promotion check against an endpoint that accepts and never answers) without a lock,
//! so a person's rollback or pause is answered at once, and the controller's decision yields to
//! it at the revision check instead of overwriting it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{ADMIN, TestApp, spawn_app};

/// A TCP endpoint that accepts every connection and, while `hang` is set, never answers (it
/// keeps the socket open); otherwise it answers `200 OK`. Each accepted connection is
/// announced on the returned channel.
async fn endpoint() -> (String, Arc<AtomicBool>, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let hang = Arc::new(AtomicBool::new(true));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = hang.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let _ = tx.send(());
            if h.load(Ordering::SeqCst) {
                held.push(sock);
                continue;
            }
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (format!("http://{addr}/ready"), hang, rx)
}

const FLAG: &str = "flags:\n  checkout:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      prod: { enabled: true }\n";

/// Two waves (10% → 100%) with a before-promotion check against `url` (2 s timeout, no
/// retries) whose failure rolls back.
async fn started(url: &str) -> (TestApp, String) {
    let app = spawn_app().await;
    app.apply_yaml(FLAG).await;
    let plan = format!(
        r#"name: p1
release: {{ name: checkout, version: 1.0.0, risk: low }}
flag: checkout
new_variant: "on"
control_variant: "off"
environment: prod
owners: {{ requester: admin }}
checks:
  - name: ready
    when: [before_promotion]
    http: {{ url: "{url}", expect_status: 200 }}
    timeout: 2s
    retries: 0
    action: rollback
waves:
  - {{ exposure: 10% }}
  - {{ exposure: 100% }}
"#
    );
    let r = app
        .raw(
            Method::POST,
            "/api/v1/plans",
            Some(ADMIN),
            &[("content-type", "application/yaml")],
            plan.into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    (app, id)
}

/// Waits (with a deadline) until the controller's check has connected to the endpoint.
async fn inside_the_check(rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>) {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the controller reached the check within 30 s")
        .expect("endpoint alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_during_a_hanging_check_is_answered_at_once() {
    let (url, _hang, mut accepted) = endpoint().await;
    let (app, id) = started(&url).await;
    let state = app.state.clone();
    let tick =
        tokio::spawn(async move { wavegate_server::runtime::controller::tick(&state).await });
    inside_the_check(&mut accepted).await;

    let t = Instant::now();
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/rollouts/{id}/rollback"),
            Some(json!({"reason": "on-call: checkout errors"})),
        )
        .await;
    let took = t.elapsed();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "rolled_back");
    assert!(took < Duration::from_secs(1), "the rollback took {took:?} behind the controller");
    assert!(!tick.is_finished(), "the controller was still inside its check");

    // The controller's check times out; its decision yields to the person's rollback.
    assert_eq!(tick.await.unwrap().unwrap(), 1);
    let s = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body;
    assert_eq!((s["state"].clone(), s["wave"].clone()), (json!("rolled_back"), json!(1)), "{s}");
    assert_eq!(s["reason"], "rolled back by admin: on-call: checkout errors", "{s}");
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert_eq!(flag["spec"]["environments"]["prod"], json!({"enabled": true}), "restored");
    let audit =
        app.admin(Method::GET, &format!("/api/v1/audit?target=rollout:{id}"), None).await.body;
    let actions: Vec<&str> =
        audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions.iter().filter(|a| a.contains("rollback") || a.contains("rolled")).count(),
        1,
        "rolled back once, by the person: {actions:?}"
    );
    assert_eq!(app.admin(Method::GET, "/api/v1/audit/verify", None).await.body["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_decides_correctly_after_a_pause_during_its_check() {
    let (url, hang, mut accepted) = endpoint().await;
    let (app, id) = started(&url).await;
    let state = app.state.clone();
    let tick =
        tokio::spawn(async move { wavegate_server::runtime::controller::tick(&state).await });
    inside_the_check(&mut accepted).await;

    let t = Instant::now();
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/rollouts/{id}/pause"),
            Some(json!({"reason": "waiting for the CAB"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(t.elapsed() < Duration::from_secs(1), "the pause took {:?}", t.elapsed());

    // The check times out: the controller would roll back, but the rollout was paused while
    // it decided, so it does not act on stale facts.
    tick.await.unwrap().unwrap();
    let s = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body;
    assert_eq!((s["state"].clone(), s["wave"].clone()), (json!("paused"), json!(1)), "{s}");
    assert_eq!(s["reason"], "paused by admin: waiting for the CAB", "{s}");

    // Resumed, with the endpoint answering: the next tick promotes through the check.
    hang.store(false, Ordering::SeqCst);
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/rollouts/{id}/resume"),
            Some(json!({"reason": "CAB said yes"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    wavegate_server::runtime::controller::tick(&app.state).await.unwrap();
    let s = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body;
    assert_eq!(s["wave"], 2, "{s}");
    assert_ne!(s["state"], "rolled_back", "{s}");
    let ready: Vec<_> =
        s["verdicts"].as_array().unwrap().iter().filter(|v| v["name"] == "ready").collect();
    assert!(ready.iter().any(|v| v["verdict"] == "pass"), "{s}");
    assert_eq!(app.admin(Method::GET, "/api/v1/audit/verify", None).await.body["ok"], true);
}
