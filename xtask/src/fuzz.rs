//! `cargo xtask fuzz [--time SECONDS] [target...]`: runs the fuzz targets in `fuzz/` one
//! after another, keeps what breaks them as regression inputs, and minimizes the corpus.
//!
//! Each target runs `cargo +nightly fuzz run <target> -- -max_total_time=SECONDS` (cargo-fuzz
//! is installed if missing). Crashes land in `fuzz/artifacts/<target>/` and are copied to
//! `fuzz/regressions/<target>/`, which the crates' `fuzz_regressions` tests replay on stable
//! with `fuzz/corpus/<target>/`. Afterwards `cargo fuzz cmin` shrinks each corpus to the
//! inputs that add coverage, and at most [`MAX_CORPUS_FILES`] of the smallest are kept so
//! the committed corpus stays small.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Every fuzz target, in the order they run.
const TARGETS: [&str; 5] = [
    "decode_batch",
    "stack_parse",
    "ndjson_framing",
    "inflate",
    "alert_config",
];
/// Seconds per target when `--time` is not given.
const DEFAULT_SECONDS: u64 = 600;
/// One input slower than this is reported as a hang: every check is linear.
const INPUT_TIMEOUT_SECONDS: u64 = 30;
/// Files kept per target after minimizing.
const MAX_CORPUS_FILES: usize = 300;

/// The `fuzz` command.
pub(crate) fn fuzz(args: &[String]) -> Result<ExitCode> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--time" => {
                let value = args.next().context("--time needs a number of seconds")?;
                seconds = value
                    .parse()
                    .with_context(|| format!("--time {value:?}: give whole seconds"))?;
            }
            t if TARGETS.contains(&t) => targets.push(t),
            other => bail!(
                "unknown fuzz target or option {other:?}: targets are {}",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    install_cargo_fuzz()?;
    let dir = cmd::root().join("fuzz");
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for target in &targets {
        let started = Instant::now();
        let mut run = nightly_fuzz(&dir);
        run.args(["run", target]);
        let regressions = dir.join("regressions").join(target);
        if regressions.is_dir() {
            // New inputs go to the first corpus directory; regressions only seed the run.
            run.arg(dir.join("corpus").join(target)).arg(&regressions);
        }
        run.args([
            "--",
            &format!("-max_total_time={seconds}"),
            &format!("-timeout={INPUT_TIMEOUT_SECONDS}"),
            "-print_final_stats=1",
        ]);
        let ok = cmd::run(&mut run).is_ok();
        let kept = keep_artifacts(&dir, target)?;
        if !ok {
            failed.push(*target);
        }
        report.push(format!(
            "{target}: {} s, {}, {kept} new regression input(s)",
            started.elapsed().as_secs(),
            if ok { "no failure" } else { "FAILED" }
        ));
    }
    for target in &targets {
        if let Err(e) = minimize(&dir, target) {
            eprintln!("fuzz: could not minimize the {target} corpus: {e:#}");
        }
    }
    println!("\nfuzz summary:");
    for line in &report {
        println!("  {line}");
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "fuzz: {} failed; the inputs are in fuzz/regressions/<target>/: fix the bug, \
             and the crate's fuzz_regressions test replays them",
            failed.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}

/// `cargo +nightly fuzz` in `fuzz/`, through the rustup proxy (the `cargo` running xtask
/// is a stable toolchain's and ignores `+nightly`), without the variables cargo set for us.
fn nightly_fuzz(dir: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(dir).args(["+nightly", "fuzz"]);
    for var in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
    ] {
        c.env_remove(var);
    }
    c
}

fn install_cargo_fuzz() -> Result<()> {
    if cmd::probe(Command::new("cargo").args(["fuzz", "--version"])).is_some() {
        return Ok(());
    }
    println!("    install  cargo-fuzz");
    cmd::run(cmd::cargo().args(["install", "cargo-fuzz", "--locked"]))
}

/// Copies what libFuzzer wrote to `artifacts/<target>/` (crashes, hangs, leaks) into
/// `regressions/<target>/`; returns how many were new.
fn keep_artifacts(dir: &Path, target: &str) -> Result<usize> {
    let artifacts = dir.join("artifacts").join(target);
    let Ok(entries) = std::fs::read_dir(&artifacts) else {
        return Ok(0);
    };
    let regressions = dir.join("regressions").join(target);
    let mut kept = 0;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        let to = regressions.join(name);
        if path.is_file() && !to.exists() {
            std::fs::create_dir_all(&regressions)
                .with_context(|| format!("creating {}", regressions.display()))?;
            std::fs::copy(&path, &to).with_context(|| format!("copying {}", path.display()))?;
            println!("    kept     {}", to.display());
            kept += 1;
        }
    }
    Ok(kept)
}

/// `cargo fuzz cmin`, then the [`MAX_CORPUS_FILES`] smallest inputs.
fn minimize(dir: &Path, target: &str) -> Result<()> {
    cmd::run(nightly_fuzz(dir).args(["cmin", target]))?;
    let corpus = dir.join("corpus").join(target);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&corpus).with_context(|| corpus.display().to_string())? {
        let entry = entry?;
        files.push((entry.metadata()?.len(), entry.path()));
    }
    files.sort();
    for (_, path) in files.iter().skip(MAX_CORPUS_FILES) {
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    println!(
        "    corpus   {target}: {} files",
        files.len().min(MAX_CORPUS_FILES)
    );
    Ok(())
}
