//! `wavegate freeze on|off|status`: stop the line.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::freeze::{Freeze, FreezeOn};

use crate::cli::{FreezeCommand, Remote};
use crate::client::{Client, with_reason};
use crate::output::{answer, or_dash};

/// Runs `wavegate freeze …`.
pub async fn run(cmd: FreezeCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let a = match &cmd {
        FreezeCommand::On { reason } => {
            let body = FreezeOn { reason: reason.clone() };
            c.call::<Freeze>(c.request(Method::PUT, "/api/v1/freeze").json(&body)).await?
        }
        FreezeCommand::Off { reason } => {
            c.call::<Freeze>(with_reason(c.request(Method::DELETE, "/api/v1/freeze"), reason))
                .await?
        }
        FreezeCommand::Status => c.get::<Freeze>("/api/v1/freeze").await?,
    };
    answer(remote.json, &a, |f| {
        if f.active {
            let (at, by, reason) =
                (or_dash(f.at.as_ref()), or_dash(f.by.as_ref()), or_dash(f.reason.as_ref()));
            println!("FROZEN since {at} by {by}: {reason}");
            println!("Every rollout holds; pause and rollback still work; no rollout starts.");
        } else {
            println!("No freeze: rollouts proceed.");
        }
    });
    Ok(ExitCode::SUCCESS)
}
