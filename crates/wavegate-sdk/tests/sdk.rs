//! The SDK against a real wavegate server over HTTP: local answers equal the server's OFREP
//! answers, changes arrive over the stream, the snapshot file serves when the server is gone
//! (also in a new process's client), and reported events reach the rollout's aggregates.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wavegate_sdk::{Builder, Context, Outcome, Source};
use wavegate_store::{SqlStore, Store};
use wavegate_testkit::ADMIN;
use wavegate_testkit::api::{Api, ofrep};
use wavegate_testkit::fixtures::{Plan, SEGMENT_MEMBERS, crew_in_prod, on_off_flag};

/// `checkout` (staff, then 10%), `search` (for a rollout) and `theme` (a three-way split).
fn flags() -> String {
    let checkout = on_off_flag(
        "checkout",
        &[
            r#"{ name: staff, segment: staff, serve: "on" }"#,
            r#"{ name: gradual, split: { "on": 10%, "off": 90% } }"#,
        ],
    );
    format!("{STAFF}flags:\n{checkout}{}{THEME}", on_off_flag("search", &[]))
}

const STAFF: &str = r#"
segments:
  staff:
    constraints:
      - { attribute: email, op: ends_with, values: ["@example.com"] }
"#;

const THEME: &str = r#"  theme:
    variants: { dark: "dark", light: "light", blue: "blue" }
    default: light
    environments:
      prod:
        enabled: true
        rules:
          - { name: split, split: { dark: 33.3%, light: 33.3%, blue: 33.4% } }
"#;

struct TestServer {
    url: String,
    /// The API as the bootstrap admin.
    admin: Api,
    store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// How many `metric` events wave 0 of rollout `id` counted over its arms, and its rows (for
    /// messages).
    async fn counted(&self, id: &str, metric: &str) -> (f64, Vec<wavegate_store::AggregateRow>) {
        let rows = self.store.aggregates(id, 0, &[]).await.unwrap();
        let n = rows.iter().filter(|r| r.metric == metric).map(|r| r.n).sum();
        (n, rows)
    }

    async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqlStore::open(dir.path().join("w.db").to_str().unwrap()).await.unwrap();
        let store: Arc<dyn Store> = Arc::new(sqlite);
        wavegate_server::ensure_admin_token(&*store, Some(ADMIN), chrono::Utc::now())
            .await
            .unwrap();
        let mut state = wavegate_server::state_for(store.clone()).await.unwrap();
        state.streams.heartbeat = Duration::from_millis(200);
        let server = wavegate_server::Server::bind("127.0.0.1:0", state).await.unwrap();
        let url = format!("http://{}", server.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(None, async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        let admin = Api::new(&url, ADMIN);
        TestServer { url, admin, store, stop: Some(tx), task, _dir: dir }
    }

    async fn apply(&self, yaml: &str) {
        self.admin.post_yaml("/api/v1/apply", yaml).await;
    }

    async fn token(&self, kind: &str) -> String {
        self.admin.token(kind, &["prod"]).await
    }

    async fn ofrep(&self, token: &str, key: &str, ctx: &Value) -> Value {
        let (status, answer) = ofrep(&self.admin.http, &self.url, token, key, ctx).await;
        assert_eq!(status, 200, "{key}: {answer}");
        answer
    }

    /// Graceful shutdown, which must not wait on open streams.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server shuts down with streams open")
            .unwrap();
    }
}

fn context(i: usize) -> (Context, Value) {
    let email =
        if i.is_multiple_of(17) { format!("u{i}@example.com") } else { format!("u{i}@mail.test") };
    let json = json!({"targetingKey": format!("user-{i}"), "email": email});
    (Context::from_json(&json).unwrap(), json)
}

async fn until_changed(
    client: &wavegate_sdk::Client,
    rx: &mut tokio::sync::watch::Receiver<u64>,
    what: &str,
) {
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}; status {:?}", client.status()))
        .unwrap();
}

