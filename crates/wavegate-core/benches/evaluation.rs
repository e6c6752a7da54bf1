//! wavegate's `evaluate` side by side with Unleash Yggdrasil (the engine inside Unleash Edge and
//! the Unleash SDKs) on three equivalent flags:
//!
//! - `static`: an enabled boolean flag with no rules (Unleash: enabled, `default` strategy);
//! - `rollout_10pct`: a 10% split with default stickiness (Unleash: `flexibleRollout`, rollout 10);
//! - `rules_3x3_segment`: 3 rules × 3 constraints (`in`, `ends_with`, `gte`), a segment on the
//!   last rule, and a context that only the last rule matches (Unleash: 3 `default` strategies).
//!
//! Both sides are measured from a flag key and a prebuilt context, lookup included (DESIGN.md):
//! wavegate looks the compiled flag up in the map type the server's snapshot uses
//! (`foldhash::HashMap<String, Flag>`, randomly seeded); Yggdrasil is called through
//! `EngineState::is_enabled(name, …)`. A third, informational measurement (`wavegate_fxmap`)
//! does the same lookup in an FxHash-keyed map. After the
//! criterion groups, a plain summary table (ns/eval and ratios, same run) is printed.
//!
//! `cargo bench -p wavegate-core --bench evaluation` for numbers; `cargo test --benches` runs
//! everything once, quickly (smoke mode).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use serde_json::json;
use unleash_yggdrasil::{ClientFeatures, EngineState, UpdateMessage};
use wavegate_core::flag::compile_segments;
use wavegate_core::{Context, Flag, SpecPath, evaluate, parse_flag_file};

const STATIC: &str = "static-flag";
const ROLLOUT: &str = "rollout-10";
const RULES: &str = "rules-3x3";

/// The three flags, in the flag-file format (the Unleash side is [`unleash_features`]).
const FLAG_FILE: &str = include_str!("evaluation.yaml");

fn unleash_features() -> serde_json::Value {
    let c = |name: &str, op: &str, values: serde_json::Value| json!({"contextName": name, "operator": op, "values": values, "caseInsensitive": false, "inverted": false});
    let num = |name: &str, op: &str, value: &str| json!({"contextName": name, "operator": op, "value": value, "caseInsensitive": false, "inverted": false});
    json!({
        "version": 2,
        "features": [
            {"name": STATIC, "enabled": true, "strategies": [{"name": "default", "parameters": {}, "constraints": []}]},
            {"name": ROLLOUT, "enabled": true, "strategies": [{
                "name": "flexibleRollout",
                "parameters": {"rollout": "10", "stickiness": "default", "groupId": ROLLOUT},
                "constraints": []
            }]},
            {"name": RULES, "enabled": true, "strategies": [
                {"name": "default", "parameters": {}, "constraints": [
                    c("country", "IN", json!(["NO", "SE", "DK", "DE"])),
                    c("email", "STR_ENDS_WITH", json!(["@example.com", "@example.org"])),
                    num("age", "NUM_GTE", "65"),
                ]},
                {"name": "default", "parameters": {}, "constraints": [
                    c("country", "IN", json!(["DE", "AT", "CH"])),
                    c("email", "STR_ENDS_WITH", json!(["@example.com"])),
                    num("age", "NUM_GTE", "50"),
                ]},
                {"name": "default", "parameters": {}, "segments": [1], "constraints": [
                    c("country", "IN", json!(["DE", "FR", "NL"])),
                    c("email", "STR_ENDS_WITH", json!(["@example.com"])),
                    num("age", "NUM_GTE", "30"),
                ]},
            ]},
        ],
        "segments": [{"id": 1, "name": "paying", "constraints": [c("plan", "IN", json!(["pro", "team"]))]}],
    })
}

/// FxHash (rustc's hasher), for the informational "fast map" measurement only: it shows what
/// the `HashMap` lookup costs with a fast hasher instead of std's SipHash-1-3. Yggdrasil's own
/// map uses AHash. Not HashDoS-resistant; a server would use a seeded fast hasher instead.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        // Byte by byte: a variable-length `copy_from_slice` would call `memcpy`.
        let mut tail = 0u64;
        for (i, b) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(*b) << (8 * i);
        }
        self.add(tail);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<V> = HashMap<String, V, BuildHasherDefault<FxHasher>>;

