//! Grouping error events into issues: the fingerprint, the issue id, the title and culprit.
//!
//! An **error event** is a record at `ERROR` or worse, or any record with `meta.error_type` or
//! `meta.stack` ([`is_error_event`]). Its **fingerprint** is a list of strings; events of one
//! service with the same fingerprint are one issue, whose id ([`issue_id`]) is derived from the
//! service and the fingerprint alone, so every node (and the browser reporter, folding
//! duplicates) computes the same id without asking anyone.
//!
//! The fingerprint ([`fingerprint`]), first rule that applies:
//!
//! 1. **The client's**: `meta.fingerprint`, an array of strings (numbers and booleans are
//!    taken as their JSON text). An element `{{ default }}` (spaces optional) stands for the
//!    default fingerprint below, Sentry's convention. Anything else in `meta.fingerprint` (an
//!    empty array, a string, an object, an array holding objects) is ignored.
//! 2. **With frames** (`meta.stack`): `"frames"`, the error type, and for each of the
//!    innermost [`MAX_FINGERPRINT_FRAMES`] in-app frames its function's last name segment and
//!    its normalized file ([`normalize_file`]: origin, query, fragment and content hashes in
//!    file names dropped). Line and column numbers are ignored, so a new deploy of the same
//!    code groups with the old one, and two browsers (which name methods differently) group
//!    together. A frame is in-app unless it says `in_app: false`; native frames
//!    (`[native code]`, `native`, `<anonymous>`, ...) and browser-extension frames are never
//!    in-app. When no frame is in-app, every frame that is not native or an extension's is
//!    used; when none is left, rule 3 applies.
//! 3. **Without frames**: `"message"`, the event, the error type and the message as a
//!    template ([`message_template`]: numbers, hex ids, UUIDs, emails, IP addresses, URLs and
//!    quoted values become placeholders).

use crate::prelude::*;
use sha2::{Digest, Sha256};

use crate::level::Level;
use crate::record::Record;
use crate::{Map, Value};

/// Hex characters in an issue id (64 bits of SHA-256).
pub const ISSUE_ID_HEX_CHARS: usize = 16;
/// At most this many in-app frames (innermost first) make a fingerprint: engines cut stacks
/// at different depths (V8 at 10 frames by default), so deeper frames would split one error
/// into one issue per browser.
pub const MAX_FINGERPRINT_FRAMES: usize = 5;
/// An issue's title is cut to this many characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The `meta` key a client sets its own fingerprint in.
pub const FINGERPRINT_KEY: &str = "fingerprint";

/// What grouping says about one error event: its issue and how to show the issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// The issue id: [`issue_id`] of the service and the fingerprint.
    pub issue: String,
    /// The fingerprint the id was made from.
    pub fingerprint: Vec<String>,
    /// `error_type: message` (first line, at most [`MAX_TITLE_CHARS`]).
    pub title: String,
    /// Where it happened: the innermost in-app frame (`function (file)`), else the event.
    pub culprit: String,
    /// `meta.error_type`, if any.
    pub error_type: Option<String>,
}

/// Whether `record` is an error event: `ERROR` or worse, or carrying `meta.error_type` or
/// `meta.stack`.
pub fn is_error_event(record: &Record) -> bool {
    record.level >= Level::Error
        || record.meta.contains_key("error_type")
        || record.meta.contains_key("stack")
}

/// The grouping of `record`, or `None` if it is not an error event.
pub fn group(record: &Record) -> Option<Grouping> {
    if !is_error_event(record) {
        return None;
    }
    let fingerprint = fingerprint(record);
    let error_type = error_type(&record.meta).map(str::to_owned);
    Some(Grouping {
        issue: issue_id(&record.service, &fingerprint),
        title: title(error_type.as_deref(), &record.message, &record.event),
        culprit: culprit(record),
        error_type,
        fingerprint,
    })
}

