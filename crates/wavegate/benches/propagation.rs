//! Rollback propagation and resident memory, against real `wavegate serve` and `wavegate edge`
//! processes (this build's binary).
//!
//! Propagation: N server-sent-event subscribers (one multiplexed client process: this one)
//! follow `GET /api/v1/stream`; a rollout is started, then rolled back through the API; each
//! subscriber's latency is from the rollback call returning to it holding the restored flag
//! version. An edge relay's answers are polled at the same time. Reported for 1 subscriber
//! (the baseline), 1,000 and 10,000, as p50 / p99 / max, with the ratio to the baseline;
//! beside them the server's own fan-out from its `/metrics` (`wavegate_stream_fanout_seconds`:
//! from the server hearing the commit until each subscriber's event was handed to its
//! connection; the p99 over subscribers and, over rounds, the last subscriber's).
//!
//! Fan-out tier: the server, 10 edges following it, and as many subscribers of the edges'
//! `/ofrep/v1/events` as this process may open connections (up to 100,000;
//! `WAVEGATE_BENCH_TIER=EDGES,SUBSCRIBERS`), each timed until its `refetchEvaluation`.
//!
//! Memory: the server's resident set (VmRSS) empty, with 10,000 flags, with 10,000
//! subscribers on top (resuming with `Last-Event-ID`, so no snapshot is sent to each), and
//! again once they have all closed (what the server gives back); then with 300 subscribers
//! that ask for a snapshot and never read a byte (issue 16: they once took the server to
//! gigabytes), and once they have closed. `WAVEGATE_BENCH_MEMORY=FLAGS,SUBSCRIBERS,NONREADERS`
//! sets those sizes (e.g. `2000,3000,300` for a quick comparison of two builds).
//!
//! `cargo bench -p wavegate --bench propagation` runs it all (raise `ulimit -n` first:
//! `bench/propagation.sh` does). `cargo test --benches -p wavegate` is the smoke run: 1 and 50
//! subscribers, 200 flags, one round; it checks the machinery and prints the same table.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use wavegate_core::sse::SseParser;
use wavegate_testkit::fixtures::{Plan, on_off};

use support::{Proc, admin, ofrep, percentile, rss_kib, serve, spawn, sqlite_in};

fn flags_yaml(from: usize, to: usize) -> String {
    let mut y = String::from("flags:\n");
    for i in from..to {
        y.push_str(&format!(
            "  flag-{i:05}:\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"off\"\n    environments:\n      prod:\n        enabled: true\n        rules:\n          - {{ name: r, constraints: [{{ attribute: country, op: in, values: [NO, SE, DK] }}], split: {{ \"on\": 20%, \"off\": 80% }} }}\n"
        ));
    }
    y
}

/// 10% for an hour (nothing moves during a round), then everyone.
fn plan() -> String {
    Plan::new("bench", "checkout")
        .waves(&["{ exposure: 10%, hold: 1h }", "{ exposure: 100% }"])
        .to_string()
}

/// What a subscriber follows, and which of its events count as the awaited change.
#[derive(Clone, Copy)]
enum Follows {
    /// The server's `/api/v1/stream`: a `checkout` flag event at version `want` or later.
    Stream,
    /// An edge's `/ofrep/v1/events`: any `refetchEvaluation` while armed (`want` below
    /// `i64::MAX`).
    EdgeEvents,
}

impl Follows {
    fn path(self) -> &'static str {
        match self {
            Follows::Stream => "/api/v1/stream?environment=prod",
            Follows::EdgeEvents => "/ofrep/v1/events?environment=prod",
        }
    }

    fn awaited(self, e: &wavegate_core::sse::SseEvent, want: i64) -> bool {
        match self {
            Follows::Stream => {
                if e.event != "flag" || !e.data.contains("\"key\":\"checkout\"") {
                    return false;
                }
                let version = serde_json::from_str::<Value>(&e.data)
                    .ok()
                    .and_then(|v| v["version"].as_i64())
                    .unwrap_or(0);
                version >= want && version > 0
            }
            Follows::EdgeEvents => want < i64::MAX && e.data.contains("refetchEvaluation"),
        }
    }
}