/// Waits until the rollout's rule for `search` is in the client's configuration.
async fn until_rollout_rule(client: &wavegate_sdk::Client) {
    let mut rx = client.changes();
    while !client
        .evaluate("search", &context(2).0)
        .unwrap()
        .rule
        .is_some_and(|r| r.starts_with("rollout:"))
    {
        until_changed(client, &mut rx, "the rollout's rule").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_answers_equal_the_servers_and_follow_changes() {
    let server = TestServer::start().await;
    server.apply(&flags()).await;
    let sdk_token = server.token("server-sdk").await;
    let client_token = server.token("client-sdk").await;
    let client = Builder::new(&server.url, &sdk_token, "prod").start().unwrap();
    assert_eq!(client.wait_ready(Duration::from_secs(10)).await.unwrap(), Source::Stream);
    assert_eq!(client.flag_keys(), ["checkout", "search", "theme"]);

    let mut on = 0;
    for i in 0..400 {
        let (ctx, json) = context(i);
        for key in ["checkout", "theme"] {
            let local = client.evaluate(key, &ctx).unwrap();
            let remote = server.ofrep(&client_token, key, &json).await;
            assert_eq!(
                (&local.value, local.variant.as_str(), local.reason.as_str()),
                (
                    &remote["value"],
                    remote["variant"].as_str().unwrap(),
                    remote["reason"].as_str().unwrap()
                ),
                "{key} for {json}"
            );
            if key == "checkout" && local.value == json!(true) {
                on += 1;
            }
        }
    }
    assert!((30..=90).contains(&on), "10% plus staff: {on} of 400");

    // A change made on the server reaches the SDK over the stream.
    let mut rx = client.changes();
    rx.borrow_and_update();
    server
        .apply(&flags().replace(
            "split: { \"on\": 10%, \"off\": 90% }",
            "split: { \"on\": 100%, \"off\": 0% }",
        ))
        .await;
    until_changed(&client, &mut rx, "the widened rollout").await;
    let (ctx, _) = context(1);
    assert!(client.bool_value("checkout", &ctx, false));
    assert_eq!(client.status().source, Source::Stream);
    assert!(client.status().connected);
    // Unknown flags fall back to the caller's default.
    assert_eq!(client.string_value("nope", &ctx, "fallback"), "fallback");
    client.close().await;
    server.stop().await;
}

/// A prod-scoped server-sdk token is sent the members of the segments prod uses, so the SDK
/// evaluates every flag the server does (it used to get them redacted, and the flags on them
/// did not compile), also a flag that starts using another such segment later.
// See: issue 16, item 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_6_a_prod_token_evaluates_flags_on_segments_with_members() {
    let server = TestServer::start().await;
    server.apply(SEGMENT_MEMBERS).await;
    let sdk_token = server.token("server-sdk").await;
    let client_token = server.token("client-sdk").await;
    let client = Builder::new(&server.url, &sdk_token, "prod").start().unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(client.flag_keys(), ["crew", "vip"], "every flag compiles");
    let agree = |key: &'static str| {
        let (server, client, client_token) = (&server, &client, &client_token);
        async move {
            for i in 0..10 {
                let json = json!({"targetingKey": format!("user-{i}")});
                let local = client.evaluate(key, &Context::from_json(&json).unwrap()).unwrap();
                let remote = server.ofrep(client_token, key, &json).await;
                assert_eq!(
                    (&local.value, local.variant.as_str()),
                    (&remote["value"], remote["variant"].as_str().unwrap()),
                    "{key} for {json}"
                );
            }
        }
    };
    agree("vip").await;
    let member = Context::from_json(&json!({"targetingKey": "user-5"})).unwrap();
    assert!(client.bool_value("vip", &member, false));

    let mut rx = client.changes();
    rx.borrow_and_update();
    server.apply(&crew_in_prod()).await;
    // The segment's members come with the flag (in one or two stream chunks).
    let crew = Context::from_json(&json!({"targetingKey": "user-2"})).unwrap();
    while !client.bool_value("crew", &crew, false) {
        until_changed(&client, &mut rx, "crew on its segment").await;
    }
    agree("crew").await;
    client.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_file_serves_when_the_server_is_gone_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("prod.json");
    let server = TestServer::start().await;
    server.apply(&flags()).await;
    let token = server.token("server-sdk").await;
    let url = server.url.clone();
    let client = Builder::new(&url, &token, "prod")
        .snapshot_path(&snapshot)
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
        .idle_timeout(Duration::from_secs(2))
        .start()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let answers: Vec<_> =
        (0..200).map(|i| client.evaluate("theme", &context(i).0).unwrap().variant).collect();
    assert!(snapshot.exists(), "the snapshot is written after the first update");

    server.stop().await;
    // The running client keeps answering from memory and says it is no longer connected.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.status().connected {
        assert!(tokio::time::Instant::now() < deadline, "never noticed the server went away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = client.status();
    assert!(st.last_error.is_some() && st.current_at.is_some(), "{st:?}");
    assert_eq!(client.evaluate("theme", &context(3).0).unwrap().variant, answers[3]);
    client.close().await;

    // A new client (as after a restart) with the server still down serves the file.
    let restarted = Builder::new(&url, &token, "prod")
        .snapshot_path(&snapshot)
        .reconnect_delay(Duration::from_millis(20), Duration::from_millis(100))
        .start()
        .unwrap();
    assert_eq!(restarted.wait_ready(Duration::from_millis(300)).await.unwrap(), Source::Disk);
    let again: Vec<_> =
        (0..200).map(|i| restarted.evaluate("theme", &context(i).0).unwrap().variant).collect();
    assert_eq!(again, answers, "the same answers from the snapshot file");
    assert!(!restarted.status().connected);

    // Without a snapshot file and without a server, wait_ready says why.
    let empty = Builder::new(&url, &token, "prod").start().unwrap();
    let err = empty.wait_ready(Duration::from_millis(300)).await.unwrap_err();
    assert!(err.to_string().contains("no configuration"), "{err}");
    // A snapshot of another environment is not used.
    let other = Builder::new(&url, &token, "staging").snapshot_path(&snapshot).start().unwrap();
    assert!(other.wait_ready(Duration::from_millis(200)).await.is_err());
}

/// A server with the flags and a rollout of `search` started (25% → 100%); the rollout's id and
/// a server-sdk token.
async fn search_rollout() -> (TestServer, String, String) {
    let server = TestServer::start().await;
    server.apply(&flags()).await;
    let id = start_search_rollout(&server).await;
    let token = server.token("server-sdk").await;
    (server, id, token)
}

/// Stores a plan for `search` (25% → 100%) and starts it; the rollout's id.
async fn start_search_rollout(server: &TestServer) -> String {
    let plan = Plan::new("p", "search").waves(&["{ exposure: 25% }", "{ exposure: 100% }"]);
    server.admin.post_yaml("/api/v1/plans", &plan.to_string()).await;
    let started = server
        .admin
        .call(reqwest::Method::POST, "/api/v1/rollouts", Some(json!({"plan": "p"})))
        .await;
    started["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposures_and_outcomes_reach_the_rollout_in_batches() {
    let (server, id, token) = search_rollout().await;
    let client = Builder::new(&server.url, &token, "prod")
        .max_batch(100)
        .flush_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    until_rollout_rule(&client).await;
    let mut exposed = 0;
    for i in 0..250 {
        let (ctx, _) = context(i * 17 + 1); // no staff
        let e = client.evaluate("search", &ctx).unwrap();
        client.exposure("search", &e.variant, &ctx);
        client.outcome(
            "search",
            &e.variant,
            &ctx,
            &Outcome { error: Some(false), latency_ms: Some(12.0), ..Outcome::default() },
        );
        exposed += 1;
    }
    // 500 events, batches of 100: four went as each batch filled; flush sends the rest.
    client.flush().await.unwrap();
    assert_eq!(client.status().queued_events, 0);
    let (n, rows) = server.counted(&id, "error").await;
    assert_eq!(n, f64::from(exposed), "every outcome counted: {rows:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_before_a_start_stay_out_of_the_arms_however_late_they_are_sent() {
    let server = TestServer::start().await;
    server.apply(&flags()).await;
    let token = server.token("server-sdk").await;
    let client = Builder::new(&server.url, &token, "prod")
        .flush_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    // Evaluated and queued before the rollout starts (flag version 1), as a busy SDK would.
    for i in 0..100 {
        let (ctx, _) = context(i * 17 + 1);
        let e = client.evaluate("search", &ctx).unwrap();
        assert_eq!(e.version, Some(1), "answers carry the version they came from");
        client.exposure_of("search", &e, &ctx);
        client.exposure("search", &e.variant, &ctx);
    }
    let id = start_search_rollout(&server).await;
    let mut rx = client.changes();
    while client.evaluate("search", &context(2).0).unwrap().version != Some(2) {
        until_changed(&client, &mut rx, "the rollout's flag version").await;
    }
    // The batch goes out after the start: most of it ("off") is what the rollout's rule now
    // serves those users, but it came from version 1, so none of it counts.
    client.flush().await.unwrap();
    let rows = server.store.aggregates(&id, 0, &[]).await.unwrap();
    assert!(rows.is_empty(), "late answers counted: {rows:?}");
    // Answers of the wave itself count.
    for i in 0..100 {
        let (ctx, _) = context(i * 17 + 1);
        let e = client.evaluate("search", &ctx).unwrap();
        client.exposure_of("search", &e, &ctx);
    }
    client.flush().await.unwrap();
    let (n, rows) = server.counted(&id, "exposure").await;
    assert_eq!(n, 100.0, "{rows:?}");
    server.stop().await;
}

/// Reads one HTTP/1.1 message (head and a `Content-Length` body) from `r`; None at EOF.
async fn read_message(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.ok()?;
    buf.extend(body);
    Some(buf)
}

/// A proxy in front of `upstream` that passes everything through, except that it forwards the
/// first `POST /api/v1/events` and, once the server has answered (and so committed), closes
/// the client's connection without the answer: the SDK sees its batch fail and retries it.
async fn losing_proxy(upstream: String) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let (upstream, lost) = (upstream.clone(), lost.clone());
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                while let Some(request) = read_message(&mut client).await {
                    server.write_all(&request).await.unwrap();
                    if request.starts_with(b"GET /api/v1/stream") {
                        // A long-lived stream: pass it through as it is.
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                    let Some(response) = read_message(&mut server).await else { return };
                    let events = request.starts_with(b"POST /api/v1/events");
                    if events && !lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        return; // The answer is lost; the connection closes.
                    }
                    if client.write_all(&response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_answer_is_lost_after_the_commit_counts_once() {
    let (server, id, token) = search_rollout().await;
    let proxy = losing_proxy(server.url.clone()).await;
    let client = Builder::new(&proxy, &token, "prod")
        .flush_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    until_rollout_rule(&client).await;
    for i in 0..60 {
        let (ctx, _) = context(i * 17 + 1);
        let e = client.evaluate("search", &ctx).unwrap();
        client.exposure("search", &e.variant, &ctx);
    }
    // The first send is committed but its answer lost; the SDK keeps the batch.
    assert!(client.flush().await.is_err(), "the lost answer is an error to the SDK");
    assert_eq!(client.status().queued_events, 60);
    // More events arrive; the retry sends the same batch, then the new events.
    for i in 60..70 {
        let (ctx, _) = context(i * 17 + 1);
        let e = client.evaluate("search", &ctx).unwrap();
        client.exposure("search", &e.variant, &ctx);
    }
    client.flush().await.unwrap();
    assert_eq!(client.status().queued_events, 0);
    let (n, rows) = server.counted(&id, "exposure").await;
    assert_eq!(n, 70.0, "each exposure counted exactly once: {rows:?}");
    server.stop().await;
}
