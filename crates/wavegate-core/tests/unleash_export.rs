//! The Unleash export against a reference Unleash engine (Yggdrasil, the engine inside Unleash
//! Edge and the Unleash SDKs): for random flags (ordered rules serving true and false, splits,
//! percentages, segments, negated constraints) and random contexts, Yggdrasil's answers on the
//! exported features equal wavegate's own, whenever the export says it is exact.

use std::collections::HashMap;

use indexmap::IndexMap;
use proptest::prelude::*;
use serde_json::{Value, json};
use unleash_yggdrasil::{EngineState, UpdateMessage};
use wavegate_core::flag::compile_segments;
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::unleash::ClientFeatures;
use wavegate_core::unleash::export::{export_flag, export_segments};
use wavegate_core::{Context, Flag, SpecPath, evaluate_in};

fn segments() -> IndexMap<String, SegmentSpec> {
    serde_json::from_value(json!({
        "beta": {"keys": ["user-1", "user-2", "user-3", "user-5", "user-8"]},
        "paid": {"constraints": [{"attribute": "plan", "op": "in", "values": ["pro", "team"]}]},
        "mixed": {"keys": ["user-4", "user-9"], "constraints": [{"attribute": "country", "op": "in", "values": ["NO"]}, {"attribute": "age", "op": "gte", "values": [30]}]},
    }))
    .unwrap()
}

fn constraint() -> impl Strategy<Value = Value> {
    let c = prop_oneof![
        Just(json!({"attribute": "country", "op": "in", "values": ["NO", "SE"]})),
        Just(json!({"attribute": "country", "op": "not_in", "values": ["DE"]})),
        Just(json!({"attribute": "plan", "op": "in", "values": ["pro"]})),
        Just(json!({"attribute": "age", "op": "gt", "values": [40]})),
        Just(json!({"attribute": "age", "op": "lte", "values": [25]})),
        Just(json!({"attribute": "email", "op": "ends_with", "values": ["@example.com"]})),
        Just(
            json!({"attribute": "email", "op": "contains", "values": ["KARI"], "case_insensitive": true})
        ),
        Just(json!({"attribute": "targetingKey", "op": "in", "values": ["user-7", "user-11"]})),
        Just(json!({"attribute": "version", "op": "semver_gt", "values": ["1.2.0"]})),
        Just(json!({"attribute": "version", "op": "semver_gte", "values": ["1.2.0"]})),
        Just(json!({"attribute": "version", "op": "semver_lte", "values": ["1.2.0"]})),
        Just(
            json!({"attribute": "ip", "op": "in_cidr", "values": ["10.0.0.0/8", "2001:db8::/32"]})
        ),
    ];
    (c, any::<bool>()).prop_map(|(mut c, negate)| {
        if negate {
            c["negate"] = json!(true);
        }
        c
    })
}

/// Cumulative cuts in whole percents → a split over `names`.
fn split(names: &[&str], cuts: &[u8]) -> Value {
    let mut cuts: Vec<u8> = cuts.iter().map(|c| c % 101).collect();
    cuts.sort();
    let mut m = serde_json::Map::new();
    let mut prev = 0u8;
    for (i, name) in names.iter().enumerate() {
        let end = if i + 1 == names.len() { 100 } else { cuts.get(i).copied().unwrap_or(100) };
        m.insert((*name).to_owned(), json!(format!("{}%", end.saturating_sub(prev))));
        prev = end.max(prev);
    }
    Value::Object(m)
}