/// The issue id of `record`, or `None` if it is not an error event: [`group`]'s `issue`
/// without the title and culprit (what ingest sets as `Record::issue`).
///
/// The same id as `issue_id(&record.service, &fingerprint(record))`, computed on every
/// error event at ingest: the default fingerprint's parts are hashed as they are made, in
/// buffers the thread reuses, instead of being collected as strings first.
pub fn issue_of(record: &Record) -> Option<String> {
    if !is_error_event(record) {
        return None;
    }
    if let Some(Value::Array(_)) = record.meta.get(FINGERPRINT_KEY) {
        // A client's fingerprint: rare, and its parts are the client's strings anyway.
        return Some(issue_id(&record.service, &fingerprint(record)));
    }
    let mut id = IssueHasher::new(&record.service);
    #[cfg(feature = "std")]
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => hash_default_fingerprint(record, &mut id, &mut scratch),
        // Not reentrant; a fresh scratch if it ever were.
        Err(_) => hash_default_fingerprint(record, &mut id, &mut FrameParts::default()),
    });
    // No thread-locals without `std`: fresh buffers each time.
    #[cfg(not(feature = "std"))]
    hash_default_fingerprint(record, &mut id, &mut FrameParts::default());
    Some(id.finish())
}

/// [`issue_id`] fed one part at a time.
struct IssueHasher(Sha256);

impl IssueHasher {
    fn new(service: &str) -> IssueHasher {
        let mut hasher = IssueHasher(Sha256::new());
        hasher.0.update(b"v1");
        hasher.part(service);
        hasher
    }

    fn part(&mut self, part: &str) {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part.as_bytes());
    }

    fn finish(self) -> String {
        let digest = self.0.finalize();
        let mut id = String::with_capacity(ISSUE_ID_HEX_CHARS);
        for b in digest.iter().take(ISSUE_ID_HEX_CHARS / 2) {
            id.push(HEX[usize::from(b >> 4)] as char);
            id.push(HEX[usize::from(b & 0xf)] as char);
        }
        id
    }
}

/// Buffers for the frame parts of a fingerprint being hashed: the part being made, the
/// previous one (repeats are dropped), a file name losing its hashes, and the last file
/// normalized with its result (a bundle's frames mostly share one or two files, and
/// normalizing was half the cost of hashing a frame).
#[derive(Default)]
struct FrameParts {
    part: String,
    previous: String,
    name: String,
    file: String,
    normalized: String,
}

#[cfg(feature = "std")]
std::thread_local! {
    static SCRATCH: core::cell::RefCell<FrameParts> = core::cell::RefCell::default();
}

/// Feeds [`default_fingerprint`]'s parts to `id`, the same parts in the same order.
fn hash_default_fingerprint(record: &Record, id: &mut IssueHasher, scratch: &mut FrameParts) {
    let error_type = error_type(&record.meta).unwrap_or_default();
    let mut frames = 0;
    for_each_grouping_frame(&record.meta, |frame| {
        if frames == 0 {
            id.part("frames");
            id.part(error_type);
            // The part before the first frame's, as `default_fingerprint` compares them.
            scratch.previous.clear();
            scratch.previous.push_str(error_type);
        }
        let function = frame.function.map(function_name).unwrap_or("?");
        scratch.part.clear();
        scratch.part.push_str(function);
        scratch.part.push(' ');
        if let Some(file) = frame.file {
            if scratch.file != file {
                scratch.file.clear();
                scratch.file.push_str(file);
                scratch.normalized.clear();
                normalize_file_into(file, &mut scratch.normalized, &mut scratch.name);
            }
            scratch.part.push_str(&scratch.normalized);
        }
        // An engine may list a frame twice (async boundaries) where another lists it once.
        if scratch.part != scratch.previous {
            id.part(&scratch.part);
            core::mem::swap(&mut scratch.part, &mut scratch.previous);
        }
        frames += 1;
    });
    if frames == 0 {
        id.part("message");
        id.part(&record.event);
        id.part(error_type);
        id.part(&message_template(&record.message));
    }
}

/// The fingerprint of `record` (see the [module docs](self)), whether or not it is an error
/// event.
pub fn fingerprint(record: &Record) -> Vec<String> {
    let Some(Value::Array(parts)) = record.meta.get(FINGERPRINT_KEY) else {
        return default_fingerprint(record);
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Value::String(s) if is_default_marker(s) => out.extend(default_fingerprint(record)),
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Bool(b) => out.push(b.to_string()),
            _ => return default_fingerprint(record),
        }
    }
    if out.is_empty() {
        return default_fingerprint(record);
    }
    out
}

/// `{{ default }}`, with any spaces inside the braces.
fn is_default_marker(s: &str) -> bool {
    s.strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .is_some_and(|s| s.trim() == "default")
}

