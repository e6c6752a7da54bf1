//! Backup and restore with real processes: a backup taken from a running SQLite server in the
//! middle of a rollout restores into a fresh PostgreSQL database (how a team moves up), the
//! audit chain verifies, the restored tokens still work, and the rollout resumes where it was.

use std::time::Duration;

use serde_json::{Value, json};
use wavegate_testkit::postgres::Database;

use crate::rollout::{flags, gated, status};
use crate::support::{
    ADMIN, apply, cli, cli_json, eventually, start_rollout, start_with, stderr, stdout, token,
    write,
};

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::support::bin())
        .args(args)
        .env_remove("WAVEGATE_DB")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run wavegate")
}

#[test]
fn a_mid_rollout_backup_restores_into_postgres_and_the_rollout_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let server = start_with(&db, Some(ADMIN), &["--tick", "100ms"]);
    let url = server.url.clone();
    apply(&url, dir.path(), "flag", "flags.yaml", &flags());
    apply(&url, dir.path(), "plan", "gated.yaml", &gated());
    let alice = token(&url, "admin", "prod", "alice");
    let bob = token(&url, "admin", "prod", "bob");
    let id = start_rollout(&url, &alice, "checkout-gated");
    eventually("the gate to ask for approval", Duration::from_secs(30), || {
        status(&url, ADMIN, &id)["phase"] == "awaiting_approval"
    });

    // A scoped admin may not take a backup: it holds every environment.
    let o = cli(&url, Some(&alice), &["backup", dir.path().join("no.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("all (*)"), "{}", stderr(&o));

    let file = dir.path().join("mid-rollout.json");
    let summary = cli_json(&url, ADMIN, &["backup", file.to_str().unwrap()]);
    assert_eq!(summary["source"], "sqlite");
    assert_eq!(summary["tables"]["rollouts"], 1);
    assert!(summary["audit_head"].as_i64().unwrap() >= 5, "{summary}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup holds token hashes: owner-only");
    }
    let o = cli(&url, Some(ADMIN), &["backup", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "an existing file is not replaced without --force");
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    drop(server);

    // Restore into PostgreSQL.
    let pg = Database::create("wavegate_it").unwrap();
    let o = run(&["restore", file.to_str().unwrap(), "--db", &pg.url(), "--json"]);
    assert!(o.status.success(), "restore failed: {}{}", stdout(&o), stderr(&o));
    let restored: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(restored["audit"]["ok"], true, "{restored}");
    assert_eq!(restored["audit"]["verified"], summary["audit_head"]);
    assert!(stderr(&o).contains("restoring"), "progress on stderr: {}", stderr(&o));

    // Not twice: the database is no longer empty.
    let o = run(&["restore", file.to_str().unwrap(), "--db", &pg.url()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));

    // A damaged file is refused with where it is wrong.
    let bad = write(dir.path(), "bad.json", r#"{"format": "wavegate-backup", "version": 1"#);
    let o =
        run(&["restore", bad.to_str().unwrap(), "--db", dir.path().join("x.db").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 1"), "{}", stderr(&o));

    // The server on PostgreSQL: the old tokens work, the rollout waits where it was.
    let server = start_with(std::path::Path::new(&pg.url()), None, &["--tick", "100ms"]);
    let url = server.url.clone();
    let st = status(&url, ADMIN, &id);
    assert_eq!(
        (st["state"].clone(), st["wave"].clone(), st["phase"].clone()),
        (json!("running"), json!(1), json!("awaiting_approval"))
    );
    cli_json(&url, &bob, &["rollout", "approve", &id, "--reason", "restored; CAB ok"]);
    eventually("the restored rollout to complete", Duration::from_secs(30), || {
        status(&url, ADMIN, &id)["state"] == "completed"
    });
    let verify = cli_json(&url, ADMIN, &["audit", "verify"]);
    assert_eq!(verify["ok"], true);
    assert!(verify["verified"].as_i64().unwrap() > summary["audit_head"].as_i64().unwrap());

    // And back down: a backup of PostgreSQL taken with --db restores into SQLite.
    let pg_file = dir.path().join("pg.json");
    let o = run(&["backup", pg_file.to_str().unwrap(), "--db", &pg.url()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("backup of postgres written"), "{}", stderr(&o));
    let lite = dir.path().join("back.db");
    let o = run(&["restore", pg_file.to_str().unwrap(), "--db", lite.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("audit chain verifies"), "{}", stdout(&o));
}

/// Issue 16, item 10: `wavegate backup` leaves webhook signing secrets and URLs out unless
/// `--include-secrets` asks (from a server or from `--db`), and a backup without them restores,
/// saying which targets need their URL again.
#[test]
fn issue_16_backups_leave_webhook_secrets_out_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let server = start_with(&db, Some(ADMIN), &[]);
    let url = server.url.clone();
    let secret = write(dir.path(), "signing", "signing-s3cret-0123456789\n");
    let hook = "https://hooks.example.com/services/T0/B0/p4th-s3cret";
    let o = cli(
        &url,
        Some(ADMIN),
        &[
            "notify",
            "set",
            "oncall",
            "--audience",
            "on-call",
            "--webhook",
            hook,
            "--format",
            "slack",
        ]
        .into_iter()
        .chain(["--signing-secret-file", secret.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let kept = |text: &str| text.contains("signing-s3cret") || text.contains("p4th-s3cret");

    let plain = dir.path().join("plain.json");
    let o = cli(&url, Some(ADMIN), &["backup", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("left out the signing secrets and webhook URLs"), "{}", stderr(&o));
    assert!(!kept(&read("plain.json")), "{}", read("plain.json"));
    let full = dir.path().join("full.json");
    let summary = cli_json(&url, ADMIN, &["backup", full.to_str().unwrap(), "--include-secrets"]);
    assert_eq!(summary["secrets_omitted"], false, "{summary}");
    assert!(kept(&read("full.json")));
    drop(server);
    let direct = dir.path().join("direct.json");
    let o = run(&["backup", direct.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!kept(&read("direct.json")), "{}", read("direct.json"));

    let restored = dir.path().join("restored.db");
    let o =
        run(&["restore", plain.to_str().unwrap(), "--db", restored.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (summary["audit"]["ok"].clone(), summary["withheld_targets"].clone()),
        (json!(true), json!(["oncall"]))
    );
    assert!(stderr(&o).contains("wavegate notify set"), "{}", stderr(&o));
}
