//! W3C Trace Context (`traceparent`): read the caller's trace from a request header, start
//! one when there is none, and put `trace_id` and `span_id` on a span so every record logged
//! inside it carries them.

use std::fmt;

use crate::capture::random_u64;

/// A W3C trace context: the trace id, the id of the current span (the parent of whatever is
/// started next) and the flags (bit 0: sampled).
///
/// ```
/// use faultline_logger::TraceContext;
///
/// let incoming = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// let ours = incoming.map_or_else(TraceContext::new_root, |parent| parent.child());
/// assert_eq!(ours.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// let span = tracing::info_span!("request", trace_id = %ours.trace_id(), span_id = %ours.span_id());
/// # drop(span);
/// ```
///
/// A span field named `traceparent` holding the header text works too: the layer expands it
/// into `meta.trace_id` and `meta.span_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    flags: u8,
}

/// A 16-byte trace id; displays as 32 lower-case hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id; displays as 16 lower-case hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

fn hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, &self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex(f, &self.0)
    }
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(out)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let r = random_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    out
}

impl TraceContext {
    /// Parses a `traceparent` header: `{version}-{trace-id}-{parent-id}-{flags}` in lower-case
    /// hex. `None` for anything invalid, including the all-zero ids the spec forbids and
    /// version `ff`; a future version's extra fields are ignored, as the spec asks.
    pub fn parse(header: &str) -> Option<TraceContext> {
        let header = header.trim();
        let mut parts = header.split('-');
        let version = parse_hex::<1>(parts.next()?)?[0];
        let trace_id = parse_hex::<16>(parts.next()?)?;
        let span_id = parse_hex::<8>(parts.next()?)?;
        let flags = parse_hex::<1>(parts.next()?)?[0];
        if version == 0xff
            || (version == 0 && parts.next().is_some())
            || trace_id == [0; 16]
            || span_id == [0; 8]
        {
            return None;
        }
        Some(TraceContext {
            trace_id: TraceId(trace_id),
            span_id: SpanId(span_id),
            flags,
        })
    }

    /// A new trace with random ids, sampled.
    pub fn new_root() -> TraceContext {
        let mut trace_id = random_bytes::<16>();
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        TraceContext {
            trace_id: TraceId(trace_id),
            span_id: SpanId(Self::new_span_id()),
            flags: 1,
        }
    }

    /// The context of a new span inside this one: the same trace and flags, a new span id.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: SpanId(Self::new_span_id()),
            ..*self
        }
    }

    fn new_span_id() -> [u8; 8] {
        let mut id = random_bytes::<8>();
        if id == [0; 8] {
            id[7] = 1;
        }
        id
    }

    /// [`TraceContext::parse`] of `header` when present and valid, otherwise a new root:
    /// what a server does with an incoming request's `traceparent`. The result is a child
    /// of the caller's span, ready for this service's own span.
    pub fn from_header_or_new(header: Option<&str>) -> TraceContext {
        header
            .and_then(TraceContext::parse)
            .map_or_else(TraceContext::new_root, |parent| parent.child())
    }

    /// A context from its parts (an OpenTelemetry span context's ids and flags).
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn from_parts(trace_id: TraceId, span_id: SpanId, flags: u8) -> TraceContext {
        TraceContext {
            trace_id,
            span_id,
            flags,
        }
    }

    /// The trace id, shared by every span of the trace.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This span's id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// Whether the caller asked for this trace to be recorded.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The `traceparent` header value to send to the next service.
    pub fn to_traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example_and_prints_it_back() {
        let tc = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(
            tc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(tc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(tc.sampled());
        assert_eq!(tc.to_traceparent(), EXAMPLE);
        assert_eq!(tc.to_string(), EXAMPLE);
    }

    #[test]
    fn rejects_what_the_spec_forbids() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may append fields.
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
    }

    #[test]
    fn children_keep_the_trace_and_get_new_span_ids() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let child = TraceContext::from_header_or_new(Some(EXAMPLE));
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
        let root = TraceContext::from_header_or_new(Some("garbage"));
        assert_ne!(root.trace_id(), parent.trace_id());
        assert_eq!(TraceContext::parse(&root.to_traceparent()), Some(root));
        assert_ne!(TraceContext::new_root(), TraceContext::new_root());
    }
}
