//! A small client for wavegate's HTTP API: answers read into the `wavegate-api` types (and
//! kept as sent, for `--json`), failures mapped to exit codes.

use anyhow::Context as _;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wavegate_api::error::{ErrorBody, OfrepErrorBody};

use crate::cli::Remote;
use crate::failure::Failure;

/// A configured API client.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Whether the token is the sign-in `wavegate login` stored (not `--token`).
    signed_in: bool,
}

impl Client {
    /// A client for `remote`.
    pub fn new(remote: &Remote) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("Failed to build the HTTP client")?;
        let given = remote.token.as_deref().is_some_and(|t| !t.trim().is_empty());
        let token = token_for(remote);
        Ok(Client {
            http,
            base: remote.url.trim_end_matches('/').to_owned(),
            signed_in: token.is_some() && !given,
            token,
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

    /// Sends, and returns the status and JSON body of a 2xx (or 304); 4xx → exit 2,
    /// 5xx/network → exit 1.
    pub async fn send(&self, rb: RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
        let a = self.call::<Value>(rb).await?;
        Ok((a.status, a.raw))
    }

    /// Sends, and reads the JSON body of a 2xx (or 304) as a `T`; 4xx → exit 2, 5xx/network
    /// or an answer that does not read as a `T` → exit 1.
    pub async fn call<T: DeserializeOwned>(&self, rb: RequestBuilder) -> anyhow::Result<Answer<T>> {
        let unreachable =
            |e: reqwest::Error| Failure::Operation(format!("could not reach {}: {e}", self.base));
        let (http, request) = rb.build_split();
        let request = request.map_err(unreachable)?;
        let what = format!("{} {}", request.method(), request.url().path());
        let resp = http.execute(request).await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Operation(format!("reading the response failed: {e}")))?;
        let raw: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status == StatusCode::UNAUTHORIZED && self.signed_in {
            return Err(Failure::Input(format!(
                "{}; your sign-in has ended (or was revoked): sign in again with `wavegate login`",
                refusal(status, &raw)
            ))
            .into());
        }
        if !(status.is_success() || status == StatusCode::NOT_MODIFIED) {
            return Err(refusal(status, &raw).into());
        }
        let body = T::deserialize(&raw).map_err(|e| {
            Failure::Operation(format!("the server's answer to {what} does not read: {e}"))
        })?;
        Ok(Answer { status, raw, body })
    }

    /// POSTs a YAML document to `path`, with `reason` (if any) as `X-Wavegate-Reason`.
    pub async fn post_yaml<T: DeserializeOwned>(
        &self,
        path: &str,
        text: impl Into<reqwest::Body>,
        reason: &Option<String>,
    ) -> anyhow::Result<Answer<T>> {
        let rb =
            self.request(Method::POST, path).header("content-type", "application/yaml").body(text);
        self.call(with_reason(rb, reason)).await
    }

    /// GET `path` and read its JSON as a `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<Answer<T>> {
        self.call(self.request(Method::GET, path)).await
    }
}

/// A 2xx answer: its status, its body as the server sent it (what `--json` prints), and that
/// body read as a `T`.
#[derive(Debug)]
pub struct Answer<T> {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body as sent (`null` when empty; a string when it is not JSON).
    pub raw: Value,
    /// The body, typed.
    pub body: T,
}

/// What a refused request ends with: the server's error body (admin API or OFREP) in words,
/// exit 2 for a 4xx and 1 for a 5xx.
fn refusal(status: StatusCode, raw: &Value) -> Failure {
    let (code, message, field) = if let Ok(e) = ErrorBody::deserialize(raw) {
        (e.code.as_str().to_owned(), Some(e.message), e.field)
    } else if let Ok(e) = OfrepErrorBody::deserialize(raw) {
        (e.error_code, Some(e.error_details), None)
    } else {
        (String::new(), None, None)
    };
    let message = message.unwrap_or_else(|| match status {
        StatusCode::UNAUTHORIZED => {
            "unauthorized: pass a valid token with --token or WAVEGATE_TOKEN".into()
        }
        StatusCode::FORBIDDEN => "forbidden: this token may not do that".into(),
        _ => raw.to_string(),
    });
    let field = field.map(|f| format!(" (at {f})")).unwrap_or_default();
    let msg = format!("server answered {} {code}: {message}{field}", status.as_u16());
    if status.is_client_error() { Failure::Input(msg) } else { Failure::Operation(msg) }
}

/// Refuses to go on without a token (exit 2).
pub fn need_token(remote: &Remote) -> anyhow::Result<()> {
    if token_for(remote).is_none() {
        return Err(Failure::Input(
            "no token given: pass --token, set WAVEGATE_TOKEN, or sign in with `wavegate login`"
                .into(),
        )
        .into());
    }
    Ok(())
}

/// The token to send: `--token`/`WAVEGATE_TOKEN`, else the live session `wavegate login` kept
/// for this server.
fn token_for(remote: &Remote) -> Option<String> {
    match remote.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Some(t.to_owned()),
        None => crate::credentials::load(&remote.url).map(|s| s.token),
    }
}

pub(crate) use wavegate_core::text::percent_encode as enc;

/// Sends `reason`, when given, as the `X-Wavegate-Reason` header.
pub fn with_reason(rb: RequestBuilder, reason: &Option<String>) -> RequestBuilder {
    match reason {
        Some(r) => rb.header("x-wavegate-reason", r.as_str()),
        None => rb,
    }
}
