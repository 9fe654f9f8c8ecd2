//! Where log lines go: a thread of their own writes them to stderr, so that a request never
//! waits on the terminal, a pipe or a log collector, and never makes a system call to log.
//! A request formats its line (a few hundred bytes, [`crate::logfmt`]) and appends it to a
//! shared buffer; the log thread takes the whole buffer every [`FLUSH_EVERY`] and writes it
//! in one go.
//!
//! | the buffer | a new line |
//! |---|---|
//! | below [`QUEUE_BYTES`] | appended; written in order within [`FLUSH_EVERY`] |
//! | full (stderr slower than the lines come, for long) | dropped and counted: requests are never held up by logging; the count is written to stderr when the server stops |
//! | at shutdown | what the buffer holds is written before the thread ends |
//!
//! A request's only cost beyond formatting is a short lock and a copy. The first version
//! handed each line to the thread through a channel, which woke the thread (a system call)
//! for nearly every request: logging cost a fifth of the plans route's throughput.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes of lines the buffer holds before new ones are dropped (about 25,000 request lines).
pub const QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// How often the log thread writes what has been logged.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);

struct Shared {
    buffer: Mutex<Vec<u8>>,
    capacity: usize,
    dropped: AtomicUsize,
    stopping: AtomicBool,
}

/// The writer `tracing-subscriber` formats into: each line is appended to the buffer.
#[derive(Clone)]
pub struct LogQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogQueue").finish_non_exhaustive()
    }
}

impl Write for LogQueue {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        // A panic elsewhere while holding the lock left whole lines: go on with them.
        let mut buffer = self.shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
        if buffer.len() + line.len() > self.shared.capacity {
            drop(buffer);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            buffer.extend_from_slice(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = LogQueue;

    fn make_writer(&'a self) -> LogQueue {
        self.clone()
    }
}

/// The log thread: keep it until the last line is logged; dropping it writes what is
/// buffered and ends the thread.
#[derive(Debug)]
pub struct LogWriter {
    queue: LogQueue,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Lines dropped because the buffer was full.
    pub fn dropped(&self) -> usize {
        self.queue.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.queue.shared.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// A writer that queues lines for stderr, and its thread.
pub fn stderr() -> (LogQueue, LogWriter) {
    to(std::io::stderr(), QUEUE_BYTES)
}

/// A writer that queues lines for `out`, holding at most `capacity` bytes, and its thread.
pub fn to<W: Write + Send + 'static>(out: W, capacity: usize) -> (LogQueue, LogWriter) {
    let queue = LogQueue::new(capacity);
    let shared = queue.shared.clone();
    let thread = std::thread::Builder::new()
        .name("oytel-log".into())
        .spawn(move || write_until_stopped(&shared, out))
        .ok();
    (queue.clone(), LogWriter { queue, thread })
}

impl LogQueue {
    fn new(capacity: usize) -> LogQueue {
        LogQueue {
            shared: Arc::new(Shared {
                buffer: Mutex::new(Vec::with_capacity(64 * 1024)),
                capacity,
                dropped: AtomicUsize::new(0),
                stopping: AtomicBool::new(false),
            }),
        }
    }
}

/// The log thread: every [`FLUSH_EVERY`] (or when told to stop), takes what is buffered and
/// writes it.
fn write_until_stopped<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::with_capacity(64 * 1024);
    loop {
        let stopping = shared.stopping.load(Ordering::Acquire);
        {
            let mut buffer = shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut *buffer, &mut spare);
        }
        if !spare.is_empty() {
            // Nowhere to report a failed write to: the lines are lost, as on a closed terminal.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if stopping {
            return;
        }
        std::thread::park_timeout(FLUSH_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the log thread wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn lines_come_out_in_order_and_all_of_them_by_the_time_the_thread_is_dropped() {
        let out = Captured::default();
        let (mut queue, thread) = to(out.clone(), 1 << 20);
        for n in 0..1000 {
            queue.write_all(format!("line {n}\n").as_bytes()).unwrap();
        }
        drop(thread);
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        assert!(lines
            .iter()
            .enumerate()
            .all(|(n, l)| *l == format!("line {n}")));
    }

    #[test]
    fn a_full_buffer_drops_lines_whole_and_counts_them_without_waiting() {
        // Room for two lines of ten bytes, and no thread to empty it.
        let mut queue = LogQueue::new(20);
        for n in 0..5 {
            queue
                .write_all(format!("line {n:04}\n").as_bytes())
                .unwrap();
        }
        let kept = queue.shared.buffer.lock().unwrap().clone();
        assert_eq!(String::from_utf8(kept).unwrap(), "line 0000\nline 0001\n");
        assert_eq!(queue.shared.dropped.load(Ordering::Relaxed), 3);
    }
}
