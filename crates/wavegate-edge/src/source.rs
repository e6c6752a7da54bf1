//! The relay as a [`FlagSource`]: one environment's configuration from the `wavegate-sdk`
//! client, tokens checked upstream ([`crate::tokens`]), and Unleash SDKs' reports passed to the
//! upstream with the edge's own token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use axum::http::StatusCode;
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

/// The relay's source of flags and tokens.
pub(crate) struct EdgeSource {
    pub(crate) sdk: Client,
    /// The one environment served.
    pub(crate) environment: String,
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
        sdk: Client,
        environment: &str,
        upstream: &str,
        token: &str,
        http: reqwest::Client,
        tokens: Tokens,
    ) -> EdgeSource {
        EdgeSource {
            sdk,
            environment: environment.to_owned(),
            upstream: upstream.to_owned(),
            token: token.to_owned(),
            http,
            tokens,
            config: ArcSwapOption::empty(),
            evaluations: AtomicU64::new(0),
            events_accepted: AtomicU64::new(0),
            recent_keys: Default::default(),
        }
    }

    /// Sends an Unleash SDK's report to the same path upstream, as the edge (the caller was
    /// checked here), for the edge's environment.
    async fn forward(&self, path: &str, body: &[u8]) -> Result<(), Refusal> {
        let sent = self
            .http
            .post(format!("{}{path}", self.upstream))
            .bearer_auth(&self.token)
            .header(wavegate_protocols::ENV_HEADER, &self.environment)
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
        let compiled = self.sdk.config();
        if let Some(c) = self.config.load_full()
            && Arc::ptr_eq(&c.compiled, &compiled)
        {
            return c;
        }
        let c = Arc::new(EdgeConfig::new(compiled, &self.environment));
        self.config.store(Some(c.clone()));
        c
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    fn evaluated(&self, _flag: &str, _reason: Reason) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
    }

    async fn unleash_registered(&self, r: Report<'_, Registration>) -> Result<(), Refusal> {
        self.forward("/api/client/register", r.raw).await
    }

    async fn unleash_metrics(&self, r: Report<'_, MetricsReport>) -> Result<(), Refusal> {
        self.forward("/api/client/metrics", r.raw).await
    }
}

/// One configuration of the SDK, as the protocols read it.
struct EdgeConfig {
    compiled: Arc<Compiled>,
    environments: [String; 1],
    time_dependence: TimeDependence,
    unleash: OnceLock<Arc<FeaturesDoc>>,
}

impl EdgeConfig {
    fn new(compiled: Arc<Compiled>, environment: &str) -> EdgeConfig {
        let time_dependence = compiled
            .flags
            .values()
            .fold(TimeDependence::Never, |d, f| d.merge(f.time_dependence()));
        EdgeConfig {
            compiled,
            environments: [environment.to_owned()],
            time_dependence,
            unleash: OnceLock::new(),
        }
    }
}

impl Config for EdgeConfig {
    /// The last stream event applied: it moves with every change the edge hears of.
    fn revision(&self) -> i64 {
        self.compiled.specs.last_event_id.unwrap_or(0)
    }

    fn environments(&self) -> &[String] {
        &self.environments
    }

    fn flags(&self, env: &str) -> Option<&dyn FlagSet> {
        (env == self.environments[0]).then_some(&self.compiled.flags as &dyn FlagSet)
    }

    fn time_dependence(&self, _env: &str) -> &TimeDependence {
        &self.time_dependence
    }

    fn unleash_features(&self, env: &str) -> Arc<FeaturesDoc> {
        self.unleash
            .get_or_init(|| {
                let specs = &self.compiled.specs;
                let flags: Vec<(String, FlagSpec)> = decoded(&specs.flags);
                let segments: Vec<(String, SegmentSpec)> = decoded(&specs.segments);
                Arc::new(features_document(
                    flags.iter().map(|(k, s)| (k, s)),
                    segments.iter().map(|(k, s)| (k, s)),
                    env,
                    self.revision(),
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
