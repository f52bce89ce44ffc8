//! The one error type of the ring: I/O, files that are not rings, bad names,
//! oversized records, back-pressure timeouts, corrupt slots and broken rings.

use std::path::PathBuf;
use std::time::Duration;

use crate::layout::GeometryError;

/// Everything that can go wrong creating, opening, writing or reading a ring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// A file-system or mapping call failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `"opening"`.
        action: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
    /// What was handed over is not a ring this build can use (not a socket,
    /// no descriptor, a memory file not sealed against shrinking, bad magic,
    /// layout version, geometry or size).
    #[error("{} is not a usable ring: {reason}", path.display())]
    NotARing {
        /// The file that was refused.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// A ring name that does not match `[A-Za-z0-9_-]{1,64}` (shown
    /// shortened if it is long).
    #[error("invalid ring name {0:?}: expected 1 to 64 of A-Z a-z 0-9 _ -")]
    BadName(String),
    /// `Ring::create` was asked for a slot count or record size it cannot
    /// lay out.
    #[error("invalid ring geometry: {0}")]
    InvalidGeometry(#[from] GeometryError),
    /// The record is longer than the ring's `max_record`.
    #[error("record of {len} bytes exceeds the ring's maximum of {max} bytes")]
    TooLarge {
        /// Length of the refused record.
        len: usize,
        /// The ring's `max_record`.
        max: usize,
    },
    /// The ring stayed full (the reader did not keep up) for the whole
    /// timeout.
    #[error("ring stayed full for {waited:?}")]
    Full {
        /// How long `push` waited before giving up.
        waited: Duration,
    },
    /// The cursors and slots are in a state the protocol cannot produce
    /// (a cursor that jumped, a planted sequence number, a slot that never
    /// completes): the ring cannot be used any further.
    #[error("ring is broken: {reason}")]
    Broken {
        /// What was found.
        reason: String,
    },
    /// A published slot failed validation; it has been consumed so the next
    /// `pop` reads the following record.
    #[error("corrupt record in slot {slot}: {reason}")]
    Corrupt {
        /// Index of the slot in the ring (`0..capacity`).
        slot: u32,
        /// Which check failed.
        reason: String,
    },
}
