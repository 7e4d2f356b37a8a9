//! Building the npm package `faultline-reporter` into `reporter-wasm/pkg/`.
//!
//! 1. `wasm-pack build --target web --release` compiles the crate and runs the pinned
//!    `wasm-bindgen` (the release profile is overridden by env for this one build to the
//!    size settings of `[profile.wasm-release]`: wasm-pack only knows dev/profiling/release,
//!    and the server's release profile must stay tuned for speed), with the build machine's
//!    directories remapped out of the panic locations the module carries.
//! 2. `wasm-opt -Oz` from binaryen's npm package (pinned in `reporter-wasm/tools/`) shrinks
//!    the module. wasm-pack's own download is switched off in the crate's
//!    `[package.metadata.wasm-pack]`, and Debian's binaryen (108) cannot be used: it writes
//!    the externref table that wasm-bindgen emits back with the wrong type, and the module
//!    then fails at load in `WebAssembly.Table.set`.
//! 3. Every import and export gets a one- or two-letter name, in the module and in
//!    wasm-bindgen's glue (`minify_names`).
//! 4. The package's JavaScript, types and README from `reporter-wasm/js/` are copied in and
//!    `package.json` is written with the entry points `.`, `./react`, `./snippet` and `./vite`
//!    (the build-time source map upload, for Node).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Files of `reporter-wasm/js/` that ship in the package.
const JS_FILES: [&str; 9] = [
    "index.js",
    "notices.js",
    "react.js",
    "snippet.js",
    "vite.js",
    "index.d.ts",
    "react.d.ts",
    "vite.d.ts",
    "README.md",
];

/// The wasm features rustc enables by default for wasm32-unknown-unknown; wasm-opt must be
/// told, or it rejects the module.
const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// The package directory.
pub(crate) fn pkg_dir() -> PathBuf {
    cmd::root().join("reporter-wasm/pkg")
}

/// Builds the package; returns its directory.
pub(crate) fn build() -> Result<PathBuf> {
    println!("==> build the npm package faultline-reporter");
    let crate_dir = cmd::root().join("reporter-wasm");
    let pkg = pkg_dir();
    let mut pack = Command::new("wasm-pack");
    pack.current_dir(&crate_dir)
        .args(["build", "--target", "web", "--release", "--no-typescript"])
        .args(["--out-dir", "pkg", "--out-name", "faultline_reporter"])
        .envs([
            ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "z"),
            ("CARGO_PROFILE_RELEASE_LTO", "true"),
            ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
            ("CARGO_PROFILE_RELEASE_PANIC", "abort"),
            // wasm-bindgen reads the target-features section; wasm-opt strips it afterwards.
            ("CARGO_PROFILE_RELEASE_STRIP", "false"),
            ("CARGO_PROFILE_RELEASE_DEBUG", "false"),
        ])
        .env("CARGO_ENCODED_RUSTFLAGS", remapped_rustflags());
    cmd::run(&mut pack)?;
    let wasm = pkg.join("faultline_reporter_bg.wasm");
    // wasm-bindgen's output as it was before wasm-opt, for [`named`].
    fs::copy(&wasm, unoptimized_wasm()).context("keeping the unoptimized wasm")?;
    cmd::run(
        wasm_opt()
            .args(["--strip-debug", "--strip-producers"])
            .arg(&wasm)
            .arg("-o")
            .arg(&wasm),
    )?;
    minify_names(&wasm, &pkg.join("faultline_reporter.js"))?;
    for file in JS_FILES {
        fs::copy(crate_dir.join("js").join(file), pkg.join(file))
            .with_context(|| format!("copying reporter-wasm/js/{file}"))?;
    }
    fs::write(pkg.join("package.json"), package_json())?;
    // wasm-pack writes a .gitignore of `*` into the package; npm would then pack nothing.
    let _ = fs::remove_file(pkg.join(".gitignore"));
    let size = fs::metadata(&wasm)?.len();
    println!("    {} ({size} bytes of wasm)", pkg.display());
    Ok(pkg)
}

