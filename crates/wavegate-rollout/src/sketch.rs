//! A mergeable quantile sketch for latencies: logarithmic buckets with 2% relative accuracy
//! (the DDSketch construction). Bucket counts add up across batches, replicas and time.

use std::collections::BTreeMap;

/// Relative accuracy of reported quantiles.
pub const RELATIVE_ACCURACY: f64 = 0.02;

/// The bucket holding exact zeros.
const ZERO: i32 = i32::MIN;

/// Bucket index → count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    counts: BTreeMap<i32, u64>,
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

impl Sketch {
    /// From stored counts.
    pub fn from_counts(counts: BTreeMap<i32, u64>) -> Sketch {
        Sketch { counts }
    }

    /// The counts, for storage.
    pub fn counts(&self) -> &BTreeMap<i32, u64> {
        &self.counts
    }

    /// Adds a non-negative value (negative and non-finite values are ignored).
    pub fn add(&mut self, x: f64) {
        self.add_n(x, 1);
    }

    /// Adds another sketch.
    pub fn merge(&mut self, o: &Sketch) {
        for (k, v) in &o.counts {
            *self.counts.entry(*k).or_default() += v;
        }
    }

    /// Total count.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// How many values lie above `x` (each bucket counted by its representative value, so
    /// within the sketch's 2% relative accuracy).
    pub fn count_above(&self, x: f64) -> u64 {
        let g = gamma();
        self.counts
            .iter()
            .filter(|(idx, _)| **idx != ZERO && 2.0 * g.powi(**idx) / (g + 1.0) > x)
            .map(|(_, c)| c)
            .sum()
    }

    /// Adds `n` copies of a non-negative value (as [`Sketch::add`] does one).
    pub fn add_n(&mut self, x: f64, n: u64) {
        if !(x.is_finite() && x >= 0.0) || n == 0 {
            return;
        }
        let idx = if x < 1e-9 { ZERO } else { (x.ln() / gamma().ln()).ceil() as i32 };
        *self.counts.entry(idx).or_default() += n;
    }

    /// The q-quantile (0..=1), within 2% relative error; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let mut seen = 0;
        for (idx, c) in &self.counts {
            seen += c;
            if seen > rank {
                if *idx == ZERO {
                    return Some(0.0);
                }
                let g = gamma();
                return Some(2.0 * g.powi(*idx) / (g + 1.0));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::sketch::Sketch;

    #[test]
    fn quantiles_are_within_two_percent_and_merge() {
        let mut a = Sketch::default();
        let mut b = Sketch::default();
        for i in 1..=1000 {
            if i % 2 == 0 { a.add(i as f64) } else { b.add(i as f64) }
        }
        a.merge(&b);
        assert_eq!(a.count(), 1000);
        for (q, want) in [(0.5, 500.0), (0.99, 990.0), (0.0, 1.0)] {
            let got = a.quantile(q).unwrap();
            assert!((got - want).abs() / want <= 0.021, "q{q}: {got} vs {want}");
        }
        let mut z = Sketch::default();
        z.add(0.0);
        assert_eq!(z.quantile(0.5), Some(0.0));
        assert_eq!(Sketch::default().quantile(0.5), None);
    }
}
