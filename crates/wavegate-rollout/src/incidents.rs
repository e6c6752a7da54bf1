//! Incident guardrails (pure): incidents and support tickets of the plan's service as a stop
//! condition (`source: incidents`).
//!
//! Two ways to judge, by what is known:
//! - **arms**, when incidents name their user: the incidents attributed to each arm of the
//!   wave per exposure, compared as a proportion with the events' sequential test
//!   ([`crate::stats::judge`]; `tolerance` as for `error`: with rare incidents, an `absolute`
//!   comparison is the one that decides in reasonable time);
//! - **baseline** otherwise: the service's incident rate since the wave began against its rate
//!   over `baseline_window` (default 7d) before the rollout started. Given both counts, the
//!   count since the wave is binomial with share `p0 = T₁(1+tol) / (T₀ + T₁(1+tol))` at the
//!   largest tolerated rate; a beta-binomial mixture likelihood ratio against `p0` (the sample
//!   ratio check's, always valid under repeated looks) fails the guardrail when it reaches
//!   1/α with the observed share above `p0`.
//!
//! An incident guardrail never holds a promotion: incidents are rare, so "no evidence of harm"
//! is its pass. It fails as soon as the evidence is there.

use serde::{Deserialize, Serialize};

use crate::machine::ArmMoments;
use crate::plan::GuardrailSpec;
use crate::stats::{Verdict, VerdictReport, judge, srm};

/// Severities, least to most severe.
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Whether `severity` is at or above `floor` (no floor: every incident counts).
pub fn counts(severity: &str, floor: Option<&str>) -> bool {
    let rank = |s: &str| SEVERITIES.iter().position(|x| *x == s);
    match floor {
        None => true,
        Some(f) => rank(severity).unwrap_or(0) >= rank(f).unwrap_or(0),
    }
}

/// What an incident guardrail reads at a tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentSignal {
    /// Attributed incidents per arm of the wave (`n`: the arm's exposures, `sum`: incidents).
    pub arms: ArmMoments,
    /// Incidents of the service in the baseline window before the rollout started.
    pub before: f64,
    /// The baseline window's length, hours.
    pub before_hours: f64,
    /// Incidents of the service since the wave began.
    pub since: f64,
    /// Hours since the wave began.
    pub since_hours: f64,
}

/// Judges incident guardrail `g` on `s`.
pub fn judge_incidents(g: &GuardrailSpec, s: &IncidentSignal) -> VerdictReport {
    if s.arms.treatment.sum + s.arms.control.sum > 0.0 {
        let mut report = judge(g, &s.arms.treatment, &s.arms.control);
        if report.verdict != Verdict::Fail {
            report.verdict = Verdict::Pass;
            report.explanation = format!(
                "no evidence of more incidents in the new variant's arm ({} in {} exposures against {} in {}); {}",
                s.arms.treatment.sum,
                s.arms.treatment.n,
                s.arms.control.sum,
                s.arms.control.n,
                report.explanation
            );
        }
        return report;
    }
    let mut report = judge(g, &Default::default(), &Default::default());
    report.log_lr = None;
    report.threshold = None;
    let (t0, t1) = (s.before_hours.max(0.0), s.since_hours.max(0.0));
    let factor = 1.0 + g.tolerance.max(0.0);
    let rate = |n: f64, t: f64| if t > 0.0 { n / t } else { 0.0 };
    let (r0, r1) = (rate(s.before, t0), rate(s.since, t1));
    report.estimate = Some(r1 - r0);
    if t0 <= 0.0 || t1 <= 0.0 || s.since < 1.0 {
        report.verdict = Verdict::Pass;
        report.explanation = format!(
            "{} incident(s) since the wave began ({:.1} h) against {} in the {:.0} h before the rollout: no evidence of harm",
            s.since, t1, s.before, t0
        );
        return report;
    }
    let p0 = t1 * factor / (t0 + t1 * factor);
    let check = srm(s.since, s.before, p0, g.alpha());
    let observed = s.since / (s.since + s.before);
    report.log_lr = Some(check.log_lr);
    report.threshold = Some((1.0 / g.alpha()).ln());
    if check.mismatch && observed > p0 {
        report.verdict = Verdict::Fail;
        report.explanation = format!(
            "incident rate {r1:.3}/h since the wave began ({} in {t1:.1} h) exceeds the pre-rollout {r0:.3}/h ({} in {t0:.0} h) beyond {:.0}% (log LR {:.2} ≥ {:.2})",
            s.since,
            s.before,
            g.tolerance * 100.0,
            check.log_lr,
            (1.0 / g.alpha()).ln()
        );
    } else {
        report.verdict = Verdict::Pass;
        report.explanation = format!(
            "incident rate {r1:.3}/h since the wave began ({} in {t1:.1} h) against {r0:.3}/h before ({} in {t0:.0} h): no evidence of harm",
            s.since, s.before
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Moments;

    fn guardrail() -> GuardrailSpec {
        serde_json::from_value(serde_json::json!({"name": "incidents", "metric": "incidents",
            "source": "incidents", "comparison": "absolute", "tolerance": 0.01, "mde": 0.01, "action": "rollback"}))
        .unwrap()
    }

    #[test]
    fn a_burst_after_a_quiet_baseline_fails_and_the_usual_rate_passes() {
        let g = guardrail();
        let quiet = IncidentSignal {
            before: 2.0,
            before_hours: 168.0,
            since: 1.0,
            since_hours: 24.0,
            ..Default::default()
        };
        assert_eq!(judge_incidents(&g, &quiet).verdict, Verdict::Pass);
        let burst = IncidentSignal {
            before: 2.0,
            before_hours: 168.0,
            since: 6.0,
            since_hours: 1.0,
            ..Default::default()
        };
        let v = judge_incidents(&g, &burst);
        assert_eq!(v.verdict, Verdict::Fail, "{}", v.explanation);
        assert!(
            counts("critical", Some("high")) && !counts("low", Some("high")) && counts("low", None)
        );
    }

    #[test]
    fn attributed_incidents_compare_the_arms() {
        let g = guardrail();
        let s = IncidentSignal {
            arms: ArmMoments {
                treatment: Moments::bernoulli(2000.0, 60.0),
                control: Moments::bernoulli(2000.0, 2.0),
            },
            ..Default::default()
        };
        let v = judge_incidents(&g, &s);
        assert_eq!(v.verdict, Verdict::Fail, "{}", v.explanation);
    }
}
