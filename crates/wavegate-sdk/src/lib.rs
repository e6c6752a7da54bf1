//! wavegate's Rust SDK: evaluates flags locally with `wavegate-core` (the same evaluation the
//! server runs), kept current by the server's `GET /api/v1/stream`; falls back to the last
//! snapshot it wrote to disk when the server is unreachable (also after a restart); reports
//! exposures and outcomes in batches to `POST /api/v1/events`.
//!
//! ```no_run
//! # async fn run() -> Result<(), wavegate_sdk::Error> {
//! use wavegate_sdk::{Builder, Context};
//! let client = Builder::new("http://127.0.0.1:8470", "wg_…server-sdk-token", "prod")
//!     .snapshot_path("/var/lib/myapp/wavegate-prod.json")
//!     .start()?;
//! client.wait_ready(std::time::Duration::from_secs(5)).await?;
//! let ctx = Context::with_key("user-42");
//! if client.bool_value("new-checkout", &ctx, false) {
//!     client.exposure("new-checkout", "on", &ctx);
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! Needs a tokio runtime; the token must be a `server-sdk` (or admin) token, because the
//! stream carries rules and segment members.
#![warn(missing_docs)]

pub mod config;
mod report;
mod stream;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio::sync::watch;
pub use wavegate_core::context::AttrValue;
use wavegate_core::context::CURRENT_TIME;
pub use wavegate_core::{Context, EvalError, Reason};

use crate::config::{Compiled, Specs};

/// SDK errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are unusable.
    #[error("invalid SDK settings: {0}")]
    Config(String),
    /// No configuration arrived (from the server or the snapshot file) in time.
    #[error("no configuration within {0:?}: {1}")]
    NotReady(Duration, String),
    /// Sending events failed.
    #[error("reporting events failed: {0}")]
    Report(String),
}

/// Where the configuration being evaluated came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Nothing yet: every evaluation returns `None` (callers get their defaults).
    #[default]
    None,
    /// The snapshot file (the server has not been reached since start).
    Disk,
    /// The server's stream.
    Stream,
}

/// What the SDK knows about its own freshness.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// Where the configuration came from.
    pub source: Source,
    /// Whether the stream is connected now.
    pub connected: bool,
    /// When the stream was last known current (now, while connected).
    pub current_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last stream event applied.
    pub last_event_id: Option<i64>,
    /// Flags being served.
    pub flags: usize,
    /// The last connection or reporting error.
    pub last_error: Option<String>,
    /// Events waiting to be reported.
    pub queued_events: usize,
    /// Events dropped because the queue was full while the server was unreachable.
    pub dropped_events: u64,
}

/// One evaluation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The value served.
    pub value: Value,
    /// The variant's name.
    pub variant: String,
    /// Why.
    pub reason: Reason,
    /// The rule that decided, if one did.
    pub rule: Option<String>,
    /// Set when evaluation could not proceed (the default variant is served).
    pub error: Option<EvalError>,
    /// The flag version that answered (it changes at every wave of a rollout); events
    /// reported with it count in the wave that produced them.
    pub version: Option<i64>,
    /// When it was evaluated.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Settings; [`Builder::start`] makes a [`Client`].
#[derive(Debug, Clone)]
pub struct Builder {
    url: String,
    token: String,
    environment: String,
    snapshot_path: Option<PathBuf>,
    flush_interval: Duration,
    max_batch: usize,
    max_queue: usize,
    reconnect_base: Duration,
    reconnect_max: Duration,
    idle_timeout: Duration,
}

impl Builder {
    /// A client of the server at `url` (e.g. `http://127.0.0.1:8470`) with a `server-sdk`
    /// `token`, evaluating `environment`.
    pub fn new(
        url: impl Into<String>,
        token: impl Into<String>,
        environment: impl Into<String>,
    ) -> Builder {
        Builder {
            url: url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            environment: environment.into(),
            snapshot_path: None,
            flush_interval: Duration::from_secs(1),
            max_batch: 1000,
            max_queue: 100_000,
            reconnect_base: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
        }
    }

