//! Plan parsing and lint, table-driven.

use wavegate_rollout::lint::{Severity, has_errors, lint};

const EXAMPLE: &str = include_str!("../../../examples/checkout-v2.yaml");

#[test]
fn the_example_plan_is_clean() {
    let (plan, findings) = lint(EXAMPLE);
    let plan = plan.unwrap();
    assert!(!has_errors(&findings), "{findings:#?}");
    assert!(findings.iter().all(|f| f.severity == Severity::Warning));
    assert_eq!(plan.waves.len(), 3);
    assert_eq!(plan.approvals_needed(), 1);
}

/// `(edit to the example, expected (code, line))`.
#[track_caller]
fn check(from: &str, to: &str, code: &str, line: Option<u64>) {
    assert!(EXAMPLE.contains(from), "example lacks {from:?}");
    let text = EXAMPLE.replacen(from, to, 1);
    let (_, findings) = lint(&text);
    let hit = findings.iter().find(|f| f.code == code && f.severity == Severity::Error);
    let hit = hit.unwrap_or_else(|| panic!("expected {code}, got {findings:#?}"));
    assert_eq!(hit.line, line, "{hit:?}");
}

#[test]
fn structural_errors_have_lines() {
    check(
        "{ exposure: 5%, hold: 30m, max_duration: 6h }",
        "{ exposure: 50%, hold: 30m }",
        "first-wave-too-large",
        Some(47),
    );
    check(
        "{ exposure: 25%, hold: 1h, max_duration: 12h, promotion: approval }",
        "{ exposure: 5%, hold: 1h }",
        "waves-not-increasing",
        Some(48),
    );
    check("  requester: alice\n", "", "no-owner", Some(21));
    check("    action: rollback\n", "", "syntax", Some(35));
    check("    action: rollback\n", "    colour: red\n    action: rollback\n", "syntax", Some(36));
    check("    tz: Europe/Oslo", "    tz: Mars/Base", "bad-blackout", Some(51));
    check("required_approvals: 1", "required_approvals: 3", "too-few-approvers", Some(21));
}

#[test]
fn unknown_keys_name_the_key() {
    let (_, findings) =
        lint(&EXAMPLE.replace("environment: prod", "environment: prod\nenviroment: prod"));
    assert!(findings[0].message.contains("unknown field `enviroment`"), "{findings:?}");
    assert_eq!((findings[0].line, findings[0].column), (Some(20), Some(1)));
}

#[test]
fn high_risk_needs_another_approver() {
    let text = EXAMPLE
        .replace("  risk: medium", "  risk: high")
        .replace("  approvers: [bob, carol]\n", "  approvers: [alice]\n");
    let (_, findings) = lint(&text);
    assert!(findings.iter().any(|f| f.code == "high-risk-self-approval"), "{findings:#?}");
}

fn at(traffic: Option<f64>) -> wavegate_rollout::forecast::Options {
    wavegate_rollout::forecast::Options { traffic, ..Default::default() }
}

#[test]
fn forecasts_warn_when_a_wave_cannot_decide_in_time() {
    let text = EXAMPLE.replace(
        "{ exposure: 5%, hold: 30m, max_duration: 6h }",
        "{ exposure: 5%, hold: 10s, max_duration: 20s }",
    );
    let (plan, findings) = lint(&text);
    assert!(!has_errors(&findings), "{findings:#?}");
    let plan = plan.unwrap();
    let f = wavegate_rollout::forecast::forecast(&plan, &at(Some(100.0)));
    let err = f.iter().find(|f| f.wave == 1 && f.guardrail == "error-rate").unwrap();
    let (fail, pass) = (err.to_fail_secs.unwrap(), err.to_pass_secs.unwrap());
    // 1% → 2% at α=.05: about a thousand treatment samples at 5 req/s, so minutes.
    assert!((60.0..1200.0).contains(&fail), "{err:?}");
    // A pass needs min_sample (500) per arm first: at 5 treatment req/s that is 100 s
    // however clean the data, and the upper bound must clear the half-point tolerance.
    assert!(pass >= 100.0, "{err:?}");
    assert!(err.pass_floor_secs.unwrap() >= 100.0, "{err:?}");
    assert!(err.fail_samples.unwrap() > err.fixed_n_samples.unwrap(), "{err:?}");
    let warnings = wavegate_rollout::lint::forecast_findings(&plan, &f);
    assert!(
        warnings.iter().any(|w| w.code == "max-duration-too-short" && w.message.contains("wave 1")),
        "{warnings:#?}"
    );
    assert!(warnings.iter().any(|w| w.code == "hold-shorter-than-decision"), "{warnings:#?}");
    // Without traffic there is no forecast, and it says why.
    let none = wavegate_rollout::forecast::forecast(&plan, &at(None));
    assert!(none.iter().all(|f| f.to_pass_secs.is_none() && f.note.is_some()));
}

