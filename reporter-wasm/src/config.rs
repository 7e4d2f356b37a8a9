//! The options of `init()`, their defaults in one place, and their checks.
//!
//! Options come from a JavaScript object; [`Options`] abstracts the lookup so the rules are
//! tested natively. Every check names the option, the way the page author wrote it.

use crate::filter::{Filters, Pattern};

/// An option as read from the page.
#[derive(Debug)]
pub(crate) enum OptValue {
    /// Absent, `undefined` or `null`.
    Missing,
    /// A string.
    Str(String),
    /// A number.
    Num(f64),
    /// Anything else (an object, a function, ...).
    Other,
}

/// Where options are read from.
pub(crate) trait Options {
    /// The value of option `key`.
    fn value(&self, key: &str) -> OptValue;
    /// Option `key` as a list of patterns (strings and `RegExp`s); `Err` names the problem.
    fn patterns(&self, key: &str) -> Result<Vec<Pattern>, String>;
    /// Whether option `key` is a function.
    fn is_function(&self, key: &str) -> bool;
}

/// Why the options were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError(pub(crate) String);

/// The reporter's settings, checked.
#[derive(Debug)]
pub(crate) struct Config {
    /// Where batches go, with `key=` in the query string (what `sendBeacon` needs, and what
    /// keeps every request a CORS "simple request" without a preflight).
    pub(crate) url: String,
    /// The record's `service` (default `ui`).
    pub(crate) service: String,
    /// `meta.release`.
    pub(crate) release: Option<String>,
    /// `meta.environment`.
    pub(crate) environment: Option<String>,
    /// The project's public salt for `setUser`; without it `setUser` is refused.
    pub(crate) salt: Option<String>,
    /// Send when this many records are queued.
    pub(crate) batch_size: usize,
    /// Send when the queue holds this many bytes of JSON; no batch is larger (except one
    /// record that alone is).
    pub(crate) max_batch_bytes: usize,
    /// Send this long after the first record of a batch was queued.
    pub(crate) flush_interval_ms: f64,
    /// Records kept in memory (and in `localStorage`) waiting to be sent.
    pub(crate) max_queue: usize,
    /// Share of new records kept, 0 to 1.
    pub(crate) sample_rate: f64,
    /// The page's patterns.
    pub(crate) filters: Filters,
    /// Breadcrumbs kept and attached to each record.
    pub(crate) max_breadcrumbs: usize,
    /// New records per page load; later ones are dropped (folded repeats do not count).
    pub(crate) max_events_per_page: u32,
    /// Identical errors within this window fold into one record with `meta.count`.
    pub(crate) fold_window_ms: f64,
    /// Whether the page set `beforeSend` (records wait for it before they are queued).
    pub(crate) before_send: bool,
    /// `navigator.userAgent`, for `meta.user_agent`.
    pub(crate) user_agent: String,
}

/// Defaults, in one place (the `.d.ts` and the README quote them).
pub(crate) mod defaults {
    /// `service`.
    pub(crate) const SERVICE: &str = "ui";
    /// `batchSize`.
    pub(crate) const BATCH_SIZE: f64 = 20.0;
    /// `maxBatchBytes`: under the 64 KiB budget browsers give `sendBeacon` and keepalive
    /// `fetch`, so any batch can leave with the page.
    pub(crate) const MAX_BATCH_BYTES: f64 = 60_000.0;
    /// `flushIntervalMs`.
    pub(crate) const FLUSH_INTERVAL_MS: f64 = 2_000.0;
    /// `maxQueue`.
    pub(crate) const MAX_QUEUE: f64 = 500.0;
    /// `maxBreadcrumbs`.
    pub(crate) const MAX_BREADCRUMBS: f64 = 30.0;
    /// `maxEventsPerPage`.
    pub(crate) const MAX_EVENTS_PER_PAGE: f64 = 100.0;
    /// `foldWindowMs`.
    pub(crate) const FOLD_WINDOW_MS: f64 = 30_000.0;
}

/// The most breadcrumbs `maxBreadcrumbs` may ask for: more would not fit `meta` anyway.
pub(crate) const BREADCRUMBS_LIMIT: usize = 100;
/// Longest `release` or `environment`.
const MAX_LABEL_BYTES: usize = 200;

