//! `GET|POST /api/v1/environments`: the promotion path.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One environment and its place in the promotion order
/// (`GET /api/v1/environments` lists them; `POST` answers the new one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// Its place in the promotion order (1 first).
    pub position: i64,
}

/// `POST /api/v1/environments`: adds an environment at the end of the promotion order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    /// Its name (a key: letters, digits, `-`, `_`, `.`).
    pub name: String,
}
