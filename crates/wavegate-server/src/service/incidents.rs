//! Incidents and support tickets: recorded once per source id, attributed to the arm of each
//! live rollout of their service whose rule serves their user, and read back as the signals of
//! incident guardrails (`wavegate_rollout::incidents`).

use wavegate_core::Context;
use wavegate_rollout::arms::{Attribution, attribute};
use wavegate_rollout::exposure::owns_rule;
use wavegate_rollout::incidents::{IncidentSignal, counts};
use wavegate_rollout::machine::{ArmMoments, Rollout, Signals};
use wavegate_rollout::plan::SignalSource;
use wavegate_rollout::stats::Moments;
use wavegate_store::{IncidentArm, IncidentRow};

use crate::service::{ServiceResult, decode};
use crate::state::AppState;

/// An incident as reported, before it is attributed.
#[derive(Debug, Clone)]
pub struct Report {
    /// The incident (its `arms` are filled in here).
    pub incident: IncidentRow,
    /// The user's context (the `targetingKey` is the incident's user).
    pub context: Option<serde_json::Value>,
}

/// Records `report`: attributed (when it names a user) to each live rollout of its service in
/// an environment `allows` takes, in the arm the rollout's rule serves that user now.
pub async fn record(
    state: &AppState,
    mut report: Report,
    allows: impl Fn(&str) -> bool,
) -> ServiceResult<(IncidentRow, bool)> {
    if let Some(user) = report.incident.user.clone() {
        let mut ctx = report.context.take().unwrap_or_else(|| serde_json::json!({}));
        ctx["targetingKey"] = serde_json::Value::String(user);
        let ctx = Context::from_json(&ctx)
            .map_err(|e| crate::service::ServiceError::invalid("context", e.to_string()))?;
        let snap = state.snapshot.load();
        for row in state.store.rollouts(true).await? {
            if !allows(&row.environment) {
                continue;
            }
            let Ok(r) = decode::<Rollout>("rollout", &row.doc) else { continue };
            if r.plan.release.service.as_deref() != Some(report.incident.service.as_str()) {
                continue;
            }
            let Some(env_flags) = snap.flags.get(&row.environment) else { continue };
            let Some(flag) = env_flags.get(&r.plan.flag) else { continue };
            let res = wavegate_core::evaluate_in(flag, &ctx, env_flags);
            if !res.rule.is_some_and(|rule| owns_rule(&r.id, rule)) {
                continue;
            }
            let variant = res.variant;
            if let Attribution::Arm(arm) =
                attribute(&r.plan.new_variant, &r.plan.control_variant, variant, variant)
            {
                report.incident.arms.push(IncidentArm {
                    rollout: r.id.clone(),
                    wave: r.signal_wave() as i64,
                    arm: arm.as_str().into(),
                });
            }
        }
    }
    let (id, new) = state.store.add_incident(&report.incident).await?;
    report.incident.id = id;
    Ok((report.incident, new))
}

/// Fills in `signals.incidents` for `r`'s incident guardrails: the attributed incidents of the
/// wave per arm (over the arms' exposures), and the service's incidents since the wave began
/// against the baseline window before the rollout started.
pub async fn signals(state: &AppState, r: &Rollout, signals: &mut Signals) -> ServiceResult<()> {
    let guards: Vec<_> =
        r.plan.guardrails.iter().filter(|g| g.source == SignalSource::Incidents).collect();
    if guards.is_empty() {
        return Ok(());
    }
    let now = state.clock.now();
    let attributed = state.store.incident_counts(&r.id, r.signal_wave() as i64).await?;
    let recent = match r.plan.release.service.as_deref() {
        Some(service) => state.store.incidents(Some(service), 1000).await?,
        None => Vec::new(),
    };
    for g in guards {
        let floor = g.severity.as_deref();
        let mut s = IncidentSignal::default();
        let (mut t, mut c) = (0.0, 0.0);
        for a in attributed.iter().filter(|a| counts(&a.severity, floor)) {
            if a.arm == "treatment" { t += a.count as f64 } else { c += a.count as f64 }
        }
        s.arms = ArmMoments {
            treatment: Moments::bernoulli(signals.exposures.treatment.n.max(t), t),
            control: Moments::bernoulli(signals.exposures.control.n.max(c), c),
        };
        let window = g.baseline_window().to_chrono();
        let from = r.started_at - window;
        for i in recent.iter().filter(|i| counts(&i.severity, floor)) {
            if i.at >= from && i.at < r.started_at {
                s.before += 1.0;
            } else if i.at >= r.wave_started_at && i.at <= now {
                s.since += 1.0;
            }
        }
        s.before_hours = window.num_seconds() as f64 / 3600.0;
        s.since_hours = ((now - r.wave_started_at).num_seconds() as f64 / 3600.0).max(0.0);
        signals.incidents.insert(g.name.clone(), s);
    }
    Ok(())
}
