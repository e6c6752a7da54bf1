//! The rollout state machine: [`start`], [`step`] (one controller tick) and [`command`] (a
//! person's approve / reject / pause / resume / rollback). All pure: time and signals come in,
//! a new [`Rollout`] and [`Action`]s for the adapters go out.
//!
//! **Invariants** (property-tested): the exposure set never exceeds the current wave's; a
//! rollback restores exactly the flag version that preceded the rollout; every transition
//! yields an audit action; inside a blackout window nothing but pause and rollback happens; a
//! paused rollout never promotes; the same salt and split order are kept, so nobody is
//! re-randomized. A wave's `promotion` governs leaving that wave (for the last wave: completing).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::blackout::{Blackout, active};
use crate::plan::{Comparison, PlanSpec, Promotion, SignalSource, StopAction};
use crate::stats::{Moments, SrmReport, Verdict, VerdictReport, judge, srm};

/// Where a running rollout is within its wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The wave's minimum hold has not elapsed.
    Hold,
    /// Waiting for guardrails to pass.
    Analyzing,
    /// Gates passed; waiting for approvals.
    AwaitingApproval,
    /// Gates passed; the declared go/no-go scorecard says no-go.
    NoGo,
    /// The last wave passed; the plan's watch keeps its holdback and judges the guardrails
    /// until the watch ends.
    Watching,
    /// Guardrails passed; a people gate of the wave (adoption, feedback) holds the promotion
    /// (`Rollout::gated` says why). Never rolls back by itself.
    Gated,
}

impl Phase {
    /// Its name in the API (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Hold => "hold",
            Phase::Analyzing => "analyzing",
            Phase::AwaitingApproval => "awaiting_approval",
            Phase::NoGo => "no_go",
            Phase::Watching => "watching",
            Phase::Gated => "gated",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rollout's state (DESIGN.md: running{wave, phase} → paused | completed | rolled_back | aborted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Exposing the current wave.
    Running {
        /// Where within the wave.
        phase: Phase,
    },
    /// Held by a person or a stop condition; exposure unchanged.
    Paused {
        /// Why.
        reason: String,
    },
    /// Every wave passed.
    Completed,
    /// The pre-rollout flag version was restored.
    RolledBack {
        /// Why.
        reason: String,
    },
    /// Stopped without changing the flag back (reserved for abandoned drafts).
    Aborted {
        /// Why.
        reason: String,
    },
}

impl State {
    /// Short name: running, paused, completed, rolled_back, aborted.
    pub fn name(&self) -> &'static str {
        match self {
            State::Running { .. } => "running",
            State::Paused { .. } => "paused",
            State::Completed => "completed",
            State::RolledBack { .. } => "rolled_back",
            State::Aborted { .. } => "aborted",
        }
    }

    /// Whether the rollout has ended.
    pub fn is_terminal(&self) -> bool {
        matches!(self, State::Completed | State::RolledBack { .. } | State::Aborted { .. })
    }
}

/// An approval of the current wave's promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Approval {
    /// Who.
    pub principal: String,
    /// Which wave (0-based).
    pub wave: usize,
    /// When.
    pub at: DateTime<Utc>,
}

/// A token whose contributions (exposures, outcomes, spans, Unleash metrics) an admin left out
/// of a rollout's verdicts: e.g. a leaked server-sdk token posting forged events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Exclusion {
    /// The token's id (`tok_…`).
    pub token: String,
    /// Who left it out.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One run of a plan. This is the stored rollout row (a storage format, hence serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Id (`ro_…`).
    pub id: String,
    /// The plan, frozen at the version the rollout started from.
    pub plan: PlanSpec,
    /// That plan version.
    pub plan_version: i64,
    /// Principal whose token started it.
    pub requester: String,
    /// State.
    pub state: State,
    /// Current wave, 0-based.
    pub wave: usize,
    /// When the current wave began.
    pub wave_started_at: DateTime<Utc>,
    /// When the rollout began.
    pub started_at: DateTime<Utc>,
    /// The flag version before the rollout first changed it; rollback restores it exactly.
    pub pre_rollout_version: i64,
    /// Approvals collected for the current wave.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// Whether an approval request went out for the current wave.
    #[serde(default)]
    pub approval_requested: bool,
    /// The blackout holding promotion at the last tick, if any.
    #[serde(default)]
    pub blackout: Option<String>,
    /// When the rollout was last paused (for display; resume restarts the wave's clock).
    #[serde(default)]
    pub paused_at: Option<DateTime<Utc>>,
    /// When each Prometheus guardrail last returned data (for its `silent` limit).
    #[serde(default)]
    pub last_seen: BTreeMap<String, DateTime<Utc>>,
    /// The bad instant readings each Prometheus guardrail with a `failure_limit` has had since
    /// the wave began (or was resumed), counted toward that limit across ticks and restarts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bad_readings: BTreeMap<String, crate::readings::Tally>,
    /// When it completed at 100%.
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// When its flag was marked stale (held clean for the plan's settle time after completing).
    #[serde(default)]
    pub stale_at: Option<DateTime<Utc>>,
    /// The flag version the current wave's exposure was written as: events evaluated under an
    /// earlier version are stale for this wave (set when the exposure is stored; rollouts
    /// stored before it was kept have none, and count events on receipt).
    #[serde(default)]
    pub wave_flag_version: Option<i64>,
    /// When that version was written (events without a version are placed by their `at`).
    #[serde(default)]
    pub wave_exposed_at: Option<DateTime<Utc>>,
    /// When the plan's watch began (the last wave passed), if it has.
    #[serde(default)]
    pub watch_started_at: Option<DateTime<Utc>>,
    /// Tokens whose contributions are left out of the verdicts (every wave's), in the order
    /// they were excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_tokens: Vec<Exclusion>,
    /// Why a people gate holds the current wave (phase `gated`), if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gated: Option<String>,
    /// The coordinated release (document name) this rollout is a member of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_run: Option<String>,
    /// What was verified of the artifact's signature when the rollout started, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<crate::signature::ArtifactEvidence>,
    /// The lagging cohorts (`attribute=value`) whose stakeholders were told; a cohort that
    /// recovers is forgotten, so a relapse is told again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub lagging_told: BTreeSet<String>,
    /// Whether wave 1's cohort mix was compared with the flag's users (once, when its hold
    /// ended).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pilot_checked: bool,
    /// The plan's `after_release` items ticked off, by item: who and when.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub after_release_done: BTreeMap<String, Approval>,
}

