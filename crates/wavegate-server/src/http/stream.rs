//! `GET /api/v1/stream`: server-sent events for SDKs, edge relays and the dashboard.
//!
//! A new connection gets one `snapshot` event (every live flag and segment, redacted to what
//! the token may read: `http::scope`), then one event per audit entry as it commits: `flag` or
//! `segment` with the changed item's current head, or (admin tokens only) `audit` for
//! everything else, each entry only when the admin may see it (an environment-scoped admin sees
//! the entries about its environments, as in `GET /api/v1/audit`). A flag that starts using a
//! segment in an environment-scoped subscriber's environments is preceded by that segment
//! with its members (an SDK or relay needs them to evaluate the flag).
//! Every such event's id is the audit sequence number, so a client that reconnects with
//! `Last-Event-ID` gets exactly what it missed, replayed from the feed's recent items or else
//! from the store. Admin tokens also get coalesced `changed` notices (no id) when verdicts or
//! event aggregates move. Comment lines (`: heartbeat`) keep idle connections open through
//! proxies.
//!
//! What a subscriber starts with (the snapshot, or the first part of its replay) is read
//! before the answer, so a store that cannot be read answers 503, which the client retries,
//! rather than a stream that ends with nothing. Snapshots are built once per subscriber scope
//! and feed position ([`SnapshotCache`]) and shared, so a burst of subscribers costs one
//! read of the store, not one each. Events are encoded once per scope and shared too; each
//! subscriber's queue is bounded, its token's streams capped and ended on revocation
//! (`http::sse`).
//!
//! Only `admin` and `server-sdk` tokens may stream: the stream carries rules and segment
//! members (DESIGN.md, "Streams and secrets").

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::http::openapi::api_routes;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_store::{Head, Kind, StoreError, StoreResult, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, TooManyStreams, Unauthorized};
use crate::http::scope::{self, AuditReader, Members};
use crate::http::sse::{self, Ended, Sender};
use crate::runtime::feed::{FeedItem, item_for};
use crate::state::AppState;

/// The stream route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(stream))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Only this environment's rules (default: every environment the token may read).
    #[serde(default)]
    environment: Option<String>,
}

/// Who is listening and what they may see.
struct Scope {
    principal: Principal,
    environment: Option<String>,
    admin: bool,
    /// What determines the rendering: token kind and environments, the environment asked for.
    key: String,
    /// Segments whose members this subscriber has been sent (environment-scoped tokens only):
    /// a flag that starts using another one in its environments brings that one's members.
    members_sent: BTreeSet<String>,
}

impl Scope {
    /// Whether this subscriber reads environment `env`'s part of flags.
    fn reads_env(&self, env: &str) -> bool {
        self.principal.0.allows_env(env) && self.environment.as_ref().is_none_or(|e| e == env)
    }

    fn head(&self, kind: Kind, h: &Head, members: &Members) -> Value {
        let mut spec = scope::redact(&self.principal.0, members, kind, &h.key, h.spec.clone());
        if let (Kind::Flag, Some(env)) = (kind, &self.environment)
            && let Some(envs) = spec.get_mut("environments").and_then(Value::as_object_mut)
        {
            envs.retain(|name, _| name == env);
        }
        json!({"key": h.key, "version": h.version, "archived": h.archived, "spec": spec})
    }

    /// Whether this subscriber may read the members of a segment used in `used_in`.
    fn members_of(&self, key: &str, used_in: &BTreeSet<String>) -> Members {
        if self.principal.0.all_envs() {
            return Members::All;
        }
        let used = used_in.iter().any(|e| self.principal.0.allows_env(e));
        Members::Of(if used { BTreeSet::from([key.to_owned()]) } else { BTreeSet::new() })
    }