/// The fingerprint rules 2 and 3 of the [module docs](self), ignoring `meta.fingerprint`.
pub fn default_fingerprint(record: &Record) -> Vec<String> {
    let error_type = error_type(&record.meta).unwrap_or_default().to_owned();
    let frames = grouping_frames(&record.meta);
    if frames.is_empty() {
        return vec![
            "message".to_owned(),
            record.event.clone(),
            error_type,
            message_template(&record.message),
        ];
    }
    let mut out = Vec::with_capacity(2 + frames.len());
    out.push("frames".to_owned());
    out.push(error_type);
    for frame in frames {
        let function = frame.function.map(function_name).unwrap_or("?");
        let file = frame.file.map(normalize_file).unwrap_or_default();
        let part = format!("{function} {file}");
        // An engine may list a frame twice (async boundaries) where another lists it once.
        if out.last() != Some(&part) {
            out.push(part);
        }
    }
    out
}

/// `"v1"`, the service and the fingerprint, each length-prefixed, hashed with SHA-256: the
/// first [`ISSUE_ID_HEX_CHARS`] lowercase hex characters.
pub fn issue_id(service: &str, fingerprint: &[String]) -> String {
    let mut hasher = IssueHasher::new(service);
    for part in fingerprint {
        hasher.part(part);
    }
    hasher.finish()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `s` has the form of an issue id: [`ISSUE_ID_HEX_CHARS`] lowercase hex characters.
pub fn is_issue_id(s: &str) -> bool {
    s.len() == ISSUE_ID_HEX_CHARS && s.bytes().all(|b| HEX.contains(&b))
}

/// `error_type: message` (the message's first line), else the message, else the event; cut
/// to [`MAX_TITLE_CHARS`].
pub fn title(error_type: Option<&str>, message: &str, event: &str) -> String {
    let line = message.lines().map(str::trim).find(|l| !l.is_empty());
    let text = match (error_type.filter(|t| !t.is_empty()), line) {
        // Browsers put the type in the message already ("TypeError: x is undefined").
        (Some(t), Some(l)) if l.starts_with(t) => l.to_owned(),
        (Some(t), Some(l)) => format!("{t}: {l}"),
        (Some(t), None) => t.to_owned(),
        (None, Some(l)) => l.to_owned(),
        (None, None) => event.to_owned(),
    };
    cut_chars(text, MAX_TITLE_CHARS)
}

fn cut_chars(mut s: String, max: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
        s.push('…');
    }
    s
}

/// The innermost in-app frame as `function (file)`, `function` or `file`; the event when
/// there is no frame to name.
pub fn culprit(record: &Record) -> String {
    let named = grouping_frames(&record.meta).into_iter().find_map(|f| {
        let file = f.file.map(normalize_file);
        match (f.function, file) {
            (Some(func), Some(file)) if !file.is_empty() => Some(format!("{func} ({file})")),
            (Some(func), _) => Some(func.to_owned()),
            (None, Some(file)) if !file.is_empty() => Some(file),
            _ => None,
        }
    });
    cut_chars(
        named.unwrap_or_else(|| record.event.clone()),
        MAX_TITLE_CHARS,
    )
}

fn error_type(meta: &Map<String, Value>) -> Option<&str> {
    meta.get("error_type").and_then(Value::as_str)
}

/// The fields of a `meta.stack` frame grouping reads.
#[derive(Debug, Clone, Copy)]
struct FrameRef<'a> {
    function: Option<&'a str>,
    file: Option<&'a str>,
}

/// The frames that make the fingerprint, innermost first: the in-app ones (at most
/// [`MAX_FINGERPRINT_FRAMES`]), else every frame that is not native or an extension's.
fn grouping_frames(meta: &Map<String, Value>) -> Vec<FrameRef<'_>> {
    let mut out = Vec::new();
    for_each_grouping_frame(meta, |f| out.push(f));
    out
}

/// [`grouping_frames`] one at a time, without collecting them.
fn for_each_grouping_frame<'a>(meta: &'a Map<String, Value>, mut each: impl FnMut(FrameRef<'a>)) {
    let Some(Value::Array(frames)) = meta.get("stack") else {
        return;
    };
    let usable = || frames.iter().filter_map(usable_frame);
    let any_in_app = usable().any(|(_, in_app)| in_app);
    usable()
        .filter(|(_, in_app)| *in_app || !any_in_app)
        .take(MAX_FINGERPRINT_FRAMES)
        .for_each(|(frame, _)| each(frame));
}

