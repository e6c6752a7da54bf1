//! `wavegate restore`: a backup into an empty database of either kind, in one transaction,
//! then the restored audit chain verified.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use wavegate_store::StoreError;
use wavegate_store::backup::Backup;

use crate::cli::RestoreArgs;
use crate::cmd::backup::{describe, open, summary, verify_chain};
use crate::failure::Failure;
use crate::output::{print_json, redact_url};

/// Runs `wavegate restore`.
pub async fn run(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let text = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("Failed to read standard input")?;
        buf
    } else {
        std::fs::read(&args.file)
            .map_err(|e| Failure::Input(format!("cannot read {}: {e}", args.file.display())))?
    };
    let backup: Backup = serde_json::from_slice(&text).map_err(|e| {
        Failure::Input(format!(
            "{}: not a wavegate backup: {e} (line {}, column {})",
            args.file.display(),
            e.line(),
            e.column()
        ))
    })?;
    backup.validate().map_err(|e| Failure::Input(format!("{}: {e}", args.file.display())))?;
    let rows: usize = backup.counts().iter().map(|(_, n)| n).sum();
    eprintln!(
        "restoring {rows} rows ({}) taken from {} at {} into {} …",
        describe(&backup),
        backup.source,
        backup.created_at,
        redact_url(&args.db)
    );
    let store = open(&args.db).await?;
    store.import(&backup).await.map_err(|e| match e {
        StoreError::Conflict(m) | StoreError::Invalid(m) => anyhow::Error::from(Failure::Input(m)),
        other => anyhow::Error::from(other).context("Failed to restore"),
    })?;
    eprintln!("verifying the restored audit chain …");
    let verified = verify_chain(&*store).await?;
    let ok = verified.is_ok();
    let withheld = backup.withheld_targets();
    if !withheld.is_empty() {
        eprintln!(
            "the backup was taken without secrets: notification target(s) {} send nothing until \
             `wavegate notify set` gives them their webhook URL (and signing secret) again",
            withheld.join(", ")
        );
    }
    if args.json {
        let mut summary = summary(&backup);
        summary["withheld_targets"] = json!(withheld);
        summary["audit"] = match &verified {
            Ok(n) => json!({"ok": true, "verified": n}),
            Err(m) => json!({"ok": false, "problem": m}),
        };
        print_json(&summary);
    } else {
        match &verified {
            Ok(n) => println!("restored {rows} rows; audit chain verifies: {n} entries"),
            Err(m) => println!("restored {rows} rows; audit chain does NOT verify: {m}"),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
