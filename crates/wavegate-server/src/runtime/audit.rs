//! Re-verifies the whole audit record every [`crate::AppState::reverify_every`]: the chain from
//! its first entry, every version and head row, and that the log still holds the entries this
//! server verified before (a log cut short, or rewritten and chained again, is caught here;
//! entries appended since are verified as they arrive, [`crate::record::Record::catch_up`]).

use tokio::sync::watch;

use crate::state::AppState;

/// Runs until `closing` turns true.
pub async fn run(state: AppState, mut closing: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(state.reverify_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await; // the first tick is immediate, and the start already verified
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = closing.wait_for(|c| *c) => return,
        }
        if let Err(e) = state.record.catch_up(&*state.store).await {
            tracing::warn!(error = %e, "could not read the audit log");
            continue;
        }
        match state.record.reverify(&*state.store).await {
            Ok(v) if v.ok => tracing::debug!(entries = v.verified, "the audit record verifies"),
            Ok(v) => {
                for row in &v.bad_rows {
                    tracing::error!(kind = %row.kind, key = %row.key, version = row.version, row = %row.row, problem = %row.problem, "a row does not match the audit log");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not verify the audit record"),
        }
        state.metrics.audit(state.record.chain_ok(), &state.record.refused());
    }
}
