//! Arm attribution and moment folding for reported events (DESIGN "Arms"): an event counts only
//! when the rollout's own rule serves its context, in the treatment arm when that rule serves
//! the new variant and the control arm when it serves the control variant. An event whose
//! reported variant is not what the rule serves the context now (an answer from before a wave
//! change) is stale and not counted, so the arms stay unbiased. [`Tally`] folds what counts
//! into per-cell sufficient statistics and latency sketches, ready to be added to the store.

use std::collections::BTreeMap;

use crate::sketch::Sketch;
use crate::stats::Moments;

/// Metric name of exposure counts.
pub const EXPOSURE: &str = "exposure";
/// Metric name of the outcome's error flag (a proportion).
pub const ERROR: &str = "error";
/// Metric name of the outcome's latency (also sketched).
pub const LATENCY_MS: &str = "latency_ms";

/// Whether `name` is a metric name events may not use for their own metrics.
pub fn is_reserved_metric(name: &str) -> bool {
    matches!(name, EXPOSURE | ERROR | LATENCY_MS)
}

/// A rollout's arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arm {
    /// Served the new variant by the rollout's rule.
    Treatment,
    /// Served the control variant by the rollout's rule.
    Control,
}

impl Arm {
    /// `treatment` or `control`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Treatment => "treatment",
            Arm::Control => "control",
        }
    }
}

/// Where an event served by a rollout's rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribution {
    /// In this arm.
    Arm(Arm),
    /// Nowhere: the rule serves the context another variant now (the event is stale).
    Stale,
    /// Nowhere: the rule served neither the new nor the control variant.
    Neither,
}

/// Attributes an event that reports `reported` for a context the rollout's rule serves
/// `served` now, for a rollout of `new_variant` against `control_variant`.
pub fn attribute(
    new_variant: &str,
    control_variant: &str,
    served: &str,
    reported: &str,
) -> Attribution {
    if served != reported {
        Attribution::Stale
    } else if reported == new_variant {
        Attribution::Arm(Arm::Treatment)
    } else if reported == control_variant {
        Attribution::Arm(Arm::Control)
    } else {
        Attribution::Neither
    }
}

/// How far a client's clock may be from the server's when an event is placed by its `at`
/// alone, by default (`serve --event-clock-skew`): events evaluated within this much of a
/// wave's start are `unattributed`.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(5);

/// Where the configuration of a rollout's current wave came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveOrigin {
    /// The flag version the wave's exposure was written as (`None`: not recorded).
    pub since_version: Option<i64>,
    /// When it was written.
    pub exposed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The flag version this server evaluates now (`None`: unknown).
    pub served_version: Option<i64>,
    /// How far clients' clocks may be off ([`CLOCK_SKEW`] unless configured).
    pub skew: chrono::Duration,
}

/// Whether an event belongs to the rollout's current wave (DESIGN "Pinned semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Produced by the current wave's configuration (or nothing says otherwise): it counts.
    Current,
    /// Produced by an earlier configuration: not counted.
    Stale,
    /// Cannot be placed (a version this server has not loaded yet, or an evaluation time
    /// within the clock-skew allowance of the wave's start): not counted.
    Unattributed,
}

/// Places an event evaluated under flag `version` at `at` (as the event says) against the
/// rollout's current wave: by version when it has one, else by time with the wave's clock-skew
/// allowance, else
/// (neither) it counts on receipt.
pub fn timing(
    version: Option<i64>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    wave: &WaveOrigin,
) -> Timing {
    if let Some(v) = version {
        return match wave.since_version {
            Some(since) if v < since => Timing::Stale,
            _ if wave.served_version.is_some_and(|served| v > served) => Timing::Unattributed,
            _ => Timing::Current,
        };
    }
    match (at, wave.exposed_at) {
        (Some(at), Some(start)) if at < start - wave.skew => Timing::Stale,
        (Some(at), Some(start)) if at <= start + wave.skew => Timing::Unattributed,
        _ => Timing::Current,
    }
}

/// (rollout, wave, arm, metric).
type Cell<'a> = (&'a str, i64, Arm, &'a str);

/// Sufficient statistics and latency sketches of counted events, by rollout, wave and arm.
/// Keys borrow from the batch and the routing table; nothing is owned until the caller turns
/// the cells into store rows.
#[derive(Debug, Default)]
pub struct Tally<'a> {
    cells: BTreeMap<Cell<'a>, Moments>,
    sketches: BTreeMap<(&'a str, i64, Arm), Sketch>,
    counted: usize,
}

impl<'a> Tally<'a> {
    /// Counts an exposure.
    pub fn exposure(&mut self, rollout: &'a str, wave: i64, arm: Arm) {
        self.counted += 1;
        self.push(rollout, wave, arm, EXPOSURE, 1.0);
    }

