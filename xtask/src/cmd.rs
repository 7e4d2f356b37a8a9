//! Running commands: echoing what runs, capturing what must be parsed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The `cargo` that invoked us, so toolchain overrides carry through.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// A one-line description of a command, for logs.
pub(crate) fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `c` with inherited output; errors if it cannot start or exits non-zero.
pub(crate) fn run(c: &mut Command) -> Result<()> {
    println!("$ {}", describe(c));
    let status = c
        .status()
        .with_context(|| format!("could not start {}", describe(c)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(c));
    }
    Ok(())
}

/// Runs `c` as [`run`] does, but returns its stdout (stderr is inherited).
pub(crate) fn output(c: &mut Command) -> Result<Vec<u8>> {
    println!("$ {}", describe(c));
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {}", describe(c)))?;
    if !out.status.success() {
        bail!("{} failed ({})", describe(c), out.status);
    }
    Ok(out.stdout)
}

/// Runs `c`, streaming its stdout through while handing each line to `on_line`; stderr is
/// inherited. Returns whether it succeeded.
pub(crate) fn run_streaming(c: &mut Command, mut on_line: impl FnMut(&str)) -> Result<bool> {
    println!("$ {}", describe(c));
    let mut child = c
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", describe(c)))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            println!("{line}");
            on_line(&line);
        }
    }
    Ok(child.wait()?.success())
}

/// The trimmed stdout of `c`, or `None` if it cannot run or fails. Quiet: for probes.
pub(crate) fn probe(c: &mut Command) -> Option<String> {
    let out = c.stderr(Stdio::null()).stdin(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Shorthand for `probe(Command::new(program).args(args))`.
pub(crate) fn probe_cmd(program: &str, args: &[&str]) -> Option<String> {
    probe(Command::new(program).args(args))
}
