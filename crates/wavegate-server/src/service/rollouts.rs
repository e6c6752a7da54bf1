//! Rollouts: starting one (the start policy), people's commands, the controller's step of one
//! rollout, smoke checks after an exposure change, and [`persist`], which carries the state
//! machine's actions out against the store in one revision-guarded transaction.
//!
//! **Invariant:** nothing here holds a lock while it waits on the network (checks, Prometheus).
//! A decision is made from facts read at one revision of the rollout row and written only if
//! the row is still at that revision; when someone else wrote first, the decision is made
//! again from the fresh row (a person's command at once; the controller's only when the facts
//! it gathered still apply, else on its next tick).

use rand::Rng;
use serde_json::{Value, json};
use wavegate_core::spec::FlagSpec;
use wavegate_rollout::exposure::with_rollout_rules;
use wavegate_rollout::machine::{self, Action, ArmMoments, Command, Rollout, Signals, State};
use wavegate_rollout::plan::{CheckWhen, SignalSource};
use wavegate_rollout::signature::{ArtifactRefusal, Offered, SignatureError};
use wavegate_rollout::start::{StartFacts, StartRefusal, check_start};
use wavegate_rollout::stats::Moments;
use wavegate_store::{Kind, Put, RolloutRow, RolloutWrite, StoreError, VerdictRow};

use crate::outbound::checks::CheckOutcome;
use crate::service::{ServiceError, ServiceResult, Who, decode};
use crate::state::AppState;

/// How many times a decision is made again when the rollout changed under it.
const ATTEMPTS: usize = 5;

/// Who writes, and under which controller epoch (the controller's writes are refused once
/// another replica leads; people's carry none).
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    /// The principal's name, or `controller`.
    pub name: &'a str,
    /// How they signed in ([`Who::via`]).
    pub via: Option<&'a str>,
    /// The reason recorded with the change.
    pub reason: Option<String>,
    /// The controller's leader epoch, for fencing.
    pub leader_epoch: Option<i64>,
    /// A signed-in person's groups (a plan's approvers may name one).
    pub groups: &'a [String],
}

impl<'a> Actor<'a> {
    /// A person (or the scheduler on their behalf) acting with `reason`.
    pub fn person(who: &'a Who, reason: Option<String>) -> Actor<'a> {
        Actor { name: &who.name, via: who.via.as_deref(), reason, leader_epoch: None, groups: &[] }
    }
    /// The controller, as the leader of `leader_epoch` (None: unfenced, single process).
    pub fn controller(leader_epoch: Option<i64>) -> Actor<'static> {
        Actor { name: "controller", via: None, reason: None, leader_epoch, groups: &[] }
    }
    /// Who this is, for the audit record.
    pub fn who(&self) -> Who {
        Who { name: self.name.to_owned(), via: self.via.map(str::to_owned) }
    }
}

/// A rollout row and its decoded document (404 when it does not exist).
pub async fn get(state: &AppState, id: &str) -> ServiceResult<(RolloutRow, Rollout)> {
    let row = state
        .store
        .rollout(id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("rollout {id:?} not found")))?;
    let r = decode("rollout", &row.doc)?;
    Ok((row, r))
}

/// Whether a later rollout of the same flag in the same environment exists among `rows`: the
/// earlier one's stale-flag notice no longer applies.
pub fn superseded(rows: &[RolloutRow], row: &RolloutRow) -> bool {
    rows.iter().any(|o| {
        o.flag == row.flag && o.environment == row.environment && o.created_at > row.created_at
    })
}

/// What `POST /api/v1/rollouts` asks to start now.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// The plan's name.
    pub plan: String,
    /// Why, for the record.
    pub reason: Option<String>,
    /// What the starter offers about the artifact being released.
    pub artifact: ArtifactOffer,
    /// The coordinated release this start is a member of, when its run starts it.
    pub release: Option<String>,
}

/// What a start offers about its artifact (kept with a scheduled start until it runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactOffer {
    /// SHA-256, checked against the plan's `release.artifact_sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// BLAKE2b-512, the digest its minisign signature covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake2b: Option<String>,
    /// The detached minisign signature (the `.minisig` text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Its SBOM (CycloneDX or SPDX JSON), for the plan's vulnerability checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<serde_json::Value>,
}

