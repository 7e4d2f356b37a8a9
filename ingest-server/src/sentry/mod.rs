//! Sentry's ingest protocol: envelopes (`envelope.rs`) and their events and logs as records
//! (`map.rs`). The HTTP side is `api/sentry.rs`.
//!
//! | Sentry | record |
//! | --- | --- |
//! | `event_id` (else the envelope header's) | `id` (a retried envelope is stored once) |
//! | `timestamp` (else the envelope's `sent_at`, else arrival) | `ts` |
//! | `level` (`fatal` is `CRITICAL`; none is `ERROR`) | `level` |
//! | the raised exception (the last of `exception.values`): `type: value` | `message` |
//! | else `logentry.formatted` (or `message`); the template `logentry.message` | `message`; `meta.message_template` |
//! | exception `type` | `meta.error_type` |
//! | `mechanism.type` (`onerror` or `auto.browser.global_handlers.onerror` as `window.onerror`, `...onunhandledrejection` as `unhandledrejection`); `generic` or none is `exception`; `message` for an event without an exception | `event` |
//! | `mechanism` `type` and `handled` | `meta.mechanism` |
//! | `stacktrace.frames`, reversed (innermost first): `function`, `abs_path` (else `filename`), `lineno`, `colno`, `module`, `in_app`, up to 5 lines of context each side | `meta.stack` |
//! | `release`, `environment`, `dist`, `platform`, `logger`, `server_name`, `transaction` | `meta.*` of the same name |
//! | `tags` (object or pairs) | `meta.tags` (strings) |
//! | `fingerprint` | `meta.fingerprint` (grouping reads it; `{{ default }}` works) |
//! | `breadcrumbs` (the newest 50) | `meta.breadcrumbs` (`ts`, `category`, `level`, `message`, `data`) |
//! | `contexts` `browser`, `os`, `runtime`, `device` (`name`, `version`, ...); `trace` | `meta.browser`, ...; `meta.trace_id`, `meta.span_id` |
//! | `request.url`, `request.method`, the `User-Agent` header | `meta.url` (scrubbed), `meta.method`, `meta.user_agent` |
//! | `sdk.name`, `sdk.version` | `meta.sdk` |
//! | `user.id`, else `email`, else `username` (else `ip_address` when configured) | `meta.user`, re-keyed; the rest of `user` is dropped |
//! | `extra` | `meta.extra` (dropped first when the record would exceed its size) |
//!
//! A `log` item's entries become one record each (`event` `sentry.log`, `body` as the
//! message, attributes in `meta`, `sentry.release`/`sentry.environment`/
//! `sentry.message.template` as `release`/`environment`/`message_template`, `user.id` as
//! the re-keyed user); their ids derive from the item's bytes, so a retry stores them once.
//! Other items (transactions, sessions, client reports, attachments, profiles, replays,
//! check-ins, ...) are accepted and counted, not stored.

pub(crate) mod envelope;
pub(crate) mod map;

/// The `faultline_sentry_items_total` label for an item type (labels are `'static`).
pub(crate) fn item_label(kind: &str) -> &'static str {
    match kind {
        "event" => "event",
        "log" => "log",
        "transaction" => "transaction",
        "session" => "session",
        "sessions" => "sessions",
        "client_report" => "client_report",
        "attachment" => "attachment",
        "profile" | "profile_chunk" => "profile",
        "replay_event" | "replay_recording" | "replay_video" => "replay",
        "check_in" => "check_in",
        "span" | "otel_span" => "span",
        "statsd" | "metric_buckets" | "trace_metric" => "metric",
        "user_report" | "feedback" => "feedback",
        _ => "other",
    }
}