impl Config {
    /// Reads and checks every option.
    pub(crate) fn from_options(o: &impl Options, user_agent: &str) -> Result<Config, ConfigError> {
        let endpoint = required_str(o, "endpoint")?;
        if !(endpoint.starts_with("https://")
            || endpoint.starts_with("http://")
            || endpoint.starts_with('/'))
        {
            return Err(err(
                "endpoint",
                "must be an http(s) URL or a path starting with /, such as \
                 https://faultline.example.com/logs/ingest",
            ));
        }
        let key = required_str(o, "key")?;
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err("key", "must be printable ASCII without spaces"));
        }
        let service = opt_str(o, "service")?.unwrap_or_else(|| defaults::SERVICE.into());
        let service_ok = !service.is_empty()
            && service.len() <= faultline_schema::MAX_SERVICE_CHARS
            && service
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
        if !service_ok {
            return Err(err(
                "service",
                "must be 1 to 64 characters of a-z, 0-9, '_', '.' and '-'",
            ));
        }
        let release = label(o, "release")?;
        let environment = label(o, "environment")?;
        let salt = opt_str(o, "salt")?.filter(|s| !s.is_empty());

        let mut url = String::with_capacity(endpoint.len() + key.len() + 5);
        url.push_str(&endpoint);
        url.push(if endpoint.contains('?') { '&' } else { '?' });
        url.push_str("key=");
        percent_encode(&mut url, &key);

        let filters = Filters {
            ignore_errors: o
                .patterns("ignoreErrors")
                .map_err(|m| err("ignoreErrors", &m))?,
            deny_urls: o.patterns("denyUrls").map_err(|m| err("denyUrls", &m))?,
        };
        Ok(Config {
            url,
            service,
            release,
            environment,
            salt,
            batch_size: whole(o, "batchSize", defaults::BATCH_SIZE, 1.0, 1_000.0)? as usize,
            max_batch_bytes: whole(
                o,
                "maxBatchBytes",
                defaults::MAX_BATCH_BYTES,
                1_024.0,
                1_048_576.0,
            )? as usize,
            flush_interval_ms: whole(
                o,
                "flushIntervalMs",
                defaults::FLUSH_INTERVAL_MS,
                0.0,
                600_000.0,
            )?,
            max_queue: whole(o, "maxQueue", defaults::MAX_QUEUE, 1.0, 10_000.0)? as usize,
            sample_rate: number(o, "sampleRate", 1.0, 0.0, 1.0)?,
            filters,
            max_breadcrumbs: whole(
                o,
                "maxBreadcrumbs",
                defaults::MAX_BREADCRUMBS,
                0.0,
                BREADCRUMBS_LIMIT as f64,
            )? as usize,
            max_events_per_page: whole(
                o,
                "maxEventsPerPage",
                defaults::MAX_EVENTS_PER_PAGE,
                1.0,
                1_000_000.0,
            )? as u32,
            fold_window_ms: whole(
                o,
                "foldWindowMs",
                defaults::FOLD_WINDOW_MS,
                0.0,
                86_400_000.0,
            )?,
            before_send: o.is_function("beforeSend"),
            user_agent: crate::json::clip(user_agent, 512).to_owned(),
        })
    }
}

fn err(option: &str, what: &str) -> ConfigError {
    let mut s = String::from("faultline: option `");
    s.push_str(option);
    s.push_str("` ");
    s.push_str(what);
    ConfigError(s)
}

fn opt_str(o: &impl Options, key: &str) -> Result<Option<String>, ConfigError> {
    match o.value(key) {
        OptValue::Missing => Ok(None),
        OptValue::Str(s) => Ok(Some(s)),
        _ => Err(err(key, "must be a string")),
    }
}

fn required_str(o: &impl Options, key: &str) -> Result<String, ConfigError> {
    opt_str(o, key)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err(key, "is required"))
}

fn label(o: &impl Options, key: &str) -> Result<Option<String>, ConfigError> {
    let v = opt_str(o, key)?.filter(|s| !s.is_empty());
    match v {
        Some(s) if s.len() > MAX_LABEL_BYTES || s.chars().any(char::is_control) => Err(err(
            key,
            "must be at most 200 bytes without control characters",
        )),
        other => Ok(other),
    }
}

