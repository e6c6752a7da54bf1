//! Child processes that announce their address on stdout, as `wavegate serve` and
//! `wavegate edge` do, owned by a guard that kills them on every path.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child process and the address it announced; killed and reaped when dropped, so a
/// failing test leaves nothing behind.
#[derive(Debug)]
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Its address, like `http://127.0.0.1:41234`.
    pub url: String,
    /// The lines it printed on stdout before it said where it listens.
    pub banner: Vec<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `cmd` (stdout piped, stderr inherited) and waits, at most `timeout`, for the line
    /// that starts with `prefix`: the word after it is the address. Its stdout is read until it
    /// ends, so the process never blocks on a full pipe.
    pub fn spawn(cmd: &mut Command, prefix: &str, timeout: Duration) -> Proc {
        Proc::try_spawn(cmd, prefix, timeout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Proc::spawn`], saying why it failed (the process is killed) instead of panicking, so
    /// a caller may start a process that is slow to come up once more.
    pub fn try_spawn(cmd: &mut Command, prefix: &str, timeout: Duration) -> Result<Proc, String> {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        // Owned by the guard from here on, so a panic below still kills the process.
        let mut proc = Proc { child, url: String::new(), banner: Vec::new() };
        let stdout = proc.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                return Err(format!("{cmd:?} did not report its address; saw {:?}", proc.banner));
            };
            if let Some(rest) = line.strip_prefix(prefix) {
                proc.url = rest.split_whitespace().next().expect("an address").to_owned();
                return Ok(proc);
            }
            proc.banner.push(line);
        }
    }

    /// Kills the process at once (SIGKILL: no chance to clean up) and reaps it.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}
