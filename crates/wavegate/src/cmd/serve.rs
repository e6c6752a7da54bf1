//! `wavegate serve`: the server on `--db`, until Ctrl-C or SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use wavegate_core::text::redact_urls_in;

use crate::cli::{LogFormat, ServeArgs};
use crate::failure::Failure;
use crate::input::{parse_interval, parse_tick, secret_file};
use crate::output::redact_url;

/// Runs `wavegate serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let tick = parse_tick(&args.tick).map_err(Failure::Input)?;
    let lease = parse_interval("--leader-lease", &args.leader_lease).map_err(Failure::Input)?;
    let reverify = parse_interval("--audit-verify-interval", &args.audit_verify_interval)
        .map_err(Failure::Input)?;
    let checkpoints = match &args.checkpoint_key {
        Some(key) => Some(wavegate_server::runtime::checkpoint::CheckpointConfig {
            signer: std::sync::Arc::new(
                wavegate_server::checkpoint::Signer::load(key)
                    .map_err(|e| Failure::Input(format!("--checkpoint-key: {e}")))?,
            ),
            dir: args.checkpoint_dir.clone(),
            every: parse_interval("--checkpoint-interval", &args.checkpoint_interval)
                .map_err(Failure::Input)?,
        }),
        None => None,
    };
    let notify = wavegate_server::runtime::notify::NotifyConfig {
        retry_base: parse_interval("--notify-retry-base", &args.notify_retry_base)
            .map_err(Failure::Input)?,
        max_attempts: args.notify_max_attempts,
        timeout: parse_interval("--notify-timeout", &args.notify_timeout)
            .map_err(Failure::Input)?,
        poll: tick.min(std::time::Duration::from_secs(1)),
    };
    let public_url = match &args.public_url {
        Some(u) => {
            let parsed = reqwest::Url::parse(u)
                .map_err(|e| Failure::Input(format!("--public-url {u:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Failure::Input(format!("--public-url {u:?} must be http(s)")).into());
            }
            Some(u.trim_end_matches('/').to_owned())
        }
        None => None,
    };
    let listen = listen_address("--listen", &args.listen)?;
    let metrics_listen = args
        .metrics_listen
        .as_deref()
        .map(|a| listen_address("--metrics-listen", a))
        .transpose()?;
    let access = access(&args)?;
    let (guard, check_secret) = outbound(&args)?;
    let trusted_keys = trusted_keys(&args)?;
    let osv = match &args.osv_dir {
        Some(dir) if dir.is_dir() => {
            Some(std::sync::Arc::new(wavegate_server::osv::OsvData::new(dir.clone())))
        }
        Some(dir) => {
            return Err(
                Failure::Input(format!("--osv-dir {}: not a directory", dir.display())).into()
            );
        }
        None => None,
    };
    let prometheus_access = prometheus_access(&args)?;
    wavegate_store::check_location(&args.db).map_err(|e| Failure::Input(format!("--db: {e}")))?;
    crate::telemetry::init(matches!(args.log_format, LogFormat::Json));
    // One server per SQLite file: two would both lead the controller on it.
    let _lock = lock_sqlite(&args.db)?;
    // Bind first: a taken port is reported before a database is created and migrated.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Operation(format!("could not listen on {}: {e}", args.listen)))?;
    let metrics_listener = match (metrics_listen, &args.metrics_listen) {
        (Some(addr), Some(given)) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Failure::Operation(format!("could not listen on {given} (--metrics-listen): {e}"))
            })?)
        }
        _ => None,
    };
    let store = wavegate_store::open(&args.db).await.map_err(|e| {
        // The driver's message may quote the URL too.
        let e = redact_urls_in(&e.to_string());
        Failure::Operation(format!("could not open the database {}: {e}", redact_url(&args.db)))
    })?;
    // This process holds the SQLite file's lock: a leadership lease left by one that died is void.
    if !wavegate_store::is_postgres(&args.db)
        && let Err(e) = store.resign(None).await
    {
        tracing::warn!(error = %e, "could not clear an earlier process's leadership lease");
    }
    let bootstrap = std::env::var("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN").ok().filter(|s| !s.is_empty());
    let minted =
        wavegate_server::ensure_admin_token(&*store, bootstrap.as_deref(), chrono::Utc::now())
            .await
            .map_err(|e| Failure::Input(format!("{e:#}")))?;
    let mut state =
        wavegate_server::state_for(store).await.context("Failed to load the configuration")?;
    state.outbound.prometheus_url = args.prometheus_url.clone();
    state.outbound.prometheus_access = prometheus_access;
    state.leadership.lease = lease;
    state.reverify_every = reverify;
    state.routing.event_budget.set(args.events_per_token);
    let skew =
        parse_interval("--event-clock-skew", &args.event_clock_skew).map_err(Failure::Input)?;
    state.routing.clock_skew = Some(chrono::Duration::from_std(skew).map_err(|_| {
        Failure::Input(format!("--event-clock-skew {:?} is too long", args.event_clock_skew))
    })?);
    state.outbound.notify = notify;
    state.outbound.public_url = public_url;
    let allowed = guard.policy().entries();
    if !allowed.is_empty() {
        tracing::info!(allowed = %allowed.join(", "), "API-supplied URLs may also reach these");
    }
    state.outbound.guard = guard;
    state.outbound.checks.secret = check_secret;
    state.access = std::sync::Arc::new(access);
    if !trusted_keys.is_empty() {
        let ids: Vec<String> = trusted_keys.iter().map(|k| k.id()).collect();
        tracing::info!(keys = %ids.join(", "), "artifacts may be signed with these keys");
    }
    state.trusted_keys = std::sync::Arc::new(trusted_keys);
    state.osv = osv;
    state.streams.limits.per_token = args.max_streams_per_token as usize;
    state.streams.limits.queue_bytes = args.stream_queue_bytes as usize;
    // A database that cannot take writes (a read-only file or mount, a full disk) still serves
    // evaluation from memory; say so loudly instead of reporting ready.
    if let Err(reason) = state.storage.check(&*state.store).await {
        eprintln!(
            "WARNING: the database cannot take writes ({reason}); serving evaluation from memory, \
             refusing writes with 503 and reporting not ready until it can"
        );
        tracing::error!(%reason, "starting degraded: the database cannot take writes");
    }
    let server = match metrics_listener {
        Some(m) => wavegate_server::Server::with_metrics_listener(listener, m, state),
        None => wavegate_server::Server::on(listener, state),
    };
    let server = match &checkpoints {
        Some(cfg) => server.with_checkpoints(cfg.clone()),
        None => server,
    };
    let addr = server.local_addr()?;
    let metrics_addr = server.metrics_addr().transpose()?;
    // Register for SIGTERM/Ctrl-C before announcing the address, so none is missed.
    let shutdown = wavegate_server::shutdown_signal();
    let mut out = std::io::stdout().lock();
    if let Some(secret) = minted {
        // stdout, never the log: this is the only time the secret is shown.
        writeln!(
            out,
            "Created the first admin token (shown once; store it now):\n\n    {secret}\n"
        )?;
    }
    if let Some(cfg) = &checkpoints {
        let dir = cfg
            .dir
            .as_ref()
            .map_or("kept in memory only".to_owned(), |d| format!("written to {}", d.display()));
        writeln!(out, "audit checkpoints signed with {} ({dir})", cfg.signer.public_key())?;
    }
    if let Some(m) = metrics_addr {
        // Before the address line, which scripts wait for.
        writeln!(out, "metrics on http://{m}/metrics")?;
    }
    writeln!(out, "wavegate listening on http://{addr} (database {})", redact_url(&args.db))?;
    out.flush()?;
    drop(out);
    tracing::info!(%addr, db = %redact_url(&args.db), "serving");
    server.run(Some(tick), shutdown).await.context("Server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// `--listen` (or another `flag`) as a socket address (`host:port`; a host name is resolved),
/// or a usage error.
fn listen_address(flag: &str, listen: &str) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let usage = |why: String| -> anyhow::Error {
        Failure::Input(format!("{flag} {listen:?} is not an address to listen on ({why}); use host:port, e.g. 127.0.0.1:8470")).into()
    };
    listen
        .to_socket_addrs()
        .map_err(|e| usage(e.to_string()))?
        .next()
        .ok_or_else(|| usage("it resolves to no address".into()))
}

