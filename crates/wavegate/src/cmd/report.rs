//! `wavegate report dora|rollout|adoption|feedback`: documents rendered by the server
//! (Markdown, HTML) or their data (`--json`).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;
use wavegate_api::reports::{AdoptionSummary, Rate};

use crate::cli::{Remote, ReportCommand};
use crate::client::{Client, enc};
use crate::output::{Column, Table, answer, print_json};

/// Runs `wavegate report …`.
pub async fn run(cmd: ReportCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    // With `--json` the server sends the report's data; else the document asked for.
    let format = |f: String| if remote.json { "json".to_owned() } else { f };
    let path = match cmd {
        ReportCommand::Dora { since, until, by, environment, format: f } => {
            let mut query = vec![("since", since), ("by", by), ("format", format(f))];
            query.extend(until.map(|u| ("until", u)));
            query.extend(environment.map(|e| ("environment", e)));
            let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
            format!("/api/v1/reports/dora?{}", qs.join("&"))
        }
        ReportCommand::Rollout { id, format: f } => {
            format!("/api/v1/rollouts/{}/report?format={}", enc(&id), format(f))
        }
        ReportCommand::Adoption { id: Some(id), window, format: f, .. } => {
            format!("/api/v1/rollouts/{}/adoption?window={window}&format={}", enc(&id), format(f))
        }
        ReportCommand::Adoption { id: None, window, environment, all, .. } => {
            return adoption_summary(&c, remote, &window, environment, all).await;
        }
        ReportCommand::Feedback { release, format: f } => {
            format!("/api/v1/feedback/digest?release={}&format={}", enc(&release), format(f))
        }
    };
    // A document passes through: text (Markdown, HTML) as it is, data as pretty JSON.
    match c.send(c.request(Method::GET, &path)).await?.1 {
        Value::String(text) => print!("{text}"),
        other => print_json(&other),
    }
    Ok(ExitCode::SUCCESS)
}

/// `wavegate report adoption` without an id: every rollout tracking adoption.
async fn adoption_summary(
    c: &Client,
    remote: &Remote,
    window: &str,
    environment: Option<String>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("/api/v1/reports/adoption?window={window}&all={all}");
    if let Some(e) = environment {
        path.push_str(&format!("&environment={}", enc(&e)));
    }
    let a = c.get::<AdoptionSummary>(&path).await?;
    answer(remote.json, &a, |summary| {
        if summary.rollouts.is_empty() {
            println!(
                "No rollout is tracking adoption (a plan opts in with an `adoption:` section)."
            );
            return;
        }
        let pct = |r: Option<&Rate>| match r.and_then(|r| Some((r.rate?, r.exposed))) {
            Some((p, exposed)) => format!("{:.1}% of {exposed}", p * 100.0),
            None => "-".into(),
        };
        let mut table = Table::new(vec![
            Column::left("ROLLOUT", 26),
            Column::left("ENV", 8),
            Column::left("RELEASE", 22),
            Column::left("30 DAYS", 16),
            Column::left("60 DAYS", 16),
            Column::left("90 DAYS", 16),
            Column::last(format!("LAGGING ({window}d)")),
        ]);
        for r in &summary.rollouts {
            let lagging: Vec<String> =
                r.lagging.iter().map(|l| format!("{}={}", l.attribute, l.value)).collect();
            table.row([
                r.about.rollout.clone(),
                r.about.environment.clone(),
                r.about.release.clone(),
                pct(r.overall.first()),
                pct(r.overall.get(1)),
                pct(r.overall.get(2)),
                if lagging.is_empty() { "-".into() } else { lagging.join(", ") },
            ]);
        }
        table.print();
    });
    Ok(ExitCode::SUCCESS)
}
