//! Plain HTTP/1.1 over std's TCP, for the tests that run no async runtime: a POST with a
//! bearer token, a GET, and a webhook receiver.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// `http://host:port/path` → (`host:port`, `/path`).
fn split(url: &str) -> (&str, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")))
}

/// Sends `method` to `url` with an optional bearer token and JSON body; the status and the
/// body as text (status 0 when the server could not be reached or did not answer in 10 s).
pub fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    request_with(method, url, token, &[], body)
}

/// [`request`] with extra headers (`("idempotency-key", "b-1")`…).
pub fn request_with(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, String) {
    let (host, path) = split(url);
    let Ok(mut stream) = TcpStream::connect(host) else { return (0, String::new()) };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    for (k, v) in headers {
        auth.push_str(&format!("{k}: {v}\r\n"));
    }
    let sent = write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut raw = Vec::new();
    if sent.is_err() || stream.read_to_end(&mut raw).is_err() {
        return (0, String::new());
    }
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned())
}

/// POSTs JSON with a bearer token; the status and the JSON body (`Null` if there is none).
pub fn post_json(url: &str, token: &str, body: &Value) -> (u16, Value) {
    let (status, text) = request("POST", url, Some(token), Some(body));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// GETs `url`; its body if it answered 200, `None` if it did not (or not within 5 s).
pub fn get(url: &str) -> Option<String> {
    let (host, path) = split(url);
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The bodies a [`receiver`] was sent, in order.
pub type Bodies = Arc<Mutex<Vec<String>>>;

/// A webhook receiver on a free port: records each POST body and answers 500 to the first
/// `fail_first` requests, 200 after. Returns its URL and the bodies seen.
pub fn receiver(fail_first: usize) -> (String, Bodies) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Bodies::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(body) = read_body(&mut stream) else { continue };
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

/// Reads one request's head and its `content-length` bytes of body.
fn read_body(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
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
            return Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
        }
    }
}
