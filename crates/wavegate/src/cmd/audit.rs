//! `wavegate audit verify|list`.

use std::process::ExitCode;

use wavegate_api::audit::{AuditEntry, Verification};
use wavegate_server::checkpoint::{self, Checkpoint, Comparison};

use crate::cli::{AuditCommand, Remote};
use crate::client::{Answer, Client};
use crate::failure::Failure;
use crate::output::{Column, Table, answer, or_dash, redact_url};

/// Runs `wavegate audit …` (`verify` exits 1 when the chain is broken).
pub async fn run(cmd: AuditCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { db, checkpoints, public_key } => {
            let given = match &checkpoints {
                Some(dir) => Some(checkpoint::read_dir(dir).map_err(Failure::Input)?),
                None => None,
            };
            if let Some(key) = &public_key {
                checkpoint::parse_public_key(key)
                    .map_err(|e| Failure::Input(format!("--public-key: {e}")))?;
            }
            let (mut a, compared) = match db {
                Some(db) => verify_offline(&db, given.as_deref(), public_key.as_deref()).await?,
                None => verify_online(remote, given.as_deref(), public_key.as_deref()).await?,
            };
            if let Some(c) = &compared {
                a.raw["checkpoints"] = serde_json::to_value(c)?;
            }
            print_verification(remote.json, &a);
            if let Some(c) = &compared
                && !remote.json
            {
                print_comparison(c, public_key.is_some());
            }
            let ok = a.body.ok && compared.as_ref().is_none_or(Comparison::ok);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AuditCommand::Keygen { out } => {
            let pem = checkpoint::Signer::generate_pem().map_err(Failure::Operation)?;
            let signer =
                checkpoint::Signer::from_pkcs8(pem.as_bytes()).map_err(Failure::Operation)?;
            write_private(&out, pem.as_bytes())?;
            if remote.json {
                crate::output::print_json(&serde_json::json!({
                    "path": out.display().to_string(),
                    "public_key": signer.public_key(),
                }));
            } else {
                println!(
                    "wrote an ed25519 key to {} (keep it off the database's machine if you can)",
                    out.display()
                );
                println!("public key: {}", signer.public_key());
                println!("serve with --checkpoint-key {} --checkpoint-dir <dir>", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::List { after, limit } => {
            let c = Client::authenticated(remote)?;
            let path = format!("/api/v1/audit?after={after}&limit={limit}");
            answer(remote.json, &c.get::<Vec<AuditEntry>>(&path).await?, |list| {
                let mut table = Table::new(vec![
                    Column::right("", 6).gap(2),
                    Column::left("", 0).gap(2),
                    Column::left("", 24),
                    Column::left("", 18),
                    Column::left("", 28),
                    Column::last(""),
                ]);
                for e in list {
                    table.row([
                        e.seq.to_string(),
                        e.at.clone(),
                        match &e.via {
                            Some(via) => format!("{} ({via})", e.actor),
                            None => e.actor.clone(),
                        },
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
        match &v.first_bad {
            None => {
                let head = or_dash(v.head.as_deref());
                println!("audit chain verifies: {} entries, head {head}", v.verified);
            }
            Some(bad) => println!(
                "audit chain BROKEN at entry {}: {} ({} entries before it verify)",
                bad.seq, bad.problem, v.verified
            ),
        }
        if v.bad_rows.is_empty() {
            println!("rows match the audit log: {} version and head rows checked", v.rows_checked);
        } else {
            println!(
                "{} of {} version and head rows do NOT match the audit log:",
                v.bad_rows.len(),
                v.rows_checked
            );
            for r in &v.bad_rows {
                println!(
                    "  {} {:?} {} row, version {}: {}",
                    r.kind, r.key, r.row, r.version, r.problem
                );
            }
        }
    });
}

/// Verifies the record in the database `db` itself, and the checkpoints against it.
async fn verify_offline(
    db: &str,
    given: Option<&[Checkpoint]>,
    trusted: Option<&str>,
) -> anyhow::Result<(Answer<Verification>, Option<Comparison>)> {
    let store = wavegate_store::open(db).await.map_err(|e| {
        Failure::Operation(format!("could not open the database {}: {e}", redact_url(db)))
    })?;
    let unreadable = |e: wavegate_store::StoreError| {
        Failure::Operation(format!("could not read the audit log: {e}"))
    };
    let verification = wavegate_server::record::verify(&*store).await.map_err(unreadable)?;
    let compared = match given {
        Some(cps) => {
            Some(checkpoint::compare_store(&*store, cps, trusted).await.map_err(unreadable)?)
        }
        None => None,
    };
    let raw = serde_json::to_value(&verification)?;
    Ok((Answer { status: reqwest::StatusCode::OK, raw, body: verification }, compared))
}

/// Asks the server to verify its record, and checks the checkpoints against the entries it
/// lists (which needs an admin token for all environments: a scoped one sees only some).
async fn verify_online(
    remote: &Remote,
    given: Option<&[Checkpoint]>,
    trusted: Option<&str>,
) -> anyhow::Result<(Answer<Verification>, Option<Comparison>)> {
    let c = Client::authenticated(remote)?;
    let a = c.get::<Verification>("/api/v1/audit/verify").await?;
    let Some(cps) = given else { return Ok((a, None)) };
    let me = c.get::<wavegate_api::tokens::Whoami>("/api/v1/whoami").await?.body;
    if !me.environments.iter().any(|e| e == "*") {
        return Err(Failure::Input(
            "--checkpoints needs an admin token for all environments (a scoped token sees only \
             some entries), or --db to read the database itself"
                .into(),
        )
        .into());
    }
    let mut hashes = std::collections::BTreeMap::new();
    let mut head = 0;
    for cp in cps.iter().filter(|c| c.seq >= 1) {
        let path = format!("/api/v1/audit?after={}&limit=1", cp.seq - 1);
        let page = c.get::<Vec<AuditEntry>>(&path).await?.body;
        if let Some(e) = page.into_iter().find(|e| e.seq == cp.seq) {
            head = head.max(e.seq);
            hashes.insert(cp.seq, e.hash);
        }
    }
    // The log's end: the newest entry (what follows the highest entry found).
    let tail = c.get::<Vec<AuditEntry>>(&format!("/api/v1/audit?after={head}&limit=1000")).await?;
    head = tail.body.iter().map(|e| e.seq).max().unwrap_or(head);
    Ok((a, Some(checkpoint::compare(cps, trusted, head, |seq| hashes.get(&seq).cloned()))))
}

/// Prints what comparing the checkpoints found.
fn print_comparison(c: &Comparison, pinned: bool) {
    let key = if pinned {
        "signed by the given key"
    } else {
        "each checked only against the key it names (pin one with --public-key)"
    };
    if c.ok() {
        let newest = or_dash(c.newest_matching);
        println!(
            "checkpoints match the chain: {} checked ({key}), newest of entry {newest}",
            c.checkpoints
        );
    } else {
        println!(
            "checkpoints do NOT match the chain ({} of {} checkpoints):",
            c.problems.len(),
            c.checkpoints
        );
        for p in &c.problems {
            println!("  {p}");
        }
    }
}

/// Writes `bytes` to a new file at `path`, readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .map_err(|e| Failure::Input(format!("could not create {}: {e}", path.display())))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
