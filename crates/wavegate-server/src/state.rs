//! [`AppState`]: what every handler can reach.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Mutex;
use wavegate_store::{Change, Store, StoreResult};

use crate::auth::TokenCache;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;

/// Shared server state (cheap to clone).
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
    reload_lock: Arc<Mutex<()>>,
}

impl AppState {
    /// State over a store, loading the first snapshot.
    pub async fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> StoreResult<AppState> {
        let snapshot = Snapshot::load(&*store).await?;
        Ok(AppState {
            store,
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            tokens: Arc::default(),
            metrics: Arc::default(),
            clock,
            reload_lock: Arc::default(),
        })
    }

    /// Rebuilds the snapshot from the store (serialised, so the newest always wins).
    pub async fn reload(&self) -> StoreResult<()> {
        let _guard = self.reload_lock.lock().await;
        let snap = Snapshot::load(&*self.store).await?;
        self.snapshot.store(Arc::new(snap));
        Ok(())
    }

    /// A change record for `actor` now.
    pub fn change(&self, actor: &str, reason: Option<String>) -> Change {
        Change { actor: actor.to_owned(), reason, at: self.clock.now() }
    }
}
