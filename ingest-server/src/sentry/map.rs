//! From Sentry events and log items to Faultline records. The table in the module docs of
//! [`super`] and in `docs/OPERATIONS.md` is the contract; this is its code.

use faultline_schema::{
    FieldError, Frame, InvalidRecord, Level, MAX_EVENT_CHARS, MAX_META_BYTES, Map,
    RESERVED_META_KEYS, Record, Timestamp, Uuid, Value,
};
use sha2::{Digest, Sha256};

/// How many breadcrumbs a record keeps (the newest).
const MAX_BREADCRUMBS: usize = 50;
/// How many frames a record keeps (the innermost).
const MAX_FRAMES: usize = 100;
/// Source lines kept before and after a frame's line.
const MAX_CONTEXT_LINES: usize = 5;

/// What every record of one request shares.
pub(crate) struct Context<'a> {
    /// The service the records go to.
    pub service: &'a str,
    /// When the envelope was sent, if its header says.
    pub sent_at: Option<Timestamp>,
    /// Stands in for a record with no time.
    pub now: Timestamp,
    /// Whether `user.ip_address` may stand for a user that has no id, email or name
    /// (`privacy.sentry_ip_as_user`; it is re-keyed like every user).
    pub ip_as_user: bool,
    /// The request's client address: what `user.ip_address` `{{auto}}` stands for.
    pub client_ip: Option<std::net::IpAddr>,
}

