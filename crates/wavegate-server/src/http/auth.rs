//! Tokens: minting (32 random bytes, shown once), hashing (only SHA-256 hashes are stored), and
//! the [`Principal`] extractor that every protected handler takes.
//!
//! **Invariant:** a token is read from `Authorization` (`Bearer X` or bare `X`) or `X-API-Key`,
//! never from a URL.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use rand::Rng;
use wavegate_store::{Grant, NewToken, Role, StoreResult, TokenKind, TokenRecord};

use crate::http::error::ApiError;
use crate::state::AppState;

pub use wavegate_protocols::secret_from_headers;

/// The cookie that carries a signed-in person's session in the dashboard
/// ([`crate::http::signin`]).
pub const SESSION_COOKIE: &str = "wg_session";
/// The header a signed-in dashboard request that changes something carries: the session's
/// [`csrf_token`] (which `GET /api/v1/whoami` tells the dashboard's own pages).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token of a session secret: readable only by pages that may read the API's
/// answers (this server's own), so a page of another site cannot make a signed-in browser
/// change anything.
pub fn csrf_token(session_secret: &str) -> String {
    wavegate_core::audit::sha256_hex(&format!("wavegate-csrf:{session_secret}"))[..32].to_owned()
}

/// The session secret a request carries in its cookie, when it carries no token in a header.
pub fn session_secret(headers: &axum::http::HeaderMap) -> Option<&str> {
    if secret_from_headers(headers).is_some() {
        return None;
    }
    crate::http::signin::cookie_value(headers, SESSION_COOKIE)
}

/// Prefix of every token secret, so leaked tokens are recognisable by scanners.
pub const TOKEN_PREFIX: &str = "wg_";
/// Shortest secret accepted for a bootstrap admin token.
pub const MIN_BOOTSTRAP_LEN: usize = 32;

/// A freshly minted token: the secret (shown once) and what to store.
#[derive(Debug)]
pub struct Minted {
    /// The secret to hand to the user.
    pub secret: String,
    /// What the store keeps.
    pub record: NewToken,
}

/// Hex SHA-256 of a token secret.
pub fn hash_secret(secret: &str) -> String {
    wavegate_core::audit::sha256_hex(secret)
}

/// Mints a token of `kind` for `principal`, scoped to `environments` (`["*"]` for all).
pub fn mint(kind: TokenKind, environments: Vec<String>, principal: String) -> Minted {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret =
        format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    from_secret(secret, kind, environments, principal)
}

/// A token record for a secret chosen elsewhere (the bootstrap admin token).
pub fn from_secret(
    secret: String,
    kind: TokenKind,
    environments: Vec<String>,
    principal: String,
) -> Minted {
    let mut id_bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut id_bytes);
    // An admin-kind token holds the admin role in its environments unless told otherwise.
    let roles = match kind {
        TokenKind::Admin => vec![Grant { role: Role::Admin, environments: environments.clone() }],
        TokenKind::ServerSdk | TokenKind::ClientSdk => Vec::new(),
    };
    let record = NewToken {
        id: format!("tok_{}", hex::encode(id_bytes)),
        hash: hash_secret(&secret),
        kind,
        environments,
        principal,
        user_admin: false,
        evaluate_only: false,
        expires_at: None,
        roles,
        groups: Vec::new(),
    };
    Minted { secret, record }
}

/// Live tokens by hash, so evaluation does not query the database per request.
/// Cleared whenever a token is created or revoked.
#[derive(Debug, Default)]
pub struct TokenCache {
    by_hash: RwLock<HashMap<String, TokenRecord>>,
    /// Bumped by every clear; a lookup that started before a clear does not insert, so a token
    /// revoked while its lookup was in flight is never cached.
    generation: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    /// Looks a secret up, through the cache.
    pub async fn lookup(&self, state: &AppState, secret: &str) -> StoreResult<Option<TokenRecord>> {
        // An expired token is refused like a revoked one, wherever it is used.
        let now = state.clock.now();
        let hash = hash_secret(secret);
        if let Some(t) = self.by_hash.read().unwrap_or_else(|e| e.into_inner()).get(&hash) {
            return Ok(Some(t.clone()).filter(|t| !t.expired(now)));
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let found = state.store.token_by_hash(&hash).await?;
        if let Some(t) = &found {
            let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
                map.insert(hash, t.clone());
            }
        }
        Ok(found.filter(|t| !t.expired(now)))
    }

