//! Starting and talking to real `wavegate serve` processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ADMIN: &str = "it-admin-token-0123456789abcdef0123456789";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wavegate")
}

pub struct Server {
    pub child: Child,
    pub url: String,
    /// Lines the server printed on stdout before it said where it listens.
    pub banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    if let Some(t) = bootstrap {
        cmd.env("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN", t);
    }
    let child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn wavegate serve");
    // Owned by the guard from here on, so a panic below still kills the process.
    let mut server = Server { child, url: String::new(), banner: Vec::new() };
    let stdout = server.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("server did not report its address; saw {:?}", server.banner)
        });
        if let Some(rest) = line.strip_prefix("wavegate listening on ") {
            server.url = rest.split_whitespace().next().unwrap().to_owned();
            return server;
        }
        server.banner.push(line);
    }
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

/// Polls `cond` until it holds or the deadline passes.
pub fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

pub const FLAGS: &str = r##"
segments:
  beta-testers:
    constraints:
      - { attribute: email, op: ends_with, values: ["@example.com"] }
flags:
  new-checkout:
    description: New checkout flow
    variants: { "on": true, "off": false }
    default: "off"
    environments:
      prod:
        enabled: true
        rules:
          - name: internal
            segment: beta-testers
            serve: "on"
          - name: gradual
            constraints: [{ attribute: country, op: in, values: [NO, SE] }]
            split: { "on": 10%, "off": 90% }
  banner-color:
    variants: { blue: "#00f", red: "#f00" }
    default: blue
    environments:
      prod: { enabled: true, rules: [ { name: vip, constraints: [{ attribute: plan, op: eq, values: [vip] }], serve: red } ] }
  price-factor:
    variants: { base: 1.0, sale: 0.5 }
    default: base
    environments: { prod: { enabled: true } }
  limits:
    variants: { default: { max: 10, tier: free } }
    default: default
    environments: { prod: { enabled: true } }
  strict-split:
    variants: { a: "A", b: "B" }
    default: a
    environments:
      prod: { enabled: true, rules: [ { split: { a: 50%, b: 50% }, stickiness: targetingKey } ] }
"##;

/// A minimal webhook receiver on a free port: records each POST body and answers 500 to the
/// first `fail_first` requests, 200 after. Returns its URL and the bodies seen.
pub fn http_receiver(fail_first: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = stream.read(&mut chunk) else { break None };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
                }
            };
            let Some(body) = body else { continue };
            let n = {
                let mut seen = s.lock().unwrap();
                seen.push(body);
                seen.len()
            };
            let status = if n <= fail_first { "500 Internal Server Error" } else { "200 OK" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

/// POSTs JSON with a bearer token over a plain HTTP/1.1 connection; returns status and body.
pub fn post_json(url: &str, token: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) =
        rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let body = body.to_string();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let payload = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(payload).unwrap_or(serde_json::Value::Null))
}
