//! Operating characteristics of the guardrail test, side by side with the plain confidence-
//! sequence rule, in one run: the false-alarm rate over simulated A/A rollouts with a look every
//! tick, and the mean samples to a fail verdict at the design effect δ and at 2δ divided by
//! Wald's SPRT expected sample size E1[N] for the same α and β.
//!
//! `cargo bench -p wavegate-rollout --bench sequential` runs 10,000 rollouts per row;
//! `cargo test --benches` runs a 200-rollout smoke pass.
//!
//! Setup: error-rate guardrail (a proportion), baseline 2%, design effect δ = 1 point absolute,
//! α = 0.05, β = 0.2, a 50/50 split, a look every 50 requests per arm, horizon 10× the
//! fixed-horizon sample size. Wald's E1 uses the Gaussian approximation of the difference with
//! the variance under the alternative, the information scale the test itself runs on.

use wavegate_rollout::plan::GuardrailSpec;
use wavegate_rollout::sim::Rng;
use wavegate_rollout::stats::{Moments, Verdict, cs_half_width, judge};

const P0: f64 = 0.02;
const DELTA: f64 = 0.01;
const ALPHA: f64 = 0.05;
const BETA: f64 = 0.2;
const BATCH: u64 = 50;

fn guardrail() -> GuardrailSpec {
    serde_json::from_value(serde_json::json!({
        "name": "errors", "metric": "error", "comparison": "absolute", "tolerance": 0.0,
        "mde": DELTA, "alpha": ALPHA, "beta": BETA, "min_sample": 100, "action": "rollback"
    }))
    .unwrap()
}

/// Wald's expected samples per arm under the alternative (error rate P0 + d) for the same α
/// and β, on the Gaussian information scale of the difference: E1[I] = ((1−β)A + βB)/(d²/2)
/// with per-pair variance p1(1−p1) + p0(1−p0), the variance under that alternative.
fn wald_e1(d: f64) -> f64 {
    let (a, b) = (((1.0 - BETA) / ALPHA).ln(), (BETA / (1.0 - ALPHA)).ln());
    let info = ((1.0 - BETA) * a + BETA * b) / (d * d / 2.0);
    let p1 = P0 + d;
    info * (p1 * (1.0 - p1) + P0 * (1.0 - P0))
}

fn fixed_horizon() -> f64 {
    let z = 1.644_853_6 + 0.841_621_2;
    z * z * 2.0 * P0 * (1.0 - P0) / (DELTA * DELTA)
}

/// The plain rule: fail when the confidence sequence's lower bound on harm is above 0.
fn cs_fails(t: &Moments, c: &Moments) -> bool {
    if t.n < 30.0 || c.n < 30.0 {
        return false;
    }
    let var = |m: &Moments| {
        let p = (m.sum + 0.5) / (m.n + 1.0);
        p * (1.0 - p) / m.n
    };
    let v = var(t) + var(c);
    let est = t.sum / t.n - c.sum / c.n;
    est - cs_half_width(v, DELTA * DELTA, ALPHA) > 0.0
}

struct Row {
    false_or_power: f64,
    mean_samples: f64,
    median_samples: f64,
}

/// Runs `runs` rollouts with treatment error rate `p1`; returns the share that failed and the
/// mean treatment samples at the fail (over the runs that failed).
fn simulate(seed: u64, runs: usize, p1: f64, rule: &dyn Fn(&Moments, &Moments) -> bool) -> Row {
    let horizon = (10.0 * fixed_horizon()) as u64;
    let mut rng = Rng::new(seed);
    let (mut failed, mut samples) = (0usize, 0f64);
    let mut at = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (mut t, mut c) = (Moments::default(), Moments::default());
        while (t.n as u64) < horizon {
            let et = rng.binomial(BATCH, p1) as f64;
            let ec = rng.binomial(BATCH, P0) as f64;
            t.merge(&Moments { n: BATCH as f64, sum: et, sumsq: et });
            c.merge(&Moments { n: BATCH as f64, sum: ec, sumsq: ec });
            if rule(&t, &c) {
                failed += 1;
                samples += t.n;
                at.push(t.n);
                break;
            }
        }
    }
    at.sort_by(f64::total_cmp);
    // The median over all runs: runs that never fail count as beyond the horizon.
    let median = if failed * 2 > runs { at[runs / 2] } else { f64::INFINITY };
    Row {
        false_or_power: failed as f64 / runs as f64,
        mean_samples: if failed > 0 { samples / failed as f64 } else { f64::NAN },
        median_samples: median,
    }
}

