//! `wavegate edge`: a relay close to the applications. It serves OFREP from an in-memory copy
//! of one environment's configuration, kept current by the upstream's stream through
//! `wavegate-sdk` (the same evaluation as the server), keeps the last good copy on disk and
//! serves it when the upstream is unreachable (also after its own restart), and forwards
//! applications' events upstream in batches.
//!
//! Tokens: applications call the edge with their own wavegate tokens. The edge asks the
//! upstream who a token is (`GET /api/v1/whoami`) once, caches the answer (by SHA-256 of the
//! token, never the token) for [`TOKEN_TTL`], keeps it on disk, and trusts the cached answer
//! while the upstream is unreachable.
// Handlers return early with ready-made responses, as the server's OFREP module does.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest as _;
use wavegate_core::Context;
use wavegate_sdk::{Builder, Client, Source};
use wavegate_server::ofrep;

use crate::cli::{EdgeArgs, LogFormat};
use crate::commands::{Failure, parse_interval};

/// How long a token's upstream answer is trusted before asking again (while reachable).
pub const TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(5);

#[path = "edge_unleash.rs"]
mod unleash;

/// What the upstream said a token is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KnownToken {
    kind: String,
    environments: Vec<String>,
    checked_at: chrono::DateTime<chrono::Utc>,
}

