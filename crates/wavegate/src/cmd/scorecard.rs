//! `wavegate scorecard show|set`: a plan's go/no-go scorecard.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Remote, ScorecardCommand};
use crate::client::{Client, enc};
use crate::output::{Column, Table, print_json, s};

/// Runs `wavegate scorecard …` (exit 0 whether go or no-go).
pub async fn run(cmd: ScorecardCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let card = match &cmd {
        ScorecardCommand::Show { plan } => {
            c.get(&format!("/api/v1/plans/{}/scorecard", enc(plan))).await?
        }
        ScorecardCommand::Set { plan, item, status, note } => {
            let rb = c
                .request(
                    Method::PUT,
                    &format!("/api/v1/plans/{}/scorecard/{}", enc(plan), enc(item)),
                )
                .json(&json!({"status": status, "note": note}));
            c.send(rb).await?.1
        }
    };
    if remote.json {
        print_json(&card);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(vec![
        Column::left("ITEM", 20),
        Column::left("STATUS", 8),
        Column::left("BY", 10),
        Column::left("AUTO", 5),
        Column::last("EVIDENCE / REASON"),
    ]);
    for i in card["items"].as_array().into_iter().flatten() {
        table.row([
            s(&i["key"]),
            s(&i["status"]),
            i["by"].as_str().unwrap_or("-").to_owned(),
            if i["automatic"] == Value::Bool(true) { "yes" } else { "" }.to_owned(),
            i["note"].as_str().unwrap_or(i["title"].as_str().unwrap_or("")).to_owned(),
        ]);
    }
    table.print();
    let verdict = if card["go"] == Value::Bool(true) { "GO" } else { "NO-GO" };
    let mode = if card["declared"] == Value::Bool(true) {
        "declared: gates start and promotions"
    } else {
        "not declared: warnings only"
    };
    println!(
        "{verdict}: {} of {} items not green (no-go at {}); {mode}",
        s(&card["not_green"]),
        card["items"].as_array().map_or(0, Vec::len),
        s(&card["max_red"])
    );
    Ok(ExitCode::SUCCESS)
}
