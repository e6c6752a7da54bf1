//! `wavegate feedback list|close`: pilot feedback and its status.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::reports::{FeedbackEntry, FeedbackList, FeedbackStatusBody, FixedIn};

use crate::cli::{FeedbackCommand, Remote};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::output::{answer, or_dash};

/// `flag:checkout:7` → the version that fixed an item.
fn fixed_in(text: &str) -> Result<FixedIn, Failure> {
    let bad = || {
        Failure::Input(format!(
            "--fixed-in {text:?}: expected KIND:KEY:VERSION, e.g. flag:checkout:7 or plan:checkout-v2:3"
        ))
    };
    let mut parts = text.splitn(3, ':');
    let (Some(kind), Some(key), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !matches!(kind, "flag" | "plan") || key.is_empty() {
        return Err(bad());
    }
    let version = version.parse().map_err(|_| bad())?;
    Ok(FixedIn { kind: kind.into(), key: key.into(), version })
}

fn print_item(f: &FeedbackEntry) {
    let closed = match (&f.closed_by, &f.resolution) {
        (Some(by), note) => format!(
            " — {} by {by}: {}{}",
            f.status,
            or_dash(note.as_ref()),
            f.fixed_in.as_ref().map(|v| format!(" ({v})")).unwrap_or_default()
        ),
        _ => String::new(),
    };
    println!(
        "#{} [{}{}] {} / {} / {}: {}{closed}",
        f.id,
        f.status,
        if f.blocker { ", blocker" } else { "" },
        f.category,
        f.cohort,
        f.sentiment,
        f.text
    );
}

/// Runs `wavegate feedback …`.
pub async fn run(cmd: FeedbackCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    match cmd {
        FeedbackCommand::List { release } => {
            let a = c
                .get::<FeedbackList>(&format!("/api/v1/feedback?release={}", enc(&release)))
                .await?;
            answer(remote.json, &a, |l| {
                if l.items.is_empty() {
                    println!("No feedback about {} yet.", l.release);
                }
                l.items.iter().for_each(print_item);
            });
        }
        FeedbackCommand::Close { id, status, note, fixed_in: fix } => {
            let body = FeedbackStatusBody {
                status,
                note,
                fixed_in: fix.as_deref().map(fixed_in).transpose()?,
            };
            let rb = c.request(Method::POST, &format!("/api/v1/feedback/{id}/status")).json(&body);
            answer(remote.json, &c.call::<FeedbackEntry>(rb).await?, print_item);
        }
    }
    Ok(ExitCode::SUCCESS)
}
