//! Adoption by cohort: exposures and key-task outcomes posted as events, counted per user and
//! reported by cohort attribute over 30/60/90 days, during the rollout and after it completes.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{TestApp, spawn_app};

/// Two waves of an hour each, tracking adoption of `report_exported` by function and location.
fn plan() -> String {
    Plan::new("reports-v2", "reports")
        .release("version: 2.0.0, risk: low")
        .section(ADOPTION)
        .waves(&["{ exposure: 20%, hold: 1h }", "{ exposure: 100%, hold: 1h }"])
        .to_string()
}

const ADOPTION: &str = "adoption:\n  cohorts: [function, location]\n  key_task: report_exported\n";

const FUNCTIONS: [&str; 3] = ["sales", "support", "eng"];

fn function(i: usize) -> &'static str {
    FUNCTIONS[i % 3]
}

/// Whether user `i` does the key task: most of sales and eng, few of support.
fn does_task(i: usize) -> bool {
    match function(i) {
        "support" => i % 10 == 1,
        _ => !i.is_multiple_of(5),
    }
}

fn context(i: usize) -> Value {
    let location = if i.is_multiple_of(2) { "berlin" } else { "paris" };
    json!({"targetingKey": format!("user-{i}"), "function": function(i), "location": location})
}

async fn post_events(app: &TestApp, sdk: &str, events: Vec<Value>) -> Value {
    let r =
        app.call(Method::POST, "/api/v1/events", Some(sdk), Some(json!({"events": events}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body
}

/// Serves users `range` through OFREP, posts an exposure for each and a key-task outcome for
/// those who do it; returns the users served the new variant.
async fn use_feature(app: &TestApp, range: std::ops::Range<usize>) -> Vec<usize> {
    let client = app.token("client-sdk", &["prod"]).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut events = Vec::new();
    let mut served_on = Vec::new();
    for i in range {
        let v = app.ofrep(&client, "reports", context(i)).await.body["variant"]
            .as_str()
            .unwrap()
            .to_owned();
        if v == "on" {
            served_on.push(i);
        }
        events.push(
            json!({"type": "exposure", "flag": "reports", "variant": v, "context": context(i)}),
        );
        if does_task(i) {
            events.push(json!({"type": "outcome", "flag": "reports", "variant": v, "context": context(i), "metrics": {"report_exported": 1}}));
        }
    }
    post_events(app, &sdk, events).await;
    served_on
}

async fn adoption(app: &TestApp, id: &str, query: &str) -> crate::support::Reply {
    app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/adoption{query}"), None).await
}

fn cohort<'a>(report: &'a Value, attribute: &str, value: &str) -> &'a Value {
    report["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attribute"] == attribute)
        .unwrap()["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"] == value)
        .unwrap_or_else(|| panic!("no cohort {attribute}={value} in {report}"))
}

