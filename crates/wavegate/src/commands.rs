//! What each subcommand does. `serve` works on the database directly; the rest talk to a
//! server over its API through [`Client`].

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{Value, json};
use wavegate_core::text::percent_encode as enc;

use crate::cli::{
    AuditCommand, Cli, Command, EnvCommand, EvalArgs, FlagCommand, LogFormat, Remote, ServeArgs,
    TokenCommand,
};
use crate::client::Client;

/// A failure with a defined exit code.
#[derive(Debug)]
pub enum Failure {
    /// Usage or input error (exit 2).
    Input(String),
    /// The operation failed (exit 1).
    Operation(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Input(m) | Failure::Operation(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) => 2,
            Failure::Operation(_) => 1,
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Token { command, remote } => token(command, &remote).await,
        Command::Flag { command, remote } => flag(command, &remote).await,
        Command::Env { command, remote } => env(command, &remote).await,
        Command::Eval(args) => eval(args).await,
        Command::Audit { command, remote } => audit(command, &remote).await,
        Command::Drill(args) => crate::rollout_cmd::drill(args).await,
        Command::Calendar { days, ics, remote } => {
            crate::rollout_cmd::calendar(days, ics, &remote).await
        }
        Command::Report { command, remote } => crate::rollout_cmd::report(command, &remote).await,
        Command::Freeze { command, remote } => crate::rollout_cmd::freeze(command, &remote).await,
        Command::Scorecard { command, remote } => {
            crate::rollout_cmd::scorecard(command, &remote).await
        }
        Command::Notify { command, remote } => crate::notify_cmd::notify(command, &remote).await,
        Command::Edge(args) => crate::edge::run(args).await,
        Command::Backup(args) => crate::backup_cmd::backup(args).await,
        Command::Restore(args) => crate::backup_cmd::restore(args).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Plan { command, remote } => crate::rollout_cmd::plan(command, &remote).await,
        Command::Rollout { command, remote } => crate::rollout_cmd::rollout(command, &remote).await,
    }
}