/// Short names for what the module imports and exports. wasm-bindgen names each import
/// after its function and a hash (`__wbg_setTimeout_7d9feba2ceeda7bf`), in the module and
/// again in the glue, and hashes do not compress: 30 imports cost about 0.6 KB of gzip.
/// wasm-opt's `--minify-imports-and-exports-and-modules` renames them (every import then
/// comes from module `a`) and prints what became what; the glue gets the same renames. It
/// gives the imports as `NAME: function` in one object under the module's name and calls
/// the exports as `wasm.NAME`: a name not found as expected fails the build, and the
/// browser tests load the result.
fn minify_names(wasm: &Path, glue: &Path) -> Result<()> {
    let mut c = Command::new(wasm_opt_bin());
    c.arg("--minify-imports-and-exports-and-modules")
        .args(WASM_FEATURES)
        .arg(wasm)
        .arg("-o")
        .arg(wasm);
    let map: serde_json::Value =
        serde_json::from_slice(&cmd::output(&mut c)?).context("reading wasm-opt's map of names")?;
    let mut js = fs::read_to_string(glue).context("reading the glue")?;
    let mut modules = Vec::new();
    for i in map["imports"].as_array().into_iter().flatten() {
        let (Some(module), Some(name), Some(new)) = (i[0].as_str(), i[1].as_str(), i[2].as_str())
        else {
            bail!("wasm-opt's map: unexpected import {i}");
        };
        replace_once(
            &mut js,
            &format!("{name}: function"),
            &format!("{new}: function"),
        )?;
        if !modules.contains(&module) {
            modules.push(module);
        }
    }
    for module in modules {
        replace_once(&mut js, &format!("\"{module}\": import0"), "a: import0")?;
    }
    for e in map["exports"].as_array().into_iter().flatten() {
        let (Some(name), Some(new)) = (e[0].as_str(), e[1].as_str()) else {
            bail!("wasm-opt's map: unexpected export {e}");
        };
        // `wasm.name` and not `wasm.name_longer`.
        let from = format!("wasm.{name}");
        let mut out = String::with_capacity(js.len());
        let mut rest = js.as_str();
        while let Some(at) = rest.find(&from) {
            let after = &rest[at + from.len()..];
            let whole = !after.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$');
            out.push_str(&rest[..at]);
            out.push_str(if whole { "wasm." } else { &from });
            if whole {
                out.push_str(new);
            }
            rest = after;
        }
        out.push_str(rest);
        js = out;
    }
    fs::write(glue, js).context("writing the glue")?;
    Ok(())
}

/// Replaces the one occurrence of `from` in `js`; fails unless there is exactly one.
fn replace_once(js: &mut String, from: &str, to: &str) -> Result<()> {
    let n = js.matches(from).count();
    if n != 1 {
        bail!(
            "wasm-bindgen's glue holds `{from}` {n} times, not once: the package cannot rename it"
        );
    }
    *js = js.replacen(from, to, 1);
    Ok(())
}

/// binaryen's `wasm-opt`, pinned in `reporter-wasm/tools/`.
fn wasm_opt_bin() -> PathBuf {
    cmd::root().join("reporter-wasm/tools/node_modules/.bin/wasm-opt")
}

/// binaryen's `wasm-opt` with the options of the shipped module.
fn wasm_opt() -> Command {
    let mut c = Command::new(wasm_opt_bin());
    // `--converge` repeats -Oz until nothing shrinks; `--low-memory-unused` lets loads and
    // stores fold constant offsets (rustc places nothing below 1 MiB): 290 bytes of gzip
    // together, 2026-12-07. Then the control flow rebuilt (`--flatten --rereloop`, which
    // finds shorter forms for the Rust's nested matches) and whole-module type flow
    // (`--gufa-optimizing`: calls through the glue that always pass the same kind of value),
    // each followed by -Oz: 22,423 -> 22,091 bytes of gzip on the same input, 2026-12-07.
    c.args(["-Oz", "--converge", "--low-memory-unused"])
        .args(["--flatten", "--rereloop", "-Oz", "--gufa-optimizing", "-Oz"])
        .args(WASM_FEATURES);
    c
}

