//! Python packages the test suites need, from PyPI with pip: `aiosmtpd`, the SMTP server
//! the alert tests deliver email to, and the OpenTelemetry SDK with its OTLP/HTTP exporter,
//! which the OTLP test logs through to the server, and the Sentry SDK (`sentry-sdk`) with
//! `brotli`, which the Sentry protocol test reports through (with brotli and, hiding it,
//! without). Versions are pinned exactly.

use std::process::Command;

use anyhow::{Result, bail};

use crate::cmd::{self, probe_cmd};

/// (import name, pip requirement).
const PACKAGES: [(&str, &str); 5] = [
    ("aiosmtpd", "aiosmtpd==1.4.6"),
    ("opentelemetry.sdk", "opentelemetry-sdk==1.45.2"),
    (
        "opentelemetry.exporter.otlp.proto.http",
        "opentelemetry-exporter-otlp-proto-http==1.45.2",
    ),
    ("sentry_sdk", "sentry-sdk==3.0.0"),
    ("brotli", "brotli==1.2.1"),
];

fn importable(module: &str) -> bool {
    probe_cmd("python3", &["-c", &format!("import {module}")]).is_some()
}

/// Installs the missing packages for the `python3` on `PATH`.
pub(crate) fn packages() -> Result<()> {
    if probe_cmd("python3", &["--version"]).is_none() {
        bail!(
            "python3 is needed (the alert tests run an aiosmtpd SMTP server, the OTLP test \
             the OpenTelemetry SDK): install Python 3.9 or newer"
        );
    }
    let missing: Vec<(&str, &str)> = PACKAGES
        .into_iter()
        .filter(|(module, _)| !importable(module))
        .collect();
    if missing.is_empty() {
        let names: Vec<&str> = PACKAGES.iter().map(|p| p.1).collect();
        println!("    ok       python packages {}", names.join(" "));
        return Ok(());
    }
    let requirements: Vec<&str> = missing.iter().map(|p| p.1).collect();
    println!("    install  python packages {}", requirements.join(" "));
    if probe_cmd("python3", &["-m", "pip", "--version"]).is_none() {
        bail!(
            "pip is missing for python3: install it (Debian: apt-get install python3-pip), \
             then run again"
        );
    }
    let pip = |extra: &[&str]| {
        let mut c = Command::new("python3");
        c.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(extra)
        .args(&requirements);
        cmd::run(&mut c)
    };
    // A distribution's own Python refuses global installs (PEP 668): then install for this
    // user, which touches none of the distribution's packages.
    if pip(&[]).is_err() {
        println!("    retrying in the user's site-packages");
        pip(&["--user", "--break-system-packages"])?;
    }
    for (module, requirement) in missing {
        if !importable(module) {
            bail!("{requirement} was installed but python3 cannot import {module}");
        }
    }
    Ok(())
}
