//! `wavegate release apply|start|status|report`: coordinated releases.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::releases::{ReleaseDoc, ReleaseReport, ReleaseStatus};
use wavegate_rollout::release::ReleaseSpec;

use crate::cli::{ReleaseCommand, Remote};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::read_text;
use crate::output::{answer, or_dash};

fn print_status(r: &ReleaseStatus) {
    println!("release {}: {} (revision {})", r.name, r.state, r.version);
    if let Some(f) = &r.failure {
        println!("  failure: {f}");
    }
    if let Some(w) = &r.waiting {
        println!("  waiting: {w}");
    }
    for m in &r.members {
        let wave = m.wave.map(|w| format!(" wave {w}")).unwrap_or_default();
        println!("  {:<24} {:<10}{wave} {}", m.plan, m.state, or_dash(m.rollout.as_ref()));
    }
}

/// Runs `wavegate release …`.
pub async fn run(cmd: ReleaseCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let path = |name: &str| format!("/api/v1/releases/{}", enc(name));
    match cmd {
        ReleaseCommand::Apply { file } => {
            let text = read_text(&file)?;
            let spec: ReleaseSpec = wavegate_core::flagfile::parse_yaml(&text)
                .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
            spec.validate().map_err(|(field, m)| {
                Failure::Input(format!("{}: {field}: {m}", file.display()))
            })?;
            let body = ReleaseDoc::from(&spec);
            let rb = c.request(Method::PUT, &path(&spec.name)).json(&body);
            answer(remote.json, &c.call::<ReleaseStatus>(rb).await?, print_status);
        }
        ReleaseCommand::Start { name } => {
            let rb = c.request(Method::POST, &format!("{}/start", path(&name)));
            answer(remote.json, &c.call::<ReleaseStatus>(rb).await?, print_status);
        }
        ReleaseCommand::List => {
            let a = c.get::<Vec<ReleaseStatus>>("/api/v1/releases").await?;
            answer(remote.json, &a, |list| {
                if list.is_empty() {
                    println!("no releases");
                }
                for r in list {
                    println!("{:<24} {:<10} {} member(s)", r.name, r.state, r.members.len());
                }
            });
        }
        ReleaseCommand::Status { name } => {
            answer(remote.json, &c.get::<ReleaseStatus>(&path(&name)).await?, print_status);
        }
        ReleaseCommand::Report { name } => {
            let a = c.get::<ReleaseReport>(&format!("{}/report", path(&name))).await?;
            answer(remote.json, &a, |r| print!("{}", r.markdown));
        }
    }
    Ok(ExitCode::SUCCESS)
}
