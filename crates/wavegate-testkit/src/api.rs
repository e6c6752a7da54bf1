//! A server's HTTP API through reqwest, as a client application or an admin's script uses it.

use serde_json::{Value, json};

/// The API at `url`, called with one token.
#[derive(Debug, Clone)]
pub struct Api {
    /// The client (clone it freely: it shares its connection pool).
    pub http: reqwest::Client,
    /// The server, like `http://127.0.0.1:41234`.
    pub url: String,
    /// The bearer token every call carries.
    pub token: String,
}

impl Api {
    /// The API at `url`, called with `token`.
    pub fn new(url: &str, token: &str) -> Api {
        Api { http: reqwest::Client::new(), url: url.to_owned(), token: token.to_owned() }
    }

    /// Calls `path` with an optional JSON body; its JSON answer. Panics unless it succeeded.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(path, rb).await
    }

    /// POSTs a YAML document (a flag file to `/api/v1/apply`, a plan to `/api/v1/plans`); its
    /// JSON answer. Panics unless it succeeded.
    pub async fn post_yaml(&self, path: &str, yaml: &str) -> Value {
        let rb = self.http.post(format!("{}{path}", self.url));
        self.send(path, rb.header("content-type", "application/yaml").body(yaml.to_owned())).await
    }

    /// A new token of `kind` for `environments`.
    pub async fn token(&self, kind: &str, environments: &[&str]) -> String {
        let body = json!({"kind": kind, "environments": environments});
        let created = self.call(reqwest::Method::POST, "/api/v1/tokens", Some(body)).await;
        created["token"].as_str().unwrap().to_owned()
    }

    async fn send(&self, path: &str, rb: reqwest::RequestBuilder) -> Value {
        let resp = rb.bearer_auth(&self.token).send().await.expect("server reachable");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
}

/// Evaluates `key` for `context` over OFREP at `base`, as a client SDK does: the status and
/// the JSON answer.
pub async fn ofrep(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
    context: &Value,
) -> (u16, Value) {
    let resp = http
        .post(format!("{base}/ofrep/v1/evaluate/flags/{key}"))
        .bearer_auth(token)
        .json(&json!({"context": context}))
        .send()
        .await
        .expect("server reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}
