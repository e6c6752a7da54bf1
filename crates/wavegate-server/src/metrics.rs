//! Prometheus metrics: request counts and latency by route, evaluations by flag and reason.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvalLabels {
    flag: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlacedLabels {
    source: String,
    placed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    route: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    how: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RowLabels {
    row: String,
}

/// Marks a request that came in on `/metrics`' own listener ([`crate::metrics_app`]).
#[derive(Debug, Clone, Copy)]
pub struct OwnListener;

/// The server's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    evaluations: Family<EvalLabels, Counter>,
    /// Open `/api/v1/stream` connections.
    pub stream_subscribers: prometheus_client::metrics::gauge::Gauge,
    stream_dropped: Family<DropLabels, Counter>,
    /// 1 while this replica leads the controller.
    pub leader: prometheus_client::metrics::gauge::Gauge,
    /// The leadership epoch held (0 when standing by).
    pub leader_epoch: prometheus_client::metrics::gauge::Gauge,
    /// 1 while the storage takes writes (as `/readyz` last found).
    pub storage_writable: prometheus_client::metrics::gauge::Gauge,
    /// 1 while the audit chain verifies.
    pub audit_chain_ok: prometheus_client::metrics::gauge::Gauge,
    /// Head rows refused because they do not match their audit entries, by `kind:key`.
    audit_refused: Family<RowLabels, prometheus_client::metrics::gauge::Gauge>,
    /// Reported events by where they went (counted, stale, unattributed).
    events_placed: Family<PlacedLabels, Counter>,
    /// Notifications queued.
    pub notifications_queued: Counter,
    /// Notifications delivered.
    pub notifications_sent: Counter,
    /// Notifications given up on after their last attempt.
    pub notifications_failed: Counter,
    /// Snapshots swapped in, by how they were made (`full`: every flag read and compiled
    /// again; `patch`: only the flags a write changed).
    snapshot_builds: Family<BuildLabels, Counter>,
    /// Per subscriber, the time from a change's commit being heard until its event was handed
    /// to the subscriber's connection.
    fanout: Histogram,
    /// For the latest change sent on the streams, the longest any subscriber has waited so far.
    fanout_slowest: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    /// The change [`Metrics::fanout_slowest`] is about.
    fanout_seq: std::sync::atomic::AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        let evaluations = Family::<EvalLabels, Counter>::default();
        registry.register(
            "wavegate_http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "wavegate_http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "wavegate_evaluations",
            "Flag evaluations by flag and reason",
            evaluations.clone(),
        );
        let stream_subscribers = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "wavegate_stream_subscribers",
            "Open server-sent-event stream connections",
            stream_subscribers.clone(),
        );
        let stream_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "wavegate_stream_dropped",
            "Streams the server ended by route and reason: slow (the subscriber read nothing of \
             its full queue), revoked (its token was revoked), store (the store could not be read)",
            stream_dropped.clone(),
        );
        let leader = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "wavegate_controller_leader",
            "1 while this replica leads the controller, 0 while it stands by",
            leader.clone(),
        );
        let leader_epoch = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "wavegate_controller_leader_epoch",
            "The controller leadership epoch this replica holds (0 when standing by)",
            leader_epoch.clone(),
        );
        let storage_writable = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "wavegate_storage_writable",
            "1 while the storage takes writes, 0 while it cannot (full disk, read-only, outage)",
            storage_writable.clone(),
        );
        let audit_chain_ok = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "wavegate_audit_chain_ok",
            "1 while the audit chain verifies, 0 once an entry does not",
            audit_chain_ok.clone(),
        );
        let audit_refused =
            Family::<RowLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "wavegate_audit_refused_rows",
            "Head rows not served because they no longer match their audit entries (1 per row)",
            audit_refused.clone(),
        );
        let events_placed = Family::<PlacedLabels, Counter>::default();
        registry.register(
            "wavegate_events_placed",
            "Reported exposures and outcomes of flags under a live rollout, by source and where \
             they went: counted (in an arm), stale (produced by an earlier wave's configuration), \
             unattributed (could not be placed in a wave)",
            events_placed.clone(),
        );
        let notifications_queued = Counter::default();
        registry.register(
            "wavegate_notifications_queued",
            "Notifications queued for delivery",
            notifications_queued.clone(),
        );
        let notifications_sent = Counter::default();
        registry.register(
            "wavegate_notifications_delivered",
            "Notifications a receiver accepted (2xx)",
            notifications_sent.clone(),
        );
        let notifications_failed = Counter::default();
        registry.register(
            "wavegate_notifications_failed",
            "Notifications given up on after their last attempt",
            notifications_failed.clone(),
        );
        let snapshot_builds = Family::<BuildLabels, Counter>::default();
        registry.register(
            "wavegate_snapshot_builds",
            "Configuration snapshots swapped in, by how they were made: full (every flag read \
             and compiled again: after segment or environment changes, or changes of another \
             replica's) or patch (only the flags a write here changed)",
            snapshot_builds.clone(),
        );
        // 0.25 ms to about 2 s, each bucket 25% wider than the one before.
        let fanout = Histogram::new(exponential_buckets(0.000_25, 1.25, 41));
        registry.register(
            "wavegate_stream_fanout_seconds",
            "Per /api/v1/stream subscriber: the time from the change feed hearing a commit until \
             the change's event was handed to the subscriber's connection (the server's own part \
             of propagation; replays after a reconnect are not counted)",
            fanout.clone(),
        );
        let fanout_slowest = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "wavegate_stream_fanout_slowest_seconds",
            "For the latest change sent on /api/v1/stream: the time from the change feed hearing \
             its commit until its event was handed to the last subscriber's connection so far",
            fanout_slowest.clone(),
        );
        Metrics {
            fanout,
            fanout_slowest,
            fanout_seq: std::sync::atomic::AtomicI64::new(0),
            snapshot_builds,
            storage_writable,
            audit_chain_ok,
            audit_refused,
            events_placed,
            notifications_queued,
            notifications_sent,
            notifications_failed,
            registry,
            requests,
            latency,
            evaluations,
            stream_subscribers,
            stream_dropped,
            leader,
            leader_epoch,
        }
    }
}