/// Issue 18, item 4: a guardrail that cannot pass before 500 samples per arm is never
/// forecast to pass sooner, and the hold and the tick show in the time to pass.
#[test]
fn issue_18_forecasts_respect_min_sample_hold_and_the_tick() {
    let (plan, _) = lint(EXAMPLE);
    let plan = plan.unwrap();
    // 1,000 req/s: statistics alone would pass the 25% wave in seconds.
    let f = wavegate_rollout::forecast::forecast(&plan, &at(Some(1000.0)));
    for f in f.iter().filter(|f| f.to_pass_secs.is_some()) {
        let w = &plan.waves[f.wave - 1];
        let pass = f.to_pass_secs.unwrap();
        assert!(pass >= w.hold.secs() as f64, "{f:?}");
        assert!(f.pass_samples.unwrap() >= 500.0, "{f:?}");
        assert_eq!(pass % 10.0, 0.0, "verdicts land on ticks: {f:?}");
        assert_eq!(f.pass_limited_by, Some("hold"), "{f:?}");
    }
    // With a fine tick and no hold, min_sample sets the pace: 500 control samples at
    // 1,000 × 95% req/s is ½ s, 500 treatment samples at 5% is 10 s.
    let text = EXAMPLE.replace("hold: 30m", "hold: 0s");
    let plan = lint(&text).0.unwrap();
    let opts = wavegate_rollout::forecast::Options {
        traffic: Some(1000.0),
        tick_secs: 1.0,
        ..Default::default()
    };
    let f = wavegate_rollout::forecast::forecast(&plan, &opts);
    let err = f.iter().find(|f| f.wave == 1 && f.guardrail == "error-rate").unwrap();
    assert!(err.pass_floor_secs == Some(10.0), "{err:?}");
    assert!(err.to_pass_secs.unwrap() >= 10.0, "{err:?}");
    // The 100% wave has no control arm to compare with.
    assert!(f.iter().filter(|f| f.wave == 3).all(|f| f.note.is_some() && f.to_pass_secs.is_none()));
}

#[test]
fn an_understated_risk_class_is_flagged() {
    let text = EXAMPLE.replace("  risk: medium", "  risk: low\n  data_migration: true");
    let (_, findings) = lint(&text);
    let f = findings.iter().find(|f| f.code == "risk-understated").expect("risk warning");
    assert!(f.message.contains("imply high"), "{f:?}");
}

/// Issue 16, item 9: a plan's URLs are readable by every token that reads plans and kept in
/// every backup, so credentials in them are flagged (a warning: the plan still applies).
#[test]
fn issue_16_credentials_in_plan_urls_are_flagged() {
    let guarded = EXAMPLE.replacen(
        "    action: pause\n",
        "    action: pause\n    source: prometheus\n    query: up\n    prometheus_url: http://reader:s3cret@prom:9090\n",
        1,
    );
    let (plan, findings) = lint(&guarded);
    assert!(plan.is_some(), "{findings:#?}");
    let hit = findings.iter().find(|f| f.code == "credentials-in-url").expect("flagged");
    assert_eq!((hit.severity, hit.line), (Severity::Warning, Some(37)), "{hit:?}");
    assert!(
        hit.message.contains("guardrails[1].prometheus_url") && !hit.message.contains("s3cret")
    );
    let clean = guarded.replace("reader:s3cret@", "");
    assert!(lint(&clean).1.iter().all(|f| f.code != "credentials-in-url"));
}

