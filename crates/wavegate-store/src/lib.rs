//! wavegate's storage: the [`Store`] trait, the types it speaks, and its implementation
//! [`SqlStore`], one body of SQL over SQLite (embedded default) or PostgreSQL (replicas).
//!
//! **Boundary:** only this crate knows SQL. Every method that changes more than one row runs
//! in one transaction, and every change appends to the hash-chained audit log in that same
//! transaction, so a change and its audit entry land together or not at all.
#![warn(missing_docs)]

mod backend;
pub mod backup;
pub mod conformance;
mod group;
mod model;
mod rows;
mod store;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use model::*;
pub use store::{MIN_FREE_BYTES, SqlStore};

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match unavailable(&e) {
            Some(reason) => StoreError::Unavailable(reason),
            None => StoreError::Database(e),
        }
    }
}

/// Why `e` means the storage is unavailable (rather than a failed statement), in words.
fn unavailable(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::PoolTimedOut => {
            Some("the database did not answer in time (no connection within the timeout)".into())
        }
        sqlx::Error::Io(io) => Some(match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("the database refused the connection (connection refused: {io})")
            }
            _ => format!("cannot reach the database: {io}"),
        }),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message();
            // SQLite's primary result codes (extended codes keep them in the low byte), then
            // PostgreSQL's SQLSTATEs.
            let sqlite = code.parse::<i64>().ok().map(|c| c & 0xff);
            let (what, then) = match (sqlite, code.as_str()) {
                (Some(13), _) | (_, "53100") => {
                    ("the disk is full", "; writes resume when space is freed")
                }
                (Some(8), _) | (_, "25006") => ("the database is read-only", ""),
                (Some(10), _) | (_, "58030") => ("disk I/O error", ""),
                (Some(14), _) => ("cannot open the database file", ""),
                (_, c) if c.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&c) => {
                    ("the database connection failed", "")
                }
                _ => return None,
            };
            Some(format!("{what} ({message}){then}"))
        }
        _ => None,
    }
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with the current state (a stale expected version, a duplicate).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The storage cannot be written or reached right now (a full disk, a read-only file or
    /// mount, an I/O error, a database that does not answer); the reason says which. Reads
    /// served from memory go on; the store recovers by itself when the cause goes away.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Input from outside (a backup file) is not acceptable; the message says where.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for store methods.
pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the store `db` names: `postgres://…` / `postgresql://…` selects PostgreSQL, anything
/// else is a SQLite file path (created if missing; `sqlite:` prefixes are accepted).
pub async fn open(db: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    Ok(std::sync::Arc::new(SqlStore::open(db).await?))
}

/// Refuses a database location that is neither a SQLite file path (optionally `sqlite:`) nor a
/// PostgreSQL URL (`postgres://` or `postgresql://`), rather than taking `mysql://…` or
/// `postgresql:/host` as the name of a SQLite file to create.
pub fn check_location(db: &str) -> StoreResult<()> {
    if db.trim().is_empty() {
        return Err(StoreError::Invalid("the database location is empty".into()));
    }
    let Some((scheme, rest)) = db.split_once(':') else { return Ok(()) };
    // A Windows drive letter (`C:\…`) or a file name with a colon is a path, not a scheme.
    let schemelike = scheme.len() > 1
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic());
    match scheme.to_ascii_lowercase().as_str() {
        _ if !schemelike => Ok(()),
        "sqlite" => Ok(()),
        "postgres" | "postgresql" if rest.starts_with("//") => Ok(()),
        // The location is not repeated: it may hold a password.
        "postgres" | "postgresql" => Err(StoreError::Invalid(format!(
            "a {scheme}: location without // is not a PostgreSQL URL: write {scheme}://user@host:5432/database"
        ))),
        _ if rest.starts_with('/') => Err(StoreError::Invalid(format!(
            "unknown database scheme {scheme:?}: wavegate stores in SQLite (a file path) or PostgreSQL (postgres://…)"
        ))),
        _ => Ok(()),
    }
}

