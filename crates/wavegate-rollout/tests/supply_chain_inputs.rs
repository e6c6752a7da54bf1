//! No input from outside panics the supply-chain and release code: arbitrary JSON as an SBOM,
//! as OSV records matched against it, as a release document judged from any member states,
//! and as plans and templates laid over each other.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use wavegate_rollout::release::{MemberState, ReleaseSpec, pace_hold, step};
use wavegate_rollout::template::{Loaded, resolve};
use wavegate_rollout::vulns::{OsvIndex, OsvRecord, Severity, Waiver, assess, parse_sbom};

/// JSON whose keys and strings are the ones these formats use, so that the shapes get deep.
fn doc() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        Just("bomFormat"),
        Just("components"),
        Just("name"),
        Just("version"),
        Just("purl"),
        Just("spdxVersion"),
        Just("packages"),
        Just("externalRefs"),
        Just("referenceType"),
        Just("referenceLocator"),
        Just("versionInfo"),
        Just("id"),
        Just("aliases"),
        Just("affected"),
        Just("package"),
        Just("ecosystem"),
        Just("ranges"),
        Just("type"),
        Just("events"),
        Just("introduced"),
        Just("fixed"),
        Just("last_affected"),
        Just("versions"),
        Just("severity"),
        Just("score"),
        Just("database_specific"),
        Just("withdrawn"),
        Just("members"),
        Just("plan"),
        Just("after"),
        Just("with"),
        Just("on_failure"),
        Just("extends"),
        Just("guardrails"),
        Just("checks"),
    ]
    .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("CycloneDX"),
            Just("SPDX-2.3"),
            Just("purl"),
            Just("PyPI"),
            Just("npm"),
            Just("crates.io"),
            Just("SEMVER"),
            Just("ECOSYSTEM"),
            Just("0"),
            Just("1.0.0"),
            Just("2.0.0-rc.1"),
            Just("pkg:pypi/requests@2.31.0"),
            Just("pkg:npm/%40a/b@1.0"),
            Just("pkg:maven/g/a@1"),
            Just("HIGH"),
            Just("MODERATE"),
            Just("a"),
            Just("b"),
            Just("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
            Just("pause_all"),
            Just("member"),
            Just("t.yaml"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(names.clone(), inner, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn member_state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        Just(MemberState::Waiting),
        Just(MemberState::Completed),
        (0usize..5, any::<bool>()).prop_map(|(wave, paused)| MemberState::Live {
            rollout: "ro_x".into(),
            wave,
            paused
        }),
        Just(MemberState::Failed { rollout: "ro_y".into() }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_sbom_and_osv_data_are_judged_or_refused(sbom in doc(), records in prop::collection::vec(doc(), 0..4)) {
        let records: Vec<OsvRecord> = records.into_iter().filter_map(|r| serde_json::from_value(r).ok()).collect();
        let index = OsvIndex::new(records);
        if let Ok(sbom) = parse_sbom(&sbom) {
            let waiver = Waiver {
                finding: "a".into(),
                reason: "r".into(),
                expires: "2030-01-01T00:00:00Z".parse().unwrap(),
                by: "bob".into(),
                at: "2026-01-01T00:00:00Z".parse().unwrap(),
            };
            let now = "2027-01-01T00:00:00Z".parse().unwrap();
            let a = assess(&sbom, &index, Severity::Low, &[waiver], now);
            prop_assert_eq!(a.passed, !a.findings.iter().any(|f| f.blocking));
            let _ = a.summary();
        }
    }

    #[test]
    fn arbitrary_versions_and_ranges_match_without_panicking(
        versions in prop::collection::vec("[0-9a-z.+-]{0,10}", 1..4),
        events in prop::collection::vec(("(introduced|fixed|last_affected)", "[0-9a-z.+-]{0,8}"), 0..5),
        kind in "(SEMVER|ECOSYSTEM|GIT)",
        score in "CVSS:3\\.[01]/AV:[NALP]/AC:[LH]/PR:[NLH]/UI:[NR]/S:[UC]/C:[HLN]/I:[HLN]/A:[HLN]",
    ) {
        let components: Vec<Value> = versions.iter().map(|v| json!({"name": "requests", "version": v,
            "purl": format!("pkg:pypi/requests@{v}")})).collect();
        let sbom = parse_sbom(&json!({"bomFormat": "CycloneDX", "components": components})).unwrap();
        let events: Vec<Value> = events.into_iter().map(|(k, v)| json!({k: v})).collect();
        let record: OsvRecord = serde_json::from_value(json!({"id": "X-1", "affected": [{
            "package": {"ecosystem": "PyPI", "name": "Requests"},
            "ranges": [{"type": kind, "events": events}], "versions": [versions[0]]}],
            "severity": [{"type": "CVSS_V3", "score": score}]})).unwrap();
        let a = assess(&sbom, &OsvIndex::new([record]), Severity::High, &[], "2027-01-01T00:00:00Z".parse().unwrap());
        // The listed version always matches, rated by its vector.
        prop_assert!(a.findings.iter().any(|f| f.component == format!("requests@{}", versions[0])), "{:?}", a);
        prop_assert!(a.findings.iter().all(|f| f.severity.is_some()));
    }

    #[test]
    fn any_release_document_is_validated_and_stepped(spec in doc(), states in prop::collection::vec(member_state(), 0..6), handled in any::<bool>()) {
        let Ok(spec) = serde_json::from_value::<ReleaseSpec>(spec) else { return Ok(()) };
        let valid = spec.validate().is_ok();
        let states: BTreeMap<String, MemberState> =
            spec.members.iter().map(|m| m.plan.clone()).zip(states).collect();
        let s = step(&spec, &states, handled);
        prop_assert!(["running", "completed", "failed"].contains(&s.state));
        if valid {
            for m in &spec.members {
                let _ = pace_hold(&spec, &m.plan, 1, &states);
            }
        }
    }

    #[test]
    fn any_plan_and_templates_resolve_or_say_why(plan in doc(), templates in prop::collection::vec(doc(), 0..4)) {
        let mut load = |name: &str, _from: &str| -> Result<Loaded, String> {
            let i = name.len() % templates.len().max(1);
            templates.get(i).cloned().map(|doc| Loaded { id: name.to_owned(), doc }).ok_or_else(|| format!("{name}: none"))
        };
        let _ = resolve(plan, "plan.yaml", &mut load);
    }
}
