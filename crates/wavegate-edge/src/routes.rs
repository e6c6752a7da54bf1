//! The relay's HTTP application: the protocol routers, events forwarding, health, readiness
//! with staleness, and metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_protocols::auth::{self, Shapes};
use wavegate_protocols::{FlagSource, Protocols};
use wavegate_sdk::Source;

use crate::source::EdgeSource;

/// Largest request body accepted (event batches are the large ones).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most events one batch may carry (as upstream).
const MAX_EVENTS: usize = 10_000;

/// What the relay's handlers reach.
#[derive(Clone)]
pub(crate) struct EdgeState {
    pub(crate) source: Arc<EdgeSource>,
    pub(crate) max_stale: Option<Duration>,
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
}

impl FromRef<EdgeState> for Protocols {
    fn from_ref(state: &EdgeState) -> Protocols {
        Protocols(state.source.clone())
    }
}

impl EdgeState {
    /// Seconds since a feed's configuration was last known current (0 while connected).
    fn stale_seconds(&self, st: &wavegate_sdk::Status) -> f64 {
        if st.connected {
            return 0.0;
        }
        let since = st.current_at.unwrap_or(self.started_at);
        (chrono::Utc::now() - since).num_milliseconds().max(0) as f64 / 1000.0
    }

    /// Each environment's status and staleness, in the order served.
    fn statuses(&self) -> Vec<(&str, wavegate_sdk::Status, f64)> {
        self.source
            .feeds
            .iter()
            .map(|f| {
                let st = f.sdk.status();
                let stale = self.stale_seconds(&st);
                (f.environment.as_str(), st, stale)
            })
            .collect()
    }
}

/// The application, with the same hardening as the server: unnormalised paths refused before
/// routing, CORS for browser clients (with `ETag` exposed).
pub(crate) fn app(state: EdgeState) -> Router {
    let routes = Router::new()
        .merge(wavegate_protocols::router())
        .route("/api/v1/events", post(events))
        .route("/ofrep/v1/events", get(crate::events::ofrep_events))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    // Around the whole router once, as on the server (not copied into every route).
    let outer = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(wavegate_protocols::http::reject_unnormalised_paths))
        .layer(wavegate_protocols::http::cors(&[]))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .service(routes);
    Router::new().fallback_service(outer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<Value>,
}

fn invalid(message: String, field: String) -> Response {
    let body = json!({"code": "invalid", "message": message, "field": field});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// `POST /api/v1/events`: checked for shape here, queued, and sent upstream in batches.
async fn events(State(state): State<EdgeState>, headers: HeaderMap, body: Bytes) -> Response {
    let source: &dyn FlagSource = &*state.source;
    let grant = match auth::authorise(source, &headers, auth::READ_RULES, Shapes::Bare).await {
        Ok(g) => g,
        Err(d) => return d.status().into_response(),
    };
    // The grant names an environment this relay serves.
    let Some(feed) = state.source.feed(&grant.environment) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            let message = format!("invalid request body: {e}");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"code": "bad_request", "message": message})),
            )
                .into_response();
        }
    };
    if batch.events.len() > MAX_EVENTS {
        return invalid(format!("at most {MAX_EVENTS} events per batch"), "events".into());
    }
    if let Some(i) = batch
        .events
        .iter()
        .position(|e| !e.is_object() || !e["flag"].is_string() || !e["type"].is_string())
    {
        return invalid(
            format!("events[{i}]: an event is an object with type and flag"),
            format!("events[{i}]"),
        );
    }
    let n = batch.events.len();
    // A retry of a batch already queued (its answer lost) is not queued again; the upstream
    // batches carry keys of their own.
    if let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        let mut recent =
            state.source.recent_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !recent.first_time(key) {
            return (StatusCode::ACCEPTED, Json(json!({"queued": 0, "duplicate": true})))
                .into_response();
        }
    }
    state.source.events_accepted.fetch_add(n as u64, Ordering::Relaxed);
    // An event the application did not stamp gets the time the edge received it, so the
    // server can still tell it from events of a later wave however long it stays queued here.
    let received = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut events = batch.events;
    for e in &mut events {
        if let Some(m) = e.as_object_mut()
            && !m.contains_key("at")
        {
            m.insert("at".into(), Value::String(received.clone()));
        }
    }
    feed.sdk.report(events);
    (StatusCode::ACCEPTED, Json(json!({"queued": n}))).into_response()
}

