//! `wavegate incident report|list`: incidents and support tickets of a service.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::reports::{Incident, IncidentBody};

use crate::cli::{IncidentCommand, Remote};
use crate::client::{Client, enc};
use crate::output::{answer, or_dash};

fn print_incident(i: &Incident) {
    let arms: Vec<String> =
        i.arms.iter().map(|a| format!("{} wave {} {}", a.rollout, a.wave, a.arm)).collect();
    println!(
        "#{} {} {} [{}] {} {}: {} (user {}){}",
        i.id,
        i.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        i.kind,
        i.severity,
        i.service,
        i.external_id,
        i.title,
        or_dash(i.user.as_ref()),
        if arms.is_empty() { String::new() } else { format!("; counts in {}", arms.join(", ")) }
    );
}

/// Runs `wavegate incident …`.
pub async fn run(cmd: IncidentCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        IncidentCommand::Report { service, severity, title, user, id, ticket } => {
            let body = IncidentBody {
                id,
                kind: ticket.then(|| "ticket".to_owned()),
                severity,
                service,
                user,
                context: None,
                title,
                at: None,
            };
            let rb = c.request(Method::POST, "/api/v1/incidents").json(&body);
            answer(remote.json, &c.call::<Incident>(rb).await?, |i| {
                if !i.new {
                    print!("already recorded: ");
                }
                print_incident(i);
            });
        }
        IncidentCommand::List { service, limit } => {
            let mut path = format!("/api/v1/incidents?limit={limit}");
            if let Some(s) = service {
                path.push_str(&format!("&service={}", enc(&s)));
            }
            answer(remote.json, &c.get::<Vec<Incident>>(&path).await?, |list| {
                if list.is_empty() {
                    println!("No incidents recorded.");
                }
                list.iter().for_each(print_incident);
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
