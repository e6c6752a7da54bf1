//! Sequential statistics: mergeable sufficient statistics and always-valid verdicts.
//!
//! Guardrails use a mixture-SPRT confidence sequence (normal mixture with variance τ² set from
//! the guardrail's design effect): the bound holds simultaneously over every look, so the
//! controller may look every tick and the false-alarm rate stays at most α (Ville's
//! inequality). `fail` ⇔ the lower bound on harm is above 0; `pass` ⇔ the minimum sample is
//! reached and the upper bound on harm is below the tolerance; otherwise `inconclusive`. No
//! data is never a pass. The sample-ratio check is a beta-binomial mixture SPRT, also
//! always valid.

use serde::{Deserialize, Serialize};

use crate::plan::{Comparison, Direction, GuardrailSpec};

/// Count, sum and sum of squares: enough for means and variances, and they add up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Observations.
    pub n: f64,
    /// Sum of values.
    pub sum: f64,
    /// Sum of squared values.
    pub sumsq: f64,
}

impl Moments {
    /// `n` observations of a 0/1 metric, `hits` of them 1 (so the sum of squares is the sum).
    pub fn bernoulli(n: f64, hits: f64) -> Moments {
        Moments { n, sum: hits, sumsq: hits }
    }

    /// Adds one observation.
    pub fn push(&mut self, x: f64) {
        self.n += 1.0;
        self.sum += x;
        self.sumsq += x * x;
    }

    /// Adds another set of observations.
    pub fn merge(&mut self, o: &Moments) {
        self.n += o.n;
        self.sum += o.sum;
        self.sumsq += o.sumsq;
    }

    /// The mean (0 with no data).
    pub fn mean(&self) -> f64 {
        if self.n > 0.0 { self.sum / self.n } else { 0.0 }
    }

    /// Sample variance of a general metric, floored so a constant series still has a width.
    pub(crate) fn variance(&self) -> f64 {
        if self.n < 2.0 {
            return 0.0;
        }
        let m = self.mean();
        let v = (self.sumsq - self.sum * m) / (self.n - 1.0);
        v.max(1e-9 * (1.0 + m * m))
    }

    /// Variance of a 0/1 metric, with half an observation of smoothing so 0 errors is not 0 width.
    fn proportion_variance(&self) -> f64 {
        let p = (self.sum + 0.5) / (self.n + 1.0);
        p * (1.0 - p)
    }
}

/// A guardrail's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Harm ruled out beyond the tolerance.
    Pass,
    /// Harm detected.
    Fail,
    /// Not yet decided.
    Inconclusive,
}

impl Verdict {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// A verdict with the numbers behind it (stored, shown, and reproducible from `inputs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictReport {
    /// The guardrail.
    pub guardrail: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in words.
    pub explanation: String,
    /// Estimated harm (positive = worse), in the comparison's units.
    pub estimate: Option<f64>,
    /// Always-valid lower bound on harm.
    pub lower: Option<f64>,
    /// Always-valid upper bound on harm.
    pub upper: Option<f64>,
    /// The tolerance the upper bound is held to.
    pub tolerance: f64,
    /// α used.
    pub alpha: f64,
    /// Treatment statistics.
    pub treatment: Moments,
    /// Control statistics.
    pub control: Moments,
    /// The fail test's statistic: log of the design-effect SPRT likelihood ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_lr: Option<f64>,
    /// The fail threshold on `log_lr`: ln(1/α).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// For a Prometheus guardrail: which mode judged (instant readings per tick or a range
    /// over the wave), its failure limit and the readings it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readings: Option<crate::readings::Window>,
    /// For a quantile guardrail: the arms' quantiles and the threshold judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<Box<QuantileReport>>,
}

impl VerdictReport {
    /// Where every judgement starts: inconclusive, with no numbers yet, held to `g`'s tolerance
    /// and α.
    fn inconclusive(g: &GuardrailSpec, treatment: Moments, control: Moments) -> VerdictReport {
        VerdictReport {
            guardrail: g.name.clone(),
            verdict: Verdict::Inconclusive,
            explanation: String::new(),
            estimate: None,
            lower: None,
            upper: None,
            tolerance: g.tolerance,
            alpha: g.alpha(),
            treatment,
            control,
            log_lr: None,
            threshold: None,
            readings: None,
            quantiles: None,
        }
    }
}

