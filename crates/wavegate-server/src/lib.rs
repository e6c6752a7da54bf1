//! wavegate's HTTP server: the admin API, events, streams, the dashboard, health and metrics;
//! OFREP and Unleash's APIs through `wavegate-protocols`' routers, with the server as their
//! [`wavegate_protocols::FlagSource`] ([`http::protocols`]).
//!
//! **Boundary:** this is the only HTTP crate that reaches the store. Requests go one way:
//! `http/` (parse, authorise, shape the answer) → `service/` (gather facts with no lock held,
//! decide in the pure crates, persist in one revision-guarded transaction) → the store;
//! `runtime/` (controller, feed, notifier) calls the same services. [`app`] builds the whole
//! router so tests need no socket; [`Server::bind`] binds a listener (port 0 works).
#![warn(missing_docs)]

pub mod access;
pub mod budget;
pub mod checkpoint;
pub mod clock;
pub mod health;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod oidc;
pub mod osv;
pub mod outbound;
pub mod record;
pub mod runtime;
pub mod service;
pub mod snapshot;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::middleware;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use wavegate_store::{Change, Store, StoreResult, TokenKind};

pub use crate::state::AppState;

/// Largest request body accepted, in bytes (flag files included).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long one request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The OpenAPI document served at `/api/v1/openapi.json`, generated from the same
/// registrations as the router ([`http::openapi`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::http::openapi::document()
}

/// The whole application router over `state`.
pub fn app(state: AppState) -> Router {
    // Browser SDKs call the protocols from any origin; the admin API answers only the origins
    // `serve --cors-origin` names.
    let access = state.access.clone();
    let cors = wavegate_protocols::http::cors_by(
        &[HeaderName::from_static(crate::http::REASON_HEADER)],
        move |origin, path| access.allows_origin(origin, path),
    );
    // Every route of the server comes with its documentation (`http::openapi::routes`).
    let (documented, _) = crate::http::openapi::routes().split_for_parts();
    // Behind an `Arc`: the layer sees every request, and cloning the whole state for each one
    // (a dozen reference counts) showed in the per-request cost of the evaluation routes.
    let conceal = middleware::from_fn_with_state(
        std::sync::Arc::new(state.clone()),
        http::conceal::conceal_responses,
    );
    // The protocols get their source once, not a fresh copy of the state for each request
    // (which `FromRef` would make: an allocation and a dozen reference counts per evaluation).
    let source = wavegate_protocols::Protocols(std::sync::Arc::new(state.clone()));
    let protocols =
        wavegate_protocols::router::<wavegate_protocols::Protocols>().with_state(source);
    let routes = Router::new()
        .merge(protocols)
        .merge(documented)
        .fallback(not_found)
        // Needs the matched route, so it stays inside the router (a layer per route).
        .layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state);
    // The rest wraps the router once, not each route: axum copies every route's service stack
    // into each new connection, which with these layers on all ~80 routes cost about 100 KiB
    // per connection (so per stream subscriber).
    let outer = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(wavegate_protocols::http::reject_unnormalised_paths))
        .layer(TraceLayer::new_for_http())
        .layer(cors)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // What outside responses said, withheld from all but admins for all environments.
        .layer(conceal)
        .service(routes);
    Router::new().fallback_service(outer)
}

/// The router of `/metrics`' own listener (`serve --metrics-listen`), with `/healthz` and
/// `/readyz` beside it for probes that share that port. Set [`access::Access::metrics_elsewhere`]
/// in `state` so that the main listener stops answering `/metrics`.
pub fn metrics_app(state: AppState) -> Router {
    let (routes, _) = crate::http::openapi::metrics_routes().split_for_parts();
    let routes = routes
        .fallback(not_found)
        .layer(axum::Extension(crate::metrics::OwnListener))
        .with_state(state);
    let outer = tower::ServiceBuilder::new()
        .layer(middleware::from_fn(wavegate_protocols::http::reject_unnormalised_paths))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .service(routes);
    Router::new().fallback_service(outer)
}

