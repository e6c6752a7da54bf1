//! `wavegate change …`: change requests for protected environments.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::changes::{ChangeAction, ChangeRequest, NewChange};

use crate::cli::{ChangeCommand, Remote};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::read_text;
use crate::output::{Column, Table, answer};

/// A change request in a few lines.
fn describe(cr: &ChangeRequest) {
    println!("{} ({}) by {} at {}", cr.id, cr.state, cr.author.by, cr.author.at);
    println!("  {}", cr.description);
    if let Some(r) = &cr.record {
        println!("  record: {r}");
    }
    println!(
        "  environments: {} (protected: {})",
        cr.environments.join(", "),
        if cr.protected.is_empty() { "none".to_owned() } else { cr.protected.join(", ") }
    );
    for item in &cr.items {
        println!(
            "  {} {} (from version {}) in {}",
            item.kind,
            item.key,
            item.base_version,
            item.environments.join(", ")
        );
    }
    if cr.touches_runbook {
        println!("  changes a plan's runbook or checks");
    }
    let who: Vec<&str> = cr.approvals.iter().map(|a| a.by.as_str()).collect();
    println!(
        "  approvals: {} of {} ({})",
        who.len(),
        cr.required_approvals,
        if who.is_empty() { "none".to_owned() } else { who.join(", ") }
    );
    for c in &cr.comments {
        println!("  {} at {}: {}", c.stamp.by, c.stamp.at, c.text);
    }
    if let Some(e) = &cr.emergency {
        println!("  EMERGENCY declared by {}: {}", e.stamp.by, e.reason);
    }
    if let Some(r) = &cr.review {
        println!("  post-incident review by {}: {} ({})", r.stamp.by, r.summary, r.link);
    } else if cr.awaiting_review {
        println!("  awaiting its post-incident review");
    }
    if let Some(r) = &cr.rejected {
        println!("  rejected by {}: {}", r.stamp.by, r.reason);
    }
}

/// Runs `wavegate change …`.
pub async fn run(cmd: ChangeCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let act = async |id: &str, action: &str, body: ChangeAction| -> anyhow::Result<()> {
        let path = format!("/api/v1/changes/{}/{action}", enc(id));
        let a = c.call::<ChangeRequest>(c.request(Method::POST, &path).json(&body)).await?;
        answer(remote.json, &a, describe);
        Ok(())
    };
    match cmd {
        ChangeCommand::Propose { file, plans, description, record, emergency } => {
            let mut new = NewChange { description, record, emergency, ..Default::default() };
            if let Some(file) = &file {
                let text = read_text(file)?;
                let parsed = wavegate_core::flagfile::parse_yaml::<wavegate_core::FlagFile>(&text)
                    .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
                for (k, v) in parsed.flags {
                    new.flags.insert(k, serde_json::to_value(v)?);
                }
                for (k, v) in parsed.segments {
                    new.segments.insert(k, serde_json::to_value(v)?);
                }
            }
            for plan in &plans {
                new.plans.push(read_text(plan)?);
            }
            if new.flags.is_empty() && new.segments.is_empty() && new.plans.is_empty() {
                return Err(Failure::Input(
                    "propose something: -f flags.yaml and/or --plan plan.yaml".into(),
                )
                .into());
            }
            let a = c
                .call::<ChangeRequest>(c.request(Method::POST, "/api/v1/changes").json(&new))
                .await?;
            answer(remote.json, &a, describe);
        }
        ChangeCommand::List { state } => {
            let path = match &state {
                Some(s) => format!("/api/v1/changes?state={}", enc(s)),
                None => "/api/v1/changes".into(),
            };
            answer(remote.json, &c.get::<Vec<ChangeRequest>>(&path).await?, |list| {
                let mut table = Table::new(vec![
                    Column::left("ID", 14),
                    Column::left("STATE", 10),
                    Column::left("AUTHOR", 20),
                    Column::left("ENVIRONMENTS", 16),
                    Column::left("APPROVALS", 9),
                    Column::last("DESCRIPTION"),
                ]);
                for cr in list {
                    let state = if cr.awaiting_review {
                        format!("{}, review due", cr.state)
                    } else {
                        cr.state.clone()
                    };
                    table.row([
                        cr.id.clone(),
                        state,
                        cr.author.by.clone(),
                        cr.environments.join(","),
                        format!("{}/{}", cr.approvals.len(), cr.required_approvals),
                        cr.description.clone(),
                    ]);
                }
                table.print();
            });
        }
        ChangeCommand::Show { id } => {
            let a = c.get::<ChangeRequest>(&format!("/api/v1/changes/{}", enc(&id))).await?;
            answer(remote.json, &a, describe);
        }
        ChangeCommand::Approve { id } => act(&id, "approve", ChangeAction::default()).await?,
        ChangeCommand::Apply { id } => act(&id, "apply", ChangeAction::default()).await?,
        ChangeCommand::Withdraw { id } => act(&id, "withdraw", ChangeAction::default()).await?,
        ChangeCommand::Reject { id, reason } => {
            act(&id, "reject", ChangeAction { reason: Some(reason), ..Default::default() }).await?
        }
        ChangeCommand::Comment { id, text } => {
            act(&id, "comment", ChangeAction { text: Some(text), ..Default::default() }).await?
        }
        ChangeCommand::Review { id, link, summary } => {
            let body =
                ChangeAction { link: Some(link), summary: Some(summary), ..Default::default() };
            act(&id, "review", body).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}
