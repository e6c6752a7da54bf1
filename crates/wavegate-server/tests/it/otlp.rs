//! `POST /v1/traces`: spans carrying OpenFeature evaluation events feed the live rollout's
//! arms (exposure, error and latency outcomes, named metrics), in protobuf or JSON, gzip or
//! not; spans that cannot place their user count nowhere and the answer says so.

use axum::http::{Method, StatusCode};
use prost::Message as _;
use serde_json::json;
use wavegate_protocols::otlp::pb;
use wavegate_server::clock::Clock as _;
use wavegate_testkit::fixtures::{on_off, on_off_flag};

use crate::support::{TestApp, errors_plan, spawn_app};

fn kv(key: &str, v: &str) -> pb::KeyValue {
    let value = pb::any_value::Value::StringValue(v.into());
    pb::KeyValue { key: key.into(), value: Some(pb::AnyValue { value: Some(value) }) }
}

/// A span of `trace` (a root when `parent` is empty) lasting `ms`, failed or not.
fn span(trace: u8, id: u8, parent: &[u8], ms: u64, error: bool, now_ns: u64) -> pb::Span {
    pb::Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.to_vec(),
        name: "POST /checkout".into(),
        start_time_unix_nano: now_ns,
        end_time_unix_nano: now_ns + ms * 1_000_000,
        attributes: vec![],
        events: vec![],
        status: Some(pb::Status { message: String::new(), code: if error { 2 } else { 1 } }),
    }
}

/// The evaluation event OpenFeature's Python tracing hook adds (current conventions).
fn evaluation(flag: &str, variant: &str, user: Option<&str>, at_ns: u64) -> pb::Event {
    let mut attributes =
        vec![kv("feature_flag.key", flag), kv("feature_flag.result.variant", variant)];
    attributes.extend(user.map(|u| kv("feature_flag.context.id", u)));
    pb::Event { time_unix_nano: at_ns, name: "feature_flag.evaluation".into(), attributes }
}

fn request(spans: Vec<pb::Span>) -> pb::ExportTraceServiceRequest {
    pb::ExportTraceServiceRequest {
        resource_spans: vec![pb::ResourceSpans {
            resource: Some(pb::Resource { attributes: vec![kv("service.name", "shop")] }),
            scope_spans: vec![pb::ScopeSpans { spans }],
        }],
    }
}

impl TestApp {
    fn now_ns(&self) -> u64 {
        self.clock.now().timestamp_nanos_opt().unwrap() as u64
    }