    /// Counts an outcome: its error flag, its latency (also sketched) and its named metrics.
    pub fn outcome(
        &mut self,
        (rollout, wave, arm): (&'a str, i64, Arm),
        error: Option<bool>,
        latency_ms: Option<f64>,
        metrics: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        self.counted += 1;
        if let Some(err) = error {
            self.push(rollout, wave, arm, ERROR, if err { 1.0 } else { 0.0 });
        }
        if let Some(l) = latency_ms {
            self.push(rollout, wave, arm, LATENCY_MS, l);
            self.sketches.entry((rollout, wave, arm)).or_default().add(l);
        }
        for (name, v) in metrics {
            self.push(rollout, wave, arm, name, v);
        }
    }

    fn push(&mut self, rollout: &'a str, wave: i64, arm: Arm, metric: &'a str, x: f64) {
        self.cells.entry((rollout, wave, arm, metric)).or_default().push(x);
    }

    /// How many events were counted.
    pub fn counted(&self) -> usize {
        self.counted
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cells: ((rollout, wave, arm, metric), moments), in key order.
    pub fn cells(&self) -> impl Iterator<Item = (Cell<'a>, &Moments)> + '_ {
        self.cells.iter().map(|(k, m)| (*k, m))
    }

    /// The latency sketches: ((rollout, wave, arm), sketch), in key order.
    pub fn sketches(&self) -> impl Iterator<Item = ((&'a str, i64, Arm), &Sketch)> + '_ {
        self.sketches.iter().map(|(k, s)| (*k, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_placed_by_version_then_time_then_receipt() {
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z").unwrap().to_utc();
        let wave = WaveOrigin {
            since_version: Some(7),
            exposed_at: Some(start),
            served_version: Some(8),
            skew: CLOCK_SKEW,
        };
        let s = chrono::Duration::seconds;
        assert_eq!(timing(Some(6), None, &wave), Timing::Stale);
        // A version wins over the time: a late stamp of the current version still counts.
        assert_eq!(timing(Some(7), Some(start - s(60)), &wave), Timing::Current);
        assert_eq!(timing(Some(8), None, &wave), Timing::Current);
        assert_eq!(timing(Some(9), None, &wave), Timing::Unattributed);
        assert_eq!(timing(None, Some(start - s(6)), &wave), Timing::Stale);
        assert_eq!(timing(None, Some(start - s(5)), &wave), Timing::Unattributed);
        assert_eq!(timing(None, Some(start + s(5)), &wave), Timing::Unattributed);
        assert_eq!(timing(None, Some(start + s(6)), &wave), Timing::Current);
        assert_eq!(timing(None, None, &wave), Timing::Current);
        // A rollout stored before origins were kept counts on receipt.
        let old = WaveOrigin {
            since_version: None,
            exposed_at: None,
            served_version: Some(8),
            skew: s(5),
        };
        assert_eq!(timing(Some(1), Some(start - s(600)), &old), Timing::Current);
        assert_eq!(timing(Some(9), None, &old), Timing::Unattributed);
    }

    #[test]
    fn events_count_in_the_arm_the_rule_serves_and_stale_answers_do_not() {
        assert_eq!(attribute("on", "off", "on", "on"), Attribution::Arm(Arm::Treatment));
        assert_eq!(attribute("on", "off", "off", "off"), Attribution::Arm(Arm::Control));
        // Evaluated before a wave change: the rule serves "on" now, the event says "off".
        assert_eq!(attribute("on", "off", "on", "off"), Attribution::Stale);
        assert_eq!(attribute("on", "off", "off", "on"), Attribution::Stale);
        assert_eq!(attribute("on", "off", "beta", "beta"), Attribution::Neither);
    }

    #[test]
    fn the_tally_folds_moments_and_sketches_per_cell() {
        let metrics = [("conversion".to_owned(), 1.0)];
        let mut t = Tally::default();
        t.exposure("ro_1", 0, Arm::Treatment);
        t.exposure("ro_1", 0, Arm::Treatment);
        t.exposure("ro_1", 0, Arm::Control);
        t.outcome(
            ("ro_1", 0, Arm::Treatment),
            Some(true),
            Some(120.0),
            metrics.iter().map(|(k, v)| (k.as_str(), *v)),
        );
        t.outcome(("ro_1", 0, Arm::Treatment), Some(false), Some(80.0), []);
        assert_eq!(t.counted(), 5);
        let cells: Vec<_> = t.cells().map(|(k, m)| (k, m.n, m.sum)).collect();
        assert_eq!(
            cells,
            [
                (("ro_1", 0, Arm::Treatment, "conversion"), 1.0, 1.0),
                (("ro_1", 0, Arm::Treatment, "error"), 2.0, 1.0),
                (("ro_1", 0, Arm::Treatment, "exposure"), 2.0, 2.0),
                (("ro_1", 0, Arm::Treatment, "latency_ms"), 2.0, 200.0),
                (("ro_1", 0, Arm::Control, "exposure"), 1.0, 1.0),
            ]
        );
        let sketches: Vec<_> = t.sketches().map(|(k, s)| (k, s.count())).collect();
        assert_eq!(sketches, [(("ro_1", 0, Arm::Treatment), 2)]);
    }

    #[test]
    fn reserved_metric_names() {
        assert!(["exposure", "error", "latency_ms"].iter().all(|m| is_reserved_metric(m)));
        assert!(!is_reserved_metric("conversion"));
    }
}
