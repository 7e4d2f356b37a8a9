//! Symbolication against real bundlers' output: the same app (fixtures/src) built by
//! esbuild, Vite and terser, plus an index map, with the stacks Node printed when each
//! minified bundle threw (fixtures/generate.mjs made them all).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use faultline_schema::stack::{Frame, parse};
use faultline_schema::{Level, Record, Timestamp, Value};
use faultline_store::{FileSourceMaps, SourceMapStore, SourceMapUpload};
use faultline_symbolicate::{FrameResult, SourceMap, Stage, Symbolicator, SymbolicatorConfig};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/out")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The 1-based line of a `// @marker` in the sources.
fn marker(name: &str) -> u32 {
    let markers: serde_json::Value = serde_json::from_str(&fixture("markers.json")).unwrap();
    markers[name]["line"].as_u64().unwrap() as u32
}

fn record(release: &str, stack: &str) -> Record {
    let mut r = Record::new(
        Timestamp::now(),
        "web",
        Level::Error,
        "window.onerror",
        "boom",
    );
    r.meta.insert("release".into(), release.into());
    r.meta
        .insert("stack".into(), serde_json::to_value(parse(stack)).unwrap());
    r
}

fn frames(r: &Record) -> Vec<Frame> {
    serde_json::from_value(r.meta["stack"].clone()).unwrap()
}

async fn symbolicator_with(bundles: &[&str]) -> (tempfile::TempDir, Symbolicator) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileSourceMaps::open(dir.path().join("sourcemaps")).unwrap();
    for name in bundles {
        let map = fixture(&format!("{name}.js.map")).into_bytes();
        let summary = SourceMap::parse(&map).unwrap().summary();
        store
            .put(
                SourceMapUpload {
                    release: "web@1".into(),
                    url: format!("~/assets/{name}.js"),
                    map,
                    sources: summary.sources,
                    sources_content: summary.sources_content,
                },
                u64::MAX,
            )
            .await
            .unwrap();
    }
    let store: Arc<dyn SourceMapStore> = Arc::new(store);
    (dir, Symbolicator::new(store, SymbolicatorConfig::default()))
}

/// Checks the innermost frames of a symbolicated fixture stack.
fn check_throw_site(name: &str, frames: &[Frame], with_context: bool) {
    let top = &frames[0];
    assert!(
        top.file.as_deref().unwrap().ends_with("src/util.js"),
        "{name}: {top:?}"
    );
    assert_eq!(top.line, Some(marker("throw")), "{name}: {top:?}");
    assert!(
        top.function.as_deref().unwrap().ends_with("parseNumber"),
        "{name}: {top:?}"
    );
    let minified = top.minified.as_deref().unwrap();
    assert_eq!(
        minified.file.as_deref(),
        Some(format!("https://app.example.com/assets/{name}.js").as_str())
    );
    assert_eq!(minified.line, Some(1));
    assert_eq!(top.in_app, Some(true));
    if with_context {
        assert!(
            top.context_line.as_deref().unwrap().contains("// @throw"),
            "{name}"
        );
        assert_eq!(top.pre_context.len(), 5, "{name}");
        assert!(
            top.post_context[0].contains('}'),
            "{name}: {:?}",
            top.post_context
        );
    } else {
        assert_eq!(
            top.context_line, None,
            "{name}: no sourcesContent, no context"
        );
    }
}

