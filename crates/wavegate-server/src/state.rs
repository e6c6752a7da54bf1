//! [`AppState`]: what every handler can reach.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::FromRef;
use tokio::sync::Mutex;
use wavegate_store::{Change, Head, Kind, Store, StoreResult};

use crate::clock::Clock;
use crate::http::auth::TokenCache;
use crate::metrics::Metrics;
use crate::record::Record;
use crate::runtime::feed::{Feed, FeedConfig};
use crate::snapshot::Snapshot;

/// Shared server state (cheap to clone): the store, clock, metrics, token cache and snapshot
/// every part reads, and one slice per concern. A handler that needs one slice takes it alone
/// (`State<Health>`, the protocols' [`crate::http::protocols::Protocols`]); the router's
/// state is this whole struct, and [`FromRef`] hands out the slices.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The compiled configuration evaluation reads.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Live tokens by hash.
    pub tokens: Arc<TokenCache>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Whether the storage takes writes (readiness), probed at most once a second.
    pub storage: Arc<crate::health::StorageHealth>,
    /// The audit chain as verified so far, vouching for every head that is shown or served.
    pub record: Arc<Record>,
    /// How often the whole record is verified again from the first entry.
    pub reverify_every: std::time::Duration,
    /// Where ingested events go: live rollouts and tracked adoption.
    pub routing: Routing,
    /// Requests this server sends out: checks, Prometheus, notifications.
    pub outbound: Outbound,
    /// Long-lived answers: the change feed, heartbeats, refetch notices, shutdown.
    pub streams: Streams,
    /// The controller's leadership among replicas.
    pub leadership: Leadership,
    /// Who may reach what beyond tokens: CORS origins for the admin API, `/metrics`' token and
    /// listener.
    pub access: Arc<crate::access::Access>,
    /// Keys artifacts may be signed with, for plans whose `release.signed_by` names them by id
    /// (`serve --trusted-keys`).
    pub trusted_keys: Arc<Vec<wavegate_rollout::signature::PublicKey>>,
    /// The operator's OSV data for vulnerability checks (`serve --osv-dir`).
    pub osv: Option<Arc<crate::osv::OsvData>>,
    reload_lock: Arc<Mutex<()>>,
}

/// Where event ingest sends what it counts (rebuilt by [`AppState::reload_live`]).
#[derive(Clone, Default)]
pub struct Routing {
    /// Live rollouts by (environment, flag), for routing events to arms.
    pub live: Arc<ArcSwap<HashMap<(String, String), LiveRollout>>>,
    /// Rollouts whose plan tracks adoption, by (environment, flag): the newest one that was
    /// not rolled back or aborted, while its tracking period lasts.
    pub adoption: Arc<ArcSwap<HashMap<(String, String), AdoptionTrack>>>,
    /// The day (since 1970-01-01, UTC) adoption rows were last pruned by the controller.
    pub adoption_pruned: Arc<std::sync::atomic::AtomicI64>,
    /// Events each token may post per second (`serve --events-per-token`; none by default
    /// here, 20,000 from `serve`).
    pub event_budget: Arc<crate::budget::TokenBudget>,
    /// How far clients' clocks may be off when an event is placed by its time alone
    /// (`serve --event-clock-skew`); `None`: `wavegate_rollout::arms::CLOCK_SKEW`.
    pub clock_skew: Option<chrono::Duration>,
}

/// Requests the server sends out, and how.
#[derive(Clone)]
pub struct Outbound {
    /// HTTP client for the URLs the operator gave `serve` (`--prometheus-url`).
    pub http: reqwest::Client,
    /// The client for URLs that arrived through the API (plan checks and webhook gates,
    /// guardrails' `prometheus_url`, notification targets), under the outbound policy
    /// (`serve --allow-outbound`).
    pub guard: crate::outbound::Guard,
    /// How plan checks are run (pause between retries, signing secret).
    pub checks: crate::outbound::checks::Checker,
    /// Default Prometheus base URL for guardrails with `source: prometheus`.
    pub prometheus_url: Option<String>,
    /// What `prometheus_url` needs: credentials, headers, a CA (`serve --prometheus-*`).
    pub prometheus_access: crate::outbound::prometheus::Access,
    /// How notifications are retried and timed out.
    pub notify: crate::runtime::notify::NotifyConfig,
    /// The URL people reach this server at, for links in notifications.
    pub public_url: Option<String>,
}

