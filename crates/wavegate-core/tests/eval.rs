//! Evaluation, flag-file parsing and bucketing properties, driven by small tables.

use proptest::prelude::*;
use serde_json::json;
use wavegate_core::context::AttrValue;
use wavegate_core::flagfile::FlagFileError;
use wavegate_core::{Context, Flag, FlagFile, Reason, SpecPath, evaluate, parse_flag_file};
use wavegate_testkit::fixtures::{NEW_CHECKOUT, on_off_flag};

/// The evaluation fixture: two segments, the showcase's `new-checkout` (with its stickiness
/// spelt out and staging disabled), then a flag for each kind of rule and variant.
fn file_text() -> String {
    format!("{SEGMENTS}flags:\n{NEW_CHECKOUT}{FLAGS}")
}

const SEGMENTS: &str = r##"
segments:
  beta-testers:
    constraints:
      - { attribute: email, op: ends_with, values: ["@example.com"], case_insensitive: true }
  vips:
    keys: [vip-1, vip-2]
"##;

const FLAGS: &str = r##"            stickiness: default
      staging:
        enabled: false
  banner:
    variants: { blue: "#00f", red: "#f00", green: "#0f0" }
    default: blue
    disabled_variant: red
    environments:
      prod:
        enabled: true
        rules:
          - name: vip
            segment: vips
            serve: green
          - name: old-app
            constraints: [{ attribute: appVersion, op: semver_lt, values: ["2.0.0"] }]
            serve: red
          - name: adults
            constraints:
              - { attribute: age, op: gte, values: [18] }
              - { attribute: plan, op: regex, values: ["^(pro|team)$"] }
              - { attribute: country, op: not_in, values: [US], negate: true }
            serve: green
          - name: launch
            constraints: [{ attribute: currentTime, op: date_after, values: ["2026-12-01T00:00:00Z"] }]
            serve: red
          - name: by-org
            split: { blue: 33.33%, red: 33.33%, green: 33.34% }
            stickiness: orgId
          - name: strict
            constraints: [{ attribute: strict, op: eq, values: [true] }]
            split: { blue: 50%, red: 50% }
            stickiness: targetingKey
  limits:
    variants: { small: 1, large: 2.5, config: 1.0 }
    default: small
    environments: { prod: { enabled: true } }
  theme:
    variants:
      dark: { background: black, size: 12 }
    default: dark
"##;

fn envs() -> Vec<String> {
    ["dev", "staging", "prod"].map(String::from).to_vec()
}

fn file() -> FlagFile {
    parse_flag_file(&file_text(), &envs()).unwrap()
}

fn compile(f: &FlagFile, key: &str, env: &str) -> Flag {
    let segs =
        wavegate_core::flag::compile_segments(&f.segments, &SpecPath::root("segments")).unwrap();
    Flag::compile(key, &f.flags[key], env, &segs, &SpecPath::root("flags").field(key)).unwrap()
}

/// `(variant, reason, rule)` for a flag in an environment and a JSON context.
#[track_caller]
fn check(key: &str, env: &str, ctx: serde_json::Value, expect: (&str, &str, Option<&str>)) {
    let f = file();
    let flag = compile(&f, key, env);
    let context = Context::from_json(&ctx).unwrap();
    let r = evaluate(&flag, &context);
    assert_eq!((r.variant, r.reason.as_str(), r.rule), expect, "{key} in {env} for {ctx}");
}

