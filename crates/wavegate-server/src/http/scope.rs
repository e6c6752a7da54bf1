//! What each token can see: the one place that decides how much of the configuration, the
//! audit log, the token list and the reports a token's kind and environments reveal. The
//! handlers and the stream ask here; `docs/security.md` ("What each token can see and do")
//! states the same rules for people.
//!
//! - **Flags**: an environment-scoped token reads only its environments' part of a flag; what
//!   every environment shares (variants, default, description, prerequisites) is readable by
//!   every token that reads flags.
//! - **Segment members** (`keys`, user ids): admin and server-sdk tokens of any scope read the
//!   members of every segment that a live flag uses in one of their environments (an SDK or
//!   relay that evaluates locally needs them, and `/api/client/features` exports exactly those
//!   as `IN` constraints); the members of other segments are withheld from environment-scoped
//!   tokens (`keys_redacted: true`). client-sdk tokens read no configuration at all.
//! - **Audit entries**: an environment-scoped admin sees an entry when what it is about lies
//!   within its environments ([`AuditReader`]).
//! - **Tokens**: an environment-scoped admin sees the tokens whose scope lies within its own
//!   (exactly those it may revoke).
//! - **Releases** (feedback): readable by a token that may read an environment in which the
//!   release has a plan or a rollout; writable by it too, and by any token while the release
//!   has neither.
//!
//! **Invariant:** a token scoped to every environment (`*`) sees everything its kind reads;
//! every rule here narrows only environment-scoped tokens.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use wavegate_api::audit::AuditEntry;
use wavegate_store::{Kind, Store, StoreResult, TokenKind, TokenRecord};

use crate::state::AppState;

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

    /// What `p` may read, from the live flags (as the audit record vouches for them).
    pub async fn of(state: &AppState, p: &TokenRecord) -> StoreResult<Members> {
        if p.all_envs() && p.kind != TokenKind::ClientSdk {
            return Ok(Members::All);
        }
        let flags = state.heads(Kind::Flag, false).await?;
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

/// Whether `reader` may see token `t`: every environment of `t` lies within its scope (the
/// tokens it may revoke).
pub fn token_visible(reader: &TokenRecord, t: &TokenRecord) -> bool {
    reader.all_envs() || within(reader, &t.environments)
}

/// Whether every one of `envs` is one `reader` may act in (`*` only for all-environment tokens).
fn within(reader: &TokenRecord, envs: &[String]) -> bool {
    reader.all_envs() || envs.iter().all(|e| e != "*" && reader.allows_env(e))
}

/// The environments in which release `release` (`name version`, or a bare name) has a plan
/// or a rollout.
pub async fn release_environments(
    state: &AppState,
    release: &str,
) -> StoreResult<BTreeSet<String>> {
    let names = |r: &Value| {
        let (name, version) =
            (r["name"].as_str().unwrap_or(""), r["version"].as_str().unwrap_or(""));
        name == release || format!("{name} {version}") == release
    };
    let mut out = BTreeSet::new();
    for plan in state.heads(Kind::Plan, false).await? {
        if names(&plan.spec["release"])
            && let Some(env) = plan.spec["environment"].as_str()
        {
            out.insert(env.to_owned());
        }
    }
    for row in state.store.rollouts(false).await? {
        if names(&row.doc["plan"]["release"]) {
            out.insert(row.environment);
        }
    }
    Ok(out)
}

/// Whether `p` may read what was said about a release in `environments` (its
/// [`release_environments`]): one of them is its.
pub fn release_readable(p: &TokenRecord, environments: &BTreeSet<String>) -> bool {
    p.all_envs() || environments.iter().any(|e| p.allows_env(e))
}

/// Whether `p` may say something about a release in `environments`: one of them is its, or the
/// release has no plan or rollout yet (pilot feedback may come first; it is then read only by
/// tokens for all environments until the release has a plan).
pub fn release_writable(p: &TokenRecord, environments: &BTreeSet<String>) -> bool {
    environments.is_empty() || release_readable(p, environments)
}

/// Which environments an audit entry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Concerns {
    /// Configuration every environment shares, or the server itself: every admin.
    Everyone,
    /// These environments: admins whose scope holds all of them.
    Environments(Vec<String>),
    /// Something only all-environment admins read (notification targets, what is unknown).
    AllEnvironments,
}

