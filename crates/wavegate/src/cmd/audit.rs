//! `wavegate audit verify|list`.

use std::process::ExitCode;

use wavegate_api::audit::{AuditEntry, BadEntry, Verification};

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
            let (v, broken) = wavegate_store::verify_audit_chain(&*store)
                .await
                .map_err(|e| Failure::Operation(format!("could not read the audit log: {e}")))?;
            let verification = Verification {
                ok: broken.is_none(),
                verified: v.verified(),
                head: broken.is_none().then(|| v.head().to_owned()),
                first_bad: broken.map(|b| BadEntry { seq: b.seq, problem: b.problem.to_string() }),
            };
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
}
