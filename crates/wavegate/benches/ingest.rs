//! Ingest throughput of one real `wavegate serve` process (this build's binary): the events
//! API and the OTLP trace receiver in the same run, each beside a parse-only baseline.
//!
//! Setup per store: flag `checkout` with a rollout in its first wave (25 % exposure, the most a
//! plan may start with; a one-hour hold, the controller ticking hourly), so every event is
//! attributed to an arm and counted.
//! Each user's variant is asked of the server once (OFREP) so no event is `stale`.
//!
//! Events: the bodies are serialised before the clock starts: per user an exposure and an
//! outcome (`error`, `latency_ms`, and on every other user a `basket_value` metric), each with
//! a context of `targetingKey` and `country`. Several connections post them to
//! `POST /api/v1/events` (server-sdk token) back to back; each waits for its 202, which the
//! server sends only once the batch's effect on the aggregates is committed.
//!
//! OTLP, on the same server and rollout once the events load has stopped: protobuf
//! `ExportTraceServiceRequest` bodies, encoded before the clock starts, as an instrumented
//! checkout service's batch span processor sends them: one resource (`service.name` and the
//! SDK's attributes) with two instrumentation scopes, and traces of ten spans (a server span
//! and nine children: database, HTTP client and internal spans with a few attributes each).
//! The root of each trace carries an OpenFeature `feature_flag.evaluation` event of `checkout`
//! for one user with the variant the server served them, so 10 % of the spans count (an
//! exposure and an outcome each) and the other 90 % are decoded and ignored. Several
//! connections post them to `POST /v1/traces`; each waits for its 200, sent once the counted
//! events are committed, and checks that it reports no span stale or unattributed.
//! Evaluation events are placed by their time against the wave's start, and the server's
//! default clock-skew allowance (5 s) would leave those of the smoke run unattributed: the
//! bench starts the server with `WAVEGATE_EVENT_CLOCK_SKEW=1ms` (`serve --event-clock-skew`;
//! client and server share this clock) and stamps the evaluations with the time taken at least
//! half a second after the rollout started.
//!
//! Each load: after a warm-up, events (or spans) acknowledged per second in each of several
//! back-to-back windows, and the same per core of server CPU time (user + system from
//! `/proc/PID/stat` over the window); the best and the median window are reported.
//! Afterwards the rollout's exposure count must have grown by exactly the exposures (the
//! evaluation spans) acknowledged: nothing acknowledged was lost or double counted.
//!
//! Baselines, one thread, in this process, before the load starts, best of three: the same
//! event bodies through `wavegate_server::http::events::Batch::parse` (the handler's own JSON
//! step: serde into the same wire types), and the same OTLP bodies through
//! `wavegate_protocols::otlp::decode` (the receiver's own decoder).
//!
//! `cargo bench -p wavegate --bench ingest` (or `bench/ingest.sh`) runs SQLite, then PostgreSQL
//! when `psql` reaches `WAVEGATE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`).
//! `INGEST_BATCH` (events per request), `INGEST_SPANS` (spans per OTLP request),
//! `INGEST_CONNECTIONS`, `INGEST_WINDOWS` and `INGEST_SECS` (per window) change the sizes.
//! `cargo test --benches -p wavegate` is the smoke run: tiny sizes, well under a second of load
//! per store and API.

/// The same allocator as the `wavegate` binary, so the parse-only baseline allocates as the
/// server does.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use prost::Message as _;
use serde_json::{Value, json};
use wavegate_protocols::otlp::{self, pb};
use wavegate_server::http::events::Batch;
use wavegate_testkit::fixtures::{Plan, on_off};
use wavegate_testkit::postgres::Database;
use wavegate_testkit::signals::exposures;

use support::{Api, Proc, admin, cpu_seconds, ofrep, percentile, serve, sqlite_in};

/// The target: events per second on one server.
const TARGET: f64 = 1_000_000.0;
/// ... or, if parsing alone is slower than that, within this factor of the parse-only rate.
const TARGET_FACTOR: f64 = 1.5;
/// The OTLP target: spans per second on one server, with 1 span in [`TRACE_SPANS`]
/// carrying an evaluation event.
const OTLP_TARGET: f64 = 200_000.0;
/// Spans per trace in the OTLP bodies; the root of each carries the evaluation event.
const TRACE_SPANS: usize = 10;

