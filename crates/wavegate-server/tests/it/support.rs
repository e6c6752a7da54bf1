//! `spawn_app()`: a fresh database file, an admin token, and a way to call the router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wavegate_server::AppState;
use wavegate_store::{SqliteStore, Store};

pub const ADMIN: &str = "test-admin-token-0123456789abcdef0123";

pub struct TestApp {
    pub clock: Arc<wavegate_server::clock::ManualClock>,
    pub router: axum::Router,
    pub state: AppState,
    pub sqlite: SqliteStore,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("wavegate.db").to_str().unwrap()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    wavegate_server::ensure_admin_token(&*store, Some(ADMIN), chrono::Utc::now()).await.unwrap();
    let clock = Arc::new(wavegate_server::clock::ManualClock::new(chrono::Utc::now()));
    let mut state = AppState::new(store, clock.clone()).await.unwrap();
    // Checks retry without the production pause (its schedule has a unit test).
    state.checks.retry_pause = std::time::Duration::from_millis(10);
    TestApp { clock, router: wavegate_server::app(state.clone()), state, sqlite, _dir: dir }
}

impl TestApp {
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, headers, body }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        self.raw(method, path, token, &[("content-type", "application/json")], bytes).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(ADMIN), body).await
    }

    pub async fn apply_yaml(&self, yaml: &str) -> Reply {
        self.raw(
            Method::POST,
            "/api/v1/apply",
            Some(ADMIN),
            &[("content-type", "application/yaml")],
            yaml.as_bytes().to_vec(),
        )
        .await
    }

    pub async fn token(&self, kind: &str, envs: &[&str]) -> String {
        let r = self
            .admin(
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"kind": kind, "environments": envs})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn ofrep(&self, token: &str, key: &str, context: Value) -> Reply {
        self.call(
            Method::POST,
            &format!("/ofrep/v1/evaluate/flags/{key}"),
            Some(token),
            Some(json!({"context": context})),
        )
        .await
    }

    pub async fn revision(&self) -> i64 {
        self.state.store.revision().await.unwrap()
    }
}

pub const FLAGS: &str = r##"
segments:
  beta-testers:
    constraints:
      - { attribute: email, op: ends_with, values: ["@example.com"] }
flags:
  new-checkout:
    description: New checkout flow
    variants: { "on": true, "off": false }
    default: "off"
    environments:
      prod:
        enabled: true
        rules:
          - name: internal
            segment: beta-testers
            serve: "on"
          - name: gradual
            constraints: [{ attribute: country, op: in, values: [NO, SE] }]
            split: { "on": 10%, "off": 90% }
      dev:
        enabled: false
  banner-color:
    variants: { blue: "#00f", red: "#f00" }
    default: blue
    environments:
      prod: { enabled: true, rules: [ { name: vip, constraints: [{ attribute: plan, op: eq, values: [vip] }], serve: red } ] }
  price-factor:
    variants: { base: 1.0, sale: 0.5 }
    default: base
    environments: { prod: { enabled: true } }
  limits:
    variants: { default: { max: 10, tier: free } }
    default: default
    environments: { prod: { enabled: true } }
  strict-split:
    variants: { a: "A", b: "B" }
    default: a
    environments:
      prod: { enabled: true, rules: [ { split: { a: 50%, b: 50% }, stickiness: targetingKey } ] }
"##;