impl ArtifactOffer {
    /// Whether nothing is offered.
    pub fn is_empty(&self) -> bool {
        self == &ArtifactOffer::default()
    }

    /// The signature offered, or an input error when only half of it is, or either half is
    /// malformed (whether it verifies is the start's to judge).
    pub fn signature(&self) -> ServiceResult<Option<Offered<'_>>> {
        match (&self.blake2b, &self.signature) {
            (Some(blake2b), Some(signature)) => {
                if !wavegate_rollout::signature::is_blake2b_hex(blake2b) {
                    let e = ArtifactRefusal::BadDigest;
                    return Err(ServiceError::invalid("artifact_blake2b", e.to_string()));
                }
                if let Err(e) = wavegate_rollout::signature::Signature::parse(signature) {
                    return Err(ServiceError::invalid("artifact_signature", e.to_string()));
                }
                Ok(Some(Offered { blake2b, signature }))
            }
            (None, None) => Ok(None),
            _ => Err(ServiceError::invalid(
                "artifact_signature",
                "artifact_blake2b and artifact_signature come together (the signature covers that digest)",
            )),
        }
    }
}

/// Starts plan `req.plan` now, as `requester`: every start check (the plan against the store,
/// the blackout windows, the start policy of `wavegate_rollout::start`, before-start checks),
/// then the first exposure and its smoke checks. Shared by people and scheduled starts.
pub async fn start(
    state: &AppState,
    requester: &Who,
    req: StartRequest,
) -> ServiceResult<(RolloutRow, Rollout)> {
    let (plan, plan_version) = crate::service::plans::get(state, &req.plan).await?;
    let flag = crate::service::plans::check_against_store(state, &plan).await?;
    let flag_head = state
        .head(Kind::Flag, &plan.flag)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("flag {:?} not found", plan.flag)))?;
    let rows = if plan.promotion_path.is_empty() {
        Vec::new()
    } else {
        state.store.rollouts(false).await?
    };
    // The services this release depends on, mid-rollout in the same environment.
    let live = if plan.release.depends_on.is_empty() {
        Vec::new()
    } else {
        state.store.rollouts(true).await?
    };
    let live_dependencies: Vec<(String, String, String)> = live
        .iter()
        .filter(|row| row.environment == plan.environment)
        .filter_map(|row| {
            let service = row.doc["plan"]["release"]["service"].as_str()?;
            plan.release
                .depends_on
                .iter()
                .any(|d| d == service)
                .then(|| (service.to_owned(), row.id.clone(), row.state.clone()))
        })
        .collect();
    let freeze = crate::service::freeze::active(state).await?;
    let mut id_bytes = [0u8; 5];
    rand::rng().fill_bytes(&mut id_bytes);
    let id = format!("ro_{}", hex::encode(id_bytes));
    let now = state.clock.now();
    let (mut r, mut actions) =
        machine::start(id, plan, plan_version, requester.name.clone(), flag_head.version, now)
            .map_err(|e| match e {
                // The plan itself is unusable, not the moment.
                machine::CommandError::NoWaves { .. } => {
                    ServiceError::invalid("waves", e.to_string())
                }
                other => ServiceError::conflict(other.to_string()),
            })?;
    let card =
        crate::service::scorecard::assessment(state, &r.plan, r.plan_version, Some(&r), None)
            .await?;
    let block = card.block_reason();
    // The same release (name and version) completed in an environment.
    let completed_in: Vec<&str> = rows
        .iter()
        .filter(|row| row.state == "completed")
        .filter(|row| {
            decode::<Rollout>("rollout", &row.doc).is_ok_and(|o| {
                o.plan.release.name == r.plan.release.name
                    && o.plan.release.version == r.plan.release.version
            })
        })
        .map(|row| row.environment.as_str())
        .collect();
    let signature = req.artifact.signature()?;
    let facts = StartFacts {
        artifact_sha256: req.artifact.sha256.as_deref(),
        signature,
        trusted_keys: &state.trusted_keys,
        flag_enabled: flag.environments.get(&r.plan.environment).is_some_and(|e| e.enabled),
        completed_in,
        freeze: freeze.as_deref(),
        scorecard_block: block.as_deref(),
        live_dependencies: live_dependencies
            .iter()
            .map(|(s, id, st)| (s.as_str(), id.as_str(), st.as_str()))
            .collect(),
    };
    let artifact = check_start(&r.plan, &facts).map_err(|e| match e {
        StartRefusal::NoDigestDeclared => ServiceError::invalid("artifact_sha256", e.to_string()),
        StartRefusal::Artifact(ArtifactRefusal::BadDigest) => {
            ServiceError::invalid("artifact_blake2b", e.to_string())
        }
        // What was offered cannot be judged at all: an input error, not a state conflict.
        StartRefusal::Artifact(ArtifactRefusal::Signature(
            SignatureError::Legacy | SignatureError::BadSignature(_),
        )) => ServiceError::invalid("artifact_signature", e.to_string()),
        other => ServiceError::conflict(other.to_string()),
    })?;
    if let Some(evidence) = &artifact {
        actions.push(Action::Audit {
            action: "rollout.artifact_verified".into(),
            details: serde_json::json!({"rollout": r.id, "plan": r.plan.name,
                "release": r.plan.release.label(),
                "artifact": evidence}),
        });
    }
    r.artifact = artifact;
    r.release_run = req.release.clone();
    let mut before =
        crate::outbound::checks::run(&state.outbound, &r, CheckWhen::BeforeStart).await;
    before.extend(crate::service::vulns::run(state, &r, req.artifact.sbom.as_ref()).await);
    if let Some(f) = before.iter().find(|o| !o.passed) {
        // A vulnerability check says what blocks in one line; a probe shows what it saw.
        let shown = match f.evidence.get("summary").or(f.evidence.get("error")) {
            Some(Value::String(s)) if f.spec.vulnerabilities.is_some() => s.clone(),
            _ => f.evidence.to_string(),
        };
        return Err(ServiceError::conflict(format!(
            "check {:?} failed before the start: {shown}",
            f.spec.name
        )));
    }
    actions.extend(before.into_iter().map(|o| record(&r, o)));
    let actor = Actor::person(requester, req.reason);
    let row = persist(state, None, &r, actions, &actor).await?;
    after_exposure(state, row, r, actor.leader_epoch).await
}

