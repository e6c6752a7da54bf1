//! `wavegate token create|list|revoke`.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::tokens::{CreatedToken, NewToken, Revoked, Token};

use crate::cli::{Remote, TokenCommand};
use crate::client::{Client, enc};
use crate::output::{Column, Table, answer};

/// Runs `wavegate token …`.
pub async fn run(cmd: TokenCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        TokenCommand::Create { kind, environments, principal, user_admin, evaluate_only } => {
            let body = NewToken { kind, environments, principal, user_admin, evaluate_only };
            let a = c.call::<CreatedToken>(c.request(Method::POST, "/api/v1/tokens").json(&body));
            answer(remote.json, &a.await?, |t| {
                let r = &t.record;
                println!(
                    "Created {} token {} for {} (environments: {}).",
                    r.kind.as_str(),
                    r.id,
                    r.principal,
                    r.environments.join(",")
                );
                if r.user_admin {
                    println!("It may issue tokens for other people (user administration).");
                }
                if r.evaluate_only {
                    println!("It evaluates only: it may not post events or metrics.");
                }
                println!("Its secret, shown once:\n\n    {}\n", t.token);
            });
        }
        TokenCommand::List => {
            answer(remote.json, &c.get::<Vec<Token>>("/api/v1/tokens").await?, |list| {
                let mut table = Table::new(vec![
                    Column::left("ID", 18),
                    Column::left("KIND", 11),
                    Column::left("ENVIRONMENTS", 20),
                    Column::left("PRINCIPAL", 24),
                    Column::left("ISSUED BY", 16),
                    Column::last("STATUS"),
                ]);
                for t in list {
                    table.row([
                        t.id.as_str(),
                        t.kind.as_str(),
                        &t.environments.join(","),
                        &t.principal,
                        &t.created_by,
                        match (t.revoked_at.is_none(), t.user_admin, t.evaluate_only) {
                            (false, _, _) => "revoked",
                            (true, true, _) => "live, user admin",
                            (true, false, true) => "live, evaluate only",
                            (true, false, false) => "live",
                        },
                    ]);
                }
                table.print();
            });
        }
        TokenCommand::Revoke { id } => {
            let rb = c.request(Method::DELETE, &format!("/api/v1/tokens/{}", enc(&id)));
            answer(remote.json, &c.call::<Revoked>(rb).await?, |_| println!("Revoked {id}."));
        }
    }
    Ok(ExitCode::SUCCESS)
}
