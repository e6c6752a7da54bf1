//! Applications call the edge with their own wavegate tokens, and the upstream decides who
//! they are: the edge asks it (`GET /api/v1/whoami`) once, caches the answer by SHA-256 of the
//! token (never the token) for [`TOKEN_TTL`], keeps the valid ones on disk, and trusts a
//! cached answer while the upstream is unreachable (also after its own restart).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;
use wavegate_protocols::{Caller, SourceError, TokenKind};

/// How long a token's upstream answer is trusted before asking again (while reachable).
pub const TOKEN_TTL: chrono::Duration = chrono::Duration::minutes(5);

/// What the upstream said a token is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KnownToken {
    kind: String,
    environments: Vec<String>,
    #[serde(default)]
    principal: String,
    /// The token's id (`token_id` in the upstream's answer).
    #[serde(default)]
    token_id: String,
    /// When it stops working, if it does (`expires_at` in the upstream's answer).
    #[serde(default)]
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    checked_at: chrono::DateTime<chrono::Utc>,
}

impl KnownToken {
    fn caller(&self) -> Option<Caller> {
        // An expired token is refused here too, even while the upstream cannot be asked.
        if self.expires_at.is_some_and(|e| e <= chrono::Utc::now()) {
            return None;
        }
        Some(Caller {
            kind: TokenKind::parse(&self.kind)?,
            environments: self.environments.clone(),
            principal: self.principal.clone(),
            token: self.token_id.clone(),
            // The upstream, which knows the token, refuses what it may not report.
            reports: true,
        })
    }
}

/// The tokens seen, by hash: `None` for those the upstream said it does not know.
pub(crate) struct Tokens {
    upstream: String,
    http: reqwest::Client,
    known: Mutex<HashMap<String, Option<KnownToken>>>,
    path: PathBuf,
}

impl Tokens {
    /// The cache, with the valid tokens saved at `path` (if any).
    pub(crate) fn load(upstream: &str, http: reqwest::Client, path: PathBuf) -> Tokens {
        let known = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<HashMap<String, KnownToken>>(&b).ok())
            .map(|m| m.into_iter().map(|(k, v)| (k, Some(v))).collect())
            .unwrap_or_default();
        Tokens { upstream: upstream.to_owned(), http, known: Mutex::new(known), path }
    }

    /// Who holds `secret`, asking the upstream when it is not known (or known too long).
    pub(crate) async fn caller(&self, secret: &str) -> Result<Option<Caller>, SourceError> {
        let hash = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
        let cached = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
            .cloned();
        let fresh = |t: &Option<KnownToken>| {
            t.as_ref().is_none_or(|k| chrono::Utc::now() - k.checked_at < TOKEN_TTL)
        };
        let known = match cached {
            Some(t) if fresh(&t) => t,
            stale => match self.whoami(secret).await {
                Ok(answer) => {
                    self.remember(&hash, answer.clone());
                    answer
                }
                // Upstream unreachable: trust what it said before.
                Err(e) => match stale.flatten() {
                    Some(k) => Some(k),
                    None => return Err(SourceError::new(e)),
                },
            },
        };
        Ok(known.as_ref().and_then(KnownToken::caller))
    }

    /// `Ok(None)`: the upstream says no such token. `Err`: the upstream did not answer.
    async fn whoami(&self, secret: &str) -> Result<Option<KnownToken>, String> {
        let unreachable = |e: reqwest::Error| {
            let e = wavegate_core::text::redact_urls_in(&e.to_string());
            format!("the upstream did not say who a token is: {e}")
        };
        let resp = self
            .http
            .get(format!("{}/api/v1/whoami", self.upstream))
            .bearer_auth(secret)
            .send()
            .await
            .map_err(unreachable)?;
        match resp.status() {
            s if s.is_success() => {
                let v: Value = resp.json().await.map_err(unreachable)?;
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                Ok(Some(KnownToken {
                    kind: text("kind"),
                    environments: v["environments"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    principal: text("principal"),
                    token_id: text("token_id"),
                    expires_at: v["expires_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.to_utc()),
                    checked_at: chrono::Utc::now(),
                }))
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(None),
            s => Err(format!("the upstream answered {s} when asked who a token is")),
        }
    }

    /// Whether the token with public id `id` is known valid (the upstream said so, within
    /// [`TOKEN_TTL`] or while it cannot be asked), and its caller then.
    pub(crate) fn known_id(&self, id: &str) -> Option<Caller> {
        if id.is_empty() {
            return None;
        }
        let known = self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.values().flatten().find(|k| k.token_id == id).and_then(KnownToken::caller)
    }

    fn remember(&self, hash: &str, answer: Option<KnownToken>) {
        let mut known = self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.insert(hash.to_owned(), answer);
        let valid: HashMap<&String, &KnownToken> =
            known.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))).collect();
        if let Ok(bytes) = serde_json::to_vec(&valid) {
            let tmp = self.path.with_extension("tmp");
            if std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &self.path)).is_err()
            {
                tracing::warn!(path = %self.path.display(), "could not save known tokens");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(expires_at: Option<chrono::DateTime<chrono::Utc>>) -> KnownToken {
        KnownToken {
            kind: "client-sdk".into(),
            environments: vec!["prod".into()],
            principal: "web".into(),
            token_id: "tok_1".into(),
            expires_at,
            checked_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn an_expired_token_is_refused_even_from_the_cache() {
        let hour = chrono::Duration::hours(1);
        assert!(known(None).caller().is_some());
        assert!(known(Some(chrono::Utc::now() + hour)).caller().is_some());
        assert!(known(Some(chrono::Utc::now() - hour)).caller().is_none());
    }
}