fn rule(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(constraint(), 0..3),
        prop::option::of(prop::sample::select(vec!["beta", "paid", "mixed"])),
        0..3u8,
        prop::sample::select(names.to_vec()),
        prop::collection::vec(any::<u8>(), 2),
        0..=100u8,
        prop::sample::select(vec!["default", "targetingKey", "sessionId"]),
    )
        .prop_map(move |(constraints, segment, kind, serve, cuts, pct, stickiness)| {
            let mut r = json!({"constraints": constraints});
            if let Some(s) = segment {
                r["segment"] = json!(s);
            }
            match kind {
                0 => r["serve"] = json!(serve),
                1 => {
                    r["serve"] = json!(serve);
                    r["percentage"] = json!(format!("{pct}%"));
                    r["stickiness"] = json!(stickiness);
                }
                _ => {
                    let mut order = names.to_vec();
                    order.rotate_left(cuts[0] as usize % names.len());
                    r["split"] = split(&order, &cuts);
                }
            }
            r
        })
}

const BOOL: &[&str] = &["on", "off"];
const COLOURS: &[&str] = &["red", "green", "blue"];

fn flag() -> impl Strategy<Value = (String, Value)> {
    let boolean = (prop::collection::vec(rule(BOOL), 0..5), prop::sample::select(BOOL.to_vec()))
        .prop_map(|(rules, default)| {
            json!({"variants": {"on": true, "off": false}, "default": default,
                   "environments": {"prod": {"enabled": true, "rules": rules}}})
        });
    let colours =
        (prop::collection::vec(rule(COLOURS), 0..5), prop::sample::select(COLOURS.to_vec()))
            .prop_map(|(rules, default)| {
                json!({"variants": {"red": "#f00", "green": "#0f0", "blue": "#00f"},
                   "default": default,
                   "environments": {"prod": {"enabled": true, "rules": rules}}})
            });
    prop_oneof![
        boolean.prop_map(|f| ("b".to_owned(), f)),
        colours.prop_map(|f| ("c".to_owned(), f))
    ]
}

/// A context on both sides: wavegate's attributes and Yggdrasil's properties (strings).
fn contexts() -> Vec<(Context, unleash_yggdrasil::Context)> {
    let mut out = Vec::new();
    for i in 0..300u32 {
        let mut props: HashMap<String, String> = HashMap::new();
        let pick = |n: u32, xs: &[&str]| {
            xs[(i.wrapping_mul(2_654_435_761) >> n) as usize % xs.len()].to_owned()
        };
        let country = pick(3, &["NO", "SE", "DE", ""]);
        if !country.is_empty() {
            props.insert("country".into(), country);
        }
        let plan = pick(7, &["pro", "team", "free", ""]);
        if !plan.is_empty() {
            props.insert("plan".into(), plan);
        }
        if i % 5 != 0 {
            props.insert("age".into(), (18 + i % 50).to_string());
        }
        props.insert(
            "email".into(),
            pick(11, &["kari@example.com", "ola@test.no", "Kari.N@Example.com"]),
        );
        if i % 4 != 0 {
            props.insert("version".into(), pick(13, &["1.0.0", "1.2.0", "1.10.3", "2.0.0-rc.1"]));
        }
        if i % 6 != 0 {
            props.insert("ip".into(), pick(17, &["10.1.2.3", "192.168.1.1", "2001:db8::5", "x"]));
        }
        let user = (i % 7 != 0).then(|| format!("user-{}", i % 40));
        let session = (i % 3 == 0).then(|| format!("s-{i}"));
        let mut w = serde_json::Map::new();
        if let Some(u) = &user {
            w.insert("targetingKey".into(), json!(u));
        }
        if let Some(s) = &session {
            w.insert("sessionId".into(), json!(s));
        }
        for (k, v) in &props {
            w.insert(k.clone(), json!(v));
        }
        let wctx = Context::from_json(&Value::Object(w)).unwrap().with_entropy(i);
        let y = unleash_yggdrasil::Context {
            user_id: user,
            session_id: session,
            properties: Some(props),
            ..Default::default()
        };
        out.push((wctx, y));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]
    #[test]
    fn yggdrasil_agrees_with_exact_exports((key, spec) in flag()) {
        let spec: FlagSpec = serde_json::from_value(spec).unwrap();
        let segs = segments();
        let compiled = compile_segments(&segs, &SpecPath::root("segments")).unwrap();
        let flag = Flag::compile(&key, &spec, "prod", &compiled, &SpecPath::root(&key)).unwrap();
        let (useg, ids) = export_segments(&segs);
        let exported = export_flag(&key, &spec, "prod", &ids);
        prop_assume!(exported.approximate.is_empty());
        let features = ClientFeatures { version: 2, features: vec![exported.feature.clone()], segments: useg, query: None, meta: None };
        let engine = EngineState::default();
        let parsed = serde_json::from_value(serde_json::to_value(&features).unwrap()).unwrap();
        prop_assert!(engine.take_state(UpdateMessage::FullResponse(parsed)).is_none());
        let flags: HashMap<String, Flag> = [(key.clone(), flag)].into_iter().collect();
        for (w, y) in contexts() {
            // Random stickiness is not comparable draw for draw; the generator does not use it,
            // but `default` stickiness falls back to random without a user or session id.
            if w.targeting_key().is_none() && y.session_id.is_none() {
                continue;
            }
            let r = evaluate_in(&flags[&key], &w, &flags);
            let on = engine.is_enabled(&key, &y, &None);
            if key == "b" {
                prop_assert_eq!(on, r.value == &Value::Bool(true), "is_enabled for {:?}\n{}", y, serde_json::to_string(&features).unwrap());
            } else {
                prop_assert!(on, "non-boolean flags are on when enabled");
                let v = engine.get_variant(&key, &y, &None);
                prop_assert_eq!(&v.name, r.variant, "variant for {:?}\n{}", y, serde_json::to_string(&features).unwrap());
            }
        }
    }
}

