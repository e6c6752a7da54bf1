//! A real client, not ours: the OpenFeature Python SDK with its OFREP provider.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use wavegate_core::bucket::bucket;
use wavegate_testkit::fixtures::{LAUNCH, UNLEASH_FLAGS};

use crate::support::{ADMIN, FLAGS, apply, prod_token, start, stderr, stdout, write};

pub(crate) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("WAVEGATE_PYTHON") {
        return p.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = root.join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-python.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

#[test]
fn openfeature_python_sdk_evaluates_over_ofrep() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    apply(&server.url, dir.path(), "flag", "flags.yaml", FLAGS);
    let token = &prod_token(&server.url, "client-sdk");

    // What each key must get from the 10% split, computed by wavegate-core's bucketing.
    let expected: BTreeMap<String, &str> = (0..200)
        .map(|i| {
            let key = format!("user-{i}");
            let v = if bucket("new-checkout", &key) < 1000 { "on" } else { "off" };
            (key, v)
        })
        .collect();
    assert!(expected.values().any(|v| *v == "on") && expected.values().any(|v| *v == "off"));
    let exp = write(dir.path(), "expected.json", &serde_json::to_string(&expected).unwrap());

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/ofrep_sdk.py");
    let o =
        Command::new(python()).arg(script).arg(&server.url).arg(token).arg(exp).output().unwrap();
    let out = stdout(&o);
    println!("{out}");
    assert!(o.status.success(), "python SDK checks failed:\n{out}\n{}", stderr(&o));
    assert!(out.contains("10 passed, 0 failed"), "{out}");
}

#[test]
fn unleash_python_sdk_agrees_with_ofrep_on_10000_contexts() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    // A 10% rollout behind a rule serving false, a three-way split, a constraint and a segment
    // with listed keys, as the Unleash SDK test serves them.
    apply(&server.url, dir.path(), "flag", "flags.yaml", UNLEASH_FLAGS);
    let (sdk, client) =
        (prod_token(&server.url, "server-sdk"), prod_token(&server.url, "client-sdk"));
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/unleash_sdk.py");
    let o = Command::new(python())
        .arg(script)
        .arg(&server.url)
        .arg(&sdk)
        .arg(&client)
        .arg("10000")
        .output()
        .unwrap();
    let out = stdout(&o);
    println!("{out}");
    assert!(o.status.success(), "Unleash SDK disagreed with OFREP:\n{out}\n{}", stderr(&o));
    assert!(out.contains("10000 contexts, 0 mismatches"), "{out}");
}

/// Issue 21, item 2: unleash-client for Node (its own JavaScript engine, not Yggdrasil) agrees
/// with OFREP on the same 10,000 contexts' worth of flags, a date rule on `currentTime`
/// included (`tests/browser/unleash_node.mjs`).
#[test]
fn unleash_node_sdk_agrees_with_ofrep_on_10000_contexts() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        root.join("tests/browser/node_modules/unleash-client").is_dir(),
        "unleash-client is not installed: run scripts/setup-browser.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    apply(&server.url, dir.path(), "flag", "flags.yaml", UNLEASH_FLAGS);
    apply(&server.url, dir.path(), "flag", "launch.yaml", LAUNCH);
    let (sdk, client) =
        (prod_token(&server.url, "server-sdk"), prod_token(&server.url, "client-sdk"));
    let o = Command::new("node")
        .arg(root.join("tests/browser/unleash_node.mjs"))
        .current_dir(root.join("tests/browser"))
        .arg(&server.url)
        .arg(&sdk)
        .arg(&client)
        .arg("10000")
        .output()
        .expect("run node (install Node.js)");
    let out = stdout(&o);
    println!("{out}");
    assert!(o.status.success(), "the Node SDK disagreed with OFREP:\n{out}\n{}", stderr(&o));
    assert!(out.contains("10000 contexts, 0 mismatches"), "{out}");
}
