//! Signs a checkpoint of the audit chain's head ([`crate::checkpoint`]) at start, every
//! [`CheckpointConfig::every`], and after every rollout decision ([`Record::decided`]), and
//! writes it to the operator's checkpoint directory and to the notification targets that name
//! the `checkpoint` event. A chain that does not verify is never
//! signed: the checkpoints stop at the last head known good, and the log says why.
//!
//! [`Record::decided`]: crate::record::Record::decided

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::checkpoint::{Checkpoint, Signer};
use crate::record::Checkpointing;
use crate::state::AppState;

/// How checkpoints are made (`serve --checkpoint-key`, `--checkpoint-dir`,
/// `--checkpoint-interval`).
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// The operator's signing key.
    pub signer: Arc<Signer>,
    /// Where checkpoint files go (none: kept in memory and served only).
    pub dir: Option<PathBuf>,
    /// How often the head is signed when it moved.
    pub every: Duration,
}

/// Compares the chain with the checkpoints this key signed before. Runs before anything else
/// may append to the log (the controller's leadership entry, a request), so a log cut short is
/// named as cut, not as rewritten by this server's own first entry at the cut.
pub async fn start(state: &AppState, cfg: &CheckpointConfig) {
    state.record.set_checkpointing(Checkpointing {
        public_key: cfg.signer.public_key().to_owned(),
        latest: None,
    });
    if let Some(dir) = &cfg.dir {
        check_earlier(state, cfg, dir).await;
    }
}

/// Signs checkpoints until `closing` turns true (after [`start`]).
pub async fn run(state: AppState, cfg: CheckpointConfig, mut closing: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(cfg.every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = state.record.decision() => {}
            _ = closing.wait_for(|c| *c) => return,
        }
        if let Err(e) = checkpoint(&state, &cfg).await {
            tracing::error!(error = %e, "could not write an audit checkpoint");
        }
    }
}

/// Checks the chain against the checkpoints this key signed before (in `dir`): a log cut short
/// or rewritten since is a chain break ([`crate::record::Record::anchor_failed`]).
async fn check_earlier(state: &AppState, cfg: &CheckpointConfig, dir: &std::path::Path) {
    let dir_for_read = dir.to_owned();
    let earlier = tokio::task::spawn_blocking(move || {
        if dir_for_read.exists() {
            crate::checkpoint::read_dir(&dir_for_read)
        } else {
            Ok(Vec::new())
        }
    })
    .await;
    let earlier = match earlier {
        Ok(Ok(cps)) => cps,
        Ok(Err(e)) => return tracing::error!(error = %e, "could not read the earlier checkpoints"),
        Err(e) => return tracing::error!(error = %e, "could not read the earlier checkpoints"),
    };
    let mine: Vec<Checkpoint> =
        earlier.into_iter().filter(|c| c.key == cfg.signer.public_key()).collect();
    match crate::checkpoint::compare_store(&*state.store, &mine, Some(cfg.signer.public_key()))
        .await
    {
        Ok(c) => {
            for problem in c.problems {
                let seq = mine.iter().map(|c| c.seq).max().unwrap_or(0);
                state.record.anchor_failed(seq, problem);
            }
            if let Some(seq) = c.newest_matching {
                tracing::info!(seq, "the audit chain matches the newest earlier checkpoint");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not compare the audit chain with the checkpoints")
        }
    }
}

/// Signs and writes a checkpoint of the verified head, unless it is the one signed last;
/// returns it.
pub async fn checkpoint(
    state: &AppState,
    cfg: &CheckpointConfig,
) -> anyhow::Result<Option<Checkpoint>> {
    state.record.catch_up(&*state.store).await?;
    let Some((seq, hash)) = state.record.verified_head() else {
        if !state.record.chain_ok() {
            tracing::warn!("not signing a checkpoint: the audit chain does not verify");
        }
        return Ok(None);
    };
    let latest = state.record.checkpointing().and_then(|c| c.latest);
    if latest.as_ref().is_some_and(|l| l.seq == seq) {
        return Ok(None);
    }
    let cp = cfg.signer.sign(seq, &hash, state.clock.now());
    if let Some(dir) = cfg.dir.clone() {
        let written = cp.clone();
        let path =
            tokio::task::spawn_blocking(move || crate::checkpoint::write(&dir, &written)).await??;
        tracing::info!(seq, path = %path.display(), "signed an audit checkpoint");
    }
    state.record.set_checkpointing(Checkpointing {
        public_key: cfg.signer.public_key().to_owned(),
        latest: Some(cp.clone()),
    });
    // And to the notification targets that ask for checkpoints, outside the database too.
    if let Err(e) = crate::runtime::notify::enqueue_checkpoint(state, &cp).await {
        tracing::error!(seq, error = %e, "could not queue the checkpoint for notification targets");
    }
    Ok(Some(cp))
}
