//! `wavegate notify list|set|remove|test|deliveries`: notification targets and the delivery
//! log.

use std::process::ExitCode;

use indexmap::IndexMap;
use reqwest::{Method, StatusCode};
use serde_json::json;
use wavegate_api::notify::{Delivery, NotifyEvent, PutTarget, Target, TestSent};

use crate::cli::{NotifyCommand, Remote};
use crate::client::{Client, enc, with_reason};
use crate::failure::Failure;
use crate::output::{Column, Table, answer, or_dash, print_json, time};

/// Runs `wavegate notify …`.
pub async fn run(cmd: NotifyCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        NotifyCommand::List => {
            let a = c.get::<Vec<Target>>("/api/v1/notifications/targets").await?;
            answer(remote.json, &a, |list| {
                let mut table = Table::new(vec![
                    Column::left("NAME", 20),
                    Column::left("AUDIENCE", 10),
                    Column::left("FORMAT", 6),
                    Column::left("EVENTS", 24),
                    Column::left("ENVS", 12),
                    Column::last("URL"),
                ]);
                for t in list {
                    // Restored from a backup without secrets: nothing is sent until it is set.
                    let url = if t.withheld {
                        format!("{} (withheld: set it again)", t.url)
                    } else {
                        t.url.clone()
                    };
                    table.row([
                        t.name.as_str(),
                        t.audience.as_str(),
                        t.format.as_str(),
                        &events_label(&t.events),
                        &t.environments.join(","),
                        &url,
                    ]);
                }
                table.print();
            });
        }
        NotifyCommand::Set {
            name,
            audience,
            person,
            webhook,
            format,
            events,
            environments,
            templates,
            signing_secret_file,
            reason,
        } => {
            let mut by_event = IndexMap::new();
            for t in &templates {
                let Some((event, file)) = t.split_once('=') else {
                    return Err(
                        Failure::Input(format!("--template {t:?}: expected EVENT=FILE")).into()
                    );
                };
                let text = std::fs::read_to_string(file).map_err(|e| {
                    Failure::Input(format!("--template {event}: cannot read {file}: {e}"))
                })?;
                by_event.insert(event.to_owned(), text);
            }
            let secret = match &signing_secret_file {
                Some(file) => Some(
                    std::fs::read_to_string(file)
                        .map_err(|e| {
                            Failure::Input(format!("--signing-secret-file {}: {e}", file.display()))
                        })?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            let body = PutTarget {
                audience,
                person,
                url: webhook,
                format: Some(format),
                events: (!events.is_empty()).then_some(events),
                environments: (!environments.is_empty()).then_some(environments),
                templates: (!by_event.is_empty()).then_some(by_event),
                secret,
            };
            let path = format!("/api/v1/notifications/targets/{}", enc(&name));
            let rb = with_reason(c.request(Method::PUT, &path), &reason).json(&body);
            let a = c.call::<Target>(rb).await?;
            let verb = if a.status == StatusCode::CREATED { "Created" } else { "Updated" };
            answer(remote.json, &a, |t| {
                println!(
                    "{verb} target {name}: {} via {} for {} in {}.",
                    t.audience.as_str(),
                    t.format.as_str(),
                    events_label(&t.events),
                    t.environments.join(",")
                );
            });
        }
        NotifyCommand::Remove { name, reason } => {
            let path = format!("/api/v1/notifications/targets/{}", enc(&name));
            c.send(with_reason(c.request(Method::DELETE, &path), &reason)).await?;
            if remote.json {
                print_json(&json!({"removed": name}));
            } else {
                println!("Removed target {name}.");
            }
        }
        NotifyCommand::Test { name, event } => {
            let mut path = format!("/api/v1/notifications/targets/{}/test", enc(&name));
            if let Some(e) = &event {
                path.push_str(&format!("?event={}", enc(e)));
            }
            let a = c.call::<TestSent>(c.request(Method::POST, &path)).await?;
            answer(remote.json, &a, |t| {
                if t.ok {
                    println!("Delivered (HTTP {}): {}", or_dash(t.http_status), t.text);
                } else {
                    println!("NOT delivered: {}\nmessage: {}", or_dash(t.error.as_ref()), t.text);
                }
            });
            return Ok(if a.body.ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        NotifyCommand::Deliveries { status, target, rollout, limit } => {
            let mut path = format!("/api/v1/notifications/deliveries?limit={limit}");
            for (k, v) in [("status", status), ("target", target), ("rollout", rollout)] {
                if let Some(v) = v {
                    path.push_str(&format!("&{k}={}", enc(&v)));
                }
            }
            answer(remote.json, &c.get::<Vec<Delivery>>(&path).await?, |list| {
                let mut table = Table::new(vec![
                    Column::right("ID", 5).gap(2),
                    Column::left("QUEUED", 24),
                    Column::left("TARGET", 16),
                    Column::left("EVENT", 18),
                    Column::left("ROLLOUT", 14),
                    Column::left("STATUS", 9),
                    Column::right("TRY", 3).gap(2),
                    Column::last("LAST ERROR"),
                ]);
                for d in list {
                    table.row([
                        d.id.to_string(),
                        time(&d.created_at),
                        d.target.clone(),
                        d.event.clone(),
                        d.rollout.clone(),
                        d.status.clone(),
                        d.attempts.to_string(),
                        or_dash(d.last_error.as_deref()),
                    ]);
                }
                table.print();
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The events a target hears of, as a cell.
fn events_label(events: &[NotifyEvent]) -> String {
    // Six was every event before `stale` was added; a target hearing all seven lists them.
    if events.len() == 6 {
        "all events".into()
    } else {
        events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")
    }
}