const COUNTRIES: [&str; 4] = ["NO", "SE", "DK", "DE"];

struct Sizes {
    /// Distinct users (each an exposure and an outcome per body it appears in).
    users: usize,
    /// Events per request.
    batch: usize,
    /// Spans per OTLP request (a multiple of [`TRACE_SPANS`]).
    spans: usize,
    /// Distinct pre-serialised bodies, posted in turn.
    bodies: usize,
    /// Concurrent connections, each posting back to back.
    connections: usize,
    warmup: Duration,
    /// Measured windows, back to back; the best and the median are reported (the machine this
    /// runs on is shared, and a window another process crowds out says little).
    windows: usize,
    window: Duration,
    /// How long each of the three parse-only runs lasts (the best is kept).
    parse: Duration,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl Sizes {
    fn new(full: bool) -> Sizes {
        let s = if full {
            Sizes {
                users: 4000,
                batch: 1000,
                spans: 1000,
                bodies: 16,
                // Enough requests in flight that both cores have bodies to parse while a
                // group commits (8 left the server idle part of each commit).
                connections: 16,
                warmup: Duration::from_secs(2),
                windows: 5,
                window: Duration::from_secs(3),
                parse: Duration::from_secs(1),
            }
        } else {
            Sizes {
                users: 20,
                batch: 40,
                spans: 40,
                bodies: 2,
                connections: 2,
                warmup: Duration::from_millis(100),
                windows: 1,
                window: Duration::from_millis(400),
                parse: Duration::from_millis(50),
            }
        };
        let secs = env_or("INGEST_SECS", 0);
        Sizes {
            batch: env_or("INGEST_BATCH", s.batch).max(2) / 2 * 2,
            spans: env_or("INGEST_SPANS", s.spans).max(TRACE_SPANS) / TRACE_SPANS * TRACE_SPANS,
            connections: env_or("INGEST_CONNECTIONS", s.connections).max(1),
            windows: env_or("INGEST_WINDOWS", s.windows).max(1),
            window: if secs > 0 { Duration::from_secs(secs as u64) } else { s.window },
            ..s
        }
    }
}

/// Which API a load posts to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `POST /api/v1/events`, JSON.
    Events,
    /// `POST /v1/traces`, OTLP protobuf.
    Otlp,
}

impl Mode {
    /// What the rates count, per second.
    fn rate(self) -> &'static str {
        match self {
            Mode::Events => "ev/s",
            Mode::Otlp => "spans/s",
        }
    }

    /// The single-thread baseline's name.
    fn baseline(self) -> &'static str {
        match self {
            Mode::Events => "parse",
            Mode::Otlp => "decode",
        }
    }
}

/// A deterministic hash of a user and a salt.
fn mix(user: usize, salt: u64) -> u64 {
    let mut h = (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^ (h >> 32)
}

fn context(user: usize) -> Value {
    json!({"targetingKey": format!("user-{user}"), "country": COUNTRIES[user % COUNTRIES.len()]})
}

/// Whether `user`'s request failed (2 %), and how long it took (20–220 ms).
fn outcome_of(user: usize) -> (bool, f64) {
    (mix(user, 1) % 100 < 2, 20.0 + (mix(user, 2) % 2000) as f64 / 10.0)
}

/// An exposure and an outcome for `user`, who is served `variant`.
fn pair(user: usize, variant: &str, out: &mut Vec<Value>) {
    let ctx = context(user);
    let (error, latency_ms) = outcome_of(user);
    out.push(json!({"type": "exposure", "flag": "checkout", "variant": variant, "context": ctx}));
    let mut outcome = json!({"type": "outcome", "flag": "checkout", "variant": variant, "context": ctx,
        "error": error, "latency_ms": latency_ms});
    if user.is_multiple_of(2) {
        outcome["metrics"] = json!({"basket_value": (mix(user, 3) % 20_000) as f64 / 100.0});
    }
    out.push(outcome);
}

fn body(users: impl Iterator<Item = usize>, variants: &[String]) -> Bytes {
    let mut events = Vec::new();
    for u in users {
        pair(u, &variants[u], &mut events);
    }
    Bytes::from(serde_json::to_vec(&json!({"events": events})).unwrap())
}

/// The OTLP messages as an exporter writes them. `wavegate_protocols::otlp::pb` declares only
/// the fields the receiver reads; these add the ones a real exporter also sends (the
/// instrumentation scope, span kind and flags, schema URLs), so the server skips them as it
/// would in production. The inner messages are `pb`'s.
mod wire {
    use wavegate_protocols::otlp::pb;

    /// `ExportTraceServiceRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    /// `ResourceSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<pb::Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
        #[prost(string, tag = "3")]
        pub schema_url: String,
    }

    /// `ScopeSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
        #[prost(string, tag = "3")]
        pub schema_url: String,
    }

    /// `InstrumentationScope`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstrumentationScope {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub version: String,
    }

    /// `Span`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        /// 1 internal, 2 server, 3 client.
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<pb::KeyValue>,
        #[prost(message, repeated, tag = "11")]
        pub events: Vec<pb::Event>,
        #[prost(message, optional, tag = "15")]
        pub status: Option<pb::Status>,
        /// W3C trace flags (sampled) and whether the parent is remote, as SDKs set them.
        #[prost(fixed32, tag = "16")]
        pub flags: u32,
    }
}

