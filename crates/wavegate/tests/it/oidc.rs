//! Issue 19, item 1: signing in through a real OpenID provider (`oidc-provider` from npm, a
//! certified implementation, started here on a free port by `tests/browser/oidc_provider.mjs`),
//! in headless Chromium for the dashboard and through `wavegate login` for the CLI: groups
//! mapped to roles, the session cookie (HttpOnly, SameSite) and its CSRF token, sign-out, a
//! person with no role turned away, the provider rotating its signing key, and an ID token
//! issued for another audience refused.
//!
//! Needs `node`, `tests/browser/node_modules` (`scripts/setup-browser.sh`) and `chromium`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wavegate_testkit::process::Proc;

use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, bin, cli, cli_json, stderr, stdout};

const SECRET: &str = "the-client-secret-of-wavegate-at-the-provider";

/// The provider, on `port` (0: any), redirecting to wavegate on `wg_port`, signing with `kid`.
fn provider(root: &std::path::Path, port: u16, wg_port: u16, kid: &str) -> Proc {
    provider_with(root, port, wg_port, kid, &[])
}

/// [`provider`] with more of its settings (`ID_TOKEN_AUDIENCE`).
fn provider_with(
    root: &std::path::Path,
    port: u16,
    wg_port: u16,
    kid: &str,
    env: &[(&str, &str)],
) -> Proc {
    let mut cmd = Command::new("node");
    cmd.envs(env.iter().copied());
    cmd.arg(root.join("tests/browser/oidc_provider.mjs"))
        .current_dir(root.join("tests/browser"))
        .env("PORT", port.to_string())
        .env("REDIRECT_URI", format!("http://127.0.0.1:{wg_port}/auth/callback"))
        .env("CLIENT_SECRET", SECRET)
        .env("KID", kid);
    // Generous: its start-up (an RSA key, the provider library) is slow on a loaded machine;
    // once in a long CI run it printed nothing for 90 s, so a start that hangs is tried again.
    match Proc::try_spawn(&mut cmd, "issuer ", Duration::from_secs(60)) {
        Ok(p) => p,
        Err(first) => {
            eprintln!("the OpenID provider did not start ({first}); starting it again");
            Proc::spawn(&mut cmd, "issuer ", Duration::from_secs(90))
        }
    }
}

/// Runs `tests/browser/oidc.mjs` with `env`; its result.
fn browse(root: &std::path::Path, chromium: &str, env: &[(&str, &str)]) -> Value {
    let out = crate::support::run_browser_script(root, "oidc.mjs", chromium, env);
    let line = out.lines().find_map(|l| l.strip_prefix("result ")).expect("a result line");
    let v: Value = serde_json::from_str(line).unwrap();
    assert!(v.get("error").is_none(), "the browser failed: {v:#}");
    v
}

