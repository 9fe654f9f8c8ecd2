//! Where log lines go: a thread of their own writes them to stderr, so that a request never
//! waits on the terminal, a pipe or a log collector. A request formats its line (a few hundred
//! bytes, [`crate::logfmt`]) and hands it over through a bounded queue.
//!
//! | the queue | a new line |
//! |---|---|
//! | below [`QUEUE_LINES`] | queued; written in order |
//! | full (stderr slower than the lines come, for long) | dropped and counted: requests are never held up by logging; the count is written to stderr when the server stops |
//! | at shutdown | the queued lines are written, for up to about a second (then the rest is lost) |
//!
//! The thread writes what the queue holds in one go: lines collect in a buffer while more are
//! queued and go out in one `write` when the queue is empty (or the buffer full), so a busy
//! server makes a few large writes instead of one per request, and no line waits once the
//! queue is drained.

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

/// Lines the queue holds before new ones are dropped (about 25 MB of request lines).
pub const QUEUE_LINES: usize = 65_536;

/// Bytes gathered before a write while lines keep coming.
const WRITE_BYTES: usize = 64 * 1024;

/// The writing thread: keep it until the last line is logged; dropping it writes what is
/// queued.
#[derive(Debug)]
pub struct LogWriter {
    _guard: WorkerGuard,
    dropped: ErrorCounter,
}

impl LogWriter {
    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> usize {
        self.dropped.dropped_lines()
    }
}

/// A writer for `tracing-subscriber` that queues lines for stderr, and its thread.
pub fn stderr() -> (NonBlocking, LogWriter) {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("oytel-log")
        .finish(std::io::BufWriter::with_capacity(
            WRITE_BYTES,
            std::io::stderr(),
        ));
    let dropped = writer.error_counter();
    (
        writer,
        LogWriter {
            _guard: guard,
            dropped,
        },
    )
}
