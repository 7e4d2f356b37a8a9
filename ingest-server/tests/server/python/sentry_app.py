"""An app using the real Sentry Python SDK (`sentry-sdk`), its DSN pointed at Faultline.

Usage: sentry_app.py DSN br|gzip

`br` runs with the `brotli` package importable, so the SDK compresses envelopes with
brotli; `gzip` hides it (as if it were not installed), so the SDK falls back to gzip.
Captures an exception (with a user, tags, breadcrumbs and a release) and a message at
warning level, flushes, and prints one JSON line: the two event ids and the compression
the transport used.
"""

import json
import sys

dsn, compression = sys.argv[1], sys.argv[2]
if compression == "gzip":
    # An import of brotli now fails, as when the package is not installed.
    sys.modules["brotli"] = None

import sentry_sdk  # noqa: E402

sentry_sdk.init(
    dsn=dsn,
    release="shop@1.4.2",
    environment="test",
    default_integrations=False,
)
sentry_sdk.set_user({"id": "user-8841", "email": "ann@example.com", "ip_address": "203.0.113.9"})
sentry_sdk.set_tag("region", "eu-west")
sentry_sdk.set_tag("plan", "pro")
sentry_sdk.add_breadcrumb(category="auth", message="signed in", level="info")
sentry_sdk.add_breadcrumb(category="cart", message="added 3 items", data={"count": 3})


def parse_total(text):
    return int(text)


def checkout(order):
    return parse_total(order["total"])


try:
    checkout({"total": "12,99"})
except ValueError:
    error_id = sentry_sdk.capture_exception()

message_id = sentry_sdk.capture_message("disk almost full on %s" % "db-1", level="warning")
transport = sentry_sdk.get_client().transport
algo = getattr(transport, "_compression_algo", None)
sentry_sdk.flush(timeout=10)
print(json.dumps({"error": error_id, "message": message_id, "compression": algo}))