/// The event in `payload` as a record. `event_id` is the envelope header's, for an event
/// without its own.
pub(crate) fn event(
    payload: &[u8],
    event_id: Option<&str>,
    cx: &Context<'_>,
) -> Result<Record, InvalidRecord> {
    let Value::Object(mut e) = serde_json::from_slice::<Value>(payload)
        .map_err(|err| single("event", format!("the event is not JSON: {err}")))?
    else {
        return Err(single("event", "the event is not a JSON object".into()));
    };
    let exception = primary_exception(&mut e);
    let exception_type = exception.as_ref().and_then(|x| text(x.get("type")));
    let exception_value = exception.as_ref().and_then(|x| text(x.get("value")));
    let logentry = match e.remove("logentry").or_else(|| e.remove("message")) {
        Some(Value::String(s)) => Some((s, None)),
        Some(Value::Object(mut l)) => {
            let template = text(l.get("message"));
            let formatted = text(l.get("formatted")).or_else(|| template.clone());
            let params = l.remove("params");
            formatted.map(|f| {
                let template = template.filter(|t| *t != f || params.is_some());
                (f, template)
            })
        }
        _ => None,
    };
    let message = match (&exception_type, &exception_value) {
        (Some(t), Some(v)) => format!("{t}: {v}"),
        (Some(t), None) => t.clone(),
        (None, Some(v)) => v.clone(),
        (None, None) => logentry.as_ref().map(|l| l.0.clone()).unwrap_or_default(),
    };
    let level = match text(e.get("level")).as_deref() {
        Some(l) => level(l).ok_or_else(|| {
            single(
                "level",
                format!("level {l:?} is not one of fatal, error, warning, info, debug"),
            )
        })?,
        None => Level::Error,
    };
    let mechanism = exception
        .as_ref()
        .and_then(|x| x.get("mechanism"))
        .and_then(Value::as_object);
    let event_name = match (&exception, mechanism.and_then(|m| text(m.get("type")))) {
        // Browser SDKs before 8 say `onerror`, later ones `auto.browser.global_handlers.onerror`.
        (Some(_), Some(m)) => match m.rsplit('.').next().unwrap_or_default() {
            "onerror" => "window.onerror".to_owned(),
            "onunhandledrejection" => "unhandledrejection".to_owned(),
            // What SDKs call an exception captured by hand (`capture_exception`).
            "generic" | "" => "exception".to_owned(),
            _ => m,
        },
        (Some(_), None) => "exception".to_owned(),
        (None, _) => "message".to_owned(),
    };

    let mut meta = Map::new();
    if let Some(t) = &exception_type {
        meta.insert("error_type".into(), t.clone().into());
    }
    if let Some(m) = mechanism {
        let mut kept = Map::new();
        for k in ["type", "handled"] {
            if let Some(v) = m.get(k) {
                kept.insert(k.into(), v.clone());
            }
        }
        meta.insert("mechanism".into(), kept.into());
    }
    if let Some((_, Some(template))) = &logentry
        && exception.is_none()
    {
        meta.insert("message_template".into(), template.clone().into());
    }
    if let Some(frames) = exception
        .as_ref()
        .and_then(|x| x.get("stacktrace"))
        .or_else(|| e.get("stacktrace"))
        .or_else(|| thread_stacktrace(e.get("threads")))
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
    {
        let stack = frames_innermost_first(frames);
        if !stack.is_empty() {
            meta.insert("stack".into(), stack.into());
        }
    }
    for k in [
        "release",
        "environment",
        "dist",
        "platform",
        "logger",
        "server_name",
        "transaction",
    ] {
        if let Some(v) = text(e.get(k)).filter(|v| !v.is_empty()) {
            meta.insert(k.into(), v.into());
        }
    }
    if let Some(tags) = tags(e.get("tags")) {
        meta.insert("tags".into(), tags.into());
    }
    if let Some(Value::Array(parts)) = e.get("fingerprint")
        && !parts.is_empty()
    {
        meta.insert("fingerprint".into(), Value::Array(parts.clone()));
    }
    if let Some(crumbs) = breadcrumbs(e.remove("breadcrumbs")) {
        meta.insert("breadcrumbs".into(), crumbs.into());
    }
    if let Some(Value::Object(contexts)) = e.get("contexts") {
        for k in ["browser", "os", "runtime", "device"] {
            if let Some(Value::Object(c)) = contexts.get(k) {
                let mut kept = Map::new();
                for f in ["name", "version", "family", "model"] {
                    if let Some(v) = c.get(f).filter(|v| v.is_string()) {
                        kept.insert(f.into(), v.clone());
                    }
                }
                if !kept.is_empty() {
                    meta.insert(k.into(), kept.into());
                }
            }
        }
        if let Some(Value::Object(trace)) = contexts.get("trace") {
            for (from, to) in [("trace_id", "trace_id"), ("span_id", "span_id")] {
                if let Some(id) = text(trace.get(from)) {
                    meta.insert(to.into(), id.into());
                }
            }
        }
    }
    if let Some(Value::Object(request)) = e.get("request") {
        if let Some(url) = text(request.get("url")) {
            meta.insert("url".into(), url.into());
        }
        if let Some(method) = text(request.get("method")) {
            meta.insert("method".into(), method.into());
        }
        if let Some(ua) = header(request.get("headers"), "user-agent") {
            meta.insert("user_agent".into(), ua.into());
        }
    }
    if let Some(Value::Object(sdk)) = e.get("sdk") {
        let mut kept = Map::new();
        for f in ["name", "version"] {
            if let Some(v) = sdk.get(f).filter(|v| v.is_string()) {
                kept.insert(f.into(), v.clone());
            }
        }
        meta.insert("sdk".into(), kept.into());
    }
    if let Some(user) = user(e.get("user"), cx) {
        meta.insert("user".into(), user.into());
    }
    if let Some(Value::Object(extra)) = e.remove("extra")
        && !extra.is_empty()
    {
        meta.insert("extra".into(), extra.into());
    }
    fit(&mut meta);

    let ts = timestamp(e.get("timestamp"))
        .or(cx.sent_at)
        .unwrap_or(cx.now);
    let mut record = Record::new(ts, cx.service, level, clip_event(event_name), message);
    record.id = text(e.get("event_id"))
        .as_deref()
        .or(event_id)
        .and_then(|id| Uuid::try_parse(id).ok());
    record.meta = meta;
    record.validate()?;
    Ok(record)
}

