//! Event ingest: batches of exposures and outcomes, validated whole, attributed to the arms of
//! the live rollouts (`wavegate_rollout::arms`), folded into sufficient statistics and latency
//! sketches, and committed with the users of tracked rollouts' adoption in one transaction.
//!
//! **Invariant:** a batch is all or nothing: a bad event is named by its index and nothing is
//! counted; the batch's effect is committed before [`ingest`] returns. An event counts only in
//! the wave whose configuration produced it ([`timing`]: by its flag `version`, else its `at`
//! with `wavegate_rollout::arms::CLOCK_SKEW`, else on receipt); one from an earlier wave, or whose variant is not what
//! the rollout's rule serves its context now, is `stale`, and one that cannot be placed is
//! `unattributed`; neither is counted, so the arms stay unbiased under batching clients.

use std::collections::BTreeMap;

use serde_json::Value;
use wavegate_core::context::{AttrValue, CURRENT_TIME};
use wavegate_core::wire::{EXPOSURE, Event, OUTCOME};
use wavegate_core::{Context, Flag, evaluate_in};
use wavegate_protocols::unleash::ToggleCounts;
use wavegate_rollout::adoption::Users;
use wavegate_rollout::arms::{
    Arm, Attribution, Tally, Timing, WaveOrigin, attribute, is_reserved_metric, timing,
};
use wavegate_rollout::exposure::owns_rule;
use wavegate_store::{AdoptionDelta, AggregateBatch, AggregateDelta, SketchDelta};

use crate::service::{ServiceError, ServiceResult};
use crate::state::{AdoptionTrack, AppState, LiveRollout};

/// Largest magnitude an outcome value may have (keeps sums of squares finite).
pub const MAX_VALUE: f64 = 1e9;

/// Most events in one batch.
pub const MAX_EVENTS: usize = 10_000;

/// What became of a batch: events in it, counted in some rollout's arms, not counted because
/// the rollout's rule now serves their context another variant, and whether it was a retry.
pub use wavegate_api::events::Ingested;

/// Longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 128;

/// How long a batch's idempotency key is remembered (a retry within it counts once).
pub const KEY_RETENTION: chrono::Duration = chrono::Duration::hours(48);

/// Checks an idempotency key: 1 to [`MAX_KEY_LEN`] visible ASCII characters.
pub fn check_key(key: &str) -> ServiceResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::invalid(
            "Idempotency-Key",
            format!("an idempotency key is 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// A flag named in a batch, with what counting its events needs.
struct Target<'a> {
    ro: &'a LiveRollout,
    flag: &'a Flag,
    /// Where the rollout's current wave came from.
    origin: WaveOrigin,
    /// Whether the flag's rules (or a prerequisite parent's) read `currentTime`.
    reads_time: bool,
    /// The rule that served last, and whether the rollout owns it.
    last_rule: Option<(&'a str, bool)>,
}

fn bad(i: usize, msg: impl std::fmt::Display) -> ServiceError {
    ServiceError::invalid(format!("events[{i}]"), format!("events[{i}]: {msg}"))
}

/// A valid event's context (with entropy for random stickiness) and evaluation time.
pub(crate) type Checked = (Context, Option<chrono::DateTime<chrono::Utc>>);

/// Validates event `i`; returns its context and evaluation time.
pub(crate) fn validate(i: usize, e: &Event) -> ServiceResult<Checked> {
    if e.kind != EXPOSURE && e.kind != OUTCOME {
        return Err(bad(i, format!("type must be exposure or outcome, got {:?}", e.kind)));
    }
    if e.flag.is_empty() || e.variant.is_empty() {
        return Err(bad(i, "flag and variant must not be empty"));
    }
    let ctx = Context::from_json(&e.context).map_err(|err| bad(i, err))?;
    if e.is_exposure() && (e.error.is_some() || e.latency_ms.is_some() || !e.metrics.is_empty()) {
        return Err(bad(i, "an exposure carries no outcome fields; send an outcome event"));
    }
    if let Some(l) = e.latency_ms.filter(|l| !(l.is_finite() && (0.0..=MAX_VALUE).contains(l))) {
        return Err(bad(i, format!("latency_ms must be a number from 0 to {MAX_VALUE}, got {l}")));
    }
    for (name, v) in &e.metrics {
        if !(v.is_finite() && v.abs() <= MAX_VALUE) {
            return Err(bad(
                i,
                format!("metric {name:?} must be a finite number within ±{MAX_VALUE}"),
            ));
        }
        if name.is_empty() || name.len() > 128 || is_reserved_metric(name) {
            return Err(bad(i, format!("metric name {name:?} is empty, too long or reserved")));
        }
    }
    if let Some(v) = e.version.filter(|v| *v < 1) {
        return Err(bad(i, format!("version is a flag version (1 or more), got {v}")));
    }
    let at = match &e.at {
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|err| {
                    bad(i, format!("at must be an RFC 3339 time like 2026-01-31T12:00:00Z ({err})"))
                })?
                .to_utc(),
        ),
        None => None,
    };
    // As for OFREP: entropy for random stickiness (the server's time is added below, only
    // for flags that read it).
    Ok((ctx.with_entropy(rand::random()), at))
}