#[tokio::test]
async fn adoption_is_counted_per_user_by_cohort_and_lagging_cohorts_are_flagged() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["reports"]), &plan()).await;
    let id = app.start("reports-v2").await;

    // Wave 1 (20%): only users served the new variant count, each once however many events.
    let on = use_feature(&app, 0..600).await;
    assert!((60..=180).contains(&on.len()), "about 20% of 600: {}", on.len());
    use_feature(&app, 0..600).await;
    let rep = adoption(&app, &id, "").await;
    assert_eq!(rep.status, StatusCode::OK, "{:?}", rep.body);
    let adopters = on.iter().filter(|i| does_task(**i)).count() as u64;
    assert_eq!(rep.body["overall"][0]["exposed"], on.len() as u64);
    assert_eq!(rep.body["overall"][0]["adopted"], adopters);
    assert_eq!(rep.body["windows"], json!([30, 60, 90]));
    assert_eq!(
        (rep.body["flag"].clone(), rep.body["tracking"].clone()),
        (json!("reports"), json!(true))
    );
    let support = on.iter().filter(|i| function(**i) == "support").count() as u64;
    assert_eq!(cohort(&rep.body, "function", "support")["rates"][0]["exposed"], support);

    // Through wave 2 to completion: now everyone is served the new variant.
    for _ in 0..6 {
        app.clock.advance(chrono::Duration::minutes(61));
        app.tick().await;
    }
    let status = app.rollout(&id).await;
    assert_eq!(status["state"], "completed", "{status}");
    // Users keep being tracked after the rollout completes.
    assert_eq!(use_feature(&app, 0..600).await.len(), 600);
    let rep = adoption(&app, &id, "").await.body;
    let all = (0..600).filter(|i| does_task(*i)).count() as u64;
    assert_eq!(
        (rep["overall"][0]["exposed"].clone(), rep["overall"][0]["adopted"].clone()),
        (json!(600), json!(all))
    );
    let support = cohort(&rep, "function", "support");
    assert_eq!(
        (support["rates"][0]["exposed"].clone(), support["rates"][0]["adopted"].clone()),
        (json!(200), json!(20))
    );
    assert_eq!(support["lagging"], true);
    assert_eq!(cohort(&rep, "function", "sales")["lagging"], false);
    assert_eq!(cohort(&rep, "location", "berlin")["lagging"], false);
    let lagging: Vec<(Value, Value)> = rep["lagging"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["attribute"].clone(), l["value"].clone()))
        .collect();
    assert_eq!(lagging, [(json!("function"), json!("support"))]);

    // 40 days on, a third of the users come back, and none of support does the task: the
    // 30-day window sees only them, the 60- and 90-day windows everyone.
    app.clock.advance(chrono::Duration::days(40));
    let sdk = app.token("server-sdk", &["prod"]).await;
    let back: Vec<Value> = (0..600)
        .filter(|i| i % 3 == 0 || function(*i) == "support")
        .flat_map(|i| {
            let mut ev = vec![json!({"type": "exposure", "flag": "reports", "variant": "on", "context": context(i)})];
            if function(i) != "support" {
                ev.push(json!({"type": "outcome", "flag": "reports", "variant": "on", "context": context(i), "metrics": {"report_exported": 2.5}}));
            }
            ev
        })
        .collect();
    post_events(&app, &sdk, back).await;
    let rep = adoption(&app, &id, "").await.body;
    assert_eq!(rep["overall"][0], json!({"exposed": 400, "adopted": 200, "rate": 0.5}), "{rep}");
    assert_eq!(rep["overall"][1]["exposed"], 600);
    assert_eq!(rep["overall"][2]["exposed"], 600);
    let support = cohort(&rep, "function", "support");
    assert_eq!(support["rates"][0], json!({"exposed": 200, "adopted": 0, "rate": 0.0}));
    assert_eq!(support["rates"][1]["adopted"], 20, "their earlier tasks are in the 60-day window");

    // Markdown and HTML for people; the window lagging is judged in is a choice.
    let md = adoption(&app, &id, "?format=markdown").await;
    let md = md.body.as_str().unwrap();
    assert!(md.starts_with("# Adoption: reports 2.0.0"), "{md}");
    assert!(
        md.contains("| support | 0.0% (0/200) | 10.0% (20/200) | 10.0% (20/200) | **lagging** |"),
        "{md}"
    );
    let html = adoption(&app, &id, "?format=html&window=90").await;
    assert!(html.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = html.body.as_str().unwrap();
    assert!(html.contains("<svg") && html.contains("last 90 days"), "{html}");
    for (query, field) in [("?window=45", "window"), ("?format=pdf", "format")] {
        let r = adoption(&app, &id, query).await;
        assert_eq!(
            (r.status, r.body["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!(field))
        );
    }
    assert_eq!(adoption(&app, "nope", "").await.status, StatusCode::NOT_FOUND);

    // The post-rollout report carries adoption and a retro prompt about the lagging cohort.
    let post = app
        .admin(Method::GET, &format!("/api/v1/rollouts/{id}/report?format=markdown"), None)
        .await;
    let post = post.body.as_str().unwrap();
    assert!(
        post.contains("## Adoption") && post.contains("50.0% of 400 in the last 30 days"),
        "{post}"
    );
    assert!(post.contains("- Lagging: function = support, 0.0% of 200 users"), "{post}");
    assert!(post.contains("Adoption lags in function = support"), "{post}");
    let data = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/report"), None).await.body;
    assert_eq!(data["adoption"]["overall"][1]["exposed"], 600);

    // The summary lists the rollout while it is tracked.
    let s = app.admin(Method::GET, "/api/v1/reports/adoption", None).await.body;
    assert_eq!(s["rollouts"][0]["rollout"], id.as_str());
    assert_eq!(s["rollouts"][0]["lagging"][0]["value"], "support");

    // After the tracking period (90 days from the start) events no longer count.
    app.clock.advance(chrono::Duration::days(51));
    post_events(&app, &sdk, vec![json!({"type": "exposure", "flag": "reports", "variant": "on", "context": {"targetingKey": "late", "function": "sales"}})]).await;
    let rep = adoption(&app, &id, "?window=90").await.body;
    assert_eq!(rep["tracking"], false);
    assert!(
        rep["attributes"][1]["cohorts"].as_array().unwrap().iter().all(|c| c["value"] != "(none)")
    );
    assert_eq!(rep["overall"][2]["exposed"], 400, "the late user is not counted: {rep}");
    // The controller prunes rows no window reaches: users last seen on day 0 go, the 400 who
    // came back on day 40 stay, and the report reads the same.
    let stored = |app: &TestApp| {
        let (store, id) = (app.state.store.clone(), id.clone());
        async move { store.adoption(&id, 0).await.unwrap().iter().map(|c| c.exposed).sum::<i64>() }
    };
    assert_eq!(stored(&app).await, 600);
    app.tick().await;
    assert_eq!(stored(&app).await, 400);
    assert_eq!(adoption(&app, &id, "?window=90").await.body["overall"], rep["overall"]);
    let s = app.admin(Method::GET, "/api/v1/reports/adoption", None).await.body;
    assert_eq!(s["rollouts"], json!([]));
    let s = app.admin(Method::GET, "/api/v1/reports/adoption?all=true", None).await.body;
    assert_eq!(s["rollouts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_rollout_without_adoption_says_how_to_track_it() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["reports"]), &plan().replace(ADOPTION, "")).await;
    let id = app.start("reports-v2").await;
    let r = adoption(&app, &id, "").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let post = app.admin(Method::GET, &format!("/api/v1/rollouts/{id}/report"), None).await.body;
    assert_eq!(post["adoption"], Value::Null, "no adoption section without tracking");
    assert!(r.body["message"].as_str().unwrap().contains("adoption:"), "{:?}", r.body);
    // A plan whose adoption section is wrong is refused with the field named.
    let r =
        app.post_plan(&plan().replace("[function, location]", "[function, targetingKey]")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("adoption.cohorts[1]"), "{:?}", r.body);
}