/// A frame grouping may use (named, neither native nor an extension's), and whether it is
/// in-app.
fn usable_frame(f: &Value) -> Option<(FrameRef<'_>, bool)> {
    let f = f.as_object()?;
    let frame = FrameRef {
        function: f
            .get("function")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
        file: f
            .get("file")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
    };
    if frame.function.is_none() && frame.file.is_none() {
        return None;
    }
    if frame
        .file
        .is_some_and(|file| is_native(file) || is_extension(file))
    {
        return None;
    }
    let in_app = f.get("in_app").and_then(Value::as_bool) != Some(false);
    Some((frame, in_app))
}

fn is_native(file: &str) -> bool {
    matches!(
        file,
        "native" | "[native code]" | "[wasm code]" | "<anonymous>" | "unknown location"
    ) || file.starts_with("node:")
}

fn is_extension(file: &str) -> bool {
    [
        "chrome-extension://",
        "moz-extension://",
        "safari-extension://",
        "safari-web-extension://",
        "webkit-masked-url:",
    ]
    .iter()
    .any(|p| file.starts_with(p))
}

/// The last segment of a function name: V8 writes `Object.handler` or
/// `HTMLButtonElement.onClick` where SpiderMonkey writes `handler` and `onClick`.
fn function_name(function: &str) -> &str {
    let name = function.rsplit(['.', '/']).find(|s| !s.is_empty());
    name.unwrap_or(function)
}

/// A frame's file without what changes between deploys and pages: the scheme and origin
/// (`https://cdn.example.com`), the query and fragment, `./` segments, and content hashes
/// in the file name (`index-3f2a9c1b.js`, `main.3f2a9c1b.chunk.js`, Vite's `index-BxY3_kQz.js`
/// all lose the hash).
///
/// ```
/// use faultline_schema::fingerprint::normalize_file;
///
/// assert_eq!(normalize_file("https://a.io/assets/index-3f2a9c1b.js?v=2#x"), "/assets/index.js");
/// assert_eq!(normalize_file("webpack:///./src/App.tsx"), "/src/App.tsx");
/// ```
pub fn normalize_file(file: &str) -> String {
    let mut out = String::with_capacity(file.len());
    normalize_file_into(file, &mut out, &mut String::new());
    out
}

/// [`normalize_file`] appended to `out`; `name` is scratch space for the file name.
fn normalize_file_into(file: &str, out: &mut String, name: &mut String) {
    let base = out.len();
    let mut path = file.trim();
    if let Some(rest) = path.strip_prefix("blob:") {
        path = rest;
    }
    path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some(at) = path.find("://") {
        let after = &path[at + 3..];
        path = after.find('/').map_or("", |slash| &after[slash..]);
    }
    for (i, segment) in path.split('/').enumerate() {
        if segment == "." {
            continue;
        }
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment);
    }
    let name_start = out[base..].rfind('/').map_or(base, |i| base + i + 1);
    name.clear();
    name.push_str(&out[name_start..]);
    out.truncate(name_start);
    strip_hashes_into(name, out);
}

/// A file name without its content-hash parts (pieces between `-` or `.` that look like
/// hashes), appended to `out`.
fn strip_hashes_into(name: &str, out: &mut String) {
    let base = out.len();
    let mut rest = name;
    let mut first = true;
    loop {
        let cut = rest.find(['-', '.']);
        let (piece, sep) = match cut {
            Some(i) => (&rest[..i], Some(&rest[i..=i])),
            None => (rest, None),
        };
        let keep = first || !is_hash(piece);
        if keep {
            out.push_str(piece);
        }
        match sep {
            Some(sep) => {
                rest = &rest[1 + piece.len()..];
                if keep {
                    out.push_str(sep);
                } else if out[base..].ends_with(['-', '.']) && sep == "." {
                    // `index-3f2a.js`: the separator before the hash goes, the dot stays.
                    out.pop();
                    out.push('.');
                }
            }
            None => break,
        }
        first = false;
    }
}

