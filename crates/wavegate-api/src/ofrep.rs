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
    #[schema(value_type = Object)]
    pub value: Value,
    /// The variant served.
    pub variant: String,
    /// `STATIC`, `TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED`…
    pub reason: String,
    /// `rule`: the targeting rule that matched, when one did.
    pub metadata: EvaluationMetadata,
}

/// An evaluation's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EvaluationMetadata {
    /// The targeting rule that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}
