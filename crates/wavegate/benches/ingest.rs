//! Event ingest throughput of one real `wavegate serve` process (this build's binary), beside
//! a parse-only baseline measured in the same run.
//!
//! Setup per store: flag `checkout` with a rollout in its first wave (25 % exposure, the most a
//! plan may start with; a one-hour hold, the controller ticking hourly), so every event is
//! attributed to an arm and counted.
//! Each user's variant is asked of the server once (OFREP) so no event is `stale`. The bodies
//! are serialised before the clock starts: per user an exposure and an outcome (`error`,
//! `latency_ms`, and on every other user a `basket_value` metric), each with a context of
//! `targetingKey` and `country`.
//!
//! Ingest: several connections post those bodies to `POST /api/v1/events` (server-sdk token)
//! back to back; each waits for its 202, which the server sends only once the batch's effect on
//! the aggregates is committed. After a warm-up, events acknowledged per second in each of
//! several back-to-back windows, and the same per core of server CPU time (user + system from
//! `/proc/PID/stat` over the window); the best and the median window are reported. Afterwards
//! the rollout's exposure counts must equal the exposures acknowledged: nothing acknowledged
//! was lost or double counted.
//!
//! Parse-only: the same bodies through `wavegate_server::http::events::Batch::parse` (the handler's
//! own JSON step: serde into the same wire types), one thread, in this process, before the
//! load starts; best of three.
//!
//! `cargo bench -p wavegate --bench ingest` (or `bench/ingest.sh`) runs SQLite, then PostgreSQL
//! when `psql` reaches `WAVEGATE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`).
//! `INGEST_BATCH`, `INGEST_CONNECTIONS`, `INGEST_WINDOWS` and `INGEST_SECS` (per window)
//! change the sizes. `cargo test --benches -p wavegate` is the smoke run: tiny sizes, well
//! under a second of load per store.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use wavegate_server::http::events::Batch;
use wavegate_testkit::fixtures::{Plan, on_off};
use wavegate_testkit::postgres::Database;
use wavegate_testkit::signals::exposures;

use support::{Proc, admin, cpu_seconds, ofrep, percentile, serve, sqlite_in};

/// The target: events per second on one server.
const TARGET: f64 = 1_000_000.0;
/// ... or, if parsing alone is slower than that, within this factor of the parse-only rate.
const TARGET_FACTOR: f64 = 1.5;

const COUNTRIES: [&str; 4] = ["NO", "SE", "DK", "DE"];

