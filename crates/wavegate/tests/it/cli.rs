//! The CLI as a user runs it: flags as code, eval, tokens, audit, exit codes.

use std::path::Path;

use serde_json::json;
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{
    ADMIN, FLAGS, Server, apply, cli, cli_json, prod_token, start, start_rollout, start_with,
    stderr, stdout, write,
};

#[test]
fn flags_as_code_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    let url = server.url.as_str();
    let file = write(dir.path(), "flags.yaml", FLAGS);
    let f = file.to_str().unwrap();

    let first = cli_json(url, ADMIN, &["flag", "apply", "-f", f, "--reason", "initial import"]);
    assert_eq!(first["changed"], 6, "{first}");
    let again = cli_json(url, ADMIN, &["flag", "apply", "-f", f]);
    assert_eq!(
        (again["changed"].clone(), again["unchanged"].clone()),
        (json!(0), json!(6)),
        "applying twice makes no version"
    );

    let list = cli_json(url, ADMIN, &["flag", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 5);
    let got = cli_json(url, ADMIN, &["flag", "get", "new-checkout"]);
    assert_eq!(got["version"], 1);
    assert_eq!(
        got["spec"]["environments"]["prod"]["rules"][1]["constraints"][0]["values"],
        json!(["NO", "SE"])
    );

    // Evaluate as an SDK would, with a client token created by the CLI.
    let t = cli_json(url, ADMIN, &["token", "create", "--kind", "client-sdk", "--env", "prod"]);
    let client = t["token"].as_str().unwrap();
    assert!(client.len() >= 43, "at least 32 random bytes: {client}");
    let e = cli_json(
        url,
        client,
        &["eval", "new-checkout", "--context", r#"{"targetingKey":"u1","email":"a@example.com"}"#],
    );
    assert_eq!((e["value"].clone(), e["reason"].clone()), (json!(true), json!("TARGETING_MATCH")));
    let human = cli(url, Some(client), &["eval", "banner-color", "--context", r#"{"plan":"vip"}"#]);
    assert_eq!(
        stdout(&human).trim(),
        r##"banner-color = "#f00" (variant red, reason TARGETING_MATCH rule=vip)"##
    );

    // Change, history, diff, revert.
    let changed =
        write(dir.path(), "flags2.yaml", &FLAGS.replace("10%, \"off\": 90%", "25%, \"off\": 75%"));
    cli_json(url, ADMIN, &["flag", "apply", "-f", changed.to_str().unwrap(), "--reason", "widen"]);
    let diff = cli(url, Some(ADMIN), &["flag", "diff", "new-checkout", "--from", "1"]);
    let text = stdout(&diff);
    assert!(text.lines().any(|l| l.starts_with('-') && l.contains(r#""on": "10%""#)), "{text}");
    assert!(text.lines().any(|l| l.starts_with('+') && l.contains(r#""on": "25%""#)), "{text}");
    let r = cli_json(
        url,
        ADMIN,
        &["flag", "revert", "new-checkout", "--version", "1", "--reason", "too fast"],
    );
    assert_eq!(r["version"], 3);
    let history = cli_json(url, ADMIN, &["flag", "history", "new-checkout"]);
    let h = history.as_array().unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[2]["spec"], h[0]["spec"]);
    assert_eq!(h[0]["reason"], "initial import");

    let audit = cli(url, Some(ADMIN), &["audit", "verify"]);
    assert!(audit.status.success(), "{}", stderr(&audit));
    assert!(stdout(&audit).starts_with("audit chain verifies:"), "{}", stdout(&audit));
    // A person who edits staging and reads prod: the roles as the server granted them.
    let erin = create_person(url, "prod,staging", "erin", &["editor=staging", "viewer=prod"]);
    assert_eq!(
        erin["roles"],
        json!([{"role": "editor", "environments": ["staging"]}, {"role": "viewer", "environments": ["prod"]}])
    );
    let listed = cli(url, Some(ADMIN), &["token", "list"]);
    assert!(stdout(&listed).contains("editor in staging; viewer in prod"), "{}", stdout(&listed));
    let o = cli(
        url,
        Some(ADMIN),
        &["token", "create", "--kind", "admin", "--env", "prod", "--role", "viewer="],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("name the environments after `=`"), "{}", stderr(&o));
    let list = cli_json(url, ADMIN, &["token", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(
        list.as_array().unwrap().iter().all(|t| t.get("token").is_none()),
        "secrets are never listed"
    );
}

#[test]
fn exit_codes_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    let url = server.url.as_str();

    // 4xx from the server → 2, with the server's message.
    let o = cli(url, Some(ADMIN), &["eval", "nope", "--env", "prod"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("FLAG_NOT_FOUND"), "{}", stderr(&o));
    let o = cli(url, Some("wg_wrong"), &["flag", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));

    // Bad input caught locally → 2, naming the field and line.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "flags:\n  x:\n    variants: { a: 1 }\n    default: a\n    colour: red\n",
    );
    let o = cli(url, Some(ADMIN), &["flag", "apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 5, column 5: unknown field `colour`"), "{}", stderr(&o));
    // Invalid content caught by the server → 2, naming where.
    let bad =
        write(dir.path(), "bad2.yaml", "flags:\n  x:\n    variants: { a: 1 }\n    default: b\n");
    let o = cli(url, Some(ADMIN), &["flag", "apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("flags.x.default: unknown variant \"b\""), "{}", stderr(&o));
    let o = cli(url, Some(ADMIN), &["eval", "x", "--context", "{not json"]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli(url, None, &["flag", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("WAVEGATE_TOKEN"), "{}", stderr(&o));
    let o = cli(url, Some(ADMIN), &["token", "create", "--kind", "root", "--env", "prod"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects unknown kinds");

    // Network failure → 1.
    drop(server);
    let o = cli("http://127.0.0.1:9", Some(ADMIN), &["flag", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("could not reach"), "{}", stderr(&o));
}

#[test]
fn help_explains_the_commands() {
    let o = std::process::Command::new(crate::support::bin()).arg("--help").output().unwrap();
    let text = stdout(&o);
    for cmd in ["serve", "token", "flag", "eval", "audit"] {
        assert!(text.contains(cmd), "{text}");
    }
    let o = std::process::Command::new(crate::support::bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = stdout(&o);
    assert!(
        text.contains("WAVEGATE_LISTEN")
            && text.contains("WAVEGATE_DB")
            && text.contains("127.0.0.1:8470")
            && text.contains("--allow-outbound <CIDR|HOST>")
            && text.contains("WAVEGATE_ALLOW_OUTBOUND")
            && text.contains("--check-secret-file <FILE>")
            && text.contains("--prometheus-bearer-file <FILE>")
            && text.contains("--prometheus-basic-auth-file <FILE>")
            && text.contains("--prometheus-header <NAME=VALUE|NAME=@FILE>")
            && text.contains("--prometheus-ca-file <FILE>"),
        "{text}"
    );
}

/// A server over a fresh database in `dir` with the boolean `flags` applied.
/// Runs the CLI as the admin with `args` and checks it refuses them: exit 2, naming `names`.
#[track_caller]
/// `token create --kind admin` for person `name` in `envs`, with a `--role` for each of
/// `roles`, as the admin: the created token as JSON.
fn create_person(url: &str, envs: &str, name: &str, roles: &[&str]) -> serde_json::Value {
    let mut args = vec!["token", "create", "--kind", "admin", "--env", envs, "--principal", name];
    for role in roles {
        args.extend(["--role", role]);
    }
    cli_json(url, ADMIN, &args)
}

fn refused(url: &str, args: &[&str], names: &str) {
    let o = cli(url, Some(ADMIN), args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(names), "{args:?}: {names:?} not in {}", stderr(&o));
}

fn serve_flags(dir: &Path, flags: &[&str]) -> Server {
    let server = start(&dir.join("w.db"), Some(ADMIN));
    apply(&server.url, dir, "flag", "f.yaml", &on_off(flags));
    server
}

/// A server with the example flags and `plan` applied.
fn start_with_example(dir: &Path, root: &Path, plan: &Path) -> Server {
    let server = start(&dir.join("w.db"), Some(ADMIN));
    let flags = root.join("examples/flags.yaml");
    cli_json(&server.url, ADMIN, &["flag", "apply", "-f", flags.to_str().unwrap()]);
    cli_json(&server.url, ADMIN, &["plan", "apply", "-f", plan.to_str().unwrap()]);
    server
}

#[test]
fn drills_rehearse_plans_and_record_evidence() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let plan = root.join("examples/checkout-v2.yaml");
    let spike = root.join("examples/drills/error-spike.yaml");
    let o = cli(
        "http://127.0.0.1:9",
        None,
        &["drill", plan.to_str().unwrap(), "--scenario", spike.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("expected rolled_back by error-rate: PASS"), "{}", stdout(&o));

    // Without its error-rate guardrail the plan fails the same drill: exit 1.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&plan).unwrap();
    let weak = text.replace(
        "metric: error                # the events' error flag: a proportion",
        "metric: conversion",
    );
    let weak = write(dir.path(), "weak.yaml", &weak);
    let o = cli(
        "http://127.0.0.1:9",
        None,
        &["drill", weak.to_str().unwrap(), "--scenario", spike.to_str().unwrap(), "--json"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["passed"], false);

    // Recorded against the stored plan version.
    let server = start_with_example(dir.path(), &root, &plan);
    let url = server.url.as_str();
    let o = cli(
        url,
        Some(ADMIN),
        &["drill", plan.to_str().unwrap(), "--scenario", spike.to_str().unwrap(), "--record"],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("recorded as drill 1 of plan checkout-v2 version 1"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn rollout_start_checks_the_artifact_digest() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("examples/checkout-v2.yaml")).unwrap();
    // The example's blackout windows follow the wall clock; this test must not.
    let (head, rest) = text.split_once("blackouts:").unwrap();
    let plan_text = format!("{head}{}", &rest[rest.find("runbook:").unwrap()..]);
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "plan.yaml", &plan_text);
    let server = start_with_example(dir.path(), &root, &plan);
    let url = server.url.as_str();
    let wrong = write(dir.path(), "wrong.bin", "not the release");
    let o = cli(
        url,
        Some(ADMIN),
        &["rollout", "start", "checkout-v2", "--artifact", wrong.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("artifact digest mismatch"), "{}", stderr(&o));
    // The example's digest is sha256("test").
    let right = write(dir.path(), "release.bin", "test");
    let started = cli_json(
        url,
        ADMIN,
        &["rollout", "start", "checkout-v2", "--artifact", right.to_str().unwrap()],
    );
    assert_eq!(started["state"], "running");
}

/// Runs minisign (Debian's package, as a release pipeline would) in `dir`.
fn minisign(dir: &Path, args: &[&str]) {
    let o = std::process::Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("minisign is installed by scripts/setup-system.sh");
    assert!(o.status.success(), "minisign {args:?}: {}{}", stdout(&o), stderr(&o));
}

/// A new minisign key pair without a password: (its key id as minisign prints it, its public
/// key line).
fn minisign_key(dir: &Path, name: &str) -> (String, String) {
    minisign(dir, &["-G", "-W", "-p", &format!("{name}.pub"), "-s", &format!("{name}.key")]);
    let text = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    let (comment, key) = text.trim().split_once('\n').unwrap();
    (comment.rsplit(' ').next().unwrap().to_owned(), key.trim().to_owned())
}

/// A plan whose release must be signed refuses unsigned, forged and foreign signatures and
/// starts with a good one (made by minisign itself), keeping and showing the evidence.
#[test]
fn rollout_start_verifies_the_artifact_signature() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ops_id, _) = minisign_key(d, "ops");
    let (_, ci_key) = minisign_key(d, "ci");
    let (_, stranger_key) = minisign_key(d, "stranger");
    assert_ne!(ci_key, stranger_key);
    let text = std::fs::read_to_string(root.join("examples/checkout-v2.yaml")).unwrap();
    let (head, rest) = text.split_once("blackouts:").unwrap();
    // Signed by the CI key (inline) or the ops key (by id, trusted by the server).
    let plan_text = format!("{head}{}", &rest[rest.find("runbook:").unwrap()..])
        .replace("  commit_time:", &format!("  signed_by: [{ci_key}, {ops_id}]\n  commit_time:"));
    let lint = cli(
        "http://127.0.0.1:9",
        None,
        &["plan", "lint", write(d, "p.yaml", &plan_text).to_str().unwrap()],
    );
    assert!(lint.status.success(), "{}{}", stdout(&lint), stderr(&lint));
    let plan = write(d, "plan.yaml", &plan_text);
    let server = start_with(
        &d.join("w.db"),
        Some(ADMIN),
        &["--trusted-keys", d.join("ops.pub").to_str().unwrap()],
    );
    let url = server.url.as_str();
    let flags = root.join("examples/flags.yaml");
    cli_json(url, ADMIN, &["flag", "apply", "-f", flags.to_str().unwrap()]);
    cli_json(url, ADMIN, &["plan", "apply", "-f", plan.to_str().unwrap()]);
    // The example's digest is sha256("test").
    let artifact = write(d, "release.bin", "test");
    let a = artifact.to_str().unwrap();
    let start = |extra: &[&str]| {
        let mut args = vec!["rollout", "start", "checkout-v2", "--artifact", a];
        args.extend_from_slice(extra);
        cli(url, Some(ADMIN), &args)
    };
    let refused = |o: std::process::Output, why: &str| {
        assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(why), "want {why:?}: {}", stderr(&o));
    };
    // No signature beside the artifact.
    refused(start(&[]), "must be signed");
    // Signed by a key the plan does not name.
    minisign(d, &["-S", "-s", "stranger.key", "-m", "release.bin", "-x", "stranger.minisig"]);
    let stranger = d.join("stranger.minisig");
    refused(start(&["--signature", stranger.to_str().unwrap()]), "which the plan does not accept");
    // A good signature of another file.
    write(d, "other.bin", "not the release");
    minisign(d, &["-S", "-s", "ci.key", "-m", "other.bin"]);
    let other_sig = d.join("other.bin.minisig");
    refused(start(&["--signature", other_sig.to_str().unwrap()]), "does not match the artifact");
    // Its trusted comment altered.
    minisign(d, &["-S", "-s", "ci.key", "-m", "release.bin", "-t", "release 2.0.0 by ci"]);
    let good = std::fs::read_to_string(d.join("release.bin.minisig")).unwrap();
    let altered =
        write(d, "altered.minisig", &good.replace("release 2.0.0 by ci", "release 2.0.0 by ops"));
    refused(start(&["--signature", altered.to_str().unwrap()]), "was altered");
    // Signed by the ops key, which the plan names by id and the server trusts: started, with
    // release.bin.minisig (the CI key's) overridden.
    minisign(
        d,
        &[
            "-S",
            "-s",
            "ops.key",
            "-m",
            "release.bin",
            "-x",
            "ops.minisig",
            "-t",
            "release 2.0.0 by ops",
        ],
    );
    let ops_sig = d.join("ops.minisig");
    let o = start(&["--signature", ops_sig.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let id = stdout(&o).split_whitespace().find(|w| w.starts_with("ro_")).unwrap().to_owned();
    let status = cli_json(url, ADMIN, &["rollout", "status", &id]);
    let ev = &status["artifact"];
    assert_eq!(
        (ev["key_id"].as_str(), ev["key_source"].as_str()),
        (Some(ops_id.as_str()), Some("server")),
        "{status}"
    );
    assert_eq!(ev["trusted_comment"], "release 2.0.0 by ops");
    assert_eq!(ev["sha256"], "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    // The signature verified, as given, for the pipeline to offer again in the next environment.
    assert_eq!(ev["signature"].as_str(), Some(std::fs::read_to_string(&ops_sig).unwrap().as_str()));
    let human = cli(url, Some(ADMIN), &["rollout", "status", &id]);
    assert!(
        stdout(&human).contains(&format!("artifact signed by key {ops_id} (server key)")),
        "{}",
        stdout(&human)
    );
    let audit = cli_json(url, ADMIN, &["audit", "list"]);
    let verified: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rollout.artifact_verified")
        .collect();
    assert_eq!(verified.len(), 1, "{audit}");
    assert_eq!(verified[0]["details"]["artifact"]["key_id"], ops_id.as_str());
    let report = cli(url, Some(ADMIN), &["report", "rollout", &id]);
    assert!(stdout(&report).contains(&format!("Signed by key {ops_id}")), "{}", stdout(&report));
}

/// The vulnerability gate as a release engineer runs it: CycloneDX's own generator makes the
/// SBOM of a real Python environment, the server matches it against an OSV directory, the
/// start is refused with the finding, an approver waives it, and the start goes ahead.
#[test]
fn rollout_start_checks_a_real_sbom_against_osv_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let python = crate::sdk::python();
    let generator = python.parent().unwrap().join("cyclonedx-py");
    let sbom = d.join("sbom.cdx.json");
    let o = std::process::Command::new(&generator)
        .args(["environment", python.to_str().unwrap(), "--of", "JSON", "-o"])
        .arg(&sbom)
        .output()
        .expect("cyclonedx-py is installed by scripts/setup-python.sh");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sbom).unwrap()).unwrap();
    let requests = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "requests")
        .unwrap_or_else(|| panic!("requests is in the test environment: {doc}"));
    let version = requests["version"].as_str().unwrap().to_owned();
    // An advisory (made up, in OSV's format) against exactly the installed version.
    let osv = d.join("osv");
    std::fs::create_dir(&osv).unwrap();
    let record = json!({"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001"],
        "summary": "a test advisory", "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"},
        "versions": [version]}], "database_specific": {"severity": "HIGH"}});
    std::fs::write(osv.join("PYSEC-2099-1.json"), record.to_string()).unwrap();
    let server = start_with(&d.join("w.db"), Some(ADMIN), &["--osv-dir", osv.to_str().unwrap()]);
    let url = server.url.as_str();
    let plan = Plan::new("vuln", "v-flag")
        .owners("{ requester: alice, approvers: [bob] }")
        .section("checks:\n  - { name: vulns, when: [before_start], vulnerabilities: { fail_on: high }, action: pause }\n")
        .to_string();
    apply(url, d, "flag", "flags.yaml", &on_off(&["v-flag"]));
    apply(url, d, "plan", "plan.yaml", &plan);
    let s = sbom.to_str().unwrap();
    let o = cli(url, Some(ADMIN), &["rollout", "start", "vuln", "--sbom", s]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let want = format!("PYSEC-2099-1 in requests@{version} (high)");
    assert!(stderr(&o).contains(&want), "want {want:?}: {}", stderr(&o));
    let bob = cli_json(
        url,
        ADMIN,
        &["token", "create", "--kind", "admin", "--env", "*", "--principal", "bob"],
    );
    let bob = bob["token"].as_str().unwrap();
    let o = cli(
        url,
        Some(bob),
        &["plan", "waive", "vuln", "CVE-2099-0001", "--reason", "not reachable", "--expires", "7d"],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("CVE-2099-0001"), "{}", stdout(&o));
    let listed = cli_json(url, ADMIN, &["plan", "waivers", "vuln"]);
    assert_eq!(listed[0]["by"], "bob", "{listed}");
    let started = cli_json(url, ADMIN, &["rollout", "start", "vuln", "--sbom", s]);
    assert_eq!(started["state"], "running", "{started}");
    // A file that is no SBOM is refused before anything is sent.
    let junk = write(d, "junk.json", "{\"hello\": 1}");
    let o = cli(url, Some(ADMIN), &["rollout", "start", "vuln", "--sbom", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a CycloneDX"), "{}", stderr(&o));
}

/// Plan templates: a plan `extends` a team's template, which extends a guardrail set; lint
/// shows the resolved plan, apply stores it resolved, a plan that overrides a guardrail by name
/// keeps one, and a cycle or a server asked to store an unresolved plan says what is wrong.
#[test]
fn plans_extend_templates_resolved_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("templates/guardrails")).unwrap();
    write(
        &d.join("templates/guardrails"),
        "errors.yaml",
        "guardrails:\n  - { name: errors, metric: error, comparison: absolute, tolerance: 0.05, mde: 0.05, min_sample: 50, action: rollback }\n  - { name: latency, metric: latency_ms, comparison: relative, tolerance: 0.2, min_sample: 50, action: pause }\nrunbook: { errors: page the on-call, latency: check the database }\n",
    );
    write(
        &d.join("templates"),
        "web.yaml",
        "extends: guardrails/errors.yaml\nowners: { approvers: [bob] }\nsettle: 3d\n",
    );
    let plan = Plan::new("tmpl", "t-flag")
        .owners("{ requester: alice }")
        .section("extends: templates/web.yaml\nguardrails:\n  - { name: latency, metric: latency_ms, comparison: relative, tolerance: 0.1, min_sample: 50, action: rollback }\n")
        .to_string();
    let file = write(d, "plan.yaml", &plan);
    let f = file.to_str().unwrap();
    let lint = cli("http://127.0.0.1:9", None, &["plan", "lint", f, "--resolved"]);
    assert!(lint.status.success(), "{}{}", stdout(&lint), stderr(&lint));
    let shown = stdout(&lint);
    assert!(shown.contains("approvers:") && shown.contains("- bob"), "{shown}");
    assert!(shown.contains("page the on-call") && !shown.contains("extends"), "{shown}");
    let json = cli("http://127.0.0.1:9", None, &["plan", "lint", f, "--resolved", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let guardrails = v["resolved"]["guardrails"].as_array().unwrap();
    assert_eq!(
        guardrails.iter().map(|g| (g["name"].clone(), g["tolerance"].clone())).collect::<Vec<_>>(),
        [(json!("errors"), json!(0.05)), (json!("latency"), json!(0.1))],
        "the plan's latency replaced the template's: {v}"
    );
    assert_eq!(v["resolved"]["settle"], "3d");

    let server = start(&d.join("w.db"), Some(ADMIN));
    let url = server.url.as_str();
    apply(url, d, "flag", "flags.yaml", &on_off(&["t-flag"]));
    let stored = cli_json(url, ADMIN, &["plan", "apply", "-f", f]);
    assert_eq!(stored["version"], 1, "{stored}");
    let got = cli_json(url, ADMIN, &["plan", "get", "tmpl"]);
    assert_eq!(got["spec"]["owners"], json!({"requester": "alice", "approvers": ["bob"]}), "{got}");
    assert_eq!(got["spec"]["guardrails"].as_array().unwrap().len(), 2);
    // The server stores resolved plans only.
    let unresolved: serde_json::Value = wavegate_core::flagfile::parse_yaml(&plan).unwrap();
    let plans = format!("{url}/api/v1/plans");
    let (status, body) =
        wavegate_testkit::http::request("POST", &plans, Some(ADMIN), Some(&unresolved));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unresolved-extends"), "{body}");
    // A cycle is named.
    write(&d.join("templates"), "web.yaml", "extends: ../plan.yaml\n");
    let o = cli("http://127.0.0.1:9", None, &["plan", "lint", f]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("cycle"), "{}", stderr(&o));
}

/// A coordinated release from the command line: a release file applied (checked locally
/// first), started, watched to completion member by member, and its one report.
#[test]
fn release_apply_start_status_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = start_with(&d.join("w.db"), Some(ADMIN), &["--tick", "50ms"]);
    let url = server.url.as_str();
    apply(url, d, "flag", "flags.yaml", &on_off(&["r-api", "r-ui"]));
    apply(url, d, "plan", "api.yaml", &Plan::new("api", "r-api").to_string());
    apply(url, d, "plan", "ui.yaml", &Plan::new("ui", "r-ui").to_string());
    let bad = write(d, "bad.yaml", "name: r\nmembers:\n  - plan: api\n    after: [api]\n");
    let o = cli(url, Some(ADMIN), &["release", "apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("members[0].after[0]"), "{}", stderr(&o));
    let file = write(
        d,
        "release.yaml",
        "name: launch\ndescription: api then ui\nmembers:\n  - plan: api\n  - plan: ui\n    after: [api]\non_failure: rollback_all\n",
    );
    let stored = cli_json(url, ADMIN, &["release", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(
        (stored["state"].as_str(), stored["doc"]["on_failure"].as_str()),
        (Some("draft"), Some("rollback_all"))
    );
    let started = cli_json(url, ADMIN, &["release", "start", "launch"]);
    assert_eq!(started["members"][0]["state"], "running", "{started}");
    wavegate_testkit::poll::eventually(
        "the release completes",
        std::time::Duration::from_secs(30),
        || cli_json(url, ADMIN, &["release", "status", "launch"])["state"] == "completed",
    );
    let listed = cli_json(url, ADMIN, &["release", "list"]);
    assert_eq!(listed[0]["name"], "launch", "{listed}");
    let human = cli(url, Some(ADMIN), &["release", "status", "launch"]);
    assert!(stdout(&human).starts_with("release launch: completed"), "{}", stdout(&human));
    let report = cli(url, Some(ADMIN), &["release", "report", "launch"]);
    let md = stdout(&report);
    assert!(md.starts_with("# Release report: launch"), "{md}");
    assert!(md.contains("[api] rollout.complete") && md.contains("[ui] rollout.complete"), "{md}");
}

/// `flag import-unleash` turns Unleash features into a flag file the server accepts, and says
/// what it could not import.
#[test]
fn import_unleash_writes_an_appliable_flag_file_and_reports_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let spec = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../wavegate-core/tests/unleash-client-specification/17-dependent-features.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
    let input = crate::support::write(dir.path(), "unleash.json", &doc["state"].to_string());
    let out = dir.path().join("flags.yaml");
    let o = crate::support::cli(
        "http://127.0.0.1:9",
        None,
        &[
            "flag",
            "import-unleash",
            "-f",
            input.to_str().unwrap(),
            "--env",
            "prod",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let err = crate::support::stderr(&o);
    assert!(o.status.success(), "{err}");
    // Every feature imports: a parent's only variant is served by name, so dependencies on
    // it hold; one on a variant the parent never serves is imported disabled, and says so.
    assert!(!err.contains("unsupported"), "{err}");
    assert!(
        err.contains("parent.non.matching.variant.child.enabled: depends on variants [\"nonmatching.variant\"]"),
        "{err}"
    );
    assert!(err.contains("imported 25 of 25 features into environment prod"), "{err}");
    let server = crate::support::start(&dir.path().join("w.db"), Some(crate::support::ADMIN));
    let applied = crate::support::cli_json(
        &server.url,
        crate::support::ADMIN,
        &["flag", "apply", "-f", out.to_str().unwrap()],
    );
    assert_eq!(applied["changed"], 25, "{applied}");
    let child = crate::support::cli_json(
        &server.url,
        crate::support::ADMIN,
        &["flag", "get", "parent.single.variant.child.enabled"],
    );
    assert_eq!(
        child["spec"]["prerequisites"],
        serde_json::json!([{"flag": "parent.with.variant", "variants": ["parent.variant"]}])
    );
    let client = crate::support::prod_token(&server.url, "client-sdk");
    let o = crate::support::cli(
        &server.url,
        Some(&client),
        &[
            "eval",
            "parent.single.variant.child.enabled",
            "--context",
            r#"{"targetingKey":"u1"}"#,
            "--json",
        ],
    );
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(
        answer["value"],
        true,
        "{}{}",
        crate::support::stdout(&o),
        crate::support::stderr(&o)
    );
    let child = crate::support::cli_json(
        &server.url,
        crate::support::ADMIN,
        &["flag", "get", "parent.enabled.child.enabled"],
    );
    assert_eq!(child["spec"]["prerequisites"], serde_json::json!([{"flag": "parent.enabled"}]));
    // Bad input says what is wrong.
    let bad = crate::support::write(dir.path(), "bad.json", "{\"features\": 3}");
    let o = crate::support::cli(
        "http://127.0.0.1:9",
        None,
        &["flag", "import-unleash", "-f", bad.to_str().unwrap(), "--env", "prod"],
    );
    assert!(!o.status.success());
    assert!(
        crate::support::stderr(&o).contains("not an Unleash features document"),
        "{}",
        crate::support::stderr(&o)
    );
}

/// `scorecard show|set` from the command line, human and `--json`.
#[test]
fn scorecard_show_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_flags(dir.path(), &["checkout"]);
    let scorecard = "scorecard: { max_red: 1, items: [{ key: baseline }] }\n";
    let plan = Plan::new("p1", "checkout")
        .owners("{ requester: alice }")
        .section(scorecard)
        .waves(&["{ exposure: 20% }"]);
    apply(&server.url, dir.path(), "plan", "p.yaml", &plan.to_string());
    let o = cli(&server.url, Some(ADMIN), &["scorecard", "show", "p1"]);
    let out = stdout(&o);
    assert!(out.contains("baseline") && out.contains("NO-GO: 1 of 1 items not green"), "{out}");
    // Who applied the plan may not sign it (separation of duties); carol may.
    let o =
        cli(&server.url, Some(ADMIN), &["scorecard", "set", "p1", "baseline", "--status", "green"]);
    assert!(stderr(&o).contains("rule \"plan-author\""), "{}", stderr(&o));
    let carol = crate::support::token(&server.url, "admin", "prod", "carol");
    let o = cli(
        &server.url,
        Some(&carol),
        &["scorecard", "set", "p1", "baseline", "--status", "waived"],
    );
    assert_eq!(o.status.code(), Some(2), "a waiver without a reason is an input error");
    assert!(stderr(&o).contains("reason"), "{}", stderr(&o));
    let card = cli_json(
        &server.url,
        &carol,
        &[
            "scorecard",
            "set",
            "p1",
            "baseline",
            "--status",
            "green",
            "--note",
            "https://wiki/baseline",
        ],
    );
    assert_eq!((card["go"].clone(), card["items"][0]["by"].clone()), (json!(true), json!("carol")));
    let o = cli(&server.url, Some(ADMIN), &["scorecard", "show", "p1"]);
    assert!(stdout(&o).contains("GO: 0 of 1 items not green"), "{}", stdout(&o));
    // A plan without a scorecard section gets advice, not a verdict.
    let plain = Plan::new("p2", "checkout").waves(&["{ exposure: 20% }"]);
    apply(&server.url, dir.path(), "plan", "p2.yaml", &plain.to_string());
    let out = stdout(&cli(&server.url, Some(ADMIN), &["scorecard", "show", "p2"]));
    assert!(
        out.contains("Advisory: 7 of 7 default items not green") && !out.contains("NO-GO"),
        "{out}"
    );
}

#[test]
fn freeze_on_status_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    let o = cli(&server.url, Some(ADMIN), &["freeze", "on", "--reason", "incident INC-9"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(&server.url, Some(ADMIN), &["freeze", "status"]);
    assert!(
        stdout(&o).contains("FROZEN") && stdout(&o).contains("incident INC-9"),
        "{}",
        stdout(&o)
    );
    let v = cli_json(&server.url, ADMIN, &["freeze", "off", "--reason", "resolved"]);
    assert_eq!(v["active"], false);
    assert!(stdout(&cli(&server.url, Some(ADMIN), &["freeze", "status"])).contains("No freeze"));
}

/// `plan lint --format sarif` is a SARIF 2.1.0 log (validated against the OASIS schema) with
/// each finding at its line and column; `--format github` writes workflow-command annotations.
#[test]
fn plan_lint_speaks_sarif_and_github_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(root.join("examples/checkout-v2.yaml")).unwrap();
    let bad = example.replacen(
        "{ exposure: 5%, hold: 30m, max_duration: 6h }",
        "{ exposure: 50%, hold: 30m }",
        1,
    );
    let file = write(dir.path(), "plan.yaml", &bad);
    let path = file.to_str().unwrap();
    let o = cli("http://127.0.0.1:9", None, &["plan", "lint", path, "--format", "sarif"]);
    assert_eq!(o.status.code(), Some(1), "a plan with errors fails: {}", stderr(&o));
    let log: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/schemas/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    // The published schema's `language` patterns have a stray `]`, which draft 7's
    // meta-schema refuses as a regular expression; read them as meant (we write no `language`).
    let bad = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    let mut fixed = 0;
    for def in ["run", "toolComponent"] {
        let language = &mut schema["definitions"][def]["properties"]["language"]["pattern"];
        if *language == bad {
            *language = json!("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
            fixed += 1;
        }
    }
    assert_eq!(fixed, 2, "the schema file changed; look again");
    assert!(!schema.to_string().contains(bad), "another copy of the stray bracket");
    // Formats (uri, date-time) are not asserted, as draft 7 leaves them to the validator.
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(false)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> =
        validator.iter_errors(&log).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "not valid SARIF 2.1.0: {errors:#?}");
    let results = log["runs"][0]["results"].as_array().unwrap();
    let big = results.iter().find(|r| r["ruleId"] == "first-wave-too-large").unwrap();
    assert_eq!(big["level"], "error");
    assert_eq!(big["locations"][0]["physicalLocation"]["region"]["startLine"], 47);
    assert_eq!(big["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], path);
    // The schema really judges: a log without its version is refused.
    let mut broken = log.clone();
    broken.as_object_mut().unwrap().remove("version");
    assert!(!validator.is_valid(&broken));

    let o = cli("http://127.0.0.1:9", None, &["plan", "lint", path, "--format", "github"]);
    let out = stdout(&o);
    let first = out.lines().find(|l| l.contains("first-wave-too-large")).unwrap();
    assert!(first.starts_with(&format!("::error file={path},line=47,col=")), "{first}");
    assert!(out.lines().all(|l| l.starts_with("::error ") || l.starts_with("::warning ")), "{out}");
}

/// `feedback list|close` and `incident report|list`, as people and scripts run them.
#[tokio::test]
async fn feedback_closes_and_incidents_are_reported_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", &on_off(&["checkout"]));
    let item = json!({"release": "checkout", "category": "bug", "cohort": "oslo",
        "sentiment": "negative", "text": "the pay button moved", "blocker": true});
    let posted = reqwest::Client::new()
        .post(format!("{url}/api/v1/feedback"))
        .bearer_auth(ADMIN)
        .json(&item)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let id =
        posted.json::<serde_json::Value>().await.unwrap()["ids"][0].as_i64().unwrap().to_string();
    let out = stdout(&cli(&url, Some(ADMIN), &["feedback", "list", "--release", "checkout"]));
    assert!(
        out.contains(&format!("#{id} [open, blocker] bug / oslo / negative: the pay button moved")),
        "{out}"
    );
    // Closing needs a note, and a fix that exists.
    let o = cli(
        &url,
        Some(ADMIN),
        &["feedback", "close", &id, "--status", "fixed", "--fixed-in", "flag:checkout:1"],
    );
    assert!(!o.status.success() && stderr(&o).contains("note"), "{}", stderr(&o));
    let o = cli(
        &url,
        Some(ADMIN),
        &["feedback", "close", &id, "--status", "fixed", "--note", "x", "--fixed-in", "checkout@1"],
    );
    assert!(!o.status.success() && stderr(&o).contains("KIND:KEY:VERSION"), "{}", stderr(&o));
    let v = cli_json(
        &url,
        ADMIN,
        &[
            "feedback",
            "close",
            &id,
            "--status",
            "fixed",
            "--note",
            "moved it back",
            "--fixed-in",
            "flag:checkout:1",
        ],
    );
    assert_eq!(
        (v["status"].clone(), v["fixed_in"].clone()),
        (json!("fixed"), json!("flag checkout v1"))
    );
    assert_eq!(v["closed_by"], "admin");

    let args = [
        "incident",
        "report",
        "--service",
        "checkout",
        "--severity",
        "critical",
        "--title",
        "pay fails",
        "--id",
        "INC-7",
    ];
    assert_eq!(cli_json(&url, ADMIN, &args)["new"], true);
    let again = stdout(&cli(&url, Some(ADMIN), &args));
    assert!(
        again.starts_with("already recorded: #")
            && again.contains("[critical] checkout INC-7: pay fails"),
        "{again}"
    );
    let listed = cli_json(&url, ADMIN, &["incident", "list", "--service", "checkout"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// `report dora` from real rollouts: a rolled-back hotfix counts (change fail rate, rework), a
/// running rollout does not; Markdown, HTML with a chart, and JSON. (Completed rollouts, lead
/// time and the clusters are covered by `wavegate_rollout::report`'s tests.)
#[test]
fn report_dora_from_real_rollouts() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        crate::support::start_with(&dir.path().join("w.db"), Some(ADMIN), &["--tick", "100ms"]);
    apply(&server.url, dir.path(), "flag", "f.yaml", &on_off(&["a", "b"]));
    let commit = (chrono::Utc::now() - chrono::Duration::hours(5)).to_rfc3339();
    for (name, flag, kind) in [("pa", "a", "feature"), ("pb", "b", "hotfix")] {
        let plan = Plan::new(name, flag)
            .release(&format!("version: 1.0.0, risk: low, service: checkout, team: payments, commit_time: \"{commit}\", change_type: {kind}"))
            .waves(&["{ exposure: 20%, hold: 1h }", "{ exposure: 100% }"]);
        apply(&server.url, dir.path(), "plan", &format!("{name}.yaml"), &plan.to_string());
    }
    let a = start_rollout(&server.url, ADMIN, "pa");
    let b = start_rollout(&server.url, ADMIN, "pb");
    cli_json(&server.url, ADMIN, &["rollout", "rollback", &b, "--reason", "errors"]);
    // `a` is still holding its first wave (1h): running rollouts are not deployments yet.
    assert_eq!(cli_json(&server.url, ADMIN, &["rollout", "status", &a])["state"], "running");
    let md = stdout(&cli(
        &server.url,
        Some(ADMIN),
        &["report", "dora", "--since", "1d", "--env", "prod"],
    ));
    assert!(md.contains("# DORA metrics by service"), "{md}");
    assert!(md.contains("| checkout | 1 |"), "one ended rollout (the rolled-back one): {md}");
    assert!(md.contains("100.0% (low)"), "change fail rate 100%: {md}");
    let json = cli_json(&server.url, ADMIN, &["report", "dora", "--since", "1d", "--by", "team"]);
    assert_eq!(json["groups"][0]["group"], "payments");
    assert_eq!(json["groups"][0]["rework_rate"]["value"], 1.0, "the hotfix counts as rework");
    let html = stdout(&cli(&server.url, Some(ADMIN), &["report", "dora", "--format", "html"]));
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"), "{html}");
    // The post-rollout report of the rolled-back one.
    let post = stdout(&cli(&server.url, Some(ADMIN), &["report", "rollout", &b]));
    assert!(post.contains("# Post-rollout report: b 1.0.0"), "{post}");
    assert!(post.contains("rollout.rollback by admin: errors"), "{post}");
    assert!(post.contains("Which signal caught the failure"), "{post}");
    let html =
        stdout(&cli(&server.url, Some(ADMIN), &["report", "rollout", &b, "--format", "html"]));
    assert!(html.contains("<h2>Retro prompts</h2>"), "{html}");
    let data = cli_json(&server.url, ADMIN, &["report", "rollout", &b]);
    assert_eq!(data["state"], "rolled_back");
    refused(&server.url, &["report", "dora", "--since", "yesterday"], "since");
}

/// Pilot feedback in, a digest out (`report feedback`), with bad input named.
#[test]
fn feedback_in_digest_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    let sdk = prod_token(&server.url, "server-sdk");
    let item = |cohort: &str, sentiment: &str, text: &str| json!({"release": "checkout", "category": "Usability", "cohort": cohort, "sentiment": sentiment, "text": text});
    let (status, body) = crate::support::post_json(
        &format!("{}/api/v1/feedback", server.url),
        &sdk,
        &json!({"feedback": [
        item("oslo", "negative", "The pay button moved"), item("oslo", "negative", "cannot find the pay button"), item("bergen", "positive", "nice and clean")]}),
    );
    assert_eq!((status, body["accepted"].clone()), (201, json!(3)), "{body}");
    let (status, body) = crate::support::post_json(
        &format!("{}/api/v1/feedback", server.url),
        &sdk,
        &item("oslo", "angry", "x"),
    );
    assert_eq!((status, body["field"].clone()), (422, json!("feedback[0].sentiment")), "{body}");
    let md =
        stdout(&cli(&server.url, Some(ADMIN), &["report", "feedback", "--release", "checkout"]));
    assert!(md.contains("3 items: 1 positive, 0 neutral, 2 negative"), "{md}");
    assert!(md.contains("| usability | 3 | 67% | button (2)"), "{md}");
    assert!(md.contains("| oslo | 2 | 100% | lagging |"), "{md}");
    let html = stdout(&cli(
        &server.url,
        Some(ADMIN),
        &["report", "feedback", "--release", "checkout", "--format", "html"],
    ));
    assert!(html.starts_with("<!doctype html>") && html.contains("<td>oslo</td>"), "{html}");
    assert!(
        html.contains("<svg") && html.contains("cohort oslo</text>"),
        "a sentiment chart: {html}"
    );
    let json = cli_json(&server.url, ADMIN, &["report", "feedback", "--release", "checkout"]);
    assert_eq!(json["digest"]["overall"]["count"], 3);
}

#[test]
fn rollout_start_at_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_flags(dir.path(), &["a"]);
    let plan = Plan::new("pa", "a").waves(&["{ exposure: 20% }"]);
    apply(&server.url, dir.path(), "plan", "p.yaml", &plan.to_string());
    let at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let o = cli(&server.url, Some(ADMIN), &["rollout", "start", "pa", "--at", &at]);
    assert!(stdout(&o).contains("scheduled: pa starts at"), "{} {}", stdout(&o), stderr(&o));
    refused(&server.url, &["rollout", "start", "pa", "--at", "tomorrow"], "start_at");
    let cal = stdout(&cli(&server.url, Some(ADMIN), &["calendar", "--days", "3"]));
    assert!(cal.contains("scheduled start of pa"), "{cal}");
}

/// Adoption by cohort from posted events (`report adoption`), for one rollout and as a summary.
#[test]
fn report_adoption_by_cohort() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_flags(dir.path(), &["search"]);
    let plan = Plan::new("search-v2", "search")
        .release("version: 2.0.0, risk: low")
        .section("adoption: { cohorts: [function], key_task: saved_search }\n")
        .waves(&["{ exposure: 20%, hold: 1h }", "{ exposure: 100% }"])
        .to_string();
    apply(&server.url, dir.path(), "plan", "p.yaml", &plan);
    let id = start_rollout(&server.url, ADMIN, "search-v2");
    let none = stdout(&cli(&server.url, Some(ADMIN), &["report", "adoption", &id]));
    assert!(none.contains("| **all users** | — | — | — |"), "nothing yet: {none}");
    let sdk = prod_token(&server.url, "server-sdk");
    // 50 in sales (40 save a search), 50 in support (5 do).
    let mut events = Vec::new();
    for i in 0..100 {
        let function = if i < 50 { "sales" } else { "support" };
        let ctx = json!({"targetingKey": format!("u{i}"), "function": function});
        events.push(json!({"type": "exposure", "flag": "search", "variant": "on", "context": ctx}));
        if (i < 50 && i % 5 != 0) || (i >= 50 && i % 10 == 0) {
            events.push(json!({"type": "outcome", "flag": "search", "variant": "on", "context": ctx, "metrics": {"saved_search": 1}}));
        }
    }
    let (status, body) = crate::support::post_json(
        &format!("{}/api/v1/events", server.url),
        &sdk,
        &json!({ "events": events }),
    );
    assert_eq!(status, 202, "{body}");
    let md = stdout(&cli(&server.url, Some(ADMIN), &["report", "adoption", &id]));
    assert!(md.contains("| **all users** | 45.0% (45/100) |"), "{md}");
    assert!(
        md.contains("| support | 10.0% (5/50) | 10.0% (5/50) | 10.0% (5/50) | **lagging** |"),
        "{md}"
    );
    assert!(md.contains("- function = support: 10.0% of 50 users, against 45.0% overall"), "{md}");
    let html = stdout(&cli(
        &server.url,
        Some(ADMIN),
        &["report", "adoption", &id, "--format", "html", "--window", "90"],
    ));
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"), "{html}");
    let data = cli_json(&server.url, ADMIN, &["report", "adoption", &id]);
    assert_eq!(data["lagging"][0]["value"], "support");
    let table = stdout(&cli(&server.url, Some(ADMIN), &["report", "adoption"]));
    assert!(
        table.contains(&id) && table.contains("45.0% of 100") && table.contains("function=support"),
        "{table}"
    );
    // A rolled-back rollout's users are no longer tracked: listed only with --all.
    let other = plan.replace("search-v2", "search-v3").replace("2.0.0", "3.0.0");
    cli_json(&server.url, ADMIN, &["rollout", "rollback", &id, "--reason", "errors"]);
    apply(&server.url, dir.path(), "plan", "q.yaml", &other);
    let v3 = start_rollout(&server.url, ADMIN, "search-v3");
    let listed = cli_json(&server.url, ADMIN, &["report", "adoption"]);
    let ids: Vec<&str> = listed["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rollout"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [v3.as_str()]);
    let all = cli_json(&server.url, ADMIN, &["report", "adoption", "--all"]);
    assert_eq!(all["rollouts"].as_array().unwrap().len(), 2);
    let summary = cli_json(&server.url, ADMIN, &["report", "adoption", "--env", "staging"]);
    assert_eq!(summary["rollouts"], json!([]));
    refused(&server.url, &["report", "adoption", &id, "--window", "45"], "window");
}

/// Issue 19, items 4–5: a protected environment through the CLI — a direct apply refused, a
/// change proposed, approved by someone else, applied; an emergency applied at once and
/// reviewed afterwards.
#[test]
fn change_requests_and_emergencies_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    let url = server.url.as_str();
    apply(url, dir.path(), "flag", "flags.yaml", &on_off(&["checkout"]));
    let person = |name: &str, role: &str| {
        create_person(url, "*", name, &[role])["token"].as_str().unwrap().to_owned()
    };
    let (erin, abe, rita) =
        (person("erin", "editor"), person("abe", "approver"), person("rita", "releaser"));
    let o = cli(url, Some(ADMIN), &["env", "protect", "prod", "--approvals", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("prod is protected: changes there need 1 approval(s)."),
        "{}",
        stdout(&o)
    );

    let off = on_off(&["checkout"]).replace("enabled: true", "enabled: false");
    let file = write(dir.path(), "off.yaml", &off);
    let f = file.to_str().unwrap();
    let o = cli(url, Some(&erin), &["flag", "apply", "-f", f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("prod is protected: propose this as a change request"),
        "{}",
        stderr(&o)
    );

    let cr = cli_json(
        url,
        &erin,
        &["change", "propose", "-f", f, "--description", "checkout off", "--record", "CHG-7"],
    );
    let id = cr["id"].as_str().unwrap();
    assert_eq!((cr["state"].as_str(), cr["record"].as_str()), (Some("open"), Some("CHG-7")));
    let o = cli(url, Some(&erin), &["change", "approve", id]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("rule \"change-author\""), "{}", stderr(&o));
    let shown = cli(url, Some(&abe), &["change", "approve", id]);
    assert!(stdout(&shown).contains("approvals: 1 of 1 (abe)"), "{}", stdout(&shown));
    let applied = cli_json(url, &erin, &["change", "apply", id]);
    assert_eq!(applied["state"], "applied");
    let flag = cli_json(url, ADMIN, &["flag", "get", "checkout"]);
    assert_eq!(flag["spec"]["environments"]["prod"]["enabled"], false);

    // An emergency: applied at once, listed as awaiting its review until an approver records it.
    let on = write(dir.path(), "on.yaml", &on_off(&["checkout"]));
    let hot = cli_json(
        url,
        &rita,
        &[
            "change",
            "propose",
            "-f",
            on.to_str().unwrap(),
            "--description",
            "back on",
            "--emergency",
            "INC-9 checkout down",
        ],
    );
    let hot_id = hot["id"].as_str().unwrap();
    assert_eq!(
        (hot["state"].as_str(), hot["awaiting_review"].as_bool()),
        (Some("applied"), Some(true))
    );
    let due = cli(url, Some(&abe), &["change", "list", "--state", "awaiting_review"]);
    assert!(
        stdout(&due).contains(hot_id) && stdout(&due).contains("review due"),
        "{}",
        stdout(&due)
    );
    let reviewed = cli_json(
        url,
        &abe,
        &["change", "review", hot_id, "--link", "https://wiki/pm/9", "--summary", "bad deploy"],
    );
    assert_eq!(reviewed["awaiting_review"], false);
    let o = cli(url, Some(ADMIN), &["env", "unprotect", "prod"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
