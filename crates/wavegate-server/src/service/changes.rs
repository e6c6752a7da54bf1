//! Change requests for protected environments, and the emergency path.
//!
//! An environment marked protected (`PUT /api/v1/environments/{name}/protection`, the setting
//! `protection`) takes no direct edit of its flags, segments or plans: every write through the
//! API that touches it is refused with the way forward. A change is proposed instead
//! ([`propose`]): its items are validated as a direct write would be and recorded with the
//! version each was proposed against; reviewers approve (distinct people, never the author:
//! separation of duties, rule `change-author`), comment or reject; the author applies it, in one
//! transaction that refuses if any head has moved since. A releaser may instead declare an
//! **emergency**: the change is applied at once, marked, and stays open (`awaiting_review`)
//! until an approver other than its author records the post-incident review.
//!
//! Each change request is the versioned setting `change.<id>`, so every step is a version with
//! its audit entry (`setting:change.<id>`, actions `propose`, `emergency`, `approve`,
//! `comment`, `reject`, `withdraw`, `apply`, `review`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use wavegate_api::changes::{
    ChangeAction, ChangeItem, ChangeRequest, Comment, IncidentReview, NewChange, Reasoned, Stamp,
};
use wavegate_store::{Kind, Put, Role, StoreError, TokenRecord};

use crate::service::{ServiceError, ServiceResult, Who, config, plans};
use crate::state::AppState;

/// Change requests are the settings `change.<id>`.
pub const PREFIX: &str = "change.";
/// The protected environments are the setting `protection`: `{env: approvals}`.
pub const PROTECTION: &str = "protection";

fn now_text(state: &AppState) -> String {
    state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn stamp(state: &AppState, by: &str) -> Stamp {
    Stamp { by: by.to_owned(), at: now_text(state) }
}

/// The protected environments and the approvals each needs.
pub async fn protections(state: &AppState) -> ServiceResult<BTreeMap<String, u32>> {
    let Some(h) = state.head(Kind::Setting, PROTECTION).await? else { return Ok(BTreeMap::new()) };
    if h.archived {
        return Ok(BTreeMap::new());
    }
    Ok(serde_json::from_value(h.spec).unwrap_or_default())
}

/// Protects `env` (`Some(approvals)`) or lifts its protection (`None`), as `actor`.
pub async fn set_protection(
    state: &AppState,
    env: &str,
    approvals: Option<u32>,
    actor: &Who,
    reason: Option<String>,
) -> ServiceResult<BTreeMap<String, u32>> {
    if !config::environments(state).iter().any(|e| e == env) {
        return Err(ServiceError::not_found(format!("environment {env:?} not found")));
    }
    let mut all = protections(state).await?;
    match approvals {
        Some(n) if !(1..=10).contains(&n) => {
            return Err(ServiceError::invalid("approvals", "approvals must be 1 to 10"));
        }
        Some(n) => {
            all.insert(env.to_owned(), n);
        }
        None => {
            all.remove(env);
        }
    }
    let action = if approvals.is_some() { "protect" } else { "unprotect" };
    let put = Put {
        kind: Kind::Setting,
        key: PROTECTION.into(),
        spec: json!(all),
        archived: false,
        expected_version: None,
        action: Some(action.into()),
        details: json!({"environment": env, "approvals": approvals}),
    };
    state.store.apply(&[put], &state.change(actor, reason)).await?;
    Ok(all)
}

/// The environments a write changes: a flag's environments whose part differs (all of them when
/// what they share, or whether it is archived, changes); every environment for a segment; a
/// plan's environment (and the one it leaves).
async fn environments_of(state: &AppState, put: &Put) -> ServiceResult<BTreeSet<String>> {
    let all = || config::environments(state).into_iter().collect::<BTreeSet<_>>();
    let old = state.head(put.kind, &put.key).await?;
    Ok(match put.kind {
        Kind::Flag => {
            let Some(old) = old else { return Ok(all()) };
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("environments");
                }
                v
            };
            if old.archived != put.archived || strip(&old.spec) != strip(&put.spec) {
                return Ok(all());
            }
            let envs = |v: &Value| {
                v.get("environments").and_then(Value::as_object).cloned().unwrap_or_default()
            };
            let (o, n) = (envs(&old.spec), envs(&put.spec));
            o.keys().chain(n.keys()).filter(|e| o.get(*e) != n.get(*e)).cloned().collect()
        }
        Kind::Segment => all(),
        Kind::Plan => {
            let env = |v: &Value| v["environment"].as_str().map(str::to_owned);
            env(&put.spec).into_iter().chain(old.and_then(|o| env(&o.spec))).collect()
        }
        Kind::Scorecard | Kind::Setting => BTreeSet::new(),
    })
}