impl Rollout {
    /// The wave index its current signals are counted under: the wave's own, except during
    /// the watch, which keeps its own (the one after the last) so that a late regression is
    /// judged on the watch's traffic alone, not diluted by the last wave's.
    pub fn signal_wave(&self) -> usize {
        self.wave + usize::from(self.watch_started_at.is_some())
    }

    /// The ids of the tokens whose contributions its verdicts leave out.
    pub fn excluded_sources(&self) -> Vec<String> {
        self.excluded_tokens.iter().map(|e| e.token.clone()).collect()
    }
}

/// Default settle time before a completed rollout's flag is marked stale.
pub const DEFAULT_SETTLE_SECS: i64 = 7 * 86_400;

/// A completed rollout whose flag has held at 100% for the plan's settle time, with no later
/// rollout of the flag (`superseded`), is marked stale once: its flag can be removed from code.
/// `completed_fallback` is used for rollouts stored before `completed_at` existed.
pub fn settle(
    r: &Rollout,
    now: DateTime<Utc>,
    completed_fallback: DateTime<Utc>,
    superseded: bool,
) -> Option<(Rollout, Vec<Action>)> {
    if r.state != State::Completed || r.stale_at.is_some() || superseded {
        return None;
    }
    let settle =
        r.plan.settle.map_or(chrono::Duration::seconds(DEFAULT_SETTLE_SECS), |s| s.to_chrono());
    let since = r.completed_at.unwrap_or(completed_fallback);
    if now < since + settle {
        return None;
    }
    let mut next = r.clone();
    next.stale_at = Some(now);
    let actions = vec![Action::Audit {
        action: "rollout.stale".into(),
        details: json!({"rollout": r.id, "flag": r.plan.flag, "environment": r.plan.environment,
            "completed_at": since, "settle": r.plan.settle.map(|s| s.to_string()),
            "message": format!("flag {:?} has served everyone in {} since {}; remove it from code", r.plan.flag, r.plan.environment, since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))}),
    }];
    Some((next, actions))
}

/// Arm statistics of one metric in the current wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmMoments {
    /// The new variant's arm.
    pub treatment: Moments,
    /// The control variant's arm.
    pub control: Moments,
}

/// What the controller knows at a tick about the current wave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Metric (`error`, `latency_ms`, named metrics) → per-arm statistics.
    pub metrics: BTreeMap<String, ArmMoments>,
    /// Exposures per arm (for the sample-ratio check).
    pub exposures: ArmMoments,
    /// When the last event for this rollout arrived.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Prometheus readings this tick, by guardrail name.
    #[serde(default)]
    pub readings: BTreeMap<String, crate::stats::Reading>,
    /// Why the plan's declared scorecard says no-go, if it does (it then holds promotions).
    #[serde(default)]
    pub scorecard_block: Option<String>,
    /// The global freeze ("stop the line"), if on: held like a blackout window (stop
    /// conditions, pause and rollback still act; nothing is promoted).
    #[serde(default)]
    pub freeze: Option<String>,
    /// The arms' latency sketches (what quantile guardrails judge).
    #[serde(skip)]
    pub latency: ArmSketches,
    /// What each incident guardrail reads, by guardrail name.
    #[serde(default)]
    pub incidents: BTreeMap<String, crate::incidents::IncidentSignal>,
    /// Adoption per wave, the release's feedback and lagging cohorts, for people gates and
    /// stakeholder notices (None: unknown, which holds every people gate).
    #[serde(default)]
    pub people: Option<crate::people::PeopleSignals>,
    /// Why the coordinated release this rollout belongs to holds its promotion (a member it
    /// advances with is behind), if it does: held in phase `gated`.
    #[serde(default)]
    pub release_hold: Option<String>,
}

