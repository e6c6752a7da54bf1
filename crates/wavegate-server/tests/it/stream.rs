//! `/api/v1/stream` (snapshot, deltas, resume, scope, heartbeats) and the dashboard's routes.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wavegate_core::sse::{SseItem, SseParser};

use crate::support::{ADMIN, FLAGS, TestApp, spawn_app};

/// One parsed server-sent event (or a comment line, as `event == ":"`).
#[derive(Debug, Clone)]
pub(crate) struct Sse {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

pub(crate) struct Reader {
    body: Body,
    parser: SseParser,
    items: VecDeque<SseItem>,
}

impl Reader {
    pub async fn open(
        app: &TestApp,
        router: axum::Router,
        token: &str,
        headers: &[(&str, &str)],
        query: &str,
    ) -> Result<Reader, (StatusCode, String)> {
        let _ = app;
        Reader::open_path(router, &format!("/api/v1/stream{query}"), Some(token), headers).await
    }

    /// Opens any server-sent-event route.
    pub async fn open_path(
        router: axum::Router,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Reader, (StatusCode, String)> {
        let mut req = Request::builder().uri(path);
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            return Err((status, String::from_utf8_lossy(&bytes).into_owned()));
        }
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Ok(Reader { body: resp.into_body(), parser: SseParser::default(), items: VecDeque::new() })
    }

    /// The next event or comment, within a deadline.
    async fn next(&mut self) -> Sse {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(item) = self.items.pop_front() {
                    return match item {
                        SseItem::Comment(text) => Sse {
                            event: ":".into(),
                            id: None,
                            data: Value::String(text.trim().into()),
                        },
                        SseItem::Event(e) => Sse {
                            event: e.event,
                            id: e.id,
                            data: serde_json::from_str(&e.data).unwrap_or(Value::String(e.data)),
                        },
                    };
                }
                let frame = self.body.frame().await.expect("stream ended").unwrap();
                if let Ok(bytes) = frame.into_data() {
                    self.items.extend(self.parser.push_items(&bytes).unwrap());
                }
            }
        })
        .await
        .expect("no event within 10 s")
    }

    /// Every event (heartbeats left out) until the stream ends, if it ends within `within`:
    /// the events, and whether it ended with an error (broken off) rather than finished.
    pub async fn until_end(&mut self, within: Duration) -> Option<(Vec<Sse>, bool)> {
        let read = async {
            let mut events = Vec::new();
            loop {
                while let Some(item) = self.items.pop_front() {
                    if let SseItem::Event(e) = item {
                        let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data));
                        events.push(Sse { event: e.event, id: e.id, data });
                    }
                }
                match self.body.frame().await {
                    None => return (events, false),
                    Some(Err(_)) => return (events, true),
                    Some(Ok(frame)) => {
                        if let Ok(bytes) = frame.into_data() {
                            self.items.extend(self.parser.push_items(&bytes).unwrap());
                        }
                    }
                }
            }
        };
        tokio::time::timeout(within, read).await.ok()
    }

    /// The next event that is not a heartbeat.
    pub async fn next_event(&mut self) -> Sse {
        loop {
            let e = self.next().await;
            if e.event != ":" {
                return e;
            }
        }
    }
}

fn flag(default: &str) -> Value {
    json!({"variants": {"on": true, "off": false}, "default": default,
           "environments": {"prod": {"enabled": true}, "dev": {"enabled": false}}})
}

#[tokio::test]
async fn a_subscriber_gets_a_snapshot_then_each_change_in_order() {
    let app = spawn_app().await;
    assert_eq!(app.apply_yaml(FLAGS).await.status, StatusCode::OK);
    let mut s = Reader::open(&app, app.router.clone(), ADMIN, &[], "").await.unwrap();
    let snap = s.next_event().await;
    assert_eq!(snap.event, "snapshot");
    let head: i64 = snap.id.clone().unwrap().parse().unwrap();
    assert_eq!(head, app.state.store.audit_head().await.unwrap());
    assert_eq!(snap.data["revision"], json!(app.revision().await));
    let keys: Vec<&str> =
        snap.data["flags"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"new-checkout"), "{keys:?}");
    assert_eq!(snap.data["segments"][0]["key"], "beta-testers");
    assert_eq!(snap.data["environments"], json!(["dev", "staging", "prod"]));

    let r = app.admin(Method::PUT, "/api/v1/flags/streamed", Some(flag("off"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let e = s.next_event().await;
    assert_eq!(e.event, "flag");
    assert_eq!(e.id.as_deref(), Some((head + 1).to_string().as_str()));
    assert_eq!((e.data["key"].as_str(), e.data["version"].as_i64()), (Some("streamed"), Some(1)));
    assert_eq!(e.data["audit"]["action"], "flag.create");

    // Something that is not a flag: an admin sees it as an `audit` event.
    app.token("client-sdk", &["prod"]).await;
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.data["action"].as_str()), ("audit", Some("token.create")));
    assert_eq!(e.id.as_deref(), Some((head + 2).to_string().as_str()));

    let r = app.admin(Method::PUT, "/api/v1/flags/streamed", Some(flag("on"))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.data["version"].as_i64()), ("flag", Some(2)));
    assert_eq!(e.data["spec"]["default"], "on");
}

