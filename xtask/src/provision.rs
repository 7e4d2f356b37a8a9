//! Provisioning: install what the test suites need, skipping what is already there.
//!
//! Every requirement is a cheap check plus an install. When everything is present the
//! whole step is a handful of version probes (well under five seconds). Pins:
//! `wasm-bindgen-cli` at the exact `wasm-bindgen` version in `Cargo.lock` (the CLI and the
//! library must match), `wasm-pack` at [`WASM_PACK_VERSION`].

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::cmd::{self, probe_cmd};

/// The wasm-pack release the reporter build is tested with.
pub(crate) const WASM_PACK_VERSION: &str = "0.15.1";
/// Debian packages: PostgreSQL for the store tests, Chromium and its driver for browser
/// tests, redis-server for the alert tests' health probe. (`wasm-opt` comes from npm, see
/// `reporter.rs`.)
const DEBIAN_PACKAGES: [&str; 4] = ["postgresql", "chromium", "chromium-driver", "redis-server"];
/// The oldest Node.js the npm packages and Vite support.
const MIN_NODE_MAJOR: u32 = 20;

/// Installs whatever is missing. Prints one line per requirement.
pub(crate) fn provision() -> Result<()> {
    let started = Instant::now();
    println!("==> provision");
    rust_components()?;
    wasm_target()?;
    debian_packages()?;
    node()?;
    wasm_pack()?;
    wasm_bindgen_cli()?;
    npm_packages()?;
    crate::python::packages()?;
    println!("    provisioned in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn present(what: &str) {
    println!("    ok       {what}");
}

fn installing(what: &str) {
    println!("    install  {what}");
}

fn rust_components() -> Result<()> {
    let mut missing = Vec::new();
    if cmd::probe(cmd::cargo().args(["fmt", "--version"])).is_none() {
        missing.push("rustfmt");
    }
    if cmd::probe(cmd::cargo().args(["clippy", "--version"])).is_none() {
        missing.push("clippy");
    }
    if missing.is_empty() {
        present("rustfmt, clippy");
        return Ok(());
    }
    installing(&missing.join(", "));
    cmd::run(
        Command::new("rustup")
            .args(["component", "add"])
            .args(&missing),
    )
}

fn wasm_target() -> Result<()> {
    let installed = probe_cmd("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        present("rust target wasm32-unknown-unknown");
        return Ok(());
    }
    installing("rust target wasm32-unknown-unknown");
    cmd::run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .into_iter()
        .filter(|p| {
            probe_cmd("dpkg-query", &["-W", "-f=${Status}", p])
                .is_none_or(|s| !s.ends_with("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        present(&format!("debian packages {}", DEBIAN_PACKAGES.join(" ")));
        return Ok(());
    }
    let is_root = probe_cmd("id", &["-u"]).as_deref() == Some("0");
    let has_apt = probe_cmd("apt-get", &["--version"]).is_some();
    if !(is_root && has_apt) {
        bail!(
            "missing packages {}: install them with your package manager \
             (automatic installation needs Debian or Ubuntu and root)",
            missing.join(" ")
        );
    }
    installing(&format!("debian packages {}", missing.join(" ")));
    cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )
}

fn node() -> Result<()> {
    let version = probe_cmd("node", &["--version"]);
    let major = version.as_deref().and_then(|v| {
        v.trim_start_matches('v')
            .split('.')
            .next()?
            .parse::<u32>()
            .ok()
    });
    match major {
        Some(m) if m >= MIN_NODE_MAJOR => {
            present(&format!("node {}", version.unwrap_or_default()));
            Ok(())
        }
        _ => bail!(
            "Node.js {MIN_NODE_MAJOR} or newer is needed (found {}): install it from your \
             distribution or nodejs.org",
            version.as_deref().unwrap_or("none")
        ),
    }
}

/// `cargo install`, first with the crate's own lockfile; some published lockfiles pin a
/// dependency version the registry no longer serves, so retry with fresh resolution.
fn cargo_install(krate: &str, version: &str) -> Result<()> {
    let locked = cmd::run(cmd::cargo().args(["install", krate, "--version", version, "--locked"]));
    if locked.is_ok() {
        return Ok(());
    }
    println!("    retrying {krate} without --locked");
    cmd::run(cmd::cargo().args(["install", krate, "--version", version]))
}

fn wasm_pack() -> Result<()> {
    let want = format!("wasm-pack {WASM_PACK_VERSION}");
    if probe_cmd("wasm-pack", &["--version"]).as_deref() == Some(want.as_str()) {
        present(&want);
        return Ok(());
    }
    installing(&want);
    cargo_install("wasm-pack", WASM_PACK_VERSION)
}

/// The `wasm-bindgen` version in `Cargo.lock`, if any crate uses it.
fn locked_wasm_bindgen() -> Option<String> {
    let lock = std::fs::read_to_string(cmd::root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            let v = lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(v.to_owned());
        }
    }
    None
}

fn wasm_bindgen_cli() -> Result<()> {
    let Some(version) = locked_wasm_bindgen() else {
        present("wasm-bindgen-cli (no crate uses wasm-bindgen yet)");
        return Ok(());
    };
    let want = format!("wasm-bindgen {version}");
    if probe_cmd("wasm-bindgen", &["--version"]).as_deref() == Some(want.as_str()) {
        present(&want);
        return Ok(());
    }
    installing(&format!("wasm-bindgen-cli {version}"));
    cargo_install("wasm-bindgen-cli", &version)
}

/// Folders with a `package.json` whose dependencies the suites need.
pub(crate) const NPM_DIRS: [&str; 3] = ["reporter-wasm/tools", "www", "tests/e2e"];

fn npm_packages() -> Result<()> {
    for dir in NPM_DIRS {
        let path = cmd::root().join(dir);
        let lock = path.join("package-lock.json");
        if !path.join("package.json").exists() {
            continue;
        }
        // npm writes node_modules/.package-lock.json after every install: if it is newer
        // than the lockfile, the tree matches it.
        let stamp = path.join("node_modules/.package-lock.json");
        let fresh = match (stamp.metadata(), lock.metadata()) {
            (Ok(s), Ok(l)) => s.modified().ok() >= l.modified().ok(),
            _ => false,
        };
        if fresh {
            present(&format!("npm packages in {dir}"));
            continue;
        }
        installing(&format!("npm packages in {dir}"));
        let verb = if lock.exists() { "ci" } else { "install" };
        cmd::run(
            Command::new("npm")
                .args([verb, "--no-audit", "--no-fund"])
                .current_dir(&path),
        )?;
    }
    Ok(())
}
