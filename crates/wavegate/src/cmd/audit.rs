//! `wavegate audit verify|list`.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{AuditCommand, Remote};
use crate::client::Client;
use crate::output::{Column, Table, print_json, s};

/// Runs `wavegate audit …`.
pub async fn run(cmd: AuditCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        AuditCommand::Verify => {
            let v = c.get("/api/v1/audit/verify").await?;
            let ok = v["ok"] == json!(true);
            if remote.json {
                print_json(&v);
            } else if ok {
                println!(
                    "audit chain verifies: {} entries, head {}",
                    s(&v["verified"]),
                    s(&v["head"])
                );
            } else {
                println!(
                    "audit chain BROKEN at entry {}: {} ({} entries before it verify)",
                    s(&v["first_bad"]["seq"]),
                    s(&v["first_bad"]["problem"]),
                    s(&v["verified"])
                );
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AuditCommand::List { after, limit } => {
            let list = c.get(&format!("/api/v1/audit?after={after}&limit={limit}")).await?;
            if remote.json {
                print_json(&list);
            } else {
                let mut table = Table::new(vec![
                    Column::right("", 6).gap(2),
                    Column::left("", 0).gap(2),
                    Column::left("", 16),
                    Column::left("", 18),
                    Column::left("", 28),
                    Column::last(""),
                ]);
                for e in list.as_array().into_iter().flatten() {
                    table.row([
                        s(&e["seq"]),
                        s(&e["at"]),
                        s(&e["actor"]),
                        s(&e["action"]),
                        s(&e["target"]),
                        s(&e["reason"]),
                    ]);
                }
                table.print();
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