#[test]
fn evaluation_table() {
    let banner = |ctx, expect| check("banner", "prod", ctx, expect);
    let checkout = |ctx, expect| check("new-checkout", "prod", ctx, expect);
    checkout(
        json!({"targetingKey": "u", "email": "A@EXAMPLE.com"}),
        ("on", "TARGETING_MATCH", Some("internal")),
    );
    checkout(json!({"targetingKey": "u", "country": "DE"}), ("off", "DEFAULT", None));
    check("new-checkout", "staging", json!({"targetingKey": "u"}), ("off", "DISABLED", None));
    check("new-checkout", "dev", json!({"targetingKey": "u"}), ("off", "DISABLED", None));
    check("banner", "dev", json!({}), ("red", "DISABLED", None));
    banner(json!({"targetingKey": "vip-2"}), ("green", "TARGETING_MATCH", Some("vip")));
    banner(
        json!({"targetingKey": "x", "appVersion": "1.9.9"}),
        ("red", "TARGETING_MATCH", Some("old-app")),
    );
    banner(json!({"targetingKey": "x", "appVersion": "2.0.0"}), ("blue", "DEFAULT", None));
    banner(
        json!({"age": 18, "plan": "pro", "country": "US"}),
        ("green", "TARGETING_MATCH", Some("adults")),
    );
    banner(
        json!({"age": "21", "plan": "team", "country": "US"}),
        ("green", "TARGETING_MATCH", Some("adults")),
    );
    banner(json!({"age": 17, "plan": "pro", "country": "US"}), ("blue", "DEFAULT", None));
    banner(json!({"age": 30, "plan": "pro", "country": "NO"}), ("blue", "DEFAULT", None));
    banner(
        json!({"currentTime": "2026-12-02T00:00:00Z"}),
        ("red", "TARGETING_MATCH", Some("launch")),
    );
    banner(json!({"currentTime": "2026-11-22T00:00:00Z"}), ("blue", "DEFAULT", None));
    check("banner", "prod", json!({"strict": true}), ("blue", "ERROR", Some("strict")));
    check("limits", "prod", json!({}), ("small", "STATIC", None));
    check("theme", "prod", json!({}), ("dark", "DISABLED", None));
}

#[test]
fn split_on_a_missing_attribute_moves_to_the_next_rule() {
    // No orgId: `by-org` is skipped; no `strict`: that rule is skipped too.
    check("banner", "prod", json!({"targetingKey": "k"}), ("blue", "DEFAULT", None));
    let f = file();
    let flag = compile(&f, "banner", "prod");
    let mut seen = std::collections::HashSet::new();
    for i in 0..300 {
        let r =
            evaluate(&flag, &Context::from_json(&json!({"orgId": format!("org-{i}")})).unwrap());
        assert_eq!((r.reason, r.rule), (Reason::Split, Some("by-org")));
        seen.insert(r.variant.to_owned());
    }
    assert_eq!(seen.len(), 3);
}

#[test]
fn published_unleash_vectors_through_a_flag() {
    let f: FlagFile = wavegate_core::flagfile::parse_yaml(
        r#"
flags:
  Feature.flexibleRollout.10:
    variants: { "on": true, "off": false }
    default: "off"
    environments:
      prod: { enabled: true, rules: [ { split: { "on": 10%, "off": 90% } } ] }
"#,
    )
    .unwrap();
    let flag = compile(&f, "Feature.flexibleRollout.10", "prod");
    assert_eq!(evaluate(&flag, &Context::with_key("174")).variant, "on");
    assert_eq!(evaluate(&flag, &Context::with_key("499")).variant, "off");
}