#[tokio::test]
async fn esbuild_and_vite_bundles_map_to_the_original_functions_and_lines() {
    for name in ["esbuild", "vite"] {
        let (_dir, symbolicator) = symbolicator_with(&[name]).await;
        let mut records = vec![record("web@1", &fixture(&format!("{name}.stack.txt")))];
        let outcome = symbolicator.symbolicate(&mut records, Stage::Ingest).await;
        assert_eq!(outcome.count(FrameResult::Mapped), 4, "{name}: {outcome:?}");
        let f = frames(&records[0]);
        check_throw_site(name, &f, true);
        // Minified names come back from the callers' call sites.
        assert_eq!(
            f[1].function.as_deref(),
            Some("explode"),
            "{name}: {:?}",
            f[1]
        );
        assert_eq!(f[1].line, Some(marker("call-parseNumber")));
        assert_eq!(
            f[2].function.as_deref(),
            Some("handleSubmit"),
            "{name}: {:?}",
            f[2]
        );
        assert!(f[2].file.as_deref().unwrap().ends_with("src/app.js"));
        assert_eq!(f[2].line, Some(marker("call-explode")));
        assert_eq!(f[3].line, Some(marker("call-handleSubmit")));
        // Past column 1000 of the minified line (after the long string).
        assert!(
            f[2].minified.as_ref().unwrap().column.unwrap() > 1000,
            "{name}"
        );
        assert!(records[0].clone().validate().is_ok());
    }
}

#[tokio::test]
async fn terser_with_two_sources_and_no_sources_content() {
    let map = fixture("terser.js.map");
    let summary = SourceMap::parse(map.as_bytes()).unwrap().summary();
    assert_eq!((summary.sources, summary.sources_content), (2, false));
    let (_dir, symbolicator) = symbolicator_with(&["terser"]).await;
    let mut records = vec![record("web@1", &fixture("terser.stack.txt"))];
    symbolicator.symbolicate(&mut records, Stage::Ingest).await;
    let f = frames(&records[0]);
    check_throw_site("terser", &f, false);
    // terser inlined explode into handleSubmit: the frame is explode's call, in util.js.
    assert!(
        f[1].file.as_deref().unwrap().ends_with("src/util.js"),
        "{:?}",
        f[1]
    );
    assert_eq!(f[1].line, Some(marker("call-parseNumber")));
    assert!(
        f[1].minified.as_ref().unwrap().column.unwrap() > 1000,
        "{f:#?}"
    );
}

#[tokio::test]
async fn index_maps_with_sections() {
    let (_dir, symbolicator) = symbolicator_with(&["indexed"]).await;
    let mut records = vec![record("web@1", &fixture("indexed.stack.txt"))];
    let outcome = symbolicator.symbolicate(&mut records, Stage::Ingest).await;
    assert_eq!(outcome.count(FrameResult::Mapped), 4, "{outcome:?}");
    let f = frames(&records[0]);
    check_throw_site("indexed", &f, true);
    // The second section (line 2 of the bundle) is app.js.
    assert!(
        f[2].file.as_deref().unwrap().ends_with("src/app.js"),
        "{:?}",
        f[2]
    );
    assert_eq!(f[2].line, Some(marker("call-explode")));
    assert_eq!(f[2].minified.as_ref().unwrap().line, Some(2));
}

#[tokio::test]
async fn unmatched_frames_stay_and_mapped_ones_are_not_mapped_twice() {
    let (_dir, symbolicator) = symbolicator_with(&["esbuild"]).await;
    let stack = fixture("esbuild.stack.txt")
        + "\n    at other (https://cdn.example.com/lib.js:1:5)\n    at native (native)";
    let mut records = vec![
        record("web@1", &stack),
        record("web@2", &stack),
        // No release: not looked at.
        {
            let mut r = record("web@1", &stack);
            r.meta.remove("release");
            r
        },
    ];
    let before = records.clone();
    let outcome = symbolicator.symbolicate(&mut records, Stage::Ingest).await;
    assert_eq!(outcome.count(FrameResult::Mapped), 4);
    assert_eq!(outcome.count(FrameResult::NoMap), 1 + 4 + 1, "{outcome:?}");
    assert_eq!(outcome.count(FrameResult::NoLocation), 1 + 1);
    assert_eq!(records[1], before[1]);
    assert_eq!(records[2], before[2]);
    let mapped = frames(&records[0]);
    assert_eq!(
        mapped[4],
        frames(&before[0])[4],
        "the unmatched frame is unchanged"
    );

    // Read again (or re-sent): nothing is mapped twice.
    let once = records.clone();
    let again = symbolicator.symbolicate(&mut records, Stage::Read).await;
    assert_eq!(again.count(FrameResult::Mapped), 0);
    assert_eq!(records, once);

    // A deleted release maps nothing once this node is told (or its cache refreshes).
    symbolicator.store().delete("web@1").await.unwrap();
    symbolicator.invalidate("web@1");
    let mut fresh = vec![record("web@1", &stack)];
    let outcome = symbolicator.symbolicate(&mut fresh, Stage::Ingest).await;
    assert_eq!(outcome.count(FrameResult::Mapped), 0);
}

