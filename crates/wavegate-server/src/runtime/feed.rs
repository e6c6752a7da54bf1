//! The change feed: one task per server tails the audit log and fans each new entry out to
//! every live view (the SSE stream, the dashboard) through a broadcast channel, so N
//! subscribers cost one store read per change, not N.
//!
//! Every change in wavegate appends to the audit log in its own transaction, so the log's
//! sequence number is the feed's position: a subscriber that reconnects with `Last-Event-ID`
//! replays from the store exactly what it missed. Writes that append no audit entry (event
//! batches, verdicts recorded on a tick) are announced as coalesced [`FeedItem::Changed`]
//! notices, at most one per [`FeedConfig::coalesce`].
//!
//! The feed also keeps its position (the last sequence number it broadcast) and its most
//! recent items, so a subscriber that joins or reconnects can tell what it would otherwise
//! miss and catch up from memory instead of the store: a receiver taken with
//! [`Feed::subscribe`] before reading [`Feed::position`] hears every item after that position.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;
use wavegate_store::{AuditRow, Head, Kind, Store, StoreResult};

use crate::http::convert::IntoApi;
use crate::http::scope::{environments_using, flag_segments};
use crate::record::Record;

/// Feed tuning.
#[derive(Debug, Clone, Copy)]
pub struct FeedConfig {
    /// Least time between two [`FeedItem::Changed`] notices.
    pub coalesce: Duration,
    /// How many items a slow subscriber may fall behind before it replays from the store.
    pub capacity: usize,
    /// How many of the latest audit items are kept for subscribers that join or reconnect
    /// behind the feed's position (older ones are read from the store).
    pub recent: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig { coalesce: Duration::from_millis(500), capacity: 1024, recent: 256 }
    }
}

/// The whole server-sent event (`event`, `id`, `data`) per subscriber scope, encoded once and
/// shared by every subscriber with that scope (`None`: that scope sees nothing of it).
pub type RenderCache = Arc<Mutex<std::collections::HashMap<String, Option<Bytes>>>>;

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// An audit entry, with the flag or segment it changed (as stored now), if any.
    Audit {
        /// The entry's sequence number (the SSE event id).
        seq: i64,
        /// The entry as the audit API shows it.
        entry: Value,
        /// The changed flag or segment's current head.
        head: Option<Box<(Kind, Head)>>,
        /// For a flag: the current heads of the live segments its rules name (in any
        /// environment), so a stream can send an environment-scoped subscriber the members it
        /// newly needs along with the flag.
        segments: Vec<Head>,
        /// For a segment: the environments whose live flags use it (whose tokens may read its
        /// members, `http::scope`).
        used_in: BTreeSet<String>,
        /// Its stream rendering per subscriber scope, computed once and shared by every
        /// subscriber with that scope (10,000 subscribers need not serialise it 10,000 times).
        rendered: RenderCache,
        /// When the feed heard of its commit, for items the feed broadcast as they committed
        /// (`None` for items read back from the store to replay them).
        heard: Option<Arc<Heard>>,
    },
    /// Something without an audit entry changed (event aggregates, verdicts).
    Changed,
}

impl FeedItem {
    /// The audit sequence number, for audit items.
    pub fn seq(&self) -> Option<i64> {
        match self {
            FeedItem::Audit { seq, .. } => Some(*seq),
            FeedItem::Changed => None,
        }
    }

    /// The id of the token this item revokes, if it is a token's revocation.
    pub fn revoked_token(&self) -> Option<&str> {
        let FeedItem::Audit { entry, .. } = self else { return None };
        if entry["action"].as_str() != Some("token.revoke") {
            return None;
        }
        entry["target"].as_str()?.strip_prefix("token:")
    }
}

/// When the feed heard that a change committed, shared by every subscriber's copy of its
/// events so that the fan-out's time can be measured where each copy is handed to its
/// connection ([`crate::metrics::Metrics::fanned_out`]).
#[derive(Debug)]
pub struct Heard {
    /// The audit sequence number of the change.
    pub seq: i64,
    /// When the store's commit signal reached the feed (microseconds after `COMMIT` returned,
    /// for a commit on this replica).
    pub at: Instant,
    /// The longest any subscriber has waited for it so far, in nanoseconds.
    slowest_ns: AtomicU64,
}

impl Heard {
    /// A change heard at `at`.
    pub fn new(seq: i64, at: Instant) -> Heard {
        Heard { seq, at, slowest_ns: AtomicU64::new(0) }
    }

    /// Records that one more subscriber's copy was handed to its connection now; returns how
    /// long that took and the longest any copy has taken so far.
    pub fn reached(&self) -> (Duration, Duration) {
        let took = self.at.elapsed();
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let slowest = self.slowest_ns.fetch_max(ns, Ordering::Relaxed).max(ns);
        (took, Duration::from_nanos(slowest))
    }
}

/// The shared feed: subscribe to hear about changes as they commit.
#[derive(Debug, Clone)]
pub struct Feed {
    tx: Arc<broadcast::Sender<Arc<FeedItem>>>,
    /// Where the feed is: the last audit sequence number broadcast, and the latest items.
    at: Arc<Position>,
}

#[derive(Debug)]
struct Position {
    seq: AtomicI64,
    recent: Mutex<VecDeque<Arc<FeedItem>>>,
    keep: usize,
}

impl Position {
    /// Records an audit item as broadcast (before it is sent, so a subscriber that reads the
    /// position after subscribing hears every later item).
    fn record(&self, item: &Arc<FeedItem>) {
        let Some(seq) = item.seq() else { return };
        {
            let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if recent.len() >= self.keep {
                recent.pop_front();
            }
            recent.push_back(item.clone());
        }
        self.seq.store(seq, Ordering::SeqCst);
    }
}

