//! The rollout state machine: scenarios and the invariants DESIGN.md pins, as properties.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use wavegate_core::spec::FlagSpec;
use wavegate_core::{Context, Flag, SpecPath, evaluate};
use wavegate_rollout::exposure::{rollout_rules, with_rollout_rules};
use wavegate_rollout::machine::{
    Action, ArmMoments, Command, CommandError, Phase, Rollout, Signals, State, command, start, step,
};
use wavegate_rollout::plan::PlanSpec;
use wavegate_rollout::stats::Moments;

const PLAN: &str = r#"
name: p
release: { name: r, version: "1", risk: medium }
flag: f
new_variant: "on"
control_variant: "off"
environment: prod
owners: { requester: alice, approvers: [bob, carol] }
guardrails:
  - { name: errors, metric: error, comparison: absolute, tolerance: 0.005, mde: 0.02, min_sample: 200, action: rollback }
waves:
  - { exposure: 5%, hold: 10m }
  - { exposure: 25%, hold: 10m, promotion: approval }
  - { exposure: 100%, hold: 10m }
blackouts:
  - { name: freeze, start: "2026-12-24T00:00:00Z", end: "2026-12-27T00:00:00Z" }
"#;

fn plan() -> PlanSpec {
    plan_with(&[])
}

/// [`PLAN`] with each `(from, to)` of `edits` replaced.
fn plan_with(edits: &[(&str, &str)]) -> PlanSpec {
    let text = edits.iter().fold(PLAN.to_owned(), |text, (from, to)| text.replace(from, to));
    wavegate_core::flagfile::parse_yaml(&text).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

fn started() -> Rollout {
    start("ro_1".into(), plan(), 1, "alice".into(), 7, t0()).unwrap().0
}

fn errors(n: u64, treatment_errors: u64, control_errors: u64) -> Signals {
    let mut s = Signals::default();
    s.metrics.insert(
        "error".into(),
        ArmMoments {
            treatment: Moments::bernoulli(n as f64, treatment_errors as f64),
            control: Moments::bernoulli(n as f64, control_errors as f64),
        },
    );
    s
}

fn has_audit(actions: &[Action], name: &str) -> bool {
    actions.iter().any(|a| matches!(a, Action::Audit { action, .. } if action == name))
}

#[test]
fn a_clean_rollout_promotes_waits_for_approval_and_completes() {
    let r = started();
    let (r, a) = step(&r, t0() + Duration::minutes(5), &errors(5000, 50, 50));
    assert_eq!(r.state, State::Running { phase: Phase::Hold });
    assert!(!a.iter().any(|a| matches!(a, Action::SetExposure { .. })));
    let (r, a) = step(&r, t0() + Duration::minutes(11), &errors(20_000, 200, 200));
    assert_eq!(r.wave, 1, "{a:?}");
    assert!(a.contains(&Action::SetExposure { wave: 1 }) && has_audit(&a, "rollout.promote"));
    let later = t0() + Duration::minutes(30);
    let (r, a) = step(&r, later, &errors(20_000, 200, 200));
    assert_eq!(r.state, State::Running { phase: Phase::AwaitingApproval });
    assert!(a.iter().any(|a| matches!(a, Action::RequestApproval { wave: 1, needed: 1 })));
    assert!(
        command(&r, later, &Command::Approve, "alice", None).is_err(),
        "the requester may not approve"
    );
    assert!(
        command(&r, later, &Command::Approve, "mallory", None).is_err(),
        "only listed approvers"
    );
    let (r, _) = command(&r, later, &Command::Approve, "bob", Some("looks good")).unwrap();
    let (r, a) = step(&r, later + Duration::seconds(10), &errors(20_000, 200, 200));
    assert_eq!(r.wave, 2, "{a:?}");
    let (r, a) = step(&r, later + Duration::minutes(30), &Signals::default());
    assert_eq!(r.state, State::Completed, "{a:?}");
    assert!(has_audit(&a, "rollout.complete"));
}

#[test]
fn a_regression_rolls_back_to_the_pre_rollout_version() {
    let r = started();
    let (r, a) = step(&r, t0() + Duration::minutes(1), &errors(3000, 300, 30));
    assert!(matches!(r.state, State::RolledBack { .. }), "{:?}", r.state);
    assert!(a.contains(&Action::RestoreFlag { version: 7 }));
    assert!(has_audit(&a, "rollout.rollback"));
    let verdict = a.iter().find_map(|a| match a {
        Action::RecordVerdict { report, .. } => Some(report.clone()),
        _ => None,
    });
    assert_eq!(verdict.unwrap().verdict.as_str(), "fail");
    // Ended rollouts do nothing more.
    let (r2, a2) = step(&r, t0() + Duration::minutes(2), &errors(3000, 300, 30));
    assert_eq!((r2, a2.len()), (r, 0));
}

#[test]
fn blackouts_hold_promotion_but_not_rollback() {
    let r = started();
    let xmas = Utc.with_ymd_and_hms(2026, 12, 25, 12, 0, 0).unwrap();
    let (held, a) = step(&r, xmas, &errors(20_000, 200, 200));
    assert_eq!(held.wave, 0);
    assert_eq!(held.blackout.as_deref(), Some("freeze"));
    assert!(has_audit(&a, "rollout.hold"));
    let (rb, a) = step(&r, xmas, &errors(3000, 300, 30));
    assert!(
        matches!(rb.state, State::RolledBack { .. })
            && a.contains(&Action::RestoreFlag { version: 7 })
    );
    assert!(
        start("x".into(), plan(), 1, "alice".into(), 1, xmas).is_err(),
        "no start inside a blackout"
    );
}

#[test]
fn sample_ratio_mismatch_escalates() {
    let r = started();
    let mut s = errors(100, 1, 1);
    s.exposures = ArmMoments {
        treatment: Moments { n: 3000.0, ..Moments::default() },
        control: Moments { n: 7000.0, ..Moments::default() },
    };
    let (r, a) = step(&r, t0() + Duration::minutes(1), &s);
    assert!(matches!(r.state, State::Paused { .. }));
    assert!(
        a.iter().any(|a| matches!(a, Action::Escalate { .. })) && has_audit(&a, "rollout.escalate")
    );
}

fn flag() -> FlagSpec {
    serde_json::from_value(serde_json::json!({
        "variants": {"on": true, "off": false}, "default": "off",
        "environments": {"prod": {"enabled": true, "rules": [{"name": "vip", "constraints": [{"attribute": "plan", "op": "eq", "values": ["vip"]}], "serve": "on"}]}}
    }))
    .unwrap()
}

fn exposed(spec: &FlagSpec, keys: &[String]) -> Vec<bool> {
    let f = Flag::compile("f", spec, "prod", &Default::default(), &SpecPath::root("f")).unwrap();
    keys.iter().map(|k| evaluate(&f, &Context::with_key(k.clone())).variant == "on").collect()
}

#[derive(Debug, Clone)]
enum Event {
    Tick { minutes: i64, n: u64, t_err: u64, c_err: u64 },
    Cmd(Command, &'static str),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0i64..40, 0u64..30_000, 0u64..3000, 0u64..3000).prop_map(|(minutes, n, t, c)| Event::Tick { minutes, n, t_err: t.min(n), c_err: c.min(n) }),
        1 => prop_oneof![
            Just(Event::Cmd(Command::Approve, "bob")),
            Just(Event::Cmd(Command::Approve, "carol")),
            Just(Event::Cmd(Command::Pause, "bob")),
            Just(Event::Cmd(Command::Resume, "bob")),
            Just(Event::Cmd(Command::Rollback, "dave")),
        ],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn invariants_hold_over_any_history(events in prop::collection::vec(event(), 1..40), start_day in 0i64..60) {
        let keys: Vec<String> = (0..400).map(|i| format!("user-{i}")).collect();
        let now0 = t0() + Duration::days(start_day);
        let Ok((mut r, _)) = start("ro_p".into(), plan(), 1, "alice".into(), 7, now0) else { return Ok(()); };
        let mut now = now0;
        let mut exposed_before = exposed(&with_rollout_rules(&flag(), &r.plan, &r.id, r.wave, false), &keys);
        for e in events {
            let prev = r.clone();
            let is_cmd = matches!(e, Event::Cmd(..));
            let (next, actions) = match e {
                Event::Tick { minutes, n, t_err, c_err } => {
                    now += Duration::minutes(minutes);
                    step(&r, now, &errors(n, t_err, c_err))
                }
                Event::Cmd(c, who) => match command(&r, now, &c, who, Some("prop")) {
                    Ok(x) => x,
                    Err(_) => continue,
                },
            };
            let in_blackout = now >= Utc.with_ymd_and_hms(2026, 12, 24, 0, 0, 0).unwrap() && now < Utc.with_ymd_and_hms(2026, 12, 27, 0, 0, 0).unwrap();
            // Every transition yields an audit record.
            if next.state.name() != prev.state.name() || next.wave != prev.wave {
                prop_assert!(actions.iter().any(|a| matches!(a, Action::Audit { .. })), "{:?} → {:?} without audit", prev.state, next.state);
            }
            // Exposure only follows the current wave, one wave at a time.
            for a in &actions {
                if let Action::SetExposure { wave } = a {
                    prop_assert_eq!(*wave, next.wave);
                    prop_assert_eq!(next.wave, prev.wave + 1);
                    prop_assert!(!in_blackout || is_cmd, "promotion inside a blackout");
                    prop_assert!(matches!(prev.state, State::Running { .. }), "a paused rollout promoted");
                }
                // Rollback restores exactly the pre-rollout version.
                if let Action::RestoreFlag { version } = a {
                    prop_assert_eq!(*version, 7);
                }
            }
            prop_assert!(next.wave < next.plan.waves.len());
            if matches!(prev.state, State::Paused { .. }) {
                prop_assert_eq!(next.wave, prev.wave);
            }
            // Nobody is re-randomized: whoever was exposed stays exposed as waves widen.
            let now_exposed = exposed(&with_rollout_rules(&flag(), &next.plan, &next.id, next.wave, false), &keys);
            for (i, (b, a)) in exposed_before.iter().zip(&now_exposed).enumerate() {
                prop_assert!(!b || *a, "{} lost exposure", keys[i]);
            }
            exposed_before = now_exposed;
            r = next;
        }
    }
}

#[test]
fn exposure_matches_the_wave_share() {
    let keys: Vec<String> = (0..20_000).map(|i| format!("k{i}")).collect();
    for (wave, share) in [(0usize, 0.05), (1, 0.25), (2, 1.0)] {
        let spec = with_rollout_rules(&flag(), &plan(), "ro_1", wave, false);
        let on = exposed(&spec, &keys).iter().filter(|x| **x).count() as f64 / keys.len() as f64;
        assert!((on - share).abs() < 0.01, "wave {wave}: {on}");
        let rules = &spec.environments["prod"].rules;
        assert_eq!(rules[0].name.as_deref(), Some("vip"), "placement: after existing rules");
        assert_eq!(rules[1].name.as_deref(), Some("rollout:ro_1"));
    }
}

#[test]
fn resume_restarts_the_wave_clock() {
    let p = plan_with(&[(
        "- { exposure: 5%, hold: 10m }",
        "- { exposure: 5%, hold: 10m, max_duration: 1h }",
    )]);
    let (r, _) = start("ro_m".into(), p, 1, "alice".into(), 7, t0()).unwrap();
    // Undecided (no data) for over an hour: escalated.
    let (r, a) = step(&r, t0() + Duration::minutes(61), &Signals::default());
    assert!(
        matches!(r.state, State::Paused { .. })
            && a.iter().any(|a| matches!(a, Action::Escalate { .. }))
    );
    // Resumed two hours later, the next tick must not escalate again at once.
    let later = t0() + Duration::minutes(180);
    let (r, _) = command(&r, later, &Command::Resume, "bob", Some("data source fixed")).unwrap();
    let (r, a) = step(&r, later + Duration::seconds(10), &Signals::default());
    assert_eq!(r.state, State::Running { phase: Phase::Hold }, "{a:?}");
}

#[test]
fn a_high_risk_plan_without_gated_waves_still_needs_an_approval() {
    let p = plan_with(&[("risk: medium", "risk: high"), (", promotion: approval", "")]);
    assert_eq!(p.approvals_needed(), 1);
    let (r, _) = start("ro_h".into(), p, 1, "alice".into(), 7, t0()).unwrap();
    let (r, a) = step(&r, t0() + Duration::minutes(11), &errors(20_000, 200, 200));
    assert_eq!(r.state, State::Running { phase: Phase::AwaitingApproval }, "{a:?}");
    let (r, _) =
        command(&r, t0() + Duration::minutes(12), &Command::Approve, "carol", None).unwrap();
    let (r, _) = step(&r, t0() + Duration::minutes(13), &errors(20_000, 200, 200));
    assert_eq!(r.wave, 1);
}

#[test]
fn rings_reach_everyone_at_the_last_wave() {
    let p = plan_with(&[(
        "  - { exposure: 5%, hold: 10m }\n",
        "  - { exposure: 5%, hold: 10m, segments: [internal] }\n",
    )]);
    let f: FlagSpec = serde_json::from_value(serde_json::json!({
        "variants": {"on": true, "off": false}, "default": "off",
        "environments": {"prod": {"enabled": true}}
    }))
    .unwrap();
    let seg: wavegate_core::SegmentSpec = serde_json::from_value(serde_json::json!({"constraints": [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}]})).unwrap();
    let segs = wavegate_core::flag::compile_segments(
        [(&"internal".to_string(), &seg)],
        &SpecPath::root("s"),
    )
    .unwrap();
    let spec = with_rollout_rules(&f, &p, "ro_r", 2, false);
    let flag = Flag::compile("f", &spec, "prod", &segs, &SpecPath::root("f")).unwrap();
    for i in 0..500 {
        let ctx = Context::with_key(format!("u{i}"))
            .with("email", wavegate_core::AttrValue::String(format!("u{i}@example.com")));
        assert_eq!(evaluate(&flag, &ctx).variant, "on", "ring member u{i} at the 100% wave");
    }
}

#[test]
fn start_refuses_a_plan_without_waves() {
    let mut p = plan();
    p.waves.clear();
    let err = start("ro_1".into(), p, 1, "alice".into(), 7, t0()).unwrap_err();
    assert_eq!(err, CommandError::NoWaves { plan: "p".into() });
    assert_eq!(err.to_string(), "plan \"p\" has no waves; a rollout needs at least one");
}

#[test]
fn a_stored_rollout_at_a_wave_its_plan_lacks_escalates_instead_of_panicking() {
    let mut beyond = started();
    beyond.wave = 3;
    let mut emptied = started();
    emptied.plan.waves.clear();
    for r in [beyond, emptied] {
        let (next, actions) = step(&r, t0() + Duration::hours(1), &errors(1000, 1, 1));
        assert!(
            matches!(&next.state, State::Paused { reason } if reason.contains("but its plan has")),
            "{:?}",
            next.state
        );
        assert!(actions.iter().any(|a| matches!(a, Action::Escalate { .. })), "{actions:?}");
        assert!(has_audit(&actions, "rollout.escalate"));
        assert!(!actions.iter().any(|a| matches!(a, Action::SetExposure { .. })));
        // A person can still roll it back to the pre-rollout version.
        let (back, actions) =
            command(&next, t0() + Duration::hours(2), &Command::Rollback, "bob", Some("bad row"))
                .unwrap();
        assert!(matches!(back.state, State::RolledBack { .. }));
        assert!(actions.contains(&Action::RestoreFlag { version: 7 }));
    }
}

#[test]
fn rollout_rules_of_a_plan_without_waves_or_beyond_its_last_wave() {
    let mut p = plan();
    assert_eq!(
        rollout_rules(&p, "ro_1", 9, false),
        rollout_rules(&p, "ro_1", 2, false),
        "the last wave's"
    );
    assert_eq!(rollout_rules(&p, "ro_1", usize::MAX, false), rollout_rules(&p, "ro_1", 2, false));
    p.waves.clear();
    assert_eq!(rollout_rules(&p, "ro_1", 0, false), []);
}

/// [`PLAN`] with a watch after its last wave and no approvals.
fn watched_text(holdback: &str) -> String {
    PLAN.replace(", promotion: approval", "")
        .replace(
            "owners: { requester: alice, approvers: [bob, carol] }",
            "owners: { requester: alice }",
        )
        .replace("blackouts:", &format!("watch: {{ for: 72h, holdback: {holdback} }}\nblackouts:"))
}

fn watched_plan(holdback: &str) -> PlanSpec {
    wavegate_core::flagfile::parse_yaml(&watched_text(holdback)).unwrap()
}

#[test]
fn a_watch_holds_back_a_control_arm_after_the_last_wave_then_releases_it() {
    let p = watched_plan("1%");
    assert_eq!(p.exposure_at(2, false).to_string(), "99%");
    assert_eq!(p.exposure_at(2, true).to_string(), "100%");
    assert_eq!(p.exposure_at(0, false).to_string(), "5%", "smaller waves are not capped");
    let split = |released| rollout_rules(&p, "ro_1", 2, released)[0].split.clone().unwrap();
    assert_eq!(split(false)["on"].to_string(), "99%");
    assert_eq!(split(true)["off"].to_string(), "0%");

    let mut r = start("ro_1".into(), p.clone(), 1, "alice".into(), 7, t0()).unwrap().0;
    let mut at = t0();
    for wave in 1..=2 {
        at += Duration::minutes(11);
        let (next, a) = step(&r, at, &errors(20_000, 200, 200));
        assert_eq!(next.wave, wave, "{a:?}");
        r = next;
    }
    // The last wave (99%): after its hold it enters the watch without waiting for a verdict on
    // a 1% control arm; the wave's data is judged apart from the watch's.
    at += Duration::minutes(11);
    let (r, a) = step(&r, at, &Signals::default());
    assert_eq!(r.state, State::Running { phase: Phase::Watching }, "{a:?}");
    assert!(has_audit(&a, "rollout.watch"));
    assert_eq!((r.wave, r.signal_wave()), (2, 3));
    assert!(!a.iter().any(|a| matches!(a, Action::SetExposure { .. })));

    // A late regression during the watch rolls back.
    let (bad, a) = step(&r, at + Duration::hours(30), &errors(20_000, 2000, 200));
    assert!(matches!(bad.state, State::RolledBack { .. }), "{a:?}");
    assert!(a.contains(&Action::RestoreFlag { version: 7 }));

    // Healthy: still watching before the end, then released (audited) and completed.
    let (r, a) = step(&r, at + Duration::hours(71), &errors(20_000, 200, 200));
    assert_eq!(r.state, State::Running { phase: Phase::Watching }, "{a:?}");
    let (r, a) = step(&r, at + Duration::hours(72), &errors(20_000, 200, 200));
    assert_eq!(r.state, State::Completed, "{a:?}");
    assert!(a.contains(&Action::SetExposure { wave: 2 }));
    assert!(has_audit(&a, "rollout.release") && has_audit(&a, "rollout.complete"));
}

#[test]
fn watches_are_linted() {
    let codes = |text: &str| -> Vec<&'static str> {
        wavegate_rollout::lint::lint(text).1.into_iter().map(|f| f.code).collect()
    };
    assert!(!codes(&watched_text("1%")).iter().any(|c| c.contains("watch")));
    assert!(codes(&watched_text("0%")).contains(&"bad-watch"));
    assert!(codes(&watched_text("30%")).contains(&"bad-watch"));
    assert!(codes(&PLAN.replace("risk: medium", "risk: high")).contains(&"no-watch"));
    let partial = watched_text("1%").replace("  - { exposure: 100%, hold: 10m }\n", "");
    assert!(codes(&partial).contains(&"bad-watch"), "{:?}", codes(&partial));
}

