//! The admin API under `/api/v1`: environments, flags, segments (with versions, diff, revert,
//! archive), bulk apply of a flag file, tokens and the audit log.
//!
//! **Invariant:** every write validates the whole new content against the current
//! environments and segments before it reaches the store, and reaches the store as one
//! [`Store::apply`] call, so a change is all or nothing and always audited.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;

use crate::http::json::{ApiPath as Path, ApiQuery as Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wavegate_core::flag::{Segments, compile_segments, validate_key};
use wavegate_core::spec::{FlagFile, FlagSpec, SegmentSpec};
use wavegate_core::{Flag, SpecPath};
use wavegate_store::{Head, Kind, Put, PutOutcome, Store, TokenKind, TokenRecord, VersionRecord};

use crate::http::auth::{Principal, mint};
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{JsonBody, parse_json};
use crate::state::AppState;

/// Header carrying the reason for a change.
pub const REASON_HEADER: &str = "x-wavegate-reason";

/// Admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/environments", get(list_environments).post(create_environment))
        .route("/api/v1/flags", get(list_flags))
        .route("/api/v1/flags/{key}", get(get_flag).put(put_flag))
        .route("/api/v1/flags/{key}/archive", post(archive_flag))
        .route("/api/v1/flags/{key}/unarchive", post(unarchive_flag))
        .route("/api/v1/flags/{key}/versions", get(flag_versions))
        .route("/api/v1/flags/{key}/versions/{version}", get(flag_version))
        .route("/api/v1/flags/{key}/diff", get(flag_diff))
        .route("/api/v1/flags/{key}/revert", post(revert_flag))
        .route("/api/v1/segments", get(list_segments))
        .route("/api/v1/segments/{key}", get(get_segment).put(put_segment))
        .route("/api/v1/segments/{key}/archive", post(archive_segment))
        .route("/api/v1/segments/{key}/unarchive", post(unarchive_segment))
        .route("/api/v1/segments/{key}/versions", get(segment_versions))
        .route("/api/v1/segments/{key}/versions/{version}", get(segment_version))
        .route("/api/v1/segments/{key}/diff", get(segment_diff))
        .route("/api/v1/segments/{key}/revert", post(revert_segment))
        .route("/api/v1/apply", post(apply_file))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/audit", get(list_audit))
        .route("/api/v1/audit/verify", get(verify_audit))
        .route("/api/v1/backup", get(backup))
}

// ---------- shared helpers ----------

pub(crate) fn reason(headers: &HeaderMap) -> Option<String> {
    headers
        .get(REASON_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn envs_of(state: &AppState) -> Vec<String> {
    state.snapshot.load().environments.clone()
}

pub(crate) async fn live_segments(store: &dyn Store) -> crate::service::ServiceResult<Segments> {
    let heads = store.list(Kind::Segment, false).await?;
    let specs: Vec<(String, SegmentSpec)> = heads
        .into_iter()
        .map(|h| serde_json::from_value(h.spec).map(|s| (h.key, s)))
        .collect::<Result<_, _>>()
        .map_err(crate::service::ServiceError::internal)?;
    Ok(compile_segments(specs.iter().map(|(k, v)| (k, v)), &SpecPath::root("segments"))?)
}

fn key_ok(key: &str) -> ApiResult<()> {
    validate_key(key).map_err(|m| ApiError::invalid("key", m))
}

#[derive(Serialize)]
struct HeadDto {
    key: String,
    version: i64,
    archived: bool,
    updated_at: String,
    updated_by: String,
    spec: Value,
}

impl From<Head> for HeadDto {
    fn from(h: Head) -> Self {
        HeadDto {
            key: h.key,
            version: h.version,
            archived: h.archived,
            updated_at: h.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            updated_by: h.updated_by,
            spec: h.spec,
        }
    }
}

#[derive(Serialize)]
struct VersionDto {
    key: String,
    version: i64,
    archived: bool,
    actor: String,
    action: String,
    reason: Option<String>,
    created_at: String,
    spec: Value,
}

impl From<VersionRecord> for VersionDto {
    fn from(v: VersionRecord) -> Self {
        VersionDto {
            key: v.key,
            version: v.version,
            archived: v.archived,
            actor: v.actor,
            action: v.action,
            reason: v.reason,
            created_at: v.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            spec: v.spec,
        }
    }
}

#[derive(Serialize)]
struct OutcomeDto {
    kind: &'static str,
    key: String,
    version: i64,
    changed: bool,
}

impl From<&PutOutcome> for OutcomeDto {
    fn from(o: &PutOutcome) -> Self {
        OutcomeDto {
            kind: o.kind.as_str(),
            key: o.key.clone(),
            version: o.version,
            changed: o.changed,
        }
    }
}

/// Refuses a flag change an environment-scoped admin token may not make: it may change only the
/// environments in its scope, and nothing shared by all environments.
fn check_flag_scope(p: &Principal, old: Option<&Value>, new: &Value) -> ApiResult<()> {
    if p.0.all_envs() {
        return Ok(());
    }
    let empty = json!({});
    let old = old.unwrap_or(&empty);
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("environments");
        }
        v
    };
    if strip(old) != strip(new) {
        return Err(ApiError::forbidden(
            "this token is scoped to some environments; changing a flag's variants, defaults or description needs a token for all environments",
        ));
    }
    let envs =
        |v: &Value| v.get("environments").and_then(Value::as_object).cloned().unwrap_or_default();
    let (o, n) = (envs(old), envs(new));
    for name in o.keys().chain(n.keys()) {
        if o.get(name) != n.get(name) {
            p.require_env(name)?;
        }
    }
    Ok(())
}

