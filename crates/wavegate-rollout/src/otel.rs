//! A plan's `otel:` section: how OpenTelemetry spans (`POST /v1/traces`) feed the rollout's
//! arms when the application is instrumented with OpenFeature's tracing hook instead of
//! posting events. Every section is optional; without one, spans that carry an evaluation event
//! for the rollout's flag count with their own status and duration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The current OpenFeature evaluation event (`feature_flag.key`,
/// `feature_flag.result.variant`, `feature_flag.context.id`).
pub const EVALUATION_EVENT: &str = "feature_flag.evaluation";
/// The older evaluation event (`feature_flag.key`, `feature_flag.variant`).
pub const OLD_EVALUATION_EVENT: &str = "feature_flag";
/// The flag's key.
pub const KEY: &str = "feature_flag.key";
/// The variant served (current conventions).
pub const VARIANT: &str = "feature_flag.result.variant";
/// The variant served (older conventions).
pub const OLD_VARIANT: &str = "feature_flag.variant";
/// Who was evaluated (the targeting key).
pub const CONTEXT_ID: &str = "feature_flag.context.id";
/// The flag version that answered, when the provider reports it.
pub const VERSION: &str = "feature_flag.version";

/// Most outcome metrics one plan may read from spans.
pub const MAX_METRICS: usize = 16;

/// The `otel:` section of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelSpec {
    /// The span or resource attribute naming the user when an evaluation event has no
    /// `feature_flag.context.id` (e.g. `enduser.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_attribute: Option<String>,
    /// Only spans of these services (resource `service.name`) count as outcomes; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Only spans with these names count as outcomes; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub span_names: Vec<String>,
    /// What a span without an evaluation event counts for.
    #[serde(default)]
    pub inherit: Inherit,
    /// Further outcome metrics: metric name → the span attribute holding its number, or
    /// `event:<name>`, counting the span's events of that name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, String>,
}

/// What a span without an evaluation event counts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inherit {
    /// Nothing: only spans carrying an evaluation count.
    #[default]
    None,
    /// The evaluation of its trace's root span, when the root arrives in the same export
    /// (an OpenTelemetry Collector's `groupbytrace` processor keeps traces together).
    Root,
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSource<'a> {
    /// A numeric span attribute.
    Attribute(&'a str),
    /// How many events of this name the span has.
    Events(&'a str),
}

/// Reads a `metrics` value.
pub fn metric_source(text: &str) -> MetricSource<'_> {
    match text.strip_prefix("event:") {
        Some(name) => MetricSource::Events(name),
        None => MetricSource::Attribute(text),
    }
}

/// Checks the section: names non-empty and short, no reserved metric names, at most
/// [`MAX_METRICS`] metrics.
pub fn validate(spec: &OtelSpec) -> Result<(), String> {
    let short = |s: &str| !s.is_empty() && s.len() <= 256;
    if spec.context_attribute.as_deref().is_some_and(|a| !short(a)) {
        return Err("otel.context_attribute must be 1 to 256 characters".into());
    }
    if let Some(s) = spec.services.iter().chain(&spec.span_names).find(|s| !short(s)) {
        return Err(format!("otel: service and span names are 1 to 256 characters, got {s:?}"));
    }
    if spec.metrics.len() > MAX_METRICS {
        return Err(format!("otel.metrics holds at most {MAX_METRICS} metrics"));
    }
    for (name, source) in &spec.metrics {
        if !short(name) || name.len() > 128 || crate::arms::is_reserved_metric(name) {
            return Err(format!(
                "otel.metrics: metric name {name:?} is empty, too long or reserved"
            ));
        }
        let target = match metric_source(source) {
            MetricSource::Attribute(a) | MetricSource::Events(a) => a,
        };
        if !short(target) {
            return Err(format!("otel.metrics.{name}: name a span attribute or event:<name>"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse_and_validate() {
        let spec: OtelSpec = serde_json::from_value(serde_json::json!({
            "context_attribute": "enduser.id", "services": ["shop"], "inherit": "root",
            "metrics": {"order_total": "order.total", "retries": "event:retry"}
        }))
        .unwrap();
        assert_eq!(spec.inherit, Inherit::Root);
        assert_eq!(metric_source(&spec.metrics["retries"]), MetricSource::Events("retry"));
        assert_eq!(
            metric_source(&spec.metrics["order_total"]),
            MetricSource::Attribute("order.total")
        );
        assert!(validate(&spec).is_ok());
        let reserved = OtelSpec {
            metrics: [("error".to_owned(), "x".to_owned())].into(),
            ..OtelSpec::default()
        };
        assert!(validate(&reserved).unwrap_err().contains("reserved"));
        let empty = OtelSpec { services: vec![String::new()], ..OtelSpec::default() };
        assert!(validate(&empty).is_err());
        assert!(
            serde_json::from_value::<OtelSpec>(serde_json::json!({"inherit": "parent"})).is_err()
        );
        assert!(serde_json::from_value::<OtelSpec>(serde_json::json!({"extra": 1})).is_err());
    }
}