const GATED: &str = r#"
name: p
release: { name: r, version: "1", risk: low }
flag: f
new_variant: "on"
control_variant: "off"
environment: prod
owners: { requester: alice }
adoption: { cohorts: [function], key_task: report_sent, min_users: 10 }
stakeholders:
  function:
    support: { champion: dana, training_owner: tom, sponsor: vp }
runbook:
  enablement: "Run the 20-minute walkthrough"
waves:
  - { exposure: 5%, hold: 10m }
  - { exposure: 25%, hold: 10m, gates: { adoption: { key_task_rate: ">= 0.9 × previous wave", min_users: 100 }, feedback: { open_blockers: 0 } } }
  - { exposure: 100%, hold: 10m }
"#;

fn people(waves: &[(u64, u64)], blockers: u64) -> Signals {
    use wavegate_rollout::people::{FeedbackFacts, PeopleSignals, WaveAdoption};
    Signals {
        people: Some(PeopleSignals {
            waves: waves
                .iter()
                .map(|&(exposed, adopted)| WaveAdoption { exposed, adopted })
                .collect(),
            feedback: FeedbackFacts { items: 5, negative: 1, open_blockers: blockers },
            lagging: Vec::new(),
            pilot: None,
        }),
        ..Signals::default()
    }
}

#[test]
fn a_people_gate_holds_the_promotion_without_rolling_back_and_clears_when_adoption_recovers() {
    let plan: PlanSpec = wavegate_core::flagfile::parse_yaml(GATED).unwrap();
    let (r, _) = start("ro_g".into(), plan, 1, "alice".into(), 3, t0()).unwrap();
    let t = |m| t0() + Duration::minutes(m);
    let (r, _) = step(&r, t(11), &people(&[(200, 120)], 0));
    assert_eq!(r.wave, 1, "wave 1 has no gates");
    // Wave 2's users adopt at half wave 1's rate: held, with the reason and an audit entry.
    let (held, actions) = step(&r, t(22), &people(&[(200, 120), (150, 45)], 0));
    assert_eq!(held.state, State::Running { phase: Phase::Gated });
    assert!(held.gated.as_deref().unwrap().contains("30.0%"), "{:?}", held.gated);
    assert!(has_audit(&actions, "rollout.gated"));
    // Still held next tick: no second audit entry; unknown facts hold too; nothing rolls back.
    let (still, actions) = step(&held, t(23), &people(&[(200, 120), (160, 50)], 0));
    assert_eq!(still.state, State::Running { phase: Phase::Gated });
    assert!(!has_audit(&actions, "rollout.gated"));
    let (unknown, _) = step(&held, t(23), &Signals::default());
    assert_eq!(unknown.state, State::Running { phase: Phase::Gated });
    // An open blocker holds even when adoption recovered.
    let (blocked, _) = step(&still, t(24), &people(&[(200, 120), (300, 190)], 1));
    assert!(blocked.gated.as_deref().unwrap().contains("1 open blocker"), "{:?}", blocked.gated);
    // Recovered: promoted, the gate's clearance audited.
    let (moved, actions) = step(&blocked, t(25), &people(&[(200, 120), (300, 190)], 0));
    assert_eq!((moved.wave, moved.gated.as_ref()), (2, None));
    assert!(has_audit(&actions, "rollout.gate_cleared") && has_audit(&actions, "rollout.promote"));
}

