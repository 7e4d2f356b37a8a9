//! A 2 MB source map and records whose frames it maps, for the symbolication rows of the
//! ingest benchmark.

use std::time::{Duration, Instant};

/// The release the benchmark's map is uploaded for.
pub(crate) const RELEASE: &str = "bench@1.0.0";
/// Where the benchmark's minified bundle is served.
pub(crate) const BUNDLE: &str = "https://app.example.com/assets/app-5e1f0a.js";
/// The map's URL in the upload.
pub(crate) const MAP_URL: &str = "~/assets/app-5e1f0a.js";
/// Frames per record.
pub(crate) const FRAMES: usize = 10;

/// A map the way a production bundler leaves one: 60 sources with their content, three
/// minified lines of 50,000 tokens each, a third of them named (about 2 MB of JSON); and
/// ten runtime positions (1-based line, column) spread over it.
pub(crate) fn map() -> (Vec<u8>, Vec<(u32, u32)>) {
    let mut b = sourcemap::SourceMapBuilder::new(Some("app-5e1f0a.js"));
    let sources: Vec<u32> = (0..60)
        .map(|s| {
            let id = b.add_source(&format!("src/components/module{s:02}/Component{s:02}.jsx"));
            let content: String = (0..300)
                .map(|l| {
                    format!(
                        "  const value{l} = compute(value{}, {s}, \"{l}\");\n",
                        l.max(1) - 1
                    )
                })
                .collect();
            b.set_source_contents(id, Some(&content));
            id
        })
        .collect();
    let names: Vec<u32> = (0..500)
        .map(|n| b.add_name(&format!("handler{n}")))
        .collect();
    let mut k = 0u32;
    for line in 0..3 {
        for t in 0..50_000u32 {
            let name = (t % 3 == 0).then(|| names[(k % 500) as usize]);
            b.add_raw(
                line,
                t * 8,
                (k / 7) % 300,
                (k % 7) * 4,
                Some(sources[(k / 2100) as usize % 60]),
                name,
                false,
            );
            k += 1;
        }
    }
    let mut json = Vec::new();
    b.into_sourcemap().to_writer(&mut json).unwrap();
    let positions = (0..FRAMES as u32)
        .map(|i| (i % 3 + 1, (i * 4_999 + 13) * 8 + 3))
        .collect();
    (json, positions)
}

/// A browser error record of release [`RELEASE`] with [`FRAMES`] frames in [`BUNDLE`].
pub(crate) fn record(i: usize, positions: &[(u32, u32)]) -> String {
    let frames: Vec<String> = positions
        .iter()
        .enumerate()
        .map(|(f, (line, column))| {
            format!(r#"{{"function":"f{f}","file":"{BUNDLE}","line":{line},"column":{column}}}"#)
        })
        .collect();
    format!(
        concat!(
            r#"{{"ts":"2026-11-22T14:{:02}:{:02}.{:03}Z","service":"ui","level":"ERROR","#,
            r#""event":"window.onerror","message":"TypeError: x is undefined ({})","#,
            r#""meta":{{"release":"{}","url":"/checkout","stack":[{}]}}}}"#
        ),
        i % 60,
        (i / 60) % 60,
        i % 1000,
        i,
        RELEASE,
        frames.join(",")
    )
}

/// `PUT /sourcemaps/{RELEASE}?url=...` of `map` with the admin token.
pub(crate) fn upload_request(map: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "PUT /sourcemaps/{RELEASE}?url={MAP_URL} HTTP/1.1\r\nHost: bench\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        super::load::ADMIN,
        map.len()
    )
    .into_bytes();
    req.extend_from_slice(map);
    req
}

/// What symbolication costs inside one process, without HTTP or the store's writes.
pub(crate) struct InProcess {
    /// Parsing the map alone.
    pub(crate) parse: Duration,
    /// The first record of the release: the map read from the store and parsed.
    pub(crate) first_use: Duration,
    /// Per frame, once the map is cached (batches of 100 records).
    pub(crate) per_frame: Duration,
}

/// Measures [`InProcess`] with the server's symbolicator over a file source map store.
pub(crate) fn in_process(map: &[u8], positions: &[(u32, u32)]) -> InProcess {
    use faultline_store::{FileSourceMaps, SourceMapStore, SourceMapUpload};
    use faultline_symbolicate::{FrameResult, SourceMap, Stage, Symbolicator, SymbolicatorConfig};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let summary = SourceMap::parse(map).unwrap().summary();
    let parse = started.elapsed();
    rt.block_on(async {
        let store = FileSourceMaps::open(dir.path()).unwrap();
        store
            .put(
                SourceMapUpload {
                    release: RELEASE.into(),
                    url: MAP_URL.into(),
                    map: map.to_vec(),
                    sources: summary.sources,
                    sources_content: summary.sources_content,
                },
                u64::MAX,
            )
            .await
            .unwrap();
        let symbolicator =
            Symbolicator::new(std::sync::Arc::new(store), SymbolicatorConfig::default());
        let parsed = |i| faultline_schema::Record::from_json_str(&record(i, positions)).unwrap();
        let mut one = vec![parsed(0)];
        let started = Instant::now();
        let outcome = symbolicator.symbolicate(&mut one, Stage::Ingest).await;
        let first_use = started.elapsed();
        assert_eq!(
            outcome.count(FrameResult::Mapped),
            FRAMES as u64,
            "{outcome:?}"
        );
        let batch: Vec<_> = (0..100).map(parsed).collect();
        let rounds = 100;
        let mut spent = Duration::ZERO;
        for _ in 0..rounds {
            let mut records = batch.clone();
            let started = Instant::now();
            let outcome = symbolicator.symbolicate(&mut records, Stage::Ingest).await;
            spent += started.elapsed();
            assert_eq!(outcome.count(FrameResult::Mapped), 100 * FRAMES as u64);
        }
        InProcess {
            parse,
            first_use,
            per_frame: spent / (rounds * 100 * FRAMES as u32),
        }
    })
}
