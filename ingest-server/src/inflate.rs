//! Bounded gzip (and deflate and brotli) inflation for request bodies.
//!
//! A gzip bomb (a few KB that inflate to gigabytes) must be cut off at the limit, never
//! inflated whole: the decoder reads at most `limit + 1` bytes, and one byte past the limit
//! is enough to say "too large" without holding more than that in memory. The output buffer
//! grows in steps the caller approves first ([`inflate_gzip_within`]), so the server counts
//! a body's memory against its budget before it allocates it.

use std::io::Read;

/// The most a deflate stream inflates per byte (about 1032:1): a gzip trailer that claims
/// more is not believed.
const MAX_RATIO: usize = 1032;
/// The first output buffer when the gzip trailer gives no usable size.
const MIN_START: usize = 64 * 1024;

/// Why a gzip body could not be inflated.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    /// The bytes are not a valid gzip stream (bad header, corrupt data, truncated member).
    #[error("body is not valid gzip: {0}")]
    Invalid(#[source] std::io::Error),
    /// The bytes are not valid in the named encoding (`deflate`, `brotli`).
    #[error("body is not valid {0}: {1}")]
    InvalidAs(&'static str, #[source] std::io::Error),
    /// The body inflates to more than the limit.
    #[error("body inflates to more than {limit} bytes: send smaller batches")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The caller had no room for a larger output buffer (the server's in-flight budget).
    #[error("no room to inflate the body now")]
    NoRoom,
}

/// Inflates `wire` (one or more concatenated gzip members) into at most `limit` bytes.
///
/// Blocking and CPU-bound: the server runs it on the blocking pool. The returned buffer
/// never holds more than `limit` bytes, whatever the input claims.
pub fn inflate_gzip(wire: &[u8], limit: u64) -> Result<Vec<u8>, InflateError> {
    inflate_gzip_within(wire, limit, |_| true)
}

/// [`inflate_gzip`], asking `room(capacity)` before the output buffer is allocated or grown
/// to `capacity` bytes; when it answers `false`, inflation stops with
/// [`InflateError::NoRoom`]. The buffer starts at the size the gzip trailer gives (if
/// deflate could reach it from this many bytes, and never past the limit), and doubles.
pub fn inflate_gzip_within(
    wire: &[u8],
    limit: u64,
    room: impl FnMut(usize) -> bool,
) -> Result<Vec<u8>, InflateError> {
    let decoder = flate2::read::MultiGzDecoder::new(wire);
    read_within(decoder, start_size(wire), limit, room)
}

/// The `Content-Encoding`s besides gzip that a request body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `deflate`: a zlib stream as HTTP defines it, or a raw deflate stream as some
    /// clients send it (told apart by the zlib header).
    Deflate,
    /// `br`: brotli (RFC 7932).
    Brotli,
}

impl Encoding {
    /// What the decoder holds besides its output while it inflates `wire`: brotli's ring
    /// buffer, as large as the window the stream's header declares (at most 16 MiB), and
    /// deflate's 32 KiB window. Lease this before inflating.
    pub fn state_bytes(self, wire: &[u8]) -> usize {
        match self {
            Encoding::Deflate => 64 * 1024,
            Encoding::Brotli => brotli_window(wire).saturating_add(64 * 1024),
        }
    }
}

/// [`inflate_gzip_within`] for a `deflate` or `br` body.
pub fn inflate_within(
    encoding: Encoding,
    wire: &[u8],
    limit: u64,
    room: impl FnMut(usize) -> bool,
) -> Result<Vec<u8>, InflateError> {
    let start = wire.len().saturating_mul(4).max(MIN_START);
    let result = match encoding {
        Encoding::Deflate if is_zlib(wire) => {
            read_within(flate2::read::ZlibDecoder::new(wire), start, limit, room)
        }
        Encoding::Deflate => {
            read_within(flate2::read::DeflateDecoder::new(wire), start, limit, room)
        }
        Encoding::Brotli => read_within(
            brotli_decompressor::Decompressor::new(wire, 4096),
            start,
            limit,
            room,
        ),
    };
    result.map_err(|e| match e {
        InflateError::Invalid(e) => InflateError::InvalidAs(
            match encoding {
                Encoding::Deflate => "deflate",
                Encoding::Brotli => "brotli",
            },
            e,
        ),
        other => other,
    })
}

