//! What every server-sent-event stream of the server shares (`/api/v1/stream`,
//! `/ofrep/v1/events`): the streams open per token (a cap, and revocation ending them), and
//! each subscriber's bounded queue between the task that feeds it and the response body.
//!
//! - **A cap per token** ([`StreamLimits::per_token`], `serve --max-streams-per-token`): one
//!   more stream is refused with 429 (`code: too_many_streams`) until one of them closes.
//! - **Revocation** ends every stream of the token at once ([`Live::revoke`]): the handler
//!   that revokes calls it, and so does every replica when the revocation reaches it through
//!   the change feed ([`follow_revocations`]), which also forgets the cached token first, so
//!   a reconnect is refused.
//! - **A bounded queue** ([`StreamLimits::queue_bytes`]): frames are encoded once and shared
//!   between subscribers ([`Bytes`]), and a subscriber's task waits while its queue is full. A
//!   subscriber that takes nothing from a full queue for [`StreamLimits::stall`] is dropped:
//!   its queue is emptied and its connection ends with an error, and it resumes with
//!   `Last-Event-ID` like any client that lost its connection.
//! - **Closing returns memory**: a subscriber's task ends as soon as its connection closes,
//!   not at the next event; and a connection whose writes make no progress for the stall time
//!   is closed ([`Guarded`]), so a client that never reads holds nothing for good.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use tokio::sync::{Notify, watch};
use wavegate_store::TokenRecord;

use crate::http::error::ApiError;
use crate::metrics::Metrics;
use crate::runtime::feed::{FeedItem, Heard};
use crate::state::AppState;

/// Limits on the streams of one server.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Most streams one token may hold open at once on this server.
    pub per_token: usize,
    /// Most bytes waiting in one subscriber's queue (a single larger frame, such as a big
    /// snapshot, is still queued when the queue is empty).
    pub queue_bytes: usize,
    /// How long a subscriber may take nothing from a full queue before it is dropped, and a
    /// connection's writes may make no progress before it is closed.
    pub stall: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits { per_token: 100, queue_bytes: 256 * 1024, stall: Duration::from_secs(10) }
    }
}

/// The streams open on this server, by token, and what they share.
#[derive(Debug, Default)]
pub struct Live {
    tokens: Mutex<HashMap<String, TokenStreams>>,
    /// The `/api/v1/stream` snapshots, built once per scope and position.
    pub(crate) snapshots: crate::http::stream::SnapshotCache,
    /// Told when a stream closes or a large configuration was replaced
    /// ([`crate::memory::after_bursts`] returns the memory).
    closed: Notify,
}

#[derive(Debug)]
struct TokenStreams {
    open: usize,
    revoked: watch::Sender<bool>,
}

impl Live {
    /// Takes one of `token`'s stream slots, or refuses (429) when it holds `cap` already.
    pub fn join(self: &Arc<Self>, token: &TokenRecord, cap: usize) -> Result<Slot, ApiError> {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = tokens
            .entry(token.id.clone())
            .or_insert_with(|| TokenStreams { open: 0, revoked: watch::Sender::new(false) });
        if entry.open >= cap {
            return Err(ApiError::too_many_streams(format!(
                "token {} already holds {cap} open streams on this server (the most one token \
                 may; serve --max-streams-per-token); close one, or give each client its own token",
                token.id
            )));
        }
        entry.open += 1;
        Ok(Slot { live: self.clone(), token: token.id.clone(), revoked: entry.revoked.subscribe() })
    }

    /// Ends every open stream of token `id` (it was revoked); whether it had any not ended
    /// yet.
    pub fn revoke(&self, id: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.get(id).is_some_and(|t| !t.revoked.send_replace(true))
    }

    /// The tokens with open streams.
    pub fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// Resolves once a stream has closed (or [`Live::freed`] was called) since the last call
    /// returned.
    pub async fn closed(&self) {
        self.closed.notified().await;
    }

    /// Says that much memory was just freed elsewhere (a large configuration replaced), so it
    /// is returned to the system as after a burst of closing streams.
    pub fn freed(&self) {
        self.closed.notify_one();
    }