/// What long-lived answers (the dashboard stream, OFREP change notices) wait on.
#[derive(Clone)]
pub struct Streams {
    /// Committed changes, fanned out to live views.
    pub feed: Feed,
    /// Interval of the streams' heartbeat comments.
    pub heartbeat: std::time::Duration,
    /// The revision of the snapshot evaluation serves, bumped after each swap (OFREP refetch
    /// notices wait on it, so a client refetching after a notice sees the new configuration).
    pub config_rev: Arc<tokio::sync::watch::Sender<i64>>,
    /// Set when the server shuts down: long-lived responses end.
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// The open streams by token (the cap, revocation) and the snapshots they share.
    pub live: Arc<crate::http::sse::Live>,
    /// The cap per token and each subscriber's queue bound.
    pub limits: crate::http::sse::StreamLimits,
    /// Tickets for OFREP's event stream already issued, reused by bulk answers.
    pub tickets: Arc<wavegate_protocols::tickets::TicketCache>,
}

/// This replica's part in controller leadership.
#[derive(Clone)]
pub struct Leadership {
    /// This replica's name (in leadership records and logs).
    pub replica: String,
    /// True while this replica leads the controller (and so sends notifications).
    pub leading: Arc<std::sync::atomic::AtomicBool>,
    /// The leadership epoch this replica holds (0 while it stands by).
    pub epoch: Arc<std::sync::atomic::AtomicI64>,
    /// How long the leadership lease runs without a renewal (renewed every third of it);
    /// another replica takes over once it lapses.
    pub lease: std::time::Duration,
}

/// What the health and metrics endpoints read.
#[derive(Clone)]
pub struct Health {
    /// The store (probed for writability).
    pub store: Arc<dyn Store>,
    /// The cached probe result.
    pub storage: Arc<crate::health::StorageHealth>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// The audit record (its problems are named by `/readyz`).
    pub record: Arc<Record>,
}

impl FromRef<AppState> for Health {
    fn from_ref(s: &AppState) -> Health {
        Health {
            store: s.store.clone(),
            storage: s.storage.clone(),
            metrics: s.metrics.clone(),
            record: s.record.clone(),
        }
    }
}

impl FromRef<AppState> for Arc<crate::access::Access> {
    fn from_ref(s: &AppState) -> Arc<crate::access::Access> {
        s.access.clone()
    }
}

impl FromRef<AppState> for Streams {
    fn from_ref(s: &AppState) -> Streams {
        s.streams.clone()
    }
}

impl AppState {
    /// State over a store, loading the first snapshot.
    pub async fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> StoreResult<AppState> {
        // The whole chain is verified once at start; later entries as they arrive.
        let record = Arc::new(Record::default());
        record.catch_up(&*store).await?;
        let snapshot = Snapshot::load(&*store, &record).await?;
        let feed = Feed::start(store.clone(), record.clone(), FeedConfig::default()).await?;
        let state = AppState {
            store,
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            tokens: Arc::default(),
            metrics: Arc::default(),
            clock,
            storage: Arc::default(),
            record,
            reverify_every: std::time::Duration::from_secs(600),
            routing: Routing::default(),
            outbound: Outbound {
                http: reqwest::Client::new(),
                guard: crate::outbound::Guard::default(),
                checks: crate::outbound::checks::Checker::default(),
                prometheus_url: None,
                prometheus_access: crate::outbound::prometheus::Access::default(),
                notify: crate::runtime::notify::NotifyConfig::default(),
                public_url: None,
            },
            streams: Streams {
                feed,
                heartbeat: std::time::Duration::from_secs(15),
                config_rev: Arc::new(tokio::sync::watch::Sender::new(0)),
                closing: Arc::new(tokio::sync::watch::Sender::new(false)),
                live: Arc::default(),
                limits: crate::http::sse::StreamLimits::default(),
                tickets: Arc::default(),
            },
            leadership: Leadership {
                replica: default_replica_name(),
                leading: Arc::default(),
                epoch: Arc::default(),
                lease: crate::runtime::controller::DEFAULT_LEASE,
            },
            access: Arc::default(),
            trusted_keys: Arc::default(),
            osv: None,
            reload_lock: Arc::default(),
        };
        state.reload_live().await?;
        state.follow();
        crate::http::sse::follow_revocations(&state);
        Ok(state)
    }

