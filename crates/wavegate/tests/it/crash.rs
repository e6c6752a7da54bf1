//! A crash loop: a server with a rollout in flight and event traffic is killed (`kill -9`) 20
//! times at moments a seeded generator picks (while a batch may be in flight) and restarted on
//! the same SQLite file. After every restart the audit chain verifies and no transition
//! happened twice; now and then, and at the end, the exposure served to 2,000 users is exactly
//! what the current wave's percentage gives by the bucket formula; at the end every
//! acknowledged event is counted exactly once (a batch whose answer the kill lost is retried
//! with its idempotency key and not counted again).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};
use wavegate_testkit::http::{request, request_with};

use crate::support::{ADMIN, Server, eventually, start_with, write};

const ROLLOUT_PLAN: &str = "crash-loop";

fn plan() -> String {
    Plan::new(ROLLOUT_PLAN, "checkout")
        .release("version: 1.0.0, risk: low")
        .owners("{ requester: alice }")
        .waves(&[
            "{ exposure: 5%, hold: 2s }",
            "{ exposure: 25%, hold: 2s }",
            "{ exposure: 50%, hold: 2s }",
            // Held long: the rollout stays live, so every batch counts its 10 users.
            "{ exposure: 100%, hold: 1h }",
        ])
        .to_string()
}

fn serve(db: &std::path::Path) -> Server {
    start_with(db, Some(ADMIN), &["--tick", "100ms"])
}

/// A small deterministic generator (xorshift), so the kill moments repeat run to run.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A batch of exposures for `users`, each under both variants: the one the rollout's rule
/// serves counts, the other is stale.
fn batch(users: std::ops::Range<usize>) -> Value {
    let events: Vec<Value> = users
        .flat_map(|i| {
            let ctx = json!({"targetingKey": format!("user-{i}")});
            ["on", "off"].map(
                |v| json!({"type": "exposure", "flag": "checkout", "variant": v, "context": ctx}),
            )
        })
        .collect();
    json!({ "events": events })
}

/// The next batch's number, and the batch (key, body) waiting for its acknowledgement.
type Pending = (usize, Option<(String, Value)>);

/// What the traffic saw acknowledged: batches, and how many of them were retries whose first
/// copy had been committed before its answer was lost.
#[derive(Default)]
struct Acked {
    batches: AtomicUsize,
    duplicates: AtomicUsize,
}

/// Posts batches (each with its own idempotency key, retried with it until acknowledged) until
/// told to stop; a failed send leaves the batch to be retried by the next round.
fn traffic(
    url: String,
    token: String,
    next: Arc<Mutex<Pending>>,
    acked: Arc<Acked>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let (key, body) = {
            let mut n = next.lock().unwrap();
            if n.1.is_none() {
                let i = n.0;
                n.0 += 1;
                n.1 = Some((format!("crash-batch-{i}"), batch(i * 10..i * 10 + 10)));
            }
            n.1.clone().unwrap()
        };
        let headers = [("idempotency-key", key.as_str()), ("x-wavegate-environment", "prod")];
        let (status, answer) = request_with(
            "POST",
            &format!("{url}/api/v1/events"),
            Some(&token),
            &headers,
            Some(&body),
        );
        if status != 202 {
            return; // the server is gone; the batch waits for the next one
        }
        let answer: Value = serde_json::from_str(&answer).unwrap();
        // Each batch counts its 10 users once: when first committed, or, for a retry whose
        // first answer was lost to the kill, already before (then it is a duplicate).
        if answer["duplicate"] == json!(true) {
            acked.duplicates.fetch_add(1, Ordering::SeqCst);
        } else {
            assert_eq!(answer["counted"], 10, "{answer}");
        }
        acked.batches.fetch_add(1, Ordering::SeqCst);
        next.lock().unwrap().1 = None;
    }
}

