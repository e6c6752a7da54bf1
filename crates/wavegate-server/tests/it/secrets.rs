//! Issue 16: secrets stay secret and access stays bounded.

use axum::http::{Method, StatusCode};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::spawn_app;

/// Issue 16, item 9: a `--prometheus-url` with `user:password@` does not leak its password into
/// the verdicts (which server-sdk tokens read) when the query fails.
#[tokio::test]
async fn issue_16_prometheus_credentials_stay_out_of_verdicts() {
    let mut app = spawn_app().await;
    // Nothing listens on port 9: the query fails and its error becomes the explanation.
    app.state.outbound.prometheus_url = Some("http://reader:s3cret-pw@127.0.0.1:9".into());
    app.router = wavegate_server::app(app.state.clone());
    let guardrail = "guardrails:
  - { name: http-errors, source: prometheus, query: 'up', comparison: bound, bound: 1.0, action: pause }
";
    let plan = Plan::new("prom", "checkout").section(guardrail).to_string();
    app.prepare(&on_off(&["checkout"]), &plan).await;
    let id = app.start("prom").await;
    app.tick().await;

    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut seen = String::new();
    for path in [format!("/api/v1/rollouts/{id}"), format!("/api/v1/rollouts/{id}/verdicts")] {
        let r = app.call(Method::GET, &path, Some(&sdk), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        seen.push_str(&r.body.to_string());
    }
    assert!(seen.contains("http-errors"), "a verdict was recorded: {seen}");
    assert!(seen.contains("reader:***@127.0.0.1:9"), "the URL is named, redacted: {seen}");
    assert!(!seen.contains("s3cret-pw"), "the password never shows: {seen}");
}
