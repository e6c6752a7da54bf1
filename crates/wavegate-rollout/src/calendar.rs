//! The release calendar (pure): live rollouts, blackout windows and the global freeze over a
//! range, conflicts between rollouts of services declared dependent (`release.depends_on`)
//! that overlap in one environment, and an iCalendar (RFC 5545) export.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::blackout::Blackout;

/// One calendar entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// `rollout`, `scheduled`, `blackout`, `freeze` or `conflict`.
    pub kind: &'static str,
    /// What it is.
    pub title: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End (for a live rollout: at the earliest, after its remaining holds).
    pub end: DateTime<Utc>,
    /// Environment, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Plan, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Rollout id(s), when it has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<String>,
}

/// A live rollout as the calendar reads it.
#[derive(Debug, Clone)]
pub struct LiveRollout {
    /// Id.
    pub id: String,
    /// Plan name.
    pub plan: String,
    /// Environment.
    pub environment: String,
    /// Release service.
    pub service: Option<String>,
    /// Services it depends on.
    pub depends_on: Vec<String>,
    /// When it started.
    pub start: DateTime<Utc>,
    /// Earliest end.
    pub end: DateTime<Utc>,
}

impl Blackout {
    /// Occurrences overlapping `[from, to)`, at most 500.
    pub fn occurrences(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Blackout::Absolute { start, end, .. } => {
                if *start < to && *end > from {
                    vec![(*start, *end)]
                } else {
                    Vec::new()
                }
            }
            Blackout::Recurring { set, duration, .. } => {
                let tz = rrule::Tz::UTC;
                let found = (**set)
                    .clone()
                    .after((from - *duration).with_timezone(&tz))
                    .before(to.with_timezone(&tz))
                    .all(500);
                found
                    .dates
                    .iter()
                    .map(|d| (d.with_timezone(&Utc), d.with_timezone(&Utc) + *duration))
                    .filter(|(s, e)| *s < to && *e > from)
                    .collect()
            }
        }
    }
}

/// Conflicts: two live rollouts in one environment whose time ranges overlap, where one's
/// service is among the other's `depends_on`.
pub fn conflicts(rollouts: &[LiveRollout]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, a) in rollouts.iter().enumerate() {
        for b in &rollouts[i + 1..] {
            if a.environment != b.environment || a.start >= b.end || b.start >= a.end {
                continue;
            }
            let depends = |x: &LiveRollout, y: &LiveRollout| {
                y.service.as_ref().is_some_and(|s| x.depends_on.contains(s))
            };
            if depends(a, b) || depends(b, a) {
                out.push(Entry {
                    kind: "conflict",
                    title: format!(
                        "{} ({}) and {} ({}) overlap in {}, and one depends on the other",
                        a.plan,
                        a.service.as_deref().unwrap_or("?"),
                        b.plan,
                        b.service.as_deref().unwrap_or("?"),
                        a.environment
                    ),
                    start: a.start.max(b.start),
                    end: a.end.min(b.end),
                    environment: Some(a.environment.clone()),
                    plan: None,
                    rollouts: vec![a.id.clone(), b.id.clone()],
                });
            }
        }
    }
    out
}

fn ics_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn ics_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace(';', "\\;").replace(',', "\\,").replace('\n', "\\n")
}

/// The entries as an iCalendar document (one VEVENT each, times in UTC).
pub fn to_ics(entries: &[Entry], now: DateTime<Utc>) -> String {
    let mut out = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//wavegate//release calendar//EN\r\nCALSCALE:GREGORIAN\r\n",
    );
    for (i, e) in entries.iter().enumerate() {
        let uid = format!(
            "{}-{}-{}-{i}@wavegate",
            e.kind,
            e.start.timestamp(),
            e.rollouts.first().map_or("", String::as_str)
        );
        out.push_str("BEGIN:VEVENT\r\n");
        out.push_str(&format!("UID:{uid}\r\nDTSTAMP:{}\r\n", ics_time(now)));
        out.push_str(&format!("DTSTART:{}\r\nDTEND:{}\r\n", ics_time(e.start), ics_time(e.end)));
        out.push_str(&format!("SUMMARY:{}\r\nCATEGORIES:{}\r\n", ics_text(&e.title), e.kind));
        out.push_str("END:VEVENT\r\n");
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blackout::BlackoutSpec;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekly_blackouts_expand_and_conflicts_need_a_dependency() {
        let spec: BlackoutSpec = serde_json::from_value(serde_json::json!({
            "name": "friday", "rrule": "FREQ=WEEKLY;BYDAY=FR", "dtstart": "2026-11-06T16:00:00", "duration": "64h", "tz": "Europe/Oslo"
        }))
        .unwrap();
        let b = Blackout::compile(&spec).unwrap();
        let occ = b.occurrences(t("2026-11-23T00:00:00Z"), t("2026-12-07T00:00:00Z"));
        // The weekend that began on 20 November still runs at the range's start.
        assert_eq!(occ.len(), 3);
        assert_eq!(occ[0].1, t("2026-11-23T07:00:00Z"));
        assert_eq!(occ[1].0, t("2026-11-27T15:00:00Z"), "16:00 in Oslo");
        let live = |id: &str, svc: &str, deps: &[&str], start: &str, end: &str| LiveRollout {
            id: id.into(),
            plan: id.into(),
            environment: "prod".into(),
            service: Some(svc.into()),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            start: t(start),
            end: t(end),
        };
        let rs = vec![
            live("a", "checkout", &["payments"], "2026-11-23T10:00:00Z", "2026-11-23T14:00:00Z"),
            live("b", "payments", &[], "2026-11-23T12:00:00Z", "2026-11-23T16:00:00Z"),
            live("c", "search", &[], "2026-11-23T12:00:00Z", "2026-11-23T16:00:00Z"),
        ];
        let c = conflicts(&rs);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].rollouts, ["a", "b"]);
        assert_eq!((c[0].start, c[0].end), (t("2026-11-23T12:00:00Z"), t("2026-11-23T14:00:00Z")));
        let ics = to_ics(&c, t("2026-11-23T00:00:00Z"));
        assert!(
            ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.contains("DTSTART:20261123T120000Z"),
            "{ics}"
        );
        assert!(
            ics.contains(
                "SUMMARY:a (checkout) and b (payments) overlap in prod\\, and one depends"
            ),
            "{ics}"
        );
    }
}