/// The records of a `log` item: `{"items": [{timestamp, level, body, trace_id, attributes}]}`.
/// Each record's id is derived from the item's bytes and its position, so a retried
/// envelope stores each log once. Records that cannot be built are returned as errors in
/// their place.
pub(crate) fn logs(payload: &[u8], cx: &Context<'_>) -> Vec<Result<Record, InvalidRecord>> {
    #[derive(serde::Deserialize)]
    struct Logs {
        items: Vec<Map<String, Value>>,
    }
    let items = match serde_json::from_slice::<Logs>(payload) {
        Ok(logs) => logs.items,
        Err(e) => {
            return vec![Err(single(
                "log",
                format!("the log item is not {{\"items\": [...]}}: {e}"),
            ))];
        }
    };
    let digest: [u8; 32] = Sha256::digest(payload).into();
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| log(item, cx, &digest, i))
        .collect()
}

fn log(
    mut item: Map<String, Value>,
    cx: &Context<'_>,
    digest: &[u8; 32],
    index: usize,
) -> Result<Record, InvalidRecord> {
    let level = match text(item.get("level")).as_deref() {
        Some(l) => level(l).ok_or_else(|| {
            single(
                "level",
                format!("level {l:?} is not one of trace, debug, info, warn, error, fatal"),
            )
        })?,
        None => Level::Info,
    };
    let message = text(item.get("body")).unwrap_or_default();
    let mut meta = Map::new();
    if let Some(id) = text(item.get("trace_id")) {
        meta.insert("trace_id".into(), id.into());
    }
    if let Some(Value::Object(attributes)) = item.remove("attributes") {
        for (name, attribute) in attributes {
            let value = match attribute {
                Value::Object(mut a) => a.remove("value").unwrap_or(Value::Null),
                other => other,
            };
            let key = match name.as_str() {
                "sentry.release" => "release",
                "sentry.environment" => "environment",
                "sentry.message.template" => "message_template",
                "user.id" | "user.email" | "user.name" => "user",
                "url.full" => "url",
                _ => name.as_str(),
            };
            if key == "user" {
                if let Value::String(u) = value
                    && !meta.contains_key("user")
                {
                    meta.insert("user".into(), u.into());
                }
                continue;
            }
            let reserved = RESERVED_META_KEYS.iter().any(|(k, _)| *k == key);
            if reserved
                && !matches!(
                    (key, &value),
                    ("release" | "environment" | "url", Value::String(_))
                )
            {
                continue;
            }
            meta.insert(key.to_owned(), value);
        }
    }
    fit(&mut meta);
    let ts = timestamp(item.get("timestamp"))
        .or(cx.sent_at)
        .unwrap_or(cx.now);
    let mut record = Record::new(ts, cx.service, level, "sentry.log", message);
    let mut hash = Sha256::new();
    hash.update(digest);
    hash.update((index as u64).to_le_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&hash.finalize()[..16]);
    record.id = Some(uuid::Builder::from_random_bytes(id).into_uuid());
    record.meta = meta;
    record.validate()?;
    Ok(record)
}

fn single(field: &str, message: String) -> InvalidRecord {
    InvalidRecord {
        errors: vec![FieldError::new(
            field,
            faultline_schema::Problem::Invalid,
            message,
        )],
    }
}

/// A Sentry level (events' and logs').
fn level(l: &str) -> Option<Level> {
    Some(match l.to_ascii_lowercase().as_str() {
        "fatal" | "critical" => Level::Critical,
        "error" => Level::Error,
        "warning" | "warn" => Level::Warning,
        "info" | "log" => Level::Info,
        "debug" | "trace" => Level::Debug,
        _ => return None,
    })
}

/// A string, or a number or boolean as its text.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The exception that was raised: the last of `exception.values` (Sentry lists a chain
/// oldest first). `exception` may also be the list itself.
fn primary_exception(e: &mut Map<String, Value>) -> Option<Map<String, Value>> {
    let values = match e.remove("exception")? {
        Value::Object(mut o) => o.remove("values")?,
        list @ Value::Array(_) => list,
        _ => return None,
    };
    let Value::Array(mut values) = values else {
        return None;
    };
    match values.pop()? {
        Value::Object(x) => Some(x),
        _ => None,
    }
}

