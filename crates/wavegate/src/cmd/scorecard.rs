//! `wavegate scorecard show|set`: a plan's go/no-go scorecard.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::scorecard::{Scorecard, SetItem};

use crate::cli::{Remote, ScorecardCommand};
use crate::client::{Client, enc};
use crate::output::{Column, Table, answer};

/// Runs `wavegate scorecard …` (exit 0 whether go or no-go).
pub async fn run(cmd: ScorecardCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let a = match &cmd {
        ScorecardCommand::Show { plan } => {
            c.get::<Scorecard>(&format!("/api/v1/plans/{}/scorecard", enc(plan))).await?
        }
        ScorecardCommand::Set { plan, item, status, note } => {
            let path = format!("/api/v1/plans/{}/scorecard/{}", enc(plan), enc(item));
            let body = SetItem { status: status.clone(), note: note.clone() };
            c.call::<Scorecard>(c.request(Method::PUT, &path).json(&body)).await?
        }
    };
    answer(remote.json, &a, |card| {
        let mut table = Table::new(vec![
            Column::left("ITEM", 20),
            Column::left("STATUS", 8),
            Column::left("BY", 10),
            Column::left("AUTO", 5),
            Column::last("EVIDENCE / REASON"),
        ]);
        for i in &card.items {
            table.row([
                i.key.as_str(),
                i.status.as_str(),
                i.by.as_deref().unwrap_or("-"),
                if i.automatic { "yes" } else { "" },
                i.note.as_deref().unwrap_or(&i.title),
            ]);
        }
        table.print();
        // Only a declared scorecard decides anything (as the dashboard says it).
        if card.declared {
            let verdict = if card.go { "GO" } else { "NO-GO" };
            println!(
                "{verdict}: {} of {} items not green (no-go at {}); declared: gates start and promotions",
                card.not_green,
                card.items.len(),
                card.max_red
            );
        } else {
            println!(
                "Advisory: {} of {} default items not green; the plan declares no scorecard, so these are warnings only and gate nothing",
                card.not_green,
                card.items.len()
            );
        }
    });
    Ok(ExitCode::SUCCESS)
}