/// A value of `/metrics` (the first line that starts with `name` and a space).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let m = app.raw(Method::GET, "/metrics", None, &[], vec![]).await.body;
    let m = m.as_str().unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {m}"))
}

#[tokio::test]
async fn each_subscribers_copy_of_a_live_change_is_counted_in_the_fan_out_metrics() {
    let app = spawn_app().await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut admin = Reader::open(&app, app.router.clone(), ADMIN, &[], "").await.unwrap();
    let mut scoped =
        Reader::open(&app, app.router.clone(), &sdk, &[], "?environment=prod").await.unwrap();
    let snap = admin.next_event().await;
    assert_eq!(snap.event, "snapshot");
    assert_eq!(scoped.next_event().await.event, "snapshot");
    assert_eq!(metric(&app, "wavegate_stream_fanout_seconds_count").await, 0.0);

    let t0 = std::time::Instant::now();
    let r = app.admin(Method::PUT, "/api/v1/flags/fanned", Some(flag("off"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(admin.next_event().await.data["key"], "fanned");
    assert_eq!(scoped.next_event().await.data["key"], "fanned");
    // Both copies were handed over before the readers had them: counted, each no later than
    // the test read it, and the slowest is the latest change's.
    assert_eq!(metric(&app, "wavegate_stream_fanout_seconds_count").await, 2.0);
    let sum = metric(&app, "wavegate_stream_fanout_seconds_sum").await;
    let slowest = metric(&app, "wavegate_stream_fanout_slowest_seconds").await;
    let bound = t0.elapsed().as_secs_f64();
    assert!(slowest > 0.0 && slowest <= bound, "slowest {slowest} s, bound {bound} s");
    assert!(sum >= slowest && sum <= 2.0 * slowest + 1e-9, "sum {sum} s, slowest {slowest} s");

    // A replay after a reconnect is not a fan-out: not counted.
    let mut again = Reader::open(
        &app,
        app.router.clone(),
        ADMIN,
        &[("last-event-id", snap.id.as_deref().unwrap())],
        "",
    )
    .await
    .unwrap();
    assert_eq!(again.next_event().await.data["key"], "fanned");
    assert_eq!(metric(&app, "wavegate_stream_fanout_seconds_count").await, 2.0);
}

#[tokio::test]
async fn last_event_id_replays_exactly_what_was_missed() {
    let app = spawn_app().await;
    let mut s = Reader::open(&app, app.router.clone(), ADMIN, &[], "").await.unwrap();
    let snap = s.next_event().await;
    let seen = snap.id.unwrap();
    drop(s);
    for (i, key) in ["a", "b", "c"].iter().enumerate() {
        let r = app.admin(Method::PUT, &format!("/api/v1/flags/{key}"), Some(flag("off"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{i}: {:?}", r.body);
    }
    let mut s = Reader::open(&app, app.router.clone(), ADMIN, &[("last-event-id", &seen)], "")
        .await
        .unwrap();
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e = s.next_event().await;
        assert_eq!(e.event, "flag", "no snapshot on resume: {e:?}");
        keys.push(e.data["key"].as_str().unwrap().to_owned());
        ids.push(e.id.unwrap().parse::<i64>().unwrap());
    }
    assert_eq!(keys, ["a", "b", "c"]);
    let first: i64 = seen.parse().unwrap();
    assert_eq!(ids, [first + 1, first + 2, first + 3]);
    // And it goes on live after the replay, without repeating anything.
    app.admin(Method::PUT, "/api/v1/flags/d", Some(flag("off"))).await;
    let e = s.next_event().await;
    assert_eq!((e.data["key"].as_str(), e.id), (Some("d"), Some((first + 4).to_string())));

    // An id from the future (another database) starts over with a snapshot.
    let mut s = Reader::open(&app, app.router.clone(), ADMIN, &[("last-event-id", "999999")], "")
        .await
        .unwrap();
    assert_eq!(s.next_event().await.event, "snapshot");
    // A malformed id is a 400 that names the header.
    let err = Reader::open(&app, app.router.clone(), ADMIN, &[("last-event-id", "abc")], "")
        .await
        .err()
        .unwrap();
    assert_eq!(err.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(err.1.contains("Last-Event-ID"), "{}", err.1);
}

#[tokio::test]
async fn the_stream_is_scoped_to_the_tokens_environments_and_kinds() {
    let app = spawn_app().await;
    app.apply_yaml(FLAGS).await;
    app.admin(Method::PUT, "/api/v1/flags/scoped", Some(flag("off"))).await;
    let server = app.token("server-sdk", &["prod"]).await;
    let mut s = Reader::open(&app, app.router.clone(), &server, &[], "").await.unwrap();
    let snap = s.next_event().await;
    assert_eq!(snap.data["environments"], json!(["prod"]));
    let scoped =
        snap.data["flags"].as_array().unwrap().iter().find(|f| f["key"] == "scoped").unwrap();
    let envs: Vec<&String> = scoped["spec"]["environments"].as_object().unwrap().keys().collect();
    assert_eq!(envs, ["prod"], "other environments' rules are not sent");
    let seg = &snap.data["segments"][0];
    assert!(seg["spec"].get("keys").is_none());

    // A token change is not for SDKs; the next thing they hear is the flag change.
    app.token("client-sdk", &["prod"]).await;
    app.admin(Method::PUT, "/api/v1/flags/scoped", Some(flag("on"))).await;
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.data["key"].as_str()), ("flag", Some("scoped")));
    assert!(e.data.get("audit").is_none(), "SDK tokens get no audit details");

    // `?environment=` narrows an all-environment token.
    let mut s =
        Reader::open(&app, app.router.clone(), ADMIN, &[], "?environment=dev").await.unwrap();
    let snap = s.next_event().await;
    let scoped =
        snap.data["flags"].as_array().unwrap().iter().find(|f| f["key"] == "scoped").unwrap();
    assert_eq!(scoped["spec"]["environments"].as_object().unwrap().len(), 1);
    assert!(scoped["spec"]["environments"].get("dev").is_some());

    // Which kinds and scopes may stream at all: the authorization matrix (`authz.rs`).
    let err = Reader::open(&app, app.router.clone(), ADMIN, &[], "?environment=nope")
        .await
        .err()
        .unwrap();
    assert_eq!(err.0, StatusCode::UNPROCESSABLE_ENTITY);
    let err = Reader::open(&app, app.router.clone(), "wrong-token", &[], "").await.err().unwrap();
    assert_eq!(err.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn idle_streams_get_heartbeats() {
    let app = spawn_app().await;
    let mut state = app.state.clone();
    state.streams.heartbeat = Duration::from_millis(50);
    let router = wavegate_server::app(state);
    let mut s = Reader::open(&app, router, ADMIN, &[], "").await.unwrap();
    // On a loaded machine the snapshot may take longer than one heartbeat to build.
    let mut first = s.next().await;
    while first.event == ":" {
        first = s.next().await;
    }
    assert_eq!(first.event, "snapshot");
    let beat = s.next().await;
    assert_eq!((beat.event.as_str(), beat.data.as_str()), (":", Some("heartbeat")));
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy_and_whoami_answers() {
    let app = spawn_app().await;
    let r = app.raw(Method::GET, "/", None, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    let html = r.body.as_str().unwrap();
    assert!(
        html.contains("/assets/app.js") && !html.contains("http://") && !html.contains("https://")
    );
    for (path, ty) in [("/assets/app.js", "text/javascript"), ("/assets/app.css", "text/css")] {
        let r = app.raw(Method::GET, path, None, &[], vec![]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with(ty), "{path}");
    }
    let js = app.raw(Method::GET, "/assets/app.js", None, &[], vec![]).await;
    assert!(
        !js.body.as_str().unwrap().contains("localStorage.setItem"),
        "tokens never outlive the tab"
    );

    let r = app.admin(Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(r.body["principal"], "admin");
    assert_eq!(r.body["kind"], "admin");
    assert_eq!(r.body["can_command"], true);
    let client = app.token("client-sdk", &["prod"]).await;
    let r = app.call(Method::GET, "/api/v1/whoami", Some(&client), None).await;
    assert_eq!(
        (r.body["kind"].as_str(), r.body["can_command"].as_bool()),
        (Some("client-sdk"), Some(false))
    );
}

#[tokio::test]
async fn audit_can_be_read_by_target() {
    let app = spawn_app().await;
    for d in ["off", "on", "off"] {
        app.admin(Method::PUT, "/api/v1/flags/one", Some(flag(d))).await;
        app.admin(Method::PUT, "/api/v1/flags/other", Some(flag(d))).await;
    }
    let r = app.admin(Method::GET, "/api/v1/audit?target=flag:one&limit=2", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let entries = r.body.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["target"] == "flag:one"));
    assert!(entries[0]["seq"].as_i64() < entries[1]["seq"].as_i64());
    // Each says how its person signed in: here, with the admin's token.
    let whoami = app.admin(Method::GET, "/api/v1/whoami", None).await;
    let via = format!("token {}", whoami.body["token_id"].as_str().unwrap());
    assert!(entries.iter().all(|e| e["via"] == via.as_str()), "{entries:?}");
    let r = app.admin(Method::GET, "/api/v1/audit?target=flag:one&after=3", None).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("after"))
    );
}