/// The stack of the thread that crashed or captured the event (`attach_stacktrace` puts
/// it in `threads`, not on the exception): `threads.values` (or the list itself).
fn thread_stacktrace(threads: Option<&Value>) -> Option<&Value> {
    let threads = match threads? {
        Value::Object(o) => o.get("values")?.as_array()?,
        Value::Array(list) => list,
        _ => return None,
    };
    let flagged = |flag: &str| {
        threads
            .iter()
            .find(|t| t.get(flag).and_then(Value::as_bool) == Some(true))
    };
    flagged("crashed")
        .or_else(|| flagged("current"))
        .or_else(|| threads.iter().find(|t| t.get("stacktrace").is_some()))?
        .get("stacktrace")
}

/// Sentry's frames (outermost first) as the schema's (innermost first), at most
/// [`MAX_FRAMES`] of the innermost.
fn frames_innermost_first(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .rev()
        .take(MAX_FRAMES)
        .filter_map(Value::as_object)
        .map(|f| {
            let number = |k: &str| {
                f.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
            };
            let lines = |k: &str| -> Vec<String> {
                let Some(Value::Array(lines)) = f.get(k) else {
                    return Vec::new();
                };
                let texts: Vec<String> = lines.iter().filter_map(|l| text(Some(l))).collect();
                if k == "pre_context" {
                    texts[texts.len().saturating_sub(MAX_CONTEXT_LINES)..].to_vec()
                } else {
                    texts.into_iter().take(MAX_CONTEXT_LINES).collect()
                }
            };
            let frame = Frame {
                function: text(f.get("function")).filter(|s| !s.is_empty() && s != "?"),
                file: text(f.get("abs_path"))
                    .or_else(|| text(f.get("filename")))
                    .filter(|s| !s.is_empty()),
                line: number("lineno"),
                column: number("colno"),
                module: text(f.get("module")).filter(|s| !s.is_empty()),
                in_app: f.get("in_app").and_then(Value::as_bool),
                pre_context: lines("pre_context"),
                context_line: text(f.get("context_line")),
                post_context: lines("post_context"),
                minified: None,
            };
            serde_json::to_value(frame).unwrap_or(Value::Null)
        })
        .collect()
}

/// Tags as an object of strings: Sentry sends an object or a list of pairs.
fn tags(v: Option<&Value>) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    match v? {
        Value::Object(o) => {
            for (k, v) in o {
                if let Some(v) = text(Some(v)) {
                    out.insert(k.clone(), v.into());
                }
            }
        }
        Value::Array(pairs) => {
            for pair in pairs {
                if let Some([k, v]) = pair.as_array().map(Vec::as_slice)
                    && let (Some(k), Some(v)) = (text(Some(k)), text(Some(v)))
                {
                    out.insert(k, v.into());
                }
            }
        }
        _ => return None,
    }
    (!out.is_empty()).then_some(out)
}

