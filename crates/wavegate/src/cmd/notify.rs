//! `wavegate notify list|set|remove|test|deliveries`: notification targets and the delivery
//! log.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{NotifyCommand, Remote};
use crate::client::{Client, enc, with_reason};
use crate::failure::Failure;
use crate::output::{Column, Table, join, print_json, s};

/// Runs `wavegate notify …`.
pub async fn run(cmd: NotifyCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        NotifyCommand::List => {
            let list = c.get("/api/v1/notifications/targets").await?;
            if remote.json {
                print_json(&list);
            } else {
                let mut table = Table::new(vec![
                    Column::left("NAME", 20),
                    Column::left("AUDIENCE", 10),
                    Column::left("FORMAT", 6),
                    Column::left("EVENTS", 24),
                    Column::left("ENVS", 12),
                    Column::last("URL"),
                ]);
                for t in list.as_array().into_iter().flatten() {
                    table.row([
                        s(&t["name"]),
                        s(&t["audience"]),
                        s(&t["format"]),
                        events_label(&t["events"]),
                        join(&t["environments"]),
                        s(&t["url"]),
                    ]);
                }
                table.print();
            }
        }
        NotifyCommand::Set {
            name,
            audience,
            webhook,
            format,
            events,
            environments,
            templates,
            signing_secret_file,
            reason,
        } => {
            let mut body = json!({"audience": audience, "url": webhook, "format": format});
            if !events.is_empty() {
                body["events"] = json!(events);
            }
            if !environments.is_empty() {
                body["environments"] = json!(environments);
            }
            let mut map = serde_json::Map::new();
            for t in &templates {
                let Some((event, file)) = t.split_once('=') else {
                    return Err(
                        Failure::Input(format!("--template {t:?}: expected EVENT=FILE")).into()
                    );
                };
                let text = std::fs::read_to_string(file).map_err(|e| {
                    Failure::Input(format!("--template {event}: cannot read {file}: {e}"))
                })?;
                map.insert(event.to_owned(), json!(text));
            }
            if !map.is_empty() {
                body["templates"] = Value::Object(map);
            }
            if let Some(file) = &signing_secret_file {
                let secret = std::fs::read_to_string(file).map_err(|e| {
                    Failure::Input(format!("--signing-secret-file {}: {e}", file.display()))
                })?;
                body["secret"] = json!(secret.trim());
            }
            let rb =
                c.request(Method::PUT, &format!("/api/v1/notifications/targets/{}", enc(&name)));
            let (status, t) = c.send(with_reason(rb, &reason).json(&body)).await?;
            if remote.json {
                print_json(&t);
            } else {
                let verb = if status.as_u16() == 201 { "Created" } else { "Updated" };
                println!(
                    "{verb} target {name}: {} via {} for {} in {}.",
                    s(&t["audience"]),
                    s(&t["format"]),
                    events_label(&t["events"]),
                    join(&t["environments"])
                );
            }
        }
        NotifyCommand::Remove { name, reason } => {
            let rb =
                c.request(Method::DELETE, &format!("/api/v1/notifications/targets/{}", enc(&name)));
            c.send(with_reason(rb, &reason)).await?;
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
            let (_, v) = c.send(c.request(Method::POST, &path)).await?;
            let ok = v["ok"] == json!(true);
            if remote.json {
                print_json(&v);
            } else if ok {
                println!("Delivered (HTTP {}): {}", s(&v["http_status"]), s(&v["text"]));
            } else {
                println!("NOT delivered: {}\nmessage: {}", s(&v["error"]), s(&v["text"]));
            }
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        NotifyCommand::Deliveries { status, target, rollout, limit } => {
            let mut path = format!("/api/v1/notifications/deliveries?limit={limit}");
            for (k, v) in [("status", status), ("target", target), ("rollout", rollout)] {
                if let Some(v) = v {
                    path.push_str(&format!("&{k}={}", enc(&v)));
                }
            }
            let list = c.get(&path).await?;
            if remote.json {
                print_json(&list);
            } else {
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
                for d in list.as_array().into_iter().flatten() {
                    table.row([
                        s(&d["id"]),
                        s(&d["created_at"]),
                        s(&d["target"]),
                        s(&d["event"]),
                        s(&d["rollout"]),
                        s(&d["status"]),
                        s(&d["attempts"]),
                        s(&d["last_error"]),
                    ]);
                }
                table.print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn events_label(v: &Value) -> String {
    if v.as_array().is_some_and(|a| a.len() == 6) { "all events".into() } else { join(v) }
}
