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
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{Reply, TestApp, spawn_app};

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

/// Two waves (10% → 100%) with a before-promotion check against `url` (2 s timeout, no
/// retries) whose failure rolls back.
async fn started(url: &str) -> (TestApp, String) {
    let app = spawn_app().await;
    let check = format!(
        r#"checks:
  - name: ready
    when: [before_promotion]
    http: {{ url: "{url}", expect_status: 200 }}
    timeout: 2s
    retries: 0
    action: rollback
"#
    );
    let plan = Plan::new("p1", "checkout")
        .section(&check)
        .waves(&["{ exposure: 10% }", "{ exposure: 100% }"]);
    app.prepare(&on_off(&["checkout"]), &plan.to_string()).await;
    let id = app.start("p1").await;
    (app, id)
}

/// Starts a controller tick and waits (with a deadline) until its check has connected to the
/// endpoint; the tick, still running.
async fn tick_until_inside_the_check(
    app: &TestApp,
    accepted: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
) -> tokio::task::JoinHandle<anyhow::Result<usize>> {
    let state = app.state.clone();
    let tick =
        tokio::spawn(async move { wavegate_server::runtime::controller::tick(&state).await });
    tokio::time::timeout(Duration::from_secs(30), accepted.recv())
        .await
        .expect("the controller reached the check within 30 s")
        .expect("endpoint alive");
    tick
}

/// A started rollout whose controller tick is inside its before-promotion check, against an
/// endpoint that hangs while `hang` is set.
struct Stuck {
    app: TestApp,
    id: String,
    hang: Arc<AtomicBool>,
    tick: tokio::task::JoinHandle<anyhow::Result<usize>>,
}

async fn stuck_in_the_check() -> Stuck {
    let (url, hang, mut accepted) = endpoint().await;
    let (app, id) = started(&url).await;
    let tick = tick_until_inside_the_check(&app, &mut accepted).await;
    Stuck { app, id, hang, tick }
}

/// A person's `command` (`rollback`, `pause`) with `reason`: the answer, and how long it took.
async fn timed(app: &TestApp, id: &str, command: &str, reason: &str) -> (Reply, Duration) {
    let t = Instant::now();
    let r = app.command(id, command, reason).await;
    (r, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_during_a_hanging_check_is_answered_at_once() {
    let Stuck { app, id, tick, .. } = stuck_in_the_check().await;
    let (r, took) = timed(&app, &id, "rollback", "on-call: checkout errors").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "rolled_back");
    assert!(took < Duration::from_secs(1), "the rollback took {took:?} behind the controller");
    assert!(!tick.is_finished(), "the controller was still inside its check");

    // The controller's check times out; its decision yields to the person's rollback.
    assert_eq!(tick.await.unwrap().unwrap(), 1);
    let s = app.rollout(&id).await;
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
    let Stuck { app, id, hang, tick } = stuck_in_the_check().await;
    let (r, took) = timed(&app, &id, "pause", "waiting for the CAB").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(took < Duration::from_secs(1), "the pause took {took:?}");

    // The check times out: the controller would roll back, but the rollout was paused while
    // it decided, so it does not act on stale facts.
    tick.await.unwrap().unwrap();
    let s = app.rollout(&id).await;
    assert_eq!((s["state"].clone(), s["wave"].clone()), (json!("paused"), json!(1)), "{s}");
    assert_eq!(s["reason"], "paused by admin: waiting for the CAB", "{s}");

    // Resumed, with the endpoint answering: the next tick promotes through the check.
    hang.store(false, Ordering::SeqCst);
    let r = app.command(&id, "resume", "CAB said yes").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.tick().await;
    let s = app.rollout(&id).await;
    assert_eq!(s["wave"], 2, "{s}");
    assert_ne!(s["state"], "rolled_back", "{s}");
    let ready: Vec<_> =
        s["verdicts"].as_array().unwrap().iter().filter(|v| v["name"] == "ready").collect();
    assert!(ready.iter().any(|v| v["verdict"] == "pass"), "{s}");
    assert_eq!(app.admin(Method::GET, "/api/v1/audit/verify", None).await.body["ok"], true);
}
