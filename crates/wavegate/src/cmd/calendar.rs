//! `wavegate calendar`: live rollouts, blackout windows, the freeze and conflicts, as a
//! table, `--json` or iCalendar (`--ics`).

use std::process::ExitCode;

use reqwest::Method;

use crate::cli::Remote;
use crate::client::Client;
use crate::output::{Column, Table, print_json, s};

/// Runs `wavegate calendar`.
pub async fn run(days: i64, ics: bool, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let format = if ics { "ics" } else { "json" };
    let (_, body) = c
        .send(c.request(Method::GET, &format!("/api/v1/calendar?days={days}&format={format}")))
        .await?;
    if ics {
        print!("{}", body.as_str().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if remote.json {
        print_json(&body);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(vec![
        Column::left("START", 22),
        Column::left("END", 22),
        Column::left("KIND", 9),
        Column::left("ENV", 8),
        Column::last("WHAT"),
    ]);
    for e in body["entries"].as_array().into_iter().flatten() {
        table.row([
            s(&e["start"]),
            s(&e["end"]),
            s(&e["kind"]),
            e["environment"].as_str().unwrap_or("-").to_owned(),
            s(&e["title"]),
        ]);
    }
    table.print();
    Ok(ExitCode::SUCCESS)
}