/// Refuses (conflict) writes that change a protected environment: they are change requests.
pub async fn refuse_protected(state: &AppState, puts: &[Put]) -> ServiceResult<()> {
    let protected = protections(state).await?;
    if protected.is_empty() {
        return Ok(());
    }
    let mut hit = BTreeSet::new();
    for put in puts {
        for env in environments_of(state, put).await? {
            if protected.contains_key(&env) {
                hit.insert(env);
            }
        }
    }
    if hit.is_empty() {
        return Ok(());
    }
    let envs: Vec<_> = hit.into_iter().collect();
    Err(ServiceError::conflict(format!(
        "{} is protected: propose this as a change request for review (wavegate change propose, \
         POST /api/v1/changes), or, in an emergency, declare one (--emergency <reason>)",
        envs.join(", ")
    )))
}

/// Whether `who` holds `role` in every one of `envs`.
fn holds_all(who: &TokenRecord, role: Role, envs: &[String]) -> bool {
    envs.iter().all(|e| who.holds(role, e))
}

fn need_role(who: &TokenRecord, roles: &[Role], envs: &[String], doing: &str) -> ServiceResult<()> {
    if roles.iter().any(|r| holds_all(who, *r, envs)) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(ServiceError::Forbidden(format!(
        "{doing} needs the {} role in {}; {} does not hold it there",
        names.join(" or "),
        envs.join(", "),
        who.principal
    )))
}

/// Whether a plan change alters its `runbook` or `checks`.
fn touches_runbook(old: Option<&Value>, new: &Value) -> bool {
    let part =
        |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).cloned().unwrap_or(Value::Null);
    ["runbook", "checks"].iter().any(|k| part(old, k) != part(Some(new), k))
}

