//! The `tracing` layer: captures events (with their spans' fields) and hands them to the
//! outputs' queues.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::capture::{Capture, Origin, put_str_field};
use crate::encode::level_of;
use crate::logger::Logger;
use crate::thread::in_worker;

/// A span's own fields, encoded once when the span is created (and extended by
/// `Span::record`), copied into every event inside it.
pub(crate) struct SpanFields(pub(crate) Vec<u8>);

/// Whether any span has been given [`SpanFields`]. Until one has, no event has span fields
/// to copy, and its span scope is not looked up (a service that logs outside spans saves
/// the registry's lookups on every call).
static SPAN_FIELDS: AtomicBool = AtomicBool::new(false);

/// Notes that a span now has fields. The span is created (or recorded) before any thread
/// can enter it, so a thread logging inside it sees the flag.
fn span_fields_exist() {
    if !SPAN_FIELDS.load(Ordering::Relaxed) {
        SPAN_FIELDS.store(true, Ordering::Release);
    }
}

/// Whether events may have span fields to copy.
#[inline]
pub(crate) fn spans_have_fields() -> bool {
    SPAN_FIELDS.load(Ordering::Acquire)
}

/// The `tracing` layer. Get one from [`Builder::build`](crate::Builder::build) to compose
/// with other layers; [`Builder::init`](crate::Builder::init) installs it alone.
///
/// On each event it checks which outputs take it (level and target), stamps the time and a
/// UUIDv7, encodes its spans' fields (outermost first) and its own fields, and copies the
/// record into this thread's queue of each of those outputs. Nothing is formatted or written
/// on the caller's thread except the message's `format_args!`.
#[derive(Debug, Clone)]
pub struct FaultlineLayer {
    pub(crate) logger: Logger,
}

impl FaultlineLayer {
    /// The logger this layer feeds.
    pub fn logger(&self) -> &Logger {
        &self.logger
    }
}

impl<S> tracing_subscriber::Layer<S> for FaultlineLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if in_worker() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut buf = Vec::new();
        attrs.record(&mut Capture {
            buf: &mut buf,
            level: None,
            callsite: None,
        });
        if !buf.is_empty() {
            span_fields_exist();
            span.extensions_mut().insert(SpanFields(buf));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        if in_worker() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut buf = Vec::new();
        values.record(&mut Capture {
            buf: &mut buf,
            level: None,
            callsite: None,
        });
        if buf.is_empty() {
            return;
        }
        span_fields_exist();
        let mut ext = span.extensions_mut();
        // Appended: on a repeated name the later value wins when the record is encoded.
        match ext.get_mut::<SpanFields>() {
            Some(f) => f.0.extend_from_slice(&buf),
            None => ext.insert(SpanFields(buf)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if in_worker() {
            return;
        }
        let meta = event.metadata();
        let mask = self.logger.route(meta.target(), meta.level());
        if mask == 0 {
            return;
        }
        let with_thread = self.logger.with_thread();
        let origin = Origin::Tracing(meta);
        self.logger
            .log(mask, level_of(meta.level()), origin, |buf, level| {
                if spans_have_fields()
                    && let Some(scope) = ctx.event_scope(event)
                {
                    for span in scope.from_root() {
                        if let Some(fields) = span.extensions().get::<SpanFields>() {
                            buf.extend_from_slice(&fields.0);
                        }
                    }
                }
                if with_thread {
                    let thread = std::thread::current();
                    match thread.name() {
                        Some(name) => put_str_field(buf, "thread", name),
                        None => put_str_field(buf, "thread", &format!("{:?}", thread.id())),
                    }
                }
                event.record(&mut Capture {
                    buf,
                    level: Some(level),
                    callsite: Some(meta.callsite()),
                });
            });
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.logger.max_level())
    }
}
