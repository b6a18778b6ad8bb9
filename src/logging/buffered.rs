//! The Lambda's JSON logs, buffered, for `scopegate invoke`.

use std::io::{BufWriter, Stderr, Write};
use std::sync::{Arc, Mutex};

/// The buffer every log line goes into, shared by the subscriber and the guard.
type Shared = Arc<Mutex<BufWriter<Stderr>>>;

/// [`init`](super::init), the lines buffered in memory and written to stderr in large writes,
/// until the returned guard is dropped (which writes the rest). For `scopegate invoke`, which
/// answers thousands of events in one process: a write call per decision line cost more than
/// the rest of an event's path but its signature check. The Lambda keeps
/// [`init`](super::init): a line there must reach the log even if the invocation then dies.
pub fn init_buffered() -> BufferedLogs {
    let buffer: Shared = Arc::new(Mutex::new(BufWriter::with_capacity(
        64 * 1024,
        std::io::stderr(),
    )));
    let shared = Arc::clone(&buffer);
    super::init_with(move || SharedWriter(Arc::clone(&shared)));
    BufferedLogs(buffer)
}

/// Writes what [`init_buffered`] holds when dropped.
#[must_use = "the logs are written when this is dropped"]
pub struct BufferedLogs(Shared);

impl Drop for BufferedLogs {
    fn drop(&mut self) {
        let _ = self.0.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

struct SharedWriter(Shared);

impl Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Lines stay buffered; the guard writes them.
        Ok(())
    }
}
