//! A small client for wavegate's HTTP API, mapping failures to exit codes.

use anyhow::Context as _;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::cli::Remote;
use crate::failure::Failure;

/// A configured API client.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for `remote`.
    pub fn new(remote: &Remote) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("Failed to build the HTTP client")?;
        Ok(Client {
            http,
            base: remote.url.trim_end_matches('/').to_owned(),
            token: remote.token.clone(),
        })
    }

    /// A client for `remote` that has a token to send (exit 2 without one).
    pub fn authenticated(remote: &Remote) -> anyhow::Result<Client> {
        need_token(remote)?;
        Client::new(remote)
    }

    /// A request to `path` (starting with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends, and returns the JSON body of a 2xx; 4xx → exit 2, 5xx/network → exit 1.
    pub async fn send(&self, rb: RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
        let resp = rb
            .send()
            .await
            .map_err(|e| Failure::Operation(format!("could not reach {}: {e}", self.base)))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Operation(format!("reading the response failed: {e}")))?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok((status, body));
        }
        let message = body
            .get("message")
            .or_else(|| body.get("errorDetails"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| match status {
                StatusCode::UNAUTHORIZED => {
                    "unauthorized: pass a valid token with --token or WAVEGATE_TOKEN".into()
                }
                StatusCode::FORBIDDEN => "forbidden: this token may not do that".into(),
                _ => body.to_string(),
            });
        let field = body
            .get("field")
            .and_then(Value::as_str)
            .map(|f| format!(" (at {f})"))
            .unwrap_or_default();
        let code = body
            .get("errorCode")
            .or_else(|| body.get("code"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let msg = format!("server answered {} {code}: {message}{field}", status.as_u16());
        if status.is_client_error() {
            Err(Failure::Input(msg).into())
        } else {
            Err(Failure::Operation(msg).into())
        }
    }

    /// GET `path` and return its JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send(self.request(Method::GET, path)).await?.1)
    }
}

/// Refuses to go on without a token (exit 2).
pub fn need_token(remote: &Remote) -> anyhow::Result<()> {
    if remote.token.is_none() {
        return Err(Failure::Input("no token: pass --token or set WAVEGATE_TOKEN".into()).into());
    }
    Ok(())
}

/// Percent-encodes a path segment.
pub(crate) fn enc(seg: &str) -> String {
    seg.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends `reason`, when given, as the `X-Wavegate-Reason` header.
pub fn with_reason(rb: RequestBuilder, reason: &Option<String>) -> RequestBuilder {
    match reason {
        Some(r) => rb.header("x-wavegate-reason", r.as_str()),
        None => rb,
    }
}
