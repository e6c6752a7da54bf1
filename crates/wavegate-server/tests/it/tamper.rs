//! The tamper suite: someone with database access changes what wavegate shows and serves —
//! audit listing columns, version rows, head rows, the log cut short, an entry rewritten and
//! the chain recomputed after it — on SQLite and on PostgreSQL. For each, verification (the
//! server's, and `wavegate_server::record::verify`, which `wavegate audit verify --db` runs)
//! fails and names the damage, and the server never serves or restores the forged content; a
//! signed checkpoint kept outside the database names the log cut short or rewritten without a
//! server (`audit verify --db --checkpoints`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::Executor as _;
use tower::ServiceExt;
use wavegate_server::AppState;
use wavegate_store::Store;
use wavegate_testkit::ADMIN;
use wavegate_testkit::fixtures::FLAGS;

/// A server over a fresh database, and a raw connection to that database.
struct Bench {
    state: AppState,
    router: axum::Router,
    raw: sqlx::AnyPool,
    postgres: bool,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn bench(postgres: bool) -> Bench {
    sqlx::any::install_default_drivers();
    let (url, raw_url, guard): (String, String, Box<dyn std::any::Any + Send>) = if postgres {
        let db = wavegate_testkit::postgres::Database::create("tamper").expect("PostgreSQL");
        (db.url(), db.url(), Box::new(db))
    } else {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wavegate.db").to_string_lossy().into_owned();
        (path.clone(), format!("sqlite://{path}"), Box::new(dir))
    };
    let store: Arc<dyn Store> = wavegate_store::open(&url).await.unwrap();
    wavegate_server::ensure_admin_token(&*store, Some(ADMIN), chrono::Utc::now()).await.unwrap();
    let clock = Arc::new(wavegate_server::clock::ManualClock::new(chrono::Utc::now()));
    let state = AppState::new(store, clock).await.unwrap();
    let raw = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&raw_url).await.unwrap();
    let b =
        Bench { router: wavegate_server::app(state.clone()), state, raw, postgres, _guard: guard };
    let yaml = [("content-type", "application/yaml")];
    let r = b.call(Method::POST, "/api/v1/apply", &yaml, FLAGS.as_bytes().to_vec()).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    // A second version of banner-color: red becomes dark red.
    let edited = FLAGS.replace("red: \"#f00\"", "red: \"#a00\"");
    let r = b.call(Method::POST, "/api/v1/apply", &yaml, edited.into_bytes()).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    b
}

