//! The evaluation protocols wavegate speaks to applications, written once for every process
//! that serves them: OFREP ([`ofrep`]) and Unleash's client and frontend APIs ([`unleash`]).
//!
//! The routers are generic over the axum state `S` and read one slice of it, [`Protocols`]: a
//! shared [`FlagSource`]. A source says who a token is, which configuration is served now,
//! what time it is, and what to do with evaluation counts and Unleash SDKs' reports. The
//! server implements it over its store-backed snapshot (reports become rollout exposures);
//! `wavegate-edge` over a `wavegate-sdk` client (reports are forwarded upstream). Everything a
//! client can observe — status codes, bodies, ETags, which environment is served — is decided
//! here, so the two cannot drift apart.
//!
//! ```text
//! impl FromRef<AppState> for Protocols { … }             // the state slice
//! let app: Router<AppState> = wavegate_protocols::router();
//! ```
//!
//! **Boundary:** this crate knows HTTP and the wire formats, never storage: it depends on
//! `wavegate-core` and axum only. Evaluation is `wavegate_core::evaluate_in`, as everywhere.
//!
//! **Invariant:** tokens are read from headers only ([`auth::secret_from_headers`]), never
//! from URLs.
#![warn(missing_docs)]

pub mod auth;
pub mod etag;
pub mod http;
pub mod ofrep;
pub mod otlp;
pub mod tickets;
pub mod unleash;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRef;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::MethodRouter;
use serde_json::Value;
use wavegate_core::{Flag, FlagLookup, Reason};

pub use crate::auth::{ENV_HEADER, secret_from_headers};
pub use crate::unleash::{FeaturesDoc, MetricsReport, Registration};
pub use wavegate_core::access::TokenKind;

/// Who a request's token belongs to, as its [`FlagSource`] knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's kind.
    pub kind: TokenKind,
    /// Environments the token may act in; `*` stands for all.
    pub environments: Vec<String>,
    /// The person or service the token belongs to (for logs).
    pub principal: String,
    /// The token's public id (`tok_…`): the reports it sends are counted as its contributions
    /// (empty where the id is not known).
    pub token: String,
    /// Whether it may report usage (Unleash metrics, which feed rollouts' guardrails); an
    /// evaluation-only server-sdk token may not. A relay passes reports on and lets the
    /// upstream decide.
    pub reports: bool,
}

impl Caller {
    /// Whether the token may act in `env`.
    pub fn allows_env(&self, env: &str) -> bool {
        self.environments.iter().any(|e| e == "*" || e == env)
    }
}

/// A source could not answer (its store or its upstream failed). The detail is logged, never
/// sent to the client.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SourceError(Box<dyn std::error::Error + Send + Sync>);

impl SourceError {
    /// Wraps the underlying failure.
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SourceError {
        SourceError(e.into())
    }
}

/// Why a source did not take an Unleash SDK's report: the status and message the SDK gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status (503 for "try again", 502 when an upstream cannot be reached…).
    pub status: StatusCode,
    /// What went wrong, for the SDK's log.
    pub message: String,
}

/// An Unleash SDK's report (a registration or metrics), checked and authorised.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a, T> {
    /// Who sent it.
    pub caller: &'a Caller,
    /// The environment it is about.
    pub environment: &'a str,
    /// The parsed body.
    pub body: &'a T,
    /// The body as received (a relay forwards it as it came).
    pub raw: &'a Bytes,
}

/// One environment's compiled flags.
pub trait FlagSet: FlagLookup + Send + Sync {
    /// The flag keys, sorted (bulk answers list flags in this order).
    fn keys(&self) -> Vec<&str>;
}

impl<V, H> FlagSet for HashMap<String, V, H>
where
    V: Borrow<Flag> + Send + Sync,
    H: BuildHasher + Send + Sync,
{
    fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = HashMap::keys(self).map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }
}

