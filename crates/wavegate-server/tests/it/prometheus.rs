//! Prometheus-sourced guardrails against a real Prometheus server scraping a target this test
//! serves. `.ci/run` installs Prometheus from Debian's packages.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use serde_json::json;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::spawn_app;

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
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(binary())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let p = Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let http = reqwest::Client::new();
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
            wavegate_server::outbound::prometheus::Via::Trusted(&http),
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
            wavegate_server::outbound::prometheus::Via::Trusted(&http),
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