/// What a quantile guardrail compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantileReport {
    /// The quantile (e.g. 0.95).
    pub q: f64,
    /// The treatment's quantile, when it has data.
    pub treatment: Option<f64>,
    /// The control's quantile, when it has data.
    pub control: Option<f64>,
    /// The value the treatment's quantile is held to: the bound, or the control's quantile
    /// plus the tolerance.
    pub threshold: Option<f64>,
    /// Treatment observations above the threshold.
    pub above: u64,
    /// The share allowed above it: 1 − q.
    pub allowed: f64,
}

/// Judges a quantile guardrail from the arms' latency sketches. The treatment's q-quantile is
/// at most the threshold exactly when at most 1 − q of its requests exceed it, so the judgement
/// is the controller's always-valid test of a proportion against a bound: the share of
/// treatment requests above the threshold against 1 − q (design effect: that share doubled).
/// With a fixed `bound` (an SLO) the test is exactly always-valid; against the control, the
/// threshold is the control's running quantile plus the tolerance, a plug-in estimate that
/// settles as the control arm grows.
pub fn judge_quantile(
    g: &GuardrailSpec,
    treatment: &crate::sketch::Sketch,
    control: &crate::sketch::Sketch,
) -> VerdictReport {
    let q = g.quantile.unwrap_or(0.5).clamp(0.0001, 0.9999);
    let (tq, cq) = (treatment.quantile(q), control.quantile(q));
    let threshold = match g.comparison {
        Comparison::Bound => g.bound,
        Comparison::Relative => cq.map(|c| c * (1.0 + g.tolerance)),
        Comparison::Absolute => cq.map(|c| c + g.tolerance),
    };
    let allowed = 1.0 - q;
    let above = threshold.map_or(0, |t| treatment.count_above(t));
    let exceed = Moments::bernoulli(treatment.count() as f64, above as f64);
    let proportion = GuardrailSpec {
        comparison: Comparison::Bound,
        bound: Some(allowed),
        harmful: Direction::Increase,
        tolerance: 0.0,
        mde: Some(allowed),
        quantile: None,
        ..g.clone()
    };
    let mut report = match threshold {
        Some(_) => judge(&proportion, &exceed, &Moments::default()),
        None => {
            let mut r = VerdictReport::inconclusive(g, exceed, Moments::default());
            r.explanation = "no control data yet to set the threshold".into();
            r
        }
    };
    let p = format!("p{}", (q * 100.0 * 100.0).round() / 100.0);
    let ms = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"));
    report.explanation = format!(
        "{p} treatment {} ms, control {} ms, held to {} ms: {above} of {} treatment requests above it ({:.2}% allowed); {}",
        ms(tq),
        ms(cq),
        ms(threshold),
        treatment.count(),
        allowed * 100.0,
        report.explanation
    );
    report.tolerance = g.tolerance;
    report.quantiles =
        Some(Box::new(QuantileReport { q, treatment: tq, control: cq, threshold, above, allowed }));
    report
}

/// Samples per arm before any verdict (or `min_sample`, if smaller).
pub const BURN_IN: u64 = 30;

/// Half-width of the normal-mixture confidence sequence with variance `v` and mixing τ².
pub fn cs_half_width(v: f64, tau2: f64, alpha: f64) -> f64 {
    if !(v > 0.0 && v.is_finite() && tau2 > 0.0 && tau2.is_finite()) {
        return f64::INFINITY;
    }
    let t = (v * (v + tau2) / tau2) * (((v + tau2) / v).ln() - 2.0 * alpha.ln());
    if t.is_finite() { t.max(0.0).sqrt() } else { f64::INFINITY }
}

/// Judges a guardrail from the current wave's statistics.
pub fn judge(g: &GuardrailSpec, treatment: &Moments, control: &Moments) -> VerdictReport {
    judge_with(g, treatment, control, "SPRT", sprt_log_lr)
}

