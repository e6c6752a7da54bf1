//! `/api/v1/tokens`: API tokens (their secrets are shown once, at creation).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use wavegate_core::access::TokenKind;

/// A role held in some environments: `viewer` (reads), `editor` (flags, segments, plans),
/// `releaser` (start, schedule, pause, resume, roll back, drills), `approver` (approve or reject
/// promotions, sign and waive scorecard items) or `admin` (everything).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrant {
    /// `viewer`, `editor`, `releaser`, `approver` or `admin`.
    pub role: String,
    /// Where it is held (`*`: all). In a request, empty or absent: every environment of the
    /// token.
    #[serde(default)]
    pub environments: Vec<String>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `admin`, `server-sdk` or `client-sdk` (sent as given; the server names the kinds it
    /// knows when it refuses one).
    pub kind: String,
    /// Environments it may act in, or `["*"]` for all.
    pub environments: Vec<String>,
    /// The principal it acts as (default: the creator's plus the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Grant user administration: the new admin token may issue tokens for other principals
    /// and grant this in turn. Only a token that holds it may grant it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_admin: bool,
    /// A server-sdk token that evaluates only: it reads and evaluates flags but may not post
    /// events or Unleash metrics (which feed rollouts' guardrails).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evaluate_only: bool,
    /// When it stops working (RFC 3339, in the future, at most 5 years away); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// An admin token's roles; absent: the roles the creator holds in the token's
    /// environments. Nobody grants a role they do not hold where they grant it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<RoleGrant>>,
}

/// A token as listed (`GET /api/v1/tokens`): never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    /// Its id (`tok_…`).
    pub id: String,
    /// What it may do.
    pub kind: TokenKind,
    /// Environments it may act in (`*`: all).
    pub environments: Vec<String>,
    /// Who it acts as.
    pub principal: String,
    /// When it was created (RFC 3339 with milliseconds).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// When it was revoked, if it was (RFC 3339 with milliseconds).
    #[schema(required = true)]
    pub revoked_at: Option<String>,
    /// Whether it may issue tokens for other principals (user administration).
    #[serde(default)]
    pub user_admin: bool,
    /// Whether it evaluates only (may not post events or metrics).
    #[serde(default)]
    pub evaluate_only: bool,
    /// When it stops working (RFC 3339 with milliseconds); `null`: never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// An admin token's roles, each with its environments (empty for SDK tokens).
    #[serde(default)]
    pub roles: Vec<RoleGrant>,
}

/// The answer to `POST /api/v1/tokens`: the token and, this once, its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token as it will be listed.
    #[serde(flatten)]
    pub record: Token,
    /// The secret to send as `Authorization: Bearer …` (not stored; shown only now).
    pub token: String,
}

/// `GET /api/v1/whoami`: who a token belongs to and what it may do (the dashboard signs in
/// with it and shows its buttons accordingly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Whoami {
    /// Who it acts as.
    pub principal: String,
    /// What it may do.
    pub kind: TokenKind,
    /// Environments it may act in (`*`: all).
    pub environments: Vec<String>,
    /// The token's id.
    pub token_id: String,
    /// Whether it may command rollouts somewhere (an admin token holding the releaser,
    /// approver or admin role).
    pub can_command: bool,
    /// Its roles, each with its environments (empty for SDK tokens).
    #[serde(default)]
    pub roles: Vec<RoleGrant>,
    /// A signed-in person's groups at the identity provider (a plan's approvers may name one
    /// as `group:<name>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Whether this is a sign-in through the identity provider (a session, `ses_…`) rather
    /// than an API token.
    #[serde(default)]
    pub signed_in: bool,
    /// For a dashboard signed in with its session cookie: the token to send as
    /// `X-CSRF-Token` with every request that changes something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
    /// When it stops working (RFC 3339 with milliseconds); `null`: never. A relay that caches
    /// who a token is stops honouring it then.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// The answer to `DELETE /api/v1/tokens/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    /// The token's id.
    pub id: String,
    /// Always true.
    pub revoked: bool,
}