    /// Keep the last good configuration in this file, and start from it when the server is
    /// unreachable.
    pub fn snapshot_path(mut self, path: impl Into<PathBuf>) -> Builder {
        self.snapshot_path = Some(path.into());
        self
    }

    /// How often queued events are sent (default 1 s; a full batch goes at once).
    pub fn flush_interval(mut self, every: Duration) -> Builder {
        self.flush_interval = every;
        self
    }

    /// Most events per request (default 1000, at most 10 000).
    pub fn max_batch(mut self, n: usize) -> Builder {
        self.max_batch = n;
        self
    }

    /// Most events held while the server is unreachable (default 100 000; the oldest go first).
    pub fn max_queue(mut self, n: usize) -> Builder {
        self.max_queue = n;
        self
    }

    /// Reconnection delays: the first, and the most (doubling between; default 250 ms, 10 s).
    /// Each wait is drawn between half of that step and all of it, so many clients that lost
    /// the server at once do not all come back at once.
    pub fn reconnect_delay(mut self, first: Duration, most: Duration) -> Builder {
        self.reconnect_base = first;
        self.reconnect_max = most;
        self
    }

    /// Reconnect when the stream is silent this long (the server sends heartbeats every 15 s
    /// by default; default 45 s).
    pub fn idle_timeout(mut self, idle: Duration) -> Builder {
        self.idle_timeout = idle;
        self
    }

    /// Validates the settings, loads the snapshot file if there is one, and starts the stream
    /// and reporting tasks on the current tokio runtime. Does not wait for the server: see
    /// [`Client::wait_ready`].
    pub fn start(self) -> Result<Client, Error> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| Error::Config(format!("url {:?}: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config(format!("url {:?} must be http(s)", self.url)));
        }
        if self.token.trim().is_empty() {
            return Err(Error::Config("token is empty".into()));
        }
        if self.environment.trim().is_empty() {
            return Err(Error::Config("environment is empty".into()));
        }
        if self.max_batch == 0 || self.max_batch > 10_000 {
            return Err(Error::Config("max_batch must be 1 to 10000".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        let mut source = Source::None;
        let mut specs = Specs::new(&self.environment);
        if let Some(path) = &self.snapshot_path
            && path.exists()
        {
            match Specs::load(path, &self.environment) {
                Ok(s) => {
                    specs = s;
                    source = Source::Disk;
                }
                Err(e) => tracing::warn!(error = %e, "ignoring the snapshot file"),
            }
        }
        let compiled = specs.compile();
        let (version, _) = watch::channel(0u64);
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            settings: self,
            http,
            compiled: ArcSwap::from_pointee(compiled),
            state: Mutex::new(Shared { source, ..Shared::default() }),
            version,
            queue: Mutex::new(report::Queue::default()),
            flush_now: tokio::sync::Notify::new(),
            send_lock: tokio::sync::Mutex::new(()),
            shutdown,
        });
        let s = inner.clone();
        tokio::spawn(async move { stream::run(s).await });
        let r = inner.clone();
        tokio::spawn(async move { report::run(r).await });
        Ok(Client { inner })
    }
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub source: Source,
    pub connected: bool,
    pub current_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    pub dropped: u64,
}

pub(crate) struct Inner {
    pub settings: Builder,
    pub http: reqwest::Client,
    pub compiled: ArcSwap<Compiled>,
    pub state: Mutex<Shared>,
    /// Bumped after each configuration swap.
    pub version: watch::Sender<u64>,
    pub queue: Mutex<report::Queue>,
    pub flush_now: tokio::sync::Notify,
    /// Held while sending, so a flush waits for batches already on their way.
    pub send_lock: tokio::sync::Mutex<()>,
    pub shutdown: watch::Sender<bool>,
}

impl Inner {
    pub(crate) fn lock_state(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running SDK (cheap to clone; the tasks stop on [`Client::close`] or when the last clone
/// is dropped).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl Client {
    /// Waits until a configuration is being served (from the server, or from the snapshot file
    /// when the server cannot be reached within `timeout`).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Source, Error> {
        let mut rx = self.inner.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let source = self.inner.lock_state().source;
            if source == Source::Stream {
                return Ok(source);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    let st = self.inner.lock_state();
                    return match st.source {
                        Source::None => Err(Error::NotReady(
                            timeout,
                            st.last_error.clone().unwrap_or_else(|| "nothing received".into()),
                        )),
                        s => Ok(s),
                    };
                }
            }
        }
    }

