//! Operating characteristics of the guardrail fail rules, side by side in one run: the
//! false-alarm rate over simulated A/A rollouts with a look every tick, and the samples to a
//! fail verdict at the design effect δ and at 2δ divided by Wald's SPRT expected sample size
//! E1[N] for the same α and β.
//!
//! `cargo bench -p wavegate-rollout --bench sequential` runs 10,000 rollouts per cell;
//! `cargo test --benches` runs a 200-rollout smoke pass. `SEQ_RUNS=N` overrides either.
//!
//! Setup: error-rate guardrail (a proportion, `comparison: absolute`), baseline 2%, design
//! effect δ = 1 point, α = 0.05, β = 0.2, a 50/50 split, a look every 50 requests per arm,
//! horizon 10× the fixed-horizon sample size. Every rule sees the same simulated rollouts (the
//! crate's `sim::Rng`, fixed seeds). Wald's E1 is the Gaussian formula of `forecast.rs`,
//! `E1[I] = ((1−β)A + βB)/(d²/2)`, turned into samples per arm with the per-pair Bernoulli
//! variance under that alternative, p1(1−p1) + p0(1−p0): the information scale the tests run on.

use wavegate_rollout::forecast::wald_information;
use wavegate_rollout::plan::GuardrailSpec;
use wavegate_rollout::sim::Rng;
use wavegate_rollout::sprt::{SCALE, judge_tuned, judge_with_scale};
use wavegate_rollout::stats::{Moments, Verdict, cs_half_width, judge};

const P0: f64 = 0.02;
const DELTA: f64 = 0.01;
const ALPHA: f64 = 0.05;
const BETA: f64 = 0.2;
const BATCH: u64 = 50;
const SEEDS: [u64; 3] = [0xA11CE, 0xB0B, 0xCAFE];

fn guardrail() -> GuardrailSpec {
    serde_json::from_value(serde_json::json!({
        "name": "errors", "metric": "error", "comparison": "absolute", "tolerance": 0.0,
        "mde": DELTA, "alpha": ALPHA, "beta": BETA, "min_sample": 100, "action": "rollback"
    }))
    .unwrap()
}

/// Wald's expected samples per arm to reject, error rate P0 + d against P0.
fn wald_e1(d: f64) -> f64 {
    let (info, _) = wald_information(d, ALPHA, BETA);
    let p1 = P0 + d;
    info * (p1 * (1.0 - p1) + P0 * (1.0 - P0))
}

/// The one-sided fixed-horizon sample size per arm at δ.
fn fixed_horizon() -> f64 {
    let z = 1.644_853_6 + 0.841_621_2;
    z * z * 2.0 * P0 * (1.0 - P0) / (DELTA * DELTA)
}

/// The confidence-sequence-only rule (the controller's rule before the design-effect SPRT):
/// fail when the mixture confidence sequence's lower bound on harm is above 0.
fn cs_fails(t: &Moments, c: &Moments) -> bool {
    if t.n < 30.0 || c.n < 30.0 {
        return false;
    }
    let var = |m: &Moments| {
        let p = (m.sum + 0.5) / (m.n + 1.0);
        p * (1.0 - p) / m.n
    };
    let est = t.sum / t.n - c.sum / c.n;
    est - cs_half_width(var(t) + var(c), DELTA * DELTA, ALPHA) > 0.0
}

/// One scenario's outcome for one rule.
struct Cell {
    /// Share of rollouts that failed before the horizon (false alarms under A/A, else power).
    failed: f64,
    /// Mean treatment samples at the fail, over the rollouts that failed.
    mean: f64,
    /// Median over all rollouts (a rollout that never fails counts as beyond the horizon).
    median: f64,
}

type Rule<'a> = &'a dyn Fn(&Moments, &Moments) -> bool;

/// One look's new requests: `BATCH` per arm, failing at rate `p1` (treatment) and `P0`.
fn look(rng: &mut Rng, p1: f64, t: &mut Moments, c: &mut Moments) {
    let et = rng.binomial(BATCH, p1) as f64;
    let ec = rng.binomial(BATCH, P0) as f64;
    t.merge(&Moments::bernoulli(BATCH as f64, et));
    c.merge(&Moments::bernoulli(BATCH as f64, ec));
}

/// Runs `runs` rollouts with treatment error rate `p1`, a look every `BATCH` per arm.
fn simulate(seed: u64, runs: usize, p1: f64, rule: Rule) -> Cell {
    let horizon = (10.0 * fixed_horizon()) as u64;
    let mut rng = Rng::new(seed);
    let mut at = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (mut t, mut c) = (Moments::default(), Moments::default());
        while (t.n as u64) < horizon {
            look(&mut rng, p1, &mut t, &mut c);
            if rule(&t, &c) {
                at.push(t.n);
                break;
            }
        }
    }
    let failed = at.len();
    let mean = if failed > 0 { at.iter().sum::<f64>() / failed as f64 } else { f64::NAN };
    at.sort_by(f64::total_cmp);
    let median = if failed * 2 > runs { at[runs / 2] } else { f64::INFINITY };
    Cell { failed: failed as f64 / runs as f64, mean, median }
}

