//! A guardrail fail rule tuned to the design effect that also adapts to larger harm: a
//! one-sided mixture SPRT whose mixing distribution sits on harms at or above the design effect.
//!
//! [`crate::stats::judge`] fails when the SPRT of "harm = δ" against "harm = 0" reaches 1/α
//! (δ: the guardrail's design effect). That is the fastest rule with no acceptance boundary at
//! exactly δ, but at a larger harm θ it gains only `θδ − δ²/2` of log-likelihood per unit of
//! information instead of `θ²/2`. [`judge_tuned`] mixes the same Gaussian likelihood ratios
//! over a half-normal prior on `[δ, ∞)` with scale `s = SCALE·δ`:
//!
//! ```text
//! Λ = ∫_{θ≥δ} Λ_θ π(θ) dθ,   Λ_θ = exp((θ·Δ̂ − θ²/2)/V),   π = half-normal(δ, s)
//! ln Λ = ln Λ_δ + ln(2Φ(z)) + z²/2 − ½·ln(1 + s²/V),   z = (Δ̂ − δ)/√(V + V²/s²)
//! ```
//!
//! **Validity.** For any true harm ≤ 0, each `Λ_θ` with θ > 0 is a nonnegative supermartingale
//! in information time (the Gaussian approximation of the difference, as in `stats`), so their
//! mixture is one too, and by Ville's inequality it ever reaches `1/α` with probability at most
//! α, however often the controller looks. Pass is unchanged: after the minimum sample, the
//! mixture confidence sequence's upper bound on harm is below the tolerance.
//!
//! **Cost.** Mixing costs about `½·ln(1 + s²/V) − ln(2Φ(z)) − z²/2` nats at the design effect
//! against the point SPRT, and buys up to `(θ − δ)²/2` per unit of information above it: the
//! trade-off is measured in `benches/sequential.rs` and `docs/benchmarks.md`.

use crate::plan::GuardrailSpec;
use crate::stats::{Moments, VerdictReport, judge_with};

/// Default scale of the half-normal mixing prior, as a fraction of the design effect.
pub const SCALE: f64 = 0.5;

/// `ln(2Φ(z)) + z²/2`, stable for any z (Φ: the standard normal CDF; relative error of the
/// underlying erfc approximation below 1.2e-7).
pub fn ln_two_phi_scaled(z: f64) -> f64 {
    // 2Φ(z) = erfc(x) with x = −z/√2, and z²/2 = x².
    let x = -z / std::f64::consts::SQRT_2;
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.5 * ax);
    // erfc(|x|) = t·exp(−x² + p(t)) (Numerical Recipes' erfcc).
    let p = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    if x >= 0.0 { t.ln() + p } else { (2.0 - t * (p - x * x).exp()).ln() + x * x }
}

/// Log of the one-sided mixture likelihood ratio for harm estimate `estimate` with variance `v`:
/// Gaussian likelihood ratios of harm θ against 0, mixed over a half-normal prior on `[delta, ∞)`
/// with scale `scale` (`scale = 0` gives the point SPRT at `delta`). `-∞` without a finite,
/// positive variance.
pub fn log_mixture_lr(estimate: f64, v: f64, delta: f64, scale: f64) -> f64 {
    if !(v.is_finite() && v > 0.0 && estimate.is_finite()) {
        return f64::NEG_INFINITY;
    }
    let point = (delta * estimate - delta * delta / 2.0) / v;
    if scale <= 0.0 {
        return point;
    }
    let s2 = scale * scale;
    let z = (estimate - delta) / (v + v * v / s2).sqrt();
    point + ln_two_phi_scaled(z) - 0.5 * (1.0 + s2 / v).ln()
}

/// Judges a guardrail like [`crate::stats::judge`] (same estimate, variance, burn-in, bounds and
/// pass rule), failing on the one-sided mixture SPRT with the default [`SCALE`].
pub fn judge_tuned(g: &GuardrailSpec, treatment: &Moments, control: &Moments) -> VerdictReport {
    judge_with_scale(g, treatment, control, SCALE)
}

/// [`judge_tuned`] with the mixing prior's scale given as a fraction of the design effect
/// (0: the point SPRT at the design effect, the same fail rule as `stats::judge`).
pub fn judge_with_scale(
    g: &GuardrailSpec,
    treatment: &Moments,
    control: &Moments,
    scale: f64,
) -> VerdictReport {
    judge_with(g, treatment, control, "one-sided mixture SPRT", |estimate, v, delta| {
        log_mixture_lr(estimate, v, delta, scale.max(0.0) * delta)
    })
}

#[cfg(test)]
mod tests {
    use crate::plan::GuardrailSpec;
    use crate::sim::Rng;
    use crate::sprt::{judge_tuned, judge_with_scale, ln_two_phi_scaled, log_mixture_lr};
    use crate::stats::tests::{bernoulli, error_guardrail};
    use crate::stats::{Moments, Verdict, judge};

