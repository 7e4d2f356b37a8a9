//! `faultline sourcemaps upload|list|delete`: a build's source maps to a running server
//! (`/sourcemaps`, docs/OPERATIONS.md), with the admin token or a secret key allowed to
//! upload.
//!
//! `upload` walks each PATH for `*.js`, `*.mjs` and `*.cjs` files, finds each file's map
//! through its `//# sourceMappingURL=` comment (a file next to it, or an inline `data:`
//! map) or `NAME.js.map` beside it, and uploads the map (gzipped) under the URL the file is
//! served at: `--url-prefix` plus its path below PATH.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::Value;

use super::remote::{Body, Client, ServerArgs};

/// `faultline sourcemaps` flags.
#[derive(Debug, clap::Args)]
pub struct SourcemapsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SourcemapsCommand,
    /// Which server, with the admin token or a secret key with `sourcemaps = true`.
    #[command(flatten)]
    pub remote: ServerArgs,
}

/// `faultline sourcemaps` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SourcemapsCommand {
    /// Upload the maps of every `*.js` / `*.mjs` under PATH... for a release.
    Upload {
        /// The release the build is (what the reporter sends as `release`).
        #[arg(long)]
        release: String,
        /// Where PATH is served: `~/` (any scheme and host) or `https://host/path/`.
        #[arg(long, default_value = "~/")]
        url_prefix: String,
        /// Build output directories or files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List a release's maps (or, without `--release`, every release with maps).
    List {
        /// The release.
        #[arg(long)]
        release: Option<String>,
    },
    /// Delete a release's maps.
    Delete {
        /// The release.
        #[arg(long)]
        release: String,
    },
}

/// Runs `faultline sourcemaps ...`.
pub(super) async fn sourcemaps(args: SourcemapsArgs) -> anyhow::Result<()> {
    let client = args.remote.client(
        "no token: set FAULTLINE_ADMIN_TOKEN or --token (the admin token, or a secret key \
         with sourcemaps = true)",
        Duration::from_secs(300),
    )?;
    match args.command {
        SourcemapsCommand::Upload {
            release,
            url_prefix,
            paths,
        } => upload(&client, &release, &url_prefix, &paths).await,
        SourcemapsCommand::List { release } => list(&client, release.as_deref()).await,
        SourcemapsCommand::Delete { release } => {
            let body = client
                .call(
                    reqwest::Method::DELETE,
                    &["sourcemaps", &release],
                    Body::Empty,
                )
                .await?;
            println!(
                "deleted {} source maps of release {release}",
                body["deleted"].as_u64().unwrap_or(0)
            );
            Ok(())
        }
    }
}

async fn upload(
    client: &Client,
    release: &str,
    url_prefix: &str,
    paths: &[PathBuf],
) -> anyhow::Result<()> {
    faultline_symbolicate::check_release(release).map_err(|e| anyhow::anyhow!("--release: {e}"))?;
    let prefix = if url_prefix.ends_with('/') {
        url_prefix.to_owned()
    } else {
        format!("{url_prefix}/")
    };
    let (mut uploaded, mut failed, mut without) = (0, 0, 0);
    for root in paths {
        let scripts = scripts_under(root)?;
        if scripts.is_empty() {
            println!("! {}: no .js or .mjs files", root.display());
        }
        for (script, relative) in scripts {
            let url = format!("{prefix}{relative}");
            let map = match find_map(&script) {
                Ok(Some(map)) => map,
                Ok(None) => {
                    println!("- {url}: no source map ({})", script.display());
                    without += 1;
                    continue;
                }
                Err(e) => {
                    println!("✗ {url}: {e:#}");
                    failed += 1;
                    continue;
                }
            };
            match upload_one(client, release, &url, &map).await {
                Ok(answer) => {
                    uploaded += 1;
                    println!(
                        "✓ {url}: {} bytes, {} sources{}",
                        answer["bytes"],
                        answer["sources"],
                        if answer["sources_content"] == Value::Bool(true) {
                            " with content"
                        } else {
                            ""
                        }
                    );
                }
                Err(e) => {
                    failed += 1;
                    println!("✗ {url}: {e:#}");
                }
            }
        }
    }
    println!(
        "release {release}: {uploaded} maps uploaded, {failed} failed, {without} files without a map"
    );
    if failed > 0 {
        bail!("{failed} source maps were not uploaded");
    }
    Ok(())
}

async fn upload_one(
    client: &Client,
    release: &str,
    url: &str,
    map: &[u8],
) -> anyhow::Result<Value> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(map)?;
    let body = gz.finish()?;
    let mut target = client.url(&["sourcemaps", release])?;
    target.query_pairs_mut().append_pair("url", url);
    client
        .send(reqwest::Method::PUT, target, Body::GzipJson(body))
        .await
}

