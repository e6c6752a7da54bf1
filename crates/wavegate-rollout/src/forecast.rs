//! Time-to-verdict forecasts for `plan lint --traffic RPS`: for each wave and guardrail, how
//! long the controller will take to reach a pass verdict on a healthy variant and a fail
//! verdict on a regression of the guardrail's design effect, at the plan's traffic.
//!
//! The forecast runs the controller's own decision, [`crate::stats::assess`] with the fail
//! statistic [`crate::stats::sprt_log_lr`] that `judge` uses, on simulated traffic: every tick
//! (`serve --tick`, 10 s by default) `λ·tick` requests arrive, split between the arms at the
//! wave's exposure, with outcomes drawn at the baseline (healthy) or at the baseline moved by
//! the design effect (regression); the sufficient statistics accumulate as the server's
//! aggregates do, and the guardrail is judged once per tick. So everything the controller
//! applies is in the numbers: the burn-in, `min_sample` per arm (the smaller arm sets the
//! pace), the wave's hold (a pass promotes only at a tick at or after it), the tick
//! granularity, and the always-valid test's cost. A fixed number of seeded runs
//! ([`Options::runs`]) gives means and 90th percentiles; the result is deterministic.
//!
//! For comparison the forecast also gives the samples two textbook tests need at the same α, β
//! and effect: Wald's sequential test (the least any sequential test needs on average) and a
//! fixed-n one-sided z-test (one look, planned in advance). The controller's test is always
//! valid (it may look every tick without inflating α) and pays for that in samples:
//! `cost_vs_fixed` is its mean treatment samples to fail over the fixed-n test's.
//!
//! Two-sample comparisons use the information `I = 1/Var(Δ̂)`, with `Var(Δ̂) = σt²/nt + σc²/nc`;
//! Wald: `E1[I] = ((1−β)A + βB)/(δ²/2)`, `A = ln((1−β)/α)`, `B = ln(β/(1−α))`; fixed-n:
//! `I = (z₁₋α + z₁₋β)²/δ²`.

use serde::Serialize;

use crate::plan::{Comparison, Direction, GuardrailSpec, PlanSpec, Risk};
use crate::sim::Rng;
use crate::stats::{Moments, Stage, assess, cs_half_width, sprt_log_lr};

/// The controller's default tick (`serve --tick`), in seconds.
pub const DEFAULT_TICK_SECS: f64 = 10.0;

/// Seeded runs per scenario by default: the mean's relative standard error stays near 4%.
pub const DEFAULT_RUNS: usize = 300;

/// Looks simulated per run at most; longer horizons judge every k-th tick (the verdict time is
/// then known to within k ticks, k chosen so that is under 0.1% of the horizon).
const MAX_LOOKS: u64 = 4000;

/// What a forecast assumes.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Requests per second reaching the flag (a guardrail's own `traffic` wins).
    pub traffic: Option<f64>,
    /// Seconds between controller ticks.
    pub tick_secs: f64,
    /// Seeded runs per scenario.
    pub runs: usize,
    /// The simulation's seed.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options { traffic: None, tick_secs: DEFAULT_TICK_SECS, runs: DEFAULT_RUNS, seed: 18 }
    }
}

/// One wave × guardrail forecast. Times are seconds from the wave's start; samples count the
/// treatment arm.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Forecast {
    /// Wave, 1-based.
    pub wave: usize,
    /// Guardrail name.
    pub guardrail: String,
    /// Mean time to a fail verdict on a regression of the design effect (None: cannot forecast).
    pub to_fail_secs: Option<f64>,
    /// Mean time to the pass verdict the controller promotes on (at or after the hold), with no
    /// effect.
    pub to_pass_secs: Option<f64>,
    /// Mean treatment samples at the fail verdict.
    pub fail_samples: Option<f64>,
    /// Mean treatment samples at the promoting pass verdict.
    pub pass_samples: Option<f64>,
    /// 90th percentile of the time to fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_p90_secs: Option<f64>,
    /// 90th percentile of the time to the promoting pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_p90_secs: Option<f64>,
    /// Mean time to the guardrail's first pass verdict, hold or not: what a hold shorter than
    /// this waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_verdict_secs: Option<f64>,
    /// Share of regression runs that failed within the horizon (the test's power there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_share: Option<f64>,
    /// Share of healthy runs that passed within the horizon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_share: Option<f64>,
    /// Share of healthy runs that failed (false alarms; at most about α).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_fail_share: Option<f64>,
    /// The earliest a pass can promote: the hold, or the tick at which both arms reach
    /// `min_sample` in expectation, whichever is later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_floor_secs: Option<f64>,
    /// What sets the time to pass: `hold`, `min_sample` or `evidence`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_limited_by: Option<&'static str>,
    /// Wald's sequential test: expected treatment samples to fail at the design effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wald_fail_samples: Option<f64>,
    /// A fixed-n one-sided z-test at the same α and power: treatment samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_n_samples: Option<f64>,
    /// `fail_samples / fixed_n_samples`: what always-valid monitoring costs in samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_vs_fixed: Option<f64>,
    /// Seconds between the looks simulated (the controller's tick).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_secs: Option<f64>,
    /// How long each run was followed before it counted as undecided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon_secs: Option<f64>,
    /// Seeded runs per scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<usize>,
    /// Why no forecast (or part of one), when there is none.
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

