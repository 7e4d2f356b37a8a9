//! `faultline forward` as users run it: a real Python program logging through `logging`
//! piped into the real binary, and files followed through kill -9, rotation and truncation,
//! all against a real `faultline serve`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::ADMIN;
use crate::process::{KEY, Proc, client, get, spawn_with};

/// A server that is killed if the test fails before stopping it.
struct Server(Option<Proc>);

impl Server {
    fn start(dir: &Path) -> Server {
        Server(Some(spawn_with(dir, None, true, &[])))
    }

    fn base(&self) -> &str {
        &self.0.as_ref().unwrap().base
    }

    /// Every record of `service` (at most 1,000), newest first.
    async fn records(&self, service: &str) -> Vec<Value> {
        let path = format!("/logs/recent?service={service}&limit=1000");
        let (status, body) = get(&client(), self.base(), ADMIN, &path).await;
        assert_eq!(status, 200, "{body}");
        body["records"].as_array().unwrap().clone()
    }

    /// Waits (at most 60 s) until `service` has at least `n` records; returns them.
    async fn wait_for(&self, service: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let records = self.records(service).await;
            if records.len() >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "{service}: {} of {n} records after 60 s",
                records.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.terminate();
        }
    }
}

/// A `faultline forward` child, killed if the test fails.
struct Forwarder(Child);