/// Per-arm latency sketches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArmSketches {
    /// Treatment.
    pub treatment: crate::sketch::Sketch,
    /// Control.
    pub control: crate::sketch::Sketch,
}

/// What the adapters must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Rewrite the rollout's rules in its flag for this wave (a new flag version).
    SetExposure {
        /// Wave index.
        wave: usize,
    },
    /// Restore the flag to exactly this version (rollback).
    RestoreFlag {
        /// The pre-rollout version.
        version: i64,
    },
    /// Store a guardrail verdict with its inputs.
    RecordVerdict {
        /// Wave index.
        wave: usize,
        /// The verdict and its numbers.
        report: VerdictReport,
    },
    /// Store a sample-ratio check.
    RecordSrm {
        /// Wave index.
        wave: usize,
        /// The check.
        report: SrmReport,
    },
    /// Store a check's result with the response it got.
    RecordCheck {
        /// Wave index.
        wave: usize,
        /// Check name.
        name: String,
        /// Whether it passed.
        passed: bool,
        /// Status, body, error, attempts.
        evidence: Value,
    },
    /// Ask the plan's approvers to approve this wave.
    RequestApproval {
        /// Wave index.
        wave: usize,
        /// Distinct approvals needed.
        needed: u32,
    },
    /// Tell people: a stop condition needs a human (hook for notifications).
    Escalate {
        /// Why.
        reason: String,
    },
    /// Append to the audit log.
    Audit {
        /// `rollout.start`, `rollout.promote`, `rollout.rollback`…
        action: String,
        /// Evidence.
        details: Value,
    },
}

/// Why a start or a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Not possible in the rollout's state.
    #[error("{0}")]
    InvalidState(String),
    /// This principal may not do that.
    #[error("{0}")]
    NotAllowed(String),
    /// The plan has no waves, so there is nothing to start at (the linter refuses such a plan
    /// too, but a rollout must not rely on every caller having linted).
    #[error("plan {plan:?} has no waves; a rollout needs at least one")]
    NoWaves {
        /// The plan's name.
        plan: String,
    },
}

fn blackouts(plan: &PlanSpec) -> Vec<Blackout> {
    // Plans are validated on apply, so a window that fails to compile here is skipped.
    plan.blackouts.iter().filter_map(|b| Blackout::compile(b).ok()).collect()
}

/// Starts a rollout of `plan` at wave 1.
pub fn start(
    id: String,
    plan: PlanSpec,
    plan_version: i64,
    requester: String,
    pre_rollout_version: i64,
    now: DateTime<Utc>,
) -> Result<(Rollout, Vec<Action>), CommandError> {
    let Some(first) = plan.waves.first() else {
        return Err(CommandError::NoWaves { plan: plan.name });
    };
    let exposure = first.exposure.to_string();
    if let Some(b) = active(&blackouts(&plan), now) {
        return Err(CommandError::InvalidState(format!(
            "inside blackout window {:?}; start later",
            b.name()
        )));
    }
    let r = Rollout {
        id,
        plan,
        plan_version,
        requester,
        state: State::Running { phase: Phase::Hold },
        wave: 0,
        wave_started_at: now,
        started_at: now,
        pre_rollout_version,
        approvals: Vec::new(),
        approval_requested: false,
        blackout: None,
        paused_at: None,
        last_seen: BTreeMap::new(),
        bad_readings: BTreeMap::new(),
        completed_at: None,
        stale_at: None,
        wave_flag_version: None,
        wave_exposed_at: None,
        watch_started_at: None,
        excluded_tokens: Vec::new(),
        gated: None,
        release_run: None,
        artifact: None,
        lagging_told: BTreeSet::new(),
        pilot_checked: false,
        after_release_done: BTreeMap::new(),
    };
    let actions = vec![
        Action::SetExposure { wave: 0 },
        Action::Audit {
            action: "rollout.start".into(),
            details: json!({"rollout": r.id, "plan": r.plan.name, "plan_version": plan_version, "wave": 1,
                "exposure": exposure, "pre_rollout_version": pre_rollout_version}),
        },
    ];
    Ok((r, actions))
}

