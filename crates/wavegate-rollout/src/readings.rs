//! Windowed judging of Prometheus guardrails: one noisy scrape must not roll a rollout back.
//!
//! A guardrail tolerates `failure_limit` bad readings (default 0: the first bad reading acts,
//! as it did before the field existed), counted `consecutive`ly (default: a good reading starts
//! the count again) or in `total` since the wave began (Argo's `failureLimit` over an analysis
//! run). Its readings come one of two ways, and the verdict says which ([`Mode`]):
//!
//! - **instant** (default): one instant query per tick. The bad readings counted so far live
//!   in the rollout's record ([`Tally`], kept per guardrail for the span that began at the
//!   wave's start, so a promotion or a resume starts afresh and a restart forgets nothing).
//! - **range** (`range_step`): each tick, range queries from the wave's start to now, one
//!   reading per step, judged whole; no state is kept, since Prometheus keeps the history.
//!
//! A tolerated bad reading is `inconclusive`: it holds promotion but does not act. A query
//! error or an empty result neither counts nor starts the count again (the guardrail's
//! `silent` limit is what acts on a source that stays quiet).
//!
//! **Boundary:** pure, like the rest of the crate: readings and the stored tally come in, a
//! verdict with the readings it used and the next tally go out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::{FailureCount, GuardrailSpec};
use crate::stats::{Moments, Reading, Verdict, VerdictReport, harm, judge_reading};

/// The most readings a verdict quotes (the counted bad ones, then the latest); the rest are
/// counted in [`Window::omitted`].
pub const MAX_QUOTED: usize = 20;

/// Which readings judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One instant reading per tick, bad ones counted across ticks.
    Instant,
    /// A range query over the wave so far, one reading per step.
    Range,
}

/// One reading as judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedReading {
    /// When Prometheus read it (a range's step time, an instant query's evaluation time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// The treatment's value.
    pub treatment: f64,
    /// The control's value (comparisons against control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<f64>,
    /// Harm in the guardrail's harmful direction.
    pub harm: f64,
    /// Whether the harm is above the tolerance (or the bound).
    pub bad: bool,
}

/// A range query's span and steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeReading {
    /// The range's start (the wave's start).
    pub start: DateTime<Utc>,
    /// Its end (the tick's time).
    pub end: DateTime<Utc>,
    /// The step used, in seconds (the plan's `range_step`, widened to stay within what
    /// Prometheus answers).
    pub step_secs: u64,
    /// The steps with a treatment value, oldest first.
    pub steps: Vec<RangeStep>,
}

/// One step of a range reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeStep {
    /// The step's time.
    pub at: DateTime<Utc>,
    /// The treatment's value.
    pub treatment: f64,
    /// The control's value at the same step, if asked and present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<f64>,
}

/// What a Prometheus verdict was judged on; stored with the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Instant readings per tick, or a range over the wave.
    pub mode: Mode,
    /// Bad readings tolerated before acting.
    pub failure_limit: u32,
    /// How they count.
    pub failures: FailureCount,
    /// The count held against the limit: bad readings in a row (the longest run, for a
    /// range) or in total.
    pub bad: u32,
    /// The readings behind `bad`, then the latest, oldest first (at most [`MAX_QUOTED`]).
    pub readings: Vec<JudgedReading>,
    /// Readings behind `bad` left out of `readings`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: u32,
    /// For a range: its start, end and step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RangeSpan>,
    /// For a range: readings judged (steps where both arms had a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A range's bounds, as judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeSpan {
    /// Start (the wave's start).
    pub start: DateTime<Utc>,
    /// End (the tick).
    pub end: DateTime<Utc>,
    /// Step in seconds.
    pub step_secs: u64,
}

/// A guardrail's bad instant readings counted so far; part of the stored rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// The wave start this count belongs to (`Rollout::wave_started_at`): a tally from
    /// before a promotion or a resume is void.
    pub since: DateTime<Utc>,
    /// Bad readings counted.
    pub bad: u32,
    /// The latest of them (at most [`MAX_QUOTED`]), oldest first.
    pub recent: Vec<JudgedReading>,
}

