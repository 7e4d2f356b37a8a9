//! The collector output: records to a local `faultline forward --listen` over a Unix socket
//! (or TCP), for services of several processes that should hold one connection to the server
//! between them.
//!
//! # Protocol
//!
//! Every frame is a 4-byte big-endian length, then that many bytes: a type byte and its
//! payload. The length counts the type byte and is at most [`MAX_FRAME`].
//!
//! | Type | From | Payload |
//! | --- | --- | --- |
//! | 1 `HELLO` | worker | JSON `{"service", "worker", "pid", "heartbeat_ms"}`, first frame |
//! | 2 `BATCH` | worker | 8-byte big-endian sequence number, then NDJSON record lines |
//! | 3 `HEARTBEAT` | worker | none: sent when nothing else was for `heartbeat` |
//! | 4 `BYE` | worker | none: a clean stop, the last frame |
//! | 129 `ACK` | collector | 8-byte sequence number: every batch up to it is safe |
//!
//! A batch stays in the worker's memory until the collector acknowledges it (after its own
//! output took it: acknowledged by the server or in its spool). On a broken connection the
//! worker reconnects with backoff and sends every unacknowledged batch again, oldest first,
//! so a collector restart loses nothing; a batch sent twice carries the same record ids,
//! which the server stores once.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use crate::capture::mono_now;
use crate::error::InitError;
use crate::output::destination::Destination;
use crate::stats::{Counters, Reason};

/// The largest frame either side accepts (16 MiB).
pub const MAX_FRAME: usize = 16 << 20;
/// Frame type: the worker's first frame, JSON `{"service", "worker", "pid", "heartbeat_ms"}`.
pub const HELLO: u8 = 1;
/// Frame type: an 8-byte big-endian sequence number, then NDJSON record lines.
pub const BATCH: u8 = 2;
/// Frame type: the worker is alive (sent when nothing else was for its heartbeat interval).
pub const HEARTBEAT: u8 = 3;
/// Frame type: a clean stop, the worker's last frame.
pub const BYE: u8 = 4;
/// Frame type (collector to worker): an 8-byte sequence number; every batch up to it is safe.
pub const ACK: u8 = 129;

/// A sealed batch's most bytes (a batch also ends at the output's `batch_size` records).
const BATCH_BYTES: usize = 256 << 10;
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where the collector listens: `unix:PATH` or `tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectorAddr {
    /// A Unix socket path.
    Unix(std::path::PathBuf),
    /// A TCP address (`127.0.0.1:7070`).
    Tcp(String),
}

impl std::str::FromStr for CollectorAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<CollectorAddr, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a socket path (unix:/run/app/faultline.sock)".into());
            }
            Ok(CollectorAddr::Unix(p.into()))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            if a.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!(
                    "tcp:{a}: expected tcp:HOST:PORT (tcp:127.0.0.1:7070)"
                ));
            }
            Ok(CollectorAddr::Tcp(a.to_owned()))
        } else {
            Err(format!(
                "{s:?}: expected unix:PATH or tcp:HOST:PORT (unix:/run/app/faultline.sock)"
            ))
        }
    }
}

impl std::fmt::Display for CollectorAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CollectorAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            CollectorAddr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Settings of the collector output ([`Output::unix`](crate::Output::unix)).
///
/// ```
/// use faultline_logger::UnixConfig;
/// use std::time::Duration;
///
/// let config = UnixConfig::new("unix:/run/orders/faultline.sock")?
///     .worker("orders-worker-3")
///     .heartbeat(Duration::from_secs(5));
/// # Ok::<(), faultline_logger::InitError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UnixConfig {
    addr: CollectorAddr,
    worker: Option<String>,
    heartbeat: Duration,
    max_unacked_bytes: usize,
}

impl UnixConfig {
    /// The collector at `addr`: `unix:PATH` or `tcp:HOST:PORT`.
    pub fn new(addr: &str) -> Result<UnixConfig, InitError> {
        Ok(UnixConfig {
            addr: addr
                .parse()
                .map_err(|e| InitError::Invalid(format!("collector address: {e}")))?,
            worker: None,
            heartbeat: Duration::from_secs(5),
            max_unacked_bytes: 64 << 20,
        })
    }

    /// This process's name at the collector (default `{service}-{pid}`): what its
    /// `worker_stopped` and `worker_absent` records name.
    pub fn worker(mut self, name: impl Into<String>) -> UnixConfig {
        self.worker = Some(name.into());
        self
    }

