//! `scopegate invoke`: replay authorizer events offline.
//!
//! Reads one event, or a stream of events (NDJSON or concatenated JSON), and writes one line
//! of JSON per event: exactly what the Lambda returns, or for an error the
//! `{"errorType","errorMessage"}` object the Lambda runtime reports.

use std::io::{Read, Write};

use serde_json::value::RawValue;

use crate::authorizer::{error_json, Authorizer};
use crate::mapping::Mappings;

/// A failure reading or writing the streams (not an authorizer answer: those are output).
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The input could not be read or is not JSON.
    #[error("event {index}: {source}")]
    Input {
        /// 1-based position of the event in the input.
        index: usize,
        /// The parse or read error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Answers every event in `input`, one line each to `output`. Returns how many events were
/// answered.
///
/// The answers are written through a buffer, flushed at the end and before an error is
/// returned: a write call per answer cost as much as the rest of an event's path but its
/// signature check. The input is read whole first and parsed in place, which is faster than
/// parsing from a reader byte by byte.
///
/// # Errors
/// [`InvokeError`] when the input is not JSON or a stream fails; events before it were
/// answered, and their answers written.
pub async fn run<M: Mappings>(
    authorizer: &Authorizer<M>,
    mut input: impl Read,
    output: impl Write,
) -> Result<usize, InvokeError> {
    let mut output = std::io::BufWriter::with_capacity(64 * 1024, output);
    let mut buf = Vec::new();
    input.read_to_end(&mut buf)?;
    let stream = serde_json::Deserializer::from_slice(&buf).into_iter::<&RawValue>();
    let mut n = 0;
    for (i, event) in stream.enumerate() {
        let event = match event {
            Ok(event) => event,
            Err(source) => {
                output.flush()?;
                return Err(InvokeError::Input {
                    index: i + 1,
                    source,
                });
            }
        };
        let line = match authorizer.handle_json(event.get().as_bytes()).await {
            Ok(bytes) => bytes,
            Err(e) => error_json(&e).into_bytes(),
        };
        output.write_all(&line)?;
        output.write_all(b"\n")?;
        n += 1;
    }
    output.flush()?;
    Ok(n)
}