    /// The SSE events for a feed item that this subscriber may see: for a flag that uses
    /// segments whose members it has not been sent, those segments first (without an id, so a
    /// reconnect resumes before the flag and gets them again); then the item itself, rendered
    /// once per scope.
    async fn events(&mut self, state: &AppState, item: &FeedItem) -> StoreResult<Vec<Bytes>> {
        let FeedItem::Audit { seq, entry, head, segments, used_in, rendered, .. } = item else {
            return Ok(if self.admin {
                vec![Bytes::from_static(b"event: changed\ndata: {}\n\n")]
            } else {
                vec![]
            });
        };
        let mut out = Vec::new();
        match head.as_deref() {
            // (A flag that names no live segment needs none sent: its spec is not walked, once
            // per subscriber, for nothing.)
            Some((Kind::Flag, flag))
                if !self.principal.0.all_envs() && !flag.archived && !segments.is_empty() =>
            {
                let needed: BTreeSet<String> =
                    scope::flag_segments(&flag.spec, |e| self.reads_env(e))
                        .filter(|name| !self.members_sent.contains(*name))
                        .map(str::to_owned)
                        .collect();
                for seg in segments.iter().filter(|s| needed.contains(&s.key)) {
                    if seg.spec.get("keys").is_some() {
                        let members = Members::Of(BTreeSet::from([seg.key.clone()]));
                        let data = self.head(Kind::Segment, seg, &members).to_string();
                        out.push(sse::frame(Some("segment"), None, &data));
                    }
                    self.members_sent.insert(seg.key.clone());
                }
            }
            Some((Kind::Segment, seg)) if !self.principal.0.all_envs() => {
                if self.members_of(&seg.key, used_in).allows(&seg.key) {
                    self.members_sent.insert(seg.key.clone());
                } else {
                    self.members_sent.remove(&seg.key);
                }
            }
            _ => {}
        }
        let cached =
            rendered.lock().unwrap_or_else(PoisonError::into_inner).get(&self.key).cloned();
        let frame = match cached {
            Some(f) => f,
            None => {
                let f = self.render(state, *seq, entry, head.as_deref(), used_in).await?;
                rendered
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(self.key.clone(), f.clone());
                f
            }
        };
        out.extend(frame);
        Ok(out)
    }

    /// An audit item as this scope sees it, as one event: a flag or segment head (with the
    /// audit entry, for admins that may see it), or for admins the entry alone when they may
    /// see it.
    async fn render(
        &self,
        state: &AppState,
        seq: i64,
        entry: &Value,
        head: Option<&(Kind, Head)>,
        used_in: &BTreeSet<String>,
    ) -> StoreResult<Option<Bytes>> {
        let audit = if self.admin {
            AuditReader::new(&*state.store, &self.principal.0).view_json(entry).await?
        } else {
            None
        };
        let (name, data) = match (head, audit) {
            (Some((kind, h)), audit) => {
                let members = match kind {
                    Kind::Segment => self.members_of(&h.key, used_in),
                    _ => Members::All,
                };
                let mut data = self.head(*kind, h, &members);
                if let Some(entry) = audit {
                    data["audit"] = entry;
                }
                (kind.as_str(), data)
            }
            (None, Some(entry)) => ("audit", entry),
            (None, None) => return Ok(None),
        };
        Ok(Some(sse::frame(Some(name), Some(seq), &data.to_string())))
    }
}

/// Server-sent events: a `snapshot` of every live flag and segment, then `flag`, `segment` and
/// (admin tokens) `audit` events as changes commit, each with the audit sequence number as its
/// id; `Last-Event-ID` resumes after it. Admin tokens also get `changed` notices.
#[utoipa::path(get, path = "/api/v1/stream", tag = "Stream",
    params(StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    security(("bearer" = [])),
    responses((status = 200, description = "The event stream", content_type = "text/event-stream",
        body = String), BadRequest, Unauthorized, Forbidden, Invalid, TooManyStreams))]