/// The controller's fail statistic: a one-sided SPRT tuned to the design effect δ on the
/// estimate's Gaussian likelihood, H1: harm = δ against H0: harm = 0,
/// log Λ = (δ·Δ̂ − δ²/2)/V. For any harm ≤ 0, Λ is a nonnegative supermartingale in
/// information time, so by Ville's inequality it ever reaches 1/α with probability at most α,
/// however often the controller looks. Tuned to δ, it needs close to Wald's E1[N] samples
/// (docs/benchmarks.md); the confidence sequence gives the bounds shown and decides a pass.
pub fn sprt_log_lr(estimate: f64, v: f64, tau: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        (tau * estimate - tau * tau / 2.0) / v
    } else {
        f64::NEG_INFINITY
    }
}

/// Where a judgement stopped: the numbers behind a verdict without the words, so a forecast
/// can run the controller's decision millions of times without formatting an explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage {
    /// Bound comparison without a bound.
    NoBound,
    /// Fewer than two observations in an arm.
    NoData,
    /// A relative comparison against a zero control mean.
    ZeroControl,
    /// Before the burn-in (this many samples per arm).
    BurnIn(u64),
    /// The fail statistic reached ln(1/α).
    Fail,
    /// The upper bound is below the pass threshold and the minimum sample is met.
    Pass,
    /// Below the minimum sample.
    MinSample,
    /// Past the minimum sample, bounds straddle the threshold.
    Undecided,
}

/// The numbers [`judge_with`] decides from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// Where the judgement stopped.
    pub stage: Stage,
    /// Harm estimate, once there is one.
    pub estimate: Option<f64>,
    /// Always-valid lower bound.
    pub lower: Option<f64>,
    /// Always-valid upper bound.
    pub upper: Option<f64>,
    /// The pass threshold on the upper bound (the tolerance; 0 for a bound).
    pub threshold_pass: f64,
    /// The fail statistic, once computed.
    pub log_lr: Option<f64>,
    /// ln(1/α), once the fail statistic was computed.
    pub threshold: Option<f64>,
}

impl Assessment {
    /// The verdict this assessment gives.
    pub fn verdict(&self) -> Verdict {
        match self.stage {
            Stage::Fail => Verdict::Fail,
            Stage::Pass => Verdict::Pass,
            _ => Verdict::Inconclusive,
        }
    }
}

/// The verdict flow every guardrail test shares — harm estimate and variance, burn-in,
/// confidence-sequence bounds, pass rule — with the fail statistic supplied by the caller:
/// `log_lr(estimate, variance, design_effect)`, compared with ln(1/α). It must be the log of a
/// nonnegative supermartingale under no harm for the false-alarm guarantee to hold. Numbers
/// only: [`judge_with`] adds the words; forecasts call this directly.
pub fn assess(
    g: &GuardrailSpec,
    treatment: &Moments,
    control: &Moments,
    log_lr: impl Fn(f64, f64, f64) -> f64,
) -> Assessment {
    let mut out = Assessment {
        stage: Stage::NoData,
        estimate: None,
        lower: None,
        upper: None,
        threshold_pass: 0.0,
        log_lr: None,
        threshold: None,
    };
    let alpha = g.alpha();
    let var = |m: &Moments| if g.is_proportion() { m.proportion_variance() } else { m.variance() };
    let sign = if g.harmful == Direction::Increase { 1.0 } else { -1.0 };
    let (estimate, v, threshold_pass) = match g.comparison {
        Comparison::Bound => {
            let Some(bound) = g.bound else {
                out.stage = Stage::NoBound;
                return out;
            };
            if treatment.n < 2.0 {
                return out;
            }
            (sign * (treatment.mean() - bound), var(treatment) / treatment.n, 0.0)
        }
        Comparison::Absolute | Comparison::Relative => {
            if treatment.n < 2.0 || control.n < 2.0 {
                return out;
            }
            let (mt, mc) = (treatment.mean(), control.mean());
            let vt = var(treatment) / treatment.n;
            let vc = var(control) / control.n;
            if g.comparison == Comparison::Absolute {
                (sign * (mt - mc), vt + vc, g.tolerance)
            } else {
                // Proportions with no events yet use the smoothed rate as the baseline.
                let base =
                    if g.is_proportion() { (control.sum + 0.5) / (control.n + 1.0) } else { mc };
                if base.abs() < 1e-12 {
                    out.stage = Stage::ZeroControl;
                    return out;
                }
                let ratio = mt / base;
                (
                    sign * (ratio - 1.0),
                    vt / (base * base) + ratio * ratio * vc / (base * base),
                    g.tolerance,
                )
            }
        }
    };
    let tau = g.design_effect();
    let hw = cs_half_width(v, tau * tau, alpha);
    let (lower, upper) = (estimate - hw, estimate + hw);
    out.estimate = Some(estimate);
    out.lower = Some(lower);
    out.upper = Some(upper);
    out.threshold_pass = threshold_pass;
    let enough = |n: u64| {
        treatment.n >= n as f64 && (g.comparison == Comparison::Bound || control.n >= n as f64)
    };
    let min_met = enough(g.min_sample);
    // A handful of samples gives a plug-in variance near zero: no verdict before a burn-in.
    let burn_in = g.min_sample.min(BURN_IN);
    if !estimate.is_finite() || !enough(burn_in) {
        out.stage = Stage::BurnIn(burn_in);
        return out;
    }
    let threshold = (1.0 / alpha).ln();
    let log_lr = log_lr(estimate, v, tau);
    out.log_lr = Some(log_lr).filter(|x| x.is_finite());
    out.threshold = Some(threshold);
    out.stage = if log_lr >= threshold {
        Stage::Fail
    } else if upper < threshold_pass && min_met {
        Stage::Pass
    } else if !min_met {
        Stage::MinSample
    } else {
        Stage::Undecided
    };
    out
}

