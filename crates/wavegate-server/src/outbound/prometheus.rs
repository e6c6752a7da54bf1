//! Prometheus as a signal source: PromQL instant queries over the HTTP API, templated with the
//! rollout's facts. Errors and empty results become inconclusive readings, never a pass.
//!
//! `serve --prometheus-url` is the operator's and is queried with the plain client; a
//! guardrail's own `prometheus_url` came with a plan, so it goes through the outbound policy
//! ([`crate::outbound::Guard`]). Whatever a Prometheus says beyond its numbers (an error, an
//! odd sample) is quoted ([`crate::outbound::reply`]) in the reading's error.

use std::time::Duration;

use serde_json::Value;
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::{Comparison, GuardrailSpec};
use wavegate_rollout::stats::Reading;

use crate::outbound::reply;
use crate::state::Outbound;

/// Per-query timeout.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an answer read, in bytes (an instant query answers one series).
pub const READ_BYTES: usize = 1024 * 1024;

/// Which client a query goes through.
#[derive(Clone, Copy)]
pub enum Via<'a> {
    /// The operator's own URL (`serve --prometheus-url`).
    Trusted(&'a reqwest::Client),
    /// A URL that came with a plan.
    Guarded(&'a crate::outbound::Guard),
}

/// Fills a query template with the rollout's facts.
pub fn template(q: &str, r: &Rollout, variant: &str) -> String {
    q.replace("{{variant}}", variant)
        .replace("{{control_variant}}", &r.plan.control_variant)
        .replace("{{new_variant}}", &r.plan.new_variant)
        .replace("{{wave}}", &(r.wave + 1).to_string())
        .replace("{{environment}}", &r.plan.environment)
        .replace("{{flag}}", &r.plan.flag)
        .replace("{{rollout}}", &r.id)
}

/// Runs one instant query; `Ok(None)` for an empty result.
pub async fn instant(via: Via<'_>, base: &str, query: &str) -> Result<Option<f64>, String> {
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    // What readings, verdicts and logs show: any server-sdk token reads verdicts, and a
    // `--prometheus-url` may carry `user:password@`.
    let shown = wavegate_core::text::redact_url(&url);
    let full = reqwest::Url::parse_with_params(&url, &[("query", query)])
        .map_err(|e| format!("invalid Prometheus URL {shown:?}: {e}"))?;
    let request = match via {
        Via::Trusted(http) => http.get(full),
        Via::Guarded(guard) => guard
            .request(reqwest::Method::GET, full.as_str())
            .map_err(|e| format!("request to {shown} not sent: {e}"))?,
    };
    let resp = request
        .timeout(QUERY_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("request to {shown} failed: {}", crate::outbound::failure(&e)))?;
    let status = resp.status();
    let (text, _) = crate::outbound::read_capped(resp, READ_BYTES).await;
    let body: Value = serde_json::from_str(&text)
        .map_err(|_| format!("{status}: the answer is not JSON: {}", reply::quote(&text)))?;
    if body["status"] != "success" {
        let said = format!(
            "{} {}",
            body["errorType"].as_str().unwrap_or(""),
            body["error"].as_str().unwrap_or("")
        );
        return Err(format!("{status}: {}", reply::quote(&said)));
    }
    let data = &body["data"];
    let value = |v: &Value| -> Result<f64, String> {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| format!("unexpected sample {}", reply::quote_value(v)))
    };
    match data["resultType"].as_str() {
        Some("scalar") => value(&data["result"]).map(Some),
        Some("vector") => {
            let series = data["result"].as_array().cloned().unwrap_or_default();
            match series.as_slice() {
                [] => Ok(None),
                [one] => value(&one["value"]).map(Some),
                many => Err(format!(
                    "the query returned {} series; aggregate it to one (e.g. sum(...))",
                    many.len()
                )),
            }
        }
        Some(other) => Err(format!(
            "unsupported result type {}; use an instant vector or scalar",
            reply::quote(other)
        )),
        None => Err("the answer has no result type; use an instant vector or scalar".into()),
    }
}

/// Reads a Prometheus guardrail for this tick: at its own `prometheus_url` through the
/// outbound policy, else at the operator's `--prometheus-url`.
pub async fn read(outbound: &Outbound, r: &Rollout, g: &GuardrailSpec) -> Reading {
    let mut reading = Reading::default();
    let (base, via) = match (&g.prometheus_url, &outbound.prometheus_url) {
        (Some(own), _) => (own.as_str(), Via::Guarded(&outbound.guard)),
        (None, Some(default)) => (default.as_str(), Via::Trusted(&outbound.http)),
        (None, None) => {
            reading.error = Some(
                "no Prometheus URL: set the guardrail's prometheus_url or serve --prometheus-url"
                    .into(),
            );
            return reading;
        }
    };
    let Some(q) = &g.query else {
        reading.error = Some("no query".into());
        return reading;
    };
    let tq = template(q, r, &r.plan.new_variant);
    reading.queries.push(tq.clone());
    match instant(via, base, &tq).await {
        Ok(v) => reading.treatment = v,
        Err(e) => {
            reading.error = Some(e);
            return reading;
        }
    }
    if g.comparison != Comparison::Bound {
        let cq = match &g.control_query {
            Some(c) => template(c, r, &r.plan.control_variant),
            None => template(q, r, &r.plan.control_variant),
        };
        reading.queries.push(cq.clone());
        match instant(via, base, &cq).await {
            Ok(v) => reading.control = v,
            Err(e) => reading.error = Some(e),
        }
    }
    reading
}