fn require_all_envs(p: &Principal, what: &str) -> ApiResult<()> {
    if p.0.all_envs() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("{what} needs an admin token for all environments")))
    }
}

async fn write(
    state: &AppState,
    puts: Vec<Put>,
    p: &Principal,
    reason: Option<String>,
) -> ApiResult<Vec<PutOutcome>> {
    if puts.iter().any(|w| w.kind == Kind::Flag) {
        check_prerequisites(state, &puts).await?;
    }
    // A live rollout's ownership of its flag is enforced by the store, inside the transaction.
    let out = state.store.apply(&puts, &state.change(p.name(), reason)).await?;
    if out.iter().any(|o| o.changed) {
        state.reload().await?;
    }
    Ok(out)
}

/// Checks flag prerequisites across the live flags as `puts` would leave them: parents exist,
/// are one level deep, and a flag others depend on is not archived.
async fn check_prerequisites(state: &AppState, puts: &[Put]) -> ApiResult<()> {
    let mut flags: std::collections::BTreeMap<String, FlagSpec> = Default::default();
    for head in state.store.list(Kind::Flag, false).await? {
        if let Ok(spec) = serde_json::from_value::<FlagSpec>(head.spec) {
            flags.insert(head.key, spec);
        }
    }
    for w in puts.iter().filter(|w| w.kind == Kind::Flag) {
        if w.archived {
            flags.remove(&w.key);
            let children: Vec<&str> = flags
                .iter()
                .filter(|(_, s)| s.prerequisites.iter().any(|p| p.flag == w.key))
                .map(|(k, _)| k.as_str())
                .collect();
            if !children.is_empty() {
                return Err(ApiError::conflict(format!(
                    "flag {:?} is a prerequisite of {}; change them first",
                    w.key,
                    children.join(", ")
                )));
            }
        } else if let Ok(spec) = serde_json::from_value::<FlagSpec>(w.spec.clone()) {
            flags.insert(w.key.clone(), spec);
        }
    }
    wavegate_core::flag::validate_prerequisites(
        flags.iter().map(|(k, s)| (k.as_str(), s)),
        &SpecPath::root("flags"),
    )?;
    Ok(())
}

fn put(kind: Kind, key: &str, spec: Value, archived: bool) -> Put {
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

fn expected_version(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    match headers.get(axum::http::header::IF_MATCH) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().unwrap_or("").trim().trim_matches('"');
            s.parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_request("If-Match must be a version number, like \"3\""))
        }
    }
}

/// Decodes and validates a flag spec body for `key`.
async fn validated_flag(
    state: &AppState,
    key: &str,
    spec: &Value,
    path: &str,
) -> ApiResult<FlagSpec> {
    let parsed: FlagSpec = serde_json::from_value(spec.clone()).map_err(|e| ApiError {
        field: Some(path.to_owned()),
        ..ApiError::bad_request(format!("invalid flag: {e}"))
    })?;
    let segments = live_segments(&*state.store).await?;
    Flag::validate(key, &parsed, &envs_of(state), &segments, &SpecPath::root(path))?;
    Ok(parsed)
}