/// Every script under `root` (or `root` itself), with its path below `root` in `/` form.
fn scripts_under(root: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let meta =
        std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    if meta.is_file() {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(root.to_path_buf(), name)]);
    }
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "js" || e == "mjs" || e == "cjs")
                && let Ok(relative) = path.strip_prefix(root)
            {
                let relative = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((path, relative));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The map of `script`: its `sourceMappingURL` (a relative file or a `data:` URL), else
/// `NAME.js.map` beside it; `None` when it has neither.
fn find_map(script: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let text =
        std::fs::read(script).with_context(|| format!("cannot read {}", script.display()))?;
    let dir = script.parent().unwrap_or(Path::new("."));
    if let Some(reference) = source_mapping_url(&text) {
        if let Some(data) = reference.strip_prefix("data:") {
            let (header, payload) = data
                .split_once(',')
                .context("the inline source map (data: URL) has no ','")?;
            if !header.ends_with(";base64") {
                bail!("the inline source map must be base64 (data:application/json;base64,...)");
            }
            let map = base64::engine::general_purpose::STANDARD
                .decode(payload.trim())
                .context("the inline source map is not valid base64")?;
            return Ok(Some(map));
        }
        if !reference.contains("://") {
            let file = reference.split(['?', '#']).next().unwrap_or(reference);
            let path = dir.join(file);
            return match std::fs::read(&path) {
                Ok(map) => Ok(Some(map)),
                Err(e) => Err(e).with_context(|| {
                    format!(
                        "sourceMappingURL names {}, which cannot be read",
                        path.display()
                    )
                }),
            };
        }
    }
    let mut beside = script.as_os_str().to_owned();
    beside.push(".map");
    match std::fs::read(PathBuf::from(beside)) {
        Ok(map) => Ok(Some(map)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The last `//# sourceMappingURL=` (or the older `//@`) comment's value.
fn source_mapping_url(script: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(script).ok()?;
    text.lines().rev().take(5).find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("//# sourceMappingURL=")
            .or_else(|| line.strip_prefix("//@ sourceMappingURL="))?;
        Some(rest.trim()).filter(|r| !r.is_empty())
    })
}

async fn list(client: &Client, release: Option<&str>) -> anyhow::Result<()> {
    match release {
        Some(release) => {
            let body = client
                .call(reqwest::Method::GET, &["sourcemaps", release], Body::Empty)
                .await?;
            let files = body["files"].as_array().cloned().unwrap_or_default();
            for f in &files {
                println!(
                    "{}\t{} bytes\t{} sources\t{}",
                    f["url"].as_str().unwrap_or(""),
                    f["bytes"],
                    f["sources"],
                    f["uploaded_at"].as_str().unwrap_or("")
                );
            }
            println!(
                "release {release}: {} maps, {} bytes",
                files.len(),
                body["bytes"]
            );
        }
        None => {
            let body = client
                .call(reqwest::Method::GET, &["sourcemaps"], Body::Empty)
                .await?;
            for r in body["releases"].as_array().cloned().unwrap_or_default() {
                println!(
                    "{}\t{} maps\t{} bytes\tuploaded {}\tused {}",
                    r["release"].as_str().unwrap_or(""),
                    r["files"],
                    r["bytes"],
                    r["uploaded_at"].as_str().unwrap_or(""),
                    r["last_used"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_maps_by_comment_inline_or_beside() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("assets/maps")).unwrap();
        std::fs::write(
            d.join("assets/a.js"),
            "x()\n//# sourceMappingURL=maps/a.js.map\n",
        )
        .unwrap();
        std::fs::write(d.join("assets/maps/a.js.map"), "{\"a\":1}").unwrap();
        let inline = base64::engine::general_purpose::STANDARD.encode("{\"b\":2}");
        std::fs::write(
            d.join("assets/b.mjs"),
            format!(
                "y()\n//# sourceMappingURL=data:application/json;charset=utf-8;base64,{inline}"
            ),
        )
        .unwrap();
        std::fs::write(d.join("assets/c.js"), "z()").unwrap();
        std::fs::write(d.join("assets/c.js.map"), "{\"c\":3}").unwrap();
        std::fs::write(d.join("d.js"), "w()").unwrap();
        let scripts = scripts_under(d).unwrap();
        let names: Vec<&str> = scripts.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            names,
            ["assets/a.js", "assets/b.mjs", "assets/c.js", "d.js"]
        );
        let maps: Vec<Option<Vec<u8>>> =
            scripts.iter().map(|(p, _)| find_map(p).unwrap()).collect();
        assert_eq!(maps[0].as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(maps[1].as_deref(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(maps[2].as_deref(), Some(&b"{\"c\":3}"[..]));
        assert_eq!(maps[3], None);
    }
}
