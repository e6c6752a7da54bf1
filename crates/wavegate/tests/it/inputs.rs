//! Bad input and bad settings are refused with a usage error before anything is touched:
//! endless files, unknown database schemes, unusable listen addresses, a taken port, an empty
//! token.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, cli, stderr, stdout};

#[test]
fn endless_input_is_cut_off_at_the_size_limit() {
    for args in [&["plan", "lint", "/dev/zero"][..], &["flag", "apply", "-f", "/dev/zero"][..]] {
        let t = Instant::now();
        let o = cli("http://127.0.0.1:9", Some("wg_unused"), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("/dev/zero is larger than 8388608 bytes"),
            "{args:?}: {}",
            stderr(&o)
        );
        // It stopped at the limit instead of reading on (it read 2.5 GB in 8 s before).
        assert!(t.elapsed() < Duration::from_secs(30), "{args:?} took {:?}", t.elapsed());
    }
}

/// `wavegate serve` with `args`, its exit code and standard error.
fn serve(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(bin())
        .arg("serve")
        .args(args)
        .env_remove("WAVEGATE_DB")
        .env_remove("WAVEGATE_LISTEN")
        .stdin(Stdio::null())
        .output()
        .expect("run wavegate serve");
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn serve_refuses_bad_settings_before_touching_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();

    let (code, err) = serve(&["--db", db, "--listen", "garbage"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--listen \"garbage\" is not an address"), "{err}");

    for (url, says) in [
        ("mysql://u@localhost/db", "unknown database scheme \"mysql\""),
        ("postgresql:/localhost", "is not a PostgreSQL URL"),
    ] {
        let (code, err) = serve(&["--db", url, "--listen", "127.0.0.1:0"]);
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(err.contains(says), "{url}: {err}");
    }

    // A taken port is found before the database is created and migrated.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = serve(&["--db", db, "--listen", &addr]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("could not listen on {addr}")), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, the cause once: {err}");
    assert!(!std::path::Path::new(db).exists(), "no database was created");

    // Issue 16, item 11: the outbound policy's exceptions and the checks' signing secret.
    for (entry, says) in [
        (
            "10.0.0.1/8",
            "--allow-outbound: \"10.0.0.1/8\" has bits set beyond its /8 prefix; write 10.0.0.0/8",
        ),
        ("127.0.0.1:9090", "--allow-outbound: \"127.0.0.1:9090\" has a port"),
        ("http://prometheus", "--allow-outbound: \"http://prometheus\" is a URL"),
    ] {
        let (code, err) =
            serve(&["--db", db, "--listen", "127.0.0.1:0", "--allow-outbound", entry]);
        assert_eq!(code, Some(2), "{entry}: {err}");
        assert!(err.contains(says), "{entry}: {err}");
    }
    let short = dir.path().join("secret");
    std::fs::write(&short, "too short\n").unwrap();
    let (code, err) = serve(&["--db", db, "--check-secret-file", short.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at least 16 characters"), "{err}");
    // Sign-in settings: each missing or malformed piece is named.
    let secret = dir.path().join("oidc-secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let secret = secret.to_str().unwrap();
    let oidc = ["--oidc-issuer", "https://login.example.com"];
    // Everything sign-in needs but its roles.
    let complete = vec![
        "--oidc-client-id",
        "wg",
        "--public-url",
        "https://w.example.com",
        "--oidc-client-secret-file",
        secret,
    ];
    for (extra, says) in [
        (vec![], "--oidc-issuer needs --oidc-client-id too"),
        (vec!["--oidc-client-id", "wg"], "--oidc-issuer needs --public-url too"),
        (
            vec!["--oidc-client-id", "wg", "--public-url", "wavegate.example.com"],
            "--public-url \"wavegate.example.com\"",
        ),
        (
            vec!["--oidc-client-id", "wg", "--public-url", "https://w.example.com"],
            "needs --oidc-client-secret-file",
        ),
        (complete.clone(), "at least one --oidc-role"),
        ([&complete[..], &["--oidc-role", "cab=owner"]].concat(), "unknown role \"owner\""),
        (
            [&complete[..], &["--oidc-role", "cab=approver", "--session-ttl", "90d"]].concat(),
            "--session-ttl must be between 1m and 30d",
        ),
    ] {
        let mut args = vec!["--db", db];
        args.extend(oidc);
        args.extend(extra.iter().copied());
        let (code, err) = serve(&args);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {says:?} not in {err}");
    }
    assert!(!std::path::Path::new(db).exists(), "no database was created");
}

#[test]
fn wavegate_login_says_when_a_server_signs_nobody_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::support::start(&dir.path().join("w.db"), Some(crate::support::ADMIN));
    let o = cli(&server.url, None, &["login", "--no-browser"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("signs nobody in through an identity provider"), "{}", stderr(&o));
    let o = cli(&server.url, None, &["logout"]);
    assert!(o.status.success() && stdout(&o).contains("Not signed in"), "{}", stderr(&o));
}

#[test]
fn an_empty_token_is_no_token() {
    let o = cli("http://127.0.0.1:9", Some(""), &["flag", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no token given"), "{}", stderr(&o));
}

#[test]
fn a_second_server_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let _first = crate::support::start(&db, Some(crate::support::ADMIN));
    let (code, err) = serve(&["--db", db.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("another wavegate server is already serving"), "{err}");
    // Readers that open the file directly keep working while it runs.
    let o = Command::new(bin())
        .args(["audit", "verify", "--db", db.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("audit chain verifies: "), "{out}");
}

/// Issue 16, item 9: a PostgreSQL password never shows in a start-up error, whether it is in
/// the query (`?password=`) or holds an `@`.
#[test]
fn issue_16_database_passwords_stay_out_of_start_up_errors() {
    for db in [
        "postgres://wg@127.0.0.1:1/wavegate?sslmode=disable&password=s3cret-pw",
        "postgres://wg:p@ss-s3cret-pw@127.0.0.1:1/wavegate",
    ] {
        let (code, err) = serve(&["--db", db, "--listen", "127.0.0.1:0"]);
        assert_eq!(code, Some(1), "{db}: {err}");
        assert!(err.contains("could not open the database postgres://wg"), "{db}: {err}");
        assert!(!err.contains("s3cret-pw") && !err.contains("p@ss"), "{db}: {err}");
    }
}

/// Issue 16, item 10: the SQLite database and the files beside it are readable by their owner
/// only.
#[cfg(unix)]
#[test]
fn issue_16_sqlite_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let _server = crate::support::start(&db, Some(crate::support::ADMIN));
    for name in ["w.db", "w.db-wal", "w.db-shm", "w.db.lock"] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}: {mode:o}");
    }
}

/// Issue 16, items 14 and 16: `/metrics` on a listener of its own behind a token, and the
/// admin API open to the browser origins named, through `serve`'s flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_metrics_listener_token_and_cors_origins_from_serve_flags() {
    let dir = tempfile::tempdir().unwrap();
    let token = crate::support::write(dir.path(), "metrics-token", "scrape-0123456789abcdef\n");
    let server = crate::support::start_with(
        &dir.path().join("w.db"),
        Some(crate::support::ADMIN),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-token-file",
            token.to_str().unwrap(),
            "--cors-origin",
            "https://ops.example.com",
        ],
    );
    let metrics = server
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("metrics on "))
        .unwrap_or_else(|| panic!("the metrics address is announced: {:?}", server.banner))
        .to_owned();
    let http = reqwest::Client::new();
    // (status, Access-Control-Allow-Origin) of a GET.
    let get = |url: String, headers: &'static [(&'static str, &'static str)]| {
        let mut rb = http.get(url);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        async move {
            let r = rb.send().await.expect("the server answers");
            let origin = r
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), origin)
        }
    };
    assert_eq!(get(format!("{}/metrics", server.url), &[]).await, (404, None));
    assert_eq!(get(metrics.clone(), &[]).await, (401, None));
    let bearer = &[("authorization", "Bearer scrape-0123456789abcdef")];
    assert_eq!(get(metrics, bearer).await, (200, None));
    let flags = format!("{}/api/v1/flags", server.url);
    let ops = Some("https://ops.example.com".to_owned());
    assert_eq!(get(flags.clone(), &[("origin", "https://ops.example.com")]).await, (401, ops));
    assert_eq!(get(flags, &[("origin", "https://evil.example")]).await, (401, None));

    let (code, err) =
        serve(&["--db", "x.db", "--listen", "127.0.0.1:0", "--cors-origin", "ops.example.com"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--cors-origin"), "{err}");
}

/// Issue 18, item 4: `plan lint --traffic` keeps its machine-readable forecast, now from the
/// controller's own test: a pass never before `min_sample` (500 per arm) or the hold.
#[test]
fn issue_18_plan_lint_forecasts_in_json_and_refuses_a_bad_tick() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/checkout-v2.yaml");
    let o =
        cli("http://127.0.0.1:9", None, &["plan", "lint", example, "--traffic", "100", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = v["forecast"].as_array().unwrap().iter().find(|f| f["wave"] == 1).unwrap().clone();
    assert_eq!(f["guardrail"], "error-rate", "{f}");
    assert!(f["to_pass_secs"].as_f64().unwrap() >= 1800.0, "the 30m hold: {f}");
    assert!(f["pass_samples"].as_f64().unwrap() >= 500.0, "{f}");
    assert!(f["to_fail_secs"].as_f64().unwrap() > 0.0, "{f}");
    assert!(f["cost_vs_fixed"].as_f64().unwrap() > 1.0, "{f}");
    assert_eq!(f["tick_secs"], 10.0, "{f}");
    let o = cli(
        "http://127.0.0.1:9",
        None,
        &["plan", "lint", example, "--traffic", "100", "--tick", "0s"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tick"), "{}", stderr(&o));
}

/// Issue 18, item 3: `serve --prometheus-*` read credentials from files and refuse bad ones with
/// a usage error that names the flag and the file, never what the file holds.
#[test]
fn issue_18_prometheus_credentials_are_checked_and_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let basic = file("basic", "no-colon-s3cret\n");
    let empty = file("empty", "\n");
    let spaced = file("spaced", "two s3cret words\n");
    let header = file("header", "s3cret\u{7}\n");
    let pem = file("ca.pem", "not a s3cret certificate\n");
    let token = file("token", "s3cret-token\n");
    let url = ["--prometheus-url", "http://127.0.0.1:9090"];
    for (args, says) in [
        (vec!["--prometheus-bearer-file", token.as_str()], "--prometheus-url"),
        (
            vec![url[0], url[1], "--prometheus-basic-auth-file", basic.as_str()],
            "--prometheus-basic-auth-file: basic authentication must be one line `user:password`",
        ),
        (vec![url[0], url[1], "--prometheus-bearer-file", empty.as_str()], "is empty"),
        (
            vec![url[0], url[1], "--prometheus-bearer-file", spaced.as_str()],
            "the bearer token must be one word",
        ),
        (
            vec![url[0], url[1], "--prometheus-bearer-file", "/nonexistent/token"],
            "--prometheus-bearer-file: cannot read /nonexistent/token",
        ),
        (vec![url[0], url[1], "--prometheus-header", "X-Key"], "use NAME=VALUE or NAME=@FILE"),
        (
            vec![url[0], url[1], "--prometheus-header", &format!("X-Key=@{header}")],
            "the value of header X-Key holds characters a header cannot carry",
        ),
        (vec![url[0], url[1], "--prometheus-header", "Bad Name=x"], "is not a header name"),
        (vec![url[0], url[1], "--prometheus-ca-file", pem.as_str()], "--prometheus-ca-file"),
        (
            vec![
                url[0],
                url[1],
                "--prometheus-bearer-file",
                token.as_str(),
                "--prometheus-basic-auth-file",
                basic.as_str(),
            ],
            "cannot be used with",
        ),
    ] {
        let mut all = vec!["--db", db, "--listen", "127.0.0.1:0"];
        all.extend(args.iter().copied());
        let (code, err) = serve(&all);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("s3cret"), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new(db).exists(), "no database was created");
}