fn validated_segment(key: &str, spec: &Value, path: &str) -> ApiResult<SegmentSpec> {
    let parsed: SegmentSpec = serde_json::from_value(spec.clone()).map_err(|e| ApiError {
        field: Some(path.to_owned()),
        ..ApiError::bad_request(format!("invalid segment: {e}"))
    })?;
    wavegate_core::Segment::compile(key, &parsed, &SpecPath::root(path))?;
    Ok(parsed)
}

fn created_or_ok(o: &PutOutcome) -> StatusCode {
    if o.changed && o.version == 1 { StatusCode::CREATED } else { StatusCode::OK }
}

// ---------- environments ----------

async fn list_environments(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let envs = state.store.environments().await?;
    Ok(Json(json!(
        envs.iter().map(|e| json!({"name": e.name, "position": e.position})).collect::<Vec<_>>()
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEnvironment {
    name: String,
}

async fn create_environment(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewEnvironment>,
) -> ApiResult<Response> {
    p.require_admin()?;
    require_all_envs(&p, "creating an environment")?;
    key_ok(&body.name)?;
    let e = state
        .store
        .create_environment(&body.name, &state.change(p.name(), reason(&headers)))
        .await?;
    state.reload().await?;
    Ok((StatusCode::CREATED, Json(json!({"name": e.name, "position": e.position}))).into_response())
}

// ---------- flags and segments (shared shapes) ----------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    archived: bool,
    /// Flags only: just the stale ones (a completed rollout held clean for its settle time),
    /// each with `stale: {rollout, environment, since}`.
    #[serde(default)]
    stale: bool,
}

/// What a token may read of a flag or segment: an environment-scoped token sees only its
/// environments' state, and only all-environment tokens see segment members (user ids).
pub(crate) fn redact(p: &Principal, kind: Kind, mut spec: Value) -> Value {
    if p.0.all_envs() {
        return spec;
    }
    match kind {
        Kind::Flag => {
            if let Some(envs) = spec.get_mut("environments").and_then(Value::as_object_mut) {
                envs.retain(|name, _| p.0.allows_env(name));
            }
        }
        Kind::Segment => {
            if let Some(o) = spec.as_object_mut().filter(|o| o.contains_key("keys")) {
                o.remove("keys");
                o.insert("keys_redacted".into(), json!(true));
            }
        }
        Kind::Plan | Kind::Scorecard | Kind::Setting => {}
    }
    spec
}

async fn list_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    q: &ListQuery,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let heads = state.store.list(kind, q.archived).await?;
    let dtos: Vec<HeadDto> = heads
        .into_iter()
        .map(|mut h| {
            h.spec = redact(p, kind, h.spec);
            HeadDto::from(h)
        })
        .collect();
    Ok(Json(json!(dtos)))
}

async fn get_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
) -> ApiResult<Json<HeadDto>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let mut head = state
        .store
        .get(kind, key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} {key:?} not found", kind.as_str())))?;
    head.spec = redact(p, kind, head.spec);
    Ok(Json(head.into()))
}

async fn versions_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
) -> ApiResult<Json<Value>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let versions = state.store.versions(kind, key).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("{} {key:?} not found", kind.as_str())));
    }
    let dtos: Vec<VersionDto> = versions
        .into_iter()
        .map(|mut v| {
            v.spec = redact(p, kind, v.spec);
            VersionDto::from(v)
        })
        .collect();
    Ok(Json(json!(dtos)))
}

