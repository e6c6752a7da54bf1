//! `wavegate report dora|rollout|adoption|feedback`: documents rendered by the server
//! (Markdown, HTML) or their data (`--json`).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use crate::cli::{Remote, ReportCommand};
use crate::client::{Client, enc};
use crate::output::{Column, Table, print_json, s};

/// Runs `wavegate report …`.
pub async fn run(cmd: ReportCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let (since, until, by, environment, format) = match cmd {
        ReportCommand::Dora { since, until, by, environment, format } => {
            (since, until, by, environment, format)
        }
        ReportCommand::Rollout { id, format } => {
            let format = if remote.json { "json" } else { format.as_str() };
            let path = format!("/api/v1/rollouts/{}/report?format={format}", enc(&id));
            match c.send(c.request(Method::GET, &path)).await?.1 {
                Value::String(text) => print!("{text}"),
                other => print_json(&other),
            }
            return Ok(ExitCode::SUCCESS);
        }
        ReportCommand::Adoption { id, window, format, environment, all } => {
            return adoption_report(&c, remote, id, &window, &format, environment, all).await;
        }
        ReportCommand::Feedback { release, format } => {
            let format = if remote.json { "json" } else { format.as_str() };
            let path = format!("/api/v1/feedback/digest?release={}&format={format}", enc(&release));
            match c.send(c.request(Method::GET, &path)).await?.1 {
                Value::String(text) => print!("{text}"),
                other => print_json(&other),
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let format = if remote.json { "json".to_owned() } else { format };
    let mut query = vec![("since", since), ("by", by), ("format", format)];
    query.extend(until.map(|u| ("until", u)));
    query.extend(environment.map(|e| ("environment", e)));
    let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let path = format!("/api/v1/reports/dora?{}", qs.join("&"));
    let (_, body) = c.send(c.request(Method::GET, &path)).await?;
    match body {
        Value::String(text) => print!("{text}"),
        other => print_json(&other),
    }
    Ok(ExitCode::SUCCESS)
}

/// `wavegate report adoption [ID]`.
async fn adoption_report(
    c: &Client,
    remote: &Remote,
    id: Option<String>,
    window: &str,
    format: &str,
    environment: Option<String>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(id) = id {
        let format = if remote.json { "json" } else { format };
        let path =
            format!("/api/v1/rollouts/{}/adoption?window={window}&format={format}", enc(&id));
        match c.send(c.request(Method::GET, &path)).await?.1 {
            Value::String(text) => print!("{text}"),
            other => print_json(&other),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut path = format!("/api/v1/reports/adoption?window={window}&all={all}");
    if let Some(e) = environment {
        path.push_str(&format!("&environment={}", enc(&e)));
    }
    let (_, body) = c.send(c.request(Method::GET, &path)).await?;
    if remote.json {
        print_json(&body);
        return Ok(ExitCode::SUCCESS);
    }
    let rollouts = body["rollouts"].as_array().cloned().unwrap_or_default();
    if rollouts.is_empty() {
        println!("No rollout is tracking adoption (a plan opts in with an `adoption:` section).");
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |r: &Value| match r["rate"].as_f64() {
        Some(p) => format!("{:.1}% of {}", p * 100.0, r["exposed"]),
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
    for r in &rollouts {
        let lagging: Vec<String> = r["lagging"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| format!("{}={}", s(&l["attribute"]), s(&l["value"])))
            .collect();
        table.row([
            s(&r["rollout"]),
            s(&r["environment"]),
            s(&r["release"]),
            pct(&r["overall"][0]),
            pct(&r["overall"][1]),
            pct(&r["overall"][2]),
            if lagging.is_empty() { "-".into() } else { lagging.join(", ") },
        ]);
    }
    table.print();
    Ok(ExitCode::SUCCESS)
}
