//! Start-up, shutdown and crash behaviour of `wavegate serve`.

use std::time::Duration;

use crate::support::{ADMIN, FLAGS, cli, cli_json, eventually, start, stdout, write};

#[test]
fn first_start_prints_a_one_time_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let server = start(&db, None);
    assert!(db.exists(), "the database file is created on first start");
    let token = server
        .banner
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("wg_"))
        .expect("token printed")
        .to_owned();
    let o = cli(&server.url, Some(&token), &["flag", "list", "--json"]);
    assert!(o.status.success());
    let envs = cli_json(&server.url, &token, &["env", "list"]);
    let names: Vec<_> =
        envs.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    let tokens = cli_json(&server.url, &token, &["token", "list"]);
    assert_eq!(
        (tokens[0]["principal"].clone(), tokens[0]["environments"].clone()),
        ("admin".into(), serde_json::json!(["*"]))
    );
    drop(server);

    let again = start(&db, None);
    assert!(again.banner.iter().all(|l| !l.contains("wg_")), "shown once only: {:?}", again.banner);
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&dir.path().join("w.db"), Some(ADMIN));
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut status = None;
    eventually("the server to exit after SIGTERM", Duration::from_secs(20), || {
        status = server.child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0));
}

#[cfg(unix)]
#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let file = write(dir.path(), "flags.yaml", FLAGS);
    let mut server = start(&db, Some(ADMIN));
    cli_json(&server.url, ADMIN, &["flag", "apply", "-f", file.to_str().unwrap()]);
    for i in 0..5 {
        let changed = write(
            dir.path(),
            "f.yaml",
            &FLAGS.replace(
                "default: blue",
                if i % 2 == 0 { "default: red" } else { "default: blue" },
            ),
        );
        cli_json(&server.url, ADMIN, &["flag", "apply", "-f", changed.to_str().unwrap()]);
    }
    server.kill_9();
    drop(server);

    let server = start(&db, Some(ADMIN));
    let history = cli_json(&server.url, ADMIN, &["flag", "history", "banner-color"]);
    assert_eq!(history.as_array().unwrap().len(), 6, "every acknowledged change survived kill -9");
    let v = cli(&server.url, Some(ADMIN), &["audit", "verify", "--json"]);
    assert!(v.status.success(), "{}", stdout(&v));
}
