//! Embeds the dashboard: generates `$OUT_DIR/dashboard_assets.rs`, a table of every file
//! under `www/dist` (the Vite build) with `include_bytes!`, so the binary serves `/` with no
//! files beside it. Without a build the table is empty and the server answers `/` with a
//! page saying how to build it, so `cargo test` and clippy need no npm.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let www = manifest.join("../www");
    let dist = env::var_os("FAULTLINE_WWW_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| www.join("dist"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FAULTLINE_WWW_DIST");
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        println!("cargo:rerun-if-changed={}", dist.display());
        collect(&dist, &dist, &mut files);
    } else if www.is_dir() {
        // A missing path would rerun this script (and rebuild the crate) on every build:
        // watch the folder the build will appear in instead.
        println!(
            "cargo:rerun-if-changed={}",
            www.join("package.json").display()
        );
        println!("cargo:rerun-if-changed={}", www.display());
    }
    files.sort();
    let mut out = String::from(
        "/// Every file of the dashboard build: (URL path, bytes, ETag).\n\
         pub(crate) static ASSETS: &[(&str, &[u8], &str)] = &[\n",
    );
    for (url, file) in &files {
        let bytes = match fs::read(file) {
            Ok(b) => b,
            Err(e) => panic!("cannot read {}: {e}", file.display()),
        };
        let _ = writeln!(
            out,
            "    ({url:?}, include_bytes!({:?}), \"\\\"{:016x}\\\"\"),",
            file.display().to_string(),
            fnv1a(&bytes)
        );
    }
    out.push_str("];\n");
    let target =
        PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("dashboard_assets.rs");
    if let Err(e) = fs::write(&target, out) {
        panic!("cannot write {}: {e}", target.display());
    }
}

/// Every file under `dir` as (URL path from `root`, file path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let url = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((format!("/{url}"), path));
        }
    }
}

/// A content hash for ETags (FNV-1a, 64 bits): cheap and stable, not a security property.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