/// Ingests `events` reported in environment `env` (already authorised): validates them all,
/// then counts each in the arm its live rollout's rule serves it and notes the users of tracked
/// rollouts, committing both before it returns, as contributions of token `source` (its id).
/// A batch with an idempotency `key` that `source` already committed adds nothing (its client
/// retried after losing the answer); keys are the token's own, so another token's batch never
/// collides with them.
pub async fn ingest(
    state: &AppState,
    env: &str,
    source: &str,
    events: Vec<Event>,
    key: Option<&str>,
) -> ServiceResult<Ingested> {
    if let Some(k) = key {
        check_key(k)?;
    }
    if events.len() > MAX_EVENTS {
        return Err(ServiceError::invalid(
            "events",
            format!("a batch holds at most {MAX_EVENTS} events, got {}", events.len()),
        ));
    }
    // Validate everything before counting anything.
    let contexts = events
        .iter()
        .enumerate()
        .map(|(i, e)| validate(i, e))
        .collect::<ServiceResult<Vec<_>>>()?;
    count(state, env, source, events, contexts, key, Reporter::Application).await
}

/// Who reported a batch, which decides what its contexts can be trusted to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reporter {
    /// The application, with the context it evaluated (`POST /api/v1/events`).
    Application,
    /// Spans (`POST /v1/traces`), whose context holds only the user's id: an event whose
    /// answer an earlier rule could have decided on an attribute it lacks is unattributed.
    Spans,
}

impl Reporter {
    fn label(self) -> &'static str {
        match self {
            Reporter::Application => "events",
            Reporter::Spans => "otlp",
        }
    }
}

