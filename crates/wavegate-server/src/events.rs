//! `POST /api/v1/events`: batches of exposures and outcomes from SDKs, folded into the
//! rollouts' sufficient statistics.
//!
//! **Invariant:** a batch is all or nothing: it is validated whole (a bad event is named by its
//! index) and its effect on the aggregates is committed in one transaction before the 202.
//! Arms follow DESIGN.md: an event counts only when the rollout's own rule serves its context;
//! the variant then picks treatment or control. Events count toward the wave current on receipt;
//! an event whose variant is not what the rule serves its context now (evaluated before a wave
//! change) is reported as `stale` and not counted, so the arms stay unbiased.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use wavegate_core::context::{AttrValue, CURRENT_TIME};
use wavegate_core::{Context, Flag, evaluate_in};
use wavegate_rollout::exposure::owns_rule;
use wavegate_rollout::sketch::Sketch;
use wavegate_rollout::stats::Moments;
use wavegate_store::{AdoptionDelta, AggregateDelta, SketchDelta, TokenKind};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::json::JsonBody;
use crate::state::{AdoptionTrack, AppState, LiveRollout};

/// (rollout, wave, arm, metric).
type CellKey<'a> = (&'a str, i64, &'static str, &'a str);

/// (rollout, user) → (the user's cohort values, whether they did the key task).
type AdoptionUsers<'a> = BTreeMap<(&'a str, &'a str), (Vec<Cow<'a, str>>, bool)>;

/// A flag named in a batch, with what counting its events needs.
struct Target<'a> {
    ro: &'a LiveRollout,
    flag: &'a Flag,
    /// Whether the flag's rules read `currentTime`.
    reads_time: bool,
    /// The rule that served last, and whether the rollout owns it.
    last_rule: Option<(&'a str, bool)>,
}

/// Largest magnitude an outcome value may have (keeps sums of squares finite).
pub const MAX_VALUE: f64 = 1e9;

/// Most events in one batch.
pub const MAX_EVENTS: usize = 10_000;

/// Events routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/events", post(ingest))
}

/// A `POST /api/v1/events` body as it arrives on the wire, before any validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    events: Vec<Event>,
}

impl Batch {
    /// Parses a request body with the handler's own code (the same extractor function and
    /// serde types), so the ingest benchmark's parse-only baseline times exactly this step.
    pub fn parse(body: &[u8]) -> ApiResult<Batch> {
        crate::json::parse_json(body)
    }

    /// How many events the batch holds.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    /// `exposure` or `outcome`.
    #[serde(rename = "type")]
    kind: String,
    flag: String,
    variant: String,
    context: Value,
    #[serde(default)]
    error: Option<bool>,
    #[serde(default)]
    latency_ms: Option<f64>,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
}

fn bad(i: usize, msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("events[{i}]"), format!("events[{i}]: {msg}"))
}

