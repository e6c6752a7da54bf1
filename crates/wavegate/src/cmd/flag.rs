//! `wavegate flag …`: flags as code (list, get, apply, history, diff, revert, archive) over
//! the API, and `import-unleash` (local).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};
use wavegate_api::flags::{Applied, Archived, Diff, Head, Revert, Reverted, Version};

use crate::cli::{FlagCommand, Remote};
use crate::client::{Client, enc, with_reason};
use crate::failure::Failure;
use crate::input::read_text;
use crate::output::{Column, Table, answer, or_dash, print_json};

/// Runs `wavegate flag …`.
pub async fn run(cmd: FlagCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    if let FlagCommand::ImportUnleash { file, environment, out } = &cmd {
        return import_unleash(file, environment, out.as_deref(), remote.json);
    }
    let c = Client::authenticated(remote)?;
    match cmd {
        FlagCommand::List { archived, stale } => {
            let path = format!("/api/v1/flags?archived={archived}&stale={stale}");
            answer(remote.json, &c.get::<Vec<Head>>(&path).await?, |list| {
                let mut table = Table::new(vec![
                    Column::left("KEY", 32),
                    Column::right("VERSION", 7).gap(2),
                    Column::left("STATE", 8),
                    Column::left("UPDATED", 24),
                    Column::last("ENVIRONMENTS (enabled)"),
                ]);
                for f in list {
                    let state = if f.archived {
                        "archived"
                    } else if f.stale.is_some() {
                        "stale"
                    } else {
                        "live"
                    };
                    let enabled = f.outline().map(|o| o.enabled_in().join(",")).unwrap_or_default();
                    table.row([&f.key, &f.version.to_string(), state, &f.updated_at, &enabled]);
                }
                table.print();
            });
        }
        FlagCommand::Get { key } => {
            let path = format!("/api/v1/flags/{}", enc(&key));
            answer(remote.json, &c.get::<Head>(&path).await?, |f| {
                println!(
                    "{} (version {}, {}, updated {} by {})",
                    f.key,
                    f.version,
                    if f.archived { "archived" } else { "live" },
                    f.updated_at,
                    f.updated_by
                );
                print_json(&f.spec);
            });
        }
        FlagCommand::Apply { file, reason } => {
            let text = read_text(&file)?;
            // Check the format locally first: syntax errors and unknown fields, with their line.
            wavegate_core::flagfile::parse_yaml::<wavegate_core::FlagFile>(&text)
                .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
            let a = c.post_yaml::<Applied>("/api/v1/apply", text, &reason).await?;
            answer(remote.json, &a, |applied| {
                for r in &applied.results {
                    let what = if r.changed { "now version" } else { "unchanged at version" };
                    println!("{} {}: {what} {}", r.kind, r.key, r.version);
                }
                println!("{} changed, {} unchanged.", applied.changed, applied.unchanged);
            });
        }
        FlagCommand::History { key } => {
            let path = format!("/api/v1/flags/{}/versions", enc(&key));
            answer(remote.json, &c.get::<Vec<Version>>(&path).await?, |list| {
                let mut table = Table::new(vec![
                    Column::right("VERSION", 7).gap(2),
                    Column::left("AT", 24),
                    Column::left("ACTOR", 20),
                    Column::left("ACTION", 16),
                    Column::last("REASON"),
                ]);
                for v in list {
                    let reason = or_dash(v.reason.as_deref());
                    table.row([
                        &v.version.to_string(),
                        &v.created_at,
                        &v.actor,
                        &v.action,
                        &reason,
                    ]);
                }
                table.print();
            });
        }
        FlagCommand::Diff { key, from, to } => {
            let mut path = format!("/api/v1/flags/{}/diff?from={from}", enc(&key));
            if let Some(t) = to {
                path.push_str(&format!("&to={t}"));
            }
            answer(remote.json, &c.get::<Diff>(&path).await?, |d| print!("{}", d.diff));
        }
        FlagCommand::Revert { key, version, reason } => {
            let rb = c
                .request(Method::POST, &format!("/api/v1/flags/{}/revert", enc(&key)))
                .json(&Revert { version, reason });
            answer(remote.json, &c.call::<Reverted>(rb).await?, |r| {
                println!("{key}: reverted to version {version}; now version {}.", r.version)
            });
        }
        // Handled before the token check (it is local); kept here for exhaustiveness.
        FlagCommand::ImportUnleash { file, environment, out } => {
            return import_unleash(&file, &environment, out.as_deref(), remote.json);
        }
        FlagCommand::Archive { key, reason } => {
            let rb = c.request(Method::POST, &format!("/api/v1/flags/{}/archive", enc(&key)));
            answer(remote.json, &c.call::<Archived>(with_reason(rb, &reason)).await?, |a| {
                println!("{key}: archived (version {}).", a.version)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
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
    let text = read_text(file)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Input(format!("{}: not JSON: {e}", file.display())))?;
    let features = wavegate_core::unleash::import::parse_client_features(&value)
        .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
    let imported = wavegate_core::unleash::import::import_features(&features, environment);
    let yaml = wavegate_core::flagfile::to_yaml(&imported.file)
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