/// Whether `db` names a PostgreSQL database.
pub fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Everything wavegate keeps. Object-safe: held as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A counter bumped after every committed write (in this process; a shared-database store
    /// also bumps it for other processes' writes). Live views wait on it instead of polling.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Environments in promotion order.
    async fn environments(&self) -> StoreResult<Vec<Environment>>;
    /// Appends an environment at the end of the promotion order.
    async fn create_environment(&self, name: &str, change: &Change) -> StoreResult<Environment>;

    /// Current heads of one kind, by key.
    async fn list(&self, kind: Kind, include_archived: bool) -> StoreResult<Vec<Head>>;
    /// The current head of one flag or segment.
    async fn get(&self, kind: Kind, key: &str) -> StoreResult<Option<Head>>;
    /// Applies several puts in one transaction; unchanged content makes no version.
    async fn apply(&self, puts: &[Put], change: &Change) -> StoreResult<Vec<PutOutcome>>;
    /// Every version of one flag or segment, oldest first.
    async fn versions(&self, kind: Kind, key: &str) -> StoreResult<Vec<VersionRecord>>;
    /// One version.
    async fn version(
        &self,
        kind: Kind,
        key: &str,
        version: i64,
    ) -> StoreResult<Option<VersionRecord>>;
    /// The configuration revision: bumped by every change to a flag or segment.
    async fn revision(&self) -> StoreResult<i64>;

    /// Stores a new token (its hash only).
    async fn create_token(&self, token: &NewToken, change: &Change) -> StoreResult<TokenRecord>;
    /// Finds a live (unrevoked) token by the SHA-256 of its secret.
    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// All tokens, revoked ones included.
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// Revokes a token; `NotFound` if no live token has that id, `Conflict` if it is the last
    /// live admin token for all environments (`*`): there is always one way in.
    async fn revoke_token(&self, id: &str, change: &Change) -> StoreResult<()>;
    /// Whether any live admin token exists.
    async fn has_admin_token(&self) -> StoreResult<bool>;

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    async fn audit(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>>;

    /// The sequence number of the newest audit entry (0 when the log is empty).
    async fn audit_head(&self) -> StoreResult<i64>;

    /// The newest `limit` audit entries about `target` (a rollout id, a flag key…), oldest first.
    async fn audit_of(&self, target: &str, limit: i64) -> StoreResult<Vec<AuditRow>>;

    /// Every table, read in one transaction: a consistent backup while the server runs. It
    /// holds every secret (the server takes the notification targets' out).
    async fn export(&self) -> StoreResult<backup::Backup>;

    /// Appends one audit entry for an act that changes nothing stored (a backup that took the
    /// secrets), in its own transaction.
    async fn audit_event(
        &self,
        action: &str,
        target: &str,
        details: &serde_json::Value,
        change: &Change,
    ) -> StoreResult<()>;

    /// Loads `backup` into this database, which must hold nothing but its defaults, in one
    /// transaction (all or nothing).
    async fn import(&self, backup: &backup::Backup) -> StoreResult<()>;

    /// Takes or keeps controller leadership for `holder` as a lease of `lease`: renews it while
    /// this store instance holds it, takes over once the holder's lease has lapsed (deadlines
    /// in the database's clock), and returns the leadership epoch while this instance leads,
    /// `None` while another does. Each new leader gets a new epoch, recorded in the audit log;
    /// controller writes carry it and are refused once another epoch began (fencing), so a
    /// leader that hung past its lease cannot write when it wakes.
    async fn lead(
        &self,
        holder: &str,
        at: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Option<i64>>;
    /// Ends `holder`'s lease at once (on shutdown), so another replica need not wait for it to
    /// lapse; `None` ends whoever's lease (a SQLite file has one server, which its lock file
    /// proves, so a lease left by a process that died is void).
    async fn resign(&self, holder: Option<&str>) -> StoreResult<()>;

    /// Rollouts, newest first; only running or paused ones when `live_only`.
    async fn rollouts(&self, live_only: bool) -> StoreResult<Vec<RolloutRow>>;
    /// One rollout.
    async fn rollout(&self, id: &str) -> StoreResult<Option<RolloutRow>>;
    /// Writes a rollout with its flag change, verdicts and audit entries in one transaction.
    /// `Conflict` when the row's revision moved (someone else wrote first) or when another
    /// rollout of the flag is live. Returns the new revision.
    async fn write_rollout(&self, write: &RolloutWrite, change: &Change) -> StoreResult<i64>;
    /// Verdicts of a rollout, newest first, at most `limit`.
    async fn verdicts(&self, rollout: &str, limit: i64) -> StoreResult<Vec<VerdictRow>>;
    /// Adds a batch of event aggregates, sketch counts and users' adoption in one transaction
    /// (all or nothing). With an idempotency key, the key is recorded in that transaction, and
    /// a key already recorded adds nothing: answers true when the batch was applied, false when
    /// it was a duplicate.
    async fn add_aggregates(&self, batch: AggregateBatch) -> StoreResult<bool>;
    /// Tries a small write (a transaction that rewrites one row, unseen by change
    /// subscribers): `Ok` when the storage takes writes now, else why not
    /// ([`StoreError::Unavailable`] for a full disk, a read-only database, an outage).
    async fn probe(&self) -> StoreResult<()>;
    /// Forgets the idempotency keys of batches received before `before`; returns how many.
    async fn prune_batch_keys(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// A rollout's users by cohort whose last exposure is on or after `since_day` (days since
    /// 1970-01-01, UTC), with how many of them did the key task on or after it.
    async fn adoption(&self, rollout: &str, since_day: i64) -> StoreResult<Vec<AdoptionCount>>;
    /// Deletes adoption rows last exposed before `before_day` (no report window reaches them);
    /// returns how many went.
    async fn prune_adoption(&self, before_day: i64) -> StoreResult<u64>;
    /// Records a drill run (and its audit entry) for a plan version.
    async fn add_drill(&self, drill: &DrillRow, change: &Change) -> StoreResult<i64>;
    /// Drill runs of a plan, newest first.
    async fn drills(&self, plan: &str) -> StoreResult<Vec<DrillRow>>;
    /// Stores pilot feedback (not audited: it is data, not a change); returns the ids.
    async fn add_feedback(&self, rows: &[FeedbackRow]) -> StoreResult<Vec<i64>>;
    /// Feedback about `release`, oldest first.
    async fn feedback(&self, release: &str) -> StoreResult<Vec<FeedbackRow>>;
    /// One feedback item.
    async fn feedback_item(&self, id: i64) -> StoreResult<Option<FeedbackRow>>;
    /// Sets feedback item `id`'s status (closing it records who and when; reopening clears
    /// them), with its audit entry (`feedback.status`, target `release:<release>`), in one
    /// transaction. None when no such item exists.
    async fn set_feedback_status(
        &self,
        id: i64,
        status: &FeedbackStatus,
        change: &Change,
    ) -> StoreResult<Option<FeedbackRow>>;
    /// A rollout's users first served in `wave`, by cohort (with how many did the key task).
    async fn adoption_in_wave(&self, rollout: &str, wave: i64) -> StoreResult<Vec<AdoptionCount>>;
    /// A rollout's users by the wave they were first served in, with how many of them did
    /// the key task, ordered by wave.
    async fn adoption_by_wave(&self, rollout: &str) -> StoreResult<Vec<WaveCount>>;
    /// Records an incident and where it counts, in one transaction; one already recorded
    /// (same source and external id) is left as it was. Returns its id and whether it is new.
    async fn add_incident(&self, incident: &IncidentRow) -> StoreResult<(i64, bool)>;
    /// Incidents counted in a rollout wave, per arm and severity.
    async fn incident_counts(&self, rollout: &str, wave: i64) -> StoreResult<Vec<IncidentCount>>;
    /// The latest incidents (newest first, at most `limit`), of `service` when given.
    async fn incidents(&self, service: Option<&str>, limit: i64) -> StoreResult<Vec<IncidentRow>>;
    /// The sketches of one rollout wave, one per (arm, metric): bucket counts summed over the
    /// contributing tokens, leaving out those whose ids are in `excluded`.
    async fn sketches(
        &self,
        rollout: &str,
        wave: i64,
        excluded: &[String],
    ) -> StoreResult<Vec<SketchDelta>>;
    /// The aggregates of one rollout wave, one per (arm, metric), ordered by them: summed over
    /// the contributing tokens, leaving out those whose ids are in `excluded`.
    async fn aggregates(
        &self,
        rollout: &str,
        wave: i64,
        excluded: &[String],
    ) -> StoreResult<Vec<AggregateRow>>;
    /// What each token contributed to a rollout's aggregates, every wave, by (source, wave,
    /// arm, metric).
    async fn contributions(&self, rollout: &str) -> StoreResult<Vec<Contribution>>;

    /// Notification targets, by name.
    async fn notify_targets(&self) -> StoreResult<Vec<NotifyTargetRow>>;
    /// Creates or replaces a target (audited `notify.target` with `audit_details`, which
    /// should not hold secrets such as webhook URLs); returns whether it was created. A new
    /// target hears of audit entries after its own creation only.
    async fn put_notify_target(
        &self,
        name: &str,
        spec: &serde_json::Value,
        audit_details: &serde_json::Value,
        change: &Change,
    ) -> StoreResult<bool>;
    /// Removes a target (audited `notify.target.remove`); its delivery log stays.
    async fn delete_notify_target(&self, name: &str, change: &Change) -> StoreResult<()>;
    /// The newest audit entry the notifier has queued deliveries for.
    async fn notify_cursor(&self) -> StoreResult<i64>;
    /// Queues deliveries (ignoring ones already queued for the same entry and target) and moves
    /// the notifier's cursor to `cursor`, in one transaction.
    async fn enqueue_deliveries(&self, cursor: i64, rows: &[NewDelivery]) -> StoreResult<()>;
    /// Pending deliveries due at `now`, oldest first, at most `limit`.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<Delivery>>;
    /// Records where delivery `id` stands after an attempt.
    async fn record_attempt(&self, id: i64, state: &DeliveryState) -> StoreResult<()>;
    /// The delivery log, newest first.
    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>>;
}
