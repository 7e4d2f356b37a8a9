"""Logs through Python `logging` with the OpenTelemetry SDK to a Faultline server's /v1/logs.

Usage: otel_logs.py BASE_URL (the key in FAULTLINE_KEY). Prints the trace and span ids of
the span the error was logged in, as hex, then exits 0 only if every export succeeded.
"""

import logging
import os
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

try:
    from opentelemetry.sdk._logs.export import LogRecordExportResult as ExportResult
except ImportError:  # SDKs before the rename
    from opentelemetry.sdk._logs.export import LogExportResult as ExportResult


class CheckedExporter(OTLPLogExporter):
    """The OTLP/HTTP exporter, remembering whether each export succeeded."""

    results = []

    def export(self, batch):
        result = super().export(batch)
        self.results.append(result)
        return result


def main():
    base = sys.argv[1]
    resource = Resource.create(
        {
            "service.name": "Checkout",
            "service.version": "2.0.1",
            "deployment.environment.name": "test",
        }
    )
    trace.set_tracer_provider(TracerProvider(resource=resource))
    exporter = CheckedExporter(
        endpoint=f"{base}/v1/logs",
        headers={"Authorization": f"Bearer {os.environ['FAULTLINE_KEY']}"},
        compression=Compression.Gzip,
    )
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))

    log = logging.getLogger("checkout.payments")
    log.setLevel(logging.DEBUG)
    log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))

    tracer = trace.get_tracer("checkout")
    with tracer.start_as_current_span("charge") as span:
        context = span.get_span_context()
        log.error(
            "card declined for order %s",
            "o-17",
            extra={"order_id": "o-17", "amount_cents": 1299, "event": "payment_failed"},
        )
    log.info("charge retried", extra={"attempt": 2})
    log.warning("gateway slow")

    provider.force_flush(10_000)
    provider.shutdown()
    print(format(context.trace_id, "032x"), format(context.span_id, "016x"))
    ok = CheckedExporter.results and all(r == ExportResult.SUCCESS for r in CheckedExporter.results)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
