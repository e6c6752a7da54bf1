//! The relay as a [`FlagSource`]: each environment's configuration from a `wavegate-sdk` client
//! of its own (one upstream stream each), tokens checked upstream ([`crate::tokens`]), and
//! Unleash SDKs' reports passed to the upstream with the edge's own token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use wavegate_core::Reason;
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::timing::TimeDependence;
use wavegate_protocols::unleash::{FeaturesDoc, features_document};
use wavegate_protocols::{
    Caller, Config, FlagSet, FlagSource, MetricsReport, Refusal, Registration, Report, SourceError,
};
use wavegate_sdk::Client;
use wavegate_sdk::config::Compiled;

use crate::tokens::Tokens;

/// One environment the relay serves: its name and the SDK client that follows it.
pub(crate) struct Feed {
    pub(crate) environment: String,
    pub(crate) sdk: Client,
}

/// The relay's source of flags and tokens.
pub(crate) struct EdgeSource {
    /// The environments served, in the order given.
    pub(crate) feeds: Vec<Feed>,
    pub(crate) upstream: String,
    /// The edge's own token for the upstream.
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
    pub(crate) tokens: Tokens,
    /// The configuration as the protocols read it, rebuilt when the SDK swaps its own.
    config: ArcSwapOption<EdgeConfig>,
    /// OFREP evaluations answered.
    pub(crate) evaluations: AtomicU64,
    /// Events accepted for forwarding.
    pub(crate) events_accepted: AtomicU64,
    /// Idempotency keys of the batches accepted lately, so a client's retry is queued once.
    pub(crate) recent_keys: std::sync::Mutex<RecentKeys>,
    /// Signs the tickets of the OFREP event stream's advertisements.
    pub(crate) tickets: crate::events::Tickets,
    /// The OFREP event streams open, by token (capped).
    pub(crate) open: crate::events::Open,
}

/// The most recent idempotency keys, at most [`RecentKeys::CAPACITY`] (oldest forgotten first).
#[derive(Debug, Default)]
pub(crate) struct RecentKeys {
    set: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl RecentKeys {
    /// How many keys are remembered.
    pub(crate) const CAPACITY: usize = 100_000;

    /// Remembers `key`; false when it was already remembered (a retry).
    pub(crate) fn first_time(&mut self, key: &str) -> bool {
        if self.set.contains(key) {
            return false;
        }
        if self.order.len() >= Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(key.to_owned());
        self.order.push_back(key.to_owned());
        true
    }
}

impl EdgeSource {
    pub(crate) fn new(
        feeds: Vec<Feed>,
        upstream: &str,
        token: &str,
        http: reqwest::Client,
        tokens: Tokens,
    ) -> EdgeSource {
        EdgeSource {
            feeds,
            upstream: upstream.to_owned(),
            token: token.to_owned(),
            http,
            tokens,
            config: ArcSwapOption::empty(),
            evaluations: AtomicU64::new(0),
            events_accepted: AtomicU64::new(0),
            recent_keys: Default::default(),
            tickets: crate::events::Tickets::new(),
            open: Default::default(),
        }
    }

    /// The feed of `env`, if the relay serves it.
    pub(crate) fn feed(&self, env: &str) -> Option<&Feed> {
        self.feeds.iter().find(|f| f.environment == env)
    }

    /// Sends an Unleash SDK's report to the same path upstream, as the edge (the caller was
    /// checked here), for environment `env`.
    async fn forward(&self, path: &str, env: &str, body: &[u8]) -> Result<(), Refusal> {
        let sent = self
            .http
            .post(format!("{}{path}", self.upstream))
            .bearer_auth(&self.token)
            .header(wavegate_protocols::ENV_HEADER, env)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(Refusal {
                status: StatusCode::from_u16(r.status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY),
                message: format!("the upstream refused the report ({})", r.status()),
            }),
            Err(e) => {
                tracing::warn!(error = %e, path, "upstream unreachable; Unleash report dropped");
                Err(Refusal {
                    status: StatusCode::BAD_GATEWAY,
                    message: "the upstream is unreachable; try again later".into(),
                })
            }
        }
    }
}

#[async_trait]
impl FlagSource for EdgeSource {
    async fn caller(&self, secret: &str) -> Result<Option<Caller>, SourceError> {
        self.tokens.caller(secret).await
    }

    fn knows_every_environment(&self) -> bool {
        false
    }

