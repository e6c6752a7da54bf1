//! Success targets (pure): a plan's `success_metrics` with a `target` and a horizon, judged
//! on-track / at-risk / met / missed with their evidence.
//!
//! Two kinds of measure:
//! - **adoption** (`metric: adoption`, or the adoption section's key task, or
//!   `weekly_active`): the share of the users served the new variant (in the adoption report's
//!   30-day window) who did the key task, overall (`cohort: all`) or in one cohort
//!   (`cohort: function=sales`), with its 95% Wilson interval;
//! - **lift** of any other metric: the relative difference of its mean, treatment against
//!   control, with a 95% interval (delta method), from the last wave that had a control arm.
//!
//! Before the horizon (`within`, counted from the start): **met** when the whole interval
//! meets the target, **on track** when the estimate does, **at risk** otherwise. At and after
//! it: **met** when the estimate meets it, **missed** otherwise. No data: **unknown** before
//! the horizon, **missed** after it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::duration::Span;
use crate::plan::{PlanSpec, SuccessMetricSpec};
use crate::stats::Moments;

/// The default horizon of a target.
pub const DEFAULT_WITHIN: Span = Span::from_secs(30 * 86_400);

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", schema(as = SuccessState))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The estimate meets the target; the horizon is not reached.
    OnTrack,
    /// The estimate does not meet the target yet.
    AtRisk,
    /// Met (with confidence before the horizon).
    Met,
    /// The horizon passed without meeting it.
    Missed,
    /// No data yet.
    Unknown,
}

impl Status {
    /// Its name: `on_track`, `at_risk`, `met`, `missed`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OnTrack => "on_track",
            Status::AtRisk => "at_risk",
            Status::Met => "met",
            Status::Missed => "missed",
            Status::Unknown => "unknown",
        }
    }
}

/// What a target is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The key-task rate of the adoption report.
    Adoption,
    /// The relative lift of a metric's mean, treatment against control.
    Lift,
}

/// The measure a target is judged on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Users served and users who did the key task.
    Rate {
        /// Users served.
        exposed: u64,
        /// Users who did the key task.
        adopted: u64,
    },
    /// The metric's moments per arm.
    Arms {
        /// Treatment.
        treatment: Moments,
        /// Control.
        control: Moments,
    },
}

/// A success target, judged (`GET /api/v1/rollouts/{id}/success`, the post-rollout report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schema", schema(as = SuccessTarget))]
pub struct SuccessStatus {
    /// The metric.
    pub metric: String,
    /// The target, as written.
    pub target: String,
    /// The cohort (`all`, or `attribute=value`).
    pub cohort: String,
    /// When the target must be met.
    pub deadline: DateTime<Utc>,
    /// Where it stands.
    pub status: Status,
    /// The estimate (a share, or a relative lift).
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub value: Option<f64>,
    /// Its 95% interval, `[low, high]`.
    #[cfg_attr(feature = "schema", schema(required = true, value_type = Option<Vec<f64>>))]
    pub interval: Option<(f64, f64)>,
    /// The numbers in words.
    pub evidence: String,
}

/// Which measure `spec` reads in `plan`.
pub fn kind(spec: &SuccessMetricSpec, plan: &PlanSpec) -> Kind {
    let key_task = plan.adoption.as_ref().map(|a| a.key_task.as_str());
    if ["adoption", "weekly_active"].contains(&spec.metric.as_str())
        || key_task == Some(spec.metric.as_str())
    {
        Kind::Adoption
    } else {
        Kind::Lift
    }
}

