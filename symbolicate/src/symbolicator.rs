//! [`Symbolicator`]: rewrites the frames of records through their release's source maps,
//! with a bounded cache of parsed maps.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use faultline_schema::stack::{Frame, Location};
use faultline_schema::{MAX_META_BYTES, Record, Timestamp, Value, json_len};
use faultline_store::{SourceMapError, SourceMapStore};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::map::{Mapped, SourceMap};
use crate::names::UrlIndex;

/// At most this many releases' map lists are cached (the least recently checked go first).
const MAX_CACHED_RELEASES: usize = 1024;

/// How the [`Symbolicator`] caches.
#[derive(Debug, Clone)]
pub struct SymbolicatorConfig {
    /// Parsed maps kept, in (estimated) bytes of memory; the least recently used go first.
    pub cache_bytes: usize,
    /// Parsed maps kept, in number.
    pub cache_maps: usize,
    /// A cached release's map list is trusted this long before its version is read again
    /// (how soon an upload to another node is seen).
    pub refresh: Duration,
    /// A release's `last_used` is written at most this often per node.
    pub touch_every: Duration,
}

impl Default for SymbolicatorConfig {
    fn default() -> Self {
        SymbolicatorConfig {
            cache_bytes: 256 * 1024 * 1024,
            cache_maps: 256,
            refresh: Duration::from_secs(5),
            touch_every: Duration::from_secs(3600),
        }
    }
}

/// Where symbolication runs: counted apart in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before a record is stored.
    Ingest,
    /// When a record stored before its maps were uploaded is read.
    Read,
}

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Read => "read",
        }
    }
}

/// What happened to one frame, the `result` label of
/// `faultline_symbolication_frames_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameResult {
    /// Rewritten to the original source.
    Mapped,
    /// No map of the record's release matches the frame's file (or the release has none).
    NoMap,
    /// The map has no token at the frame's position, or the token names no source.
    NoToken,
    /// The matching map does not parse.
    BadMap,
    /// The frame has no file, line or column.
    NoLocation,
    /// The stored maps could not be read (database down); the frame was left as it was.
    Unavailable,
    /// Mapped, but the record's `meta` would have grown past its limit even without source
    /// context, so the record kept its minified frames.
    TooLarge,
    /// `meta.stack` is not an array of frames.
    BadFrame,
}

impl FrameResult {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            FrameResult::Mapped => "mapped",
            FrameResult::NoMap => "no_map",
            FrameResult::NoToken => "no_token",
            FrameResult::BadMap => "bad_map",
            FrameResult::NoLocation => "no_location",
            FrameResult::Unavailable => "unavailable",
            FrameResult::TooLarge => "too_large",
            FrameResult::BadFrame => "bad_frame",
        }
    }
}

/// What one call did: frames by result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Frames counted per result.
    pub frames: HashMap<FrameResult, u64>,
}

impl Outcome {
    /// Frames with `result`.
    pub fn count(&self, result: FrameResult) -> u64 {
        self.frames.get(&result).copied().unwrap_or(0)
    }

    fn add(&mut self, result: FrameResult, n: u64) {
        if n > 0 {
            *self.frames.entry(result).or_default() += n;
        }
    }
}

