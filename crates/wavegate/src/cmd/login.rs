//! `wavegate login`, `logout` and `whoami`.
//!
//! `login` signs in through the server's identity provider with a loopback redirect: it
//! listens on 127.0.0.1 (a free port), sends the browser to the server's `/auth/login` with
//! that port, a state and the S256 challenge of a PKCE verifier; after the provider's pages
//! the server redirects the browser to the loopback address with a one-time code, which the
//! server turns into a session only when shown the verifier (`POST /auth/cli/token`). The
//! session is kept in the user's config directory (mode 0600; [`crate::credentials`]).

use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wavegate_api::signin::{CliExchange, CliSession, SignInConfig, SignedOut};
use wavegate_api::tokens::{RoleGrant, Whoami};

use crate::cli::Remote;
use crate::client::Client;
use crate::credentials::{self, Saved};
use crate::failure::Failure;
use crate::output::answer;

fn roles_text(roles: &[RoleGrant]) -> String {
    let each = roles.iter().map(|g| format!("{} in {}", g.role, g.environments.join(",")));
    let text = each.collect::<Vec<_>>().join("; ");
    if text.is_empty() { "none".into() } else { text }
}

/// Runs `wavegate login`.
pub async fn login(no_browser: bool, timeout: &str, remote: &Remote) -> anyhow::Result<ExitCode> {
    let timeout = wavegate_rollout::duration::parse_span(timeout)
        .map_err(|e| Failure::Input(format!("--timeout: {e}")))?
        .secs();
    let timeout = Duration::from_secs(timeout.max(1));
    let anonymous = Remote { token: None, ..remote.clone() };
    let c = Client::new(&anonymous)?;
    let config = c.get::<SignInConfig>("/auth/config").await?.body;
    if !config.oidc {
        return Err(Failure::Input(format!(
            "{} signs nobody in through an identity provider; use a token (--token or WAVEGATE_TOKEN)",
            remote.url
        ))
        .into());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::Operation(format!("cannot listen on a loopback port: {e}")))?;
    let port = listener.local_addr()?.port();
    let verifier = wavegate_server::oidc::random();
    let state = wavegate_server::oidc::random();
    let query = form_query(&[
        ("cli_port", &port.to_string()),
        ("cli_challenge", &wavegate_server::oidc::challenge(&verifier)),
        ("cli_state", &state),
    ]);
    let url = format!("{}/auth/login?{query}", remote.url.trim_end_matches('/'));
    eprintln!(
        "Sign in through {} in your browser:\n\n    {url}\n\nWaiting (up to {}s)…",
        config.issuer.as_deref().unwrap_or("the identity provider"),
        timeout.as_secs()
    );
    if !no_browser {
        open_browser(&url);
    }
    let code = tokio::time::timeout(timeout, receive_code(&listener, &state))
        .await
        .map_err(|_| Failure::Operation("the sign-in did not finish in time".into()))??;
    let exchange = CliExchange { code, verifier };
    let rb = c.request(Method::POST, "/auth/cli/token").json(&exchange);
    let a = c.call::<CliSession>(rb).await?;
    let s = &a.body;
    let saved = Saved {
        token: s.token.clone(),
        id: s.id.clone(),
        principal: s.principal.clone(),
        expires_at: s.expires_at.clone(),
    };
    let path = credentials::store(&remote.url, saved)?;
    if remote.json {
        // Never the secret: it is in the credentials file.
        let mut shown = a.raw.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("token");
        }
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        println!(
            "Signed in as {} ({}) until {}; kept in {}.",
            s.principal,
            roles_text(&s.roles),
            s.expires_at,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Tries the desktop's way of opening a URL; the address is printed either way.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Answers requests on the loopback address until one brings the code with our state.
async fn receive_code(listener: &tokio::net::TcpListener, state: &str) -> anyhow::Result<String> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // The request line and headers only (at most 16 KiB).
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&buf);
        let target = text.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("");
        let query = target.strip_prefix("/callback?").unwrap_or("");
        let mut code = None;
        let mut got_state = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "code" => code = Some(v.into_owned()),
                "state" => got_state = Some(v.into_owned()),
                _ => {}
            }
        }
        let (status, page) = match (&code, got_state.as_deref() == Some(state)) {
            (Some(_), true) => (
                "200 OK",
                "Signed in to wavegate. You may close this tab and return to the terminal.",
            ),
            _ => ("400 Bad Request", "This is not the sign-in wavegate login is waiting for."),
        };
        let body =
            format!("<!doctype html><meta charset=utf-8><title>wavegate</title><p>{page}</p>");
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(reply.as_bytes()).await;
        let _ = conn.shutdown().await;
        if let (Some(code), true) = (code, got_state.as_deref() == Some(state)) {
            return Ok(code);
        }
    }
}

/// Runs `wavegate logout`.
pub async fn logout(remote: &Remote) -> anyhow::Result<ExitCode> {
    let Some(saved) = credentials::load(&remote.url) else {
        credentials::forget(&remote.url)?;
        println!("Not signed in to {}.", remote.url);
        return Ok(ExitCode::SUCCESS);
    };
    let with = Remote { token: Some(saved.token.clone()), ..remote.clone() };
    let c = Client::new(&with)?;
    let ended = c.call::<SignedOut>(c.request(Method::POST, "/auth/logout")).await;
    credentials::forget(&remote.url)?;
    match ended {
        Ok(a) => answer(remote.json, &a, |s| {
            println!("Signed out of {} (session {}).", remote.url, s.id);
            if let Some(url) = &s.provider_logout_url {
                println!("To end your session at the identity provider too, open {url}");
            }
        }),
        // Already ended on the server (expired, revoked): forgetting it here is all there is.
        Err(e) => eprintln!("The server did not end the session ({e}); it is forgotten here."),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `wavegate whoami`.
pub async fn whoami(remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    answer(remote.json, &c.get::<Whoami>("/api/v1/whoami").await?, |w| {
        let how = if w.signed_in { "signed in through the identity provider" } else { "API token" };
        println!("{} ({}, {how}, {})", w.principal, w.kind.as_str(), w.token_id);
        println!("Environments: {}", w.environments.join(", "));
        if !w.roles.is_empty() {
            println!("Roles: {}", roles_text(&w.roles));
        }
        if let Some(e) = &w.expires_at {
            println!("Expires: {e}");
        }
    });
    Ok(ExitCode::SUCCESS)
}