    /// Keeps the snapshot and live-rollout table current with changes committed anywhere
    /// (another replica's included, through the store's change notices): flag, segment and
    /// environment changes rebuild the snapshot, rollout changes the routing table.
    fn follow(&self) {
        let state = self.clone();
        let mut rx = self.streams.feed.subscribe();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::{RecvError, TryRecvError};
            loop {
                // (config changed, live rollouts changed), or None to reload both.
                let mut seen: Vec<Option<(bool, bool)>> = Vec::new();
                let mut items = Vec::new();
                let note = |item: &crate::runtime::feed::FeedItem| match item {
                    crate::runtime::feed::FeedItem::Audit { entry, .. } => {
                        let target = entry["target"].as_str().unwrap_or("");
                        let config = ["flag:", "segment:", "environment:"]
                            .iter()
                            .any(|p| target.starts_with(p));
                        Some((config, target.starts_with("rollout:")))
                    }
                    crate::runtime::feed::FeedItem::Changed => Some((false, false)),
                };
                match rx.recv().await {
                    Ok(item) => {
                        seen.push(note(&item));
                        items.push(item);
                    }
                    Err(RecvError::Lagged(_)) => seen.push(None),
                    Err(RecvError::Closed) => return,
                }
                loop {
                    match rx.try_recv() {
                        Ok(item) => {
                            seen.push(note(&item));
                            items.push(item);
                        }
                        Err(TryRecvError::Lagged(_)) => seen.push(None),
                        Err(_) => break,
                    }
                }
                // A revoked token's streams end before a later change is announced to them
                // (`http::sse::follow_revocations` does it at once too; doing it twice is
                // harmless).
                let lagged = seen.iter().any(Option::is_none);
                crate::http::sse::revocations(&state, &items, lagged).await;
                let config = seen.iter().any(|s| s.is_none_or(|(c, _)| c));
                let live = seen.iter().any(|s| s.is_none_or(|(_, l)| l));
                // A write made here has patched its own change in already (reload_flags): a
                // snapshot that holds the store's revision and environments is not rebuilt
                // again, not even when the feed ran ahead of this follower (a write of
                // thousands of flags is thousands of audit entries, more than the feed keeps).
                let reloaded = if config { state.reload_if_behind().await } else { Ok(()) };
                if let Err(e) = reloaded {
                    tracing::warn!(error = %e, "could not reload the configuration");
                }
                if live && let Err(e) = state.reload_live().await {
                    tracing::warn!(error = %e, "could not reload live rollouts");
                }
            }
        });
    }

    /// Rebuilds the live-rollout routing table and the adoption-tracking table from the store.
    pub async fn reload_live(&self) -> StoreResult<()> {
        let mut map = HashMap::new();
        let mut adoption: HashMap<(String, String), AdoptionTrack> = HashMap::new();
        let now = self.clock.now();
        for row in self.store.rollouts(false).await? {
            let live = row.state == "running" || row.state == "paused";
            // Ended rollouts matter only while their adoption is tracked; most plans declare
            // none, so look before decoding the whole document.
            let tracks = row.doc.get("plan").and_then(|p| p.get("adoption")).is_some()
                && row.state != "rolled_back"
                && row.state != "aborted"
                && now - row.created_at < chrono::Duration::days(400);
            if !live && !tracks {
                continue;
            }
            let key = (row.environment.clone(), row.flag.clone());
            match serde_json::from_value::<wavegate_rollout::machine::Rollout>(row.doc) {
                Ok(r) => {
                    if let Some(spec) = r.plan.adoption.as_ref()
                        && tracks
                    {
                        let until = r.started_at + spec.track().to_chrono();
                        let newer = adoption.get(&key).is_none_or(|t| t.started_at < r.started_at);
                        if until > now && newer {
                            adoption.insert(
                                key.clone(),
                                AdoptionTrack {
                                    rollout: r.id.clone(),
                                    new_variant: r.plan.new_variant.clone(),
                                    spec: spec.clone(),
                                    started_at: r.started_at,
                                    until,
                                    wave: r.wave as i64,
                                },
                            );
                        }
                    }
                    if live {
                        map.insert(
                            key,
                            LiveRollout {
                                id: r.id.clone(),
                                wave: r.signal_wave() as i64,
                                new_variant: r.plan.new_variant.clone(),
                                control_variant: r.plan.control_variant.clone(),
                                since_version: r.wave_flag_version,
                                exposed_at: r.wave_exposed_at,
                                otel: r.plan.otel.clone().map(Arc::new),
                            },
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(rollout = %row.id, error = %e, "stored rollout does not decode")
                }
            }
        }
        self.routing.live.store(Arc::new(map));
        self.routing.adoption.store(Arc::new(adoption));
        Ok(())
    }

    /// Rebuilds the snapshot from the store (serialised, so the newest always wins).
    pub async fn reload(&self) -> StoreResult<()> {
        let _guard = self.reload_lock.lock().await;
        self.rebuild().await
    }

    async fn rebuild(&self) -> StoreResult<()> {
        let snap = Snapshot::load(&*self.store, &self.record).await?;
        self.swap(snap);
        self.metrics.snapshot_built("full");
        // Every flag was read and compiled again, and the snapshot before is gone.
        self.streams.live.freed();
        Ok(())
    }

    /// [`AppState::reload`] unless the snapshot already holds the store's revision and
    /// environments (a write here applied its own change already). Flag and segment changes
    /// move the revision; a new environment does not, so the names are compared too. A
    /// snapshot reads the revision before the heads, so it holds at least the revision it is
    /// labelled with.
    pub async fn reload_if_behind(&self) -> StoreResult<()> {
        let _guard = self.reload_lock.lock().await;
        let revision = self.store.revision().await?;
        let environments = self.store.environments().await?;
        let served = self.snapshot.load();
        if revision == served.revision
            && environments.iter().map(|e| &e.name).eq(served.environments.iter())
        {
            return Ok(());
        }
        self.rebuild().await
    }

    /// Holds every reload off until the [`Reloads`] is used up by
    /// [`AppState::reload_flags`]: taken before a write of flags, so the change feed, hearing
    /// of that write, waits for the writer's own patch instead of rebuilding everything.
    pub async fn hold_reloads(&self) -> Reloads {
        Reloads { _held: self.reload_lock.clone().lock_owned().await }
    }

    /// After a write that changed flags `keys` and nothing else (with reloads held since
    /// before it): when that write is the only change since the current snapshot (the
    /// revision moved by one), only those flags are read and compiled again
    /// ([`Snapshot::with_flags`]); otherwise everything is.
    pub async fn reload_flags(&self, held: Reloads, keys: &[&str]) -> StoreResult<()> {
        let _held = held;
        let current = self.snapshot.load_full();
        let revision = self.store.revision().await?;
        match after_write(current.revision, revision) {
            Reload::Current => Ok(()),
            Reload::Rebuild => self.rebuild().await,
            Reload::Patch => {
                let snap = current.with_flags(&*self.store, &self.record, keys, revision).await?;
                self.swap(snap);
                self.metrics.snapshot_built("patch");
                if keys.len() >= LARGE_WRITE {
                    self.streams.live.freed();
                }
                Ok(())
            }
        }
    }

    /// Serves `snap` from now on, and tells the streams when its revision moved.
    fn swap(&self, snap: Snapshot) {
        let revision = snap.revision;
        self.snapshot.store(Arc::new(snap));
        self.streams.config_rev.send_if_modified(|r| {
            let moved = *r != revision;
            *r = revision;
            moved
        });
    }

    /// The head of `kind:key` as the audit record vouches for it ([`Record::vouch`]).
    pub async fn head(&self, kind: Kind, key: &str) -> StoreResult<Option<Head>> {
        self.record.head(&*self.store, kind, key).await
    }

    /// Every head of `kind` the audit record vouches for.
    pub async fn heads(&self, kind: Kind, include_archived: bool) -> StoreResult<Vec<Head>> {
        self.record.heads(&*self.store, kind, include_archived).await
    }

    /// A change record by `who` now.
    pub fn change(&self, who: &crate::service::Who, reason: Option<String>) -> Change {
        Change { actor: who.name.clone(), via: who.via.clone(), reason, at: self.clock.now() }
    }
}

/// Reloads held off by a writer ([`AppState::hold_reloads`]) until it has patched its change in.
#[derive(Debug)]
pub struct Reloads {
    _held: tokio::sync::OwnedMutexGuard<()>,
}

/// What a reload after a write of flags does.
#[derive(Debug, PartialEq, Eq)]
enum Reload {
    /// The snapshot already holds the store's revision.
    Current,
    /// The write was the only change since the snapshot: patch its flags in.
    Patch,
    /// Something else changed too (another writer, another replica): rebuild.
    Rebuild,
}

/// Flags in one write from which the memory its request and patch freed is returned to the
/// system afterwards ([`crate::memory::after_bursts`]).
const LARGE_WRITE: usize = 100;

/// [`Reload`] for a snapshot `served` and the store's revision `stored` after the write (each
/// committed change moves the revision by one).
fn after_write(served: i64, stored: i64) -> Reload {
    if stored == served {
        Reload::Current
    } else if stored == served + 1 {
        Reload::Patch
    } else {
        Reload::Rebuild
    }
}

#[cfg(test)]
mod reload_tests {
    use super::{Reload, after_write};

    #[test]
    fn only_a_write_that_is_the_one_change_since_the_snapshot_is_patched_in() {
        assert_eq!(after_write(7, 7), Reload::Current);
        assert_eq!(after_write(7, 8), Reload::Patch);
        assert_eq!(after_write(7, 9), Reload::Rebuild, "someone else wrote too");
        assert_eq!(after_write(7, 3), Reload::Rebuild, "a restored, older database");
    }
}

/// What event ingest needs to know about a live rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRollout {
    /// Rollout id.
    pub id: String,
    /// The wave its events count under, 0-based (`Rollout::signal_wave`: the watch has its own).
    pub wave: i64,
    /// The treatment variant.
    pub new_variant: String,
    /// The control variant.
    pub control_variant: String,
    /// The flag version the current wave's exposure was written as (events evaluated under
    /// an earlier one are stale); `None` for rollouts stored before it was kept.
    pub since_version: Option<i64>,
    /// When it was written (events without a version are placed by their `at`).
    pub exposed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The plan's `otel:` section (how spans feed the arms), if any.
    pub otel: Option<Arc<wavegate_rollout::otel::OtelSpec>>,
}

/// What event ingest needs to track a rollout's adoption.
#[derive(Debug, Clone, PartialEq)]
pub struct AdoptionTrack {
    /// Rollout id.
    pub rollout: String,
    /// The variant whose users are tracked.
    pub new_variant: String,
    /// The plan's adoption section (cohort attributes, key task).
    pub spec: wavegate_rollout::adoption::AdoptionSpec,
    /// When the rollout started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When tracking ends.
    pub until: chrono::DateTime<chrono::Utc>,
    /// The rollout's current wave (0-based): users first seen now count in it.
    pub wave: i64,
}

/// `<hostname>-<pid>`: unique among the replicas of one database.
pub fn default_replica_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "wavegate".into());
    format!("{host}-{}", std::process::id())
}
