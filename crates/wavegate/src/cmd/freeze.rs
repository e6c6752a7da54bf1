//! `wavegate freeze on|off|status`: stop the line.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{FreezeCommand, Remote};
use crate::client::{Client, with_reason};
use crate::output::{print_json, s};

/// Runs `wavegate freeze …`.
pub async fn run(cmd: FreezeCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let v = match &cmd {
        FreezeCommand::On { reason } => {
            c.send(c.request(Method::PUT, "/api/v1/freeze").json(&json!({"reason": reason})))
                .await?
                .1
        }
        FreezeCommand::Off { reason } => {
            c.send(with_reason(c.request(Method::DELETE, "/api/v1/freeze"), reason)).await?.1
        }
        FreezeCommand::Status => c.get("/api/v1/freeze").await?,
    };
    if remote.json {
        print_json(&v);
    } else if v["active"] == Value::Bool(true) {
        println!("FROZEN since {} by {}: {}", s(&v["at"]), s(&v["by"]), s(&v["reason"]));
        println!("Every rollout holds; pause and rollback still work; no rollout starts.");
    } else {
        println!("No freeze: rollouts proceed.");
    }
    Ok(ExitCode::SUCCESS)
}