    fn guardrail() -> GuardrailSpec {
        error_guardrail(0.0, 100)
    }

    /// Φ(0) = ½, and far tails follow 2Φ(z) ≈ 2φ(z)/|z| without underflow.
    #[test]
    fn normal_cdf_helper_is_accurate_and_stable() {
        assert!(ln_two_phi_scaled(0.0).abs() < 1e-6);
        // 2Φ(1.96) = 1.95000; ln(1.95) + 1.96²/2.
        assert!(
            (ln_two_phi_scaled(1.959_964) - (1.95f64.ln() + 1.959_964f64.powi(2) / 2.0)).abs()
                < 1e-6
        );
        // 2Φ(−1.96) = 0.05.
        let want = 0.05f64.ln() + 1.959_964f64.powi(2) / 2.0;
        assert!((ln_two_phi_scaled(-1.959_964) - want).abs() < 1e-5);
        let z = -40.0f64;
        let asymptotic = (2.0 / (2.0 * std::f64::consts::PI).sqrt() / -z).ln();
        assert!((ln_two_phi_scaled(z) - asymptotic).abs() < 1e-3);
        assert!(ln_two_phi_scaled(40.0).is_finite());
    }

    /// The mixture matches direct numerical integration over the prior.
    #[test]
    fn mixture_matches_numerical_integration() {
        let (delta, s) = (0.01, 0.005);
        for &(est, v) in &[(0.012, 2e-5), (0.0, 5e-5), (0.03, 1e-5), (-0.01, 3e-5)] {
            let (mut sum, h) = (0.0, s / 2000.0);
            for i in 0..40_000 {
                let u = (i as f64 + 0.5) * h;
                let theta = delta + u;
                let prior = 2.0 / (s * (2.0 * std::f64::consts::PI).sqrt())
                    * (-u * u / (2.0 * s * s)).exp();
                sum += ((theta * est - theta * theta / 2.0) / v).exp() * prior * h;
            }
            let got = log_mixture_lr(est, v, delta, s);
            assert!((got - sum.ln()).abs() < 1e-4, "est {est} v {v}: {got} vs {}", sum.ln());
        }
        assert_eq!(log_mixture_lr(0.01, f64::NAN, 0.01, 0.005), f64::NEG_INFINITY);
        assert_eq!(log_mixture_lr(0.01, 0.0, 0.01, 0.005), f64::NEG_INFINITY);
    }

    /// Same inconclusive/pass/fail behaviour as `stats::judge` on clear cases, and scale 0 is
    /// exactly `stats::judge`'s fail statistic.
    #[test]
    fn agrees_with_judge_on_clear_cases() {
        let mut g = guardrail();
        g.tolerance = 0.005;
        assert_eq!(
            judge_tuned(&g, &Moments::default(), &Moments::default()).verdict,
            Verdict::Inconclusive
        );
        assert_eq!(
            judge_tuned(&g, &bernoulli(2000, 200), &bernoulli(2000, 20)).verdict,
            Verdict::Fail
        );
        assert_eq!(
            judge_tuned(&g, &bernoulli(20_000, 200), &bernoulli(20_000, 200)).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge_tuned(&g, &bernoulli(20, 20), &bernoulli(20, 0)).verdict,
            Verdict::Inconclusive
        );
        for (t, c) in
            [(bernoulli(1000, 35), bernoulli(1000, 20)), (bernoulli(4000, 90), bernoulli(4000, 80))]
        {
            let (a, b) = (judge(&g, &t, &c), judge_with_scale(&g, &t, &c, 0.0));
            assert_eq!(a.verdict, b.verdict);
            assert!((a.log_lr.unwrap() - b.log_lr.unwrap()).abs() < 1e-9);
            assert_eq!((a.lower, a.upper), (b.lower, b.upper));
        }
    }

    /// 1,000 A/A rollouts (2% error rate, 50 requests per arm per look, 200 looks, a look every
    /// tick): the false-alarm rate stays within 6σ of α = 0.05 from above.
    #[test]
    fn false_alarms_stay_at_most_alpha_under_continuous_monitoring() {
        let g = guardrail();
        let mut rng = Rng::new(0x5EED);
        let runs = 1000;
        let mut alarms = 0;
        for _ in 0..runs {
            let (mut t, mut c) = (Moments::default(), Moments::default());
            for _ in 0..200 {
                let (et, ec) = (rng.binomial(50, 0.02) as f64, rng.binomial(50, 0.02) as f64);
                t.merge(&Moments::bernoulli(50.0, et));
                c.merge(&Moments::bernoulli(50.0, ec));
                if judge_tuned(&g, &t, &c).verdict == Verdict::Fail {
                    alarms += 1;
                    break;
                }
            }
        }
        let rate = alarms as f64 / runs as f64;
        let sigma = (0.05f64 * 0.95 / runs as f64).sqrt();
        assert!(rate <= 0.05 + 6.0 * sigma, "false-alarm rate {rate}");
    }
}