/// One subscriber to open: where, with which token, resuming after which id.
struct Target {
    base: String,
    token: String,
    resume: Option<i64>,
    follows: Follows,
}

/// Opens one subscriber; returns when its first event (or resume) arrived. It then records,
/// in `seen`, the instant it receives the awaited event, once per value of `want`.
async fn subscriber(
    http: reqwest::Client,
    target: Target,
    want: Arc<tokio::sync::watch::Sender<i64>>,
    seen: Arc<Mutex<Vec<Instant>>>,
    ready: tokio::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut attempt = 0;
    let mut resp = loop {
        let url = format!("{}{}", target.base, target.follows.path());
        let mut rb = http.get(url).bearer_auth(&target.token);
        if let Some(id) = target.resume {
            rb = rb.header("last-event-id", id.to_string());
        }
        match rb.send().await {
            Ok(r) if r.status().is_success() => break r,
            other => {
                attempt += 1;
                if attempt == 5 {
                    let why = match other {
                        Ok(r) => format!("HTTP {}", r.status()),
                        Err(e) => e.to_string(),
                    };
                    let _ = ready.send(Err(why)).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    };
    let _ = ready.send(Ok(())).await;
    let mut parser = SseParser::default();
    let mut want_rx = want.subscribe();
    let mut recorded = None;
    while let Ok(Some(chunk)) = resp.chunk().await {
        let Ok(events) = parser.push(&chunk) else { return };
        for e in events {
            let at = Instant::now();
            let want = *want_rx.borrow_and_update();
            if recorded != Some(want) && target.follows.awaited(&e, want) {
                recorded = Some(want);
                seen.lock().await.push(at);
            }
        }
    }
}

/// Opens `n` subscribers (`target(i)` says where the `i`th goes) in waves of 500 (so no listen
/// backlog overflows) and waits until each is subscribed; panics naming the first failure.
async fn connect_all(
    n: usize,
    target: impl Fn(usize) -> Target,
    want: &Arc<tokio::sync::watch::Sender<i64>>,
    seen: &Arc<Mutex<Vec<Instant>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut tasks = Vec::with_capacity(n);
    let mut done = 0;
    while done < n {
        let wave = (n - done).min(500);
        let (tx, mut rx) = tokio::sync::mpsc::channel(wave);
        for i in done..done + wave {
            let (want, seen) = (want.clone(), seen.clone());
            tasks.push(tokio::spawn(subscriber(http.clone(), target(i), want, seen, tx.clone())));
        }
        for _ in 0..wave {
            match rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    panic!("subscriber {done} could not connect: {e} (raise ulimit -n?)")
                }
                None => panic!("a subscriber ended before connecting"),
            }
        }
        done += wave;
    }
    tasks
}

/// Whether the answer for `checkout` at `base` comes from the rollout's rule.
async fn serves_the_rollout(http: &reqwest::Client, base: &str, token: &str, ctx: &Value) -> bool {
    let (_, v) = ofrep(http, base, token, "checkout", ctx).await;
    v["metadata"]["rule"].as_str().is_some_and(|r| r.starts_with("rollout:"))
}

struct Round {
    subscribers: usize,
    /// From the rollback call returning (0 when the event beat the response).
    latencies_ms: Vec<f64>,
    /// From the rollback call being sent.
    from_call_ms: Vec<f64>,
    /// How long the rollback call took.
    call_ms: Vec<f64>,
    missing: usize,
    /// The edge's answer flipping, from the call returning.
    edge_ms: Vec<f64>,
    /// The server's own fan-out (`wavegate_stream_fanout_seconds`): per subscriber, from the
    /// server hearing the commit to the event handed to the connection; each round's bucket
    /// counts (cumulative, by upper bound in seconds) added up.
    fanout: Vec<(f64, u64)>,
    /// Per round, the server's time until the last subscriber's copy was handed over
    /// (`wavegate_stream_fanout_slowest_seconds`), ms.
    fanout_last_ms: Vec<f64>,
    /// Per round, the CPU time the server spent from the rollback call being sent until every
    /// subscriber had the change (the call and the fan-out), ms: in itself and in the kernel.
    server_cpu_ms: Vec<(f64, f64)>,
}

/// The server's fan-out histogram (cumulative bucket counts by upper bound) and the slowest
/// copy of the latest change, from `/metrics`.
async fn fanout_metrics(http: &reqwest::Client, base: &str) -> (Vec<(f64, u64)>, f64) {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let buckets = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("wavegate_stream_fanout_seconds_bucket{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let slowest = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("wavegate_stream_fanout_slowest_seconds ")?.trim().parse().ok()
        })
        .unwrap_or(f64::NAN);
    (buckets, slowest)
}

