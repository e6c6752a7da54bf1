//! Prometheus as a signal source: PromQL instant queries over the HTTP API, templated with the
//! rollout's facts. Errors and empty results become inconclusive readings, never a pass.

use std::time::Duration;

use serde_json::Value;
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::{Comparison, GuardrailSpec};
use wavegate_rollout::stats::Reading;

/// Per-query timeout.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

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
pub async fn instant(
    http: &reqwest::Client,
    base: &str,
    query: &str,
) -> Result<Option<f64>, String> {
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    // What readings, verdicts and logs show: any server-sdk token reads verdicts, and a
    // `--prometheus-url` may carry `user:password@`.
    let shown = wavegate_core::text::redact_url(&url);
    let full = reqwest::Url::parse_with_params(&url, &[("query", query)])
        .map_err(|e| format!("invalid Prometheus URL {shown:?}: {e}"))?;
    let resp = http
        .get(full)
        .timeout(QUERY_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("request to {shown} failed: {}", crate::outbound::failure(&e)))?;
    let status = resp.status();
    let body: Value =
        resp.json().await.map_err(|e| format!("{status}: response is not JSON: {e}"))?;
    if body["status"] != "success" {
        return Err(format!(
            "{status}: {} {}",
            body["errorType"].as_str().unwrap_or(""),
            body["error"].as_str().unwrap_or("")
        ));
    }
    let data = &body["data"];
    let value = |v: &Value| -> Result<f64, String> {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| format!("unexpected sample {v}"))
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
        other => Err(format!("unsupported result type {other:?}; use an instant vector or scalar")),
    }
}

/// Reads a Prometheus guardrail for this tick.
pub async fn read(
    http: &reqwest::Client,
    default_url: Option<&str>,
    r: &Rollout,
    g: &GuardrailSpec,
) -> Reading {
    let mut reading = Reading::default();
    let Some(base) = g.prometheus_url.as_deref().or(default_url) else {
        reading.error = Some(
            "no Prometheus URL: set the guardrail's prometheus_url or serve --prometheus-url"
                .into(),
        );
        return reading;
    };
    let Some(q) = &g.query else {
        reading.error = Some("no query".into());
        return reading;
    };
    let tq = template(q, r, &r.plan.new_variant);
    reading.queries.push(tq.clone());
    match instant(http, base, &tq).await {
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
        match instant(http, base, &cq).await {
            Ok(v) => reading.control = v,
            Err(e) => reading.error = Some(e),
        }
    }
    reading
}
