//! What every stream shares (`http::sse`): revocation ends a token's streams (on this replica
//! and on another), a subscriber that reads nothing is dropped and resumes, a token holds at
//! most its cap of streams, and a burst of subscribers each get their state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_server::AppState;
use wavegate_store::Store;
use wavegate_testkit::poll::until;

use crate::stream::Reader;
use crate::support::{ADMIN, TestApp, spawn_app};

const STREAM: &str = "/api/v1/stream";
const REFETCH: &str = "/ofrep/v1/events?environment=prod";

fn flag(default: &str) -> Value {
    json!({"variants": {"on": true, "off": false}, "default": default,
           "environments": {"prod": {"enabled": true}}})
}

/// Mints a server-sdk token for prod: (secret, id).
async fn sdk_token(app: &TestApp) -> (String, String) {
    let r = app.mint(ADMIN, json!({"kind": "server-sdk", "environments": ["prod"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (r.body["token"].as_str().unwrap().to_owned(), r.body["id"].as_str().unwrap().to_owned())
}

/// Both streams of `token` on `router`, the configuration stream past its snapshot.
async fn open_both(router: &axum::Router, token: &str) -> (Reader, Reader) {
    let mut stream = Reader::open_path(router.clone(), STREAM, Some(token), &[]).await.unwrap();
    assert_eq!(stream.next_event().await.event, "snapshot");
    let refetch = Reader::open_path(router.clone(), REFETCH, Some(token), &[]).await.unwrap();
    (stream, refetch)
}

/// Each stream ends within a second of `revoked`, having sent nothing more.
async fn assert_ended(revoked: Instant, streams: [(&str, &mut Reader); 2]) {
    for (name, reader) in streams {
        let (events, _) = reader
            .until_end(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{name}: still open 10 s after the revocation"));
        let took = revoked.elapsed();
        assert!(took < Duration::from_secs(1), "{name}: ended {took:?} after the revocation");
        assert!(events.is_empty(), "{name}: sent after the revocation: {events:?}");
    }
}

/// Issue 16 item 8: revoking a token ends its open streams at once, and a change made right
/// after the revocation reaches neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_revoking_a_token_ends_its_streams_within_a_second() {
    let app = spawn_app().await;
    app.admin(Method::PUT, "/api/v1/flags/watched", Some(flag("off"))).await;
    let (token, id) = sdk_token(&app).await;
    let (mut stream, mut refetch) = open_both(&app.router, &token).await;

    let r = app.admin(Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let revoked = Instant::now();
    let r = app.admin(Method::PUT, "/api/v1/flags/watched", Some(flag("on"))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_ended(revoked, [("stream", &mut stream), ("refetch", &mut refetch)]).await;

    for path in [STREAM, REFETCH] {
        let err = Reader::open_path(app.router.clone(), path, Some(&token), &[]).await.err();
        assert_eq!(err.map(|e| e.0), Some(StatusCode::UNAUTHORIZED), "{path}");
    }
    let metrics = &app.state.metrics;
    assert_eq!(metrics.streams_dropped(STREAM, "revoked"), 1);
    assert_eq!(metrics.streams_dropped("/ofrep/v1/events", "revoked"), 1);
}

/// One replica of a PostgreSQL deployment.
async fn replica(url: &str) -> (AppState, axum::Router) {
    let store: Arc<dyn Store> = wavegate_store::open(url).await.unwrap();
    wavegate_server::ensure_admin_token(&*store, Some(ADMIN), chrono::Utc::now()).await.unwrap();
    let state = wavegate_server::state_for(store).await.unwrap();
    (state.clone(), wavegate_server::app(state))
}

async fn call(router: &axum::Router, method: Method, path: &str, body: Option<Value>) -> Value {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Issue 16 item 8, across replicas: a revocation made on one replica ends the token's streams
/// on another within a second (the change feed carries it), and that replica then refuses
/// the token (its token cache forgets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_revocation_on_another_replica_ends_streams_there() {
    let db = wavegate_testkit::postgres::Database::create("streams").expect("PostgreSQL");
    let (_a_state, a) = replica(&db.url()).await;
    let (b_state, b) = replica(&db.url()).await;
    call(&a, Method::PUT, "/api/v1/flags/watched", Some(flag("off"))).await;
    let minted = call(
        &a,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"kind": "server-sdk", "environments": ["prod"]})),
    )
    .await;
    let (token, id) = (minted["token"].as_str().unwrap(), minted["id"].as_str().unwrap());
    let (mut stream, mut refetch) = open_both(&b, token).await;

    call(&a, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    let revoked = Instant::now();
    call(&a, Method::PUT, "/api/v1/flags/watched", Some(flag("on"))).await;
    assert_ended(revoked, [("stream", &mut stream), ("refetch", &mut refetch)]).await;

    for path in [STREAM, REFETCH] {
        let err = Reader::open_path(b.clone(), path, Some(token), &[]).await.err();
        assert_eq!(err.map(|e| e.0), Some(StatusCode::UNAUTHORIZED), "{path} on the other replica");
    }
    assert_eq!(b_state.metrics.streams_dropped(STREAM, "revoked"), 1);
}

/// Issue 16 item 12: with a tiny queue, a subscriber that stops reading is dropped (its
/// stream breaks off, counted in `/metrics`), one that reads keeps receiving, and the dropped
/// one resumes with `Last-Event-ID` from exactly what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_subscriber_that_reads_nothing_is_dropped_and_resumes() {
    let mut app = spawn_app().await;
    app.state.streams.limits.queue_bytes = 1;
    app.state.streams.limits.stall = Duration::from_millis(500);
    app.router = wavegate_server::app(app.state.clone());
    let (token, _) = sdk_token(&app).await;
    let mut reading =
        Reader::open_path(app.router.clone(), STREAM, Some(&token), &[]).await.unwrap();
    assert_eq!(reading.next_event().await.event, "snapshot");
    let mut idle = Reader::open_path(app.router.clone(), STREAM, Some(&token), &[]).await.unwrap();
    let snapshot = idle.next_event().await;
    assert_eq!(snapshot.event, "snapshot");
    let from: i64 = snapshot.id.unwrap().parse().unwrap();

    let keys = ["f0", "f1", "f2", "f3", "f4"];
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 5 {
            let e = reading.next_event().await;
            if e.event == "flag" {
                got.push(e.data["key"].as_str().unwrap().to_owned());
            }
        }
        (got, reading)
    });
    for key in keys {
        let r = app.admin(Method::PUT, &format!("/api/v1/flags/{key}"), Some(flag("off"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let (got, mut reading) = reader.await.unwrap();
    assert_eq!(got, keys, "the reading subscriber got every change");

    let metrics = app.state.metrics.clone();
    until("the idle subscriber to be dropped", Duration::from_secs(10), || {
        let dropped = metrics.streams_dropped(STREAM, "slow");
        async move { dropped >= 1 }
    })
    .await;
    let (events, broken) = idle.until_end(Duration::from_secs(10)).await.expect("it ends");
    assert!(broken, "the stream breaks off (so that the client resumes), not finishes");
    let last = events.last().and_then(|e| e.id.clone()).map_or(from, |id| id.parse().unwrap());

    // Resuming from the last event it got gives exactly what it missed, in order.
    let id = last.to_string();
    let mut resumed =
        Reader::open_path(app.router.clone(), STREAM, Some(&token), &[("last-event-id", &id)])
            .await
            .unwrap();
    let mut ids = Vec::new();
    let mut missed = Vec::new();
    while ids.len() < keys.len() - events.len() {
        let e = resumed.next_event().await;
        assert_eq!(e.event, "flag", "no snapshot on resume: {e:?}");
        ids.push(e.id.unwrap().parse::<i64>().unwrap());
        missed.push(e.data["key"].as_str().unwrap().to_owned());
    }
    assert_eq!(missed, keys[events.len()..], "exactly what it missed");
    assert_eq!(ids, (last + 1..=from + 5).collect::<Vec<_>>());
    // The reading subscriber was never dropped and goes on.
    assert_eq!(metrics.streams_dropped(STREAM, "slow"), 1);
    app.admin(Method::PUT, "/api/v1/flags/f5", Some(flag("off"))).await;
    assert_eq!(reading.next_event().await.data["key"], "f5");
}

/// Issue 16 item 12: a token holds at most its cap of open streams (both kinds count); one
/// more is a 429 in the API's error shape, and closing one frees its slot.
#[tokio::test]
async fn issue_16_a_token_holds_at_most_its_cap_of_streams() {
    let mut app = spawn_app().await;
    app.state.streams.limits.per_token = 2;
    app.router = wavegate_server::app(app.state.clone());
    let (token, id) = sdk_token(&app).await;
    let first = Reader::open_path(app.router.clone(), STREAM, Some(&token), &[]).await.unwrap();
    let _second = Reader::open_path(app.router.clone(), REFETCH, Some(&token), &[]).await.unwrap();
    for path in [STREAM, REFETCH] {
        let (status, body) =
            Reader::open_path(app.router.clone(), path, Some(&token), &[]).await.err().unwrap();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "too_many_streams", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("--max-streams-per-token") && message.contains(&id), "{message}");
    }
    // Another token has slots of its own.
    let (other, _) = sdk_token(&app).await;
    assert!(Reader::open_path(app.router.clone(), STREAM, Some(&other), &[]).await.is_ok());

    drop(first);
    let live = app.state.streams.live.clone();
    until("the closed stream to free its slot", Duration::from_secs(10), || {
        let open = live.open(&id);
        async move { open < 2 }
    })
    .await;
    assert!(Reader::open_path(app.router.clone(), STREAM, Some(&token), &[]).await.is_ok());
}

/// One subscriber over a real connection: retries while the server answers 503 (as a client
/// should), then reports when it has its snapshot and when it has the flag `burst`.
async fn burst_subscriber(
    http: reqwest::Client,
    url: String,
    token: String,
    events: tokio::sync::mpsc::UnboundedSender<&'static str>,
) {
    let mut resp = loop {
        let resp = http.get(&url).bearer_auth(&token).send().await.expect("connects");
        match resp.status() {
            reqwest::StatusCode::OK => break resp,
            reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                let _ = events.send("503");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => {
                let _ = events.send("refused");
                return;
            }
        }
    };
    let mut parser = wavegate_core::sse::SseParser::default();
    let mut snapshot = false;
    while let Ok(Some(chunk)) = resp.chunk().await {
        for e in parser.push(&chunk).unwrap() {
            if e.event == "snapshot" && !snapshot {
                snapshot = true;
                let _ = events.send("snapshot");
            }
            if e.event == "flag" && e.data.contains("\"key\":\"burst\"") {
                let _ = events.send("flag");
                return;
            }
        }
    }
    let _ = events.send("ended");
}

/// Issue 15 follow-up: 400 subscribers connecting at once (right after a change, so their
/// token and snapshot are not cached; 1,000 flags) each get their snapshot, then the next
/// change; none is answered 200 and then left without its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_a_burst_of_subscribers_each_get_their_snapshot_and_the_next_change() {
    const N: usize = 400;
    let app = spawn_app().await;
    assert_eq!(app.apply_yaml(crate::support::FLAGS).await.status, StatusCode::OK);
    // Enough flags that reading them takes a while: with one read per subscriber, a burst
    // waited on the store's connections, and those that timed out got a 200 that ended with
    // nothing (this test failed so on the code before the fix).
    let mut many = String::from("flags:\n");
    for i in 0..1000 {
        many.push_str(&format!(
            "  many-{i:04}:\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"off\"\n    environments:\n      prod:\n        enabled: true\n        rules:\n          - {{ name: r, constraints: [{{ attribute: country, op: in, values: [NO, SE] }}], split: {{ \"on\": 20%, \"off\": 80% }} }}\n"
        ));
    }
    assert_eq!(app.apply_yaml(&many).await.status, StatusCode::OK);
    // Every subscriber uses one token (as the instances of one service may).
    let mut state = app.state.clone();
    state.streams.limits.per_token = N;
    let server = wavegate_server::Server::bind("127.0.0.1:0", state).await.unwrap();
    let url = format!("http://{}{STREAM}", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(None, async move {
        let _ = stopped.await;
    }));
    let (token, _) = sdk_token(&app).await;

    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            tokio::spawn(burst_subscriber(http.clone(), url.clone(), token.clone(), tx.clone()))
        })
        .collect();
    let (mut snapshots, mut flags, mut retries) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut changed = false;
    while flags < N {
        let left = deadline.saturating_duration_since(Instant::now());
        let what = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{snapshots} snapshots, {flags} changes of {N}"))
            .unwrap();
        match what {
            "snapshot" => snapshots += 1,
            "flag" => flags += 1,
            "503" => retries += 1,
            other => panic!("a stream {other} ({snapshots} snapshots, {flags} changes of {N})"),
        }
        if snapshots == N && !changed {
            changed = true;
            let r = app.admin(Method::PUT, "/api/v1/flags/burst", Some(flag("on"))).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        }
    }
    assert_eq!((snapshots, flags), (N, N));
    eprintln!(
        "{N} subscribers: every one got its snapshot and the change ({retries} retried a 503)"
    );
    for t in tasks {
        t.await.unwrap();
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

/// Issue 16 item 12, over a real connection: a client that asks for the stream and reads
/// nothing loses its connection once the server's writes to it have made no progress for the
/// stall time, and the server frees the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_connection_that_reads_nothing_is_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app().await;
    // A snapshot larger than the socket buffers on both sides (4 MiB at most on Linux).
    let filler = "x".repeat(400_000);
    for i in 0..14 {
        let mut f = flag("off");
        f["description"] = json!(filler);
        let r = app.admin(Method::PUT, &format!("/api/v1/flags/big-{i}"), Some(f)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let mut state = app.state.clone();
    state.streams.limits.stall = Duration::from_millis(500);
    let server = wavegate_server::Server::bind("127.0.0.1:0", state).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(None, async move {
        let _ = stopped.await;
    }));
    let (token, _) = sdk_token(&app).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut client = socket.connect(addr).await.unwrap();
    let request =
        format!("GET {STREAM} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let metrics = app.state.metrics.clone();
    until("the stream to open", Duration::from_secs(10), || {
        let open = metrics.stream_subscribers.get();
        async move { open == 1 }
    })
    .await;
    until("the server to close the stream", Duration::from_secs(20), || {
        let open = metrics.stream_subscribers.get();
        async move { open == 0 }
    })
    .await;
    // What the socket buffers held arrives, then the end: the snapshot was cut short.
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection is closed, so reading ends");
    assert!(got.len() < 14 * 400_000, "only part of the snapshot went out ({} bytes)", got.len());
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
