//! `--listen unix:PATH` (or `tcp:HOST:PORT`): the local collector. The worker processes of
//! a service log through `faultline-logger`'s `Output::unix` to this socket, and the
//! collector sends for all of them over one output to the server.
//!
//! The protocol is the logger's (`faultline_logger::collector`): length-prefixed frames,
//! `HELLO` first, then `BATCH`es (a sequence number and NDJSON records), `HEARTBEAT`s when
//! the worker has nothing to send, and `BYE` on a clean stop. The collector answers `ACK`
//! with a batch's sequence number once every record of it was acknowledged by the server or
//! spooled (a group commit: one flush of the output for every batch that arrived
//! meanwhile). A worker keeps what is not acknowledged and sends it again after a reconnect,
//! so a collector restart loses nothing; a batch sent twice carries the same record ids and
//! is stored once.
//!
//! Per worker the collector writes records of its own, in the worker's service, each with
//! `meta.worker` and `meta.pid`:
//!
//! - `worker_started` (INFO) when it says hello;
//! - `worker_heartbeat` (INFO) at most every `--worker-heartbeat` while it is connected, so
//!   an `absence` rule (`event = "worker_heartbeat"`, `group_by = "meta.worker"`) notices a
//!   worker that is gone however it went;
//! - `worker_absent` (ERROR) when it goes without a `BYE`: it sent nothing for three of its
//!   heartbeat intervals, or its connection broke (a killed process);
//! - `worker_stopped` (INFO) after its `BYE`, the last record of a clean stop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use faultline_logger::collector::{
    ACK, BATCH, BYE, CollectorAddr, HEARTBEAT, HELLO, read_frame, write_frame,
};
use faultline_schema::{Level, Record, Timestamp, Uuid, check_service};

use crate::pipeline::Pipeline;

/// Events in flight from the connections to the sending loop; a full queue holds the
/// connections' readers, and so the workers (they keep what is not acknowledged).
const EVENTS: usize = 256;
/// How long a group of batches may wait for its flush.
const GROUP_WAIT: Duration = Duration::from_millis(100);
/// How long one flush may take before the batches wait for the next (the output keeps
/// retrying; unacknowledged batches stay with their workers).
const SETTLE_STEP: Duration = Duration::from_secs(2);
/// How long a new connection has to say hello.
const HELLO_WAIT: Duration = Duration::from_secs(10);
/// A worker is absent after this many of its heartbeat intervals without a frame.
const SILENT_BEATS: u32 = 3;

/// The collector's settings.
#[derive(Debug, Clone)]
pub(crate) struct ListenConfig {
    pub(crate) addr: CollectorAddr,
    /// How often a connected worker gets a `worker_heartbeat` record.
    pub(crate) heartbeat_records: Duration,
}

/// A connection, Unix or TCP.
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn try_clone(&self) -> io::Result<Conn> {
        match self {
            Conn::Unix(s) => s.try_clone().map(Conn::Unix),
            Conn::Tcp(s) => s.try_clone().map(Conn::Tcp),
        }
    }

    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.set_read_timeout(Some(t)),
            Conn::Tcp(s) => s.set_read_timeout(Some(t)),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The listening socket; a Unix socket's file is removed when it is dropped.
enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Listener {
    fn bind(addr: &CollectorAddr) -> io::Result<Listener> {
        let listener = match addr {
            CollectorAddr::Unix(path) => {
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    // Only a socket is ever replaced: a path that names anything else is a
                    // mistake to report, not a file to delete.
                    if !meta.file_type().is_socket() {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("{} exists and is not a socket", path.display()),
                        ));
                    }
                    // A collector that is still running answers; a socket left by one that
                    // died does not, and is replaced.
                    if UnixStream::connect(path).is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("another collector listens on {}", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let l = UnixListener::bind(path)?;
                l.set_nonblocking(true)?;
                Listener::Unix(l, path.clone())
            }
            CollectorAddr::Tcp(a) => {
                let l = TcpListener::bind(a)?;
                l.set_nonblocking(true)?;
                Listener::Tcp(l)
            }
        };
        Ok(listener)
    }

    /// The next waiting connection, if any.
    fn accept(&self) -> io::Result<Option<Conn>> {
        let accepted = match self {
            Listener::Unix(l, _) => l.accept().and_then(|(s, _)| {
                s.set_nonblocking(false)?;
                Ok(Conn::Unix(s))
            }),
            Listener::Tcp(l) => l.accept().and_then(|(s, _)| {
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }),
        };
        match accepted {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where it listens, as the workers name it (a TCP port 0 resolved).
    fn local(&self) -> String {
        match self {
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp:?".into(), |a| format!("tcp:{a}")),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Who is on a connection, from its `HELLO`.
#[derive(Debug)]
struct Worker {
    service: String,
    name: String,
    pid: u64,
    heartbeat: Duration,
}

impl Worker {
    fn from_hello(payload: &[u8]) -> Result<Worker, String> {
        let v: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
        let text = |k: &str| {
            v.get(k)
                .and_then(|s| s.as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("{k}: missing or not a string"))
        };
        let service = text("service")?;
        check_service(&service).map_err(|e| format!("service: {e}"))?;
        let name = text("worker")?;
        if name.is_empty() || name.len() > 200 {
            return Err("worker: 1 to 200 bytes".into());
        }
        let number = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("{k}: missing or not a whole number"))
        };
        Ok(Worker {
            service,
            name,
            pid: number("pid")?,
            heartbeat: Duration::from_millis(number("heartbeat_ms")?.max(10)),
        })
    }

    /// One of the collector's own records about this worker.
    fn record(&self, level: Level, event: &str, message: String) -> Record {
        let mut r = Record::new(Timestamp::now(), &self.service, level, event, message);
        r.id = Some(Uuid::now_v7());
        r.meta.insert("worker".into(), self.name.clone().into());
        r.meta.insert("pid".into(), self.pid.into());
        r
    }
}

/// Where a batch's acknowledgement goes.
type AckTo = Arc<Mutex<Conn>>;

enum Event {
    Started(Arc<Worker>),
    Batch {
        worker: Arc<Worker>,
        seq: u64,
        records: Vec<Record>,
        bad: Vec<String>,
        ack: AckTo,
    },
    Alive(Arc<Worker>),
    Stopped(Arc<Worker>),
    Absent(Arc<Worker>, String),
}

/// The records of a batch's NDJSON payload, and a line per one that is not a valid record.
fn parse_batch(payload: &[u8]) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in payload
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        match Record::from_json(line) {
            Ok(r) => records.push(r),
            Err(e) => bad.push(format!("line {}: {e}", i + 1)),
        }
    }
    (records, bad)
}

/// One worker's connection, on its own thread, until it closes or the collector stops.
fn serve(
    mut conn: Conn,
    ack: AckTo,
    events: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    alive_every: Duration,
) {
    let worker = match conn
        .set_read_timeout(HELLO_WAIT)
        .and_then(|()| read_frame(&mut conn))
    {
        Ok(Some((HELLO, payload))) => match Worker::from_hello(&payload) {
            Ok(w) => Arc::new(w),
            Err(e) => {
                eprintln!("faultline forward: a worker's hello was refused: {e}");
                return;
            }
        },
        Ok(Some((kind, _))) => {
            eprintln!("faultline forward: a connection began with frame type {kind}, not hello");
            return;
        }
        Ok(None) | Err(_) => return,
    };
    let silence = worker.heartbeat * SILENT_BEATS;
    if conn.set_read_timeout(silence).is_err()
        || events.send(Event::Started(worker.clone())).is_err()
    {
        return;
    }
    let mut alive_at = Instant::now();
    let ended = loop {
        let frame = read_frame(&mut conn);
        if stop.load(Ordering::Relaxed) {
            // The collector is stopping (and closed this connection): not the worker's doing.
            return;
        }
        let event = match frame {
            Ok(Some((BATCH, p))) if p.len() >= 8 => {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&p[..8]);
                let (records, bad) = parse_batch(&p[8..]);
                Some(Event::Batch {
                    worker: worker.clone(),
                    seq: u64::from_be_bytes(seq),
                    records,
                    bad,
                    ack: ack.clone(),
                })
            }
            Ok(Some((HEARTBEAT, _))) => None,
            Ok(Some((BYE, _))) => break Event::Stopped(worker.clone()),
            Ok(Some((kind, p))) => {
                let why = format!(
                    "it sent a frame the collector does not know (type {kind}, {} bytes)",
                    p.len()
                );
                break Event::Absent(worker.clone(), why);
            }
            Ok(None) => {
                let why = "its connection closed without a goodbye".to_owned();
                break Event::Absent(worker.clone(), why);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let why = format!("it sent nothing for {} ms", silence.as_millis());
                break Event::Absent(worker.clone(), why);
            }
            Err(e) => break Event::Absent(worker.clone(), format!("its connection failed: {e}")),
        };
        if let Some(event) = event
            && events.send(event).is_err()
        {
            return;
        }
        // Any frame shows the worker alive; a record says so at most every `alive_every`.
        if alive_at.elapsed() >= alive_every {
            alive_at = Instant::now();
            if events.send(Event::Alive(worker.clone())).is_err() {
                return;
            }
        }
    };
    let _ = events.send(ended);
    conn.shutdown();
}

/// Batches sent to the output and not yet acknowledged to their workers.
#[derive(Default)]
struct Unacked {
    batches: Vec<(AckTo, u64)>,
    since: Option<Instant>,
}

impl Unacked {
    fn push(&mut self, to: AckTo, seq: u64) {
        self.batches.push((to, seq));
        self.since.get_or_insert_with(Instant::now);
    }

