//! Drills: a plan rehearsed in simulated time against synthetic traffic with injected faults,
//! through the real state machine and verdict code. Each tick draws the tick's sufficient
//! statistics per arm (not single events), so a simulated day runs in well under a second.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::Span;
use crate::machine::{Action, ArmMoments, Command, Phase, Signals, State, command, start, step};
use crate::plan::{PlanSpec, SignalSource};
use crate::sim::Rng;
use crate::stats::{Moments, Reading};

/// A drill scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Simulated start (default 2026-01-05T09:00:00Z, a Monday morning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    /// Longest simulated time (default 7d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// Controller tick (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick: Option<Span>,
    /// Requests per second reaching the flag.
    pub rate: f64,
    /// Baseline behaviour of both arms.
    pub baseline: Baseline,
    /// Injected faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// What must happen; default: `completed` without faults, a stop with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    /// Random seed (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Simulated adoption and feedback, for plans with people gates (default, for a plan that
    /// gates or tracks adoption: half of each wave's users do the key task, no feedback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<PeopleSim>,
}

/// How simulated users take the release: what a plan's adoption and feedback gates judge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleSim {
    /// The share of each wave's new users who do the key task, by wave (1-based order; the last
    /// one given holds for later waves; default 0.5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_task_rate: Vec<f64>,
    /// Feedback items per simulated hour (default 0).
    #[serde(default)]
    pub feedback_per_hour: f64,
    /// The share of feedback that is negative (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_share: Option<f64>,
    /// Blockers open during each wave (the last one given holds for later waves; default 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_blockers: Vec<u64>,
}

impl PeopleSim {
    fn check(&self) -> Result<(), String> {
        if self.key_task_rate.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err("people.key_task_rate values must be shares from 0 to 1".into());
        }
        if !(self.feedback_per_hour >= 0.0 && self.feedback_per_hour <= 1e6) {
            return Err("people.feedback_per_hour must be from 0 to 1,000,000".into());
        }
        if self.negative_share.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            return Err("people.negative_share must be a share from 0 to 1".into());
        }
        Ok(())
    }

    /// The value for wave `wave` (0-based) of a per-wave list: the last given holds after it.
    fn at<T: Copy>(list: &[T], wave: usize, default: T) -> T {
        list.get(wave).or(list.last()).copied().unwrap_or(default)
    }
}

/// Baseline traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Share of requests that fail.
    pub error_rate: f64,
    /// Mean latency, ms.
    pub latency_ms: f64,
    /// Latency standard deviation, ms.
    #[serde(default)]
    pub latency_sd_ms: f64,
}

/// A fault, applied to the treatment arm from `from_wave` (1-based) on; for a plan with a
/// `watch:`, the wave after the last is the watch (a late fault).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Error rate × `factor`.
    ErrorRate {
        /// Multiplier.
        factor: f64,
        /// First affected wave (1-based, default 1).
        #[serde(default = "one")]
        from_wave: usize,
    },
    /// Latency + `add_ms`.
    Latency {
        /// Added milliseconds.
        add_ms: f64,
        /// First affected wave.
        #[serde(default = "one")]
        from_wave: usize,
    },
    /// No events at all from this wave on.
    Silent {
        /// First affected wave.
        #[serde(default = "one")]
        from_wave: usize,
    },
    /// Treatment receives this share of traffic instead of the wave's.
    SampleRatio {
        /// Observed treatment share.
        treatment_share: f64,
        /// First affected wave.
        #[serde(default = "one")]
        from_wave: usize,
    },
    /// Error rate creeps up by `per_hour` (absolute) per simulated hour since the start.
    Creep {
        /// Added error rate per hour.
        per_hour: f64,
        /// First affected wave.
        #[serde(default = "one")]
        from_wave: usize,
    },
}

fn one() -> usize {
    1
}

impl Fault {
    fn first_wave(&self) -> usize {
        match self {
            Fault::ErrorRate { from_wave, .. }
            | Fault::Latency { from_wave, .. }
            | Fault::Silent { from_wave }
            | Fault::SampleRatio { from_wave, .. }
            | Fault::Creep { from_wave, .. } => *from_wave,
        }
    }
}

/// The expected ending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `completed`, `rolled_back`, `paused` (pause or escalate), `stopped` (any of the last two), or
    /// `gated` (held by a people gate when the simulated time ends).
    pub outcome: String,
    /// The guardrail (or `srm`, `silent`, `max_duration`) that should fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Simulated time since the start, seconds.
    pub t: i64,
    /// Wave (1-based).
    pub wave: usize,
    /// What was seen (per-arm counts and error rates so far in the wave).
    pub seen: String,
    /// What was decided and done.
    pub event: String,
}