/// `wavegate login --no-browser` as a person: the address it prints, driven through the
/// provider in Chromium; its stdout.
fn cli_login(
    root: &std::path::Path,
    chromium: &str,
    url: &str,
    config: &std::path::Path,
    user: &str,
) -> String {
    let mut child = Command::new(bin())
        .args(["login", "--no-browser", "--timeout", "2m"])
        .env("WAVEGATE_URL", url)
        .env("WAVEGATE_CONFIG_DIR", config)
        .env_remove("WAVEGATE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let login_url = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "wavegate login printed no address");
        if let Some(at) = line.trim().strip_prefix(&format!("{url}/auth/login?")) {
            break format!("{url}/auth/login?{at}");
        }
        assert!(Instant::now() < deadline);
    };
    let seen =
        browse(root, chromium, &[("MODE", "cli"), ("LOGIN_URL", &login_url), ("USER", user)]);
    assert!(seen["text"].as_str().unwrap().contains("Signed in to wavegate"), "{seen}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "wavegate login: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The provider and a wavegate signing people in through it (on a port chosen first: the
/// provider must know wavegate's redirect URI before either starts), with `extra` arguments
/// (the `--oidc-role` mappings among them): the provider, the server and the server's URL.
fn provider_and_server(
    root: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
) -> (Proc, Proc, String) {
    let wg_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let idp = provider(root, 0, wg_port, "k1");
    let server = server(dir, wg_port, &idp.url, extra);
    (idp, server, format!("http://127.0.0.1:{wg_port}"))
}

/// wavegate on `wg_port` with its database in `dir`, signing people in through `issuer`.
fn server(dir: &std::path::Path, wg_port: u16, issuer: &str, extra: &[&str]) -> Proc {
    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let url = format!("http://127.0.0.1:{wg_port}");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{wg_port}"), "--db"])
        .arg(dir.join("w.db"))
        .args([
            "--oidc-issuer",
            issuer,
            "--oidc-client-id",
            "wavegate",
            "--oidc-client-secret-file",
        ])
        .arg(&secret_file)
        .args(["--public-url", &url, "--oidc-scopes", "email,groups"])
        .args(extra)
        .env("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn");
    Proc::spawn(&mut cmd, "wavegate listening on ", Duration::from_secs(30))
}

#[test]
fn people_sign_in_through_the_identity_provider_in_the_browser_and_the_cli() {
    let started = Instant::now();
    let (root, chromium) = crate::support::browser_tools(&["playwright-core", "oidc-provider"]);
    let dir = tempfile::tempdir().unwrap();
    let roles = [
        "--oidc-role",
        "release-managers=releaser",
        "--oidc-role",
        "cab=approver",
        "--oidc-role",
        "engineers=editor@staging",
        "--oidc-role",
        "engineers=viewer",
    ];
    let (mut idp, mut wavegate, url) = provider_and_server(&root, dir.path(), &roles);
    let issuer = idp.url.clone();
    let idp_port: u16 = issuer.rsplit(':').next().unwrap().parse().unwrap();
    let wg_port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();

    // A running rollout to look at.
    crate::support::apply(&url, dir.path(), "flag", "flags.yaml", &on_off(&["checkout", "search"]));
    let plan = Plan::new("p", "checkout").owners("{ requester: rita }");
    crate::support::apply(&url, dir.path(), "plan", "plan.yaml", &plan.to_string());
    let plan2 = Plan::new("p2", "search").owners("{ requester: rita }");
    crate::support::apply(&url, dir.path(), "plan", "plan2.yaml", &plan2.to_string());
    let rollout = crate::support::start_rollout(&url, ADMIN, "p");

    // ---------- the dashboard: alice (release-managers → releaser) ----------
    let env =
        [("MODE", "dashboard"), ("WG_URL", url.as_str()), ("USER", "alice"), ("ROLLOUT", &rollout)];
    let seen = browse(&root, &chromium, &env);
    let disabled = (seen["pause_disabled"].as_bool(), seen["reject_disabled"].as_bool());
    assert_eq!(disabled, (Some(false), Some(true)), "a releaser pauses, never rejects: {seen:#}");
    let refused = seen["start_refused"].as_str().unwrap();
    assert!(refused.starts_with("Start refused:") && refused.contains("checkout"), "{refused}");
    let started_p2 = seen["started"].as_str().unwrap();
    assert!(started_p2.starts_with("p2 started: ro_"), "{started_p2}");
    assert_eq!(
        seen["reject_note"],
        "Reject (no-go): needs the approver role in prod; you hold releaser in *."
    );
    assert_eq!(seen["issuer_shown"], format!("Through {issuer}."));
    assert_eq!(seen["who"], "alice@example.com (releaser in *)", "{seen:#}");
    let session = seen["cookies"].as_array().unwrap().iter().find(|c| c["name"] == "wg_session");
    assert_eq!(session, Some(&json!({"name": "wg_session", "httpOnly": true, "sameSite": "Lax"})));
    let me = &seen["whoami"];
    assert_eq!((me["signed_in"].as_bool(), me["kind"].as_str()), (Some(true), Some("admin")));
    assert_eq!(me["roles"], json!([{"role": "releaser", "environments": ["*"]}]));
    assert!(me["token_id"].as_str().unwrap().starts_with("ses_"), "{me}");
    assert!(me["expires_at"].is_string(), "a session expires: {me}");
    // A change without the CSRF token is refused before anything else; with it, allowed.
    assert_eq!(seen["pause_without_csrf"]["status"], 403);
    let why = seen["pause_without_csrf"]["body"]["message"].as_str().unwrap();
    assert!(why.contains("X-CSRF-Token"), "{why}");
    assert_eq!(seen["feedback_with_csrf"], 201);
    // Signed out: the session is gone on the server too.
    assert_eq!(seen["whoami_after"], 401);
    // The provider's session is offered to end too (RP-initiated logout), not ended unasked.
    let end = seen["provider_logout"].as_str().unwrap_or_default();
    assert!(end.starts_with(&format!("{issuer}/session/end?client_id=wavegate")), "{seen:#}");
    let audit = cli_json(&url, ADMIN, &["audit", "list", "--limit", "100"]);
    let entries = audit.as_array().unwrap_or_else(|| panic!("{audit}"));
    let by_alice = |action: &str| {
        entries.iter().find(|e| e["actor"] == "alice@example.com" && e["action"] == action).cloned()
    };
    let signed_in = by_alice("token.create").expect("the sign-in is audited");
    assert_eq!(signed_in["reason"], format!("signed in through {issuer} (dashboard)"));
    assert_eq!(signed_in["details"]["roles"], json!([{"role": "releaser", "environments": ["*"]}]));
    let signed_out = by_alice("token.revoke").expect("the sign-out is audited");
    assert_eq!(signed_out["reason"], "signed out");
    // Every entry says how its person signed in: both name the session.
    let session = format!("oidc session {}", me["token_id"].as_str().unwrap());
    assert_eq!((&signed_in["via"], &signed_out["via"]), (&json!(session), &json!(session)));

    // ---------- the dashboard: bob (cab → approver) reviews a change request ----------
    let o = cli(&url, Some(ADMIN), &["env", "protect", "prod"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let off = on_off(&["checkout"]).replace("enabled: true", "enabled: false");
    let file = dir.path().join("off.yaml");
    std::fs::write(&file, off).unwrap();
    let args = ["change", "propose", "-f", file.to_str().unwrap(), "--description", "checkout off"];
    let cr = cli_json(&url, ADMIN, &args);
    let change = cr["id"].as_str().unwrap();
    let env = [
        ("MODE", "review"),
        ("WG_URL", url.as_str()),
        ("USER", "bob"),
        ("CHANGE", change),
        ("ROLLOUT", &rollout),
    ];
    let seen = browse(&root, &chromium, &env);
    assert_eq!(seen["state"], "approved", "{seen:#}");
    let signed = seen["signed"].as_str().unwrap();
    assert!(
        signed.contains("bob@example.com") && signed.contains("https://wiki.example.com/baseline"),
        "{signed}"
    );
    let diff = seen["diff"].as_str().unwrap();
    let lines: Vec<&str> = diff.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with('-') && l.ends_with("\"enabled\": true,")),
        "{diff}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with('+') && l.ends_with("\"enabled\": false")),
        "{diff}"
    );
    let shown = cli_json(&url, ADMIN, &["change", "show", change]);
    assert_eq!(shown["approvals"][0]["by"], "bob@example.com");

    // ---------- a person whose groups map to no role ----------
    let seen =
        browse(&root, &chromium, &[("MODE", "refused"), ("WG_URL", &url), ("USER", "carol")]);
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("none of their groups (none) has a role here"), "{text}");
    let seen = browse(&root, &chromium, &[("MODE", "refused"), ("WG_URL", &url), ("USER", "olga")]);
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("left their groups out of the ID token"), "{text}");

    // ---------- the CLI: bob (cab → approver) ----------
    let config = dir.path().join("config");
    let out = cli_login(&root, &chromium, &url, &config, "bob");
    assert!(out.contains("Signed in as bob@example.com (approver in *)"), "{out}");
    let file = config.join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the session is readable by its owner only");
    }
    let as_bob = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("WAVEGATE_URL", &url)
            .env("WAVEGATE_CONFIG_DIR", &config)
            .env_remove("WAVEGATE_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let who = as_bob(&["whoami", "--json"]);
    assert!(who.status.success(), "{}", stderr(&who));
    let who: Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(
        (who["principal"].as_str(), who["signed_in"].as_bool()),
        (Some("bob@example.com"), Some(true))
    );
    assert!(who.get("csrf").is_none(), "a bearer session needs no CSRF token: {who}");
    // An approver may not start a rollout: the role decides, named in the refusal.
    let o = as_bob(&["freeze", "on", "--reason", "cab says stop"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("needs the admin role"), "{}", stderr(&o));
    let o = as_bob(&["logout"]);
    assert!(
        o.status.success() && stdout(&o).contains("Signed out"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = as_bob(&["whoami"]);
    assert_eq!(o.status.code(), Some(2), "signed out: no token left");
    assert!(stderr(&o).contains("wavegate login"), "{}", stderr(&o));

    // ---------- the provider rotates its signing key ----------
    // Restarted on the same address with a new key: wavegate holds only the old key's set,
    // finds the new key id unknown, fetches the set again and signs erin in.
    drop(idp);
    idp = provider(&root, idp_port, wg_port, "k2");
    assert_eq!(idp.url, issuer);
    let out = cli_login(&root, &chromium, &url, &config, "erin");
    assert!(
        out.contains("Signed in as erin@example.com (viewer in *; editor in staging)"),
        "{out}"
    );
    let o = cli(&url, None, &["whoami"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "the session belongs to the config directory that holds it"
    );

    // ---------- an ID token for another audience ----------
    // The provider, restarted, answers wavegate's code with an ID token it issued to another
    // of its clients: its own key, issuer, person and nonce. Refused for its audience, and no
    // session opened.
    let sessions = || {
        let list = cli_json(&url, ADMIN, &["token", "list"]);
        let list = list.as_array().cloned().unwrap_or_else(|| panic!("{list}"));
        list.iter().filter(|t| t["principal"] == "erin@example.com").count()
    };
    let before = sessions();
    drop(idp);
    idp = provider_with(&root, idp_port, wg_port, "k3", &[("ID_TOKEN_AUDIENCE", "other-app")]);
    let seen = browse(&root, &chromium, &[("MODE", "refused"), ("WG_URL", &url), ("USER", "erin")]);
    let text = seen["text"].as_str().unwrap();
    assert!(
        text.contains("the ID token is for another audience (other-app), not this client"),
        "{text}"
    );
    assert_eq!(sessions(), before, "a refused sign-in opens no session");

    // ---------- a session that expires ----------
    // erin signs in through the CLI; with the server stopped, her session's end is moved into
    // the past in its database, as if its eight hours had passed (the server's clock cannot be
    // moved from outside, and a session lasts at least a minute). Started again, the server
    // refuses the session, and the CLI says to sign in again.
    // (A provider on a new port, and wavegate restarted to name it: restarting node on the
    // same port a third time was refused now and then.)
    drop(idp);
    idp = provider(&root, 0, wg_port, "k4");
    drop(wavegate);
    wavegate = server(dir.path(), wg_port, &idp.url, &roles);
    let later = dir.path().join("later");
    cli_login(&root, &chromium, &url, &later, "erin");
    let whoami = || {
        Command::new(bin())
            .args(["whoami", "--json"])
            .env("WAVEGATE_URL", &url)
            .env("WAVEGATE_CONFIG_DIR", &later)
            .env_remove("WAVEGATE_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let first = whoami();
    assert!(first.status.success(), "signed in: {}", stderr(&first));
    let session: Value = serde_json::from_slice(&first.stdout).unwrap();
    drop(wavegate);
    let db = dir.path().join("w.db");
    let moved = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = wavegate_store::SqlStore::open(db.to_str().unwrap()).await.unwrap();
        sqlx::query("UPDATE tokens SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = $1")
            .bind(session["token_id"].as_str().unwrap())
            .execute(store.pool())
            .await
            .unwrap()
            .rows_affected()
    });
    assert_eq!(moved, 1, "{session}");
    wavegate = server(dir.path(), wg_port, &idp.url, &roles);
    let ended = whoami();
    assert_eq!(ended.status.code(), Some(2), "an expired session is refused: {}", stdout(&ended));
    assert!(stderr(&ended).contains("wavegate login"), "{}", stderr(&ended));
    drop((idp, wavegate));
    eprintln!("oidc suite: {:.1?}", started.elapsed());
}

/// Issue 20, "Done when": a whole release walked in the dashboard by signed-in people, with
/// no CLI and no API call of theirs — an editor makes a segment, a flag and a plan (a lint error
/// shown and fixed), an approver (by group) signs its scorecard, a releaser starts it, traffic
/// promotes the first wave, the approver approves the gate, injected harm rolls it back, and the
/// releaser records feedback and reads the report. The API's state is checked after each step;
/// nothing but wavegate and the provider is reached, and the console stays clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_release_walked_in_the_dashboard_by_signed_in_people() {
    let (root, chromium) = crate::support::browser_tools(&["playwright-core", "oidc-provider"]);
    let dir = tempfile::tempdir().unwrap();
    let roles = [
        "--tick",
        "100ms",
        "--oidc-role",
        "release-managers=releaser",
        "--oidc-role",
        "cab=approver",
        "--oidc-role",
        "editors=editor",
    ];
    let (_idp, _server, url) = provider_and_server(&root, dir.path(), &roles);
    let walk = |step: &str, user: &str, rollout: &str| {
        let env = [("MODE", step), ("WG_URL", url.as_str()), ("USER", user), ("ROLLOUT", rollout)];
        let seen = browse(&root, &chromium, &env);
        assert_eq!(seen["external"], json!([]), "{step}: nothing leaves the server: {seen:#}");
        assert_eq!(seen["console_errors"], json!([]), "{step}: a clean console: {seen:#}");
        seen
    };

    // 1. ed (editors): a segment, a flag, a plan with a lint error fixed.
    let seen = walk("walk-setup", "ed", "");
    assert!(seen["lint_error"].as_str().unwrap().contains("first-wave-too-large"), "{seen:#}");
    assert_eq!(seen["plan"], "Plan walk: stored as v1.", "{seen:#}");
    assert_eq!(seen["segment"], "Saved segment pilots: v1.", "{seen:#}");
    assert_eq!(seen["flag"], "Saved flag checkout: v1.", "{seen:#}");
    let flag = cli_json(&url, ADMIN, &["flag", "get", "checkout"]);
    assert_eq!(flag["spec"]["environments"]["prod"]["rules"][0]["segment"], "pilots");
    assert_eq!(flag["updated_by"], "ed@example.com");

    // 2. bob (cab): signs the plan's scorecard before it starts.
    let seen = walk("walk-sign", "bob", "");
    assert_eq!(seen["signed"], "Baseline documented: green.", "{seen:#}");
    let card = cli_json(&url, ADMIN, &["scorecard", "show", "walk"]);
    let baseline =
        card["items"].as_array().unwrap().iter().find(|i| i["key"] == "baseline").unwrap();
    assert_eq!(
        (baseline["status"].as_str(), baseline["by"].as_str()),
        (Some("green"), Some("bob@example.com")),
        "{card}"
    );

    // 3. alice (release-managers): starts it.
    let seen = walk("walk-start", "alice", "");
    let started = seen["started"].as_str().unwrap();
    let id = started.strip_prefix("walk started: ").unwrap().trim_end_matches('.').to_owned();
    let st = crate::rollout::status(&url, ADMIN, &id);
    assert_eq!(
        (st["state"].as_str(), st["requester"].as_str()),
        (Some("running"), Some("alice@example.com")),
        "{st}"
    );

    // 4. Healthy traffic until the first wave promotes and the gate asks for approval.
    let traffic = crate::rollout::Traffic {
        http: reqwest::Client::new(),
        url: url.clone(),
        client_token: crate::support::token(&url, "client-sdk", "prod", "web"),
        server_token: crate::support::token(&url, "server-sdk", "prod", "checkout-service"),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut round = 0;
    loop {
        let st = crate::rollout::status(&url, ADMIN, &id);
        if st["phase"] == "awaiting_approval" {
            assert_eq!(st["wave"], 2, "the first wave promoted by itself: {st}");
            break;
        }
        assert!(
            Instant::now() < deadline && st["state"] == "running",
            "never reached the gate: {st}"
        );
        traffic.round(400, round, false).await;
        round += 1;
    }

    // 5. bob (cab): sees wave 2 and his sign-off, approves the gate.
    let seen = walk("walk-approve", "bob", &id);
    assert_eq!(seen["baseline"], "green", "{seen:#}");
    assert_eq!(
        (seen["wave_shown"].as_str(), seen["wave_after"].as_str()),
        (Some("2"), Some("3")),
        "{seen:#}"
    );
    let audit = cli_json(&url, ADMIN, &["audit", "list", "--limit", "1000"]);
    let approval = audit.as_array().unwrap().iter().find(|e| e["action"] == "rollout.approve");
    assert_eq!(approval.map(|e| e["actor"].clone()), Some(json!("bob@example.com")), "{audit}");
    let via = approval.and_then(|e| e["via"].as_str()).unwrap_or_default();
    assert!(via.starts_with("oidc session ses_"), "the approval says how bob signed in: {via:?}");

    // 6. Harm: the new checkout fails; the guardrail rolls it back.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = crate::rollout::status(&url, ADMIN, &id);
        if st["state"] == "rolled_back" {
            break;
        }
        assert!(Instant::now() < deadline, "never rolled back: {st}");
        traffic.round(400, round, true).await;
        round += 1;
    }

    // 7. alice: the rollback shown, feedback recorded, the report read.
    let seen = walk("walk-end", "alice", &id);
    assert!(seen["reason"].as_str().unwrap().contains("errors"), "{seen:#}");
    assert!(seen["feedback"].as_str().unwrap().contains("recorded"), "{seen:#}");
    let report = seen["report"].as_str().unwrap();
    // (Markdown: the state's underscore is escaped.)
    assert!(
        report.contains("Post-rollout report") && report.contains("**rolled\\_back**"),
        "{report}"
    );
    let answer = reqwest::Client::new()
        .get(format!("{url}/api/v1/feedback/digest?release=checkout%204.0.0"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body = answer.text().await.unwrap();
    let digest: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the feedback digest ({status}) is not JSON: {e}: {body}"));
    assert!(digest.to_string().contains("pilots"), "{digest}");
}
