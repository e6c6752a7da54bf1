//! The places where SQLite and PostgreSQL truly differ, as hooks on [`Backend`]. Everything else,
//! every query included, is shared: `$N` placeholders (SQLite reads `$1` as parameter 1) over
//! `sqlx::Any`, which carries the only column types the schemas use (text, integers, reals).
//!
//! | hook | SQLite | PostgreSQL |
//! | --- | --- | --- |
//! | [`Backend::connect`] | WAL, `synchronous = FULL`, busy timeout; `migrations/sqlite` | `migrations/postgres` |
//! | [`Backend::begin`] (writes) | `BEGIN IMMEDIATE`: one writer at a time | a transaction-scoped advisory lock, across replicas |
//! | [`Backend::before_commit`] | — | `NOTIFY wavegate_changes`, heard by [`listen`] on every replica |
//! | [`Backend::begin_snapshot`] (backups) | a WAL read transaction | `REPEATABLE READ, READ ONLY` |
//! | [`Backend::after_import`] | — | sequences advanced past the restored ids |
//! | [`Backend::greatest`] | two-argument `max` | `GREATEST` |
//! | [`Backend::now_ms`] (leases) | `julianday('now')` | `clock_timestamp()` |

use std::sync::Weak;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgListener;
use sqlx::{Any, AnyPool, AssertSqlSafe, Connection, Executor, Transaction};
use tokio::sync::watch;

use crate::StoreResult;
use crate::backup::SERIAL;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock every PostgreSQL write transaction takes (serialises audit appends across
/// replicas).
const WRITE_LOCK: i64 = 0x7761_7665_6761_7465; // "wavegate"
/// The channel PostgreSQL commits notify on.
const CHANNEL: &str = "wavegate_changes";

/// A transaction on either database.
pub(crate) type Tx = Transaction<'static, Any>;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// An embedded SQLite file: one process.
    Sqlite,
    /// A PostgreSQL server: any number of replicas.
    Postgres,
}

impl Backend {
    /// The backend `db` names (see [`crate::open`]).
    pub(crate) fn of(db: &str) -> Backend {
        if crate::is_postgres(db) { Backend::Postgres } else { Backend::Sqlite }
    }

    /// `sqlite` or `postgres` (a backup's `source`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Connects to `db` (a SQLite file path, created if missing, `sqlite:` prefixes accepted; or a
    /// PostgreSQL URL) and migrates it.
    pub(crate) async fn connect(self, db: &str) -> StoreResult<AnyPool> {
        sqlx::any::install_default_drivers();
        let (pool, migrations) = match self {
            Backend::Sqlite => {
                let path = sqlite_path(db);
                create_private(path);
                // Percent-encoded so that `%`, `?` and `#` stay part of the file's name.
                let path = path.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
                let pool = options(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                                 PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
                            )
                            .await
                            .map(drop)
                        })
                    })
                    .connect(&format!("sqlite:{path}?mode=rwc"))
                    .await?;
                (pool, &SQLITE_MIGRATIONS)
            }
            Backend::Postgres => (options(16).connect(db).await?, &POSTGRES_MIGRATIONS),
        };
        migrations.run(&pool).await?;
        Ok(pool)
    }

    /// Begins a write transaction, serialised with every other write to the database.
    pub(crate) async fn begin(self, pool: &AnyPool) -> StoreResult<Tx> {
        Ok(match self {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = match pool.begin().await {
                    Ok(tx) => tx,
                    Err(e) => return Err(why_no_connection(pool, e).await),
                };
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        })
    }

    /// Runs last in every write transaction: on PostgreSQL the change notice to every replica
    /// (delivered only if the transaction commits).
    pub(crate) async fn before_commit(self, tx: &mut Tx) -> StoreResult<()> {
        if self == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Begins a read transaction that sees one snapshot of every table (for backups).
    pub(crate) async fn begin_snapshot(self, pool: &AnyPool) -> StoreResult<Tx> {
        let mut tx = pool.begin().await?;
        // SQLite: a read transaction in WAL mode sees one snapshot already.
        if self == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Runs after a restore's rows are in: PostgreSQL's sequences move past the restored ids
    /// (SQLite's rowids follow the largest id by themselves).
    pub(crate) async fn after_import(self, tx: &mut Tx) -> StoreResult<()> {
        if self == Backend::Postgres {
            for t in SERIAL {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {t}), false)"
                );
                sqlx::query(AssertSqlSafe(sql)).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// The scalar function that returns the greater of its arguments.
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Backend::Sqlite => "max",
            Backend::Postgres => "GREATEST",
        }
    }

    /// The database's clock in milliseconds since 1970, as SQL: lease deadlines are taken from
    /// it, so replicas whose own clocks disagree still agree on when a lease lapses.
    pub(crate) fn now_ms(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// On PostgreSQL, starts the task that turns every replica's commit notices into bumps of
    /// `changes` (until the store holding it is dropped).
    pub(crate) async fn listen(
        self,
        pool: &AnyPool,
        changes: Weak<watch::Sender<u64>>,
    ) -> StoreResult<()> {
        if self == Backend::Postgres {
            let mut listener =
                PgListener::connect(pool.connect_options().database_url.as_str()).await?;
            listener.listen(CHANNEL).await?;
            tokio::spawn(listen(listener, changes));
        }
        Ok(())
    }
}