/// `--cors-origin` and `--metrics-token-file` as the server's [`Access`], or a usage error.
///
/// [`Access`]: wavegate_server::access::Access
fn access(args: &ServeArgs) -> anyhow::Result<wavegate_server::access::Access> {
    let mut access = wavegate_server::access::Access::default();
    for origin in args.cors_origins.iter().filter(|o| !o.trim().is_empty()) {
        let parsed = wavegate_server::access::parse_origin(origin)
            .map_err(|e| Failure::Input(format!("--cors-origin: {e}")))?;
        access.cors_origins.push(parsed);
    }
    if let Some(path) = &args.metrics_token_file {
        let text = secret_file("--metrics-token-file", path)?;
        let token = text.trim();
        if token.len() < 16 || token.contains(char::is_whitespace) {
            return Err(Failure::Input(format!(
                "--metrics-token-file: {} must hold one token of at least 16 characters",
                path.display()
            ))
            .into());
        }
        access.metrics_token = Some(wavegate_server::http::auth::hash_secret(token));
    }
    access.oidc = oidc(args)?.map(|c| std::sync::Arc::new(wavegate_server::oidc::Provider::new(c)));
    Ok(access)
}

/// `--oidc-*`, `--public-url` and `--session-ttl` as the sign-in configuration (`None` without
/// `--oidc-issuer`), or a usage error naming the flag.
fn oidc(args: &ServeArgs) -> anyhow::Result<Option<wavegate_server::oidc::OidcConfig>> {
    let Some(issuer) = args.oidc_issuer.as_deref().map(str::trim).filter(|i| !i.is_empty()) else {
        return Ok(None);
    };
    let need = |v: &Option<String>, flag: &str| -> anyhow::Result<String> {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Failure::Input(format!("--oidc-issuer needs {flag} too")).into())
    };
    let client_id = need(&args.oidc_client_id, "--oidc-client-id")?;
    let public_url = need(&args.public_url, "--public-url")?.trim_end_matches('/').to_owned();
    if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
        return Err(Failure::Input(format!(
            "--public-url {public_url:?}: write http(s)://host[:port]"
        ))
        .into());
    }
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err(
            Failure::Input(format!("--oidc-issuer {issuer:?}: write the issuer's URL")).into()
        );
    }
    let path = args.oidc_client_secret_file.as_ref().ok_or_else(|| {
        Failure::Input("--oidc-issuer needs --oidc-client-secret-file too".into())
    })?;
    let client_secret = secret_file("--oidc-client-secret-file", path)?.trim().to_owned();
    if client_secret.is_empty() {
        return Err(Failure::Input(format!(
            "--oidc-client-secret-file: {} is empty",
            path.display()
        ))
        .into());
    }
    let mut role_map = Vec::new();
    for m in args.oidc_roles.iter().filter(|m| !m.trim().is_empty()) {
        role_map.push(wavegate_server::oidc::parse_role_mapping(m.trim()).map_err(Failure::Input)?);
    }
    if role_map.is_empty() {
        return Err(Failure::Input(
            "--oidc-issuer needs at least one --oidc-role GROUP=ROLE: nobody could do anything"
                .into(),
        )
        .into());
    }
    let ttl = wavegate_rollout::duration::parse_span(&args.session_ttl)
        .map_err(|e| Failure::Input(format!("--session-ttl: {e}")))?
        .to_chrono();
    if ttl < chrono::Duration::minutes(1) || ttl > chrono::Duration::days(30) {
        return Err(Failure::Input("--session-ttl must be between 1m and 30d".into()).into());
    }
    let site = [issuer, &client_id, &client_secret, &public_url];
    Ok(Some(wavegate_server::oidc::OidcConfig {
        groups_claim: args.oidc_groups_claim.clone(),
        name_claim: args.oidc_name_claim.clone(),
        session_ttl: ttl,
        scopes: args
            .oidc_scopes
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        ..wavegate_server::oidc::OidcConfig::new(site, role_map)
    }))
}

