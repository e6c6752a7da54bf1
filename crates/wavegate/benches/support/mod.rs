//! Helpers shared by the benches that drive real `wavegate` processes (this build's binary).
//! Each bench binary uses a part of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub use wavegate_testkit::ADMIN;
pub use wavegate_testkit::api::{Api, ofrep};
pub use wavegate_testkit::process::Proc;

/// CPU time (user + system, all threads) of process `pid` so far, in seconds, from
/// `/proc/PID/stat`; `None` if it cannot be read (not Linux, or the process is gone).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_user_system(pid).map(|(user, system)| user + system)
}

/// [`cpu_seconds`] in its two parts: in the process itself (user) and in the kernel on its
/// behalf (system: its syscalls, such as socket writes).
pub fn cpu_user_system(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks = |i: usize| Some(fields.get(i)?.parse::<u64>().ok()? as f64);
    Some((ticks(11)? / clock_ticks_per_second(), ticks(12)? / clock_ticks_per_second()))
}

/// Resident set (VmRSS) of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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
    cmd.args(args).env("RUST_LOG", "error").envs(env.iter().copied());
    Proc::spawn(&mut cmd, prefix, Duration::from_secs(60))
}

/// The API of `server`, as the bootstrap admin.
pub fn admin(server: &Proc) -> Api {
    Api::new(&server.url, ADMIN)
}

/// `wavegate serve` on `db` (a SQLite path or a `postgres://` URL), listening on a free port,
/// with the controller ticking hourly (so nothing moves during a measurement).
pub fn serve(db: &str) -> Proc {
    spawn(
        &["serve", "--listen", "127.0.0.1:0", "--db", db, "--tick", "1h"],
        // Every subscriber of the benches shares one token, and the ingest bench posts through
        // one token as fast as it can; its spans' evaluations are timed on this machine's
        // clock a moment after the rollout started, which the default 5 s clock-skew allowance
        // would leave unattributed (an older build ignores all three settings).
        &[
            ("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN", ADMIN),
            ("WAVEGATE_MAX_STREAMS_PER_TOKEN", "100000"),
            ("WAVEGATE_EVENTS_PER_TOKEN", "0"),
            ("WAVEGATE_EVENT_CLOCK_SKEW", "1ms"),
        ],
        "wavegate listening on ",
    )
}

/// The `p`th percentile of `sorted` (nearest rank); NaN when it is empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A SQLite database file in `dir`, as `serve` takes it.
pub fn sqlite_in(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().expect("UTF-8 temporary path").to_owned()
}