/// Decides which audit entries an admin may see, and how: an environment-scoped admin sees an
/// entry only when what it is about lies within its environments.
///
/// - `flag:` and `segment:` entries are about configuration every environment shares, whose
///   version history (actor, action, reason, time) these admins already read through
///   `…/versions`; they are shown, except the ones a rollout made (`details.rollout`), which
///   belong to that rollout's environment. Their `content_sha256` (a hash of the whole spec,
///   other environments and withheld members included, so a way to confirm a guess of them) is
///   withheld from environment-scoped admins.
/// - `rollout:` entries belong to the rollout's environment; `plan:` and `scorecard:` entries
///   to the plan's (the version an entry names, else the current one); a schedule's
///   (`setting:schedule.<plan>`) to the environment it was scheduled in.
/// - `token:` entries are shown when the token's scope lies within the admin's (as the token
///   list).
/// - `environment:`, the freeze (`setting:freeze`) and `controller` entries are shown to every
///   admin: the environments and the freeze are readable by every admin already.
/// - Notification targets (`notify:`) and anything else: all-environment admins only.
pub struct AuditReader<'a> {
    store: &'a dyn Store,
    reader: &'a TokenRecord,
    rollouts: HashMap<String, Option<String>>,
    /// Plan → its current environment and each version's.
    plans: HashMap<String, Option<PlanEnvironments>>,
    tokens: Option<HashMap<String, Vec<String>>>,
}

#[derive(Debug, Clone)]
struct PlanEnvironments {
    current: String,
    by_version: HashMap<i64, String>,
}

