//! People facts: what the controller's people gates and stakeholder notices read (adoption per
//! wave, the release's feedback, lagging cohorts), and success targets judged for reports.

use wavegate_rollout::machine::Rollout;
use wavegate_rollout::people::{
    FeedbackFacts, LaggingCohort, POPULATION_ARM, PeopleSignals, PilotMix, WaveAdoption,
};
use wavegate_rollout::stats::Moments;
use wavegate_rollout::success::{self, Kind, Measure, SuccessStatus};
use wavegate_store::{FeedbackRow, RolloutRow};

use crate::service::ServiceResult;
use crate::state::AppState;

/// The window lagging cohorts are judged in by the controller (days).
pub const LAGGING_WINDOW: u32 = 30;

/// Whether the controller needs people facts for `r`: its plan tracks adoption or gates a wave.
pub fn wanted(r: &Rollout) -> bool {
    r.plan.adoption.is_some() || r.plan.waves.iter().any(|w| w.gates.is_some())
}

/// Every feedback item about `release`, oldest first: posted under its name or under
/// `name version`.
pub async fn release_feedback(
    state: &AppState,
    release: &wavegate_rollout::plan::ReleaseSpec,
) -> wavegate_store::StoreResult<Vec<FeedbackRow>> {
    let mut items = state.store.feedback(&release.name).await?;
    items.extend(state.store.feedback(&release.label()).await?);
    items.sort_by_key(|f| f.id);
    Ok(items)
}

/// The feedback facts of `r`'s release: items and negative items since the rollout started,
/// and every blocker still open (one filed before the start still blocks).
pub async fn feedback(state: &AppState, r: &Rollout) -> ServiceResult<FeedbackFacts> {
    let mut f = FeedbackFacts::default();
    for item in release_feedback(state, &r.plan.release).await? {
        if item.blocker && item.status == "open" {
            f.open_blockers += 1;
        }
        if item.at >= r.started_at {
            f.items += 1;
            f.negative += u64::from(item.sentiment == "negative");
        }
    }
    Ok(f)
}

/// Adoption per wave, the release's feedback and the cohorts lagging now (30-day window).
pub async fn signals(
    state: &AppState,
    row: &RolloutRow,
    r: &Rollout,
) -> ServiceResult<PeopleSignals> {
    let mut waves = Vec::new();
    let mut lagging = Vec::new();
    if r.plan.adoption.is_some() {
        for w in state.store.adoption_by_wave(&r.id).await? {
            let Ok(i) = usize::try_from(w.wave) else { continue };
            if i > r.plan.waves.len() {
                continue;
            }
            if waves.len() <= i {
                waves.resize(i + 1, WaveAdoption::default());
            }
            waves[i] =
                WaveAdoption { exposed: w.exposed.max(0) as u64, adopted: w.adopted.max(0) as u64 };
        }
        let (report, _) = crate::service::reports::adoption(state, row, r, LAGGING_WINDOW).await?;
        lagging = report.lagging.iter().map(LaggingCohort::from).collect();
    }
    let pilot = if r.wave == 0 && !r.pilot_checked { pilot_mix(state, r).await? } else { None };
    Ok(PeopleSignals { waves, feedback: feedback(state, r).await?, lagging, pilot })
}

/// Wave 1's new-variant users by cohort value against the exposures of everyone evaluating
/// the flag in wave 1 (None when the plan tracks no cohorts).
async fn pilot_mix(state: &AppState, r: &Rollout) -> ServiceResult<Option<PilotMix>> {
    let Some(spec) = &r.plan.adoption else { return Ok(None) };
    let mut mix = PilotMix::default();
    for c in state.store.adoption_in_wave(&r.id, 0).await? {
        let values: Vec<String> = serde_json::from_str(&c.cohort).unwrap_or_default();
        for (attribute, value) in spec.cohorts.iter().zip(&values) {
            *mix.pilot.entry(format!("{attribute}={value}")).or_default() +=
                c.exposed.max(0) as u64;
        }
    }
    for a in state.store.aggregates(&r.id, 0, &r.excluded_sources()).await? {
        if a.arm != POPULATION_ARM {
            continue;
        }
        if let Some(key) = a.metric.strip_prefix("cohort:") {
            *mix.population.entry(key.to_owned()).or_default() += a.n.max(0.0) as u64;
        }
    }
    Ok(Some(mix))
}

/// `r`'s success targets judged now (the metrics without a target are left out).
pub async fn success(
    state: &AppState,
    row: &RolloutRow,
    r: &Rollout,
) -> ServiceResult<Vec<SuccessStatus>> {
    let now = state.clock.now();
    let mut out = Vec::new();
    let targets: Vec<_> = r.plan.success_metrics.iter().filter(|m| m.target.is_some()).collect();
    if targets.is_empty() {
        return Ok(out);
    }
    let adoption = match r.plan.adoption {
        Some(_) => Some(crate::service::reports::adoption(state, row, r, LAGGING_WINDOW).await?.0),
        None => None,
    };
    for spec in targets {
        let measure = match success::kind(spec, &r.plan) {
            Kind::Adoption => adoption.as_ref().and_then(|rep| {
                let i = rep.windows.iter().position(|w| *w == LAGGING_WINDOW).unwrap_or(0);
                let rate = match spec.cohort.as_deref().and_then(|c| c.split_once('=')) {
                    None => rep.overall.get(i).copied(),
                    Some((attribute, value)) => rep
                        .attributes
                        .iter()
                        .find(|a| a.attribute == attribute.trim())
                        .and_then(|a| a.cohorts.iter().find(|c| c.value == value.trim()))
                        .and_then(|c| c.rates.get(i).copied()),
                };
                rate.map(|r| Measure::Rate { exposed: r.exposed, adopted: r.adopted })
            }),
            Kind::Lift => lift(state, r, &spec.metric).await?,
        };
        out.extend(success::evaluate(spec, measure, r.started_at, now));
    }
    Ok(out)
}

/// The metric's arms in the last wave that had a control arm (the latest with data in both).
async fn lift(state: &AppState, r: &Rollout, metric: &str) -> ServiceResult<Option<Measure>> {
    let excluded = r.excluded_sources();
    for wave in (0..=r.signal_wave()).rev() {
        let (mut t, mut c) = (Moments::default(), Moments::default());
        for a in state.store.aggregates(&r.id, wave as i64, &excluded).await? {
            if a.metric != metric || a.arm == wavegate_rollout::people::POPULATION_ARM {
                continue;
            }
            let m = Moments { n: a.n, sum: a.sum, sumsq: a.sumsq };
            if a.arm == "treatment" { t.merge(&m) } else { c.merge(&m) }
        }
        if t.n > 0.0 && c.n > 0.0 {
            return Ok(Some(Measure::Arms { treatment: t, control: c }));
        }
    }
    Ok(None)
}