    /// Evaluates `key` for `ctx` locally; `None` when the flag is unknown (or not yet loaded).
    /// Like the server, fills in `currentTime` and random entropy when the context has none.
    pub fn evaluate(&self, key: &str, ctx: &Context) -> Option<Evaluation> {
        let compiled = self.inner.compiled.load();
        let flag = compiled.flags.get(key)?;
        let needs_time = !ctx.has_current_time();
        let needs_entropy = ctx.entropy().is_none();
        let at = chrono::Utc::now();
        let owned;
        let ctx = if needs_time || needs_entropy {
            let mut c = ctx.clone();
            if needs_time {
                let now = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                c.set(CURRENT_TIME, AttrValue::String(now));
            }
            if needs_entropy {
                c = c.with_entropy(rand::random());
            }
            owned = c;
            &owned
        } else {
            ctx
        };
        let r = wavegate_core::evaluate_in(flag, ctx, &compiled.flags);
        Some(Evaluation {
            value: r.value.clone(),
            variant: r.variant.to_owned(),
            reason: r.reason,
            rule: r.rule.map(str::to_owned),
            error: r.error,
            version: flag.version(),
            at,
        })
    }

    /// A boolean flag's value, or `default` when it is unknown or not boolean.
    pub fn bool_value(&self, key: &str, ctx: &Context, default: bool) -> bool {
        self.evaluate(key, ctx).and_then(|e| e.value.as_bool()).unwrap_or(default)
    }

    /// A string flag's value, or `default`.
    pub fn string_value(&self, key: &str, ctx: &Context, default: &str) -> String {
        self.evaluate(key, ctx)
            .and_then(|e| e.value.as_str().map(str::to_owned))
            .unwrap_or_else(|| default.to_owned())
    }

    /// A number flag's value, or `default`.
    pub fn number_value(&self, key: &str, ctx: &Context, default: f64) -> f64 {
        self.evaluate(key, ctx).and_then(|e| e.value.as_f64()).unwrap_or(default)
    }

    /// The configuration being served: compiled flags and the specs they came from (for
    /// relays that re-serve it in another format).
    pub fn config(&self) -> Arc<config::Compiled> {
        self.inner.compiled.load_full()
    }

    /// The keys of the flags being served, sorted.
    pub fn flag_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.inner.compiled.load().flags.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Whether any served flag's answer depends on `currentTime` (so the same context may get
    /// a different answer later without a configuration change).
    pub fn time_dependent(&self) -> bool {
        self.inner.compiled.load().flags.values().any(|f| f.reads_current_time())
    }

    /// The version counter, bumped after each configuration swap (to wait for changes).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// Freshness and queue figures.
    pub fn status(&self) -> Status {
        let compiled = self.inner.compiled.load();
        let queued = self.inner.queue.lock().map(|q| q.len()).unwrap_or(0);
        let st = self.inner.lock_state();
        Status {
            source: st.source,
            connected: st.connected,
            current_at: if st.connected { Some(chrono::Utc::now()) } else { st.current_at },
            last_event_id: compiled.specs.last_event_id,
            flags: compiled.flags.len(),
            last_error: st.last_error.clone(),
            queued_events: queued,
            dropped_events: st.dropped,
        }
    }

    /// Records that `ctx` was shown `variant` of `flag` (reported in the next batch), stamped
    /// with the flag's current version and the time now. Call it right after evaluating, or
    /// use [`Client::exposure_of`], which stamps the evaluation's own version and time.
    pub fn exposure(&self, flag: &str, variant: &str, ctx: &Context) {
        let (version, at) = self.stamp(flag);
        self.report(vec![event("exposure", flag, variant, ctx, version, at, None)]);
    }

