//! `wavegate backup`: a whole database as one JSON file (`wavegate restore` reads it back).
//!
//! A backup is taken in one read transaction (from a running server over
//! `GET /api/v1/backup`, or from `--db` directly), written atomically (a temporary file in the
//! same directory, synced, then renamed) and readable by its owner only, because it holds token
//! hashes. Notification targets' signing secrets and webhook URLs stay out unless
//! `--include-secrets` asks for them. A restore goes into an empty database of either kind in
//! one transaction and then verifies the audit chain it restored.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{Value, json};
use wavegate_store::Store;
use wavegate_store::backup::Backup;

use crate::cli::BackupArgs;
use crate::client::{Client, need_token};
use crate::failure::Failure;
use crate::output::{print_json, redact_url};

/// Runs `wavegate backup`.
pub async fn run(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let to_stdout = args.file.as_os_str() == "-";
    if !to_stdout && args.file.exists() && !args.force {
        return Err(Failure::Input(format!(
            "{} already exists; pass --force to replace it",
            args.file.display()
        ))
        .into());
    }
    let backup: Backup = match &args.db {
        Some(db) => {
            eprintln!("reading {} …", redact_url(db));
            let store = open(db).await?;
            let mut backup = store.export().await.context("Failed to read the database")?;
            if !args.include_secrets {
                wavegate_server::runtime::notify::spec::omit_secrets(&mut backup);
            }
            backup
        }
        None => {
            need_token(&args.remote)?;
            eprintln!("asking {} for a backup …", redact_url(&args.remote.url));
            let path =
                if args.include_secrets { "/api/v1/backup?secrets=true" } else { "/api/v1/backup" };
            let answer = Client::new(&args.remote)?.get::<Value>(path).await?;
            serde_json::from_value(answer.raw)
                .context("The server's backup is not in backup format")?
        }
    };
    backup.validate().map_err(|e| Failure::Operation(format!("the backup is malformed: {e}")))?;
    let text = serde_json::to_vec(&backup)?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&text)?;
        out.write_all(b"\n")?;
    } else {
        write_atomically(&args.file, &text)
            .with_context(|| format!("Failed to write {}", args.file.display()))?;
    }
    let head = audit_head(&backup);
    if args.remote.json {
        let mut summary = summary(&backup);
        summary["file"] = json!(args.file.display().to_string());
        summary["bytes"] = json!(text.len());
        print_json(&summary);
    } else {
        let where_to =
            if to_stdout { "standard output".into() } else { args.file.display().to_string() };
        eprintln!(
            "backup of {} written to {where_to} ({} bytes): {}; audit head {head}",
            backup.source,
            text.len(),
            describe(&backup)
        );
        let withheld = wavegate_server::runtime::notify::spec::withheld_targets(&backup);
        if !withheld.is_empty() {
            eprintln!(
                "left out the signing secrets and webhook URLs of {} notification target(s) ({}); \
                 --include-secrets keeps them",
                withheld.len(),
                withheld.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn open(db: &str) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    wavegate_store::open(db)
        .await
        .with_context(|| format!("Failed to open the database {:?}", redact_url(db)))
}

/// Verifies the whole record (chain, columns, version and head rows); `Err` names the first
/// problem.
pub(crate) async fn verify_record(store: &dyn Store) -> anyhow::Result<Result<i64, String>> {
    let v = wavegate_server::record::verify(store).await?;
    Ok(match (v.first_bad, v.bad_rows.first()) {
        (None, None) => Ok(v.verified),
        (Some(b), _) => Err(format!("entry {}: {}", b.seq, b.problem)),
        (None, Some(r)) => Err(format!(
            "{} {:?} {} row, version {}: {}",
            r.kind, r.key, r.row, r.version, r.problem
        )),
    })
}

/// Writes `bytes` to `path` via a synced temporary file in the same directory and a rename, so
/// `path` is either absent or whole, never half-written; owner-only permissions on Unix.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn audit_head(b: &Backup) -> i64 {
    b.tables.get("audit_log").and_then(|rows| rows.last()).and_then(|r| r[0].as_i64()).unwrap_or(0)
}

pub(crate) fn summary(b: &Backup) -> Value {
    let tables: serde_json::Map<String, Value> =
        b.counts().into_iter().map(|(k, n)| (k, json!(n))).collect();
    json!({
        "source": b.source,
        "created_at": b.created_at,
        "secrets_omitted": b.secrets_omitted,
        "tables": tables,
        "audit_head": audit_head(b),
    })
}

/// The counts a person cares about, e.g. "3 flags (7 versions), 1 plan, 2 rollouts, 40 audit entries".
pub(crate) fn describe(b: &Backup) -> String {
    let n = |t: &str| b.tables.get(t).map_or(0, Vec::len);
    format!(
        "{} flags ({} versions), {} segments, {} plans, {} rollouts, {} verdicts, {} tokens, {} audit entries",
        n("flags"),
        n("flag_versions"),
        n("segments"),
        n("plans"),
        n("rollouts"),
        n("verdicts"),
        n("tokens"),
        n("audit_log")
    )
}