/// `--allow-outbound` as the guard of API-supplied URLs, and `--check-secret-file`'s secret, or
/// a usage error.
fn outbound(
    args: &ServeArgs,
) -> anyhow::Result<(
    wavegate_server::outbound::Guard,
    Option<wavegate_server::outbound::SigningSecret>,
)> {
    let entries = args.allow_outbound.iter().map(String::as_str).filter(|e| !e.trim().is_empty());
    let policy = wavegate_server::outbound::policy::Policy::parse(entries)
        .map_err(|e| Failure::Input(format!("--allow-outbound: {e}")))?;
    let secret = match &args.check_secret_file {
        Some(path) => {
            let text = secret_file("--check-secret-file", path)?;
            let secret = wavegate_server::outbound::SigningSecret::new(&text).map_err(|e| {
                Failure::Input(format!("--check-secret-file: {}: {e}", path.display()))
            })?;
            Some(secret)
        }
        None => None,
    };
    Ok((wavegate_server::outbound::Guard::new(policy), secret))
}

/// `--trusted-keys`: the minisign public keys in the file, or a usage error naming the line
/// that is not one.
fn trusted_keys(args: &ServeArgs) -> anyhow::Result<Vec<wavegate_rollout::signature::PublicKey>> {
    let Some(path) = &args.trusted_keys else { return Ok(Vec::new()) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::Input(format!("--trusted-keys: could not read {}: {e}", path.display()))
    })?;
    let keys = wavegate_rollout::signature::PublicKey::parse_many(&text).map_err(|(line, e)| {
        Failure::Input(format!("--trusted-keys: {} line {line}: {e}", path.display()))
    })?;
    if keys.is_empty() {
        return Err(
            Failure::Input(format!("--trusted-keys: {} holds no key", path.display())).into()
        );
    }
    Ok(keys)
}

