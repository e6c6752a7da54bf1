//! Configuration under `/api/v1`: environments, flags and segments (each with versions, diff,
//! revert and archive, routed once for both kinds), and bulk apply of a flag file.
//!
//! **Invariant:** every write validates the whole new content against the current
//! environments and segments (`service::config`) and reaches the store as one
//! `Store::apply` call, so a change is all or nothing and always audited. What a token may
//! change is decided here: an environment-scoped token changes only its environments' state.

use std::collections::BTreeMap;

use crate::http::openapi::api_routes;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::environments::{Environment, NewEnvironment};
use wavegate_api::flags::{
    Applied, Archived, Diff, FlagPut, Head, Revert, Reverted, SegmentPut, SpecCheck, SpecProblem,
    Stale, Version,
};
use wavegate_core::flag::{validate_flag_key, validate_key};
use wavegate_core::spec::{FlagFile, FlagSpec};
use wavegate_store::{Kind, PutOutcome, Role, TokenKind, VersionRecord};

use crate::http::auth::Principal;
use crate::http::convert::IntoApi;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::{ApiPath as Path, ApiQuery as Query, JsonBody, parse_json};
use crate::http::openapi::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, ReasonHeader, TooLarge, TooLargeText,
    Unauthorized,
};
use crate::http::scope::{self, Members};
use crate::http::{reason, require_all_envs};
use crate::service::config;
use crate::state::AppState;

/// Configuration routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(list_environments, create_environment))
        .routes(api_routes!(list_flags))
        .routes(api_routes!(get_flag, flags::put))
        .routes(api_routes!(list_segments))
        .routes(api_routes!(get_segment, segments::put))
        .merge(flags::router())
        .merge(segments::router())
        .routes(api_routes!(apply_file))
}