/// Issue 18, item 3: `failure_limit`, `failures` and `range_step` judge Prometheus readings;
/// plans without them parse as before (the first bad reading acts), and misuse is named.
#[test]
fn issue_18_windowed_prometheus_fields_are_checked() {
    let (plan, _) = lint(EXAMPLE);
    let g = &plan.unwrap().guardrails[1];
    assert_eq!((g.failure_limit(), g.failures().as_str(), g.range_step), (0, "consecutive", None));
    let prometheus = |extra: &str| {
        EXAMPLE.replacen(
            "    action: pause\n",
            &format!("    action: pause\n    source: prometheus\n    query: up\n{extra}"),
            1,
        )
    };
    let ok = prometheus("    failure_limit: 2\n    failures: total\n    range_step: 30s\n");
    let (plan, findings) = lint(&ok);
    assert!(!has_errors(&findings), "{findings:#?}");
    let g = &plan.unwrap().guardrails[1];
    assert_eq!((g.failure_limit(), g.failures().as_str()), (2, "total"));
    assert_eq!(g.range_step.map(|s| s.secs()), Some(30));
    let codes = |text: &str| -> Vec<(&'static str, Severity)> {
        lint(text).1.into_iter().map(|f| (f.code, f.severity)).collect()
    };
    assert!(
        codes(&prometheus("    failure_limit: 1000\n"))
            .contains(&("bad-failure-limit", Severity::Error))
    );
    assert!(
        codes(&prometheus("    range_step: 0s\n")).contains(&("bad-range-step", Severity::Error))
    );
    assert!(
        codes(&prometheus("    failures: total\n"))
            .contains(&("failures-unused", Severity::Warning))
    );
    let events =
        EXAMPLE.replacen("    action: pause\n", "    action: pause\n    failure_limit: 1\n", 1);
    assert!(codes(&events).contains(&("readings-unused", Severity::Error)));
    let (_, findings) = lint(&prometheus("    failures: sometimes\n"));
    assert!(findings[0].message.contains("sometimes"), "{findings:#?}");
}

/// Issue 22: the gate threshold grammar of the JSON Schema and the parser agree, and a bad
/// threshold is refused at its line and column.
#[test]
fn gate_thresholds_follow_the_schema_grammar_and_are_located() {
    use wavegate_rollout::people::Threshold;
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/plan.schema.json")).unwrap();
    let pattern = schema["properties"]["waves"]["items"]["properties"]["gates"]["properties"]
        ["adoption"]["properties"]["key_task_rate"]["pattern"]
        .as_str()
        .unwrap();
    let re = regex::Regex::new(pattern).unwrap();
    for text in [
        ">= 70%",
        "<= 0.3",
        "> 0.9 × previous wave",
        "≥ 0.5",
        ">=0.9 x previous wave",
        "< 12.5%",
        "* 3",
        "70%",
        ">= lots",
        ">= 0.9 × next wave",
        "",
    ] {
        assert_eq!(re.is_match(text), Threshold::parse(text).is_ok(), "{text:?}");
    }
    let gated = "  - { exposure: 25%, hold: 1h, max_duration: 12h, promotion: approval }";
    let bad = EXAMPLE.replacen(gated, "  - { exposure: 25%, hold: 1h, gates: { feedback: { negative_share: \"about a third\" } } }", 1);
    let (_, findings) = lint(&bad);
    assert_eq!(findings[0].code, "syntax");
    assert!(
        findings[0].message.contains("no operator in threshold \"about a third\""),
        "{findings:#?}"
    );
    assert_eq!(findings[0].line, Some(48), "{findings:#?}");
    // A relative threshold on the first wave is refused at that wave.
    let first = "  - { exposure: 5%, hold: 30m, max_duration: 6h }";
    let rel = EXAMPLE.replacen(first, "  - { exposure: 5%, hold: 30m, gates: { adoption: { key_task_rate: \">= 0.9 × previous wave\" } } }", 1);
    let (_, findings) = lint(&rel);
    let hit = findings.iter().find(|f| f.code == "bad-gates").unwrap();
    assert_eq!(hit.line, Some(47), "{hit:?}");
}
