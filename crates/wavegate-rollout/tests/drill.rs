//! Drills of the example plan against the example scenarios: each stop condition fires as the
//! plan intends, a clean release completes, and a plan without the right stop condition fails
//! its drill.

use wavegate_core::flagfile::parse_yaml;
use wavegate_rollout::drill::{Scenario, run};
use wavegate_rollout::plan::PlanSpec;

fn plan() -> PlanSpec {
    parse_yaml(include_str!("../../../examples/checkout-v2.yaml")).unwrap()
}

fn scenario(name: &str) -> Scenario {
    let path = format!("{}/../../examples/drills/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    parse_yaml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_example_scenario_passes_against_the_example_plan() {
    for name in ["clean", "error-spike", "latency", "silent", "sample-ratio", "creep"] {
        let report = run(&plan(), &scenario(name)).unwrap();
        let last = report.timeline.last().map(|e| e.event.clone()).unwrap_or_default();
        println!(
            "{name}: {} after {} ticks ({} s simulated, {} requests); last: {last}",
            report.outcome, report.ticks, report.simulated_seconds, report.requests
        );
        assert!(
            report.passed,
            "{name}: expected {}, got {} ({:?})\n{:#?}",
            report.expected, report.outcome, report.reason, report.timeline
        );
    }
}

#[test]
fn a_plan_without_the_right_stop_condition_fails_its_drill() {
    let mut p = plan();
    p.guardrails.retain(|g| g.name != "error-rate");
    let report = run(&p, &scenario("error-spike")).unwrap();
    assert!(!report.passed, "{report:#?}");
}

#[test]
fn drills_are_deterministic_for_a_seed() {
    let a = run(&plan(), &scenario("error-spike")).unwrap();
    let b = run(&plan(), &scenario("error-spike")).unwrap();
    assert_eq!(a, b);
}

/// Prometheus guardrails read the drill's simulated traffic too, so plans that use them can be
/// rehearsed: a clean release completes and an error spike trips the Prometheus guardrail.
#[test]
fn prometheus_guardrails_are_drilled_on_the_simulated_traffic() {
    let text = include_str!("../../../examples/checkout-v2.yaml").replace(
        "    metric: error                # the events' error flag: a proportion\n    comparison: absolute         # treatment minus control\n    harmful: increase\n    tolerance: 0.005             # half a percentage point is acceptable",
        "    metric: error\n    source: prometheus\n    query: 'sum(rate(http_errors_total{variant=\"{{variant}}\"}[10m])) / sum(rate(http_requests_total{variant=\"{{variant}}\"}[10m]))'\n    window: 10m\n    comparison: absolute\n    harmful: increase\n    tolerance: 0.02",
    );
    let p: PlanSpec = parse_yaml(&text).unwrap();
    assert!(
        p.guardrails.iter().any(|g| g.source == wavegate_rollout::plan::SignalSource::Prometheus),
        "the edit applied"
    );
    let clean = run(&p, &scenario("clean")).unwrap();
    assert!(clean.passed, "{:?} {:?}", clean.outcome, clean.reason);
    let spike = run(&p, &scenario("error-spike")).unwrap();
    assert!(spike.passed, "{:?} {:?}", spike.outcome, spike.reason);
}

#[test]
fn a_plan_without_waves_is_refused_not_a_panic() {
    let mut p = plan();
    p.waves.clear();
    let err = run(&p, &scenario("clean")).unwrap_err();
    assert!(err.contains("has no waves"), "{err}");
}

/// Issue 18 item 5: a plan with a watch after its last wave rehearses a late fault (the wave
/// after the last is the watch): it is caught during the watch; without it, the watch ends
/// and the holdback is released.
#[test]
fn a_late_fault_is_caught_during_the_watch() {
    let text = include_str!("../../../examples/checkout-v2.yaml")
        .replace("blackouts:", "watch: { for: 24h, holdback: 5% }\nblackouts:");
    let p: PlanSpec = parse_yaml(&text).unwrap();
    let late: Scenario = parse_yaml(
        "name: late\nrate: 100\nbaseline: { error_rate: 0.01, latency_ms: 120, latency_sd_ms: 30 }\n\
         faults:\n  - { kind: error_rate, factor: 5, from_wave: 4 }\n\
         expect: { outcome: rolled_back, by: error-rate }\n",
    )
    .unwrap();
    let report = run(&p, &late).unwrap();
    assert!(report.passed, "{report:#?}");
    assert!(
        report.timeline.iter().any(|e| e.event == "watch: 1d with 5% held back"),
        "{:#?}",
        report.timeline
    );
    assert!(report.timeline.iter().all(|e| !e.event.starts_with("release")), "{report:#?}");
    let clean = run(&p, &scenario("clean")).unwrap();
    assert!(clean.passed, "{clean:#?}");
    assert!(clean.timeline.iter().any(|e| e.event.starts_with("release: the holdback ends")));
    assert!(clean.simulated_seconds >= 24 * 3600, "the watch lasted its day");
    // Without a watch the same fault is never seen: the rollout completed before it.
    let unwatched = run(&plan(), &late).unwrap();
    assert_eq!(unwatched.outcome, "completed");
}

/// Issue 18 item 3: a p99 guardrail is drilled on sketches of the simulated latencies: a clean
/// release completes, and a slower new variant is rolled back by it (the mean guardrail is gone
/// from this plan, so only the quantile can see it).
#[test]
fn a_p99_guardrail_is_drilled_on_the_simulated_latencies() {
    let text = include_str!("../../../examples/checkout-v2.yaml").replace(
        "  - name: latency\n    metric: latency_ms\n    comparison: relative\n",
        "  - name: p99\n    quantile: 0.99\n    metric: latency_ms\n    comparison: relative\n",
    );
    let p: PlanSpec = parse_yaml(&text).unwrap();
    assert_eq!(p.guardrails[1].quantile, Some(0.99));
    let clean = run(&p, &scenario("clean")).unwrap();
    assert!(clean.passed, "{clean:#?}");
    let slow: Scenario = parse_yaml(
        "name: slow\nrate: 100\nbaseline: { error_rate: 0.01, latency_ms: 120, latency_sd_ms: 30 }\n\
         faults:\n  - { kind: latency, add_ms: 60 }\nexpect: { outcome: paused, by: p99 }\n",
    )
    .unwrap();
    let report = run(&p, &slow).unwrap();
    assert!(report.passed, "{report:#?}");
}

/// Issue 22: people gates are rehearsed on simulated adoption and feedback: a second wave whose
/// users adopt far less than the first's is held (`gated`), and a blocker holds too; when each
/// wave adopts alike and nothing blocks, the plan completes.
#[test]
fn people_gates_are_drilled_on_simulated_adoption_and_feedback() {
    let text = include_str!("../../../examples/checkout-v2.yaml").replace(
        "  - { exposure: 25%, hold: 1h, max_duration: 12h, promotion: approval }",
        "  - { exposure: 25%, hold: 1h, max_duration: 12h, promotion: approval, gates: { adoption: { key_task_rate: \">= 0.9 × previous wave\", min_users: 50 }, feedback: { open_blockers: 0 } } }",
    );
    let p: PlanSpec = parse_yaml(&text).unwrap();
    assert!(p.waves[1].gates.is_some());
    let drill = |people: &str, expect: &str| {
        let yaml = format!(
            "name: people\nrate: 100\nduration: 10h\nbaseline: {{ error_rate: 0.01, latency_ms: 120, latency_sd_ms: 30 }}\nexpect: {{ outcome: {expect} }}\npeople: {people}\n"
        );
        let s: Scenario = parse_yaml(&yaml).unwrap();
        run(&p, &s).unwrap()
    };
    let lagging = drill("{ key_task_rate: [0.6, 0.3] }", "gated");
    assert!(lagging.passed, "{lagging:#?}");
    assert!(
        lagging.timeline.iter().any(|e| e.event.starts_with("gated: adoption")),
        "{lagging:#?}"
    );
    let blocked = drill("{ key_task_rate: [0.6], open_blockers: [0, 1] }", "gated");
    assert!(
        blocked.passed && blocked.reason.as_deref().unwrap().contains("open blocker"),
        "{blocked:#?}"
    );
    let healthy =
        drill("{ key_task_rate: [0.6], feedback_per_hour: 4, negative_share: 0.2 }", "completed");
    assert!(healthy.passed, "{healthy:#?}");
    let bad: Scenario = parse_yaml("name: x\nrate: 1\nbaseline: { error_rate: 0, latency_ms: 1 }\npeople: { key_task_rate: [1.5] }\n").unwrap();
    assert!(run(&p, &bad).unwrap_err().contains("key_task_rate"));
}
