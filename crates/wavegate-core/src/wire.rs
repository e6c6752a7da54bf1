//! Wire types that SDKs, the edge relay and the server share: the events an application
//! reports to `POST /api/v1/events`. They live here because `wavegate-sdk` depends on this
//! crate alone. The server validates them whole (`wavegate-server`'s event service); these
//! types only fix their shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Event kind: the application showed a flag's variant to a user.
pub const EXPOSURE: &str = "exposure";
/// Event kind: what happened afterwards (an error, a latency, named metrics).
pub const OUTCOME: &str = "outcome";

/// A `POST /api/v1/events` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// The events, in the order they happened.
    pub events: Vec<Event>,
}

/// One exposure or outcome, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// [`EXPOSURE`] or [`OUTCOME`] (kept as text so a wrong kind is named in the error).
    #[serde(rename = "type")]
    pub kind: String,
    /// The flag's key.
    pub flag: String,
    /// The variant the application was served.
    pub variant: String,
    /// The evaluation context it was served for (the same shape as OFREP's).
    pub context: Value,
    /// Outcome: whether the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
    /// Outcome: the request's latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Outcome: named metrics (conversion, revenue…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// The flag version that produced the variant (OFREP `metadata.version`): the event
    /// counts only in the wave that version belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// When the variant was evaluated (RFC 3339); used against the wave's start when there is
    /// no `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl Event {
    /// An exposure of `variant` of `flag` to `context`.
    pub fn exposure(flag: &str, variant: &str, context: Value) -> Event {
        Event {
            kind: EXPOSURE.into(),
            flag: flag.into(),
            variant: variant.into(),
            context,
            error: None,
            latency_ms: None,
            metrics: BTreeMap::new(),
            version: None,
            at: None,
        }
    }

    /// An outcome after `variant` of `flag` was served to `context` (fill in the fields).
    pub fn outcome(flag: &str, variant: &str, context: Value) -> Event {
        Event { kind: OUTCOME.into(), ..Event::exposure(flag, variant, context) }
    }

    /// Whether this is an exposure.
    pub fn is_exposure(&self) -> bool {
        self.kind == EXPOSURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_omit_empty_outcome_fields() {
        let e = Event::exposure("f", "on", serde_json::json!({"targetingKey": "u1"}));
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"type":"exposure","flag":"f","variant":"on","context":{"targetingKey":"u1"}}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
        let mut o = Event::outcome("f", "on", serde_json::json!({}));
        o.latency_ms = Some(12.5);
        o.metrics.insert("conversion".into(), 1.0);
        let back: Event = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert!(
            serde_json::from_str::<Event>(
                r#"{"type":"exposure","flag":"f","variant":"on","context":{},"extra":1}"#
            )
            .is_err()
        );
    }
}