/// Wald's two-boundary SPRT on the design-effect statistic (reference only): stops at
/// log Λ ≥ ln(1/α) (fail) or log Λ ≤ ln(β/(1−α)) (accept). Returns (share failed, mean samples
/// to either decision over all runs).
fn two_boundary(seed: u64, runs: usize, p1: f64) -> (f64, f64) {
    let g = guardrail();
    let lower = (BETA / (1.0 - ALPHA)).ln();
    let horizon = (10.0 * fixed_horizon()) as u64;
    let mut rng = Rng::new(seed);
    let (mut failed, mut total) = (0usize, 0f64);
    for _ in 0..runs {
        let (mut t, mut c) = (Moments::default(), Moments::default());
        while (t.n as u64) < horizon {
            look(&mut rng, p1, &mut t, &mut c);
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
    let runs = std::env::var("SEQ_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(if full {
        10_000
    } else {
        200
    });
    let g = guardrail();
    let (e1, e1_2) = (wald_e1(DELTA), wald_e1(2.0 * DELTA));
    let n_fixed = fixed_horizon();
    println!(
        "sequential guardrail test: p0 = {P0}, δ = {DELTA}, α = {ALPHA}, β = {BETA}, look every {BATCH}/arm, horizon {:.0}/arm, {runs} rollouts per cell",
        10.0 * n_fixed
    );
    println!(
        "fixed-horizon n = {n_fixed:.0}/arm; Wald E1[N] at δ = {e1:.0}/arm ({:.2}·n), at 2δ = {e1_2:.0}/arm ({:.2}·n)",
        e1 / n_fixed,
        e1_2 / n_fixed
    );
    println!(
        "floor for a rule with no acceptance boundary (power → 1): ln(1/α)/((1−β)A + βB) = {:.2}× E1",
        (1.0 / ALPHA).ln() / (wald_information(DELTA, ALPHA, BETA).0 * DELTA * DELTA / 2.0)
    );
    println!();

    let current = |t: &Moments, c: &Moments| judge(&g, t, c).verdict == Verdict::Fail;
    let tuned = |t: &Moments, c: &Moments| judge_tuned(&g, t, c).verdict == Verdict::Fail;
    let wide = |t: &Moments, c: &Moments| judge_with_scale(&g, t, c, 1.0).verdict == Verdict::Fail;
    let narrow =
        |t: &Moments, c: &Moments| judge_with_scale(&g, t, c, 0.25).verdict == Verdict::Fail;
    let plain = |t: &Moments, c: &Moments| cs_fails(t, c);
    let tuned_name = format!("sprt::judge_tuned (half-normal on [δ, ∞), s = {SCALE}δ)");
    let rules: Vec<(&str, Rule)> = vec![
        ("stats::judge (point SPRT at δ; the controller today)", &current),
        (&tuned_name, &tuned),
        ("sprt::judge_with_scale, s = 0.25δ", &narrow),
        ("sprt::judge_with_scale, s = 1.0δ", &wide),
        ("confidence sequence only (the rule before the SPRT)", &plain),
    ];
    println!(
        "| fail rule | A/A false alarms | power at δ | mean n to fail at δ / E1 | median / E1 | power at 2δ | mean n at 2δ / E1(2δ) | median / E1(2δ) | mean at 2δ / n |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, rule) in rules {
        let aa = simulate(SEEDS[0], runs, P0, rule);
        let at = simulate(SEEDS[1], runs, P0 + DELTA, rule);
        let at2 = simulate(SEEDS[2], runs, P0 + 2.0 * DELTA, rule);
        println!(
            "| {name} | {:.4} | {:.4} | {:.2} | {:.2} | {:.4} | {:.2} | {:.2} | {:.2} |",
            aa.failed,
            at.failed,
            at.mean / e1,
            at.median / e1,
            at2.failed,
            at2.mean / e1_2,
            at2.median / e1_2,
            at2.mean / n_fixed
        );
    }
    let (aa, _) = two_boundary(SEEDS[0], runs, P0);
    let (pow1, n1) = two_boundary(SEEDS[1], runs, P0 + DELTA);
    let (pow2, n2) = two_boundary(SEEDS[2], runs, P0 + 2.0 * DELTA);
    println!();
    println!(
        "reference: the point SPRT with Wald's acceptance boundary ln(β/(1−α)) (not a controller rule):"
    );
    println!(
        "| test | A/A false alarms | power at δ | mean n to a decision at δ / E1 | power at 2δ | mean n at 2δ / E1(2δ) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| two-boundary SPRT | {aa:.4} | {pow1:.4} | {:.2} | {pow2:.4} | {:.2} |",
        n1 / e1,
        n2 / e1_2
    );
}