/// Breadcrumbs in the reporter's shape (`ts`, `category`, `level`, `message`, `data`), the
/// newest [`MAX_BREADCRUMBS`].
fn breadcrumbs(v: Option<Value>) -> Option<Vec<Value>> {
    let list = match v? {
        Value::Object(mut o) => o.remove("values")?,
        list => list,
    };
    let Value::Array(list) = list else {
        return None;
    };
    let skip = list.len().saturating_sub(MAX_BREADCRUMBS);
    let out: Vec<Value> = list
        .into_iter()
        .skip(skip)
        .filter_map(|c| match c {
            Value::Object(mut c) => {
                let mut crumb = Map::new();
                if let Some(ts) = timestamp(c.get("timestamp")) {
                    crumb.insert("ts".into(), ts.to_string().into());
                }
                let category = text(c.get("category")).or_else(|| text(c.get("type")));
                crumb.insert("category".into(), category.unwrap_or_default().into());
                if let Some(level) = text(c.get("level")) {
                    crumb.insert("level".into(), level.into());
                }
                crumb.insert(
                    "message".into(),
                    text(c.get("message")).unwrap_or_default().into(),
                );
                if let Some(data) = c.remove("data").filter(|d| !d.is_null()) {
                    crumb.insert("data".into(), data);
                }
                Some(Value::Object(crumb))
            }
            _ => None,
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// A header's value from Sentry's request headers (an object or a list of pairs).
fn header(headers: Option<&Value>, name: &str) -> Option<String> {
    match headers? {
        Value::Object(o) => o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| text(Some(v))),
        Value::Array(pairs) => pairs.iter().find_map(|p| match p.as_array()?.as_slice() {
            [k, v] if k.as_str()?.eq_ignore_ascii_case(name) => text(Some(v)),
            _ => None,
        }),
        _ => None,
    }
}

/// Who the user is, as one string the server then re-keys: the id, else the email, else
/// the username, else (only when configured) the IP address. Nothing else of `user` is kept.
fn user(v: Option<&Value>, cx: &Context<'_>) -> Option<String> {
    let u = v?.as_object()?;
    let named = ["id", "email", "username"]
        .into_iter()
        .filter_map(|f| text(u.get(f)))
        .find(|s| !s.is_empty() && s != "{{auto}}");
    if named.is_some() || !cx.ip_as_user {
        return named;
    }
    match text(u.get("ip_address"))? {
        auto if auto == "{{auto}}" => cx.client_ip.map(|ip| ip.to_string()),
        ip => Some(ip).filter(|ip| !ip.is_empty()),
    }
}

/// Sentry's `timestamp`: seconds since the epoch (a float) or RFC 3339.
fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    match v? {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            (secs.is_finite() && secs > 0.0 && secs < 1e11)
                .then(|| Timestamp::from_unix_millis((secs * 1000.0) as i64))
        }
        Value::String(s) => Timestamp::parse(s).ok().or_else(|| {
            // Sentry writes RFC 3339 without a zone (UTC) too.
            Timestamp::parse(&format!("{s}Z")).ok()
        }),
        _ => None,
    }
}

/// An event name within the schema's limit.
fn clip_event(mut name: String) -> String {
    name.retain(|c| !c.is_control());
    if name.is_empty() {
        return "exception".into();
    }
    if let Some((i, _)) = name.char_indices().nth(MAX_EVENT_CHARS) {
        name.truncate(i);
    }
    name
}

