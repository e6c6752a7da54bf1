//! `wavegate token create|list|revoke`.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;

use crate::cli::{Remote, TokenCommand};
use crate::client::{Client, enc};
use crate::output::{Column, Table, join, print_json, s};

/// Runs `wavegate token …`.
pub async fn run(cmd: TokenCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
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
                let mut table = Table::new(vec![
                    Column::left("ID", 18),
                    Column::left("KIND", 11),
                    Column::left("ENVIRONMENTS", 20),
                    Column::left("PRINCIPAL", 24),
                    Column::last("STATUS"),
                ]);
                for t in list.as_array().into_iter().flatten() {
                    let status = if t["revoked_at"].is_null() { "live" } else { "revoked" };
                    table.row([
                        s(&t["id"]),
                        s(&t["kind"]),
                        join(&t["environments"]),
                        s(&t["principal"]),
                        status.to_owned(),
                    ]);
                }
                table.print();
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