/// The information a fixed-n one-sided z-test at α with power 1−β needs for a shift δ.
pub fn fixed_n_information(delta: f64, alpha: f64, beta: f64) -> f64 {
    let z = probit(1.0 - alpha) + probit(1.0 - beta);
    z * z / (delta * delta)
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn probit(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A metric as the forecast draws it: a proportion at `rate`, or normal with `mean` and `sd`.
#[derive(Debug, Clone, Copy)]
struct Metric {
    proportion: bool,
    level: f64,
    sd: f64,
}

impl Metric {
    /// Per-request variance at `level`.
    fn variance(&self, level: f64) -> f64 {
        if self.proportion { level * (1.0 - level) } else { self.sd * self.sd }
    }

    /// One tick's statistics of `n` requests at `level`.
    fn draw(&self, rng: &mut Rng, n: u64, level: f64) -> Moments {
        if self.proportion {
            Moments::bernoulli(n as f64, rng.binomial_rare(n, level) as f64)
        } else {
            rng.normal_moments(n, level, self.sd)
        }
    }
}

/// The guardrail's metric today, from its `baseline`.
fn metric(g: &GuardrailSpec) -> Result<Metric, String> {
    let base = g
        .baseline
        .as_ref()
        .ok_or("no baseline: add `baseline: {rate: …}` (or mean and sd) to forecast")?;
    if g.is_proportion() {
        let p = base.rate.ok_or("baseline.rate is needed for the error metric")?;
        if !(p > 0.0 && p < 1.0) {
            return Err("baseline.rate must be between 0 and 1".into());
        }
        Ok(Metric { proportion: true, level: p, sd: 0.0 })
    } else {
        let sd =
            base.sd.filter(|s| *s > 0.0).ok_or("baseline.sd (positive) is needed for a mean")?;
        let level = base.mean.unwrap_or(0.0);
        if g.comparison == Comparison::Relative && level.abs() < 1e-12 {
            return Err("baseline.mean is needed (and not 0) for a relative comparison".into());
        }
        Ok(Metric { proportion: false, level, sd })
    }
}

/// What the arms look like in one scenario: the treatment's and the control's level.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    treatment: f64,
    control: f64,
}

/// The healthy and the regressed scenario for `g` (regressed: harm = the design effect).
fn scenarios(g: &GuardrailSpec, m: &Metric) -> (Scenario, Scenario) {
    let sign = if g.harmful == Direction::Increase { 1.0 } else { -1.0 };
    let delta = g.design_effect();
    let clamp = |x: f64| if m.proportion { x.clamp(0.0, 1.0) } else { x };
    let healthy = Scenario { treatment: m.level, control: m.level };
    let bad = match g.comparison {
        Comparison::Absolute => m.level + sign * delta,
        Comparison::Relative => m.level * (1.0 + sign * delta),
        Comparison::Bound => g.bound.unwrap_or(m.level) + sign * delta,
    };
    (healthy, Scenario { treatment: clamp(bad), control: m.level })
}

/// How one simulated wave went.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// (seconds, treatment samples) at the fail verdict.
    fail: Option<(f64, f64)>,
    /// (seconds, treatment samples) at the first pass verdict.
    first_pass: Option<(f64, f64)>,
    /// (seconds, treatment samples) at the pass the controller promotes on.
    promote: Option<(f64, f64)>,
}

/// The wave as the controller sees it.
#[derive(Debug, Clone, Copy)]
struct Wave {
    /// Treatment share of the traffic.
    exposure: f64,
    /// Requests per second.
    lambda: f64,
    /// Seconds per tick.
    tick: f64,
    /// The hold, in seconds.
    hold: f64,
    /// Ticks to follow a run.
    ticks: u64,
    /// Judge every `step`-th tick.
    step: u64,
}