/// Judges a Prometheus guardrail's reading this tick. `tally` is the stored count of its bad
/// instant readings, `since` the current wave's start (a tally for another start is void).
/// Returns the verdict and the tally to store (None: nothing counted).
pub fn judge(
    g: &GuardrailSpec,
    reading: Option<&Reading>,
    tally: Option<&Tally>,
    since: DateTime<Utc>,
) -> (VerdictReport, Option<Tally>) {
    let tally = tally.filter(|t| t.since == since);
    match reading.and_then(|r| r.range.as_ref().map(|range| (r, range))) {
        Some((r, range)) if r.error.is_none() => (judge_range(g, range), None),
        _ => judge_instant(g, reading, tally, since),
    }
}

fn noun(failures: FailureCount) -> &'static str {
    match failures {
        FailureCount::Consecutive => "in a row",
        FailureCount::Total => "in this wave",
    }
}

fn harms(readings: &[JudgedReading]) -> String {
    readings.iter().map(|r| format!("{:.4}", r.harm)).collect::<Vec<_>>().join(", ")
}

fn quote(
    mut counted: Vec<JudgedReading>,
    latest: Option<&JudgedReading>,
) -> (Vec<JudgedReading>, u32) {
    if let Some(l) = latest
        && counted.last() != Some(l)
    {
        counted.push(l.clone());
    }
    let omitted = counted.len().saturating_sub(MAX_QUOTED);
    counted.drain(..omitted);
    (counted, omitted as u32)
}

fn judge_instant(
    g: &GuardrailSpec,
    reading: Option<&Reading>,
    tally: Option<&Tally>,
    since: DateTime<Utc>,
) -> (VerdictReport, Option<Tally>) {
    let (limit, failures) = (g.failure_limit(), g.failures());
    let mut report = judge_reading(g, reading);
    let mut window = Window {
        mode: Mode::Instant,
        failure_limit: limit,
        failures,
        bad: tally.map_or(0, |t| t.bad),
        readings: tally.map(|t| t.recent.clone()).unwrap_or_default(),
        omitted: 0,
        range: None,
        judged: None,
    };
    let (Some(r), Some(h)) = (reading, report.estimate) else {
        // Nothing to count: the tally stands.
        report.readings = Some(window);
        return (report, tally.cloned());
    };
    let latest = JudgedReading {
        at: r.at,
        treatment: report.treatment.sum,
        control: (report.control.n > 0.0).then_some(report.control.sum),
        harm: h,
        bad: report.verdict == Verdict::Fail,
    };
    let next = if latest.bad {
        let mut recent = tally.map(|t| t.recent.clone()).unwrap_or_default();
        recent.push(latest.clone());
        let cut = recent.len().saturating_sub(MAX_QUOTED);
        recent.drain(..cut);
        Some(Tally { since, bad: tally.map_or(0, |t| t.bad) + 1, recent })
    } else if failures == FailureCount::Consecutive {
        None
    } else {
        tally.cloned()
    };
    window.bad = next.as_ref().map_or(0, |t| t.bad);
    let counted = next.as_ref().map(|t| t.recent.clone()).unwrap_or_default();
    let hidden = window.bad.saturating_sub(counted.len() as u32);
    (window.readings, window.omitted) = quote(counted, Some(&latest));
    window.omitted += hidden;
    if latest.bad && window.bad > limit && limit > 0 {
        let shown: Vec<_> = window.readings.iter().filter(|r| r.bad).cloned().collect();
        report.explanation = format!(
            "{} bad readings {} > failure_limit {limit} (instant readings, one per tick): harm {} > {}",
            window.bad,
            noun(failures),
            harms(&shown),
            threshold(g),
        );
    } else if latest.bad && window.bad <= limit {
        report.verdict = Verdict::Inconclusive;
        report.explanation = format!(
            "bad reading {} of {limit} tolerated {} (failure_limit {limit}, instant readings): harm {h:.4} > {}",
            window.bad,
            noun(failures),
            threshold(g),
        );
    } else if !latest.bad && window.bad > 0 {
        report.explanation.push_str(&format!(
            "; {} of {limit} bad readings tolerated {}",
            window.bad,
            noun(failures)
        ));
    }
    report.readings = Some(window);
    (report, next)
}

/// What a reading's harm is held to: the bound's 0 or the tolerance.
fn threshold(g: &GuardrailSpec) -> f64 {
    if g.comparison == crate::plan::Comparison::Bound { 0.0 } else { g.tolerance }
}