async fn version_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    v: i64,
) -> ApiResult<VersionRecord> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    state.store.version(kind, key, v).await?.ok_or_else(|| {
        ApiError::not_found(format!("version {v} of {} {key:?} not found", kind.as_str()))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: i64,
    to: Option<i64>,
}

async fn diff_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    q: DiffQuery,
) -> ApiResult<Json<Value>> {
    let to = match q.to {
        Some(v) => v,
        None => get_kind(state, p, kind, key).await?.version,
    };
    let mut a = version_kind(state, p, kind, key, q.from).await?;
    let mut b = version_kind(state, p, kind, key, to).await?;
    a.spec = redact(p, kind, a.spec);
    b.spec = redact(p, kind, b.spec);
    let pretty = |v: &VersionRecord| {
        let mut s = serde_json::to_string_pretty(&json!({"archived": v.archived, "spec": v.spec}))
            .unwrap_or_default();
        s.push('\n');
        s
    };
    let (ta, tb) = (pretty(&a), pretty(&b));
    let diff = similar::TextDiff::from_lines(&ta, &tb)
        .unified_diff()
        .header(&format!("{key}@{}", q.from), &format!("{key}@{to}"))
        .to_string();
    Ok(Json(json!({"key": key, "from": q.from, "to": to, "diff": diff})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevertBody {
    version: i64,
    #[serde(default)]
    reason: Option<String>,
}

// ---------- flags ----------

async fn list_flags(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let Json(all) = list_kind(&s, &p, Kind::Flag, &q).await?;
    if !q.stale {
        return Ok(Json(all));
    }
    let rows = s.store.rollouts(false).await?;
    let mut stale: BTreeMap<String, Value> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.state == "completed" && p.0.allows_env(&r.environment)) {
        let superseded = crate::service::rollouts::superseded(&rows, row);
        if let Some(at) = row.doc.get("stale_at").filter(|v| !v.is_null() && !superseded) {
            stale.insert(
                row.flag.clone(),
                json!({"rollout": row.id, "environment": row.environment, "since": at}),
            );
        }
    }
    let out: Vec<Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let key = f["key"].as_str()?;
            let info = stale.get(key)?;
            let mut f = f.clone();
            f["stale"] = info.clone();
            Some(f)
        })
        .collect();
    Ok(Json(json!(out)))
}

/// A flag's head, plus `unleash_approximate` (and, when true, `unleash_notes` by environment):
/// whether Unleash SDKs may answer differently from wavegate for some contexts.
async fn get_flag(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let Json(head) = get_kind(&s, &p, Kind::Flag, &key).await?;
    let mut out = serde_json::to_value(&head).map_err(ApiError::internal)?;
    let notes = unleash_notes(&s, &key, &head.spec);
    out["unleash_approximate"] = json!(!notes.is_empty());
    if !notes.is_empty() {
        out["unleash_notes"] = json!(notes);
    }
    Ok(Json(out))
}

/// Why the Unleash export of flag `key` is approximate, by environment (empty when exact).
fn unleash_notes(state: &AppState, key: &str, spec: &Value) -> BTreeMap<String, Vec<String>> {
    let Ok(spec) = serde_json::from_value::<FlagSpec>(spec.clone()) else {
        return BTreeMap::new();
    };
    let snap = state.snapshot.load();
    let (_, ids) = wavegate_core::unleash::export::export_segments(&snap.segment_specs);
    spec.environments
        .keys()
        .filter_map(|env| {
            let e = wavegate_core::unleash::export::export_flag(key, &spec, env, &ids);
            (!e.approximate.is_empty()).then(|| (env.clone(), e.approximate))
        })
        .collect()
}

async fn put_flag(
    State(state): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(spec): JsonBody<Value>,
) -> ApiResult<Response> {
    p.require_admin()?;
    key_ok(&key)?;
    let parsed = validated_flag(&state, &key, &spec, "body").await?;
    let spec = serde_json::to_value(&parsed).map_err(ApiError::internal)?;
    let old = state.store.get(Kind::Flag, &key).await?;
    check_flag_scope(&p, old.as_ref().map(|h| &h.spec), &spec)?;
    let mut w = put(Kind::Flag, &key, spec, false);
    w.expected_version = expected_version(&headers)?;
    let out = write(&state, vec![w], &p, reason(&headers)).await?;
    let head = state
        .store
        .get(Kind::Flag, &key)
        .await?
        .ok_or_else(|| ApiError::internal("flag vanished after write"))?;
    Ok((
        created_or_ok(&out[0]),
        Json(json!({"changed": out[0].changed, "flag": HeadDto::from(head)})),
    )
        .into_response())
}

