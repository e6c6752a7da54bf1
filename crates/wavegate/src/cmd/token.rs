//! `wavegate token create|list|revoke`.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::tokens::{CreatedToken, NewToken, Revoked, Token};

use crate::cli::{Remote, TokenCommand};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::output::{Column, Table, answer};

/// `--expires`: a span from now (`30d`) or an RFC 3339 time, as the RFC 3339 time it names.
fn expiry(text: &str) -> Result<String, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.to_utc().to_rfc3339());
    }
    let span = wavegate_rollout::duration::parse_span(text).map_err(|e| {
        format!("--expires takes a span from now (30d, 12h) or an RFC 3339 time: {e}")
    })?;
    Ok((chrono::Utc::now() + span.to_chrono()).to_rfc3339())
}

/// A token's status in the list: revoked, expired or live, and what it holds.
fn status(t: &Token) -> String {
    if t.revoked_at.is_some() {
        return "revoked".into();
    }
    let expired = t.expires_at.as_deref().is_some_and(|e| {
        chrono::DateTime::parse_from_rfc3339(e).is_ok_and(|e| e.to_utc() <= chrono::Utc::now())
    });
    if expired {
        return "expired".into();
    }
    let mut s = String::from("live");
    if t.user_admin {
        s.push_str(", user admin");
    } else if t.evaluate_only {
        s.push_str(", evaluate only");
    }
    if let Some(e) = &t.expires_at {
        s.push_str(&format!(", expires {e}"));
    }
    s
}

/// Runs `wavegate token …`.
pub async fn run(cmd: TokenCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        TokenCommand::Create {
            kind,
            environments,
            principal,
            user_admin,
            evaluate_only,
            expires,
        } => {
            let expires_at = expires.as_deref().map(expiry).transpose().map_err(Failure::Input)?;
            let body =
                NewToken { kind, environments, principal, user_admin, evaluate_only, expires_at };
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
                if let Some(at) = &r.expires_at {
                    println!("It expires at {at}.");
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
                        &status(t),
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