fn kv(key: &str, value: pb::any_value::Value) -> pb::KeyValue {
    pb::KeyValue { key: key.to_owned(), value: Some(pb::AnyValue { value: Some(value) }) }
}

fn text_kv(key: &str, value: &str) -> pb::KeyValue {
    kv(key, pb::any_value::Value::StringValue(value.to_owned()))
}

fn int_kv(key: &str, value: i64) -> pb::KeyValue {
    kv(key, pb::any_value::Value::IntValue(value))
}

/// One trace of [`TRACE_SPANS`] spans for `user`, served `variant`, ending by `now_ns`: its
/// root (the server span, which carries the evaluation event), HTTP client and internal spans
/// go to `app`, its database spans to `db`. `trace` numbers the trace, for its ids.
fn trace(
    trace: usize,
    user: usize,
    variant: &str,
    now_ns: u64,
    app: &mut Vec<wire::Span>,
    db: &mut Vec<wire::Span>,
) {
    let mut trace_id = mix(trace, 4).to_be_bytes().to_vec();
    trace_id.extend(mix(trace, 5).to_be_bytes());
    let span_id = |k: usize| mix(trace * TRACE_SPANS + k, 6).to_be_bytes().to_vec();
    let (error, latency_ms) = outcome_of(user);
    let end = now_ns - (mix(trace, 7) % 50_000_000);
    let start = end - (latency_ms * 1e6) as u64;
    let span = |k: usize, name: &str, kind: i32, attributes: Vec<pb::KeyValue>| wire::Span {
        trace_id: trace_id.clone(),
        span_id: span_id(k),
        parent_span_id: if k == 0 { Vec::new() } else { span_id(0) },
        name: name.to_owned(),
        kind,
        start_time_unix_nano: start + k as u64 * 1_000_000,
        end_time_unix_nano: if k == 0 { end } else { start + k as u64 * 1_000_000 + 800_000 },
        attributes,
        events: Vec::new(),
        status: Some(pb::Status::default()),
        flags: 0x101,
    };
    let mut root = span(
        0,
        "POST /checkout",
        2,
        vec![
            text_kv("http.request.method", "POST"),
            text_kv("http.route", "/checkout"),
            text_kv("url.scheme", "https"),
            int_kv("http.response.status_code", if error { 500 } else { 200 }),
        ],
    );
    root.events.push(pb::Event {
        time_unix_nano: start + 300_000,
        name: "feature_flag.evaluation".to_owned(),
        attributes: vec![
            text_kv("feature_flag.key", "checkout"),
            text_kv("feature_flag.result.variant", variant),
            text_kv("feature_flag.context.id", &format!("user-{user}")),
            text_kv("feature_flag.provider.name", "ofrep"),
            text_kv("feature_flag.result.reason", "TARGETING_MATCH"),
        ],
    });
    if error {
        root.status =
            Some(pb::Status { message: "payment failed".to_owned(), code: pb::STATUS_CODE_ERROR });
    }
    app.push(root);
    for k in 1..TRACE_SPANS {
        match k % 3 {
            0 => app.push(span(
                k,
                "POST",
                3,
                vec![
                    text_kv("http.request.method", "POST"),
                    text_kv("server.address", "payments.internal"),
                    text_kv("url.full", "https://payments.internal/v2/charges"),
                    int_kv("http.response.status_code", 200),
                ],
            )),
            1 => db.push(span(
                k,
                "SELECT shop.carts",
                3,
                vec![
                    text_kv("db.system.name", "postgresql"),
                    text_kv("db.operation.name", "SELECT"),
                    text_kv("db.collection.name", "carts"),
                    text_kv("server.address", "db.internal"),
                ],
            )),
            _ => app.push(span(
                k,
                "render receipt",
                1,
                vec![int_kv("receipt.lines", (k % 7) as i64)],
            )),
        }
    }
}