/// Proposes `new` as `author` (an editor where it changes things; for an emergency, a
/// releaser, and it is applied at once).
pub async fn propose(
    state: &AppState,
    new: NewChange,
    author: &TokenRecord,
) -> ServiceResult<ChangeRequest> {
    let description = new.description.trim().to_owned();
    if description.is_empty() || description.len() > 4000 {
        return Err(ServiceError::invalid(
            "description",
            "say what the change does and why (1 to 4000 characters)",
        ));
    }
    let record = new.record.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if record.as_ref().is_some_and(|r| r.len() > 128 || r.chars().any(char::is_control)) {
        return Err(ServiceError::invalid(
            "record",
            "a change record id is at most 128 printable characters",
        ));
    }
    let mut puts = Vec::new();
    let mut runbook = false;
    for (key, spec) in &new.segments {
        let spec =
            config::validated(state, Kind::Segment, key, spec, &format!("segments.{key}")).await?;
        puts.push(config::put(Kind::Segment, key, spec, false));
    }
    for (key, spec) in &new.flags {
        wavegate_core::flag::validate_flag_key(key)
            .map_err(|m| ServiceError::invalid(format!("flags.{key}"), m))?;
        let spec = config::validated(state, Kind::Flag, key, spec, &format!("flags.{key}")).await?;
        puts.push(config::put(Kind::Flag, key, spec, false));
    }
    for (i, text) in new.plans.iter().enumerate() {
        let (plan, _) = plans::parse(text).map_err(|e| match e {
            ServiceError::Malformed { field, message } => ServiceError::Invalid {
                field: format!("plans[{i}]{}", field.map(|f| format!(" {f}")).unwrap_or_default()),
                message,
            },
            other => other,
        })?;
        plans::check_against_store(state, &plan).await?;
        plans::check_outbound(state.outbound.guard.policy(), &plan)?;
        let spec = serde_json::to_value(&plan).map_err(ServiceError::internal)?;
        let old = state.head(Kind::Plan, &plan.name).await?;
        runbook |= touches_runbook(old.as_ref().map(|h| &h.spec), &spec);
        puts.push(config::put(Kind::Plan, &plan.name, spec, false));
    }
    if puts.is_empty() {
        return Err(ServiceError::invalid("flags", "propose at least one flag, segment or plan"));
    }
    let mut items = Vec::new();
    let mut environments = BTreeSet::new();
    for put in &mut puts {
        let envs = environments_of(state, put).await?;
        if envs.is_empty() {
            return Err(ServiceError::invalid(
                format!("{}s.{}", put.kind.as_str(), put.key),
                format!(
                    "{} {:?} would not change: it is the current version",
                    put.kind.as_str(),
                    put.key
                ),
            ));
        }
        let base = state.head(put.kind, &put.key).await?.map_or(0, |h| h.version);
        put.expected_version = Some(base);
        environments.extend(envs.iter().cloned());
        items.push(ChangeItem {
            kind: put.kind.as_str().to_owned(),
            key: put.key.clone(),
            base_version: base,
            spec: put.spec.clone(),
            environments: envs.into_iter().collect(),
        });
    }
    let environments: Vec<String> = environments.into_iter().collect();
    let emergency = new.emergency.map(|r| r.trim().to_owned());
    if emergency.as_ref().is_some_and(String::is_empty) {
        return Err(ServiceError::invalid("emergency", "an emergency needs its reason"));
    }
    match &emergency {
        Some(_) => need_role(author, &[Role::Releaser], &environments, "declaring an emergency")?,
        None => need_role(author, &[Role::Editor], &environments, "proposing this change")?,
    }
    let protected_map = protections(state).await?;
    let protected: Vec<String> =
        environments.iter().filter(|e| protected_map.contains_key(*e)).cloned().collect();
    let required =
        protected.iter().filter_map(|e| protected_map.get(e)).copied().max().unwrap_or(0);
    let id = format!("cr_{}", &crate::oidc::random().to_lowercase().replace(['-', '_'], "")[..10]);
    let mut cr = ChangeRequest {
        id: id.clone(),
        state: if required == 0 { "approved".into() } else { "open".into() },
        author: stamp(state, &author.principal),
        description,
        record,
        environments,
        protected,
        required_approvals: required,
        items,
        touches_runbook: runbook,
        approvals: Vec::new(),
        comments: Vec::new(),
        rejected: None,
        applied: None,
        emergency: None,
        review: None,
        awaiting_review: false,
    };
    let reason = Some(format!("change request {id}: {}", cr.description));
    match emergency {
        None => {
            if !save(state, &cr, 0, "propose", &Who::of(author), reason).await? {
                return Err(ServiceError::conflict(format!("change request {id} exists already")));
            }
        }
        Some(why) => {
            let s = stamp(state, &author.principal);
            cr.emergency = Some(Reasoned { stamp: s.clone(), reason: why.clone() });
            cr.applied = Some(s);
            cr.state = "applied".into();
            cr.awaiting_review = true;
            let mut all = puts;
            all.push(doc_put(&cr, 0, "emergency"));
            let why = Some(format!("EMERGENCY change {id}: {why}"));
            write(state, all, &Who::of(author), why).await?;
        }
    }
    Ok(cr)
}

fn doc_put(cr: &ChangeRequest, version: i64, action: &str) -> Put {
    Put {
        kind: Kind::Setting,
        key: format!("{PREFIX}{}", cr.id),
        spec: serde_json::to_value(cr).unwrap_or_default(),
        archived: false,
        expected_version: Some(version),
        action: Some(action.into()),
        details: json!({"environments": cr.environments, "state": cr.state}),
    }
}

