//! The controller: every tick, steps each running rollout with the signals of its current wave
//! and carries the actions out (one transaction per rollout). Rollouts are resumed from the
//! store on every tick, so a restarted server continues exactly where it was.

use std::time::Duration;

use wavegate_rollout::machine::{Action, ArmMoments, Rollout, Signals, State, check_failed, step};
use wavegate_rollout::plan::{CheckWhen, SignalSource};
use wavegate_rollout::stats::Moments;

use crate::rollouts::{after_exposure, persist_fenced, record};
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
pub async fn tick_as(state: &AppState, leader_epoch: Option<i64>) -> anyhow::Result<usize> {
    let guard = state.rollout_lock.lock().await;
    let mut stepped = 0;
    // Unknown is not "no freeze": hold promotions until the setting can be read.
    let freeze = match crate::freeze::active(state).await {
        Ok(f) => f,
        Err(e) => Some(format!("freeze state unreadable: {}", e.message)),
    };
    for row in state.store.rollouts(true).await? {
        if row.state != "running" {
            continue;
        }
        let r: Rollout = match serde_json::from_value(row.doc.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(rollout = %row.id, error = %e, "stored rollout does not decode; skipped");
                continue;
            }
        };
        let mut signals = signals(state, &r).await?;
        signals.freeze = freeze.clone();
        if r.plan.scorecard.is_some() {
            match crate::scorecard::assessment(
                state,
                &r.plan,
                r.plan_version,
                Some(&r),
                Some(&signals.readings),
            )
            .await
            {
                Ok(card) => signals.scorecard_block = card.block_reason(),
                Err(e) => {
                    // Unknown is not go: hold promotions until the scorecard can be read.
                    signals.scorecard_block = Some(format!("scorecard unavailable: {}", e.message));
                }
            }
        }
        let now = state.clock.now();
        let (mut next, mut actions) = step(&r, now, &signals);
        stepped += 1;
        if next == r && actions.is_empty() {
            continue;
        }
        // Promotion gates: the plan's before-promotion checks must pass first.
        let promoting = actions.iter().any(|a| matches!(a, Action::SetExposure { .. }))
            || next.state == State::Completed;
        if promoting {
            let outcomes = crate::checks::run(&state.http, &r, CheckWhen::BeforePromotion).await;
            if let Some(f) = outcomes.iter().find(|o| !o.passed) {
                let evidence: Vec<Action> = actions
                    .into_iter()
                    .filter(|a| {
                        matches!(a, Action::RecordVerdict { .. } | Action::RecordSrm { .. })
                    })
                    .collect();
                (next, actions) =
                    check_failed(&r, now, &f.spec.name, f.spec.action, f.evidence.clone());
                actions.extend(evidence);
            }
            actions.extend(outcomes.into_iter().map(|o| record(&r, o)));
        }
        let exposed = actions.iter().any(|a| matches!(a, Action::SetExposure { .. }));
        match persist_fenced(state, Some(&row), &next, actions, "controller", None, leader_epoch)
            .await
        {
            Err(e) => {
                tracing::error!(rollout = %row.id, error = %e.message, "could not carry out the controller's decision")
            }
            Ok(new_row) if exposed => {
                if let Err(e) = after_exposure(state, new_row, next.clone()).await {
                    tracing::error!(rollout = %row.id, error = %e.message, "smoke checks could not be recorded");
                }
            }
            Ok(_) => {}
        }
        if next.state != r.state || next.wave != r.wave {
            tracing::info!(rollout = %r.id, from = r.state.name(), to = next.state.name(), wave = next.wave + 1, "rollout transition");
        }
        if let State::RolledBack { reason } = &next.state {
            tracing::warn!(rollout = %r.id, %reason, "rolled back");
        }
    }
    settle_completed(state, leader_epoch).await?;
    prune_adoption(state).await;
    // Starting takes the rollout lock itself.
    drop(guard);
    if let Err(e) = crate::schedule::run_due(state).await {
        tracing::error!(error = %e.message, "scheduled starts could not run");
    }
    Ok(stepped)
}

