//! The guardrail test's operating characteristics on fixed-seed simulations: the false-alarm
//! rate under repeated looks stays near α (a naive z-test at every look is ~40%), and a real
//! regression at twice the design effect is caught. Fixed seeds, so nothing flakes.

use wavegate_rollout::plan::GuardrailSpec;
use wavegate_rollout::stats::{Moments, Verdict, judge};

/// xorshift64*: a tiny deterministic generator for the simulation.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn guardrail() -> GuardrailSpec {
    serde_json::from_value(serde_json::json!({
        "name": "errors", "metric": "error", "comparison": "absolute", "tolerance": 0.0,
        "mde": 0.02, "min_sample": 100, "action": "rollback"
    }))
    .unwrap()
}

/// Runs `runs` rollouts with `looks` looks of `batch` requests per arm; returns the share that
/// ever failed.
fn fail_rate(
    seed: u64,
    runs: usize,
    looks: usize,
    batch: usize,
    p_control: f64,
    p_treatment: f64,
) -> f64 {
    let g = guardrail();
    let mut rng = Rng(seed);
    let mut failed = 0;
    for _ in 0..runs {
        let (mut t, mut c) = (Moments::default(), Moments::default());
        for _ in 0..looks {
            for _ in 0..batch {
                t.push(if rng.next_f64() < p_treatment { 1.0 } else { 0.0 });
                c.push(if rng.next_f64() < p_control { 1.0 } else { 0.0 });
            }
            if judge(&g, &t, &c).verdict == Verdict::Fail {
                failed += 1;
                break;
            }
        }
    }
    failed as f64 / runs as f64
}

#[test]
fn a_a_false_alarms_stay_below_alpha_despite_looking_every_tick() {
    // 1,000 A/A rollouts, 60 looks each: α = 0.05; 6σ of the binomial estimate is ≈ 0.04.
    let rate = fail_rate(0x5EED_0001, 1000, 60, 50, 0.02, 0.02);
    println!("A/A false-alarm rate over 60 looks: {rate:.3}");
    assert!(rate <= 0.05 + 0.04, "false-alarm rate {rate}");
}

#[test]
fn a_regression_at_twice_the_design_effect_is_caught() {
    let rate = fail_rate(0x5EED_0002, 300, 60, 50, 0.02, 0.06);
    println!("detection at 2× design effect: {rate:.3}");
    assert!(rate >= 0.95, "detection rate {rate}");
}
