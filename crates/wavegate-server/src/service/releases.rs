//! Coordinated releases: the document (`wavegate_rollout::release::ReleaseSpec`) and its run
//! are the versioned setting `release.<name>` (`{"spec", "run"}`), so every change and every
//! step of the run is an audit entry. Starting a release starts the members nothing precedes;
//! the controller's tick (`advance`) starts each member once the members it comes after have
//! completed, carries out the failure policy once when a member fails, and closes the run.
//! The run records the rollout it started for each member (read by id, so a run started again
//! after a failure starts afresh); a member's rollout carries the release's name
//! (`Rollout::release_run`), by which the controller finds the run that holds a member whose
//! partners are behind (`pace`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wavegate_rollout::machine::{Command, Rollout};
use wavegate_rollout::release::{Act, MemberState, ReleaseSpec, step};
use wavegate_store::{Kind, Put, StoreError};

use crate::service::rollouts::{Actor, StartRequest};
use crate::service::{ServiceError, ServiceResult, Who, decode, rollouts};
use crate::state::AppState;

/// Releases are the settings `release.<name>`.
pub const PREFIX: &str = "release.";

/// How many times a write is tried against concurrent ones.
const ATTEMPTS: u32 = 5;

/// A release's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// `running`, `completed` or `failed`.
    pub state: String,
    /// Who started it (each member's requester).
    pub by: String,
    /// How they signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Whether the failure policy was carried out.
    #[serde(default)]
    pub failure_handled: bool,
    /// Why a due member has not started (its start was refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The rollout this run started for each member, by plan.
    #[serde(default)]
    pub rollouts: BTreeMap<String, String>,
}

/// A stored release.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The document.
    pub spec: ReleaseSpec,
    /// Its run, once started.
    pub run: Option<Run>,
    /// The setting's version.
    pub version: i64,
}