/// Whether `wire` starts with a zlib header (deflate, a window of at most 32 KiB, the
/// header's check bits right).
fn is_zlib(wire: &[u8]) -> bool {
    match wire {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// The window a brotli stream declares in its first bits (RFC 7932, 9.1), in bytes: the
/// most its decoder's ring buffer holds. Large windows (an extension SDKs do not use) and
/// an empty body count as the largest standard window.
fn brotli_window(wire: &[u8]) -> usize {
    const LARGEST: usize = 1 << 24;
    let Some(&first) = wire.first() else {
        return LARGEST;
    };
    let bits = if first & 1 == 0 {
        16
    } else if (first >> 1) & 7 != 0 {
        17 + u32::from((first >> 1) & 7)
    } else {
        match (first >> 4) & 7 {
            0 => 17,
            1 => return LARGEST,
            n => 8 + u32::from(n),
        }
    };
    1 << bits
}

/// Reads `decoder` into at most `limit` bytes, the buffer starting at `start` bytes and
/// doubling, each size asked of `room` first.
fn read_within(
    mut decoder: impl Read,
    start: usize,
    limit: u64,
    mut room: impl FnMut(usize) -> bool,
) -> Result<Vec<u8>, InflateError> {
    // One byte past the limit says "too large".
    let most = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut filled = 0;
    loop {
        if filled == out.len() {
            let next = if out.is_empty() {
                start.min(most)
            } else {
                out.len().saturating_mul(2).min(most)
            };
            if next == out.len() {
                // Full at `limit + 1` bytes.
                return Err(InflateError::TooLarge { limit });
            }
            if !room(next) {
                return Err(InflateError::NoRoom);
            }
            out.reserve_exact(next - out.len());
            out.resize(next, 0);
        }
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(InflateError::Invalid(e)),
        }
    }
    out.truncate(filled);
    if filled as u64 > limit {
        return Err(InflateError::TooLarge { limit });
    }
    Ok(out)
}

/// The first output buffer: the size in the gzip trailer (`ISIZE`, the last member's size
/// modulo 2^32) plus the byte that tells the end, when deflate could inflate `wire` that
/// far; else a guess. Nothing the input claims is believed past what its size allows.
fn start_size(wire: &[u8]) -> usize {
    let plausible = wire.len().saturating_mul(MAX_RATIO);
    match wire.last_chunk::<4>() {
        Some(isize) if wire.len() >= 18 => {
            let claimed = u32::from_le_bytes(*isize) as usize;
            claimed.saturating_add(1).min(plausible)
        }
        _ => wire.len().saturating_mul(4),
    }
    .max(MIN_START)
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
    fn the_buffer_grows_only_with_room_and_starts_from_a_believable_trailer() {
        let body = vec![b'x'; 300_000];
        let wire = gzip(&body);
        let mut asked = Vec::new();
        let out = inflate_gzip_within(&wire, 1 << 20, |n| {
            asked.push(n);
            true
        })
        .unwrap();
        assert_eq!(out, body);
        assert_eq!(asked, [300_001], "one buffer, sized by the trailer");

        let mut asked = Vec::new();
        let err = inflate_gzip_within(&wire, 1 << 20, |n| {
            asked.push(n);
            false
        })
        .unwrap_err();
        assert!(matches!(err, InflateError::NoRoom), "{err}");
        assert_eq!(asked, [300_001], "nothing allocated without room");

        // A trailer that lies (claims 4 GB) is not believed past deflate's ratio, and a
        // short claim only means the buffer doubles, each step asked for.
        let mut liar = wire.clone();
        let n = liar.len();
        liar[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut asked = Vec::new();
        let err = inflate_gzip_within(&liar, 1 << 20, |n| {
            asked.push(n);
            true
        })
        .unwrap_err();
        assert!(
            matches!(err, InflateError::Invalid(_)),
            "the CRC/size check: {err}"
        );
        assert!(asked[0] <= wire.len() * MAX_RATIO, "{asked:?}");
        liar[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        let mut asked = Vec::new();
        let _ = inflate_gzip_within(&liar, 1 << 20, |n| {
            asked.push(n);
            true
        });
        assert_eq!(
            asked,
            [MIN_START, 2 * MIN_START, 4 * MIN_START, 8 * MIN_START]
        );

        // Past the limit: the buffer stops at limit + 1.
        let mut asked = Vec::new();
        let err = inflate_gzip_within(&wire, 100_000, |n| {
            asked.push(n);
            true
        })
        .unwrap_err();
        assert!(
            matches!(err, InflateError::TooLarge { limit: 100_000 }),
            "{err}"
        );
        assert_eq!(asked, [100_001]);
    }

    #[test]
    fn deflate_zlib_and_raw_and_brotli_inflate_within_the_limit() {
        let body = vec![b'y'; 5000];
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&body).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&body).unwrap();
        let raw = raw.finish().unwrap();
        for wire in [&zlib, &raw] {
            assert_eq!(
                inflate_within(Encoding::Deflate, wire, 5000, |_| true).unwrap(),
                body
            );
            assert!(matches!(
                inflate_within(Encoding::Deflate, wire, 4999, |_| true),
                Err(InflateError::TooLarge { limit: 4999 })
            ));
        }
        // "hello hello hello" from Node's zlib.brotliCompressSync, lgwin 22: a 4 MiB window.
        let brotli = [
            0x1b, 0x10, 0x00, 0xf8, 0x8d, 0x94, 0x6e, 0xde, 0x44, 0x55, 0x86, 0x96, 0x6c, 0x20,
            0x6f, 0x01, 0x4f, 0x1c, 0x60, 0x1c,
        ];
        assert_eq!(
            inflate_within(Encoding::Brotli, &brotli, 100, |_| true).unwrap(),
            b"hello hello hello"
        );
        assert_eq!(brotli_window(&brotli), 1 << 22);
        assert!(Encoding::Brotli.state_bytes(&brotli) > 1 << 22);
        assert!(matches!(
            inflate_within(Encoding::Brotli, &brotli, 10, |_| true),
            Err(InflateError::TooLarge { limit: 10 })
        ));
        let err =
            inflate_within(Encoding::Brotli, b"\xffnot brotli at all", 100, |_| true).unwrap_err();
        assert!(
            err.to_string().starts_with("body is not valid brotli"),
            "{err}"
        );
        assert!(matches!(
            inflate_within(Encoding::Brotli, &brotli, 100, |_| false),
            Err(InflateError::NoRoom)
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
