//! The flags-as-code format: what `wavegate flag apply -f FILE` reads, what the admin API takes,
//! and what every stored version holds.
//!
//! These are serialisation types (the format is a contract, see DESIGN.md "Contracts that scripts
//! rely on"); [`crate::flag::Flag`] is the compiled, validated form that evaluation uses.
//! **Invariant:** maps keep the order written (split order is meaningful), and unknown fields are
//! rejected so a typo never silently does nothing.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::percent::Percent;

/// A file of segments and flags (`wavegate flag apply -f FILE`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagFile {
    /// Named segments, by key.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub segments: IndexMap<String, SegmentSpec>,
    /// Flags, by key.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub flags: IndexMap<String, FlagSpec>,
}

/// One flag: its variants, defaults and per-environment state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSpec {
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Variant name → value (bool, string, number or JSON object), in the order written.
    pub variants: IndexMap<String, serde_json::Value>,
    /// Served when the flag is enabled and no rule matches.
    pub default: String,
    /// Served when the flag is disabled (kill switch); defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_variant: Option<String>,
    /// Bucketing group (Unleash's `groupId`); defaults to the flag key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Flags that must be on (or off) for this flag to be on, in every environment (Unleash's
    /// `dependencies`). A parent may not have prerequisites of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<PrerequisiteSpec>,
    /// Environment name → that environment's state. A missing environment is disabled there.
    #[serde(default)]
    pub environments: IndexMap<String, EnvironmentSpec>,
}

/// A flag this flag depends on. When it does not hold, the flag is off: it serves its
/// `disabled_variant` if set, else its `false` variant (a boolean flag), else `default`, with
/// reason `DISABLED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrerequisiteSpec {
    /// The parent flag's key.
    pub flag: String,
    /// `true` (the default): the parent must be on. `false`: it must be off.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// With `enabled: true`, the parent must also serve one of these variants (a non-boolean
    /// parent only). Empty: any variant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A flag's state in one environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// `false` is the kill switch: `disabled_variant` with reason DISABLED.
    #[serde(default)]
    pub enabled: bool,
    /// Targeting rules, tried in order; the first that matches decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

/// One targeting rule: conditions, then one variant or a split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Name shown in evaluation results and audit; defaults to `rule-N` (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A named segment the context must belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Constraints that must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<ConstraintSpec>,
    /// Serve this variant (exclusive with `split`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve: Option<String>,
    /// Serve variants by sticky percentage, in the order written; sums to 100%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<IndexMap<String, Percent>>,
    /// With `serve`: the rule holds only for this sticky share of the contexts its conditions
    /// match; the rest fall through to later rules (Unleash's `flexibleRollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<Percent>,
    /// What a split or percentage buckets on: `default` (targetingKey, else sessionId, else
    /// random), `targetingKey`, `random`, or any context attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    /// Bucketing group for this rule (Unleash's per-strategy `groupId`); defaults to the flag's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// A condition over one context attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintSpec {
    /// The context attribute (`targetingKey`, `currentTime`, or any attribute the SDK sends).
    pub attribute: String,
    /// The comparison.
    pub op: Operator,
    /// Operand(s); numbers and booleans are read as their text.
    #[serde(default)]
    pub values: Vec<Scalar>,
    /// Invert the result.
    #[serde(default, skip_serializing_if = "is_false")]
    pub negate: bool,
    /// Compare strings without regard to case.
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_insensitive: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A named set of contexts: explicit targeting keys and/or constraints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Constraints that must all hold (a context in `keys` matches regardless).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<ConstraintSpec>,
    /// Targeting keys that are members outright.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// Constraint operators (DESIGN.md "Pinned semantics", Operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Operator {
    In,
    NotIn,
    Eq,
    Contains,
    StartsWith,
    EndsWith,
    Lt,
    Lte,
    Gt,
    Gte,
    SemverLt,
    SemverEq,
    SemverGt,
    SemverGte,
    SemverLte,
    DateBefore,
    DateAfter,
    Regex,
    /// The attribute is an IP address within one of the values' ranges (`10.0.0.0/8`,
    /// `2001:db8::/32`; a bare address is a range of one).
    InCidr,
}

impl Operator {
    /// The name used in files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::Eq => "eq",
            Operator::Contains => "contains",
            Operator::StartsWith => "starts_with",
            Operator::EndsWith => "ends_with",
            Operator::Lt => "lt",
            Operator::Lte => "lte",
            Operator::Gt => "gt",
            Operator::Gte => "gte",
            Operator::SemverLt => "semver_lt",
            Operator::SemverEq => "semver_eq",
            Operator::SemverGt => "semver_gt",
            Operator::SemverGte => "semver_gte",
            Operator::SemverLte => "semver_lte",
            Operator::DateBefore => "date_before",
            Operator::DateAfter => "date_after",
            Operator::Regex => "regex",
            Operator::InCidr => "in_cidr",
        }
    }
}

/// A constraint operand: written as a string, number or boolean, kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scalar(pub String);

impl Scalar {
    /// The operand's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar(s.to_owned())
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