impl Forwarder {
    /// Sends SIGTERM and waits (at most 10 s) for the exit; its status and standard error
    /// (when it was piped).
    fn sigterm(&mut self) -> (std::process::ExitStatus, String) {
        let pid = self.0.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut err) = self.0.stderr.take() {
            std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
        }
        (status, stderr)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn forward_cmd(base: &str, service: &str) -> Command {
    forward_cmd_with_key(base, service, KEY)
}

fn forward_cmd_with_key(base: &str, service: &str, key: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.args([
        "forward",
        "--service",
        service,
        "--endpoint",
        base,
        "--key",
        key,
    ])
    .env("FAULTLINE_LOG", "warn");
    for var in [
        "FAULTLINE_INGEST_KEY",
        "FAULTLINE_ENDPOINT",
        "FAULTLINE_SERVICE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Follows `file` with short waits so tests run quickly.
fn follow(base: &str, service: &str, file: &Path) -> Forwarder {
    let child = forward_cmd(base, service)
        .arg("--file")
        .arg(file)
        .args(["--poll-interval", "50ms", "--rotate-wait", "300ms"])
        .args(["--multiline-wait", "200ms"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Forwarder(child)
}

/// Counts records by `meta.seq` (or message, for records without one).
fn by_seq(records: &[Value]) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for r in records {
        if let Some(seq) = r["meta"]["seq"].as_u64() {
            *seen.entry(seq).or_insert(0) += 1;
        }
    }
    seen
}

const PY_STDIN: &str = r#"
import json, logging, sys

class JsonFormatter(logging.Formatter):
    def format(self, record):
        out = {
            "asctime": self.formatTime(record),
            "created": record.created,
            "levelname": record.levelname,
            "name": record.name,
            "message": record.getMessage(),
        }
        for key in ("seq", "order_id"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out)

def charge(order):
    raise ValueError("card declined for order %d" % order)

structured = logging.StreamHandler(sys.stdout)
structured.setFormatter(JsonFormatter())
api = logging.getLogger("api.orders")
api.addHandler(structured)
api.setLevel(logging.INFO)
api.propagate = False

plain = logging.StreamHandler(sys.stdout)
plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
legacy = logging.getLogger("legacy")
legacy.addHandler(plain)
legacy.setLevel(logging.INFO)
legacy.propagate = False

for i in range(300):
    api.info("order placed", extra={"seq": i})
    if i == 100:
        try:
            charge(i)
        except ValueError:
            api.exception("charge failed", extra={"order_id": i})
    if i == 200:
        legacy.warning("legacy path used")
        try:
            {}["missing"]
        except KeyError:
            legacy.exception("lookup failed in plain text")
        legacy.info("after the traceback")
"#;

/// The issue's pipe: every line once, the JSON formatter's traceback and the plain-text
/// one each folded into the line that logged them, `--tee` passing the input through
/// unchanged, and a summary with exit 0.
#[tokio::test(flavor = "multi_thread")]
async fn python_logging_piped_into_forward_arrives_once_with_tracebacks_folded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let script = dir.path().join("app.py");
    std::fs::write(&script, PY_STDIN).unwrap();
    let (input, teed) = (dir.path().join("input.log"), dir.path().join("tee.out"));
    let mut forward = forward_cmd(server.base(), "pyapp");
    forward.arg("--tee");
    let pipeline = format!(
        "python3 {} | tee {} | {} > {}",
        script.display(),
        input.display(),
        shell_words(&forward),
        teed.display()
    );
    let out = Command::new("sh")
        .args(["-c", &pipeline])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("lost 0"), "{stderr}");
    let (teed, input) = (
        std::fs::read(&teed).unwrap(),
        std::fs::read(&input).unwrap(),
    );
    assert!(input.len() > 10_000, "{} bytes of input", input.len());
    assert!(teed == input, "--tee copies the input unchanged");

    // 300 orders, 1 JSON exception, 3 plain-text lines (one with its traceback).
    let records = server.wait_for("pyapp", 304).await;
    assert_eq!(records.len(), 304, "{records:#?}");
    let seqs = by_seq(&records);
    assert_eq!(seqs.len(), 300);
    assert!(seqs.values().all(|n| *n == 1), "each line once");
    assert!(
        records
            .iter()
            .all(|r| !r["message"].as_str().unwrap().starts_with("  File")),
        "no traceback line forwarded on its own"
    );

    let json_exc = records
        .iter()
        .find(|r| r["message"] == "charge failed")
        .unwrap();
    assert_eq!(json_exc["level"], "ERROR");
    assert_eq!(json_exc["event"], "api.orders");
    assert_eq!(json_exc["meta"]["order_id"], 100);
    assert_eq!(json_exc["meta"]["error_type"], "ValueError");
    let st = json_exc["meta"]["stack_text"].as_str().unwrap();
    assert!(st.starts_with("Traceback (most recent call last):"), "{st}");
    assert!(st.contains("in charge") && st.ends_with("ValueError: card declined for order 100"));

    let plain_exc = records
        .iter()
        .find(|r| {
            r["message"]
                .as_str()
                .unwrap()
                .ends_with("lookup failed in plain text")
        })
        .unwrap();
    assert_eq!(plain_exc["level"], "ERROR");
    assert_eq!(plain_exc["meta"]["error_type"], "KeyError");
    let st = plain_exc["meta"]["stack_text"].as_str().unwrap();
    assert!(
        st.starts_with("Traceback") && st.ends_with("KeyError: 'missing'"),
        "{st}"
    );
    let warning = records
        .iter()
        .find(|r| r["message"].as_str().unwrap().ends_with("legacy path used"))
        .unwrap();
    assert_eq!(warning["level"], "WARNING");
    assert!(warning["meta"].get("stack_text").is_none(), "{warning}");
    assert!(records.iter().any(|r| {
        r["message"]
            .as_str()
            .unwrap()
            .ends_with("after the traceback")
            && r["level"] == "INFO"
    }));
}

/// The command line of `cmd`, quoted for `sh`.
fn shell_words(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let env: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    let quote = |w: &String| format!("'{}'", w.replace('\'', r"'\''"));
    let mut line: Vec<String> = env.iter().map(quote).collect();
    line.extend(words.iter().map(quote));
    format!("env -u FAULTLINE_INGEST_KEY {}", line.join(" "))
}

const PY_FILE: &str = r#"
import json, logging, sys

class JsonFormatter(logging.Formatter):
    def format(self, record):
        out = {"created": record.created, "levelname": record.levelname,
               "name": record.name, "message": record.getMessage(), "seq": record.seq}
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out)

handler = logging.FileHandler(sys.argv[1])
handler.setFormatter(JsonFormatter())
log = logging.getLogger("worker")
log.addHandler(handler)
log.setLevel(logging.INFO)
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    group = "grp%04d" % (i // GROUP)
    if i % 1000 == 999:
        try:
            raise RuntimeError("job %d failed" % i)
        except RuntimeError:
            log.exception("job failed " + group, extra={"seq": i})
    else:
        log.info("job done " + group + " " + "x" * 100, extra={"seq": i})
"#;

/// Records per message group: `/logs/recent` returns at most 1,000, so a large file is
/// counted group by group (`q=grp0007`).
const GROUP: u64 = 900;

fn python_writes(script: &Path, file: &Path, from: u64, to: u64) {
    let status = Command::new("python3")
        .arg(script)
        .arg(file)
        .args([from.to_string(), to.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// How often each `meta.seq` in `0..total` is stored for `service`.
async fn seq_counts(server: &Server, service: &str, total: u64) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for g in 0..total.div_ceil(GROUP) {
        let path = format!("/logs/recent?service={service}&q=grp{g:04}&limit=1000");
        let (status, body) = get(&client(), server.base(), ADMIN, &path).await;
        assert_eq!(status, 200, "{body}");
        for (seq, n) in by_seq(body["records"].as_array().unwrap()) {
            *seen.entry(seq).or_insert(0) += n;
        }
    }
    seen
}

/// The issue's crash test: the forwarder is killed with SIGKILL mid-file and started
/// again; it resumes from its committed offset, so no line is skipped, and the lines it
/// sends again carry the ids they had, so none is stored twice.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_file_and_restart_skip_and_repeat_nothing() {
    const LINES: u64 = 12_000;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let script = dir.path().join("worker.py");
    std::fs::write(&script, PY_FILE.replace("GROUP", &GROUP.to_string())).unwrap();
    let log = dir.path().join("worker.log");
    python_writes(&script, &log, 0, LINES);
    let size = std::fs::metadata(&log).unwrap().len();

    // Killed after its first commit, while the rest of the file is still to come.
    let state_file = dir.path().join(".worker.log.faultline-state");
    let offset = || -> u64 {
        std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|s| s["offset"].as_u64())
            .unwrap_or(0)
    };
    let mut first = follow(server.base(), "crashy", &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    while offset() == 0 {
        assert!(Instant::now() < deadline, "no offset committed in 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let committed = offset();
    assert!(
        committed < size,
        "killed mid-file: {committed} of {size} bytes committed"
    );

    // More lines while it is down, then the restart.
    let total = LINES + 700;
    python_writes(&script, &log, LINES, total);
    let _second = follow(server.base(), "crashy", &log);
    // Lines are sent in order: once the last group is complete, count them all.
    let (last, in_last) = ((total - 1) / GROUP, total - (total - 1) / GROUP * GROUP);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let path = format!("/logs/recent?service=crashy&q=grp{last:04}&limit=1000");
        let (_, body) = get(&client(), server.base(), ADMIN, &path).await;
        if body["records"].as_array().unwrap().len() as u64 >= in_last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last lines did not arrive in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = seq_counts(&server, "crashy", total).await;
    assert_eq!(seen.len() as u64, total, "every line arrived");
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "stored twice: {repeated:?}");
    let (_, failed) = get(
        &client(),
        server.base(),
        ADMIN,
        "/logs/recent?service=crashy&level=ERROR&limit=1000",
    )
    .await;
    let failed = failed["records"].as_array().unwrap();
    assert_eq!(failed.len() as u64, total / 1000);
    assert!(
        failed
            .iter()
            .all(|r| r["meta"]["error_type"] == "RuntimeError"
                && r["meta"]["stack_text"]
                    .as_str()
                    .unwrap()
                    .contains("RuntimeError: job")),
        "{failed:#?}"
    );
}

fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn text_lines(range: std::ops::Range<u64>) -> impl Iterator<Item = String> {
    range.map(|i| format!("INFO line {i:05} of the rotation test"))
}

/// Counts records by the line number in their message.
fn by_line(records: &[Value]) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for r in records {
        let m = r["message"].as_str().unwrap();
        if let Some(n) = m
            .strip_prefix("line ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
        {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// The issue's rotation test: the file is renamed and a new one created under the
/// forwarder (with a late write to the old one before its writer reopens), then the new
/// file is truncated and written again: every line arrives once.
#[tokio::test(flavor = "multi_thread")]
async fn rotation_and_truncation_under_the_forwarder_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let log = dir.path().join("app.log");
    append(&log, text_lines(0..50));
    let _fwd = follow(server.base(), "rotating", &log);
    server.wait_for("rotating", 50).await;

    // Rotation: rename, a last write to the old file, the new file.
    append(&log, text_lines(50..60));
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&dir.path().join("app.log.1"), text_lines(60..65));
    append(&log, text_lines(65..120));
    server.wait_for("rotating", 120).await;

    // Truncation, then new lines longer than what was there.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, text_lines(200..300));
    server.wait_for("rotating", 220).await;
    // Anything sent twice would have arrived by now too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let records = server.records("rotating").await;
    let seen = by_line(&records);
    let want: Vec<u64> = (0..120).chain(200..300).collect();
    let mut got: Vec<u64> = seen.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, want);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    assert_eq!(records.len(), 220);
}

/// Runs `faultline forward` over `input` on standard input; exit code and standard error.
fn forward_stdin(cmd: &mut Command, input: &[u8]) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn numbered(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("WARN: queue {i} is slow\n"))
        .collect::<String>()
        .into_bytes()
}

/// With the server unreachable, records wait in the spool: the run still exits 0 (nothing
/// is lost), and the next run with the same spool delivers them, once.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_leaves_records_in_the_spool_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (code, stderr) = forward_stdin(
        forward_cmd(&closed, "spooly")
            .arg("--spool-dir")
            .arg(&spool)
            .args(["--flush-timeout", "5s"]),
        &numbered(50),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("spooled 50, lost 0"),
        "the summary says where the records are: {stderr}"
    );

    let server = Server::start(&dir.path().join("data"));
    let (code, stderr) = forward_stdin(
        forward_cmd(server.base(), "spooly")
            .arg("--spool-dir")
            .arg(&spool),
        b"",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let records = server.wait_for("spooly", 50).await;
    assert_eq!(records.len(), 50);
    assert!(records.iter().all(|r| r["level"] == "WARNING"));
    let mut messages: Vec<&str> = records
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    messages.sort_unstable();
    messages.dedup();
    assert_eq!(messages.len(), 50, "each once");
}

/// Records the server refuses are lost, and the exit code says so; a bad flag is an error
/// that says what to do, before anything is read.
#[tokio::test(flavor = "multi_thread")]
async fn refused_records_exit_non_zero_and_bad_flags_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let mut cmd = forward_cmd_with_key(server.base(), "refused", "sk_not_a_key");
    let (code, stderr) = forward_stdin(&mut cmd, &numbered(5));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("lost 5"), "{stderr}");
    assert!(
        stderr.contains("401"),
        "the server's answer is shown: {stderr}"
    );

