//! User-id anonymization: a raw user id never leaves the browser or the service.
//!
//! Clients send `meta.user = anonymize_user(public_salt, raw_id)`. The public salt ships in
//! browser code, so a dictionary of likely ids could be hashed by anyone; the server therefore
//! re-keys every `meta.user` with [`rekey_user`] and a secret key before storing it.

use crate::prelude::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Every anonymized user id starts with this.
pub const USER_ID_PREFIX: &str = "u_";
/// Hex characters after the prefix (64 bits).
pub const USER_ID_HEX_CHARS: usize = 16;

/// `"u_"` followed by the first 16 lowercase hex characters of SHA-256(`salt` || `raw_id`).
pub fn anonymize_user(salt: impl AsRef<[u8]>, raw_id: impl AsRef<[u8]>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_ref());
    hasher.update(raw_id.as_ref());
    user_id(&hasher.finalize())
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

    #[test]
    fn known_anonymization_vector() {
        // printf 'pub_salt_1user-42' | sha256sum
        assert_eq!(
            anonymize_user("pub_salt_1", "user-42"),
            "u_bb05a1271ec30185"
        );
        assert!(is_anonymized_user(&anonymize_user("s", "x")));
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