/// One controller tick.
pub fn step(r: &Rollout, now: DateTime<Utc>, signals: &Signals) -> (Rollout, Vec<Action>) {
    let mut next = r.clone();
    let mut actions = Vec::new();
    let State::Running { phase } = r.state else {
        return (next, actions);
    };
    let plan = &r.plan;
    // A cohort that started lagging is told to its stakeholders, whatever else this tick does.
    if let Some(people) = &signals.people {
        next.lagging_told = crate::people::lagging_notices(r, &people.lagging, &mut actions);
    }
    // The stored row, not this module, says which wave it is at: one that names a wave its
    // plan lacks (a damaged or hand-edited row) stops for a person instead of panicking.
    let Some(wave) = plan.waves.get(r.wave) else {
        let reason =
            format!("the rollout is at wave {} but its plan has {}", r.wave + 1, plan.waves.len());
        let evidence = json!({"rollout": r.id, "wave": r.wave + 1, "waves": plan.waves.len()});
        stop(&mut next, &mut actions, StopAction::Escalate, reason, evidence, now);
        return (next, actions);
    };
    let last = r.wave + 1 == plan.waves.len();
    // What the wave serves now: its exposure, less the watch's holdback until it is released.
    let exposure = plan.exposure_at(r.wave, false);
    let full = exposure.basis_points() == 10_000 && wave.segments.is_empty();
    // With a watch, the last wave's comparisons are judged during the watch: entering it waits
    // for the hold and approvals, not for a verdict on a control arm the size of the holdback.
    let watched = last && plan.watch.is_some();

    // Guardrails: judge, record, and act on the most severe failure.
    let mut reports = Vec::new();
    for g in &plan.guardrails {
        let report = if g.source == SignalSource::Prometheus {
            let reading = signals.readings.get(&g.name);
            let (report, tally) =
                crate::readings::judge(g, reading, r.bad_readings.get(&g.name), r.wave_started_at);
            match tally {
                Some(t) => next.bad_readings.insert(g.name.clone(), t),
                None => next.bad_readings.remove(&g.name),
            };
            if reading.is_some_and(|x| x.error.is_none() && x.treatment.is_some()) {
                next.last_seen.insert(g.name.clone(), now);
            }
            if reading.is_some() {
                actions.push(Action::RecordVerdict { wave: r.wave, report: report.clone() });
            }
            report
        } else if g.source == SignalSource::Incidents {
            let s = signals.incidents.get(&g.name).copied().unwrap_or_default();
            let report = crate::incidents::judge_incidents(g, &s);
            if s.since > 0.0 || s.arms.treatment.sum + s.arms.control.sum > 0.0 {
                actions.push(Action::RecordVerdict { wave: r.wave, report: report.clone() });
            }
            report
        } else if g.quantile.is_some() {
            let (t, c) = (&signals.latency.treatment, &signals.latency.control);
            let report = crate::stats::judge_quantile(g, t, c);
            if t.count() > 0 || c.count() > 0 {
                actions.push(Action::RecordVerdict { wave: r.wave, report: report.clone() });
            }
            report
        } else {
            let arms = signals.metrics.get(&g.metric).copied().unwrap_or_default();
            let report = judge(g, &arms.treatment, &arms.control);
            if arms.treatment.n > 0.0 || arms.control.n > 0.0 {
                actions.push(Action::RecordVerdict { wave: r.wave, report: report.clone() });
            }
            report
        };
        reports.push((g, report));
    }
    let severity = |a: StopAction| match a {
        StopAction::Rollback => 3,
        StopAction::Escalate => 2,
        StopAction::Pause => 1,
    };
    let failed = reports
        .iter()
        .filter(|(_, rep)| rep.verdict == Verdict::Fail)
        .max_by_key(|(g, _)| severity(g.action));
    if let Some((g, rep)) = failed {
        let evidence =
            json!({"rollout": r.id, "wave": r.wave + 1, "guardrail": g.name, "verdict": rep});
        let reason = format!("guardrail {:?} failed: {}", g.name, rep.explanation);
        stop(&mut next, &mut actions, g.action, reason, evidence, now);
        return (next, actions);
    }

    // Sample-ratio check on the planned split (applies when the wave is one split of everyone).
    let ringless = plan.waves[..=r.wave].iter().all(|w| w.segments.is_empty());
    if ringless && !full && signals.exposures.treatment.n + signals.exposures.control.n > 0.0 {
        let report = srm(
            signals.exposures.treatment.n,
            signals.exposures.control.n,
            f64::from(exposure.basis_points()) / 10_000.0,
            plan.srm_alpha(),
        );
        actions.push(Action::RecordSrm { wave: r.wave, report: report.clone() });
        if report.mismatch {
            let reason = format!(
                "sample-ratio mismatch: {} treatment vs {} control for a planned {} share",
                report.treatment, report.control, exposure
            );
            stop(
                &mut next,
                &mut actions,
                StopAction::Escalate,
                reason,
                json!({"rollout": r.id, "wave": r.wave + 1, "srm": report}),
                now,
            );
            return (next, actions);
        }
    }

    // A source silent for longer than a guardrail allows escalates.
    let events_since = signals.last_event_at.unwrap_or(r.wave_started_at).max(r.wave_started_at);
    let since_for = |g: &crate::plan::GuardrailSpec| match g.source {
        SignalSource::Events => events_since,
        // Incidents are rare by nature: their silence is good news.
        SignalSource::Incidents => now,
        SignalSource::Prometheus => {
            next.last_seen.get(&g.name).copied().unwrap_or(r.wave_started_at).max(r.wave_started_at)
        }
    };
    if let Some(g) = plan
        .guardrails
        .iter()
        .find(|g| g.silent.is_some_and(|s| now - since_for(g) > s.to_chrono()))
    {
        let since = since_for(g);
        let reason = format!("no signal for guardrail {:?} since {}", g.name, since.to_rfc3339());
        stop(
            &mut next,
            &mut actions,
            StopAction::Escalate,
            reason,
            json!({"rollout": r.id, "wave": r.wave + 1, "guardrail": g.name}),
            now,
        );
        return (next, actions);
    }

    let elapsed = now - r.wave_started_at;
    let max_duration = wave.max_duration.filter(|_| r.watch_started_at.is_none());
    if let Some(max) = max_duration.filter(|m| elapsed > m.to_chrono()) {
        let reason = format!("wave {} undecided after its maximum duration {max}", r.wave + 1);
        stop(
            &mut next,
            &mut actions,
            StopAction::Escalate,
            reason,
            json!({"rollout": r.id, "wave": r.wave + 1}),
            now,
        );
        return (next, actions);
    }

    // Blackout: hold everything else.
    let windows = blackouts(plan);
    let blackout = signals
        .freeze
        .as_ref()
        .map(|why| format!("freeze: {why}"))
        .or_else(|| active(&windows, now).map(|b| b.name().to_owned()));
    if blackout != r.blackout {
        next.blackout = blackout.clone();
        if let Some(name) = &blackout {
            actions.push(Action::Audit {
                action: "rollout.hold".into(),
                details: json!({"rollout": r.id, "wave": r.wave + 1, "blackout": name}),
            });
        }
    }
    if blackout.is_some() {
        return (next, actions);
    }

    // The watch: guardrails were judged above (a failure stops it like any other); at its end
    // the holdback is released and the rollout completes.
    if let (Some(w), Some(since)) = (&plan.watch, r.watch_started_at) {
        if now - since < w.period.to_chrono() {
            next.state = State::Running { phase: Phase::Watching };
            return (next, actions);
        }
        next.state = State::Completed;
        next.completed_at = Some(now);
        actions.push(Action::SetExposure { wave: r.wave });
        actions.push(Action::Audit {
            action: "rollout.release".into(),
            details: json!({"rollout": r.id, "holdback": w.holdback.to_string(),
                "watched": w.period.to_string(), "exposure": wave.exposure.to_string()}),
        });
        let verdicts: Vec<Value> = reports.iter().map(|(_, rep)| json!(rep)).collect();
        actions.push(Action::Audit {
            action: "rollout.complete".into(),
            details: json!({"rollout": r.id, "waves": plan.waves.len(), "verdicts": verdicts}),
        });
        return (next, actions);
    }

    if elapsed < wave.hold.to_chrono() {
        next.state = State::Running { phase: Phase::Hold };
        return (next, actions);
    }
    // Representative pilots: wave 1's users against the flag's, once its hold has ended.
    if r.wave == 0
        && !r.pilot_checked
        && let Some(check) = signals
            .people
            .as_ref()
            .and_then(|p| p.pilot.as_ref())
            .and_then(|m| crate::people::pilot_check(r, m))
    {
        next.pilot_checked = true;
        actions.push(check);
    }
    // Gates: every applicable guardrail passes. At 100% there is no control arm, so only
    // bound guardrails apply.
    let pending: Vec<&str> = reports
        .iter()
        .filter(|(g, _)| !((full || watched) && g.comparison != Comparison::Bound))
        .filter(|(_, rep)| rep.verdict != Verdict::Pass)
        .map(|(g, _)| g.name.as_str())
        .collect();
    if !pending.is_empty() {
        next.state = State::Running { phase: Phase::Analyzing };
        return (next, actions);
    }
    // A coordinated release's pace: a member it advances with is behind.
    if !last && let Some(why) = &signals.release_hold {
        if phase != Phase::Gated || r.gated.as_deref() != Some(why) {
            next.gated = Some(why.clone());
            actions.push(Action::Audit {
                action: "rollout.gated".into(),
                details: json!({"rollout": r.id, "wave": r.wave + 1, "reason": why}),
            });
        }
        next.state = State::Running { phase: Phase::Gated };
        return (next, actions);
    }
    if wave.gates.is_none() && r.gated.is_some() {
        next.gated = None;
        actions.push(Action::Audit {
            action: "rollout.gate_cleared".into(),
            details: json!({"rollout": r.id, "wave": r.wave + 1}),
        });
    }
    // People gates: adoption of the wave's users and the release's feedback.
    if let Some(gates) = &wave.gates {
        let gate_reports = crate::people::assess(gates, r.wave, signals.people.as_ref());
        let held: Vec<_> = gate_reports.iter().filter(|g| !g.pass).collect();
        if !held.is_empty() {
            let reason = held.iter().map(|g| g.explanation.as_str()).collect::<Vec<_>>().join("; ");
            // The reason is rewritten only when which gates hold changes (not at every tick's
            // new numbers); the audit entry carries the numbers when the wave is first held.
            let names = |s: &str| held.iter().all(|g| s.contains(&format!("{}:", g.gate)));
            if phase != Phase::Gated || !r.gated.as_deref().is_some_and(names) {
                next.gated = Some(reason.clone());
            }
            if phase != Phase::Gated {
                actions.push(Action::Audit {
                    action: "rollout.gated".into(),
                    details: json!({"rollout": r.id, "wave": r.wave + 1, "reason": reason,
                        "gates": gate_reports}),
                });
            }
            next.state = State::Running { phase: Phase::Gated };
            return (next, actions);
        }
        if r.gated.is_some() {
            next.gated = None;
            actions.push(Action::Audit {
                action: "rollout.gate_cleared".into(),
                details: json!({"rollout": r.id, "wave": r.wave + 1, "gates": gate_reports}),
            });
        }
    }
    // A plan that needs approvals but gates no wave explicitly gates its first promotion.
    let implicit_gate = r.wave == 0
        && plan.approvals_needed() > 0
        && !plan.waves.iter().any(|w| w.promotion == Promotion::Approval);
    if wave.promotion == Promotion::Approval || implicit_gate {
        let needed = plan.approvals_needed();
        let have = approvals_for(r, r.wave);
        if have < needed as usize {
            next.state = State::Running { phase: Phase::AwaitingApproval };
            if !r.approval_requested || phase != Phase::AwaitingApproval {
                next.approval_requested = true;
                actions.push(Action::RequestApproval { wave: r.wave, needed });
                actions.push(Action::Audit {
                    action: "rollout.approval_requested".into(),
                    details: json!({"rollout": r.id, "wave": r.wave + 1, "needed": needed, "have": have}),
                });
            }
            return (next, actions);
        }
    }
    if !last && let Some(why) = &signals.scorecard_block {
        if phase != Phase::NoGo {
            actions.push(Action::Audit {
                action: "rollout.hold".into(),
                details: json!({"rollout": r.id, "wave": r.wave + 1, "scorecard": why}),
            });
        }
        next.state = State::Running { phase: Phase::NoGo };
        return (next, actions);
    }
    let verdicts: Vec<Value> = reports.iter().map(|(_, rep)| json!(rep)).collect();
    if let Some(w) = plan.watch.as_ref().filter(|_| last) {
        next.state = State::Running { phase: Phase::Watching };
        next.watch_started_at = Some(now);
        actions.push(Action::Audit {
            action: "rollout.watch".into(),
            details: json!({"rollout": r.id, "wave": r.wave + 1, "for": w.period.to_string(),
                "holdback": w.holdback.to_string(), "verdicts": verdicts}),
        });
    } else if last {
        next.state = State::Completed;
        next.completed_at = Some(now);
        actions.push(Action::Audit {
            action: "rollout.complete".into(),
            details: json!({"rollout": r.id, "waves": plan.waves.len(), "verdicts": verdicts}),
        });
    } else {
        next.wave = r.wave + 1;
        next.wave_started_at = now;
        next.bad_readings.clear();
        next.approvals.clear();
        next.approval_requested = false;
        next.state = State::Running { phase: Phase::Hold };
        actions.push(Action::SetExposure { wave: next.wave });
        actions.push(Action::Audit {
            action: "rollout.promote".into(),
            details: json!({"rollout": r.id, "from_wave": r.wave + 1, "to_wave": next.wave + 1,
                "exposure": plan.waves[next.wave].exposure.to_string(), "verdicts": verdicts,
                "approvals": r.approvals.iter().map(|a| &a.principal).collect::<Vec<_>>()}),
        });
    }
    (next, actions)
}

