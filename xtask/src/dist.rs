//! `cargo xtask dist`: the release artifacts in `target/dist/`.
//!
//! - `faultline`: the server for `x86_64-unknown-linux-musl`, linked statically,
//!   with the dashboard (`www/dist`) and the PostgreSQL migrations embedded, so it runs with
//!   nothing else on the machine;
//! - `faultline.service`, `Dockerfile`, `compose.yaml`, `faultline.toml` and
//!   `faultline.env.example` from `deploy/` (the Dockerfile copies `target/dist/faultline`);
//! - `SHA256SUMS` of them all.
//!
//! The binary is built in its own target directory (`target/dist-build`), so a release
//! build for another target does not hold the lock the other builds wait on.
//!
//! `cargo xtask dist --check` builds the same and then proves the binary needs nothing:
//! it is started in an empty `chroot` holding only itself and a data directory, takes a
//! batch through `POST /logs/ingest` and gives it back from `GET /logs/recent`. The check
//! is not part of `cargo xtask test`: the musl release build takes minutes on its own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// The static target.
const TARGET: &str = "x86_64-unknown-linux-musl";

/// The files of `deploy/` shipped beside the binary.
const DEPLOY_FILES: [&str; 5] = [
    "faultline.service",
    "Dockerfile",
    "compose.yaml",
    "faultline.toml",
    "faultline.env.example",
];

/// `cargo xtask dist [--check] [--skip-www]`.
pub(crate) fn dist(args: &[String]) -> Result<()> {
    let check = args.iter().any(|a| a == "--check");
    let skip_www = args.iter().any(|a| a == "--skip-www");
    if let Some(other) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--check" | "--skip-www"))
    {
        bail!("dist: unknown option {other:?} (--check, --skip-www)");
    }
    let binary = build(skip_www)?;
    if check {
        chroot_check(&binary)?;
    }
    Ok(())
}