/// Ready when every environment has a configuration that is not too stale. The top-level
/// fields sum up the environments (the worst staleness, connected only if all are, the first
/// environment's source and error); `environments` has each.
async fn readyz(State(state): State<EdgeState>) -> Response {
    let statuses = state.statuses();
    let mut ready = true;
    let mut each = serde_json::Map::new();
    for (env, st, stale) in &statuses {
        let too_stale = state.max_stale.is_some_and(|m| *stale > m.as_secs_f64());
        let env_ready = st.source != Source::None && !too_stale;
        ready &= env_ready;
        each.insert(
            (*env).to_owned(),
            json!({
                "ready": env_ready,
                "source": st.source,
                "connected": st.connected,
                "stale_seconds": stale,
                "flags": st.flags,
                "last_event_id": st.last_event_id,
                "last_error": st.last_error,
            }),
        );
    }
    let first = &statuses[0].1;
    // The least current source of any environment: nothing, else the disk, else the stream.
    let rank = |s: Source| match s {
        Source::None => 0,
        Source::Disk => 1,
        Source::Stream => 2,
    };
    let worst = statuses.iter().map(|(_, st, _)| st.source).min_by_key(|s| rank(*s));
    let body = json!({
        "ready": ready,
        "source": worst,
        "connected": statuses.iter().all(|(_, st, _)| st.connected),
        "stale_seconds": statuses.iter().map(|(_, _, s)| *s).fold(0.0, f64::max),
        "flags": statuses.iter().map(|(_, st, _)| st.flags).sum::<usize>(),
        "last_event_id": first.last_event_id,
        "last_error": statuses.iter().find_map(|(_, st, _)| st.last_error.clone()),
        "environments": each,
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// The relay's metrics, summed over its environments (connected only if all are, the worst
/// staleness), and per environment with an `environment` label.
async fn metrics(State(state): State<EdgeState>) -> Response {
    let statuses = state.statuses();
    let connected = statuses.iter().all(|(_, st, _)| st.connected);
    let stale = statuses.iter().map(|(_, _, s)| *s).fold(0.0, f64::max);
    let flags: usize = statuses.iter().map(|(_, st, _)| st.flags).sum();
    let from_disk = statuses.iter().any(|(_, st, _)| st.source == Source::Disk);
    let queued: usize = statuses.iter().map(|(_, st, _)| st.queued_events).sum();
    let dropped: u64 = statuses.iter().map(|(_, st, _)| st.dropped_events).sum();
    let mut text = format!(
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
        u8::from(connected),
        stale,
        flags,
        u8::from(from_disk),
        state.source.evaluations.load(Ordering::Relaxed),
        state.source.events_accepted.load(Ordering::Relaxed),
        queued,
        dropped,
    );
    text.push_str(
        "# HELP wavegate_edge_environment_connected 1 while the environment's upstream stream is connected.\n\
         # TYPE wavegate_edge_environment_connected gauge\n",
    );
    for (env, st, _) in &statuses {
        let line = format!(
            "wavegate_edge_environment_connected{{environment=\"{env}\"}} {}\n",
            u8::from(st.connected)
        );
        text.push_str(&line);
    }
    text.push_str(
        "# HELP wavegate_edge_environment_stale_seconds Seconds since the environment's configuration was last known current.\n\
         # TYPE wavegate_edge_environment_stale_seconds gauge\n",
    );
    for (env, _, stale) in &statuses {
        text.push_str(&format!(
            "wavegate_edge_environment_stale_seconds{{environment=\"{env}\"}} {stale}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