fn approvals_for(r: &Rollout, wave: usize) -> usize {
    r.approvals.iter().filter(|a| a.wave == wave && a.principal != r.requester).count()
}

fn stop(
    next: &mut Rollout,
    actions: &mut Vec<Action>,
    action: StopAction,
    reason: String,
    evidence: Value,
    now: DateTime<Utc>,
) {
    if action != StopAction::Rollback {
        next.paused_at = Some(now);
    }
    match action {
        StopAction::Rollback => {
            next.state = State::RolledBack { reason: reason.clone() };
            actions.push(Action::RestoreFlag { version: next.pre_rollout_version });
            actions.push(Action::Audit {
                action: "rollout.rollback".into(),
                details: with_reason(evidence, &reason, "automatic"),
            });
        }
        StopAction::Pause => {
            next.state = State::Paused { reason: reason.clone() };
            actions.push(Action::Audit {
                action: "rollout.pause".into(),
                details: with_reason(evidence, &reason, "automatic"),
            });
        }
        StopAction::Escalate => {
            next.state = State::Paused { reason: reason.clone() };
            actions.push(Action::Escalate { reason: reason.clone() });
            actions.push(Action::Audit {
                action: "rollout.escalate".into(),
                details: with_reason(evidence, &reason, "automatic"),
            });
        }
    }
}