/// [`assess`] with the words: the verdict report the controller records.
pub fn judge_with(
    g: &GuardrailSpec,
    treatment: &Moments,
    control: &Moments,
    test_name: &str,
    log_lr: impl Fn(f64, f64, f64) -> f64,
) -> VerdictReport {
    let a = assess(g, treatment, control, log_lr);
    let mut report = VerdictReport::inconclusive(g, *treatment, *control);
    report.verdict = a.verdict();
    report.estimate = a.estimate;
    report.lower = a.lower;
    report.upper = a.upper;
    report.log_lr = a.log_lr;
    report.threshold = a.threshold;
    let (estimate, lower, upper) =
        (a.estimate.unwrap_or(0.0), a.lower.unwrap_or(0.0), a.upper.unwrap_or(0.0));
    let threshold_pass = a.threshold_pass;
    report.explanation = match a.stage {
        Stage::NoBound => "no bound configured".into(),
        Stage::NoData if g.comparison == Comparison::Bound => "no data yet".into(),
        Stage::NoData => {
            format!("not enough data yet ({} treatment, {} control)", treatment.n, control.n)
        }
        Stage::ZeroControl => "control mean is zero; a relative comparison is undefined".into(),
        Stage::BurnIn(n) => format!("waiting for {n} samples per arm"),
        Stage::Fail => {
            let (log_lr, threshold) =
                (a.log_lr.unwrap_or(f64::INFINITY), a.threshold.unwrap_or(0.0));
            let mut why = format!(
                "harm detected: {test_name} log-likelihood ratio {log_lr:.2} ≥ ln(1/α) = {threshold:.2} (estimate {estimate:.4}, bounds [{lower:.4}, {upper:.4}])"
            );
            if lower <= 0.0 {
                // The two figures answer different questions; say so where they seem to clash.
                why.push_str(&format!(
                    "; the {test_name} decided: it weighs the evidence for harm of the guardrail's detectable size against none, and reaches a decision before the always-valid bounds, a wider interval for the size of the effect, exclude 0"
                ));
            }
            why
        }
        Stage::Pass => {
            format!("no harm beyond tolerance: upper bound {upper:.4} < {threshold_pass}")
        }
        Stage::MinSample => format!("waiting for {} samples per arm", g.min_sample),
        Stage::Undecided => format!("undecided: harm in [{lower:.4}, {upper:.4}]"),
    };
    report
}

