//! The OFREP answer the CLI and the demo read (`POST /ofrep/v1/evaluate/flags/{key}`); errors
//! are [`crate::error::OfrepErrorBody`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `POST /ofrep/v1/evaluate/flags/{key}`: the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationRequest {
    /// The evaluation context (`targetingKey` and attributes).
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

/// A successful evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evaluation {
    /// The flag.
    pub key: String,
    /// The value (any JSON: boolean, string, number, object).
    pub value: Value,
    /// The variant served.
    pub variant: String,
    /// `STATIC`, `TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED`…
    pub reason: String,
    /// `rule`: the targeting rule that matched, when one did; `version`: the flag version
    /// that answered.
    pub metadata: EvaluationMetadata,
}

/// An evaluation's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationMetadata {
    /// The targeting rule that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The flag version that produced the answer (OpenFeature's `feature_flag.version`): it
    /// changes at every wave of a rollout; events that report it back count in that wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the environment for one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BulkEvaluation {
    /// One [`Evaluation`] per flag (or, for a flag that cannot be evaluated for this
    /// context, `{key, errorCode, errorDetails}`).
    #[schema(value_type = Vec<Object>)]
    pub flags: Vec<Value>,
    /// Always `{}`.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Where to hear that the answers changed (OFREP's refetch stream), when the server can say.
    #[serde(rename = "eventStreams", default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub event_streams: Option<Vec<Value>>,
}
