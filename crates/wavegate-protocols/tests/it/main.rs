//! The protocol routers over an in-memory [`FlagSource`]: the environment rule (for a source
//! that knows every environment, and for a relay serving one), the bulk ETag rule, and Unleash
//! reports handed to the source. The server's and the edge's own suites drive the same routers
//! through their real sources.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wavegate_core::flag::Segments;
use wavegate_core::timing::TimeDependence;
use wavegate_core::{Flag, Reason, SpecPath, parse_flag_file};
use wavegate_protocols::unleash::{ExportCache, FeaturesDoc, features_document};
use wavegate_protocols::{
    Caller, Config, FlagSet, FlagSource, MetricsReport, Protocols, Refusal, Registration, Report,
    SourceError, TokenKind,
};

/// `banner` is on in both environments; `launch` (prod only) reads the clock.
const FLAGS: &str = "flags:
  banner: { variants: { \"on\": true, \"off\": false }, default: \"on\", environments: { prod: { enabled: true }, dev: { enabled: true } } }
  launch: { variants: { \"on\": true, \"off\": false }, default: \"off\", environments: { prod: { enabled: true, rules: [ { constraints: [{ attribute: currentTime, op: date_after, values: [\"2026-06-01T00:00:00Z\"] }], serve: \"on\" } ] } } }
";

/// The compiled flags per environment (in `environments` order) and the file they came from.
struct TestConfig {
    revision: i64,
    environments: Vec<String>,
    compiled: Vec<HashMap<String, Flag>>,
    timing: Vec<TimeDependence>,
    file: wavegate_core::FlagFile,
    unleash: ExportCache,
}

impl TestConfig {
    fn new(revision: i64, environments: &[&str]) -> TestConfig {
        let file = parse_flag_file(FLAGS, &["prod".to_owned(), "dev".to_owned()]).unwrap();
        let compile = |env: &&str| -> HashMap<String, Flag> {
            let segments = Segments::default();
            let flag = |(k, spec)| Flag::compile(k, spec, env, &segments, &SpecPath::root(k));
            file.flags.iter().map(|(k, spec)| (k.clone(), flag((k, spec)).unwrap())).collect()
        };
        let compiled: Vec<HashMap<String, Flag>> = environments.iter().map(compile).collect();
        let timing = compiled
            .iter()
            .map(|m| m.values().fold(TimeDependence::Never, |d, f| d.merge(f.time_dependence())))
            .collect();
        let environments = environments.iter().map(|e| e.to_string()).collect();
        let unleash = ExportCache::default();
        TestConfig { revision, environments, compiled, timing, file, unleash }
    }
}

impl Config for TestConfig {
    fn unleash_features(&self, env: &str) -> Arc<FeaturesDoc> {
        let (flags, segments) = (&self.file.flags, &self.file.segments);
        self.unleash.get_or_build(env, || features_document(flags, segments, env, self.revision))
    }
    fn flags(&self, env: &str) -> Option<&dyn FlagSet> {
        let i = self.environments.iter().position(|e| e == env)?;
        Some(&self.compiled[i])
    }
    fn time_dependence(&self, env: &str) -> &TimeDependence {
        let i = self.environments.iter().position(|e| e == env).unwrap();
        &self.timing[i]
    }
    fn environments(&self) -> &[String] {
        &self.environments
    }
    fn revision(&self) -> i64 {
        self.revision
    }
}

/// Tokens by secret, a swappable configuration, a clock that moves on each reading, and the
/// reports taken.
struct TestSource {
    relay: bool,
    config: Mutex<Arc<TestConfig>>,
    clock: Mutex<chrono::DateTime<chrono::Utc>>,
    refuse: Option<Refusal>,
    taken: Mutex<Vec<String>>,
}

impl TestSource {
    fn new(relay: bool) -> TestSource {
        let envs: &[&str] = if relay { &["prod"] } else { &["prod", "dev"] };
        TestSource {
            relay,
            config: Mutex::new(Arc::new(TestConfig::new(1, envs))),
            clock: Mutex::new("2026-07-01T00:00:00Z".parse().unwrap()),
            refuse: None,
            taken: Mutex::default(),
        }
    }
}

fn caller(kind: TokenKind, environments: &[&str]) -> Caller {
    let environments = environments.iter().map(|e| e.to_string()).collect();
    Caller { kind, environments, principal: "test".into(), token: "tok_test".into(), reports: true }
}

#[async_trait]
impl FlagSource for TestSource {
    async fn caller(&self, secret: &str) -> Result<Option<Caller>, SourceError> {
        Ok(match secret {
            "prod-client" => Some(caller(TokenKind::ClientSdk, &["prod"])),
            "prod-server" => Some(caller(TokenKind::ServerSdk, &["prod"])),
            "dev-server" => Some(caller(TokenKind::ServerSdk, &["dev"])),
            "all-server" => Some(caller(TokenKind::ServerSdk, &["*"])),
            "broken" => return Err(SourceError::new("the store is down")),
            _ => None,
        })
    }
    fn knows_every_environment(&self) -> bool {
        !self.relay
    }
    fn config(&self) -> Arc<dyn Config> {
        self.config.lock().unwrap().clone()
    }
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let mut clock = self.clock.lock().unwrap();
        *clock += chrono::Duration::milliseconds(1);
        *clock
    }
    fn evaluated(&self, _flag: &str, _reason: Reason) {}
    async fn unleash_registered(&self, r: Report<'_, Registration>) -> Result<(), Refusal> {
        self.taken.lock().unwrap().push(format!("register {} {}", r.body.app_name, r.environment));
        Ok(())
    }
    async fn unleash_metrics(&self, r: Report<'_, MetricsReport>) -> Result<(), Refusal> {
        if let Some(refusal) = &self.refuse {
            return Err(refusal.clone());
        }
        let toggles: Vec<&String> = r.body.bucket.toggles.keys().collect();
        self.taken.lock().unwrap().push(format!("metrics {toggles:?} {}", r.environment));
        Ok(())
    }
}

fn app(source: Arc<TestSource>) -> Router {
    wavegate_protocols::router().with_state(Protocols(source))
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The status of `GET|POST path` with `Authorization: token` and, if given, the environment
/// header, on a source that knows every environment (`relay` false) or a relay serving prod.
#[track_caller]
fn check(relay: bool, path: &str, token: &str, env: Option<&str>, expect: u16) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let app = app(Arc::new(TestSource::new(relay)));
    let mut headers = vec![("authorization", token)];
    headers.extend(env.map(|e| ("x-wavegate-environment", e)));
    let method = if path.starts_with("/ofrep") { Method::POST } else { Method::GET };
    let (status, _, body) = runtime.block_on(call(&app, method, path, &headers, ""));
    assert_eq!(status.as_u16(), expect, "{path} {token} {env:?} relay={relay}: {body}");
}

const BULK: &str = "/ofrep/v1/evaluate/flags";
const FEATURES: &str = "/api/client/features";

#[test]
fn the_environment_rule() {
    // A source that knows every environment: the header, else the token's only environment.
    check(false, BULK, "prod-client", None, 200);
    check(false, BULK, "all-server", None, 400);
    check(false, BULK, "all-server", Some("dev"), 200);
    check(false, BULK, "prod-client", Some("dev"), 403);
    check(false, BULK, "all-server", Some("nowhere"), 400);
    check(false, BULK, "prod-client", Some("nowhere"), 400);
    // A relay serving prod: prod without naming it; what it does not serve is refused (it may
    // exist upstream, so it is not called unknown).
    check(true, BULK, "all-server", None, 200);
    check(true, BULK, "all-server", Some("prod"), 200);
    check(true, BULK, "all-server", Some("dev"), 403);
    check(true, BULK, "dev-server", None, 403);
    check(true, BULK, "prod-client", Some("nowhere"), 403);
    // Unleash's token shape names the environment, on Unleash's APIs only.
    check(false, FEATURES, "default:dev.all-server", None, 200);
    check(false, FEATURES, "default:nowhere.all-server", None, 400);
    check(true, FEATURES, "default:dev.all-server", None, 403);
    check(true, FEATURES, "default:prod.all-server", None, 200);
    check(false, BULK, "default:prod.prod-client", None, 401);
    // Kinds, unknown tokens, and a source that cannot tell.
    check(false, FEATURES, "prod-client", None, 403);
    check(false, "/api/frontend", "prod-client", None, 200);
    check(false, BULK, "nope", None, 401);
    check(false, FEATURES, "nope", None, 401);
    check(false, BULK, "broken", None, 500);
    check(false, FEATURES, "broken", None, 503);
}

#[tokio::test]
async fn the_bulk_etag_covers_revision_environment_context_and_the_clock_where_it_matters() {
    let source = Arc::new(TestSource::new(false));
    let app = app(source.clone());
    let auth = ("authorization", "prod-client");
    let bulk = |ctx: Value, etag: Option<String>| {
        let app = app.clone();
        async move {
            let mut headers = vec![auth];
            let etag = etag.unwrap_or_default();
            if !etag.is_empty() {
                headers.push(("if-none-match", &etag));
            }
            let body = json!({"context": ctx}).to_string();
            let (status, h, _) = call(&app, Method::POST, BULK, &headers, &body).await;
            (status.as_u16(), h["etag"].to_str().unwrap().to_owned())
        }
    };
    let fixed = json!({"targetingKey": "u1", "currentTime": "2026-07-01T00:00:00Z"});
    let (status, etag) = bulk(fixed.clone(), None).await;
    assert_eq!(status, 200);
    assert_eq!(bulk(fixed.clone(), Some(etag.clone())).await.0, 304);
    assert_eq!(bulk(fixed.clone(), Some("\"x\", *".into())).await.0, 304);
    let other = json!({"targetingKey": "u2", "currentTime": "2026-07-01T00:00:00Z"});
    assert_eq!(bulk(other, Some(etag.clone())).await.0, 200, "a new context");
    // A flag here changes its answer when the clock reaches 2026-06-01 (`launch`): without
    // currentTime, 304s continue while the clock moves short of it (it moves 1 ms a call),
    // and end when it gets there.
    *source.clock.lock().unwrap() = "2026-05-31T23:59:59.997Z".parse().unwrap();
    let (_, before) = bulk(json!({"targetingKey": "u1"}), None).await;
    assert_eq!(bulk(json!({"targetingKey": "u1"}), Some(before.clone())).await.0, 304);
    let (status, after) = bulk(json!({"targetingKey": "u1"}), Some(before)).await;
    assert_eq!(status, 200, "the clock reached the launch date");
    assert_eq!(bulk(json!({"targetingKey": "u1"}), Some(after)).await.0, 304);
    // A new revision.
    *source.config.lock().unwrap() = Arc::new(TestConfig::new(2, &["prod", "dev"]));
    assert_eq!(bulk(fixed, Some(etag)).await.0, 200, "a new revision");
}

#[tokio::test]
async fn unleash_reports_are_checked_then_handed_to_the_source() {
    let source = Arc::new(TestSource::new(true));
    let app = app(source.clone());
    let post = |path: &'static str, body: Value| {
        let app = app.clone();
        async move {
            let headers = [("authorization", "prod-server")];
            let (s, _, b) = call(&app, Method::POST, path, &headers, &body.to_string()).await;
            (s.as_u16(), b)
        }
    };
    let metrics = json!({"appName": "shop", "bucket": {"toggles": {"banner": {"yes": 3}}}});
    assert_eq!(post("/api/client/metrics", metrics.clone()).await.0, 202);
    assert_eq!(post("/api/client/register", json!({"appName": "shop"})).await.0, 202);
    assert_eq!(post("/api/client/register", json!({"appName": ""})).await.0, 400);
    let too_many =
        json!({"appName": "shop", "bucket": {"toggles": {"banner": {"yes": 2_000_000_000u64}}}});
    assert_eq!(post("/api/client/metrics", too_many).await.0, 400);
    assert_eq!(
        *source.taken.lock().unwrap(),
        ["metrics [\"banner\"] prod", "register shop prod"],
        "only what passed the checks reached the source"
    );

    let refusing = TestSource {
        refuse: Some(Refusal {
            status: StatusCode::BAD_GATEWAY,
            message: "the upstream is unreachable".into(),
        }),
        ..TestSource::new(true)
    };
    let app = self::app(Arc::new(refusing));
    let headers = [("authorization", "prod-server")];
    let (s, _, b) =
        call(&app, Method::POST, "/api/client/metrics", &headers, &metrics.to_string()).await;
    assert_eq!(
        (s, b["message"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("the upstream is unreachable"))
    );
}
