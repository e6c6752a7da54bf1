//! Time-to-decision forecasts for `plan lint --traffic RPS`: for each wave and guardrail, the
//! expected time to a fail verdict at the design effect and to a pass verdict without effect,
//! from Wald's SPRT expected sample sizes (the lower bound any sequential test can reach at the
//! plan's α and β; the controller's always-valid test needs somewhat more).
//!
//! Two-sample comparisons use the information `I = 1/Var(Δ̂) = λ·t·e(1−e)/σ²` after `t`
//! seconds at `λ` requests/s with a share `e` exposed; bounds use `λ·t·e/σ²`. Wald:
//! `E1[I] = ((1−β)A + βB)/(δ²/2)`, `E0[I] = (αA + (1−α)B)/(−δ²/2)`, with
//! `A = ln((1−β)/α)`, `B = ln(β/(1−α))`.

use serde::Serialize;

use crate::plan::{Comparison, GuardrailSpec, PlanSpec, Risk};

/// One wave × guardrail forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// Wave, 1-based.
    pub wave: usize,
    /// Guardrail name.
    pub guardrail: String,
    /// Expected seconds to a fail verdict at the design effect (None: cannot forecast).
    pub to_fail_secs: Option<f64>,
    /// Expected seconds to a pass verdict with no effect.
    pub to_pass_secs: Option<f64>,
    /// Expected treatment samples to a fail verdict (Wald E1[N]).
    pub fail_samples: Option<f64>,
    /// Expected treatment samples to a pass verdict (Wald E0[N]).
    pub pass_samples: Option<f64>,
    /// Why no forecast, when there is none.
    pub note: Option<String>,
}

/// Wald's constants `(A, B)` for α, β.
pub fn wald_bounds(alpha: f64, beta: f64) -> (f64, f64) {
    (((1.0 - beta) / alpha).ln(), (beta / (1.0 - alpha)).ln())
}

/// Wald's expected information to reject (E1) and to accept (E0) for a Gaussian shift δ.
pub fn wald_information(delta: f64, alpha: f64, beta: f64) -> (f64, f64) {
    let (a, b) = wald_bounds(alpha, beta);
    let drift = delta * delta / 2.0;
    (((1.0 - beta) * a + beta * b) / drift, (alpha * a + (1.0 - alpha) * b) / -drift)
}

/// The per-request variance and the design effect in the comparison's units, if known.
fn scale(g: &GuardrailSpec) -> Result<(f64, f64), String> {
    let base = g
        .baseline
        .as_ref()
        .ok_or("no baseline: add `baseline: {rate: …}` (or mean and sd) to forecast")?;
    let (variance, level) = if g.is_proportion() {
        let p = base.rate.ok_or("baseline.rate is needed for the error metric")?;
        if !(p > 0.0 && p < 1.0) {
            return Err("baseline.rate must be between 0 and 1".into());
        }
        (p * (1.0 - p), p)
    } else {
        let sd = base.sd.ok_or("baseline.sd is needed for a mean")?;
        (sd * sd, base.mean.unwrap_or(0.0))
    };
    let delta = match g.comparison {
        Comparison::Relative => g.design_effect() * level,
        _ => g.design_effect(),
    };
    if !(delta > 0.0 && variance > 0.0) {
        return Err("the design effect and the baseline's spread must be positive".into());
    }
    Ok((variance, delta))
}

/// Forecasts every wave × guardrail at `traffic` requests per second.
pub fn forecast(plan: &PlanSpec, traffic: Option<f64>) -> Vec<Forecast> {
    let mut out = Vec::new();
    for (i, w) in plan.waves.iter().enumerate() {
        let e = f64::from(w.exposure.basis_points()) / 10_000.0;
        for g in &plan.guardrails {
            let mut f = Forecast {
                wave: i + 1,
                guardrail: g.name.clone(),
                to_fail_secs: None,
                to_pass_secs: None,
                fail_samples: None,
                pass_samples: None,
                note: None,
            };
            let lambda = g.traffic.or(traffic);
            let two_sample = g.comparison != Comparison::Bound;
            match (lambda, scale(g)) {
                (None, _) => {
                    f.note =
                        Some("no traffic: pass --traffic RPS or set the guardrail's traffic".into())
                }
                (_, Err(why)) => f.note = Some(why),
                (Some(_), Ok(_)) if two_sample && e >= 1.0 => {
                    f.note = Some("no control arm at 100%".into())
                }
                (Some(lambda), Ok((variance, delta))) => {
                    let (i1, i0) = wald_information(delta, g.alpha(), g.beta());
                    let rate = if two_sample { lambda * e * (1.0 - e) } else { lambda * e };
                    f.to_fail_secs = Some(i1 * variance / rate);
                    f.to_pass_secs = Some(i0 * variance / rate);
                    f.fail_samples = Some(lambda * e * i1 * variance / rate);
                    f.pass_samples = Some(lambda * e * i0 * variance / rate);
                }
            }
            out.push(f);
        }
    }
    out
}

/// The risk class the plan's facts imply: high for data migrations or irreversible steps,
/// medium for a production release that reaches everyone or touches segments, else low.
pub fn computed_risk(plan: &PlanSpec) -> (Risk, String) {
    if plan.release.data_migration || plan.release.irreversible {
        return (
            Risk::High,
            "the release declares a data migration or an irreversible step".into(),
        );
    }
    let everyone =
        plan.waves.iter().any(|w| w.segments.is_empty() && w.exposure.basis_points() == 10_000);
    let rings = plan.waves.iter().any(|w| !w.segments.is_empty());
    if plan.environment == "prod" && (everyone || rings) {
        return (
            Risk::Medium,
            format!("it reaches {} in prod", if everyone { "everyone" } else { "named segments" }),
        );
    }
    (Risk::Low, "no high-impact facts declared".into())
}

#[cfg(test)]
mod tests {
    use crate::forecast::wald_information;

    /// research/progressive-delivery.md: error rate 1% → 2% at α=.05, β=.2 needs E1 ≈ 487
    /// canary requests with a Bernoulli SPRT; the Gaussian approximation lands close.
    #[test]
    fn wald_matches_the_published_example_in_order_of_magnitude() {
        let p: f64 = 0.01;
        let (i1, _) = wald_information(0.01, 0.05, 0.2);
        let n = i1 * p * (1.0 - p);
        assert!((300.0..800.0).contains(&n), "{n}");
    }
}