async fn not_found() -> crate::http::error::ApiError {
    crate::http::error::ApiError::not_found("no such route; see /api/v1/openapi.json")
}

/// Ensures an admin token exists. With `bootstrap` set and no admin token yet, stores that
/// secret; with neither, mints one and returns its secret (to be shown once). Returns `None`
/// when an admin token already existed or the bootstrap secret was used.
///
/// A restart that still sets the bootstrap secret is normal: a token with that secret that
/// already exists is left as it is. **A revoked bootstrap token stays revoked** (an
/// environment variable left in a deployment must not undo a revocation); should no admin
/// token be left at all (revoking the last one for all environments is refused, so only an
/// older or hand-edited database gets there), the server still starts and serves, and logs
/// how to get in again: set `WAVEGATE_BOOTSTRAP_ADMIN_TOKEN` to a new secret and restart.
pub async fn ensure_admin_token(
    store: &dyn Store,
    bootstrap: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<String>> {
    let bootstrap = bootstrap.map(str::trim);
    let known = match bootstrap {
        Some(secret) => {
            let hash = crate::http::auth::hash_secret(secret);
            store.tokens().await?.into_iter().find(|t| t.hash == hash)
        }
        None => None,
    };
    let has_admin = store.has_admin_token().await?;
    if let Some(t) = &known
        && t.revoked_at.is_some()
    {
        if has_admin {
            tracing::info!(token = %t.id, "WAVEGATE_BOOTSTRAP_ADMIN_TOKEN names a revoked token; it stays revoked (the variable can go)");
        } else {
            tracing::warn!(
                token = %t.id,
                "no admin token is left: WAVEGATE_BOOTSTRAP_ADMIN_TOKEN names a revoked token, which stays revoked; \
                 set WAVEGATE_BOOTSTRAP_ADMIN_TOKEN to a new secret and restart to get an admin token"
            );
        }
    }
    if has_admin || known.is_some() {
        return Ok(None);
    }
    let change = Change {
        actor: "system".into(),
        via: None,
        reason: Some("first start: bootstrap admin token".into()),
        at: now,
    };
    let all = vec!["*".to_owned()];
    match bootstrap {
        Some(secret) => {
            if secret.len() < crate::http::auth::MIN_BOOTSTRAP_LEN {
                anyhow::bail!(
                    "WAVEGATE_BOOTSTRAP_ADMIN_TOKEN must be at least {} characters",
                    crate::http::auth::MIN_BOOTSTRAP_LEN
                );
            }
            let mut minted = crate::http::auth::from_secret(
                secret.to_owned(),
                TokenKind::Admin,
                all,
                "admin".into(),
            );
            minted.record.user_admin = true;
            if let Err(e) = store.create_token(&minted.record, &change).await {
                // Replicas starting together on one new database: another one stored it first.
                let hash = &minted.record.hash;
                if store.tokens().await?.iter().any(|t| &t.hash == hash) {
                    return Ok(None);
                }
                return Err(e.into());
            }
            Ok(None)
        }
        None => {
            let mut minted = crate::http::auth::mint(TokenKind::Admin, all, "admin".into());
            minted.record.user_admin = true;
            store.create_token(&minted.record, &change).await?;
            Ok(Some(minted.secret))
        }
    }
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    /// `/metrics`' own listener and router, when it has one.
    metrics: Option<(tokio::net::TcpListener, Router)>,
    /// How audit checkpoints are signed and kept, when they are.
    checkpoints: Option<crate::runtime::checkpoint::CheckpointConfig>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and builds the app over `state`.
    pub async fn bind(addr: &str, state: AppState) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Server::on(listener, state))
    }

    /// A server on a listener bound beforehand (so a taken port is found before the database
    /// is opened and migrated).
    pub fn on(listener: tokio::net::TcpListener, state: AppState) -> Server {
        Server { listener, router: app(state.clone()), state, metrics: None, checkpoints: None }
    }

    /// Signs audit checkpoints as `cfg` says ([`crate::runtime::checkpoint`]), beside the
    /// other background tasks.
    pub fn with_checkpoints(mut self, cfg: crate::runtime::checkpoint::CheckpointConfig) -> Server {
        self.checkpoints = Some(cfg);
        self
    }

    /// A server on `listener` that serves `/metrics` on `metrics` instead (with `/healthz` and
    /// `/readyz`), e.g. on an address only Prometheus reaches; `listener` answers 404 for
    /// `/metrics`.
    pub fn with_metrics_listener(
        listener: tokio::net::TcpListener,
        metrics: tokio::net::TcpListener,
        mut state: AppState,
    ) -> Server {
        std::sync::Arc::make_mut(&mut state.access).metrics_elsewhere = true;
        let metrics = Some((metrics, metrics_app(state.clone())));
        Server { listener, router: app(state.clone()), state, metrics, checkpoints: None }
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address `/metrics`' own listener is bound to, if it has one.
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics.as_ref().map(|(l, _)| l.local_addr())
    }

    /// Serves, with the controller ticking every `tick`, the notifier and the audit re-verifier
    /// beside it (None: none of them), until `shutdown` resolves; then sets
    /// [`state::Streams::closing`], which stops them and every stream, and finishes in-flight
    /// requests.
    pub async fn run(
        self,
        tick: Option<Duration>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let closing = self.state.streams.closing.clone();
        // What start-up freed (assembling the OpenAPI document from the routes peaks at a few
        // MiB of heap) goes back to the system rather than staying resident.
        crate::memory::release();
        if let Some(cfg) = &self.checkpoints {
            crate::runtime::checkpoint::start(&self.state, cfg).await;
        }
        // The notifier runs beside the controller (on the leading replica), never inside it.
        let notifier = tick.map(|_| {
            tokio::spawn(crate::runtime::notify::run(self.state.clone(), closing.subscribe()))
        });
        let auditor = tick.map(|_| {
            tokio::spawn(crate::runtime::audit::run(self.state.clone(), closing.subscribe()))
        });
        // Checkpoints are signed by every replica that has the key (each signs what it verified).
        let checkpointer = self.checkpoints.map(|cfg| {
            tokio::spawn(crate::runtime::checkpoint::run(
                self.state.clone(),
                cfg,
                closing.subscribe(),
            ))
        });
        let controller = tick.map(|t| {
            tokio::spawn(crate::runtime::controller::run(
                self.state.clone(),
                t,
                closing.subscribe(),
            ))
        });
        let releaser = tokio::spawn(crate::memory::after_bursts(
            self.state.streams.live.clone(),
            closing.subscribe(),
        ));
        let metrics = self.metrics.map(|(listener, router)| {
            let mut closed = closing.subscribe();
            tokio::spawn(async move {
                let until_closed = async move {
                    let _ = closed.wait_for(|c| *c).await;
                };
                axum::serve(listener, router).with_graceful_shutdown(until_closed).await
            })
        });
        // A client that reads nothing of what it is sent loses its connection after the
        // streams' stall time, as a stream subscriber that falls behind loses its queue.
        let listener =
            crate::http::sse::Guarded::new(self.listener, self.state.streams.limits.stall);
        let result = axum::serve(listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Streams end too, or graceful shutdown would wait on them forever.
                closing.send_replace(true);
            })
            .await;
        if let Some(c) = controller {
            let _ = c.await;
        }
        if let Some(n) = notifier {
            let _ = n.await;
        }
        if let Some(a) = auditor {
            let _ = a.await;
        }
        if let Some(c) = checkpointer {
            let _ = c.await;
        }
        if let Some(m) = metrics {
            let _ = m.await;
        }
        let _ = releaser.await;
        result
    }
}

/// Registers for Ctrl-C and SIGTERM now (so a signal arriving before the server is polled is
/// not lost to the default handler) and resolves when one arrives.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            tracing::info!("shutting down");
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}

/// Builds state over a store with the system clock.
pub async fn state_for(store: std::sync::Arc<dyn Store>) -> StoreResult<AppState> {
    AppState::new(store, std::sync::Arc::new(clock::SystemClock)).await
}