/// Checks success metric `i`; the message names the field.
pub fn validate(spec: &SuccessMetricSpec, i: usize, plan: &PlanSpec) -> Result<(), String> {
    let at = format!("success_metrics[{i}]");
    if spec.metric.trim().is_empty() {
        return Err(format!("{at}.metric must name a metric"));
    }
    match &spec.target {
        None => {
            if spec.direction.is_none() {
                return Err(format!(
                    "{at}: give a direction (increase, decrease) or a target (e.g. \">= 70%\") with `within`"
                ));
            }
            if spec.within.is_some() || spec.cohort.is_some() {
                return Err(format!("{at}: within and cohort need a target"));
            }
        }
        Some(t) => {
            if t.relative {
                return Err(format!(
                    "{at}.target compares with a value, not with the previous wave"
                ));
            }
            let adoption = kind(spec, plan) == Kind::Adoption;
            if adoption && plan.adoption.is_none() {
                return Err(format!(
                    "{at}: {} is measured by the plan's `adoption:` section (cohorts, key_task), which is missing",
                    spec.metric
                ));
            }
            if spec.within.is_some_and(|w| w.secs() < 3600 || w.secs() > 366 * 86_400) {
                return Err(format!("{at}.within must be from 1h to 366d"));
            }
            match spec.cohort.as_deref() {
                None | Some("all") => {}
                Some(_) if !adoption => {
                    return Err(format!("{at}.cohort applies to adoption targets only"));
                }
                Some(c) => {
                    let cohorts =
                        plan.adoption.as_ref().map(|a| a.cohorts.as_slice()).unwrap_or(&[]);
                    let ok = c.split_once('=').is_some_and(|(a, v)| {
                        cohorts.iter().any(|x| x == a.trim()) && !v.trim().is_empty()
                    });
                    if !ok {
                        return Err(format!(
                            "{at}.cohort must be `all` or `<attribute>=<value>` with an adoption cohort attribute ({}), got {c:?}",
                            cohorts.join(", ")
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

const Z: f64 = 1.959_963_984_540_054;

fn wilson(exposed: u64, adopted: u64) -> (f64, f64) {
    let n = exposed as f64;
    let p = adopted.min(exposed) as f64 / n;
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let spread = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let d = 1.0 + z2 / n;
    (((centre - spread) / d).max(0.0), ((centre + spread) / d).min(1.0))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Judges `spec` (which has a target) on `measure` at `now`, for a rollout started at `started`.
pub fn evaluate(
    spec: &SuccessMetricSpec,
    measure: Option<Measure>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<SuccessStatus> {
    let target = spec.target?;
    let deadline = started + spec.within.unwrap_or(DEFAULT_WITHIN).to_chrono();
    let over = now >= deadline;
    let estimate = match measure {
        Some(Measure::Rate { exposed, adopted }) if exposed > 0 => {
            let v = adopted.min(exposed) as f64 / exposed as f64;
            Some((
                v,
                wilson(exposed, adopted),
                format!("{adopted} of {exposed} users did the key task ({})", pct(v)),
            ))
        }
        Some(Measure::Arms { treatment: t, control: c })
            if t.n >= 2.0 && c.n >= 2.0 && c.mean() != 0.0 =>
        {
            let (mt, mc) = (t.mean(), c.mean());
            let lift = (mt - mc) / mc;
            let var = t.variance() / t.n / (mc * mc) + mt * mt * c.variance() / c.n / mc.powi(4);
            let se = var.sqrt();
            Some((
                lift,
                (lift - Z * se, lift + Z * se),
                format!(
                    "mean {mt:.4} (n {}) against control {mc:.4} (n {}): lift {}",
                    t.n,
                    c.n,
                    pct(lift)
                ),
            ))
        }
        _ => None,
    };
    let (status, value, interval, evidence) = match estimate {
        None => (
            if over { Status::Missed } else { Status::Unknown },
            None,
            None,
            "no data yet".to_owned(),
        ),
        Some((v, (lo, hi), words)) => {
            let meets = target.op.holds(v, target.value);
            // The end of the interval that must clear the bound.
            let sure = if target.op.wants_more() {
                target.op.holds(lo, target.value)
            } else {
                target.op.holds(hi, target.value)
            };
            let status = match (over, meets, sure) {
                (true, true, _) => Status::Met,
                (true, false, _) => Status::Missed,
                (false, _, true) => Status::Met,
                (false, true, false) => Status::OnTrack,
                (false, false, _) => Status::AtRisk,
            };
            (status, Some(v), Some((lo, hi)), words)
        }
    };
    Some(SuccessStatus {
        metric: spec.metric.clone(),
        target: target.to_string(),
        cohort: spec.cohort.clone().unwrap_or_else(|| "all".into()),
        deadline,
        status,
        value,
        interval,
        evidence,
    })
}

/// Whether every target of a set was met (none missed, at risk or unknown); None without targets.
pub fn all_met(statuses: &[SuccessStatus]) -> Option<bool> {
    (!statuses.is_empty()).then(|| statuses.iter().all(|s| s.status == Status::Met))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn spec(target: &str, within: &str) -> SuccessMetricSpec {
        serde_json::from_value(
            serde_json::json!({"metric": "adoption", "target": target, "within": within}),
        )
        .unwrap()
    }

    #[test]
    fn an_adoption_target_moves_from_at_risk_to_met_and_is_missed_after_its_horizon() {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let s = spec(">= 70%", "60d");
        let at = |exposed, adopted, days| {
            evaluate(&s, Some(Measure::Rate { exposed, adopted }), t0, t0 + Duration::days(days))
                .unwrap()
                .status
        };
        assert_eq!(evaluate(&s, None, t0, t0).unwrap().status, Status::Unknown);
        assert_eq!(at(100, 50, 1), Status::AtRisk);
        assert_eq!(at(100, 72, 1), Status::OnTrack, "estimate meets, interval does not");
        assert_eq!(at(2000, 1600, 1), Status::Met);
        assert_eq!(at(100, 72, 60), Status::Met);
        assert_eq!(at(100, 50, 61), Status::Missed);
        assert_eq!(evaluate(&s, None, t0, t0 + Duration::days(90)).unwrap().status, Status::Missed);
    }

    #[test]
    fn a_lift_target_reads_the_arms() {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let s: SuccessMetricSpec = serde_json::from_value(serde_json::json!(
            {"metric": "conversion", "direction": "increase", "target": ">= 2%", "within": "14d"}))
        .unwrap();
        let m = Measure::Arms {
            treatment: Moments::bernoulli(50_000.0, 6_000.0),
            control: Moments::bernoulli(50_000.0, 5_000.0),
        };
        let got = evaluate(&s, Some(m), t0, t0 + Duration::days(1)).unwrap();
        assert_eq!(got.status, Status::Met, "{got:?}");
        assert!((got.value.unwrap() - 0.2).abs() < 1e-9);
    }
}
