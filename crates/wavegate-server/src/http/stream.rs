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
//! `Last-Event-ID` gets exactly what it missed, replayed from the store. Admin tokens also get
//! coalesced `changed` notices (no id) when verdicts or event aggregates move. Comment lines
//! (`: heartbeat`) keep idle connections open through proxies.
//!
//! Only `admin` and `server-sdk` tokens may stream: the stream carries rules and segment
//! members (DESIGN.md, "Streams and secrets").

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;

use crate::http::openapi::api_routes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use wavegate_store::{Head, Kind, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, Unauthorized};
use crate::http::scope::{self, AuditReader, Members};
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
    async fn events(&mut self, state: &AppState, item: &FeedItem) -> Result<Vec<Event>, Ended> {
        let FeedItem::Audit { seq, entry, head, segments, used_in, rendered } = item else {
            return Ok(if self.admin {
                vec![Event::default().event("changed").data("{}")]
            } else {
                vec![]
            });
        };
        let mut out = Vec::new();
        match head.as_deref() {
            Some((Kind::Flag, flag)) if !self.principal.0.all_envs() && !flag.archived => {
                let needed: BTreeSet<String> =
                    scope::flag_segments(&flag.spec, |e| self.reads_env(e))
                        .filter(|name| !self.members_sent.contains(*name))
                        .map(str::to_owned)
                        .collect();
                for seg in segments.iter().filter(|s| needed.contains(&s.key)) {
                    if seg.spec.get("keys").is_some() {
                        let members = Members::Of(BTreeSet::from([seg.key.clone()]));
                        let data = self.head(Kind::Segment, seg, &members).to_string();
                        out.push(Event::default().event("segment").data(data));
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
        let cached = rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&self.key)
            .cloned();
        let rendering = match cached {
            Some(r) => r,
            None => {
                let r = self.render(state, entry, head.as_deref(), used_in).await?;
                rendered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(self.key.clone(), r.clone());
                r
            }
        };
        if let Some((name, data)) = rendering {
            out.push(Event::default().event(name).id(seq.to_string()).data(&*data));
        }
        Ok(out)
    }

    /// An audit item as this scope sees it: a flag or segment head (with the audit entry, for
    /// admins that may see it), or for admins the entry alone when they may see it.
    async fn render(
        &self,
        state: &AppState,
        entry: &Value,
        head: Option<&(Kind, Head)>,
        used_in: &BTreeSet<String>,
    ) -> Result<Option<(&'static str, Arc<str>)>, Ended> {
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
        Ok(Some((name, Arc::from(data.to_string()))))
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
        body = String), BadRequest, Unauthorized, Forbidden, Invalid))]
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
    // Subscribe before reading anything, so nothing committed meanwhile is missed.
    let rx = state.streams.feed.subscribe();
    let admin = p.0.kind == TokenKind::Admin;
    let key = format!(
        "{}|{}|{}|{admin}",
        p.0.kind.as_str(),
        p.0.environments.join(","),
        q.environment.as_deref().unwrap_or("*")
    );
    let scope = Scope {
        principal: p,
        environment: q.environment,
        admin,
        key,
        members_sent: BTreeSet::new(),
    };
    let (tx, out) = mpsc::channel::<Event>(256);
    let heartbeat = state.streams.heartbeat;
    state.metrics.stream_subscribers.inc();
    let metrics = state.metrics.clone();
    let mut closing = state.streams.closing.subscribe();
    tokio::spawn(async move {
        let mut scope = scope;
        tokio::select! {
            r = serve(&state, &mut scope, last_id, rx, &tx) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "stream subscriber ended");
                }
            }
            _ = closing.wait_for(|c| *c) => {}
        }
        metrics.stream_subscribers.dec();
    });
    let events = futures_util::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|e| (Ok::<_, Infallible>(e), out))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("heartbeat"))
        .into_response())
}

#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("client went away")]
    Gone,
    #[error(transparent)]
    Store(#[from] wavegate_store::StoreError),
}

async fn send(tx: &mpsc::Sender<Event>, e: Event) -> Result<(), Ended> {
    tx.send(e).await.map_err(|_| Ended::Gone)
}

/// Feeds one subscriber until it goes away.
async fn serve(
    state: &AppState,
    scope: &mut Scope,
    last_id: Option<i64>,
    mut rx: broadcast::Receiver<Arc<FeedItem>>,
    tx: &mpsc::Sender<Event>,
) -> Result<(), Ended> {
    let head = state.store.audit_head().await?;
    let mut sent = match last_id {
        // A resumable position: replay what was missed.
        Some(id) if id <= head => replay(state, scope, id, tx).await?,
        // New, or an id from another database (e.g. before a restore): start over.
        _ => {
            let snap = snapshot(state, scope).await?;
            send(
                tx,
                Event::default().event("snapshot").id(head.to_string()).data(snap.to_string()),
            )
            .await?;
            head
        }
    };
    loop {
        match rx.recv().await {
            Ok(item) => {
                if let FeedItem::Audit { seq, .. } = &*item {
                    if *seq <= sent {
                        continue;
                    }
                    if *seq > sent + 1 {
                        sent = replay(state, scope, sent, tx).await?;
                        if *seq <= sent {
                            continue;
                        }
                    }
                    sent = *seq;
                }
                for e in scope.events(state, &item).await? {
                    send(tx, e).await?;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                sent = replay(state, scope, sent, tx).await?;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Sends every audit entry after `after` from the store; returns the last sequence sent.
async fn replay(
    state: &AppState,
    scope: &mut Scope,
    mut after: i64,
    tx: &mpsc::Sender<Event>,
) -> Result<i64, Ended> {
    loop {
        let rows = state.store.audit(after, 500).await?;
        let full = rows.len() == 500;
        for row in &rows {
            after = row.entry.seq;
            for e in
                scope.events(state, &item_for(&*state.store, &state.record, row).await?).await?
            {
                send(tx, e).await?;
            }
        }
        if !full {
            return Ok(after);
        }
    }
}

/// Every live flag and segment the subscriber may read, with the configuration revision (the
/// members of the segments its environments use, `http::scope`).
async fn snapshot(state: &AppState, scope: &mut Scope) -> Result<Value, Ended> {
    let revision = state.store.revision().await?;
    let flag_heads = state.heads(Kind::Flag, false).await?;
    let members = Members::from_flags(&scope.principal.0, flag_heads.iter().map(|h| &h.spec));
    let flags: Vec<Value> =
        flag_heads.iter().map(|h| scope.head(Kind::Flag, h, &members)).collect();
    let segment_heads = state.heads(Kind::Segment, false).await?;
    scope.members_sent =
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
    Ok(
        json!({"revision": revision, "environments": environments, "flags": flags, "segments": segments}),
    )
}