    /// How often a heartbeat frame goes when nothing else did (default 5 s). The collector
    /// reports the worker absent after three intervals of silence.
    pub fn heartbeat(mut self, every: Duration) -> UnixConfig {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// How many bytes of batches may wait for the collector's acknowledgement (default
    /// 64 MiB); past it the oldest are dropped and counted in `Dropped::failed`.
    pub fn max_unacked_bytes(mut self, bytes: usize) -> UnixConfig {
        self.max_unacked_bytes = bytes;
        self
    }
}

enum Stream {
    #[cfg(unix)]
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn connect(addr: &CollectorAddr) -> io::Result<Stream> {
        match addr {
            #[cfg(unix)]
            CollectorAddr::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
            #[cfg(not(unix))]
            CollectorAddr::Unix(_) => Err(io::ErrorKind::Unsupported.into()),
            CollectorAddr::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }

    fn try_clone(&self) -> io::Result<Stream> {
        match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
        }
    }

    fn set_write_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(Some(t)),
            Stream::Tcp(s) => s.set_write_timeout(Some(t)),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one frame: the length, `kind`, then `parts` one after the other.
pub fn write_frame(w: &mut impl Write, kind: u8, parts: &[&[u8]]) -> io::Result<()> {
    let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let len32 = u32::try_from(len).map_err(|_| io::Error::other("frame too large"))?;
    let mut head = [0u8; 5];
    head[..4].copy_from_slice(&len32.to_be_bytes());
    head[4] = kind;
    w.write_all(&head)?;
    for p in parts {
        w.write_all(p)?;
    }
    Ok(())
}

/// Reads one frame's type and payload (at most [`MAX_FRAME`] bytes, checked before
/// allocating). `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(head) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes (1 to {MAX_FRAME} allowed)"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let kind = body.remove(0);
    Ok(Some((kind, body)))
}

struct Batch {
    seq: u64,
    bytes: Vec<u8>,
    records: u64,
    oldest: Option<u64>,
}

/// One connection: the write half, and what its reader thread saw.
struct Conn {
    stream: Stream,
    acked: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    /// Index into `unacked` of the next batch to send on this connection.
    next: usize,
    last_sent: Instant,
}

pub(crate) struct UnixOutput {
    config: UnixConfig,
    hello: Vec<u8>,
    buf: Vec<u8>,
    records: u64,
    oldest: Option<u64>,
    first_at: Option<Instant>,
    batch_size: usize,
    linger: Duration,
    next_seq: u64,
    unacked: VecDeque<Batch>,
    unacked_bytes: usize,
    conn: Option<Conn>,
    retry_at: Instant,
    backoff: Duration,
    counters: Arc<Counters>,
}

impl UnixOutput {
    pub(crate) fn open(
        config: UnixConfig,
        service: &str,
        batch_size: usize,
        linger: Duration,
        counters: Arc<Counters>,
    ) -> Result<UnixOutput, InitError> {
        let pid = std::process::id();
        let worker = config
            .worker
            .clone()
            .unwrap_or_else(|| format!("{service}-{pid}"));
        let hello = serde_json::json!({
            "service": service,
            "worker": worker,
            "pid": pid,
            "heartbeat_ms": config.heartbeat.as_millis() as u64,
        })
        .to_string()
        .into_bytes();
        let mut out = UnixOutput {
            config,
            hello,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            records: 0,
            oldest: None,
            first_at: None,
            batch_size,
            linger,
            next_seq: 1,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            conn: None,
            retry_at: Instant::now(),
            backoff: BACKOFF_MIN,
            counters,
        };
        // Connect now when the collector is there; a missing one is retried, not an error.
        out.connect();
        Ok(out)
    }

    fn seal(&mut self) {
        if self.records == 0 {
            return;
        }
        let bytes = std::mem::replace(&mut self.buf, Vec::with_capacity(BATCH_BYTES + 4096));
        self.unacked_bytes += bytes.len();
        self.unacked.push_back(Batch {
            seq: self.next_seq,
            bytes,
            records: self.records,
            oldest: self.oldest.take(),
        });
        self.next_seq += 1;
        self.records = 0;
        self.first_at = None;
        // Bounded memory: the oldest batches go first (never one on the wire: index 0 may be,
        // and is kept while anything else can go).
        while self.unacked_bytes > self.config.max_unacked_bytes && self.unacked.len() > 1 {
            if let Some(b) = self.unacked.pop_front() {
                self.unacked_bytes -= b.bytes.len();
                self.counters.lose(Reason::Failed, b.records);
                self.counters.pending.fetch_sub(b.records, Relaxed);
                if let Some(c) = &mut self.conn {
                    c.next = c.next.saturating_sub(1);
                }
            }
        }
    }