/// The sample-ratio check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrmReport {
    /// Treatment exposures.
    pub treatment: f64,
    /// Control exposures.
    pub control: f64,
    /// Planned treatment share.
    pub expected_share: f64,
    /// Log of the mixture likelihood ratio.
    pub log_lr: f64,
    /// Whether the observed split mismatches the plan at the check's α.
    pub mismatch: bool,
}

/// Sequential sample-ratio check: beta-binomial mixture (prior concentration 100 around the
/// planned share) against the planned share; mismatch when the likelihood ratio reaches 1/α.
pub fn srm(treatment: f64, control: f64, expected_share: f64, alpha: f64) -> SrmReport {
    let n = treatment + control;
    let p0 = expected_share.clamp(1e-6, 1.0 - 1e-6);
    let k = 100.0;
    let (a, b) = (k * p0, k * (1.0 - p0));
    let log_lr = if n < 1.0 {
        0.0
    } else {
        ln_beta(a + treatment, b + control)
            - ln_beta(a, b)
            - (treatment * p0.ln() + control * (1.0 - p0).ln())
    };
    SrmReport { treatment, control, expected_share, log_lr, mismatch: log_lr >= (1.0 / alpha).ln() }
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut s = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        s += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::plan::GuardrailSpec;
    use crate::stats::{Moments, Verdict, judge, ln_gamma, srm};

    /// An error-rate guardrail (design effect 1 point) that rolls back.
    pub(crate) fn error_guardrail(tolerance: f64, min_sample: u64) -> GuardrailSpec {
        serde_json::from_value(serde_json::json!({
            "name": "errors", "metric": "error", "comparison": "absolute", "tolerance": tolerance,
            "mde": 0.01, "min_sample": min_sample, "action": "rollback"
        }))
        .unwrap()
    }

    /// `n` requests, `errors` of them failed.
    pub(crate) fn bernoulli(n: u64, errors: u64) -> Moments {
        Moments::bernoulli(n as f64, errors as f64)
    }

    /// A fail whose always-valid bounds still include 0 says which test decided and why the
    /// bounds differ (issue 20: "harm detected" beside bounds that include 0 read as a
    /// contradiction); one whose bounds exclude 0 needs no such note.
    #[test]
    fn a_fail_explains_itself_when_its_bounds_include_zero() {
        let g = error_guardrail(0.0, 100);
        let (mut clash, mut clear) = (None, None);
        for n in (200..4000).step_by(100) {
            for extra in 1..40 {
                let r = judge(&g, &bernoulli(n, n / 100 + extra), &bernoulli(n, n / 100));
                if r.verdict != Verdict::Fail {
                    continue;
                }
                match r.lower {
                    Some(l) if l <= 0.0 => clash = clash.or(Some(r)),
                    Some(_) => clear = clear.or(Some(r)),
                    None => {}
                }
            }
        }
        let clash = clash.expect("a fail decided before its bounds exclude 0");
        assert!(clash.explanation.contains("the SPRT decided"), "{}", clash.explanation);
        let clear = clear.expect("a fail with bounds above 0");
        assert!(!clear.explanation.contains("decided"), "{}", clear.explanation);
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
    }

    #[test]
    fn no_data_is_inconclusive_never_pass() {
        let r = judge(&error_guardrail(0.005, 200), &Moments::default(), &Moments::default());
        assert_eq!(r.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn a_clear_regression_fails_and_equal_arms_pass() {
        let g = error_guardrail(0.005, 200);
        assert_eq!(judge(&g, &bernoulli(2000, 200), &bernoulli(2000, 20)).verdict, Verdict::Fail);
        assert_eq!(
            judge(&g, &bernoulli(20_000, 200), &bernoulli(20_000, 200)).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(&g, &bernoulli(50, 1), &bernoulli(50, 1)).verdict,
            Verdict::Inconclusive,
            "below min sample"
        );
    }

    #[test]
    fn sample_ratio_mismatch_is_detected_only_when_real() {
        assert!(!srm(100.0, 900.0, 0.1, 0.001).mismatch);
        assert!(!srm(1000.0, 9000.0, 0.1, 0.001).mismatch);
        assert!(srm(3000.0, 7000.0, 0.1, 0.001).mismatch);
    }
}

#[cfg(test)]
mod review_regressions {
    use crate::plan::GuardrailSpec;
    use crate::stats::{Moments, Verdict, cs_half_width, judge};

    /// A non-finite variance must never collapse the bound to zero width.
    #[test]
    fn infinite_variance_is_never_decisive() {
        assert_eq!(cs_half_width(f64::INFINITY, 1.0, 0.05), f64::INFINITY);
        assert_eq!(cs_half_width(f64::NAN, 1.0, 0.05), f64::INFINITY);
        let g: GuardrailSpec = serde_json::from_value(serde_json::json!({
            "name": "lat", "metric": "latency_ms", "comparison": "absolute", "min_sample": 2, "action": "rollback"
        }))
        .unwrap();
        let mut c = Moments::default();
        c.push(1e200);
        c.push(1.0);
        let mut t = Moments::default();
        t.push(1.0);
        t.push(1.0);
        assert_eq!(judge(&g, &t, &c).verdict, Verdict::Inconclusive);
    }

    /// Four events are not evidence: no fail before the burn-in.
    #[test]
    fn no_verdict_before_the_burn_in() {
        let g: GuardrailSpec = serde_json::from_value(serde_json::json!({
            "name": "pf", "metric": "payment_failed", "comparison": "absolute", "tolerance": 0.01, "action": "rollback"
        }))
        .unwrap();
        let ones = Moments { n: 2.0, sum: 2.0, sumsq: 2.0 };
        let zeros = Moments { n: 2.0, sum: 0.0, sumsq: 0.0 };
        assert_eq!(judge(&g, &ones, &zeros).verdict, Verdict::Inconclusive);
    }
}

/// One tick's Prometheus readings for a guardrail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// The treatment query's value (None: empty result); for a range, its latest step's.
    pub treatment: Option<f64>,
    /// The control query's value (None: empty result or not asked); for a range, its latest
    /// step's.
    pub control: Option<f64>,
    /// A query error, if one happened.
    pub error: Option<String>,
    /// The queries as sent.
    pub queries: Vec<String>,
    /// When Prometheus evaluated the instant query (its own clock), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// For a guardrail with `range_step`: the range queries' steps since the wave began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<crate::readings::RangeReading>,
}

/// Harm of one reading in the guardrail's harmful direction, and the threshold it is held to;
/// or why this reading cannot be judged.
pub(crate) fn harm(
    g: &GuardrailSpec,
    treatment: f64,
    control: Option<f64>,
) -> Result<(f64, f64), &'static str> {
    let sign = if g.harmful == Direction::Increase { 1.0 } else { -1.0 };
    match g.comparison {
        Comparison::Bound => match g.bound {
            Some(b) => Ok((sign * (treatment - b), 0.0)),
            None => Err("no bound configured"),
        },
        Comparison::Absolute | Comparison::Relative => {
            let Some(c) = control.filter(|c| c.is_finite()) else {
                return Err("control query returned no data");
            };
            if g.comparison == Comparison::Absolute {
                Ok((sign * (treatment - c), g.tolerance))
            } else if c.abs() < 1e-12 {
                Err("control reads zero; a relative comparison is undefined")
            } else {
                Ok((sign * (treatment / c - 1.0), g.tolerance))
            }
        }
    }
}