    /// Forgets every cached token.
    pub fn clear(&self) {
        let mut map = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        map.clear();
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal(pub TokenRecord);

impl Principal {
    /// The principal's name.
    pub fn name(&self) -> &str {
        &self.0.principal
    }

    /// Who this is, as the audit record names them: the principal and how they signed in
    /// (a session from the identity provider, a service account's token or a token).
    pub fn who(&self) -> crate::service::Who {
        crate::service::Who::of(&self.0)
    }

    /// Refuses (403) unless the token is one of `kinds`.
    pub fn require(&self, kinds: &[TokenKind]) -> Result<(), ApiError> {
        if kinds.contains(&self.0.kind) {
            return Ok(());
        }
        let allowed: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        Err(ApiError::forbidden(format!(
            "a {} token may not do this; it needs a token of kind {}",
            self.0.kind.as_str(),
            allowed.join(" or ")
        )))
    }

    /// The caller acting in one of `roles`: an admin-kind token narrowed to the environments
    /// where it holds one of them (so every later [`Principal::require_env`] and scope rule
    /// sees only those). 403, naming the roles, when it holds none of them anywhere.
    pub fn acting_as(&self, roles: &[Role]) -> Result<Principal, ApiError> {
        self.require(&[TokenKind::Admin])?;
        self.0.acting_as(roles).map(Principal).ok_or_else(|| {
            let wanted: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            let held: Vec<String> = self
                .0
                .roles
                .iter()
                .map(|g| format!("{} in {}", g.role.as_str(), g.environments.join(", ")))
                .collect();
            ApiError::forbidden(format!(
                "this needs the {} role; {} holds {}",
                wanted.join(" or "),
                self.name(),
                if held.is_empty() { "none".to_owned() } else { held.join("; ") }
            ))
        })
    }

    /// [`Principal::acting_as`] the admin role.
    pub fn require_admin(&self) -> Result<Principal, ApiError> {
        self.acting_as(&[Role::Admin])
    }

    /// Refuses (403) unless the token may act in `env`.
    pub fn require_env(&self, env: &str) -> Result<(), ApiError> {
        if self.0.allows_env(env) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this token is scoped to {}; it may not act in environment {env:?}",
                self.0.environments.join(", ")
            )))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(secret) = secret_from_headers(&parts.headers) {
            return match state.tokens.lookup(state, secret).await? {
                Some(t) => Ok(Principal(t)),
                None => Err(ApiError::unauthorized("unknown, revoked or expired token")),
            };
        }
        // A signed-in dashboard: the session cookie (only a session's, never an API token's),
        // and for anything that changes state the CSRF token only this server's pages can read.
        let Some(secret) = session_secret(&parts.headers) else {
            return Err(ApiError::unauthorized("no token: send `Authorization: Bearer <token>`"));
        };
        let t = match state.tokens.lookup(state, secret).await? {
            Some(t) if t.id.starts_with("ses_") => t,
            _ => {
                return Err(ApiError::unauthorized(
                    "your sign-in has ended (expired or signed out): sign in again",
                ));
            }
        };
        let safe = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
        );
        if !safe {
            let given = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            // Compared as hashes: the time taken says nothing about the token.
            if hash_secret(given) != hash_secret(&csrf_token(secret)) {
                return Err(ApiError::forbidden(
                    "a signed-in request that changes something must carry the X-CSRF-Token header (from GET /api/v1/whoami)",
                ));
            }
        }
        Ok(Principal(t))
    }
}
