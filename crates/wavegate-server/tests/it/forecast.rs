//! Issue 18, item 4: the `plan lint --traffic` forecast against a real server. Seeded
//! synthetic traffic at the plan's stated rate goes through `POST /api/v1/events`; the injected
//! clock advances one controller tick at a time and the controller ticks; the mean time to a
//! verdict over several seeded rollouts must be within 1.3× of the forecast, both ways, for a
//! healthy wave (time to the promotion) and for a 1% → 2% error regression (time to the
//! rollback).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_rollout::forecast::{Forecast, Options, forecast};
use wavegate_rollout::sim::Rng;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{TestApp, spawn_app};

/// Requests per second the plan states (the guardrail's `traffic`).
const TRAFFIC: u64 = 20;
/// Seconds per controller tick (`serve --tick`'s default).
const TICK: u64 = 10;
/// The first wave's exposure, in basis points.
const EXPOSURE_BP: u16 = 2000;
/// Seeded rollouts per scenario.
const RUNS: usize = 16;
/// Error rates: the baseline, and the regressed variant's.
const BASE_RATE: f64 = 0.01;
const BAD_RATE: f64 = 0.02;

/// A plan for `flag`: a 20% wave held a minute, then everyone, behind an error guardrail whose
/// design effect is the one-point regression the test injects, needing 1,000 samples per arm.
fn plan(name: &str, flag: &str) -> String {
    let guardrail = format!(
        "guardrails:
  - {{ name: errors, metric: error, comparison: absolute, tolerance: 0.01, mde: 0.01, min_sample: 1000, traffic: {TRAFFIC}, baseline: {{ rate: {BASE_RATE} }}, action: rollback }}
runbook: {{ errors: look }}
"
    );
    Plan::new(name, flag)
        .section(&guardrail)
        .waves(&["{ exposure: 20%, hold: 1m }", "{ exposure: 100% }"])
        .to_string()
}