/// The upper bound (ms) of the bucket that holds the `p`th percentile of cumulative `buckets`.
fn bucket_percentile(buckets: &[(f64, u64)], p: f64) -> f64 {
    let total = buckets.last().map_or(0, |b| b.1);
    if total == 0 {
        return f64::NAN;
    }
    let want = (total as f64 * p / 100.0).ceil() as u64;
    buckets.iter().find(|b| b.1 >= want).map_or(f64::NAN, |b| b.0 * 1000.0)
}

/// A server on SQLite with the bench's flags and plan, and its tokens.
struct Rig {
    /// Dropped last: the processes below use it.
    server: Proc,
    api: support::Api,
    /// For edges and stream subscribers.
    sdk_token: String,
    /// For polling OFREP answers.
    client_token: String,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let server = serve(&sqlite_in(dir.path(), "bench.db"));
        let api = admin(&server);
        let mut yaml = flags_yaml(0, 20);
        yaml.push_str(on_off(&["checkout"]).trim_start_matches("flags:\n"));
        api.post_yaml("/api/v1/apply", &yaml).await;
        api.post_yaml("/api/v1/plans", &plan()).await;
        let sdk_token = api.token("server-sdk", &["prod"]).await;
        let client_token = api.token("client-sdk", &["prod"]).await;
        Rig { server, api, sdk_token, client_token, dir }
    }

    /// Starts the `i`th edge relay following the server.
    fn edge(&self, i: usize) -> Proc {
        let state_dir = self.dir.path().join(format!("edge-{i}"));
        spawn(
            &[
                "edge",
                "--upstream",
                &self.server.url,
                "--env",
                "prod",
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                state_dir.to_str().unwrap(),
            ],
            &[("WAVEGATE_TOKEN", &self.sdk_token)],
            "wavegate edge listening on ",
        )
    }
}

/// Rollback propagation to `subscribers` of the server's own stream, with one edge beside them.
async fn propagation(subscribers: usize, rounds: usize) -> Round {
    let rig = Rig::start().await;
    let edges = [rig.edge(0)];
    let target = |_| Target {
        base: rig.server.url.clone(),
        token: rig.sdk_token.clone(),
        resume: None,
        follows: Follows::Stream,
    };
    connect_and_measure(&rig, &edges, subscribers, rounds, target).await
}

/// The fan-out tier: the server, `edges` edge relays following it, and `subscribers` of the
/// edges' OFREP event streams spread evenly over them (an edge lets one token hold 100, so
/// they use one client token per 100). A subscriber's time is until it receives its
/// `refetchEvaluation` after the rollback.
async fn tier(edges: usize, subscribers: usize, rounds: usize) -> Round {
    let rig = Rig::start().await;
    let relays: Vec<Proc> = (0..edges).map(|i| rig.edge(i)).collect();
    let mut tokens = Vec::new();
    for _ in 0..subscribers.div_ceil(100) {
        tokens.push(rig.api.token("client-sdk", &["prod"]).await);
    }
    let target = |i: usize| Target {
        base: relays[i % edges].url.clone(),
        token: tokens[i / 100].clone(),
        resume: None,
        follows: Follows::EdgeEvents,
    };
    connect_and_measure(&rig, &relays, subscribers, rounds, target).await
}

