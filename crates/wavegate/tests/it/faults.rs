//! The machine's worst days, against a real server: a full disk and a read-only database. While
//! the storage cannot write, readiness says why, writes answer 503 `storage_unavailable`,
//! `/metrics` shows it, and evaluation keeps serving from memory; when the cause goes away the
//! server recovers by itself, with no restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use wavegate_testkit::http::request;

use crate::support::{ADMIN, eventually, start, start_with};

/// A tmpfs of `size` mounted for the test (CI runs as root), unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "these tests mount a small tmpfs (as root, as CI runs)");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

const FLAG: &str = r#"{"variants": {"on": true, "off": false}, "default": "on", "environments": {"prod": {"enabled": true}}}"#;

fn flag_body(i: usize) -> Value {
    let mut v: Value = serde_json::from_str(FLAG).unwrap();
    v["description"] = json!("x".repeat(3000 + i % 7));
    v
}

fn ofrep(url: &str, token: &str) -> u16 {
    let body = json!({"context": {"targetingKey": "u1"}});
    request("POST", &format!("{url}/ofrep/v1/evaluate/flags/kept"), Some(token), Some(&body)).0
}

#[test]
fn a_full_disk_is_reported_honestly_and_recovered_from_without_a_restart() {
    let fs = Tmpfs::mount("6m");
    let server = start(&fs.path().join("w.db"), Some(ADMIN));
    let url = server.url.as_str();
    let put = |key: &str, body: &Value| {
        request("PUT", &format!("{url}/api/v1/flags/{key}"), Some(ADMIN), Some(body))
    };
    assert_eq!(put("kept", &serde_json::from_str(FLAG).unwrap()).0, 201);
    let client = client_token(url);
    assert_eq!(ofrep(url, &client), 200);

    // Fill the disk, then write until a write is refused.
    let filler = fill(fs.path(), 400 * 1024);
    let mut refused = None;
    for i in 0..2000 {
        let (status, body) = put(&format!("f{i}"), &flag_body(i));
        if status != 200 && status != 201 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the disk filled up");
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "storage_unavailable", "{body}");
    assert!(body["message"].as_str().unwrap().contains("disk is full"), "{body}");
    // Readiness and metrics say so within a second; evaluation keeps serving.
    let mut ready = (0, String::new());
    eventually("readiness to report the full disk", Duration::from_secs(5), || {
        ready = request("GET", &format!("{url}/readyz"), None, None);
        ready.0 == 503
    });
    assert!(ready.1.contains("disk is full"), "{}", ready.1);
    let metrics = request("GET", &format!("{url}/metrics"), None, None).1;
    assert!(metrics.contains("wavegate_storage_writable 0"), "{metrics}");
    assert_eq!(ofrep(url, &client), 200, "evaluation serves from memory");

    // Space returns: writes and readiness recover by themselves.
    std::fs::remove_file(filler).unwrap();
    eventually("writes to work again", Duration::from_secs(10), || {
        put("after", &serde_json::from_str(FLAG).unwrap()).0 == 201
    });
    eventually("readiness to recover", Duration::from_secs(5), || {
        request("GET", &format!("{url}/readyz"), None, None).0 == 200
    });
    let verify = request("GET", &format!("{url}/api/v1/audit/verify"), Some(ADMIN), None).1;
    assert!(verify.contains("\"ok\":true"), "{verify}");
}

#[test]
fn a_read_only_database_starts_degraded_and_says_so() {
    let fs = Tmpfs::mount("16m");
    let db = fs.path().join("w.db");
    {
        let server = start(&db, Some(ADMIN));
        let (status, _) = request(
            "PUT",
            &format!("{}/api/v1/flags/kept", server.url),
            Some(ADMIN),
            Some(&serde_json::from_str(FLAG).unwrap()),
        );
        assert_eq!(status, 201);
    }
    fs.remount("ro");
    let server = start(&db, Some(ADMIN));
    let url = server.url.as_str();
    let ready = request("GET", &format!("{url}/readyz"), None, None);
    assert_eq!(ready.0, 503, "{}", ready.1);
    assert!(ready.1.contains("read-only"), "{}", ready.1);
    let (status, body) = request(
        "PUT",
        &format!("{url}/api/v1/flags/other"),
        Some(ADMIN),
        Some(&serde_json::from_str(FLAG).unwrap()),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("storage_unavailable"), "{body}");
    let (status, body) = request("GET", &format!("{url}/api/v1/flags/kept"), Some(ADMIN), None);
    assert_eq!(status, 200, "reads go on: {body}");
    fs.remount("rw");
}