impl Feed {
    /// Starts the tailing task over `store` and returns the feed. The task ends once every
    /// clone of the feed is dropped.
    pub async fn start(
        store: Arc<dyn Store>,
        record: Arc<Record>,
        config: FeedConfig,
    ) -> StoreResult<Feed> {
        let (tx, _) = broadcast::channel(config.capacity.max(16));
        let tx = Arc::new(tx);
        let changes = store.changes(); // before reading the head, so no commit slips between
        let head = store.audit_head().await?;
        let at = Arc::new(Position {
            seq: AtomicI64::new(head),
            recent: Mutex::new(VecDeque::new()),
            keep: config.recent,
        });
        tokio::spawn(tail(store, record, changes, Arc::downgrade(&tx), at.clone(), head, config));
        Ok(Feed { tx, at })
    }

    /// A receiver of every item from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.tx.subscribe()
    }

    /// The sequence number of the last audit item broadcast. A receiver taken before reading
    /// it hears every audit item after it.
    pub fn position(&self) -> i64 {
        self.at.seq.load(Ordering::SeqCst)
    }

    /// The audit items after `after` that the feed still holds, in order, when it holds every
    /// one of them (the one right after `after` included); `None` when some are only in the
    /// store.
    pub fn recent_after(&self, after: i64) -> Option<Vec<Arc<FeedItem>>> {
        let recent = self.at.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer: Vec<Arc<FeedItem>> =
            recent.iter().filter(|i| i.seq().is_some_and(|s| s > after)).cloned().collect();
        let position = self.position();
        let contiguous = newer.iter().zip(after + 1..).all(|(i, want)| i.seq() == Some(want));
        let complete = newer.last().map_or(after, |i| i.seq().unwrap_or(after)) >= position;
        (contiguous && complete).then_some(newer)
    }

    /// How many subscribers are listening.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

async fn tail(
    store: Arc<dyn Store>,
    record: Arc<Record>,
    mut changes: tokio::sync::watch::Receiver<u64>,
    tx: Weak<broadcast::Sender<Arc<FeedItem>>>,
    at: Arc<Position>,
    mut after: i64,
    config: FeedConfig,
) {
    let mut last_changed = tokio::time::Instant::now() - config.coalesce;
    let mut pending_changed = false;
    loop {
        // Wake on a commit; also every second so the task notices when the feed is dropped,
        // and when a coalesced notice falls due.
        let wait = if pending_changed {
            config.coalesce.saturating_sub(last_changed.elapsed())
        } else {
            Duration::from_secs(1)
        };
        let woke = tokio::time::timeout(wait, changes.changed()).await;
        let heard_at = Instant::now();
        let Some(tx) = tx.upgrade() else { return };
        if let Ok(Err(_)) = woke {
            return; // the store is gone
        }
        let mut saw_audit = false;
        loop {
            let rows = match store.audit(after, 500).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "change feed could not read the audit log");
                    break;
                }
            };
            let full = rows.len() == 500;
            for row in rows {
                after = row.entry.seq;
                saw_audit = true;
                match item_for(&*store, &record, &row).await {
                    Ok(mut item) => {
                        if let FeedItem::Audit { heard, .. } = &mut item {
                            *heard = Some(Arc::new(Heard::new(row.entry.seq, heard_at)));
                        }
                        let item = Arc::new(item);
                        at.record(&item);
                        let _ = tx.send(item);
                    }
                    Err(e) => tracing::warn!(error = %e, seq = after, "change feed item failed"),
                }
            }
            if !full {
                break;
            }
        }
        if woke.is_ok() && !saw_audit {
            pending_changed = true;
        }
        if saw_audit {
            pending_changed = false; // the audit items already told everyone
            last_changed = tokio::time::Instant::now();
        } else if pending_changed && last_changed.elapsed() >= config.coalesce {
            pending_changed = false;
            last_changed = tokio::time::Instant::now();
            let _ = tx.send(Arc::new(FeedItem::Changed));
        }
    }
}

/// The audit API's view of one entry ([`wavegate_api::audit::AuditEntry`]) as JSON, for the
/// live views and notifications.
pub fn audit_json(r: &AuditRow) -> Value {
    serde_json::to_value(IntoApi::<wavegate_api::audit::AuditEntry>::into_api(r))
        .unwrap_or_default()
}

/// Builds the feed item for one audit row (reading the changed flag or segment's head, and for
/// a flag the segments it names, for a segment where it is used), as the audit record vouches
/// for them.
pub async fn item_for(store: &dyn Store, record: &Record, row: &AuditRow) -> StoreResult<FeedItem> {
    let (mut segments, mut used_in) = (Vec::new(), BTreeSet::new());
    let head = match row.target.split_once(':') {
        Some(("flag", key)) => {
            let head = record.head(store, Kind::Flag, key).await?;
            if let Some(h) = head.as_ref().filter(|h| !h.archived) {
                let names: BTreeSet<&str> = flag_segments(&h.spec, |_| true).collect();
                for name in names {
                    segments.extend(
                        record.head(store, Kind::Segment, name).await?.filter(|s| !s.archived),
                    );
                }
            }
            head.map(|h| Box::new((Kind::Flag, h)))
        }
        Some(("segment", key)) => {
            let flags = record.heads(store, Kind::Flag, false).await?;
            used_in = environments_using(flags.iter().map(|h| &h.spec), key);
            record.head(store, Kind::Segment, key).await?.map(|h| Box::new((Kind::Segment, h)))
        }
        _ => None,
    };
    Ok(FeedItem::Audit {
        seq: row.entry.seq,
        entry: audit_json(row),
        head,
        segments,
        used_in,
        rendered: Arc::default(),
        heard: None,
    })
}
