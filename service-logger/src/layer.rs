//! The `tracing` layer: captures events (with their spans' fields) and hands them to the
//! sinks' queues.

use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::capture::{Buf, Capture, Entry, Origin, put_str_field};
use crate::encode::level_of;
use crate::logger::Logger;
use crate::worker::in_worker;

/// A span's own fields, encoded once when the span is created (and extended by
/// `Span::record`), copied into every event inside it.
pub(crate) struct SpanFields(pub(crate) Vec<u8>);

/// The `tracing` layer. Get one from [`Builder::build`](crate::Builder::build) to compose
/// with other layers; [`Builder::init`](crate::Builder::init) installs it alone.
///
/// On each event it checks which sinks take it (level and target), stamps the time and a
/// UUIDv7, copies its spans' fields (outermost first) and its own fields into a fixed-size
/// entry, and offers the entry to each of those sinks' queues. Nothing is formatted or
/// written on the caller's thread except the message's `format_args!`.
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
        let mut buf = Buf::new();
        attrs.record(&mut Capture {
            buf: &mut buf,
            level: None,
            callsite: None,
        });
        if buf.len() > 0 {
            span.extensions_mut()
                .insert(SpanFields(buf.as_slice().to_vec()));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        if in_worker() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut buf = Buf::new();
        values.record(&mut Capture {
            buf: &mut buf,
            level: None,
            callsite: None,
        });
        if buf.len() == 0 {
            return;
        }
        let mut ext = span.extensions_mut();
        // Appended: on a repeated name the later value wins when the record is encoded.
        match ext.get_mut::<SpanFields>() {
            Some(f) => f.0.extend_from_slice(buf.as_slice()),
            None => ext.insert(SpanFields(buf.as_slice().to_vec())),
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
        let mut level = level_of(meta.level());
        let mut entry = Entry::new(level, Origin::Tracing(meta));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    entry.buf.extend(&fields.0);
                }
            }
        }
        if self.logger.with_thread() {
            let thread = std::thread::current();
            match thread.name() {
                Some(name) => put_str_field(&mut entry.buf, "thread", name),
                None => put_str_field(&mut entry.buf, "thread", &format!("{:?}", thread.id())),
            }
        }
        event.record(&mut Capture {
            buf: &mut entry.buf,
            level: Some(&mut level),
            callsite: Some(meta.callsite()),
        });
        entry.level = level;
        self.logger.dispatch(entry, mask);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.logger.max_level())
    }
}