/// One rollout the test drives.
struct Driven {
    id: String,
    flag: String,
    regressed: bool,
    /// Seconds from the start to the promotion or the rollback, and which it was.
    verdict: Option<(u64, &'static str)>,
}

/// One tick's traffic for `r`: `TRAFFIC × TICK` new users, each served the variant the
/// rollout rule gives them, each failing at its variant's rate.
fn traffic(r: &Driven, tick: u64, rng: &mut Rng, out: &mut Vec<Value>) {
    for i in 0..TRAFFIC * TICK {
        let user = format!("u{tick}-{i}");
        let on = wavegate_core::bucket::bucket(&r.flag, &user) < EXPOSURE_BP;
        let rate = if on && r.regressed { BAD_RATE } else { BASE_RATE };
        out.push(
            json!({"type": "outcome", "flag": r.flag, "variant": if on { "on" } else { "off" },
            "context": {"targetingKey": user}, "error": rng.uniform() < rate}),
        );
    }
}

/// Mean of the verdicts of `kind` among `runs`, and how many there were.
fn mean(runs: &[Driven], regressed: bool, kind: &str) -> (f64, usize) {
    let xs: Vec<f64> = runs
        .iter()
        .filter(|r| r.regressed == regressed)
        .filter_map(|r| r.verdict.filter(|v| v.1 == kind).map(|v| v.0 as f64))
        .collect();
    (xs.iter().sum::<f64>() / xs.len().max(1) as f64, xs.len())
}

async fn start_all(app: &TestApp) -> Vec<Driven> {
    let flags: Vec<String> = (0..2 * RUNS).map(|i| format!("fc-{i}")).collect();
    let keys: Vec<&str> = flags.iter().map(String::as_str).collect();
    let r = app.apply_yaml(&on_off(&keys)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut out = Vec::new();
    for (i, flag) in flags.into_iter().enumerate() {
        let name = format!("plan-{flag}");
        let r = app.post_plan(&plan(&name, &flag)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = app.start(&name).await;
        out.push(Driven { id, flag, regressed: i >= RUNS, verdict: None });
    }
    out
}

#[tokio::test]
async fn issue_18_the_lint_forecast_matches_the_measured_time_to_a_verdict() {
    let (spec, findings) = wavegate_rollout::lint::lint(&plan("p", "f"));
    let spec = spec.unwrap_or_else(|| panic!("{findings:#?}"));
    let opts = Options { tick_secs: TICK as f64, ..Options::default() };
    let forecasts = forecast(&spec, &opts);
    let f: &Forecast = forecasts.iter().find(|f| f.wave == 1).expect("a wave-1 forecast");
    let (to_pass, to_fail) = (f.to_pass_secs.unwrap(), f.to_fail_secs.unwrap());

    let app = spawn_app().await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let mut runs = start_all(&app).await;
    let mut rng = Rng::new(0x18_04);
    // Ten times the slower forecast is far beyond any run's verdict.
    let max_ticks = (10.0 * to_pass.max(to_fail) / TICK as f64) as u64;
    for tick in 1..=max_ticks {
        let mut events = Vec::new();
        for r in runs.iter().filter(|r| r.verdict.is_none()) {
            traffic(r, tick, &mut rng, &mut events);
        }
        if events.is_empty() {
            break;
        }
        for batch in events.chunks(10_000) {
            let body = json!({"events": batch});
            let r = app.call(Method::POST, "/api/v1/events", Some(&sdk), Some(body)).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        }
        app.clock.advance(chrono::Duration::seconds(TICK as i64));
        app.tick().await;
        for r in runs.iter_mut().filter(|r| r.verdict.is_none()) {
            let status = app.rollout(&r.id).await;
            if status["state"] == "rolled_back" {
                r.verdict = Some((tick * TICK, "fail"));
            } else if status["wave"] == 2 {
                r.verdict = Some((tick * TICK, "pass"));
            } else {
                assert_eq!(status["state"], "running", "{status}");
            }
        }
    }
    let (pass, passed) = mean(&runs, false, "pass");
    let (fail, failed) = mean(&runs, true, "fail");
    let times = |regressed: bool| {
        runs.iter()
            .filter(|r| r.regressed == regressed)
            .map(|r| r.verdict.map_or("-".to_owned(), |v| format!("{}{}", v.0, &v.1[..1])))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("forecast vs measured, {RUNS} seeded rollouts each, {TRAFFIC} req/s, tick {TICK}s:");
    println!(
        "  healthy wave passes:  forecast {to_pass:.0}s (p90 {:.0}s), measured mean {pass:.0}s over {passed} passes; ratio {:.2}",
        f.pass_p90_secs.unwrap_or(f64::NAN),
        pass / to_pass
    );
    println!(
        "  1% → 2% regression:   forecast {to_fail:.0}s (p90 {:.0}s), measured mean {fail:.0}s over {failed} rollbacks; ratio {:.2}",
        f.fail_p90_secs.unwrap_or(f64::NAN),
        fail / to_fail
    );
    // What the first forecast said: Wald's expected samples alone, no min_sample, hold or tick.
    let e = f64::from(EXPOSURE_BP) / 10_000.0;
    let (i1, i0) = wavegate_rollout::forecast::wald_information(0.01, 0.05, 0.2);
    let per_sec = TRAFFIC as f64 * e * (1.0 - e) / (BASE_RATE * (1.0 - BASE_RATE));
    println!(
        "  the Wald-only forecast this replaces said pass {:.0}s, fail {:.0}s",
        i0 / per_sec,
        i1 / per_sec
    );
    println!("  healthy runs (s, p=pass f=fail): {}", times(false));
    println!("  regressed runs (s, p=pass f=fail): {}", times(true));
    println!("  forecast: {}", serde_json::to_string(f).unwrap());
    assert!(passed >= RUNS * 3 / 4, "most healthy waves pass: {}", times(false));
    assert!(failed >= RUNS * 3 / 4, "most regressions are caught: {}", times(true));
    for (what, measured, forecast) in [("pass", pass, to_pass), ("fail", fail, to_fail)] {
        let ratio = measured / forecast;
        assert!(
            (1.0 / 1.3..=1.3).contains(&ratio),
            "time to {what}: measured {measured:.0}s vs forecast {forecast:.0}s (ratio {ratio:.2})"
        );
    }
}
