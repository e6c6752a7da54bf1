//! `/auth/…`: signing in through the company's OpenID Connect provider (dashboard and CLI).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::tokens::RoleGrant;

/// `GET /auth/config`: whether people sign in through an identity provider here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignInConfig {
    /// `true` when `serve --oidc-issuer` is set; otherwise tokens are the only way in.
    pub oidc: bool,
    /// The provider's issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where a browser starts signing in (`/auth/login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    /// Whether the request carried a live session cookie (the dashboard asks before reading
    /// who it is, since it cannot see its HttpOnly cookie).
    #[serde(default)]
    pub session: bool,
}

/// `POST /auth/cli/token`: the one-time code `wavegate login` received on its loopback
/// address, and the PKCE verifier whose challenge it sent when it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CliExchange {
    /// The code.
    pub code: String,
    /// The verifier (43 to 128 characters).
    pub verifier: String,
}

/// A session made for the CLI: its secret (shown once) and who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CliSession {
    /// The session's secret: send it as `Authorization: Bearer …`.
    pub token: String,
    /// Its id (`ses_…`).
    pub id: String,
    /// The person.
    pub principal: String,
    /// Their roles, from their groups.
    pub roles: Vec<RoleGrant>,
    /// When it ends (RFC 3339 with milliseconds).
    pub expires_at: String,
}

/// `POST /auth/logout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedOut {
    /// The session ended (`ses_…`).
    pub id: String,
    /// The provider's sign-out page, to end the provider's own session too, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_logout_url: Option<String>,
}
