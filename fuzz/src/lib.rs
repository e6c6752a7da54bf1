//! The fuzz harnesses, shared by the cargo-fuzz targets (`fuzz_targets/`) and by the ordinary
//! integration test `crates/wavegate-core/tests/fuzz_corpus.rs`, which includes this file with
//! `#[path]` and runs both harnesses over every seed in `fuzz/corpus/` (that is what CI runs).
//!
//! A harness returns normally for any input (whether the input was accepted, so the corpus test
//! can tell the seeds reach evaluation); a panic is a bug. Besides "no panic", the
//! harnesses check invariants that must hold for every input:
//! - a flag file that `parse_flag_file` accepts compiles in every environment;
//! - evaluation serves one of the flag's own variants, and its reason agrees with its rule.

use std::sync::OnceLock;

use wavegate_core::flag::compile_segments;
use wavegate_core::{Context, Flag, Reason, Resolution, SpecPath, evaluate, parse_flag_file};

/// The environments both harnesses know.
pub const ENVIRONMENTS: [&str; 3] = ["dev", "staging", "prod"];

/// Flag-file harness: the bytes (as UTF-8, invalid sequences replaced) go to
/// `parse_flag_file`; every flag of an accepted file is compiled for every environment and
/// evaluated for an empty context and for a context with a targeting key.
pub fn flag_yaml(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let envs = ENVIRONMENTS.map(String::from);
    let Ok(file) = parse_flag_file(&text, &envs) else { return false };
    let segments = compile_segments(&file.segments, &SpecPath::root("segments"))
        .expect("segments of an accepted file compile");
    let contexts = [Context::default(), Context::with_key("user-174")];
    for (key, spec) in &file.flags {
        for env in &envs {
            let flag =
                Flag::compile(key, spec, env, &segments, &SpecPath::root("flags").field(key))
                    .expect("a flag of an accepted file compiles in every environment");
            for ctx in &contexts {
                check(&flag, evaluate(&flag, ctx));
            }
        }
    }
    true
}

/// Context harness: the bytes are parsed as JSON, turned into a [`Context`] with
/// `Context::from_json`, and evaluated against fixed flags that use every operator and
/// stickiness.
pub fn eval_context(data: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return false };
    let Ok(ctx) = Context::from_json(&value) else { return false };
    for ctx in [ctx.clone(), ctx.with_entropy(0xdead_beef)] {
        for flag in fixed_flags() {
            check(flag, evaluate(flag, &ctx));
        }
    }
    true
}

/// Invariants of one resolution.
fn check(flag: &Flag, r: Resolution<'_>) {
    let variant = flag.variants().iter().find(|v| v.name == r.variant);
    let variant =
        variant.unwrap_or_else(|| panic!("{}: served unknown variant {:?}", flag.key(), r.variant));
    assert_eq!(&variant.value, r.value, "{}: value is not the variant's", flag.key());
    match r.reason {
        Reason::TargetingMatch | Reason::Split => {
            assert!(r.rule.is_some(), "{}: no rule", flag.key())
        }
        Reason::Static | Reason::Default | Reason::Disabled => {
            assert!(r.rule.is_none(), "{}: {:?} with a rule", flag.key(), r.reason)
        }
        Reason::Error => assert!(r.error.is_some(), "{}: ERROR without an error", flag.key()),
    }
    assert_eq!(
        r.error.is_some(),
        r.reason == Reason::Error,
        "{}: error/reason mismatch",
        flag.key()
    );
}

/// Flags for [`eval_context`], compiled once for `prod`.
const FIXED: &str = r#"
segments:
  staff:
    keys: [vip-1, "user-174"]
    constraints:
      - { attribute: email, op: ends_with, values: ["@example.com"], case_insensitive: true }
  everyone: {}
flags:
  strings:
    variants: { a: "a", b: "b", c: "c" }
    default: a
    environments:
      prod:
        enabled: true
        rules:
          - { segment: staff, serve: b }
          - constraints:
              - { attribute: country, op: in, values: [NO, SE, "ÆØÅ"], case_insensitive: true }
              - { attribute: plan, op: not_in, values: [free] }
            serve: c
          - constraints: [{ attribute: email, op: contains, values: ["@", "+"], negate: true }]
            serve: b
          - constraints: [{ attribute: path, op: starts_with, values: ["/admin", "/"] }]
            serve: c
          - constraints: [{ attribute: name, op: regex, values: ["^(a+)+$"] }]
            serve: b
          - constraints: [{ attribute: tier, op: eq, values: [3] }]
            serve: c
          - constraints: [{ attribute: beta, op: eq, values: [true] }]
            serve: b
  numbers:
    variants: { low: 1, mid: 2.5, high: 1e300 }
    default: low
    environments:
      prod:
        enabled: true
        rules:
          - constraints: [{ attribute: age, op: lt, values: [0] }]
            serve: high
          - constraints: [{ attribute: age, op: lte, values: [-1.5] }]
            serve: mid
          - constraints: [{ attribute: age, op: gt, values: [1e15] }]
            serve: high
          - constraints: [{ attribute: age, op: gte, values: [18] }]
            serve: mid
  versions:
    variants: { "on": true, "off": false }
    default: "off"
    environments:
      prod:
        enabled: true
        rules:
          - constraints: [{ attribute: appVersion, op: semver_lt, values: ["1.0.0-rc.1"] }]
            serve: "on"
          - constraints: [{ attribute: appVersion, op: semver_eq, values: ["2.0.0+build"] }]
            serve: "on"
          - constraints: [{ attribute: appVersion, op: semver_gt, values: ["10.0.0"] }]
            serve: "on"
          - constraints: [{ attribute: currentTime, op: date_before, values: ["1970-01-01T00:00:00Z"] }]
            serve: "on"
          - constraints: [{ attribute: currentTime, op: date_after, values: ["2026-12-01T00:00:00+01:00"] }]
            serve: "on"
  splits:
    variants: { x: { n: 1 }, y: { n: 2 }, z: { n: 3 } }
    default: x
    disabled_variant: z
    salt: "pepper"
    environments:
      prod:
        enabled: true
        rules:
          - { constraints: [{ attribute: k, op: in, values: [t] }], split: { x: 0.01%, y: 99.99% }, stickiness: targetingKey }
          - { split: { x: 33.33%, y: 33.33%, z: 33.34% }, stickiness: orgId }
          - { constraints: [{ attribute: r, op: in, values: ["1"] }], split: { x: 50%, y: 50% }, stickiness: random }
          - { segment: everyone, split: { y: 10%, z: 90% } }
  "off":
    variants: { "on": true, "off": false }
    default: "on"
    disabled_variant: "off"
    environments: { prod: { enabled: false } }
"#;

fn fixed_flags() -> &'static [Flag] {
    static FLAGS: OnceLock<Vec<Flag>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        let envs = ENVIRONMENTS.map(String::from);
        let file = parse_flag_file(FIXED, &envs).expect("fixed flags parse");
        let segments = compile_segments(&file.segments, &SpecPath::root("segments"))
            .expect("fixed segments compile");
        file.flags
            .iter()
            .map(|(key, spec)| {
                Flag::compile(key, spec, "prod", &segments, &SpecPath::root("flags").field(key))
                    .expect("fixed flags compile")
            })
            .collect()
    })
}
