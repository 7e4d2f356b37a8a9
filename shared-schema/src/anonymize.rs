//! User-id anonymization: a raw user id never leaves the browser or the service.
//!
//! Clients send `meta.user = anonymize_user(public_salt, raw_id)`. The public salt ships in
//! browser code, so a dictionary of likely ids could be hashed by anyone; the server therefore
//! re-keys every `meta.user` with [`rekey_user`] and a secret key before storing it.

use crate::prelude::*;
use hmac::{Hmac, Mac};
#[cfg(not(target_arch = "wasm32"))]
use sha2::Digest;
use sha2::Sha256;

/// Every anonymized user id starts with this.
pub const USER_ID_PREFIX: &str = "u_";
/// Hex characters after the prefix (64 bits).
pub const USER_ID_HEX_CHARS: usize = 16;

/// `"u_"` followed by the first 16 lowercase hex characters of SHA-256(`salt` || `raw_id`).
pub fn anonymize_user(salt: impl AsRef<[u8]>, raw_id: impl AsRef<[u8]>) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        user_id(&compact::sha256(&[salt.as_ref(), raw_id.as_ref()]))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut hasher = Sha256::new();
        hasher.update(salt.as_ref());
        hasher.update(raw_id.as_ref());
        user_id(&hasher.finalize())
    }
}

/// SHA-256 as one small loop over bytes, for the browser reporter's WebAssembly: `sha2`
/// with its `digest` block buffers is about 2 KB of wasm more, and the page hashes one
/// short id now and then. Servers keep `sha2` (fast; [`rekey_user`] needs its HMAC). The
/// tests check this one against `sha2`.
#[cfg(any(test, target_arch = "wasm32"))]
mod compact {
    /// The round constants.
    #[rustfmt::skip]
    const K: [u32; 64] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4,
        0xab1c_5ed5, 0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe,
        0x9bdc_06a7, 0xc19b_f174, 0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f,
        0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da, 0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7,
        0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967, 0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc,
        0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85, 0xa2bf_e8a1, 0xa81a_664b,
        0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070, 0x19a4_c116,
        0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7,
        0xc671_78f2,
    ];

    /// The state of a hash: the chaining value, the block being filled, the bytes taken.
    struct State {
        h: [u32; 8],
        block: [u8; 64],
        len: u64,
    }

    impl State {
        fn byte(&mut self, b: u8) {
            let at = (self.len % 64) as usize;
            if let Some(slot) = self.block.get_mut(at) {
                *slot = b;
            }
            self.len = self.len.wrapping_add(1);
            if at == 63 {
                self.compress();
            }
        }

        fn compress(&mut self) {
            let mut w = [0u32; 64];
            for (i, &b) in self.block.iter().enumerate() {
                if let Some(w) = w.get_mut(i / 4) {
                    *w = *w << 8 | u32::from(b);
                }
            }
            for i in 16..64 {
                let (w2, w15) = (w[i - 2], w[i - 15]);
                let s0 = w15.rotate_right(7) ^ w15.rotate_right(18) ^ (w15 >> 3);
                let s1 = w2.rotate_right(17) ^ w2.rotate_right(19) ^ (w2 >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let mut s = self.h;
            for (k, w) in K.iter().zip(w.iter()) {
                let [a, b, c, d, e, f, g, h] = s;
                let t1 = h
                    .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
                    .wrapping_add((e & f) ^ (!e & g))
                    .wrapping_add(*k)
                    .wrapping_add(*w);
                let t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22))
                    .wrapping_add((a & b) ^ (a & c) ^ (b & c));
                s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
            }
            for (h, s) in self.h.iter_mut().zip(s.iter()) {
                *h = h.wrapping_add(*s);
            }
        }
    }

    /// SHA-256 of `parts`, one after the other.
    pub(super) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut state = State {
            h: [
                0x6a09_e667,
                0xbb67_ae85,
                0x3c6e_f372,
                0xa54f_f53a,
                0x510e_527f,
                0x9b05_688c,
                0x1f83_d9ab,
                0x5be0_cd19,
            ],
            block: [0; 64],
            len: 0,
        };
        for part in parts {
            for &b in *part {
                state.byte(b);
            }
        }
        let bits = state.len.wrapping_mul(8);
        state.byte(0x80);
        while state.len % 64 != 56 {
            state.byte(0);
        }
        for shift in (0..64).step_by(8).rev() {
            state.byte((bits >> shift) as u8);
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            let word = state.h.get(i / 4).copied().unwrap_or_default();
            *o = (word >> (24 - 8 * (i % 4))) as u8;
        }
        out
    }
}

