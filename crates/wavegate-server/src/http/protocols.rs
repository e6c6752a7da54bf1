//! The server as a [`FlagSource`] for the protocol routers of `wavegate-protocols` (OFREP and
//! Unleash's client and frontend APIs): tokens from the store through the token cache, the
//! compiled [`Snapshot`](crate::snapshot::Snapshot), evaluation metrics, OFREP's refetch
//! stream ([`crate::http::ofrep_events`]), and Unleash metrics turned into exposures of live
//! rollouts.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::FromRef;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use wavegate_core::Reason;
use wavegate_protocols::unleash::ToggleCounts;
use wavegate_protocols::{
    Caller, Config, FlagSource, MetricsReport, Protocols, Refusal, Registration, Report,
    SourceError, TokenKind,
};
use wavegate_store::{AggregateDelta, TokenRecord};

use crate::http::auth::secret_from_headers;
use crate::state::AppState;

/// The protocol routers' slice of the state: the state itself as the source. One small
/// allocation per protocol request (the clone is a handful of `Arc`s, as axum's `State` clones
/// anyway); the state cannot hold its own source without a reference cycle.
impl FromRef<AppState> for Protocols {
    fn from_ref(state: &AppState) -> Protocols {
        Protocols(Arc::new(state.clone()))
    }
}

/// A stored token as the protocols see it.
pub fn caller(t: &TokenRecord) -> Caller {
    let kind = match t.kind {
        wavegate_store::TokenKind::Admin => TokenKind::Admin,
        wavegate_store::TokenKind::ServerSdk => TokenKind::ServerSdk,
        wavegate_store::TokenKind::ClientSdk => TokenKind::ClientSdk,
    };
    Caller { kind, environments: t.environments.clone(), principal: t.principal.clone() }
}

#[async_trait]
impl FlagSource for AppState {
    async fn caller(&self, secret: &str) -> Result<Option<Caller>, SourceError> {
        let found = self.tokens.lookup(self, secret).await.map_err(SourceError::new)?;
        Ok(found.as_ref().map(caller))
    }

    fn config(&self) -> Arc<dyn Config> {
        self.snapshot.load_full()
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    fn evaluated(&self, flag: &str, reason: Reason) {
        self.metrics.evaluation(flag, reason.as_str());
    }

    async fn ofrep_event_stream(&self, headers: &HeaderMap, env: &str) -> Option<Value> {
        // The ticket is keyed by the stored token; the lookup is the cached one just made.
        let token = self.tokens.lookup(self, secret_from_headers(headers)?).await.ok()??;
        crate::http::ofrep_events::advertise(self, headers, &token, env)
    }

    async fn unleash_registered(&self, r: Report<'_, Registration>) -> Result<(), Refusal> {
        tracing::info!(
            app = %r.body.app_name,
            instance = r.body.instance_id.as_deref().unwrap_or("-"),
            sdk = r.body.sdk_version.as_deref().unwrap_or("-"),
            interval = ?r.body.interval,
            env = %r.environment,
            principal = %r.caller.principal,
            "Unleash SDK registered"
        );
        Ok(())
    }

    async fn unleash_metrics(&self, r: Report<'_, MetricsReport>) -> Result<(), Refusal> {
        let deltas = arm_deltas(self, r.environment, &r.body.bucket.toggles);
        if !deltas.is_empty()
            && let Err(e) = self.store.add_aggregates(&deltas, &[], &[], self.clock.now()).await
        {
            tracing::error!(error = %e, "could not record Unleash metrics");
            return Err(Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "could not record metrics; retry".into(),
            });
        }
        Ok(())
    }
}

/// Arm counts a metrics report adds to the live rollouts of `env`: for a boolean flag, `yes`
/// counts for the variant serving `true` and `no` for the one serving `false`; otherwise the
/// variant counts. Unleash reports carry no contexts, so a flag's whole count goes to its
/// rollout's arms (contexts served by other rules of the flag included).
fn arm_deltas(
    state: &AppState,
    env: &str,
    toggles: &BTreeMap<String, ToggleCounts>,
) -> Vec<AggregateDelta> {
    let snap = state.snapshot.load();
    let live = state.live.load();
    let mut out = Vec::new();
    for (name, counts) in toggles {
        let Some(ro) = live.get(&(env.to_owned(), name.clone())) else { continue };
        let Some(flag) = snap.flag(env, name) else { continue };
        let count_of = |variant: &str| -> u64 {
            let Some(v) = flag.variants().iter().find(|v| v.name == variant) else { return 0 };
            match &v.value {
                Value::Bool(true) => counts.yes,
                Value::Bool(false) => counts.no,
                _ => counts.variants.get(variant).copied().unwrap_or(0),
            }
        };
        for (arm, variant) in [("treatment", &ro.new_variant), ("control", &ro.control_variant)] {
            let n = count_of(variant) as f64;
            if n > 0.0 {
                out.push(AggregateDelta {
                    rollout: ro.id.clone(),
                    wave: ro.wave,
                    arm: arm.into(),
                    metric: "exposure".into(),
                    n,
                    sum: n,
                    sumsq: n,
                });
            }
        }
    }
    out
}
