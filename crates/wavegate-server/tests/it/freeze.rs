//! The global freeze: holds every running rollout (no promotion), still lets people pause and
//! roll back, refuses new starts, and lifts cleanly.

use axum::http::{Method, StatusCode};
use serde_json::json;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{TestApp, spawn_app};

/// Flags `a` and `b`, with plans `pa` and `pb` (20% → 100%) stored.
async fn two_plans() -> TestApp {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["a", "b"])).await;
    for (name, flag) in [("pa", "a"), ("pb", "b")] {
        let r = app.post_plan(&Plan::new(name, flag).to_string()).await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    app
}

#[tokio::test]
async fn a_freeze_holds_everything_but_pause_and_rollback() {
    let app = two_plans().await;
    let a = app.start("pa").await;
    let r = app.admin(Method::PUT, "/api/v1/freeze", Some(json!({"reason": ""}))).await;
    assert_eq!(r.body["field"], "reason", "a freeze needs a reason");
    let r =
        app.admin(Method::PUT, "/api/v1/freeze", Some(json!({"reason": "incident INC-7"}))).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(true)));
    let sdk = app.token("server-sdk", &["prod"]).await;
    let shown = app.call(Method::GET, "/api/v1/freeze", Some(&sdk), None).await.body;
    assert_eq!(shown["reason"], "incident INC-7");

    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "pb"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["message"].as_str().unwrap().contains("incident INC-7"));
    for _ in 0..3 {
        app.tick().await;
    }
    let status = app.rollout(&a).await;
    assert_eq!(status["wave"], 1, "held by the freeze: {status}");
    assert!(status["blackout"].as_str().unwrap().contains("freeze: incident INC-7"), "{status}");
    // Pause and rollback still work.
    let r = app.command(&a, "pause", "look").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.command(&a, "rollback", "out").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Lifted: starts and promotions go on.
    let r = app.admin(Method::DELETE, "/api/v1/freeze", None).await;
    assert_eq!(r.body["active"], false);
    let b = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "pb"}))).await;
    assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.body);
    let id = b.body["id"].as_str().unwrap().to_owned();
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["wave"], 2, "{status}");
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=100", None).await.body;
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["target"] == "setting:freeze"),
        "the freeze is audited"
    );
}

/// Plan `name` of `flag`, release 1.0.0 with `release`'s further fields, two waves (20% for
/// two hours, then 100%).
fn with(name: &str, flag: &str, release: &str) -> Plan {
    Plan::new(name, flag)
        .release(&format!("version: 1.0.0, risk: low, {release}"))
        .waves(&["{ exposure: 20%, hold: 2h }", "{ exposure: 100% }"])
}