/// Takes what is least needed out of `meta` until it fits the schema's limit: `extra`, then
/// the oldest breadcrumbs, then source context, then the outermost frames.
fn fit(meta: &mut Map<String, Value>) {
    let size = |meta: &Map<String, Value>| serde_json::to_vec(meta).map_or(0, |v| v.len());
    // Room for what stamping adds (a re-keyed user, `[Filtered]` in URLs).
    let limit = MAX_META_BYTES - 256;
    if size(meta) <= limit {
        return;
    }
    meta.remove("extra");
    while size(meta) > limit {
        let Some(Value::Array(crumbs)) = meta.get_mut("breadcrumbs") else {
            break;
        };
        if crumbs.is_empty() {
            meta.remove("breadcrumbs");
            break;
        }
        let half = crumbs.len().div_ceil(2);
        crumbs.drain(..half);
    }
    if size(meta) > limit
        && let Some(Value::Array(frames)) = meta.get_mut("stack")
    {
        for f in frames.iter_mut().filter_map(Value::as_object_mut) {
            for k in ["pre_context", "context_line", "post_context"] {
                f.remove(k);
            }
        }
    }
    while size(meta) > limit {
        let Some(Value::Array(frames)) = meta.get_mut("stack") else {
            break;
        };
        if frames.len() <= 1 {
            break;
        }
        frames.truncate(frames.len() / 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            service: "api",
            sent_at: None,
            now: Timestamp::from_unix_millis(1_700_000_000_000),
            ip_as_user: false,
            client_ip: None,
        }
    }

    #[test]
    fn an_exception_event_field_by_field() {
        let payload = serde_json::json!({
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "timestamp": 1_700_000_001.5,
            "level": "error",
            "release": "app@1.2.3",
            "environment": "prod",
            "tags": {"region": "eu", "n": 3},
            "fingerprint": ["{{ default }}", "checkout"],
            "user": {"id": "user-42", "email": "a@b.c", "ip_address": "10.0.0.1"},
            "request": {"url": "https://shop.example/pay?token=s3cret", "headers": {"User-Agent": "UA/1"}},
            "contexts": {"os": {"name": "Linux", "version": "6.1"}, "trace": {"trace_id": "ab", "span_id": "cd"}},
            "sdk": {"name": "sentry.python", "version": "2.0.0"},
            "breadcrumbs": {"values": [{"timestamp": 1_700_000_000.0, "category": "auth", "message": "login", "level": "info"}]},
            "exception": {"values": [
                {"type": "KeyError", "value": "'cause'"},
                {"type": "ValueError", "value": "bad total", "module": "builtins",
                 "mechanism": {"type": "excepthook", "handled": false},
                 "stacktrace": {"frames": [
                    {"function": "main", "filename": "app.py", "abs_path": "/srv/app.py", "lineno": 10, "in_app": true},
                    {"function": "pay", "module": "shop.pay", "filename": "pay.py", "lineno": 20, "colno": 4, "in_app": false,
                     "pre_context": ["a", "b", "c", "d", "e", "f"], "context_line": "raise", "post_context": ["z"]}
                 ]}}
            ]}
        });
        let r = event(payload.to_string().as_bytes(), None, &cx()).unwrap();
        assert_eq!(
            r.id.unwrap().simple().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(r.ts, Timestamp::from_unix_millis(1_700_000_001_500));
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.event, "excepthook");
        assert_eq!(r.message, "ValueError: bad total");
        let m = &r.meta;
        assert_eq!(m["error_type"], "ValueError");
        assert_eq!(m["release"], "app@1.2.3");
        assert_eq!(m["environment"], "prod");
        assert_eq!(m["tags"], serde_json::json!({"region": "eu", "n": "3"}));
        assert_eq!(m["fingerprint"][1], "checkout");
        assert_eq!(m["user"], "user-42");
        assert_eq!(m["url"], "https://shop.example/pay?token=s3cret");
        assert_eq!(m["user_agent"], "UA/1");
        assert_eq!(
            m["os"],
            serde_json::json!({"name": "Linux", "version": "6.1"})
        );
        assert_eq!(m["trace_id"], "ab");
        assert_eq!(m["sdk"]["name"], "sentry.python");
        assert_eq!(m["breadcrumbs"][0]["category"], "auth");
        assert_eq!(m["breadcrumbs"][0]["message"], "login");
        assert_eq!(m["mechanism"]["handled"], false);
        let stack = m["stack"].as_array().unwrap();
        assert_eq!(stack[0]["function"], "pay", "innermost first");
        assert_eq!(stack[0]["module"], "shop.pay");
        assert_eq!(stack[0]["in_app"], false);
        assert_eq!(stack[0]["column"], 4);
        assert_eq!(stack[0]["pre_context"].as_array().unwrap().len(), 5);
        assert_eq!(stack[1]["file"], "/srv/app.py");
        assert_eq!(stack[1]["line"], 10);
        let text = serde_json::to_string(&r).unwrap();
        for raw in ["a@b.c", "10.0.0.1"] {
            assert!(!text.contains(raw), "{raw} in {text}");
        }
    }

    #[test]
    fn messages_levels_and_logentry_templates() {
        let r = event(br#"{"message":"disk low","level":"warning"}"#, None, &cx()).unwrap();
        assert_eq!(
            (r.level, r.event.as_str(), r.message.as_str()),
            (Level::Warning, "message", "disk low")
        );
        assert_eq!(r.ts, cx().now);
        assert!(r.id.is_none());
        let r = event(
            br#"{"logentry":{"message":"user %s failed","params":["bob"],"formatted":"user bob failed"},"level":"fatal"}"#,
            Some("9ec79c33-ec99-42ab-8353-589fcb2e04dc"),
            &cx(),
        )
        .unwrap();
        assert_eq!(r.level, Level::Critical);
        assert_eq!(r.message, "user bob failed");
        assert_eq!(r.meta["message_template"], "user %s failed");
        assert!(r.id.is_some(), "the envelope's event_id");
        let err = event(br#"{"level":"loud"}"#, None, &cx()).unwrap_err();
        assert!(err.to_string().contains("\"loud\""), "{err}");
        assert!(event(b"[1]", None, &cx()).is_err());
        // A browser error: onerror reads as the reporter's event name; the IP is dropped.
        let r = event(
            br#"{"exception":{"values":[{"type":"Error","value":"x","mechanism":{"type":"onerror"}}]},"user":{"ip_address":"{{auto}}"}}"#,
            None,
            &cx(),
        )
        .unwrap();
        assert_eq!(r.event, "window.onerror");
        assert!(!r.meta.contains_key("user"));
        // With privacy.sentry_ip_as_user, the address stands for the user (re-keyed later):
        // `{{auto}}` is the request's client address; an id still comes first.
        let ip_cx = Context {
            ip_as_user: true,
            client_ip: Some([198, 51, 100, 7].into()),
            ..cx()
        };
        for (user, expected) in [
            (r#"{"ip_address":"{{auto}}"}"#, "198.51.100.7"),
            (r#"{"ip_address":"203.0.113.9"}"#, "203.0.113.9"),
            (r#"{"id":"u1","ip_address":"203.0.113.9"}"#, "u1"),
        ] {
            let payload = format!(r#"{{"message":"m","user":{user}}}"#);
            let r = event(payload.as_bytes(), None, &ip_cx).unwrap();
            assert_eq!(r.meta["user"], expected, "{user}");
        }
        // As SDKs 8 and later name their handlers, and a capture by hand.
        for (mechanism, name) in [
            ("auto.browser.global_handlers.onerror", "window.onerror"),
            (
                "auto.browser.global_handlers.onunhandledrejection",
                "unhandledrejection",
            ),
            ("generic", "exception"),
            (
                "auto.browser.browserapierrors.setTimeout",
                "auto.browser.browserapierrors.setTimeout",
            ),
        ] {
            let payload = serde_json::json!({"exception": {"values": [
                {"type": "Error", "mechanism": {"type": mechanism}}]}});
            let r = event(payload.to_string().as_bytes(), None, &cx()).unwrap();
            assert_eq!(r.event, name, "{mechanism}");
        }
    }

    #[test]
    fn a_large_event_is_cut_to_fit() {
        let frame = serde_json::json!({"function": "f", "filename": "x.py", "lineno": 1,
            "context_line": "x".repeat(200), "pre_context": vec!["y".repeat(200); 5]});
        let crumb = serde_json::json!({"message": "m".repeat(300)});
        let payload = serde_json::json!({
            "exception": [{"type": "E", "stacktrace": {"frames": vec![frame; 300]}}],
            "breadcrumbs": vec![crumb; 100],
            "extra": {"blob": "b".repeat(20_000)}
        });
        let r = event(payload.to_string().as_bytes(), None, &cx()).unwrap();
        assert!(!r.meta.contains_key("extra"));
        assert!(serde_json::to_vec(&r.meta).unwrap().len() <= MAX_META_BYTES);
        assert!(!r.meta["stack"].as_array().unwrap().is_empty());
    }

    #[test]
    fn log_items_become_records_with_stable_ids() {
        let payload = br#"{"items":[
            {"timestamp":1700000000.25,"level":"warn","body":"slow query 12ms","trace_id":"abc",
             "attributes":{"sentry.release":{"value":"1.0","type":"string"},
                           "sentry.message.template":{"value":"slow query {}ms","type":"string"},
                           "db":{"value":"pg","type":"string"},
                           "user.id":{"value":"u1","type":"string"}}},
            {"level":"nope","body":"x"}
        ]}"#;
        let out = logs(payload, &cx());
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.level, Level::Warning);
        assert_eq!(r.message, "slow query 12ms");
        assert_eq!(r.meta["release"], "1.0");
        assert_eq!(r.meta["message_template"], "slow query {}ms");
        assert_eq!(r.meta["db"], "pg");
        assert_eq!(r.meta["user"], "u1");
        assert!(out[1].is_err());
        assert_eq!(logs(payload, &cx())[0].as_ref().unwrap().id, r.id);
        assert!(logs(b"{}", &cx())[0].is_err());
    }
}
