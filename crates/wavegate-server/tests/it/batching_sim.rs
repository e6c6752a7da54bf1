//! Batching clients across wave changes, simulated in process (issue 18 item 1): guarded
//! rollouts driven by the real event ingest and the real controller on an injected clock, with
//! applications whose SDKs hold events for 0–10 s, lose some batches (before and after the
//! commit) and retry them with their idempotency keys, while waves change under them.
//!
//! - 100 healthy rollouts (A/A): no sample-ratio pause, and no more guardrail false alarms
//!   than the same seeds with every event delivered the moment it is evaluated;
//! - a regressed variant is caught after no more samples than with instant delivery (5% slack;
//!   both are counted samples at the deciding tick, so the tick's granularity is in both);
//! - the same batching clients *without* the version and time stamps (old clients) do trip the
//!   sample-ratio check, which shows the simulation can tell.

use std::collections::VecDeque;

use serde_json::json;
use wavegate_core::wire::Event;
use wavegate_core::{Context, evaluate_in};
use wavegate_rollout::machine::State;
use wavegate_rollout::sim::Rng;
use wavegate_server::clock::Clock as _;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{TestApp, errors_guardrail, spawn_app};

/// Users evaluating the flag each simulated second.
const RATE: usize = 60;
/// Application instances (each with its own SDK queue).
const CLIENTS: usize = 6;
/// The controller's tick, in simulated seconds.
const TICK: i64 = 2;
/// Seconds of traffic before the rollout starts (their events are sent after it).
const WARM_UP: i64 = 10;
/// Longest simulated run of one rollout.
const MAX_SECONDS: i64 = 900;
/// Error rate of the control variant.
const BASE_ERROR: f64 = 0.01;

fn plan() -> String {
    let waves = ["{ exposure: 20% }", "{ exposure: 50% }", "{ exposure: 100% }"];
    Plan::new("p", "checkout").section(&errors_guardrail(100)).waves(&waves).to_string()
}

/// How events reach the server.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Delivery {
    /// In the second they are evaluated, never lost.
    Instant,
    /// Batched for 0–10 s per send, some sends lost and retried; stamped with `version` and
    /// `at` as the Rust SDK does (`stamped`), or not (old clients).
    Batched { stamped: bool },
}

/// How one simulated rollout ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Completed,
    SampleRatioPause,
    GuardrailStop { wave: i64, samples: f64 },
    Other(String),
    Undecided,
}

/// One application instance's SDK queue.
#[derive(Default)]
struct Sdk {
    pending: Vec<Event>,
    /// Batches sent and not acknowledged, oldest first, with their keys: retried unchanged.
    unacked: VecDeque<(String, Vec<Event>)>,
    next_flush: i64,
}

/// Runs one rollout of `seed` whose new variant errs at `treatment_error`.
async fn run(seed: u64, delivery: Delivery, treatment_error: f64) -> End {
    let app = spawn_app().await;
    app.prepare(&on_off(&["checkout"]), &plan()).await;
    let mut rng = Rng::new(seed);
    let mut sdks: Vec<Sdk> = (0..CLIENTS).map(|_| Sdk::default()).collect();
    let mut id = None;
    let mut user = 0usize;
    let mut keys = 0usize;
    for second in -WARM_UP..MAX_SECONDS {
        if second == 0 {
            id = Some(app.start("p").await);
        }
        app.clock.advance(chrono::Duration::seconds(1));
        let at = app.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        // Users evaluate and report, each through one application instance.
        let snap = app.state.snapshot.load();
        let flags = snap.flags.get("prod").unwrap();
        let flag = flags.get("checkout").unwrap();
        let mut instant = Vec::new();
        for _ in 0..RATE {
            user += 1;
            let context = json!({"targetingKey": format!("s{seed}-u{user}")});
            let r = evaluate_in(flag, &Context::from_json(&context).unwrap(), flags);
            let p = if r.variant == "on" { treatment_error } else { BASE_ERROR };
            let mut exposure = Event::exposure("checkout", r.variant, context.clone());
            let mut outcome = Event::outcome("checkout", r.variant, context);
            outcome.error = Some(rng.uniform() < p);
            if delivery == (Delivery::Batched { stamped: true }) {
                for e in [&mut exposure, &mut outcome] {
                    e.version = flag.version();
                    e.at = Some(at.clone());
                }
            }
            if delivery == Delivery::Instant {
                instant.extend([exposure, outcome]);
            } else {
                let sdk = &mut sdks[(rng.uniform() * CLIENTS as f64) as usize];
                sdk.pending.extend([exposure, outcome]);
            }
        }
        drop(snap);
        if !instant.is_empty() {
            ingest(&app, instant, None).await;
        }
        for sdk in &mut sdks {
            if sdk.next_flush > second {
                continue;
            }
            sdk.next_flush = second + (rng.uniform() * 11.0) as i64;
            if !sdk.pending.is_empty() {
                keys += 1;
                sdk.unacked
                    .push_back((format!("k{seed}-{keys}"), std::mem::take(&mut sdk.pending)));
            }
            // Oldest first; a failed send stops this flush (the SDK retries it next time).
            while let Some((key, batch)) = sdk.unacked.front() {
                let luck = rng.uniform();
                if luck < 0.1 {
                    break; // lost before the server saw it
                }
                ingest(&app, batch.clone(), Some(key)).await;
                if luck < 0.15 {
                    break; // committed, but the answer was lost: sent again later
                }
                sdk.unacked.pop_front();
            }
        }
        if let Some(id) = &id
            && second % TICK == 0
        {
            app.tick().await;
            let (_, r) = wavegate_server::service::rollouts::get(&app.state, id).await.unwrap();
            let end = match &r.state {
                State::Running { .. } => continue,
                State::Completed => End::Completed,
                State::Paused { reason } if reason.contains("sample-ratio") => {
                    End::SampleRatioPause
                }
                State::RolledBack { reason } if reason.contains("guardrail") => {
                    let rows = app.state.store.aggregates(id, r.wave as i64, &[]).await.unwrap();
                    let samples = rows.iter().filter(|a| a.metric == "error").map(|a| a.n).sum();
                    End::GuardrailStop { wave: r.wave as i64, samples }
                }
                other => End::Other(format!("{other:?}")),
            };
            return end;
        }
    }
    End::Undecided
}