/// Once a day, drops the adoption rows no report window reaches any more (users last served
/// the new variant before the longest window's first day). A failure is retried next tick.
async fn prune_adoption(state: &AppState) {
    use std::sync::atomic::Ordering;
    let today = state.clock.now().timestamp().div_euclid(86_400);
    let last = state.adoption_pruned.swap(today, Ordering::Relaxed);
    if last >= today {
        return;
    }
    let longest = wavegate_rollout::adoption::WINDOWS.iter().max().copied().unwrap_or(90);
    let before = today - i64::from(longest) + 1;
    match state.store.prune_adoption(before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned adoption rows older than every report window"),
        Err(e) => {
            state.adoption_pruned.store(last, Ordering::Relaxed);
            tracing::warn!(error = %e, "could not prune adoption rows; retrying next tick");
        }
    }
}

/// Marks the flags of completed rollouts stale once they have held clean for the plan's settle
/// time (an audited `rollout.stale`, which notification targets hear as `stale`).
async fn settle_completed(state: &AppState, leader_epoch: Option<i64>) -> anyhow::Result<()> {
    let rows = state.store.rollouts(false).await?;
    // Marked rollouts are skipped before decoding: the list only grows.
    let unmarked = rows
        .iter()
        .filter(|r| r.state == "completed" && r.doc.get("stale_at").is_none_or(|v| v.is_null()));
    for row in unmarked {
        let Ok(r) = serde_json::from_value::<Rollout>(row.doc.clone()) else { continue };
        let superseded = rows.iter().any(|o| {
            o.flag == row.flag && o.environment == row.environment && o.created_at > row.created_at
        });
        let Some((next, actions)) =
            wavegate_rollout::machine::settle(&r, state.clock.now(), row.updated_at, superseded)
        else {
            continue;
        };
        if let Err(e) =
            persist_fenced(state, Some(row), &next, actions, "controller", None, leader_epoch).await
        {
            tracing::error!(rollout = %row.id, error = %e.message, "could not mark the flag stale");
        } else {
            tracing::info!(rollout = %row.id, flag = %row.flag, "flag marked stale");
        }
    }
    Ok(())
}

/// The current wave's signals from the stored aggregates.
pub async fn signals(state: &AppState, r: &Rollout) -> anyhow::Result<Signals> {
    let mut s = Signals::default();
    for a in state.store.aggregates(&r.id, r.wave as i64).await? {
        let m = Moments { n: a.n, sum: a.sum, sumsq: a.sumsq };
        let cell: &mut ArmMoments = if a.metric == "exposure" {
            &mut s.exposures
        } else {
            s.metrics.entry(a.metric.clone()).or_default()
        };
        if a.arm == "treatment" {
            cell.treatment.merge(&m);
        } else {
            cell.control.merge(&m);
        }
        s.last_event_at = Some(s.last_event_at.map_or(a.last_at, |t| t.max(a.last_at)));
    }
    for g in r.plan.guardrails.iter().filter(|g| g.source == SignalSource::Prometheus) {
        let reading =
            crate::prometheus::read(&state.http, state.prometheus_url.as_deref(), r, g).await;
        s.readings.insert(g.name.clone(), reading);
    }
    Ok(s)
}

/// Every `interval` until `shutdown` resolves: takes or keeps leadership (one replica leads;
/// the others stand by and take over within a tick of the leader going away), and the
/// leader runs [`tick_as`] under its epoch.
pub async fn run(
    state: AppState,
    interval: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut shutdown = shutdown;
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let holder = state.replica.clone();
    let mut leading: Option<i64> = None;
    loop {
        tokio::select! {
            _ = timer.tick() => {
                let epoch = match state.store.lead(&holder, state.clock.now()).await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not check controller leadership");
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
                state.leading.store(epoch.is_some(), std::sync::atomic::Ordering::Relaxed);
                state.metrics.leader.set(i64::from(epoch.is_some()));
                state.metrics.leader_epoch.set(epoch.unwrap_or(0));
                let Some(epoch) = epoch else { continue };
                if let Err(e) = tick_as(&state, Some(epoch)).await {
                    tracing::error!(error = %e, "controller tick failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}