fn with_reason(mut evidence: Value, reason: &str, by: &str) -> Value {
    if let Some(o) = evidence.as_object_mut() {
        o.insert("reason".into(), json!(reason));
        o.insert("by".into(), json!(by));
    }
    evidence
}

/// A check failed: carry out its action (pause, rollback or escalate) with the evidence.
pub fn check_failed(
    r: &Rollout,
    now: DateTime<Utc>,
    check: &str,
    action: crate::plan::StopAction,
    evidence: Value,
) -> (Rollout, Vec<Action>) {
    let mut next = r.clone();
    let mut actions = Vec::new();
    if r.state.is_terminal() {
        return (next, actions);
    }
    let reason = format!("check {check:?} failed");
    let details =
        json!({"rollout": r.id, "wave": r.wave + 1, "check": check, "evidence": evidence});
    stop(&mut next, &mut actions, action, reason, details, now);
    (next, actions)
}

/// A person's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Approve the current wave's promotion.
    Approve,
    /// Call no-go: roll back.
    Reject,
    /// Hold where it is.
    Pause,
    /// Continue after a pause.
    Resume,
    /// Restore the pre-rollout flag version now.
    Rollback,
    /// Leave a token's contributions out of the verdicts from now on (a reason is needed).
    Exclude {
        /// The token's id.
        token: String,
    },
    /// Count a token's contributions again.
    Include {
        /// The token's id.
        token: String,
    },
    /// Tick off one of the plan's `after_release` items (running or completed rollouts).
    CloseItem {
        /// The item, as the plan words it.
        item: String,
    },
}

