//! Prometheus-sourced guardrails against a real Prometheus server scraping a target this test
//! serves. `.ci/run` installs Prometheus from Debian's packages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use serde_json::json;
use wavegate_server::outbound::prometheus::{Access, AccessSpec, Via};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{TestApp, spawn_app};

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("WAVEGATE_PROMETHEUS_BIN") {
        return p.into();
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("prometheus");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the prometheus binary is missing: `apt-get install prometheus` (.ci/run does), or set WAVEGATE_PROMETHEUS_BIN"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_prometheus(target: &str) -> Prometheus {
    start_prometheus_with(Some(target), None).await
}

/// A Prometheus scraping `target` every second (if any), its storage first filled with the
/// OpenMetrics text `history` by `promtool tsdb create-blocks-from openmetrics` (if any).
async fn start_prometheus_with(target: Option<&str>, history: Option<&str>) -> Prometheus {
    start_prometheus_in(tempfile::tempdir().unwrap(), target, history, None).await
}

/// [`start_prometheus_with`] in `dir`, serving https with `web_config` (a `--web.config.file`
/// written there) when given, checked ready through `ready` (the plain client otherwise).
async fn start_prometheus_in(
    dir: tempfile::TempDir,
    target: Option<&str>,
    history: Option<&str>,
    tls: Option<(&str, &reqwest::Client)>,
) -> Prometheus {
    let config = dir.path().join("prometheus.yml");
    let scrape = match target {
        Some(t) => format!(
            "scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{t}']\n"
        ),
        None => String::new(),
    };
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{scrape}"),
    )
    .unwrap();
    let data = dir.path().join("data");
    if let Some(text) = history {
        let input = dir.path().join("history.om");
        std::fs::write(&input, text).unwrap();
        let promtool = binary().with_file_name("promtool");
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", promtool.display()));
        assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    }
    let port = free_port();
    let mut command = Command::new(binary());
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let scheme = match tls {
        Some((web_config, _)) => {
            let web = dir.path().join("web.yml");
            std::fs::write(&web, web_config).unwrap();
            command.arg(format!("--web.config.file={}", web.display()));
            "https"
        }
        None => "http",
    };
    let child =
        command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start prometheus");
    let p = Prometheus { child, url: format!("{scheme}://127.0.0.1:{port}"), _dir: dir };
    let plain = reqwest::Client::new();
    let http = tls.map_or(&plain, |(_, client)| client);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        if http
            .get(format!("{}/-/ready", p.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls Prometheus until `query` returns `want` (scrapes happen every second).
async fn until_prometheus_reads(url: &str, query: &str, want: f64) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "prometheus never read {want} for {query}");
        let read = wavegate_server::outbound::prometheus::instant(
            wavegate_server::outbound::prometheus::Via::Trusted(&http, &Access::default()),
            url,
            query,
        )
        .await;
        if matches!(read, Ok(Some(v)) if (v - want).abs() < 1e-9) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three waves (10% → 50% → 100%) behind an error-ratio guardrail read from Prometheus.
fn plan() -> String {
    let guardrail = r#"guardrails:
  - name: http-errors
    source: prometheus
    query: 'app_error_ratio{variant="{{variant}}", env="{{environment}}"}'
    comparison: absolute
    tolerance: 0.01
    action: rollback
"#;
    let waves = ["{ exposure: 10% }", "{ exposure: 50% }", "{ exposure: 100% }"];
    Plan::new("prom", "checkout").section(guardrail).waves(&waves).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_guardrail_promotes_on_good_readings_and_rolls_back_on_bad_ones() {
    // The application's metrics, as its exporter would serve them.
    let on = Arc::new(AtomicU64::new(0.01f64.to_bits()));
    let off = Arc::new(AtomicU64::new(0.01f64.to_bits()));
    let (on2, off2) = (on.clone(), off.clone());
    let app_metrics = axum::Router::new().route(
        "/metrics",
        get(move || {
            let (on, off) = (on2.clone(), off2.clone());
            async move {
                format!(
                    "# TYPE app_error_ratio gauge\napp_error_ratio{{variant=\"on\",env=\"prod\"}} {}\napp_error_ratio{{variant=\"off\",env=\"prod\"}} {}\n",
                    f64::from_bits(on.load(Ordering::SeqCst)),
                    f64::from_bits(off.load(Ordering::SeqCst))
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app_metrics).await.unwrap() });
    let prom = start_prometheus(&target).await;
    until_prometheus_reads(&prom.url, r#"app_error_ratio{variant="on"}"#, 0.01).await;

    let mut app = spawn_app().await;
    app.state.outbound.prometheus_url = Some(prom.url.clone());
    app.router = wavegate_server::app(app.state.clone());
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let id = app.start("prom").await;

    // Equal readings: pass, promote.
    app.tick().await;
    let s = app.rollout(&id).await;
    assert_eq!(s["wave"], 2, "{s}");
    let v = s["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "http-errors")
        .unwrap()
        .clone();
    assert_eq!(v["verdict"], "pass", "{v}");

    // The new variant's error ratio jumps; once Prometheus has scraped it, the next tick rolls back.
    on.store(0.2f64.to_bits(), Ordering::SeqCst);
    until_prometheus_reads(&prom.url, r#"app_error_ratio{variant="on"}"#, 0.2).await;
    app.tick().await;
    let s = app.rollout(&id).await;
    assert_eq!(s["state"], "rolled_back", "{s}");
    let fail =
        s["verdicts"].as_array().unwrap().iter().find(|v| v["verdict"] == "fail").unwrap().clone();
    assert!((fail["report"]["estimate"].as_f64().unwrap() - 0.19).abs() < 1e-9, "{fail}");
}

#[tokio::test]
async fn query_errors_and_empty_results_are_inconclusive() {
    let prom_missing = "http://127.0.0.1:9";
    let http = reqwest::Client::new();
    assert!(
        wavegate_server::outbound::prometheus::instant(
            wavegate_server::outbound::prometheus::Via::Trusted(&http, &Access::default()),
            prom_missing,
            "up"
        )
        .await
        .is_err()
    );
    let g: wavegate_rollout::plan::GuardrailSpec = serde_json::from_value(json!({
        "name": "g", "metric": "x", "source": "prometheus", "query": "q", "comparison": "bound", "bound": 1.0, "action": "pause"
    }))
    .unwrap();
    let empty = wavegate_rollout::stats::Reading::default();
    assert_eq!(
        wavegate_rollout::stats::judge_reading(&g, Some(&empty)).verdict.as_str(),
        "inconclusive"
    );
    let err = wavegate_rollout::stats::Reading { error: Some("boom".into()), ..Default::default() };
    assert_eq!(
        wavegate_rollout::stats::judge_reading(&g, Some(&err)).verdict.as_str(),
        "inconclusive"
    );
    let high = wavegate_rollout::stats::Reading { treatment: Some(2.0), ..Default::default() };
    assert_eq!(wavegate_rollout::stats::judge_reading(&g, Some(&high)).verdict.as_str(), "fail");
}

/// Serves `app_error_ratio` for the new variant `on` at the value `on` holds; its address.
async fn serve_error_ratio(on: Arc<AtomicU64>) -> String {
    let app_metrics = axum::Router::new().route(
        "/metrics",
        get(move || {
            let on = on.clone();
            async move {
                format!(
                    "# TYPE app_error_ratio gauge\napp_error_ratio{{variant=\"on\",env=\"prod\"}} {}\n",
                    f64::from_bits(on.load(Ordering::SeqCst))
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app_metrics).await.unwrap() });
    target
}

/// A plan whose one guardrail bounds the new variant's error ratio at 5%, with `extra` lines,
/// holding its first wave for an hour (so only a stop condition ends it in these tests).
fn bound_plan(extra: &str) -> String {
    let guardrail = format!(
        "guardrails:\n  - name: http-errors\n    source: prometheus\n    query: 'app_error_ratio{{variant=\"{{{{variant}}}}\"}}'\n    comparison: bound\n    bound: 0.05\n    action: rollback\n{extra}"
    );
    Plan::new("prom", "checkout")
        .section(&guardrail)
        .waves(&["{ exposure: 10%, hold: 1h }", "{ exposure: 100% }"])
        .to_string()
}

/// Asserts that rollout `id` was rolled back by `http-errors` failing on its second bad
/// reading, judged in `mode` (`instant` or `range`); the failing verdict.
async fn rolled_back_by_two_bad_readings(app: &TestApp, id: &str, mode: &str) -> serde_json::Value {
    let s = app.rollout(id).await;
    assert_eq!(s["state"], "rolled_back", "{s}");
    let v = latest_verdict(app, id).await;
    assert_eq!(v["verdict"], "fail", "{v}");
    let readings = &v["report"]["readings"];
    assert_eq!((readings["mode"].clone(), readings["bad"].clone()), (json!(mode), json!(2)), "{v}");
    v
}

/// The latest verdict recorded for the guardrail `http-errors`.
async fn latest_verdict(app: &TestApp, id: &str) -> serde_json::Value {
    let s = app.rollout(id).await;
    s["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|v| v["name"] == "http-errors")
        .unwrap_or_else(|| panic!("no verdict: {s}"))
        .clone()
}

/// Issue 18, item 3: with `failure_limit: 1`, one noisy bad reading holds the wave without
/// acting, a good one starts the count again, and two bad readings in a row roll back; the
/// verdict says it judged instant readings and quotes them. Real Prometheus, scraping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_one_noisy_reading_is_tolerated_with_failure_limit_1_two_in_a_row_roll_back() {
    let on = Arc::new(AtomicU64::new(0.01f64.to_bits()));
    let target = serve_error_ratio(on.clone()).await;
    let prom = start_prometheus(&target).await;
    let query = r#"app_error_ratio{variant="on"}"#;
    until_prometheus_reads(&prom.url, query, 0.01).await;

    let mut app = spawn_app().await;
    app.state.outbound.prometheus_url = Some(prom.url.clone());
    app.router = wavegate_server::app(app.state.clone());
    app.prepare(&on_off(&["checkout"]), &bound_plan("    failure_limit: 1\n")).await;
    let id = app.start("prom").await;
    let set = |v: f64| on.store(v.to_bits(), Ordering::SeqCst);

    app.tick().await;
    assert_eq!(latest_verdict(&app, &id).await["verdict"], "pass");
    // One noisy reading: held, not acted on.
    set(0.3);
    until_prometheus_reads(&prom.url, query, 0.3).await;
    app.tick().await;
    let s = app.rollout(&id).await;
    assert_eq!(s["state"], "running", "{s}");
    let v = latest_verdict(&app, &id).await;
    assert_eq!(v["verdict"], "inconclusive", "{v}");
    let report = &v["report"];
    assert_eq!(report["readings"]["mode"], "instant", "{v}");
    assert_eq!(report["readings"]["bad"], 1, "{v}");
    assert!(
        report["explanation"].as_str().unwrap().contains("bad reading 1 of 1 tolerated"),
        "{v}"
    );
    // A good reading starts the count again.
    set(0.01);
    until_prometheus_reads(&prom.url, query, 0.01).await;
    app.tick().await;
    assert_eq!(latest_verdict(&app, &id).await["verdict"], "pass");
    set(0.3);
    until_prometheus_reads(&prom.url, query, 0.3).await;
    app.tick().await;
    assert_eq!(app.rollout(&id).await["state"], "running");
    // The second bad reading in a row acts (the count came from the stored rollout row).
    app.tick().await;
    let v = rolled_back_by_two_bad_readings(&app, &id, "instant").await;
    let readings = &v["report"]["readings"];
    let quoted = readings["readings"].as_array().unwrap();
    assert!(
        quoted.len() == 2
            && quoted
                .iter()
                .all(|r| r["bad"] == true && r["treatment"] == 0.3 && r["at"].is_string()),
        "{v}"
    );
    assert!(
        v["report"]["explanation"]
            .as_str()
            .unwrap()
            .starts_with("2 bad readings in a row > failure_limit 1"),
        "{v}"
    );
}

/// The history a range guardrail reads, as OpenMetrics: `app_error_ratio` for variant `on`
/// every 30 s for 20 minutes from `t0`, 0.01 except at the given steps, where it is 0.3.
fn history(t0: chrono::DateTime<chrono::Utc>, bad_steps: &[i64]) -> String {
    let mut text = String::from("# TYPE app_error_ratio gauge\n");
    for i in 0..40 {
        let v = if bad_steps.contains(&i) { 0.3 } else { 0.01 };
        text.push_str(&format!(
            "app_error_ratio{{variant=\"on\"}} {v} {}\n",
            t0.timestamp() + 30 * i
        ));
    }
    text.push_str("# EOF\n");
    text
}

/// Issue 18, item 3: a guardrail with `range_step` judges the wave so far at each tick. Its
/// history is backfilled into a real Prometheus with promtool (no waiting for scrapes): one
/// bad step among good ones is tolerated with `failure_limit: 1`, a run of two rolls back,
/// and the verdicts say they judged a range and which readings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_a_range_over_the_wave_tolerates_one_bad_step_and_rolls_back_on_two_in_a_row() {
    let mut app = spawn_app().await;
    // The wave begins three hours ago, on a whole minute, where the history lies.
    app.clock.advance(-chrono::Duration::hours(3));
    let now = wavegate_server::clock::Clock::now(&*app.clock);
    app.clock.advance(
        -chrono::Duration::seconds(now.timestamp() % 60)
            - chrono::Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos())),
    );
    let t0 = wavegate_server::clock::Clock::now(&*app.clock);
    // Bad at 2m30s (noise), then at 12m and 12m30s (a run of two).
    let prom = start_prometheus_with(None, Some(&history(t0, &[5, 24, 25]))).await;
    app.state.outbound.prometheus_url = Some(prom.url.clone());
    app.router = wavegate_server::app(app.state.clone());
    app.prepare(&on_off(&["checkout"]), &bound_plan("    failure_limit: 1\n    range_step: 30s\n"))
        .await;
    let id = app.start("prom").await;

    app.clock.advance(chrono::Duration::minutes(10));
    app.tick().await;
    let s = app.rollout(&id).await;
    assert_eq!(s["state"], "running", "{s}");
    let v = latest_verdict(&app, &id).await;
    assert_eq!(v["verdict"], "pass", "{v}");
    let readings = &v["report"]["readings"];
    assert_eq!(readings["mode"], "range", "{v}");
    assert_eq!((readings["bad"].clone(), readings["judged"].clone()), (json!(1), json!(21)), "{v}");
    assert_eq!(readings["range"]["step_secs"], 30, "{v}");

    app.clock.advance(chrono::Duration::minutes(3));
    app.tick().await;
    let v = rolled_back_by_two_bad_readings(&app, &id, "range").await;
    let readings = &v["report"]["readings"];
    let bad: Vec<_> = readings["readings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["bad"] == true)
        .map(|r| r["at"].clone())
        .collect();
    let at = |step: i64| {
        json!(
            (t0 + chrono::Duration::seconds(30 * step))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    };
    assert_eq!(bad, [at(24), at(25)], "{v}");
    assert!(
        v["report"]["explanation"]
            .as_str()
            .unwrap()
            .contains("2 bad readings in a row > failure_limit 1"),
        "{v}"
    );
}

/// An authenticating reverse proxy in front of `upstream`, as Mimir, Thanos or Grafana Cloud
/// are: it answers 401 unless the request carries `Authorization: Bearer s3cret-token` or basic
/// `reader:pw`, and records the `X-Scope-OrgID` it was sent.
async fn auth_proxy(upstream: String) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let http = reqwest::Client::new();
    let proxy = axum::Router::new().fallback(move |headers: HeaderMap, uri: Uri| {
        let (http, upstream, seen) = (http.clone(), upstream.clone(), seen2.clone());
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            // base64("reader:pw")
            if auth != "Bearer s3cret-token" && auth != "Basic cmVhZGVyOnB3" {
                return (StatusCode::UNAUTHORIZED, "unauthorized\n".to_owned());
            }
            if let Some(org) = headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()) {
                seen.lock().unwrap().push(org.to_owned());
            }
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let r = http.get(format!("{upstream}{path}")).send().await.unwrap();
            (StatusCode::from_u16(r.status().as_u16()).unwrap(), r.text().await.unwrap())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, proxy).await.unwrap() });
    (url, seen)
}

/// Issue 18, item 3: Prometheus behind authentication. Without credentials the reading fails
/// naming the 401 (and the verdict is inconclusive, never a pass); with a bearer token, basic
/// authentication or headers from `serve --prometheus-*` it reads; the secrets never show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_prometheus_behind_an_authenticating_proxy() {
    let on = Arc::new(AtomicU64::new(0.01f64.to_bits()));
    let target = serve_error_ratio(on.clone()).await;
    let prom = start_prometheus(&target).await;
    let query = r#"app_error_ratio{variant="on"}"#;
    until_prometheus_reads(&prom.url, query, 0.01).await;
    let (proxy, seen) = auth_proxy(prom.url.clone()).await;
    let http = reqwest::Client::new();

    let none = wavegate_server::outbound::prometheus::instant(
        Via::Trusted(&http, &Access::default()),
        &proxy,
        query,
    )
    .await;
    let err = none.unwrap_err();
    assert!(
        err.starts_with("401 Unauthorized from http://127.0.0.1:")
            && err.contains("it wants credentials: serve --prometheus-bearer-file"),
        "{err}"
    );
    let wrong =
        Access::new(AccessSpec { bearer: Some("wr0ng-token".into()), ..AccessSpec::default() })
            .unwrap();
    let err =
        wavegate_server::outbound::prometheus::instant(Via::Trusted(&http, &wrong), &proxy, query)
            .await
            .unwrap_err();
    assert!(
        err.contains("401")
            && err.contains("credentials sent were refused")
            && !err.contains("wr0ng"),
        "{err}"
    );
    assert!(!format!("{wrong:?}").contains("wr0ng"), "{wrong:?}");
    let bearer = Access::new(AccessSpec {
        bearer: Some("s3cret-token\n".into()),
        headers: vec![("X-Scope-OrgID".into(), "tenant-1".into())],
        ..AccessSpec::default()
    })
    .unwrap();
    let read =
        wavegate_server::outbound::prometheus::instant(Via::Trusted(&http, &bearer), &proxy, query)
            .await;
    assert_eq!(read, Ok(Some(0.01)));
    assert_eq!(seen.lock().unwrap().as_slice(), ["tenant-1"]);
    let basic =
        Access::new(AccessSpec { basic: Some("reader:pw".into()), ..AccessSpec::default() })
            .unwrap();
    let read =
        wavegate_server::outbound::prometheus::instant(Via::Trusted(&http, &basic), &proxy, query)
            .await;
    assert_eq!(read, Ok(Some(0.01)));
    // Bad input is named without quoting the secret.
    let both =
        AccessSpec { bearer: Some("a".into()), basic: Some("b:c".into()), ..AccessSpec::default() };
    assert_eq!(
        Access::new(both).unwrap_err(),
        "give a bearer token or basic authentication, not both"
    );
    let broken = AccessSpec {
        headers: vec![("X-Key".into(), "s3cret\u{7}".into())],
        ..AccessSpec::default()
    };
    let err = Access::new(broken).unwrap_err();
    assert!(err.contains("X-Key") && !err.contains("s3cret"), "{err}");
    let ca = AccessSpec { ca_pem: Some(b"not a certificate".to_vec()), ..AccessSpec::default() };
    assert!(Access::new(ca).is_err());

    // Through the controller: without credentials the verdict names the 401; with them the
    // guardrail passes. A plan's own prometheus_url never gets the operator's credentials.
    let mut app = spawn_app().await;
    app.state.outbound.prometheus_url = Some(proxy.clone());
    app.router = wavegate_server::app(app.state.clone());
    app.prepare(&on_off(&["checkout"]), &bound_plan("")).await;
    let id = app.start("prom").await;
    app.tick().await;
    let v = latest_verdict(&app, &id).await;
    assert_eq!(v["verdict"], "inconclusive", "{v}");
    assert!(v["report"]["explanation"].as_str().unwrap().contains("401 Unauthorized"), "{v}");
    app.state.outbound.prometheus_access = bearer;
    app.tick().await;
    let v = latest_verdict(&app, &id).await;
    assert_eq!(v["verdict"], "pass", "{v}");
    let all = app.rollout(&id).await.to_string();
    assert!(!all.contains("s3cret-token") && !all.contains("tenant-1"), "{all}");
}

/// Runs `openssl` with `args` in `dir` (the test's certificates; Debian's openssl package).
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian's openssl package)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Issue 18, item 3: an https Prometheus whose certificate a private CA signed is read once
/// `serve --prometheus-ca-file` names that CA, and refused (inconclusive, saying why) without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_prometheus_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=wavegate test CA",
    ]);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(d, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    openssl(d, &csr);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let ca_pem = std::fs::read(d.join("ca.pem")).unwrap();
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        d.join("server.pem").display(),
        d.join("server.key").display()
    );
    let access =
        Access::new(AccessSpec { ca_pem: Some(ca_pem.clone()), ..AccessSpec::default() }).unwrap();
    let trusting = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&ca_pem).unwrap())
        .build()
        .unwrap();
    let prom = start_prometheus_in(dir, None, None, Some((&web, &trusting))).await;
    assert!(prom.url.starts_with("https://"), "{}", prom.url);

    let http = reqwest::Client::new();
    let err = wavegate_server::outbound::prometheus::instant(
        Via::Trusted(&http, &Access::default()),
        &prom.url,
        "vector(1)",
    )
    .await
    .unwrap_err();
    assert!(err.contains("failed") && err.to_lowercase().contains("certificate"), "{err}");
    let read = wavegate_server::outbound::prometheus::instant(
        Via::Trusted(&http, &access),
        &prom.url,
        "vector(1)",
    )
    .await;
    assert_eq!(read, Ok(Some(1.0)));
}