/// Where [`build`] leaves wasm-bindgen's output before wasm-opt (not shipped).
fn unoptimized_wasm() -> PathBuf {
    cmd::root().join("target/faultline_reporter_bg.unoptimized.wasm")
}

/// The module of the last [`build`] optimized the same way but keeping its function names
/// (`wasm-opt -g`), for the benchmark's account of where the bytes go; returns its path.
pub(crate) fn named() -> Result<PathBuf> {
    let out = cmd::root().join("target/faultline_reporter_bg.named.wasm");
    cmd::run(
        wasm_opt()
            .arg("-g")
            .arg(unoptimized_wasm())
            .arg("-o")
            .arg(&out),
    )?;
    Ok(out)
}

/// The wasm build's rustc flags: whatever the environment gives, plus `--remap-path-prefix`
/// for the build machine's own directories (the cargo registry's sources, git checkouts,
/// the workspace), which would otherwise ship in every page as panic locations
/// (`/root/.cargo/registry/src/index.crates.io-.../sha2-0.10.9/src/...`): dependencies are
/// then named `sha2-0.10.9/src/...`, the workspace's files `reporter-wasm/src/...`. Passed
/// in the environment of this one build, which has `--target wasm32-unknown-unknown`, so
/// host units (build scripts, proc macros) and every native build keep their caches.
/// `CARGO_ENCODED_RUSTFLAGS` (flags separated by 0x1f) so paths with spaces stay whole.
fn remapped_rustflags() -> String {
    let mut flags: Vec<String> = match std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        Ok(s) if !s.is_empty() => s.split('\x1f').map(str::to_owned).collect(),
        _ => std::env::var("RUSTFLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    };
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut prefixes = vec![cmd::root()];
    if let Some(home) = cargo_home {
        prefixes.push(home.join("git/checkouts"));
        prefixes.push(home.join("registry/src"));
        // Each registry's sources sit under a directory named after its index
        // (`index.crates.io-1949cf8c6b5b557f`); later prefixes win, so these come last.
        if let Ok(dirs) = fs::read_dir(home.join("registry/src")) {
            prefixes.extend(dirs.flatten().map(|d| d.path()));
        }
    }
    for prefix in prefixes {
        let mut from = prefix.into_os_string().to_string_lossy().into_owned();
        if !from.ends_with('/') {
            from.push('/');
        }
        flags.push(format!("--remap-path-prefix={from}="));
    }
    flags.join("\x1f")
}

fn package_json() -> String {
    format!(
        r#"{{
  "name": "faultline-reporter",
  "version": "{version}",
  "description": "Faultline browser reporter: errors and logs from the page, WebAssembly core",
  "license": "Apache-2.0",
  "type": "module",
  "main": "./index.js",
  "module": "./index.js",
  "types": "./index.d.ts",
  "exports": {{
    ".": {{ "types": "./index.d.ts", "default": "./index.js" }},
    "./react": {{ "types": "./react.d.ts", "default": "./react.js" }},
    "./snippet": "./snippet.js",
    "./vite": {{ "types": "./vite.d.ts", "default": "./vite.js" }},
    "./faultline_reporter_bg.wasm": "./faultline_reporter_bg.wasm",
    "./package.json": "./package.json"
  }},
  "files": [
    "index.js", "notices.js", "react.js", "snippet.js", "vite.js", "index.d.ts", "react.d.ts", "vite.d.ts",
    "faultline_reporter.js", "faultline_reporter_bg.wasm", "README.md"
  ],
  "sideEffects": ["./snippet.js"],
  "peerDependencies": {{ "react": ">=17" }},
  "peerDependenciesMeta": {{ "react": {{ "optional": true }} }}
}}
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}
