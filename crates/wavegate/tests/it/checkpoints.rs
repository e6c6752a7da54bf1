//! Issue 16, item 2: signed checkpoints anchor the audit chain outside the database. A server
//! with `--checkpoint-key` and `--checkpoint-dir` signs the head; `wavegate audit verify
//! --checkpoints` then finds a log cut short, online and offline (`--db`, no server).

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sqlx::Executor as _;

use crate::support::{ADMIN, FLAGS, apply, bin, cli, cli_json, eventually, start_with, stdout};

/// `wavegate audit keygen --out <path> --json`: its answer.
fn keygen(path: &std::path::Path) -> std::process::Output {
    Command::new(bin())
        .args(["audit", "keygen", "--json", "--out"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn offline(db: &std::path::Path, cps: &std::path::Path, key: &str) -> std::process::Output {
    Command::new(bin())
        .args(["audit", "verify", "--db"])
        .arg(db)
        .arg("--checkpoints")
        .arg(cps)
        .args(["--public-key", key])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_checkpoints_find_a_log_cut_short_with_or_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, cps, db) =
        (dir.path().join("k.pem"), dir.path().join("cps"), dir.path().join("w.db"));
    let o = keygen(&key_file);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let made: Value = serde_json::from_slice(&o.stdout).unwrap();
    let key = made["public_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ed25519:"), "{made}");
    assert_eq!(keygen(&key_file).status.code(), Some(2), "an existing key is never overwritten");

    let args = [
        "--checkpoint-key",
        key_file.to_str().unwrap(),
        "--checkpoint-dir",
        cps.to_str().unwrap(),
        "--checkpoint-interval",
        "100ms",
    ];
    let mut server = start_with(&db, Some(ADMIN), &args);
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", FLAGS);
    let edited = FLAGS.replace("red: \"#f00\"", "red: \"#a00\"");
    apply(&url, dir.path(), "flag", "edited.yaml", &edited);
    let head = cli_json(&url, ADMIN, &["audit", "verify"])["verified"].as_i64().unwrap();
    let (status, served) = wavegate_testkit::http::request(
        "GET",
        &format!("{url}/api/v1/audit/checkpoint"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{served}");
    assert!(served.contains(&key), "the server serves its public key: {served}");
    eventually("a checkpoint of the head", Duration::from_secs(30), || {
        wavegate_server::checkpoint::read_dir(&cps).is_ok_and(|c| c.iter().any(|c| c.seq == head))
    });
    let o = cli(
        &url,
        Some(ADMIN),
        &["audit", "verify", "--checkpoints", cps.to_str().unwrap(), "--public-key", &key],
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("checkpoints match the chain"), "{}", stdout(&o));
    server.kill_9();
    drop(server);

    // Someone with the database cuts the last two entries off (the append-only triggers out of
    // the way). The chain that is left verifies on its own; the checkpoints say it is short.
    let raw = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let triggers: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .fetch_all(&raw)
            .await
            .unwrap();
    for (t,) in triggers {
        raw.execute(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}"))).await.unwrap();
    }
    raw.execute(sqlx::AssertSqlSafe(format!("DELETE FROM audit_log WHERE seq > {}", head - 2)))
        .await
        .unwrap();
    raw.close().await;
    let o = offline(&db, &cps, &key);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("truncated: the chain ends at entry {}", head - 2)), "{out}");

    // A server restarted on it with its checkpoints says so at once, and signs no more.
    let server = start_with(&db, Some(ADMIN), &args);
    eventually("the restarted server to name the cut", Duration::from_secs(30), || {
        let ready = wavegate_testkit::http::get(&format!("{}/readyz", server.url));
        ready.unwrap_or_default().contains("truncated: the chain ends at entry")
    });
    let (_, served) = wavegate_testkit::http::request(
        "GET",
        &format!("{}/api/v1/audit/checkpoint", server.url),
        Some(ADMIN),
        None,
    );
    assert!(served.contains("\"latest\":null"), "nothing signed over a cut log: {served}");
    drop(server);

    // Checkpoints signed by another key are not trusted.
    let other = keygen(&dir.path().join("other.pem"));
    let other: Value = serde_json::from_slice(&other.stdout).unwrap();
    let o = offline(&db, &cps, other["public_key"].as_str().unwrap());
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("not by the trusted key"), "{}", stdout(&o));
}