    fn config(&self) -> Arc<dyn Config> {
        let compiled: Vec<Arc<Compiled>> = self.feeds.iter().map(|f| f.sdk.config()).collect();
        if let Some(c) = self.config.load_full()
            && c.envs.len() == compiled.len()
            && c.envs.iter().zip(&compiled).all(|(e, n)| Arc::ptr_eq(&e.compiled, n))
        {
            return c;
        }
        let names = self.feeds.iter().map(|f| f.environment.clone()).collect();
        let c = Arc::new(EdgeConfig::new(names, compiled));
        self.config.store(Some(c.clone()));
        c
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    fn evaluated(&self, _flag: &str, _reason: Reason) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
    }

    async fn ofrep_event_stream(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        env: &str,
    ) -> Option<Value> {
        crate::events::advertise(self, headers, caller, env)
    }

    async fn unleash_registered(&self, r: Report<'_, Registration>) -> Result<(), Refusal> {
        self.forward("/api/client/register", r.environment, r.raw).await
    }

    async fn unleash_metrics(&self, r: Report<'_, MetricsReport>) -> Result<(), Refusal> {
        self.forward("/api/client/metrics", r.environment, r.raw).await
    }
}

/// The SDK clients' configurations, as the protocols read them.
struct EdgeConfig {
    environments: Vec<String>,
    envs: Vec<EnvConfig>,
    /// The sum of the environments' last stream events: it moves with every change the edge
    /// hears of, in any of them.
    revision: i64,
}

/// One environment's configuration.
struct EnvConfig {
    compiled: Arc<Compiled>,
    time_dependence: TimeDependence,
    unleash: OnceLock<Arc<FeaturesDoc>>,
}

impl EdgeConfig {
    fn new(environments: Vec<String>, compiled: Vec<Arc<Compiled>>) -> EdgeConfig {
        let revision = compiled.iter().map(|c| c.specs.last_event_id.unwrap_or(0)).sum();
        let envs = compiled
            .into_iter()
            .map(|compiled| EnvConfig {
                time_dependence: compiled
                    .flags
                    .values()
                    .fold(TimeDependence::Never, |d, f| d.merge(f.time_dependence())),
                compiled,
                unleash: OnceLock::new(),
            })
            .collect();
        EdgeConfig { environments, envs, revision }
    }

    fn env(&self, env: &str) -> Option<&EnvConfig> {
        self.environments.iter().position(|e| e == env).map(|i| &self.envs[i])
    }
}

impl Config for EdgeConfig {
    fn revision(&self) -> i64 {
        self.revision
    }

    fn environments(&self) -> &[String] {
        &self.environments
    }

    fn flags(&self, env: &str) -> Option<&dyn FlagSet> {
        self.env(env).map(|e| &e.compiled.flags as &dyn FlagSet)
    }

    fn time_dependence(&self, env: &str) -> &TimeDependence {
        static NEVER: TimeDependence = TimeDependence::Never;
        self.env(env).map_or(&NEVER, |e| &e.time_dependence)
    }

    fn unleash_features(&self, env: &str) -> Arc<FeaturesDoc> {
        let Some(e) = self.env(env) else {
            let none: [(&String, &FlagSpec); 0] = [];
            let no_segments: [(&String, &SegmentSpec); 0] = [];
            return Arc::new(features_document(none, no_segments, env, self.revision));
        };
        e.unleash
            .get_or_init(|| {
                let specs = &e.compiled.specs;
                let flags: Vec<(String, FlagSpec)> = decoded(&specs.flags);
                let segments: Vec<(String, SegmentSpec)> = decoded(&specs.segments);
                Arc::new(features_document(
                    flags.iter().map(|(k, s)| (k, s)),
                    segments.iter().map(|(k, s)| (k, s)),
                    env,
                    self.revision,
                ))
            })
            .clone()
    }
}

/// The specs that decode (the server stored only valid ones).
fn decoded<T: serde::de::DeserializeOwned>(
    specs: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Vec<(String, T)> {
    specs
        .iter()
        .filter_map(|(k, v)| serde_json::from_value(v.clone()).ok().map(|s| (k.clone(), s)))
        .collect()
}

#[cfg(test)]
mod recent_keys_tests {
    use super::RecentKeys;

    #[test]
    fn a_key_is_seen_once_and_the_oldest_are_forgotten_first() {
        let mut r = RecentKeys::default();
        assert!(r.first_time("a"));
        assert!(!r.first_time("a"));
        for i in 0..RecentKeys::CAPACITY {
            assert!(r.first_time(&format!("k{i}")));
        }
        assert!(r.first_time("a"), "forgotten once CAPACITY newer keys came");
        assert!(!r.first_time(&format!("k{}", RecentKeys::CAPACITY - 1)));
        assert_eq!(r.set.len(), RecentKeys::CAPACITY);
    }
}