/// Most random flags export exactly (so the property above is not vacuous).
#[test]
fn most_random_flags_export_exactly() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (_, ids) = export_segments(&segments());
    let mut exact = 0;
    for _ in 0..500 {
        let (key, spec) = flag().new_tree(&mut runner).unwrap().current();
        let spec: FlagSpec = serde_json::from_value(spec).unwrap();
        exact += usize::from(export_flag(&key, &spec, "prod", &ids).approximate.is_empty());
    }
    assert!(exact >= 200, "only {exact} of 500 random flags export exactly");
}

fn junk_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("100".to_owned()),
        Just("50".to_owned()),
        Just("-3".to_owned()),
        Just("1e400".to_owned()),
        Just("1.2.3".to_owned()),
        Just("v1.0.0".to_owned()),
        Just("2026-01-01T00:00:00Z".to_owned()),
        Just("(unclosed".to_owned()),
        Just("a,b,,c".to_owned()),
        "\\PC{0,12}",
    ]
}

fn junk_constraint() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["userId", "country", "currentTime", "", "sessionId", "ø"]),
        prop::sample::select(vec![
            "IN", "NOT_IN", "STR_CONTAINS", "NUM_EQ", "NUM_LT", "SEMVER_GT", "SEMVER_GTE",
            "DATE_AFTER", "REGEX", "IN_CIDR", "BOGUS", "",
        ]),
        prop::collection::vec(junk_text(), 0..3),
        prop::option::of(junk_text()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(c, op, values, value, inverted, ci)| {
            json!({"contextName": c, "operator": op, "values": values, "value": value, "inverted": inverted, "caseInsensitive": ci})
        })
}

