//! `CorrelationLayer` with `tracing_opentelemetry`'s layer and a real OpenTelemetry SDK
//! tracer: the request span's OpenTelemetry context (the caller's span as its parent, ids
//! from the SDK) wins over the layer's own, on the records and in the returned
//! `traceparent`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use faultline_logger::{CorrelationLayer, Output, builder};
use http::{Request, Response};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower_layer::Layer;
use tower_service::Service;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::common::{block_on, open_writer};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// A handler that logs a record and notes the OpenTelemetry ids of the span it runs in.
#[derive(Clone, Default)]
struct Handler {
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Service<Request<()>> for Handler {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        let cx = tracing::Span::current().context();
        let sc = cx.span().span_context().clone();
        self.seen
            .lock()
            .unwrap()
            .push((sc.trace_id().to_string(), sc.span_id().to_string()));
        tracing::info!("inside the handler");
        ready(Ok(Response::new(())))
    }
}

fn header(r: &Response<()>, name: &str) -> String {
    r.headers()[name].to_str().unwrap().to_owned()
}

#[test]
fn an_opentelemetry_span_context_wins() {
    let out = open_writer();
    let (layer, guard) = builder()
        .service("otel")
        .output(Output::writer(out.clone()))
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(layer);
    let handler = Handler::default();
    let mut service = CorrelationLayer::new().layer(handler.clone());
    let (continued, started) = tracing::subscriber::with_default(subscriber, || {
        let continued = block_on(
            service.call(
                Request::builder()
                    .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
                    .body(())
                    .unwrap(),
            ),
        )
        .unwrap();
        let started = block_on(service.call(Request::new(()))).unwrap();
        (continued, started)
    });
    assert!(guard.shutdown(Duration::from_secs(10)).complete);
    let seen = handler.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);

    // The caller's trace, continued by OpenTelemetry's span: the SDK's span id everywhere.
    let (otel_trace, otel_span) = &seen[0];
    assert_eq!(otel_trace, TRACE);
    assert_ne!(otel_span, PARENT);
    assert_eq!(
        header(&continued, "traceparent"),
        format!("00-{TRACE}-{otel_span}-01")
    );
    // No traceparent: OpenTelemetry's new trace, not one of the layer's own.
    let (new_trace, new_span) = &seen[1];
    assert_ne!(new_trace, TRACE);
    assert_eq!(
        header(&started, "traceparent"),
        format!("00-{new_trace}-{new_span}-01")
    );

    let records = out.records();
    let inside: Vec<_> = records
        .iter()
        .filter(|r| r.message == "inside the handler")
        .collect();
    assert_eq!(inside.len(), 2);
    for (r, (trace, span)) in inside.iter().zip(&seen) {
        assert_eq!(r.meta["trace_id"], trace.as_str());
        assert_eq!(r.meta["span_id"], span.as_str());
    }
    let served = records.iter().filter(|r| r.event == "http_request").count();
    assert_eq!(served, 2);
}