/// Both engines loaded with the same three flags.
struct Engines {
    /// What the server's snapshot uses: foldhash, randomly seeded per process.
    wavegate: foldhash::HashMap<String, Flag>,
    /// The same flags in an FxHash-keyed map (informational).
    wavegate_fx: FxMap<Flag>,
    yggdrasil: EngineState,
}

fn engines() -> Engines {
    let envs = ["dev", "staging", "prod"].map(String::from);
    let file = parse_flag_file(FLAG_FILE, &envs).expect("flag file parses");
    let segments =
        compile_segments(&file.segments, &SpecPath::root("segments")).expect("segments compile");
    let wavegate: foldhash::HashMap<String, Flag> = file
        .flags
        .iter()
        .map(|(key, spec)| {
            let flag =
                Flag::compile(key, spec, "prod", &segments, &SpecPath::root("flags").field(key))
                    .expect("flag compiles");
            (key.clone(), flag)
        })
        .collect();
    let features: ClientFeatures =
        serde_json::from_value(unleash_features()).expect("client features parse");
    let yggdrasil = EngineState::default();
    if let Some(warnings) = yggdrasil.take_state(UpdateMessage::FullResponse(features)) {
        panic!("yggdrasil warned while compiling: {warnings:?}");
    }
    let wavegate_fx = wavegate.iter().map(|(k, f)| (k.clone(), f.clone())).collect();
    Engines { wavegate, wavegate_fx, yggdrasil }
}

/// One benchmark case: the flag key and the same context on both sides.
struct Case {
    name: &'static str,
    flag: &'static str,
    wavegate: Context,
    yggdrasil: unleash_yggdrasil::Context,
}

