//! `wavegate demo` end to end, as a real process: the whole story (two promotions by the
//! controller, an injected regression, an automatic rollback by the error-rate guardrail, an
//! audit chain that verifies) read from its `--json` lines; serving on until SIGINT; a rerun on
//! the same `--db`; and a clear failure when the port is taken.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{bin, cli_json, eventually};

/// The demo aims at well under a minute; this leaves room for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(120);

/// A running `wavegate demo`, killed if the test fails before it exits.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    steps: Vec<Value>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Demo {
    let mut child = Command::new(bin())
        .arg("demo")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wavegate demo");
    let stdout: ChildStdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    Demo { child, lines, stderr, steps: Vec::new() }
}

impl Demo {
    /// Reads JSON steps until one named `step` (returned), the end of output (None) or the
    /// deadline (a panic showing what was seen).
    fn until(&mut self, step: &str, deadline: Instant) -> Option<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not a JSON step ({e}): {line}"));
                    assert!(v["step"].is_string(), "a step without a name: {line}");
                    self.steps.push(v.clone());
                    if v["step"] == step {
                        return Some(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("no {step:?} step within {DEADLINE:?}; saw {:#?}", self.steps)
                }
            }
        }
    }

    /// Waits (with the deadline) for the process to exit; returns its status and stderr.
    fn finish(mut self, deadline: Instant) -> (ExitStatus, String) {
        let mut status = None;
        eventually(
            "wavegate demo to exit",
            deadline.saturating_duration_since(Instant::now()),
            || {
                status = self.child.try_wait().unwrap();
                status.is_some()
            },
        );
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status.unwrap(), stderr.join().unwrap())
    }

    fn named(&self, step: &str) -> Vec<&Value> {
        self.steps.iter().filter(|s| s["step"] == step).collect()
    }

    fn position(&self, step: &str) -> usize {
        self.steps
            .iter()
            .position(|s| s["step"] == step)
            .unwrap_or_else(|| panic!("no {step:?} step in {:#?}", self.steps))
    }
}

/// Checks the story the steps tell; returns the rollout id.
#[track_caller]
fn assert_story(demo: &Demo) -> String {
    let server = &demo.named("server")[0];
    assert!(server["token"].as_str().unwrap().starts_with("wg_"), "{server}");
    assert!(server["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{server}");
    let promoted = demo.named("promoted");
    assert_eq!(promoted.len(), 2, "exactly two promotions: {:#?}", demo.steps);
    for (p, (wave, percent)) in promoted.iter().zip([(2, 25), (3, 50)]) {
        assert_eq!((p["wave"].as_i64(), p["percent"].as_i64()), (Some(wave), Some(percent)), "{p}");
        let verdicts = p["verdicts"].as_array().unwrap();
        assert!(!verdicts.is_empty() && verdicts.iter().all(|v| v["verdict"] == "pass"), "{p}");
    }
    let rolled_back = &demo.named("rolled_back")[0];
    assert_eq!(rolled_back["guardrail"], "error-rate", "{rolled_back}");
    assert_eq!(rolled_back["by"], "automatic", "{rolled_back}");
    assert_eq!(rolled_back["wave"], 3, "{rolled_back}");
    let reason = rolled_back["reason"].as_str().unwrap();
    assert!(reason.contains("guardrail \"error-rate\" failed"), "{reason}");
    let failed = &demo.named("guardrail_failed")[0];
    assert_eq!(failed["verdict"], "fail", "{failed}");
    assert!(
        failed["treatment"]["error_rate"].as_f64() > failed["control"]["error_rate"].as_f64(),
        "{failed}"
    );
    // In this order: start, two promotions, the regression, the failed verdict, the rollback.
    let order = ["rollout_started", "promoted", "regression_injected", "guardrail_failed"];
    let at: Vec<usize> = order.iter().map(|s| demo.position(s)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "steps out of order: {:#?}", demo.steps);
    let second_promotion = demo.steps.iter().rposition(|s| s["step"] == "promoted").unwrap();
    assert!(second_promotion < demo.position("regression_injected"));
    assert!(demo.position("guardrail_failed") < demo.position("rolled_back"));
    let summary = &demo.named("summary")[0];
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["promotions"], 2, "{summary}");
    assert_eq!(summary["guardrail"], "error-rate", "{summary}");
    assert_eq!(summary["audit"]["ok"], true, "{summary}");
    assert!(summary["audit"]["verified"].as_i64().unwrap() > 5, "{summary}");
    assert_eq!(summary["flag"]["restored"], true, "{summary}");
    assert!(summary["traffic"]["counted"].as_u64().unwrap() > 0, "{summary}");
    rolled_back["rollout"].as_str().unwrap().to_owned()
}

#[test]
fn demo_tells_the_whole_story_and_exits() {
    let deadline = Instant::now() + DEADLINE;
    let mut demo = spawn(&["--listen", "127.0.0.1:0", "--exit", "--json"]);
    let summary = demo.until("summary", deadline);
    assert!(summary.is_some(), "the demo ended without a summary: {:#?}", demo.steps);
    assert_story(&demo);
    assert!(demo.until("serving", deadline).is_none(), "--exit must not keep serving");
    let (status, stderr) = demo.finish(deadline);
    assert!(status.success(), "exit {status}; stderr: {stderr}");
}

/// Without --exit the server stays up for browsing until SIGINT (exit 0); a second run on the
/// same --db (which already has an admin token, flags and a finished rollout) works too.
#[test]
fn demo_keeps_serving_until_interrupted_and_reruns_on_the_same_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let db = db.to_str().unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut demo = spawn(&["--listen", "127.0.0.1:0", "--json", "--db", db]);
    let serving = demo.until("serving", deadline).expect("a serving step after the story");
    let id = assert_story(&demo);
    let url = demo.named("server")[0]["url"].as_str().unwrap().trim_end_matches('/').to_owned();
    let token = demo.named("server")[0]["token"].as_str().unwrap().to_owned();
    assert!(serving["rollout_url"].as_str().unwrap().ends_with(&format!("#/rollouts/{id}")));
    // Still serving: the CLI reads the rolled-back rollout from it.
    let status = cli_json(&url, &token, &["rollout", "status", &id]);
    assert_eq!(status["state"], "rolled_back", "{status}");
    let pid = demo.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let (status, stderr) = demo.finish(deadline);
    assert!(status.success(), "exit {status} after SIGINT; stderr: {stderr}");

    let deadline = Instant::now() + DEADLINE;
    let mut again = spawn(&["--listen", "127.0.0.1:0", "--exit", "--json", "--db", db]);
    assert!(again.until("summary", deadline).is_some(), "{:#?}", again.steps);
    let second = assert_story(&again);
    assert_ne!(second, id);
    assert_ne!(again.named("server")[0]["token"], token.as_str(), "a fresh token for the rerun");
    let (status, stderr) = again.finish(deadline);
    assert!(status.success(), "exit {status}; stderr: {stderr}");
}

#[test]
fn demo_on_a_port_in_use_fails_with_advice() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let deadline = Instant::now() + DEADLINE;
    let mut demo = spawn(&["--listen", &addr, "--exit", "--json"]);
    let failed = demo.until("failed", deadline).expect("a failed step");
    let (status, stderr) = demo.finish(deadline);
    assert!(!status.success(), "exit {status}");
    assert_eq!(status.code(), Some(1));
    for text in [failed["message"].as_str().unwrap(), stderr.as_str()] {
        assert!(text.contains(&addr) && text.contains("in use"), "{text}");
        assert!(text.contains("--listen"), "no advice: {text}");
    }
    drop(taken);
}
