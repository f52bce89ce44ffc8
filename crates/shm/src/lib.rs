//! Shared-memory verdict ring: servers (any number of processes and
//! threads) push verdict records into a sealed memory file that one client
//! process on the same host pops them from.
//!
//! The reader creates the ring with [`Ring::create`], usually at
//! `ring_path(&ring_dir(), name)` ([`ring_path`], [`ring_dir`]): the ring
//! itself is an anonymous `memfd` sealed against any change of size, and
//! the path becomes a Unix socket (mode 0600) that hands its descriptor to
//! writers (`SCM_RIGHTS`). Servers attach with [`Ring::open`] and
//! [`Ring::push`]; the reader drains with [`Ring::pop`].
//! The ring has a fixed number of slots whatever the number of records: a
//! full ring makes producers wait (back-pressure) up to their timeout.
//!
//! ```no_run
//! # fn main() -> Result<(), hotwasm_shm::ShmError> {
//! use std::time::Duration;
//! use hotwasm_shm::{Ring, ring_dir, ring_path};
//!
//! let path = ring_path(&ring_dir(), "verdicts-42")?;
//! let reader = Ring::create(&path, 1024, 512)?;        // client
//! let writer = Ring::open(&path)?;                     // a server
//! writer.push(b"verdict", Duration::from_secs(1))?;
//! let mut record = Vec::new();
//! assert!(reader.pop(&mut record, Duration::from_millis(10))?);
//! assert_eq!(record, b"verdict");
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `error.rs`: [`ShmError`].
//! - `layout.rs`: the file format, [`GeometryError`], and the checks on untrusted headers.
//! - `ring.rs`: [`Ring`] and the slot protocol.
//! - `wait.rs`: spin, yield, then sleep ≤ 200 µs until a deadline.
//! - `memfd.rs`: the sealed memory file, and the seal check on one received.
//! - `rendezvous.rs`: the reader's socket (published 0600 by rename) that
//!   hands the file to writers, and the writer's side of it.
//! - `name.rs`: [`ring_dir`], [`ring_path`] and name validation.
//!
//! The memory file: a 256-byte header, then `slots` slots. Header: magic
//! `HWRING01` (bytes 0..8), then little-endian `u32`s layout version (8),
//! slot count (12), slot size (16) and `max_record` (20); the producer
//! cursor (`AtomicU64`) at 64 and the consumer cursor at 128, each alone on
//! its cache line. Slot: `seq: AtomicU64` (0), `len: u32` (8), `crc32: u32`
//! (12, CRC-32 of the payload), payload (16..16 + `max_record`), the whole
//! rounded up to 64 bytes.
//!
//! # Protocol
//!
//! Dmitry Vyukov's bounded MPMC queue. Slot `i` starts with `seq = i`. A
//! producer at cursor `pos` whose slot has `seq == pos` claims it by CAS on
//! the producer cursor, writes `len`, `crc32` and payload, then publishes
//! with `seq = pos + 1` (Release); `seq < pos` means the ring is full. The
//! consumer at `pos` waits for `seq == pos + 1` (Acquire), claims it on the
//! consumer cursor, copies the record out, validates the copy (length, then
//! CRC), and frees the slot for the next lap with `seq = pos + slots`.
//!
//! The mapping is untrusted: header fields are copied out and checked
//! before use, offsets come only from validated geometry and cursors taken
//! modulo the slot count, and records are copied out before they are
//! checked; no `&[u8]` into the mapping is ever formed. A cursor and a
//! slot that disagree in a way the protocol cannot produce make `push` and
//! `pop` fail with [`ShmError::Broken`] instead of waiting.
//!
//! # Who can do what
//!
//! - Nobody can resize a ring: the memory file is sealed with
//!   `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL` before it is handed out,
//!   and `ftruncate` fails with `EPERM` for every holder (through
//!   `/proc/<pid>/fd` too). A writer refuses a descriptor without
//!   `F_SEAL_SHRINK`, so no peer can make a mapping fault (`SIGBUS`).
//! - Who can get a ring: whoever can connect to its socket, which is mode
//!   0600 (the reader's user, and root), in a ring directory whose own mode
//!   decides who can list, remove or replace sockets in it. The reader does
//!   not check the peer's credentials (`SO_PEERCRED`): a server of another
//!   user can write to a ring only if the operator loosens those modes.
//! - Whoever holds the descriptor can write anything into the ring; the
//!   protocol above makes that a [`ShmError::Corrupt`] record or a broken
//!   ring, never an out-of-bounds access. Linux only (`memfd` sealing).
//!
//! # Limitations
//!
//! - A producer that dies after claiming a slot but before publishing it
//!   stalls the reader at that slot for good: `pop` keeps returning
//!   `Ok(false)` at its timeout while [`Ring::pending`] stays above zero,
//!   and once the ring fills `push` returns [`ShmError::Full`]. Nothing is
//!   lost: the queue layer redelivers jobs whose verdicts were not
//!   acknowledged; the reader should report the ring and recreate it.
//! - Waiting is by polling (spin, yield, sleeps of at most 200 µs), not a
//!   futex: wake-up latency is a fraction of a millisecond at the cost of
//!   some idle wake-ups.

mod error;
mod layout;
mod memfd;
mod name;
mod rendezvous;
mod ring;
mod wait;

pub use error::ShmError;
pub use layout::{
    GeometryError, HEADER_LEN, LAYOUT_VERSION, MAGIC, MAX_RECORD_LIMIT, MAX_RING_BYTES, MAX_SLOTS,
    SLOT_HEADER_LEN,
};
pub use name::{MAX_NAME_LEN, RING_EXTENSION, SHM_DIR_ENV, ring_dir, ring_path};
pub use ring::{OPEN_TIMEOUT, Ring};
