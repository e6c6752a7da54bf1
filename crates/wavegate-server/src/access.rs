//! [`Access`]: who may reach what, beyond tokens: which web pages may call the admin API from
//! a browser (CORS), and how `/metrics` is reached (a scrape token, a listener of its own).
//!
//! The defaults keep what worked before, except for CORS: no other origin's pages may call
//! the admin API (the dashboard is served from the server's own origin and needs none), while
//! OFREP and Unleash's client and frontend APIs answer pages of any origin, as browser SDKs
//! need.

use axum::http::{HeaderMap, HeaderValue};

use crate::http::error::ApiError;

/// What [`crate::AppState::access`] holds.
#[derive(Clone, Default)]
pub struct Access {
    /// Origins (`https://ops.example.com`) whose pages may call the admin API and every other
    /// route outside the evaluation protocols; `*` lets any origin. Empty: none.
    pub cors_origins: Vec<HeaderValue>,
    /// The SHA-256 (hex) of the bearer token `/metrics` requires; `None`: it answers anyone
    /// who can reach it (`/metrics` lists flag keys, never values or rules).
    pub metrics_token: Option<String>,
    /// `/metrics` is served on a listener of its own ([`crate::metrics_app`]); the main
    /// listener then answers 404 for it.
    pub metrics_elsewhere: bool,
    /// Sign-in through an OpenID Connect provider (`serve --oidc-issuer`); `None`: tokens only.
    pub oidc: Option<std::sync::Arc<crate::oidc::Provider>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("cors_origins", &self.cors_origins)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<redacted>"))
            .field("metrics_elsewhere", &self.metrics_elsewhere)
            .field("oidc", &self.oidc)
            .finish()
    }
}

impl Access {
    /// Requires `/metrics`' bearer token, when one is set: 401 without it or with another.
    pub fn check_metrics(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(want) = &self.metrics_token else { return Ok(()) };
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        // Comparing hashes: how long the comparison takes says nothing about the token.
        match given {
            Some(t) if crate::http::auth::hash_secret(t) == *want => Ok(()),
            Some(_) => Err(ApiError::unauthorized("wrong token for /metrics")),
            None => Err(ApiError::unauthorized(
                "/metrics needs its token: send `Authorization: Bearer <token>` (serve --metrics-token-file)",
            )),
        }
    }

    /// Whether a page of `origin` may call `path` (CORS): any origin on the evaluation
    /// protocols' paths, the configured ones elsewhere.
    pub fn allows_origin(&self, origin: &HeaderValue, path: &str) -> bool {
        wavegate_protocols::http::open_to_any_origin(path)
            || self.cors_origins.iter().any(|o| o == origin || o == "*")
    }
}

/// Parses a `--cors-origin`: `*`, or `http(s)://host[:port]` (a trailing `/` is dropped; no
/// path, query or credentials), as browsers send it in `Origin`.
pub fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
    let o = origin.trim().trim_end_matches('/');
    if o == "*" {
        return Ok(HeaderValue::from_static("*"));
    }
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(|| format!("{origin:?} is not an origin: write https://host[:port] (or *)"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace)
    {
        return Err(format!(
            "{origin:?} is not an origin: only scheme, host and port, like https://ops.example.com:8443"
        ));
    }
    HeaderValue::from_str(&o.to_ascii_lowercase()).map_err(|e| format!("{origin:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use crate::access::parse_origin;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(parse_origin("https://Ops.Example.com/").unwrap(), "https://ops.example.com");
        assert_eq!(parse_origin("http://localhost:3000").unwrap(), "http://localhost:3000");
        assert_eq!(parse_origin("*").unwrap(), "*");
        for bad in ["ops.example.com", "https://", "https://x/path", "ftp://x", "https://u@x"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
