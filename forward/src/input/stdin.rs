//! Standard input: read on a thread of its own (so a pause can release held-back lines),
//! optionally copied to standard output unchanged (`--tee`), until end of file, or after a
//! stop signal until the input pauses.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use super::Splitter;
use crate::id::Ids;
use crate::pipeline::Pipeline;

/// Chunks in flight between the reader thread and the pipeline.
const CHUNKS: usize = 16;
/// After a stop signal, input is still taken until it pauses this long.
const DRAIN_PAUSE: Duration = Duration::from_millis(200);

/// Forwards standard input until it ends (or `stop` is set); `multiline_wait`: how long a
/// pause must last before a held-back line is sent without a traceback.
pub(crate) fn run(
    pipeline: &mut Pipeline,
    tee: bool,
    multiline_wait: Duration,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let chunks = spawn_reader(tee)?;
    let mut splitter = Splitter::at(0);
    let mut lines = Vec::new();
    let mut last_input = Instant::now();
    let mut stopping = false;
    loop {
        if !stopping && stop.load(Ordering::Relaxed) {
            // Ctrl-C in a terminal reaches the whole pipe: what the program wrote before it
            // stopped is still in the pipe. Take it, until the input ends or pauses.
            stopping = true;
        }
        let wait = if stopping {
            DRAIN_PAUSE
        } else {
            Duration::from_millis(100).min(multiline_wait)
        };
        match chunks.recv_timeout(wait) {
            Ok(Ok(chunk)) => {
                splitter.push(&chunk, &mut lines);
                pipeline.lines(&lines, Ids::Random);
                lines.clear();
                last_input = Instant::now();
            }
            Ok(Err(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) if stopping => break,
            Err(RecvTimeoutError::Timeout) => {
                if pipeline.holds() && last_input.elapsed() >= multiline_wait {
                    pipeline.release_held(Ids::Random);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    splitter.finish(&mut lines);
    pipeline.lines(&lines, Ids::Random);
    Ok(())
}

/// Reads standard input in chunks on a thread; the channel closes at end of file.
fn spawn_reader(tee: bool) -> std::io::Result<Receiver<std::io::Result<Vec<u8>>>> {
    let (tx, rx) = sync_channel(CHUNKS);
    std::thread::Builder::new()
        .name("forward-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut stdout = tee.then(std::io::stdout);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if let Some(out) = &mut stdout {
                    let mut lock = out.lock();
                    // A closed stdout (the next program in the pipe exited) ends the copy,
                    // not the forwarding.
                    if lock
                        .write_all(&buf[..n])
                        .and_then(|()| lock.flush())
                        .is_err()
                    {
                        drop(lock);
                        stdout = None;
                    }
                }
                if tx.send(Ok(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}