/// `--prometheus-bearer-file`, `--prometheus-basic-auth-file`, `--prometheus-header` and
/// `--prometheus-ca-file` as the access to `--prometheus-url`, or a usage error that names the
/// flag and file and never what the file holds.
fn prometheus_access(
    args: &ServeArgs,
) -> anyhow::Result<wavegate_server::outbound::prometheus::Access> {
    use wavegate_server::outbound::prometheus::{Access, AccessSpec};
    let mut spec = AccessSpec::default();
    let mut what = Vec::new();
    if let Some(path) = &args.prometheus_bearer_file {
        spec.bearer = Some(secret_file("--prometheus-bearer-file", path)?);
        what.push("--prometheus-bearer-file");
    }
    if let Some(path) = &args.prometheus_basic_auth_file {
        spec.basic = Some(secret_file("--prometheus-basic-auth-file", path)?);
        what.push("--prometheus-basic-auth-file");
    }
    for given in args.prometheus_headers.iter().filter(|h| !h.trim().is_empty()) {
        let Some((name, value)) = given.split_once('=') else {
            return Err(Failure::Input(format!(
                "--prometheus-header {:?}: use NAME=VALUE or NAME=@FILE",
                given.split(['=', ':']).next().unwrap_or_default()
            ))
            .into());
        };
        let value = match value.strip_prefix('@') {
            Some(file) => secret_file(&format!("--prometheus-header {name}"), file.as_ref())?,
            None => value.to_owned(),
        };
        spec.headers.push((name.to_owned(), value));
        what.push("--prometheus-header");
    }
    if let Some(path) = &args.prometheus_ca_file {
        spec.ca_pem = Some(secret_file("--prometheus-ca-file", path)?.into_bytes());
        what.push("--prometheus-ca-file");
    }
    Access::new(spec).map_err(|e| {
        let flags = what.join(", ");
        Failure::Input(format!("{flags}: {e}")).into()
    })
}

/// For a SQLite database, an exclusive lock on `<file>.lock` beside it, held while the server
/// runs: a second `serve` on the same file is refused (two servers would both lead the
/// controller, each claiming leadership every tick). Readers that open the file directly
/// (`backup --db`, `audit verify --db`) take no lock and keep working. PostgreSQL needs none:
/// its replicas share leadership through the database.
fn lock_sqlite(db: &str) -> anyhow::Result<Option<std::fs::File>> {
    if wavegate_store::is_postgres(db) {
        return Ok(None);
    }
    let path = db.strip_prefix("sqlite://").or_else(|| db.strip_prefix("sqlite:")).unwrap_or(db);
    let lock_path = format!("{path}.lock");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    // Private like the database beside it (it holds nothing, but says who serves what).
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let opened = options
        .open(&lock_path)
        // On a read-only file system the lock file (left by an earlier start) is still lockable.
        .or_else(|e| std::fs::File::open(&lock_path).map_err(|_| e));
    let file = match opened {
        Ok(f) => f,
        // Read-only and never locked before: nobody can write this database; start degraded.
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => return Ok(None),
        Err(e) => {
            return Err(Failure::Operation(format!(
                "could not create the lock file {lock_path}: {e}"
            ))
            .into());
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::Operation(format!(
            "another wavegate server is already serving {path} (it holds {lock_path}); \
             stop it first, or run replicas on PostgreSQL"
        ))
        .into()),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Failure::Operation(format!("could not lock {lock_path}: {e}")).into())
        }
    }
}