/// Whether a file-name piece looks like a content hash: 6 or more hex characters with a
/// digit, or 8 to 32 of `[A-Za-z0-9_]` mixing digits, upper and lower case (Vite's base64).
fn is_hash(piece: &str) -> bool {
    let b = piece.as_bytes();
    let digit = b.iter().any(u8::is_ascii_digit);
    if b.len() >= 6 && digit && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    (8..=32).contains(&b.len())
        && digit
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The message with its variable parts replaced, so messages that differ only in ids and
/// values are one template: URLs become `<url>`, emails `<email>`, UUIDs `<uuid>`, IP
/// addresses `<ip>`, hex ids (`0x1f`, or 8+ hex characters with a digit) `<hex>`, quoted
/// values (`'…'`, `"…"`, `` `…` ``) `<str>` and any other run of digits `<num>`.
///
/// ```
/// use faultline_schema::fingerprint::message_template;
///
/// assert_eq!(message_template("payment 4013 failed for user 7"), "payment <num> failed for user <num>");
/// ```
pub fn message_template(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while !rest.is_empty() {
        // Whitespace is copied as it is.
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        if rest.is_empty() {
            break;
        }
        if let Some(len) = quoted_len(rest, out.chars().next_back()) {
            out.push_str("<str>");
            rest = &rest[len..];
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        template_token(&rest[..end], &mut out);
        rest = &rest[end..];
    }
    out
}

/// If `s` starts with a quoted value (a quote not glued to a word before it, its closing
/// quote on the same line within 1024 bytes, not glued to a word after it), its length.
fn quoted_len(s: &str, before: Option<char>) -> Option<usize> {
    let quote = s.chars().next().filter(|c| matches!(c, '\'' | '"' | '`'))?;
    if before.is_some_and(char::is_alphanumeric) {
        return None;
    }
    let body = &s[1..];
    let limit = body.len().min(1024);
    let mut search = 0;
    while let Some(i) = body[search..limit].find(quote) {
        let close = search + i;
        if body[..close].contains('\n') {
            return None;
        }
        let after = body[close + 1..].chars().next();
        if !after.is_some_and(char::is_alphanumeric) {
            return Some(1 + close + 1);
        }
        search = close + 1;
    }
    None
}

/// Appends the template of one whitespace-free token: leading and trailing punctuation is
/// kept around the classified core.
fn template_token(token: &str, out: &mut String) {
    let core_start = token
        .find(|c: char| c.is_alphanumeric() || c == '-' || c == '+')
        .unwrap_or(token.len());
    let (lead, rest) = token.split_at(core_start);
    let core_end = rest
        .rfind(|c: char| c.is_alphanumeric() || c == '/')
        .map_or(0, |i| {
            i + rest[i..].chars().next().map_or(1, char::len_utf8)
        });
    let (core, trail) = rest.split_at(core_end);
    out.push_str(lead);
    if core.contains("://") {
        out.push_str("<url>");
    } else if is_email(core) {
        out.push_str("<email>");
    } else if is_uuid(core) {
        out.push_str("<uuid>");
    } else if is_ip(core) {
        out.push_str("<ip>");
    } else if is_hex_id(core) {
        out.push_str("<hex>");
    } else {
        replace_parts(core, out);
    }
    out.push_str(trail);
}

/// A token that is not a whole value: its `=`/`:`/`,`/`/`-separated parts are classified
/// (`id=7f3e9a1c22` → `id=<hex>`), and digit runs elsewhere become `<num>`.
fn replace_parts(core: &str, out: &mut String) {
    let mut rest = core;
    while !rest.is_empty() {
        let end = rest
            .find(['=', ':', ',', '/', '(', ')', '[', ']'])
            .unwrap_or(rest.len());
        let part = &rest[..end];
        if !part.is_empty() && (is_uuid(part) || is_hex_id(part)) {
            out.push_str(if is_uuid(part) { "<uuid>" } else { "<hex>" });
        } else if !part.is_empty() && is_email(part) {
            out.push_str("<email>");
        } else {
            replace_digits(part, out);
        }
        if end < rest.len() {
            out.push_str(&rest[end..=end]);
            rest = &rest[end + 1..];
        } else {
            rest = "";
        }
    }
}

/// Digit runs (with a decimal point or a leading sign) become `<num>`.
fn replace_digits(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let signed = matches!(bytes[i], b'-' | b'+')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if bytes[i].is_ascii_digit() || signed {
            let mut j = i + 1;
            while j < bytes.len()
                && (bytes[j].is_ascii_digit()
                    || (bytes[j] == b'.' && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)))
            {
                j += 1;
            }
            out.push_str("<num>");
            i = j;
        } else {
            let next = s[i..]
                .find(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
                .map_or(s.len(), |k| i + k.max(1));
            out.push_str(&s[i..next]);
            i = next;
        }
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_ip(s: &str) -> bool {
    // An optional port after IPv4.
    let v4 = s.rsplit_once(':').map_or(s, |(host, port)| {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && host.contains('.') {
            host
        } else {
            s
        }
    });
    let octets: Vec<&str> = v4.split('.').collect();
    if octets.len() == 4
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.len() <= 3 && o.parse::<u8>().is_ok())
    {
        return true;
    }
    // IPv6: hex groups and colons, at least two colons, a hex digit somewhere.
    s.matches(':').count() >= 2
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_hexdigit())
}

fn is_hex_id(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    s.len() >= 8
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use serde_json::json;

    fn error(message: &str, meta: Value) -> Record {
        let mut r = Record::new(
            Timestamp::from_unix_millis(0),
            "ui",
            Level::Error,
            "window.onerror",
            message,
        );
        if let Value::Object(m) = meta {
            r.meta = m;
        }
        r
    }

    fn issue(r: &Record) -> String {
        group(r).map(|g| g.issue).unwrap_or_default()
    }

    fn chrome_stack(origin: &str, hash: &str, line: u32) -> Value {
        json!([
            {"function": "HTMLButtonElement.onClick", "file": format!("{origin}/assets/cart-{hash}.js?v=1"), "line": line, "column": 17},
            {"function": "Array.map", "file": "<anonymous>"},
            {"function": "Object.renderCart", "file": format!("{origin}/assets/index-{hash}.js"), "line": line + 40, "column": 3},
            {"function": "dispatch", "file": "chrome-extension://abc/inject.js", "line": 1},
        ])
    }

    #[test]
    fn a_new_deploy_groups_with_the_old_one() {
        let old = error(
            "TypeError: cart is undefined",
            json!({"error_type": "TypeError", "stack": chrome_stack("https://a.io", "3f2a9c1b", 10)}),
        );
        let new = error(
            "TypeError: cart is undefined",
            json!({"error_type": "TypeError", "stack": chrome_stack("https://cdn.a.io:8443", "9e8d7c6b", 12)}),
        );
        assert_eq!(issue(&old), issue(&new));
        assert_eq!(issue(&old).len(), ISSUE_ID_HEX_CHARS);
        assert!(is_issue_id(&issue(&old)));
    }

    #[test]
    fn two_browsers_group_together() {
        let chrome = error(
            "TypeError: cart is undefined",
            json!({"error_type": "TypeError", "stack": chrome_stack("https://a.io", "3f2a9c1b", 10)}),
        );
        // SpiderMonkey: no receiver type on method names, no native frame, different columns.
        let firefox = error(
            "TypeError: can't access property \"items\", cart is undefined",
            json!({"error_type": "TypeError", "stack": [
                {"function": "onClick", "file": "https://a.io/assets/cart-3f2a9c1b.js", "line": 10, "column": 9},
                {"function": "renderCart", "file": "https://a.io/assets/index-3f2a9c1b.js", "line": 50, "column": 11},
            ]}),
        );
        assert_eq!(issue(&chrome), issue(&firefox));
    }

    #[test]
    fn the_same_message_from_another_function_is_another_issue() {
        let a = error(
            "TypeError: cart is undefined",
            json!({"error_type": "TypeError", "stack": [{"function": "renderCart", "file": "/assets/cart.js", "line": 1}]}),
        );
        let b = error(
            "TypeError: cart is undefined",
            json!({"error_type": "TypeError", "stack": [{"function": "renderCheckout", "file": "/assets/cart.js", "line": 1}]}),
        );
        assert_ne!(issue(&a), issue(&b));
        let mut other_service = a.clone();
        other_service.service = "api".into();
        assert_ne!(issue(&a), issue(&other_service), "issues are per service");
        let mut other_type = a.clone();
        other_type
            .meta
            .insert("error_type".into(), "RangeError".into());
        assert_ne!(issue(&a), issue(&other_type));
    }

    #[test]
    fn library_frames_are_left_out_when_app_frames_exist() {
        let with_lib = |lib: &str| {
            error(
                "boom",
                json!({"stack": [
                    {"function": lib, "file": "/node_modules/react-dom.js", "in_app": false},
                    {"function": "render", "file": "/src/App.tsx"},
                ]}),
            )
        };
        assert_eq!(
            issue(&with_lib("commitRoot")),
            issue(&with_lib("performWork"))
        );
        let only_lib = error(
            "boom",
            json!({"stack": [{"function": "commitRoot", "file": "/node_modules/react-dom.js", "in_app": false}]}),
        );
        assert_eq!(
            default_fingerprint(&only_lib),
            ["frames", "", "commitRoot /node_modules/react-dom.js"],
            "no in-app frame: every frame counts"
        );
        let only_native = error("boom", json!({"stack": [{"file": "[native code]"}]}));
        assert_eq!(default_fingerprint(&only_native)[0], "message");
    }

    #[test]
    fn messages_without_frames_group_by_template() {
        let a = error("payment 4013 failed for user 7", json!({}));
        let b = error("payment 4026 failed for user 8", json!({}));
        assert_eq!(issue(&a), issue(&b));
        let c = error("refund 4013 failed for user 7", json!({}));
        assert_ne!(issue(&a), issue(&c));
        let mut other_event = b.clone();
        other_event.event = "payment".into();
        assert_ne!(issue(&a), issue(&other_event), "the event is part of it");
    }

    #[test]
    fn templates_replace_every_kind_of_value() {
        let cases = [
            (
                "payment 4013 failed for user 7",
                "payment <num> failed for user <num>",
            ),
            (
                "order 550e8400-e29b-41d4-a716-446655440000 not found",
                "order <uuid> not found",
            ),
            (
                "mail to ann.lee@example.com bounced",
                "mail to <email> bounced",
            ),
            ("connect 10.0.0.12:5432 refused", "connect <ip> refused"),
            ("peer fe80::1ff:fe23:4567:890a gone", "peer <ip> gone"),
            (
                "GET https://api.example.com/v1/carts/99?x=1 took 1.5s",
                "GET <url> took <num>s",
            ),
            ("object 0x7ffe1a2b freed twice", "object <hex> freed twice"),
            ("commit 3f2a9c1b7e is missing", "commit <hex> is missing"),
            (
                "unknown key 'cart_total' in \"config\"",
                "unknown key <str> in <str>",
            ),
            ("can't find `x.y`", "can't find <str>"),
            (
                "retry (attempt 3/5), id=7f3e9a1c22",
                "retry (attempt <num>/<num>), id=<hex>",
            ),
            ("balance -12.50 below 0", "balance <num> below <num>"),
            ("Größe 12 überschritten", "Größe <num> überschritten"),
        ];
        for (message, want) in cases {
            assert_eq!(message_template(message), want, "{message}");
        }
        // Nothing panics on odd input, and words stay.
        for odd in [
            "",
            "'",
            "\"unterminated",
            "@",
            "a@b",
            "::",
            "0x",
            "-",
            "é'ü'",
            "x'y'z",
        ] {
            let _ = message_template(odd);
        }
        assert_eq!(message_template("it's Bob's"), "it's Bob's");
    }

    #[test]
    fn files_lose_origin_query_and_content_hashes() {
        let cases = [
            ("https://a.io/assets/index-3f2a9c1b.js", "/assets/index.js"),
            (
                "https://a.io:8443/static/js/main.3f2a9c1b.chunk.js?v=3",
                "/static/js/main.chunk.js",
            ),
            (
                "http://localhost:5173/assets/index-BxY3_kQz.js#L1",
                "/assets/index.js",
            ),
            ("webpack:///./src/App.tsx", "/src/App.tsx"),
            ("/src/components/Cart.tsx", "/src/components/Cart.tsx"),
            ("app.js", "app.js"),
            ("https://a.io/vendor-react.js", "/vendor-react.js"),
            ("https://a.io/chunk-2.js", "/chunk-2.js"),
            ("blob:https://a.io/assets/w-12345678.js", "/assets/w.js"),
        ];
        for (file, want) in cases {
            assert_eq!(normalize_file(file), want, "{file}");
        }
    }

    #[test]
    fn client_fingerprints_replace_or_extend_the_default() {
        let a = error(
            "payment 1 failed",
            json!({"fingerprint": ["payments", "declined"]}),
        );
        let b = error(
            "totally different",
            json!({"fingerprint": ["payments", "declined"]}),
        );
        assert_eq!(issue(&a), issue(&b));
        assert_eq!(fingerprint(&a), ["payments", "declined"]);

        let with_default =
            |msg: &str, tenant: &str| error(msg, json!({"fingerprint": ["{{ default }}", tenant]}));
        let x = with_default("payment 1 failed", "acme");
        assert_eq!(
            issue(&x),
            issue(&with_default("payment 2 failed", "acme")),
            "{{ default }} is the default fingerprint"
        );
        assert_ne!(
            issue(&x),
            issue(&with_default("payment 2 failed", "globex"))
        );
        assert_ne!(issue(&x), issue(&with_default("refund 1 failed", "acme")));
        let mut expected = default_fingerprint(&x);
        expected.push("acme".into());
        assert_eq!(fingerprint(&x), expected);
        assert_eq!(
            fingerprint(&error("m", json!({"fingerprint": ["{{default}}"]}))),
            default_fingerprint(&error("m", json!({})))
        );
        // Not a list of scalars: ignored.
        for bad in [
            json!([]),
            json!("payments"),
            json!([{"a": 1}]),
            json!({"a": 1}),
        ] {
            let r = error("payment 1 failed", json!({ "fingerprint": bad }));
            assert_eq!(fingerprint(&r), default_fingerprint(&r), "{bad}");
        }
        assert_eq!(
            fingerprint(&error("m", json!({"fingerprint": ["a", 7, true]}))),
            ["a", "7", "true"]
        );
    }

    #[test]
    fn issue_of_is_the_id_of_the_fingerprint() {
        // issue_of hashes the default fingerprint's parts as it makes them (no strings
        // collected); it must name the issue group() names, whatever the frames.
        let stacks = [
            json!(null),
            json!([]),
            chrome_stack("https://a.io", "3f2a9c1b", 10),
            json!([{"file": "[native code]"}, {"function": "x", "file": "chrome-extension://a/b.js"}]),
            json!([
                {"function": "a", "file": "/x.js", "line": 1},
                {"function": "a", "file": "/x.js", "line": 2},
                {"function": "Object.a", "file": "https://b.io/x.js"},
                {"function": "b"},
                {"file": "app.js"},
                {"file": "-9f8e7d6c.js"},
                {"function": "c", "file": "blob:https://a.io/w-12345678.js?x#y"},
                {"function": "d", "file": "webpack:///./src/./App.tsx"},
            ]),
            json!([
                {"function": "commitRoot", "file": "/node_modules/react-dom.js", "in_app": false},
                {"function": "commitRoot", "file": "/node_modules/react-dom.js", "in_app": false},
            ]),
            json!([{"function": "?", "file": "/x.js"}]),
            json!("not a list"),
        ];
        let mut checked = 0;
        for stack in &stacks {
            // `? /x.js` equals the one frame's part: default_fingerprint drops that part.
            for error_type in [None, Some("TypeError"), Some("? /x.js")] {
                for message in ["payment 4013 failed for user 7", ""] {
                    let mut meta = json!({});
                    if !stack.is_null() {
                        meta["stack"] = stack.clone();
                    }
                    if let Some(t) = error_type {
                        meta["error_type"] = t.into();
                    }
                    let r = error(message, meta);
                    let want = issue_id(&r.service, &fingerprint(&r));
                    assert_eq!(
                        issue_of(&r),
                        Some(want),
                        "{stack} {error_type:?} {message:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, stacks.len() * 6);
        let client = error("m", json!({"fingerprint": ["{{ default }}", "acme"]}));
        assert_eq!(
            issue_of(&client),
            Some(issue_id(&client.service, &fingerprint(&client)))
        );
        let mut info = error("fine", json!({"stack": stacks[2].clone()}));
        info.level = Level::Info;
        info.meta.remove("stack");
        assert_eq!(issue_of(&info), None, "not an error event");
    }

    #[test]
    fn error_events_titles_and_culprits() {
        let mut info = error("fine", json!({}));
        info.level = Level::Info;
        assert!(group(&info).is_none());
        info.meta.insert("error_type".into(), "Warning".into());
        assert!(
            group(&info).is_some(),
            "an error_type makes it an error event"
        );

        let r = error(
            "TypeError: cart is undefined\n    at onClick (x.js:1:1)",
            json!({"error_type": "TypeError", "stack": chrome_stack("https://a.io", "3f2a9c1b", 10)}),
        );
        let g = group(&r).unwrap();
        assert_eq!(g.title, "TypeError: cart is undefined");
        assert_eq!(g.culprit, "HTMLButtonElement.onClick (/assets/cart.js)");
        assert_eq!(g.error_type.as_deref(), Some("TypeError"));
        assert_eq!(title(Some("DbError"), "timeout", "e"), "DbError: timeout");
        assert_eq!(title(None, "", "payment_failed"), "payment_failed");
        assert_eq!(
            title(None, &"x".repeat(500), "e").chars().count(),
            MAX_TITLE_CHARS + 1
        );
        assert_eq!(culprit(&error("m", json!({}))), "window.onerror");
    }
}