/// The SQLite file `db` names (`sqlite:` and `sqlite://` prefixes are accepted).
pub(crate) fn sqlite_path(db: &str) -> &str {
    db.strip_prefix("sqlite://").or_else(|| db.strip_prefix("sqlite:")).unwrap_or(db)
}

/// Turns `NOTIFY wavegate_changes` from any replica into a local bump; reconnects on errors
/// (sqlx's listener re-listens by itself) and ends when the store is dropped.
async fn listen(mut listener: PgListener, changes: Weak<watch::Sender<u64>>) {
    loop {
        let got = listener.try_recv().await;
        let Some(tx) = changes.upgrade() else { return };
        match got {
            Ok(_) => tx.send_modify(|n| *n = n.wrapping_add(1)),
            Err(e) => {
                tracing::warn!(error = %e, "PostgreSQL change listener failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// How long a caller waits for a pooled connection before the store says it is unavailable
/// (a database that does not answer fails fast instead of holding requests for 30 s).
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// Pool settings both databases share: `max` connections, a short acquire timeout, and no
/// connection handed out while it is still inside a transaction. A transaction whose rollback
/// failed (SQLite's "database or disk is full" can fail it) leaves its connection in that state;
/// it is closed instead, and the pool opens a fresh one, so writes recover by themselves once
/// the cause is gone.
fn options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new().max_connections(max).acquire_timeout(ACQUIRE_TIMEOUT).before_acquire(
        |conn, _| {
            Box::pin(async move {
                let clean = !conn.is_in_transaction();
                if !clean {
                    tracing::warn!("closing a pooled connection left inside a transaction");
                }
                Ok(clean)
            })
        },
    )
}

/// When the pool gave no connection in time, says why if a direct attempt can tell (a refused
/// connection, an unknown host) rather than only that the pool timed out.
pub(crate) async fn why_no_connection(pool: &AnyPool, e: sqlx::Error) -> crate::StoreError {
    if !matches!(e, sqlx::Error::PoolTimedOut) {
        return e.into();
    }
    let options = pool.connect_options();
    let attempt = sqlx::AnyConnection::connect_with(&options);
    match tokio::time::timeout(ACQUIRE_TIMEOUT, attempt).await {
        Ok(Err(cause)) => cause.into(),
        _ => e.into(),
    }
}

/// Creates the SQLite file `path` readable and writable by its owner only (0600), if it does
/// not exist yet. It holds token hashes, webhook secrets and every flag; SQLite creates its
/// `-wal` and `-shm` files with the main file's permissions, so they are private too. An
/// existing file keeps its permissions (an operator may have chosen them). Errors are left to
/// SQLite, which reports them when it opens the file.
fn create_private(path: &str) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let _ = options.open(path);
}
