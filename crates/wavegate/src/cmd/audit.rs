//! `wavegate audit verify|list`.

use std::process::ExitCode;

use wavegate_api::audit::{AuditEntry, Verification};

use crate::cli::{AuditCommand, Remote};
use crate::client::{Answer, Client};
use crate::failure::Failure;
use crate::output::{Column, Table, answer, or_dash, redact_url};

/// Runs `wavegate audit …` (`verify` exits 1 when the chain is broken).
pub async fn run(cmd: AuditCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { db: Some(db) } => {
            let store = wavegate_store::open(&db).await.map_err(|e| {
                Failure::Operation(format!("could not open the database {}: {e}", redact_url(&db)))
            })?;
            let verification = wavegate_server::record::verify(&*store)
                .await
                .map_err(|e| Failure::Operation(format!("could not read the audit log: {e}")))?;
            let raw = serde_json::to_value(&verification)?;
            let ok = verification.ok;
            let a = Answer { status: reqwest::StatusCode::OK, raw, body: verification };
            print_verification(remote.json, &a);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AuditCommand::Verify { db: None } => {
            let c = Client::authenticated(remote)?;
            let a = c.get::<Verification>("/api/v1/audit/verify").await?;
            print_verification(remote.json, &a);
            Ok(if a.body.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AuditCommand::List { after, limit } => {
            let c = Client::authenticated(remote)?;
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

/// Prints a verification, from a server or from the database.
fn print_verification(json: bool, a: &Answer<Verification>) {
    answer(json, a, |v| {
        match &v.first_bad {
            None => {
                let head = or_dash(v.head.as_deref());
                println!("audit chain verifies: {} entries, head {head}", v.verified);
            }
            Some(bad) => println!(
                "audit chain BROKEN at entry {}: {} ({} entries before it verify)",
                bad.seq, bad.problem, v.verified
            ),
        }
        if v.bad_rows.is_empty() {
            println!("rows match the audit log: {} version and head rows checked", v.rows_checked);
        } else {
            println!(
                "{} of {} version and head rows do NOT match the audit log:",
                v.bad_rows.len(),
                v.rows_checked
            );
            for r in &v.bad_rows {
                println!(
                    "  {} {:?} {} row, version {}: {}",
                    r.kind, r.key, r.row, r.version, r.problem
                );
            }
        }
    });
}