/// Applies a person's command (a person known by name only: [`command_by`]).
pub fn command(
    r: &Rollout,
    now: DateTime<Utc>,
    cmd: &Command,
    principal: &str,
    reason: Option<&str>,
) -> Result<(Rollout, Vec<Action>), CommandError> {
    command_by(r, now, cmd, &crate::plan::Person::named(principal), reason)
}

/// Applies `who`'s command: an approver or no-go list may name them or one of their groups.
pub fn command_by(
    r: &Rollout,
    now: DateTime<Utc>,
    cmd: &Command,
    who: &crate::plan::Person<'_>,
    reason: Option<&str>,
) -> Result<(Rollout, Vec<Action>), CommandError> {
    let principal = who.name;
    let mut next = r.clone();
    let mut actions = Vec::new();
    let why = reason.unwrap_or("").to_owned();
    let base = json!({"rollout": r.id, "wave": r.wave + 1, "by": principal, "reason": why});
    if let Command::CloseItem { item } = cmd {
        return close_item(r, now, item, principal, base);
    }
    if r.state.is_terminal() {
        return Err(CommandError::InvalidState(format!(
            "rollout {} has ended ({})",
            r.id,
            r.state.name()
        )));
    }
    let owners = &r.plan.owners;
    match cmd {
        Command::Approve => {
            if !matches!(r.state, State::Running { .. }) {
                return Err(CommandError::InvalidState(format!(
                    "rollout {} is {}; resume it first",
                    r.id,
                    r.state.name()
                )));
            }
            if principal == r.requester {
                return Err(CommandError::NotAllowed(format!(
                    "{principal} requested this rollout and may not approve it"
                )));
            }
            if !owners.approvers.is_empty() && !who.listed_in(&owners.approvers) {
                return Err(CommandError::NotAllowed(format!(
                    "{principal} is not an approver of this plan (approvers: {})",
                    owners.approvers.join(", ")
                )));
            }
            if r.approvals.iter().any(|a| a.wave == r.wave && a.principal == principal) {
                return Err(CommandError::InvalidState(format!(
                    "{principal} already approved wave {}",
                    r.wave + 1
                )));
            }
            next.approvals.push(Approval {
                principal: principal.to_owned(),
                wave: r.wave,
                at: now,
            });
            actions.push(Action::Audit { action: "rollout.approve".into(), details: base });
        }
        Command::Reject => {
            let allowed = who.listed_in(&owners.approvers)
                || who.listed_in(&owners.no_go)
                || (owners.approvers.is_empty() && owners.no_go.is_empty());
            if !allowed {
                return Err(CommandError::NotAllowed(format!(
                    "{principal} may not call no-go on this plan"
                )));
            }
            let reason = format!("no-go from {principal}: {why}");
            next.state = State::RolledBack { reason: reason.clone() };
            actions.push(Action::RestoreFlag { version: r.pre_rollout_version });
            actions.push(Action::Audit {
                action: "rollout.reject".into(),
                details: with_reason(base, &reason, principal),
            });
        }
        Command::Pause => {
            if !matches!(r.state, State::Running { .. }) {
                return Err(CommandError::InvalidState(format!(
                    "rollout {} is {}, not running",
                    r.id,
                    r.state.name()
                )));
            }
            next.state = State::Paused { reason: format!("paused by {principal}: {why}") };
            next.paused_at = Some(now);
            actions.push(Action::Audit { action: "rollout.pause".into(), details: base });
        }
        Command::Resume => {
            if !matches!(r.state, State::Paused { .. }) {
                return Err(CommandError::InvalidState(format!(
                    "rollout {} is {}, not paused",
                    r.id,
                    r.state.name()
                )));
            }
            next.state = State::Running { phase: Phase::Hold };
            next.approval_requested = false;
            // The wave's clock restarts: its hold and maximum duration count from the resume,
            // so a rollout escalated for running out of time can be given more (data so far
            // still counts).
            next.wave_started_at = now;
            // Bad readings count afresh from the resume, as the range of a range guardrail does.
            next.bad_readings.clear();
            next.paused_at = None;
            actions.push(Action::Audit { action: "rollout.resume".into(), details: base });
        }
        Command::Rollback => {
            let reason = format!("rolled back by {principal}: {why}");
            next.state = State::RolledBack { reason: reason.clone() };
            actions.push(Action::RestoreFlag { version: r.pre_rollout_version });
            actions.push(Action::Audit {
                action: "rollout.rollback".into(),
                details: with_reason(base, &reason, principal),
            });
        }
        Command::Exclude { token } => {
            if r.excluded_tokens.iter().any(|e| &e.token == token) {
                return Err(CommandError::InvalidState(format!(
                    "token {token} is already excluded from rollout {}",
                    r.id
                )));
            }
            next.excluded_tokens.push(Exclusion {
                token: token.clone(),
                by: principal.to_owned(),
                reason: why,
                at: now,
            });
            let mut details = base;
            details["token"] = json!(token);
            actions.push(Action::Audit { action: "rollout.exclude_token".into(), details });
        }
        Command::Include { token } => {
            if !r.excluded_tokens.iter().any(|e| &e.token == token) {
                return Err(CommandError::InvalidState(format!(
                    "token {token} is not excluded from rollout {}",
                    r.id
                )));
            }
            next.excluded_tokens.retain(|e| &e.token != token);
            let mut details = base;
            details["token"] = json!(token);
            actions.push(Action::Audit { action: "rollout.include_token".into(), details });
        }
        Command::CloseItem { .. } => unreachable!("answered above"),
    }
    Ok((next, actions))
}

