//! Flags, segments and environments: the validation every write passes (the whole new content
//! against the current environments and live segments, prerequisites across the flag set),
//! and the write itself, one `Store::apply` call followed by the snapshot reload, so a change
//! is all or nothing and always audited. Which environments a token may change is decided by
//! the HTTP layer before it calls in here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use wavegate_core::flag::{PrerequisiteFacts, Segments, compile_segments};
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::{Flag, SpecPath};
use wavegate_store::{Environment, Kind, Put, PutOutcome, VersionRecord};

use crate::service::{ServiceError, ServiceResult, Who};
use crate::state::AppState;

/// The environments, in promotion order.
pub fn environments(state: &AppState) -> Vec<String> {
    state.snapshot.load().environments.clone()
}

/// The live segments, compiled.
pub async fn live_segments(state: &AppState) -> ServiceResult<Segments> {
    let heads = state.heads(Kind::Segment, false).await?;
    let specs: Vec<(String, SegmentSpec)> = heads
        .into_iter()
        .map(|h| serde_json::from_value(h.spec).map(|s| (h.key, s)))
        .collect::<Result<_, _>>()
        .map_err(ServiceError::internal)?;
    Ok(compile_segments(specs.iter().map(|(k, v)| (k, v)), &SpecPath::root("segments"))?)
}

/// A new (version of a) piece of configuration, as one put.
pub fn put(kind: Kind, key: &str, spec: Value, archived: bool) -> Put {
    Put {
        kind,
        key: key.to_owned(),
        spec,
        archived,
        expected_version: None,
        action: None,
        details: json!({}),
    }
}

/// Decodes and validates a flag spec for `key` (errors located under `path`).
pub async fn validated_flag(
    state: &AppState,
    key: &str,
    spec: &Value,
    path: &str,
) -> ServiceResult<FlagSpec> {
    let parsed: FlagSpec =
        serde_json::from_value(spec.clone()).map_err(|e| ServiceError::Malformed {
            field: Some(path.to_owned()),
            message: format!("invalid flag: {e}"),
        })?;
    let segments = live_segments(state).await?;
    Flag::validate(key, &parsed, &environments(state), &segments, &SpecPath::root(path))?;
    Ok(parsed)
}

/// Decodes and validates a segment spec for `key` (errors located under `path`).
pub fn validated_segment(key: &str, spec: &Value, path: &str) -> ServiceResult<SegmentSpec> {
    let parsed: SegmentSpec =
        serde_json::from_value(spec.clone()).map_err(|e| ServiceError::Malformed {
            field: Some(path.to_owned()),
            message: format!("invalid segment: {e}"),
        })?;
    wavegate_core::Segment::compile(key, &parsed, &SpecPath::root(path))?;
    Ok(parsed)
}

/// Validates `spec` as the new content of `kind` `key`, located under `path`.
pub async fn validated(
    state: &AppState,
    kind: Kind,
    key: &str,
    spec: &Value,
    path: &str,
) -> ServiceResult<Value> {
    match kind {
        Kind::Flag => serde_json::to_value(validated_flag(state, key, spec, path).await?),
        Kind::Segment => serde_json::to_value(validated_segment(key, spec, path)?),
        Kind::Plan | Kind::Scorecard | Kind::Setting => {
            return Err(ServiceError::malformed("plans change through `plan apply`"));
        }
    }
    .map_err(ServiceError::internal)
}

/// Checks flag prerequisites across the live flags as `puts` would leave them: parents exist,
/// are one level deep, and a flag others depend on is not archived.
async fn check_prerequisites(state: &AppState, puts: &[Put]) -> ServiceResult<()> {
    // The live flags as served (decoded and vouched for when the snapshot was built), not
    // every head read and decoded again: a write costs what it changes.
    let snap = state.snapshot.load();
    let written: Vec<(&str, FlagSpec)> = puts
        .iter()
        .filter(|w| w.kind == Kind::Flag && !w.archived)
        .filter_map(|w| Some((w.key.as_str(), serde_json::from_value(w.spec.clone()).ok()?)))
        .collect();
    let archived: BTreeSet<&str> = puts
        .iter()
        .filter(|w| w.kind == Kind::Flag && w.archived)
        .map(|w| w.key.as_str())
        .collect();
    let changed: BTreeMap<&str, &dyn PrerequisiteFacts> =
        written.iter().map(|(k, s)| (*k, s as &dyn PrerequisiteFacts)).collect();
    // A flag as the change would leave it.
    let find = |k: &str| match changed.get(k) {
        Some(f) => Some(*f),
        None if archived.contains(k) => None,
        None => snap.live_flag(k).map(|f| f as &dyn PrerequisiteFacts),
    };
    // What must be checked: the flags written, and the live flags that depend on a flag
    // written or archived (every other flag's parents are as they were), in key order.
    let mut check: BTreeMap<&str, &dyn PrerequisiteFacts> = changed.clone();
    for (key, flag) in snap.live_flags() {
        if changed.contains_key(key) || archived.contains(key) {
            continue;
        }
        let parents = flag.parents();
        if parents.iter().any(|(p, _)| changed.contains_key(p) || archived.contains(p)) {
            check.insert(key, flag);
        }
    }
    for gone in &archived {
        let children: Vec<&str> = check
            .iter()
            .filter(|(_, s)| s.parents().iter().any(|(p, _)| p == gone))
            .map(|(k, _)| *k)
            .collect();
        if !children.is_empty() {
            return Err(ServiceError::conflict(format!(
                "flag {gone:?} is a prerequisite of {}; change them first",
                children.join(", ")
            )));
        }
    }
    wavegate_core::flag::validate_prerequisites_of(
        check.iter().map(|(k, s)| (*k, *s)),
        find,
        &SpecPath::root("flags"),
    )?;
    Ok(())
}

