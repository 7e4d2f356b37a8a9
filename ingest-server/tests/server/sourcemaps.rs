//! Source maps end to end (issue 22): the real `faultline sourcemaps` CLI uploads a build's
//! maps to a real server, records with minified frames come back mapped (at ingest, and at
//! read for records stored before the upload), on the file store and on PostgreSQL with two
//! nodes; and what the upload API refuses.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::alerts_support::{ADMIN, Faultline, KEY, client, eventually, record, write_config};
use crate::common::metric;
use crate::pg::fresh_db;

const RELEASE: &str = "web@1.0.0";
const CI_KEY: &str = "sk_ci_uploads";

/// A secret key allowed to upload (and only that, for the `web` service).
const CONFIG: &str = r#"
[[keys]]
name = "ci"
kind = "secret"
key_env = "CI_UPLOAD_KEY"
services = ["web"]
sourcemaps = true
"#;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../symbolicate/tests/fixtures/out")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A build output as a bundler leaves it: `assets/esbuild.js` names its map in a comment,
/// `assets/vite.js` carries it inline, `assets/terser.js` has `terser.js.map` beside it,
/// and `assets/worker.js` has none.
fn build_dir() -> tempfile::TempDir {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    std::fs::create_dir_all(assets.join("maps")).unwrap();
    std::fs::write(
        assets.join("esbuild.js"),
        fixture("esbuild.js") + "\n//# sourceMappingURL=maps/esbuild.js.map\n",
    )
    .unwrap();
    std::fs::write(
        assets.join("maps/esbuild.js.map"),
        fixture("esbuild.js.map"),
    )
    .unwrap();
    let inline = base64::engine::general_purpose::STANDARD.encode(fixture("vite.js.map"));
    std::fs::write(
        assets.join("vite.js"),
        fixture("vite.js") + "\n//# sourceMappingURL=data:application/json;base64," + &inline,
    )
    .unwrap();
    std::fs::write(assets.join("terser.js"), fixture("terser.js")).unwrap();
    std::fs::write(assets.join("terser.js.map"), fixture("terser.js.map")).unwrap();
    std::fs::write(assets.join("worker.js"), "self.onmessage = () => {};").unwrap();
    dir
}

