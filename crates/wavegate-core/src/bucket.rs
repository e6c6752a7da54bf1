//! Sticky bucketing at 0.01% resolution, bucket-compatible with Unleash at whole percentages.
//!
//! ```text
//! h  = murmur3_x86_32(utf8(group ":" stickiness_value), seed 0)
//! bp = (h % 100) * 100 + (h / 100) % 100        // 0..=9999
//! exposed at p basis points  ⇔  bp < p
//! ```
//!
//! **Invariant:** at whole percentages `bp < P·100 ⇔ h % 100 < P`, which is Unleash's
//! `flexibleRollout` test (`h % 100 + 1 <= P`), so an Unleash SDK and wavegate expose exactly
//! the same contexts. Exposure is monotonic in `p`: raising a rollout keeps everyone already in.

use crate::murmur::murmur3_32_parts;

/// Number of buckets: one per basis point (0.01%).
pub const BUCKETS: u16 = 10_000;

/// The basis-point bucket (0..=9999) of `value` under `group` (a flag's salt, by default its key).
#[inline]
pub fn bucket(group: &str, value: &str) -> u16 {
    let h = murmur3_32_parts(&[group.as_bytes(), b":", value.as_bytes()], 0);
    bucket_of_hash(h)
}

/// The basis-point bucket of a precomputed murmur3 hash.
#[inline]
pub fn bucket_of_hash(h: u32) -> u16 {
    ((h % 100) * 100 + (h / 100) % 100) as u16
}

/// Unleash's normalised hash: `murmur3(group ":" value, seed) % modulus + 1`.
pub fn unleash_normalized_hash(group: &str, value: &str, modulus: u32, seed: u32) -> u32 {
    murmur3_32_parts(&[group.as_bytes(), b":", value.as_bytes()], seed) % modulus + 1
}

#[cfg(test)]
mod tests {
    use crate::bucket::{bucket, unleash_normalized_hash};

    /// Vectors from Unleash's client-specification (see research/flags.md).
    #[test]
    fn unleash_published_vectors() {
        assert_eq!(unleash_normalized_hash("Feature.flexibleRollout.10", "174", 100, 0), 10);
        assert_eq!(unleash_normalized_hash("Feature.flexibleRollout.10", "499", 100, 0), 32);
        assert_eq!(unleash_normalized_hash("checkout-v2", "1", 1000, 86_028_157), 391);
        assert!(bucket("Feature.flexibleRollout.10", "174") < 1000, "174 is in at 10%");
        assert!(bucket("Feature.flexibleRollout.10", "499") >= 1000, "499 is out at 10%");
    }

    #[test]
    fn whole_percent_agrees_with_unleash() {
        for i in 0..20_000 {
            let id = format!("user-{i}");
            let b = bucket("flag", &id);
            let n = unleash_normalized_hash("flag", &id, 100, 0);
            for p in [1u32, 5, 10, 25, 50, 99, 100] {
                assert_eq!(u32::from(b) < p * 100, n <= p, "id {id} at {p}%");
            }
        }
    }
}
