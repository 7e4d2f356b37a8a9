//! [`CorrelationLayer`]: the `tower` layer that gives every HTTP request a trace and a
//! correlation id, opens its `request` span, and hands both back to the caller.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use tracing::Span;
use tracing::instrument::Instrumented;

use crate::capture::random_u64;
use crate::traceparent::TraceContext;

/// The request header (and response header) carrying the correlation id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The W3C Trace Context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The longest `x-request-id` taken from a caller (longer ones are replaced by a new id).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request's correlation: its trace context and correlation id, in the request's
/// extensions for handlers (to pass on to the next service) and on its `request` span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    /// This request's span in the caller's trace (or a new trace).
    pub trace: TraceContext,
    /// The caller's `x-request-id`, or a new one (a random UUID).
    pub correlation_id: String,
}

/// A `tower` layer for HTTP services (axum, tonic, hyper) that correlates requests:
///
/// - reads the caller's W3C `traceparent` and continues its trace with a new span id, or
///   starts a new trace when there is none (or it is malformed);
/// - reads the caller's `x-request-id` (1 to 128 visible ASCII characters) or makes one;
/// - runs the request inside an `INFO` span named `request` with `trace_id`, `span_id`,
///   `correlation_id`, `method` and `path`, so every record logged while handling it
///   carries them;
/// - puts a [`Correlation`] in the request's extensions;
/// - with the `opentelemetry` feature and `tracing_opentelemetry`'s layer installed, makes
///   the caller's span the OpenTelemetry parent of the request span, and uses the ids
///   OpenTelemetry gave that span (what the exported traces carry) for `trace_id`,
///   `span_id` and the returned `traceparent`;
/// - returns `traceparent` (this request's span) and `x-request-id` as response headers;
/// - logs one `http_request` record when the response is ready (`status`, `duration_ms`;
///   `ERROR` for 5xx, else `INFO`), unless [`log_requests(false)`](Self::log_requests).
///
/// ```no_run
/// # #[cfg(feature = "tower")] {
/// use axum::{Router, routing::get};
/// use faultline_logger::CorrelationLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(CorrelationLayer::new());
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CorrelationLayer {
    log_requests: bool,
}

impl Default for CorrelationLayer {
    fn default() -> Self {
        CorrelationLayer { log_requests: true }
    }
}

impl CorrelationLayer {
    /// The layer, logging one record per request.
    pub fn new() -> CorrelationLayer {
        CorrelationLayer::default()
    }

    /// Whether to log one `http_request` record per response (default `true`).
    pub fn log_requests(mut self, yes: bool) -> CorrelationLayer {
        self.log_requests = yes;
        self
    }
}

impl<S> tower_layer::Layer<S> for CorrelationLayer {
    type Service = CorrelationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorrelationService {
            inner,
            log_requests: self.log_requests,
        }
    }
}

/// The service [`CorrelationLayer`] wraps around yours.
#[derive(Debug, Clone)]
pub struct CorrelationService<S> {
    inner: S,
    log_requests: bool,
}

/// The caller's `x-request-id` when it is 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
/// characters (what is safe to log and echo back).
fn caller_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let v = value?.to_str().ok()?.trim();
    let ok =
        !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| v.to_owned())
}

/// A random (version 4) UUID.
fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

impl Correlation {
    /// Reads (or starts) the correlation of a request with these headers.
    pub fn from_headers(headers: &http::HeaderMap) -> Correlation {
        let traceparent = headers
            .get(TRACEPARENT_HEADER)
            .and_then(|v| v.to_str().ok());
        Correlation {
            trace: TraceContext::from_header_or_new(traceparent),
            correlation_id: caller_request_id(headers.get(REQUEST_ID_HEADER))
                .unwrap_or_else(new_request_id),
        }
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for CorrelationService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CorrelationFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        #[cfg_attr(not(feature = "opentelemetry"), allow(unused_mut))]
        let mut correlation = Correlation::from_headers(req.headers());
        let span = tracing::info_span!(
            "request",
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            correlation_id = %correlation.correlation_id,
            method = %req.method(),
            path = %req.uri().path(),
        );
        #[cfg(feature = "opentelemetry")]
        {
            let caller = req
                .headers()
                .get(TRACEPARENT_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(TraceContext::parse);
            if let Some(trace) = otel::adopt(&span, caller.as_ref()) {
                correlation.trace = trace;
            }
        }
        span.record(
            "trace_id",
            tracing::field::display(correlation.trace.trace_id()),
        );
        span.record(
            "span_id",
            tracing::field::display(correlation.trace.span_id()),
        );
        let headers = (
            HeaderValue::from_str(&correlation.trace.to_traceparent()).ok(),
            HeaderValue::from_str(&correlation.correlation_id).ok(),
        );
        req.extensions_mut().insert(correlation);
        let inner = {
            let _in = span.enter();
            self.inner.call(req)
        };
        CorrelationFuture {
            inner: tracing::Instrument::instrument(inner, span.clone()),
            span,
            headers: Some(headers),
            started: Instant::now(),
            log_requests: self.log_requests,
        }
    }
}

/// The request span's OpenTelemetry side (feature `opentelemetry`), for services that also
/// install `tracing_opentelemetry`'s layer.
#[cfg(feature = "opentelemetry")]
mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId as OtelSpanId, TraceContextExt, TraceFlags, TraceId as OtelTraceId,
        TraceState,
    };
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::traceparent::{SpanId, TraceContext, TraceId};

    /// Makes the caller's span (from its `traceparent`) the OpenTelemetry parent of `span`,
    /// then returns the span context OpenTelemetry gave `span`: its ids are the ones the
    /// traces exported from this service carry, so they win over the layer's own. `None`
    /// when no OpenTelemetry layer is installed (the context is then invalid).
    pub(super) fn adopt(span: &Span, caller: Option<&TraceContext>) -> Option<TraceContext> {
        if let Some(c) = caller {
            let parent = SpanContext::new(
                OtelTraceId::from_bytes(c.trace_id().0),
                OtelSpanId::from_bytes(c.span_id().0),
                if c.sampled() {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            );
            // Without an OpenTelemetry layer there is nothing to set: not an error here.
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
        }
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| {
            TraceContext::from_parts(
                TraceId(sc.trace_id().to_bytes()),
                SpanId(sc.span_id().to_bytes()),
                sc.trace_flags().to_u8(),
            )
        })
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`CorrelationService`].
    pub struct CorrelationFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        span: Span,
        headers: Option<(Option<HeaderValue>, Option<HeaderValue>)>,
        started: Instant,
        log_requests: bool,
    }
}

impl<F, ResBody, E> Future for CorrelationFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = match this.inner.poll(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => return Poll::Pending,
        };
        if let Ok(response) = &mut result {
            if let Some((traceparent, request_id)) = this.headers.take() {
                let h = response.headers_mut();
                if let Some(v) = traceparent {
                    h.insert(TRACEPARENT_HEADER, v);
                }
                if let Some(v) = request_id {
                    h.insert(REQUEST_ID_HEADER, v);
                }
            }
            if *this.log_requests {
                let status = response.status().as_u16();
                let duration_ms = this.started.elapsed().as_secs_f64() * 1000.0;
                this.span.in_scope(|| {
                    if status >= 500 {
                        tracing::error!(
                            event = "http_request",
                            status,
                            duration_ms,
                            "request failed"
                        );
                    } else {
                        tracing::info!(
                            event = "http_request",
                            status,
                            duration_ms,
                            "request served"
                        );
                    }
                });
            }
        }
        Poll::Ready(result)
    }
}
