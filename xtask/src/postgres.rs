//! A throwaway PostgreSQL cluster for the test suites: `initdb` into a fresh directory,
//! started on a free loopback port, stopped and deleted when the run ends (also when it fails).
//!
//! Tests read `FAULTLINE_TEST_DATABASE_URL` (a superuser URL; each test creates its own
//! database) and `FAULTLINE_TEST_PG_BIN` (the server's binaries, for tests that need a private
//! cluster they can stop and start, such as the outage tests).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// A running cluster; stopped and removed on drop.
pub(crate) struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    /// The superuser URL.
    pub(crate) url: String,
}

/// The newest installed PostgreSQL's `bin` directory (Debian keeps them versioned).
pub(crate) fn bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (no /usr/lib/postgresql)")?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (the server refuses root).
fn pg_command(bin: &Path, tool: &str) -> Command {
    let program = bin.join(tool);
    if cmd::probe_cmd("id", &["-u"]).as_deref() == Some("0") {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Cluster {
    /// Creates and starts a fresh cluster.
    pub(crate) fn start() -> Result<Cluster> {
        Cluster::start_with(&[])
    }

    /// [`Cluster::start`] with extra server options (`-c name=value`).
    pub(crate) fn start_with(settings: &[&str]) -> Result<Cluster> {
        let bin = bin_dir()?;
        // Under /tmp, not the work tree: a checkout in a 0700 directory (mktemp -d) cannot be
        // entered by the postgres user.
        let dir = std::env::temp_dir().join(format!("faultline-test-pg-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).ok();
        }
        std::fs::create_dir_all(&dir)?;
        if cmd::probe_cmd("id", &["-u"]).as_deref() == Some("0") {
            let owner = cmd::probe_cmd("id", &["-u", "postgres"])
                .and_then(|u| u.parse::<u32>().ok())
                .context("no postgres user (the postgresql package creates it)")?;
            std::os::unix::fs::chown(&dir, Some(owner), None)?;
        }
        let data = dir.join("data");
        let out = pg_command(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .context("could not run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 {}",
            dir.display(),
            settings.join(" ")
        );
        let status = pg_command(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output()
            .context("could not run pg_ctl")?;
        if !status.status.success() {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            bail!("PostgreSQL did not start: {log}");
        }
        Ok(Cluster {
            bin,
            dir,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }

    /// The environment the test suites read.
    pub(crate) fn env(&self) -> [(&'static str, String); 2] {
        [
            ("FAULTLINE_TEST_DATABASE_URL", self.url.clone()),
            ("FAULTLINE_TEST_PG_BIN", self.bin.display().to_string()),
        ]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
