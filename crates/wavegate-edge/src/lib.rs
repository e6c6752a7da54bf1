//! `wavegate edge`: a relay close to the applications. It serves OFREP and Unleash's client and
//! frontend APIs — the server's own routers from `wavegate-protocols`, so it answers exactly
//! as the server does — from in-memory copies of the configuration of one or more
//! environments, each kept current by an upstream stream of its own through `wavegate-sdk`
//! (the same evaluation as the server). It keeps the last good copy of each on disk and serves
//! it when the upstream is unreachable (also after its own restart), and forwards
//! applications' events and Unleash SDKs' reports upstream, for the environment the
//! application's token and `X-Wavegate-Environment` name. `/readyz` and `/metrics` say how
//! stale it is.
//!
//! Tokens: applications use their own wavegate tokens, checked upstream and cached by hash
//! ([`TOKEN_TTL`]).
//!
//! **Boundary:** no store and no server code: the relay knows the upstream only through its
//! HTTP API (the stream, `whoami`, events, Unleash reports).
#![warn(missing_docs)]

mod events;
mod routes;
mod source;
mod tokens;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use wavegate_sdk::{Builder, Source};

pub use crate::tokens::TOKEN_TTL;

/// What the relay needs to start.
#[derive(Clone)]
pub struct Settings {
    /// The wavegate server (or another relay's upstream) to follow.
    pub upstream: String,
    /// A `server-sdk` token for every environment served (reads the streams, forwards
    /// reports).
    pub token: String,
    /// The environments to serve (at least one, each once).
    pub environments: Vec<String>,
    /// Where the last good configuration and the tokens seen valid are kept.
    pub state_dir: PathBuf,
    /// Report not ready when the configuration is older than this.
    pub max_stale: Option<Duration>,
    /// How often forwarded events are sent upstream.
    pub flush_interval: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("upstream", &self.upstream)
            .field("token", &"<redacted>")
            .field("environments", &self.environments)
            .field("state_dir", &self.state_dir)
            .field("max_stale", &self.max_stale)
            .field("flush_interval", &self.flush_interval)
            .finish()
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are unusable (the upstream URL, the token, the environment).
    #[error(transparent)]
    Settings(wavegate_sdk::Error),
    /// No environment, or one named twice.
    #[error("{0}")]
    Environments(String),
    /// The state directory could not be created.
    #[error("Failed to create {}: {source}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client for the upstream could not be built.
    #[error("Failed to build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// A started relay: its SDK client follows the upstream from the moment it starts.
pub struct Relay {
    source: Arc<source::EdgeSource>,
    max_stale: Option<Duration>,
    started_at: chrono::DateTime<chrono::Utc>,
}

impl Relay {
    /// Starts following the upstream (from the snapshot file first, if there is one).
    pub fn start(settings: Settings) -> Result<Relay, Error> {
        let Settings { upstream, token, environments, state_dir, max_stale, flush_interval } =
            settings;
        if environments.is_empty() {
            return Err(Error::Environments("name at least one environment to serve".into()));
        }
        if let Some(twice) =
            environments.iter().enumerate().find(|(i, e)| environments[..*i].contains(e))
        {
            return Err(Error::Environments(format!("environment {:?} is named twice", twice.1)));
        }
        std::fs::create_dir_all(&state_dir)
            .map_err(|source| Error::StateDir { path: state_dir.clone(), source })?;
        let upstream = upstream.trim_end_matches('/').to_owned();
        let mut feeds = Vec::new();
        for environment in environments {
            let sdk = Builder::new(&upstream, &token, &environment)
                .snapshot_path(state_dir.join(format!("config-{environment}.json")))
                .flush_interval(flush_interval)
                .reconnect_delay(Duration::from_millis(100), Duration::from_secs(5))
                .idle_timeout(Duration::from_secs(45))
                .start()
                .map_err(Error::Settings)?;
            feeds.push(source::Feed { environment, sdk });
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let tokens = tokens::Tokens::load(&upstream, http.clone(), state_dir.join("tokens.json"));
        let source = source::EdgeSource::new(feeds, &upstream, &token, http, tokens);
        Ok(Relay { source: Arc::new(source), max_stale, started_at: chrono::Utc::now() })
    }

    /// The relay's HTTP application.
    pub fn router(&self) -> Router {
        routes::app(routes::EdgeState {
            source: self.source.clone(),
            max_stale: self.max_stale,
            started_at: self.started_at,
        })
    }

    /// Waits until every environment's configuration is served (from the upstream, or from
    /// disk when the upstream cannot be reached within `timeout`), and says where each came
    /// from, by environment.
    pub async fn wait_ready(
        &self,
        timeout: Duration,
    ) -> Result<Vec<(String, Source)>, wavegate_sdk::Error> {
        let mut out = Vec::new();
        for f in &self.source.feeds {
            out.push((f.environment.clone(), f.sdk.wait_ready(timeout).await?));
        }
        Ok(out)
    }

    /// Forwards the events still queued (best effort) and stops following the upstream.
    pub async fn close(self) {
        for f in &self.source.feeds {
            f.sdk.clone().close().await;
        }
    }
}