/// An OTLP export of one trace per user in `users` (numbered from `first_trace`), ending by
/// `now_ns`, from one checkout-service process.
fn export(
    users: impl Iterator<Item = usize>,
    first_trace: usize,
    variants: &[String],
    now_ns: u64,
) -> Bytes {
    let (mut app, mut db) = (Vec::new(), Vec::new());
    for (t, u) in users.enumerate() {
        trace(first_trace + t, u, &variants[u], now_ns, &mut app, &mut db);
    }
    let scope = |name: &str, version: &str, spans| wire::ScopeSpans {
        scope: Some(wire::InstrumentationScope {
            name: name.to_owned(),
            version: version.to_owned(),
        }),
        spans,
        schema_url: String::new(),
    };
    let resource = pb::Resource {
        attributes: vec![
            text_kv("service.name", "checkout-service"),
            text_kv("service.version", "2.4.1"),
            text_kv("deployment.environment.name", "prod"),
            text_kv("host.name", "checkout-7f9c6d-x2k4p"),
            text_kv("telemetry.sdk.name", "opentelemetry"),
            text_kv("telemetry.sdk.language", "python"),
            text_kv("telemetry.sdk.version", "1.38.0"),
        ],
    };
    let req = wire::ExportTraceServiceRequest {
        resource_spans: vec![wire::ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![
                scope("checkout-service", "2.4.1", app),
                scope("opentelemetry.instrumentation.psycopg", "0.59b0", db),
            ],
            schema_url: "https://opentelemetry.io/schemas/1.37.0".to_owned(),
        }],
    };
    Bytes::from(req.encode_to_vec())
}

/// The served variant of every user, asked of the server (8 at a time).
async fn variants(url: &str, token: &str, users: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for part in 0..8 {
        let (http, url, token) = (http.clone(), url.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for u in (part..users).step_by(8) {
                let (_, v) = ofrep(&http, &url, &token, "checkout", &context(u)).await;
                let variant = v["variant"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
                assert!(
                    v["metadata"]["rule"].as_str().is_some_and(|r| r.starts_with("rollout:")),
                    "the rollout's rule serves {u}: {v}"
                );
                out.push((u, variant));
            }
            out
        }));
    }
    let mut all = vec![String::new(); users];
    for t in tasks {
        for (u, v) in t.await.unwrap() {
            all[u] = v;
        }
    }
    all
}

/// Runs `one` over every body in turn for `time`, one thread: what it counted (events or
/// spans) per second.
fn baseline(bodies: &[Bytes], time: Duration, one: impl Fn(&Bytes) -> usize) -> f64 {
    let mut counted = 0usize;
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < time || i < bodies.len() {
        counted += std::hint::black_box(one(&bodies[i % bodies.len()]));
        i += 1;
    }
    counted as f64 / start.elapsed().as_secs_f64()
}

/// The server's own parser on an events body: its events.
fn parse(body: &Bytes) -> usize {
    Batch::parse(body).expect("the server's parser takes it").event_count()
}

/// The receiver's own decoder on an OTLP body: its spans.
fn decode(body: &Bytes) -> usize {
    otlp::decode(body, Some("application/x-protobuf"), None)
        .expect("the receiver decodes it")
        .1
        .len()
}

