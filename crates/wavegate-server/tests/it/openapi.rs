//! The OpenAPI document against the router, both ways.
//!
//! Routed → documented: the router is built from the document's own registrations
//! (`http::openapi::routes`), so only the protocols' routes could differ, and building the
//! document checks those against their route table. Every answer below must also match a
//! documented operation, or be the router's "no such route".
//!
//! Documented → answered: a realistic scenario (a guarded rollout through its life, with bad
//! requests along the way) and sweeps over the document (no token, the wrong kind of token,
//! too large a body, an unknown query parameter) drive every operation; each answer's status
//! must be documented for its operation, its content type documented for that status, and its
//! body must validate against the documented schema (a JSON Schema validator resolving the
//! document's `$ref`s, every object closed to fields it does not name). At the end every
//! documented (operation, status) pair must have been answered: the last few (503s) after the
//! store is closed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode as S};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{ADMIN, FLAGS, Reply, TestApp, spawn_app};

thread_local! {
    /// Answers whose status was not the one the scenario expected (reported together).
    static UNEXPECTED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Notes an answer whose status is not `status`.
trait Expect {
    fn is(self, status: S) -> Reply;
}

impl Expect for Reply {
    #[track_caller]
    fn is(self, status: S) -> Reply {
        if self.status != status {
            let line = std::panic::Location::caller().line();
            let seen = format!("line {line}: {} instead of {status}: {}", self.status, self.body);
            UNEXPECTED.with_borrow_mut(|u| u.push(seen));
        }
        self
    }
}

/// The token `/metrics` needs in this test (`serve --metrics-token-file`).
const METRICS_TOKEN: &str = "metrics-scrape-token-0123";

/// Drives the router and checks each answer against the document.
struct Probe {
    app: TestApp,
    doc: Value,
    /// The document's components, closed to fields they do not name ([`closed`]).
    components: Value,
    /// (method, documented path, status) answered.
    seen: BTreeSet<(String, String, String)>,
    /// Each answer's shape, in order (`WAVEGATE_SHAPES_OUT` writes them, to compare builds).
    shapes: Vec<Value>,
}

impl Probe {
    async fn new() -> Probe {
        let mut app = spawn_app().await;
        // `/metrics` behind a token, so its 401 is answered too.
        app.state.access = std::sync::Arc::new(wavegate_server::access::Access {
            metrics_token: Some(wavegate_server::http::auth::hash_secret(METRICS_TOKEN)),
            ..Default::default()
        });
        app.router = wavegate_server::app(app.state.clone());
        // Whole nanoseconds on every time the clock gives, so times print alike run to run.
        let now = app.state.clock.now();
        let nanos = (1_123_456_789 - i64::from(now.timestamp_subsec_nanos())) % 1_000_000_000;
        app.clock.advance(chrono::Duration::nanoseconds(nanos));
        let r = app.raw(Method::GET, "/api/v1/openapi.json", None, &[], vec![]).await;
        assert_eq!(r.status, S::OK);
        assert!(r.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", r.body);
        let mut ids = BTreeSet::new();
        for (method, path, op) in operations(&r.body) {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(!id.is_empty() && ids.insert(id), "{method} {path}: operationId not unique");
        }
        let components = closed(&r.body["components"]);
        Probe { app, doc: r.body, components, seen: BTreeSet::new(), shapes: Vec::new() }
    }

    /// Sends a request and checks the answer.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let r = self.app.raw(method.clone(), path, token, headers, body.to_vec()).await;
        self.check(&method, path, &r);
        r
    }

    /// A JSON body (none for `Value::Null`).
    async fn call(&mut self, method: Method, path: &str, token: &str, body: Value) -> Reply {
        let bytes = if body.is_null() { vec![] } else { serde_json::to_vec(&body).unwrap() };
        self.send(method, path, Some(token), &[("content-type", "application/json")], &bytes).await
    }

    async fn get(&mut self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, Value::Null).await
    }

    async fn post(&mut self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, token, body).await
    }

    async fn put(&mut self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, token, body).await
    }

    async fn delete(&mut self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, token, Value::Null).await
    }

    /// A YAML body.
    async fn yaml(&mut self, path: &str, token: &str, text: &str) -> Reply {
        let yaml = [("content-type", "application/yaml")];
        self.send(Method::POST, path, Some(token), &yaml, text.as_bytes()).await
    }

    /// A `GET` with headers and no token of ours (the protocols read theirs from headers).
    async fn with(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.send(method, path, None, headers, body).await
    }

    /// An endless answer (server-sent events): status and headers only.
    async fn open(&mut self, path: &str, token: Option<&str>) -> S {
        let mut req = Request::builder().uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self.app.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        if status == S::OK {
            let reply = Reply { status, headers: resp.headers().clone(), body: Value::Null };
            self.check(&Method::GET, path, &reply);
        } else {
            drop(resp);
            self.send(Method::GET, path, token, &[], b"").await;
        }
        status
    }

    fn check(&mut self, method: &Method, path: &str, r: &Reply) {
        let route = path.split('?').next().unwrap();
        let content_type = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().trim().to_owned());
        self.shapes.push(json!({
            "call": format!("{method} {}", anonymous(path)),
            "status": r.status.as_u16(),
            "content_type": content_type,
            "shape": shape(&r.body),
        }));
        let Some(template) = operation(&self.doc, method, route) else {
            assert!(
                r.status == S::NOT_FOUND
                    && r.body["message"] == "no such route; see /api/v1/openapi.json",
                "{method} {route} answered {} but is not documented",
                r.status
            );
            return;
        };
        let status = r.status.as_str().to_owned();
        self.seen.insert((method.to_string(), template.clone(), status.clone()));
        let op = &self.doc["paths"][&template][method.as_str().to_lowercase()];
        let documented = &op["responses"][&status];
        assert!(
            documented.is_object(),
            "{method} {template} answered {} ({}), which is not documented",
            r.status,
            r.body
        );
        let at = format!("{method} {template} → {}", r.status);
        validate(&self.components, &at, r, content_type.as_deref(), documented);
    }
}

/// The documented path template a request path matches (literal segments beat parameters).
fn operation(doc: &Value, method: &Method, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, String)> = None;
    for (template, ops) in doc["paths"].as_object()? {
        if ops.get(method.as_str().to_lowercase()).is_none() {
            continue;
        }
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let fits = parts.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s);
        let literal = parts.iter().filter(|t| !t.starts_with('{')).count();
        if fits && best.as_ref().is_none_or(|(n, _)| literal > *n) {
            best = Some((literal, template.clone()));
        }
    }
    best.map(|(_, t)| t)
}

/// The components with every object schema closed (`unevaluatedProperties: false`), so that a
/// field an answer carries but its schema does not name fails validation. Schemas that are a
/// branch of another's `allOf` (flattened fields) stay open; the composite is closed instead.
fn closed(components: &Value) -> Value {
    let mut components = components.clone();
    let text = components.to_string();
    let branches: BTreeSet<String> = components["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| {
            let branch = format!("{{\"$ref\":\"#/components/schemas/{name}\"");
            text.match_indices("\"allOf\":[").any(|(at, _)| {
                let rest = &text[at..];
                let end = rest.find("]}").unwrap_or(rest.len());
                rest[..end].contains(&branch)
            })
        })
        .cloned()
        .collect();
    for (name, schema) in components["schemas"].as_object_mut().unwrap() {
        let object = schema.get("properties").is_some() || schema.get("allOf").is_some();
        if object && !branches.contains(name) {
            schema["unevaluatedProperties"] = json!(false);
        }
    }
    components
}

/// Checks an answer's content type and body against the documented response.
fn validate(
    components: &Value,
    at: &str,
    r: &Reply,
    content_type: Option<&str>,
    documented: &Value,
) {
    let Some(content) = documented.get("content").and_then(Value::as_object) else {
        assert!(r.body.is_null(), "{at}: documented without a body, but answered {}", r.body);
        return;
    };
    let content_type = content_type.unwrap_or_else(|| panic!("{at}: no content type"));
    let media = content
        .get(content_type)
        .unwrap_or_else(|| panic!("{at}: {content_type} is not documented ({:?})", content.keys()));
    let Some(schema) = media.get("schema") else { return };
    if content_type == "text/event-stream" {
        return; // endless: only its status and content type are checked
    }
    let mut schema = schema.clone();
    schema["components"] = components.clone();
    let validator = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("{at}: the documented schema does not compile: {e}"));
    // Text answers arrive as a JSON string (or, when the text happens to be JSON, as that
    // value): it is the text that is validated.
    let body = match &r.body {
        body if content_type == "application/json" => body.clone(),
        Value::String(_) => r.body.clone(),
        other => Value::String(other.to_string()),
    };
    let errors: Vec<String> =
        validator.iter_errors(&body).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{at}: the body does not fit its schema:\n{}\n{body}",
        errors.join("\n")
    );
}

/// The document's operations: (method, path, operation).
fn operations(doc: &Value) -> impl Iterator<Item = (String, String, &Value)> {
    doc["paths"].as_object().unwrap().iter().flat_map(|(path, ops)| {
        ops.as_object().unwrap().iter().map(move |(m, op)| (m.to_uppercase(), path.clone(), op))
    })
}

