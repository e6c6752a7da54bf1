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
pub fn murmur3_32_parts(parts: &[&[u8]], seed: u32) -> u32 {
    let mut h = seed;
    let mut pending = [0u8; 4];
    let mut npending = 0usize;
    let mut len = 0usize;
    for part in parts {
        len += part.len();
        let mut rest: &[u8] = part;
        if npending > 0 {
            let take = (4 - npending).min(rest.len());
            pending[npending..npending + take].copy_from_slice(&rest[..take]);
            npending += take;
            rest = &rest[take..];
            if npending < 4 {
                continue;
            }
            h = mix_h(h, u32::from_le_bytes(pending));
        }
        let mut chunks = rest.chunks_exact(4);
        for chunk in &mut chunks {
            h = mix_h(h, u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        let tail = chunks.remainder();
        pending[..tail.len()].copy_from_slice(tail);
        npending = tail.len();
    }
    if npending > 0 {
        let mut k = 0u32;
        for i in (0..npending).rev() {
            k = (k << 8) | u32::from(pending[i]);
        }
        h ^= mix_k(k);
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
    }
}
