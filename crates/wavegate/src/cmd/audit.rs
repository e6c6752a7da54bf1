//! `wavegate audit verify|list`.

use std::process::ExitCode;

use wavegate_api::audit::{AuditEntry, Verification};

use crate::cli::{AuditCommand, Remote};
use crate::client::Client;
use crate::output::{Column, Table, answer, or_dash};

/// Runs `wavegate audit …` (`verify` exits 1 when the chain is broken).
pub async fn run(cmd: AuditCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        AuditCommand::Verify => {
            let a = c.get::<Verification>("/api/v1/audit/verify").await?;
            answer(remote.json, &a, |v| {
                if v.ok {
                    let head = or_dash(v.head.as_deref());
                    println!("audit chain verifies: {} entries, head {head}", v.verified);
                } else {
                    let bad = v.first_bad.as_ref();
                    println!(
                        "audit chain BROKEN at entry {}: {} ({} entries before it verify)",
                        or_dash(bad.map(|b| b.seq)),
                        or_dash(bad.map(|b| &b.problem)),
                        v.verified
                    );
                }
            });
            Ok(if a.body.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AuditCommand::List { after, limit } => {
            let path = format!("/api/v1/audit?after={after}&limit={limit}");
            answer(remote.json, &c.get::<Vec<AuditEntry>>(&path).await?, |list| {
                let mut table = Table::new(vec![
                    Column::right("", 6).gap(2),
                    Column::left("", 0).gap(2),
                    Column::left("", 16),
                    Column::left("", 18),
                    Column::left("", 28),
                    Column::last(""),
                ]);
                for e in list {
                    table.row([
                        e.seq.to_string(),
                        e.at.clone(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        or_dash(e.reason.as_deref()),
                    ]);
                }
                table.print();
            });
            Ok(ExitCode::SUCCESS)
        }
    }
}