#[test]
fn a_lagging_cohort_is_told_to_its_champion_once_until_it_recovers() {
    use wavegate_rollout::people::LaggingCohort;
    let plan: PlanSpec = wavegate_core::flagfile::parse_yaml(GATED).unwrap();
    let (r, _) = start("ro_l".into(), plan, 1, "alice".into(), 3, t0()).unwrap();
    let mut s = people(&[(200, 120)], 0);
    let lag = LaggingCohort {
        attribute: "function".into(),
        value: "support".into(),
        exposed: 40,
        adopted: 4,
        overall: 0.6,
    };
    s.people.as_mut().unwrap().lagging = vec![lag];
    let (told, actions) = step(&r, t0() + Duration::minutes(1), &s);
    let details = actions
        .iter()
        .find_map(|a| match a {
            Action::Audit { action, details } if action == "rollout.cohort_lagging" => {
                Some(details)
            }
            _ => None,
        })
        .expect("a notice");
    assert_eq!(details["notify"], serde_json::json!(["dana", "tom"]));
    assert_eq!(details["enablement"], "Run the 20-minute walkthrough");
    assert!(details["message"].as_str().unwrap().contains("4 of 40 users"), "{details}");
    let (again, actions) = step(&told, t0() + Duration::minutes(2), &s);
    assert!(!has_audit(&actions, "rollout.cohort_lagging"), "told once");
    let (recovered, _) = step(&again, t0() + Duration::minutes(3), &people(&[(200, 120)], 0));
    assert!(recovered.lagging_told.is_empty());
    let (_, actions) = step(&recovered, t0() + Duration::minutes(4), &s);
    assert!(has_audit(&actions, "rollout.cohort_lagging"), "a relapse is told again");
}