/// A person's command on rollout `id`: decided by `machine::command` on the current row and
/// written if the row did not change meanwhile (else decided again on the fresh row).
pub async fn command(
    state: &AppState,
    id: &str,
    cmd: &Command,
    actor: &Actor<'_>,
) -> ServiceResult<(RolloutRow, Rollout)> {
    let (row, _) = get(state, id).await?;
    let now = state.clock.now();
    let decided = decide_and_persist(state, row, actor, |r| {
        let who = wavegate_rollout::plan::Person { name: actor.name, groups: actor.groups };
        machine::command_by(r, now, cmd, &who, actor.reason.as_deref()).map(Some).map_err(|e| {
            match e {
                machine::CommandError::NotAllowed(m) => ServiceError::Forbidden(m),
                other => ServiceError::conflict(other.to_string()),
            }
        })
    })
    .await?;
    let d = decided.expect("a command always decides");
    Ok((d.row, d.to))
}

/// What the controller did with one rollout on one tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Stepped {
    /// Nothing changed.
    Unchanged,
    /// The rollout changed meanwhile in a way that voids the gathered facts; decided again
    /// on the next tick.
    Superseded,
    /// The decision was written: the rollout before and after.
    Moved {
        /// Before.
        from: Box<Rollout>,
        /// After.
        to: Box<Rollout>,
    },
}