/// Defines the routes flags and segments share, once for both kinds: put, archive, unarchive,
/// versions, one version, diff and revert under `$base/{key}`, each documented under `$tag`
/// (with the errors unarchive and revert answer for the kind).
macro_rules! versioned {
    (
        $module:ident, $kind:expr, $base:tt, $tag:tt, $what:tt, $put:ident { $field:ident },
        unarchive: [$($unarchive:ident),*], revert: [$($revert:ident),*]
    ) => {
        mod $module {
            use super::*;

            /// The routes under `{key}` but its get and put (routed with the kind's own).
            pub(super) fn router() -> OpenApiRouter<AppState> {
                OpenApiRouter::new()
                    .routes(api_routes!(archive))
                    .routes(api_routes!(unarchive))
                    .routes(api_routes!(versions))
                    .routes(api_routes!(version))
                    .routes(api_routes!(diff))
                    .routes(api_routes!(revert))
                    .routes(api_routes!(check))
            }

            #[utoipa::path(post, path = "/{key}/check", context_path = $base, operation_id = concat!("check_", $what), tag = $tag,
                summary = concat!("Check a ", $what, " without storing it"),
                description = "Parses the document (YAML, or JSON, which is YAML too) and \
                    validates it as `PUT` would, against the current environments and segments; \
                    answers what is wrong at its line and column or field, the document as JSON \
                    and, when valid, as YAML. Nothing is stored. Needs the editor role.",
                params(("key" = String, Path, description = "Its key")),
                request_body(content = String, content_type = "application/yaml",
                    description = concat!("The ", $what, " as flags-as-code (YAML or JSON)")),
                security(("bearer" = [])),
                responses((status = 200, description = "The check", body = SpecCheck),
                    BadRequest, Unauthorized, Forbidden, TooLargeText))]
            async fn check(
                State(s): State<AppState>,
                p: Principal,
                Path(key): Path<String>,
                body: Bytes,
            ) -> ApiResult<Json<SpecCheck>> {
                check_kind(&s, &p, $kind, &key, &body).await.map(Json)
            }

            #[utoipa::path(put, path = "/{key}", context_path = $base, operation_id = concat!("put_", $what), tag = $tag,
                summary = concat!("Create or replace a ", $what),
                description = concat!("Validates the whole ", $what, " against the current \
                    environments and segments and stores it as a new version (none when the \
                    content is unchanged). An environment-scoped admin token may change only \
                    its environments' state.") ,
                params(
                    ("key" = String, Path, description = "Its key (letters, digits, `-`, `_`, `.`)"),
                    ("If-Match" = Option<String>, Header,
                        description = "Only if the current version is this one (`\"3\"`)"),
                    ReasonHeader,
                ),
                request_body(content = Object,
                    description = concat!("The ", $what, " as flags-as-code (JSON)")),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "Replaced, or already so (`changed: false`)",
                        body = $put),
                    (status = 201, description = "Created: its first version", body = $put),
                    BadRequest, Unauthorized, Forbidden, Conflict, TooLarge, Invalid,
                ))]
            pub(super) async fn put(
                State(s): State<AppState>,
                p: Principal,
                Path(key): Path<String>,
                h: HeaderMap,
                JsonBody(spec): JsonBody<Value>,
            ) -> ApiResult<(StatusCode, Json<$put>)> {
                let (status, changed, head) = put_kind(&s, &p, $kind, &key, &h, spec).await?;
                Ok((status, Json($put { changed, $field: head })))
            }

            #[utoipa::path(post, path = "/{key}/archive", context_path = $base, operation_id = concat!("archive_", $what), tag = $tag,
                summary = concat!("Archive a ", $what),
                description = "Kept, with its versions, but no longer served. Refused while \
                    something live still uses it.",
                params(("key" = String, Path, description = "Its key"), ReasonHeader),
                security(("bearer" = [])),
                responses((status = 200, description = "Archived", body = Archived),
                    Unauthorized, Forbidden, NotFound, Conflict))]
            async fn archive(
                State(s): State<AppState>,
                p: Principal,
                Path(key): Path<String>,
                h: HeaderMap,
            ) -> ApiResult<Json<Archived>> {
                set_archived(&s, &p, $kind, &key, true, &h).await
            }

            #[utoipa::path(post, path = "/{key}/unarchive", context_path = $base, operation_id = concat!("unarchive_", $what), tag = $tag,
                summary = concat!("Unarchive a ", $what),
                params(("key" = String, Path, description = "Its key"), ReasonHeader),
                security(("bearer" = [])),
                responses((status = 200, description = "Served again", body = Archived),
                    Unauthorized, Forbidden, NotFound $(, $unarchive)*))]
            async fn unarchive(
                State(s): State<AppState>,
                p: Principal,
                Path(key): Path<String>,
                h: HeaderMap,
            ) -> ApiResult<Json<Archived>> {
                set_archived(&s, &p, $kind, &key, false, &h).await
            }

            #[utoipa::path(get, path = "/{key}/versions", context_path = $base, operation_id = concat!($what, "_versions"), tag = $tag,
                summary = concat!("Every version of a ", $what),
                description = "Oldest first, each redacted to what the token may read.",
                params(("key" = String, Path, description = "Its key")),
                security(("bearer" = [])),
                responses((status = 200, description = "Its versions", body = Vec<Version>),
                    Unauthorized, Forbidden, NotFound))]
            async fn versions(
                State(s): State<AppState>,
                p: Principal,
                Path(key): Path<String>,
            ) -> ApiResult<Json<Vec<Version>>> {
                versions_kind(&s, &p, $kind, &key).await
            }

            #[utoipa::path(get, path = "/{key}/versions/{version}", context_path = $base, operation_id = concat!($what, "_version"),
                tag = $tag, summary = concat!("One version of a ", $what),
                params(("key" = String, Path, description = "Its key"),
                    ("version" = i64, Path, description = "The version's number")),
                security(("bearer" = [])),
                responses((status = 200, description = "That version", body = Version),
                    BadRequest, Unauthorized, Forbidden, NotFound))]
            async fn version(
                State(s): State<AppState>,
                p: Principal,
                Path((key, v)): Path<(String, i64)>,
            ) -> ApiResult<Json<Version>> {
                let mut rec = version_kind(&s, &p, $kind, &key, v).await?;
                rec.spec = Reading::of(&s, &p, $kind).await?.redact(&key, rec.spec);
                Ok(Json(rec.into_api()))
            }

            #[utoipa::path(get, path = "/{key}/diff", context_path = $base, operation_id = concat!("diff_", $what), tag = $tag,
                summary = concat!("Diff two versions of a ", $what),
                description = "A unified diff of `{archived, spec}` as pretty JSON.",
                params(("key" = String, Path, description = "Its key"), DiffQuery),
                security(("bearer" = [])),
                responses((status = 200, description = "The diff", body = Diff),
                    BadRequest, Unauthorized, Forbidden, NotFound))]
            async fn diff(
                State(s): State<AppState>,
                p: Principal,
                Path(key): Path<String>,
                Query(q): Query<DiffQuery>,
            ) -> ApiResult<Json<Diff>> {
                diff_kind(&s, &p, $kind, &key, q).await
            }

            #[utoipa::path(post, path = "/{key}/revert", context_path = $base, operation_id = concat!("revert_", $what), tag = $tag,
                summary = concat!("Revert a ", $what, " to an earlier version"),
                description = "Makes a new version with the content of an earlier one \
                    (validated again against today's environments and segments).",
                params(("key" = String, Path, description = "Its key"), ReasonHeader),
                request_body = Revert,
                security(("bearer" = [])),
                responses((status = 200, description = "Reverted", body = Reverted),
                    BadRequest, Unauthorized, Forbidden, NotFound, TooLarge $(, $revert)*))]
            async fn revert(
                State(s): State<AppState>,
                p: Principal,
                Path(key): Path<String>,
                h: HeaderMap,
                JsonBody(body): JsonBody<Revert>,
            ) -> ApiResult<Json<Reverted>> {
                super::revert(&s, &p, $kind, &key, body, &h).await
            }
        }
    };
}

