//! The service layer, between the HTTP handlers (and the background runtimes) and the store.
//!
//! Each operation gathers its facts without holding any lock (store reads, Prometheus, HTTP
//! checks), decides in the pure crates (`wavegate-rollout`, `wavegate-core`), and persists the
//! decision in one transaction guarded by the row's revision; a stale write is decided again
//! from fresh facts. **Invariant:** no lock is held across network I/O, so a person's pause or
//! rollback never waits behind the controller: the two meet only at the revision check.
//!
//! Services speak [`ServiceError`]; only the HTTP layer turns it into an `ApiError`.

pub mod changes;
pub mod config;
pub mod duties;
pub mod events;
pub mod freeze;
pub mod incidents;
pub mod otlp;
pub mod people;
pub mod pipelines;
pub mod plans;
pub mod releases;
pub mod reports;
pub mod rollouts;
pub mod schedules;
pub mod scorecard;
pub mod vulns;
pub mod waivers;

use wavegate_store::StoreError;

/// Who acts, as the audit record names them: the principal and how they signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The principal's name (`alice`, `svc:ci`, `controller`).
    pub name: String,
    /// How they signed in, with the credential used (`oidc session ses_…`, `token tok_…`);
    /// `None` for wavegate's own actors.
    pub via: Option<String>,
}

impl Who {
    /// The holder of `token`, and how they signed in: a session from the identity provider,
    /// a service account's token, or a token.
    pub fn of(token: &wavegate_store::TokenRecord) -> Who {
        let how = if token.id.starts_with("ses_") {
            "oidc session"
        } else if token.principal.starts_with("svc:") {
            "service account token"
        } else {
            "token"
        };
        Who { name: token.principal.clone(), via: Some(format!("{how} {}", token.id)) }
    }

    /// One of wavegate's own actors (`controller`, `system`, `scheduler`), which sign in to
    /// nothing.
    pub fn own(name: &str) -> Who {
        Who { name: name.to_owned(), via: None }
    }
}

#[cfg(test)]
mod who_tests {
    use super::Who;
    use crate::service::duties::tests::token as record;

    fn token(id: &str, principal: &str) -> wavegate_store::TokenRecord {
        record(id, principal, "admin")
    }

    #[test]
    fn who_names_how_the_holder_signed_in() {
        let via = |id, principal| Who::of(&token(id, principal)).via.unwrap();
        assert_eq!(via("ses_1", "alice@example.com"), "oidc session ses_1");
        assert_eq!(via("tok_2", "svc:ci"), "service account token tok_2");
        assert_eq!(
            Who::of(&token("tok_3", "alice")),
            Who { name: "alice".into(), via: Some("token tok_3".into()) }
        );
    }
}

/// Why a service operation did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The input parses but is not acceptable at `field`.
    #[error("{message}")]
    Invalid {
        /// Where in the input (a dotted path, or `line L, column C`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The input does not parse (at `field`, when known).
    #[error("{message}")]
    Malformed {
        /// Where in the input, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The operation conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The store failed (or refused a stale or conflicting write).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data broke an invariant (corruption or a bug); logged, never shown to clients.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// Not acceptable at `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
        ServiceError::Invalid { field: field.into(), message: message.into() }
    }
    /// Does not parse.
    pub fn malformed(message: impl Into<String>) -> ServiceError {
        ServiceError::Malformed { field: None, message: message.into() }
    }
    /// Does not exist.
    pub fn not_found(message: impl Into<String>) -> ServiceError {
        ServiceError::NotFound(message.into())
    }
    /// Conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> ServiceError {
        ServiceError::Conflict(message.into())
    }
    /// An invariant broke: `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> ServiceError {
        ServiceError::Internal(detail.to_string())
    }
}

impl From<wavegate_core::SpecError> for ServiceError {
    fn from(e: wavegate_core::SpecError) -> ServiceError {
        ServiceError::Invalid { field: e.path.clone(), message: e.to_string() }
    }
}

/// Result alias for services.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// Decodes a stored JSON document (a plan, a rollout) into its type; a failure is corruption.
pub fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    doc: &serde_json::Value,
) -> ServiceResult<T> {
    T::deserialize(doc)
        .map_err(|e| ServiceError::internal(format!("stored {what} does not decode: {e}")))
}