/// Counts validated `events` (with their [`validate`]d `contexts`) in the arms of `env`'s live
/// rollouts and commits them with the adoption they note, as token `source`'s contributions,
/// under idempotency `key` (scoped to `source`).
pub(crate) async fn count(
    state: &AppState,
    env: &str,
    source: &str,
    events: Vec<Event>,
    mut contexts: Vec<Checked>,
    key: Option<&str>,
    reporter: Reporter,
) -> ServiceResult<Ingested> {
    // One reading of the clock for the whole batch: `currentTime`, adoption days.
    let clock_now = state.clock.now();
    let now = clock_now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let today = clock_now.timestamp().div_euclid(86_400);
    let snap = state.snapshot.load();
    let live = state.routing.live.load();
    let adoption = state.routing.adoption.load();
    let no_flags = crate::snapshot::FlagMap::default();
    let env_flags = snap.flags.get(env).unwrap_or(&no_flags);
    let env_key = env.to_owned();
    // Each flag the batch names is looked up once, not once per event.
    let mut targets: foldhash::HashMap<&str, Option<Target<'_>>> = Default::default();
    let mut tracks: foldhash::HashMap<&str, Option<&AdoptionTrack>> = Default::default();
    let mut tally = Tally::default();
    let mut users = Users::default();
    let mut population: std::collections::BTreeMap<(&str, String), f64> = Default::default();
    let mut stale = 0usize;
    let mut unattributed = 0usize;
    for (e, (ctx, at)) in events.iter().zip(&mut contexts) {
        if !adoption.is_empty()
            && let Some(track) = *tracks.entry(e.flag.as_str()).or_insert_with(|| {
                adoption
                    .get(&(env_key.clone(), e.flag.clone()))
                    .filter(|t| clock_now >= t.started_at && clock_now < t.until)
            })
        {
            users.note(&track.rollout, &track.new_variant, &track.spec, e);
            // Wave 1's population by cohort, whoever served them: the pilot is judged against it.
            if track.wave == 0 && e.is_exposure() {
                for attribute in &track.spec.cohorts {
                    let value = wavegate_rollout::adoption::cohort_value(&e.context, attribute);
                    let metric = wavegate_rollout::people::cohort_metric(attribute, &value);
                    *population.entry((track.rollout.as_str(), metric)).or_default() += 1.0;
                }
            }
        }
        let target = targets.entry(e.flag.as_str()).or_insert_with(|| {
            let ro = live.get(&(env_key.clone(), e.flag.clone()))?;
            let flag = env_flags.get(&e.flag)?;
            let reads_time = flag.reads_current_time()
                || flag
                    .prerequisite_keys()
                    .any(|k| env_flags.get(k).is_some_and(|f| f.reads_current_time()));
            let origin = WaveOrigin {
                since_version: ro.since_version,
                exposed_at: ro.exposed_at,
                served_version: flag.version(),
                skew: state.routing.clock_skew.unwrap_or(wavegate_rollout::arms::CLOCK_SKEW),
            };
            Some(Target { ro, flag, origin, reads_time, last_rule: None })
        });
        let Some(t) = target else { continue };
        match timing(e.version, *at, &t.origin) {
            Timing::Current => {}
            Timing::Stale => {
                stale += 1;
                continue;
            }
            Timing::Unattributed => {
                unattributed += 1;
                continue;
            }
        }
        // Only a flag that reads `currentTime` can tell the difference, so only its contexts
        // get the server's time (it costs two allocations per event).
        if t.reads_time && !ctx.has_current_time() {
            ctx.set(CURRENT_TIME, AttrValue::String(now.clone()));
        }
        let ro: &LiveRollout = t.ro;
        let res = evaluate_in(t.flag, ctx, env_flags);
        let Some(rule) = res.rule else { continue };
        // `owns_rule` formats the rollout's rule prefix; a batch meets few distinct rules.
        let owned = match t.last_rule {
            Some((last, owned)) if last == rule => owned,
            _ => {
                let owned = owns_rule(&ro.id, rule);
                t.last_rule = Some((rule, owned));
                owned
            }
        };
        if !owned {
            continue;
        }
        if reporter == Reporter::Spans && t.flag.missing_before(rule, ctx).is_some() {
            unattributed += 1;
            continue;
        }
        let arm = match attribute(&ro.new_variant, &ro.control_variant, res.variant, &e.variant) {
            Attribution::Arm(arm) => arm,
            Attribution::Stale => {
                stale += 1;
                continue;
            }
            Attribution::Neither => continue,
        };
        if e.is_exposure() {
            tally.exposure(&ro.id, ro.wave, arm);
        } else {
            let metrics = e.metrics.iter().map(|(k, v)| (k.as_str(), *v));
            tally.outcome((&ro.id, ro.wave, arm), e.error, e.latency_ms, metrics);
        }
    }
    let adoption_rows: Vec<AdoptionDelta> = users
        .into_rows()
        .map(|(rollout, user, cohort, task)| AdoptionDelta {
            rollout: rollout.to_owned(),
            user: user.to_owned(),
            cohort: serde_json::to_string(&cohort).unwrap_or_else(|_| "[]".into()),
            exposed_day: today,
            task_day: task.then_some(today),
            // The wave the rollout is at now: kept only when it first serves the user.
            wave: tracks.values().flatten().find(|t| t.rollout == rollout).map_or(0, |t| t.wave),
        })
        .collect();
    let mut deltas: Vec<AggregateDelta> = tally
        .cells()
        .map(|((rollout, wave, arm, metric), m)| AggregateDelta {
            rollout: rollout.to_owned(),
            wave,
            arm: arm.as_str().into(),
            metric: metric.to_owned(),
            n: m.n,
            sum: m.sum,
            sumsq: m.sumsq,
            source: source.to_owned(),
        })
        .collect();
    deltas.extend(population.into_iter().map(|((rollout, metric), n)| AggregateDelta {
        rollout: rollout.to_owned(),
        wave: 0,
        arm: wavegate_rollout::people::POPULATION_ARM.into(),
        metric,
        n,
        sum: 0.0,
        sumsq: 0.0,
        source: source.to_owned(),
    }));
    let sketches: Vec<SketchDelta> = tally
        .sketches()
        .map(|((rollout, wave, arm), sk)| SketchDelta {
            rollout: rollout.to_owned(),
            wave,
            arm: arm.as_str().into(),
            metric: wavegate_rollout::arms::LATENCY_MS.into(),
            counts: sk.counts().clone(),
            source: source.to_owned(),
        })
        .collect();
    let mut out = Ingested {
        accepted: events.len() as u64,
        counted: tally.counted() as u64,
        stale: stale as u64,
        unattributed: unattributed as u64,
        duplicate: false,
    };
    // Freed while still in cache, and not held while the commit is awaited.
    drop((tally, targets, tracks));
    drop((contexts, events, live, snap, adoption));
    if !deltas.is_empty() || !adoption_rows.is_empty() {
        let at = state.clock.now();
        let key = key.map(|k| format!("{source}/{k}"));
        let batch = AggregateBatch { deltas, sketches, adoption: adoption_rows, at, key };
        let applied = state.store.add_aggregates(batch).await?;
        if !applied {
            out = Ingested { counted: 0, stale: 0, unattributed: 0, duplicate: true, ..out };
        }
    }
    let (m, source) = (&state.metrics, reporter.label());
    m.events_placed(source, "counted", out.counted);
    m.events_placed(source, "stale", out.stale);
    m.events_placed(source, "unattributed", out.unattributed);
    Ok(out)
}