// A flag may no longer validate against today's segments and environments (422), and is
// locked while its rollout runs (409); a segment's content stands alone.
versioned!(flags, Kind::Flag, "/api/v1/flags", "Flags", "flag", FlagPut { flag },
    unarchive: [Invalid], revert: [Conflict, Invalid]);
versioned!(segments, Kind::Segment, "/api/v1/segments", "Segments", "segment",
    SegmentPut { segment }, unarchive: [], revert: []);

fn key_ok(key: &str) -> ApiResult<()> {
    validate_key(key).map_err(|m| ApiError::invalid("key", m))
}

/// Refuses a flag change an environment-scoped admin token may not make: it may change only the
/// environments in its scope, and nothing shared by all environments. `archived` is the flag's
/// state before and after: archiving or unarchiving stops or starts serving the flag in every
/// environment, so any change of it needs a token for all environments, whichever route makes
/// it (archive, unarchive, put, apply or revert).
fn check_flag_scope(
    p: &Principal,
    old: Option<&Value>,
    new: &Value,
    archived: (bool, bool),
) -> ApiResult<()> {
    if p.0.all_envs() {
        return Ok(());
    }
    if archived.0 != archived.1 {
        let what = if archived.1 { "archives" } else { "unarchives" };
        return Err(ApiError::forbidden(format!(
            "this change {what} the flag, which changes it in every environment; it needs an admin token for all environments"
        )));
    }
    let empty = Value::Object(serde_json::Map::new());
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

/// Refuses a change of `kind` from `old` (its spec and whether it is archived) to `new` that the
/// token's scope does not cover.
fn check_scope(
    p: &Principal,
    kind: Kind,
    old: Option<(&Value, bool)>,
    new: (&Value, bool),
) -> ApiResult<()> {
    match kind {
        Kind::Flag => {
            let was_archived = old.is_some_and(|(_, a)| a);
            check_flag_scope(p, old.map(|(v, _)| v), new.0, (was_archived, new.1))
        }
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

/// The environments, in promotion order.
#[utoipa::path(get, path = "/api/v1/environments", tag = "Environments",
    security(("bearer" = [])),
    responses((status = 200, description = "The environments, first to last", body = Vec<Environment>),
        Unauthorized, Forbidden))]
async fn list_environments(
    State(state): State<AppState>,
    p: Principal,
) -> ApiResult<Json<Vec<Environment>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    Ok(Json(state.store.environments().await?))
}

/// Adds an environment at the end of the promotion order (admin tokens for all environments).
#[utoipa::path(post, path = "/api/v1/environments", tag = "Environments",
    params(ReasonHeader),
    request_body = NewEnvironment,
    security(("bearer" = [])),
    responses((status = 201, description = "Created", body = Environment),
        BadRequest, Unauthorized, Forbidden, Conflict, TooLarge, Invalid))]
