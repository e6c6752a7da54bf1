//! `wavegate flag …`: flags as code (list, get, apply, history, diff, revert, archive) over
//! the API, and `import-unleash` (local).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{FlagCommand, Remote};
use crate::client::{Client, enc, with_reason};
use crate::failure::Failure;
use crate::input::read_text;
use crate::output::{Column, Table, print_json, s};

/// Runs `wavegate flag …`.
pub async fn run(cmd: FlagCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    if let FlagCommand::ImportUnleash { file, environment, out } = &cmd {
        return import_unleash(file, environment, out.as_deref(), remote.json);
    }
    let c = Client::authenticated(remote)?;
    match cmd {
        FlagCommand::List { archived, stale } => {
            let list = c.get(&format!("/api/v1/flags?archived={archived}&stale={stale}")).await?;
            if remote.json {
                print_json(&list);
            } else {
                let mut table = Table::new(vec![
                    Column::left("KEY", 32),
                    Column::right("VERSION", 7).gap(2),
                    Column::left("STATE", 8),
                    Column::left("UPDATED", 24),
                    Column::last("ENVIRONMENTS (enabled)"),
                ]);
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
                    table.row([
                        s(&f["key"]),
                        s(&f["version"]),
                        state.to_owned(),
                        s(&f["updated_at"]),
                        envs.join(","),
                    ]);
                }
                table.print();
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
            let text = read_text(&file)?;
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
                let mut table = Table::new(vec![
                    Column::right("VERSION", 7).gap(2),
                    Column::left("AT", 24),
                    Column::left("ACTOR", 20),
                    Column::left("ACTION", 16),
                    Column::last("REASON"),
                ]);
                for v in list.as_array().into_iter().flatten() {
                    table.row([
                        s(&v["version"]),
                        s(&v["created_at"]),
                        s(&v["actor"]),
                        s(&v["action"]),
                        s(&v["reason"]),
                    ]);
                }
                table.print();
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