#[test]
fn numbers_keep_their_json_type() {
    let f = file();
    let v = &f.flags["limits"].variants;
    assert_eq!(serde_json::to_string(v).unwrap(), r#"{"small":1,"large":2.5,"config":1.0}"#);
    assert!(v["small"].is_i64());
    assert!(v["config"].is_f64());
}

#[test]
fn yaml_booleans_are_strict() {
    let f = file();
    let rule = &f.flags["new-checkout"].environments["prod"].rules[1];
    let values: Vec<&str> = rule.constraints[0].values.iter().map(|v| v.as_str()).collect();
    assert_eq!(values, ["NO", "SE"], "NO must stay a string");
    let f: FlagFile = wavegate_core::flagfile::parse_yaml(
        "flags:\n  x:\n    variants: { on: yes, off: no }\n    default: on\n",
    )
    .unwrap();
    assert_eq!(f.flags["x"].variants["on"], json!("yes"));
    assert_eq!(f.flags["x"].default, "on");
}

#[test]
fn split_order_is_the_order_written() {
    let f = file();
    let split = f.flags["banner"].environments["prod"].rules[4].split.as_ref().unwrap();
    assert_eq!(split.keys().collect::<Vec<_>>(), ["blue", "red", "green"]);
}

#[track_caller]
fn check_error(yaml: &str, expect: &str) {
    let err = parse_flag_file(yaml, &envs()).unwrap_err();
    assert_eq!(err.to_string(), expect);
}

#[test]
fn bad_files_say_what_and_where() {
    check_error(
        "flags:\n  x:\n    variants: { a: 1 }\n    default: a\n    colour: red\n",
        "line 5, column 5: unknown field `colour`, expected one of description, variants, default, disabled_variant, salt, prerequisites, environments",
    );
}

#[test]
fn bad_specs_say_what_and_where() {
    let base = |rule: &str| {
        format!(
            "flags:\n  f:\n    variants: {{ a: 1, b: 2 }}\n    default: a\n    environments:\n      prod:\n        enabled: true\n        rules:\n          - {rule}\n"
        )
    };
    check_error(
        &base("{ serve: c }"),
        "flags.f.environments.prod.rules[0].serve: unknown variant \"c\"; variants are \"a\", \"b\"",
    );
    check_error(
        &base("{ split: { a: 50%, b: 40% } }"),
        "flags.f.environments.prod.rules[0].split: split shares must sum to 100%, got 90%",
    );
    check_error(
        &base("{ serve: a, constraints: [{ attribute: x, op: regex, values: [\"(\"] }] }"),
        "flags.f.environments.prod.rules[0].constraints[0].values: invalid regex: regex parse error: ( ^ error: unclosed group",
    );
    check_error(
        &base("{ serve: a, segment: nope }"),
        "flags.f.environments.prod.rules[0].segment: unknown segment \"nope\"",
    );
    check_error(
        &base("{ serve: a, constraints: [{ attribute: v, op: semver_gt, values: [abc] }] }"),
        "flags.f.environments.prod.rules[0].constraints[0].values: \"abc\" is not a semantic version (like 1.2.3)",
    );
    check_error(
        "flags:\n  f:\n    variants: { a: 1, b: \"x\" }\n    default: a\n",
        "flags.f.variants.b: variant is a string but earlier variants are numbers; all variants of a flag share one type",
    );
    check_error(
        "flags:\n  f:\n    variants: { a: 1 }\n    default: a\n    environments: { qa: { enabled: true } }\n",
        "flags.f.environments.qa: unknown environment \"qa\"; known: dev, staging, prod",
    );
    check_error(
        "flags:\n  f:\n    variants: { a: 1 }\n    default: z\n",
        "flags.f.default: unknown variant \"z\"; variants are \"a\"",
    );
    check_error(
        "flags:\n  bad key:\n    variants: { a: 1 }\n    default: a\n",
        "flags.bad key: key \"bad key\" may hold only letters, digits, '.', '_', '-' and other characters outside ASCII (no spaces or control characters), and must start with a letter or digit",
    );
}

#[test]
fn unknown_fields_are_errors_with_a_line() {
    let err = parse_flag_file(
        "flags:\n  x:\n    variants: { a: 1 }\n    default: a\n    colour: red\n",
        &envs(),
    )
    .unwrap_err();
    match err {
        FlagFileError::Syntax { line, message, .. } => {
            assert_eq!(line, Some(5), "{message}");
            assert!(message.contains("colour"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

fn rollout_flag(bp: u16) -> Flag {
    let pct = wavegate_core::Percent::from_basis_points(bp).unwrap();
    let rest = wavegate_core::Percent::from_basis_points(10_000 - bp).unwrap();
    let yaml = format!(
        "flags:\n  f:\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"off\"\n    environments:\n      prod: {{ enabled: true, rules: [ {{ split: {{ \"on\": \"{pct}\", \"off\": \"{rest}\" }} }} ] }}\n"
    );
    let f: FlagFile = wavegate_core::flagfile::parse_yaml(&yaml).unwrap();
    compile(&f, "f", "prod")
}

/// Over 100,000 keys the share exposed at p% is within ±0.5 points (fixed key set: no flakes).
#[test]
fn exposure_share_is_accurate() {
    for bp in [1u16, 100, 500, 1000, 2500, 5000, 9999] {
        let flag = rollout_flag(bp);
        let n = 100_000;
        let on = (0..n)
            .filter(|i| evaluate(&flag, &Context::with_key(format!("user-{i}"))).variant == "on")
            .count();
        let share = on as f64 / n as f64 * 100.0;
        let want = f64::from(bp) / 100.0;
        assert!((share - want).abs() <= 0.5, "at {want}% exposed {share}%");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn exposure_is_monotonic(key in ".{0,40}", a in 0u16..=10_000, b in 0u16..=10_000) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let ctx = Context::with_key(key);
        let at_lo = evaluate(&rollout_flag(lo), &ctx).variant == "on";
        let at_hi = evaluate(&rollout_flag(hi), &ctx).variant == "on";
        prop_assert!(!at_lo || at_hi, "exposed at {lo} but not at {hi}");
    }

    #[test]
    fn evaluation_is_deterministic(key in ".{0,40}", country in "[A-Z]{2}", age in any::<i32>()) {
        let f = file();
        let flag = compile(&f, "banner", "prod");
        let ctx = Context::with_key(key).with("country", AttrValue::String(country)).with("age", AttrValue::Number(f64::from(age)));
        prop_assert_eq!(evaluate(&flag, &ctx), evaluate(&flag, &ctx.clone()));
    }

    #[test]
    fn arbitrary_contexts_never_panic(json in arb_json(3)) {
        let f = file();
        let flags: Vec<Flag> = ["new-checkout", "banner", "limits", "theme"].iter().map(|k| compile(&f, k, "prod")).collect();
        if let Ok(ctx) = Context::from_json(&json) {
            for flag in &flags {
                let _ = evaluate(flag, &ctx);
            }
        }
    }
}

fn arb_json(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let names = prop_oneof![
        Just("targetingKey".to_owned()),
        Just("email".to_owned()),
        Just("age".to_owned()),
        Just("plan".to_owned()),
        Just("country".to_owned()),
        Just("appVersion".to_owned()),
        Just("currentTime".to_owned()),
        Just("orgId".to_owned()),
        Just("sessionId".to_owned()),
        ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,30}".prop_map(serde_json::Value::String),
        "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(-[a-z]{1,4})?".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(depth, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(names.clone(), inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn missing_before_names_what_an_earlier_rule_reads_and_the_context_lacks() {
    let f = file();
    let banner = compile(&f, "banner", "prod");
    let key_only = Context::from_json(&json!({"targetingKey": "u"})).unwrap();
    // `vip` reads only the key; `old-app` reads appVersion.
    assert_eq!(banner.missing_before("vip", &key_only), None);
    assert_eq!(banner.missing_before("old-app", &key_only), None);
    assert_eq!(banner.missing_before("adults", &key_only), Some("appVersion"));
    let fuller = json!({"targetingKey": "u", "appVersion": "2.1.0", "age": 30, "plan": "pro",
        "country": "NO"});
    let fuller = Context::from_json(&fuller).unwrap();
    // currentTime is the server's to supply; the split's stickiness attribute is read.
    assert_eq!(banner.missing_before("by-org", &fuller), None);
    assert_eq!(banner.missing_before("strict", &fuller), Some("orgId"));
    // A segment's constraints count.
    let checkout = compile(&f, "new-checkout", "prod");
    assert_eq!(checkout.missing_before("internal", &key_only), None);
    assert_eq!(checkout.missing_before("gradual", &key_only), Some("email"));
}

/// `in_cidr` (IPv4 and IPv6 ranges and single addresses) and the inclusive semver bounds, as
/// Unleash's `IN_CIDR`, `SEMVER_GTE` and `SEMVER_LTE` (issue 21, item 5).
#[test]
fn ip_ranges_and_inclusive_semver_bounds() {
    let office = r#"{ name: net, constraints: [{ attribute: remoteAddress, op: in_cidr, values: ["10.1.0.0/16", "2001:db8::/32", "192.0.2.7"] }], serve: "on" }"#;
    let modern = r#"{ constraints: [{ attribute: v, op: semver_gte, values: ["2.0.0"] }, { attribute: v, op: semver_lte, values: ["3.1.0"] }], serve: "on" }"#;
    let text =
        format!("flags:\n{}{}", on_off_flag("office", &[office]), on_off_flag("modern", &[modern]));
    let f = parse_flag_file(&text, &envs()).unwrap();
    let on = |key: &str, ctx: serde_json::Value| {
        let flag = compile(&f, key, "prod");
        evaluate(&flag, &Context::from_json(&ctx).unwrap()).variant == "on"
    };
    for (ip, expect) in [
        ("10.1.255.3", true),
        ("10.2.0.1", false),
        ("192.0.2.7", true),
        ("192.0.2.8", false),
        ("2001:db8:ffff::1", true),
        ("2001:db9::1", false),
        ("::ffff:10.1.0.1", false),
        ("not an ip", false),
    ] {
        assert_eq!(on("office", json!({"targetingKey": "u", "remoteAddress": ip})), expect, "{ip}");
    }
    assert!(!on("office", json!({"targetingKey": "u"})), "no address, no match");
    for (v, expect) in [("2.0.0", true), ("3.1.0", true), ("3.1.1", false), ("1.9.9", false)] {
        assert_eq!(on("modern", json!({"targetingKey": "u", "v": v})), expect, "{v}");
    }
    check_error(
        "flags:\n  f:\n    variants: { a: 1, b: 2 }\n    default: a\n    environments: { prod: { enabled: true, rules: [ { serve: b, constraints: [{ attribute: ip, op: in_cidr, values: [\"10.0.0.0/8\", \"10.0.0.0/33\"] }] } ] } }\n",
        "flags.f.environments.prod.rules[0].constraints[0].values[1]: \"10.0.0.0/33\" is not an IP address or range (like 10.0.0.0/8 or 2001:db8::/32)",
    );
}

#[test]
fn compiling_every_environment_at_once_answers_as_one_at_a_time_and_shares_what_is_alike() {
    let f = file();
    let segs =
        wavegate_core::flag::compile_segments(&f.segments, &SpecPath::root("segments")).unwrap();
    let envs = ["dev", "staging", "prod", "qa"].map(String::from).to_vec();
    let contexts = [
        json!({"targetingKey": "u-1"}),
        json!({"targetingKey": "u-2", "email": "a@EXAMPLE.com", "orgId": "o-9"}),
        json!({"targetingKey": "vip-1", "appVersion": "1.2.0"}),
        json!({"targetingKey": "u-3", "age": 30, "plan": "pro", "country": "US", "strict": true}),
    ];
    for key in f.flags.keys() {
        let path = SpecPath::root("flags").field(key);
        let each = Flag::compile_each(key, &f.flags[key], &envs, &segs, &path, Some(7));
        assert_eq!(each.len(), envs.len());
        for (env, flag) in envs.iter().zip(&each) {
            let flag = flag.as_ref().unwrap();
            let alone = Flag::compile(key, &f.flags[key], env, &segs, &path).unwrap();
            assert_eq!(flag.version(), Some(7));
            assert_eq!(flag.enabled(), alone.enabled(), "{key} in {env}");
            for ctx in &contexts {
                let ctx = Context::from_json(ctx).unwrap();
                let (a, b) = (evaluate(flag, &ctx), evaluate(&alone, &ctx));
                assert_eq!(
                    (a.variant, a.reason, a.rule),
                    (b.variant, b.reason, b.rule),
                    "{key} in {env}"
                );
            }
        }
        // One copy of the variants for every environment, and one compiled flag for every
        // environment the spec does not name.
        let first = each[0].as_ref().unwrap();
        assert!(
            each.iter()
                .all(|f| f.as_ref().unwrap().variants().as_ptr() == first.variants().as_ptr())
        );
        let absent: Vec<_> = envs
            .iter()
            .zip(&each)
            .filter(|(e, _)| !f.flags[key].environments.contains_key(*e))
            .map(|(_, f)| f.as_ref().unwrap())
            .collect();
        assert!(absent.len() >= 2, "{key}: qa and another environment are unnamed");
        assert!(absent.iter().all(|f| std::sync::Arc::ptr_eq(f, absent[0])), "{key}");
    }

    // An environment whose rules do not compile fails alone; a flag whose shared parts do not
    // compile fails in every environment.
    let mut bad = f.flags["banner"].clone();
    bad.environments.get_mut("prod").unwrap().rules[0].serve = Some("purple".into());
    let each = Flag::compile_each("banner", &bad, &envs, &segs, &SpecPath::root("banner"), None);
    let failed: Vec<bool> = each.iter().map(Result::is_err).collect();
    assert_eq!(failed, [false, false, true, false]);
    let err = each[2].as_ref().unwrap_err().to_string();
    assert!(err.contains("environments.prod.rules[0]") && err.contains("purple"), "{err}");
    bad.default = "purple".into();
    let each = Flag::compile_each("banner", &bad, &envs, &segs, &SpecPath::root("banner"), None);
    assert!(each.iter().all(Result::is_err));
}