/// The server-side re-keying: `"u_"` followed by the first 16 lowercase hex characters of
/// HMAC-SHA256(`key`, `user`). Applied to whatever the client sent in `meta.user`, so even a
/// raw id sent by mistake is not stored as is.
pub fn rekey_user(key: impl AsRef<[u8]>, user: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    match <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref()) {
        Ok(mut mac) => {
            mac.update(user.as_bytes());
            user_id(&mac.finalize().into_bytes())
        }
        Err(_) => anonymize_user(key, user),
    }
}

/// [`rekey_user`] with the key's HMAC state computed once, for servers re-keying every
/// record: cloning the keyed state saves two SHA-256 blocks per id.
#[derive(Clone)]
pub struct UserRekeyer {
    mac: Hmac<Sha256>,
}

impl UserRekeyer {
    /// A re-keyer for the server secret `key`.
    pub fn new(key: impl AsRef<[u8]>) -> UserRekeyer {
        // HMAC takes keys of any length, so this cannot fail; an empty key is still a key.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref())
            .or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(&[0]));
        UserRekeyer {
            mac: match mac {
                Ok(m) => m,
                Err(_) => unreachable_hmac(),
            },
        }
    }

    /// The same as [`rekey_user`] with this re-keyer's key.
    pub fn rekey(&self, user: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(user.as_bytes());
        user_id(&mac.finalize().into_bytes())
    }
}

impl core::fmt::Debug for UserRekeyer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UserRekeyer(<secret>)")
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-key-length MACs, which HMAC is not.
    panic!("HMAC-SHA256 rejected a key")
}

/// Whether `s` has the form of an anonymized id (`u_` and 16 lowercase hex characters).
pub fn is_anonymized_user(s: &str) -> bool {
    s.strip_prefix(USER_ID_PREFIX).is_some_and(|hex| {
        hex.len() == USER_ID_HEX_CHARS
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn user_id(digest: &[u8]) -> String {
    // `get` and `push_str` rather than `[..]` and `push(char::from(..))`: this runs in the
    // browser reporter's wasm, where their panic and UTF-8 encoding paths cost bundle size.
    const HEX: &str = "0123456789abcdef";
    let mut out = String::with_capacity(USER_ID_PREFIX.len() + USER_ID_HEX_CHARS);
    out.push_str(USER_ID_PREFIX);
    for &b in digest.iter().take(USER_ID_HEX_CHARS / 2) {
        for nibble in [b >> 4, b & 0xf] {
            let i = usize::from(nibble);
            out.push_str(HEX.get(i..=i).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn known_anonymization_vector() {
        // printf 'pub_salt_1user-42' | sha256sum
        assert_eq!(
            anonymize_user("pub_salt_1", "user-42"),
            "u_bb05a1271ec30185"
        );
        assert!(is_anonymized_user(&anonymize_user("s", "x")));
    }

    /// The browser's SHA-256 is `sha2`'s, at every padding boundary.
    #[test]
    fn compact_sha256_matches_sha2() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in (0..140).chain([255, 256, 300]) {
            let (a, b) = data.split_at(len / 3);
            let b = &b[..len - len / 3];
            let expected: [u8; 32] = Sha256::new()
                .chain_update(a)
                .chain_update(b)
                .finalize()
                .into();
            assert_eq!(compact::sha256(&[a, b]), expected, "{len}");
        }
        assert_eq!(
            user_id(&compact::sha256(&[b"pub_salt_1", b"user-42"])),
            "u_bb05a1271ec30185"
        );
    }

    #[test]
    fn known_rekey_vector() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'secret',b'u_0123456789abcdef',hashlib.sha256).hexdigest()[:16])"
        assert_eq!(
            rekey_user("secret", "u_0123456789abcdef"),
            "u_fbae506e9d381195"
        );
    }

    #[test]
    fn rekeyer_matches_rekey_user() {
        let r = UserRekeyer::new("secret");
        assert_eq!(
            r.rekey("u_0123456789abcdef"),
            rekey_user("secret", "u_0123456789abcdef")
        );
        assert_eq!(r.rekey("x"), rekey_user("secret", "x"));
    }

    #[test]
    fn anonymized_form() {
        assert!(is_anonymized_user("u_0123456789abcdef"));
        assert!(!is_anonymized_user("u_0123456789ABCDEF"));
        assert!(!is_anonymized_user("u_0123456789abcde"));
        assert!(!is_anonymized_user("alice@example.com"));
    }
}
