//! `cargo xtask`: provisioning and orchestration for the Faultline workspace.
//!
//! - `cargo xtask test`: provisions what the suites need (see `provision.rs`), then runs
//!   every suite in order (`suites.rs`), stops at the first failure, and ends with a
//!   `N passed, N failed` line.
//! - `cargo xtask run`: builds what the server needs and starts it on the embedded default.
//! - `cargo xtask provision`: only the provisioning step.

mod cmd;
mod provision;
mod suites;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test        provision, then fmt, clippy, docs, every crate's tests, wasm checks
  run         build and start the server on its embedded default
  provision   install what the tests need (idempotent)

options for test:
  --no-provision   skip provisioning (you installed everything yourself)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => suites::test(&args[1..]),
        Some("run") => run(),
        Some("provision") => provision::provision().map(|_| ExitCode::SUCCESS),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprintln!(
                "xtask: unknown command {:?}\n\n{USAGE}",
                other.unwrap_or("")
            );
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("xtask: error: {e:#}");
        ExitCode::FAILURE
    })
}

fn run() -> anyhow::Result<ExitCode> {
    eprintln!(
        "xtask: there is nothing to run yet: the ingest server (faultline serve) has not \
         been built. `cargo xtask test` runs the test suites."
    );
    Ok(ExitCode::FAILURE)
}
