//! When an answer can change with the clock alone.
//!
//! A rule that compares `currentTime` with a date (`date_after`, `date_before`) changes its
//! answer only when the clock crosses that date; any other test of `currentTime` (a regex, a
//! string comparison) may change it at any moment. Caches keyed on the clock (the bulk OFREP
//! ETag) use [`TimeDependence::epoch`] so that they stay valid between thresholds.

use chrono::{DateTime, Utc};

/// How answers depend on the clock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimeDependence {
    /// They do not.
    #[default]
    Never,
    /// They can change only when the clock reaches one of these instants (sorted, distinct).
    At(Vec<DateTime<Utc>>),
    /// They can change at any moment.
    Always,
}

impl TimeDependence {
    /// Depending on the clock as `self` or as `other`.
    pub fn merge(self, other: TimeDependence) -> TimeDependence {
        match (self, other) {
            (TimeDependence::Always, _) | (_, TimeDependence::Always) => TimeDependence::Always,
            (TimeDependence::Never, x) | (x, TimeDependence::Never) => x,
            (TimeDependence::At(mut a), TimeDependence::At(b)) => {
                a.extend(b);
                a.sort_unstable();
                a.dedup();
                TimeDependence::At(a)
            }
        }
    }

    /// Whether answers depend on the clock at all.
    pub fn reads_clock(&self) -> bool {
        *self != TimeDependence::Never
    }

    /// What distinguishes `now` from other moments as far as the answers go: nothing (`None`)
    /// when they never depend on the clock; how many thresholds have been reached (`now` at or
    /// after them) when they change only at thresholds; `now` itself (milliseconds) otherwise.
    /// Two moments with the same epoch get the same answers.
    pub fn epoch(&self, now: DateTime<Utc>) -> Option<String> {
        match self {
            TimeDependence::Never => None,
            TimeDependence::At(at) => {
                let reached = at.partition_point(|t| *t <= now);
                Some(format!("{reached}/{}", at.len()))
            }
            TimeDependence::Always => Some(now.timestamp_millis().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, h, 0, 0).unwrap()
    }

    #[test]
    fn epochs_change_only_at_thresholds() {
        let d = TimeDependence::At(vec![t(10)]).merge(TimeDependence::At(vec![t(12), t(10)]));
        assert_eq!(d, TimeDependence::At(vec![t(10), t(12)]));
        assert_eq!(d.epoch(t(9)), d.epoch(t(10) - chrono::Duration::milliseconds(1)));
        assert_ne!(d.epoch(t(9)), d.epoch(t(10)), "the threshold itself starts a new epoch");
        assert_eq!(d.epoch(t(10)), d.epoch(t(11)));
        assert_eq!(d.epoch(t(13)).as_deref(), Some("2/2"));
        assert_eq!(TimeDependence::Never.epoch(t(9)), None);
        let always = d.merge(TimeDependence::Always);
        assert_ne!(always.epoch(t(9)), always.epoch(t(9) + chrono::Duration::milliseconds(1)));
        assert!(!TimeDependence::Never.reads_clock() && always.reads_clock());
    }
}
