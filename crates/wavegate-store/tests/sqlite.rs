//! Runs the conformance suite against SQLite, each test on a fresh database file.

use std::sync::Arc;

use wavegate_store::{SqlStore, Store, conformance};

async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wavegate.db");
    let store = SqlStore::open(path.to_str().unwrap()).await.unwrap();
    (dir, Arc::new(store))
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh().await;
            conformance::$name(store).await;
        }
    )*};
}

wavegate_store::for_each_conformance_test!(conformance);

#[tokio::test]
async fn reopening_keeps_everything_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let p = path.to_str().unwrap();
    {
        let s = SqlStore::open(p).await.unwrap();
        let mode: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(s.pool()).await.unwrap();
        assert_eq!(mode, "wal");
        conformance::versions_and_audit(Arc::new(s)).await;
    }
    let s = SqlStore::open(p).await.unwrap();
    assert_eq!(s.revision().await.unwrap(), 2);
}

#[tokio::test]
async fn connections_are_durable_and_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqlStore::open(dir.path().join("w.db").to_str().unwrap()).await.unwrap();
    let mut conn = s.pool().acquire().await.unwrap();
    for (pragma, expected) in [("synchronous", 2), ("busy_timeout", 10_000), ("foreign_keys", 1)] {
        let sql = sqlx::AssertSqlSafe(format!("PRAGMA {pragma}"));
        let value: i64 = sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap();
        assert_eq!(value, expected, "PRAGMA {pragma}");
    }
}

/// A file name is taken as it is written: `%`, `?`, `#`, spaces and non-ASCII included.
#[tokio::test]
async fn odd_file_names_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my db #1?%20ø.db");
    let s = SqlStore::open(path.to_str().unwrap()).await.unwrap();
    conformance::versions_and_audit(Arc::new(s)).await;
    assert!(path.exists(), "created as named");
    let prefixed = SqlStore::open(&format!("sqlite://{}", path.to_str().unwrap())).await.unwrap();
    assert_eq!(prefixed.revision().await.unwrap(), 2, "the same file through a sqlite:// prefix");
}

#[tokio::test]
async fn audit_log_refuses_updates() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqlStore::open(dir.path().join("x.db").to_str().unwrap()).await.unwrap();
    conformance::versions_and_audit(Arc::new(s.clone())).await;
    let err =
        sqlx::query("UPDATE audit_log SET actor = 'mallory'").execute(s.pool()).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_backups_restore() {
    let (_a, source) = fresh().await;
    let (_b, target) = fresh().await;
    conformance::older_backups_restore(source, target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_round_trip() {
    let (_a, source) = fresh().await;
    let (_b, target) = fresh().await;
    conformance::backup_round_trip(source, target).await;
}

/// Issue 16, item 10: a new database file holds token hashes and webhook secrets, so it and
/// its `-wal` and `-shm` files are readable by their owner only; an existing file keeps the
/// permissions it has.
#[cfg(unix)]
#[tokio::test]
async fn issue_16_new_database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let s = SqlStore::open(path.to_str().unwrap()).await.unwrap();
    conformance::versions_and_audit(Arc::new(s.clone())).await;
    let mode =
        |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
    for name in ["w.db", "w.db-wal", "w.db-shm"] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
    s.pool().close().await;
    let shared = dir.path().join("shared.db");
    std::fs::File::create(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    SqlStore::open(shared.to_str().unwrap()).await.unwrap();
    assert_eq!(mode("shared.db"), 0o640, "chosen by the operator");
}

/// `check_location` (which `open` applies first): SQLite paths and PostgreSQL URLs only.
#[test]
fn locations_are_sqlite_paths_or_postgres_urls() {
    for ok in [
        "wavegate.db",
        "./data/wavegate.db",
        "/var/lib/wavegate/w.db",
        "sqlite:w.db",
        "sqlite:///tmp/w.db",
        "postgres://u@h/db",
        "postgresql://u@h:5432/db",
        "C:\\data\\w.db",
        "weird:name.db",
    ] {
        assert!(wavegate_store::check_location(ok).is_ok(), "{ok}");
    }
    for bad in ["mysql://u@h/db", "postgresql:/host", "postgres:host/db", "redis://h", ""] {
        assert!(wavegate_store::check_location(bad).is_err(), "{bad}");
    }
}