fn admin(url: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let (status, text) = request(method, &format!("{url}{path}"), Some(ADMIN), body);
    assert!((200..300).contains(&status), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The exposure served to 2,000 users is exactly the wave's: `on` for the users whose bucket
/// is below its percentage. (Read again when the controller promoted during the reading.)
fn served_matches_the_wave(url: &str, client: &str, id: &str) {
    let exposure =
        || admin(url, "GET", &format!("/api/v1/rollouts/{id}"), None)["exposure"].clone();
    loop {
        let before = exposure();
        let served: Vec<Value> = (0..2000)
            .map(|i| {
                let (status, text) = request(
                    "POST",
                    &format!("{url}/ofrep/v1/evaluate/flags/checkout"),
                    Some(client),
                    Some(&json!({"context": {"targetingKey": format!("user-{i}")}})),
                );
                assert_eq!(status, 200, "{text}");
                serde_json::from_str::<Value>(&text).unwrap()["value"].clone()
            })
            .collect();
        if exposure() != before {
            continue;
        }
        let pct = before.as_str().unwrap().trim_end_matches('%').parse::<f64>().unwrap();
        let p = (pct * 100.0).round() as u16;
        for (i, got) in served.iter().enumerate() {
            let key = format!("user-{i}");
            let expected = wavegate_core::bucket::bucket("checkout", &key) < p;
            assert_eq!(*got, json!(expected), "{key} at {before}");
        }
        return;
    }
}

#[test]
fn a_crash_loop_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let mut server = serve(&db);
    let url = server.url.clone();
    let flags = write(dir.path(), "flags.yaml", &on_off(&["checkout"]));
    crate::support::cli_json(&url, ADMIN, &["flag", "apply", "-f", flags.to_str().unwrap()]);
    let plan_file = write(dir.path(), "plan.yaml", &plan());
    crate::support::cli_json(&url, ADMIN, &["plan", "apply", "-f", plan_file.to_str().unwrap()]);
    let alice = admin(
        &url,
        "POST",
        "/api/v1/tokens",
        Some(&json!({"kind": "admin", "environments": ["prod"], "principal": "alice"})),
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = {
        let (status, text) = request(
            "POST",
            &format!("{url}/api/v1/rollouts"),
            Some(&alice),
            Some(&json!({"plan": ROLLOUT_PLAN})),
        );
        assert_eq!(status, 201, "{text}");
        serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let sdk = admin(
        &url,
        "POST",
        "/api/v1/tokens",
        Some(&json!({"kind": "server-sdk", "environments": ["prod"]})),
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = admin(
        &url,
        "POST",
        "/api/v1/tokens",
        Some(&json!({"kind": "client-sdk", "environments": ["prod"]})),
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let next = Arc::new(Mutex::new((0usize, None)));
    let acked = Arc::new(Acked::default());
    let mut rng = Seeded(0x5eed_cafe_f00d);
    for round in 0..20 {
        let url = server.url.clone();
        // Traffic until the kill; the kill comes after a seeded number of acknowledged
        // batches, while the next batch may be in flight.
        let stop = Arc::new(AtomicBool::new(false));
        let before = acked.batches.load(Ordering::SeqCst);
        let wait_for = 1 + rng.below(4) as usize;
        let poster = {
            let (url, sdk, next, acked, stop) =
                (url.clone(), sdk.clone(), next.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || traffic(url, sdk, next, acked, stop))
        };
        eventually("traffic to flow", Duration::from_secs(30), || {
            acked.batches.load(Ordering::SeqCst) >= before + wait_for || poster.is_finished()
        });
        server.kill_9();
        stop.store(true, Ordering::SeqCst);
        poster.join().unwrap();
        server = serve(&db);
        let url = server.url.clone();

        // After every restart: the chain verifies, and no transition happened twice.
        let v = admin(&url, "GET", "/api/v1/audit/verify", None);
        assert_eq!(v["ok"], true, "round {round}: {v}");
        let audit =
            admin(&url, "GET", &format!("/api/v1/audit?target=rollout:{id}&limit=1000"), None);
        let mut seen = std::collections::BTreeSet::new();
        for e in audit.as_array().unwrap() {
            let action = e["action"].as_str().unwrap();
            if action == "rollout.hold" {
                continue;
            }
            let d = &e["details"];
            let key = (action.to_owned(), format!("{}{}", d["wave"], d["to_wave"]));
            assert!(seen.insert(key.clone()), "round {round}: {key:?} twice: {audit:#}");
        }
        if round % 5 == 4 {
            served_matches_the_wave(&url, &client, &id);
        }
    }

    // Let the last batch through, then compare what was acknowledged with what is stored.
    let stop = Arc::new(AtomicBool::new(false));
    let poster = {
        let (url, sdk, next, acked, stop) =
            (server.url.clone(), sdk.clone(), next.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || traffic(url, sdk, next, acked, stop))
    };
    let target = acked.batches.load(Ordering::SeqCst) + 2;
    eventually("the last batches", Duration::from_secs(30), || {
        acked.batches.load(Ordering::SeqCst) >= target
    });
    stop.store(true, Ordering::SeqCst);
    poster.join().unwrap();
    served_matches_the_wave(&server.url, &client, &id);
    drop(server);
    let counted = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = wavegate_store::SqlStore::open(db.to_str().unwrap()).await.unwrap();
        use wavegate_store::Store as _;
        let mut n = 0.0;
        for wave in 0..4 {
            for a in store.aggregates(&id, wave, &[]).await.unwrap() {
                if a.metric == "exposure" {
                    n += a.n;
                }
            }
        }
        n
    });
    let batches = acked.batches.load(Ordering::SeqCst);
    println!(
        "{batches} batches acknowledged ({} of them retries of a committed batch)",
        acked.duplicates.load(Ordering::SeqCst)
    );
    assert_eq!(counted, (10 * batches) as f64, "every acknowledged event counted exactly once");
}