    async fn traces(
        &self,
        token: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> crate::support::Reply {
        let mut h = vec![("content-type", "application/x-protobuf")];
        h.extend_from_slice(headers);
        self.raw(Method::POST, "/v1/traces", Some(token), &h, body).await
    }

    /// Sum of `metric`'s `n` in wave 1, by arm.
    async fn arms(&self, id: &str, metric: &str) -> (f64, f64) {
        let rows = self.state.store.aggregates(id, 0, &[]).await.unwrap();
        let n = |arm: &str| {
            rows.iter().filter(|r| r.metric == metric && r.arm == arm).map(|r| r.n).sum::<f64>()
        };
        (n("treatment"), n("control"))
    }
}

/// Posts a protobuf export; the status and the raw answer (checked to be protobuf).
async fn protobuf_answer(app: &TestApp, token: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let req = axum::http::Request::post("/v1/traces")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-protobuf")
        .body(axum::body::Body::from(body))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let status = resp.status();
    (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn plan(otel: &str) -> String {
    errors_plan(&["{ exposure: 20% }", "{ exposure: 100% }"], otel)
}

/// Which variant the server serves `user` now.
async fn served(app: &TestApp, token: &str, user: &str) -> String {
    let r = app.ofrep(token, "checkout", json!({"targetingKey": user})).await;
    r.body["variant"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn spans_with_evaluation_events_count_in_the_arms() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan("")).await;
    let id = app.start("p").await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let client = app.token("client-sdk", &["prod"]).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let now = app.now_ns();
    let mut spans = Vec::new();
    let mut treatment = 0;
    for i in 0..=255u8 {
        let user = format!("user-{i}");
        let variant = served(&app, &client, &user).await;
        treatment += usize::from(variant == "on");
        // The new variant's spans fail.
        let mut s = span(i, i, &[], 40 + u64::from(i), variant == "on", now);
        s.events.push(evaluation("checkout", &variant, Some(&user), now + 1_000));
        spans.push(s);
    }
    // One span without a user, one of another flag, one without any evaluation.
    let mut lost = span(0, 253, &[], 5, false, now);
    lost.events.push(evaluation("checkout", "off", None, now));
    let mut other = span(1, 254, &[], 5, false, now);
    other.events.push(evaluation("search", "off", Some("u"), now));
    spans.extend([lost, other, span(2, 255, &[1; 8], 5, false, now)]);
    let (status, answer) = protobuf_answer(&app, &sdk, request(spans).encode_to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let answer = pb::ExportTraceServiceResponse::decode(&answer[..]).unwrap();
    let warning = answer.partial_success.unwrap();
    assert_eq!(warning.rejected_spans, 0);
    assert!(
        warning.error_message.contains("1 spans without feature_flag.context.id"),
        "{warning:?}"
    );

    let t = treatment as f64;
    assert_eq!(app.arms(&id, "exposure").await, (t, 256.0 - t));
    let (te, ce) = app.arms(&id, "error").await;
    assert_eq!((te, ce), (t, 256.0 - t), "every span is an error outcome");
    let rows = app.state.store.aggregates(&id, 0, &[]).await.unwrap();
    let errors = rows.iter().find(|r| r.metric == "error" && r.arm == "treatment").unwrap();
    assert_eq!(errors.sum, t, "the failing spans are the treatment's errors");
    assert!(rows.iter().any(|r| r.metric == "latency_ms"), "{rows:?}");

    // The controller sees the failing variant and rolls back.
    app.tick().await;
    assert_eq!(app.rollout(&id).await["state"], "rolled_back");
    let m = app.raw(Method::GET, "/metrics", None, &[], vec![]).await.body;
    let m = m.as_str().unwrap();
    assert!(
        m.contains(r#"wavegate_events_placed_total{source="otlp",placed="counted"} 512"#),
        "{m}"
    );
    assert!(
        m.contains(r#"wavegate_events_placed_total{source="otlp",placed="unattributed"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn json_gzip_old_conventions_inheritance_and_named_metrics() {
    let app = spawn_app().await;
    let otel = "otel:
  context_attribute: enduser.id
  inherit: root
  services: [shop]
  metrics: { order_total: order.total, retries: \"event:retry\" }
";
    app.prepare(&on_off(&["checkout"]), &plan(otel)).await;
    let id = app.start("p").await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let client = app.token("client-sdk", &["prod"]).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let now = app.now_ns();
    let variant = served(&app, &client, "alice").await;
    let hex = |b: u8, n: usize| format!("{b:02x}").repeat(n);
    let at = now.to_string();
    // The older event name and variant attribute, the user in the span's `enduser.id`; a child
    // span without an evaluation inherits the root's (and carries the metrics).
    let body = json!({"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
    "scopeSpans": [{"spans": [
        {"traceId": hex(7, 16), "spanId": hex(1, 8), "name": "root",
         "startTimeUnixNano": at, "endTimeUnixNano": (now + 20_000_000).to_string(),
         "attributes": [{"key": "enduser.id", "value": {"stringValue": "alice"}}],
         "events": [{"timeUnixNano": at, "name": "feature_flag", "attributes": [
            {"key": "feature_flag.key", "value": {"stringValue": "checkout"}},
            {"key": "feature_flag.variant", "value": {"stringValue": variant}}]}],
         "status": {}},
        {"traceId": hex(7, 16), "spanId": hex(2, 8), "parentSpanId": hex(1, 8),
         "name": "charge", "startTimeUnixNano": at,
         "endTimeUnixNano": (now + 5_000_000).to_string(),
         "attributes": [{"key": "order.total", "value": {"doubleValue": 42.5}}],
         "events": [{"timeUnixNano": at, "name": "retry"}, {"timeUnixNano": at, "name": "retry"}],
         "status": {"code": 2}}
    ]}]}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, body.to_string().as_bytes()).unwrap();
    let headers = [("content-type", "application/json"), ("content-encoding", "gzip")];
    let r = app.raw(Method::POST, "/v1/traces", Some(&sdk), &headers, gz.finish().unwrap()).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({})));
    let arm = if variant == "on" { "treatment" } else { "control" };
    let rows = app.state.store.aggregates(&id, 0, &[]).await.unwrap();
    let cell = |metric: &str| {
        rows.iter().find(|r| r.metric == metric && r.arm == arm).map(|r| (r.n, r.sum))
    };
    assert_eq!(cell("exposure"), Some((1.0, 1.0)), "the root's exposure, once");
    assert_eq!(cell("error"), Some((2.0, 1.0)), "root and child outcomes, the child failed");
    assert_eq!(cell("order_total"), Some((1.0, 42.5)));
    assert_eq!(cell("retries"), Some((2.0, 2.0)), "0 on the root, 2 on the child");
}

#[tokio::test]
async fn spans_that_cannot_place_their_user_count_nowhere() {
    let app = spawn_app().await;
    // An earlier rule reads `email`, which a span's context does not carry.
    let flags = format!(
        "flags:\n{}",
        on_off_flag(
            "checkout",
            &[
                r#"{ name: staff, constraints: [{ attribute: email, op: ends_with, values: ["@example.com"] }], serve: "on" }"#
            ]
        )
    );
    app.prepare(&flags, &plan("")).await;
    let id = app.start("p").await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let now = app.now_ns();
    let mut s = span(1, 1, &[], 5, false, now);
    s.events.push(evaluation("checkout", "on", Some("staff-member"), now));
    // Evaluated before the start (and so before the wave): stale.
    let mut early = span(2, 2, &[], 5, false, now);
    early.events.push(evaluation("checkout", "off", Some("u2"), now - 60_000_000_000));
    let r = app.traces(&sdk, &[], request(vec![s, early]).encode_to_vec()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(app.state.store.aggregates(&id, 0, &[]).await.unwrap().is_empty());
    let m = app.raw(Method::GET, "/metrics", None, &[], vec![]).await.body;
    let m = m.as_str().unwrap();
    assert!(
        m.contains(r#"wavegate_events_placed_total{source="otlp",placed="unattributed"} 2"#),
        "{m}"
    );
    assert!(m.contains(r#"wavegate_events_placed_total{source="otlp",placed="stale"} 2"#), "{m}");
}

#[tokio::test]
async fn refusals_are_clear() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan("")).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let client = app.token("client-sdk", &["prod"]).await;
    let body = request(vec![]).encode_to_vec();
    let r = app.traces(&client, &[], body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .raw(
            Method::POST,
            "/v1/traces",
            None,
            &[("content-type", "application/x-protobuf")],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .raw(Method::POST, "/v1/traces", Some(&sdk), &[("content-type", "text/plain")], body)
        .await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, json!("unsupported_media_type"))
    );
    let r = app.traces(&sdk, &[], b"\xff\xff\xff".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["message"].as_str().unwrap().contains("malformed OTLP protobuf"),
        "{:?}",
        r.body
    );
    let r = app.traces(&sdk, &[("content-encoding", "gzip")], b"not gzip".to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("gzip"), "{:?}", r.body);
}

#[tokio::test]
async fn the_budget_is_charged_the_events_spans_make_not_the_spans() {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan("")).await;
    app.start("p").await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    app.clock.advance(chrono::Duration::seconds(30));
    // One event a second, ten held for bursts.
    app.state.routing.event_budget.set(1);
    let now = app.now_ns();
    let plain: Vec<pb::Span> = (0..=255u8).map(|i| span(i, i, &[], 5, false, now)).collect();
    let r = app.traces(&sdk, &[], request(plain).encode_to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "spans without an evaluation cost nothing");
    let evaluated = || {
        let spans = (0..20u8)
            .map(|i| {
                let mut s = span(i, i, &[], 5, false, now);
                s.events.push(evaluation("checkout", "off", Some(&format!("u{i}")), now));
                s
            })
            .collect();
        request(spans).encode_to_vec()
    };
    assert_eq!(app.traces(&sdk, &[], evaluated()).await.status, StatusCode::OK);
    let r = app.traces(&sdk, &[], evaluated()).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited"))
    );
}
