//! Late events: an exposure or outcome counts only in the wave whose flag version produced it
//! (its `version`, else its `at` against the wave's start with the clock-skew allowance, else
//! on receipt). Reproduces the false pauses batching clients caused: answers from before a
//! start or a promotion, reported after it, used to swell the control arm.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::on_off;

use crate::support::{TestApp, errors_plan, spawn_app};

/// Three waves behind an error-rate guardrail; no approvals, so a passing wave promotes.
fn plan() -> String {
    errors_plan(&["{ exposure: 20% }", "{ exposure: 50% }", "{ exposure: 100% }"], "")
}

/// One OFREP answer as the application kept it: who, which variant, from which flag version,
/// and when (the server's clock).
struct Answer {
    key: String,
    variant: String,
    version: i64,
    at: String,
}

/// Evaluates `checkout` for `user-{i}` for each `i` over OFREP.
async fn evaluate(app: &TestApp, token: &str, users: std::ops::Range<usize>) -> Vec<Answer> {
    let mut out = Vec::new();
    for i in users {
        let key = format!("user-{i}");
        let r = app.ofrep(token, "checkout", json!({"targetingKey": key})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        out.push(Answer {
            key,
            variant: r.body["variant"].as_str().unwrap().to_owned(),
            version: r.body["metadata"]["version"].as_i64().expect("answers carry the version"),
            at: app.clock_text(),
        });
    }
    out
}

/// How an event says when it was evaluated.
#[derive(Clone, Copy)]
enum Stamp {
    Version,
    At,
}

/// Outcomes (no error) for `answers`, stamped as `stamp` says.
fn outcomes(answers: &[Answer], stamp: Stamp) -> Value {
    let events: Vec<Value> = answers
        .iter()
        .map(|a| {
            let mut e = json!({"type": "outcome", "flag": "checkout", "variant": a.variant,
                "context": {"targetingKey": a.key}, "error": false});
            match stamp {
                Stamp::Version => e["version"] = json!(a.version),
                Stamp::At => e["at"] = json!(a.at),
            }
            e
        })
        .collect();
    json!({ "events": events })
}

impl TestApp {
    /// The server's clock now, as an event's `at`.
    fn clock_text(&self) -> String {
        self.clock_text_plus(0)
    }

    /// The server's clock `secs` seconds from now, as an event's `at`.
    fn clock_text_plus(&self, secs: i64) -> String {
        use wavegate_server::clock::Clock as _;
        let t = self.clock.now() + chrono::Duration::seconds(secs);
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Posts a batch as `token`; (counted, stale, unattributed).
    async fn post_events(&self, token: &str, batch: Value) -> (u64, u64, u64) {
        let r = self.call(Method::POST, "/api/v1/events", Some(token), Some(batch)).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        let n = |k: &str| r.body[k].as_u64().unwrap();
        assert!(n("counted") + n("stale") + n("unattributed") <= n("accepted"), "{:?}", r.body);
        (n("counted"), n("stale"), n("unattributed"))
    }
}

#[tokio::test]
async fn events_count_only_in_the_wave_whose_configuration_produced_them() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let client = app.token("client-sdk", &["prod"]).await;
    let sdk = app.token("server-sdk", &["prod"]).await;

    // Answered before the start (flag version 1), reported after it.
    let before = evaluate(&app, &client, 0..300).await;
    assert!(before.iter().all(|a| a.version == 1 && a.variant == "off"));
    app.clock.advance(chrono::Duration::minutes(1));
    let id = app.start("p").await;
    let wave1 = evaluate(&app, &client, 1000..1400).await;
    assert!(wave1.iter().all(|a| a.version == 2), "starting wrote the exposure as version 2");
    // Bulk answers carry the version too.
    let bulk = app.bulk(&client, &[], br#"{"context":{"targetingKey":"u"}}"#).await;
    let flag = bulk.body["flags"].as_array().unwrap().iter().find(|f| f["key"] == "checkout");
    assert_eq!(flag.unwrap()["metadata"]["version"], 2, "{:?}", bulk.body);

    // Every late answer is stale, by its version or by its time: none reaches the arms,
    // although most of them ("off") are what the rule serves those users now.
    assert_eq!(app.post_events(&sdk, outcomes(&before, Stamp::Version)).await, (0, 300, 0));
    assert_eq!(app.post_events(&sdk, outcomes(&before, Stamp::At)).await, (0, 300, 0));
    // A time within the skew allowance of the start cannot be placed either way.
    let near: Vec<Answer> = before
        .iter()
        .map(|a| {
            let at = app.clock_text_plus(2);
            Answer { at, key: a.key.clone(), variant: a.variant.clone(), version: 1 }
        })
        .collect();
    assert_eq!(app.post_events(&sdk, outcomes(&near, Stamp::At)).await, (0, 0, 300));
    assert!(app.state.store.aggregates(&id, 0, &[]).await.unwrap().is_empty());

    // The wave's own answers count, however they are stamped; the wave passes and promotes.
    app.clock.advance(chrono::Duration::seconds(10));
    let later: Vec<Answer> = wave1
        .iter()
        .map(|a| Answer {
            at: app.clock_text(),
            key: a.key.clone(),
            variant: a.variant.clone(),
            version: a.version,
        })
        .collect();
    assert_eq!(app.post_events(&sdk, outcomes(&wave1[..200], Stamp::Version)).await, (200, 0, 0));
    assert_eq!(app.post_events(&sdk, outcomes(&later[200..], Stamp::At)).await, (200, 0, 0));
    app.tick().await;
    let status = app.rollout(&id).await;
    assert_eq!(status["wave"], 2, "{status}");
    let wave2 = evaluate(&app, &client, 5000..5010).await;
    assert!(wave2.iter().all(|a| a.version == 3), "the promotion wrote version 3");

    // Wave 1's answers reported after the promotion stay out of wave 2's arms.
    assert_eq!(app.post_events(&sdk, outcomes(&wave1, Stamp::Version)).await, (0, 400, 0));
    // A version this server has not loaded yet (another replica's newer wave) is unattributed.
    let ahead: Vec<Answer> = wave2
        .iter()
        .map(|a| Answer {
            version: 4,
            key: a.key.clone(),
            variant: a.variant.clone(),
            at: a.at.clone(),
        })
        .collect();
    assert_eq!(app.post_events(&sdk, outcomes(&ahead, Stamp::Version)).await, (0, 0, 10));
    assert_eq!(app.post_events(&sdk, outcomes(&wave2, Stamp::Version)).await, (10, 0, 0));
    let n: f64 = app
        .state
        .store
        .aggregates(&id, 1, &[])
        .await
        .unwrap()
        .iter()
        .filter(|r| r.metric == "error")
        .map(|r| r.n)
        .sum();
    assert_eq!(n, 10.0, "wave 2 holds only its own answers");

    // `/metrics` says where events went.
    let m = app.raw(Method::GET, "/metrics", None, &[], vec![]).await.body;
    let m = m.as_str().unwrap();
    for line in [
        r#"wavegate_events_placed_total{source="events",placed="stale"} 1000"#,
        r#"wavegate_events_placed_total{source="events",placed="unattributed"} 310"#,
        r#"wavegate_events_placed_total{source="events",placed="counted"} 410"#,
    ] {
        assert!(m.contains(line), "{line} not in {m}");
    }
}

#[tokio::test]
async fn a_bad_version_or_time_is_named() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let event = |extra: Value| {
        let mut e = json!({"type": "exposure", "flag": "checkout", "variant": "on",
            "context": {"targetingKey": "u"}});
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"events": [e.clone(), e]})
    };
    for (extra, says) in [
        (json!({"at": "yesterday"}), "RFC 3339"),
        (json!({"at": "2026-13-01T00:00:00Z"}), "RFC 3339"),
        (json!({"version": 0}), "version"),
        (json!({"version": -3}), "version"),
    ] {
        let mut batch = event(json!({}));
        batch["events"][1] = event(extra.clone())["events"][0].clone();
        let r = app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(batch)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{extra}: {:?}", r.body);
        assert_eq!(r.body["field"], "events[1]", "{extra}");
        assert!(r.body["message"].as_str().unwrap().contains(says), "{extra}: {:?}", r.body);
    }
    for extra in [json!({"at": 5}), json!({"version": "2"}), json!({"version": 1.5})] {
        let r =
            app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(event(extra.clone()))).await;
        assert!(r.status.is_client_error(), "{extra}: {:?}", r.body);
    }
}
