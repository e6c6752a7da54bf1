//! Spans into the arms (`POST /v1/traces`): an application instrumented with OpenFeature's
//! tracing hook puts an evaluation event on the active span at every flag evaluation; for a
//! flag under a live rollout, that span becomes an exposure of the user it names and an
//! outcome (its status is the `error` outcome, its duration `latency_ms`, and the plan's `otel`
//! section may name further metrics and which spans count). The events then go through the
//! same placement and attribution as `POST /api/v1/events` ([`crate::service::events`]): by
//! version, else by the evaluation event's time, and never in an arm when the span cannot
//! place its user (no user id, or an earlier rule reads context a span does not carry).
//!
//! **Invariant:** the answer is sent after the counted events are committed, as for events.

use std::collections::HashMap;

use serde_json::json;
use wavegate_core::wire::Event;
use wavegate_protocols::otlp::{Attributes, Scalar, Span, attribute};
use wavegate_rollout::otel::{self as conv, Inherit, MetricSource, OtelSpec, metric_source};

use crate::service::ServiceResult;
use crate::service::events::{Checked, Reporter, count, validate};
use crate::state::{AppState, LiveRollout};

/// What became of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Spans in the export.
    pub spans: u64,
    /// Spans carrying an evaluation of a flag under a live rollout (or inheriting one).
    pub evaluated: u64,
    /// Of those, spans that named no user (no `feature_flag.context.id` nor the plan's
    /// `context_attribute`): they count nowhere.
    pub without_user: u64,
    /// Events made of the spans that counted in an arm.
    pub counted: u64,
    /// Events produced by an earlier wave's configuration.
    pub stale: u64,
    /// Events that could not be placed in a wave or an arm (see the events API), plus the
    /// spans without a user.
    pub unattributed: u64,
}

impl Received {
    /// The warning an OTLP answer carries when some spans did not count (empty otherwise).
    pub fn warning(&self) -> String {
        if self.unattributed == 0 && self.stale == 0 {
            return String::new();
        }
        format!(
            "wavegate: {} of {} spans carried a flag evaluation under a live rollout; {} events \
             counted, {} stale (an earlier wave), {} unattributed ({} spans without \
             feature_flag.context.id)",
            self.evaluated,
            self.spans,
            self.counted,
            self.stale,
            self.unattributed,
            self.without_user
        )
    }
}

/// One evaluation a span reports.
struct Evaluation<'a> {
    ro: &'a LiveRollout,
    flag: &'a str,
    variant: &'a str,
    user: Option<String>,
    at: Option<String>,
    version: Option<i64>,
}

fn text(attrs: &Attributes, key: &str) -> Option<String> {
    attribute(attrs, key).map(Scalar::as_text).filter(|t| !t.is_empty())
}