/// One run of the controller's judgement over a wave of simulated traffic.
fn simulate(g: &GuardrailSpec, m: &Metric, s: Scenario, w: &Wave, rng: &mut Rng) -> Run {
    let (mut t, mut c) = (Moments::default(), Moments::default());
    let mut run = Run::default();
    let mut carry = 0.0;
    for k in 1..=w.ticks {
        let due = carry + w.lambda * w.tick;
        let n = due.floor();
        carry = due - n;
        let n = n as u64;
        let nt = rng.binomial(n, w.exposure);
        t.merge(&m.draw(rng, nt, s.treatment));
        if g.comparison != Comparison::Bound {
            c.merge(&m.draw(rng, n - nt, s.control));
        }
        if k % w.step != 0 && k != w.ticks {
            continue;
        }
        let secs = k as f64 * w.tick;
        match assess(g, &t, &c, sprt_log_lr).stage {
            Stage::Fail => {
                run.fail = Some((secs, t.n));
                return run;
            }
            Stage::Pass => {
                run.first_pass.get_or_insert((secs, t.n));
                // The machine promotes on a pass only once the hold has elapsed.
                if secs >= w.hold {
                    run.promote = Some((secs, t.n));
                    return run;
                }
            }
            _ => {}
        }
    }
    run
}

/// Mean and 90th percentile of `xs` (None when empty).
fn summary(mut xs: Vec<(f64, f64)>) -> Option<(f64, f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().map(|x| x.0).sum::<f64>() / n;
    let samples = xs.iter().map(|x| x.1).sum::<f64>() / n;
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let p90 = xs[((xs.len() as f64 * 0.9).ceil() as usize).clamp(1, xs.len()) - 1].0;
    Some((mean, p90, samples))
}

/// The smallest information (1/variance units) at which the confidence sequence's half-width
/// falls below `margin`, for the horizon.
fn information_for_width(margin: f64, tau2: f64, alpha: f64) -> f64 {
    let (mut lo, mut hi) = (1e-12f64, 1e18f64);
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if cs_half_width(1.0 / mid, tau2, alpha) < margin { hi = mid } else { lo = mid }
    }
    hi
}

