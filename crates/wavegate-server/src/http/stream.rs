//! `GET /api/v1/stream`: server-sent events for SDKs, edge relays and the dashboard.
//!
//! A new connection gets one `snapshot` event (every live flag and segment, redacted to the
//! token's environments), then one event per audit entry as it commits: `flag` or `segment`
//! with the changed item's current head, or (admin tokens only) `audit` for everything else.
//! Every such event's id is the audit sequence number, so a client that reconnects with
//! `Last-Event-ID` gets exactly what it missed, replayed from the store. Admin tokens also get
//! coalesced `changed` notices (no id) when verdicts or event aggregates move. Comment lines
//! (`: heartbeat`) keep idle connections open through proxies.
//!
//! Only `admin` and `server-sdk` tokens may stream: the stream carries rules and segment
//! members (DESIGN.md, "Streams and secrets").

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wavegate_store::{Head, Kind, TokenKind};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::ApiQuery as Query;
use crate::http::openapi::{BadRequest, Forbidden, Invalid, Unauthorized};
use crate::runtime::feed::{FeedItem, item_for};
use crate::state::AppState;

/// The stream route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
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
}

impl Scope {
    fn head(&self, kind: Kind, h: &Head) -> Value {
        let mut spec = crate::http::config::redact(&self.principal, kind, h.spec.clone());
        if let (Kind::Flag, Some(env)) = (kind, &self.environment)
            && let Some(envs) = spec.get_mut("environments").and_then(Value::as_object_mut)
        {
            envs.retain(|name, _| name == env);
        }
        json!({"key": h.key, "version": h.version, "archived": h.archived, "spec": spec})
    }

    /// The SSE event for a feed item, if this subscriber may see it (rendered once per scope).
    fn event(&self, item: &FeedItem) -> Option<Event> {
        match item {
            FeedItem::Audit { seq, entry, head, rendered } => {
                let cached = rendered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&self.key)
                    .cloned();
                let out = match cached {
                    Some(out) => out,
                    None => {
                        let out = self.render(entry, head.as_deref());
                        rendered
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(self.key.clone(), out.clone());
                        out
                    }
                };
                let (name, data) = out?;
                Some(Event::default().event(name).id(seq.to_string()).data(&*data))
            }
            FeedItem::Changed if self.admin => Some(Event::default().event("changed").data("{}")),
            FeedItem::Changed => None,
        }
    }

    fn render(
        &self,
        entry: &Value,
        head: Option<&(Kind, Head)>,
    ) -> Option<(&'static str, Arc<str>)> {
        let (name, mut data) = match head {
            Some((kind, h)) => (kind.as_str(), self.head(*kind, h)),
            None if self.admin => ("audit", entry.clone()),
            None => return None,
        };
        if self.admin && head.is_some() {
            data["audit"] = entry.clone();
        }
        Some((name, Arc::from(data.to_string())))
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
    let scope = Scope { principal: p, environment: q.environment, admin, key };
    let (tx, out) = mpsc::channel::<Event>(256);
    let heartbeat = state.streams.heartbeat;
    state.metrics.stream_subscribers.inc();
    let metrics = state.metrics.clone();
    let mut closing = state.streams.closing.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            r = serve(&state, &scope, last_id, rx, &tx) => {
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
    scope: &Scope,
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
                if let Some(e) = scope.event(&item) {
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
    scope: &Scope,
    mut after: i64,
    tx: &mpsc::Sender<Event>,
) -> Result<i64, Ended> {
    loop {
        let rows = state.store.audit(after, 500).await?;
        let full = rows.len() == 500;
        for row in &rows {
            after = row.entry.seq;
            if let Some(e) = scope.event(&item_for(&*state.store, &state.record, row).await?) {
                send(tx, e).await?;
            }
        }
        if !full {
            return Ok(after);
        }
    }
}

/// Every live flag and segment the subscriber may read, with the configuration revision.
async fn snapshot(state: &AppState, scope: &Scope) -> Result<Value, Ended> {
    let revision = state.store.revision().await?;
    let flags: Vec<Value> = state
        .store
        .list(Kind::Flag, false)
        .await?
        .iter()
        .map(|h| scope.head(Kind::Flag, h))
        .collect();
    let segments: Vec<Value> = state
        .store
        .list(Kind::Segment, false)
        .await?
        .iter()
        .map(|h| scope.head(Kind::Segment, h))
        .collect();
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
