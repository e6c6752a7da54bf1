//! Who may ask, and for which environment: one rule for every protocol and every source.
//!
//! The token comes from `Authorization` (`Bearer X` or bare `X`) or `X-API-Key`, never from a
//! URL. Unleash SDKs may send Unleash's shape `<project>:<environment>.<secret>`, where the
//! secret is a wavegate token and the environment names the one to serve.
//!
//! The environment is, in order: the `X-Wavegate-Environment` header, the environment an
//! Unleash-shaped token names, the token's only environment, and (on a relay that serves one
//! environment) that one. Then: an environment the source does not know is a 400; one the token
//! may not act in, or that a relay does not serve, a 403.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};

use crate::{Caller, Config, FlagSource, SourceError, TokenKind};

/// Request header that picks the environment when a token spans several.
pub const ENV_HEADER: &str = "x-wavegate-environment";

/// The secret a request carries, if any.
pub fn secret_from_headers(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        // `Bearer` alone (an empty token whose trailing space was trimmed) is no token.
        if v.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let v = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim();
        if !v.is_empty() {
            return Some(v);
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The environment and the secret in an Unleash-shaped token `<project>:<environment>.<secret>`.
pub fn split_unleash_token(token: &str) -> Option<(&str, &str)> {
    let (project, rest) = token.split_once(':')?;
    let (env, secret) = rest.split_once('.')?;
    (!project.is_empty() && !env.is_empty() && !secret.is_empty()).then_some((env, secret))
}

/// Which token shapes a protocol accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes {
    /// wavegate tokens only (OFREP, wavegate's own APIs).
    Bare,
    /// wavegate tokens, or Unleash's `<project>:<environment>.<secret>` around one.
    Unleash,
}

/// An authorised request: who, in which environment, against which configuration.
pub struct Grant {
    /// The caller.
    pub caller: Caller,
    /// The environment to serve.
    pub environment: String,
    /// The configuration, read after the token was checked.
    pub config: Arc<dyn Config>,
}

/// Why a request was refused. Each protocol renders these in its own error format.
#[derive(Debug)]
#[non_exhaustive]
pub enum Denied {
    /// No token in the request.
    NoToken,
    /// The token is unknown or revoked.
    UnknownToken,
    /// The source could not check the token.
    Lookup(SourceError),
    /// The token's kind may not use this API; it needs one of `needs`.
    WrongKind {
        /// The token's kind.
        kind: TokenKind,
        /// The kinds that may.
        needs: &'static [TokenKind],
    },
    /// The token spans several environments and the request names none.
    SpansSeveral,
    /// No such environment.
    UnknownEnvironment(String),
    /// The token may not act in this environment.
    NotAllowed(String),
    /// This relay does not serve this environment.
    NotServed(String),
}

impl Denied {
    /// The status the refusal is answered with (OFREP answers a failed lookup with 500).
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::NoToken | Denied::UnknownToken => StatusCode::UNAUTHORIZED,
            Denied::Lookup(_) => StatusCode::SERVICE_UNAVAILABLE,
            Denied::WrongKind { .. } | Denied::NotAllowed(_) | Denied::NotServed(_) => {
                StatusCode::FORBIDDEN
            }
            Denied::SpansSeveral | Denied::UnknownEnvironment(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks the request's token (one of `kinds`) and picks the environment to serve.
pub async fn authorise(
    source: &dyn FlagSource,
    headers: &HeaderMap,
    kinds: &'static [TokenKind],
    shapes: Shapes,
) -> Result<Grant, Denied> {
    let raw = secret_from_headers(headers).ok_or(Denied::NoToken)?;
    // The whole string first: a wavegate secret chosen by hand may look like Unleash's shape.
    let (caller, hinted) = match source.caller(raw).await.map_err(Denied::Lookup)? {
        Some(c) => (c, None),
        None => match split_unleash_token(raw).filter(|_| shapes == Shapes::Unleash) {
            Some((env, secret)) => match source.caller(secret).await.map_err(Denied::Lookup)? {
                Some(c) => (c, Some(env.to_owned())),
                None => return Err(Denied::UnknownToken),
            },
            None => return Err(Denied::UnknownToken),
        },
    };
    if !kinds.contains(&caller.kind) {
        return Err(Denied::WrongKind { kind: caller.kind, needs: kinds });
    }
    let config = source.config();
    let served = config.environments();
    let named = headers
        .get(ENV_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let environment = match named.or(hinted) {
        Some(e) => e,
        None => match (caller.environments.as_slice(), served) {
            ([one], _) if one != "*" => one.clone(),
            (_, [only]) if !source.knows_every_environment() => only.clone(),
            _ => return Err(Denied::SpansSeveral),
        },
    };
    let is_served = served.contains(&environment);
    if !is_served && source.knows_every_environment() {
        return Err(Denied::UnknownEnvironment(environment));
    }
    if !caller.allows_env(&environment) {
        return Err(Denied::NotAllowed(environment));
    }
    if !is_served {
        return Err(Denied::NotServed(environment));
    }
    Ok(Grant { caller, environment, config })
}

/// The kinds that may evaluate.
pub const EVALUATE: &[TokenKind] = &[TokenKind::ClientSdk, TokenKind::ServerSdk, TokenKind::Admin];
/// The kinds that may read rules and report (Unleash's client API, events).
pub const READ_RULES: &[TokenKind] = &[TokenKind::ServerSdk, TokenKind::Admin];

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(auth: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        secret_from_headers(&h).map(str::to_owned)
    }

    #[test]
    fn an_empty_bearer_is_no_token() {
        assert_eq!(secret("Bearer "), None);
        assert_eq!(secret("Bearer"), None);
        assert_eq!(secret("bearer   "), None);
        assert_eq!(secret("Bearer wg_abc"), Some("wg_abc".into()));
        assert_eq!(secret("wg_abc"), Some("wg_abc".into()));
    }
}
