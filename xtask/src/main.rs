//! `cargo xtask`: provisioning and orchestration for the Faultline workspace.
//!
//! - `cargo xtask test`: provisions what the suites need (see `provision.rs`), then runs
//!   every suite in order (`suites.rs`), stops at the first failure, and ends with a
//!   `N passed, N failed` line.
//! - `cargo xtask run`: builds what the server needs and starts it on the embedded default.
//! - `cargo xtask bench`: runs a benchmark and records it in `docs/BENCHMARKS.md`.
//! - `cargo xtask fuzz`: runs the fuzz targets in `fuzz/` and minimizes their corpus.
//! - `cargo xtask layout`: no import circle between components (`layout.rs`).
//! - `cargo xtask provision`: only the provisioning step.
//! - `cargo xtask package`: only the npm package (`reporter-wasm/pkg`).
//! - `cargo xtask dist`: the release artifacts in `target/dist/` (`dist.rs`).

mod bench;
mod cmd;
mod dist;
mod fuzz;
mod layout;
mod postgres;
mod provision;
mod python;
mod report;
mod reporter;
mod run;
mod suites;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test        provision, then fmt, clippy, docs, every crate's tests, wasm checks
  run         build and start the server on its embedded default (extra args go to
              `faultline serve`, e.g. cargo xtask run --listen 127.0.0.1:9000)
  bench       run a benchmark and record it in docs/BENCHMARKS.md, then rebuild its
              summary; without a name, every suite in turn
              (cargo xtask bench ingest [--seconds N] [--connections N];
               postgres; crash; alerts [--firings N]; scaleout [--rounds N];
               reporter; logger)
  fuzz        run the fuzz targets on nightly, keep crashes in fuzz/regressions,
              minimize fuzz/corpus (cargo xtask fuzz [--time SECONDS] [target...];
              default 600 s each, every target)
  layout      check that no import circle joins files of different components
  provision   install what the tests need (idempotent)
  package     build the npm package faultline-reporter into reporter-wasm/pkg
  dist        the release artifacts in target/dist: a static x86_64-unknown-linux-musl
              binary (dashboard and migrations embedded), deploy/ files, SHA256SUMS
              (cargo xtask dist [--check] [--skip-www]; --check then runs the binary
               alone in an empty chroot, ingests and reads back; needs root)

options for test:
  --no-provision   skip provisioning (you installed everything yourself)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => suites::test(&args[1..]),
        Some("run") => run::run(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("layout") => layout::check().map(|()| ExitCode::SUCCESS),
        Some("provision") => provision::provision().map(|_| ExitCode::SUCCESS),
        Some("package") => reporter::build().map(|_| ExitCode::SUCCESS),
        Some("dist") => dist::dist(&args[1..]).map(|()| ExitCode::SUCCESS),
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
