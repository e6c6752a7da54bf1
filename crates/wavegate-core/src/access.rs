//! Who may do what: the kinds of token, the roles a person holds, and where they hold them.
//! One definition for the store (which keeps them), the protocols (which check a caller's kind)
//! and the API (which names them).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One environment and its place in the promotion order; tokens and grants are scoped to
/// environments by name (`GET /api/v1/environments` lists them; `POST` answers the new one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// Its place in the promotion order (1 first).
    pub position: i64,
}

/// Token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum TokenKind {
    /// Everything the admin API offers, in its environments (as its roles allow).
    Admin,
    /// Read flags (rules included) and the stream, post events and Unleash reports.
    ServerSdk,
    /// Evaluate only.
    ClientSdk,
}

impl TokenKind {
    /// Every kind.
    pub const ALL: [TokenKind; 3] = [TokenKind::Admin, TokenKind::ServerSdk, TokenKind::ClientSdk];

    /// `admin`, `server-sdk`, `client-sdk`: the names the API, the CLI and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::ServerSdk => "server-sdk",
            TokenKind::ClientSdk => "client-sdk",
        }
    }

    /// Parses the names [`TokenKind::as_str`] gives.
    pub fn parse(s: &str) -> Option<TokenKind> {
        TokenKind::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

/// What a person may do with an admin-kind token (or a signed-in session), in the
/// environments of a [`Grant`]. Roles are not ranked: each opens its own operations, except
/// that every role reads (viewer) and `admin` opens everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads: flags, segments, plans, rollouts, reports, the audit log.
    Viewer,
    /// Changes flags, segments and plans.
    Editor,
    /// Starts, schedules, pauses, resumes and rolls back rollouts; records drills.
    Releaser,
    /// Approves or rejects promotions; signs and waives scorecard items.
    Approver,
    /// Everything: tokens, environments, the freeze, notification targets, backups, and every
    /// other role's operations.
    Admin,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 5] =
        [Role::Viewer, Role::Editor, Role::Releaser, Role::Approver, Role::Admin];

    /// `viewer`, `editor`, `releaser`, `approver`, `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Releaser => "releaser",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Parses the names [`Role::as_str`] prints.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether holding `self` opens what `wanted` opens.
    pub fn opens(self, wanted: Role) -> bool {
        self == wanted || self == Role::Admin || wanted == Role::Viewer
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let name = String::deserialize(d)?;
        Role::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown role {name:?}")))
    }
}

/// A role held in some environments (`["*"]`: all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// Where it is held.
    pub environments: Vec<String>,
}

impl Grant {
    /// Whether the grant covers `env`.
    pub fn covers(&self, env: &str) -> bool {
        self.environments.iter().any(|e| e == "*" || e == env)
    }
}

/// A token as the store keeps it (never its secret), with what it may do.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// Public id.
    pub id: String,
    /// Hex SHA-256 of the secret (keys stream tickets; never shown).
    pub hash: String,
    /// Its kind.
    pub kind: TokenKind,
    /// Environments, `["*"]` for all.
    pub environments: Vec<String>,
    /// The principal it acts as.
    pub principal: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it may issue tokens for other principals and grant this capability (user
    /// administration; an admin token without it may only mint its own SDK tokens).
    pub user_admin: bool,
    /// A server-sdk token that evaluates only: it may not post events or Unleash metrics.
    pub evaluate_only: bool,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// An admin-kind token's roles, each within its environments (empty for the SDK kinds); an
    /// admin token minted before roles existed holds `admin` in its environments.
    pub roles: Vec<Grant>,
    /// A signed-in person's groups at the identity provider (a session's; empty otherwise): a
    /// plan's approver list may name a group (`group:cab`).
    pub groups: Vec<String>,
}

impl TokenRecord {
    /// Whether it has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Whether the token may act in `env`.
    pub fn allows_env(&self, env: &str) -> bool {
        self.environments.iter().any(|e| e == "*" || e == env)
    }

    /// Whether the token's scope is every environment.
    pub fn all_envs(&self) -> bool {
        self.environments.iter().any(|e| e == "*")
    }

    /// Whether an admin-kind token holds a role that opens `role` in `env` (`"*"`: in every
    /// environment, by a grant for all of them).
    pub fn holds(&self, role: Role, env: &str) -> bool {
        self.kind == TokenKind::Admin
            && self.roles.iter().any(|g| g.role.opens(role) && g.covers(env))
    }

    /// Whether an admin-kind token holds `admin` for every environment.
    pub fn admin_everywhere(&self) -> bool {
        self.holds(Role::Admin, "*")
    }

