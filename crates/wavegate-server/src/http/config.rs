//! Configuration under `/api/v1`: environments, flags and segments (each with versions, diff,
//! revert and archive, routed once for both kinds), and bulk apply of a flag file.
//!
//! **Invariant:** every write validates the whole new content against the current
//! environments and segments (`service::config`) and reaches the store as one
//! `Store::apply` call, so a change is all or nothing and always audited. What a token may
//! change is decided here: an environment-scoped token changes only its environments' state.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wavegate_core::flag::validate_key;
use wavegate_core::spec::{FlagFile, FlagSpec};
use wavegate_store::{Head, Kind, PutOutcome, TokenKind, VersionRecord};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, ApiQuery as Query, JsonBody, parse_json};
use crate::http::{reason, require_all_envs};
use crate::service::config;
use crate::state::AppState;

/// Configuration routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/environments", get(list_environments).post(create_environment))
        .route("/api/v1/flags", get(list_flags))
        .route("/api/v1/flags/{key}", get(get_flag))
        .route(
            "/api/v1/segments",
            get(|State(s): State<AppState>, p: Principal, Query(q): Query<ListQuery>| async move {
                list_kind(&s, &p, Kind::Segment, &q).await
            }),
        )
        .route(
            "/api/v1/segments/{key}",
            get(|State(s): State<AppState>, p: Principal, Path(key): Path<String>| async move {
                get_kind(&s, &p, Kind::Segment, &key).await
            }),
        )
        .merge(versioned(Kind::Flag, "/api/v1/flags"))
        .merge(versioned(Kind::Segment, "/api/v1/segments"))
        .route("/api/v1/apply", post(apply_file))
}

