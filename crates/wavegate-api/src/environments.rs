//! `GET|POST /api/v1/environments`: the promotion path.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use wavegate_core::access::Environment;

/// `POST /api/v1/environments`: adds an environment at the end of the promotion order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    /// Its name (a key: letters, digits, `-`, `_`, `.`).
    pub name: String,
}
