//! Runs the conformance suite against PostgreSQL, each test in a fresh database.
//!
//! The server is `WAVEGATE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`);
//! `.ci/run` starts it. Each test creates `wavegate_test_<pid>_<n>` and drops it afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use wavegate_store::{SqlStore, Store, conformance};

fn server() -> String {
    std::env::var("WAVEGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh, empty database; dropped (with its connections) when the guard goes.
struct FreshDb {
    name: String,
}

impl FreshDb {
    async fn new() -> (FreshDb, String) {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "wavegate_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand_suffix()
        );
        let admin = sqlx::PgPool::connect(&format!("{}/postgres", server()))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is not reachable: {e}", server()));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = format!("{}/{name}", server());
        (FreshDb { name }, url)
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        as u64
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A blocking drop on its own thread (the test's runtime may be shutting down).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&format!("{}/postgres", server())).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                }
            });
        })
        .join();
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_db, url) = FreshDb::new().await;
            let store = SqlStore::open(&url).await.unwrap();
            conformance::$name(Arc::new(store)).await;
        }
    )*};
}

wavegate_store::for_each_conformance_test!(conformance);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_refuses_updates() {
    let (_db, url) = FreshDb::new().await;
    let s = SqlStore::open(&url).await.unwrap();
    conformance::versions_and_audit(Arc::new(s.clone())).await;
    let err =
        sqlx::query("UPDATE audit_log SET actor = 'mallory'").execute(s.pool()).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_one_replica_wakes_the_others() {
    let (_db, url) = FreshDb::new().await;
    let a = SqlStore::open(&url).await.unwrap();
    let b = SqlStore::open(&url).await.unwrap();
    let mut rx = b.changes();
    rx.borrow_and_update();
    let spec = serde_json::json!({"variants": {"on": true}, "default": "on"});
    let put = wavegate_store::Put {
        kind: wavegate_store::Kind::Flag,
        key: "from-a".into(),
        spec,
        archived: false,
        expected_version: None,
        action: None,
        details: serde_json::json!({}),
    };
    let change = wavegate_store::Change {
        actor: "a".into(),
        via: None,
        reason: None,
        at: chrono::Utc::now(),
    };
    a.apply(&[put], &change).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.changed())
        .await
        .expect("replica b heard of a's commit through NOTIFY")
        .unwrap();
    assert_eq!(b.get(wavegate_store::Kind::Flag, "from-a").await.unwrap().unwrap().version, 1);
}

/// A leader that stops renewing (dead, or hung with its connections open) is replaced once its
/// lease lapses, within three lease periods, with a new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_passes_to_another_replica_when_the_leader_stops_renewing() {
    let (_db, url) = FreshDb::new().await;
    let a = SqlStore::open(&url).await.unwrap();
    let b = SqlStore::open(&url).await.unwrap();
    let lease = std::time::Duration::from_millis(500);
    let now = chrono::Utc::now();
    let e1 = a.lead("a", now, lease).await.unwrap().expect("a leads");
    assert_eq!(b.lead("b", now, lease).await.unwrap(), None, "one leader at a time");
    let renewed = std::time::Instant::now();
    assert_eq!(a.lead("a", now, lease).await.unwrap(), Some(e1), "a renews");
    // a hangs: it keeps its connections (unlike a dead process) but renews no more.
    let deadline = renewed + 3 * lease;
    let e2 = loop {
        if let Some(e) = b.lead("b", now, lease).await.unwrap() {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "b did not take over within 3 leases");
        tokio::task::yield_now().await;
    };
    assert!(e2 > e1, "a new leader gets a new epoch ({e1} → {e2})");
    assert_eq!(a.lead("a", now, lease).await.unwrap(), None, "a, waking up, stands by");
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_round_trip_postgres_to_postgres() {
    let (_a, a) = FreshDb::new().await;
    let (_b, b) = FreshDb::new().await;
    let source = SqlStore::open(&a).await.unwrap();
    let target = SqlStore::open(&b).await.unwrap();
    conformance::backup_round_trip(Arc::new(source), Arc::new(target)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_backups_restore_into_postgres() {
    let (_a, a) = FreshDb::new().await;
    let (_b, b) = FreshDb::new().await;
    let source = SqlStore::open(&a).await.unwrap();
    let target = SqlStore::open(&b).await.unwrap();
    conformance::older_backups_restore(Arc::new(source), Arc::new(target)).await;
}

/// How a team moves up: a SQLite backup restores into PostgreSQL, and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_round_trip_sqlite_to_postgres_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let lite = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (_a, a) = FreshDb::new().await;
    let source = wavegate_store::SqlStore::open(&lite("source.db")).await.unwrap();
    let pg = SqlStore::open(&a).await.unwrap();
    conformance::backup_round_trip(Arc::new(source), Arc::new(pg.clone())).await;
    let back = wavegate_store::SqlStore::open(&lite("back.db")).await.unwrap();
    back.import(&pg.export().await.unwrap()).await.unwrap();
    assert_eq!(back.export().await.unwrap().tables, pg.export().await.unwrap().tables);
}