async fn stream(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    if let Some(env) = &q.environment {
        if !state.snapshot.load().environments.contains(env) {
            return Err(ApiError::invalid("environment", format!("unknown environment {env:?}")));
        }
        p.require_env(env)?;
    }
    let last_id = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::invalid("Last-Event-ID", "must be an event id this stream sent")
                })?,
        ),
    };
    let slot = state.streams.live.join(&p.0, state.streams.limits.per_token)?;
    // Subscribe before reading anything, so nothing committed meanwhile is missed: the
    // receiver hears every item after the feed's position read next.
    let rx = state.streams.feed.subscribe();
    let at = state.streams.feed.position();
    let admin = p.0.kind == TokenKind::Admin;
    let key = format!(
        "{}|{}|{}|{admin}",
        p.0.kind.as_str(),
        p.0.environments.join(","),
        q.environment.as_deref().unwrap_or("*")
    );
    let mut scope = Scope {
        principal: p,
        environment: q.environment,
        admin,
        key,
        members_sent: BTreeSet::new(),
    };
    // Read before answering: a failure here is a 503 the client retries.
    let start = match last_id {
        // A resumable position: replay what was missed.
        Some(id) if id <= at => Start::Resume(id, Some(items_after(&state, id).await?)),
        // Ahead of this server's feed (the client heard it from another replica): what lies
        // between comes through the feed.
        Some(id) if id <= state.store.audit_head().await? => Start::Resume(id, None),
        // New, or an id from another database (e.g. before a restore): start over.
        _ => {
            let built = state.streams.live.snapshots.get(&state, &scope, at).await?;
            // Only environment-scoped subscribers keep track (every member is theirs otherwise).
            if !scope.principal.0.all_envs() {
                scope.members_sent.clone_from(&built.members_sent);
            }
            Start::Snapshot(built)
        }
    };
    let (tx, response) = sse::channel(&state.streams.limits, state.streams.heartbeat);
    tokio::spawn(async move {
        let feed = serve(&state, &mut scope, start, rx, &tx);
        sse::run(&state, slot, &tx, "/api/v1/stream", feed).await;
    });
    Ok(response)
}

/// Where a subscriber starts.
enum Start {
    /// From a snapshot.
    Snapshot(Arc<Built>),
    /// After this id, with the first batch of what it missed when read already.
    Resume(i64, Option<Batch>),
}

/// Audit items in order, and whether more may follow them in the store.
type Batch = (Vec<Arc<FeedItem>>, bool);

