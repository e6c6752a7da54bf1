//! `wavegate token create|list|revoke`.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::tokens::{CreatedToken, NewToken, Revoked, RoleGrant, Token};

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

/// `--role editor` or `--role releaser=staging,dev`.
fn role_grant(text: &str) -> Result<RoleGrant, String> {
    let (role, envs) = match text.split_once('=') {
        Some((role, envs)) => {
            let envs: Vec<String> = envs
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
            if envs.is_empty() {
                return Err(format!(
                    "--role {text:?}: name the environments after `=`, or leave `=` out"
                ));
            }
            (role, envs)
        }
        None => (text, Vec::new()),
    };
    Ok(RoleGrant { role: role.trim().to_owned(), environments: envs })
}

/// `editor, releaser in staging,dev`.
fn roles_text(roles: &[RoleGrant], token_envs: &[String]) -> String {
    let each = roles.iter().map(|g| {
        if g.environments == token_envs {
            g.role.clone()
        } else {
            format!("{} in {}", g.role, g.environments.join(","))
        }
    });
    each.collect::<Vec<_>>().join("; ")
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
            roles,
        } => {
            let expires_at = expires.as_deref().map(expiry).transpose().map_err(Failure::Input)?;
            let roles = if roles.is_empty() {
                None
            } else {
                Some(
                    roles
                        .iter()
                        .map(|r| role_grant(r))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(Failure::Input)?,
                )
            };
            let body = NewToken {
                kind,
                environments,
                principal,
                user_admin,
                evaluate_only,
                expires_at,
                roles,
            };
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
                if !r.roles.is_empty() {
                    println!("Roles: {}.", roles_text(&r.roles, &r.environments));
                }
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
                    Column::left("ROLES", 20),
                    Column::left("ISSUED BY", 16),
                    Column::last("STATUS"),
                ]);
                for t in list {
                    let roles = roles_text(&t.roles, &t.environments);
                    table.row([
                        t.id.as_str(),
                        t.kind.as_str(),
                        &t.environments.join(","),
                        &t.principal,
                        if roles.is_empty() { "-" } else { &roles },
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