/// Builds everything into `target/dist/` and returns the binary's path there.
fn build(skip_www: bool) -> Result<PathBuf> {
    let root = cmd::root();
    if skip_www && root.join("www/dist/index.html").is_file() {
        println!("==> www/dist as it is (--skip-www)");
    } else {
        crate::reporter::build()?;
        crate::run::build_www()?;
    }
    let installed =
        cmd::probe_cmd("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|t| t.trim() == TARGET) {
        cmd::run(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    println!("==> build faultline for {TARGET} (release, static)");
    let mut cargo = cmd::cargo();
    cargo.args([
        "build",
        "--release",
        "--locked",
        "--package",
        "faultline-server",
        "--bin",
        "faultline",
        "--target",
        TARGET,
        "--target-dir",
        "target/dist-build",
    ]);
    // ring and mimalloc compile C: musl's gcc wrapper when the system has one (Debian's
    // musl-tools), else whatever `cc` the cc crate finds.
    if cmd::probe_cmd("musl-gcc", &["--version"]).is_some()
        || Path::new("/usr/bin/musl-gcc").is_file()
    {
        cargo.env("CC_x86_64_unknown_linux_musl", "musl-gcc");
    }
    cmd::run(&mut cargo)?;
    let built = root.join(format!("target/dist-build/{TARGET}/release/faultline"));
    let bytes = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    if let Some(interpreter) = interpreter(&bytes)? {
        bail!(
            "{} is dynamically linked (interpreter {interpreter}): not a static binary",
            built.display()
        );
    }

    let dist = root.join("target/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).with_context(|| format!("emptying {}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist)?;
    let binary = dist.join("faultline");
    std::fs::copy(&built, &binary)?;
    // The release profile keeps line tables (backtraces in development); the shipped binary
    // goes without them: 114 MB to about a fifth.
    cmd::run(Command::new("strip").arg(&binary))?;
    let size = std::fs::metadata(&binary)?.len();
    let mut shipped = vec![binary.clone()];
    for file in DEPLOY_FILES {
        let to = dist.join(file);
        std::fs::copy(root.join("deploy").join(file), &to)
            .with_context(|| format!("copying deploy/{file}"))?;
        shipped.push(to);
    }
    let mut sums = Command::new("sha256sum");
    sums.current_dir(&dist)
        .args(shipped.iter().filter_map(|p| p.file_name()));
    let listing = cmd::probe(&mut sums).context("sha256sum failed")?;
    std::fs::write(dist.join("SHA256SUMS"), listing + "\n")?;
    println!(
        "==> {} ({:.1} MB, static), deploy files and SHA256SUMS in {}",
        binary.display(),
        size as f64 / 1e6,
        dist.display()
    );
    Ok(binary)
}

/// The ELF program interpreter (`PT_INTERP`) the binary asks for, if any: a static binary
/// (static-pie included) has none.
fn interpreter(elf: &[u8]) -> Result<Option<String>> {
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        bail!("not a 64-bit ELF file");
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        bail!("ELF header cut short");
    };
    let phoff = usize::try_from(phoff)?;
    for i in 0..usize::from(count) {
        let at = phoff + i * usize::from(size);
        let kind = elf
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        const PT_INTERP: u32 = 3;
        if kind == Some(PT_INTERP) {
            let (Some(offset), Some(len)) = (u64_at(at + 8), u64_at(at + 32)) else {
                bail!("program header cut short");
            };
            let (offset, len) = (usize::try_from(offset)?, usize::try_from(len)?);
            let path = elf.get(offset..offset + len).unwrap_or_default();
            return Ok(Some(
                String::from_utf8_lossy(path)
                    .trim_end_matches('\0')
                    .to_owned(),
            ));
        }
    }
    Ok(None)
}

/// Starts the binary in a `chroot` holding only itself and `/data`, ingests a batch with
/// `curl` from outside and reads it back.
fn chroot_check(binary: &Path) -> Result<()> {
    println!(
        "==> chroot check: {} alone in an empty root",
        binary.display()
    );
    let jail = cmd::root().join("target/dist-chroot");
    if jail.exists() {
        std::fs::remove_dir_all(&jail)?;
    }
    std::fs::create_dir_all(jail.join("data"))?;
    std::fs::copy(binary, jail.join("faultline"))?;
    let (admin, key) = ("dist_check_admin_token", "sk_dist_check_key");
    // Found before the environment is cleared (the server gets only its own variables).
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .context("no chroot in /usr/sbin, /usr/bin or /sbin")?;
    let mut child = Command::new(chroot)
        .arg(&jail)
        .args([
            "/faultline",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/data",
        ])
        .env_clear()
        .env("FAULTLINE_ADMIN_TOKEN", admin)
        .env("FAULTLINE_INGEST_KEY", key)
        .env("FAULTLINE_USER_SALT", "dist-check-salt-0123456789abcdef")
        .env("FAULTLINE_HMAC_KEY", "dist-check-hmac-0123456789abcdef")
        .env("FAULTLINE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("chroot (needs root)")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("    | {line}");
            if let Some(rest) = line.split("listening on ").nth(1) {
                let base = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send(base);
            }
        }
    });
    let result = rx
        .recv_timeout(Duration::from_secs(60))
        .context("the binary did not print its address in the chroot")
        .and_then(|base| round_trip(&base, admin, key));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait()?;
    result?;
    if !status.success() {
        bail!("the binary in the chroot exited with {status} on SIGTERM");
    }
    let segments = std::fs::read_dir(jail.join("data"))?.count();
    println!("==> chroot check passed: ingested and read back; {segments} entries in /data");
    Ok(())
}

/// One batch in, the same batch out.
fn round_trip(base: &str, admin: &str, key: &str) -> Result<()> {
    let marker = format!("dist-check-{}", std::process::id());
    let now = cmd::probe_cmd("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).context("date")?;
    let batch = format!(
        r#"[{{"ts":"{now}","service":"dist","level":"ERROR","event":"check","message":"{marker}"}}]"#
    );
    let posted = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("authorization: Bearer {key}"),
        "-H",
        "content-type: application/json",
        "--data-binary",
        &batch,
        &format!("{base}/logs/ingest"),
    ])?;
    if !posted.contains("\"accepted\":1") {
        bail!("ingest through the chroot's server answered {posted}");
    }
    let recent = curl(&[
        "-H",
        &format!("authorization: Bearer {admin}"),
        &format!("{base}/logs/recent?service=dist"),
    ])?;
    if !recent.contains(&marker) {
        bail!("the record did not come back: {recent}");
    }
    let dashboard = curl(&[&format!("{base}/")])?;
    if !dashboard.contains("<html") && !dashboard.contains("<!doctype") {
        bail!("/ is not the embedded dashboard: {dashboard:.200}");
    }
    Ok(())
}

fn curl(args: &[&str]) -> Result<String> {
    let mut c = Command::new("curl");
    c.args(["-sS", "--fail-with-body", "--max-time", "10"])
        .args(args);
    let out = c.output().context("curl")?;
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("{} failed: {body}", cmd::describe(&c));
    }
    Ok(body)
}