/// Every stored release, by name.
pub async fn list(state: &AppState) -> ServiceResult<Vec<(String, Stored)>> {
    let mut out = Vec::new();
    for h in state.heads(Kind::Setting, false).await? {
        let Some(name) = h.key.strip_prefix(PREFIX) else { continue };
        let Ok(spec) = decode::<ReleaseSpec>("release", &h.spec["spec"]) else { continue };
        let run = serde_json::from_value(h.spec["run"].clone()).ok();
        out.push((name.to_owned(), Stored { spec, run, version: h.version }));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The release `name`.
pub async fn get(state: &AppState, name: &str) -> ServiceResult<Stored> {
    let head = state
        .head(Kind::Setting, &format!("{PREFIX}{name}"))
        .await?
        .filter(|h| !h.archived)
        .ok_or_else(|| ServiceError::not_found(format!("release {name:?} not found")))?;
    Ok(Stored {
        spec: decode("release", &head.spec["spec"])?,
        run: serde_json::from_value(head.spec["run"].clone()).ok(),
        version: head.version,
    })
}

async fn write(
    state: &AppState,
    spec: &ReleaseSpec,
    run: Option<&Run>,
    expected: i64,
    verb: &str,
    who: &Who,
    reason: Option<String>,
) -> ServiceResult<()> {
    let put = Put {
        kind: Kind::Setting,
        key: format!("{PREFIX}{}", spec.name),
        spec: json!({"spec": spec, "run": run}),
        archived: false,
        expected_version: Some(expected),
        action: Some(verb.into()),
        details: json!({"release": spec.name, "run": run.map(|r| &r.state),
            "failure": run.and_then(|r| r.failure.as_ref())}),
    };
    state.store.apply(&[put], &state.change(who, reason)).await?;
    Ok(())
}

/// Every member's plan, or a 404 naming the first that is not stored.
pub async fn member_plans(
    state: &AppState,
    spec: &ReleaseSpec,
) -> ServiceResult<Vec<wavegate_rollout::plan::PlanSpec>> {
    let mut out = Vec::new();
    for m in &spec.members {
        out.push(crate::service::plans::get(state, &m.plan).await?.0);
    }
    Ok(out)
}

/// Stores `spec` (validated; its members' plans must exist); refused while its run is running.
pub async fn put(state: &AppState, spec: ReleaseSpec, who: &Who) -> ServiceResult<bool> {
    spec.validate().map_err(|(field, m)| ServiceError::invalid(field, m))?;
    member_plans(state, &spec).await?;
    let current = match get(state, &spec.name).await {
        Ok(s) => Some(s),
        Err(ServiceError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    if let Some(c) = &current {
        if c.run.as_ref().is_some_and(|r| r.state == "running") {
            return Err(ServiceError::conflict(format!(
                "release {:?} is running; change it once its run has ended",
                spec.name
            )));
        }
        if c.spec == spec {
            return Ok(false);
        }
    }
    let version = current.map_or(0, |c| c.version);
    write(state, &spec, None, version, "release_apply", who, None).await?;
    Ok(true)
}

/// Each member's state in `run`, from the rollouts it started (read by id: a release started
/// again after a failure starts afresh, and nothing else is read), with the rollout's id.
pub async fn member_states(
    state: &AppState,
    run: &Run,
) -> ServiceResult<BTreeMap<String, (MemberState, Option<String>)>> {
    let mut out = BTreeMap::new();
    for (plan, id) in &run.rollouts {
        let Some(row) = state.store.rollout(id).await? else { continue };
        let wave = decode::<Rollout>("rollout", &row.doc).map_or(0, |r| r.wave);
        let st = match row.state.as_str() {
            "completed" => MemberState::Completed,
            "rolled_back" | "aborted" => MemberState::Failed { rollout: row.id.clone() },
            other => MemberState::Live { rollout: row.id.clone(), wave, paused: other == "paused" },
        };
        out.insert(plan.clone(), (st, Some(row.id)));
    }
    Ok(out)
}

async fn states_of(state: &AppState, run: &Run) -> ServiceResult<BTreeMap<String, MemberState>> {
    Ok(member_states(state, run).await?.into_iter().map(|(k, (s, _))| (k, s)).collect())
}

/// Starts release `name` as `who`: its first members now, the rest as the tick finds them due.
pub async fn start(
    state: &AppState,
    name: &str,
    who: &Who,
    reason: Option<String>,
) -> ServiceResult<Run> {
    let stored = get(state, name).await?;
    if stored.run.as_ref().is_some_and(|r| r.state == "running") {
        return Err(ServiceError::conflict(format!("release {name:?} is already running")));
    }
    let run = Run {
        state: "running".into(),
        by: who.name.clone(),
        via: who.via.clone(),
        at: state.clock.now(),
        failure: None,
        failure_handled: false,
        waiting: None,
        rollouts: BTreeMap::new(),
    };
    write(state, &stored.spec, Some(&run), stored.version, "release_start", who, reason).await?;
    advance(state, name, None).await?;
    Ok(get(state, name).await?.run.unwrap_or(run))
}

/// One step of release `name`'s run (the tick's, or right after its start): starts the members
/// that are due, carries out the failure policy, records how the run stands. What was started
/// is recorded whatever else wrote meanwhile (a member is never started twice). Two steps may
/// run at once (the one right after `release start` and the controller's tick, or two
/// replicas'), and no lock is held: a step whose start of a member is refused because another
/// step of this run started it records that rollout as its own, and a failure policy another
/// step carried out already counts as carried out.
pub async fn advance(state: &AppState, name: &str, leader_epoch: Option<i64>) -> ServiceResult<()> {
    let stored = get(state, name).await?;
    let Some(run) = stored.run.clone().filter(|r| r.state == "running") else {
        return Ok(());
    };
    let decided = step(&stored.spec, &states_of(state, &run).await?, run.failure_handled);
    let starter = Who { name: run.by.clone(), via: Some(format!("release {name}")) };
    let mut refused = Vec::new();
    let mut started = BTreeMap::new();
    for plan in &decided.start {
        let req = StartRequest {
            plan: plan.clone(),
            reason: Some(format!("release {name}")),
            release: Some(name.to_owned()),
            ..StartRequest::default()
        };
        match rollouts::start(state, &starter, req).await {
            Ok((row, _)) => {
                started.insert(plan.clone(), row.id);
            }
            Err(e) => match started_by_run(state, name, &run, plan).await? {
                Some(id) => {
                    started.insert(plan.clone(), id);
                }
                None => {
                    let error = crate::http::error::ApiError::from(e).message;
                    tracing::warn!(release = %name, %plan, %error, "a release member could not start");
                    refused.push((plan, format!("{plan}: {error}")));
                }
            },
        }
    }
    // The failure policy counts as carried out only when every command took (a member that
    // could not be paused or rolled back is tried again next tick, and the run says why).
    let mut acted = true;
    let mut not_acted = None;
    for (plan, rollout, what) in &decided.act {
        let cmd = match what {
            Act::Pause => Command::Pause,
            Act::Rollback => Command::Rollback,
        };
        let actor = Actor { reason: decided.failure.clone(), ..Actor::controller(leader_epoch) };
        if let Err(e) = rollouts::command(state, rollout, &cmd, &actor).await
            && !already_done(state, rollout, &cmd).await?
        {
            tracing::warn!(release = %name, %plan, %rollout, error = %e, "could not act on a release member");
            acted = false;
            not_acted = Some(format!("{plan}: the failure policy could not act on {rollout}: {e}"));
        }
    }
    for attempt in 1..=ATTEMPTS {
        let fresh = if attempt == 1 { stored.clone() } else { get(state, name).await? };
        let Some(mut run) = fresh.run.clone().filter(|r| r.state == "running") else {
            return Ok(());
        };
        let before = run.clone();
        run.rollouts.extend(started.clone());
        run.failure = decided.failure.clone();
        run.failure_handled |= decided.failure.is_some() && acted;
        let refusal = refused.iter().rev().find(|(plan, _)| !run.rollouts.contains_key(*plan));
        run.waiting = not_acted.clone().or_else(|| refusal.map(|(_, why)| why.clone()));
        // Members started just now run: the release has not ended.
        run.state = if started.is_empty() { decided.state.to_owned() } else { "running".into() };
        if run == before {
            return Ok(());
        }
        let verb = match run.state.as_str() {
            "completed" => "release_complete",
            "failed" => "release_fail",
            _ => "release_step",
        };
        let who = Who::own("controller");
        let reason = run.failure.clone();
        match write(state, &fresh.spec, Some(&run), fresh.version, verb, &who, reason).await {
            Ok(()) => return Ok(()),
            Err(ServiceError::Store(StoreError::Conflict(_))) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The live rollout of `plan` that run `run` of release `name` started, if any: another step
/// of the run started it while this one was deciding.
async fn started_by_run(
    state: &AppState,
    name: &str,
    run: &Run,
    plan: &str,
) -> ServiceResult<Option<String>> {
    for row in state.store.rollouts(true).await? {
        let ours = row.plan == plan
            // (Stored times keep milliseconds.)
            && row.created_at.timestamp_millis() >= run.at.timestamp_millis()
            && decode::<Rollout>("rollout", &row.doc)
                .is_ok_and(|r| r.release_run.as_deref() == Some(name));
        if ours {
            return Ok(Some(row.id));
        }
    }
    Ok(None)
}

/// Whether rollout `id` already is where `cmd` takes it (another step carried out the failure
/// policy first): paused or ended for a pause, ended for a rollback.
async fn already_done(state: &AppState, id: &str, cmd: &Command) -> ServiceResult<bool> {
    let Some(row) = state.store.rollout(id).await? else { return Ok(false) };
    let ended = matches!(row.state.as_str(), "rolled_back" | "aborted" | "completed");
    Ok(ended || (matches!(cmd, Command::Pause) && row.state == "paused"))
}

/// Advances every running release (called by the controller's tick).
pub async fn run_due(state: &AppState, leader_epoch: Option<i64>) -> ServiceResult<()> {
    for h in state.heads(Kind::Setting, false).await? {
        let Some(name) = h.key.strip_prefix(PREFIX) else { continue };
        if h.spec["run"]["state"] == "running"
            && let Err(e) = advance(state, name, leader_epoch).await
        {
            tracing::error!(release = %name, error = %e, "release could not advance");
        }
    }
    Ok(())
}

/// Why rollout `r`'s promotion waits for its release partners, if it does.
pub async fn pace(state: &AppState, r: &Rollout) -> ServiceResult<Option<String>> {
    let Some(name) = &r.release_run else { return Ok(None) };
    let Ok(stored) = get(state, name).await else { return Ok(None) };
    // Only a member of the running run: a rollout left from an earlier run is not held by a
    // later one.
    let Some(run) = stored.run.as_ref().filter(|run| run.state == "running") else {
        return Ok(None);
    };
    if run.rollouts.get(&r.plan.name) != Some(&r.id)
        || stored.spec.partners(&r.plan.name).is_empty()
    {
        return Ok(None);
    }
    let states = states_of(state, run).await?;
    Ok(wavegate_rollout::release::pace_hold(&stored.spec, &r.plan.name, r.wave, &states))
}
