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