/// The compiled configuration served at one moment: everything one request reads comes from
/// the same `Config`, so a response never mixes two revisions.
pub trait Config: Send + Sync {
    /// The configuration revision (it changes whenever any flag or segment does; ETags hash it).
    fn revision(&self) -> i64;
    /// The environments served, in promotion order.
    fn environments(&self) -> &[String];
    /// The compiled flags of `env`, if it is served.
    fn flags(&self, env: &str) -> Option<&dyn FlagSet>;
    /// When an answer of `env`'s flags can change with the clock alone (the bulk ETag then
    /// covers which of those moments have passed).
    fn time_dependence(&self, env: &str) -> &wavegate_core::timing::TimeDependence;
    /// `env`'s Unleash features document at this revision (built once, then shared).
    fn unleash_features(&self, env: &str) -> Arc<FeaturesDoc>;
}

/// Where the protocols get flags, tokens and time from, and where reports go.
#[async_trait]
pub trait FlagSource: Send + Sync + 'static {
    /// Who holds `secret`: `Ok(None)` for an unknown or revoked token, `Err` when the source
    /// cannot tell right now.
    async fn caller(&self, secret: &str) -> Result<Option<Caller>, SourceError>;

    /// Whether [`Config::environments`] lists every environment there is (the server), so an
    /// environment outside it does not exist. A relay serving some of them says `false`: an
    /// environment it does not serve may exist upstream, and a request for it is refused
    /// (403) rather than called unknown (400).
    fn knows_every_environment(&self) -> bool {
        true
    }

    /// The configuration being served now.
    fn config(&self) -> Arc<dyn Config>;

    /// The time given to contexts without `currentTime` (date constraints read it).
    fn now(&self) -> chrono::DateTime<chrono::Utc>;

    /// Counts one OFREP evaluation (metrics only: an evaluation is not an exposure).
    fn evaluated(&self, flag: &str, reason: Reason);

    /// The `eventStreams` entry for a bulk OFREP response to `caller` in `env`, if this source
    /// serves OFREP's refetch stream.
    async fn ofrep_event_stream(
        &self,
        _headers: &HeaderMap,
        _caller: &Caller,
        _env: &str,
    ) -> Option<Value> {
        None
    }

    /// An Unleash SDK registered (`POST /api/client/register`).
    async fn unleash_registered(&self, report: Report<'_, Registration>) -> Result<(), Refusal>;

    /// An Unleash SDK reported its toggle counts (`POST /api/client/metrics`).
    async fn unleash_metrics(&self, report: Report<'_, MetricsReport>) -> Result<(), Refusal>;
}

/// The state slice the protocol routers read: implement `FromRef<YourState> for Protocols`.
#[derive(Clone)]
pub struct Protocols(pub Arc<dyn FlagSource>);

/// OFREP and the Unleash client and frontend APIs, for any state that holds a [`Protocols`].
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Protocols: FromRef<S>,
{
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, _, handlers)| router.route(path, handlers))
}

/// What [`router`] serves, as (path, methods): the route table a server documents (wavegate's
/// OpenAPI document describes each of these and checks it covers exactly them).
pub fn route_table() -> Vec<(&'static str, &'static [Method])> {
    routes::<Protocols>().into_iter().map(|(path, methods, _)| (path, methods)).collect()
}

/// Every route: its path, the methods it answers, and their handlers.
fn routes<S>() -> Vec<(&'static str, &'static [Method], MethodRouter<S>)>
where
    S: Clone + Send + Sync + 'static,
    Protocols: FromRef<S>,
{
    use axum::routing::{get, post};
    const GET: &[Method] = &[Method::GET];
    const POST: &[Method] = &[Method::POST];
    const BOTH: &[Method] = &[Method::GET, Method::POST];
    vec![
        ("/ofrep/v1/evaluate/flags/{key}", POST, post(ofrep::evaluate_one)),
        ("/ofrep/v1/evaluate/flags", POST, post(ofrep::evaluate_bulk)),
        ("/api/client/features", GET, get(unleash::client_features)),
        ("/api/client/features/{name}", GET, get(unleash::client_feature)),
        ("/api/client/register", POST, post(unleash::client_register)),
        ("/api/client/metrics", POST, post(unleash::client_metrics)),
        ("/api/frontend", BOTH, get(unleash::frontend).post(unleash::frontend)),
        ("/api/frontend/all", BOTH, get(unleash::frontend).post(unleash::frontend)),
        ("/api/frontend/features/{name}", GET, get(unleash::frontend_feature)),
        ("/api/frontend/client/register", POST, post(unleash::frontend_accept)),
        ("/api/frontend/client/metrics", POST, post(unleash::frontend_accept)),
    ]
}