/// The routes flags and segments share, for `kind` under `base`: put, archive, unarchive,
/// versions, one version, diff and revert.
fn versioned(kind: Kind, base: &str) -> Router<AppState> {
    let at = |tail: &str| format!("{base}/{{key}}{tail}");
    Router::new()
        .route(
            &at(""),
            put(
                move |State(s): State<AppState>,
                      p: Principal,
                      Path(key): Path<String>,
                      h: HeaderMap,
                      JsonBody(spec): JsonBody<Value>| async move {
                    put_kind(&s, &p, kind, &key, &h, spec).await
                },
            ),
        )
        .route(
            &at("/archive"),
            post(
                move |State(s): State<AppState>,
                      p: Principal,
                      Path(key): Path<String>,
                      h: HeaderMap| async move {
                    set_archived(&s, &p, kind, &key, true, &h).await
                },
            ),
        )
        .route(
            &at("/unarchive"),
            post(
                move |State(s): State<AppState>,
                      p: Principal,
                      Path(key): Path<String>,
                      h: HeaderMap| async move {
                    set_archived(&s, &p, kind, &key, false, &h).await
                },
            ),
        )
        .route(
            &at("/versions"),
            get(
                move |State(s): State<AppState>, p: Principal, Path(key): Path<String>| async move {
                    versions_kind(&s, &p, kind, &key).await
                },
            ),
        )
        .route(
            &at("/versions/{version}"),
            get(
                move |State(s): State<AppState>,
                      p: Principal,
                      Path((key, v)): Path<(String, i64)>| async move {
                    let mut rec = version_kind(&s, &p, kind, &key, v).await?;
                    rec.spec = redact(&p, kind, rec.spec);
                    ApiResult::Ok(Json(VersionDto::from(rec)))
                },
            ),
        )
        .route(
            &at("/diff"),
            get(
                move |State(s): State<AppState>,
                      p: Principal,
                      Path(key): Path<String>,
                      Query(q): Query<DiffQuery>| async move {
                    diff_kind(&s, &p, kind, &key, q).await
                },
            ),
        )
        .route(
            &at("/revert"),
            post(
                move |State(s): State<AppState>,
                      p: Principal,
                      Path(key): Path<String>,
                      h: HeaderMap,
                      JsonBody(body): JsonBody<RevertBody>| async move {
                    revert(&s, &p, kind, &key, body, &h).await
                },
            ),
        )
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

/// Refuses a change of `kind` from `old` to `new` that the token's scope does not cover.
fn check_scope(p: &Principal, kind: Kind, old: Option<&Value>, new: &Value) -> ApiResult<()> {
    match kind {
        Kind::Flag => check_flag_scope(p, old, new),
        Kind::Segment | Kind::Plan | Kind::Scorecard | Kind::Setting => {
            require_all_envs(p, "changing a segment")
        }
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

fn created_or_ok(o: &PutOutcome) -> StatusCode {
    if o.changed && o.version == 1 { StatusCode::CREATED } else { StatusCode::OK }
}

fn not_found(kind: Kind, key: &str) -> ApiError {
    ApiError::not_found(format!("{} {key:?} not found", kind.as_str()))
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
    let e = config::create_environment(&state, &body.name, p.name(), reason(&headers)).await?;
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
    let mut head = state.store.get(kind, key).await?.ok_or_else(|| not_found(kind, key))?;
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
        return Err(not_found(kind, key));
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
    Ok(config::version(state, kind, key, v).await?)
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

/// Puts new content for `kind` `key` from a request body (validated, scope checked,
/// `If-Match` honoured); answers the new head.
async fn put_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    headers: &HeaderMap,
    spec: Value,
) -> ApiResult<Response> {
    p.require_admin()?;
    if kind == Kind::Segment {
        require_all_envs(p, "changing a segment")?;
    }
    key_ok(key)?;
    let spec = config::validated(state, kind, key, &spec, "body").await?;
    let old = state.store.get(kind, key).await?;
    check_scope(p, kind, old.as_ref().map(|h| &h.spec), &spec)?;
    let mut w = config::put(kind, key, spec, false);
    w.expected_version = expected_version(headers)?;
    let out = config::write(state, vec![w], p.name(), reason(headers)).await?;
    let head = state
        .store
        .get(kind, key)
        .await?
        .ok_or_else(|| ApiError::internal(format!("{} vanished after write", kind.as_str())))?;
    let mut body = serde_json::Map::new();
    body.insert("changed".into(), json!(out[0].changed));
    body.insert(kind.as_str().into(), json!(HeadDto::from(head)));
    Ok((created_or_ok(&out[0]), Json(Value::Object(body))).into_response())
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
    let head = state.store.get(kind, key).await?.ok_or_else(|| not_found(kind, key))?;
    match kind {
        Kind::Flag => check_flag_scope(p, Some(&head.spec), &head.spec)
            .and_then(|_| require_all_envs(p, "archiving a flag"))?,
        Kind::Segment | Kind::Plan | Kind::Scorecard | Kind::Setting => {
            require_all_envs(p, "changing a segment or plan")?
        }
    }
    config::check_archivable(state, kind, key, &head.spec, archived).await?;
    let puts = vec![config::put(kind, key, head.spec, archived)];
    let out = config::write(state, puts, p.name(), reason(headers)).await?;
    Ok(Json(
        json!({"key": key, "version": out[0].version, "archived": archived, "changed": out[0].changed}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevertBody {
    version: i64,
    #[serde(default)]
    reason: Option<String>,
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
    let head = state.store.get(kind, key).await?.ok_or_else(|| not_found(kind, key))?;
    if kind == Kind::Segment {
        require_all_envs(p, "changing a segment")?;
    }
    config::validated(state, kind, key, &target.spec, "version").await?;
    check_scope(p, kind, Some(&head.spec), &target.spec)?;
    let mut w = config::put(kind, key, target.spec, target.archived);
    w.action = Some("revert".into());
    w.details = json!({"reverted_to": body.version});
    let why = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .or_else(|| reason(headers));
    let out = config::write(state, vec![w], p.name(), why).await?;
    Ok(Json(
        json!({"key": key, "version": out[0].version, "reverted_to": body.version, "changed": out[0].changed}),
    ))
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
    let existing = config::live_segments(&*state.store).await?;
    wavegate_core::flagfile::validate_flag_file(&file, &config::environments(&state), &existing)?;
    if !file.segments.is_empty() {
        require_all_envs(&p, "changing segments")?;
    }
    let mut puts = Vec::new();
    for (key, spec) in &file.segments {
        let spec = serde_json::to_value(spec).map_err(ApiError::internal)?;
        puts.push(config::put(Kind::Segment, key, spec, false));
    }
    for (key, spec) in &file.flags {
        let spec = serde_json::to_value(spec).map_err(ApiError::internal)?;
        let old = state.store.get(Kind::Flag, key).await?;
        check_flag_scope(&p, old.as_ref().map(|h| &h.spec), &spec)?;
        puts.push(config::put(Kind::Flag, key, spec, false));
    }
    let out = config::write(&state, puts, p.name(), reason(&headers)).await?;
    let changed = out.iter().filter(|o| o.changed).count();
    Ok(Json(json!({
        "changed": changed,
        "unchanged": out.len() - changed,
        "results": out.iter().map(OutcomeDto::from).collect::<Vec<_>>(),
    })))
}