async fn create_environment(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewEnvironment>,
) -> ApiResult<Response> {
    let p = p.require_admin()?;
    require_all_envs(&p, "creating an environment")?;
    key_ok(&body.name)?;
    let e = config::create_environment(&state, &body.name, &p.who(), reason(&headers)).await?;
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

// ---------- flags and segments (shared shapes) ----------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// List the archived ones instead of the live ones.
    #[serde(default)]
    archived: bool,
    /// Flags only: just the stale ones (a completed rollout held clean for its settle time),
    /// each with `stale: {rollout, environment, since}`.
    #[serde(default)]
    stale: bool,
}

/// What `p` may read of `kind` (`http::scope`): an environment-scoped token sees only its
/// environments' state of a flag, and the members of the segments its environments use.
struct Reading<'a> {
    p: &'a Principal,
    kind: Kind,
    members: Members,
}

impl Reading<'_> {
    async fn of<'a>(state: &AppState, p: &'a Principal, kind: Kind) -> ApiResult<Reading<'a>> {
        let members = match kind {
            Kind::Segment => Members::of(state, &p.0).await?,
            _ => Members::All,
        };
        Ok(Reading { p, kind, members })
    }

    fn redact(&self, key: &str, spec: Value) -> Value {
        scope::redact(&self.p.0, &self.members, self.kind, key, spec)
    }
}

async fn list_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    q: &ListQuery,
) -> ApiResult<Json<Vec<Head>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let heads = state.heads(kind, q.archived).await?;
    let reading = Reading::of(state, p, kind).await?;
    Ok(Json(
        heads
            .into_iter()
            .map(|mut h| {
                h.spec = reading.redact(&h.key, h.spec);
                h.into_api()
            })
            .collect(),
    ))
}

async fn get_kind(state: &AppState, p: &Principal, kind: Kind, key: &str) -> ApiResult<Json<Head>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let mut head = state.head(kind, key).await?.ok_or_else(|| not_found(kind, key))?;
    head.spec = Reading::of(state, p, kind).await?.redact(key, head.spec);
    Ok(Json(head.into_api()))
}

async fn versions_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
) -> ApiResult<Json<Vec<Version>>> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let versions = state.store.versions(kind, key).await?;
    if versions.is_empty() {
        return Err(not_found(kind, key));
    }
    let reading = Reading::of(state, p, kind).await?;
    Ok(Json(
        versions
            .into_iter()
            .map(|mut v| {
                v.spec = reading.redact(key, v.spec);
                v.into_api()
            })
            .collect(),
    ))
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    /// The older version.
    from: i64,
    /// The newer version (default: the current one).
    to: Option<i64>,
}

async fn diff_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    q: DiffQuery,
) -> ApiResult<Json<Diff>> {
    let to = match q.to {
        Some(v) => v,
        None => get_kind(state, p, kind, key).await?.version,
    };
    let mut a = version_kind(state, p, kind, key, q.from).await?;
    let mut b = version_kind(state, p, kind, key, to).await?;
    let reading = Reading::of(state, p, kind).await?;
    a.spec = reading.redact(key, a.spec);
    b.spec = reading.redact(key, b.spec);
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
    Ok(Json(Diff { key: key.to_owned(), from: q.from, to, diff }))
}

/// Puts new content for `kind` `key` from a request body (validated, scope checked,
/// `If-Match` honoured); answers whether it changed and the new head, with 201 for a first
/// version.
async fn put_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    headers: &HeaderMap,
    spec: Value,
) -> ApiResult<(StatusCode, bool, Head)> {
    let p = &p.acting_as(&[Role::Editor])?;
    if kind == Kind::Segment {
        require_all_envs(p, "changing a segment")?;
    }
    match kind {
        Kind::Flag => validate_flag_key(key).map_err(|m| ApiError::invalid("key", m))?,
        _ => key_ok(key)?,
    }
    let spec = config::validated(state, kind, key, &spec, "body").await?;
    let old = state.head(kind, key).await?;
    check_scope(p, kind, old.as_ref().map(|h| (&h.spec, h.archived)), (&spec, false))?;
    let mut w = config::put(kind, key, spec, false);
    w.expected_version = expected_version(headers)?;
    let out = config::write(state, vec![w], &p.who(), reason(headers)).await?;
    let head = state
        .head(kind, key)
        .await?
        .ok_or_else(|| ApiError::internal(format!("{} vanished after write", kind.as_str())))?;
    Ok((created_or_ok(&out[0]), out[0].changed, head.into_api()))
}