struct Edge {
    sdk: Client,
    environment: String,
    upstream: String,
    /// The edge's own token for the upstream.
    token: String,
    unleash_doc: unleash::DocCache,
    http: reqwest::Client,
    tokens: Mutex<HashMap<String, Option<KnownToken>>>,
    tokens_path: PathBuf,
    max_stale: Option<Duration>,
    evaluations: AtomicU64,
    events_accepted: AtomicU64,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// Runs `wavegate edge`.
pub async fn run(args: EdgeArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init(matches!(args.log_format, LogFormat::Json));
    let flush = parse_interval("--flush-interval", &args.flush_interval).map_err(Failure::Input)?;
    let max_stale = args
        .max_stale
        .as_deref()
        .map(|s| parse_interval("--max-stale", s))
        .transpose()
        .map_err(Failure::Input)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("Failed to create {}", args.state_dir.display()))?;
    let config_path = args.state_dir.join(format!("config-{}.json", args.environment));
    let tokens_path = args.state_dir.join("tokens.json");
    let upstream = args.upstream.trim_end_matches('/').to_owned();
    let sdk = Builder::new(&upstream, &args.token, &args.environment)
        .snapshot_path(&config_path)
        .flush_interval(flush)
        .reconnect_delay(Duration::from_millis(100), Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(45))
        .start()
        .map_err(|e| Failure::Input(e.to_string()))?;
    let tokens: HashMap<String, Option<KnownToken>> = std::fs::read(&tokens_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<HashMap<String, KnownToken>>(&b).ok())
        .map(|m| m.into_iter().map(|(k, v)| (k, Some(v))).collect())
        .unwrap_or_default();
    let edge = Arc::new(Edge {
        sdk: sdk.clone(),
        environment: args.environment.clone(),
        upstream: upstream.clone(),
        token: args.token.clone(),
        unleash_doc: Default::default(),
        http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
        tokens: Mutex::new(tokens),
        tokens_path,
        max_stale,
        evaluations: AtomicU64::new(0),
        events_accepted: AtomicU64::new(0),
        started_at: chrono::Utc::now(),
    });
    let app = Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_one))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_bulk))
        .route("/api/v1/events", post(events))
        .merge(unleash::router())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(edge.clone());
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Failure::Operation(format!("could not listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    let shutdown = wavegate_server::shutdown_signal();
    println!(
        "wavegate edge listening on http://{addr} (environment {}, upstream {upstream}, state {})",
        args.environment,
        args.state_dir.display()
    );
    use std::io::Write as _;
    std::io::stdout().flush()?;
    match sdk.wait_ready(Duration::from_secs(2)).await {
        Ok(source) => tracing::info!(?source, "serving"),
        Err(e) => {
            tracing::warn!(error = %e, "no configuration yet; answering FLAG_NOT_FOUND until the upstream is reached")
        }
    }
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("Edge failed")?;
    sdk.close().await;
    Ok(ExitCode::SUCCESS)
}

impl Edge {
    /// Who the caller's token is, asking the upstream when not known (or known too long).
    async fn authorise(&self, headers: &HeaderMap, kinds: &[&str]) -> Result<(), StatusCode> {
        let mut secret =
            wavegate_server::auth::secret_from_headers(headers).ok_or(StatusCode::UNAUTHORIZED)?;
        // Unleash's token shape `<project>:<environment>.<secret>` (wavegate secrets hold no ':').
        if secret.contains(':')
            && let Some((env, inner)) = wavegate_server::unleash::split_unleash_token(secret)
        {
            if env != self.environment {
                return Err(StatusCode::FORBIDDEN);
            }
            secret = inner;
        }
        let hash = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
        let cached = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
            .cloned();
        let fresh = |t: &Option<KnownToken>| {
            t.as_ref().is_none_or(|k| chrono::Utc::now() - k.checked_at < TOKEN_TTL)
        };
        let known = match cached {
            Some(t) if fresh(&t) => t,
            stale => match self.whoami(secret).await {
                Ok(answer) => {
                    self.remember(&hash, answer.clone());
                    answer
                }
                // Upstream unreachable: trust what it said before.
                Err(()) => stale.flatten().map(Some).ok_or(StatusCode::SERVICE_UNAVAILABLE)?,
            },
        };
        let Some(t) = known else { return Err(StatusCode::UNAUTHORIZED) };
        if !kinds.contains(&t.kind.as_str()) {
            return Err(StatusCode::FORBIDDEN);
        }
        if !t.environments.iter().any(|e| e == "*" || *e == self.environment) {
            return Err(StatusCode::FORBIDDEN);
        }
        Ok(())
    }

    /// `Ok(None)`: the upstream says no such token. `Err`: the upstream did not answer.
    async fn whoami(&self, secret: &str) -> Result<Option<KnownToken>, ()> {
        let resp = self
            .http
            .get(format!("{}/api/v1/whoami", self.upstream))
            .bearer_auth(secret)
            .send()
            .await
            .map_err(|_| ())?;
        match resp.status() {
            s if s.is_success() => {
                let v: Value = resp.json().await.map_err(|_| ())?;
                Ok(Some(KnownToken {
                    kind: v["kind"].as_str().unwrap_or_default().to_owned(),
                    environments: v["environments"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    checked_at: chrono::Utc::now(),
                }))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(None),
            _ => Err(()),
        }
    }

    fn remember(&self, hash: &str, answer: Option<KnownToken>) {
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.insert(hash.to_owned(), answer);
        let valid: HashMap<&String, &KnownToken> =
            tokens.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))).collect();
        if let Ok(bytes) = serde_json::to_vec(&valid) {
            let tmp = self.tokens_path.with_extension("tmp");
            if std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, &self.tokens_path))
                .is_err()
            {
                tracing::warn!(path = %self.tokens_path.display(), "could not save known tokens");
            }
        }
    }

    fn resolve(&self, key: &str, ctx: &Context) -> (StatusCode, Value) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        match self.sdk.evaluate(key, ctx) {
            None => (
                StatusCode::NOT_FOUND,
                json!({"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": format!("flag {key:?} is not served in {}", self.environment)}),
            ),
            Some(e) => ofrep::resolution_json(
                key,
                &e.value,
                &e.variant,
                e.reason,
                e.rule.as_deref(),
                e.error,
            ),
        }
    }

    /// Seconds since the configuration was last known current (0 while connected).
    fn stale_seconds(&self) -> f64 {
        let st = self.sdk.status();
        if st.connected {
            return 0.0;
        }
        let since = st.current_at.unwrap_or(self.started_at);
        (chrono::Utc::now() - since).num_milliseconds().max(0) as f64 / 1000.0
    }
}

const EVAL_KINDS: &[&str] = &["client-sdk", "server-sdk", "admin"];

