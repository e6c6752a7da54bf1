//! `wavegate edge`: the relay of `wavegate-edge` on a listener of its own, until Ctrl-C or
//! SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use wavegate_edge::{Relay, Settings};

use crate::cli::{EdgeArgs, LogFormat};
use crate::failure::Failure;
use crate::input::parse_interval;

/// Runs `wavegate edge`.
pub async fn run(args: EdgeArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init(matches!(args.log_format, LogFormat::Json));
    let flush_interval =
        parse_interval("--flush-interval", &args.flush_interval).map_err(Failure::Input)?;
    let max_stale = args
        .max_stale
        .as_deref()
        .map(|s| parse_interval("--max-stale", s))
        .transpose()
        .map_err(Failure::Input)?;
    let relay = Relay::start(Settings {
        upstream: args.upstream.clone(),
        token: args.token.clone(),
        environments: args.environments.clone(),
        state_dir: args.state_dir.clone(),
        max_stale,
        flush_interval,
    })
    .map_err(|e| match e {
        wavegate_edge::Error::Settings(e) => anyhow::Error::from(Failure::Input(e.to_string())),
        wavegate_edge::Error::Environments(m) => anyhow::Error::from(Failure::Input(m)),
        other => anyhow::Error::from(other),
    })?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| Failure::Operation(format!("could not listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    let shutdown = wavegate_server::shutdown_signal();
    println!(
        "wavegate edge listening on http://{addr} (environment {}, upstream {}, state {})",
        args.environments.join(", "),
        args.upstream.trim_end_matches('/'),
        args.state_dir.display()
    );
    use std::io::Write as _;
    std::io::stdout().flush()?;
    match relay.wait_ready(Duration::from_secs(2)).await {
        Ok(sources) => tracing::info!(?sources, "serving"),
        Err(e) => {
            tracing::warn!(error = %e, "no configuration yet; answering FLAG_NOT_FOUND until the upstream is reached")
        }
    }
    axum::serve(listener, relay.router())
        .with_graceful_shutdown(shutdown)
        .await
        .context("Edge failed")?;
    relay.close().await;
    Ok(ExitCode::SUCCESS)
}