/// Writes `cr` over stored version `version`; `false` when that is no longer the current one.
async fn save(
    state: &AppState,
    cr: &ChangeRequest,
    version: i64,
    action: &str,
    actor: &Who,
    reason: Option<String>,
) -> ServiceResult<bool> {
    match state.store.apply(&[doc_put(cr, version, action)], &state.change(actor, reason)).await {
        Err(StoreError::Conflict(_)) => Ok(false),
        other => other.map(|_| true).map_err(Into::into),
    }
}

/// Writes reviewed content (and the change request's new state) in one transaction; a head that
/// moved since the change was proposed refuses it all.
async fn write(
    state: &AppState,
    puts: Vec<Put>,
    actor: &Who,
    reason: Option<String>,
) -> ServiceResult<()> {
    match config::write_reviewed(state, puts, actor, reason).await {
        Err(ServiceError::Store(StoreError::Conflict(m))) if m.contains(" is at version ") => {
            Err(ServiceError::conflict(format!(
                "{m}: something the change touches has moved since it was proposed; propose it \
                 again against the current versions"
            )))
        }
        other => other.map(|_| ()),
    }
}

/// Change request `id` and its stored version.
pub async fn get(state: &AppState, id: &str) -> ServiceResult<(ChangeRequest, i64)> {
    let h = state
        .head(Kind::Setting, &format!("{PREFIX}{id}"))
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("change request {id:?} not found")))?;
    let cr = serde_json::from_value(h.spec).map_err(ServiceError::internal)?;
    Ok((cr, h.version))
}

/// Every change request, newest first.
pub async fn list(state: &AppState) -> ServiceResult<Vec<ChangeRequest>> {
    let mut out: Vec<ChangeRequest> = Vec::new();
    for h in state.heads(Kind::Setting, false).await? {
        if h.key.starts_with(PREFIX)
            && let Ok(cr) = serde_json::from_value::<ChangeRequest>(h.spec)
        {
            out.push(cr);
        }
    }
    out.sort_by(|a, b| b.author.at.cmp(&a.author.at));
    Ok(out)
}

fn field<'a>(v: &'a Option<String>, name: &str, max: usize) -> ServiceResult<&'a str> {
    let t = v.as_deref().map(str::trim).unwrap_or("");
    if t.is_empty() || t.len() > max {
        return Err(ServiceError::invalid(
            name,
            format!("{name} is required (at most {max} characters)"),
        ));
    }
    Ok(t)
}

/// `who` acts on change request `id`: approve, reject, comment, withdraw, apply or review.
/// Decided on the current version and written only if it is still current (else decided again
/// on the fresh one: two comments at once both land).
pub async fn act(
    state: &AppState,
    id: &str,
    action: &str,
    body: ChangeAction,
    who: &TokenRecord,
) -> ServiceResult<ChangeRequest> {
    for _ in 0..8 {
        if let Some(cr) = act_once(state, id, action, &body, who).await? {
            return Ok(cr);
        }
    }
    Err(ServiceError::conflict(format!("change request {id} keeps changing; try again")))
}

