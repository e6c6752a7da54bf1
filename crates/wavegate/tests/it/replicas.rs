//! Several `wavegate serve` replicas on one PostgreSQL database: one leads the controller, a
//! `kill -9` of the leader hands the rollout to another replica, no transition is lost or
//! applied twice, the audit chain verifies, and every replica serves the same flag version.
//!
//! PostgreSQL: `WAVEGATE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`); each run
//! makes (and drops) its own database with `psql`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};
use wavegate_testkit::http;
use wavegate_testkit::postgres::Database;
use wavegate_testkit::signals::exposures;

use crate::support::{
    ADMIN, Server, apply, cli, cli_json, eventually, post_json, start_rollout, start_with, stdout,
    token,
};

/// Three waves (10% → 50% → 100%) with holds of a few seconds; alice requests.
fn plan() -> String {
    Plan::new("checkout-replicas", "checkout")
        .release("version: 3.0.0, risk: low")
        .owners("{ requester: alice }")
        .waves(&[
            "{ exposure: 10%, hold: 4s }",
            "{ exposure: 50%, hold: 3s }",
            "{ exposure: 100%, hold: 1s }",
        ])
        .to_string()
}

const TICK: &str = "100ms";
/// The leadership lease: a leader that stops renewing is replaced within three of these.
const LEASE: &str = "1s";

/// `wavegate_controller_leader` from a replica's /metrics (None if it does not answer).
fn leads(server: &Server) -> Option<bool> {
    let text = http::get(&format!("{}/metrics", server.url))?;
    let line = text.lines().find(|l| l.starts_with("wavegate_controller_leader "))?;
    Some(line.ends_with(" 1"))
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
    let db = Database::create("wavegate_it").unwrap();
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let mut replicas = replicas_on(&url, 3);
    let urls: Vec<String> = replicas.iter().map(|s| s.as_ref().unwrap().url.clone()).collect();

    let mut first = Vec::new();
    eventually("exactly one leader", Duration::from_secs(30), || {
        first = leader_of(&replicas);
        first.len() == 1
    });
    let leader = first[0];
    let other = (leader + 1) % 3;

    // Changes made through one replica are served by all.
    apply(&urls[other], dir.path(), "flag", "flags.yaml", &on_off(&["checkout"]));
    apply(&urls[other], dir.path(), "plan", "plan.yaml", &plan());
    let alice = token(&urls[other], "admin", "prod", "alice");
    let sdk = token(&urls[other], "server-sdk", "prod", "svc");
    let id = start_rollout(&urls[(leader + 2) % 3], &alice, "checkout-replicas");

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
                let (status, b) =
                    post_json(&format!("{url}/api/v1/events"), &sdk, &json!({"events": events}));
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
    assert_eq!(exposures(&st), f64::from(counted), "{st}");

    // Let the leader promote once, then kill it mid-rollout.
    eventually("the leader's first promotion", Duration::from_secs(60), || {
        cli_json(&urls[other], ADMIN, &["rollout", "status", &id])["wave"] == json!(2)
    });
    let killed_at = Instant::now();
    replicas[leader].take().unwrap().kill_9();
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

/// Sends `signal` (`STOP`, `CONT`) to a process.
fn signal(server: &Server, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &server.child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{signal}");
}

/// A hung leader (SIGSTOP: its connections stay open, so nothing on the database side ends)
/// is replaced once its lease lapses, within three lease periods; when it wakes, its writes
/// are fenced and it stands by.
#[test]
fn a_hung_leader_is_replaced_within_three_leases() {
    let db = Database::create("wavegate_it").unwrap();
    let url = db.url();
    let replicas = replicas_on(&url, 2);
    let mut first = Vec::new();
    eventually("exactly one leader", Duration::from_secs(30), || {
        first = leader_of(&replicas);
        first.len() == 1
    });
    let leader = first[0];
    let other = 1 - leader;
    let hung = replicas[leader].as_ref().unwrap();
    signal(hung, "STOP");
    let stopped_at = Instant::now();
    eventually("the other replica to lead", Duration::from_secs(30), || {
        replicas[other].as_ref().is_some_and(|s| leads(s) == Some(true))
    });
    let takeover = stopped_at.elapsed();
    println!("leader {leader} hung; replica {other} leads after {:.2}s", takeover.as_secs_f64());
    signal(hung, "CONT");
    assert!(takeover < Duration::from_secs(3), "took over after {takeover:?}, more than 3 leases");
    // Woken, the old leader finds the lease taken and stands by; one leader at a time.
    eventually("the woken replica to stand by", Duration::from_secs(30), || {
        leads(hung) == Some(false)
    });
    assert_eq!(leader_of(&replicas), [other]);
    let audit = cli_json(
        &replicas[other].as_ref().unwrap().url,
        ADMIN,
        &["audit", "list", "--limit", "1000"],
    );
    let leads: Vec<&Value> =
        audit.as_array().unwrap().iter().filter(|e| e["action"] == "controller.lead").collect();
    assert_eq!(leads.len(), 2, "two leaderships, each once: {leads:#?}");
}

/// `n` replicas on the database at `url`, with the tests' tick and leader lease.
fn replicas_on(url: &str, n: usize) -> Vec<Option<Server>> {
    (0..n)
        .map(|_| {
            Some(start_with(
                std::path::Path::new(url),
                Some(ADMIN),
                &["--tick", TICK, "--leader-lease", LEASE],
            ))
        })
        .collect()
}