/// One measured window.
#[derive(Clone, Copy)]
struct Window {
    /// Events (or spans) acknowledged per second.
    per_s: f64,
    requests_per_s: f64,
    server_cores: f64,
    client_cores: f64,
}

struct Row {
    store: &'static str,
    mode: Mode,
    /// Parse-only (or decode-only), best of three, events (or spans) per second.
    baseline: f64,
    /// By rate, ascending.
    windows: Vec<Window>,
    p50_ms: f64,
    p99_ms: f64,
}

impl Row {
    fn best(&self) -> Window {
        self.windows[self.windows.len() - 1]
    }

    fn median(&self) -> Window {
        self.windows[self.windows.len() / 2]
    }
}

#[derive(Default)]
struct Acked {
    /// Events (or spans).
    items: AtomicU64,
    exposures: AtomicU64,
    requests: AtomicU64,
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: &Bytes) -> Value {
    let resp = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("server reachable");
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status.as_u16(), 202, "{v}");
    v
}

/// Posts an OTLP body: the answer's partial success (`None`: no span was refused, stale or
/// unattributed), or the status and body of an answer other than 200.
async fn post_spans(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Bytes,
) -> Result<Option<pb::PartialSuccess>, (u16, String)> {
    let resp = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/x-protobuf")
        .body(body.clone())
        .send()
        .await
        .expect("server reachable");
    let status = resp.status().as_u16();
    let answer = resp.bytes().await.unwrap_or_default();
    if status != 200 {
        return Err((status, String::from_utf8_lossy(&answer).into_owned()));
    }
    let answer = pb::ExportTraceServiceResponse::decode(answer).expect("an OTLP answer");
    Ok(answer.partial_success)
}

/// What every connection shares.
struct Load {
    mode: Mode,
    http: reqwest::Client,
    url: String,
    token: String,
    bodies: Vec<Bytes>,
    /// Events (or spans) per body.
    per_body: u64,
    /// Exposures each body adds to the rollout.
    exposures_per_body: u64,
    acked: Acked,
    stop: AtomicBool,
}

/// Posts the bodies in turn (starting at `first`) until `stop`; returns, per request, when it
/// completed and its latency (ms).
async fn connection(load: Arc<Load>, first: usize) -> Vec<(Instant, f64)> {
    let mut lat = Vec::new();
    let mut i = first;
    while !load.stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let body = &load.bodies[i % load.bodies.len()];
        match load.mode {
            Mode::Events => {
                let v = post(&load.http, &load.url, &load.token, body).await;
                assert_eq!(v["counted"].as_u64(), Some(load.per_body), "every event counts: {v}");
            }
            Mode::Otlp => {
                let partial = post_spans(&load.http, &load.url, &load.token, body)
                    .await
                    .unwrap_or_else(|(status, answer)| panic!("{status}: {answer}"));
                assert_eq!(partial, None, "every evaluation counts");
            }
        }
        let done = Instant::now();
        load.acked.items.fetch_add(load.per_body, Ordering::Relaxed);
        load.acked.exposures.fetch_add(load.exposures_per_body, Ordering::Relaxed);
        load.acked.requests.fetch_add(1, Ordering::Relaxed);
        lat.push((done, (done - sent).as_secs_f64() * 1000.0));
        i += 1;
    }
    lat
}