/// Feeds one subscriber until it goes away.
async fn serve(
    state: &AppState,
    scope: &mut Scope,
    start: Start,
    mut rx: broadcast::Receiver<Arc<FeedItem>>,
    tx: &Sender,
) -> Result<(), Ended> {
    // The work of sending is boxed: an idle subscriber's task (most of them, most of the
    // time) then holds only what waiting for the next item takes.
    let mut sent = match start {
        Start::Snapshot(built) => {
            Box::pin(tx.send(built.frame.clone())).await?;
            built.seq
        }
        Start::Resume(after, first) => Box::pin(catch_up(state, scope, after, first, tx)).await?,
    };
    loop {
        match rx.recv().await {
            Ok(item) => {
                if let Some(seq) = item.seq() {
                    if seq <= sent {
                        continue;
                    }
                    if seq > sent + 1 {
                        sent = Box::pin(catch_up(state, scope, sent, None, tx)).await?;
                        if seq <= sent {
                            continue;
                        }
                    }
                    sent = seq;
                }
                Box::pin(deliver(state, scope, &item, tx, true)).await?;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                sent = Box::pin(catch_up(state, scope, sent, None, tx)).await?;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Sends one item's events; the revocation of the subscriber's own token ends the stream
/// before anything after it is sent. `live`: the item came from the feed as it committed, and
/// its fan-out is counted (`wavegate_stream_fanout_seconds`); replays are not.
async fn deliver(
    state: &AppState,
    scope: &mut Scope,
    item: &FeedItem,
    tx: &Sender,
    live: bool,
) -> Result<(), Ended> {
    if item.revoked_token() == Some(scope.principal.0.id.as_str()) {
        return Err(Ended::Revoked);
    }
    let fanout = match item {
        FeedItem::Audit { heard: Some(heard), .. } if live => {
            Some(sse::Fanout { heard: heard.clone(), metrics: state.metrics.clone() })
        }
        _ => None,
    };
    let frames = scope.events(state, item).await?;
    let last = frames.len().saturating_sub(1);
    for (i, frame) in frames.into_iter().enumerate() {
        // The item's own event comes last (after segments it needs): that one is counted.
        tx.send_measured(frame, if i == last { fanout.clone() } else { None }).await?;
    }
    Ok(())
}

/// Sends every audit item after `after` (`first`: the first batch, when read already);
/// returns the last sequence sent.
async fn catch_up(
    state: &AppState,
    scope: &mut Scope,
    mut after: i64,
    mut first: Option<Batch>,
    tx: &Sender,
) -> Result<i64, Ended> {
    loop {
        let (items, more) = match first.take() {
            Some(batch) => batch,
            None => items_after(state, after).await?,
        };
        for item in &items {
            after = item.seq().unwrap_or(after);
            deliver(state, scope, item, tx, false).await?;
        }
        if !more {
            return Ok(after);
        }
    }
}

/// The audit items after `after`: from the feed when it still holds them all, else the next
/// page from the store.
async fn items_after(state: &AppState, after: i64) -> StoreResult<Batch> {
    if let Some(items) = state.streams.feed.recent_after(after) {
        return Ok((items, false));
    }
    const PAGE: usize = 500;
    let rows = state.store.audit(after, PAGE as i64).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(Arc::new(item_for(&*state.store, &state.record, row).await?));
    }
    Ok((items, rows.len() == PAGE))
}

/// A snapshot event as one scope sees it, at an audit position.
#[derive(Debug)]
pub(crate) struct Built {
    /// The audit sequence number it is at (its event id): it holds every change up to it.
    seq: i64,
    /// The whole `snapshot` event.
    frame: Bytes,
    /// The segments whose members it carries.
    members_sent: BTreeSet<String>,
}

/// The stream's snapshots by subscriber scope, each built once per feed position and shared
/// by every subscriber that starts there (one build at a time, so a burst of subscribers
/// waits for one read of the store rather than making one each).
#[derive(Debug, Default)]
pub struct SnapshotCache {
    built: Mutex<HashMap<String, Arc<Built>>>,
    building: tokio::sync::Mutex<()>,
    /// Builds started, and why the last one failed: those who waited for a build that failed
    /// get its error rather than trying again one after another.
    attempts: AtomicU64,
    failed: Mutex<Option<String>>,
}

impl SnapshotCache {
    /// `scope`'s snapshot at the feed position `at` or later.
    async fn get(&self, state: &AppState, scope: &Scope, at: i64) -> StoreResult<Arc<Built>> {
        if let Some(b) = self.fresh(&scope.key, at) {
            return Ok(b);
        }
        let seen = self.attempts.load(Ordering::SeqCst);
        let _one = self.building.lock().await;
        if let Some(b) = self.fresh(&scope.key, at) {
            return Ok(b);
        }
        if self.attempts.load(Ordering::SeqCst) != seen
            && let Some(reason) = self.failed.lock().unwrap_or_else(PoisonError::into_inner).clone()
        {
            return Err(StoreError::Unavailable(reason));
        }
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let built = match build(state, scope).await {
            Ok(b) => Arc::new(b),
            Err(e) => {
                *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                return Err(e);
            }
        };
        *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let mut map = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        // Older snapshots would be built again anyway: no need to keep them.
        map.retain(|_, b| b.seq >= built.seq);
        map.insert(scope.key.clone(), built.clone());
        Ok(built)
    }

    fn fresh(&self, key: &str, at: i64) -> Option<Arc<Built>> {
        let map = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).filter(|b| b.seq >= at).cloned()
    }
}

/// Every live flag and segment the subscriber may read, with the configuration revision (the
/// members of the segments its environments use, `http::scope`), at the store's audit head
/// (read first, so the snapshot holds at least every change up to it).
async fn build(state: &AppState, scope: &Scope) -> StoreResult<Built> {
    let seq = state.store.audit_head().await?;
    let revision = state.store.revision().await?;
    let flag_heads = state.heads(Kind::Flag, false).await?;
    let members = Members::from_flags(&scope.principal.0, flag_heads.iter().map(|h| &h.spec));
    let flags: Vec<Value> =
        flag_heads.iter().map(|h| scope.head(Kind::Flag, h, &members)).collect();
    drop(flag_heads);
    let segment_heads = state.heads(Kind::Segment, false).await?;
    let members_sent =
        segment_heads.iter().filter(|h| members.allows(&h.key)).map(|h| h.key.clone()).collect();
    let segments: Vec<Value> =
        segment_heads.iter().map(|h| scope.head(Kind::Segment, h, &members)).collect();
    let environments: Vec<String> = state
        .snapshot
        .load()
        .environments
        .iter()
        .filter(|e| scope.principal.0.allows_env(e))
        .filter(|e| scope.environment.as_ref().is_none_or(|want| want == *e))
        .cloned()
        .collect();
    let data = json!({"revision": revision, "environments": environments, "flags": flags, "segments": segments});
    Ok(Built {
        seq,
        frame: sse::frame(Some("snapshot"), Some(seq), &data.to_string()),
        members_sent,
    })
}