impl Metrics {
    /// Counts one evaluation.
    pub fn evaluation(&self, flag: &str, reason: &str) {
        self.evaluations
            .get_or_create(&EvalLabels { flag: flag.to_owned(), reason: reason.to_owned() })
            .inc();
    }

    /// Counts `n` reported events from `source` (`events`, `otlp`) that went to `placed`.
    pub fn events_placed(&self, source: &str, placed: &str, n: u64) {
        if n > 0 {
            let labels = PlacedLabels { source: source.to_owned(), placed: placed.to_owned() };
            self.events_placed.get_or_create(&labels).inc_by(n);
        }
    }

    /// Counts a stream the server ended (`reason`: slow, revoked, store).
    pub fn stream_dropped(&self, route: &str, reason: &str) {
        self.stream_dropped
            .get_or_create(&DropLabels { route: route.to_owned(), reason: reason.to_owned() })
            .inc();
    }

    /// How many streams of `route` the server ended for `reason`.
    pub fn streams_dropped(&self, route: &str, reason: &str) -> u64 {
        self.stream_dropped
            .get(&DropLabels { route: route.to_owned(), reason: reason.to_owned() })
            .map_or(0, |c| c.get())
    }

    /// Counts a snapshot swapped in (`how`: `full` or `patch`).
    pub fn snapshot_built(&self, how: &str) {
        self.snapshot_builds.get_or_create(&BuildLabels { how: how.to_owned() }).inc();
    }

    /// How many snapshots were swapped in `how` (`full` or `patch`).
    pub fn snapshots_built(&self, how: &str) -> u64 {
        self.snapshot_builds.get(&BuildLabels { how: how.to_owned() }).map_or(0, |c| c.get())
    }

    /// Counts one subscriber's copy of a change handed to its connection.
    pub fn fanned_out(&self, heard: &crate::runtime::feed::Heard) {
        use std::sync::atomic::Ordering;
        let (took, slowest) = heard.reached();
        self.fanout.observe(took.as_secs_f64());
        if self.fanout_seq.fetch_max(heard.seq, Ordering::Relaxed) <= heard.seq {
            self.fanout_slowest.set(slowest.as_secs_f64());
        }
    }

    /// Sets the audit gauges from the record's state.
    pub fn audit(&self, chain_ok: bool, refused: &[String]) {
        self.audit_chain_ok.set(i64::from(chain_ok));
        self.audit_refused.clear();
        for row in refused {
            self.audit_refused.get_or_create(&RowLabels { row: row.clone() }).set(1);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// Middleware: records every request's route, status and latency.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &metrics;
    m.latency
        .get_or_create(&RouteLabels { route: route.clone() })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels { method, route, status: resp.status().as_u16() })
        .inc();
    resp
}