/// Ticks off after-release item `item`: the rollout is closed once it completed and every item
/// is done (`rollout.closed` is audited then).
fn close_item(
    r: &Rollout,
    now: DateTime<Utc>,
    item: &str,
    principal: &str,
    base: Value,
) -> Result<(Rollout, Vec<Action>), CommandError> {
    if matches!(r.state, State::RolledBack { .. } | State::Aborted { .. }) {
        return Err(CommandError::InvalidState(format!(
            "rollout {} was {}: its after-release items no longer apply",
            r.id,
            r.state.name()
        )));
    }
    if !r.plan.after_release.iter().any(|i| i == item) {
        return Err(CommandError::InvalidState(format!(
            "{item:?} is not one of plan {:?}'s after_release items ({})",
            r.plan.name,
            r.plan.after_release.join("; ")
        )));
    }
    if r.after_release_done.contains_key(item) {
        return Err(CommandError::InvalidState(format!("{item:?} is already done")));
    }
    let mut next = r.clone();
    next.after_release_done.insert(
        item.to_owned(),
        Approval { principal: principal.to_owned(), wave: r.wave, at: now },
    );
    let mut details = base;
    details["item"] = json!(item);
    let mut actions = vec![Action::Audit { action: "rollout.after_release".into(), details }];
    let all = r.plan.after_release.iter().all(|i| next.after_release_done.contains_key(i));
    if all && r.state == State::Completed {
        actions.push(Action::Audit {
            action: "rollout.closed".into(),
            details: json!({"rollout": r.id, "items": r.plan.after_release}),
        });
    }
    Ok((next, actions))
}