/// The calendar: live rollouts, blackout occurrences, the freeze, and a conflict between two
/// overlapping rollouts of dependent services; JSON and iCalendar.
#[tokio::test]
async fn the_calendar_shows_rollouts_blackouts_and_conflicts() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["a", "b"])).await;
    // A weekly day-long blackout two days from now (a fixed Saturday made the starts below
    // fail whenever the test ran on a Saturday).
    let day =
        (wavegate_server::clock::Clock::now(&*app.clock) + chrono::Duration::days(2)).date_naive();
    let byday = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
        [chrono::Datelike::weekday(&day).num_days_from_monday() as usize];
    let first = day - chrono::Duration::weeks(7);
    let weekend = format!(
        "blackouts:\n  - {{ name: weekend, rrule: \"FREQ=WEEKLY;BYDAY={byday}\", dtstart: \"{first}T00:00:00\", duration: 24h }}\n"
    );
    let plans = [
        with("pa", "a", "service: checkout, depends_on: [payments]").section(&weekend),
        with("pb", "b", "service: payments"),
    ];
    for plan in plans {
        let r = app.post_plan(&plan.to_string()).await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    for p in ["pa", "pb"] {
        let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": p}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    app.admin(Method::PUT, "/api/v1/freeze", Some(json!({"reason": "year-end"}))).await;
    let cal = app.admin(Method::GET, "/api/v1/calendar?days=14", None).await.body;
    let kinds =
        |k: &str| cal["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == k).count();
    assert_eq!((kinds("rollout"), kinds("conflict"), kinds("freeze")), (2, 1, 1), "{cal}");
    assert!(kinds("blackout") >= 2, "two weekly blackouts in two weeks: {cal}");
    let conflict =
        cal["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "conflict").unwrap();
    assert!(conflict["title"].as_str().unwrap().contains("one depends on the other"));
    let ics = app.admin(Method::GET, "/api/v1/calendar?format=ics", None).await;
    assert!(ics.body.as_str().unwrap().starts_with("BEGIN:VCALENDAR"), "{:?}", ics.body);
    assert_eq!(app.admin(Method::GET, "/api/v1/calendar?days=0", None).await.body["field"], "days");
}

/// Issue 23 item 1 (in part): a release whose service depends on another is refused while that
/// service is mid-rollout in the same environment, with the reason, and starts once it ended.
#[tokio::test]
async fn a_release_waits_for_the_services_it_depends_on() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["a", "b"])).await;
    for plan in [
        with("ui", "a", "service: checkout-ui, depends_on: [payments-api]"),
        with("api", "b", "service: payments-api"),
    ] {
        assert!(app.post_plan(&plan.to_string()).await.status.is_success());
    }
    let api = app.start("api").await;
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "ui"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let msg = r.body["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "checkout-ui depends on payments-api, whose rollout {api} is still running in prod"
        )),
        "{msg}"
    );
    app.command(&api, "rollback", "not today").await;
    let r = app.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "ui"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// Scheduled starts: stored, listed, started by the controller when due (with the start
/// checks run then), cancellable; a due start that is refused is closed with its reason.
#[tokio::test]
async fn scheduled_starts_run_when_due() {
    let app = two_plans().await;
    let at =
        (wavegate_server::clock::Clock::now(&*app.clock) + chrono::Duration::hours(1)).to_rfc3339();
    let r = app
        .admin(
            Method::POST,
            "/api/v1/rollouts",
            Some(json!({"plan": "pa", "start_at": at, "reason": "after the standup"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let r = app
        .admin(
            Method::POST,
            "/api/v1/rollouts",
            Some(json!({"plan": "pb", "start_at": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.body["field"], "start_at", "the past is refused");
    let r = app
        .admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "pb", "start_at": at})))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let list = app.admin(Method::GET, "/api/v1/schedules", None).await.body;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        app.admin(Method::DELETE, "/api/v1/schedules/pb", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.admin(Method::DELETE, "/api/v1/schedules/pb", None).await.status,
        StatusCode::NOT_FOUND
    );
    let cal = app.admin(Method::GET, "/api/v1/calendar", None).await.body;
    assert!(cal["entries"].as_array().unwrap().iter().any(|e| e["kind"] == "scheduled"), "{cal}");

    app.tick().await;
    assert_eq!(
        app.admin(Method::GET, "/api/v1/rollouts", None).await.body,
        json!([]),
        "not due yet"
    );
    app.clock.advance(chrono::Duration::minutes(61));
    app.tick().await;
    let rollouts = app.admin(Method::GET, "/api/v1/rollouts", None).await.body;
    assert_eq!(rollouts.as_array().unwrap().len(), 1, "{rollouts}");
    assert_eq!(rollouts[0]["plan"], "pa");
    assert_eq!(app.admin(Method::GET, "/api/v1/schedules", None).await.body, json!([]));
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=100", None).await.body;
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "setting.started"), "{audit}");
    // The start is the requester's, made by their schedule (they were not signed in then).
    let start = audit.as_array().unwrap().iter().find(|e| e["action"] == "rollout.start").unwrap();
    assert_eq!((&start["actor"], &start["via"]), (&json!("admin"), &json!("scheduled start")));
}