fn judge_range(g: &GuardrailSpec, range: &RangeReading) -> VerdictReport {
    let (limit, failures) = (g.failure_limit(), g.failures());
    let mut report = judge_reading(g, None);
    let span = RangeSpan { start: range.start, end: range.end, step_secs: range.step_secs };
    let described = format!(
        "range over the wave since {} (step {}s)",
        range.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        range.step_secs
    );
    let mut judged = Vec::new();
    let mut unjudged = None;
    let (mut t, mut c) = (Moments::default(), Moments::default());
    for s in &range.steps {
        if !s.treatment.is_finite() {
            continue;
        }
        match harm(g, s.treatment, s.control) {
            Ok((h, threshold)) => {
                t.push(s.treatment);
                if let Some(cv) =
                    s.control.filter(|_| g.comparison != crate::plan::Comparison::Bound)
                {
                    c.push(cv);
                }
                judged.push(JudgedReading {
                    at: Some(s.at),
                    treatment: s.treatment,
                    control: s.control,
                    harm: h,
                    bad: h > threshold,
                });
            }
            Err(why) => unjudged = Some(why),
        }
    }
    report.treatment = t;
    report.control = c;
    let mut window = Window {
        mode: Mode::Range,
        failure_limit: limit,
        failures,
        bad: 0,
        readings: Vec::new(),
        omitted: 0,
        range: Some(span),
        judged: Some(judged.len() as u32),
    };
    let Some(latest) = judged.last().cloned() else {
        report.explanation = match unjudged {
            Some(why) => format!("{described}: no reading could be judged: {why}"),
            None => format!("{described}: the query returned no data"),
        };
        report.readings = Some(window);
        return report;
    };
    // The readings held against the limit: the longest run of bad ones, or all bad ones.
    let counted: Vec<JudgedReading> = match failures {
        FailureCount::Total => judged.iter().filter(|r| r.bad).cloned().collect(),
        FailureCount::Consecutive => {
            let (mut best, mut run): (&[JudgedReading], usize) = (&[], 0);
            for (i, r) in judged.iter().enumerate() {
                run = if r.bad { run + 1 } else { 0 };
                if run > best.len() {
                    best = &judged[i + 1 - run..=i];
                }
            }
            best.to_vec()
        }
    };
    window.bad = counted.len() as u32;
    let worst = counted.last().cloned();
    (window.readings, window.omitted) = quote(counted, Some(&latest));
    let shown = |w: &Window| -> Vec<JudgedReading> {
        w.readings.iter().filter(|r| r.bad).cloned().collect()
    };
    let n = judged.len();
    if window.bad > limit {
        let worst = worst.unwrap_or(latest);
        report.verdict = Verdict::Fail;
        report.estimate = Some(worst.harm);
        report.explanation = format!(
            "{described}, {n} readings: {} bad readings {} > failure_limit {limit}: harm {} > {}",
            window.bad,
            match failures {
                FailureCount::Consecutive => "in a row",
                FailureCount::Total => "in all",
            },
            harms(&shown(&window)),
            threshold(g),
        );
    } else {
        // The latest reading is bad but tolerated (the verdict stays inconclusive), or good.
        let (cmp, tolerated) = if latest.bad { (">", " tolerated") } else { ("≤", "") };
        if !latest.bad {
            report.verdict = Verdict::Pass;
        }
        report.estimate = Some(latest.harm);
        report.explanation = format!(
            "{described}, {n} readings: the latest shows harm {:.4} {cmp} {}; {} bad {}{tolerated} (failure_limit {limit})",
            latest.harm,
            threshold(g),
            window.bad,
            noun(failures),
        );
    }
    report.lower = report.estimate;
    report.upper = report.estimate;
    report.readings = Some(window);
    report
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn guardrail(extra: serde_json::Value) -> GuardrailSpec {
        let mut g = serde_json::json!({
            "name": "errors", "source": "prometheus", "query": "q", "comparison": "bound",
            "bound": 0.05, "action": "rollback"
        });
        g.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(g).unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn instant(v: f64) -> Reading {
        Reading { treatment: Some(v), ..Reading::default() }
    }

    /// Feeds instant readings tick by tick, carrying the tally as the machine does; the
    /// verdicts in order.
    fn ticks(g: &GuardrailSpec, values: &[f64]) -> Vec<&'static str> {
        let mut tally = None;
        values
            .iter()
            .map(|v| {
                let (rep, next) = judge(g, Some(&instant(*v)), tally.as_ref(), at(0));
                tally = next;
                rep.verdict.as_str()
            })
            .collect()
    }

    #[test]
    fn by_default_the_first_bad_reading_fails() {
        let g = guardrail(serde_json::json!({}));
        assert_eq!(ticks(&g, &[0.01, 0.2]), ["pass", "fail"]);
        let (rep, _) = judge(&g, Some(&instant(0.2)), None, at(0));
        assert_eq!(rep.explanation, "reading shows harm 0.1500 > 0");
        let w = rep.readings.unwrap();
        assert_eq!((w.mode, w.failure_limit, w.bad, w.readings.len()), (Mode::Instant, 0, 1, 1));
    }

    #[test]
    fn a_failure_limit_tolerates_noise_and_acts_on_a_run() {
        let g = guardrail(serde_json::json!({"failure_limit": 1}));
        assert_eq!(
            ticks(&g, &[0.2, 0.01, 0.2, 0.01, 0.2, 0.2]),
            ["inconclusive", "pass", "inconclusive", "pass", "inconclusive", "fail"]
        );
        let total = guardrail(serde_json::json!({"failure_limit": 1, "failures": "total"}));
        assert_eq!(ticks(&total, &[0.2, 0.01, 0.2]), ["inconclusive", "pass", "fail"]);
    }

    #[test]
    fn errors_neither_count_nor_reset() {
        let g = guardrail(serde_json::json!({"failure_limit": 1}));
        let (_, tally) = judge(&g, Some(&instant(0.2)), None, at(0));
        let err = Reading { error: Some("boom".into()), ..Reading::default() };
        let (rep, tally) = judge(&g, Some(&err), tally.as_ref(), at(0));
        assert_eq!(rep.verdict, Verdict::Inconclusive);
        let (rep, _) = judge(&g, Some(&instant(0.3)), tally.as_ref(), at(0));
        assert_eq!(rep.verdict, Verdict::Fail);
        assert_eq!(
            rep.explanation,
            "2 bad readings in a row > failure_limit 1 (instant readings, one per tick): harm 0.1500, 0.2500 > 0"
        );
    }

    #[test]
    fn a_tally_from_another_wave_start_is_void() {
        let g = guardrail(serde_json::json!({"failure_limit": 1}));
        let (_, tally) = judge(&g, Some(&instant(0.2)), None, at(0));
        let (rep, _) = judge(&g, Some(&instant(0.2)), tally.as_ref(), at(60));
        assert_eq!(rep.verdict, Verdict::Inconclusive, "{}", rep.explanation);
    }

    fn range(values: &[f64]) -> Reading {
        let steps: Vec<RangeStep> = values
            .iter()
            .enumerate()
            .map(|(i, v)| RangeStep { at: at(30 * i as i64), treatment: *v, control: None })
            .collect();
        Reading {
            treatment: values.last().copied(),
            range: Some(RangeReading {
                start: at(0),
                end: at(30 * values.len() as i64),
                step_secs: 30,
                steps,
            }),
            ..Reading::default()
        }
    }

    #[test]
    fn a_range_is_judged_whole() {
        let g = guardrail(serde_json::json!({"failure_limit": 1, "range_step": "30s"}));
        let verdict = |v: &[f64]| judge(&g, Some(&range(v)), None, at(0)).0;
        assert_eq!(verdict(&[0.01, 0.2, 0.01, 0.01]).verdict, Verdict::Pass);
        assert_eq!(verdict(&[0.01, 0.01, 0.2]).verdict, Verdict::Inconclusive);
        let fail = verdict(&[0.01, 0.2, 0.2, 0.01]);
        assert_eq!(fail.verdict, Verdict::Fail);
        assert_eq!(
            fail.explanation,
            "range over the wave since 2023-11-14T22:13:20Z (step 30s), 4 readings: 2 bad readings in a row > failure_limit 1: harm 0.1500, 0.1500 > 0"
        );
        let w = fail.readings.unwrap();
        assert_eq!((w.mode, w.bad, w.judged, w.readings.len()), (Mode::Range, 2, Some(4), 3));
        assert_eq!(verdict(&[]).verdict, Verdict::Inconclusive);
        let total = guardrail(
            serde_json::json!({"failure_limit": 1, "failures": "total", "range_step": "30s"}),
        );
        let (rep, _) = judge(&total, Some(&range(&[0.2, 0.01, 0.2, 0.01])), None, at(0));
        assert_eq!(rep.verdict, Verdict::Fail);
    }
}
