//! The controller: every tick, steps each running rollout with the signals of its current wave
//! and carries the actions out (one transaction per rollout). Rollouts are resumed from the
//! store on every tick, so a restarted server continues exactly where it was.

use std::time::Duration;

use wavegate_rollout::machine::State;

use crate::service::rollouts::{self, Stepped};
use crate::state::AppState;

/// Default tick interval.
pub const DEFAULT_TICK: Duration = Duration::from_secs(10);

/// Steps every running rollout once, unfenced (tests and single-process use). Returns how
/// many were stepped.
pub async fn tick(state: &AppState) -> anyhow::Result<usize> {
    tick_as(state, None).await
}

/// Steps every running rollout once as the leader of `leader_epoch` (its writes are refused
/// once another replica leads). Returns how many were stepped.
///
/// Each rollout's facts (signals, Prometheus readings, checks) are gathered without a lock and
/// its decision is written at the revision it was made from, so a person's command during a
/// slow check is answered at once; the controller's decision then yields to it.
pub async fn tick_as(state: &AppState, leader_epoch: Option<i64>) -> anyhow::Result<usize> {
    let mut stepped = 0;
    // Unknown is not "no freeze": hold promotions until the setting can be read.
    let freeze = match crate::service::freeze::active(state).await {
        Ok(f) => f,
        Err(e) => Some(format!("freeze state unreadable: {e}")),
    };
    for row in state.store.rollouts(true).await? {
        if row.state != "running" {
            continue;
        }
        let id = row.id.clone();
        let outcome = rollouts::step_one(state, row, freeze.clone(), leader_epoch).await;
        stepped += usize::from(outcome.is_ok());
        match outcome {
            Ok(Stepped::Moved { from, to }) => {
                if to.state != from.state || to.wave != from.wave {
                    tracing::info!(rollout = %id, from = from.state.name(), to = to.state.name(), wave = to.wave + 1, "rollout transition");
                }
                if let State::RolledBack { reason } = &to.state {
                    tracing::warn!(rollout = %id, %reason, "rolled back");
                }
            }
            Ok(Stepped::Superseded) => {
                tracing::info!(rollout = %id, "the rollout changed while the controller decided; deciding again next tick")
            }
            Ok(Stepped::Unchanged) => {}
            Err(e) => {
                tracing::error!(rollout = %id, error = %e, "could not carry out the controller's decision")
            }
        }
    }
    for id in rollouts::settle_completed(state, leader_epoch).await? {
        tracing::info!(rollout = %id, "flag marked stale");
    }
    prune_adoption(state).await;
    if let Err(e) = crate::service::schedules::run_due(state).await {
        tracing::error!(error = %e, "scheduled starts could not run");
    }
    if let Err(e) = crate::service::releases::run_due(state, leader_epoch).await {
        tracing::error!(error = %e, "coordinated releases could not advance");
    }
    if let Err(e) = crate::service::pipelines::run_due(state).await {
        tracing::error!(error = %e, "release pipelines could not run");
    }
    Ok(stepped)
}

/// Once a day, drops the adoption rows no report window reaches any more (users last served
/// the new variant before the longest window's first day; a failure is retried next tick), and
/// the idempotency keys of event batches older than [`crate::service::events::KEY_RETENTION`].
async fn prune_adoption(state: &AppState) {
    use std::sync::atomic::Ordering;
    let today = state.clock.now().timestamp().div_euclid(86_400);
    let last = state.routing.adoption_pruned.swap(today, Ordering::Relaxed);
    if last >= today {
        return;
    }
    let longest = wavegate_rollout::adoption::WINDOWS.iter().max().copied().unwrap_or(90);
    let before = today - i64::from(longest) + 1;
    match state.store.prune_adoption(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned adoption rows older than every report window"),
        Err(e) => {
            state.routing.adoption_pruned.store(last, Ordering::Relaxed);
            tracing::warn!(error = %e, "could not prune adoption rows; retrying next tick");
        }
    }
    // Event batches' idempotency keys, once they are older than any retry.
    let horizon = state.clock.now() - crate::service::events::KEY_RETENTION;
    match state.store.prune_batch_keys(horizon).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "forgot event batches' idempotency keys"),
        Err(e) => tracing::warn!(error = %e, "could not prune idempotency keys; retrying tomorrow"),
    }
}

/// Default controller leadership lease: a replica that stops renewing (dead or hung) is
/// replaced once it lapses.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Every `interval` until `shutdown` resolves, the leader runs [`tick_as`] under its epoch.
/// Leadership is kept by [`keep_leadership`] on its own timer beside it (a tick can spend long
/// inside checks; the lease must not lapse meanwhile); the others stand by and take over once
/// the leader's lease lapses.
pub async fn run(
    state: AppState,
    interval: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let lease = tokio::spawn(keep_leadership(state.clone(), shutdown.clone()));
    let mut shutdown = shutdown;
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = timer.tick() => {
                let epoch = state.leadership.epoch.load(std::sync::atomic::Ordering::Relaxed);
                if epoch == 0 {
                    continue;
                }
                if let Err(e) = tick_as(&state, Some(epoch)).await {
                    tracing::error!(error = %e, "controller tick failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    let _ = lease.await;
}

/// Takes or renews the leadership lease every third of [`AppState::lease`] until `shutdown`
/// resolves, then resigns it (so another replica need not wait for it to lapse). Publishes the
/// epoch held (0: standing by) in [`AppState::leader_epoch`], [`AppState::leading`] and the
/// metrics.
pub async fn keep_leadership(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    use std::sync::atomic::Ordering;
    let holder = state.leadership.replica.clone();
    let every = (state.leadership.lease / 3).max(Duration::from_millis(10));
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading: Option<i64> = None;
    loop {
        tokio::select! {
            _ = timer.tick() => {
                let epoch = match state.store.lead(&holder, state.clock.now(), state.leadership.lease).await {
                    Ok(e) => e,
                    Err(e) => {
                        // Unknown is not leading: a write under an old epoch would be fenced
                        // anyway, and the lease lapses for the others to take over.
                        tracing::warn!(error = %e, "could not renew controller leadership");
                        None
                    }
                };
                if epoch != leading {
                    match epoch {
                        Some(e) => tracing::info!(replica = %holder, epoch = e, "leading the controller"),
                        None => tracing::info!(replica = %holder, "standing by: another replica leads the controller"),
                    }
                    leading = epoch;
                }
                state.leadership.epoch.store(epoch.unwrap_or(0), Ordering::Relaxed);
                state.leadership.leading.store(epoch.is_some(), Ordering::Relaxed);
                state.metrics.leader.set(i64::from(epoch.is_some()));
                state.metrics.leader_epoch.set(epoch.unwrap_or(0));
            }
            _ = shutdown.changed() => break,
        }
    }
    state.leadership.epoch.store(0, Ordering::Relaxed);
    state.leadership.leading.store(false, Ordering::Relaxed);
    if leading.is_some()
        && let Err(e) = state.store.resign(Some(&holder)).await
    {
        tracing::warn!(error = %e, "could not resign controller leadership; it lapses by itself");
    }
}
