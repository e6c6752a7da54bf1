//! Coordinated releases: several plans in order (`after`), at one pace (`with`), under one
//! failure policy, on one timeline and report.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{TestApp, spawn_app};

/// A health endpoint that answers 500: the second service's regression.
async fn failing_health() -> String {
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "db down") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/health")
}

async fn release(app: &TestApp, name: &str, doc: Value) -> Value {
    let r = app.admin(Method::PUT, &format!("/api/v1/releases/{name}"), Some(doc)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn status(app: &TestApp, name: &str) -> Value {
    app.admin(Method::GET, &format!("/api/v1/releases/{name}"), None).await.body
}

fn member(s: &Value, plan: &str) -> Value {
    s["members"].as_array().unwrap().iter().find(|m| m["plan"] == plan).unwrap().clone()
}

/// payments-api first; checkout-ui and mobile after it, mobile at checkout-ui's pace; a
/// regression in checkout-ui (its smoke check fails) rolls the release back as its policy says.
#[tokio::test]
async fn a_two_service_release_runs_in_order_and_a_regression_rolls_it_back() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["api-flag", "ui-flag", "app-flag"])).await;
    let health = failing_health().await;
    let smoke = format!(
        "checks:\n  - {{ name: smoke, when: [after_exposure], http: {{ url: \"{health}\" }}, retries: 0, action: rollback }}\n"
    );
    for plan in [
        Plan::new("payments-api", "api-flag")
            .release("version: 3.1.0, risk: low, service: payments-api"),
        Plan::new("checkout-ui", "ui-flag")
            .release("version: 2.0.0, risk: low, service: checkout-ui")
            .section(&smoke),
        Plan::new("mobile", "app-flag")
            .release("version: 5.0.0, risk: low, service: mobile")
            .waves(&["{ exposure: 10% }", "{ exposure: 50% }", "{ exposure: 100% }"]),
    ] {
        assert_eq!(app.post_plan(&plan.to_string()).await.status, StatusCode::CREATED);
    }
    // Validation: a member that is not a plan, a circle.
    let r = app
        .admin(Method::PUT, "/api/v1/releases/r1", Some(json!({"members": [{"plan": "nope"}]})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let circle = json!({"members": [{"plan": "mobile", "after": ["checkout-ui"]}, {"plan": "checkout-ui", "after": ["mobile"]}]});
    let r = app.admin(Method::PUT, "/api/v1/releases/r1", Some(circle)).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("members"))
    );

    let doc = json!({
        "description": "checkout 2.0 with its new payment API",
        "members": [
            {"plan": "payments-api"},
            {"plan": "checkout-ui", "after": ["payments-api"]},
            {"plan": "mobile", "after": ["payments-api"], "with": ["checkout-ui"]}
        ],
        "on_failure": "rollback_all"
    });
    let stored = release(&app, "checkout-2", doc).await;
    assert_eq!(stored["state"], "draft");
    let r = app.admin(Method::POST, "/api/v1/releases/checkout-2/start", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(member(&r.body, "payments-api")["state"], "running");
    assert_eq!(member(&r.body, "checkout-ui")["state"], "waiting", "it comes after payments-api");
    let again = app.admin(Method::POST, "/api/v1/releases/checkout-2/start", None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    for _ in 0..2 {
        app.tick().await;
    }
    let s = status(&app, "checkout-2").await;
    assert_eq!(member(&s, "payments-api")["state"], "completed", "{s}");
    // checkout-ui and mobile started when payments-api completed; checkout-ui's smoke check
    // failed at once and rolled it back.
    assert_eq!(member(&s, "checkout-ui")["state"], "failed", "{s}");
    let mobile = member(&s, "mobile")["rollout"].as_str().unwrap().to_owned();
    app.tick().await;
    let s = status(&app, "checkout-2").await;
    assert_eq!(s["state"], "failed", "{s}");
    assert!(s["failure"].as_str().unwrap().contains("member checkout-ui failed"), "{s}");
    assert_eq!(member(&s, "mobile")["state"], "failed", "rollback_all: {s}");
    let m = app.rollout(&mobile).await;
    assert_eq!(m["state"], "rolled_back", "{m}");
    assert!(m["reason"].as_str().unwrap().contains("release checkout-2"), "{m}");
    // Requested by whoever started the release, and says which release it belongs to.
    assert_eq!(
        (m["requester"].as_str(), m["release_run"].as_str()),
        (Some("admin"), Some("checkout-2"))
    );

    let report = app.admin(Method::GET, "/api/v1/releases/checkout-2/report", None).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    let timeline = report.body["timeline"].as_array().unwrap();
    let members: std::collections::BTreeSet<&str> =
        timeline.iter().map(|e| e["member"].as_str().unwrap()).collect();
    assert_eq!(members.len(), 4, "every member and the release itself: {members:?}");
    let actions: Vec<&str> = timeline.iter().map(|e| e["action"].as_str().unwrap()).collect();
    let at = |a: &str| {
        actions.iter().position(|x| *x == a).unwrap_or_else(|| panic!("{a}: {actions:?}"))
    };
    assert!(
        at("setting.release_start") < at("rollout.rollback")
            && at("rollout.rollback") < at("setting.release_fail"),
        "{actions:?}"
    );
    let md = report.body["markdown"].as_str().unwrap();
    assert!(md.starts_with("# Release report: checkout-2\n\n**failed**"), "{md}");
    assert!(md.contains("| checkout-ui | failed |"), "{md}");
    // A running or failed release may be changed once it has ended.
    let r = app
        .admin(
            Method::PUT,
            "/api/v1/releases/checkout-2",
            Some(json!({"members": [{"plan": "mobile"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Members that advance together: the one ahead is held (phase `gated`, with the reason) until
/// its partner reaches its wave, then both go on; the release completes.
#[tokio::test]
async fn partners_advance_wave_by_wave_together() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["a-flag", "b-flag"])).await;
    let slow = Plan::new("slow", "a-flag").waves(&[
        "{ exposure: 10%, hold: 1h }",
        "{ exposure: 50% }",
        "{ exposure: 100% }",
    ]);
    let fast = Plan::new("fast", "b-flag").waves(&[
        "{ exposure: 10% }",
        "{ exposure: 50% }",
        "{ exposure: 100% }",
    ]);
    for plan in [slow, fast] {
        assert_eq!(app.post_plan(&plan.to_string()).await.status, StatusCode::CREATED);
    }
    let doc = json!({"members": [{"plan": "slow"}, {"plan": "fast", "with": ["slow"]}]});
    release(&app, "pair", doc).await;
    let r = app.admin(Method::POST, "/api/v1/releases/pair/start", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let fast_id = member(&r.body, "fast")["rollout"].as_str().unwrap().to_owned();
    app.tick().await;
    app.tick().await;
    let f = app.rollout(&fast_id).await;
    assert_eq!((f["wave"].as_u64(), f["phase"].as_str()), (Some(2), Some("gated")), "{f}");
    assert_eq!(
        f["reason"],
        "release pair: advancing with slow (wave 1), which must reach wave 2 first"
    );
    app.clock.advance(chrono::Duration::minutes(61));
    for _ in 0..4 {
        app.tick().await;
    }
    let s = status(&app, "pair").await;
    assert_eq!(s["state"], "completed", "{s}");
}

/// A release started again after a failure starts afresh: the members that completed in the
/// failed run start again, and the failed run's rollouts do not fail the new one.
#[tokio::test]
async fn a_release_started_again_runs_afresh() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["api-flag", "ui-flag"])).await;
    let health = failing_health().await;
    let smoke = format!(
        "checks:\n  - {{ name: smoke, when: [after_exposure], http: {{ url: \"{health}\" }}, retries: 0, action: rollback }}\n"
    );
    let api = Plan::new("api", "api-flag");
    let broken = Plan::new("ui", "ui-flag").section(&smoke);
    for plan in [&api, &broken] {
        assert_eq!(app.post_plan(&plan.to_string()).await.status, StatusCode::CREATED);
    }
    let doc = json!({"members": [{"plan": "api"}, {"plan": "ui", "after": ["api"]}]});
    release(&app, "again", doc).await;
    app.admin(Method::POST, "/api/v1/releases/again/start", None).await;
    for _ in 0..3 {
        app.tick().await;
    }
    let first = status(&app, "again").await;
    assert_eq!(first["state"], "failed", "{first}");
    // The fix: ui without the failing check.
    assert_eq!(app.post_plan(&Plan::new("ui", "ui-flag").to_string()).await.status, StatusCode::OK);
    let r = app.admin(Method::POST, "/api/v1/releases/again/start", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(member(&r.body, "ui")["state"], "waiting", "a fresh run: {:?}", r.body);
    assert_ne!(member(&r.body, "api")["rollout"], member(&first, "api")["rollout"]);
    for _ in 0..6 {
        app.tick().await;
    }
    let s = status(&app, "again").await;
    assert_eq!(s["state"], "completed", "{s}");
}

/// An app with plan `p` of flag `p-flag` (on/off, off for everyone) for each `p` of `plans`.
async fn with_plans(plans: &[&str]) -> TestApp {
    let app = spawn_app().await;
    let flags: Vec<String> = plans.iter().map(|p| format!("{p}-flag")).collect();
    app.apply_yaml(&on_off(&flags.iter().map(String::as_str).collect::<Vec<_>>())).await;
    for (p, flag) in plans.iter().zip(&flags) {
        assert_eq!(
            app.post_plan(&Plan::new(p, flag).to_string()).await.status,
            StatusCode::CREATED
        );
    }
    app
}

/// A start and the controller's steps of the same release at once (the tick runs while the
/// start's own step does): each member starts once, the start's answer shows it running, and
/// the run says nothing waits (seen in CI: one step's start was refused as "still live" and
/// its write left the member waiting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_and_the_controller_stepping_at_once_start_each_member_once() {
    let app = with_plans(&["one", "two"]).await;
    for round in 0..8 {
        let name = format!("both-{round}");
        release(&app, &name, json!({"members": [{"plan": "one"}, {"plan": "two"}]})).await;
        let path = format!("/api/v1/releases/{name}/start");
        let state = app.state.clone();
        let stepping = tokio::spawn(async move {
            for _ in 0..20 {
                wavegate_server::service::releases::run_due(&state, None).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let r = app.admin(Method::POST, &path, None).await;
        stepping.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        for plan in ["one", "two"] {
            assert_eq!(member(&r.body, plan)["state"], "running", "{plan}: {}", r.body);
        }
        let s = status(&app, &name).await;
        assert!(s["waiting"].is_null(), "{s}");
        let rollouts = app.admin(Method::GET, "/api/v1/rollouts", None).await.body;
        let live = rollouts.as_array().unwrap().iter().filter(|r| r["state"] == "running").count();
        assert_eq!(live, 2, "{rollouts}");
        // Roll this round's rollouts back so the next release can start its members again.
        for plan in ["one", "two"] {
            let id = member(&s, plan)["rollout"].as_str().unwrap().to_owned();
            let path = format!("/api/v1/rollouts/{id}/rollback");
            let r = app.admin(Method::POST, &path, Some(json!({"reason": "next round"}))).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    }
}

/// Two steps of one release carry out its failure policy at once: one rolls the partner back,
/// the other's rollback finds it ended and counts the policy as carried out too (neither says
/// the policy could not act).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_steps_carrying_out_the_failure_policy_at_once_both_count_it_done() {
    let app = with_plans(&["x", "y"]).await;
    for round in 0..6 {
        let name = format!("pair-{round}");
        let doc = json!({"members": [{"plan": "x"}, {"plan": "y"}], "on_failure": "rollback_all"});
        release(&app, &name, doc).await;
        let r = app.admin(Method::POST, &format!("/api/v1/releases/{name}/start"), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let (x, y) =
            ["x", "y"].map(|p| member(&r.body, p)["rollout"].as_str().unwrap().to_owned()).into();
        // A person rolls x back; the release has not stepped since.
        let path = format!("/api/v1/rollouts/{x}/rollback");
        let r = app.admin(Method::POST, &path, Some(json!({"reason": "x broke"}))).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let steps: Vec<_> = (0..2)
            .map(|_| {
                let state = app.state.clone();
                tokio::spawn(async move {
                    wavegate_server::service::releases::run_due(&state, None).await.unwrap()
                })
            })
            .collect();
        for s in steps {
            s.await.unwrap();
        }
        let s = status(&app, &name).await;
        assert!(s["waiting"].is_null(), "{s}");
        assert_eq!(app.rollout(&y).await["state"], "rolled_back", "rollback_all: {s}");
    }
}
