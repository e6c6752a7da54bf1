//! Unleash's client API format (`GET /api/client/features`), and the translations between it and
//! wavegate's flags: [`export`] (what Unleash SDKs are served) and [`import`] (migrating from
//! Unleash, and running Unleash's client-specification fixtures through wavegate's evaluation).
//!
//! **Semantics bridged.** Unleash turns a feature on when *any* strategy matches, and picks the
//! variant of the first matching strategy; wavegate serves the first matching rule. The export
//! keeps wavegate's answers exactly where Unleash can express them (see [`export`]) and says so
//! in [`export::Exported::approximate`] where it cannot.

pub mod export;
pub mod import;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of `GET /api/client/features`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientFeatures {
    /// Format version (2).
    #[serde(default)]
    pub version: u32,
    /// The features.
    pub features: Vec<ClientFeature>,
    /// Segments the strategies refer to by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<UnleashSegment>,
    /// The query this answers (environment…), informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<serde_json::Value>,
    /// Revision metadata, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// One feature toggle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFeature {
    /// Its name (wavegate's flag key).
    pub name: String,
    /// `release`, `experiment`…
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The environment's on/off switch.
    pub enabled: bool,
    /// Marked stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
    /// Whether SDKs emit impression events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impression_data: Option<bool>,
    /// Project name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Activation strategies: the feature is on when any holds.
    #[serde(default)]
    pub strategies: Vec<Strategy>,
    /// Feature-level variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<UnleashVariant>,
    /// Parent features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// An activation strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// `default`, `flexibleRollout`, `userWithId`…
    pub name: String,
    /// Strategy parameters (strings in Unleash's own output; numbers tolerated on input).
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Constraints that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<UnleashConstraint>,
    /// Segment ids whose constraints must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<i64>,
    /// Variants served when this strategy is the first that holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<UnleashVariant>,
}

impl Strategy {
    /// A parameter as text (numbers written as numbers are accepted).
    pub fn parameter(&self, name: &str) -> Option<String> {
        match self.parameters.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A constraint on one context field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnleashConstraint {
    /// `userId`, `sessionId`, `currentTime`, or a custom property.
    pub context_name: String,
    /// `IN`, `NOT_IN`, `STR_CONTAINS`, `NUM_EQ`, `SEMVER_GT`, `DATE_AFTER`, `REGEX`…
    pub operator: String,
    /// Operands of list operators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Operand of single-value operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Compare strings without regard to case.
    #[serde(default)]
    pub case_insensitive: bool,
    /// Invert the result.
    #[serde(default)]
    pub inverted: bool,
}

/// A variant with its weight (out of the strategy's or feature's total, usually 1000).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnleashVariant {
    /// Its name.
    pub name: String,
    /// Its weight.
    #[serde(default)]
    pub weight: u32,
    /// `variable` or `fix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    /// What variant selection hashes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Context values that select this variant outright.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<serde_json::Value>,
}

/// A variant's payload: `string`, `number` or `json` (the value as JSON text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// `string`, `number`, `json` or `csv`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value, as text.
    pub value: String,
}

/// A parent feature this one depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// The parent's name.
    pub feature: String,
    /// The parent must be on (`true`, the default) or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The parent must serve one of these variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<String>>,
}

/// A segment: constraints shared by strategies, referred to by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnleashSegment {
    /// Its id.
    pub id: i64,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Constraints that must all hold.
    #[serde(default)]
    pub constraints: Vec<UnleashConstraint>,
}

/// wavegate's targeting key is Unleash's `userId`.
pub(crate) fn unleash_field(attribute: &str) -> &str {
    if attribute == crate::context::TARGETING_KEY { "userId" } else { attribute }
}

/// Unleash's `userId` is wavegate's targeting key.
pub(crate) fn wavegate_attribute(field: &str) -> &str {
    if field == "userId" { crate::context::TARGETING_KEY } else { field }
}

/// An Unleash context (as SDKs and the client-specification fixtures write it) as a wavegate
/// context: `userId` becomes the targeting key, the standard fields and `properties` become
/// attributes.
pub fn context_from_unleash(
    value: &serde_json::Value,
) -> Result<crate::Context, crate::context::ContextError> {
    let mut flat = serde_json::Map::new();
    if let Some(o) = value.as_object() {
        for (k, v) in o {
            match k.as_str() {
                "properties" => {
                    if let Some(props) = v.as_object() {
                        for (pk, pv) in props {
                            flat.insert(wavegate_attribute(pk).to_owned(), pv.clone());
                        }
                    }
                }
                "userId" => {
                    let key = match v {
                        serde_json::Value::String(s) => serde_json::Value::String(s.clone()),
                        serde_json::Value::Number(n) => serde_json::Value::String(n.to_string()),
                        _ => continue,
                    };
                    flat.insert(crate::context::TARGETING_KEY.to_owned(), key);
                }
                _ if v.is_null() => {}
                _ => {
                    flat.insert(k.clone(), v.clone());
                }
            }
        }
    }
    crate::Context::from_json(&serde_json::Value::Object(flat))
}