/// Connects `subscribers` (`target(i)` says where the `i`th goes), runs [`measure`]'s rounds,
/// then closes them.
async fn connect_and_measure(
    rig: &Rig,
    edges: &[Proc],
    subscribers: usize,
    rounds: usize,
    target: impl Fn(usize) -> Target,
) -> Round {
    let want = Arc::new(tokio::sync::watch::Sender::new(i64::MAX));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tasks = connect_all(subscribers, target, &want, &seen).await;
    let out = measure(rig, edges, subscribers, rounds, &want, &seen).await;
    for t in tasks {
        t.abort();
    }
    out
}

/// Runs the rounds: each starts a rollout, waits until every edge serves it, then rolls back
/// and waits until `subscribers` have recorded the awaited event in `seen` (at most 30 s) and
/// the first edge's answer flipped.
async fn measure(
    rig: &Rig,
    edges: &[Proc],
    subscribers: usize,
    rounds: usize,
    want: &tokio::sync::watch::Sender<i64>,
    seen: &Mutex<Vec<Instant>>,
) -> Round {
    let (api, server) = (&rig.api, &rig.server);
    let poll = reqwest::Client::new();
    let ctx = json!({"targetingKey": "user-7"});
    let mut out = Round {
        subscribers,
        latencies_ms: Vec::new(),
        from_call_ms: Vec::new(),
        call_ms: Vec::new(),
        missing: 0,
        edge_ms: Vec::new(),
        fanout: Vec::new(),
        fanout_last_ms: Vec::new(),
        server_cpu_ms: Vec::new(),
    };
    let server_cpu = || support::cpu_user_system(server.child.id()).unwrap_or((f64::NAN, f64::NAN));
    for _ in 0..rounds {
        let started = api
            .call(reqwest::Method::POST, "/api/v1/rollouts", Some(json!({"plan": "bench"})))
            .await;
        let id = started["id"].as_str().unwrap().to_owned();
        // Let every subscriber and edge see the rollout's flag version first.
        let flag = api.call(reqwest::Method::GET, "/api/v1/flags/checkout", None).await;
        let rolled_out = flag["version"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        for edge in edges {
            while !serves_the_rollout(&poll, &edge.url, &rig.client_token, &ctx).await {
                assert!(Instant::now() < deadline, "an edge never saw the rollout");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen.lock().await.clear();
        want.send_replace(rolled_out + 1);

        // The measured step: roll back, then wait for every subscriber and the edge.
        let edge_poll = {
            let poll = poll.clone();
            let url = edges[0].url.clone();
            let token = rig.client_token.clone();
            let ctx = ctx.clone();
            tokio::spawn(async move {
                while serves_the_rollout(&poll, &url, &token, &ctx).await {
                    tokio::task::yield_now().await;
                }
                Instant::now()
            })
        };
        let (fanout_before, _) = fanout_metrics(&poll, &server.url).await;
        let cpu_before = server_cpu();
        let sent = Instant::now();
        let rollback = format!("/api/v1/rollouts/{id}/rollback");
        api.call(reqwest::Method::POST, &rollback, Some(json!({"reason": "bench"}))).await;
        let t0 = Instant::now();
        out.call_ms.push((t0 - sent).as_secs_f64() * 1000.0);
        let deadline = t0 + Duration::from_secs(30);
        while seen.lock().await.len() < subscribers && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let edge_at = tokio::time::timeout(Duration::from_secs(30), edge_poll)
            .await
            .expect("edge flipped")
            .unwrap();
        let cpu_after = server_cpu();
        out.server_cpu_ms
            .push(((cpu_after.0 - cpu_before.0) * 1000.0, (cpu_after.1 - cpu_before.1) * 1000.0));
        let got = seen.lock().await.clone();
        out.missing += subscribers - got.len();
        out.latencies_ms
            .extend(got.iter().map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1000.0));
        out.from_call_ms
            .extend(got.iter().map(|t| t.saturating_duration_since(sent).as_secs_f64() * 1000.0));
        out.edge_ms.push(edge_at.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        let (fanout_after, slowest) = fanout_metrics(&poll, &server.url).await;
        if out.fanout.is_empty() {
            out.fanout = fanout_after.iter().map(|b| (b.0, 0)).collect();
        }
        for ((sum, after), before) in out.fanout.iter_mut().zip(&fanout_after).zip(&fanout_before) {
            sum.1 += after.1 - before.1;
        }
        out.fanout_last_ms.push(slowest * 1000.0);
        want.send_replace(i64::MAX);
    }
    out
}

/// The server's `wavegate_stream_subscribers` gauge.
async fn open_streams(http: &reqwest::Client, base: &str) -> Option<u64> {
    let text = http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix("wavegate_stream_subscribers ")?.trim().parse().ok())
}

/// Waits until the server counts `n` open streams (or at most `n`, with `at_most`), for at
/// most 30 s; returns the count it last saw (an older server kept closed subscribers' tasks
/// until the next event).
async fn wait_streams(http: &reqwest::Client, base: &str, n: u64, at_most: bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = open_streams(http, base).await.unwrap_or(u64::MAX);
        if (if at_most { open <= n } else { open >= n }) || Instant::now() > deadline {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens `n` connections that ask for the stream (and so its snapshot) and never read.
async fn never_reading(n: usize, base: &str, token: &str) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt as _;
    let addr = base.trim_start_matches("http://");
    let request = format!(
        "GET /api/v1/stream?environment=prod HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(request.as_bytes()).await.unwrap();
        out.push(c);
    }
    out
}

/// How long after the last stream closed the memory is read: the server returns what the
/// streams freed a second after they stop closing (`wavegate_server::memory::SETTLE`).
const RELEASED: Duration = Duration::from_millis(2500);

struct MemoryRun {
    empty: u64,
    with_flags: u64,
    with_subs: u64,
    after_close: u64,
    /// Streams the server still counted open after the subscribers closed.
    left_open: u64,
    /// With as many subscribers again, after they closed, and how many of both waves the
    /// server still counted open then.
    again: u64,
    after_again: u64,
    left_open_again: u64,
    non_readers: u64,
    after_non_readers: u64,
    left_open_non_readers: u64,
}

async fn memory(flags: usize, subscribers: usize, non_readers: usize) -> MemoryRun {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&sqlite_in(dir.path(), "mem.db"));
    let api = admin(&server);
    let sdk_token = api.token("server-sdk", &["prod"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let empty = rss_kib(server.child.id());
    for start in (0..flags).step_by(2000) {
        api.post_yaml("/api/v1/apply", &flags_yaml(start, (start + 2000).min(flags))).await;
    }
    let head = api.call(reqwest::Method::GET, "/api/v1/audit/verify", None).await["verified"]
        .as_i64()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with_flags = rss_kib(server.child.id());
    let want = Arc::new(tokio::sync::watch::Sender::new(i64::MAX));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let resuming = |_| Target {
        base: server.url.clone(),
        token: sdk_token.clone(),
        resume: Some(head),
        follows: Follows::Stream,
    };
    let tasks = connect_all(subscribers, resuming, &want, &seen).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_subs = rss_kib(server.child.id());
    for t in tasks {
        t.abort();
    }
    // Once the server has seen every connection close, and had a moment to free them.
    let http = reqwest::Client::new();
    let left_open = wait_streams(&http, &server.url, 0, true).await;
    // The server returns freed memory once streams have stopped closing for a second.
    tokio::time::sleep(RELEASED).await;
    let after_close = rss_kib(server.child.id());
    // As many again, then closed: what the first ones freed is used again, not added to.
    let open = left_open;
    let tasks = connect_all(subscribers, resuming, &want, &seen).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = rss_kib(server.child.id());
    for t in tasks {
        t.abort();
    }
    let left_open_again = wait_streams(&http, &server.url, open, true).await;
    // The server returns freed memory once streams have stopped closing for a second.
    tokio::time::sleep(RELEASED).await;
    let after_again = rss_kib(server.child.id());
    // Subscribers that never read: each is sent a snapshot of every flag.
    let idle = never_reading(non_readers, &server.url, &sdk_token).await;
    wait_streams(&http, &server.url, left_open + non_readers as u64, false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_non_readers = rss_kib(server.child.id());
    drop(idle);
    let left_open_non_readers = wait_streams(&http, &server.url, 0, true).await;
    // The server returns freed memory once streams have stopped closing for a second.
    tokio::time::sleep(RELEASED).await;
    let after_non_readers = rss_kib(server.child.id());
    MemoryRun {
        empty,
        with_flags,
        with_subs,
        after_close,
        left_open,
        again,
        after_again,
        left_open_again,
        non_readers: with_non_readers,
        after_non_readers,
        left_open_non_readers,
    }
}

/// This process's limit on open files (its soft `RLIMIT_NOFILE`), from `/proc/self/limits`.
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files")?.split_whitespace().next()?.parse().ok())
        .unwrap_or(1024)
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn row(label: &str, r: &Round, base_p99_from_call: f64) {
    let l = sorted(&r.latencies_ms);
    let c = sorted(&r.from_call_ms);
    let e = sorted(&r.edge_ms);
    let call = sorted(&r.call_ms);
    let last = sorted(&r.fanout_last_ms);
    let user: f64 = r.server_cpu_ms.iter().map(|c| c.0).sum();
    let system: f64 = r.server_cpu_ms.iter().map(|c| c.1).sum();
    let rounds = r.server_cpu_ms.len().max(1) as f64;
    println!(
        "{label:<20} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>9.1}x {:>8.1} {:>8.1} {:>11}",
        r.subscribers,
        percentile(&call, 50.0),
        percentile(&l, 50.0),
        percentile(&l, 99.0),
        percentile(&c, 99.0),
        c.last().copied().unwrap_or(f64::NAN),
        percentile(&e, 50.0),
        r.missing,
        percentile(&c, 99.0) / base_p99_from_call.max(0.001),
        bucket_percentile(&r.fanout, 99.0),
        percentile(&last, 99.0),
        format!("{:.0}+{:.0}", user / rounds, system / rounds),
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, rounds, mut flags, mut mem_subs): (&[usize], usize, usize, usize) =
        if full { (&[1, 1000, 10_000], 5, 10_000, 10_000) } else { (&[1, 50], 1, 200, 50) };
    let mut non_readers = if full { 300 } else { 20 };
    let mut sizes = sizes;
    // The tier: 10 edges and as many subscribers as this process may open connections (up
    // to 100,000), or `WAVEGATE_BENCH_TIER=EDGES,SUBSCRIBERS`.
    let mut tier_size = Some(if full {
        let room = open_files_limit().saturating_sub(2_000) / 1_000 * 1_000;
        (10, room.clamp(1_000, 100_000))
    } else {
        (2, 50)
    });
    if let Ok(v) = std::env::var("WAVEGATE_BENCH_TIER") {
        let n: Vec<usize> = v
            .split(',')
            .map(|x| x.trim().parse().expect("WAVEGATE_BENCH_TIER=EDGES,SUBSCRIBERS"))
            .collect();
        assert!(n.len() == 2 && n[0] > 0, "WAVEGATE_BENCH_TIER=EDGES,SUBSCRIBERS");
        tier_size = Some((n[0], n[1]));
    }
    if let Ok(v) = std::env::var("WAVEGATE_BENCH_MEMORY") {
        let n: Vec<usize> = v
            .split(',')
            .map(|x| x.trim().parse().expect("WAVEGATE_BENCH_MEMORY=FLAGS,SUBSCRIBERS,NONREADERS"))
            .collect();
        assert_eq!(n.len(), 3, "WAVEGATE_BENCH_MEMORY=FLAGS,SUBSCRIBERS,NONREADERS");
        (flags, mem_subs, non_readers) = (n[0], n[1], n[2]);
        sizes = &[]; // the memory phase only
        tier_size = None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        println!("rollback propagation (ms): each subscriber holding the restored flag version, measured from");
        println!("the rollback call returning (\"after return\", 0 when the event beat the response) and from it being sent");
        println!("and the server's own fan-out (\"srv p99\": per subscriber, bucket upper bound; \"srv last\": p99 over");
        println!("rounds of the last subscriber), from the server hearing the commit to the event handed to the connection");
        println!("(\"srv cpu\": the server's CPU time from the call being sent until every subscriber had it, mean per");
        println!("round, user + system; /proc's clock ticks are 10 ms)");
        println!(
            "{:<20} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10} {:>8} {:>8} {:>11}",
            "", "subs", "call", "p50 ret", "p99 ret", "p99 sent", "max sent", "edge", "missing", "p99/base",
            "srv p99", "srv last", "srv cpu"
        );
        let mut base = 0.0;
        for (i, &n) in sizes.iter().enumerate() {
            let r = propagation(n, rounds).await;
            if i == 0 {
                base = percentile(&sorted(&r.from_call_ms), 99.0);
            }
            let label = if i == 0 { "baseline (1 sub)".to_owned() } else { format!("{n} subscribers") };
            row(&label, &r, base);
            assert_eq!(r.missing, 0, "every subscriber got the rollback");
        }
        if let Some((edges, subs)) = tier_size {
            println!();
            println!(
                "fan-out tier (ms): the server, {edges} edges following it, {subs} subscribers of the edges' \
                 /ofrep/v1/events"
            );
            println!("(each subscriber's time until its refetchEvaluation; no pass mark; \"srv\" columns: the server's");
            println!("fan-out to the {edges} edges, as above)");
            let r = tier(edges, subs, rounds).await;
            row(&format!("{edges} edges"), &r, base);
            assert_eq!(r.missing, 0, "every edge subscriber heard of the rollback");
        }
        let m = memory(flags, mem_subs, non_readers).await;
        let (empty, with_flags, with_subs, after_close) =
            (m.empty, m.with_flags, m.with_subs, m.after_close);
        println!();
        println!("server resident memory (VmRSS)");
        println!("{:<36} {:>10}", "empty (baseline)", format!("{:.1} MiB", empty as f64 / 1024.0));
        println!("{:<36} {:>10}", format!("{flags} flags"), format!("{:.1} MiB", with_flags as f64 / 1024.0));
        println!(
            "{:<36} {:>10}  ({:.1} KiB per subscriber)",
            format!("{flags} flags + {mem_subs} subscribers"),
            format!("{:.1} MiB", with_subs as f64 / 1024.0),
            (with_subs.saturating_sub(with_flags)) as f64 / mem_subs as f64
        );
        println!(
            "{:<36} {:>10}  ({:.1} KiB per subscriber kept; {} still counted open)",
            "after every subscriber closed",
            format!("{:.1} MiB", after_close as f64 / 1024.0),
            (after_close.saturating_sub(with_flags)) as f64 / mem_subs as f64,
            m.left_open
        );
        println!(
            "{:<36} {:>10}",
            format!("{mem_subs} subscribers again"),
            format!("{:.1} MiB", m.again as f64 / 1024.0),
        );
        println!(
            "{:<36} {:>10}  ({} of both waves still counted open)",
            "after they closed",
            format!("{:.1} MiB", m.after_again as f64 / 1024.0),
            m.left_open_again
        );
        println!(
            "{:<36} {:>10}  ({:.1} KiB each)",
            format!("+ {non_readers} that never read"),
            format!("{:.1} MiB", m.non_readers as f64 / 1024.0),
            (m.non_readers.saturating_sub(after_close)) as f64 / non_readers.max(1) as f64
        );
        println!(
            "{:<36} {:>10}  ({} still counted open)",
            "after they closed",
            format!("{:.1} MiB", m.after_non_readers as f64 / 1024.0),
            m.left_open_non_readers
        );
    });
}