impl Bench {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.router.clone().oneshot(req.body(Body::from(body)).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, &[], vec![]).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let json = [("content-type", "application/json"), ("x-wavegate-environment", "prod")];
        self.call(Method::POST, path, &json, serde_json::to_vec(&body).unwrap()).await
    }

    /// What red evaluates to for a VIP in prod.
    async fn red(&self) -> Value {
        let body = json!({"context": {"targetingKey": "u1", "plan": "vip"}});
        let (status, v) = self.post("/ofrep/v1/evaluate/flags/banner-color", body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["value"].clone()
    }

    /// Runs `sql` with the append-only guards out of the way, as an attacker would.
    async fn tamper(&self, sql: &str) {
        let mut c = self.raw.acquire().await.unwrap();
        if self.postgres {
            c.execute("SET session_replication_role = replica").await.unwrap();
        } else {
            let triggers: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                    .fetch_all(&mut *c)
                    .await
                    .unwrap();
            for (t,) in triggers {
                c.execute(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}"))).await.unwrap();
            }
        }
        c.execute(sqlx::AssertSqlSafe(sql.to_owned())).await.unwrap();
    }

    /// The server's verification, and the offline one (`audit verify --db`).
    async fn verify(&self) -> (Value, Value) {
        let (status, online) = self.get("/api/v1/audit/verify").await;
        assert_eq!(status, StatusCode::OK, "{online}");
        let offline = wavegate_server::record::verify(&*self.state.store).await.unwrap();
        (online, serde_json::to_value(offline).unwrap())
    }

    /// Signs a checkpoint of the head now, as `serve --checkpoint-key --checkpoint-dir` does,
    /// into a new directory; the directory and the public key.
    async fn checkpoint(&self) -> (tempfile::TempDir, String) {
        use wavegate_server::checkpoint::Signer;
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::from_pkcs8(Signer::generate_pem().unwrap().as_bytes()).unwrap();
        let key = signer.public_key().to_owned();
        let cfg = wavegate_server::runtime::checkpoint::CheckpointConfig {
            signer: Arc::new(signer),
            dir: Some(dir.path().to_owned()),
            every: std::time::Duration::from_secs(3600),
        };
        let cp = wavegate_server::runtime::checkpoint::checkpoint(&self.state, &cfg).await.unwrap();
        assert!(cp.is_some(), "a head to sign");
        (dir, key)
    }

    /// The checkpoints in `dir` against the chain in the database (`audit verify --db
    /// --checkpoints`), their problems.
    async fn against_checkpoints(&self, dir: &std::path::Path, key: &str) -> Vec<String> {
        let cps = wavegate_server::checkpoint::read_dir(dir).unwrap();
        assert_eq!(cps.len(), 1);
        let c = wavegate_server::checkpoint::compare_store(&*self.state.store, &cps, Some(key));
        c.await.unwrap().problems
    }

    /// The sequence number of the newest entry about `target`.
    async fn last_about(&self, target: &str) -> i64 {
        let (_, list) = self.get(&format!("/api/v1/audit?target={target}&limit=1")).await;
        list[0]["seq"].as_i64().unwrap()
    }
}

/// SQLite, then PostgreSQL.
const BOTH: [bool; 2] = [false, true];

#[tokio::test]
async fn forged_audit_columns_are_not_shown_and_fail_verification() {
    for pg in BOTH {
        let b = bench(pg).await;
        let (online, offline) = b.verify().await;
        assert_eq!(
            (online["ok"].as_bool(), offline["ok"].as_bool()),
            (Some(true), Some(true)),
            "{online}"
        );
        let seq = b.last_about("flag:banner-color").await;
        b.tamper(&format!(
            "UPDATE audit_log SET actor = 'mallory', action = 'flag.nothing', target = 'flag:elsewhere', at = '2000-01-01T00:00:00.000Z' WHERE seq = {seq}"
        ))
        .await;
        let (_, one) = b.get(&format!("/api/v1/audit?after={}&limit=1", seq - 1)).await;
        assert_eq!(one[0]["actor"], "admin", "pg={pg}: {one}");
        assert_eq!(one[0]["action"], "flag.update");
        assert_eq!(one[0]["target"], "flag:banner-color");
        assert_ne!(one[0]["at"], "2000-01-01T00:00:00.000Z");
        let (_, elsewhere) = b.get("/api/v1/audit?target=flag:elsewhere").await;
        assert_eq!(elsewhere, json!([]), "pg={pg}");
        for v in <[Value; 2]>::from(b.verify().await) {
            assert_eq!(v["ok"], false, "pg={pg}: {v}");
            assert_eq!(v["first_bad"]["seq"], seq, "pg={pg}: {v}");
            let problem = v["first_bad"]["problem"].as_str().unwrap();
            assert!(problem.contains("actor column \"mallory\""), "{problem}");
        }
    }
}

