//! Randomness and record ids.
//!
//! The page seeds one generator with 32 bytes from `crypto.getRandomValues` at start; every
//! later random number (record ids, backoff jitter, sampling) comes from it without another
//! call out of the module. Record ids are UUIDv7: the millisecond clock then 74 random bits,
//! so they sort by time (what the server's store is keyed by) and a retried batch carries the
//! same ids, which the server stores once.

/// xoshiro256++: small, fast on wasm's 64-bit integers, and plenty for ids and jitter.
#[derive(Debug, Clone)]
pub(crate) struct Rng([u64; 4]);

impl Rng {
    /// A generator from a 32-byte seed (shorter seeds are padded by a fixed mixer).
    pub(crate) fn from_seed(seed: &[u8]) -> Rng {
        let mut words = [0u64; 4];
        for (i, b) in seed.iter().take(32).enumerate() {
            words[i / 8] |= u64::from(*b) << ((i % 8) * 8);
        }
        // splitmix64 over the words, so a short or all-zero seed still gives a usable state.
        let mut x = words[0] ^ words[1].rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
        for w in &mut words {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x ^ *w;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *w = z ^ (z >> 31);
        }
        Rng(words)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // 53 random bits: the whole mantissa.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// A UUIDv7 for the instant `unix_ms`.
pub(crate) fn uuid_v7(unix_ms: i64, rng: &mut Rng) -> [u8; 16] {
    let mut id = [0u8; 16];
    let ms = u64::try_from(unix_ms).unwrap_or(0).to_be_bytes();
    id[..6].copy_from_slice(&ms[2..]);
    id[6..14].copy_from_slice(&rng.next_u64().to_be_bytes());
    id[14..].copy_from_slice(&rng.next_u64().to_be_bytes()[..2]);
    id[6] = 0x70 | (id[6] & 0x0f); // version 7
    id[8] = 0x80 | (id[8] & 0x3f); // RFC 4122 variant
    id
}

/// Appends the hyphenated lowercase form (36 characters).
pub(crate) fn push_uuid(out: &mut String, id: &[u8; 16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in id.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// The hyphenated lowercase form.
#[cfg(test)]
pub(crate) fn uuid_string(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    push_uuid(&mut s, id);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_has_version_variant_and_time() {
        let mut rng = Rng::from_seed(&[7; 32]);
        let ms = 1_782_909_296_789; // 2026-07-01T12:34:56.789Z
        let id = uuid_v7(ms, &mut rng);
        let s = uuid_string(&id);
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "7", "{s}");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        let parsed = faultline_schema::Uuid::try_parse(&s).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        let mut ts = [0u8; 8];
        ts[2..].copy_from_slice(&id[..6]);
        assert_eq!(u64::from_be_bytes(ts), ms as u64);
    }

    #[test]
    fn ids_do_not_repeat_and_seeds_differ() {
        let mut a = Rng::from_seed(&[1; 32]);
        let mut b = Rng::from_seed(&[2; 32]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(uuid_v7(5, &mut a)));
            assert!(seen.insert(uuid_v7(5, &mut b)));
        }
        // A short or zero seed still yields a working generator.
        let mut z = Rng::from_seed(&[]);
        assert_ne!(z.next_u64(), z.next_u64());
    }

    #[test]
    fn unit_is_in_range_and_spread() {
        let mut rng = Rng::from_seed(b"0123456789abcdef0123456789abcdef");
        let mut below_half = 0;
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            if u < 0.5 {
                below_half += 1;
            }
        }
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }
}