async fn set_archived(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    archived: bool,
    headers: &HeaderMap,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let head = state
        .store
        .get(kind, key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} {key:?} not found", kind.as_str())))?;
    match kind {
        Kind::Flag => check_flag_scope(p, Some(&head.spec), &head.spec).and_then(|_| {
            if p.0.all_envs() { Ok(()) } else { require_all_envs(p, "archiving a flag") }
        })?,
        Kind::Segment | Kind::Plan | Kind::Scorecard | Kind::Setting => {
            require_all_envs(p, "changing a segment or plan")?
        }
    }
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
            return Err(ApiError::conflict(format!(
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
                return Err(ApiError::conflict(format!(
                    "segment {key:?} is a ring of live rollout {}; it cannot be archived",
                    row.id
                )));
            }
        }
    }
    if kind == Kind::Flag && !archived {
        validated_flag(state, key, &head.spec, "flag").await?;
    }
    let out = write(state, vec![put(kind, key, head.spec, archived)], p, reason(headers)).await?;
    Ok(Json(
        json!({"key": key, "version": out[0].version, "archived": archived, "changed": out[0].changed}),
    ))
}

fn flag_uses_segment(spec: &Value, segment: &str) -> bool {
    spec.get("environments").and_then(Value::as_object).is_some_and(|envs| {
        envs.values().any(|e| {
            e.get("rules").and_then(Value::as_array).is_some_and(|rules| {
                rules.iter().any(|r| r.get("segment").and_then(Value::as_str) == Some(segment))
            })
        })
    })
}

async fn archive_flag(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    set_archived(&s, &p, Kind::Flag, &key, true, &h).await
}

async fn unarchive_flag(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    set_archived(&s, &p, Kind::Flag, &key, false, &h).await
}

async fn flag_versions(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    versions_kind(&s, &p, Kind::Flag, &key).await
}

async fn flag_version(
    State(s): State<AppState>,
    p: Principal,
    Path((key, v)): Path<(String, i64)>,
) -> ApiResult<Json<VersionDto>> {
    let mut rec = version_kind(&s, &p, Kind::Flag, &key, v).await?;
    rec.spec = redact(&p, Kind::Flag, rec.spec);
    Ok(Json(rec.into()))
}