impl<'a> AuditReader<'a> {
    /// A reader for `reader`'s token over `store` (lookups are cached for its lifetime).
    pub fn new(store: &'a dyn Store, reader: &'a TokenRecord) -> AuditReader<'a> {
        AuditReader { store, reader, rollouts: HashMap::new(), plans: HashMap::new(), tokens: None }
    }

    /// The entry as the reader may see it, or `None` when it may not.
    pub async fn view(&mut self, mut e: AuditEntry) -> StoreResult<Option<AuditEntry>> {
        if self.reader.all_envs() {
            return Ok(Some(e));
        }
        if !self.visible(&e.target, &e.details).await? {
            return Ok(None);
        }
        withhold_hash(&e.target, &mut e.details);
        conceal_responses(&mut e.reason, &mut e.details);
        Ok(Some(e))
    }

    /// [`AuditReader::view`] of an entry as JSON (the stream's form).
    pub async fn view_json(&mut self, entry: &Value) -> StoreResult<Option<Value>> {
        if self.reader.all_envs() {
            return Ok(Some(entry.clone()));
        }
        let target = entry["target"].as_str().unwrap_or("");
        if !self.visible(target, &entry["details"]).await? {
            return Ok(None);
        }
        let mut entry = entry.clone();
        withhold_hash(target, &mut entry["details"]);
        crate::outbound::reply::conceal_json(&mut entry);
        Ok(Some(entry))
    }

    async fn visible(&mut self, target: &str, details: &Value) -> StoreResult<bool> {
        Ok(match self.concerns(target, details).await? {
            Concerns::Everyone => true,
            Concerns::Environments(envs) => within(self.reader, &envs),
            Concerns::AllEnvironments => false,
        })
    }

    async fn concerns(&mut self, target: &str, details: &Value) -> StoreResult<Concerns> {
        let (kind, key) = target.split_once(':').unwrap_or((target, ""));
        Ok(match kind {
            "flag" | "segment" => match details.get("rollout").and_then(Value::as_str) {
                Some(id) => self.rollout(id).await?,
                None => Concerns::Everyone,
            },
            "rollout" => self.rollout(key).await?,
            "plan" | "scorecard" => {
                let version = details
                    .get("plan_version")
                    .or_else(|| (kind == "plan").then(|| details.get("version")).flatten())
                    .and_then(Value::as_i64);
                self.plan(key, version).await?
            }
            "setting" if key == crate::service::freeze::KEY => Concerns::Everyone,
            "setting" if key == crate::service::changes::PROTECTION => Concerns::Everyone,
            "setting" if key.starts_with(crate::service::changes::PREFIX) => {
                match details.get("environments").and_then(Value::as_array) {
                    Some(envs) => Concerns::Environments(
                        envs.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                    ),
                    None => Concerns::AllEnvironments,
                }
            }
            "setting" => match key.strip_prefix(crate::service::schedules::PREFIX) {
                Some(plan) => match details.get("environment").and_then(Value::as_str) {
                    Some(env) => Concerns::Environments(vec![env.to_owned()]),
                    None => self.plan(plan, None).await?,
                },
                None => Concerns::AllEnvironments,
            },
            "token" => match details.get("environments").and_then(Value::as_array) {
                Some(envs) => Concerns::Environments(
                    envs.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                ),
                None => self.token(key).await?,
            },
            "environment" | "controller" => Concerns::Everyone,
            _ => Concerns::AllEnvironments,
        })
    }

    async fn rollout(&mut self, id: &str) -> StoreResult<Concerns> {
        if !self.rollouts.contains_key(id) {
            let env = self.store.rollout(id).await?.map(|r| r.environment);
            self.rollouts.insert(id.to_owned(), env);
        }
        Ok(match &self.rollouts[id] {
            Some(env) => Concerns::Environments(vec![env.clone()]),
            None => Concerns::AllEnvironments,
        })
    }

    async fn plan(&mut self, name: &str, version: Option<i64>) -> StoreResult<Concerns> {
        if !self.plans.contains_key(name) {
            let versions = self.store.versions(Kind::Plan, name).await?;
            let env = |spec: &Value| spec["environment"].as_str().map(str::to_owned);
            let found = versions.last().and_then(|last| env(&last.spec)).map(|current| {
                let by_version =
                    versions.iter().filter_map(|v| Some((v.version, env(&v.spec)?))).collect();
                PlanEnvironments { current, by_version }
            });
            self.plans.insert(name.to_owned(), found);
        }
        Ok(match &self.plans[name] {
            Some(p) => {
                let env = version.and_then(|v| p.by_version.get(&v)).unwrap_or(&p.current);
                Concerns::Environments(vec![env.clone()])
            }
            None => Concerns::AllEnvironments,
        })
    }

    async fn token(&mut self, id: &str) -> StoreResult<Concerns> {
        if self.tokens.is_none() {
            let all = self.store.tokens().await?;
            self.tokens = Some(all.into_iter().map(|t| (t.id, t.environments)).collect());
        }
        Ok(match self.tokens.as_ref().and_then(|t| t.get(id)) {
            Some(envs) => Concerns::Environments(envs.clone()),
            None => Concerns::AllEnvironments,
        })
    }
}

/// Withholds what outside responses said (check evidence, readings' errors) from an entry's
/// reason and details: only admins for all environments read it ([`crate::http::conceal`]).
fn conceal_responses(reason: &mut Option<String>, details: &mut Value) {
    if let Some(r) = reason.as_mut()
        && let std::borrow::Cow::Owned(c) = crate::outbound::reply::conceal(r)
    {
        *r = c;
    }
    crate::outbound::reply::conceal_json(details);
}

/// Removes the content hash from a flag or segment entry's details (see [`AuditReader`]).
fn withhold_hash(target: &str, details: &mut Value) {
    if (target.starts_with("flag:") || target.starts_with("segment:"))
        && let Some(o) = details.as_object_mut()
    {
        o.remove("content_sha256");
    }
}