/// Posts `load` over several connections: a warm-up, then the measured windows (server and
/// client CPU sampled at each boundary). Stops the load and waits for the requests in flight,
/// so everything acknowledged is in `load.acked` when it returns.
async fn measure(store: &'static str, load: &Arc<Load>, server: &Proc, sizes: &Sizes) -> Row {
    let tasks: Vec<_> = (0..sizes.connections)
        .map(|c| tokio::spawn(connection(load.clone(), c * sizes.bodies / sizes.connections)))
        .collect();
    tokio::time::sleep(sizes.warmup).await;
    let me = std::process::id();
    let sample = || {
        (
            load.acked.items.load(Ordering::Relaxed),
            load.acked.requests.load(Ordering::Relaxed),
            cpu_seconds(server.child.id()).unwrap_or(f64::NAN),
            cpu_seconds(me).unwrap_or(f64::NAN),
            Instant::now(),
        )
    };
    let mut windows = Vec::new();
    let first = sample();
    let mut last = first;
    for _ in 0..sizes.windows {
        tokio::time::sleep(sizes.window).await;
        let now = sample();
        let secs = (now.4 - last.4).as_secs_f64();
        windows.push(Window {
            per_s: (now.0 - last.0) as f64 / secs,
            requests_per_s: (now.1 - last.1) as f64 / secs,
            server_cores: (now.2 - last.2) / secs,
            client_cores: (now.3 - last.3) / secs,
        });
        last = now;
    }
    windows.sort_by(|a, b| a.per_s.total_cmp(&b.per_s));
    load.stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(
            t.await
                .unwrap()
                .into_iter()
                .filter(|(at, _)| *at > first.4 && *at <= last.4)
                .map(|l| l.1),
        );
    }
    lat.sort_by(f64::total_cmp);
    Row {
        store,
        mode: load.mode,
        baseline: f64::NAN,
        windows,
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
    }
}

/// The rollout's exposures as stored.
async fn stored_exposures(api: &Api, id: &str) -> u64 {
    exposures(&api.call(reqwest::Method::GET, &format!("/api/v1/rollouts/{id}"), None).await) as u64
}

/// One store's server, its rollout and its users' variants.
struct Setup {
    store: &'static str,
    server: Proc,
    api: Api,
    id: String,
    sdk_token: String,
    variants: Vec<String>,
    started: Instant,
}

async fn setup(store: &'static str, server: Proc, sizes: &Sizes) -> Setup {
    let api = admin(&server);
    api.post_yaml("/api/v1/apply", &on_off(&["checkout"])).await;
    // The most a first wave may expose, held for an hour: every event counts toward an arm.
    let plan = Plan::new("ingest", "checkout")
        .waves(&["{ exposure: 25%, hold: 1h }", "{ exposure: 100% }"]);
    api.post_yaml("/api/v1/plans", &plan.to_string()).await;
    let sdk_token = api.token("server-sdk", &["prod"]).await;
    let client_token = api.token("client-sdk", &["prod"]).await;
    let rollout =
        api.call(reqwest::Method::POST, "/api/v1/rollouts", Some(json!({"plan": "ingest"}))).await;
    let started = Instant::now();
    let id = rollout["id"].as_str().unwrap().to_owned();
    let variants = variants(&server.url, &client_token, sizes.users).await;
    Setup { store, server, api, id, sdk_token, variants, started }
}