/// Checks a document of `kind` `key` as a `PUT` would validate it, storing nothing.
async fn check_kind(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    body: &[u8],
) -> ApiResult<SpecCheck> {
    p.acting_as(&[Role::Editor])?;
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the document is not valid UTF-8"))?;
    let problem =
        |e: ApiError| SpecProblem { field: e.field, line: None, column: None, message: e.message };
    let spec: Value = match wavegate_core::flagfile::parse_yaml(text) {
        Ok(spec) => spec,
        Err(wavegate_core::flagfile::FlagFileError::Syntax { line, column, message }) => {
            let error = SpecProblem { field: None, line, column, message };
            return Ok(SpecCheck { ok: false, spec: None, yaml: None, error: Some(error) });
        }
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    };
    let key_ok = match kind {
        Kind::Flag => validate_flag_key(key).map_err(|m| ApiError::invalid("key", m)),
        _ => key_ok(key),
    };
    let checked = match key_ok {
        Ok(()) => config::validated(state, kind, key, &spec, "body").await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    Ok(match checked {
        Ok(valid) => {
            let yaml = wavegate_core::flagfile::to_yaml(&valid).map_err(ApiError::internal)?;
            SpecCheck { ok: true, spec: Some(spec), yaml: Some(yaml), error: None }
        }
        Err(e) if e.status.is_client_error() => {
            SpecCheck { ok: false, spec: Some(spec), yaml: None, error: Some(problem(e)) }
        }
        Err(e) => return Err(e),
    })
}

async fn set_archived(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    archived: bool,
    headers: &HeaderMap,
) -> ApiResult<Json<Archived>> {
    let p = &p.acting_as(&[Role::Editor])?;
    let head = state.head(kind, key).await?.ok_or_else(|| not_found(kind, key))?;
    match kind {
        Kind::Flag => check_flag_scope(p, Some(&head.spec), &head.spec, (head.archived, archived))
            .and_then(|_| require_all_envs(p, "archiving a flag"))?,
        Kind::Segment | Kind::Plan | Kind::Scorecard | Kind::Setting => {
            require_all_envs(p, "changing a segment or plan")?
        }
    }
    config::check_archivable(state, kind, key, &head.spec, archived).await?;
    let puts = vec![config::put(kind, key, head.spec, archived)];
    let out = config::write(state, puts, &p.who(), reason(headers)).await?;
    Ok(Json(Archived {
        key: key.to_owned(),
        version: out[0].version,
        archived,
        changed: out[0].changed,
    }))
}

async fn revert(
    state: &AppState,
    p: &Principal,
    kind: Kind,
    key: &str,
    body: Revert,
    headers: &HeaderMap,
) -> ApiResult<Json<Reverted>> {
    let p = &p.acting_as(&[Role::Editor])?;
    let target = version_kind(state, p, kind, key, body.version).await?;
    let head = state.head(kind, key).await?.ok_or_else(|| not_found(kind, key))?;
    if kind == Kind::Segment {
        require_all_envs(p, "changing a segment")?;
    }
    config::validated(state, kind, key, &target.spec, "version").await?;
    check_scope(p, kind, Some((&head.spec, head.archived)), (&target.spec, target.archived))?;
    let mut w = config::put(kind, key, target.spec, target.archived);
    w.action = Some("revert".into());
    w.details = json!({"reverted_to": body.version});
    let why = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .or_else(|| reason(headers));
    let out = config::write(state, vec![w], &p.who(), why).await?;
    Ok(Json(Reverted {
        key: key.to_owned(),
        version: out[0].version,
        reverted_to: body.version,
        changed: out[0].changed,
    }))
}

// ---------- flags ----------

/// The live (or archived) flags, each redacted to the environments the token may read; with
/// `stale=true`, only the stale ones, each with `stale`.
#[utoipa::path(get, path = "/api/v1/flags", tag = "Flags",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The flags' heads", body = Vec<Head>),
        BadRequest, Unauthorized, Forbidden))]