#[tokio::test]
async fn a_forged_version_row_fails_verification_and_is_never_restored() {
    for pg in BOTH {
        let b = bench(pg).await;
        b.tamper(
            "UPDATE flag_versions SET spec = replace(spec, '#f00', '#0f0') WHERE key = 'banner-color' AND version = 1",
        )
        .await;
        for v in <[Value; 2]>::from(b.verify().await) {
            assert_eq!(v["ok"], false, "pg={pg}: {v}");
            assert!(v["first_bad"].is_null(), "the chain itself is intact: {v}");
            assert_eq!(
                v["bad_rows"],
                json!([{"kind": "flag", "key": "banner-color", "version": 1, "row": "version",
                    "problem": v["bad_rows"][0]["problem"]}]),
                "pg={pg}"
            );
            let problem = v["bad_rows"][0]["problem"].as_str().unwrap();
            assert!(problem.contains("content_sha256"), "{problem}");
        }
        let (status, body) =
            b.post("/api/v1/flags/banner-color/revert", json!({"version": 1})).await;
        assert_eq!(status, StatusCode::CONFLICT, "pg={pg}: {body}");
        assert!(body["message"].as_str().unwrap().contains("changed outside wavegate"), "{body}");
        assert_eq!(b.red().await, "#a00", "pg={pg}");
    }
}

/// A head read before the row was forged, and vouched for after a fresh read refused the row (a
/// concurrent reader racing the forgery), does not lift the refusal.
#[tokio::test]
async fn a_head_read_before_the_forgery_does_not_lift_its_refusal() {
    for pg in BOTH {
        let b = bench(pg).await;
        let stale = b.state.store.get(wavegate_store::Kind::Flag, "limits").await.unwrap().unwrap();
        b.tamper("UPDATE flags SET archived = 1 WHERE key = 'limits'").await;
        b.state.reload().await.unwrap();
        assert_eq!(b.state.record.refused(), vec!["flag:limits".to_owned()], "pg={pg}");
        let served = b
            .state
            .record
            .vouch(&*b.state.store, wavegate_store::Kind::Flag, stale)
            .await
            .unwrap()
            .expect("its last verified version is served");
        assert!(!served.archived, "pg={pg}");
        assert_eq!(b.state.record.refused(), vec!["flag:limits".to_owned()], "pg={pg}");
        let (_, ready) = b.get("/readyz").await;
        assert!(ready.as_str().unwrap().contains("flag:limits head row"), "pg={pg}: {ready}");
    }
}

#[tokio::test]
async fn a_forged_head_row_is_refused_and_its_last_verified_version_served() {
    for pg in BOTH {
        let b = bench(pg).await;
        assert_eq!(b.red().await, "#a00");
        b.tamper(
            "UPDATE flags SET spec = replace(spec, '#a00', '#0f0') WHERE key = 'banner-color'",
        )
        .await;
        b.tamper("UPDATE flags SET archived = 1 WHERE key = 'limits'").await;
        b.state.reload().await.unwrap();
        // Served: the newest version that matches its entry (here the head's own version row).
        assert_eq!(b.red().await, "#a00", "pg={pg}");
        let (_, head) = b.get("/api/v1/flags/banner-color").await;
        assert_eq!(head["spec"]["variants"]["red"], "#a00", "pg={pg}: {head}");
        let (status, limits) = b
            .post("/ofrep/v1/evaluate/flags/limits", json!({"context": {"targetingKey": "u"}}))
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a forged archived column does not hide a flag: {limits}"
        );
        // Named in /readyz and /metrics.
        let (status, ready) = b.get("/readyz").await;
        assert_eq!(status, StatusCode::OK);
        let ready = ready.as_str().unwrap().to_owned();
        assert!(ready.contains("flag:banner-color head row (version 2) refused"), "{ready}");
        assert!(ready.contains("flag:limits head row"), "{ready}");
        let (_, metrics) = b.get("/metrics").await;
        let metrics = metrics.as_str().unwrap().to_owned();
        assert!(
            metrics.contains("wavegate_audit_refused_rows{row=\"flag:banner-color\"} 1"),
            "{metrics}"
        );
        for v in <[Value; 2]>::from(b.verify().await) {
            assert_eq!(v["ok"], false, "pg={pg}: {v}");
            let rows: Vec<(String, String)> = v["bad_rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["key"].as_str().unwrap().into(), r["row"].as_str().unwrap().into()))
                .collect();
            assert_eq!(
                rows,
                [("banner-color".into(), "head".into()), ("limits".into(), "head".into())],
                "pg={pg}: {v}"
            );
        }
        // A legitimate write replaces the forged row, and the warning goes.
        let yaml = [("content-type", "application/yaml")];
        let r = b.call(Method::POST, "/api/v1/apply", &yaml, FLAGS.as_bytes().to_vec()).await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.1);
        b.state.reload().await.unwrap();
        assert_eq!(b.red().await, "#f00");
        let (_, ready) = b.get("/readyz").await;
        assert!(!ready.as_str().unwrap().contains("banner-color"), "{ready}");
    }
}

