//! `wavegate edge` with real processes: it answers OFREP as the server does, follows changes,
//! forwards events into the rollout's aggregates, reports staleness when the upstream dies,
//! and serves its last good configuration after its own restart with the upstream still down.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wavegate_testkit::api::ofrep;
use wavegate_testkit::fixtures::{LAUNCH, Plan, SEGMENT_MEMBERS, crew_in_prod, on_off_flag};
use wavegate_testkit::poll::until;
use wavegate_testkit::process::Proc;
use wavegate_testkit::signals::{arm_exposures, exposures};

use crate::support::{
    ADMIN, Server, apply, bin, cli_json, eventually, start_rollout, start_with, token,
};

/// `checkout` split 30/70, and `search` (for a rollout), off.
fn flags() -> String {
    let split = r#"{ name: gradual, split: { "on": 30%, "off": 70% } }"#;
    format!("flags:\n{}{}", on_off_flag("checkout", &[split]), on_off_flag("search", &[]))
}

/// Rolls `search` out at 20% for an hour, then to everyone.
fn plan() -> String {
    Plan::new("search-edge", "search")
        .waves(&["{ exposure: 20%, hold: 1h }", "{ exposure: 100% }"])
        .to_string()
}

/// `wavegate edge` for prod of `upstream`, flushing events every 100 ms, keeping its state in
/// `state`.
fn start_edge(upstream: &str, token: &str, state: &Path) -> Proc {
    start_edge_for(upstream, token, state, "prod")
}