    let (code, stderr) = forward_stdin(&mut forward_cmd(server.base(), "Not A Service"), b"x\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--service"), "{stderr}");
}

fn state_offset(state_file: &Path) -> Option<u64> {
    let state: Value = serde_json::from_slice(&std::fs::read(state_file).ok()?).ok()?;
    state["offset"].as_u64()
}

/// SIGTERM sends the line held back for a possible traceback, commits the offset at the end
/// of the file, and exits 0; a file rotated while the forwarder was stopped is finished
/// before the new one is read.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_commits_held_lines_and_a_rotation_while_stopped_is_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let log = dir.path().join("svc.log");
    let state_file = dir.path().join(".svc.log.faultline-state");
    append(&log, text_lines(0..9));
    append(&log, ["ERROR line 00009 last words".to_owned()]);
    let start = |multiline: &str| {
        let child = forward_cmd(server.base(), "stopping")
            .arg("--file")
            .arg(&log)
            .args(["--poll-interval", "50ms", "--rotate-wait", "300ms"])
            .args(["--multiline-wait", multiline])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Forwarder(child)
    };
    let mut fwd = start("60s");
    server.wait_for("stopping", 9).await;
    assert_eq!(server.records("stopping").await.len(), 9, "ERROR held");
    let (status, stderr) = fwd.sigterm();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("lost 0"), "{stderr}");
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(state_offset(&state_file), Some(size));
    let records = server.wait_for("stopping", 10).await;
    let last = records.iter().find(|r| r["level"] == "ERROR").unwrap();
    assert_eq!(last["message"], "line 00009 last words");

    // Stopped: the old file gets more lines, is rotated, and a new file starts.
    append(&log, text_lines(10..20));
    std::fs::rename(&log, dir.path().join("svc.log.1")).unwrap();
    append(&log, text_lines(20..30));
    let _fwd = start("200ms");
    server.wait_for("stopping", 30).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let records = server.records("stopping").await;
    let seen = by_line(&records);
    let mut got: Vec<u64> = seen.keys().copied().collect();
    got.sort_unstable();
    assert_eq!(got, (0..30).collect::<Vec<u64>>());
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}

/// SIGTERM while standard input stays open: what was written is still forwarded, and the
/// forwarder exits 0 without waiting for an end of input that never comes.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_on_an_open_pipe_forwards_what_was_written_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let mut fwd = Forwarder(
        forward_cmd(server.base(), "piped")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut input = fwd.0.stdin.take().unwrap();
    input.write_all(&numbered(20)).unwrap();
    input.flush().unwrap();
    server.wait_for("piped", 20).await;
    let (status, stderr) = fwd.sigterm();
    drop(input);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("20 records"), "{stderr}");
    assert_eq!(server.records("piped").await.len(), 20);
}