/// The controller's step of one running rollout: gathers its signals (aggregates, Prometheus)
/// and, for a promotion, runs the before-promotion checks, all without a lock; then writes
/// `machine::step`'s decision at the row's revision. `freeze` is the global freeze's reason.
pub async fn step_one(
    state: &AppState,
    row: RolloutRow,
    freeze: Option<String>,
    leader_epoch: Option<i64>,
) -> ServiceResult<Stepped> {
    let r: Rollout = decode("rollout", &row.doc)?;
    let mut signals = signals(state, &r).await?;
    signals.freeze = freeze;
    if r.plan.scorecard.is_some() {
        signals.scorecard_block = match crate::service::scorecard::assessment(
            state,
            &r.plan,
            r.plan_version,
            Some(&r),
            Some(&signals.readings),
        )
        .await
        {
            Ok(card) => card.block_reason(),
            // Unknown is not go: hold promotions until the scorecard can be read.
            Err(e) => Some(format!("scorecard unavailable: {e}")),
        };
    }
    if r.release_run.is_some() {
        signals.release_hold = match crate::service::releases::pace(state, &r).await {
            Ok(hold) => hold,
            // Unknown holds: a partner may be behind.
            Err(e) => Some(format!("release pace unknown: {e}")),
        };
    }
    if crate::service::people::wanted(&r) {
        signals.people = match crate::service::people::signals(state, &row, &r).await {
            Ok(p) => Some(p),
            Err(e) => {
                // Unknown holds every people gate (and tells no one).
                tracing::warn!(rollout = %r.id, error = %e, "people facts unavailable");
                None
            }
        };
    }
    let now = state.clock.now();
    let wave = r.wave;
    let (next, actions) = machine::step(&r, now, &signals);
    if next == r && actions.is_empty() {
        return Ok(Stepped::Unchanged);
    }
    // Promotion gates: the plan's before-promotion checks, run once for this decision.
    let outcomes = if promoting(&next, &actions) {
        Some(crate::outbound::checks::run(&state.outbound, &r, CheckWhen::BeforePromotion).await)
    } else {
        None
    };
    let actor = Actor::controller(leader_epoch);
    let decided = decide_and_persist(state, row, &actor, |r| {
        Ok(decide_tick(r, now, &signals, wave, outcomes.as_deref()))
    })
    .await?;
    let Some(d) = decided else { return Ok(Stepped::Superseded) };
    // A completed rollout's success targets, as they stand at completion, go on the record.
    if d.to.state == State::Completed
        && d.from.state != State::Completed
        && d.to.plan.success_metrics.iter().any(|m| m.target.is_some())
    {
        report_success(state, &d.row, &d.to).await;
    }
    if d.exposed {
        after_exposure(state, d.row, d.to.clone(), leader_epoch).await?;
    }
    Ok(Stepped::Moved { from: Box::new(d.from), to: Box::new(d.to) })
}

/// Audits `rollout.success`: each success target of `r` judged now, with its evidence (a
/// failure to judge is logged; the completion stands).
async fn report_success(state: &AppState, row: &RolloutRow, r: &Rollout) {
    let judged = match crate::service::people::success(state, row, r).await {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(rollout = %r.id, error = %e, "could not judge the success targets");
            return;
        }
    };
    let details = json!({"rollout": r.id, "targets": judged,
        "all_met": wavegate_rollout::success::all_met(&judged)});
    let change = state.change(&crate::service::Who::own("controller"), None);
    let target = format!("rollout:{}", r.id);
    if let Err(e) = state.store.audit_event("rollout.success", &target, &details, &change).await {
        tracing::warn!(rollout = %r.id, error = %e, "could not record the success targets");
    }
}

/// Whether a decision widens (or completes) the exposure.
fn promoting(next: &Rollout, actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::SetExposure { .. }))
        || next.state == State::Completed
}

/// The controller's decision on `r` from signals gathered for `wave`: None when there is
/// nothing to do, or when the facts no longer apply (the rollout left `wave` or stopped
/// running, or now promotes without its before-promotion checks having run).
fn decide_tick(
    r: &Rollout,
    now: chrono::DateTime<chrono::Utc>,
    signals: &Signals,
    wave: usize,
    outcomes: Option<&[CheckOutcome]>,
) -> Option<(Rollout, Vec<Action>)> {
    if !matches!(r.state, State::Running { .. }) || r.wave != wave {
        return None;
    }
    let (mut next, mut actions) = machine::step(r, now, signals);
    if next == *r && actions.is_empty() {
        return None;
    }
    if promoting(&next, &actions) {
        let outcomes = outcomes?;
        if let Some(f) = outcomes.iter().find(|o| !o.passed) {
            let evidence: Vec<Action> = actions
                .into_iter()
                .filter(|a| matches!(a, Action::RecordVerdict { .. } | Action::RecordSrm { .. }))
                .collect();
            (next, actions) =
                machine::check_failed(r, now, &f.spec.name, f.spec.action, f.evidence.clone());
            actions.extend(evidence);
        }
        actions.extend(outcomes.iter().cloned().map(|o| record(r, o)));
    }
    Some((next, actions))
}