/// The operations `pick` chooses, as (method, path) with path parameters filled in and the
/// required query parameters given (`1`, or `prod`: an environment, a release).
fn sweep(doc: &Value, rollout: &str, pick: impl Fn(&str, &Value) -> bool) -> Vec<(Method, String)> {
    operations(doc)
        .filter(|(_, path, op)| pick(path, op))
        .map(|(method, path, op)| {
            let parameters = op["parameters"].as_array().into_iter().flatten();
            let query: Vec<String> = parameters
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| {
                    let value = if p["schema"]["type"] == "integer" { "1" } else { "prod" };
                    format!("{}={value}", p["name"].as_str().unwrap())
                })
                .collect();
            (method.parse().unwrap(), format!("{}?{}", concrete(&path, rollout), query.join("&")))
        })
        .collect()
}

/// A documented path with its parameters filled in.
fn concrete(template: &str, rollout: &str) -> String {
    template
        .replace("{key}", "new-checkout")
        .replace("{version}", "1")
        .replace("{id}", rollout)
        .replace("{name}", "p1")
        .replace("{item}", "baseline")
        .replace("{plan}", "p1")
        .replace("{command}", "pause")
}

/// A path with its generated ids replaced, so two runs compare.
fn anonymous(path: &str) -> String {
    let ids = |s: &str| s.starts_with("ro_") || s.starts_with("tok_");
    path.split('/').map(|s| if ids(s) { "{id}" } else { s }).collect::<Vec<_>>().join("/")
}

/// A value's shape: field names in order, JSON types, and the format of times.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(n) if n.is_f64() => json!("float"),
        Value::Number(_) => json!("int"),
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
            let frac = s
                .split_once('.')
                .map_or(0, |(_, f)| f.chars().take_while(char::is_ascii_digit).count());
            json!(format!("time(.{frac}{})", if s.ends_with('Z') { "Z" } else { "+" }))
        }
        Value::String(_) => json!("string"),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

const PLAN: &str = r#"name: p1
flag: new-checkout
environment: prod
release: { name: checkout, version: 1.0.0, risk: low, team: payments, service: checkout }
owners: { requester: alice, approvers: [bob] }
new_variant: "on"
control_variant: "off"
guardrails:
  - { name: errors, metric: error, comparison: absolute, tolerance: 0.05, mde: 0.05, min_sample: 50, action: rollback }
  - { name: latency, metric: latency_ms, comparison: relative, tolerance: 0.5, min_sample: 50, action: pause }
adoption:
  cohorts: [country]
  key_task: order_placed
scorecard:
  max_red: 5
  items: [{ key: baseline }, { key: communications }]
blackouts:
  - { name: far-away, start: "2099-01-01T00:00:00Z", end: "2099-01-02T00:00:00Z" }
runbook: { errors: look at the errors, latency: look at the latency }
waves:
  - { exposure: 20% }
  - { exposure: 50%, promotion: approval }
  - { exposure: 100% }
"#;

/// A second plan on another flag, for schedules.
const LATER: &str = r#"name: later
release: { name: banner, version: 2.0.0, risk: low }
flag: banner-color
new_variant: red
control_variant: blue
environment: prod
owners: { requester: admin }
waves:
  - { exposure: 10% }
  - { exposure: 100% }
"#;

/// A flag on a segment, for versions that stop validating once the segment is archived.
const ON_TEMP: &str = "segments:\n  temp: { keys: [a] }\nflags:\n  uses-temp:\n    variants: { a: 1, b: 2 }\n    default: a\n    environments: { prod: { enabled: true, rules: [ { segment: temp, serve: b } ] } }\n";

/// Mints a token; returns (secret, id).
async fn token(p: &mut Probe, body: Value) -> (String, String) {
    let r = p.post("/api/v1/tokens", ADMIN, body).await.is(S::CREATED);
    (r.body["token"].as_str().unwrap().to_owned(), r.body["id"].as_str().unwrap().to_owned())
}

/// OFREP evaluations of `new-checkout` for `users`, then what each was served, as events
/// (an exposure, an outcome with a latency, and every third one the key task).
async fn traffic(p: &mut Probe, client: &str, users: std::ops::Range<u32>, country: &str) -> Value {
    let mut events = Vec::new();
    for i in users {
        let context = json!({"targetingKey": format!("user-{i}"), "country": country});
        let ask = json!({"context": context});
        let r = p.post("/ofrep/v1/evaluate/flags/new-checkout", client, ask).await.is(S::OK);
        let variant = r.body["variant"].clone();
        let event = |kind: &str| json!({"type": kind, "flag": "new-checkout", "variant": variant, "context": context});
        events.push(event("exposure"));
        let mut outcome = event("outcome");
        outcome["error"] = json!(i % 25 == 0);
        outcome["latency_ms"] = json!(100.0 + f64::from(i % 7));
        if i % 3 == 0 {
            outcome["metrics"] = json!({"order_placed": 1.0});
        }
        events.push(outcome);
    }
    json!({"events": events})
}