    /// How many streams token `id` holds open.
    pub fn open(&self, id: &str) -> usize {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).get(id).map_or(0, |t| t.open)
    }
}

/// One open stream of a token; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    live: Arc<Live>,
    token: String,
    revoked: watch::Receiver<bool>,
}

impl Slot {
    /// The token holding it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Resolves once the token is revoked.
    pub async fn revoked(&mut self) {
        let _ = self.revoked.wait_for(|r| *r).await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut tokens = self.live.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = tokens.get_mut(&self.token) {
            t.open -= 1;
            if t.open == 0 {
                tokens.remove(&self.token);
            }
        }
        drop(tokens);
        self.live.closed.notify_one();
    }
}

/// Revocations heard through the feed (from this replica or another): forgets the cached
/// tokens, so that a reconnect is refused, then ends the revoked tokens' streams. `lagged`
/// means some items were missed: then every token with open streams is looked up again.
pub async fn revocations(state: &AppState, items: &[Arc<FeedItem>], lagged: bool) {
    let revoked: Vec<&str> = items.iter().filter_map(|i| i.revoked_token()).collect();
    if revoked.is_empty() && !lagged {
        return;
    }
    state.tokens.clear();
    for id in revoked {
        if state.streams.live.revoke(id) {
            tracing::info!(token = %id, "token revoked: ending its streams");
        }
    }
    if lagged {
        let open = state.streams.live.tokens();
        if open.is_empty() {
            return;
        }
        match state.store.tokens().await {
            Ok(tokens) => {
                for t in tokens.iter().filter(|t| t.revoked_at.is_some() && open.contains(&t.id)) {
                    if state.streams.live.revoke(&t.id) {
                        tracing::info!(token = %t.id, "token revoked: ending its streams");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not check open streams' tokens"),
        }
    }
}

/// Starts the task that applies [`revocations`] as the feed hears of them, on its own so that
/// a slow configuration reload never delays ending a revoked token's streams.
pub fn follow_revocations(state: &AppState) {
    let state = state.clone();
    let mut rx = state.streams.feed.subscribe();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match rx.recv().await {
                Ok(item) => revocations(&state, &[item], false).await,
                Err(RecvError::Lagged(_)) => revocations(&state, &[], true).await,
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// Why a subscriber's task stopped feeding it.
#[derive(Debug, thiserror::Error)]
pub enum Ended {
    /// The connection closed.
    #[error("the client went away")]
    Gone,
    /// It took nothing from its full queue for the stall time.
    #[error("the subscriber fell behind")]
    Slow,
    /// Its token was revoked.
    #[error("its token was revoked")]
    Revoked,
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] wavegate_store::StoreError),
}

impl From<Closed> for Ended {
    fn from(c: Closed) -> Ended {
        match c {
            Closed::Slow => Ended::Slow,
            Closed::Gone | Closed::Ended => Ended::Gone,
        }
    }
}

/// Runs a subscriber's task: `feed` until the token is revoked (heard first, so nothing after
/// the revocation is sent), the server shuts down or the connection closes; then [`finish`].
/// Counted in `wavegate_stream_subscribers` meanwhile.
pub async fn run(
    state: &AppState,
    mut slot: Slot,
    tx: &Sender,
    route: &str,
    feed: impl std::future::Future<Output = Result<(), Ended>>,
) {
    state.metrics.stream_subscribers.inc();
    let mut closing = state.streams.closing.subscribe();
    let ended = tokio::select! {
        biased;
        () = slot.revoked() => Err(Ended::Revoked),
        _ = closing.wait_for(|c| *c) => Ok(()),
        () = tx.closed() => Err(Ended::Gone),
        r = feed => r,
    };
    finish(state, tx, slot.token(), route, ended);
    state.metrics.stream_subscribers.dec();
}

/// Ends a subscriber's stream as its task stopped: a revoked token's stream stops at once,
/// a failed one breaks (so that the client resumes), and a drop or revocation is counted
/// (`wavegate_stream_dropped_total`) and logged.
fn finish(state: &AppState, tx: &Sender, token: &str, route: &str, ended: Result<(), Ended>) {
    match ended {
        Ok(()) | Err(Ended::Gone) => {}
        Err(Ended::Revoked) => {
            tx.cut();
            state.metrics.stream_dropped(route, "revoked");
            tracing::debug!(%token, route, "stream ended: its token was revoked");
        }
        Err(Ended::Slow) => {
            state.metrics.stream_dropped(route, "slow");
            tracing::info!(
                %token,
                route,
                "stream subscriber dropped: it read nothing of its full queue for {:?}; it may resume with Last-Event-ID",
                state.streams.limits.stall
            );
        }
        Err(Ended::Store(e)) => {
            tx.fail();
            state.metrics.stream_dropped(route, "store");
            tracing::warn!(%token, route, error = %e, "stream ended: the store could not be read; the client may resume");
        }
    }
}

/// How a queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The feeding task finished: the body sends what is queued, then ends.
    Finished,
    /// The subscriber was dropped or its task failed: the body ends with an error at once, so
    /// that the client sees a broken stream (and resumes) rather than a finished one.
    Failed,
    /// The body went away (the connection closed).
    Gone,
}

#[derive(Debug)]
struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the body: a frame, or the end.
    readable: Notify,
    /// Wakes the feeding task: room, or the end.
    writable: Notify,
    /// Wakes [`Sender::closed`].
    gone: Notify,
    limit: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<(Bytes, Option<Fanout>)>,
    bytes: usize,
    end: Option<End>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the queue (the first end wins); `discard` drops what is queued.
    fn end(&self, end: End, discard: bool) {
        {
            let mut st = self.lock();
            if st.end.is_none() {
                st.end = Some(end);
            }
            if discard {
                st.frames = VecDeque::new();
                st.bytes = 0;
            }
        }
        self.readable.notify_one();
        self.writable.notify_one();
        self.gone.notify_one();
    }
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Closed {
    /// The connection closed.
    #[error("the client went away")]
    Gone,
    /// The subscriber took nothing from its full queue for the stall time, and was dropped.
    #[error("the subscriber fell behind")]
    Slow,
    /// The stream was ended already.
    #[error("the stream has ended")]
    Ended,
}

/// A change's copy on its way to one subscriber: when its frame is handed to the connection,
/// the time since the change was heard is counted ([`Metrics::fanned_out`]).
#[derive(Debug, Clone)]
pub struct Fanout {
    /// When the change was heard.
    pub heard: Arc<Heard>,
    /// Where it is counted.
    pub metrics: Arc<Metrics>,
}

/// The feeding side of a subscriber's queue.
#[derive(Debug)]
pub struct Sender {
    queue: Arc<Queue>,
    stall: Duration,
}

impl Sender {
    /// Queues a frame, waiting while the queue is full; drops the subscriber when it takes
    /// nothing for the stall time.
    pub async fn send(&self, frame: Bytes) -> Result<(), Closed> {
        self.send_measured(frame, None).await
    }

    /// [`Sender::send`], counting the fan-out of the change it carries when it reaches the
    /// connection.
    pub async fn send_measured(&self, frame: Bytes, fanout: Option<Fanout>) -> Result<(), Closed> {
        let deadline = tokio::time::Instant::now() + self.stall;
        loop {
            let room = self.queue.writable.notified();
            {
                let mut st = self.queue.lock();
                match st.end {
                    Some(End::Gone) => return Err(Closed::Gone),
                    Some(_) => return Err(Closed::Ended),
                    None => {}
                }
                if st.frames.is_empty() || st.bytes + frame.len() <= self.queue.limit {
                    st.bytes += frame.len();
                    st.frames.push_back((frame, fanout));
                    drop(st);
                    self.queue.readable.notify_one();
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                self.queue.end(End::Failed, true);
                return Err(Closed::Slow);
            }
        }
    }

    /// Resolves once the connection has closed.
    pub async fn closed(&self) {
        loop {
            let gone = self.queue.gone.notified();
            if self.queue.lock().end == Some(End::Gone) {
                return;
            }
            gone.await;
        }
    }

    /// Ends the stream with an error (what is queued is dropped): the client sees a broken
    /// stream and reconnects.
    pub fn fail(&self) {
        self.queue.end(End::Failed, true);
    }

    /// Ends the stream now, dropping what is queued (a revoked token hears nothing more).
    pub fn cut(&self) {
        self.queue.end(End::Finished, true);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.queue.end(End::Finished, false);
    }
}

/// The body's side of the queue.
struct Receiver {
    queue: Arc<Queue>,
    heartbeat: Duration,
    done: bool,
}

enum Next {
    Frame(Bytes),
    End,
    Fail,
}

impl Receiver {
    async fn next(&mut self) -> Next {
        if self.done {
            return Next::End;
        }
        loop {
            let ready = self.queue.readable.notified();
            {
                let mut st = self.queue.lock();
                if let Some((frame, fanout)) = st.frames.pop_front() {
                    st.bytes -= frame.len();
                    if st.frames.is_empty() && st.frames.capacity() > 16 {
                        st.frames.shrink_to(16); // a burst's room is not kept for good
                    }
                    drop(st);
                    self.queue.writable.notify_one();
                    if let Some(f) = fanout {
                        f.metrics.fanned_out(&f.heard);
                    }
                    return Next::Frame(frame);
                }
                match st.end {
                    Some(End::Failed) => {
                        self.done = true;
                        return Next::Fail;
                    }
                    Some(_) => {
                        self.done = true;
                        return Next::End;
                    }
                    None => {}
                }
            }
            if tokio::time::timeout(self.heartbeat, ready).await.is_err() {
                return Next::Frame(Bytes::from_static(b": heartbeat\n\n"));
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.queue.end(End::Gone, true);
    }
}

/// A subscriber's queue (bounded by `limits`) and the `text/event-stream` response that
/// sends it, with a heartbeat comment after `heartbeat` of quiet.
pub fn channel(limits: &StreamLimits, heartbeat: Duration) -> (Sender, Response) {
    let queue = Arc::new(Queue {
        state: Mutex::default(),
        readable: Notify::new(),
        writable: Notify::new(),
        gone: Notify::new(),
        limit: limits.queue_bytes,
    });
    let rx = Receiver { queue: queue.clone(), heartbeat, done: false };
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.next().await {
            Next::Frame(frame) => Some((Ok(frame), rx)),
            Next::End => None,
            Next::Fail => Some((Err(std::io::Error::other("stream ended early; resume")), rx)),
        }
    });
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (Sender { queue, stall: limits.stall }, response)
}

/// One server-sent event, encoded: `event` (if any), `id` (if any) and one `data` line (`data`
/// is JSON text, which holds no line break).
pub fn frame(event: Option<&str>, id: Option<i64>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 40);
    if let Some(e) = event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// The listener the server serves on: [`axum::serve`]'s own over TCP, with every connection
/// wrapped in [`StallGuard`], so that a client that reads nothing of what it is sent (a
/// stream subscriber that never reads, whose queue was dropped already) does not keep its
/// connection and buffers for good.
#[derive(Debug)]
pub struct Guarded {
    listener: tokio::net::TcpListener,
    stall: Duration,
}

impl Guarded {
    /// `listener`, closing connections whose writes make no progress for `stall`.
    pub fn new(listener: tokio::net::TcpListener, stall: Duration) -> Guarded {
        Guarded { listener, stall }
    }
}

impl axum::serve::Listener for Guarded {
    type Io = StallGuard<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        (StallGuard { io, stall: self.stall, timer: None }, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection whose write fails once it has made no progress for the stall time (the
/// peer's window stayed shut): the HTTP server then closes it.
#[derive(Debug)]
pub struct StallGuard<T> {
    io: T,
    stall: Duration,
    /// Running while a write waits.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallGuard<T> {
    fn guard<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<R>>,
    ) -> std::task::Poll<std::io::Result<R>> {
        use std::future::Future as _;
        use std::task::Poll;
        if polled.is_ready() {
            self.timer = None;
            return polled;
        }
        let stall = self.stall;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if timer.as_mut().poll(cx).is_ready() {
            self.timer = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing of what it was sent for the stall time",
            )));
        }
        Poll::Pending
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_shutdown(cx);
        self.guard(cx, polled)
    }
}
