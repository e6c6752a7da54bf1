//! Seeded random draws for simulations (drills, benchmarks): xorshift64* with Box–Muller
//! normals and normal-approximated binomials, so a tick's sufficient statistics are drawn
//! directly instead of one event at a time. Pure: the seed comes in.

/// A small deterministic generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    /// A generator from a seed (0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed.max(1) ^ 0x9E37_79B9_7F4A_7C15, spare: None }
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }

    /// Binomial(n, p): exact for small n, normal approximation (rounded, clamped) otherwise.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let p = p.clamp(0.0, 1.0);
        if n < 64 {
            return (0..n).filter(|_| self.uniform() < p).count() as u64;
        }
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        (mean + sd * self.normal()).round().clamp(0.0, n as f64) as u64
    }

    /// Binomial(n, p) that stays exact when the expected count of the rarer outcome is small
    /// (an error rate of 1% over a few hundred requests), where the normal approximation of
    /// [`Rng::binomial`] is biased by its clamp at 0: waiting times between rare outcomes are
    /// drawn as geometric gaps; otherwise it is [`Rng::binomial`].
    pub fn binomial_rare(&mut self, n: u64, p: f64) -> u64 {
        let p = p.clamp(0.0, 1.0);
        let rare = p.min(1.0 - p);
        if n < 64 || n as f64 * rare >= 30.0 {
            return self.binomial(n, p);
        }
        if rare <= 0.0 {
            return if p > 0.5 { n } else { 0 };
        }
        let log_q = (1.0 - rare).ln();
        let (mut hits, mut at) = (0u64, 0u64);
        loop {
            // Trials up to and including the next rare outcome: Geometric(rare).
            let u = 1.0 - self.uniform();
            let gap = (u.ln() / log_q).floor() as u64 + 1;
            at = at.saturating_add(gap);
            if at > n {
                break;
            }
            hits += 1;
        }
        if rare == p { hits } else { n - hits }
    }

    /// Count, sum and sum of squares of `n` draws from N(mean, sd²), drawn as statistics.
    pub fn normal_moments(&mut self, n: u64, mean: f64, sd: f64) -> crate::stats::Moments {
        if n == 0 {
            return crate::stats::Moments::default();
        }
        let nf = n as f64;
        let xbar = mean + sd / nf.sqrt() * self.normal();
        let var = if n > 1 {
            let df = nf - 1.0;
            (sd * sd * (1.0 + (2.0 / df).sqrt() * self.normal())).max(0.0)
        } else {
            0.0
        };
        crate::stats::Moments { n: nf, sum: nf * xbar, sumsq: (nf - 1.0) * var + nf * xbar * xbar }
    }
}
