//! What each token can see: the one place that decides how much of the configuration a token's
//! kind and environments reveal. The handlers and the stream ask here; `docs/security.md`
//! ("What each token can see and do") states the same rules for people.
//!
//! - **Flags**: an environment-scoped token reads only its environments' part of a flag; what
//!   every environment shares (variants, default, description, prerequisites) is readable by
//!   every token that reads flags.
//! - **Segment members** (`keys`, user ids): admin and server-sdk tokens of any scope read the
//!   members of every segment that a live flag uses in one of their environments (an SDK or
//!   relay that evaluates locally needs them, and `/api/client/features` exports exactly those
//!   as `IN` constraints); the members of other segments are withheld from environment-scoped
//!   tokens (`keys_redacted: true`). client-sdk tokens read no configuration at all.
//!
//! **Invariant:** a token scoped to every environment (`*`) sees everything its kind reads;
//! every rule here narrows only environment-scoped tokens.

use std::collections::BTreeSet;

use serde_json::Value;
use wavegate_store::{Kind, Store, StoreResult, TokenKind, TokenRecord};

/// The segments whose rules a flag spec names in the environments `allows` admits.
pub fn flag_segments<'a>(
    spec: &'a Value,
    allows: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = &'a str> + 'a {
    spec.get("environments")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|envs| envs.iter())
        .filter(move |(env, _)| allows(env))
        .flat_map(|(_, e)| e.get("rules").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|rule| rule.get("segment").and_then(Value::as_str))
}

/// The environments in which one of `flags` (live flag specs) uses `segment`.
pub fn environments_using<'a>(
    flags: impl IntoIterator<Item = &'a Value>,
    segment: &str,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for spec in flags {
        let Some(envs) = spec.get("environments").and_then(Value::as_object) else { continue };
        for (env, e) in envs {
            let rules = e.get("rules").and_then(Value::as_array).into_iter().flatten();
            if rules.clone().any(|r| r.get("segment").and_then(Value::as_str) == Some(segment)) {
                out.insert(env.clone());
            }
        }
    }
    out
}

/// Which segments' members a token may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// Every segment's (an admin or server-sdk token for every environment).
    All,
    /// Those of these segments: the ones live flags use in the token's environments.
    Of(BTreeSet<String>),
}

impl Members {
    /// What `p` may read, given the live flags' specs.
    pub fn from_flags<'a>(p: &TokenRecord, flags: impl IntoIterator<Item = &'a Value>) -> Members {
        if p.kind == TokenKind::ClientSdk {
            return Members::Of(BTreeSet::new());
        }
        if p.all_envs() {
            return Members::All;
        }
        let used = flags
            .into_iter()
            .flat_map(|spec| flag_segments(spec, |e| p.allows_env(e)))
            .map(str::to_owned)
            .collect();
        Members::Of(used)
    }

    /// What `p` may read, from the live flags in the store.
    pub async fn of(store: &dyn Store, p: &TokenRecord) -> StoreResult<Members> {
        if p.all_envs() && p.kind != TokenKind::ClientSdk {
            return Ok(Members::All);
        }
        let flags = store.list(Kind::Flag, false).await?;
        Ok(Members::from_flags(p, flags.iter().map(|h| &h.spec)))
    }

    /// Whether the members of `segment` may be read.
    pub fn allows(&self, segment: &str) -> bool {
        match self {
            Members::All => true,
            Members::Of(used) => used.contains(segment),
        }
    }
}

/// A flag as `p` may read it: an environment-scoped token sees only its environments.
pub fn redact_flag(p: &TokenRecord, mut spec: Value) -> Value {
    if !p.all_envs()
        && let Some(envs) = spec.get_mut("environments").and_then(Value::as_object_mut)
    {
        envs.retain(|name, _| p.allows_env(name));
    }
    spec
}

/// Segment `key` as a token that may read `members` sees it: its `keys` become
/// `keys_redacted: true` unless it may read them.
pub fn redact_segment(members: &Members, key: &str, mut spec: Value) -> Value {
    if !members.allows(key)
        && let Some(o) = spec.as_object_mut().filter(|o| o.contains_key("keys"))
    {
        o.remove("keys");
        o.insert("keys_redacted".into(), Value::Bool(true));
    }
    spec
}

/// A flag or segment (`kind`) as `p` may read it.
pub fn redact(p: &TokenRecord, members: &Members, kind: Kind, key: &str, spec: Value) -> Value {
    match kind {
        Kind::Flag => redact_flag(p, spec),
        Kind::Segment => redact_segment(members, key, spec),
        Kind::Plan | Kind::Scorecard | Kind::Setting => spec,
    }
}