async fn events(s: &Setup, sizes: &Sizes) -> Row {
    let pairs = sizes.batch / 2;
    let bodies: Vec<Bytes> = (0..sizes.bodies)
        .map(|b| body((0..pairs).map(|i| (b * pairs + i) % sizes.users), &s.variants))
        .collect();
    let parse_only = (0..3).map(|_| baseline(&bodies, sizes.parse, parse)).fold(0.0, f64::max);

    let load = Arc::new(Load {
        mode: Mode::Events,
        http: reqwest::Client::new(),
        url: format!("{}/api/v1/events", s.server.url),
        token: s.sdk_token.clone(),
        bodies,
        per_body: sizes.batch as u64,
        exposures_per_body: pairs as u64,
        acked: Acked::default(),
        stop: AtomicBool::new(false),
    });
    // The events handler reads the live-rollout table, which follows the rollout's commit:
    // wait until a batch counts.
    let probe = body(0..1, &s.variants);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = post(&load.http, &load.url, &load.token, &probe).await;
        if v["counted"] == 2 {
            load.acked.exposures.fetch_add(1, Ordering::Relaxed);
            break;
        }
        assert_eq!(v["counted"], 0, "{v}");
        assert!(Instant::now() < deadline, "events never counted toward the rollout: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let row = measure(s.store, &load, &s.server, sizes).await;
    // Every acknowledged exposure is in the aggregates, once.
    let stored = stored_exposures(&s.api, &s.id).await;
    let sent = load.acked.exposures.load(Ordering::Relaxed);
    assert_eq!(stored, sent, "{}: exposures stored = exposures acknowledged", s.store);
    Row { baseline: parse_only, ..row }
}

/// The OTLP load, on the rollout the events load left behind; `None` when the server has no
/// OTLP receiver (an older build through `WAVEGATE_BENCH_BIN`).
async fn spans(s: &Setup, sizes: &Sizes) -> Option<Row> {
    // Evaluations are placed by their time: stamp them well after the wave's start.
    tokio::time::sleep(
        (s.started + Duration::from_millis(500)).saturating_duration_since(Instant::now()),
    )
    .await;
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let traces = sizes.spans / TRACE_SPANS;
    let bodies: Vec<Bytes> = (0..sizes.bodies)
        .map(|b| {
            let users = (0..traces).map(|i| (b * traces + i) % sizes.users);
            export(users, b * traces, &s.variants, now_ns)
        })
        .collect();
    let (_, decoded) = otlp::decode(&bodies[0], Some("application/x-protobuf"), None).unwrap();
    let evaluated = decoded.iter().filter(|sp| !sp.events.is_empty()).count();
    assert_eq!((decoded.len(), evaluated), (sizes.spans, traces), "spans, evaluation spans");
    let decode_only = (0..3).map(|_| baseline(&bodies, sizes.parse, decode)).fold(0.0, f64::max);

    let load = Arc::new(Load {
        mode: Mode::Otlp,
        http: reqwest::Client::new(),
        url: format!("{}{}", s.server.url, otlp::TRACES_PATH),
        token: s.sdk_token.clone(),
        bodies,
        per_body: sizes.spans as u64,
        exposures_per_body: traces as u64,
        acked: Acked::default(),
        stop: AtomicBool::new(false),
    });
    let before = stored_exposures(&s.api, &s.id).await;
    // One trace first: the receiver exists, and its evaluation counts.
    let probe = export(0..1, sizes.bodies * traces, &s.variants, now_ns);
    match post_spans(&load.http, &load.url, &load.token, &probe).await {
        Err((404, _)) => {
            println!("OTLP row ({}) skipped: this server has no {}", s.store, otlp::TRACES_PATH);
            return None;
        }
        Err((status, answer)) => panic!("{status}: {answer}"),
        Ok(partial) => assert_eq!(partial, None, "the probe's evaluation counts"),
    }
    assert_eq!(stored_exposures(&s.api, &s.id).await, before + 1, "the probe's exposure");
    load.acked.exposures.fetch_add(1, Ordering::Relaxed);

    let row = measure(s.store, &load, &s.server, sizes).await;
    // Every acknowledged evaluation span is in the aggregates, once.
    let stored = stored_exposures(&s.api, &s.id).await - before;
    let sent = load.acked.exposures.load(Ordering::Relaxed);
    assert_eq!(stored, sent, "{}: exposures stored = evaluation spans acknowledged", s.store);
    Some(Row { baseline: decode_only, ..row })
}

/// The events load, then the OTLP load, on one server.
async fn both(s: &Setup, sizes: &Sizes) -> Vec<Row> {
    let mut rows = vec![events(s, sizes).await];
    rows.extend(spans(s, sizes).await);
    rows
}

fn fmt_rate(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table of `rows` of one mode: per store, the best and the median window.
fn table(rows: &[&Row]) {
    let Some(mode) = rows.first().map(|r| r.mode) else { return };
    let (rate, base) = (mode.rate(), mode.baseline());
    let heads = [
        format!("ingest {rate}"),
        format!("{rate} per core"),
        format!("{base}-only {rate}"),
        format!("ingest/{base}"),
    ];
    // The events table's widths, widened for longer headings.
    let w: Vec<usize> =
        heads.iter().zip([12, 15, 16, 13]).map(|(h, w)| (h.len() + 1).max(w)).collect();
    println!(
        "{:<11} {:<7} {:>w0$} {:>11} {:>11} {:>w1$} {:>7} {:>w2$} {:>w3$}",
        "store",
        "window",
        heads[0],
        "server CPU",
        "client CPU",
        heads[1],
        "req/s",
        heads[2],
        heads[3],
        w0 = w[0],
        w1 = w[1],
        w2 = w[2],
        w3 = w[3],
    );
    for r in rows {
        for (label, win) in [("best", r.best()), ("median", r.median())] {
            println!(
                "{:<11} {:<7} {:>w0$} {:>11} {:>11} {:>w1$} {:>7.0} {:>w2$} {:>w3$.2}x",
                r.store,
                label,
                fmt_rate(win.per_s),
                format!("{:.2} cores", win.server_cores),
                format!("{:.2} cores", win.client_cores),
                fmt_rate(win.per_s / win.server_cores),
                win.requests_per_s,
                fmt_rate(r.baseline),
                win.per_s / r.baseline,
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3] - 1,
            );
        }
    }
    for r in rows {
        println!(
            "request latency ({}, all windows): p50 {:.1} ms, p99 {:.1} ms",
            r.store, r.p50_ms, r.p99_ms
        );
    }
}

/// How the best window of a row fared against `target`.
fn verdict(best: f64, target: f64) -> String {
    if best >= target {
        format!("met by the best window ({:.2}x the target)", best / target)
    } else {
        format!(
            "missed by the best window: {:.0}% short ({:.2}x needed)",
            (1.0 - best / target) * 100.0,
            target / best
        )
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = Sizes::new(full);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = setup("SQLite", serve(&sqlite_in(dir.path(), "ingest.db")), &sizes).await;
        rows.extend(both(&sqlite, &sizes).await);
        // Stops the SQLite server before the next one starts.
        drop(sqlite);
        match Database::create("wavegate_ingest") {
            Ok(db) => {
                let postgres = setup("PostgreSQL", serve(&db.url()), &sizes).await;
                rows.extend(both(&postgres, &sizes).await);
            }
            Err(e) => println!("PostgreSQL row skipped: {e}"),
        }
    });
    let of = |mode| rows.iter().filter(|r| r.mode == mode).collect::<Vec<_>>();
    let (event_rows, span_rows) = (of(Mode::Events), of(Mode::Otlp));
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let timing = format!(
        "{} connections; {} window(s) of {:.1} s after {:.1} s of warm-up; {cpus} CPUs here",
        sizes.connections,
        sizes.windows,
        sizes.window.as_secs_f64(),
        sizes.warmup.as_secs_f64(),
    );
    println!("event ingest: POST /api/v1/events, {} events per request, {timing}", sizes.batch);
    table(&event_rows);
    println!(
        "(ev/s per core: per core of the server's CPU time; parse-only: the same bodies through the server's own parser, one thread, in this process, best of 3)"
    );
    println!();
    println!(
        "OTLP ingest: POST {} (protobuf), {} spans per request, 1 in {TRACE_SPANS} with an evaluation event; {timing}",
        otlp::TRACES_PATH,
        sizes.spans,
    );
    table(&span_rows);
    println!(
        "(spans/s per core: per core of the server's CPU time; decode-only: the same bodies through wavegate_protocols::otlp::decode, one thread, in this process, best of 3)"
    );
    println!();
    for r in &event_rows {
        let (target, why) = if r.baseline >= TARGET {
            (TARGET, format!("{} events/s", fmt_rate(TARGET)))
        } else {
            (
                r.baseline / TARGET_FACTOR,
                format!(
                    "parse-only / {TARGET_FACTOR} = {} events/s",
                    fmt_rate(r.baseline / TARGET_FACTOR)
                ),
            )
        };
        println!("target ({}): {why}: {}", r.store, verdict(r.best().per_s, target));
    }
    for r in &span_rows {
        println!(
            "target ({}, OTLP): {} spans/s, 1 in {TRACE_SPANS} with an evaluation event: {}",
            r.store,
            fmt_rate(OTLP_TARGET),
            verdict(r.best().per_s, OTLP_TARGET)
        );
    }
    for (e, o) in
        event_rows.iter().filter_map(|e| Some((e, span_rows.iter().find(|o| o.store == e.store)?)))
    {
        println!(
            "OTLP spans/s / events ev/s ({}, same run): best {:.2}x, median {:.2}x",
            e.store,
            o.best().per_s / e.best().per_s,
            o.median().per_s / e.median().per_s,
        );
    }
    if !full {
        println!("(smoke run: debug build, tiny sizes; it checks the machinery, not the speed)");
    }
}