fn number(
    o: &impl Options,
    key: &str,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, ConfigError> {
    match o.value(key) {
        OptValue::Missing => Ok(default),
        OptValue::Num(n) if n >= min && n <= max => Ok(n),
        OptValue::Num(_) => Err(err(key, &range_text(min, max))),
        _ => Err(err(key, "must be a number")),
    }
}

fn whole(
    o: &impl Options,
    key: &str,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, ConfigError> {
    let n = number(o, key, default, min, max)?;
    if n.fract() == 0.0 {
        Ok(n)
    } else {
        Err(err(key, "must be a whole number"))
    }
}

fn range_text(min: f64, max: f64) -> String {
    let mut s = String::from("must be from ");
    push_num(&mut s, min);
    s.push_str(" to ");
    push_num(&mut s, max);
    s
}

/// Prints the option bounds above: whole numbers, or the one fraction bound (`1`).
fn push_num(out: &mut String, n: f64) {
    crate::json::push_u64(out, n as u64);
}

/// `application/x-www-form-urlencoded`-safe percent-encoding of a query value.
fn percent_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Options from a list of pairs, for native tests.
    #[derive(Default)]
    pub(crate) struct Opts(pub(crate) Vec<(&'static str, OptValue)>);

    impl Opts {
        pub(crate) fn minimal() -> Opts {
            Opts(vec![
                (
                    "endpoint",
                    OptValue::Str("http://127.0.0.1:9/logs/ingest".into()),
                ),
                ("key", OptValue::Str("pk_test".into())),
            ])
        }

        pub(crate) fn with(mut self, key: &'static str, v: OptValue) -> Opts {
            self.0.retain(|(k, _)| *k != key);
            self.0.push((key, v));
            self
        }
    }

    impl Options for Opts {
        fn value(&self, key: &str) -> OptValue {
            match self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v) {
                None | Some(OptValue::Missing) => OptValue::Missing,
                Some(OptValue::Str(s)) => OptValue::Str(s.clone()),
                Some(OptValue::Num(n)) => OptValue::Num(*n),
                Some(OptValue::Other) => OptValue::Other,
            }
        }
        fn patterns(&self, key: &str) -> Result<Vec<Pattern>, String> {
            match self.value(key) {
                OptValue::Missing => Ok(Vec::new()),
                OptValue::Str(s) => Ok(s.split('|').map(|p| Pattern::Text(p.into())).collect()),
                _ => Err("must be an array of strings and RegExps".into()),
            }
        }
        fn is_function(&self, key: &str) -> bool {
            matches!(self.value(key), OptValue::Other)
        }
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_options(&Opts::minimal(), "UA").unwrap();
        assert_eq!(c.url, "http://127.0.0.1:9/logs/ingest?key=pk_test");
        assert_eq!(c.service, "ui");
        assert_eq!(c.batch_size, 20);
        assert_eq!(c.max_batch_bytes, 60_000);
        assert_eq!(c.flush_interval_ms, 2_000.0);
        assert_eq!(c.max_queue, 500);
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.max_breadcrumbs, 30);
        assert_eq!(c.max_events_per_page, 100);
        assert_eq!(c.fold_window_ms, 30_000.0);
        assert!(c.salt.is_none() && c.release.is_none() && !c.before_send);
        assert_eq!(c.user_agent, "UA");
    }

    #[test]
    fn key_is_percent_encoded_into_the_query() {
        let o = Opts::minimal()
            .with("endpoint", OptValue::Str("/logs/ingest?x=1".into()))
            .with("key", OptValue::Str("pk+a/b=".into()));
        let c = Config::from_options(&o, "").unwrap();
        assert_eq!(c.url, "/logs/ingest?x=1&key=pk%2Ba%2Fb%3D");
    }

    #[test]
    fn bad_options_name_the_option() {
        let cases: Vec<(Opts, &str)> = vec![
            (Opts::default(), "option `endpoint` is required"),
            (
                Opts::minimal().with("endpoint", OptValue::Str("ftp://x".into())),
                "`endpoint` must be an http(s) URL",
            ),
            (
                Opts::minimal().with("key", OptValue::Num(3.0)),
                "`key` must be a string",
            ),
            (
                Opts::minimal().with("service", OptValue::Str("Web UI".into())),
                "`service` must be 1 to 64",
            ),
            (
                Opts::minimal().with("batchSize", OptValue::Num(0.0)),
                "`batchSize` must be from 1 to 1000",
            ),
            (
                Opts::minimal().with("batchSize", OptValue::Num(2.5)),
                "`batchSize` must be a whole number",
            ),
            (
                Opts::minimal().with("sampleRate", OptValue::Num(1.5)),
                "`sampleRate` must be from 0 to 1",
            ),
            (
                Opts::minimal().with("flushIntervalMs", OptValue::Str("1s".into())),
                "`flushIntervalMs` must be a number",
            ),
            (
                Opts::minimal().with("ignoreErrors", OptValue::Num(1.0)),
                "`ignoreErrors` must be an array",
            ),
            (
                Opts::minimal().with("release", OptValue::Str("a\nb".into())),
                "`release` must be at most 200 bytes",
            ),
        ];
        for (opts, want) in cases {
            let e = Config::from_options(&opts, "").unwrap_err();
            assert!(e.0.contains(want), "{:?} does not contain {want:?}", e.0);
        }
    }
}
