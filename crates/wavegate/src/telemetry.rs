//! Logging, initialised once: `RUST_LOG` filters (default `info`), to stderr, pretty or JSON.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
