//! `cargo xtask run`: build what the server needs and start it on the embedded default.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::cmd;

/// Builds the npm package and the release server and runs `faultline serve` from the repository root, so the
/// file store lands in `./data` (git-ignored). Extra arguments go to `faultline serve`.
pub(crate) fn run(extra: &[String]) -> Result<ExitCode> {
    crate::reporter::build()?;
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
    println!("    data in ./data; the first start prints the generated keys; Ctrl-C stops it\n");
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