#[tokio::test]
async fn a_bad_map_in_the_store_leaves_frames_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileSourceMaps::open(dir.path()).unwrap();
    store
        .put(
            SourceMapUpload {
                release: "web@1".into(),
                url: "~/assets/esbuild.js".into(),
                map: b"{\"version\":3,\"sources\":[\"a.js\"],\"mappings\":\"%%%\"}".to_vec(),
                sources: 1,
                sources_content: false,
            },
            u64::MAX,
        )
        .await
        .unwrap();
    let symbolicator = Symbolicator::new(Arc::new(store), SymbolicatorConfig::default());
    let mut records = vec![record("web@1", &fixture("esbuild.stack.txt"))];
    let before = records.clone();
    let outcome = symbolicator.symbolicate(&mut records, Stage::Ingest).await;
    assert_eq!(outcome.count(FrameResult::BadMap), 4, "{outcome:?}");
    assert_eq!(records, before);
}

#[tokio::test]
async fn meta_stays_within_its_limit() {
    let (_dir, symbolicator) = symbolicator_with(&["esbuild"]).await;
    // Fifty frames with context would pass 16 KiB: context goes first, the frames stay mapped.
    let one = fixture("esbuild.stack.txt");
    let lines: Vec<&str> = one.lines().skip(1).collect();
    let stack = std::iter::repeat_n(lines.join("\n"), 20)
        .collect::<Vec<_>>()
        .join("\n");
    let mut records = vec![record("web@1", &stack)];
    let outcome = symbolicator.symbolicate(&mut records, Stage::Ingest).await;
    assert_eq!(outcome.count(FrameResult::Mapped), 80, "{outcome:?}");
    let size = serde_json::to_vec(&records[0].meta).unwrap().len();
    assert!(size <= faultline_schema::MAX_META_BYTES, "{size}");
    assert!(records[0].clone().validate().is_ok());
    let f = frames(&records[0]);
    assert!(f.iter().all(|f| f.minified.is_some()));
    assert!(matches!(records[0].meta["stack"], Value::Array(_)));
    // The outermost frames lose their context first: the innermost keep theirs as long as
    // they fit, and what was dropped was needed (one more frame's context would not fit).
    let with = f.iter().take_while(|f| f.context_line.is_some()).count();
    assert!(
        with > 1 && with < f.len(),
        "{with} of {} kept context",
        f.len()
    );
    assert!(
        f[with..]
            .iter()
            .all(|f| f.context_line.is_none() && f.pre_context.is_empty())
    );
    // The stack repeats every four frames: one repetition mapped alone has each frame's
    // context.
    let mut single = vec![record("web@1", &lines.join("\n"))];
    symbolicator.symbolicate(&mut single, Stage::Ingest).await;
    let same = &frames(&single[0])[with % lines.len()];
    assert_eq!((&same.file, same.line), (&f[with].file, f[with].line));
    let mut more = f.clone();
    more[with].pre_context = same.pre_context.clone();
    more[with].context_line = same.context_line.clone();
    more[with].post_context = same.post_context.clone();
    let mut grown = records[0].clone();
    grown
        .meta
        .insert("stack".into(), serde_json::to_value(&more).unwrap());
    assert!(serde_json::to_vec(&grown.meta).unwrap().len() > faultline_schema::MAX_META_BYTES);
}