/// Judges a Prometheus guardrail from one tick's readings: harm (in the guardrail's harmful
/// direction) above the tolerance fails; at or below passes; a query error or an empty result
/// is inconclusive. [`crate::readings::judge`] builds on it: how many bad readings act.
pub fn judge_reading(g: &GuardrailSpec, r: Option<&Reading>) -> VerdictReport {
    let mut report = VerdictReport::inconclusive(g, Moments::default(), Moments::default());
    let Some(r) = r else {
        report.explanation = "no reading".into();
        return report;
    };
    if let Some(e) = &r.error {
        report.explanation = format!("query failed: {e}");
        return report;
    }
    let Some(t) = r.treatment.filter(|t| t.is_finite()) else {
        report.explanation = "treatment query returned no data".into();
        return report;
    };
    report.treatment = Moments { n: 1.0, sum: t, sumsq: t * t };
    let (harm, threshold) = match harm(g, t, r.control) {
        Ok(h) => h,
        Err(why) => {
            report.explanation = why.into();
            return report;
        }
    };
    if g.comparison != Comparison::Bound
        && let Some(c) = r.control
    {
        report.control = Moments { n: 1.0, sum: c, sumsq: c * c };
    }
    report.estimate = Some(harm);
    report.lower = Some(harm);
    report.upper = Some(harm);
    if harm > threshold {
        report.verdict = Verdict::Fail;
        report.explanation = format!("reading shows harm {harm:.4} > {threshold}");
    } else {
        report.verdict = Verdict::Pass;
        report.explanation = format!("reading shows harm {harm:.4} ≤ {threshold}");
    }
    report
}

