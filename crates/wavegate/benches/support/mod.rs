//! Helpers shared by the benches that drive real `wavegate` processes (this build's binary).
//! Each bench binary uses a part of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub const ADMIN: &str = "bench-admin-token-0123456789abcdef0123456789";

pub struct Proc {
    pub child: Child,
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// CPU time the process has used so far, in seconds (see [`cpu_seconds`]).
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(self.child.id())
    }

    /// Resident set (VmRSS), KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// CPU time (user + system, all threads) of process `pid` so far, in seconds, from
/// `/proc/PID/stat`; `None` if it cannot be read (not Linux, or the process is gone).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_second())
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on every common Linux).
fn clock_ticks_per_second() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Starts this build's `wavegate` (or the binary `WAVEGATE_BENCH_BIN` names, to compare
/// builds) with `args` and `env`; returns once it printed the line starting with `prefix`
/// (its address follows).
pub fn spawn(args: &[&str], env: &[(&str, &str)], prefix: &str) -> Proc {
    let bin = std::env::var_os("WAVEGATE_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_wavegate").into());
    let mut cmd = Command::new(bin);
    cmd.args(args).env("RUST_LOG", "error").stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn wavegate");
    // Owned by the guard from here on, so it is killed and reaped on every path.
    let mut proc = Proc { child, url: String::new() };
    let stdout = proc.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("wavegate reports its address");
        if let Some(rest) = line.strip_prefix(prefix) {
            proc.url = rest.split_whitespace().next().unwrap().to_owned();
            return proc;
        }
    }
}

pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
}

impl Api {
    /// Calls the API as the bootstrap admin; panics unless it succeeds.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        yaml: Option<String>,
    ) -> Value {
        let mut rb = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(ADMIN);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        if let Some(y) = yaml {
            rb = rb.header("content-type", "application/yaml").body(y);
        }
        let resp = rb.send().await.expect("server reachable");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// A new token of `kind` for `prod`.
    pub async fn token(&self, kind: &str) -> String {
        self.call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"kind": kind, "environments": ["prod"]})),
            None,
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// `wavegate serve` on `db` (a SQLite path or a `postgres://` URL), listening on a free port,
/// with the controller ticking hourly (so nothing moves during a measurement).
pub fn serve(db: &str) -> Proc {
    spawn(
        &["serve", "--listen", "127.0.0.1:0", "--db", db, "--tick", "1h"],
        &[("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN", ADMIN)],
        "wavegate listening on ",
    )
}

/// A SQLite database file in `dir`, as `serve` takes it.
pub fn sqlite_in(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().expect("UTF-8 temporary path").to_owned()
}