fn ygg_context(user_id: &str, properties: &[(&str, &str)]) -> unleash_yggdrasil::Context {
    unleash_yggdrasil::Context {
        user_id: Some(user_id.to_owned()),
        properties: (!properties.is_empty())
            .then(|| properties.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
        ..Default::default()
    }
}

fn cases() -> Vec<Case> {
    let rules_ctx = json!({"targetingKey": "user-174", "country": "DE", "email": "kari@example.com", "age": 42, "plan": "pro"});
    vec![
        Case {
            name: "static",
            flag: STATIC,
            wavegate: Context::with_key("user-174"),
            yggdrasil: ygg_context("user-174", &[]),
        },
        Case {
            name: "rollout_10pct",
            flag: ROLLOUT,
            wavegate: Context::with_key("user-174"),
            yggdrasil: ygg_context("user-174", &[]),
        },
        Case {
            name: "rules_3x3_segment",
            flag: RULES,
            wavegate: Context::from_json(&rules_ctx).expect("context parses"),
            yggdrasil: ygg_context(
                "user-174",
                &[("country", "DE"), ("email", "kari@example.com"), ("age", "42"), ("plan", "pro")],
            ),
        },
    ]
}

#[inline]
fn wavegate_eval<S: BuildHasher>(
    flags: &HashMap<String, Flag, S>,
    key: &str,
    ctx: &Context,
) -> bool {
    match flags.get(key) {
        Some(flag) => evaluate(flag, ctx).value.as_bool().unwrap_or(false),
        None => false,
    }
}

#[inline]
fn yggdrasil_eval(engine: &EngineState, key: &str, ctx: &unleash_yggdrasil::Context) -> bool {
    engine.is_enabled(key, ctx, &None)
}

/// One measured evaluation of `case` by wavegate over `flags` (either map), its inputs hidden
/// from the optimiser.
fn wavegate_call<S: BuildHasher>(flags: &HashMap<String, Flag, S>, case: &Case) -> bool {
    wavegate_eval(black_box(flags), black_box(case.flag), black_box(&case.wavegate))
}

/// One measured evaluation of `case` by Yggdrasil, its inputs hidden from the optimiser.
fn yggdrasil_call(engine: &EngineState, case: &Case) -> bool {
    yggdrasil_eval(black_box(engine), black_box(case.flag), black_box(&case.yggdrasil))
}

/// Outside any timing: both engines give the same answer on every case, and on case (b) for
/// 1000 user ids (bucket compatibility). Panics on any disagreement.
fn check_agreement(e: &Engines, cases: &[Case]) {
    for case in cases {
        let w = wavegate_eval(&e.wavegate, case.flag, &case.wavegate);
        let y = yggdrasil_eval(&e.yggdrasil, case.flag, &case.yggdrasil);
        assert_eq!(w, y, "case {}: wavegate says {w}, yggdrasil says {y}", case.name);
    }
    let rules = &e.wavegate[RULES];
    let r = evaluate(rules, &cases[2].wavegate);
    assert_eq!(
        r.rule,
        Some("paying-adults"),
        "case rules_3x3_segment must match only the last rule"
    );
    // The segment is wired on both sides: the same context on a free plan is off everywhere.
    let mut free = cases[2].wavegate.clone();
    free.set("plan", wavegate_core::AttrValue::String("free".into()));
    let mut ygg_free = cases[2].yggdrasil.clone();
    if let Some(p) = ygg_free.properties.as_mut() {
        p.insert("plan".into(), "free".into());
    }
    assert!(!wavegate_eval(&e.wavegate, RULES, &free), "wavegate: segment ignored");
    assert!(!yggdrasil_eval(&e.yggdrasil, RULES, &ygg_free), "yggdrasil: segment ignored");
    let mut on = 0;
    for i in 0..1000 {
        let id = format!("user-{i}");
        let w = wavegate_eval(&e.wavegate, ROLLOUT, &Context::with_key(id.clone()));
        let y = yggdrasil_eval(&e.yggdrasil, ROLLOUT, &ygg_context(&id, &[]));
        assert_eq!(w, y, "10% rollout disagrees for userId {id}: wavegate {w}, yggdrasil {y}");
        on += usize::from(w);
    }
    assert!((50..=150).contains(&on), "10% rollout exposed {on} of 1000 ids");
    println!(
        "agreement: all cases agree; 10% rollout: {on}/1000 user ids on, identical on both engines"
    );
}

fn bench_cases(c: &mut Criterion) {
    let e = engines();
    for case in cases() {
        let mut g = c.benchmark_group(case.name);
        g.bench_function("wavegate", |b| b.iter(|| wavegate_call(&e.wavegate, &case)));
        g.bench_function("wavegate_fxmap", |b| b.iter(|| wavegate_call(&e.wavegate_fx, &case)));
        g.bench_function("yggdrasil", |b| b.iter(|| yggdrasil_call(&e.yggdrasil, &case)));
        g.finish();
    }
}

criterion_group!(benches, bench_cases);

/// Nanoseconds per call of `f` over `iters` calls (after a short warm-up).
fn ns_per_eval(iters: u32, mut f: impl FnMut() -> bool) -> f64 {
    for _ in 0..iters / 10 {
        black_box(f());
    }
    // A benchmark measures time; the crate's own code never reads a clock (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

/// The plain side-by-side table: simple timed loops, both engines in the same run. Each side is
/// measured three times, alternating, and the best is kept (the machine is shared).
fn summary(e: &Engines, cases: &[Case], iters: u32) {
    println!();
    println!("summary ({iters} evaluations per measurement, best of 3, lookup by key included)");
    println!(
        "| case | wavegate ns/eval | yggdrasil ns/eval | yggdrasil / wavegate | wavegate, FxHash map ns/eval | yggdrasil / that |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for case in cases {
        let (mut w, mut y, mut fx) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            fx = fx.min(ns_per_eval(iters, || wavegate_call(&e.wavegate_fx, case)));
            w = w.min(ns_per_eval(iters, || wavegate_call(&e.wavegate, case)));
            y = y.min(ns_per_eval(iters, || yggdrasil_call(&e.yggdrasil, case)));
        }
        println!("| {} | {w:.1} | {y:.1} | {:.2}× | {fx:.1} | {:.2}× |", case.name, y / w, y / fx);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (smoke mode).
    let full = std::env::args().any(|a| a == "--bench");
    let e = engines();
    let cases = cases();
    check_agreement(&e, &cases);
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary(&e, &cases, if full { 2_000_000 } else { 1_000 });
}