/// Wald's two-boundary SPRT on the same statistic, for reference: stops at log Λ ≥ ln(1/α)
/// (fail) or log Λ ≤ ln(β/(1−α)) (accept). Returns (share failed, mean samples to either
/// decision over all runs).
fn two_boundary(seed: u64, runs: usize, p1: f64) -> (f64, f64) {
    let g = guardrail();
    let lower = (BETA / (1.0 - ALPHA)).ln();
    let horizon = (10.0 * fixed_horizon()) as u64;
    let mut rng = Rng::new(seed);
    let (mut failed, mut total) = (0usize, 0f64);
    for _ in 0..runs {
        let (mut t, mut c) = (Moments::default(), Moments::default());
        while (t.n as u64) < horizon {
            let et = rng.binomial(BATCH, p1) as f64;
            let ec = rng.binomial(BATCH, P0) as f64;
            t.merge(&Moments { n: BATCH as f64, sum: et, sumsq: et });
            c.merge(&Moments { n: BATCH as f64, sum: ec, sumsq: ec });
            let r = judge(&g, &t, &c);
            if r.verdict == Verdict::Fail {
                failed += 1;
                break;
            }
            if r.log_lr.is_some_and(|l| l <= lower) {
                break;
            }
        }
        total += t.n;
    }
    (failed as f64 / runs as f64, total / runs as f64)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 10_000 } else { 200 };
    let g = guardrail();
    let tuned = |t: &Moments, c: &Moments| judge(&g, t, c).verdict == Verdict::Fail;
    let plain = |t: &Moments, c: &Moments| cs_fails(t, c);
    println!(
        "sequential guardrail test: p0 = {P0}, δ = {DELTA}, α = {ALPHA}, β = {BETA}, look every {BATCH}/arm, {runs} rollouts per row"
    );
    println!(
        "fixed-horizon n = {:.0}/arm; Wald E1[N] at δ = {:.0}, at 2δ = {:.0}",
        fixed_horizon(),
        wald_e1(DELTA),
        wald_e1(2.0 * DELTA)
    );
    println!();
    println!(
        "| test | A/A false alarms (α = {ALPHA}) | median n to fail at δ / Wald E1 | mean n to fail at δ / Wald E1 | median at 2δ / Wald E1(2δ) | mean at 2δ / Wald E1(2δ) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, rule) in [
        ("design-effect SPRT (wavegate judge)", &tuned as &dyn Fn(&Moments, &Moments) -> bool),
        ("mixture confidence sequence only", &plain),
    ] {
        let aa = simulate(0xA11CE, runs, P0, rule);
        let at = simulate(0xB0B, runs, P0 + DELTA, rule);
        let at2 = simulate(0xCAFE, runs, P0 + 2.0 * DELTA, rule);
        println!(
            "| {name} | {:.4} | {:.2} | {:.2} | {:.2} | {:.2} |",
            aa.false_or_power,
            at.median_samples / wald_e1(DELTA),
            at.mean_samples / wald_e1(DELTA),
            at2.median_samples / wald_e1(2.0 * DELTA),
            at2.mean_samples / wald_e1(2.0 * DELTA)
        );
        let _ = (at.false_or_power, at2.false_or_power);
    }
    let (aa, _) = two_boundary(0xA11CE, runs, P0);
    let (pow1, n1) = two_boundary(0xB0B, runs, P0 + DELTA);
    let (pow2, n2) = two_boundary(0xCAFE, runs, P0 + 2.0 * DELTA);
    println!();
    println!(
        "reference, the same statistic with Wald's acceptance boundary (not what the controller runs):"
    );
    println!(
        "| test | A/A false alarms | power at δ | mean n to a decision at δ / Wald E1 | power at 2δ | mean n at 2δ / Wald E1(2δ) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| two-boundary SPRT | {aa:.4} | {pow1:.3} | {:.2} | {pow2:.3} | {:.2} |",
        n1 / wald_e1(DELTA),
        n2 / wald_e1(2.0 * DELTA)
    );
}