/// Runs `faultline sourcemaps ARGS` against `server` with `token`: (exit code, stdout).
fn cli(server: &str, token: &str, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    for (k, _) in std::env::vars() {
        if k.starts_with("FAULTLINE_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("sourcemaps")
        .args(args)
        .env("FAULTLINE_SERVER", server)
        .env("FAULTLINE_ADMIN_TOKEN", token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout)
}

/// A browser error from the fixture bundle `name` (served from app.example.com), thrown by
/// release `release`.
fn error(name: &str, release: &str, message: &str) -> Value {
    let frames = faultline_schema::stack::parse(&fixture(&format!("{name}.stack.txt")));
    record(
        "web",
        "ERROR",
        "window.onerror",
        json!({ "release": release, "stack": frames, "error_type": "TypeError", "note": message }),
    )
}

/// The record of `GET /logs/recent` whose `meta.note` is `note`.
async fn read(node: &Faultline, note: &str) -> Value {
    let recent = node.get("/logs/recent?service=web&limit=100").await;
    recent["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["meta"]["note"] == note)
        .cloned()
        .unwrap_or_else(|| panic!("no record {note} in {recent}"))
}

/// Whether the record's innermost frame reads as the original `parseNumber` in util.js,
/// line 10, with its minified location kept.
fn mapped(record: &Value, bundle: &str) -> bool {
    let top = &record["meta"]["stack"][0];
    top["file"]
        .as_str()
        .is_some_and(|f| f.ends_with("src/util.js"))
        && top["line"] == 10
        && top["function"]
            .as_str()
            .is_some_and(|f| f.ends_with("parseNumber"))
        && top["minified"]["file"] == format!("https://app.example.com/assets/{bundle}.js")
}

async fn put(base: &str, path: &str, token: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = client()
        .put(format!("{base}{path}"))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn env(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![("CI_UPLOAD_KEY", CI_KEY.to_owned())];
    env.extend_from_slice(extra);
    env
}

#[tokio::test]
async fn cli_upload_then_records_read_mapped_on_the_file_store() {
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(conf.path(), CONFIG);
    let node = Faultline::start(data.path(), Some(&config), &env(&[]));

    // Stored before its maps exist: mapped when read, once they are uploaded.
    node.post(KEY, None, json!([error("esbuild", RELEASE, "before")]))
        .await;
    let before = read(&node, "before").await;
    assert!(before["meta"]["stack"][0]["minified"].is_null(), "{before}");

    let build = build_dir();
    let root = build.path().to_str().unwrap();
    let (code, out) = cli(
        &node.base,
        CI_KEY,
        &["upload", "--release", RELEASE, "--url-prefix", "~/", root],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches('✓').count(), 3, "{out}");
    assert!(out.contains("✓ ~/assets/esbuild.js"), "{out}");
    assert!(out.contains("- ~/assets/worker.js: no source map"), "{out}");
    assert!(
        out.contains("3 maps uploaded, 0 failed, 1 files without a map"),
        "{out}"
    );

    for bundle in ["esbuild", "vite", "terser"] {
        node.post(KEY, None, json!([error(bundle, RELEASE, bundle)]))
            .await;
        let r = read(&node, bundle).await;
        assert!(mapped(&r, bundle), "{bundle}: {r}");
    }
    let esbuild = read(&node, "esbuild").await;
    let frames = &esbuild["meta"]["stack"];
    assert_eq!(frames[1]["function"], "explode", "{frames}");
    assert_eq!(frames[2]["function"], "handleSubmit", "{frames}");
    assert!(
        frames[0]["context_line"]
            .as_str()
            .unwrap()
            .contains("throw new TypeError")
    );
    // terser's map has no sourcesContent: no context.
    assert!(read(&node, "terser").await["meta"]["stack"][0]["context_line"].is_null());
    // The record stored before the upload reads mapped now.
    assert!(mapped(&read(&node, "before").await, "esbuild"));
    // Another release's frames are left alone.
    node.post(
        KEY,
        None,
        json!([error("esbuild", "web@2", "other release")]),
    )
    .await;
    assert!(read(&node, "other release").await["meta"]["stack"][0]["minified"].is_null());

    let metrics = client()
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |result: &str, stage: &str| {
        metric(
            &metrics,
            &format!(
                "faultline_symbolication_frames_total{{result=\"{result}\",stage=\"{stage}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    assert!(count("mapped", "ingest") >= 10.0, "{metrics}");
    assert!(count("no_map", "ingest") >= 4.0, "{metrics}");
    assert!(count("mapped", "read") >= 4.0, "{metrics}");

    let (code, out) = cli(&node.base, ADMIN, &["list", "--release", RELEASE]);
    assert_eq!(code, 0);
    assert!(
        out.contains("~/assets/vite.js") && out.contains("3 maps"),
        "{out}"
    );
    let listed = node.get("/sourcemaps").await;
    assert_eq!(listed["releases"][0]["release"], RELEASE, "{listed}");
    assert_eq!(listed["releases"][0]["files"], 3);
    let one = node.get(&format!("/sourcemaps/{RELEASE}")).await;
    assert_eq!(one["files"].as_array().unwrap().len(), 3, "{one}");
    assert!(one["bytes"].as_u64().unwrap() > 5000);

    let (code, out) = cli(&node.base, ADMIN, &["delete", "--release", RELEASE]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted 3 source maps"), "{out}");
    node.post(
        KEY,
        None,
        json!([error("esbuild", RELEASE, "after delete")]),
    )
    .await;
    assert!(read(&node, "after delete").await["meta"]["stack"][0]["minified"].is_null());
    // The maps' files are gone from the data dir, which stays private.
    let maps = std::fs::read_dir(data.path().join("sourcemaps/maps"))
        .unwrap()
        .count();
    assert_eq!(maps, 0);
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(
        conf.path(),
        &format!("{CONFIG}\n[sourcemaps]\nmax_file_bytes = 4000000\nmax_release_bytes = 8000000\n"),
    );
    let node = Faultline::start(data.path(), Some(&config), &env(&[]));
    let base = node.base.as_str();
    let good = fixture("esbuild.js.map");
    let at = |release: &str, url: &str| format!("/sourcemaps/{release}?url={url}");

    let (s, b) = put(base, &at("r1", "~/a.js"), ADMIN, "not json").await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("does not parse"),
        "{b}"
    );
    let vlq = r#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA,+/+/+/"}"#;
    let (s, b) = put(base, &at("r1", "~/a.js"), ADMIN, vlq).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].as_str().unwrap().contains("vlq"), "{b}");
    for url in [
        "~/assets/../secret.js",
        "~/./a.js",
        "",
        "a.js",
        "https://a.io/x/../../y.js",
    ] {
        let (s, b) = put(base, &at("r1", url), ADMIN, good.clone()).await;
        assert_eq!(s, 400, "{url}: {b}");
    }
    // HTTP clients resolve a ".." segment before sending; a raw request does not.
    let addr = base.trim_start_matches("http://");
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        raw,
        "PUT /sourcemaps/%2E%2E?url=~/a.js HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 400");
    for release in ["a%2Fb", "v1..2", "a%5Cb", "..a"] {
        let (s, b) = put(base, &at(release, "~/a.js"), ADMIN, good.clone()).await;
        assert_eq!(s, 400, "{release}: {b}");
    }
    // Only the admin token and keys allowed to upload.
    assert_eq!(
        put(base, &at("r1", "~/a.js"), KEY, good.clone()).await.0,
        403
    );
    assert_eq!(
        put(base, &at("r1", "~/a.js"), "nope", good.clone()).await.0,
        401
    );
    let r = client()
        .get(format!("{base}/sourcemaps"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // gzip is accepted.
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(good.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let r = client()
        .put(format!("{base}{}", at("r1", "~/a.js")))
        .bearer_auth(ADMIN)
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        (b["bytes"].as_u64(), &b["sources"], &b["sources_content"]),
        (Some(good.len() as u64), &json!(2), &json!(true)),
        "{b}"
    );
    // The release's total: two 3 MB maps fit in 8 MB, a third does not.
    let big = format!(
        "{{\"version\":3,\"sources\":[\"a.js\"],\"names\":[],\"mappings\":\"AAAA\",\"x\":\"{}\"}}",
        "x".repeat(3_000_000)
    );
    assert_eq!(
        put(base, &at("r2", "~/1.js"), ADMIN, big.clone()).await.0,
        201
    );
    assert_eq!(
        put(base, &at("r2", "~/2.js"), ADMIN, big.clone()).await.0,
        201
    );
    let (s, b) = put(base, &at("r2", "~/3.js"), ADMIN, big.clone()).await;
    assert_eq!(s, 413, "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("max_release_bytes"),
        "{b}"
    );
    // Replacing a map counts its new size only.
    assert_eq!(put(base, &at("r2", "~/2.js"), ADMIN, big).await.0, 201);

    // 1 GB declared: 413 from the headers alone, before a byte of the body is sent.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PUT {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: 1073741824\r\n\r\n",
        at("r3", "~/big.js")
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");

    // 1 GB streamed without a length: cut off at the limit, long before the end.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PUT {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nTransfer-Encoding: chunked\r\n\r\n",
        at("r3", "~/big.js")
    )
    .unwrap();
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 1 << 20];
        let mut sent = 0u64;
        while sent < 1 << 30 {
            let ok = write!(writer, "{:x}\r\n", chunk.len()).is_ok()
                && writer.write_all(&chunk).is_ok()
                && writer.write_all(b"\r\n").is_ok();
            if !ok {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });
    let started = Instant::now();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    let _ = s.shutdown(std::net::Shutdown::Both);
    let sent = sender.join().unwrap();
    assert!(
        sent < 200 << 20,
        "the server read {sent} bytes before refusing"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Nothing of it was stored, and the server still answers.
    let r3 = node.get("/sourcemaps/r3").await;
    assert_eq!(r3["files"], json!([]), "{r3}");
}

/// Two nodes on one PostgreSQL: maps uploaded to one are used by the other, within the
/// refresh interval even when it had looked the release up (and found nothing) before.
#[tokio::test]
async fn postgres_two_nodes_share_maps() {
    let url = fresh_db().await;
    let conf = tempfile::tempdir().unwrap();
    let config = write_config(
        conf.path(),
        &format!("{CONFIG}\n[sourcemaps]\nrefresh = \"1s\"\n"),
    );
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let env = env(&[("DATABASE_URL", url.clone())]);
    let a = Faultline::start(dirs[0].path(), Some(&config), &env);
    let b = Faultline::start(dirs[1].path(), Some(&config), &env);
    // Node b sees the release without maps first (and caches that).
    b.post(KEY, None, json!([error("vite", RELEASE, "before")]))
        .await;
    assert!(read(&b, "before").await["meta"]["stack"][0]["minified"].is_null());

    let build = build_dir();
    let (code, out) = cli(
        &a.base,
        ADMIN,
        &[
            "upload",
            "--release",
            RELEASE,
            build.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");

    // Ingested on b: mapped once b's cached "no maps" is older than the refresh.
    let r = eventually(
        "node b maps with node a's upload",
        Duration::from_secs(10),
        || async {
            let note = format!("n{}", faultline_schema::Timestamp::now().unix_millis());
            b.post(KEY, None, json!([error("vite", RELEASE, &note)]))
                .await;
            let r = read(&b, &note).await;
            mapped(&r, "vite").then_some(r)
        },
    )
    .await;
    assert_eq!(r["meta"]["stack"][1]["function"], "explode", "{r}");
    // Read on either node, the record stored before the upload is mapped too.
    assert!(mapped(&read(&b, "before").await, "vite"));
    assert!(mapped(&read(&a, "before").await, "vite"));
    // Both see the same list; a delete on b stops a within the refresh.
    assert_eq!(
        b.get(&format!("/sourcemaps/{RELEASE}")).await["files"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (code, _) = cli(&b.base, ADMIN, &["delete", "--release", RELEASE]);
    assert_eq!(code, 0);
    eventually("node a stops mapping", Duration::from_secs(10), || async {
        let note = format!("d{}", faultline_schema::Timestamp::now().unix_millis());
        a.post(KEY, None, json!([error("vite", RELEASE, &note)]))
            .await;
        read(&a, &note).await["meta"]["stack"][0]["minified"]
            .is_null()
            .then_some(())
    })
    .await;
    let rows: i64 = {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM sourcemaps")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert_eq!(rows, 0);
}