async fn ingest(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(batch): JsonBody<Batch>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::ServerSdk, TokenKind::Admin])?;
    let env = match headers
        .get(wavegate_protocols::ENV_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        Some(e) => e.to_owned(),
        None => match p.0.environments.as_slice() {
            [one] if one != "*" => one.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "this token spans several environments; name one in the X-Wavegate-Environment header",
                ));
            }
        },
    };
    p.require_env(&env)?;
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::invalid(
            "events",
            format!("a batch holds at most {MAX_EVENTS} events, got {}", batch.events.len()),
        ));
    }
    // One reading of the clock for the whole batch: `currentTime`, adoption days.
    let clock_now = state.clock.now();
    let now = clock_now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // Validate everything before counting anything.
    let mut parsed = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.iter().enumerate() {
        if e.kind != "exposure" && e.kind != "outcome" {
            return Err(bad(i, format!("type must be exposure or outcome, got {:?}", e.kind)));
        }
        if e.flag.is_empty() || e.variant.is_empty() {
            return Err(bad(i, "flag and variant must not be empty"));
        }
        // As for OFREP: entropy for random stickiness (and, below, the server's time for date
        // constraints, when the event's flag has any).
        let ctx = Context::from_json(&e.context).map_err(|err| bad(i, err))?;
        let ctx = ctx.with_entropy(rand::random());
        if e.kind == "exposure"
            && (e.error.is_some() || e.latency_ms.is_some() || !e.metrics.is_empty())
        {
            return Err(bad(i, "an exposure carries no outcome fields; send an outcome event"));
        }
        if let Some(l) = e.latency_ms.filter(|l| !(l.is_finite() && (0.0..=MAX_VALUE).contains(l)))
        {
            return Err(bad(
                i,
                format!("latency_ms must be a number from 0 to {MAX_VALUE}, got {l}"),
            ));
        }
        for (name, v) in &e.metrics {
            if !(v.is_finite() && v.abs() <= MAX_VALUE) {
                return Err(bad(
                    i,
                    format!("metric {name:?} must be a finite number within ±{MAX_VALUE}"),
                ));
            }
            if name.is_empty()
                || name.len() > 128
                || name == "exposure"
                || name == "error"
                || name == "latency_ms"
            {
                return Err(bad(i, format!("metric name {name:?} is empty, too long or reserved")));
            }
        }
        parsed.push(ctx);
    }
    let snap = state.snapshot.load();
    let live = state.live.load();
    let no_flags = crate::snapshot::FlagMap::default();
    let env_flags = snap.flags.get(&env).unwrap_or(&no_flags);
    // Each flag the batch names is looked up once, not once per event (which cloned the
    // environment and flag names into the lookup key every time).
    let mut targets: foldhash::HashMap<&str, Option<Target<'_>>> = Default::default();
    // Keys borrow from the live table and the batch; owned only once per cell, below.
    let mut cells: BTreeMap<CellKey<'_>, Moments> = BTreeMap::new();
    let mut sketches: BTreeMap<(&str, i64, &'static str), Sketch> = BTreeMap::new();
    let mut counted = 0usize;
    let mut stale = 0usize;
    // Adoption: users served a tracked rollout's new variant, one entry per (rollout, user).
    let adoption = state.adoption.load();
    let track_adoption = !adoption.is_empty();
    let today = clock_now.timestamp().div_euclid(86_400);
    let mut tracks: foldhash::HashMap<&str, Option<&AdoptionTrack>> = Default::default();
    let mut users: AdoptionUsers<'_> = BTreeMap::new();
    for (e, ctx) in batch.events.iter().zip(&mut parsed) {
        if track_adoption
            && let Some(track) = *tracks.entry(e.flag.as_str()).or_insert_with(|| {
                adoption
                    .get(&(env.clone(), e.flag.clone()))
                    .filter(|t| clock_now >= t.started_at && clock_now < t.until)
            })
        {
            note_adoption(track, e, &mut users);
        }
        let target = targets.entry(e.flag.as_str()).or_insert_with(|| {
            let ro = live.get(&(env.clone(), e.flag.clone()))?;
            let flag = env_flags.get(&e.flag)?;
            // A prerequisite's parent may read the time even when the flag does not.
            let reads_time = flag.reads_current_time()
                || flag
                    .prerequisite_keys()
                    .any(|k| env_flags.get(k).is_some_and(Flag::reads_current_time));
            Some(Target { ro, flag, reads_time, last_rule: None })
        });
        let Some(t) = target else { continue };
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
        // An answer from before the last wave change (a cached or in-flight evaluation) is
        // not what the rollout rule serves now: it would bias the arms, so it is not counted.
        if res.variant != e.variant {
            stale += 1;
            continue;
        }
        let arm = if e.variant == ro.new_variant {
            "treatment"
        } else if e.variant == ro.control_variant {
            "control"
        } else {
            continue;
        };
        counted += 1;
        let mut add = |metric, x: f64| {
            cells.entry((ro.id.as_str(), ro.wave, arm, metric)).or_default().push(x);
        };
        if e.kind == "exposure" {
            add("exposure", 1.0);
        } else {
            if let Some(err) = e.error {
                add("error", if err { 1.0 } else { 0.0 });
            }
            if let Some(l) = e.latency_ms {
                add("latency_ms", l);
                sketches.entry((ro.id.as_str(), ro.wave, arm)).or_default().add(l);
            }
            for (name, v) in &e.metrics {
                add(name.as_str(), *v);
            }
        }
    }
    let adoption_rows: Vec<AdoptionDelta> = users
        .into_iter()
        .map(|((rollout, user), (cohort, task))| AdoptionDelta {
            rollout: rollout.to_owned(),
            user: user.to_owned(),
            cohort: serde_json::to_string(&cohort).unwrap_or_else(|_| "[]".into()),
            exposed_day: today,
            task_day: task.then_some(today),
        })
        .collect();
    drop(tracks);
    drop(adoption);
    let deltas: Vec<AggregateDelta> = cells
        .into_iter()
        .map(|((rollout, wave, arm, metric), m)| AggregateDelta {
            rollout: rollout.to_owned(),
            wave,
            arm: arm.into(),
            metric: metric.to_owned(),
            n: m.n,
            sum: m.sum,
            sumsq: m.sumsq,
        })
        .collect();
    let sketches: Vec<SketchDelta> = sketches
        .into_iter()
        .map(|((rollout, wave, arm), sk)| SketchDelta {
            rollout: rollout.to_owned(),
            wave,
            arm: arm.into(),
            metric: "latency_ms".into(),
            counts: sk.counts().clone(),
        })
        .collect();
    // Freed while still in cache, and not held while the commit is awaited.
    let accepted = batch.events.len();
    drop(targets);
    drop((parsed, batch, live, snap));
    if !deltas.is_empty() || !adoption_rows.is_empty() {
        state.store.add_aggregates(&deltas, &sketches, &adoption_rows, state.clock.now()).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": accepted, "counted": counted, "stale": stale})),
    )
        .into_response())
}

/// Notes a user of a tracked rollout: an event for its new variant from a context that names a
/// user (`targetingKey`, else `sessionId`). The user's cohort is their values of the plan's
/// cohort attributes (strings as they are, numbers and booleans as written, anything else
/// `(none)`); an outcome carrying the key task's metric above 0 marks the task done.
fn note_adoption<'a>(track: &'a AdoptionTrack, e: &'a Event, users: &mut AdoptionUsers<'a>) {
    if e.variant != track.new_variant {
        return;
    }
    let user = ["targetingKey", "sessionId"]
        .iter()
        .find_map(|k| e.context.get(*k).and_then(Value::as_str).filter(|u| !u.is_empty()));
    let Some(user) = user else { return };
    let task = e.kind == "outcome" && e.metrics.get(&track.key_task).is_some_and(|v| *v > 0.0);
    let cohort = || {
        track
            .cohorts
            .iter()
            .map(|a| match e.context.get(a) {
                Some(Value::String(s)) if !s.is_empty() => Cow::Borrowed(s.as_str()),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => Cow::Owned(v.to_string()),
                _ => Cow::Borrowed(wavegate_rollout::adoption::NO_VALUE),
            })
            .collect()
    };
    users
        .entry((track.rollout.as_str(), user))
        .and_modify(|u| {
            u.0 = cohort();
            u.1 |= task;
        })
        .or_insert_with(|| (cohort(), task));
}
