//! Starting and talking to real `wavegate serve` processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub use wavegate_testkit::ADMIN;
pub use wavegate_testkit::fixtures::FLAGS;
pub use wavegate_testkit::http::{post_json, receiver as http_receiver};
pub use wavegate_testkit::poll::eventually;
pub use wavegate_testkit::process::Proc as Server;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wavegate")
}

/// Starts `wavegate serve` on a free port over `db`; waits (with a deadline) for its address.
pub fn start(db: &Path, bootstrap: Option<&str>) -> Server {
    start_with(db, bootstrap, &[])
}

/// [`start`] with extra `serve` arguments.
pub fn start_with(db: &Path, bootstrap: Option<&str>, extra: &[&str]) -> Server {
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"]).arg(db).args(extra);
    cmd.env_remove("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN").env("RUST_LOG", "warn");
    // The tests' webhook receivers listen on loopback, which `serve` refuses to API-supplied
    // URLs by default; `--allow-outbound` in `extra` replaces this.
    cmd.env("WAVEGATE_ALLOW_OUTBOUND", "127.0.0.1");
    if let Some(t) = bootstrap {
        cmd.env("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN", t);
    }
    Server::spawn(&mut cmd, "wavegate listening on ", Duration::from_secs(30))
}

/// Runs the CLI against `url` with `token`.
pub fn cli(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).env("WAVEGATE_URL", url).env_remove("WAVEGATE_TOKEN");
    if let Some(t) = token {
        cmd.env("WAVEGATE_TOKEN", t);
    }
    cmd.stdin(Stdio::null()).output().expect("run wavegate")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the CLI and parses its `--json` output, asserting success.
#[track_caller]
pub fn cli_json(url: &str, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let o = cli(url, Some(token), &all);
    assert!(o.status.success(), "wavegate {args:?} failed: {}{}", stdout(&o), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&o)))
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `wavegate flag apply` (`what` = `flag`) or `wavegate plan apply` (`plan`) of `text`, as the
/// admin, through a file `name` in `dir`; the JSON answer.
#[track_caller]
pub fn apply(url: &str, dir: &Path, what: &str, name: &str, text: &str) -> serde_json::Value {
    let file = write(dir, name, text);
    cli_json(url, ADMIN, &[what, "apply", "-f", file.to_str().unwrap()])
}

/// `wavegate rollout start <plan>` as `token`; the rollout's id.
#[track_caller]
pub fn start_rollout(url: &str, token: &str, plan: &str) -> String {
    cli_json(url, token, &["rollout", "start", plan])["id"].as_str().unwrap().to_owned()
}

/// A new token of `kind` for `env`, held by `principal` (`wavegate token create`).
pub fn token(url: &str, kind: &str, env: &str, principal: &str) -> String {
    create_token(url, &["--kind", kind, "--env", env, "--principal", principal])
}

/// A new token of `kind` for prod, held by the principal the server names.
pub fn prod_token(url: &str, kind: &str) -> String {
    create_token(url, &["--kind", kind, "--env", "prod"])
}

/// The secret of a new token, made as the admin by `wavegate token create <args>`.
fn create_token(url: &str, args: &[&str]) -> String {
    let args = [&["token", "create"], args].concat();
    cli_json(url, ADMIN, &args)["token"].as_str().unwrap().to_owned()
}

/// The repository's root, and the Chromium the browser tests drive (`$CHROMIUM`, else Debian's
/// `/usr/bin/chromium`), after checking that the browser tests' npm packages are installed.
/// Missing pieces fail with what to run, never skip.
pub fn browser_tools(packages: &[&str]) -> (PathBuf, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    for package in packages {
        assert!(
            root.join("tests/browser/node_modules").join(package).is_dir(),
            "{package} is not installed: run scripts/setup-browser.sh"
        );
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium (scripts/setup-browser.sh does)"
    );
    (root, chromium)
}

/// Runs the browser test script `tests/browser/<script>` with node in `root`, driving
/// `chromium`, with `env` set; prints and returns its stdout after asserting it succeeded.
pub fn run_browser_script(
    root: &Path,
    script: &str,
    chromium: &str,
    env: &[(&str, &str)],
) -> String {
    let out = Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .current_dir(root.join("tests/browser"))
        .env("CHROMIUM", chromium)
        .envs(env.iter().copied())
        .output()
        .expect("run node (install Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "browser run {script} failed:\n{stdout}\n{stderr}");
    stdout
}
