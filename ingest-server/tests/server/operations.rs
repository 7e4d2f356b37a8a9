//! Operations commands: `faultline validate` (every problem, exit 0/1) and
//! `faultline healthcheck` (the container's HEALTHCHECK).

use std::process::Command;

use crate::process::spawn_with;

fn faultline(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env_remove("FAULTLINE_CONFIG")
        .env_remove("BACKEND_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn validate_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        r#"
[[keys]]
name = "web"
kind = "public"
key = "pk_x"
services = ["web"]

[[keys]]
name = "backend"
kind = "secret"
key_env = "BACKEND_KEY"
services = ["api"]

[[keys]]
name = "ci"
kind = "secret"
key_file = "/nonexistent/ci.key"
services = ["Not A Service"]

[limits]
public_key_rate = { records_per_second = 0.0, burst = 0.0 }

[tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"
"#,
    )
    .unwrap();
    let (code, out) = faultline(&["validate", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "a public key needs origins",
        "service \"Not A Service\" is not a valid service name",
        "records_per_second of at least 1/86400",
        "keys[1].key_env: environment variable BACKEND_KEY is not set",
        "keys[2].key_file: cannot read /nonexistent/ci.key",
        "tls: cannot read certificate /nonexistent/cert.pem",
        "6 problems",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }

    // Syntax: the parser's message with the line.
    std::fs::write(&file, "[limits]\nmax_body_bytes = \"big\"\n").unwrap();
    let (code, out) = faultline(&["validate", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains("max_body_bytes") && out.contains("line 2"),
        "{out}"
    );

    // The shipped starting config is good once its key variable is set.
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/faultline.toml");
    let (code, out) = faultline(
        &["validate", "--config", deploy],
        &[("BACKEND_INGEST_KEY", "sk_from_env")],
    );
    assert_eq!((code, out.trim().ends_with(": ok")), (0, true), "{out}");
    let (code, out) = faultline(&["validate", "--config", deploy], &[]);
    assert_eq!(code, 1);
    assert!(out.contains("BACKEND_INGEST_KEY is not set"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_exits_0_for_a_ready_server_and_1_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_with(dir.path(), None, true, &[]);
    let url = format!("{}/readyz", p.base);
    assert_eq!(faultline(&["healthcheck", "--url", &url], &[]).0, 0);
    let port = p.base.rsplit(':').next().unwrap().to_owned();
    let listen = format!("0.0.0.0:{port}");
    assert_eq!(
        faultline(&["healthcheck"], &[("FAULTLINE_LISTEN", &listen)]).0,
        0,
        "the port from FAULTLINE_LISTEN"
    );
    assert!(p.terminate().success());
    let (code, out) = faultline(&["healthcheck", "--url", &url], &[]);
    assert_eq!(code, 1, "{out}");
}