/// [`start_edge`] for the environments `envs` (`--env`, comma-separated).
fn start_edge_for(upstream: &str, token: &str, state: &Path, envs: &str) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.args(["edge", "--upstream", upstream, "--env", envs, "--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state)
        .args(["--flush-interval", "100ms"])
        .env("WAVEGATE_TOKEN", token)
        .env("RUST_LOG", "warn");
    let edge = Proc::spawn(&mut cmd, "wavegate edge listening on ", Duration::from_secs(30));
    assert!(edge.banner.is_empty(), "the edge reports its address first: {:?}", edge.banner);
    edge
}

/// OFREP's answer for `key`, which must be a 200.
async fn eval(http: &reqwest::Client, base: &str, token: &str, key: &str, ctx: &Value) -> Value {
    let (status, answer) = ofrep(http, base, token, key, ctx).await;
    assert_eq!(status, 200, "{base} {key}");
    answer
}

/// A bulk OFREP evaluation for `user`, with `If-None-Match` when there is an `etag`.
async fn bulk(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    user: &str,
    etag: Option<&str>,
) -> reqwest::Response {
    let mut rb = http.post(format!("{base}/ofrep/v1/evaluate/flags")).bearer_auth(token);
    if let Some(etag) = etag {
        rb = rb.header("if-none-match", etag);
    }
    rb.json(&json!({"context": {"targetingKey": user}})).send().await.unwrap()
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = http.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn answers(http: &reqwest::Client, base: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..100 {
        let ctx = json!({"targetingKey": format!("user-{i}")});
        out.push(eval(http, base, token, "checkout", &ctx).await["value"].clone());
    }
    out
}

/// A server with `flags` applied (and, with a plan, its rollout started), and a `server-sdk`
/// token for a relay of prod.
struct Upstream {
    dir: tempfile::TempDir,
    server: Server,
    url: String,
    relay: String,
    rollout: String,
}

fn upstream(flags: &str, plan: Option<String>) -> Upstream {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("w.db"), Some(ADMIN), &[]);
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flag.yaml", flags);
    let rollout = plan.map_or_else(String::new, |plan| {
        apply(&url, dir.path(), "plan", "plan.yaml", &plan);
        start_rollout(&url, ADMIN, "search-edge")
    });
    let relay = token(&url, "server-sdk", "prod", "edge-eu");
    Upstream { dir, server, url, relay, rollout }
}

/// Waits (with a deadline) until the edge answers `/readyz` with 200.
async fn until_ready(http: &reqwest::Client, edge: &Proc) {
    let readyz = format!("{}/readyz", edge.url);
    until("the edge to become ready", Duration::from_secs(30), || async {
        get(http, &readyz).await.0 == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_serves_like_the_server_forwards_events_and_survives_the_upstream() {
    let Upstream { dir, server, url, relay, rollout } = upstream(&flags(), Some(plan()));
    let app = token(&url, "client-sdk", "prod", "web");
    let service = token(&url, "server-sdk", "prod", "search-service");
    let state = dir.path().join("edge-state");
    let edge = start_edge(&url, &relay, &state);
    let http = reqwest::Client::new();

    // Ready, connected, and answering as the server does.
    until_ready(&http, &edge).await;
    let via_edge = answers(&http, &edge.url, &app).await;
    let via_server = answers(&http, &url, &app).await;
    assert_eq!(via_edge, via_server);
    let on = via_edge.iter().filter(|v| **v == json!(true)).count();
    assert!((15..=45).contains(&on), "30% split: {on} of 100");
    let r = http
        .post(format!("{}/ofrep/v1/evaluate/flags/checkout", edge.url))
        .bearer_auth("wg_not-a-real-token")
        .json(&json!({"context": {"targetingKey": "u"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the upstream decides who may ask");
    let all: Value = bulk(&http, &edge.url, &app, "user-1", None).await.json().await.unwrap();
    assert_eq!(all["flags"].as_array().unwrap().len(), 2);
    // Bulk answers carry an ETag (no flag here reads the clock); the same context gets a 304.
    let first = bulk(&http, &edge.url, &app, "user-1", None).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = bulk(&http, &edge.url, &app, "user-1", Some(&etag)).await;
    assert_eq!(again.status().as_u16(), 304);
    let other = bulk(&http, &edge.url, &app, "user-2", Some(&etag)).await;
    assert_eq!(other.status().as_u16(), 200, "a new context never gets a stale 304");

    // A change on the server reaches the edge's answers.
    let widened = flags().replace("\"on\": 30%, \"off\": 70%", "\"on\": 100%, \"off\": 0%");
    let widened = &widened[..widened.find("  search:").unwrap()];
    apply(&url, dir.path(), "flag", "f2.yaml", widened);
    until("the change to reach the edge", Duration::from_secs(10), || async {
        answers(&http, &edge.url, &app).await.iter().all(|v| *v == json!(true))
    })
    .await;

    // Events posted to the edge reach the rollout's aggregates upstream, in batches. The
    // application sends back the flag version the edge's answer carried (OFREP
    // `metadata.version`), so they count in the wave that produced them.
    let answer: Value = http
        .post(format!("{}/ofrep/v1/evaluate/flags/search", edge.url))
        .bearer_auth(&app)
        .json(&json!({"context": {"targetingKey": "user-0"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = answer["metadata"]["version"].as_i64().expect("the edge's answers carry it");
    let events: Vec<Value> = (0..200)
        .flat_map(|i| {
            let ctx = json!({"targetingKey": format!("user-{i}")});
            [json!({"type": "exposure", "flag": "search", "variant": "off", "context": ctx,
                "version": version})]
        })
        .collect();
    let r = http
        .post(format!("{}/api/v1/events", edge.url))
        .bearer_auth(&service)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let r = http
        .post(format!("{}/api/v1/events", edge.url))
        .bearer_auth(&app)
        .json(&json!({"events": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "client tokens may not post events");
    eventually("the forwarded exposures to count upstream", Duration::from_secs(30), || {
        exposures(&cli_json(&url, ADMIN, &["rollout", "status", &rollout])) > 0.0
    });

    // The upstream dies: the edge keeps answering and says it is stale.
    let before = answers(&http, &edge.url, &app).await;
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&http, &format!("{}/readyz", edge.url)).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["connected"] == false && v["stale_seconds"].as_f64().unwrap() > 0.0 {
            assert_eq!(status, 200, "stale but serving: {v}");
            assert!(v["last_error"].is_string(), "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "never noticed the upstream died: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answers(&http, &edge.url, &app).await, before);
    let (_, metrics) = get(&http, &format!("{}/metrics", edge.url)).await;
    assert!(metrics.contains("wavegate_edge_connected 0"), "{metrics}");
    let stale_line =
        metrics.lines().find(|l| l.starts_with("wavegate_edge_stale_seconds ")).unwrap();
    assert!(stale_line.split(' ').nth(1).unwrap().parse::<f64>().unwrap() > 0.0, "{stale_line}");

    // The edge restarts while the upstream is still down: it serves its last good copy, and
    // still knows the application's token.
    drop(edge);
    let edge = start_edge(&url, &relay, &state);
    let (status, body) = get(&http, &format!("{}/readyz", edge.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["source"], "disk");
    assert_eq!(answers(&http, &edge.url, &app).await, before);
    let (_, metrics) = get(&http, &format!("{}/metrics", edge.url)).await;
    assert!(metrics.contains("wavegate_edge_serving_from_disk 1"), "{metrics}");
    let stored = std::fs::read_to_string(state.join("tokens.json")).unwrap();
    assert!(!stored.contains(&app), "tokens are kept as hashes only");
}

/// The edge speaks Unleash too: the same features document as the server (and 304 on its
/// ETag), the same frontend answers, Unleash's token shape, and metrics passed upstream into
/// the rollout's arms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_serves_unleash_clients_like_the_server() {
    let Upstream { dir, server: _server, url, relay, rollout } = upstream(&flags(), Some(plan()));
    let service = token(&url, "server-sdk", "prod", "shop");
    let browser = token(&url, "client-sdk", "prod", "web");
    let edge = start_edge(&url, &relay, &dir.path().join("edge-state"));
    let http = reqwest::Client::new();
    until_ready(&http, &edge).await;
    let features = |base: String, auth: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("{base}/api/client/features"))
                .header("authorization", auth)
                .send()
                .await
                .unwrap();
            let etag = r.headers()["etag"].to_str().unwrap().to_owned();
            let body: Value = r.json().await.unwrap();
            (etag, body)
        }
    };
    let (_, upstream_doc) = features(url.clone(), service.clone()).await;
    let (etag, edge_doc) = features(edge.url.clone(), format!("default:prod.{service}")).await;
    assert_eq!(edge_doc["features"], upstream_doc["features"], "the same features as the server");
    let r = http
        .get(format!("{}/api/client/features", edge.url))
        .header("authorization", &service)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    let r = http
        .get(format!("{}/api/client/features", edge.url))
        .header("authorization", format!("default:dev.{service}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "the edge serves prod only");
    let frontend = |url: String| {
        let rb = http.get(url).header("authorization", &browser);
        async move { rb.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    for i in 0..50 {
        let q = format!("/api/frontend/all?userId=user-{i}");
        let (a, b) =
            (frontend(format!("{}{q}", edge.url)).await, frontend(format!("{url}{q}")).await);
        assert_eq!(a, b, "frontend answers for user-{i}");
    }
    let metrics = json!({"appName": "shop", "instanceId": "i-1", "bucket": {"start": "2026-11-23T10:00:00Z", "stop": "2026-11-23T10:01:00Z", "toggles": {"search": {"yes": 7, "no": 21}}}});
    let r = http
        .post(format!("{}/api/client/metrics", edge.url))
        .header("authorization", &service)
        .json(&metrics)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let status = cli_json(&url, ADMIN, &["rollout", "status", &rollout]);
    let n = |arm: &str| arm_exposures(&status, arm);
    assert_eq!((n("treatment"), n("control")), (Some(7.0), Some(21.0)), "{status}");
}

/// An edge relaying prod with a prod-scoped server-sdk token evaluates flags on segments of
/// listed users as the server does (it used to be sent the segments without their members, and
/// answered FLAG_NOT_FOUND), also a flag that starts using another such segment later.
// See: issue 16, item 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_6_the_edge_evaluates_flags_on_segments_with_members_like_the_server() {
    let Upstream { dir, server: _server, url, relay, .. } = upstream(SEGMENT_MEMBERS, None);
    let app = token(&url, "client-sdk", "prod", "web");
    let edge = start_edge(&url, &relay, &dir.path().join("edge-state"));
    let http = reqwest::Client::new();
    until_ready(&http, &edge).await;
    let both = |key: &'static str, user: usize| {
        let (http, edge, url, app) = (http.clone(), edge.url.clone(), url.clone(), app.clone());
        async move {
            let ctx = json!({"targetingKey": format!("user-{user}")});
            let at_edge = eval(&http, &edge, &app, key, &ctx).await;
            let at_server = eval(&http, &url, &app, key, &ctx).await;
            (at_edge, at_server)
        }
    };
    for user in 0..10 {
        let (at_edge, at_server) = both("vip", user).await;
        assert_eq!(at_edge, at_server, "vip for user-{user}");
        let member = [1, 5, 8].contains(&user);
        assert_eq!(at_server["value"], json!(member), "user-{user}: {at_server}");
    }
    // `crew` starts using its segment in prod: the edge follows.
    let moved = crew_in_prod();
    apply(&url, dir.path(), "flag", "moved.yaml", &moved);
    let ctx = json!({"targetingKey": "user-2"});
    until("crew to reach the edge", Duration::from_secs(10), || async {
        eval(&http, &edge.url, &app, "crew", &ctx).await["value"] == json!(true)
    })
    .await;
    for user in 0..10 {
        let (at_edge, at_server) = both("crew", user).await;
        assert_eq!(at_edge, at_server, "crew for user-{user}");
    }
}

/// One request; the status, the headers and the body.
async fn ask(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// What a client observes of the rules the edge used to apply differently from the server.
async fn observe(
    http: &reqwest::Client,
    base: &str,
    app: &str,
    service: &str,
) -> Vec<(&'static str, Value)> {
    use reqwest::Method;
    let bearer = format!("Bearer {app}");
    let auth = [("authorization", bearer.as_str())];
    let bulk = format!("{base}/ofrep/v1/evaluate/flags");
    let mut seen = Vec::new();

    // The bulk ETag rule: a clock-reading flag still gets an ETag, but a context without
    // `currentTime` never gets a 304 (the answer may change with time alone); with the time
    // fixed in the context it does, and `If-None-Match: *` matches too.
    let ctx = json!({"context": {"targetingKey": "u1"}});
    let (s, h, _) = ask(http, Method::POST, bulk.clone(), &auth, Some(ctx.clone())).await;
    let etag = h["etag"].to_str().unwrap().to_owned();
    let mut again = auth.to_vec();
    again.push(("if-none-match", &etag));
    let (s2, _, _) = ask(http, Method::POST, bulk.clone(), &again, Some(ctx)).await;
    seen.push(("clock-dependent bulk, then its ETag", json!([s, s2])));
    let fixed = json!({"context": {"targetingKey": "u1", "currentTime": "2026-07-01T00:00:00Z"}});
    let (_, h, body) = ask(http, Method::POST, bulk.clone(), &auth, Some(fixed.clone())).await;
    seen.push(("launch with the time fixed", body["flags"][0].clone()));
    let etag = h["etag"].to_str().unwrap().to_owned();
    let mut again = auth.to_vec();
    again.push(("if-none-match", &etag));
    let (s, _, _) = ask(http, Method::POST, bulk.clone(), &again, Some(fixed.clone())).await;
    let mut star = auth.to_vec();
    star.push(("if-none-match", "*"));
    let (s2, _, _) = ask(http, Method::POST, bulk.clone(), &star, Some(fixed)).await;
    seen.push(("time fixed: its ETag, then *", json!([s, s2])));

    // The environment header is honoured: a prod token may not ask for dev.
    let mut dev = auth.to_vec();
    dev.push(("x-wavegate-environment", "dev"));
    let (s, _, body) = ask(http, Method::POST, bulk.clone(), &dev, Some(json!({}))).await;
    seen.push(("a prod token naming dev", json!([s, body])));

    // Error bodies.
    let one = format!("{base}/ofrep/v1/evaluate/flags/nope");
    let (s, _, body) = ask(http, Method::POST, one.clone(), &auth, Some(json!({}))).await;
    seen.push(("an unknown flag", json!([s, body])));
    let shaped = format!("default:prod.{app}");
    let (s, _, _) =
        ask(http, Method::POST, one, &[("authorization", &shaped)], Some(json!({}))).await;
    seen.push(("Unleash's token shape on OFREP", json!(s)));

    // Unleash: a single feature, and reports checked before they are taken (or forwarded).
    let unleash = [("authorization", service)];
    let (s, _, body) =
        ask(http, Method::GET, format!("{base}/api/client/features/launch"), &unleash, None).await;
    seen.push(("/api/client/features/launch", json!([s, body["name"]])));
    let (s, _, body) =
        ask(http, Method::GET, format!("{base}/api/client/features/nope"), &unleash, None).await;
    seen.push(("/api/client/features/nope", json!([s, body])));
    let (s, _, body) = ask(
        http,
        Method::POST,
        format!("{base}/api/client/metrics"),
        &unleash,
        Some(json!({"bucket": {"toggles": {}}})),
    )
    .await;
    seen.push(("metrics without appName", json!([s, body["message"].is_string()])));
    let (s, _, body) = ask(
        http,
        Method::GET,
        format!("{base}/api/client/features"),
        &[("authorization", "nope")],
        None,
    )
    .await;
    seen.push(("an unknown token on Unleash", json!([s, body])));

    // Browsers may call (CORS, ETag exposed), and unnormalised paths are refused.
    let preflight = [
        ("origin", "http://localhost:3000"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization,content-type,if-none-match"),
    ];
    let (s, h, _) = ask(http, Method::OPTIONS, bulk.clone(), &preflight, None).await;
    let origin = h.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
    seen.push(("CORS preflight", json!([s < 300, origin])));
    let mut from_page = auth.to_vec();
    from_page.push(("origin", "http://localhost:3000"));
    let (_, h, _) = ask(http, Method::POST, bulk, &from_page, Some(json!({}))).await;
    let exposed = h.get("access-control-expose-headers").map(|v| v.to_str().unwrap().to_owned());
    seen.push(("ETag exposed to pages", json!(exposed)));
    let (s, _, body) =
        ask(http, Method::POST, format!("{base}/ofrep//v1/evaluate/flags"), &auth, None).await;
    seen.push(("an unnormalised path", json!([s, body])));
    seen
}

/// Where the edge used to answer differently from the server, it now answers as the server does
/// (it serves the server's own routers): the bulk ETag rule (clock-reading flags, `*`), the
/// environment header, `/api/client/features/{name}`, error bodies, Unleash's token shape
/// refused on OFREP, Unleash reports checked before they are forwarded, CORS and unnormalised
/// paths. Only the environments differ: the edge serves one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_answers_by_the_servers_rules() {
    let Upstream { dir, server, url, relay, .. } = upstream(LAUNCH, None);
    let app = token(&url, "client-sdk", "prod", "web");
    let service = token(&url, "server-sdk", "prod", "shop");
    let wide = token(&url, "server-sdk", "*", "ops");
    let edge = start_edge(&url, &relay, &dir.path().join("edge-state"));
    let http = reqwest::Client::new();
    until_ready(&http, &edge).await;

    let via_server = observe(&http, &url, &app, &service).await;
    let via_edge = observe(&http, &edge.url, &app, &service).await;
    for (s, e) in via_server.iter().zip(&via_edge) {
        assert_eq!(s, e, "the edge answers as the server");
    }
    let rule = |what: &str| via_edge.iter().find(|(w, _)| *w == what).unwrap().1.clone();
    // The launch date has passed: the answer cannot change with the clock any more, so the
    // ETag holds (issue 21, item 3).
    assert_eq!(rule("clock-dependent bulk, then its ETag"), json!([200, 304]));
    assert_eq!(rule("launch with the time fixed")["value"], true);
    assert_eq!(rule("time fixed: its ETag, then *"), json!([304, 304]));
    assert_eq!(rule("a prod token naming dev"), json!([403, ""]), "403 without a body");
    assert_eq!(rule("an unknown flag")[1]["errorCode"], "FLAG_NOT_FOUND");
    assert_eq!(rule("Unleash's token shape on OFREP"), json!(401));
    assert_eq!(rule("/api/client/features/launch"), json!([200, "launch"]));
    assert_eq!(rule("metrics without appName"), json!([400, true]));
    assert_eq!(rule("CORS preflight"), json!([true, "http://localhost:3000"]));
    assert_eq!(rule("ETag exposed to pages"), json!("etag"));
    assert_eq!(rule("an unnormalised path")[0], 400);

    // The environments: a token for all of them serves the edge's one without naming it, and
    // naming another is refused there (the server serves it).
    let bulk = |base: &str, env: Option<&'static str>| {
        let (http, url, wide) =
            (http.clone(), format!("{base}/ofrep/v1/evaluate/flags"), wide.clone());
        async move {
            let bearer = format!("Bearer {wide}");
            let mut headers = vec![("authorization", bearer.as_str())];
            headers.extend(env.map(|e| ("x-wavegate-environment", e)));
            ask(&http, reqwest::Method::POST, url, &headers, Some(json!({}))).await.0
        }
    };
    assert_eq!(bulk(&edge.url, None).await, 200);
    assert_eq!(bulk(&edge.url, Some("prod")).await, 200);
    assert_eq!(bulk(&edge.url, Some("dev")).await, 403, "the edge serves prod only");
    assert_eq!(bulk(&url, Some("dev")).await, 200);
    assert_eq!(bulk(&url, None).await, 400, "the server needs the environment named");
    drop(server);
}

/// Issue 21, item 6: one edge serves several environments, each over an upstream stream of its
/// own, answers each as the server does, follows changes in each, reports each in `/readyz`
/// and `/metrics`, and serves each from its own file after a restart with the upstream down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_edge_serves_several_environments() {
    let flags = "flags:\n  banner:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      prod: { enabled: true, rules: [ { serve: \"on\" } ] }\n      staging: { enabled: true }\n";
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("w.db"), Some(ADMIN), &[]);
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", flags);
    let relay = token(&url, "server-sdk", "*", "edge-eu");
    let state = dir.path().join("edge-state");
    let edge = start_edge_for(&url, &relay, &state, "prod,staging");
    let http = reqwest::Client::new();
    until_ready(&http, &edge).await;
    let (prod, staging) =
        (token(&url, "client-sdk", "prod", "web"), token(&url, "client-sdk", "staging", "web-stg"));
    let both = token(&url, "client-sdk", "*", "web-all");
    let ctx = json!({"targetingKey": "u1"});
    for base in [&url, &edge.url] {
        assert_eq!(eval(&http, base, &prod, "banner", &ctx).await["value"], true, "{base}");
        assert_eq!(eval(&http, base, &staging, "banner", &ctx).await["value"], false, "{base}");
    }
    // A token for every environment names one with the header.
    let resp = http
        .post(format!("{}/ofrep/v1/evaluate/flags/banner", edge.url))
        .bearer_auth(&both)
        .header("x-wavegate-environment", "staging")
        .json(&json!({"context": ctx}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["value"], false);
    // An environment the edge does not serve is refused, not answered from another.
    let dev = token(&url, "client-sdk", "dev", "web-dev");
    let resp = http
        .post(format!("{}/ofrep/v1/evaluate/flags/banner", edge.url))
        .bearer_auth(&dev)
        .json(&json!({"context": ctx}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "401/403 carry no OFREP body");

    let (status, body) = get(&http, &format!("{}/readyz", edge.url)).await;
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200, "{ready}");
    for env in ["prod", "staging"] {
        assert_eq!(ready["environments"][env]["ready"], true, "{ready}");
        assert_eq!(ready["environments"][env]["connected"], true, "{ready}");
    }
    let metrics = get(&http, &format!("{}/metrics", edge.url)).await.1;
    assert!(
        metrics.contains("wavegate_edge_environment_connected{environment=\"staging\"} 1"),
        "{metrics}"
    );

    // A change in staging reaches the edge's staging, and only it.
    let on = flags.replace(
        "staging: { enabled: true }",
        "staging: { enabled: true, rules: [ { serve: \"on\" } ] }",
    );
    apply(&url, dir.path(), "flag", "flags2.yaml", &on);
    until("staging's change to reach the edge", Duration::from_secs(30), || async {
        ofrep(&http, &edge.url, &staging, "banner", &ctx).await.1["value"] == true
    })
    .await;

    // Upstream down, edge restarted: each environment comes back from its own file.
    drop(server);
    drop(edge);
    for env in ["prod", "staging"] {
        assert!(state.join(format!("config-{env}.json")).is_file(), "config-{env}.json kept");
    }
    let edge = start_edge_for(&url, &relay, &state, "prod,staging");
    until_ready(&http, &edge).await;
    for t in [&prod, &staging] {
        assert_eq!(eval(&http, &edge.url, t, "banner", &ctx).await["value"], true);
    }
    let ready: Value =
        serde_json::from_str(&get(&http, &format!("{}/readyz", edge.url)).await.1).unwrap();
    assert_eq!(ready["source"], "disk", "{ready}");
}

/// Issue 21, item 6: an edge advertises OFREP's event stream of its own in bulk answers (with a
/// ticket, as the server does), and sends `refetchEvaluation` there when a change it follows
/// arrives; a forged ticket, or one for another environment, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_advertises_its_own_event_stream() {
    let Upstream { dir, server: _server, url, relay, .. } = upstream(&flags(), None);
    let edge = start_edge(&url, &relay, &dir.path().join("edge-state"));
    let http = reqwest::Client::new();
    until_ready(&http, &edge).await;
    let app = token(&url, "client-sdk", "prod", "web");
    let answer: Value = bulk(&http, &edge.url, &app, "u1", None).await.json().await.unwrap();
    let stream = answer["eventStreams"][0]["url"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(stream.starts_with(&format!("{}/ofrep/v1/events?", edge.url)), "{stream}");
    assert_eq!(answer["eventStreams"][0]["type"], "sse");

    let forged = format!("{}0", &stream[..stream.len() - 1]);
    let forged =
        if forged == stream { format!("{}1", &stream[..stream.len() - 1]) } else { forged };
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 401, "a forged ticket");
    let elsewhere = stream.replace("environment=prod", "environment=staging");
    assert_eq!(http.get(&elsewhere).send().await.unwrap().status(), 401, "another environment");
    assert_eq!(
        http.get(format!("{}/ofrep/v1/events?environment=prod", edge.url))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "neither ticket nor token"
    );

    let mut resp = http.get(stream).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    // A change upstream reaches the edge, which tells its listeners to refetch.
    let changed = flags().replace("\"on\": 30%, \"off\": 70%", "\"on\": 40%, \"off\": 60%");
    assert_ne!(changed, flags());
    apply(&url, dir.path(), "flag", "flags2.yaml", &changed);
    let mut heard = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !heard.contains("refetchEvaluation") {
        assert!(Instant::now() < deadline, "no refetch notice: {heard:?}");
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => heard.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("the stream ended: {other:?} after {heard:?}"),
        }
    }
    assert!(heard.starts_with("data: {"), "{heard}");

    // One token holds at most 100 streams on the edge (one is open above).
    let mut open = Vec::new();
    for _ in 0..99 {
        let r = http.get(stream).send().await.unwrap();
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    let r = http.get(stream).send().await.unwrap();
    assert_eq!(r.status(), 429, "the 101st stream of one token");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_streams", "{body}");
}
