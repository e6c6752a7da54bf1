//! `wavegate calendar`: live rollouts, blackout windows, the freeze and conflicts, as a
//! table, `--json` or iCalendar (`--ics`).

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::reports::Calendar;

use crate::cli::Remote;
use crate::client::Client;
use crate::output::{Column, Table, answer, time};

/// Runs `wavegate calendar`.
pub async fn run(days: i64, ics: bool, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    if ics {
        let path = format!("/api/v1/calendar?days={days}&format=ics");
        let (_, body) = c.send(c.request(Method::GET, &path)).await?;
        print!("{}", body.as_str().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let a = c.get::<Calendar>(&format!("/api/v1/calendar?days={days}&format=json")).await?;
    answer(remote.json, &a, |cal| {
        let mut table = Table::new(vec![
            Column::left("START", 22),
            Column::left("END", 22),
            Column::left("KIND", 9),
            Column::left("ENV", 8),
            Column::last("WHAT"),
        ]);
        for e in &cal.entries {
            table.row([
                &time(&e.start),
                &time(&e.end),
                &e.kind,
                e.environment.as_deref().unwrap_or("-"),
                &e.title,
            ]);
        }
        table.print();
    });
    Ok(ExitCode::SUCCESS)
}
