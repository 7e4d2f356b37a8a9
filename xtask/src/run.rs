//! `cargo xtask run`: build what the server needs and start it on the embedded default.
//! The order matters: the npm package, then `www/` (which bundles the package), then the
//! server (whose `build.rs` embeds `www/dist`).

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::cmd;

/// Builds the npm package, the dashboard and the release server and runs `faultline serve` from the repository root, so the
/// file store lands in `./data` (git-ignored). Extra arguments go to `faultline serve`.
pub(crate) fn run(extra: &[String]) -> Result<ExitCode> {
    crate::reporter::build()?;
    build_www()?;
    println!("==> build faultline (release)");
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "--locked",
        "--package",
        "faultline-server",
    ]))?;
    let bin = cmd::root().join("target/release/faultline");
    println!("==> start: faultline serve {}", extra.join(" "));
    println!("    data in ./data; the first start prints the generated keys; Ctrl-C stops it");
    println!(
        "    dashboard: http://127.0.0.1:8080 (admin token below or FAULTLINE_ADMIN_TOKEN), demo panel: /panel\n"
    );
    let status = Command::new(&bin)
        .arg("serve")
        .args(extra)
        .current_dir(cmd::root())
        .status()
        .with_context(|| format!("could not start {}", bin.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds the panel and dashboard (`www/`, Vite) into `www/dist`, which the server's
/// `build.rs` embeds. Needs the npm package built first (Vite aliases it); installs
/// `www`'s locked dependencies when they are missing (`cargo xtask run` does not provision).
pub(crate) fn build_www() -> Result<()> {
    let www = cmd::root().join("www");
    if !www.join("node_modules").is_dir() {
        println!("==> npm ci in www");
        cmd::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&www),
        )?;
    }
    println!("==> build www (Vite) into www/dist");
    cmd::run(
        Command::new("npm")
            .args(["run", "build", "--silent"])
            .current_dir(&www),
    )
}
