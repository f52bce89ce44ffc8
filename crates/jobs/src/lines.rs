//! Reading JSON Lines with a bound: a runaway line costs neither unbounded
//! memory nor the rest of the input. Shared by `hotwasm verify` (through
//! the worker's stream) and `hotwasm submit --input`.

use std::io::{self, BufRead};

use crate::JobLimits;

impl JobLimits {
    /// The longest line a job within these limits can take: its fields in
    /// hex (twice their bytes) plus room for the id and the JSON around
    /// them. A longer line cannot be a usable job.
    pub fn max_line_bytes(&self) -> usize {
        self.max_message_bytes
            .saturating_add(self.max_key_or_signature_bytes.saturating_mul(2))
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }
}

/// One line read by [`read_bounded_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRead {
    /// Bytes consumed from the input, newline included.
    pub bytes: u64,
    /// The line exceeded the bound; the buffer holds only its start.
    pub truncated: bool,
}

/// Reads one line into `buffer` (without the newline), keeping at most
/// `max` bytes and discarding the rest of a longer line. `None` at EOF.
/// Bytes are kept as they are: invalid UTF-8 is the caller's to judge.
///
/// # Errors
///
/// I/O errors of `input`.
pub fn read_bounded_line<R: BufRead>(
    input: &mut R,
    buffer: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<LineRead>> {
    buffer.clear();
    let mut bytes = 0u64;
    let mut truncated = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((bytes > 0).then_some(LineRead { bytes, truncated }));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], Some(at + 1)),
            None => (available, None),
        };
        let room = max.saturating_sub(buffer.len());
        if chunk.len() > room {
            truncated = true;
        }
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(available.len());
        input.consume(used);
        bytes += used as u64;
        if done.is_some() {
            return Ok(Some(LineRead { bytes, truncated }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_are_cut_and_the_rest_skipped() {
        let mut input = io::Cursor::new(b"short\nthis line is long\n\nlast".to_vec());
        let mut buffer = Vec::new();
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!(
            (buffer.as_slice(), read.truncated, read.bytes),
            (&b"short"[..], false, 6)
        );
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!(
            (buffer.as_slice(), read.truncated),
            (&b"this lin"[..], true)
        );
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!((buffer.as_slice(), read.truncated), (&b""[..], false));
        let read = read_bounded_line(&mut input, &mut buffer, 8)
            .expect("memory")
            .expect("a line");
        assert_eq!((buffer.as_slice(), read.bytes), (&b"last"[..], 4));
        assert!(
            read_bounded_line(&mut input, &mut buffer, 8)
                .expect("memory")
                .is_none()
        );
    }
}