#[cfg(test)]
mod quantile_tests {
    use crate::plan::GuardrailSpec;
    use crate::sim::Rng;
    use crate::sketch::Sketch;
    use crate::stats::{Verdict, judge_quantile};

    fn guardrail(comparison: &str, extra: serde_json::Value) -> GuardrailSpec {
        let mut g = serde_json::json!({"name": "p95", "metric": "latency_ms", "quantile": 0.95,
            "comparison": comparison, "min_sample": 200, "action": "rollback"});
        g.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(g).unwrap()
    }

    /// `n` latencies around 100 ms, a share `slow` of them at 400 ms.
    fn latencies(rng: &mut Rng, n: usize, slow: f64) -> Sketch {
        let mut s = Sketch::default();
        for _ in 0..n {
            let x = if rng.uniform() < slow { 400.0 } else { 100.0 + 10.0 * rng.normal() };
            s.add(x.max(0.0));
        }
        s
    }

    #[test]
    fn a_slo_on_the_p95_passes_when_held_and_fails_when_the_tail_grows() {
        let mut rng = Rng::new(3);
        let slo = guardrail("bound", serde_json::json!({"bound": 200.0}));
        let ok = judge_quantile(&slo, &latencies(&mut rng, 5000, 0.01), &Sketch::default());
        assert_eq!(ok.verdict, Verdict::Pass, "{}", ok.explanation);
        let q = ok.quantiles.unwrap();
        assert!(q.treatment.unwrap() < 200.0 && q.threshold == Some(200.0), "{q:?}");
        let bad = judge_quantile(&slo, &latencies(&mut rng, 5000, 0.15), &Sketch::default());
        assert_eq!(bad.verdict, Verdict::Fail, "{}", bad.explanation);
        assert!(bad.explanation.starts_with("p95 treatment 39"), "{}", bad.explanation);
        assert!(bad.explanation.contains("held to 200.0 ms"), "{}", bad.explanation);
    }

    #[test]
    fn against_the_control_the_tail_is_compared_with_tolerance() {
        let mut rng = Rng::new(5);
        let g = guardrail("relative", serde_json::json!({"tolerance": 0.2}));
        let control = latencies(&mut rng, 5000, 0.0);
        let same = judge_quantile(&g, &latencies(&mut rng, 5000, 0.0), &control);
        assert_ne!(same.verdict, Verdict::Fail, "{}", same.explanation);
        // The means barely move (10% slow requests), the p95 does.
        let tail = judge_quantile(&g, &latencies(&mut rng, 5000, 0.10), &control);
        assert_eq!(tail.verdict, Verdict::Fail, "{}", tail.explanation);
        let none = judge_quantile(&g, &control, &Sketch::default());
        assert_eq!(none.verdict, Verdict::Inconclusive, "{}", none.explanation);
    }

    #[test]
    fn a_a_false_alarms_stay_rare_when_looking_every_batch() {
        let g = guardrail("relative", serde_json::json!({"tolerance": 0.1}));
        let mut alarms = 0;
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let (mut t, mut c) = (Sketch::default(), Sketch::default());
            for _ in 0..20 {
                t.merge(&latencies(&mut rng, 100, 0.02));
                c.merge(&latencies(&mut rng, 100, 0.02));
                if judge_quantile(&g, &t, &c).verdict == Verdict::Fail {
                    alarms += 1;
                    break;
                }
            }
        }
        assert!(alarms <= 4, "{alarms} of 40 A/A runs failed");
    }
}
