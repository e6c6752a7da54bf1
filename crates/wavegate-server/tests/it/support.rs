//! `spawn_app()`: a fresh database file, an admin token, and a way to call the router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wavegate_server::AppState;
use wavegate_store::{SqlStore, Store};

pub use wavegate_testkit::ADMIN;
pub use wavegate_testkit::fixtures::FLAGS;
use wavegate_testkit::fixtures::Plan;

pub struct TestApp {
    pub clock: Arc<wavegate_server::clock::ManualClock>,
    pub router: axum::Router,
    pub state: AppState,
    pub sqlite: SqlStore,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// [`spawn_app_allowing`] loopback: the tests' receivers, probes and Prometheus listen on
/// 127.0.0.1, which the default outbound policy refuses.
pub async fn spawn_app() -> TestApp {
    spawn_app_allowing(&["127.0.0.1"]).await
}

/// A fresh app whose outbound policy allows `allow` (`serve --allow-outbound`); `&[]` is the
/// default policy.
pub async fn spawn_app_allowing(allow: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqlStore::open(dir.path().join("wavegate.db").to_str().unwrap()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    wavegate_server::ensure_admin_token(&*store, Some(ADMIN), chrono::Utc::now()).await.unwrap();
    let clock = Arc::new(wavegate_server::clock::ManualClock::new(chrono::Utc::now()));
    let mut state = AppState::new(store, clock.clone()).await.unwrap();
    // Checks retry without the production pause (its schedule has a unit test).
    state.outbound.checks.retry_pause = std::time::Duration::from_millis(10);
    let policy = wavegate_server::outbound::policy::Policy::parse(allow.iter().copied()).unwrap();
    state.outbound.guard = wavegate_server::outbound::Guard::new(policy);
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

    /// POSTs a YAML document as the admin.
    async fn post_yaml(&self, path: &str, yaml: &str) -> Reply {
        let yaml_type = [("content-type", "application/yaml")];
        self.raw(Method::POST, path, Some(ADMIN), &yaml_type, yaml.as_bytes().to_vec()).await
    }

    /// Applies a flag file.
    pub async fn apply_yaml(&self, yaml: &str) -> Reply {
        self.post_yaml("/api/v1/apply", yaml).await
    }

    /// Stores a plan.
    pub async fn post_plan(&self, yaml: &str) -> Reply {
        self.post_yaml("/api/v1/plans", yaml).await
    }

    /// Stores a plan as the holder of `token` (its author, for separation of duties).
    pub async fn post_plan_as(&self, token: &str, yaml: &str) -> Reply {
        let yaml_type = [("content-type", "application/yaml")];
        self.raw(Method::POST, "/api/v1/plans", Some(token), &yaml_type, yaml.as_bytes().to_vec())
            .await
    }

    /// Applies `flags` and stores `plan`, asserting both worked.
    pub async fn prepare(&self, flags: &str, plan: &str) {
        let r = self.apply_yaml(flags).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let r = self.post_plan(plan).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }

    /// Starts a rollout of the stored plan `plan`; its id. Panics unless it started.
    pub async fn start(&self, plan: &str) -> String {
        let r = self.admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": plan}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// How many items the list at `path` holds (read as the admin).
    pub async fn count(&self, path: &str) -> usize {
        let r = self.admin(Method::GET, path, None).await;
        r.body.as_array().unwrap_or_else(|| panic!("{path}: not a list: {:?}", r.body)).len()
    }

    /// A person's `command` (`pause`, `resume`, `rollback`) on rollout `id`, as the admin, with
    /// `reason`.
    pub async fn command(&self, id: &str, command: &str, reason: &str) -> Reply {
        let path = format!("/api/v1/rollouts/{id}/{command}");
        self.admin(Method::POST, &path, Some(json!({"reason": reason}))).await
    }

    /// A rollout's status.
    pub async fn rollout(&self, id: &str) -> Value {
        self.admin(Method::GET, &format!("/api/v1/rollouts/{id}"), None).await.body
    }

    /// One controller tick, as the leading replica's loop runs it.
    pub async fn tick(&self) {
        wavegate_server::runtime::controller::tick(&self.state).await.unwrap();
    }

    /// Asks for a token (`{"kind", "environments", "principal"?}`) as `by`.
    pub async fn mint(&self, by: &str, token: Value) -> Reply {
        self.call(Method::POST, "/api/v1/tokens", Some(by), Some(token)).await
    }

    /// A new token of `kind` for `envs`, minted by the admin.
    pub async fn token(&self, kind: &str, envs: &[&str]) -> String {
        let r = self.mint(ADMIN, json!({"kind": kind, "environments": envs})).await;
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

    /// Evaluates every flag over OFREP (`POST /ofrep/v1/evaluate/flags`) with a raw body.
    pub async fn bulk(&self, token: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let path = "/ofrep/v1/evaluate/flags";
        self.raw(Method::POST, path, Some(token), headers, body.to_vec()).await
    }

    pub async fn revision(&self) -> i64 {
        self.state.store.revision().await.unwrap()
    }
}

/// The error-rate guardrail the rollout tests judge by (tolerance and design effect 5 points,
/// rolls back) with at least `min_sample` per arm, and its runbook entry.
pub fn errors_guardrail(min_sample: u32) -> String {
    format!(
        "guardrails:
  - {{ name: errors, metric: error, comparison: absolute, tolerance: 0.05, mde: 0.05, min_sample: {min_sample}, action: rollback }}
runbook: {{ errors: look }}
"
    )
}

/// Plan `p` of flag `checkout` with [`errors_guardrail`] (50 per arm), `waves`, and `extra`
/// sections (whole YAML lines); requested by admin, no approvals.
pub fn errors_plan(waves: &[&str], extra: &str) -> String {
    Plan::new("p", "checkout")
        .section(&format!("{}{extra}", errors_guardrail(50)))
        .waves(waves)
        .to_string()
}

/// Plan `name` for `flag`: two waves (20% → 100%) behind [`errors_guardrail`] (50 per arm),
/// requested by admin, approved by bob.
pub fn guarded_plan(name: &str, flag: &str) -> String {
    Plan::new(name, flag)
        .owners("{ requester: admin, approvers: [bob] }")
        .section(&errors_guardrail(50))
        .to_string()
}
