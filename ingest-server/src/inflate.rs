//! Bounded gzip inflation for request bodies.
//!
//! A gzip bomb (a few KB that inflate to gigabytes) must be cut off at the limit, never
//! inflated whole: the decoder reads at most `limit + 1` bytes, and one byte past the limit
//! is enough to say "too large" without holding more than that in memory.

use std::io::Read;

/// Why a gzip body could not be inflated.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    /// The bytes are not a valid gzip stream (bad header, corrupt data, truncated member).
    #[error("body is not valid gzip: {0}")]
    Invalid(#[source] std::io::Error),
    /// The body inflates to more than the limit.
    #[error("body inflates to more than {limit} bytes: send smaller batches")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// Inflates `wire` (one or more concatenated gzip members) into at most `limit` bytes.
///
/// Blocking and CPU-bound: the server runs it on the blocking pool. The returned buffer
/// never holds more than `limit` bytes, whatever the input claims.
pub fn inflate_gzip(wire: &[u8], limit: u64) -> Result<Vec<u8>, InflateError> {
    // Start from a guess at the usual ratio, never from what the input might claim.
    let mut out = Vec::with_capacity(
        wire.len()
            .saturating_mul(4)
            .min(1 << 20)
            .min(usize::try_from(limit).unwrap_or(usize::MAX)),
    );
    let decoder = flate2::read::MultiGzDecoder::new(wire);
    decoder
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(InflateError::Invalid)?;
    if out.len() as u64 > limit {
        return Err(InflateError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn inflates_up_to_the_limit_exactly() {
        let body = vec![b'x'; 1000];
        assert_eq!(inflate_gzip(&gzip(&body), 1000).unwrap(), body);
        assert!(matches!(
            inflate_gzip(&gzip(&body), 999),
            Err(InflateError::TooLarge { limit: 999 })
        ));
    }

    #[test]
    fn concatenated_members_are_one_body() {
        let mut wire = gzip(b"[1,");
        wire.extend(gzip(b"2]"));
        assert_eq!(inflate_gzip(&wire, 100).unwrap(), b"[1,2]");
    }

    #[test]
    fn garbage_and_truncation_are_invalid() {
        assert!(matches!(
            inflate_gzip(b"\x1f\x8bnope", 100),
            Err(InflateError::Invalid(_))
        ));
        let wire = gzip(b"hello hello hello");
        assert!(matches!(
            inflate_gzip(&wire[..wire.len() - 4], 100),
            Err(InflateError::Invalid(_))
        ));
    }
}