/// Adds the exposures an Unleash SDK's metrics report (`toggles`, counted in `env`) implies
/// to the arms of the live rollouts of those flags, committed before it returns.
///
/// **The exception to the arms invariant:** Unleash reports carry counts, not contexts, so
/// they cannot be checked against what the rollout's rule serves each context: a flag's whole
/// count goes to its rollout's arms (contexts served by the flag's other rules and answers from
/// before a wave change included). Rollouts that must judge exact arms get their exposures
/// from `POST /api/v1/events`.
pub async fn ingest_unleash_counts(
    state: &AppState,
    env: &str,
    source: &str,
    toggles: &BTreeMap<String, ToggleCounts>,
) -> ServiceResult<()> {
    let deltas = unleash_deltas(state, env, source, toggles);
    if !deltas.is_empty() {
        let batch = AggregateBatch { deltas, at: state.clock.now(), ..Default::default() };
        state.store.add_aggregates(batch).await?;
    }
    Ok(())
}

/// Arm counts a metrics report adds to the live rollouts of `env`: for a boolean flag, `yes`
/// counts for the variant serving `true` and `no` for the one serving `false`; otherwise the
/// variant counts. Unleash reports carry no contexts, so a flag's whole count goes to its
/// rollout's arms (contexts served by other rules of the flag included).
fn unleash_deltas(
    state: &AppState,
    env: &str,
    source: &str,
    toggles: &BTreeMap<String, ToggleCounts>,
) -> Vec<AggregateDelta> {
    let snap = state.snapshot.load();
    let live = state.routing.live.load();
    let mut out = Vec::new();
    for (name, counts) in toggles {
        let Some(ro) = live.get(&(env.to_owned(), name.clone())) else { continue };
        let Some(flag) = snap.flag(env, name) else { continue };
        let count_of = |variant: &str| -> u64 {
            let Some(v) = flag.variants().iter().find(|v| v.name == variant) else { return 0 };
            match &v.value {
                Value::Bool(true) => counts.yes,
                Value::Bool(false) => counts.no,
                _ => counts.variants.get(variant).copied().unwrap_or(0),
            }
        };
        for (arm, variant) in
            [(Arm::Treatment, &ro.new_variant), (Arm::Control, &ro.control_variant)]
        {
            let n = count_of(variant) as f64;
            if n > 0.0 {
                out.push(AggregateDelta {
                    rollout: ro.id.clone(),
                    wave: ro.wave,
                    arm: arm.as_str().into(),
                    metric: wavegate_rollout::arms::EXPOSURE.into(),
                    n,
                    sum: n,
                    sumsq: n,
                    source: source.to_owned(),
                });
            }
        }
    }
    out
}