async fn flag_diff(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Value>> {
    diff_kind(&s, &p, Kind::Flag, &key, q).await
}

async fn revert(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    body: RevertBody,
    headers: &HeaderMap,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let target = version_kind(state, p, kind, key, body.version).await?;
    let head = state
        .store
        .get(kind, key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} {key:?} not found", kind.as_str())))?;
    match kind {
        Kind::Flag => {
            validated_flag(state, key, &target.spec, "version").await?;
            check_flag_scope(p, Some(&head.spec), &target.spec)?;
        }
        Kind::Segment => {
            require_all_envs(p, "changing a segment")?;
            validated_segment(key, &target.spec, "version")?;
        }
        Kind::Plan | Kind::Scorecard | Kind::Setting => {
            return Err(ApiError::bad_request("plans change through `plan apply`"));
        }
    }
    let mut w = put(kind, key, target.spec, target.archived);
    w.action = Some("revert".into());
    w.details = json!({"reverted_to": body.version});
    let why = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .or_else(|| reason(headers));
    let out = write(state, vec![w], p, why).await?;
    Ok(Json(
        json!({"key": key, "version": out[0].version, "reverted_to": body.version, "changed": out[0].changed}),
    ))
}

async fn revert_flag(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    h: HeaderMap,
    JsonBody(body): JsonBody<RevertBody>,
) -> ApiResult<Json<Value>> {
    revert(&s, &p, Kind::Flag, &key, body, &h).await
}

// ---------- segments ----------

async fn list_segments(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    list_kind(&s, &p, Kind::Segment, &q).await
}

async fn get_segment(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<HeadDto>> {
    get_kind(&s, &p, Kind::Segment, &key).await
}

async fn put_segment(
    State(state): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(spec): JsonBody<Value>,
) -> ApiResult<Response> {
    p.require_admin()?;
    require_all_envs(&p, "changing a segment")?;
    key_ok(&key)?;
    let parsed = validated_segment(&key, &spec, "body")?;
    let spec = serde_json::to_value(&parsed).map_err(ApiError::internal)?;
    let mut w = put(Kind::Segment, &key, spec, false);
    w.expected_version = expected_version(&headers)?;
    let out = write(&state, vec![w], &p, reason(&headers)).await?;
    let head = state
        .store
        .get(Kind::Segment, &key)
        .await?
        .ok_or_else(|| ApiError::internal("segment vanished after write"))?;
    Ok((
        created_or_ok(&out[0]),
        Json(json!({"changed": out[0].changed, "segment": HeadDto::from(head)})),
    )
        .into_response())
}

async fn archive_segment(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    set_archived(&s, &p, Kind::Segment, &key, true, &h).await
}

async fn unarchive_segment(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    h: HeaderMap,
) -> ApiResult<Json<Value>> {
    set_archived(&s, &p, Kind::Segment, &key, false, &h).await
}

async fn segment_versions(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    versions_kind(&s, &p, Kind::Segment, &key).await
}

async fn segment_version(
    State(s): State<AppState>,
    p: Principal,
    Path((key, v)): Path<(String, i64)>,
) -> ApiResult<Json<VersionDto>> {
    let mut rec = version_kind(&s, &p, Kind::Segment, &key, v).await?;
    rec.spec = redact(&p, Kind::Segment, rec.spec);
    Ok(Json(rec.into()))
}

async fn segment_diff(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Value>> {
    diff_kind(&s, &p, Kind::Segment, &key, q).await
}

async fn revert_segment(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
    h: HeaderMap,
    JsonBody(body): JsonBody<RevertBody>,
) -> ApiResult<Json<Value>> {
    revert(&s, &p, Kind::Segment, &key, body, &h).await
}

// ---------- apply a flag file ----------

/// `POST /api/v1/apply`: a flag file (YAML, or JSON with a JSON content type), applied in one
/// transaction. Applying the same file twice makes no new versions.
async fn apply_file(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let file: FlagFile = if is_json {
        parse_json(&body)?
    } else {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("flag file is not valid UTF-8"))?;
        wavegate_core::flagfile::parse_yaml(text)?
    };
    if file.segments.is_empty() && file.flags.is_empty() {
        return Err(ApiError::bad_request("the file defines no segments and no flags"));
    }
    let existing = live_segments(&*state.store).await?;
    wavegate_core::flagfile::validate_flag_file(&file, &envs_of(&state), &existing)?;
    if !file.segments.is_empty() {
        require_all_envs(&p, "changing segments")?;
    }
    let mut puts = Vec::new();
    for (key, spec) in &file.segments {
        puts.push(put(
            Kind::Segment,
            key,
            serde_json::to_value(spec).map_err(ApiError::internal)?,
            false,
        ));
    }
    for (key, spec) in &file.flags {
        let spec = serde_json::to_value(spec).map_err(ApiError::internal)?;
        let old = state.store.get(Kind::Flag, key).await?;
        check_flag_scope(&p, old.as_ref().map(|h| &h.spec), &spec)?;
        puts.push(put(Kind::Flag, key, spec, false));
    }
    let out = write(&state, puts, &p, reason(&headers)).await?;
    let changed = out.iter().filter(|o| o.changed).count();
    Ok(Json(json!({
        "changed": changed,
        "unchanged": out.len() - changed,
        "results": out.iter().map(OutcomeDto::from).collect::<Vec<_>>(),
    })))
}

// ---------- tokens ----------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    kind: String,
    environments: Vec<String>,
    #[serde(default)]
    principal: Option<String>,
}

fn token_dto(t: &TokenRecord) -> Value {
    json!({
        "id": t.id,
        "kind": t.kind.as_str(),
        "environments": t.environments,
        "principal": t.principal,
        "created_at": t.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "created_by": t.created_by,
        "revoked_at": t.revoked_at.map(|r| r.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    })
}

async fn create_token(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> ApiResult<Response> {
    p.require_admin()?;
    let kind = TokenKind::parse(&body.kind).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!("unknown token kind {:?}; use admin, server-sdk or client-sdk", body.kind),
        )
    })?;
    if body.environments.is_empty() {
        return Err(ApiError::invalid(
            "environments",
            "name at least one environment, or \"*\" for all",
        ));
    }
    let known = envs_of(&state);
    for e in &body.environments {
        if e == "*" {
            require_all_envs(&p, "a token for all environments")?;
        } else if !known.contains(e) {
            return Err(ApiError::invalid(
                "environments",
                format!("unknown environment {e:?}; known: {}", known.join(", ")),
            ));
        } else {
            p.require_env(e)?;
        }
    }
    let principal = match body.principal {
        Some(name) => {
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    "principal",
                    "principal must be 1 to 128 printable characters",
                ));
            }
            name
        }
        None => format!("{}-{}", p.name(), kind.as_str()),
    };
    if ["system", "controller", "automatic"].contains(&principal.as_str()) {
        return Err(ApiError::invalid(
            "principal",
            format!("{principal:?} is reserved for wavegate itself"),
        ));
    }
    // Approvals rest on principals being distinct people: a name already issued by someone else
    // cannot be minted again by a third party (that would let a requester approve as "bob").
    if principal != p.name() {
        let tokens = state.store.tokens().await?;
        if let Some(other) = tokens.iter().find(|t| {
            t.principal == principal && t.created_by != p.name() && t.created_by != principal
        }) {
            return Err(ApiError::forbidden(format!(
                "principal {principal:?} already has tokens issued by {}; ask them (or {principal}) to issue more",
                other.created_by
            )));
        }
    }
    let minted = mint(kind, body.environments, principal);
    let record =
        state.store.create_token(&minted.record, &state.change(p.name(), reason(&headers))).await?;
    state.tokens.clear();
    let mut dto = token_dto(&record);
    dto["token"] = json!(minted.secret);
    Ok((StatusCode::CREATED, Json(dto)).into_response())
}