/// Writes `puts` as one change by `actor` (prerequisites checked across the flag set first),
/// then reloads the snapshot evaluation serves. A live rollout's ownership of its flag is
/// enforced by the store, inside the transaction.
pub async fn write(
    state: &AppState,
    puts: Vec<Put>,
    actor: &Who,
    reason: Option<String>,
) -> ServiceResult<Vec<PutOutcome>> {
    crate::service::changes::refuse_protected(state, &puts).await?;
    write_reviewed(state, puts, actor, reason).await
}

/// [`write`] without the protected-environment check: a reviewed change request's content
/// ([`crate::service::changes`]).
pub async fn write_reviewed(
    state: &AppState,
    puts: Vec<Put>,
    actor: &Who,
    reason: Option<String>,
) -> ServiceResult<Vec<PutOutcome>> {
    if puts.iter().any(|w| w.kind == Kind::Flag) {
        check_prerequisites(state, &puts).await?;
    }
    // Reloads wait for this write's own: the change feed hears of it at commit, and would
    // otherwise rebuild everything before the write patches in the flags it changed.
    let held = state.hold_reloads().await;
    let out = state.store.apply(&puts, &state.change(actor, reason)).await?;
    let changed: Vec<&PutOutcome> = out.iter().filter(|o| o.changed).collect();
    if changed.iter().all(|o| o.kind == Kind::Flag) {
        let keys: Vec<&str> = changed.iter().map(|o| o.key.as_str()).collect();
        if !keys.is_empty() {
            state.reload_flags(held, &keys).await?;
        }
    } else {
        drop(held);
        state.reload().await?;
    }
    Ok(out)
}

/// Whether a flag's rules name `segment`.
fn flag_uses_segment(spec: &Value, segment: &str) -> bool {
    spec.get("environments").and_then(Value::as_object).is_some_and(|envs| {
        envs.values().any(|e| {
            e.get("rules").and_then(Value::as_array).is_some_and(|rules| {
                rules.iter().any(|r| r.get("segment").and_then(Value::as_str) == Some(segment))
            })
        })
    })
}

/// Checks that `kind` `key` (now `spec`) may be archived (`archived`) or brought back: a
/// segment no live flag or rollout uses; a flag that still validates against today's
/// environments and segments.
pub async fn check_archivable(
    state: &AppState,
    kind: Kind,
    key: &str,
    spec: &Value,
    archived: bool,
) -> ServiceResult<()> {
    if kind == Kind::Segment && archived {
        let users: Vec<String> = state
            .store
            .list(Kind::Flag, false)
            .await?
            .into_iter()
            .filter(|f| flag_uses_segment(&f.spec, key))
            .map(|f| f.key)
            .collect();
        if !users.is_empty() {
            return Err(ServiceError::conflict(format!(
                "segment {key:?} is used by flag(s) {}; change them first",
                users.join(", ")
            )));
        }
        for row in state.store.rollouts(true).await? {
            let waves = row.doc["plan"]["waves"].as_array().cloned().unwrap_or_default();
            if waves
                .iter()
                .any(|w| w["segments"].as_array().is_some_and(|s| s.iter().any(|s| s == key)))
            {
                return Err(ServiceError::conflict(format!(
                    "segment {key:?} is a ring of live rollout {}; it cannot be archived",
                    row.id
                )));
            }
        }
    }
    if kind == Kind::Flag && !archived {
        validated_flag(state, key, spec, "flag").await?;
    }
    Ok(())
}

/// Version `version` of `kind` `key` (404 when there is none; 409 when the row no longer
/// matches its audit entry, so its content is never restored or reported as recorded).
pub async fn version(
    state: &AppState,
    kind: Kind,
    key: &str,
    version: i64,
) -> ServiceResult<VersionRecord> {
    match state.record.version(&*state.store, kind, key, version).await? {
        Some(Ok(v)) => Ok(v),
        Some(Err(tampered)) => Err(ServiceError::Conflict(format!(
            "{tampered}; it is not restored (wavegate audit verify names every damaged row)"
        ))),
        None => Err(ServiceError::not_found(format!(
            "version {version} of {} {key:?} not found",
            kind.as_str()
        ))),
    }
}

/// Creates environment `name` (last in the promotion order) and reloads the snapshot.
pub async fn create_environment(
    state: &AppState,
    name: &str,
    actor: &Who,
    reason: Option<String>,
) -> ServiceResult<Environment> {
    let e = state.store.create_environment(name, &state.change(actor, reason)).await?;
    state.reload().await?;
    Ok(e)
}