fn junk_feature() -> impl Strategy<Value = Value> {
    let strategy = (
        prop::sample::select(vec![
            "default", "flexibleRollout", "gradualRolloutUserId", "gradualRolloutRandom",
            "userWithId", "remoteAddress", "custom",
        ]),
        prop::collection::btree_map(
            prop::sample::select(vec!["rollout", "percentage", "stickiness", "groupId", "userIds"]),
            junk_text(),
            0..4,
        ),
        prop::collection::vec(junk_constraint(), 0..3),
        prop::collection::vec(0i64..4, 0..2),
        prop::collection::vec(
            (junk_text(), 0u32..2000).prop_map(|(n, w)| json!({"name": n, "weight": w})),
            0..2,
        ),
    )
        .prop_map(|(name, parameters, constraints, segments, variants)| {
            json!({"name": name, "parameters": parameters, "constraints": constraints, "segments": segments, "variants": variants})
        });
    (
        prop::sample::select(vec!["a", "b", "c", "d", "bad name", "ø"]),
        any::<bool>(),
        prop::collection::vec(strategy, 0..4),
        prop::collection::vec(
            (
                prop::sample::select(vec!["a", "b", "c", "missing"]),
                prop::option::of(any::<bool>()),
                prop::option::of(prop::collection::vec(junk_text(), 0..2)),
            )
                .prop_map(|(f, e, v)| json!({"feature": f, "enabled": e, "variants": v})),
            0..2,
        ),
    )
        .prop_map(|(name, enabled, strategies, dependencies)| {
            json!({"name": name, "enabled": enabled, "strategies": strategies, "dependencies": dependencies})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]
    /// Whatever an Unleash document holds, import never panics, and what it imports is a valid
    /// flag set (the server would accept it) that exports again without panicking.
    #[test]
    fn import_of_arbitrary_features_is_valid_or_reported(
        features in prop::collection::vec(junk_feature(), 0..6),
        segments in prop::collection::vec(prop::collection::vec(junk_constraint(), 0..3), 0..3),
    ) {
        let segments: Vec<Value> = segments.into_iter().enumerate().map(|(i, c)| json!({"id": i, "constraints": c})).collect();
        let doc = json!({"version": 2, "features": features, "segments": segments});
        let Ok(parsed) = wavegate_core::unleash::import::parse_client_features(&doc) else {
            return Ok(());
        };
        let imported = wavegate_core::unleash::import::import_features(&parsed, "prod");
        let none = Default::default();
        for (k, spec) in &imported.file.flags {
            prop_assert!(Flag::validate(k, spec, &["prod".to_owned()], &none, &SpecPath::root(k)).is_ok(), "{k}: {spec:?}");
        }
        prop_assert!(wavegate_core::flag::validate_prerequisites(
            imported.file.flags.iter().map(|(k, s)| (k.as_str(), s)),
            &SpecPath::root("flags"),
        ).is_ok());
        let (_, ids) = export_segments(&imported.file.segments);
        for (k, spec) in &imported.file.flags {
            let _ = export_flag(k, spec, "prod", &ids);
        }
    }
}

/// Issue 21 item 2: a date rule on a field other than `currentTime` is marked approximate (with
/// the reason), since unleash-client for Node compares the current time whatever the field; on
/// `currentTime` it stays exact.
#[test]
fn date_rules_on_other_fields_are_approximate() {
    let (_, ids) = export_segments(&segments());
    let flag = |attribute: &str| -> FlagSpec {
        serde_json::from_value(json!({
            "variants": {"on": true, "off": false}, "default": "off",
            "environments": {"prod": {"enabled": true, "rules": [{"name": "launch", "serve": "on",
                "constraints": [{"attribute": attribute, "op": "date_after",
                    "values": ["2026-06-01T00:00:00Z"]}]}]}}
        }))
        .unwrap()
    };
    let exact = export_flag("f", &flag("currentTime"), "prod", &ids);
    assert!(exact.approximate.is_empty(), "{:?}", exact.approximate);
    let other = export_flag("f", &flag("signupDate"), "prod", &ids);
    assert_eq!(other.approximate.len(), 1, "{:?}", other.approximate);
    assert!(
        other.approximate[0].contains("`date_after` on `signupDate`"),
        "{:?}",
        other.approximate
    );
    assert!(other.approximate[0].contains("unleash-client for Node"), "{:?}", other.approximate);
}