/// Maps records' stack frames to the original source through the maps of their release.
///
/// One per server, shared by every request. Parsed maps are cached (bounded by
/// [`SymbolicatorConfig::cache_bytes`] and `cache_maps`, least recently used first) under
/// their release's version, so a map is parsed once, not per record, and an upload or
/// delete (on any node: the version is read again every `refresh`) is seen.
pub struct Symbolicator {
    store: Arc<dyn SourceMapStore>,
    config: SymbolicatorConfig,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Symbolicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolicator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A release's maps as cached: `None` when it has none.
#[derive(Clone)]
struct CachedRelease {
    maps: Option<Arc<Release>>,
    checked: Instant,
}

struct Release {
    version: i64,
    urls: Vec<String>,
    index: UrlIndex,
}

/// (release, url, version).
type MapKey = (String, String, i64);
/// A parsed map, or why it does not parse.
type Loaded = Result<Arc<SourceMap>, String>;

struct CachedMap {
    cell: Arc<OnceCell<Loaded>>,
    size: usize,
    used: u64,
}

#[derive(Default)]
struct Cache {
    releases: HashMap<String, CachedRelease>,
    maps: HashMap<MapKey, CachedMap>,
    bytes: usize,
    tick: u64,
    touched: HashMap<String, Instant>,
}

impl Cache {
    fn forget_maps_of(&mut self, release: &str, keep_version: Option<i64>) {
        let mut freed = 0;
        self.maps.retain(|(r, _, v), m| {
            let keep = r != release || Some(*v) == keep_version;
            if !keep {
                freed += m.size;
            }
            keep
        });
        self.bytes -= freed;
    }