/// Forecasts every wave × guardrail.
pub fn forecast(plan: &PlanSpec, opts: &Options) -> Vec<Forecast> {
    let mut out = Vec::new();
    for (i, w) in plan.waves.iter().enumerate() {
        let e = f64::from(w.exposure.basis_points()) / 10_000.0;
        for (j, g) in plan.guardrails.iter().enumerate() {
            let mut f = Forecast { wave: i + 1, guardrail: g.name.clone(), ..Forecast::default() };
            let seed =
                opts.seed ^ ((i as u64) << 32 | j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            match forecast_one(g, e, w.hold.secs() as f64, opts, seed, &mut f) {
                Ok(()) => {}
                Err(why) => f.note = Some(why),
            }
            out.push(f);
        }
    }
    out
}

fn forecast_one(
    g: &GuardrailSpec,
    e: f64,
    hold: f64,
    opts: &Options,
    seed: u64,
    f: &mut Forecast,
) -> Result<(), String> {
    if g.source == crate::plan::SignalSource::Prometheus {
        return Err("a Prometheus guardrail judges readings, not samples: no forecast".into());
    }
    if g.source == crate::plan::SignalSource::Incidents {
        return Err("an incident guardrail passes until incidents show harm: no forecast".into());
    }
    if g.quantile.is_some() {
        return Err(
            "a quantile guardrail judges the latency distribution's tail: no forecast".into()
        );
    }
    let lambda = g
        .traffic
        .or(opts.traffic)
        .ok_or("no traffic: pass --traffic RPS or set the guardrail's traffic")?;
    if !(lambda > 0.0 && lambda.is_finite()) {
        return Err("traffic must be a positive number of requests per second".into());
    }
    let tick = opts.tick_secs;
    if !(tick > 0.0 && tick.is_finite()) {
        return Err("the tick must be a positive number of seconds".into());
    }
    let m = metric(g)?;
    let two_sample = g.comparison != Comparison::Bound;
    if two_sample && e >= 1.0 {
        return Err("no control arm at 100%".into());
    }
    if g.comparison == Comparison::Bound && g.bound.is_none() {
        return Err("no bound configured".into());
    }
    let (healthy, bad) = scenarios(g, &m);
    let (alpha, beta, delta) = (g.alpha(), g.beta(), g.design_effect());
    // Per-request variances in the comparison's units, and the information per request.
    let unit = if g.comparison == Comparison::Relative { m.level * m.level } else { 1.0 };
    let info_rate = |s: Scenario| {
        let vt = m.variance(s.treatment) / unit / e;
        let vc = if two_sample { m.variance(s.control) / unit / (1.0 - e) } else { 0.0 };
        1.0 / (vt + vc)
    };
    // Textbook references, in treatment samples at the baseline's variance.
    let per_info = e / info_rate(healthy);
    let (wald_i1, _) = wald_information(delta, alpha, beta);
    f.wald_fail_samples = Some(wald_i1 * per_info);
    let fixed = fixed_n_information(delta, alpha, beta) * per_info;
    f.fixed_n_samples = Some(fixed);

    // Floor of a pass: the hold, and min_sample in the smaller arm at the expected split.
    let smaller = if two_sample { e.min(1.0 - e) } else { e };
    let floor_ticks = (g.min_sample as f64 / (lambda * smaller) / tick).ceil().max(1.0);
    let floor = (floor_ticks * tick).max((hold / tick).ceil() * tick);
    f.pass_floor_secs = Some(floor);

    // Horizon: four times the slowest of the pass floor, the information the confidence
    // sequence needs to clear the pass threshold at no harm, and what the SPRT needs to
    // cross ln(1/α) at the design effect.
    let healthy_harm = match g.comparison {
        Comparison::Bound => {
            let sign = if g.harmful == Direction::Increase { 1.0 } else { -1.0 };
            sign * (m.level - g.bound.unwrap_or(0.0))
        }
        Comparison::Relative => 0.0,
        Comparison::Absolute => 0.0,
    };
    let threshold_pass = if two_sample { g.tolerance } else { 0.0 };
    let margin = threshold_pass - healthy_harm;
    let pass_secs_guess = (margin > 0.0)
        .then(|| information_for_width(margin, delta * delta, alpha) / info_rate(healthy) / lambda);
    let fail_secs_guess = 2.0 * (1.0 / alpha).ln() / (delta * delta) / info_rate(bad) / lambda;
    let slowest = pass_secs_guess.unwrap_or(0.0).max(fail_secs_guess).max(floor);
    let ticks = ((4.0 * slowest / tick).ceil() as u64 + 2).clamp(10, 1_000_000);
    let step = ticks.div_ceil(MAX_LOOKS).max(1);
    let wave = Wave { exposure: e, lambda, tick, hold, ticks, step };
    f.tick_secs = Some(tick);
    f.horizon_secs = Some(ticks as f64 * tick);
    f.runs = Some(opts.runs);

    let mut rng = Rng::new(seed);
    let runs = opts.runs.max(1);
    let (mut fails, mut promotes, mut first_passes, mut false_fails) =
        (Vec::new(), Vec::new(), Vec::new(), 0usize);
    for _ in 0..runs {
        let r = simulate(g, &m, bad, &wave, &mut rng);
        fails.extend(r.fail);
        let r = simulate(g, &m, healthy, &wave, &mut rng);
        promotes.extend(r.promote);
        first_passes.extend(r.first_pass);
        false_fails += usize::from(r.fail.is_some());
    }
    let share = |k: usize| k as f64 / runs as f64;
    f.fail_share = Some(share(fails.len()));
    f.pass_share = Some(share(promotes.len()));
    f.false_fail_share = Some(share(false_fails));
    if let Some((mean, p90, samples)) = summary(fails) {
        f.to_fail_secs = Some(mean);
        f.fail_p90_secs = Some(p90);
        f.fail_samples = Some(samples);
        f.cost_vs_fixed = Some(samples / fixed);
    }
    // What sets the pace: when most promoting passes land on the floor, the floor does.
    let on_floor = promotes.iter().filter(|p| p.0 <= floor + tick / 2.0).count();
    let floor_bound = 2 * on_floor >= promotes.len();
    if let Some((mean, p90, samples)) = summary(promotes) {
        f.to_pass_secs = Some(mean);
        f.pass_p90_secs = Some(p90);
        f.pass_samples = Some(samples);
        f.pass_limited_by = Some(if floor_bound {
            if floor_ticks * tick >= (hold / tick).ceil() * tick { "min_sample" } else { "hold" }
        } else {
            "evidence"
        });
    }
    f.pass_verdict_secs = summary(first_passes).map(|s| s.0);
    let mut notes = Vec::new();
    if margin <= 0.0 {
        notes.push(if two_sample {
            "tolerance 0: the upper bound on harm never drops below 0 without a real improvement, so a healthy wave does not pass; set a tolerance".to_owned()
        } else {
            "the baseline is not inside the bound: a healthy wave does not pass".to_owned()
        });
    } else if f.pass_share.is_some_and(|s| s < 0.5) {
        notes.push(format!(
            "only {:.0}% of healthy runs passed within {}s",
            100.0 * f.pass_share.unwrap_or(0.0),
            ticks as f64 * tick
        ));
    }
    if f.fail_share.is_some_and(|s| s < 0.5) {
        notes.push(format!(
            "only {:.0}% of regressed runs failed within {}s (a pass came first or none came)",
            100.0 * f.fail_share.unwrap_or(0.0),
            ticks as f64 * tick
        ));
    }
    f.note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(())
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