async fn evaluate_one(
    State(edge): State<Arc<Edge>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(s) = edge.authorise(&headers, EVAL_KINDS).await {
        return s.into_response();
    }
    let (ctx, _) = match ofrep::request_context(&body, Some(&key)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (status, v) = edge.resolve(&key, &ctx);
    (status, axum::Json(v)).into_response()
}

async fn evaluate_bulk(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(s) = edge.authorise(&headers, EVAL_KINDS).await {
        return s.into_response();
    }
    let (ctx, raw) = match ofrep::request_context(&body, None) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let version = edge.sdk.status().last_event_id.unwrap_or(0);
    let etag = format!(
        "\"{}\"",
        &wavegate_core::audit::sha256_hex(&format!(
            "edge\n{version}\n{}\n{}",
            edge.environment,
            wavegate_core::canonical::canonical_json(&raw)
        ))[..32]
    );
    let etag_value =
        HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    // As on the server: no 304 where an answer may change with the clock alone, unless the
    // caller fixes the time in its context.
    let time_free =
        raw.get(wavegate_core::context::CURRENT_TIME).is_some() || !edge.sdk.time_dependent();
    if time_free
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    let flags: Vec<Value> = edge.sdk.flag_keys().iter().map(|k| edge.resolve(k, &ctx).1).collect();
    let mut resp =
        (StatusCode::OK, axum::Json(json!({"flags": flags, "metadata": {}}))).into_response();
    if time_free {
        resp.headers_mut().insert(header::ETAG, etag_value);
    }
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<Value>,
}

async fn events(State(edge): State<Arc<Edge>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(s) = edge.authorise(&headers, &["server-sdk", "admin"]).await {
        return s.into_response();
    }
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({"code": "bad_request", "message": format!("invalid request body: {e}")}),
                ),
            )
                .into_response();
        }
    };
    if batch.events.len() > 10_000 {
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"code": "invalid", "message": "at most 10000 events per batch", "field": "events"})))
            .into_response();
    }
    if let Some(i) = batch
        .events
        .iter()
        .position(|e| !e.is_object() || !e["flag"].is_string() || !e["type"].is_string())
    {
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"code": "invalid", "message": format!("events[{i}]: an event is an object with type and flag"), "field": format!("events[{i}]")})))
            .into_response();
    }
    let n = batch.events.len();
    edge.events_accepted.fetch_add(n as u64, Ordering::Relaxed);
    edge.sdk.report(batch.events);
    (StatusCode::ACCEPTED, axum::Json(json!({"queued": n}))).into_response()
}

async fn readyz(State(edge): State<Arc<Edge>>) -> Response {
    let st = edge.sdk.status();
    let stale = edge.stale_seconds();
    let too_stale = edge.max_stale.is_some_and(|m| stale > m.as_secs_f64());
    let ready = st.source != Source::None && !too_stale;
    let body = json!({
        "ready": ready,
        "source": st.source,
        "connected": st.connected,
        "stale_seconds": stale,
        "flags": st.flags,
        "last_event_id": st.last_event_id,
        "last_error": st.last_error,
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(edge): State<Arc<Edge>>) -> Response {
    let st = edge.sdk.status();
    let text = format!(
        "# HELP wavegate_edge_connected 1 while the upstream stream is connected.\n\
         # TYPE wavegate_edge_connected gauge\nwavegate_edge_connected {}\n\
         # HELP wavegate_edge_stale_seconds Seconds since the configuration was last known current (0 while connected).\n\
         # TYPE wavegate_edge_stale_seconds gauge\nwavegate_edge_stale_seconds {}\n\
         # HELP wavegate_edge_flags Flags being served.\n\
         # TYPE wavegate_edge_flags gauge\nwavegate_edge_flags {}\n\
         # HELP wavegate_edge_serving_from_disk 1 while serving the snapshot file (upstream not reached since start).\n\
         # TYPE wavegate_edge_serving_from_disk gauge\nwavegate_edge_serving_from_disk {}\n\
         # HELP wavegate_edge_evaluations_total Evaluations answered.\n\
         # TYPE wavegate_edge_evaluations_total counter\nwavegate_edge_evaluations_total {}\n\
         # HELP wavegate_edge_events_accepted_total Events accepted for forwarding.\n\
         # TYPE wavegate_edge_events_accepted_total counter\nwavegate_edge_events_accepted_total {}\n\
         # HELP wavegate_edge_events_queued Events waiting to be forwarded.\n\
         # TYPE wavegate_edge_events_queued gauge\nwavegate_edge_events_queued {}\n\
         # HELP wavegate_edge_events_dropped_total Events dropped (queue full while the upstream was unreachable, or refused by it).\n\
         # TYPE wavegate_edge_events_dropped_total counter\nwavegate_edge_events_dropped_total {}\n",
        u8::from(st.connected),
        edge.stale_seconds(),
        st.flags,
        u8::from(st.source == Source::Disk),
        edge.evaluations.load(Ordering::Relaxed),
        edge.events_accepted.load(Ordering::Relaxed),
        st.queued_events,
        st.dropped_events,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
