//! `wavegate env list|create`.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;

use crate::cli::{EnvCommand, Remote};
use crate::client::Client;
use crate::output::{Column, Table, print_json, s};

/// Runs `wavegate env …`.
pub async fn run(cmd: EnvCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        EnvCommand::List => {
            let list = c.get("/api/v1/environments").await?;
            if remote.json {
                print_json(&list);
            } else {
                let mut table = Table::new(vec![Column::left("", 0), Column::last("")]);
                for e in list.as_array().into_iter().flatten() {
                    table.row([s(&e["position"]), s(&e["name"])]);
                }
                table.print();
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