async fn act_once(
    state: &AppState,
    id: &str,
    action: &str,
    body: &ChangeAction,
    who: &TokenRecord,
) -> ServiceResult<Option<ChangeRequest>> {
    let (mut cr, version) = get(state, id).await?;
    let me = who.principal.as_str();
    let envs = cr.environments.clone();
    let author = cr.author.by.clone();
    let sod = |doing: &str| {
        ServiceError::Forbidden(format!(
            "separation of duties (rule \"change-author\"): {me} proposed change request {id}, so \
             they may not {doing} it (another person must)"
        ))
    };
    let ended = |cr: &ChangeRequest| {
        ServiceError::conflict(format!("change request {id} is {}; nothing to {action}", cr.state))
    };
    let mut reason = None;
    match action {
        "approve" => {
            if me == author {
                return Err(sod("approve"));
            }
            need_role(who, &[Role::Approver], &envs, "approving a change")?;
            if cr.state != "open" {
                return Err(ended(&cr));
            }
            if cr.approvals.iter().any(|a| a.by == me) {
                return Err(ServiceError::conflict(format!(
                    "{me} already approved change request {id}"
                )));
            }
            cr.approvals.push(stamp(state, me));
            if cr.approvals.len() as u32 >= cr.required_approvals {
                cr.state = "approved".into();
            }
        }
        "reject" => {
            need_role(who, &[Role::Approver], &envs, "rejecting a change")?;
            let why = field(&body.reason, "reason", 2000)?.to_owned();
            if !matches!(cr.state.as_str(), "open" | "approved") {
                return Err(ended(&cr));
            }
            cr.state = "rejected".into();
            reason = Some(why.clone());
            cr.rejected = Some(Reasoned { stamp: stamp(state, me), reason: why });
        }
        "comment" => {
            need_role(who, &[Role::Editor, Role::Releaser, Role::Approver], &envs, "commenting")?;
            let text = field(&body.text, "text", 4000)?.to_owned();
            if cr.comments.len() >= 200 {
                return Err(ServiceError::conflict("a change request holds at most 200 comments"));
            }
            cr.comments.push(Comment { stamp: stamp(state, me), text });
        }
        "withdraw" => {
            if me != author {
                return Err(ServiceError::Forbidden(format!(
                    "only its author ({author}) withdraws change request {id}"
                )));
            }
            if !matches!(cr.state.as_str(), "open" | "approved") {
                return Err(ended(&cr));
            }
            cr.state = "withdrawn".into();
            reason.clone_from(&body.reason);
        }
        "apply" => {
            if me != author && !holds_all(who, Role::Admin, &envs) {
                return Err(ServiceError::Forbidden(format!(
                    "change request {id} is applied by its author ({author}) or an admin"
                )));
            }
            need_role(who, &[Role::Editor], &envs, "applying a change")?;
            match cr.state.as_str() {
                "approved" => {}
                "open" => {
                    return Err(ServiceError::conflict(format!(
                        "change request {id} has {} of the {} approvals it needs",
                        cr.approvals.len(),
                        cr.required_approvals
                    )));
                }
                _ => return Err(ended(&cr)),
            }
            let mut puts = Vec::new();
            for item in &cr.items {
                let kind = match item.kind.as_str() {
                    "flag" => Kind::Flag,
                    "segment" => Kind::Segment,
                    "plan" => Kind::Plan,
                    other => {
                        return Err(ServiceError::internal(format!("change item kind {other:?}")));
                    }
                };
                let mut put = config::put(kind, &item.key, item.spec.clone(), false);
                put.expected_version = Some(item.base_version);
                put.details = json!({"change_request": id});
                puts.push(put);
            }
            cr.state = "applied".into();
            cr.applied = Some(stamp(state, me));
            puts.push(doc_put(&cr, version, "apply"));
            write(
                state,
                puts,
                &Who::of(who),
                Some(format!("change request {id}: {}", cr.description)),
            )
            .await?;
            return Ok(Some(cr));
        }
        "review" => {
            if cr.emergency.is_none() {
                return Err(ServiceError::conflict(format!(
                    "change request {id} was no emergency; it needs no post-incident review"
                )));
            }
            if me == author {
                return Err(sod("review"));
            }
            need_role(who, &[Role::Approver], &envs, "recording a post-incident review")?;
            if cr.review.is_some() {
                return Err(ServiceError::conflict(format!(
                    "change request {id} has its review already"
                )));
            }
            let link = field(&body.link, "link", 2000)?.to_owned();
            let summary = field(&body.summary, "summary", 4000)?.to_owned();
            cr.review = Some(IncidentReview { stamp: stamp(state, me), link, summary });
            cr.awaiting_review = false;
        }
        other => {
            return Err(ServiceError::not_found(format!(
                "unknown action {other:?}; use approve, reject, comment, withdraw, apply or review"
            )));
        }
    }
    if !save(state, &cr, version, action, &Who::of(who), reason).await? {
        return Ok(None);
    }
    Ok(Some(cr))
}
