//! Plan checks against a local HTTP server that fails on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use serde_json::json;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::spawn_app;

struct Target {
    healthy: AtomicBool,
    gate_open: AtomicBool,
    hits: AtomicUsize,
}

/// Serves `/health` (200 `{"status":"ok"}` or 503) and `/gate` (a webhook gate) on port 0.
async fn target() -> (String, Arc<Target>) {
    let t = Arc::new(Target {
        healthy: AtomicBool::new(true),
        gate_open: AtomicBool::new(true),
        hits: AtomicUsize::new(0),
    });
    let (t1, t2) = (t.clone(), t.clone());
    let app = axum::Router::new()
        .route(
            "/health",
            get(move || {
                let t = t1.clone();
                async move {
                    t.hits.fetch_add(1, Ordering::SeqCst);
                    if t.healthy.load(Ordering::SeqCst) {
                        (StatusCode::OK, axum::Json(json!({"status": "ok"})))
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "down", "why": "db unreachable"})))
                    }
                }
            }),
        )
        .route(
            "/gate",
            post(move |axum::Json(facts): axum::Json<serde_json::Value>| {
                let t = t2.clone();
                async move {
                    let open = t.gate_open.load(Ordering::SeqCst);
                    axum::Json(json!({"pass": open, "reason": format!("gate saw wave {} at {}", facts["wave"], facts["point"])}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), t)
}

/// Two waves (10% → 100%): a health check that rolls back (before the start and each
/// promotion, and after each exposure change) and a change board's gate that pauses.
fn plan(base: &str) -> String {
    let checks = format!(
        r#"checks:
  - name: health
    http: {{ url: "{base}/health", expect_status: 200, json_field: status, expect_value: ok }}
    timeout: 2s
    retries: 1
    action: rollback
  - name: change-board
    when: [before_promotion]
    webhook: {{ url: "{base}/gate" }}
    retries: 0
    action: pause
"#
    );
    let waves = ["{ exposure: 10% }", "{ exposure: 100% }"];
    Plan::new("p1", "checkout").section(&checks).waves(&waves).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_gate_the_start_and_promotions_and_act_on_failure() {
    let (base, t) = target().await;
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan(&base)).await;

    // Before the start: unhealthy → refused, with the response it got.
    t.healthy.store(false, Ordering::SeqCst);
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p1"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["message"].as_str().unwrap().contains("db unreachable"), "{:?}", r.body);
    assert!(t.hits.load(Ordering::SeqCst) >= 2, "retried");

    // Healthy: starts, and the smoke check after the exposure change is recorded.
    t.healthy.store(true, Ordering::SeqCst);
    let id = app.start("p1").await;

    // The change board's webhook says no: the promotion does not happen; the rollout pauses.
    t.gate_open.store(false, Ordering::SeqCst);
    app.tick().await;
    let s = app.rollout(&id).await;
    assert_eq!((s["state"].clone(), s["wave"].clone()), (json!("paused"), json!(1)), "{s}");
    assert!(s["reason"].as_str().unwrap().contains("change-board"), "{s}");
    let gate = s["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == "check" && v["name"] == "change-board")
        .unwrap()
        .clone();
    assert_eq!(gate["verdict"], "fail");
    // What the gate said, quoted as a response (`outbound::reply`).
    assert_eq!(gate["report"]["reason"], "⟦gate saw wave 1 at \"before_promotion\"⟧");

    // Open the gate, resume: promoted to 100%; then the smoke check fails → rollback.
    t.gate_open.store(true, Ordering::SeqCst);
    app.command(&id, "resume", "CAB said yes").await;
    t.healthy.store(false, Ordering::SeqCst);
    app.tick().await;
    let s = app.rollout(&id).await;
    // The health check runs before the promotion too: it fails there and rolls back at once.
    assert_eq!(s["state"], "rolled_back", "{s}");
    assert!(s["reason"].as_str().unwrap().contains("health"), "{s}");
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert_eq!(flag["spec"]["environments"]["prod"], json!({"enabled": true}), "restored");
    assert_eq!(app.admin(Method::GET, "/api/v1/audit/verify", None).await.body["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_smoke_check_after_promotion_rolls_back() {
    let (base, t) = target().await;
    let app = spawn_app().await;
    // Only a smoke check (after exposure changes).
    let text = plan(&base).replace("    http: {", "    when: [after_exposure]\n    http: {").replace("  - name: change-board\n    when: [before_promotion]\n    webhook: {{ url: \"{base}/gate\" }}\n    retries: 0\n    action: pause\n", "");
    app.prepare(&on_off(&["checkout"]), &text).await;
    let id = app.start("p1").await;
    t.healthy.store(false, Ordering::SeqCst);
    app.tick().await;
    let s = app.rollout(&id).await;
    assert_eq!(s["state"], "rolled_back", "{s}");
    let smoke: Vec<_> =
        s["verdicts"].as_array().unwrap().iter().filter(|v| v["name"] == "health").collect();
    assert!(smoke.iter().any(|v| v["verdict"] == "fail" && v["report"]["status"] == 503), "{s}");
}