    /// Flushes the output; when everything was acknowledged or spooled, acknowledges every
    /// batch to its worker (a worker gone meanwhile sends them again on its next connection).
    fn settle(&mut self, pipeline: &mut Pipeline) {
        if self.batches.is_empty() || !pipeline.settle(SETTLE_STEP) {
            return;
        }
        for (to, seq) in self.batches.drain(..) {
            if let Ok(mut c) = to.lock() {
                let _ = write_frame(&mut *c, ACK, &[&seq.to_be_bytes()]);
            }
        }
        self.since = None;
    }
}

/// Runs the collector until `stop` is set. Errors when it cannot listen.
pub(crate) fn run(
    config: &ListenConfig,
    pipeline: &mut Pipeline,
    stop: &Arc<AtomicBool>,
) -> io::Result<()> {
    let listener = Listener::bind(&config.addr)
        .map_err(|e| io::Error::new(e.kind(), format!("--listen {}: {e}", config.addr)))?;
    eprintln!("faultline forward: collecting on {}", listener.local());
    let (tx, rx) = sync_channel(EVENTS);
    // Every open connection, to close at the end (each is held by its thread).
    let mut conns: Vec<Weak<Mutex<Conn>>> = Vec::new();
    let mut unacked = Unacked::default();
    while !stop.load(Ordering::Relaxed) {
        loop {
            match listener.accept() {
                Ok(Some(conn)) => {
                    let ack = match conn.try_clone() {
                        Ok(c) => Arc::new(Mutex::new(c)),
                        Err(e) => {
                            eprintln!("faultline forward: cannot serve a worker: {e}");
                            continue;
                        }
                    };
                    conns.retain(|c| c.strong_count() > 0);
                    conns.push(Arc::downgrade(&ack));
                    let (tx, stop, every) = (tx.clone(), stop.clone(), config.heartbeat_records);
                    let spawned = std::thread::Builder::new()
                        .name("faultline-collector-conn".into())
                        .spawn(move || serve(conn, ack, tx, stop, every));
                    if let Err(e) = spawned {
                        eprintln!("faultline forward: cannot serve a worker: {e}");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("faultline forward: accepting a worker: {e}");
                    break;
                }
            }
        }
        let idle = take_events(&rx, pipeline, &mut unacked);
        if unacked
            .since
            .is_some_and(|t| idle || t.elapsed() >= GROUP_WAIT)
        {
            unacked.settle(pipeline);
        }
    }
    // Stopping: take what already arrived, acknowledge what the output took, and close every
    // connection; the workers send the rest to the next collector.
    drop(listener);
    while let Ok(event) = rx.try_recv() {
        handle(event, pipeline, &mut unacked);
    }
    unacked.settle(pipeline);
    for c in conns.iter().filter_map(Weak::upgrade) {
        if let Ok(c) = c.lock() {
            c.shutdown();
        }
    }
    Ok(())
}

/// Handles the events waiting (or that come within a short wait); whether none came.
fn take_events(rx: &Receiver<Event>, pipeline: &mut Pipeline, unacked: &mut Unacked) -> bool {
    match rx.recv_timeout(Duration::from_millis(20)) {
        Ok(event) => handle(event, pipeline, unacked),
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return true,
    }
    for _ in 0..EVENTS {
        match rx.try_recv() {
            Ok(event) => handle(event, pipeline, unacked),
            Err(_) => break,
        }
    }
    false
}

fn handle(event: Event, pipeline: &mut Pipeline, unacked: &mut Unacked) {
    let record = match event {
        Event::Batch {
            worker,
            seq,
            records,
            bad,
            ack,
        } => {
            if let Some(first) = bad.first() {
                eprintln!(
                    "faultline forward: worker {} sent {} records that are not valid (skipped); {first}",
                    worker.name,
                    bad.len()
                );
                pipeline.summary.invalid += bad.len() as u64;
            }
            for r in records {
                pipeline.record(r);
            }
            unacked.push(ack, seq);
            return;
        }
        Event::Started(w) => {
            let message = format!("worker {} started (pid {})", w.name, w.pid);
            let mut r = w.record(Level::Info, "worker_started", message);
            let beat = u64::try_from(w.heartbeat.as_millis()).unwrap_or(u64::MAX);
            r.meta.insert("heartbeat_ms".into(), beat.into());
            r
        }
        Event::Alive(w) => {
            let message = format!("worker {} is alive", w.name);
            w.record(Level::Info, "worker_heartbeat", message)
        }
        Event::Stopped(w) => {
            let message = format!("worker {} stopped (pid {})", w.name, w.pid);
            w.record(Level::Info, "worker_stopped", message)
        }
        Event::Absent(w, why) => {
            let message = format!("worker {} (pid {}) is gone: {why}", w.name, w.pid);
            let mut r = w.record(Level::Error, "worker_absent", message);
            r.meta.insert("reason".into(), why.into());
            r
        }
    };
    pipeline.record(record);
}