/// A drill's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillReport {
    /// Scenario name.
    pub scenario: String,
    /// Whether the expectation held.
    pub passed: bool,
    /// Final state name.
    pub outcome: String,
    /// The reason recorded for the stop, if any.
    pub reason: Option<String>,
    /// What was expected.
    pub expected: String,
    /// Simulated seconds run.
    pub simulated_seconds: i64,
    /// Ticks run.
    pub ticks: u64,
    /// Simulated requests.
    pub requests: u64,
    /// The timeline of transitions and verdict changes.
    pub timeline: Vec<TimelineEntry>,
}

/// Runs a drill.
pub fn run(plan: &PlanSpec, scenario: &Scenario) -> Result<DrillReport, String> {
    if !(scenario.rate > 0.0 && scenario.rate.is_finite()) {
        return Err("scenario rate must be a positive number of requests per second".into());
    }
    let b = &scenario.baseline;
    if !(0.0..=1.0).contains(&b.error_rate) || b.latency_ms < 0.0 || b.latency_sd_ms < 0.0 {
        return Err("baseline error_rate must be in [0, 1] and latencies ≥ 0".into());
    }
    if let Some(p) = &scenario.people {
        p.check()?;
    }
    // People facts persist across waves (the gates compare them); simulated when the plan
    // gates or tracks adoption, or the scenario asks.
    let people_sim = scenario.people.clone().or_else(|| {
        (plan.adoption.is_some() || plan.waves.iter().any(|w| w.gates.is_some()))
            .then(PeopleSim::default)
    });
    let mut people = crate::people::PeopleSignals::default();
    // Its own stream: simulating people leaves the traffic's draws (and older seeds) as they were.
    let mut people_rng = Rng::new(scenario.seed.unwrap_or(1) ^ 0x5eed_0f9e_091e);
    let mut feedback_due = 0.0;
    let t0 = scenario.start.unwrap_or_else(|| {
        DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    });
    let tick = scenario.tick.unwrap_or(Span::from_secs(10)).secs().max(1);
    let horizon = scenario.duration.unwrap_or(Span::from_secs(7 * 86_400)).secs();
    let mut rng = Rng::new(scenario.seed.unwrap_or(1));
    let (mut r, _) = start("drill".into(), plan.clone(), 0, "drill-requester".into(), 0, t0)
        .map_err(|e| e.to_string())?;
    let mut timeline = vec![TimelineEntry {
        t: 0,
        wave: 1,
        seen: String::new(),
        event: format!("start: wave 1 at {}", plan.waves[0].exposure),
    }];
    let mut signals = Signals::default();
    let (mut ticks, mut requests) = (0u64, 0u64);
    let mut elapsed = 0u64;
    let mut last_verdicts: Vec<(String, String)> = Vec::new();
    let mut window: std::collections::VecDeque<(f64, f64, f64, f64, Moments, Moments)> =
        Default::default();
    // Ticks in the longest guardrail window (default 5m): how far back a simulated rate looks.
    let keep =
        (plan.guardrails.iter().filter_map(|g| g.window).map(|w| w.secs()).max().unwrap_or(300)
            / tick)
            .max(1) as usize;
    let quantiled = plan.guardrails.iter().any(|g| g.quantile.is_some());
    while elapsed < horizon && !r.state.is_terminal() && !matches!(r.state, State::Paused { .. }) {
        elapsed += tick;
        ticks += 1;
        let now = t0 + Duration::seconds(elapsed as i64);
        // The watch counts as the wave after the last, so a fault can start there.
        let wave_no = r.wave + 1 + usize::from(r.watch_started_at.is_some());
        let active = |f: &Fault| wave_no >= f.first_wave();
        let silent = scenario.faults.iter().any(|f| matches!(f, Fault::Silent { .. }) && active(f));
        if !silent {
            let n = rng.binomial((scenario.rate * tick as f64).round() as u64 * 2, 0.5).max(1);
            requests += n;
            let mut share = f64::from(plan.exposure_at(r.wave, false).basis_points()) / 10_000.0;
            let (mut err_t, mut lat_t) = (b.error_rate, b.latency_ms);
            for f in scenario.faults.iter().filter(|f| active(f)) {
                match f {
                    Fault::ErrorRate { factor, .. } => err_t *= factor,
                    Fault::Latency { add_ms, .. } => lat_t += add_ms,
                    Fault::SampleRatio { treatment_share, .. } => share = *treatment_share,
                    Fault::Creep { per_hour, .. } => err_t += per_hour * elapsed as f64 / 3600.0,
                    Fault::Silent { .. } => {}
                }
            }
            let nt = rng.binomial(n, share);
            let nc = n - nt;
            let mut add = |metric: &str, t: Moments, c: Moments| {
                let cell = signals.metrics.entry(metric.to_owned()).or_default();
                cell.treatment.merge(&t);
                cell.control.merge(&c);
            };
            let et = rng.binomial(nt, err_t.clamp(0.0, 1.0)) as f64;
            let ec = rng.binomial(nc, b.error_rate) as f64;
            add("error", Moments::bernoulli(nt as f64, et), Moments::bernoulli(nc as f64, ec));
            let lt = rng.normal_moments(nt, lat_t, b.latency_sd_ms);
            let lc = rng.normal_moments(nc, b.latency_ms, b.latency_sd_ms);
            add("latency_ms", lt, lc);
            // Quantile guardrails read sketches: up to 64 draws per arm and tick, each standing
            // for its share of the tick's requests (no draws otherwise, so older seeds replay).
            if quantiled {
                let arms = [
                    (&mut signals.latency.treatment, nt, lat_t),
                    (&mut signals.latency.control, nc, b.latency_ms),
                ];
                for (sketch, n, mean) in arms {
                    let draws = n.min(64);
                    for i in 0..draws {
                        let x = (mean + b.latency_sd_ms * rng.normal()).max(0.0);
                        sketch.add_n(x, n / draws + u64::from(i < n % draws));
                    }
                }
            }
            if let Some(sim) = &people_sim {
                let w = r.wave;
                if people.waves.len() <= w {
                    people.waves.resize(w + 1, Default::default());
                }
                let rate = PeopleSim::at(&sim.key_task_rate, w, 0.5);
                people.waves[w].exposed += nt;
                people.waves[w].adopted += people_rng.binomial(nt, rate);
                feedback_due += sim.feedback_per_hour * tick as f64 / 3600.0;
                while feedback_due >= 1.0 {
                    feedback_due -= 1.0;
                    people.feedback.items += 1;
                    people.feedback.negative +=
                        people_rng.binomial(1, sim.negative_share.unwrap_or(0.1));
                }
                people.feedback.open_blockers = PeopleSim::at(&sim.open_blockers, w, 0);
            }
            signals.exposures.treatment.merge(&Moments { n: nt as f64, ..Moments::default() });
            signals.exposures.control.merge(&Moments { n: nc as f64, ..Moments::default() });
            signals.last_event_at = Some(now);
            // Prometheus guardrails read the same simulated traffic, as a rate over their
            // window (default 5m) would: per-arm means over the recent ticks.
            window.push_back((et, nt as f64, ec, nc as f64, lt, lc));
            while window.len() > keep {
                window.pop_front();
            }
        }
        signals.readings.clear();
        // A rate over a window has a value once the window has filled.
        if !silent && window.len() >= keep {
            for g in plan.guardrails.iter().filter(|g| g.source == SignalSource::Prometheus) {
                let (mut t, mut c) = (Moments::default(), Moments::default());
                for (et, nt, ec, nc, lt, lc) in &window {
                    if g.metric == "latency_ms" {
                        t.merge(lt);
                        c.merge(lc);
                    } else {
                        t.merge(&Moments::bernoulli(*nt, *et));
                        c.merge(&Moments::bernoulli(*nc, *ec));
                    }
                }
                let reading = Reading {
                    treatment: (t.n > 0.0).then(|| t.mean()),
                    control: (c.n > 0.0).then(|| c.mean()),
                    error: None,
                    queries: vec!["(simulated by the drill)".to_owned()],
                    // A guardrail judged over a range is drilled one reading per tick.
                    ..Reading::default()
                };
                signals.readings.insert(g.name.clone(), reading);
            }
        }
        if people_sim.is_some() {
            signals.people = Some(people.clone());
        }
        let (next, actions) = step(&r, now, &signals);
        let seen = describe(&signals);
        let verdicts: Vec<(String, String)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::RecordVerdict { report, .. } => {
                    Some((report.guardrail.clone(), report.verdict.as_str().to_owned()))
                }
                _ => None,
            })
            .collect();
        if !verdicts.is_empty() && verdicts != last_verdicts {
            let text =
                verdicts.iter().map(|(g, v)| format!("{g}={v}")).collect::<Vec<_>>().join(", ");
            timeline.push(TimelineEntry {
                t: elapsed as i64,
                wave: wave_no,
                seen: seen.clone(),
                event: format!("verdicts: {text}"),
            });
            last_verdicts = verdicts;
        }
        for a in &actions {
            let event = match a {
                Action::SetExposure { wave } if next.state == State::Completed => {
                    format!(
                        "release: the holdback ends, wave {} at {}",
                        wave + 1,
                        plan.waves[*wave].exposure
                    )
                }
                Action::SetExposure { wave } => {
                    format!("promote: wave {} at {}", wave + 1, plan.exposure_at(*wave, false))
                }
                Action::Audit { action, details } if action == "rollout.watch" => format!(
                    "watch: {} with {} held back",
                    details["for"].as_str().unwrap_or(""),
                    details["holdback"].as_str().unwrap_or("")
                ),
                Action::RestoreFlag { .. } => {
                    "rollback: pre-rollout flag version restored".to_owned()
                }
                Action::Escalate { reason } => format!("escalate: {reason}"),
                Action::RequestApproval { wave, needed } => {
                    format!("approval requested for wave {} ({needed} needed)", wave + 1)
                }
                Action::Audit { action, details } if action == "rollout.pause" => {
                    format!("pause: {}", details["reason"].as_str().unwrap_or(""))
                }
                Action::Audit { action, .. } if action == "rollout.complete" => {
                    "complete".to_owned()
                }
                Action::Audit { action, details } if action == "rollout.hold" => {
                    format!("hold: blackout {}", details["blackout"].as_str().unwrap_or(""))
                }
                Action::Audit { action, details } if action == "rollout.gated" => {
                    format!("gated: {}", details["reason"].as_str().unwrap_or(""))
                }
                Action::Audit { action, .. } if action == "rollout.gate_cleared" => {
                    "gate cleared".to_owned()
                }
                _ => continue,
            };
            timeline.push(TimelineEntry {
                t: elapsed as i64,
                wave: wave_no,
                seen: seen.clone(),
                event,
            });
        }
        let promoted = next.signal_wave() != r.signal_wave();
        r = next;
        if promoted {
            signals = Signals::default();
            window.clear();
            last_verdicts.clear();
        }
        // Drills stand in for the approvers.
        if r.state == (State::Running { phase: Phase::AwaitingApproval }) {
            for i in 0..plan.approvals_needed() {
                let who = plan
                    .owners
                    .approvers
                    .iter()
                    .filter(|a| **a != r.requester)
                    .nth(i as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("drill-approver-{i}"));
                let mut rr = r.clone();
                rr.plan.owners.approvers.clear();
                if let Ok((next, _)) = command(&rr, now, &Command::Approve, &who, Some("drill")) {
                    r.approvals = next.approvals;
                    timeline.push(TimelineEntry {
                        t: elapsed as i64,
                        wave: r.wave + 1,
                        seen: String::new(),
                        event: format!("approved by {who} (simulated)"),
                    });
                }
            }
        }
    }
    let (outcome, reason) = match &r.state {
        State::Completed => ("completed".to_owned(), None),
        State::RolledBack { reason } => ("rolled_back".to_owned(), Some(reason.clone())),
        State::Paused { reason } => ("paused".to_owned(), Some(reason.clone())),
        State::Aborted { reason } => ("aborted".to_owned(), Some(reason.clone())),
        State::Running { phase: Phase::Gated } => (
            "gated".to_owned(),
            Some(format!(
                "held by a people gate at the end of the simulated time: {}",
                r.gated.as_deref().unwrap_or("")
            )),
        ),
        State::Running { .. } => (
            "running".to_owned(),
            Some("still undecided at the end of the simulated time".to_owned()),
        ),
    };
    let expected = scenario.expect.clone().unwrap_or(Expectation {
        outcome: if scenario.faults.is_empty() { "completed".into() } else { "stopped".into() },
        by: None,
    });
    let outcome_ok = match expected.outcome.as_str() {
        "stopped" => outcome == "rolled_back" || outcome == "paused",
        o => o == outcome,
    };
    let by_ok = expected.by.as_ref().is_none_or(|by| {
        reason.as_deref().is_some_and(|r| {
            r.contains(&format!("guardrail {by:?}"))
                || (by == "srm" && r.contains("sample-ratio"))
                || (by == "silent" && r.contains("no signal"))
                || (by == "max_duration" && r.contains("maximum duration"))
        })
    });
    Ok(DrillReport {
        scenario: scenario.name.clone(),
        passed: outcome_ok && by_ok,
        outcome,
        reason,
        expected: match &expected.by {
            Some(by) => format!("{} by {by}", expected.outcome),
            None => expected.outcome.clone(),
        },
        simulated_seconds: elapsed as i64,
        ticks,
        requests,
        timeline,
    })
}

fn describe(s: &Signals) -> String {
    let e = s.metrics.get("error").copied().unwrap_or(ArmMoments::default());
    let rate = |m: &Moments| if m.n > 0.0 { m.sum / m.n * 100.0 } else { 0.0 };
    format!(
        "treatment n={} err={:.2}%, control n={} err={:.2}%",
        e.treatment.n,
        rate(&e.treatment),
        e.control.n,
        rate(&e.control)
    )
}