/// A check's result as an action to record.
pub fn record(r: &Rollout, o: CheckOutcome) -> Action {
    Action::RecordCheck { wave: r.wave, name: o.spec.name, passed: o.passed, evidence: o.evidence }
}

/// Runs the smoke checks after an exposure change (no lock held); a failure carries out the
/// check's action. Written only while the rollout still runs in the wave that was checked.
pub async fn after_exposure(
    state: &AppState,
    row: RolloutRow,
    r: Rollout,
    leader_epoch: Option<i64>,
) -> ServiceResult<(RolloutRow, Rollout)> {
    if !matches!(r.state, State::Running { .. }) {
        return Ok((row, r));
    }
    let outcomes =
        crate::outbound::checks::run(&state.outbound, &r, CheckWhen::AfterExposure).await;
    if outcomes.is_empty() {
        return Ok((row, r));
    }
    let wave = r.wave;
    let now = state.clock.now();
    let actor = Actor::controller(leader_epoch);
    let decided = decide_and_persist(state, row.clone(), &actor, |r| {
        if !matches!(r.state, State::Running { .. }) || r.wave != wave {
            return Ok(None);
        }
        let (next, mut actions) = match outcomes.iter().find(|o| !o.passed) {
            Some(f) => {
                machine::check_failed(r, now, &f.spec.name, f.spec.action, f.evidence.clone())
            }
            None => (r.clone(), Vec::new()),
        };
        actions.extend(outcomes.iter().cloned().map(|o| record(r, o)));
        Ok(Some((next, actions)))
    })
    .await?;
    Ok(match decided {
        Some(d) => (d.row, d.to),
        None => (row, r),
    })
}

/// A decision that was written.
struct Decided {
    /// The row as written.
    row: RolloutRow,
    /// The rollout the decision was made on.
    from: Rollout,
    /// The rollout after it.
    to: Rollout,
    /// Whether the decision changed the flag's exposure (smoke checks follow).
    exposed: bool,
}

