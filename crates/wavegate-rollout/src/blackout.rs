//! Blackout windows: absolute (`start`..`end`) or recurring (an RFC 5545 RRULE from a local
//! `dtstart` in a time zone, lasting `duration`). Inside one, a rollout only pauses or rolls back.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::Span;

/// A blackout window as written in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackoutSpec {
    /// Name shown when a promotion is held.
    pub name: String,
    /// Absolute window start (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<chrono::FixedOffset>>,
    /// Absolute window end (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<chrono::FixedOffset>>,
    /// Recurrence rule, e.g. `FREQ=WEEKLY;BYDAY=FR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<String>,
    /// First occurrence, local wall time in `tz`, e.g. `2026-01-02T16:00:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtstart: Option<NaiveDateTime>,
    /// How long each occurrence lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Span>,
    /// IANA time zone for `dtstart` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
}

/// A validated blackout window.
#[derive(Debug, Clone)]
pub enum Blackout {
    /// `[start, end)`.
    Absolute {
        /// Name.
        name: String,
        /// Start.
        start: DateTime<Utc>,
        /// End.
        end: DateTime<Utc>,
    },
    /// Occurrences of a rule, each lasting `duration`.
    Recurring {
        /// Name.
        name: String,
        /// The rule set (with its DTSTART and time zone).
        set: Box<rrule::RRuleSet>,
        /// Each occurrence's length.
        duration: chrono::Duration,
    },
}

impl Blackout {
    /// Validates a spec.
    pub fn compile(spec: &BlackoutSpec) -> Result<Blackout, String> {
        match (&spec.start, &spec.end, &spec.rrule) {
            (Some(start), Some(end), None) => {
                if end <= start {
                    return Err(format!("blackout {:?}: end must be after start", spec.name));
                }
                Ok(Blackout::Absolute {
                    name: spec.name.clone(),
                    start: start.with_timezone(&Utc),
                    end: end.with_timezone(&Utc),
                })
            }
            (None, None, Some(rule)) => {
                let dtstart = spec.dtstart.ok_or_else(|| {
                    format!(
                        "blackout {:?}: a recurring window needs dtstart (local time)",
                        spec.name
                    )
                })?;
                let duration = spec.duration.filter(|d| d.secs() > 0).ok_or_else(|| {
                    format!(
                        "blackout {:?}: a recurring window needs a positive duration",
                        spec.name
                    )
                })?;
                let tz_name = spec.tz.as_deref().unwrap_or("UTC");
                let _: chrono_tz::Tz = tz_name.parse().map_err(|_| {
                    format!("blackout {:?}: unknown time zone {tz_name:?}", spec.name)
                })?;
                if rule.contains('\n') || rule.len() > 512 {
                    return Err(format!(
                        "blackout {:?}: rrule must be one line of at most 512 characters",
                        spec.name
                    ));
                }
                let rule = rule.trim().trim_start_matches("RRULE:");
                let text = format!(
                    "DTSTART;TZID={tz_name}:{}\nRRULE:{rule}",
                    dtstart.format("%Y%m%dT%H%M%S")
                );
                let set: rrule::RRuleSet = text
                    .parse()
                    .map_err(|e| format!("blackout {:?}: invalid rrule: {e}", spec.name))?;
                Ok(Blackout::Recurring {
                    name: spec.name.clone(),
                    set: Box::new(set),
                    duration: duration.to_chrono(),
                })
            }
            _ => Err(format!(
                "blackout {:?}: give either start and end (absolute) or rrule, dtstart and duration (recurring)",
                spec.name
            )),
        }
    }

    /// The window's name.
    pub fn name(&self) -> &str {
        match self {
            Blackout::Absolute { name, .. } | Blackout::Recurring { name, .. } => name,
        }
    }

    /// Whether `now` is inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        match self {
            Blackout::Absolute { start, end, .. } => *start <= now && now < *end,
            Blackout::Recurring { set, duration, .. } => {
                let tz = rrule::Tz::UTC;
                let from = (now - *duration).with_timezone(&tz);
                let to = now.with_timezone(&tz);
                // Occurrences in (now - duration, now]: one of them covers now.
                let found = (**set).clone().after(from).before(to).all(4);
                found.dates.iter().any(|d| {
                    d.with_timezone(&Utc) > now - *duration && d.with_timezone(&Utc) <= now
                })
            }
        }
    }
}

/// The first window containing `now`, if any.
pub fn active(windows: &[Blackout], now: DateTime<Utc>) -> Option<&Blackout> {
    windows.iter().find(|w| w.contains(now))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use crate::blackout::{Blackout, BlackoutSpec};

    fn recurring() -> Blackout {
        let spec: BlackoutSpec = serde_json::from_value(serde_json::json!({
            "name": "friday-freeze", "rrule": "FREQ=WEEKLY;BYDAY=FR", "dtstart": "2026-01-02T16:00:00",
            "duration": "8h", "tz": "Europe/Oslo"
        }))
        .unwrap();
        Blackout::compile(&spec).unwrap()
    }

    #[test]
    fn recurring_windows_follow_local_time() {
        let b = recurring();
        // Friday 2026-11-20, 16:00 in Oslo is 15:00 UTC (CET).
        assert!(!b.contains(Utc.with_ymd_and_hms(2026, 11, 20, 14, 59, 0).unwrap()));
        assert!(b.contains(Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap()));
        assert!(b.contains(Utc.with_ymd_and_hms(2026, 11, 20, 22, 59, 0).unwrap()));
        assert!(!b.contains(Utc.with_ymd_and_hms(2026, 11, 20, 23, 0, 0).unwrap()));
        assert!(!b.contains(Utc.with_ymd_and_hms(2026, 11, 19, 16, 0, 0).unwrap()), "Thursday");
        // Summer time: 16:00 in Oslo is 14:00 UTC.
        assert!(b.contains(Utc.with_ymd_and_hms(2026, 7, 3, 14, 30, 0).unwrap()));
    }

    #[test]
    fn bad_windows_are_refused() {
        for v in [
            serde_json::json!({"name": "x", "rrule": "FREQ=WEEKLY", "dtstart": "2026-01-02T16:00:00", "duration": "1h", "tz": "Mars/Olympus"}),
            serde_json::json!({"name": "x", "rrule": "FREQ=SOMETIMES", "dtstart": "2026-01-02T16:00:00", "duration": "1h"}),
            serde_json::json!({"name": "x", "start": "2026-01-02T16:00:00Z", "end": "2026-01-01T16:00:00Z"}),
            serde_json::json!({"name": "x"}),
        ] {
            let spec: BlackoutSpec = serde_json::from_value(v.clone()).unwrap();
            assert!(Blackout::compile(&spec).is_err(), "{v}");
        }
    }
}