/// Writes a file that leaves about `leave` bytes free on the file system at `dir`.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let out = Command::new("df").args(["--output=avail", "-B1"]).arg(dir).output().unwrap();
    let avail: u64 =
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
    let path = dir.join("filler");
    std::fs::write(&path, vec![0u8; avail.saturating_sub(leave) as usize]).unwrap();
    path
}

#[test]
fn a_postgres_outage_fails_fast_and_is_survived_without_a_restart() {
    let cluster = wavegate_testkit::postgres::Cluster::start().expect("a throwaway cluster");
    let server = start_with(Path::new(&cluster.url()), Some(ADMIN), &["--tick", "100ms"]);
    let url = server.url.as_str();
    let put = |key: &str| {
        let body: Value = serde_json::from_str(FLAG).unwrap();
        request("PUT", &format!("{url}/api/v1/flags/{key}"), Some(ADMIN), Some(&body))
    };
    assert_eq!(put("kept").0, 201);
    let client = client_token(url);
    assert_eq!(ofrep(url, &client), 200);

    cluster.stop().unwrap();
    // Fast answers, not 30 s waits: readiness and writes say the storage is unavailable.
    let t = std::time::Instant::now();
    let mut ready = (0, String::new());
    eventually("readiness to report the outage", Duration::from_secs(10), || {
        ready = request("GET", &format!("{url}/readyz"), None, None);
        ready.0 == 503
    });
    assert!(t.elapsed() < Duration::from_secs(5), "readiness took {:?}", t.elapsed());
    assert!(ready.1.contains("storage unavailable"), "{}", ready.1);
    let t = std::time::Instant::now();
    let (status, body) = put("other");
    assert!(t.elapsed() < Duration::from_secs(5), "a write took {:?}", t.elapsed());
    assert!(body.contains("connection refused"), "the cause is named: {body}");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("storage_unavailable"), "{body}");
    assert_eq!(ofrep(url, &client), 200, "evaluation serves from memory");

    // The database comes back: everything recovers by itself.
    cluster.pg_ctl_start().unwrap();
    eventually("writes to work again", Duration::from_secs(30), || put("after").0 == 201);
    eventually("readiness to recover", Duration::from_secs(10), || {
        request("GET", &format!("{url}/readyz"), None, None).0 == 200
    });
}

/// PostgreSQL over TLS: with `sslmode=verify-full` and the cluster's CA as `sslrootcert` the
/// server connects (the cluster refuses plaintext, so it can only be TLS); `sslmode=disable`
/// is refused by the cluster and says so.
#[test]
fn postgres_over_tls_with_a_verified_certificate() {
    let cluster = wavegate_testkit::postgres::Cluster::start_tls().expect("a TLS cluster");
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        cluster.port,
        cluster.ca().display()
    );
    let server = start_with(Path::new(&url), Some(ADMIN), &["--tick", "100ms"]);
    let (status, _) = request(
        "PUT",
        &format!("{}/api/v1/flags/over-tls", server.url),
        Some(ADMIN),
        Some(&serde_json::from_str(FLAG).unwrap()),
    );
    assert_eq!(status, 201, "writes go over TLS");
    drop(server);
    let plain = format!("postgres://postgres@localhost:{}/postgres?sslmode=disable", cluster.port);
    let out = Command::new(crate::support::bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &plain])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no encryption") || err.contains("pg_hba"), "{err}");
}

/// A new prod client-sdk token of the server at `url`.
fn client_token(url: &str) -> String {
    let (status, body) = request(
        "POST",
        &format!("{url}/api/v1/tokens"),
        Some(ADMIN),
        Some(&json!({"kind": "client-sdk", "environments": ["prod"]})),
    );
    let body: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status}: {e}: {body}"));
    body["token"].as_str().unwrap().to_owned()
}