#[tokio::test]
async fn a_log_cut_short_fails_the_servers_verification() {
    for pg in BOTH {
        let b = bench(pg).await;
        let (online, _) = b.verify().await;
        let head = online["verified"].as_i64().unwrap();
        let (dir, key) = b.checkpoint().await;
        assert_eq!(b.against_checkpoints(dir.path(), &key).await, Vec::<String>::new());
        b.tamper(&format!("DELETE FROM audit_log WHERE seq > {}", head - 2)).await;
        // The signed checkpoint, kept outside the database, names it without any server.
        let problems = b.against_checkpoints(dir.path(), &key).await;
        assert!(
            problems[0].starts_with(&format!("truncated: the chain ends at entry {}", head - 2)),
            "{problems:?}"
        );
        let (online, offline) = b.verify().await;
        assert_eq!(online["ok"], false, "pg={pg}: {online}");
        let problem = online["first_bad"]["problem"].as_str().unwrap();
        assert!(problem.contains("cut short"), "{problem}");
        // Offline, the versions the lost entries recorded have no entry any more.
        assert_eq!(offline["ok"], false, "pg={pg}: {offline}");
        let problem = offline["bad_rows"][0]["problem"].as_str().unwrap();
        assert!(problem.contains("no audit entry records version"), "{problem}");
    }
}

#[tokio::test]
async fn an_entry_rewritten_and_chained_again_fails_the_servers_verification() {
    for pg in BOTH {
        let b = bench(pg).await;
        let (online, _) = b.verify().await;
        assert_eq!(online["ok"], true);
        let (dir, key) = b.checkpoint().await;
        let rows = b.state.store.audit(0, 1000).await.unwrap();
        // Rewrite entry 2's actor, then recompute every hash after it so the chain verifies.
        let mut prev = rows[0].entry.hash.clone();
        for row in &rows[1..] {
            let mut doc: Value = serde_json::from_str(&row.entry.canonical).unwrap();
            if row.entry.seq == 2 {
                doc["actor"] = json!("mallory");
            }
            doc["prev_hash"] = json!(prev);
            let canonical = wavegate_core::canonical::canonical_json(&doc);
            let hash = wavegate_core::audit::entry_hash(&prev, &canonical);
            b.tamper(&format!(
                "UPDATE audit_log SET canonical = '{}', hash = '{hash}', prev_hash = '{prev}', actor = '{}' WHERE seq = {}",
                canonical.replace('\'', "''"),
                doc["actor"].as_str().unwrap(),
                row.entry.seq
            ))
            .await;
            prev = hash;
        }
        let (online, offline) = b.verify().await;
        assert_eq!(offline["first_bad"], Value::Null, "the rewritten chain verifies on its own");
        let problems = b.against_checkpoints(dir.path(), &key).await;
        let last = rows.last().unwrap().entry.seq;
        assert!(
            problems[0].starts_with(&format!("rewritten: entry {last} has hash")),
            "{problems:?}"
        );
        assert_eq!(online["ok"], false, "pg={pg}: {online}");
        let problem = online["first_bad"]["problem"].as_str().unwrap();
        assert!(problem.contains("rewritten"), "{problem}");
        let (_, ready) = b.get("/readyz").await;
        assert!(ready.as_str().unwrap().contains("rewritten"), "{ready}");
    }
}