/// `db` with any password in a `postgres://user:password@host/…` URL replaced by `***`.
pub(crate) fn redact_url(db: &str) -> String {
    match (db.find("://"), db.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &db[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &db[..scheme + 3], &db[at..]),
                None => db.to_owned(),
            }
        }
        _ => db.to_owned(),
    }
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let tick = parse_tick(&args.tick).map_err(Failure::Input)?;
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
    crate::telemetry::init(matches!(args.log_format, LogFormat::Json));
    let store = wavegate_store::open(&args.db)
        .await
        .with_context(|| format!("Failed to open the database {:?}", redact_url(&args.db)))?;
    let bootstrap = std::env::var("WAVEGATE_BOOTSTRAP_ADMIN_TOKEN").ok().filter(|s| !s.is_empty());
    let minted = wavegate_server::ensure_admin_token(&*store, bootstrap.as_deref(), chrono_now())
        .await
        .map_err(|e| Failure::Input(format!("{e:#}")))?;
    let mut state =
        wavegate_server::state_for(store).await.context("Failed to load the configuration")?;
    state.prometheus_url = args.prometheus_url.clone();
    state.notify = notify;
    state.public_url = public_url;
    let server = wavegate_server::Server::bind(&args.listen, state)
        .await
        .map_err(|e| Failure::Operation(format!("could not listen on {}: {e}", args.listen)))?;
    let addr = server.local_addr()?;
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
    writeln!(out, "wavegate listening on http://{addr} (database {})", redact_url(&args.db))?;
    out.flush()?;
    drop(out);
    tracing::info!(%addr, db = %redact_url(&args.db), "serving");
    server.run(Some(tick), shutdown).await.context("Server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// A positive interval option: `250ms`, `2s`, `1m`…
pub(crate) fn parse_interval(flag: &str, s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().strip_suffix("ms") {
        Some(ms) => std::time::Duration::from_millis(
            ms.parse().map_err(|_| format!("invalid {flag} {s:?}"))?,
        ),
        None => std::time::Duration::from_secs(
            wavegate_rollout::duration::parse_span(s)
                .map_err(|e| format!("invalid {flag}: {e}"))?
                .secs(),
        ),
    };
    if d.is_zero() {
        return Err(format!("{flag} must be more than zero"));
    }
    Ok(d)
}

/// `500ms`, `10s`, `1m`… (at least 10 ms).
pub(crate) fn parse_tick(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().strip_suffix("ms") {
        Some(ms) => std::time::Duration::from_millis(
            ms.parse().map_err(|_| format!("invalid --tick {s:?}"))?,
        ),
        None => std::time::Duration::from_secs(
            wavegate_rollout::duration::parse_span(s)
                .map_err(|e| format!("invalid --tick: {e}"))?
                .secs(),
        ),
    };
    if d < std::time::Duration::from_millis(10) {
        return Err(format!("--tick {s:?} is too short; use at least 10ms"));
    }
    Ok(d)
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

pub(crate) fn need_token(remote: &Remote) -> anyhow::Result<()> {
    if remote.token.is_none() {
        return Err(Failure::Input("no token: pass --token or set WAVEGATE_TOKEN".into()).into());
    }
    Ok(())
}

async fn token(cmd: TokenCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    match cmd {
        TokenCommand::Create { kind, environments, principal } => {
            let mut body = json!({"kind": kind, "environments": environments});
            if let Some(p) = principal {
                body["principal"] = json!(p);
            }
            let (_, t) = c.send(c.request(Method::POST, "/api/v1/tokens").json(&body)).await?;
            if remote.json {
                print_json(&t);
            } else {
                println!(
                    "Created {} token {} for {} (environments: {}).",
                    t["kind"].as_str().unwrap_or(""),
                    t["id"].as_str().unwrap_or(""),
                    t["principal"].as_str().unwrap_or(""),
                    join(&t["environments"])
                );
                println!("Its secret, shown once:\n\n    {}\n", t["token"].as_str().unwrap_or(""));
            }
        }
        TokenCommand::List => {
            let list = c.get("/api/v1/tokens").await?;
            if remote.json {
                print_json(&list);
            } else {
                println!(
                    "{:<18} {:<11} {:<20} {:<24} STATUS",
                    "ID", "KIND", "ENVIRONMENTS", "PRINCIPAL"
                );
                for t in list.as_array().into_iter().flatten() {
                    let status = if t["revoked_at"].is_null() { "live" } else { "revoked" };
                    println!(
                        "{:<18} {:<11} {:<20} {:<24} {status}",
                        s(&t["id"]),
                        s(&t["kind"]),
                        join(&t["environments"]),
                        s(&t["principal"])
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let (_, v) =
                c.send(c.request(Method::DELETE, &format!("/api/v1/tokens/{}", enc(&id)))).await?;
            if remote.json { print_json(&v) } else { println!("Revoked {id}.") }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn join(v: &Value) -> String {
    v.as_array().map(|a| a.iter().map(s).collect::<Vec<_>>().join(",")).unwrap_or_default()
}

pub(crate) fn with_reason(
    rb: reqwest::RequestBuilder,
    reason: &Option<String>,
) -> reqwest::RequestBuilder {
    match reason {
        Some(r) => rb.header("x-wavegate-reason", r.as_str()),
        None => rb,
    }
}

/// `wavegate flag import-unleash`: Unleash features → a flag file, with a report.
fn import_unleash(
    file: &std::path::Path,
    environment: &str,
    out: Option<&std::path::Path>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    wavegate_core::flag::validate_key(environment)
        .map_err(|m| Failure::Input(format!("--env: {m}")))?;
    let text = if file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t).context("Failed to read standard input")?;
        t
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Failure::Input(format!("could not read {}: {e}", file.display())))?
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Input(format!("{}: not JSON: {e}", file.display())))?;
    let features = wavegate_core::unleash::import::parse_client_features(&value)
        .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
    let imported = wavegate_core::unleash::import::import_features(&features, environment);
    let yaml = serde_saphyr::to_string(&imported.file)
        .map_err(|e| Failure::Operation(format!("could not write YAML: {e}")))?;
    match out {
        Some(path) => std::fs::write(path, &yaml)
            .map_err(|e| Failure::Input(format!("could not write {}: {e}", path.display())))?,
        None if !json_out => print!("{yaml}"),
        None => {}
    }
    if json_out {
        print_json(&json!({
            "flags": imported.file.flags.len(),
            "features": features.features.len(),
            "file": if out.is_some() { Value::Null } else { json!(yaml) },
            "unsupported": imported.unsupported,
            "notes": imported.notes,
        }));
    } else {
        for (name, reasons) in &imported.unsupported {
            for r in reasons {
                eprintln!("unsupported: {name}: {r}");
            }
        }
        for (name, notes) in &imported.notes {
            for n in notes {
                eprintln!("note: {name}: {n}");
            }
        }
        eprintln!(
            "imported {} of {} features into environment {environment}",
            imported.file.flags.len(),
            features.features.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn flag(cmd: FlagCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    if let FlagCommand::ImportUnleash { file, environment, out } = &cmd {
        return import_unleash(file, environment, out.as_deref(), remote.json);
    }
    need_token(remote)?;
    let c = Client::new(remote)?;
    match cmd {
        FlagCommand::List { archived, stale } => {
            let list = c.get(&format!("/api/v1/flags?archived={archived}&stale={stale}")).await?;
            if remote.json {
                print_json(&list);
            } else {
                println!(
                    "{:<32} {:>7}  {:<8} {:<24} ENVIRONMENTS (enabled)",
                    "KEY", "VERSION", "STATE", "UPDATED"
                );
                for f in list.as_array().into_iter().flatten() {
                    let envs: Vec<String> = f["spec"]["environments"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .filter(|(_, e)| e["enabled"] == json!(true))
                                .map(|(k, _)| k.clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    let state = if f["archived"] == json!(true) {
                        "archived"
                    } else if f.get("stale").is_some() {
                        "stale"
                    } else {
                        "live"
                    };
                    println!(
                        "{:<32} {:>7}  {:<8} {:<24} {}",
                        s(&f["key"]),
                        s(&f["version"]),
                        state,
                        s(&f["updated_at"]),
                        envs.join(",")
                    );
                }
            }
        }
        FlagCommand::Get { key } => {
            let f = c.get(&format!("/api/v1/flags/{}", enc(&key))).await?;
            if remote.json {
                print_json(&f);
            } else {
                println!(
                    "{} (version {}, {}, updated {} by {})",
                    s(&f["key"]),
                    s(&f["version"]),
                    if f["archived"] == json!(true) { "archived" } else { "live" },
                    s(&f["updated_at"]),
                    s(&f["updated_by"])
                );
                print_json(&f["spec"]);
            }
        }
        FlagCommand::Apply { file, reason } => {
            let text = if file.as_os_str() == "-" {
                let mut t = String::new();
                std::io::stdin().read_to_string(&mut t).context("Failed to read standard input")?;
                t
            } else {
                std::fs::read_to_string(&file).map_err(|e| {
                    Failure::Input(format!("could not read {}: {e}", file.display()))
                })?
            };
            // Check the format locally first: syntax errors and unknown fields, with their line.
            wavegate_core::flagfile::parse_yaml::<wavegate_core::FlagFile>(&text)
                .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
            let rb = c
                .request(Method::POST, "/api/v1/apply")
                .header("content-type", "application/yaml")
                .body(text);
            let (_, v) = c.send(with_reason(rb, &reason)).await?;
            if remote.json {
                print_json(&v);
            } else {
                for r in v["results"].as_array().into_iter().flatten() {
                    let what = if r["changed"] == json!(true) {
                        format!("now version {}", s(&r["version"]))
                    } else {
                        format!("unchanged at version {}", s(&r["version"]))
                    };
                    println!("{} {}: {what}", s(&r["kind"]), s(&r["key"]));
                }
                println!("{} changed, {} unchanged.", s(&v["changed"]), s(&v["unchanged"]));
            }
        }
        FlagCommand::History { key } => {
            let list = c.get(&format!("/api/v1/flags/{}/versions", enc(&key))).await?;
            if remote.json {
                print_json(&list);
            } else {
                println!("{:>7}  {:<24} {:<20} {:<16} REASON", "VERSION", "AT", "ACTOR", "ACTION");
                for v in list.as_array().into_iter().flatten() {
                    println!(
                        "{:>7}  {:<24} {:<20} {:<16} {}",
                        s(&v["version"]),
                        s(&v["created_at"]),
                        s(&v["actor"]),
                        s(&v["action"]),
                        s(&v["reason"])
                    );
                }
            }
        }
        FlagCommand::Diff { key, from, to } => {
            let mut path = format!("/api/v1/flags/{}/diff?from={from}", enc(&key));
            if let Some(t) = to {
                path.push_str(&format!("&to={t}"));
            }
            let d = c.get(&path).await?;
            if remote.json {
                print_json(&d)
            } else {
                print!("{}", d["diff"].as_str().unwrap_or(""))
            }
        }
        FlagCommand::Revert { key, version, reason } => {
            let mut body = json!({"version": version});
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            let (_, v) = c
                .send(
                    c.request(Method::POST, &format!("/api/v1/flags/{}/revert", enc(&key)))
                        .json(&body),
                )
                .await?;
            if remote.json {
                print_json(&v);
            } else {
                println!("{key}: reverted to version {version}; now version {}.", s(&v["version"]));
            }
        }
        // Handled before the token check (it is local); kept here for exhaustiveness.
        FlagCommand::ImportUnleash { file, environment, out } => {
            return import_unleash(&file, &environment, out.as_deref(), remote.json);
        }
        FlagCommand::Archive { key, reason } => {
            let rb = c.request(Method::POST, &format!("/api/v1/flags/{}/archive", enc(&key)));
            let (_, v) = c.send(with_reason(rb, &reason)).await?;
            if remote.json {
                print_json(&v)
            } else {
                println!("{key}: archived (version {}).", s(&v["version"]))
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn env(cmd: EnvCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    match cmd {
        EnvCommand::List => {
            let list = c.get("/api/v1/environments").await?;
            if remote.json {
                print_json(&list);
            } else {
                for e in list.as_array().into_iter().flatten() {
                    println!("{} {}", s(&e["position"]), s(&e["name"]));
                }
            }
        }
        EnvCommand::Create { name } => {
            let (_, e) = c
                .send(c.request(Method::POST, "/api/v1/environments").json(&json!({"name": name})))
                .await?;
            if remote.json {
                print_json(&e)
            } else {
                println!("Created environment {name} at position {}.", s(&e["position"]))
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    need_token(&args.remote)?;
    let context: Value = serde_json::from_str(&args.context)
        .map_err(|e| Failure::Input(format!("--context is not valid JSON: {e}")))?;
    if !context.is_object() {
        return Err(Failure::Input("--context must be a JSON object".into()).into());
    }
    let c = Client::new(&args.remote)?;
    let mut rb = c
        .request(Method::POST, &format!("/ofrep/v1/evaluate/flags/{}", enc(&args.flag)))
        .json(&json!({"context": context}));
    if let Some(env) = &args.env {
        rb = rb.header("x-wavegate-environment", env.as_str());
    }
    let (_, v) = c.send(rb).await?;
    if args.remote.json {
        print_json(&v);
    } else {
        let rule = v["metadata"]["rule"].as_str().map(|r| format!(" rule={r}")).unwrap_or_default();
        println!(
            "{} = {} (variant {}, reason {}{rule})",
            s(&v["key"]),
            v["value"],
            s(&v["variant"]),
            s(&v["reason"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit(cmd: AuditCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    match cmd {
        AuditCommand::Verify => {
            let v = c.get("/api/v1/audit/verify").await?;
            let ok = v["ok"] == json!(true);
            if remote.json {
                print_json(&v);
            } else if ok {
                println!(
                    "audit chain verifies: {} entries, head {}",
                    s(&v["verified"]),
                    s(&v["head"])
                );
            } else {
                println!(
                    "audit chain BROKEN at entry {}: {} ({} entries before it verify)",
                    s(&v["first_bad"]["seq"]),
                    s(&v["first_bad"]["problem"]),
                    s(&v["verified"])
                );
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AuditCommand::List { after, limit } => {
            let list = c.get(&format!("/api/v1/audit?after={after}&limit={limit}")).await?;
            if remote.json {
                print_json(&list);
            } else {
                for e in list.as_array().into_iter().flatten() {
                    println!(
                        "{:>6}  {}  {:<16} {:<18} {:<28} {}",
                        s(&e["seq"]),
                        s(&e["at"]),
                        s(&e["actor"]),
                        s(&e["action"]),
                        s(&e["target"]),
                        s(&e["reason"])
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn database_passwords_are_never_printed() {
        assert_eq!(
            redact_url("postgres://wg:s3cret@db.internal:5432/wavegate"),
            "postgres://wg:***@db.internal:5432/wavegate"
        );
        assert_eq!(redact_url("postgres://wg@db/wavegate"), "postgres://wg@db/wavegate");
        assert_eq!(redact_url("./wavegate.db"), "./wavegate.db");
    }
}
