//! `wavegate restore`: a backup into an empty database of either kind, in one transaction.
//! The backup's audit record (chain, version and head rows) is verified first, in a scratch
//! SQLite file, so a backup that does not verify writes nothing to the target.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use wavegate_store::StoreError;
use wavegate_store::backup::Backup;

use crate::cli::RestoreArgs;
use crate::cmd::backup::{describe, open, summary, verify_record};
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
    let import = |e: StoreError| match e {
        StoreError::Conflict(m) | StoreError::Invalid(m) => anyhow::Error::from(Failure::Input(m)),
        other => anyhow::Error::from(other).context("Failed to restore"),
    };
    eprintln!("verifying the backup's audit record before writing …");
    let scratch = tempfile::tempdir().context("Failed to make a scratch directory")?;
    let scratch_db = scratch.path().join("verify.db");
    let verified = {
        let store = open(&scratch_db.to_string_lossy()).await?;
        store.import(&backup).await.map_err(import)?;
        verify_record(&*store).await?
    };
    drop(scratch);
    if verified.is_ok() {
        let store = open(&args.db).await?;
        store.import(&backup).await.map_err(import)?;
    }
    let ok = verified.is_ok();
    let withheld = wavegate_server::runtime::notify::spec::withheld_targets(&backup);
    if !withheld.is_empty() {
        eprintln!(
            "the backup was taken without secrets: notification target(s) {} send nothing until \
             `wavegate notify set` gives them their webhook URL (and signing secret) again",
            withheld.join(", ")
        );
    }
    if args.json {
        let mut summary = summary(&backup);
        summary["restored"] = json!(ok);
        summary["withheld_targets"] = json!(withheld);
        summary["audit"] = match &verified {
            Ok(n) => json!({"ok": true, "verified": n}),
            Err(m) => json!({"ok": false, "problem": m}),
        };
        print_json(&summary);
    } else {
        match &verified {
            Ok(n) => println!(
                "restored {rows} rows; audit chain verifies: {n} entries, and every version and head row matches it"
            ),
            Err(m) => println!("nothing restored: the backup's audit record does NOT verify: {m}"),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
