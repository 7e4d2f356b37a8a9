//! The `log` bridge: records from crates that use the `log` facade go through the same
//! queues, with the same routing, and pick up the fields of the current `tracing` span.

use tracing_subscriber::Registry;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

use crate::capture::{Origin, put_fmt, put_name, put_str, put_str_field, tag};
use crate::encode::level_of;
use crate::layer::SpanFields;
use crate::logger::Logger;
use crate::thread::in_worker;

/// A `log::Log` that feeds a [`Logger`]. [`Builder::init`](crate::Builder::init) installs
/// one (unless [`log_bridge(false)`](crate::Builder::log_bridge)); install it yourself after
/// [`Builder::build`](crate::Builder::build):
///
/// ```no_run
/// # let (layer, guard) = faultline_logger::builder().service("api").build().unwrap();
/// let bridge = faultline_logger::LogBridge::new(guard.logger().clone());
/// log::set_max_level(bridge.max_level());
/// let _ = log::set_boxed_logger(Box::new(bridge));
/// ```
#[derive(Debug, Clone)]
pub struct LogBridge {
    logger: Logger,
    filter: Option<Targets>,
}

impl LogBridge {
    /// A bridge to `logger`.
    pub fn new(logger: Logger) -> LogBridge {
        LogBridge {
            logger,
            filter: None,
        }
    }

    /// Takes only the `log` records these directives enable, before the outputs' own levels
    /// and targets ([`Builder::init`](crate::Builder::init) passes the target directives of
    /// `RUST_LOG` here, so `log` records obey it like `tracing` events).
    pub fn filter(mut self, targets: Targets) -> LogBridge {
        self.filter = Some(targets);
        self
    }

    /// Which outputs take a record of `level` from `target`, after the filter.
    fn route(&self, target: &str, level: &tracing::Level) -> u64 {
        if self
            .filter
            .as_ref()
            .is_some_and(|f| !f.would_enable(target, level))
        {
            return 0;
        }
        self.logger.route(target, level)
    }

    /// The most verbose `log` level any output takes (and the filter lets through), for
    /// `log::set_max_level`.
    pub fn max_level(&self) -> log::LevelFilter {
        let outputs = self.logger.max_level();
        let most = match &self.filter {
            Some(f) => {
                let most_verbose = f.iter().map(|(_, l)| l).chain(f.default_level()).max();
                outputs.min(most_verbose.unwrap_or(LevelFilter::OFF))
            }
            None => outputs,
        };
        match most.into_level() {
            None => log::LevelFilter::Off,
            Some(tracing::Level::ERROR) => log::LevelFilter::Error,
            Some(tracing::Level::WARN) => log::LevelFilter::Warn,
            Some(tracing::Level::INFO) => log::LevelFilter::Info,
            Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
            Some(_) => log::LevelFilter::Trace,
        }
    }
}

fn tracing_level(level: log::Level) -> tracing::Level {
    match level {
        log::Level::Error => tracing::Level::ERROR,
        log::Level::Warn => tracing::Level::WARN,
        log::Level::Info => tracing::Level::INFO,
        log::Level::Debug => tracing::Level::DEBUG,
        log::Level::Trace => tracing::Level::TRACE,
    }
}

/// Copies the fields of the current span and its parents, when the global `tracing`
/// subscriber is built on a `Registry` (as [`Builder::init`](crate::Builder::init)'s is).
fn span_fields(buf: &mut Vec<u8>) {
    if !crate::layer::spans_have_fields() {
        return;
    }
    tracing::dispatcher::get_default(|dispatch| {
        let Some(registry) = dispatch.downcast_ref::<Registry>() else {
            return;
        };
        let current = dispatch.current_span();
        let Some(span) = current.id().and_then(|id| registry.span(id)) else {
            return;
        };
        for s in span.scope().from_root() {
            if let Some(fields) = s.extensions().get::<SpanFields>() {
                buf.extend_from_slice(&fields.0);
            }
        }
    });
}

struct Kv<'a>(&'a mut Vec<u8>);

impl<'kvs> log::kv::VisitSource<'kvs> for Kv<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let name = key.as_str();
        let clean;
        let name = if name.contains('\0') {
            clean = name.replace('\0', "\u{FFFD}");
            clean.as_str()
        } else {
            name
        };
        if let Some(v) = value.to_u64() {
            put_name(self.0, tag::U64, name);
            self.0.extend_from_slice(&v.to_le_bytes());
        } else if let Some(v) = value.to_i64() {
            put_name(self.0, tag::I64, name);
            self.0.extend_from_slice(&v.to_le_bytes());
        } else if let Some(v) = value.to_f64() {
            put_name(self.0, tag::F64, name);
            self.0.extend_from_slice(&v.to_le_bytes());
        } else if let Some(v) = value.to_bool() {
            put_name(self.0, if v { tag::TRUE } else { tag::FALSE }, name);
        } else if let Some(s) = value.to_borrowed_str() {
            put_str_field(self.0, name, s);
        } else {
            put_name(self.0, tag::STR, name);
            put_fmt(self.0, format_args!("{value}"));
        }
        Ok(())
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        !in_worker() && self.route(metadata.target(), &tracing_level(metadata.level())) != 0
    }

    fn log(&self, record: &log::Record<'_>) {
        if in_worker() {
            return;
        }
        let level = tracing_level(record.level());
        let mask = self.route(record.target(), &level);
        if mask == 0 {
            return;
        }
        let with_thread = self.logger.with_thread();
        self.logger
            .log(mask, level_of(&level), Origin::Log, |buf, _| {
                buf.push(tag::TARGET);
                put_str(buf, record.target());
                if let Some(file) = record.file() {
                    buf.push(tag::FILE);
                    put_str(buf, file);
                }
                if let Some(line) = record.line() {
                    buf.push(tag::LINE);
                    buf.extend_from_slice(&line.to_le_bytes());
                }
                span_fields(buf);
                if with_thread && let Some(name) = std::thread::current().name() {
                    put_str_field(buf, "thread", name);
                }
                buf.push(tag::MESSAGE);
                put_fmt(buf, *record.args());
                let _ = record.key_values().visit(&mut Kv(buf));
            });
    }

    fn flush(&self) {
        self.logger.flush();
    }
}