async fn list_flags(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<Head>>> {
    let Json(all) = list_kind(&s, &p, Kind::Flag, &q).await?;
    if !q.stale {
        return Ok(Json(all));
    }
    let rows = s.store.rollouts(false).await?;
    let mut stale: BTreeMap<String, Stale> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.state == "completed" && p.0.allows_env(&r.environment)) {
        let superseded = crate::service::rollouts::superseded(&rows, row);
        let since = row.doc.get("stale_at").and_then(|at| serde_json::from_value(at.clone()).ok());
        if let Some(since) = since.filter(|_| !superseded) {
            let (rollout, environment) = (row.id.clone(), row.environment.clone());
            stale.insert(row.flag.clone(), Stale { rollout, environment, since });
        }
    }
    let out = all
        .into_iter()
        .filter_map(|f| {
            let info = stale.get(&f.key)?.clone();
            Some(Head { stale: Some(info), ..f })
        })
        .collect();
    Ok(Json(out))
}

/// A flag's head, plus `unleash_approximate` (and, when true, `unleash_notes` by environment):
/// whether Unleash SDKs may answer differently from wavegate for some contexts.
#[utoipa::path(get, path = "/api/v1/flags/{key}", tag = "Flags",
    params(("key" = String, Path, description = "The flag's key")),
    security(("bearer" = [])),
    responses((status = 200, description = "The flag's head", body = Head),
        Unauthorized, Forbidden, NotFound))]
async fn get_flag(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Head>> {
    let Json(head) = get_kind(&s, &p, Kind::Flag, &key).await?;
    let notes = unleash_notes(&s, &key, &head.spec);
    Ok(Json(Head {
        unleash_approximate: Some(!notes.is_empty()),
        unleash_notes: (!notes.is_empty()).then_some(notes),
        ..head
    }))
}

// ---------- segments ----------

/// The live (or archived) segments; an environment-scoped token sees the members (`keys`) only
/// of the segments that live flags use in its environments.
#[utoipa::path(get, path = "/api/v1/segments", tag = "Segments",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The segments' heads", body = Vec<Head>),
        BadRequest, Unauthorized, Forbidden))]
async fn list_segments(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<Head>>> {
    list_kind(&s, &p, Kind::Segment, &q).await
}

/// A segment's head (for an environment-scoped token, its `keys` become `keys_redacted: true`
/// unless a live flag uses it in one of the token's environments).
#[utoipa::path(get, path = "/api/v1/segments/{key}", tag = "Segments",
    params(("key" = String, Path, description = "The segment's key")),
    security(("bearer" = [])),
    responses((status = 200, description = "The segment's head", body = Head),
        Unauthorized, Forbidden, NotFound))]
async fn get_segment(
    State(s): State<AppState>,
    p: Principal,
    Path(key): Path<String>,
) -> ApiResult<Json<Head>> {
    get_kind(&s, &p, Kind::Segment, &key).await
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
#[utoipa::path(post, path = "/api/v1/apply", tag = "Flags",
    summary = "Apply a flag file",
    description = "Segments and flags as code (YAML, or JSON with `Content-Type: application/json`), \
        validated whole and applied in one transaction; applying the same file twice makes no \
        new versions.",
    params(ReasonHeader),
    request_body(content(
        (String = "application/yaml"),
        (Object = "application/json"),
    ), description = "`{segments: {…}, flags: {…}}` in the flags-as-code format"),
    security(("bearer" = [])),
    responses((status = 200, description = "What the file changed", body = Applied),
        BadRequest, Unauthorized, Forbidden, Conflict, TooLargeText, Invalid))]
async fn apply_file(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Applied>> {
    let p = p.acting_as(&[Role::Editor])?;
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
    let existing = config::live_segments(&state).await?;
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
        let old = state.head(Kind::Flag, key).await?;
        let was_archived = old.as_ref().is_some_and(|h| h.archived);
        check_flag_scope(&p, old.as_ref().map(|h| &h.spec), &spec, (was_archived, false))?;
        puts.push(config::put(Kind::Flag, key, spec, false));
    }
    let out = config::write(&state, puts, &p.who(), reason(&headers)).await?;
    let changed = out.iter().filter(|o| o.changed).count() as u64;
    Ok(Json(Applied {
        changed,
        unchanged: out.len() as u64 - changed,
        results: out.iter().map(IntoApi::into_api).collect(),
    }))
}
