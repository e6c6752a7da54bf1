//! MurmurHash3 x86 32-bit, the hash Unleash SDKs bucket with.
//!
//! Written here rather than taken from the `murmur3` crate because that crate reads through
//! `std::io::Read`, and evaluation hashes `group ":" value` without building the joined string:
//! [`murmur3_32_parts`] hashes the concatenation of several byte slices directly.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn mix_k(mut k: u32) -> u32 {
    k = k.wrapping_mul(C1);
    k = k.rotate_left(15);
    k.wrapping_mul(C2)
}

#[inline(always)]
fn mix_h(mut h: u32, k: u32) -> u32 {
    h ^= mix_k(k);
    h = h.rotate_left(13);
    h.wrapping_mul(5).wrapping_add(0xe654_6b64)
}

/// MurmurHash3 x86 32-bit of `data` with `seed`.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    murmur3_32_parts(&[data], seed)
}

/// MurmurHash3 x86 32-bit of the concatenation of `parts`, without allocating.
///
/// Bytes that straddle parts are gathered into a pending word by shifts rather than copied into
/// a buffer: variable-length `copy_from_slice` calls `memcpy`, which used to cost more than the
/// hashing itself for short keys.
pub fn murmur3_32_parts(parts: &[&[u8]], seed: u32) -> u32 {
    let mut h = seed;
    // Pending bytes (0..=3 of them), little-endian, waiting to fill a 4-byte block.
    let mut pending = 0u32;
    let mut npending = 0u32;
    let mut len = 0usize;
    for part in parts {
        len += part.len();
        let mut rest: &[u8] = part;
        while npending > 0 {
            let Some((&b, tail)) = rest.split_first() else { break };
            pending |= u32::from(b) << (8 * npending);
            rest = tail;
            npending += 1;
            if npending == 4 {
                h = mix_h(h, pending);
                pending = 0;
                npending = 0;
            }
        }
        if npending > 0 {
            // This part ran out before the pending block filled up.
            continue;
        }
        let mut chunks = rest.chunks_exact(4);
        for chunk in &mut chunks {
            h = mix_h(h, u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            pending |= u32::from(b) << (8 * i);
        }
        npending = chunks.remainder().len() as u32;
    }
    if npending > 0 {
        h ^= mix_k(pending);
    }
    // Unleash hashes the UTF-8 length modulo 2^32, as the reference implementation does.
    h ^= len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

#[cfg(test)]
mod tests {
    use crate::murmur::{murmur3_32, murmur3_32_parts};

    #[test]
    fn known_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
    }

    #[test]
    fn parts_equal_whole() {
        let whole = b"Feature.flexibleRollout.10:174-and-some-more";
        for a in 0..whole.len() {
            for b in a..whole.len() {
                let parts: [&[u8]; 3] = [&whole[..a], &whole[a..b], &whole[b..]];
                assert_eq!(murmur3_32_parts(&parts, 7), murmur3_32(whole, 7));
            }
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(murmur3_32_parts(&bytes, 7), murmur3_32(whole, 7));
        let with_empties: [&[u8]; 5] = [b"", &whole[..3], b"", &whole[3..], b""];
        assert_eq!(murmur3_32_parts(&with_empties, 7), murmur3_32(whole, 7));
    }

    /// Against the `murmur3` crate (the reference the Unleash SDKs' Rust engine uses).
    #[test]
    fn agrees_with_the_murmur3_crate() {
        let data: Vec<u8> =
            (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for n in 0..data.len() {
            for seed in [0, 1, 86_028_157] {
                let want = murmur3::murmur3_32(&mut &data[..n], seed).unwrap();
                assert_eq!(murmur3_32(&data[..n], seed), want, "length {n}, seed {seed}");
                let (a, b) = data[..n].split_at(n / 3);
                assert_eq!(murmur3_32_parts(&[a, b"", b], seed), want);
            }
        }
    }
}