async fn ingest(app: &TestApp, events: Vec<Event>, key: Option<&str>) {
    wavegate_server::service::events::ingest(&app.state, "prod", "tok_sim", events, key)
        .await
        .unwrap();
}

/// Runs `seeds` with `delivery`, two at a time.
async fn runs(seeds: std::ops::Range<u64>, delivery: Delivery, treatment_error: f64) -> Vec<End> {
    let mut out = Vec::new();
    let seeds: Vec<u64> = seeds.collect();
    for pair in seeds.chunks(2) {
        let tasks: Vec<_> = pair
            .iter()
            .map(|&s| tokio::spawn(async move { run(s, delivery, treatment_error).await }))
            .collect();
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

fn count(ends: &[End], what: impl Fn(&End) -> bool) -> usize {
    ends.iter().filter(|e| what(e)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batching_clients_do_not_bias_healthy_rollouts() {
    let batched = runs(0..100, Delivery::Batched { stamped: true }, BASE_ERROR).await;
    let instant = runs(0..100, Delivery::Instant, BASE_ERROR).await;
    let srm = count(&batched, |e| *e == End::SampleRatioPause);
    let false_alarms = |ends: &[End]| count(ends, |e| matches!(e, End::GuardrailStop { .. }));
    println!(
        "A/A, 100 rollouts: batched {} completed, {srm} sample-ratio pauses, {} guardrail stops; \
         instant {} completed, {} guardrail stops",
        count(&batched, |e| *e == End::Completed),
        false_alarms(&batched),
        count(&instant, |e| *e == End::Completed),
        false_alarms(&instant),
    );
    assert_eq!(srm, 0, "{batched:?}");
    assert!(false_alarms(&batched) <= false_alarms(&instant), "{batched:?} vs {instant:?}");
    assert_eq!(count(&batched, |e| *e == End::Completed), 100 - false_alarms(&batched));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstamped_batching_clients_trip_the_sample_ratio_check() {
    let old = runs(0..20, Delivery::Batched { stamped: false }, BASE_ERROR).await;
    let srm = count(&old, |e| *e == End::SampleRatioPause);
    println!("A/A, 20 rollouts with unstamped batching clients: {srm} sample-ratio pauses");
    assert!(srm >= 10, "{old:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_is_caught_after_as_many_samples_as_with_instant_delivery() {
    let regressed = 0.08;
    let batched = runs(1000..1100, Delivery::Batched { stamped: true }, regressed).await;
    let instant = runs(1000..1100, Delivery::Instant, regressed).await;
    let samples = |ends: &[End]| -> f64 {
        let n: Vec<f64> = ends
            .iter()
            .map(|e| match e {
                End::GuardrailStop { wave: 0, samples } => *samples,
                other => panic!("the regression was not caught in wave 1: {other:?}"),
            })
            .collect();
        n.iter().sum::<f64>() / n.len() as f64
    };
    let (b, i) = (samples(&batched), samples(&instant));
    println!(
        "regressed 1% → 8%: mean samples to the rollback batched {b:.0}, instant {i:.0} ({:.3}×)",
        b / i
    );
    // As fast: no more than 5% more samples. Far fewer would mean events counted twice.
    assert!(b / i <= 1.05 && b / i >= 0.85, "batched {b} vs instant {i}");
}