    /// Records that `ctx` was shown `evaluation` of `flag`: the server counts it in the wave
    /// whose configuration produced it, however late the batch arrives.
    pub fn exposure_of(&self, flag: &str, evaluation: &Evaluation, ctx: &Context) {
        let e = evaluation;
        self.report(vec![event("exposure", flag, &e.variant, ctx, e.version, e.at, None)]);
    }

    /// Records an outcome for `ctx` under `variant` of `flag`: whether it erred, its latency,
    /// and any other named metrics (stamped like [`Client::exposure`]).
    pub fn outcome(&self, flag: &str, variant: &str, ctx: &Context, outcome: &Outcome) {
        let (version, at) = self.stamp(flag);
        self.report(vec![event("outcome", flag, variant, ctx, version, at, Some(outcome))]);
    }

    /// Records an outcome for `ctx` after `evaluation` of `flag` (stamped like
    /// [`Client::exposure_of`]).
    pub fn outcome_of(
        &self,
        flag: &str,
        evaluation: &Evaluation,
        ctx: &Context,
        outcome: &Outcome,
    ) {
        let e = evaluation;
        let o = Some(outcome);
        self.report(vec![event("outcome", flag, &e.variant, ctx, e.version, e.at, o)]);
    }

    /// The version of `flag` served now, and the time.
    fn stamp(&self, flag: &str) -> (Option<i64>, chrono::DateTime<chrono::Utc>) {
        let version = self.inner.compiled.load().flags.get(flag).and_then(|f| f.version());
        (version, chrono::Utc::now())
    }

    /// Queues events in the `POST /api/v1/events` format as they are (an edge relay forwards
    /// its applications' events this way).
    pub fn report(&self, events: Vec<Value>) {
        let full = {
            let mut q = self.inner.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let dropped = q.push(events, self.inner.settings.max_queue);
            if dropped > 0 {
                self.inner.lock_state().dropped += dropped;
            }
            q.len() >= self.inner.settings.max_batch
        };
        if full {
            self.inner.flush_now.notify_one();
        }
    }

    /// Sends every queued event now; returns how many were sent.
    pub async fn flush(&self) -> Result<usize, Error> {
        report::flush_all(&self.inner).await
    }

    /// Flushes (best effort) and stops the background tasks.
    pub async fn close(self) {
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "events not reported at close");
        }
        let _ = self.inner.shutdown.send(true);
    }
}

/// An outcome's measurements.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Whether the operation failed.
    pub error: Option<bool>,
    /// How long it took.
    pub latency_ms: Option<f64>,
    /// Other named measurements.
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// One event in the `POST /api/v1/events` format.
fn event(
    kind: &str,
    flag: &str,
    variant: &str,
    ctx: &Context,
    version: Option<i64>,
    at: chrono::DateTime<chrono::Utc>,
    outcome: Option<&Outcome>,
) -> Value {
    let mut e = serde_json::json!({
        "type": kind, "flag": flag, "variant": variant, "context": context_json(ctx),
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(v) = version {
        e["version"] = serde_json::json!(v);
    }
    if let Some(o) = outcome {
        if let Some(err) = o.error {
            e["error"] = Value::Bool(err);
        }
        if let Some(ms) = o.latency_ms {
            e["latency_ms"] = serde_json::json!(ms);
        }
        if !o.metrics.is_empty() {
            e["metrics"] = serde_json::json!(o.metrics);
        }
    }
    e
}

fn context_json(ctx: &Context) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(k) = ctx.targeting_key() {
        m.insert("targetingKey".into(), Value::String(k.to_owned()));
    }
    for (name, v) in ctx.attributes() {
        let v = match v {
            AttrValue::String(s) => Value::String(s.clone()),
            AttrValue::Number(n) => serde_json::json!(n),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Structured => serde_json::json!({}),
        };
        m.insert(name.to_owned(), v);
    }
    Value::Object(m)
}