    /// The token narrowed to what one of `roles` opens: its environments become those where
    /// it holds such a role (`["*"]` when one grant covers all). `None` when it holds none of
    /// them anywhere, or is not an admin-kind token.
    pub fn acting_as(&self, roles: &[Role]) -> Option<TokenRecord> {
        if self.kind != TokenKind::Admin {
            return None;
        }
        let mut envs: Vec<String> = Vec::new();
        for g in self.roles.iter().filter(|g| roles.iter().any(|r| g.role.opens(*r))) {
            for e in &g.environments {
                if !envs.contains(e) {
                    envs.push(e.clone());
                }
            }
        }
        if envs.is_empty() {
            return None;
        }
        if envs.iter().any(|e| e == "*") {
            envs = vec!["*".to_owned()];
        }
        Some(TokenRecord { environments: envs, ..self.clone() })
    }
}

/// Why revoking token `id` must be refused, given every live admin-kind token (`admins`):
/// there is always one way in. The last token that holds `admin` for every environment, or the
/// last that may issue tokens for other people, may not go while no other that never expires
/// holds the same (a token that expires would close the way in by itself). `None`: it may go.
pub fn revocation_refused(admins: &[TokenRecord], id: &str) -> Option<String> {
    let lasting = |t: &TokenRecord| t.expires_at.is_none();
    let last = |holds: fn(&TokenRecord) -> bool| {
        admins.iter().any(|t| t.id == id && holds(t))
            && !admins.iter().any(|t| t.id != id && holds(t) && lasting(t))
    };
    if last(TokenRecord::admin_everywhere) {
        return Some(format!(
            "token {id:?} is the last admin token (the admin role, for all environments); \
             revoking it would leave nobody able to manage tokens, environments or \
             notification targets. Create another that does not expire first (wavegate \
             token create --kind admin --env '*' --role admin)"
        ));
    }
    if last(|t| t.user_admin) {
        return Some(format!(
            "token {id:?} is the last token that may issue tokens for other people; revoking \
             it would leave nobody able to add a person. Grant it to another admin token \
             first (wavegate token create --kind admin --principal <name> --user-admin)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_grants_keep_their_stored_form() {
        for kind in TokenKind::ALL {
            assert_eq!(TokenKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        let g = Grant { role: Role::Approver, environments: vec!["prod".into()] };
        let text = serde_json::to_string(&g).unwrap();
        assert_eq!(text, r#"{"role":"approver","environments":["prod"]}"#);
        assert_eq!(serde_json::from_str::<Grant>(&text).unwrap(), g);
        assert!(serde_json::from_str::<Grant>(r#"{"role":"root","environments":[]}"#).is_err());
        assert!(Role::Admin.opens(Role::Editor) && Role::Editor.opens(Role::Viewer));
        assert!(!Role::Editor.opens(Role::Approver));
    }

    fn token(id: &str, envs: &str, user_admin: bool, expires: bool) -> TokenRecord {
        let at = DateTime::UNIX_EPOCH;
        TokenRecord {
            id: id.into(),
            hash: String::new(),
            kind: TokenKind::Admin,
            environments: vec![envs.into()],
            principal: id.into(),
            created_at: at,
            created_by: "system".into(),
            revoked_at: None,
            user_admin,
            evaluate_only: false,
            expires_at: expires.then_some(at),
            roles: vec![Grant { role: Role::Admin, environments: vec![envs.into()] }],
            groups: Vec::new(),
        }
    }

    #[test]
    fn the_last_way_in_is_kept() {
        let boot = token("boot", "*", true, false);
        let prod = token("prod", "prod", false, false);
        let temp = token("temp", "*", true, true);
        // Alone, or beside a token that expires or covers one environment: refused.
        for others in [vec![], vec![prod.clone()], vec![temp.clone()]] {
            let admins: Vec<_> = [boot.clone()].into_iter().chain(others).collect();
            let why = revocation_refused(&admins, "boot").unwrap();
            assert!(why.contains("last admin token"), "{why}");
        }
        // Another lasting admin for everywhere, but without user administration.
        let other = token("other", "*", false, false);
        let why = revocation_refused(&[boot.clone(), other.clone()], "boot").unwrap();
        assert!(why.contains("issue tokens for other people"), "{why}");
        let both = token("both", "*", true, false);
        assert_eq!(revocation_refused(&[boot.clone(), both], "boot"), None);
        // Tokens that are not the last way in go freely.
        assert_eq!(revocation_refused(&[boot.clone(), prod, temp], "temp"), None);
        assert_eq!(revocation_refused(&[boot, other], "other"), None);
    }
}