fn rfc3339(ns: u64) -> Option<String> {
    let secs = i64::try_from(ns / 1_000_000_000).ok()?;
    let t = chrono::DateTime::from_timestamp(secs, (ns % 1_000_000_000) as u32)?;
    (ns > 0).then(|| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

/// The evaluations of flags under a live rollout that `span`'s events report.
fn evaluations<'a>(span: &'a Span, live: &HashMap<&str, &'a LiveRollout>) -> Vec<Evaluation<'a>> {
    let mut out = Vec::new();
    for e in &span.events {
        let variant_key = match e.name.as_str() {
            conv::EVALUATION_EVENT => conv::VARIANT,
            conv::OLD_EVALUATION_EVENT => conv::OLD_VARIANT,
            _ => continue,
        };
        let Some(Scalar::Str(flag)) = attribute(&e.attributes, conv::KEY) else { continue };
        let Some(ro) = live.get(flag.as_str()) else { continue };
        // An evaluation that failed names no variant: nothing was served to count.
        let Some(Scalar::Str(variant)) = attribute(&e.attributes, variant_key) else { continue };
        let context_attribute = ro.otel.as_ref().and_then(|o| o.context_attribute.as_deref());
        let user = text(&e.attributes, conv::CONTEXT_ID).or_else(|| {
            let a = context_attribute?;
            text(&e.attributes, a)
                .or_else(|| text(&span.attributes, a))
                .or_else(|| text(&span.resource, a))
        });
        let version = match attribute(&e.attributes, conv::VERSION) {
            Some(Scalar::Int(v)) => Some(*v),
            Some(Scalar::Str(v)) => v.parse().ok(),
            _ => None,
        };
        out.push(Evaluation { ro, flag, variant, user, at: rfc3339(e.time_unix_nano), version });
    }
    out
}

/// Whether `span` counts as an outcome under `otel`.
fn counts(span: &Span, otel: Option<&OtelSpec>) -> bool {
    let Some(o) = otel else { return true };
    (o.services.is_empty() || span.service().is_some_and(|s| o.services.iter().any(|x| x == s)))
        && (o.span_names.is_empty() || o.span_names.contains(&span.name))
}

/// The events `span` makes for evaluation `ev`: its exposure (`expose`) and its outcome.
fn events_of(span: &Span, ev: &Evaluation<'_>, user: &str, expose: bool) -> Vec<Event> {
    let context = json!({ "targetingKey": user });
    let stamp = |mut e: Event| {
        e.at = ev.at.clone();
        e.version = ev.version;
        e
    };
    let mut out = Vec::with_capacity(2);
    if expose {
        out.push(stamp(Event::exposure(ev.flag, ev.variant, context.clone())));
    }
    let otel = ev.ro.otel.as_deref();
    if counts(span, otel) {
        let mut o = stamp(Event::outcome(ev.flag, ev.variant, context));
        o.error = Some(span.error);
        o.latency_ms = Some(span.duration_ms());
        for (name, source) in otel.map(|o| &o.metrics).into_iter().flatten() {
            let value = match metric_source(source) {
                MetricSource::Attribute(a) => {
                    attribute(&span.attributes, a).and_then(Scalar::as_f64)
                }
                MetricSource::Events(n) => {
                    Some(span.events.iter().filter(|e| e.name == n).count() as f64)
                }
            };
            if let Some(v) = value {
                o.metrics.insert(name.clone(), v);
            }
        }
        out.push(o);
    }
    out
}

/// The events an export makes, validated and ready to count ([`Prepared::commit`]).
pub struct Prepared {
    got: Received,
    events: Vec<Event>,
    contexts: Vec<Checked>,
    refused: u64,
}

impl Prepared {
    /// How many exposure and outcome events the spans make: what the token's events-per-second
    /// budget is charged (spans without an evaluation of a live rollout's flag cost nothing).
    pub fn event_count(&self) -> usize {
        self.events.len() + self.refused as usize
    }

    /// Counts the events in the arms of `env`'s live rollouts as token `source`'s
    /// contributions, committed before it returns.
    pub async fn commit(
        self,
        state: &AppState,
        env: &str,
        source: &str,
    ) -> ServiceResult<Received> {
        let Prepared { mut got, events, contexts, refused } = self;
        let out = count(state, env, source, events, contexts, None, Reporter::Spans).await?;
        state.metrics.events_placed("otlp", "unattributed", got.without_user + refused);
        got.counted = out.counted;
        got.stale = out.stale;
        got.unattributed = out.unattributed + got.without_user + refused;
        Ok(got)
    }
}

/// Counts `spans` exported for environment `env` (already authorised) in the arms of its live
/// rollouts as token `source`'s contributions, committed before it returns ([`prepare`], then
/// [`Prepared::commit`]).
pub async fn ingest(
    state: &AppState,
    env: &str,
    source: &str,
    spans: Vec<Span>,
) -> ServiceResult<Received> {
    prepare(state, env, &spans).commit(state, env, source).await
}

/// Turns `spans` exported for environment `env` into the exposure and outcome events of its
/// live rollouts' flags (validated as the events API validates them).
pub fn prepare(state: &AppState, env: &str, spans: &[Span]) -> Prepared {
    let mut got = Received { spans: spans.len() as u64, ..Received::default() };
    let live_map = state.routing.live.load();
    let live: HashMap<&str, &LiveRollout> = live_map
        .iter()
        .filter(|((e, _), _)| e == env)
        .map(|((_, flag), ro)| (flag.as_str(), ro))
        .collect();
    if live.is_empty() {
        return Prepared { got, events: Vec::new(), contexts: Vec::new(), refused: 0 };
    }
    let found: Vec<Vec<Evaluation<'_>>> = spans.iter().map(|s| evaluations(s, &live)).collect();
    // Trace roots with evaluations, for spans that inherit theirs.
    let inherits =
        live.values().any(|ro| ro.otel.as_ref().is_some_and(|o| o.inherit == Inherit::Root));
    let roots: HashMap<&[u8], usize> = if inherits {
        spans
            .iter()
            .enumerate()
            .filter(|(i, s)| s.parent_span_id.is_empty() && !found[*i].is_empty())
            .map(|(i, s)| (s.trace_id.as_slice(), i))
            .collect()
    } else {
        HashMap::new()
    };
    let mut events = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let (own, list) = if !found[i].is_empty() {
            (true, &found[i])
        } else if let Some(&root) = roots.get(span.trace_id.as_slice()) {
            (false, &found[root])
        } else {
            continue;
        };
        let mut evaluated = false;
        let mut without_user = false;
        for ev in list {
            if !own && ev.ro.otel.as_ref().is_none_or(|o| o.inherit != Inherit::Root) {
                continue;
            }
            evaluated = true;
            match &ev.user {
                Some(user) => events.extend(events_of(span, ev, user, own)),
                None => without_user = true,
            }
        }
        got.evaluated += u64::from(evaluated);
        got.without_user += u64::from(without_user);
    }
    // Events the events API would refuse (an id too long, say) count nowhere.
    let mut kept = Vec::with_capacity(events.len());
    let mut contexts: Vec<Checked> = Vec::with_capacity(events.len());
    let mut refused = 0u64;
    for (i, e) in events.into_iter().enumerate() {
        match validate(i, &e) {
            Ok(c) => {
                kept.push(e);
                contexts.push(c);
            }
            Err(_) => refused += 1,
        }
    }
    Prepared { got, events: kept, contexts, refused }
}