struct Sizes {
    /// Distinct users (each an exposure and an outcome per body it appears in).
    users: usize,
    /// Events per request.
    batch: usize,
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
            connections: env_or("INGEST_CONNECTIONS", s.connections).max(1),
            windows: env_or("INGEST_WINDOWS", s.windows).max(1),
            window: if secs > 0 { Duration::from_secs(secs as u64) } else { s.window },
            ..s
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

/// An exposure and an outcome for `user`, who is served `variant`.
fn pair(user: usize, variant: &str, out: &mut Vec<Value>) {
    let ctx = context(user);
    out.push(json!({"type": "exposure", "flag": "checkout", "variant": variant, "context": ctx}));
    let mut outcome = json!({"type": "outcome", "flag": "checkout", "variant": variant, "context": ctx,
        "error": mix(user, 1) % 100 < 2, "latency_ms": 20.0 + (mix(user, 2) % 2000) as f64 / 10.0});
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

/// Parses every body in turn for `time`, one thread; events per second.
fn parse_only(bodies: &[Bytes], time: Duration) -> f64 {
    let mut events = 0usize;
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < time || i < bodies.len() {
        let batch = Batch::parse(&bodies[i % bodies.len()]).expect("the server's parser takes it");
        events += std::hint::black_box(batch).event_count();
        i += 1;
    }
    events as f64 / start.elapsed().as_secs_f64()
}

/// One measured window.
#[derive(Clone, Copy)]
struct Window {
    events_per_s: f64,
    requests_per_s: f64,
    server_cores: f64,
    client_cores: f64,
}

struct Row {
    store: &'static str,
    /// Best of three, events per second.
    parse: f64,
    /// By events per second, ascending.
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
    events: AtomicU64,
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

/// What every connection shares.
struct Load {
    http: reqwest::Client,
    url: String,
    token: String,
    bodies: Vec<Bytes>,
    /// Events per body.
    per_body: u64,
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
        let v = post(&load.http, &load.url, &load.token, &load.bodies[i % load.bodies.len()]).await;
        let done = Instant::now();
        assert_eq!(v["counted"].as_u64(), Some(load.per_body), "every event counts: {v}");
        load.acked.events.fetch_add(load.per_body, Ordering::Relaxed);
        load.acked.exposures.fetch_add(load.per_body / 2, Ordering::Relaxed);
        load.acked.requests.fetch_add(1, Ordering::Relaxed);
        lat.push((done, (done - sent).as_secs_f64() * 1000.0));
        i += 1;
    }
    lat
}

#[allow(clippy::too_many_lines)]
async fn run(store: &'static str, server: Proc, sizes: &Sizes) -> Row {
    let api = admin(&server);
    api.post_yaml("/api/v1/apply", &on_off(&["checkout"])).await;
    // The most a first wave may expose, held for an hour: every event counts toward an arm.
    let plan = Plan::new("ingest", "checkout")
        .waves(&["{ exposure: 25%, hold: 1h }", "{ exposure: 100% }"]);
    api.post_yaml("/api/v1/plans", &plan.to_string()).await;
    let sdk_token = api.token("server-sdk", &["prod"]).await;
    let client_token = api.token("client-sdk", &["prod"]).await;
    let started =
        api.call(reqwest::Method::POST, "/api/v1/rollouts", Some(json!({"plan": "ingest"}))).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let variants = variants(&server.url, &client_token, sizes.users).await;

    let pairs = sizes.batch / 2;
    let bodies: Vec<Bytes> = (0..sizes.bodies)
        .map(|b| body((0..pairs).map(|i| (b * pairs + i) % sizes.users), &variants))
        .collect();
    let parse = (0..3).map(|_| parse_only(&bodies, sizes.parse)).fold(0.0, f64::max);

    let load = Arc::new(Load {
        http: reqwest::Client::new(),
        url: format!("{}/api/v1/events", server.url),
        token: sdk_token,
        bodies,
        per_body: sizes.batch as u64,
        acked: Acked::default(),
        stop: AtomicBool::new(false),
    });
    // The events handler reads the live-rollout table, which follows the rollout's commit:
    // wait until a batch counts.
    let probe = body(0..1, &variants);
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

    let tasks: Vec<_> = (0..sizes.connections)
        .map(|c| tokio::spawn(connection(load.clone(), c * sizes.bodies / sizes.connections)))
        .collect();
    tokio::time::sleep(sizes.warmup).await;
    let me = std::process::id();
    let sample = || {
        (
            load.acked.events.load(Ordering::Relaxed),
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
            events_per_s: (now.0 - last.0) as f64 / secs,
            requests_per_s: (now.1 - last.1) as f64 / secs,
            server_cores: (now.2 - last.2) / secs,
            client_cores: (now.3 - last.3) / secs,
        });
        last = now;
    }
    windows.sort_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
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

    // Every acknowledged exposure is in the aggregates, once.
    let status = api.call(reqwest::Method::GET, &format!("/api/v1/rollouts/{id}"), None).await;
    let stored = exposures(&status);
    let sent = load.acked.exposures.load(Ordering::Relaxed);
    assert_eq!(stored as u64, sent, "{store}: exposures stored = exposures acknowledged");

    Row { store, parse, windows, p50_ms: percentile(&lat, 50.0), p99_ms: percentile(&lat, 99.0) }
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

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = Sizes::new(full);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        rows.push(run("SQLite", serve(&sqlite_in(dir.path(), "ingest.db")), &sizes).await);
        match Database::create("wavegate_ingest") {
            Ok(db) => {
                let server = serve(&db.url());
                rows.push(run("PostgreSQL", server, &sizes).await);
            }
            Err(e) => println!("PostgreSQL row skipped: {e}"),
        }
    });
    println!(
        "event ingest: POST /api/v1/events, {} events per request, {} connections; {} window(s) of {:.1} s after {:.1} s of warm-up; {} CPUs here",
        sizes.batch,
        sizes.connections,
        sizes.windows,
        sizes.window.as_secs_f64(),
        sizes.warmup.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!(
        "{:<11} {:<7} {:>12} {:>11} {:>11} {:>15} {:>7} {:>16} {:>13}",
        "store",
        "window",
        "ingest ev/s",
        "server CPU",
        "client CPU",
        "ev/s per core",
        "req/s",
        "parse-only ev/s",
        "ingest/parse"
    );
    for r in &rows {
        for (label, w) in [("best", r.best()), ("median", r.median())] {
            println!(
                "{:<11} {:<7} {:>12} {:>11} {:>11} {:>15} {:>7.0} {:>16} {:>12.2}x",
                r.store,
                label,
                fmt_rate(w.events_per_s),
                format!("{:.2} cores", w.server_cores),
                format!("{:.2} cores", w.client_cores),
                fmt_rate(w.events_per_s / w.server_cores),
                w.requests_per_s,
                fmt_rate(r.parse),
                w.events_per_s / r.parse,
            );
        }
    }
    println!(
        "(ev/s per core: per core of the server's CPU time; parse-only: the same bodies through the server's own parser, one thread, in this process, best of 3)"
    );
    for r in &rows {
        println!(
            "request latency ({}, all windows): p50 {:.1} ms, p99 {:.1} ms",
            r.store, r.p50_ms, r.p99_ms
        );
    }
    for r in &rows {
        let (target, why) = if r.parse >= TARGET {
            (TARGET, format!("{} events/s", fmt_rate(TARGET)))
        } else {
            (
                r.parse / TARGET_FACTOR,
                format!(
                    "parse-only / {TARGET_FACTOR} = {} events/s",
                    fmt_rate(r.parse / TARGET_FACTOR)
                ),
            )
        };
        let best = r.best().events_per_s;
        let verdict = if best >= target {
            format!("met by the best window ({:.2}x the target)", best / target)
        } else {
            format!(
                "missed by the best window: {:.0}% short ({:.2}x needed)",
                (1.0 - best / target) * 100.0,
                target / best
            )
        };
        println!("target ({}): {why}: {verdict}", r.store);
    }
    if !full {
        println!("(smoke run: debug build, tiny sizes; it checks the machinery, not the speed)");
    }
}