async fn list_tokens(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let tokens = state.store.tokens().await?;
    Ok(Json(json!(tokens.iter().map(token_dto).collect::<Vec<_>>())))
}

async fn revoke_token(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let target =
        state.store.tokens().await?.into_iter().find(|t| t.id == id && t.revoked_at.is_none());
    let Some(target) = target else {
        return Err(ApiError::not_found(format!("live token {id:?} not found")));
    };
    if !p.0.all_envs() && !target.environments.iter().all(|e| p.0.allows_env(e)) {
        return Err(ApiError::forbidden("this token may not revoke a token with a wider scope"));
    }
    state.store.revoke_token(&id, &state.change(p.name(), reason(&headers))).await?;
    state.tokens.clear();
    Ok(Json(json!({"id": id, "revoked": true})))
}

// ---------- audit ----------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
    /// Only entries about this target (a rollout id, flag key, …): its newest `limit`.
    #[serde(default)]
    target: Option<String>,
}

fn default_limit() -> i64 {
    100
}

async fn list_audit(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    if !(1..=1000).contains(&q.limit) {
        return Err(ApiError::invalid("limit", "limit must be from 1 to 1000"));
    }
    if q.target.is_some() && q.after != 0 {
        return Err(ApiError::invalid("after", "use either target or after, not both"));
    }
    let rows = match &q.target {
        Some(t) => state.store.audit_of(t, q.limit).await?,
        None => state.store.audit(q.after, q.limit).await?,
    };
    let entries: Vec<Value> = rows.iter().map(crate::runtime::feed::audit_json).collect();
    Ok(Json(json!(entries)))
}

async fn verify_audit(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    let (v, broken) = wavegate_store::verify_audit_chain(&*state.store).await?;
    if let Some(b) = broken {
        return Ok(Json(json!({
            "ok": false,
            "verified": v.verified(),
            "first_bad": {"seq": b.seq, "problem": b.problem},
        })));
    }
    Ok(Json(json!({"ok": true, "verified": v.verified(), "head": v.head(), "first_bad": null})))
}

/// `GET /api/v1/backup`: every table in one read transaction. It holds token hashes and every
/// environment, so only an admin token for all environments may take it.
async fn backup(State(state): State<AppState>, p: Principal) -> ApiResult<Json<Value>> {
    p.require_admin()?;
    if !p.0.all_envs() {
        return Err(ApiError::forbidden(
            "a backup holds every environment; it needs an admin token scoped to all (*)",
        ));
    }
    let backup = state.store.export().await?;
    tracing::info!(actor = %p.0.principal, "backup taken");
    Ok(Json(serde_json::to_value(backup).map_err(ApiError::internal)?))
}
