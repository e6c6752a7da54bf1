//! `wavegate env list|create|protect|unprotect`.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::changes::{Protection, Protections};
use wavegate_api::environments::{Environment, NewEnvironment};

use crate::cli::{EnvCommand, Remote};
use crate::client::{Client, enc};
use crate::output::{Column, Table, answer};

/// Runs `wavegate env …`.
pub async fn run(cmd: EnvCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        EnvCommand::List => {
            let a = c.get::<Vec<Environment>>("/api/v1/environments").await?;
            answer(remote.json, &a, |list| {
                let mut table = Table::new(vec![Column::left("", 0), Column::last("")]);
                for e in list {
                    table.row([e.position.to_string(), e.name.clone()]);
                }
                table.print();
            });
        }
        EnvCommand::Protect { name, approvals } => {
            let path = format!("/api/v1/environments/{}/protection", enc(&name));
            let rb = c.request(Method::PUT, &path).json(&Protection { approvals });
            answer(remote.json, &c.call::<Protections>(rb).await?, |_| {
                println!("{name} is protected: changes there need {approvals} approval(s).")
            });
        }
        EnvCommand::Unprotect { name } => {
            let path = format!("/api/v1/environments/{}/protection", enc(&name));
            let rb = c.request(Method::DELETE, &path);
            answer(remote.json, &c.call::<Protections>(rb).await?, |_| {
                println!("{name} is no longer protected.")
            });
        }
        EnvCommand::Create { name } => {
            let rb = c
                .request(Method::POST, "/api/v1/environments")
                .json(&NewEnvironment { name: name.clone() });
            answer(remote.json, &c.call::<Environment>(rb).await?, |e| {
                println!("Created environment {name} at position {}.", e.position)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