/// Decides on `row` with `decide` (pure: the rollout in, the next state and actions out, or
/// None for nothing to do) and persists the decision at the row's revision. When the row
/// changed meanwhile, decides again on the fresh row, up to [`ATTEMPTS`] times. Returns what
/// was written, or None when `decide` declined.
async fn decide_and_persist<F>(
    state: &AppState,
    mut row: RolloutRow,
    actor: &Actor<'_>,
    mut decide: F,
) -> ServiceResult<Option<Decided>>
where
    F: FnMut(&Rollout) -> ServiceResult<Option<(Rollout, Vec<Action>)>>,
{
    for attempt in 1..=ATTEMPTS {
        let r: Rollout = decode("rollout", &row.doc)?;
        let Some((next, actions)) = decide(&r)? else { return Ok(None) };
        let exposed = actions.iter().any(|a| matches!(a, Action::SetExposure { .. }));
        match persist(state, Some(&row), &next, actions, actor).await {
            Ok(written) => return Ok(Some(Decided { row: written, from: r, to: next, exposed })),
            Err(ServiceError::Store(StoreError::Conflict(message))) => {
                let fresh = state.store.rollout(&row.id).await?.ok_or_else(|| {
                    ServiceError::not_found(format!("rollout {:?} not found", row.id))
                })?;
                // The same revision: the conflict is not a concurrent write (a deposed
                // leader, a changed flag); deciding again would not help.
                if fresh.rev == row.rev || attempt == ATTEMPTS {
                    return Err(ServiceError::Conflict(message));
                }
                tracing::debug!(rollout = %row.id, attempt, "rollout changed meanwhile; deciding again");
                row = fresh;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// The current wave's signals: the stored aggregates (without the contributions of the tokens
/// an admin excluded), and a reading of every Prometheus guardrail (network I/O: never called
/// with a lock held).
pub async fn signals(state: &AppState, r: &Rollout) -> ServiceResult<Signals> {
    let mut s = Signals::default();
    let excluded = r.excluded_sources();
    for a in state.store.aggregates(&r.id, r.signal_wave() as i64, &excluded).await? {
        if a.arm == wavegate_rollout::people::POPULATION_ARM {
            continue;
        }
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
    // Latency sketches, for quantile guardrails only (one more query).
    if r.plan.guardrails.iter().any(|g| g.quantile.is_some()) {
        for sk in state.store.sketches(&r.id, r.signal_wave() as i64, &excluded).await? {
            if sk.metric != wavegate_rollout::arms::LATENCY_MS {
                continue;
            }
            let sketch = wavegate_rollout::sketch::Sketch::from_counts(sk.counts);
            match sk.arm.as_str() {
                "treatment" => s.latency.treatment.merge(&sketch),
                _ => s.latency.control.merge(&sketch),
            }
        }
    }
    crate::service::incidents::signals(state, r, &mut s).await?;
    for g in r.plan.guardrails.iter().filter(|g| g.source == SignalSource::Prometheus) {
        let reading =
            crate::outbound::prometheus::read(&state.outbound, r, g, state.clock.now()).await;
        s.readings.insert(g.name.clone(), reading);
    }
    Ok(s)
}

/// Carries `actions` out together with the new rollout state, in one store transaction that
/// is refused when the rollout row is no longer at `prev`'s revision (or, for the controller,
/// when its leadership was superseded); then refreshes what evaluation and event routing read.
/// `prev` is the row the decision was made from (None: a new rollout).
pub async fn persist(
    state: &AppState,
    prev: Option<&RolloutRow>,
    r: &Rollout,
    actions: Vec<Action>,
    actor: &Actor<'_>,
) -> ServiceResult<RolloutRow> {
    let now = state.clock.now();
    let target = format!("rollout:{}", r.id);
    let mut flag_put = None;
    // The flag version a new exposure is written as (events are placed by it).
    let mut exposed_version = None;
    let mut verdicts = Vec::new();
    let mut audit = Vec::new();
    let verdict = |wave: usize, kind: &str, name: String, verdict: &str, report| VerdictRow {
        id: 0,
        rollout: r.id.clone(),
        wave: wave as i64,
        kind: kind.into(),
        name,
        verdict: verdict.into(),
        report,
        at: now,
    };
    for a in actions {
        match a {
            Action::SetExposure { wave } => {
                let head = state
                    .head(Kind::Flag, &r.plan.flag)
                    .await?
                    .ok_or_else(|| ServiceError::conflict("the rollout's flag is gone"))?;
                // A new rollout replaces exactly the version it will restore on rollback.
                if prev.is_none() && head.version != r.pre_rollout_version {
                    return Err(ServiceError::conflict(format!(
                        "flag {:?} changed while the rollout was starting (version {} is now {}); start again",
                        r.plan.flag, r.pre_rollout_version, head.version
                    )));
                }
                let spec: FlagSpec = decode("flag", &head.spec)?;
                // The watch's holdback is released only as the rollout completes.
                let released = r.state == State::Completed;
                let next = with_rollout_rules(&spec, &r.plan, &r.id, wave, released);
                // Never write a flag version that evaluation could not compile.
                let segments = crate::service::config::live_segments(state).await?;
                let envs = state.snapshot.load().environments.clone();
                wavegate_core::Flag::validate(
                    &r.plan.flag,
                    &next,
                    &envs,
                    &segments,
                    &wavegate_core::SpecPath::root(&r.plan.flag),
                )
                .map_err(|e| {
                    ServiceError::conflict(format!("wave {} cannot be exposed: {e}", wave + 1))
                })?;
                let exposure =
                    r.plan.waves.get(wave).map(|w| w.exposure.to_string()).ok_or_else(|| {
                        ServiceError::internal(format!("rollout {} has no wave {}", r.id, wave + 1))
                    })?;
                let spec = serde_json::to_value(next).map_err(ServiceError::internal)?;
                // The store keeps the version when nothing changed, and adds one otherwise.
                let unchanged = spec == head.spec && !head.archived;
                exposed_version = Some(if unchanged { head.version } else { head.version + 1 });
                flag_put = Some(Put {
                    kind: Kind::Flag,
                    key: r.plan.flag.clone(),
                    spec,
                    archived: false,
                    expected_version: Some(head.version),
                    action: Some("rollout".into()),
                    details: json!({"rollout": r.id, "wave": wave + 1, "exposure": exposure}),
                });
            }
            Action::RestoreFlag { version } => {
                let v = crate::service::config::version(state, Kind::Flag, &r.plan.flag, version)
                    .await?;
                flag_put = Some(Put {
                    kind: Kind::Flag,
                    key: r.plan.flag.clone(),
                    spec: v.spec,
                    archived: v.archived,
                    expected_version: None,
                    action: Some("revert".into()),
                    details: json!({"rollout": r.id, "reverted_to": version}),
                });
            }
            Action::RecordVerdict { wave, report } => verdicts.push(verdict(
                wave,
                "guardrail",
                report.guardrail.clone(),
                report.verdict.as_str(),
                json!(report),
            )),
            Action::RecordSrm { wave, report } => verdicts.push(verdict(
                wave,
                "srm",
                "srm".into(),
                if report.mismatch { "mismatch" } else { "ok" },
                json!(report),
            )),
            Action::RecordCheck { wave, name, passed, evidence } => verdicts.push(verdict(
                wave,
                "check",
                name,
                if passed { "pass" } else { "fail" },
                evidence,
            )),
            Action::RequestApproval { wave, needed } => {
                tracing::info!(rollout = %r.id, wave = wave + 1, needed, "approval requested");
            }
            Action::Escalate { reason } => {
                tracing::warn!(rollout = %r.id, %reason, "rollout escalated");
            }
            Action::Audit { action, details } => audit.push((action, target.clone(), details)),
        }
    }
    let stamped;
    let r = match exposed_version {
        Some(v) => {
            stamped =
                Rollout { wave_flag_version: Some(v), wave_exposed_at: Some(now), ..r.clone() };
            &stamped
        }
        None => r,
    };
    let row = RolloutRow {
        id: r.id.clone(),
        plan: r.plan.name.clone(),
        flag: r.plan.flag.clone(),
        environment: r.plan.environment.clone(),
        state: r.state.name().into(),
        rev: prev.map_or(0, |p| p.rev),
        doc: serde_json::to_value(r).map_err(ServiceError::internal)?,
        created_at: prev.map_or(now, |p| p.created_at),
        updated_at: now,
    };
    let flag_changed = flag_put.is_some();
    let write = RolloutWrite {
        row: row.clone(),
        flag_put,
        verdicts,
        audit,
        leader_epoch: actor.leader_epoch,
    };
    let held = if flag_changed { Some(state.hold_reloads().await) } else { None };
    let rev = state
        .store
        .write_rollout(&write, &state.change(&actor.who(), actor.reason.clone()))
        .await?;
    if let Some(held) = held {
        state.reload_flags(held, &[row.flag.as_str()]).await?;
    }
    state.reload_live().await?;
    // A decision is on the record: sign a checkpoint of it.
    state.record.decided();
    Ok(RolloutRow { rev, ..row })
}

/// Marks the flags of completed rollouts stale once they have held clean for the plan's settle
/// time (an audited `rollout.stale`, which notification targets hear as `stale`). Returns the
/// rollouts marked.
pub async fn settle_completed(
    state: &AppState,
    leader_epoch: Option<i64>,
) -> ServiceResult<Vec<String>> {
    let rows = state.store.rollouts(false).await?;
    let now = state.clock.now();
    let mut marked = Vec::new();
    // Marked rollouts are skipped before decoding: the list only grows.
    let unmarked = rows
        .iter()
        .filter(|r| r.state == "completed" && r.doc.get("stale_at").is_none_or(|v| v.is_null()));
    for row in unmarked {
        let superseded = superseded(&rows, row);
        let actor = Actor::controller(leader_epoch);
        let decided = decide_and_persist(state, row.clone(), &actor, |r| {
            Ok(machine::settle(r, now, row.updated_at, superseded))
        })
        .await;
        match decided {
            Ok(Some(_)) => marked.push(row.id.clone()),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(rollout = %row.id, error = %e, "could not mark the flag stale")
            }
        }
    }
    Ok(marked)
}
