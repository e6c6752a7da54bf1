//! Several `wavegate serve` replicas on one PostgreSQL database: one leads the controller, a
//! `kill -9` of the leader hands the rollout to another replica, no transition is lost or
//! applied twice, the audit chain verifies, and every replica serves the same flag version.
//!
//! PostgreSQL: `WAVEGATE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`); each run
//! makes (and drops) its own database with `psql`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ADMIN, Server, cli, cli_json, eventually, start_with, stdout, write};

const FLAGS: &str = r#"
flags:
  checkout:
    variants: { "on": true, "off": false }
    default: "off"
    environments:
      prod: { enabled: true }
"#;

const PLAN: &str = r#"
name: checkout-replicas
release: { name: checkout, version: 3.0.0, risk: low }
flag: checkout
new_variant: "on"
control_variant: "off"
environment: prod
owners: { requester: alice }
waves:
  - { exposure: 10%, hold: 4s }
  - { exposure: 50%, hold: 3s }
  - { exposure: 100%, hold: 1s }
"#;

const TICK: &str = "100ms";

pub(crate) fn pg_server() -> String {
    std::env::var("WAVEGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub(crate) struct Database(String);

impl Database {
    pub(crate) fn create() -> Database {
        let name = format!(
            "wavegate_it_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
        );
        psql(&format!("CREATE DATABASE {name}"));
        Database(name)
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/{}", pg_server(), self.0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-d", &format!("{}/postgres", pg_server()), "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .output();
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args(["-d", &format!("{}/postgres", pg_server()), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("run psql (PostgreSQL's client)");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `wavegate_controller_leader` from a replica's /metrics (None if it does not answer).
fn leads(server: &Server) -> Option<bool> {
    let text = http::blocking_get(&format!("{}/metrics", server.url))?;
    let line = text.lines().find(|l| l.starts_with("wavegate_controller_leader "))?;
    Some(line.ends_with(" 1"))
}

mod http {
    /// A tiny blocking GET over std (the tests' reqwest is async-only).
    pub fn blocking_get(url: &str) -> Option<String> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://")?;
        let (host, path) =
            rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut s = std::net::TcpStream::connect(host).ok()?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let (head, body) = buf.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    }
}

fn leader_of(replicas: &[Option<Server>]) -> Vec<usize> {
    replicas
        .iter()
        .enumerate()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| leads(s) == Some(true)))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_killed_leader_hands_the_rollout_to_another_replica() {
    let db = Database::create();
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Option<Server>> = (0..3)
        .map(|_| Some(start_with(std::path::Path::new(&url), Some(ADMIN), &["--tick", TICK])))
        .collect();
    let urls: Vec<String> = replicas.iter().map(|s| s.as_ref().unwrap().url.clone()).collect();

    let mut first = Vec::new();
    eventually("exactly one leader", Duration::from_secs(30), || {
        first = leader_of(&replicas);
        first.len() == 1
    });
    let leader = first[0];
    let other = (leader + 1) % 3;

    // Changes made through one replica are served by all.
    cli_json(
        &urls[other],
        ADMIN,
        &["flag", "apply", "-f", write(dir.path(), "flags.yaml", FLAGS).to_str().unwrap()],
    );
    cli_json(
        &urls[other],
        ADMIN,
        &["plan", "apply", "-f", write(dir.path(), "plan.yaml", PLAN).to_str().unwrap()],
    );
    let alice = cli_json(
        &urls[other],
        ADMIN,
        &["token", "create", "--kind", "admin", "--env", "prod", "--principal", "alice"],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sdk = cli_json(
        &urls[other],
        ADMIN,
        &["token", "create", "--kind", "server-sdk", "--env", "prod", "--principal", "svc"],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = cli_json(&urls[(leader + 2) % 3], &alice, &["rollout", "start", "checkout-replicas"])
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Events posted to every replica add up in the same aggregates. Each context is posted
    // under both variants: the one its rule serves counts, the other is stale.
    let mut counted = 0;
    for (r, url) in urls.iter().enumerate() {
        let events: Vec<Value> = (0..20)
            .flat_map(|i| {
                let ctx = json!({"targetingKey": format!("replica-{r}-user-{i}")});
                ["on", "off"].map(|v| json!({"type": "exposure", "flag": "checkout", "variant": v, "context": ctx}))
            })
            .collect();
        // A replica counts events once it has followed the rollout's start (the change feed
        // reaches it within moments); until then a batch counts nothing and stores nothing,
        // so posting it again is safe. A batch is judged against one snapshot: all or none.
        let mut body = Value::Null;
        eventually(
            &format!("replica {r} to count the rollout's events"),
            Duration::from_secs(30),
            || {
                let (status, b) = crate::support::post_json(
                    &format!("{url}/api/v1/events"),
                    &sdk,
                    &json!({"events": events}),
                );
                assert_eq!(status, 202, "{b}");
                body = b;
                body["counted"] != json!(0)
            },
        );
        assert_eq!(
            (body["counted"].clone(), body["stale"].clone()),
            (json!(20), json!(20)),
            "{body}"
        );
        counted += 20;
    }
    let st = cli_json(&urls[leader], ADMIN, &["rollout", "status", &id]);
    assert_eq!(st["wave"], 1, "read before the first promotion (4 s hold)");
    let exposures: f64 = st["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"] == "exposure")
        .map(|s| s["n"].as_f64().unwrap())
        .sum();
    assert_eq!(exposures, f64::from(counted), "{st}");

    // Let the leader promote once, then kill it mid-rollout.
    eventually("the leader's first promotion", Duration::from_secs(60), || {
        cli_json(&urls[other], ADMIN, &["rollout", "status", &id])["wave"] == json!(2)
    });
    let victim = replicas[leader].as_ref().unwrap().child.id();
    let killed_at = Instant::now();
    assert!(Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap().success());
    if let Some(mut s) = replicas[leader].take() {
        let _ = s.child.wait();
    }
    let mut next = Vec::new();
    eventually("another replica to lead", Duration::from_secs(30), || {
        next = leader_of(&replicas);
        next.len() == 1
    });
    let takeover = killed_at.elapsed();
    println!(
        "leader {leader} killed; replica {} leads after {:.2}s",
        next[0],
        takeover.as_secs_f64()
    );
    assert_ne!(next[0], leader);

    let survivor = &urls[next[0]];
    eventually("the rollout to complete under the new leader", Duration::from_secs(60), || {
        cli_json(survivor, ADMIN, &["rollout", "status", &id])["state"] == json!("completed")
    });

    // Every transition exactly once, across both leaders.
    let audit = cli_json(survivor, ADMIN, &["audit", "list", "--limit", "1000"]);
    let of_rollout: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == json!(format!("rollout:{id}")))
        .collect();
    let count = |a: &str| of_rollout.iter().filter(|e| e["action"] == a).count();
    assert_eq!(
        (count("rollout.start"), count("rollout.promote"), count("rollout.complete")),
        (1, 2, 1),
        "{of_rollout:#?}"
    );
    let leads: Vec<&Value> =
        audit.as_array().unwrap().iter().filter(|e| e["action"] == "controller.lead").collect();
    assert!(leads.len() >= 2, "both leaderships are on the record: {leads:#?}");
    let v = cli(survivor, Some(ADMIN), &["audit", "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));

    // Every live replica serves the same flag version, at 100%.
    let mut versions = Vec::new();
    for (i, s) in replicas.iter().enumerate() {
        let Some(s) = s else { continue };
        eventually(
            &format!("replica {i} to serve the final version"),
            Duration::from_secs(30),
            || {
                let f = cli_json(&s.url, ADMIN, &["flag", "get", "checkout"]);
                versions.push(f["version"].clone());
                f["version"] == cli_json(survivor, ADMIN, &["flag", "get", "checkout"])["version"]
            },
        );
        let e = cli_json(
            &s.url,
            ADMIN,
            &["eval", "checkout", "--env", "prod", "--context", r#"{"targetingKey":"user-1"}"#],
        );
        assert_eq!(e["value"], json!(true), "replica {i}: {e}");
    }
}