#[tokio::test]
async fn every_answer_is_documented_and_fits_its_schema() {
    let mut p = Probe::new().await;

    // ---------- meta ----------
    for path in ["/healthz", "/readyz", "/", "/assets/app.js", "/assets/app.css"] {
        p.send(Method::GET, path, None, &[], b"").await.is(S::OK);
    }
    p.send(Method::GET, "/metrics", Some(METRICS_TOKEN), &[], b"").await.is(S::OK);
    p.send(Method::GET, "/api/v1/openapi.json", None, &[], b"").await.is(S::OK);
    p.send(Method::GET, "/api/v1/schemas/plan.json", None, &[], b"").await.is(S::OK);
    p.get("/api/v1/nothing-here", ADMIN).await.is(S::NOT_FOUND);

    // ---------- tokens ----------
    let (sdk, _) = token(&mut p, json!({"kind": "server-sdk", "environments": ["prod"]})).await;
    let (client, _) = token(&mut p, json!({"kind": "client-sdk", "environments": ["prod"]})).await;
    let (dev_client, _) =
        token(&mut p, json!({"kind": "client-sdk", "environments": ["dev"]})).await;
    let body = json!({"kind": "admin", "environments": ["dev"], "principal": "devops"});
    let (dev_admin, _) = token(&mut p, body).await;
    let (bob, _) =
        token(&mut p, json!({"kind": "admin", "environments": ["*"], "principal": "bob"})).await;
    // Alice requests the rollout that bob approves: neither issued the other's token.
    let (alice, _) =
        token(&mut p, json!({"kind": "admin", "environments": ["*"], "principal": "alice"})).await;
    let (_, doomed) = token(&mut p, json!({"kind": "admin", "environments": ["prod"]})).await;
    p.post("/api/v1/tokens", ADMIN, json!({"kind": "root", "environments": ["prod"]}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/tokens", ADMIN, json!({"kind": "admin", "environments": ["prod"], "x": 1}))
        .await
        .is(S::BAD_REQUEST);
    p.post("/api/v1/tokens", &dev_admin, json!({"kind": "admin", "environments": ["prod"]}))
        .await
        .is(S::FORBIDDEN);
    p.get("/api/v1/tokens", "wg_not-a-token").await.is(S::UNAUTHORIZED);
    p.get("/api/v1/tokens", ADMIN).await.is(S::OK);
    p.delete(&format!("/api/v1/tokens/{doomed}"), &dev_admin).await.is(S::FORBIDDEN);
    p.delete(&format!("/api/v1/tokens/{doomed}"), ADMIN).await.is(S::OK);
    p.delete(&format!("/api/v1/tokens/{doomed}"), ADMIN).await.is(S::NOT_FOUND);
    p.get("/api/v1/whoami", &sdk).await.is(S::OK);

    // ---------- environments ----------
    p.get("/api/v1/environments", &sdk).await.is(S::OK);
    p.post("/api/v1/environments", ADMIN, json!({"name": "qa"})).await.is(S::CREATED);
    p.post("/api/v1/environments", ADMIN, json!({"name": "qa"})).await.is(S::CONFLICT);
    p.post("/api/v1/environments", ADMIN, json!({"name": "no way"}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/environments", ADMIN, json!({"nam": "x"})).await.is(S::BAD_REQUEST);
    p.post("/api/v1/environments", &dev_admin, json!({"name": "uat"})).await.is(S::FORBIDDEN);

    // ---------- flags and segments ----------
    p.yaml("/api/v1/apply", ADMIN, FLAGS).await.is(S::OK);
    p.yaml("/api/v1/apply", ADMIN, "flags: [").await.is(S::BAD_REQUEST);
    p.yaml("/api/v1/apply", ADMIN, "flags:\n  x:\n    variants: { a: 1 }\n    default: b\n")
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.yaml("/api/v1/apply", &dev_admin, "segments:\n  s1: { keys: [a] }\n").await.is(S::FORBIDDEN);
    let file = json!({"flags": {"json-flag": {"variants": {"a": 1, "b": 2.5}, "default": "a"}}});
    p.call(Method::POST, "/api/v1/apply", ADMIN, file).await.is(S::OK);

    let flag = json!({"description": "two", "variants": {"on": true, "off": false}, "default": "off", "environments": {"prod": {"enabled": true}}});
    let bad_flag = json!({"variants": {"a": 1}, "default": "b"});
    let segment = json!({"keys": ["u1", "u2"]});
    let bad_segment = json!({"constraints": [{"attribute": "x", "op": "regex", "values": ["("]}]});
    for (base, key, spec, invalid) in [
        ("/api/v1/flags", "new-checkout", flag, bad_flag),
        ("/api/v1/segments", "beta-testers", segment, bad_segment),
    ] {
        let at = format!("{base}/{key}");
        let fresh = format!("{base}/fresh-{key}");
        p.get(base, &sdk).await.is(S::OK);
        p.get(&format!("{base}?archived=true"), ADMIN).await.is(S::OK);
        p.get(&format!("{base}?archived=maybe"), ADMIN).await.is(S::BAD_REQUEST);
        p.get(&at, &sdk).await.is(S::OK);
        p.get(&at, &dev_admin).await.is(S::OK);
        p.get(&format!("{base}/nope"), ADMIN).await.is(S::NOT_FOUND);
        p.put(&at, ADMIN, spec.clone()).await.is(S::OK);
        p.put(&fresh, ADMIN, spec.clone()).await.is(S::CREATED);
        p.put(&at, ADMIN, invalid).await.is(S::UNPROCESSABLE_ENTITY);
        p.put(&at, ADMIN, json!([1])).await.is(S::BAD_REQUEST);
        p.put(&format!("{base}/Bad%20Key"), ADMIN, spec.clone()).await.is(S::UNPROCESSABLE_ENTITY);
        let text = spec.to_string().into_bytes();
        let stale = [("content-type", "application/json"), ("if-match", "\"1\"")];
        p.send(Method::PUT, &at, Some(ADMIN), &stale, &text).await.is(S::CONFLICT);
        let garbled = [("content-type", "application/json"), ("if-match", "soon")];
        p.send(Method::PUT, &at, Some(ADMIN), &garbled, &text).await.is(S::BAD_REQUEST);
        let mut shared = spec.clone();
        shared["description"] = json!("a dev token edits what all environments share");
        p.put(&at, &dev_admin, shared).await.is(S::FORBIDDEN);
        p.put(&at, &sdk, spec.clone()).await.is(S::FORBIDDEN);
        p.get(&format!("{at}/versions"), &sdk).await.is(S::OK);
        p.get(&format!("{base}/nope/versions"), ADMIN).await.is(S::NOT_FOUND);
        p.get(&format!("{at}/versions/1"), &sdk).await.is(S::OK);
        p.get(&format!("{at}/versions/99"), ADMIN).await.is(S::NOT_FOUND);
        p.get(&format!("{at}/versions/one"), ADMIN).await.is(S::BAD_REQUEST);
        p.get(&format!("{at}/diff?from=1"), ADMIN).await.is(S::OK);
        p.get(&format!("{at}/diff?from=1&to=2"), ADMIN).await.is(S::OK);
        p.get(&format!("{at}/diff"), ADMIN).await.is(S::BAD_REQUEST);
        p.get(&format!("{at}/diff?from=40"), ADMIN).await.is(S::NOT_FOUND);
        p.post(&format!("{at}/revert"), ADMIN, json!({"version": 1, "reason": "back"}))
            .await
            .is(S::OK);
        p.post(&format!("{at}/revert"), ADMIN, json!({"version": 77})).await.is(S::NOT_FOUND);
        p.post(&format!("{at}/revert"), ADMIN, json!({"to": 1})).await.is(S::BAD_REQUEST);
        p.post(&format!("{at}/revert"), &sdk, json!({"version": 1})).await.is(S::FORBIDDEN);
        p.post(&format!("{fresh}/archive"), ADMIN, Value::Null).await.is(S::OK);
        p.post(&format!("{fresh}/unarchive"), ADMIN, Value::Null).await.is(S::OK);
        p.post(&format!("{base}/nope/archive"), ADMIN, Value::Null).await.is(S::NOT_FOUND);
        p.post(&format!("{base}/nope/unarchive"), ADMIN, Value::Null).await.is(S::NOT_FOUND);
        p.post(&format!("{fresh}/archive"), &dev_admin, Value::Null).await.is(S::FORBIDDEN);
    }
    // An archived flag whose segment was archived since no longer validates: it is neither
    // brought back nor reverted to; and a segment a live flag uses stays.
    let uses_temp = "/api/v1/flags/uses-temp";
    p.yaml("/api/v1/apply", ADMIN, ON_TEMP).await.is(S::OK);
    p.post(&format!("{uses_temp}/archive"), ADMIN, Value::Null).await.is(S::OK);
    p.post("/api/v1/segments/temp/archive", ADMIN, Value::Null).await.is(S::OK);
    p.post(&format!("{uses_temp}/unarchive"), ADMIN, Value::Null).await.is(S::UNPROCESSABLE_ENTITY);
    p.post(&format!("{uses_temp}/revert"), ADMIN, json!({"version": 1}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/segments/temp/unarchive", ADMIN, Value::Null).await.is(S::OK);
    p.post(&format!("{uses_temp}/unarchive"), ADMIN, Value::Null).await.is(S::OK);
    p.post("/api/v1/segments/temp/archive", ADMIN, Value::Null).await.is(S::CONFLICT);
    p.get("/api/v1/flags/strict-split", ADMIN).await.is(S::OK);

    // ---------- plans, drills and the scorecard ----------
    p.yaml("/api/v1/plans", ADMIN, PLAN).await.is(S::CREATED);
    p.yaml("/api/v1/plans", ADMIN, PLAN).await.is(S::OK);
    p.yaml("/api/v1/plans", ADMIN, LATER).await.is(S::CREATED);
    p.yaml("/api/v1/plans", ADMIN, &PLAN.replace("{ exposure: 20% }", "{ exposure: 60% }"))
        .await
        .is(S::BAD_REQUEST);
    p.yaml("/api/v1/plans", ADMIN, &PLAN.replace("new_variant: \"on\"", "new_variant: maybe"))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.yaml("/api/v1/plans", &dev_admin, PLAN).await.is(S::FORBIDDEN);
    p.get("/api/v1/plans", &sdk).await.is(S::OK);
    let plan = p.get("/api/v1/plans/p1", &sdk).await.is(S::OK).body;
    p.get("/api/v1/plans/nope", ADMIN).await.is(S::NOT_FOUND);
    p.get("/api/v1/plans/p1", &dev_admin).await.is(S::FORBIDDEN);
    p.get("/api/v1/plans/p1/versions", ADMIN).await.is(S::OK);
    p.get("/api/v1/plans/nope/versions", ADMIN).await.is(S::NOT_FOUND);
    let drill =
        json!({"plan": plan["spec"], "report": {"scenario": "errors spike", "passed": true}});
    p.post("/api/v1/plans/p1/drills", ADMIN, drill.clone()).await.is(S::CREATED);
    p.post("/api/v1/plans/p1/drills", &sdk, drill.clone()).await.is(S::FORBIDDEN);
    let mut stale = drill.clone();
    stale["plan"]["description"] = json!("not what was stored");
    p.post("/api/v1/plans/p1/drills", ADMIN, stale).await.is(S::CONFLICT);
    p.post("/api/v1/plans/p1/drills", ADMIN, json!({"plan": {}, "report": {}}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/plans/p1/drills", ADMIN, json!({"plan": {}})).await.is(S::BAD_REQUEST);
    p.get("/api/v1/plans/p1/drills", &sdk).await.is(S::OK);
    p.get("/api/v1/plans/nope/drills", ADMIN).await.is(S::NOT_FOUND);
    p.post("/api/v1/plans/nope/drills", ADMIN, drill.clone()).await.is(S::NOT_FOUND);
    // A drill run by the server against the current version, recorded as its evidence.
    let scenario =
        "name: quiet\nrate: 50\nduration: 2h\nbaseline: { error_rate: 0.01, latency_ms: 100 }\n";
    let run = "/api/v1/plans/p1/drills/run";
    let ran = p.yaml(run, ADMIN, scenario).await.is(S::CREATED).body;
    assert_eq!(
        (ran["scenario"].as_str(), ran["report"]["scenario"].as_str()),
        (Some("quiet"), Some("quiet")),
        "{ran}"
    );
    p.yaml(run, ADMIN, &scenario.replace("rate: 50", "rate: 0")).await.is(S::UNPROCESSABLE_ENTITY);
    let long = scenario.replace("duration: 2h", "duration: 30d\ntick: 1s");
    let refused = p.yaml(run, ADMIN, &long).await.is(S::UNPROCESSABLE_ENTITY).body;
    assert_eq!(refused["field"], "scenario.tick", "{refused}");
    p.yaml(run, &sdk, scenario).await.is(S::FORBIDDEN);
    p.yaml("/api/v1/plans/nope/drills/run", ADMIN, scenario).await.is(S::NOT_FOUND);
    let yaml_type = [("content-type", "application/yaml")];
    p.send(Method::POST, run, Some(ADMIN), &yaml_type, &[0xff]).await.is(S::BAD_REQUEST);
    p.get("/api/v1/plans/p1/scorecard", &sdk).await.is(S::OK);
    p.get("/api/v1/plans/nope/scorecard", ADMIN).await.is(S::NOT_FOUND);
    let item = "/api/v1/plans/p1/scorecard/baseline";
    // The plan's author may not sign it (separation of duties); carol may.
    p.put(item, ADMIN, json!({"status": "green"})).await.is(S::FORBIDDEN);
    let carol = json!({"kind": "admin", "environments": ["*"], "principal": "carol"});
    let (carol, _) = token(&mut p, carol).await;
    p.put(item, &carol, json!({"status": "green", "note": "https://wiki/b"})).await.is(S::OK);
    let waiver = json!({"status": "waived", "note": "internal only"});
    p.put("/api/v1/plans/p1/scorecard/communications", &carol, waiver).await.is(S::OK);
    p.put(item, ADMIN, json!({"status": "purple"})).await.is(S::UNPROCESSABLE_ENTITY);
    p.put("/api/v1/plans/p1/scorecard/nope", ADMIN, json!({"status": "green"}))
        .await
        .is(S::NOT_FOUND);
    p.put(item, ADMIN, json!({"state": "green"})).await.is(S::BAD_REQUEST);
    p.put(item, &sdk, json!({"status": "green"})).await.is(S::FORBIDDEN);
    // Waivers of vulnerability findings: one of the plan's approvers grants and revokes them.
    let waiver = "/api/v1/plans/p1/waivers/CVE-2024-35195";
    let grant = json!({"reason": "not reachable here", "expires": "30d"});
    p.put(waiver, &carol, grant.clone()).await.is(S::FORBIDDEN);
    p.put(waiver, &bob, grant.clone()).await.is(S::OK);
    p.put(waiver, &bob, json!({"reason": "x", "expires": "never"}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.put(waiver, &bob, json!({"why": "x"})).await.is(S::BAD_REQUEST);
    p.put("/api/v1/plans/nope/waivers/CVE-1-2", &bob, grant).await.is(S::NOT_FOUND);
    p.get("/api/v1/plans/p1/waivers", &sdk).await.is(S::OK);
    p.get("/api/v1/plans/nope/waivers", ADMIN).await.is(S::NOT_FOUND);
    p.delete(waiver, &bob).await.is(S::OK);
    p.delete(waiver, &bob).await.is(S::NOT_FOUND);

    // ---------- releases ----------
    let rel_flag = json!({"variants": {"on": true, "off": false}, "default": "off",
        "environments": {"prod": {"enabled": true}}});
    p.put("/api/v1/flags/rel-flag", ADMIN, rel_flag).await.is(S::CREATED);
    let rel_plan = LATER
        .replace("name: later", "name: rel-plan")
        .replace("flag: banner-color", "flag: rel-flag")
        .replace("new_variant: red", "new_variant: \"on\"")
        .replace("control_variant: blue", "control_variant: \"off\"");
    p.yaml("/api/v1/plans", ADMIN, &rel_plan).await.is(S::CREATED);
    let rel = "/api/v1/releases/rel";
    p.put(rel, ADMIN, json!({"members": [{"plan": "rel-plan"}]})).await.is(S::OK);
    p.put(rel, ADMIN, json!({"members": [{"plan": "nope"}]})).await.is(S::NOT_FOUND);
    p.put(rel, ADMIN, json!({"members": []})).await.is(S::UNPROCESSABLE_ENTITY);
    p.put(rel, ADMIN, json!({"member": []})).await.is(S::BAD_REQUEST);
    p.put(rel, &sdk, json!({"members": [{"plan": "rel-plan"}]})).await.is(S::FORBIDDEN);
    p.get(rel, &sdk).await.is(S::OK);
    let listed = p.get("/api/v1/releases", &sdk).await.is(S::OK).body;
    assert_eq!(listed[0]["name"], "rel", "{listed}");
    p.get("/api/v1/releases/nope", ADMIN).await.is(S::NOT_FOUND);
    p.post("/api/v1/releases/nope/start", ADMIN, Value::Null).await.is(S::NOT_FOUND);
    p.post("/api/v1/releases/rel/start", ADMIN, Value::Null).await.is(S::CREATED);
    p.post("/api/v1/releases/rel/start", ADMIN, Value::Null).await.is(S::CONFLICT);
    p.put(rel, ADMIN, json!({"members": [{"plan": "rel-plan"}], "description": "x"}))
        .await
        .is(S::CONFLICT);
    p.get("/api/v1/releases/rel/report", &sdk).await.is(S::OK);
    p.get("/api/v1/releases/nope/report", ADMIN).await.is(S::NOT_FOUND);

    // ---------- rollouts ----------
    p.post("/api/v1/rollouts", ADMIN, json!({"plan": "nope"})).await.is(S::NOT_FOUND);
    p.post("/api/v1/rollouts", ADMIN, json!({"plan": "p1", "artifact_sha256": "00"}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/rollouts", ADMIN, json!({"plan": "p1", "when": "now"}))
        .await
        .is(S::BAD_REQUEST);
    p.post("/api/v1/rollouts", &dev_admin, json!({"plan": "p1"})).await.is(S::FORBIDDEN);
    let r = p.post("/api/v1/rollouts", &alice, json!({"plan": "p1", "reason": "go"})).await;
    let id = r.is(S::CREATED).body["id"].as_str().unwrap().to_owned();
    p.post("/api/v1/rollouts", ADMIN, json!({"plan": "p1"})).await.is(S::CONFLICT);
    // The flag is locked while its rollout runs.
    let locked = json!({"variants": {"on": true, "off": false}, "default": "on"});
    p.put("/api/v1/flags/new-checkout", ADMIN, locked).await.is(S::CONFLICT);
    p.post("/api/v1/flags/new-checkout/archive", ADMIN, Value::Null).await.is(S::CONFLICT);
    p.post("/api/v1/flags/new-checkout/revert", ADMIN, json!({"version": 2})).await.is(S::CONFLICT);
    p.yaml("/api/v1/apply", ADMIN, FLAGS).await.is(S::CONFLICT);
    let at = (p.app.state.clock.now() + chrono::Duration::days(2)).to_rfc3339();
    p.post("/api/v1/rollouts", ADMIN, json!({"plan": "later", "start_at": at}))
        .await
        .is(S::ACCEPTED);
    p.post("/api/v1/rollouts", ADMIN, json!({"plan": "later", "start_at": "soon"}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/schedules", &sdk).await.is(S::OK);

    // Traffic in the first wave (countries the flag's own rules do not take), a tick that
    // promotes, and some traffic in the second wave so its signals and latency show.
    for country in ["DK", "FI"] {
        let events = traffic(&mut p, &client, 0..150, country).await;
        p.post("/api/v1/events", &sdk, events).await.is(S::ACCEPTED);
    }
    let click = json!({"events": [{"type": "click", "flag": "new-checkout", "variant": "on", "context": {}}]});
    p.post("/api/v1/events", &sdk, click).await.is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/events", &sdk, json!({"events": [], "x": 1})).await.is(S::BAD_REQUEST);
    p.post("/api/v1/events", &client, json!({"events": []})).await.is(S::FORBIDDEN);
    // Over the token's budget (here one event a second, ten in the bucket): the first batch of
    // eleven empties the bucket (and is then refused for its content), the next waits.
    p.app.state.routing.event_budget.set(1);
    let one = json!({"type": "click", "flag": "new-checkout", "variant": "on", "context": {}});
    let clicks = json!({"events": vec![one; 11]});
    p.post("/api/v1/events", &sdk, clicks.clone()).await.is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/events", &sdk, clicks).await.is(S::TOO_MANY_REQUESTS);
    // OTLP traces share the events' budget, counted in the events their spans make.
    let at = p.app.state.clock.now().timestamp_nanos_opt().unwrap().to_string();
    let span = |i: usize| {
        let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
        json!({"traceId": format!("{i:032x}"), "spanId": format!("{i:016x}"), "name": "checkout",
            "events": [{"timeUnixNano": at, "name": "feature_flag.evaluation", "attributes": [
                attr("feature_flag.key", "new-checkout"), attr("feature_flag.result.variant", "off"),
                attr("feature_flag.context.id", &format!("otel-{i}"))]}]})
    };
    let spans = json!({"resourceSpans": [{"scopeSpans": [{"spans": (1..=6).map(span).collect::<Vec<_>>()}]}]});
    p.post("/v1/traces", &sdk, spans.clone()).await.is(S::TOO_MANY_REQUESTS);
    p.app.state.routing.event_budget.set(0);
    p.post("/v1/traces", &sdk, spans).await.is(S::OK);
    p.post("/v1/traces", &client, json!({})).await.is(S::FORBIDDEN);
    p.post("/api/v1/events", ADMIN, json!({"events": []})).await.is(S::BAD_REQUEST);
    let protobuf = [("content-type", "application/x-protobuf")];
    p.send(Method::POST, "/v1/traces", Some(&sdk), &protobuf, b"\xff\xff\xff")
        .await
        .is(S::BAD_REQUEST);
    let text = [("content-type", "text/plain")];
    p.send(Method::POST, "/v1/traces", Some(&sdk), &text, b"spans")
        .await
        .is(S::UNSUPPORTED_MEDIA_TYPE);
    wavegate_server::runtime::controller::tick(&p.app.state).await.unwrap();
    let events = traffic(&mut p, &client, 150..190, "DK").await;
    p.post("/api/v1/events", &sdk, events).await.is(S::ACCEPTED);

    let view = format!("/api/v1/rollouts/{id}");
    p.get(&view, &sdk).await.is(S::OK);
    p.get("/api/v1/rollouts/ro_nope", ADMIN).await.is(S::NOT_FOUND);
    p.get(&view, &dev_admin).await.is(S::FORBIDDEN);
    p.get("/api/v1/rollouts", &sdk).await.is(S::OK);
    p.get("/api/v1/rollouts?state=running&environment=prod&flag=new-checkout", ADMIN)
        .await
        .is(S::OK);
    p.get(&format!("{view}/verdicts"), &sdk).await.is(S::OK);
    p.get(&format!("{view}/verdicts?wave=1&limit=10"), ADMIN).await.is(S::OK);
    p.get(&format!("{view}/verdicts?limit=0"), ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/rollouts/ro_nope/verdicts", ADMIN).await.is(S::NOT_FOUND);
    p.get(&format!("{view}/contributions"), ADMIN).await.is(S::OK);
    p.get(&format!("{view}/contributions"), &sdk).await.is(S::FORBIDDEN);
    p.get("/api/v1/rollouts/ro_nope/contributions", ADMIN).await.is(S::NOT_FOUND);
    let chart = format!("{view}/guardrails/errors/chart");
    p.get(&chart, &sdk).await.is(S::OK);
    p.get(&format!("{chart}?wave=1"), ADMIN).await.is(S::OK);
    p.get(&format!("{view}/guardrails/nope/chart"), ADMIN).await.is(S::NOT_FOUND);

    // People's commands.
    p.post(&format!("{view}/pause"), ADMIN, Value::Null).await.is(S::UNPROCESSABLE_ENTITY);
    p.post(&format!("{view}/explode"), ADMIN, Value::Null).await.is(S::NOT_FOUND);
    p.post(&format!("{view}/pause"), ADMIN, json!({"why": "x"})).await.is(S::BAD_REQUEST);
    p.post(&format!("{view}/pause"), &sdk, json!({"reason": "x"})).await.is(S::FORBIDDEN);
    p.post(&format!("{view}/approve"), ADMIN, Value::Null).await.is(S::FORBIDDEN);
    p.post(&format!("{view}/approve"), &bob, Value::Null).await.is(S::OK);
    p.post(&format!("{view}/pause"), ADMIN, json!({"reason": "a look"})).await.is(S::OK);
    p.post(&format!("{view}/resume"), ADMIN, Value::Null).await.is(S::OK);
    p.post("/api/v1/rollouts/ro_nope/resume", ADMIN, Value::Null).await.is(S::NOT_FOUND);

    // ---------- reports ----------
    for format in ["", "?format=json", "?format=markdown", "?format=html"] {
        p.get(&format!("/api/v1/reports/dora{format}"), &sdk).await.is(S::OK);
        p.get(&format!("{view}/report{format}"), &sdk).await.is(S::OK);
        p.get(&format!("{view}/adoption{format}"), &sdk).await.is(S::OK);
        let digest =
            format!("/api/v1/feedback/digest?release=checkout%201.0.0{}", format.replace('?', "&"));
        p.get(&digest, &sdk).await.is(S::OK);
    }
    p.get("/api/v1/reports/dora?since=2026-01-01T00:00:00Z&until=2099-01-01T00:00:00Z&by=team&environment=prod", ADMIN).await.is(S::OK);
    p.get("/api/v1/reports/dora?format=pdf", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/reports/dora?by=moon", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/calendar", &sdk).await.is(S::OK);
    p.get("/api/v1/calendar?days=30&format=ics", ADMIN).await.is(S::OK);
    p.get("/api/v1/calendar?days=0", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/calendar?days=x", ADMIN).await.is(S::BAD_REQUEST);
    let item = json!({"release": "checkout 1.0.0", "category": "usability", "cohort": "sales", "sentiment": "negative", "text": "the new button is hard to find"});
    p.post("/api/v1/feedback", &sdk, item.clone()).await.is(S::CREATED);
    p.post("/api/v1/feedback", ADMIN, json!({"feedback": [item.clone(), item.clone()]}))
        .await
        .is(S::CREATED);
    p.post("/api/v1/feedback", ADMIN, json!({"feedback": []})).await.is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/feedback", ADMIN, json!({"text": 1})).await.is(S::BAD_REQUEST);
    p.post("/api/v1/feedback", &client, item).await.is(S::FORBIDDEN);
    p.get("/api/v1/feedback/digest", ADMIN).await.is(S::BAD_REQUEST);
    p.get("/api/v1/feedback/digest?release=x&format=ics", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get(&format!("{view}/report?format=ics"), ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/rollouts/ro_nope/report", ADMIN).await.is(S::NOT_FOUND);
    p.get(&format!("{view}/adoption?window=60"), ADMIN).await.is(S::OK);
    p.get(&format!("{view}/adoption?window=45"), ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/rollouts/ro_nope/adoption", ADMIN).await.is(S::NOT_FOUND);
    p.get("/api/v1/reports/adoption", &sdk).await.is(S::OK);
    p.get("/api/v1/reports/adoption?environment=prod&window=90&all=true", ADMIN).await.is(S::OK);
    p.get("/api/v1/reports/adoption?window=7", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);

    // ---------- people: feedback that closes, success targets, incidents ----------
    p.get("/api/v1/feedback?release=checkout%201.0.0", &sdk).await.is(S::OK);
    p.get("/api/v1/feedback", ADMIN).await.is(S::BAD_REQUEST);
    let listed = p.get("/api/v1/feedback?release=checkout%201.0.0", ADMIN).await;
    let fid = listed.body["items"][0]["id"].as_i64().unwrap();
    let status = format!("/api/v1/feedback/{fid}/status");
    p.post(&status, ADMIN, json!({"status": "fixed", "note": "moved back"})).await.is(S::OK);
    p.post(&status, ADMIN, json!({"status": "wont_fix"})).await.is(S::UNPROCESSABLE_ENTITY);
    p.post(&status, ADMIN, json!({"status": "fixed", "note": "x", "fixed_in": {"kind": "flag", "key": "nope", "version": 9}}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.post(&status, ADMIN, json!({"state": "open"})).await.is(S::BAD_REQUEST);
    p.post(&status, &sdk, json!({"status": "open"})).await.is(S::FORBIDDEN);
    p.post("/api/v1/feedback/999999/status", ADMIN, json!({"status": "open"}))
        .await
        .is(S::NOT_FOUND);
    p.post(&status, ADMIN, json!({"status": "open"})).await.is(S::OK);
    p.get(&format!("{view}/success"), &sdk).await.is(S::OK);
    p.get("/api/v1/rollouts/ro_nope/success", ADMIN).await.is(S::NOT_FOUND);
    let incident = json!({"id": "INC-1", "severity": "critical", "service": "checkout", "user": "u1", "title": "pay fails"});
    p.post("/api/v1/incidents", &sdk, incident.clone()).await.is(S::CREATED);
    p.post("/api/v1/incidents", &sdk, incident).await.is(S::OK);
    p.post("/api/v1/incidents", ADMIN, json!({"severity": "sev1", "service": "c", "title": "t"}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/incidents", ADMIN, json!({"service": "c"})).await.is(S::BAD_REQUEST);
    p.post("/api/v1/incidents", &client, json!({"severity": "low", "service": "c", "title": "t"}))
        .await
        .is(S::FORBIDDEN);
    let pd = json!({"event": {"id": "e1", "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": "2026-01-01T00:00:00Z", "data": {"id": "PGR0VU2", "type": "incident",
        "title": "A little bump in the road", "created_at": "2026-01-01T00:00:00Z",
        "service": {"id": "PF9KMXH", "summary": "checkout", "type": "service_reference"},
        "priority": {"id": "P", "summary": "P1", "type": "priority_reference"}, "urgency": "high"}}});
    p.post("/api/v1/incidents/pagerduty", &sdk, pd.clone()).await.is(S::CREATED);
    p.post("/api/v1/incidents/pagerduty", &sdk, pd).await.is(S::OK);
    p.post(
        "/api/v1/incidents/pagerduty",
        &sdk,
        json!({"event": {"event_type": "incident.resolved", "data": {}}}),
    )
    .await
    .is(S::ACCEPTED);
    p.post("/api/v1/incidents/pagerduty", ADMIN, json!({"event": {}}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.send(
        Method::POST,
        "/api/v1/incidents/pagerduty",
        Some(ADMIN),
        &[("content-type", "application/json")],
        b"{",
    )
    .await
    .is(S::BAD_REQUEST);
    p.post("/api/v1/incidents/pagerduty", &client, json!({})).await.is(S::FORBIDDEN);
    let og = json!({"action": "Create", "alert": {"alertId": "og-1", "message": "checkout errors",
        "priority": "P2", "entity": "checkout", "createdAt": 1767225600000u64, "details": {"user": "u2"}},
        "integrationType": "Webhook"});
    p.post("/api/v1/incidents/opsgenie", &sdk, og.clone()).await.is(S::CREATED);
    p.post("/api/v1/incidents/opsgenie", &sdk, og).await.is(S::OK);
    p.post("/api/v1/incidents/opsgenie", &sdk, json!({"action": "Close", "alert": {}}))
        .await
        .is(S::ACCEPTED);
    p.post("/api/v1/incidents/opsgenie", ADMIN, json!({"alert": {}}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.send(
        Method::POST,
        "/api/v1/incidents/opsgenie",
        Some(ADMIN),
        &[("content-type", "application/json")],
        b"[",
    )
    .await
    .is(S::BAD_REQUEST);
    p.post("/api/v1/incidents/opsgenie", &client, json!({})).await.is(S::FORBIDDEN);
    // Incident deliveries spend the token's events budget (one each, recorded or not): with one
    // a second and ten in the bucket, the eleventh waits, on every incident route.
    let (pager, _) = token(&mut p, json!({"kind": "server-sdk", "environments": ["prod"]})).await;
    p.app.state.routing.event_budget.set(1);
    for i in 0..10 {
        let body =
            json!({"id": format!("INC-b{i}"), "severity": "low", "service": "c", "title": "t"});
        p.post("/api/v1/incidents", &pager, body).await.is(S::CREATED);
    }
    let over = json!({"id": "INC-over", "severity": "low", "service": "c", "title": "t"});
    p.post("/api/v1/incidents", &pager, over).await.is(S::TOO_MANY_REQUESTS);
    p.post("/api/v1/incidents/pagerduty", &pager, json!({})).await.is(S::TOO_MANY_REQUESTS);
    p.post("/api/v1/incidents/opsgenie", &pager, json!({})).await.is(S::TOO_MANY_REQUESTS);
    p.app.state.routing.event_budget.set(0);
    p.get("/api/v1/incidents?service=checkout", &sdk).await.is(S::OK);
    p.get("/api/v1/incidents?limit=0", ADMIN).await.is(S::BAD_REQUEST);

    // ---------- deployment tooling gates ----------
    let json_ct = [("content-type", "application/json")];
    p.get("/api/v1/gates/argo/p1", &sdk).await.is(S::OK);
    p.get("/api/v1/gates/argo/nope", ADMIN).await.is(S::NOT_FOUND);
    let hook = |token: &str| {
        json!({"name": "podinfo", "namespace": "test", "phase": "Progressing",
        "checksum": "85d557f47b", "metadata": {"token": token}})
    };
    p.send(
        Method::POST,
        "/api/v1/gates/flagger/p1/confirm-promotion",
        None,
        &json_ct,
        hook(&sdk).to_string().as_bytes(),
    )
    .await
    .is(S::OK);
    p.send(
        Method::POST,
        "/api/v1/gates/flagger/p1/rollback",
        None,
        &json_ct,
        hook(&sdk).to_string().as_bytes(),
    )
    .await
    .is(S::CONFLICT);
    let idle = PLAN.replace("name: p1", "name: idle");
    p.yaml("/api/v1/plans", ADMIN, &idle).await.is(S::CREATED);
    p.send(
        Method::POST,
        "/api/v1/gates/flagger/idle/confirm-rollout",
        None,
        &json_ct,
        hook(&sdk).to_string().as_bytes(),
    )
    .await
    .is(S::LOCKED);
    p.send(
        Method::POST,
        "/api/v1/gates/flagger/p1/canary",
        None,
        &json_ct,
        hook(ADMIN).to_string().as_bytes(),
    )
    .await
    .is(S::NOT_FOUND);
    p.send(
        Method::POST,
        "/api/v1/gates/flagger/p1/rollout",
        Some(ADMIN),
        &json_ct,
        b"{\"name\": 1",
    )
    .await
    .is(S::BAD_REQUEST);
    let flagger = "/api/v1/gates/flagger/p1/rollout";
    let forbidden = hook(&client).to_string();
    p.send(Method::POST, flagger, None, &json_ct, forbidden.as_bytes()).await.is(S::FORBIDDEN);
    let anonymous = br#"{"name": "podinfo", "namespace": "test"}"#;
    p.send(Method::POST, flagger, None, &json_ct, anonymous).await.is(S::UNAUTHORIZED);

    // ---------- the freeze ----------
    p.get("/api/v1/freeze", &sdk).await.is(S::OK);
    p.put("/api/v1/freeze", ADMIN, json!({"reason": "incident 42"})).await.is(S::OK);
    p.get("/api/v1/freeze", ADMIN).await.is(S::OK);
    p.get("/api/v1/calendar", ADMIN).await.is(S::OK);
    p.put("/api/v1/freeze", ADMIN, json!({"reason": " "})).await.is(S::UNPROCESSABLE_ENTITY);
    p.put("/api/v1/freeze", ADMIN, json!({})).await.is(S::BAD_REQUEST);
    p.put("/api/v1/freeze", &dev_admin, json!({"reason": "x"})).await.is(S::FORBIDDEN);
    p.delete("/api/v1/freeze", &dev_admin).await.is(S::FORBIDDEN);
    p.delete("/api/v1/freeze", ADMIN).await.is(S::OK);
    p.get("/api/v1/freeze", ADMIN).await.is(S::OK);

    // ---------- schedules ----------
    p.delete("/api/v1/schedules/later", &dev_admin).await.is(S::FORBIDDEN);
    p.delete("/api/v1/schedules/later", ADMIN).await.is(S::OK);
    p.delete("/api/v1/schedules/later", ADMIN).await.is(S::NOT_FOUND);

    // ---------- notifications ----------
    let target = json!({"audience": "on-call", "url": "http://127.0.0.1:9/hook", "format": "slack", "events": ["paused", "rolled_back"], "templates": {"paused": "{{ rollout.id }} paused"}, "secret": "0123456789abcdef"});
    let oncall = "/api/v1/notifications/targets/oncall";
    let plain = "/api/v1/notifications/targets/plain";
    p.put(oncall, ADMIN, target.clone()).await.is(S::CREATED);
    p.put(oncall, ADMIN, target).await.is(S::OK);
    p.put(plain, ADMIN, json!({"audience": "manager", "url": "http://127.0.0.1:9/x"}))
        .await
        .is(S::CREATED);
    p.put(oncall, ADMIN, json!({"audience": "manager", "url": "ftp://x/"}))
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    p.put(oncall, ADMIN, json!({"audience": "ceo", "url": "http://x/"})).await.is(S::BAD_REQUEST);
    p.put(oncall, &dev_admin, json!({"audience": "manager", "url": "http://x/"}))
        .await
        .is(S::FORBIDDEN);
    p.get("/api/v1/notifications/targets", ADMIN).await.is(S::OK);
    p.get(oncall, ADMIN).await.is(S::OK);
    p.get("/api/v1/notifications/targets/nope", ADMIN).await.is(S::NOT_FOUND);
    p.post(&format!("{oncall}/test?event=paused"), ADMIN, Value::Null).await.is(S::OK);
    p.post(&format!("{oncall}/test?event=exploded"), ADMIN, Value::Null).await.is(S::BAD_REQUEST);
    p.post("/api/v1/notifications/targets/nope/test", ADMIN, Value::Null).await.is(S::NOT_FOUND);
    // A template that parses but fails when rendered.
    let broken = json!({"audience": "manager", "url": "http://127.0.0.1:9/x", "templates": {"promoted": "{{ nothing_to_call() }}"}});
    p.put("/api/v1/notifications/targets/broken", ADMIN, broken).await.is(S::CREATED);
    p.post("/api/v1/notifications/targets/broken/test", ADMIN, Value::Null)
        .await
        .is(S::UNPROCESSABLE_ENTITY);
    // Something to deliver: the rollout paused by a person.
    p.post(&format!("{view}/pause"), ADMIN, json!({"reason": "for the log"})).await.is(S::OK);
    wavegate_server::runtime::notify::enqueue_new(&p.app.state).await.unwrap();
    p.get("/api/v1/notifications/deliveries", ADMIN).await.is(S::OK);
    p.get("/api/v1/notifications/deliveries?status=pending&target=oncall&limit=5", &dev_admin)
        .await
        .is(S::OK);
    p.get("/api/v1/notifications/deliveries?limit=0", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/notifications/deliveries?status=lost", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.delete(plain, ADMIN).await.is(S::NO_CONTENT);
    p.delete(plain, ADMIN).await.is(S::NOT_FOUND);

    // The end of the rollout: rolled back by a person.
    p.post(&format!("{view}/rollback"), ADMIN, json!({"reason": "enough"})).await.is(S::OK);
    p.post(&format!("{view}/resume"), ADMIN, Value::Null).await.is(S::CONFLICT);
    p.get(&view, ADMIN).await.is(S::OK);
    p.get(&format!("{view}/report"), ADMIN).await.is(S::OK);
    p.get("/api/v1/flags?stale=true", ADMIN).await.is(S::OK);

    // ---------- audit and backup ----------
    p.get("/api/v1/audit", ADMIN).await.is(S::OK);
    p.get(&format!("/api/v1/audit?target=rollout:{id}&limit=5"), ADMIN).await.is(S::OK);
    p.get("/api/v1/audit?after=3&limit=2", ADMIN).await.is(S::OK);
    p.get("/api/v1/audit?limit=0", ADMIN).await.is(S::UNPROCESSABLE_ENTITY);
    p.get("/api/v1/audit?limit=x", ADMIN).await.is(S::BAD_REQUEST);
    p.get("/api/v1/audit/verify", ADMIN).await.is(S::OK);
    p.get("/api/v1/audit/checkpoint", ADMIN).await.is(S::OK);
    p.get("/api/v1/backup", ADMIN).await.is(S::OK);
    p.get("/api/v1/backup?secrets=true", ADMIN).await.is(S::OK);
    p.get("/api/v1/backup", &dev_admin).await.is(S::FORBIDDEN);

    // ---------- streams ----------
    assert_eq!(p.open("/api/v1/stream", Some(&sdk)).await, S::OK);
    assert_eq!(p.open("/api/v1/stream?environment=prod", Some(ADMIN)).await, S::OK);
    assert_eq!(p.open("/api/v1/stream", Some(&client)).await, S::FORBIDDEN);
    assert_eq!(
        p.open("/api/v1/stream?environment=moon", Some(ADMIN)).await,
        S::UNPROCESSABLE_ENTITY
    );
    assert_eq!(p.open("/ofrep/v1/events?environment=prod", Some(&client)).await, S::OK);
    assert_eq!(p.open("/ofrep/v1/events?environment=prod", Some(&dev_client)).await, S::FORBIDDEN);
    let expired = "/ofrep/v1/events?environment=prod&ticket=tok_1~1~00";
    assert_eq!(p.open(expired, None).await, S::UNAUTHORIZED);
    assert_eq!(
        p.open("/ofrep/v1/events?environment=moon", Some(&client)).await,
        S::UNPROCESSABLE_ENTITY
    );
    // A token at its cap of open streams: one more is refused until one closes.
    let (capped, capped_id) =
        token(&mut p, json!({"kind": "server-sdk", "environments": ["prod"]})).await;
    let mut state = p.app.state.clone();
    state.streams.limits.per_token = 1;
    let (router, before) = (wavegate_server::app(state), p.app.router.clone());
    p.app.router = router.clone();
    for path in ["/api/v1/stream", "/ofrep/v1/events?environment=prod"] {
        let open = crate::stream::Reader::open_path(router.clone(), path, Some(&capped), &[]);
        let held = open.await.unwrap();
        assert_eq!(p.open(path, Some(&capped)).await, S::TOO_MANY_REQUESTS);
        drop(held);
        let live = p.app.state.streams.live.clone();
        wavegate_testkit::poll::until(
            "the closed stream frees its slot",
            Duration::from_secs(10),
            || {
                let open = live.open(&capped_id);
                async move { open == 0 }
            },
        )
        .await;
    }
    p.app.router = before;

    // ---------- the evaluation protocols ----------
    let one = "/ofrep/v1/evaluate/flags/strict-split";
    let bulk = "/ofrep/v1/evaluate/flags";
    let r = p.post(bulk, &client, json!({"context": {"targetingKey": "u1"}})).await.is(S::OK);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let again = [("content-type", "application/json"), ("if-none-match", etag.as_str())];
    let body = json!({"context": {"targetingKey": "u1"}}).to_string().into_bytes();
    p.send(Method::POST, bulk, Some(&client), &again, &body).await.is(S::NOT_MODIFIED);
    p.post(bulk, &client, json!({"context": 3})).await.is(S::BAD_REQUEST);
    p.post(bulk, ADMIN, json!({"context": {}})).await.is(S::BAD_REQUEST);
    p.post(one, &client, json!({"context": {}})).await.is(S::BAD_REQUEST);
    p.post("/ofrep/v1/evaluate/flags/nope", &client, json!({"context": {}})).await.is(S::NOT_FOUND);
    let elsewhere = [("content-type", "application/json"), ("x-wavegate-environment", "prod")];
    for path in [one, bulk] {
        p.send(Method::POST, path, Some(&dev_client), &elsewhere, b"{}").await.is(S::FORBIDDEN);
    }

    let unleash = [("authorization", client.as_str())];
    let server_side = [("authorization", sdk.as_str())];
    let spanning = [("authorization", ADMIN)];
    let on_dev = [("authorization", dev_client.as_str()), ("x-wavegate-environment", "prod")];
    let features = "/api/client/features";
    let r = p.with(Method::GET, features, &server_side, b"").await.is(S::OK);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let cached = [("authorization", sdk.as_str()), ("if-none-match", etag.as_str())];
    p.with(Method::GET, features, &cached, b"").await.is(S::NOT_MODIFIED);
    p.with(Method::GET, "/api/client/features?namePrefix=new", &server_side, b"").await.is(S::OK);
    p.with(Method::GET, "/api/client/features/new-checkout", &server_side, b"").await.is(S::OK);
    p.with(Method::GET, "/api/client/features/nope", &server_side, b"").await.is(S::NOT_FOUND);
    p.with(Method::GET, features, &unleash, b"").await.is(S::FORBIDDEN);
    let registration = json!({"appName": "shop", "instanceId": "i-1", "sdkVersion": "unleash-client-python:6.9.1", "strategies": ["default"], "started": "2026-01-01T00:00:00Z", "interval": 15}).to_string();
    p.with(Method::POST, "/api/client/register", &server_side, registration.as_bytes())
        .await
        .is(S::ACCEPTED);
    p.with(Method::POST, "/api/client/register", &server_side, b"{}").await.is(S::BAD_REQUEST);
    let metrics = json!({"appName": "shop", "instanceId": "i-1", "bucket": {"start": "2026-01-01T00:00:00Z", "stop": "2026-01-01T00:01:00Z", "toggles": {"banner-color": {"yes": 3, "no": 1, "variants": {}}}}}).to_string();
    p.with(Method::POST, "/api/client/metrics", &server_side, metrics.as_bytes())
        .await
        .is(S::ACCEPTED);
    p.with(Method::POST, "/api/client/metrics", &server_side, b"[]").await.is(S::BAD_REQUEST);
    for path in ["/api/frontend", "/api/frontend/all"] {
        let query = format!("{path}?userId=u1&properties[plan]=vip");
        let r = p.with(Method::GET, &query, &unleash, b"").await.is(S::OK);
        let etag = r.headers["etag"].to_str().unwrap().to_owned();
        let cached = [("authorization", client.as_str()), ("if-none-match", etag.as_str())];
        p.with(Method::GET, &query, &cached, b"").await.is(S::NOT_MODIFIED);
        let context = json!({"context": {"userId": "u2"}}).to_string();
        let r = p.with(Method::POST, path, &unleash, context.as_bytes()).await.is(S::OK);
        let etag = r.headers["etag"].to_str().unwrap().to_owned();
        let cached = [("authorization", client.as_str()), ("if-none-match", etag.as_str())];
        p.with(Method::POST, path, &cached, context.as_bytes()).await.is(S::NOT_MODIFIED);
        p.with(Method::POST, path, &unleash, b"{").await.is(S::BAD_REQUEST);
    }
    let feature = "/api/frontend/features/price-factor";
    let r = p.with(Method::GET, feature, &unleash, b"").await.is(S::OK);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let cached = [("authorization", client.as_str()), ("if-none-match", etag.as_str())];
    p.with(Method::GET, feature, &cached, b"").await.is(S::NOT_MODIFIED);
    p.with(Method::GET, "/api/frontend/features/nope", &unleash, b"").await.is(S::NOT_FOUND);
    for path in [
        "/api/client/features",
        "/api/client/features/limits",
        "/api/frontend",
        "/api/frontend/all",
        "/api/frontend/features/limits",
    ] {
        p.with(Method::GET, path, &spanning, b"").await.is(S::BAD_REQUEST);
    }
    for path in ["/api/frontend/client/register", "/api/frontend/client/metrics"] {
        p.with(Method::POST, path, &unleash, registration.as_bytes()).await.is(S::ACCEPTED);
        p.with(Method::POST, path, &unleash, b"nope").await.is(S::BAD_REQUEST);
    }
    for (method, path) in [
        (Method::GET, "/api/frontend"),
        (Method::POST, "/api/frontend"),
        (Method::GET, "/api/frontend/all"),
        (Method::POST, "/api/frontend/all"),
        (Method::GET, "/api/frontend/features/limits"),
        (Method::POST, "/api/frontend/client/register"),
        (Method::POST, "/api/frontend/client/metrics"),
        (Method::POST, "/api/client/register"),
        (Method::POST, "/api/client/metrics"),
        (Method::GET, "/api/client/features/limits"),
    ] {
        p.with(method, path, &on_dev, b"{}").await.is(S::FORBIDDEN);
    }

    // ---------- a plan checked without storing it ----------
    let yaml_type = [("content-type", "application/yaml")];
    let plan_text =
        "name: later2\nflag: new-checkout\nenvironment: prod\nwaves: [{ exposure: 50% }]\n";
    let r = p
        .send(
            Method::POST,
            "/api/v1/plans/lint?traffic=50",
            Some(ADMIN),
            &yaml_type,
            plan_text.as_bytes(),
        )
        .await
        .is(S::OK);
    assert_eq!(r.body["ok"], false, "a 50% first wave is an error: {:?}", r.body);
    p.send(
        Method::POST,
        "/api/v1/plans/lint?traffic=-1",
        Some(ADMIN),
        &yaml_type,
        plan_text.as_bytes(),
    )
    .await
    .is(S::BAD_REQUEST);
    let lint = "/api/v1/plans/lint";
    p.send(Method::POST, lint, Some(&sdk), &yaml_type, plan_text.as_bytes()).await.is(S::FORBIDDEN);

    // ---------- a flag or segment checked without storing it ----------
    for (path, text) in [
        ("/api/v1/flags/checked/check", "variants: { a: 1 }\ndefault: a\n"),
        ("/api/v1/segments/checked/check", "keys: [u1]\n"),
    ] {
        let r = p.send(Method::POST, path, Some(ADMIN), &yaml_type, text.as_bytes()).await;
        assert_eq!(r.is(S::OK).body["ok"], true, "{path}");
        p.send(Method::POST, path, Some(ADMIN), &yaml_type, &[0xff]).await.is(S::BAD_REQUEST);
        p.send(Method::POST, path, Some(&sdk), &yaml_type, text.as_bytes()).await.is(S::FORBIDDEN);
    }

    // ---------- change requests and protected environments ----------
    p.get("/api/v1/protection", ADMIN).await.is(S::OK);
    let protect = "/api/v1/environments/prod/protection";
    let one = json!({"approvals": 1});
    p.put("/api/v1/environments/nowhere/protection", ADMIN, one.clone()).await.is(S::NOT_FOUND);
    p.put(protect, ADMIN, json!({"approvals": 11})).await.is(S::UNPROCESSABLE_ENTITY);
    p.put(protect, ADMIN, json!({"approvals": "x"})).await.is(S::BAD_REQUEST);
    p.put(protect, &dev_admin, one.clone()).await.is(S::FORBIDDEN);
    p.put(protect, ADMIN, one).await.is(S::OK);
    let mut spec = p.get("/api/v1/flags/banner-color", ADMIN).await.is(S::OK).body["spec"].clone();
    spec["description"] = json!("reviewed");
    p.put("/api/v1/flags/banner-color", ADMIN, spec.clone()).await.is(S::CONFLICT);
    p.post("/api/v1/changes", ADMIN, json!({"description": " "})).await.is(S::UNPROCESSABLE_ENTITY);
    p.post("/api/v1/changes", ADMIN, json!({"description": "x", "y": 1})).await.is(S::BAD_REQUEST);
    let change = json!({"description": "reviewed copy", "flags": {"banner-color": spec}});
    p.post("/api/v1/changes", &dev_admin, change.clone()).await.is(S::FORBIDDEN);
    let cr = p.post("/api/v1/changes", ADMIN, change).await.is(S::CREATED).body;
    let act = |a: &str| format!("/api/v1/changes/{}/{a}", cr["id"].as_str().unwrap());
    p.get("/api/v1/changes", ADMIN).await.is(S::OK);
    p.get(&format!("/api/v1/changes/{}", cr["id"].as_str().unwrap()), ADMIN).await.is(S::OK);
    p.get("/api/v1/changes/cr_nope", ADMIN).await.is(S::NOT_FOUND);
    p.post(&act("approve"), ADMIN, json!({})).await.is(S::FORBIDDEN);
    p.post(&act("dance"), ADMIN, json!({})).await.is(S::NOT_FOUND);
    p.post(&act("comment"), ADMIN, json!({})).await.is(S::UNPROCESSABLE_ENTITY);
    p.post(&act("comment"), ADMIN, json!({"x": 1})).await.is(S::BAD_REQUEST);
    p.post(&act("apply"), ADMIN, json!({})).await.is(S::CONFLICT);
    p.post(&act("comment"), ADMIN, json!({"text": "looks right"})).await.is(S::OK);
    p.delete("/api/v1/environments/nowhere/protection", ADMIN).await.is(S::NOT_FOUND);
    p.delete(protect, &dev_admin).await.is(S::FORBIDDEN);
    p.delete(protect, ADMIN).await.is(S::OK);

    // ---------- what every operation refuses alike ----------
    // No token.
    // (Sign-in's own routes, but sign-out, take no token; they are tested with a provider in
    // crates/wavegate/tests/it/oidc.rs.)
    let needs_token = |path: &str, op: &Value| {
        op["responses"].get("401").is_some()
            && (!path.starts_with("/auth/") || path == "/auth/logout")
    };
    for (method, path) in sweep(&p.doc, &id, needs_token) {
        p.send(method, &path, None, &[], b"").await.is(S::UNAUTHORIZED);
    }
    // A client-sdk token, which only evaluates (operations that take a body read it before
    // the token's kind, and were refused above).
    let guarded = sweep(&p.doc, &id, |path, op| {
        op["responses"].get("403").is_some()
            && op.get("requestBody").is_none()
            && !path.starts_with("/ofrep/")
            && !path.starts_with("/api/frontend")
            && !path.starts_with("/auth/")
    });
    for (method, path) in guarded {
        p.send(method, &path, Some(&client), &[], b"").await.is(S::FORBIDDEN);
    }
    // Sign-in without an identity provider: there is none here (404); signing an API token
    // out: 409.
    let json_type = [("content-type", "application/json")];
    p.send(Method::GET, "/auth/config", None, &[], b"").await.is(S::OK);
    p.send(Method::GET, "/auth/login", None, &[], b"").await.is(S::NOT_FOUND);
    p.send(Method::GET, "/auth/callback?code=c&state=s", None, &[], b"").await.is(S::NOT_FOUND);
    let exchange = br#"{"code": "c", "verifier": "v"}"#;
    p.send(Method::POST, "/auth/cli/token", None, &json_type, exchange).await.is(S::NOT_FOUND);
    p.send(Method::POST, "/auth/logout", Some(ADMIN), &[], b"").await.is(S::CONFLICT);
    // A body over the limit.
    let huge = vec![b' '; wavegate_server::MAX_BODY_BYTES + 1];
    let json = [("content-type", "application/json")];
    for (method, path) in sweep(&p.doc, &id, |_, op| op["responses"].get("413").is_some()) {
        p.send(method, &path, Some(ADMIN), &json, &huge).await.is(S::PAYLOAD_TOO_LARGE);
    }
    // An unknown query parameter.
    let queried = sweep(&p.doc, &id, |path, op| {
        op["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "query")
            && !path.starts_with("/api/frontend")
            // Providers add parameters of their own (`iss`, `session_state`) to the callback.
            && path != "/auth/callback"
    });
    for (method, path) in queried {
        p.send(method, &format!("{path}&unknown=1"), Some(ADMIN), &[], b"")
            .await
            .is(S::BAD_REQUEST);
    }

    // The last admin token for all environments cannot be revoked (bob's can, then ADMIN's not).
    let tokens = p.get("/api/v1/tokens", ADMIN).await.is(S::OK).body;
    let live_everywhere = |principal: &str| {
        let t = tokens.as_array().unwrap().iter().find(|t| {
            t["principal"] == principal && t["kind"] == "admin" && t["revoked_at"].is_null()
        });
        t.unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (bob_id, admin_id) = (live_everywhere("bob"), live_everywhere("admin"));
    p.delete(&format!("/api/v1/tokens/{bob_id}"), ADMIN).await.is(S::OK);
    p.delete(&format!("/api/v1/tokens/{admin_id}"), ADMIN).await.is(S::CONFLICT);

    // A broken chain: verification says where.
    let pool = p.app.sqlite.pool();
    sqlx::query("DROP TRIGGER audit_log_no_update").execute(pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET canonical = replace(canonical, '\"actor\":\"admin\"', '\"actor\":\"mallory\"') WHERE seq = 4")
        .execute(pool)
        .await
        .unwrap();
    p.get("/api/v1/audit/verify", ADMIN).await.is(S::OK);

    // The store fails: readiness, ticket checks and Unleash metrics say so.
    p.post("/api/v1/rollouts", ADMIN, json!({"plan": "later"})).await.is(S::CREATED);
    p.app.sqlite.pool().close().await;
    p.send(Method::GET, "/readyz", None, &[], b"").await.is(S::SERVICE_UNAVAILABLE);
    let ticket = "/ofrep/v1/events?environment=prod&ticket=tok_1~9999999999~00";
    assert_eq!(p.open(ticket, None).await, S::SERVICE_UNAVAILABLE);
    let counts = json!({"appName": "shop", "instanceId": "i-1", "bucket": {"start": "2026-01-01T00:00:00Z", "stop": "2026-01-01T00:01:00Z", "toggles": {"banner-color": {"yes": 4, "no": 0, "variants": {"red": 3, "blue": 1}}}}});
    let counts = counts.to_string();
    p.with(Method::POST, "/api/client/metrics", &server_side, counts.as_bytes())
        .await
        .is(S::SERVICE_UNAVAILABLE);

    if let Ok(out) = std::env::var("WAVEGATE_SHAPES_OUT") {
        std::fs::write(out, serde_json::to_string_pretty(&p.shapes).unwrap()).unwrap();
    }
    let unexpected = UNEXPECTED.take();
    assert!(unexpected.is_empty(), "unexpected answers:\n{}", unexpected.join("\n"));
    assert_every_status_answered(&p);
}

/// Every documented (operation, status) pair was answered.
fn assert_every_status_answered(p: &Probe) {
    let mut missing: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut pairs = 0;
    for (method, path, op) in operations(&p.doc) {
        for status in op["responses"].as_object().unwrap().keys() {
            pairs += 1;
            let key = (method.clone(), path.clone(), status.clone());
            // Sign-in answers these only with an identity provider configured: the OIDC
            // suite (crates/wavegate/tests/it/oidc.rs) drives them against a real one.
            let with_provider = path.starts_with("/auth/")
                && !(status == "404"
                    || (path == "/auth/logout" && ["401", "409"].contains(&status.as_str())));
            if !p.seen.contains(&key) && !with_provider {
                missing.entry(format!("{method} {path}")).or_default().push(status);
            }
        }
    }
    let operations = operations(&p.doc).count();
    eprintln!("{operations} operations, {pairs} documented statuses, {} answered", p.seen.len());
    assert!(missing.is_empty(), "documented but never answered: {missing:#?}");
}

/// Routed → documented, as the code says it: the server's routes are registered only through
/// `OpenApiRouter::routes(routes!(…))` (each from an annotated handler), never with axum's own
/// `route`, `route_service` or `nest`, which would serve a path the document does not list.
#[test]
fn routes_are_registered_only_with_their_documentation() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src];
    let mut bare = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if [".route(", ".route_service(", ".nest(", ".nest_service("]
                .iter()
                .any(|c| line.contains(c))
            {
                bare.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bare.is_empty(), "routes registered without documentation:\n{}", bare.join("\n"));
}