    fn evict(&mut self, config: &SymbolicatorConfig) {
        while self.bytes > config.cache_bytes || self.maps.len() > config.cache_maps {
            let Some(oldest) = self
                .maps
                .iter()
                .min_by_key(|(_, m)| m.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(m) = self.maps.remove(&oldest) {
                self.bytes -= m.size;
            }
        }
        metrics::gauge!("faultline_symbolication_cache_bytes").set(self.bytes as f64);
        metrics::gauge!("faultline_symbolication_cache_maps").set(self.maps.len() as f64);
    }
}

/// A frame of a record that may be mapped: where it is.
struct Candidate {
    record: usize,
    /// Shared by the batch's records of one release (most batches have one).
    release: Arc<str>,
}

impl Symbolicator {
    /// A symbolicator reading maps from `store`.
    pub fn new(store: Arc<dyn SourceMapStore>, config: SymbolicatorConfig) -> Symbolicator {
        Symbolicator {
            store,
            config,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The store the maps come from.
    pub fn store(&self) -> &Arc<dyn SourceMapStore> {
        &self.store
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets what is cached for `release`: call after changing its maps on this node.
    pub fn invalidate(&self, release: &str) {
        let mut cache = self.cache();
        cache.releases.remove(release);
        cache.forget_maps_of(release, None);
        cache.evict(&self.config);
    }

    /// Rewrites the frames in `meta.stack` of every record with a `meta.release` that has
    /// maps: each frame whose file matches one of the release's maps gets the original
    /// file, line, column, function name and (when the map has `sourcesContent`) a few
    /// lines of source, and keeps its runtime position in `minified`. Frames that already
    /// have `minified` are left alone (so reading a record twice maps it once), and so is
    /// any frame that cannot be mapped; the reason is counted in
    /// `faultline_symbolication_frames_total{result, stage}`. Never fails: a bad map or an
    /// unreachable store leaves the frames as they were. Parsing and mapping run on
    /// tokio's blocking threads.
    pub async fn symbolicate(&self, records: &mut Vec<Record>, stage: Stage) -> Outcome {
        let candidates = candidates(records);
        if candidates.is_empty() {
            return Outcome::default();
        }
        let mut outcome = Outcome::default();
        // Each release's maps, and each map a frame matches, loaded once for the batch.
        let mut releases: HashMap<String, Option<Arc<Release>>> = HashMap::new();
        let mut unavailable: HashSet<String> = HashSet::new();
        for c in &candidates {
            if releases.contains_key(&*c.release) || unavailable.contains(&*c.release) {
                continue;
            }
            match self.release(&c.release).await {
                Ok(maps) => {
                    releases.insert(c.release.to_string(), maps);
                }
                Err(e) => {
                    tracing::warn!(release = %c.release, error = %e, "source maps unavailable");
                    unavailable.insert(c.release.to_string());
                }
            }
        }
        let mut maps: HashMap<(String, usize), MapLoad> = HashMap::new();
        for c in &candidates {
            let Some(Some(release)) = releases.get(&*c.release) else {
                continue;
            };
            for file in frame_files(&records[c.record]) {
                let Some(url) = release.index.find(file) else {
                    continue;
                };
                let key = (c.release.to_string(), url);
                if maps.contains_key(&key) {
                    continue;
                }
                let load = self.map(&c.release, release, url).await;
                maps.insert(key, load);
            }
        }
        if maps.is_empty() && unavailable.is_empty() {
            // No frame matches a map: nothing to parse or rewrite. At ingest, count them.
            if stage == Stage::Ingest {
                for c in &candidates {
                    outcome.add(
                        FrameResult::NoMap,
                        frame_files(&records[c.record]).count() as u64,
                    );
                }
                count(&outcome, stage);
            }
            return outcome;
        }
        let plan = Plan {
            releases,
            unavailable,
            maps,
        };
        let work = std::mem::take(records);
        let done = tokio::task::spawn_blocking(move || {
            let mut work = work;
            let mut outcome = Outcome::default();
            let mut used = HashSet::new();
            for c in &candidates {
                let record = &mut work[c.record];
                if rewrite_record(record, &c.release, &plan, &mut outcome) {
                    used.insert(c.release.to_string());
                }
            }
            (work, outcome, used)
        })
        .await;
        let used = match done {
            Ok((work, done, used)) => {
                *records = work;
                outcome = done;
                used
            }
            Err(e) => {
                // The records went with the task: only a panic gets here, which the
                // mapping code does not do; say so loudly rather than lose them silently.
                tracing::error!(error = %e, "symbolication task failed");
                return outcome;
            }
        };
        count(&outcome, stage);
        self.touch(used);
        outcome
    }

    /// [`Symbolicator::symbolicate`] for one record read (an issue's latest event).
    pub async fn symbolicate_one(&self, record: &mut Record) -> Outcome {
        let mut one = vec![record.clone()];
        let outcome = self.symbolicate(&mut one, Stage::Read).await;
        if let Some(done) = one.pop() {
            *record = done;
        }
        outcome
    }

    /// The release's maps, from the cache while it is fresh.
    async fn release(&self, name: &str) -> Result<Option<Arc<Release>>, SourceMapError> {
        let cached = self.cache().releases.get(name).cloned();
        if let Some(c) = &cached
            && c.checked.elapsed() < self.config.refresh
        {
            return Ok(c.maps.clone());
        }
        let version = match self.store.version(name).await {
            Ok(v) => v,
            // A stale list beats none while the store is down.
            Err(_) if cached.is_some() => return Ok(cached.and_then(|c| c.maps)),
            Err(e) => return Err(e),
        };
        let same = cached
            .as_ref()
            .is_some_and(|c| c.maps.as_ref().map(|m| m.version) == version);
        let maps = match (same, version) {
            (true, _) => cached.and_then(|c| c.maps),
            (false, None) => None,
            (false, Some(_)) => self.store.release(name).await?.map(|r| {
                Arc::new(Release {
                    version: r.version,
                    index: UrlIndex::new(r.files.iter().map(|f| f.url.as_str())),
                    urls: r.files.into_iter().map(|f| f.url).collect(),
                })
            }),
        };
        let mut cache = self.cache();
        if !same {
            cache.forget_maps_of(name, maps.as_ref().map(|m| m.version));
        }
        if cache.releases.len() >= MAX_CACHED_RELEASES
            && !cache.releases.contains_key(name)
            && let Some(oldest) = cache
                .releases
                .iter()
                .min_by_key(|(_, r)| r.checked)
                .map(|(k, _)| k.clone())
        {
            cache.releases.remove(&oldest);
        }
        cache.releases.insert(
            name.to_owned(),
            CachedRelease {
                maps: maps.clone(),
                checked: Instant::now(),
            },
        );
        cache.evict(&self.config);
        Ok(maps)
    }

    /// The parsed map at `url` of `release`: from the cache, or read and parsed (once, even
    /// when several requests want it at the same time).
    async fn map(&self, name: &str, release: &Release, url: usize) -> MapLoad {
        let Some(url_text) = release.urls.get(url) else {
            return MapLoad::Gone;
        };
        let key: MapKey = (name.to_owned(), url_text.clone(), release.version);
        let cell = {
            let mut cache = self.cache();
            cache.tick += 1;
            let tick = cache.tick;
            let entry = cache.maps.entry(key.clone()).or_insert_with(|| CachedMap {
                cell: Arc::new(OnceCell::new()),
                size: 0,
                used: tick,
            });
            entry.used = tick;
            entry.cell.clone()
        };
        let hit = cell.initialized();
        metrics::counter!("faultline_symbolication_cache_total", "result" => if hit { "hit" } else { "miss" })
            .increment(1);
        let store = &self.store;
        let loaded = cell
            .get_or_try_init(|| async {
                let Some(bytes) = store.map(name, url_text).await? else {
                    return Ok::<Loaded, SourceMapError>(Err("deleted".into()));
                };
                let started = Instant::now();
                let parsed = tokio::task::spawn_blocking(move || SourceMap::parse(&bytes))
                    .await
                    .map_err(|e| SourceMapError::Unavailable(format!("parse task: {e}")))?;
                metrics::histogram!("faultline_symbolication_map_parse_seconds")
                    .record(started.elapsed());
                Ok(parsed.map(Arc::new).map_err(|e| {
                    tracing::warn!(release = %name, url = %url_text, error = %e, "source map does not parse");
                    e.0
                }))
            })
            .await;
        let loaded = match loaded {
            Ok(loaded) => loaded.clone(),
            Err(e) => {
                tracing::warn!(release = %name, url = %url_text, error = %e, "source map unavailable");
                let mut cache = self.cache();
                if cache.maps.get(&key).is_some_and(|m| !m.cell.initialized()) {
                    cache.maps.remove(&key);
                }
                return MapLoad::Unavailable;
            }
        };
        if !hit {
            let size = loaded.as_ref().map_or(64, |m| m.size());
            let mut cache = self.cache();
            if let Some(entry) = cache.maps.get_mut(&key)
                && entry.size == 0
            {
                entry.size = size;
                cache.bytes += size;
            }
            cache.evict(&self.config);
        }
        match loaded {
            Ok(map) => MapLoad::Parsed(map),
            Err(_) => MapLoad::Bad,
        }
    }

    /// Writes `last_used` for the releases used, at most every `touch_every` per release,
    /// in the background.
    fn touch(&self, used: HashSet<String>) {
        if used.is_empty() {
            return;
        }
        let due: Vec<String> = {
            let mut cache = self.cache();
            let every = self.config.touch_every;
            let due: Vec<String> = used
                .into_iter()
                .filter(|r| cache.touched.get(r).is_none_or(|t| t.elapsed() >= every))
                .collect();
            let now = Instant::now();
            for r in &due {
                cache.touched.insert(r.clone(), now);
            }
            if cache.touched.len() > MAX_CACHED_RELEASES {
                cache.touched.retain(|_, t| t.elapsed() < every);
            }
            due
        };
        if due.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store.clone();
        runtime.spawn(async move {
            for release in due {
                if let Err(e) = store.touch(&release, Timestamp::now()).await {
                    tracing::warn!(%release, error = %e, "could not record the use of source maps");
                }
            }
        });
    }
}

/// Adds `outcome` to `faultline_symbolication_frames_total`.
fn count(outcome: &Outcome, stage: Stage) {
    for (result, n) in &outcome.frames {
        metrics::counter!(
            "faultline_symbolication_frames_total",
            "result" => result.label(),
            "stage" => stage.label()
        )
        .increment(*n);
    }
}

/// A map as a batch sees it.
#[derive(Clone)]
enum MapLoad {
    Parsed(Arc<SourceMap>),
    Bad,
    Gone,
    Unavailable,
}

/// What a batch loaded before mapping.
struct Plan {
    releases: HashMap<String, Option<Arc<Release>>>,
    unavailable: HashSet<String>,
    maps: HashMap<(String, usize), MapLoad>,
}

/// The records with a string `meta.release` and an array `meta.stack` with a frame not yet
/// mapped.
fn candidates(records: &[Record]) -> Vec<Candidate> {
    let mut last: Option<Arc<str>> = None;
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let release = r.meta.get("release")?.as_str()?;
            let stack = r.meta.get("stack")?.as_array()?;
            let todo = stack
                .iter()
                .any(|f| f.as_object().is_some_and(|f| !f.contains_key("minified")));
            if !todo || release.is_empty() {
                return None;
            }
            let release = match &last {
                Some(l) if **l == *release => Arc::clone(l),
                _ => Arc::clone(last.insert(Arc::from(release))),
            };
            Some(Candidate { record: i, release })
        })
        .collect()
}

/// The files of a record's frames not yet mapped.
fn frame_files(record: &Record) -> impl Iterator<Item = &str> {
    record
        .meta
        .get("stack")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|f| !f.contains_key("minified"))
        .filter_map(|f| f.get("file")?.as_str())
}

/// Maps one record's frames through `plan`; returns whether any frame was mapped.
fn rewrite_record(record: &mut Record, release: &str, plan: &Plan, outcome: &mut Outcome) -> bool {
    let Some(original) = record.meta.get("stack") else {
        return false;
    };
    // Read from the stored value in place (no copy of the stack to deserialize from).
    let Ok(mut frames) = Vec::<Frame>::deserialize(original) else {
        outcome.add(
            FrameResult::BadFrame,
            original.as_array().map_or(1, |a| a.len() as u64),
        );
        return false;
    };
    let maps = plan.releases.get(release).cloned().flatten();
    let mut results = Vec::with_capacity(frames.len());
    let mut mapped: Vec<Option<Mapped>> = Vec::with_capacity(frames.len());
    for frame in &frames {
        if frame.minified.is_some() {
            // Mapped before (a record read twice): neither mapped nor counted again.
            results.push(None);
            mapped.push(None);
            continue;
        }
        let (result, m) = map_frame(frame, release, maps.as_deref(), plan);
        results.push(Some(result));
        mapped.push(m);
    }
    let any = mapped.iter().any(Option::is_some);
    if any {
        for i in 0..frames.len() {
            let Some(m) = mapped[i].take() else {
                continue;
            };
            // The caller's call site names the function it calls (innermost first, so the
            // caller is the next frame): a minifier's renamed identifier maps back to the
            // original name there.
            let caller_name = mapped
                .get(i + 1)
                .and_then(Option::as_ref)
                .filter(|c| c.same_line)
                .and_then(|c| c.name.clone());
            apply(&mut frames[i], m, caller_name);
        }
        if !store_frames(record, &mut frames) {
            for r in results
                .iter_mut()
                .filter(|r| **r == Some(FrameResult::Mapped))
            {
                *r = Some(FrameResult::TooLarge);
            }
        }
    }
    for r in results.iter().flatten() {
        outcome.add(*r, 1);
    }
    results.contains(&Some(FrameResult::Mapped))
}

/// What a frame not yet mapped maps to, or why it does not.
fn map_frame(
    frame: &Frame,
    release: &str,
    maps: Option<&Release>,
    plan: &Plan,
) -> (FrameResult, Option<Mapped>) {
    let (Some(file), Some(line), Some(column)) = (&frame.file, frame.line, frame.column) else {
        return (FrameResult::NoLocation, None);
    };
    if plan.unavailable.contains(release) {
        return (FrameResult::Unavailable, None);
    }
    let Some(url) = maps.and_then(|m| m.index.find(file)) else {
        return (FrameResult::NoMap, None);
    };
    match plan.maps.get(&(release.to_owned(), url)) {
        Some(MapLoad::Parsed(map)) => match map.lookup(line, column) {
            Some(m) => (FrameResult::Mapped, Some(m)),
            None => (FrameResult::NoToken, None),
        },
        Some(MapLoad::Bad) => (FrameResult::BadMap, None),
        Some(MapLoad::Gone) | None => (FrameResult::NoMap, None),
        Some(MapLoad::Unavailable) => (FrameResult::Unavailable, None),
    }
}

/// Rewrites `frame` to its original position, keeping the runtime one in `minified`.
fn apply(frame: &mut Frame, m: Mapped, caller_name: Option<String>) {
    let runtime = Location {
        function: frame.function.take(),
        file: frame.file.take(),
        line: frame.line,
        column: frame.column,
    };
    frame.function = caller_name.or_else(|| runtime.function.clone());
    frame.in_app = frame.in_app.or(Some(!m.source.contains("/node_modules/")));
    frame.file = Some(m.source);
    frame.line = Some(m.line);
    frame.column = Some(m.column);
    frame.pre_context = m.pre_context;
    frame.context_line = m.context_line;
    frame.post_context = m.post_context;
    frame.minified = Some(Box::new(runtime));
}

/// Puts `frames` in `meta.stack` if the record stays within its limits, dropping source
/// context as needed: the outermost frames' first, so the innermost keep theirs as long as
/// they fit, then all of it. Otherwise the original stack stays and this returns false.
///
/// The sizes are counted, not built: `meta` is serialized once for its length and each
/// frame twice (with and without its context) into a counter, and the new stack is built
/// into a value once; a record stays within its limits checked by the schema itself
/// (`validate`). Building and serializing the whole `meta` for every try cost about two
/// thirds of a mapped frame's time.
fn store_frames(record: &mut Record, frames: &mut [Frame]) -> bool {
    let Some(original_len) = record.meta.get("stack").map(json_len) else {
        return false;
    };
    let base = json_len(&record.meta).saturating_sub(original_len);
    let mut with_context = Vec::with_capacity(frames.len());
    let mut without_context = Vec::with_capacity(frames.len());
    for frame in frames.iter_mut() {
        with_context.push(json_len(frame));
        let context = take_context(frame);
        without_context.push(json_len(frame));
        put_context(frame, context);
    }
    // `[` `]` and the commas between frames.
    let array = 2 + frames.len().saturating_sub(1);
    let mut size = base + array + with_context.iter().sum::<usize>();
    for i in (0..frames.len()).rev() {
        if size <= MAX_META_BYTES {
            break;
        }
        if with_context[i] > without_context[i] {
            drop_context(&mut frames[i]);
            size -= with_context[i] - without_context[i];
        }
    }
    let Ok(value) = serde_json::to_value(&*frames) else {
        return false;
    };
    let Some(original) = record.meta.insert("stack".into(), value) else {
        return false;
    };
    if size <= MAX_META_BYTES && record.validate().is_ok() {
        return true;
    }
    // Counted within the limit but refused after all (a rule other than size): try once
    // without any context before giving up.
    frames.iter_mut().for_each(drop_context);
    if let Ok(value) = serde_json::to_value(&*frames) {
        record.meta.insert("stack".into(), value);
        if record.validate().is_ok() {
            return true;
        }
    }
    record.meta.insert("stack".into(), original);
    false
}

type Context = (Vec<String>, Option<String>, Vec<String>);

fn take_context(frame: &mut Frame) -> Context {
    (
        std::mem::take(&mut frame.pre_context),
        frame.context_line.take(),
        std::mem::take(&mut frame.post_context),
    )
}

fn put_context(frame: &mut Frame, (pre, line, post): Context) {
    frame.pre_context = pre;
    frame.context_line = line;
    frame.post_context = post;
}

fn drop_context(frame: &mut Frame) {
    frame.pre_context.clear();
    frame.context_line = None;
    frame.post_context.clear();
}
