//! The server as a [`FlagSource`] for the protocol routers of `wavegate-protocols` (OFREP and
//! Unleash's client and frontend APIs): tokens from the store through the token cache, the
//! compiled [`Snapshot`](crate::snapshot::Snapshot), evaluation metrics, OFREP's refetch
//! stream ([`crate::http::ofrep_events`]), and Unleash metrics turned into exposures of live
//! rollouts.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use wavegate_core::Reason;
use wavegate_protocols::{
    Caller, Config, FlagSource, MetricsReport, Refusal, Registration, Report, SourceError,
};
use wavegate_store::TokenRecord;

use crate::state::AppState;

/// A stored token as the protocols see it.
pub fn caller(t: &TokenRecord) -> Caller {
    Caller {
        kind: t.kind,
        environments: t.environments.clone(),
        principal: t.principal.clone(),
        token: t.id.clone(),
        // A person's token reports only where it holds the admin role (reports feed the
        // guardrails); an SDK token unless it evaluates only.
        reports: !t.evaluate_only
            && (t.kind != wavegate_store::TokenKind::Admin
                || t.environments.iter().all(|e| t.holds(wavegate_store::Role::Admin, e))),
    }
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

    async fn ofrep_event_stream(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        env: &str,
    ) -> Option<Value> {
        crate::http::ofrep_events::advertise(self, headers, caller, env).await
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
        if !r.caller.reports {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: "this token evaluates only and may not post metrics".into(),
            });
        }
        let toggles = &r.body.bucket.toggles;
        if let Err(e) = crate::service::events::ingest_unleash_counts(
            self,
            r.environment,
            &r.caller.token,
            toggles,
        )
        .await
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