    fn connect(&mut self) {
        if self.conn.is_some() || Instant::now() < self.retry_at {
            return;
        }
        let attempt = (|| {
            let mut stream = Stream::connect(&self.config.addr)?;
            stream.set_write_timeout(Duration::from_secs(5))?;
            write_frame(&mut stream, HELLO, &[&self.hello])?;
            let mut reader = stream.try_clone()?;
            let acked = Arc::new(AtomicU64::new(0));
            let dead = Arc::new(AtomicBool::new(false));
            let (a, d) = (acked.clone(), dead.clone());
            std::thread::Builder::new()
                .name("faultline-unix-acks".into())
                .spawn(move || {
                    crate::thread::mark_worker_thread();
                    loop {
                        match read_frame(&mut reader) {
                            Ok(Some((ACK, p))) if p.len() == 8 => {
                                let mut n = [0u8; 8];
                                n.copy_from_slice(&p);
                                a.fetch_max(u64::from_be_bytes(n), Relaxed);
                            }
                            Ok(Some(_)) => {}
                            Ok(None) | Err(_) => break,
                        }
                    }
                    d.store(true, Relaxed);
                })?;
            Ok::<_, io::Error>(Conn {
                stream,
                acked,
                dead,
                next: 0,
                last_sent: Instant::now(),
            })
        })();
        match attempt {
            Ok(c) => {
                self.conn = Some(c);
                self.backoff = BACKOFF_MIN;
            }
            Err(e) => {
                self.counters
                    .error(format!("collector {}: {e}", self.config.addr));
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    fn drop_conn(&mut self, why: &str) {
        if let Some(c) = self.conn.take() {
            c.stream.shutdown();
            self.counters
                .error(format!("collector {}: {why}", self.config.addr));
            self.retry_at = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Takes acknowledgements, sends what is unsent, a heartbeat when due.
    fn pump(&mut self) {
        self.connect();
        let Some(c) = &mut self.conn else { return };
        let acked = c.acked.load(Relaxed);
        while self.unacked.front().is_some_and(|b| b.seq <= acked) {
            if let Some(b) = self.unacked.pop_front() {
                self.unacked_bytes -= b.bytes.len();
                self.counters.wrote(b.records, b.oldest, mono_now());
                self.counters.pending.fetch_sub(b.records, Relaxed);
                c.next = c.next.saturating_sub(1);
            }
        }
        if c.dead.load(Relaxed) {
            self.drop_conn("connection closed");
            return;
        }
        let mut failed = None;
        while let Some(b) = self.unacked.get(c.next) {
            let seq = b.seq.to_be_bytes();
            if let Err(e) = write_frame(&mut c.stream, BATCH, &[&seq, &b.bytes]) {
                failed = Some(e);
                break;
            }
            c.next += 1;
            c.last_sent = Instant::now();
        }
        if failed.is_none() && c.last_sent.elapsed() >= self.config.heartbeat {
            match write_frame(&mut c.stream, HEARTBEAT, &[]) {
                Ok(()) => c.last_sent = Instant::now(),
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            self.drop_conn(&format!("send failed: {e}"));
        }
    }
}

impl Destination for UnixOutput {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn commit(&mut self, _start: usize, mono: u64) {
        self.records += 1;
        self.oldest.get_or_insert(mono);
        self.first_at.get_or_insert_with(Instant::now);
        if self.buf.len() >= BATCH_BYTES || self.records >= self.batch_size as u64 {
            self.seal();
            self.pump();
        }
    }

    fn poll(&mut self, idle: bool) -> Option<Instant> {
        if idle || self.first_at.is_some_and(|t| t.elapsed() >= self.linger) {
            self.seal();
        }
        self.pump();
        let heartbeat = match &self.conn {
            Some(c) => c.last_sent + self.config.heartbeat,
            None => self.retry_at,
        };
        let soon = Instant::now() + Duration::from_millis(20);
        Some(if self.unacked.is_empty() && self.records == 0 {
            heartbeat
        } else {
            heartbeat.min(soon)
        })
    }

    fn flush(&mut self, deadline: Option<Instant>) -> bool {
        self.seal();
        loop {
            self.pump();
            if self.unacked.is_empty() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn close(&mut self, deadline: Option<Instant>) -> bool {
        let complete = self.flush(deadline);
        if !complete {
            let left: u64 = self.unacked.iter().map(|b| b.records).sum();
            self.counters.lose(Reason::Failed, left);
            self.counters.pending.fetch_sub(left, Relaxed);
            self.unacked.clear();
            self.unacked_bytes = 0;
        }
        if let Some(mut c) = self.conn.take() {
            // A clean stop: the collector writes this worker's last record. Only once
            // everything was acknowledged, so the collector's "stopped" comes last.
            if complete {
                let _ = write_frame(&mut c.stream, BYE, &[]);
                // Wait (briefly) for the collector to close, so the bye is read.
                let until = Instant::now() + Duration::from_secs(1);
                while !c.dead.load(Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            c.stream.shutdown();
        }
        complete
    }
}
