//! [`Ring`]: one mapping of a ring's sealed memory file and the slot
//! protocol on it, Dmitry Vyukov's bounded MPMC queue with every word that
//! other processes write read through atomics or copied out before it is
//! looked at.

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use memmap2::MmapRaw;

use crate::ShmError;
use crate::layout::{
    FIXED_LEN, Geometry, HEADER_LEN, OFF_CONSUMER, OFF_PRODUCER, SLOT_CRC, SLOT_LEN, SLOT_PAYLOAD,
    SLOT_SEQ,
};
use crate::memfd;
use crate::rendezvous::{self, Identity, Listener, io_error, not_a_ring};
use crate::wait::Backoff;

/// How long [`Ring::open`] waits for the reader to hand its ring over.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// One mapping of a ring: the reader's (from [`Ring::create`]) or a
/// writer's (from [`Ring::open`] or [`Ring::from_fd`]). `Send + Sync`;
/// share it between threads.
pub struct Ring {
    map: MmapRaw,
    /// Validated at construction; `map.len() == geometry.file_len`.
    geometry: Geometry,
    /// The sealed memory file the mapping is of.
    fd: OwnedFd,
    path: PathBuf,
    /// The socket the ring was published at or received through, to tell
    /// whether the path still names it.
    identity: Option<Identity>,
    /// Set when this mapping created the ring: hands it to writers until
    /// dropped, then removes the socket.
    listener: Option<Listener>,
}

impl Ring {
    /// Creates a ring with `slots` slots (a power of two, at least 2) each
    /// carrying records of up to `max_record` bytes, and publishes it at
    /// `path`, replacing whatever was there. The reader (client) creates
    /// the ring; dropping this `Ring` stops publishing it and removes the
    /// socket.
    ///
    /// The ring lives in an anonymous memory file sealed against shrinking
    /// and growing (`memfd`, `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`),
    /// so no process, this one included, can make a mapping of it fault.
    /// `path` becomes a Unix socket of mode 0600 that hands the file's
    /// descriptor to each writer that connects; the file has no name.
    ///
    /// # Errors
    ///
    /// [`ShmError::InvalidGeometry`] for a slot count that is not a power of
    /// two in `2..=MAX_SLOTS`, a `max_record` over `MAX_RECORD_LIMIT` or a
    /// ring over `MAX_RING_BYTES`; [`ShmError::Io`] if the memory cannot be
    /// created, sealed or mapped or the socket cannot be published;
    /// [`ShmError::NotARing`] if `path` is too long for a socket address.
    pub fn create(path: &Path, slots: u32, max_record: u32) -> Result<Ring, ShmError> {
        let geometry = Geometry::new(slots, max_record)?;
        let fd = memfd::create_sealed(geometry.file_len as u64)
            .map_err(|source| io_error("creating shared memory for", path, source))?;
        // Mapping raw is safe; what makes using it sound is that every access
        // goes through raw pointers or atomics (see atomic_u64).
        let map =
            MmapRaw::map_raw(fd.as_raw_fd()).map_err(|source| io_error("mapping", path, source))?;
        let handed_out = fd
            .try_clone()
            .map_err(|source| io_error("duplicating", path, source))?;
        let mut ring = Ring::from_parts(map, geometry, fd, path)?;
        ring.initialise();
        // Published only once initialised: no writer sees a half-made ring.
        let listener = Listener::publish(path, handed_out)?;
        ring.identity = Some(listener.identity);
        ring.listener = Some(listener);
        Ok(ring)
    }

    /// Opens the ring published at `path` for writing (servers): connects
    /// to its socket, receives its memory file (waiting at most
    /// [`OPEN_TIMEOUT`]) and checks it as [`Ring::from_fd`] does.
    ///
    /// # Errors
    ///
    /// As [`Ring::open_within`].
    pub fn open(path: &Path) -> Result<Ring, ShmError> {
        Ring::open_within(path, OPEN_TIMEOUT)
    }

    /// [`Ring::open`], waiting at most `timeout` for the reader to hand
    /// the ring over.
    ///
    /// # Errors
    ///
    /// [`ShmError::Io`] if nothing listens at `path`, the reader sends
    /// nothing within `timeout` or the mapping fails;
    /// [`ShmError::NotARing`] if `path` is not a socket (a symlink, a
    /// file), the peer hands over no descriptor, or the descriptor fails
    /// any check of [`Ring::from_fd`].
    pub fn open_within(path: &Path, timeout: Duration) -> Result<Ring, ShmError> {
        let (fd, identity) = rendezvous::receive(path, timeout)?;
        let mut ring = Ring::from_fd(fd, path)?;
        ring.identity = Some(identity);
        Ok(ring)
    }

    /// Maps a ring's memory file received from another process; `origin`
    /// names where it came from in errors. The file must be sealed against
    /// shrinking (so the mapping can never fault), and its header is copied
    /// out and checked: magic, layout version, a power-of-two slot count
    /// within bounds, a slot size consistent with `max_record`, and a file
    /// length equal to what the header implies.
    ///
    /// # Errors
    ///
    /// [`ShmError::NotARing`] if the descriptor is not a memory file sealed
    /// with `F_SEAL_SHRINK` or fails any header check; [`ShmError::Io`] if
    /// it cannot be mapped.
    pub fn from_fd(fd: OwnedFd, origin: &Path) -> Result<Ring, ShmError> {
        let len = memfd::sealed_len(&fd).map_err(|reason| not_a_ring(origin, reason))?;
        if len < HEADER_LEN as u64 {
            return Err(not_a_ring(
                origin,
                format!("{len} bytes, shorter than the {HEADER_LEN}-byte header"),
            ));
        }
        if len > crate::layout::MAX_RING_BYTES {
            return Err(not_a_ring(origin, format!("{len} bytes, too large")));
        }
        // Only ever accessed through raw pointers and atomics (never `&[u8]`),
        // so concurrent writes by other processes are expected; the seal
        // checked above means no one can shrink the file under the mapping.
        let map = MmapRaw::map_raw(fd.as_raw_fd())
            .map_err(|source| io_error("mapping", origin, source))?;
        if map.len() as u64 != len || map.len() < FIXED_LEN {
            return Err(not_a_ring(origin, "file changed size while opening"));
        }
        let mut fixed = [0u8; FIXED_LEN];
        // SAFETY: the mapping holds at least FIXED_LEN bytes (checked above)
        // and `fixed` is a local array of that length; they cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(map.as_ptr(), fixed.as_mut_ptr(), FIXED_LEN);
        }
        let geometry = Geometry::decode_fixed(&fixed, map.len() as u64)
            .map_err(|reason| not_a_ring(origin, reason))?;
        Ring::from_parts(map, geometry, fd, origin)
    }

    /// Whether the path still names the socket this `Ring` was published at
    /// or received through. A writer caching rings by name checks it: a
    /// reader that went away and came back under the same name made a new
    /// ring.
    pub fn is_current(&self) -> bool {
        self.identity
            .is_some_and(|identity| identity.is_at(&self.path))
    }

    /// The sealed memory file behind the ring.
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Appends one record. Safe to call from any number of threads and
    /// processes at once. While the ring is full it waits (spinning, then
    /// sleeping in steps of at most 200 µs) for the reader to make room.
    ///
    /// # Errors
    ///
    /// [`ShmError::TooLarge`] if `record` is longer than
    /// [`max_record`](Ring::max_record); [`ShmError::Full`] if no slot came
    /// free within `timeout`; [`ShmError::Broken`] if the producer cursor
    /// and the slot under it disagree in a way no writer following the
    /// protocol can cause.
    pub fn push(&self, record: &[u8], timeout: Duration) -> Result<(), ShmError> {
        if record.len() > self.max_record() {
            return Err(ShmError::TooLarge {
                len: record.len(),
                max: self.max_record(),
            });
        }
        let crc = crc32fast::hash(record);
        let cursor = self.atomic_u64(OFF_PRODUCER);
        let mut wait = Backoff::new(timeout);
        let mut pos = cursor.load(Ordering::Relaxed);
        loop {
            let slot = self.geometry.slot_offset(pos);
            let seq = self.atomic_u64(slot + SLOT_SEQ).load(Ordering::Acquire);
            // Signed distance, so values wrapped or planted by another
            // process never panic or index out of range.
            let lead = seq.wrapping_sub(pos) as i64;
            if lead == 0 {
                match cursor.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        self.write_slot(slot, record, crc);
                        // Publish last: the reader's Acquire load of `seq`
                        // sees len, crc and payload.
                        self.atomic_u64(slot + SLOT_SEQ)
                            .store(pos.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(now) => {
                        if wait.expired() {
                            return Err(ShmError::Full {
                                waited: wait.elapsed(),
                            });
                        }
                        pos = now;
                    }
                }
            } else {
                // lead -slots or -slots + 1: the slot still holds last
                // lap's record, the ring is full. lead > 0: another
                // producer took `pos` and the cursor has moved on. Anything
                // else cannot happen in a ring only this protocol wrote.
                let now = cursor.load(Ordering::Relaxed);
                if lead < -i64::from(self.geometry.slots) || (lead > 0 && now == pos) {
                    return Err(self.broken("producer", pos, seq));
                }
                if lead < 0 {
                    if !wait.snooze() {
                        return Err(ShmError::Full {
                            waited: wait.elapsed(),
                        });
                    }
                    pos = cursor.load(Ordering::Relaxed);
                } else if wait.expired() {
                    return Err(ShmError::Full {
                        waited: wait.elapsed(),
                    });
                } else {
                    pos = now;
                }
            }
        }
    }

    /// Reads the next record into `out` (cleared first), waiting up to
    /// `timeout` for one to be published. Returns `Ok(false)` on timeout.
    ///
    /// Meant for one consumer at a time. Concurrent calls stay memory-safe
    /// (a slot is claimed on the consumer cursor before it is read), but
    /// one may see another's slot in flight and report the ring broken.
    ///
    /// # Errors
    ///
    /// [`ShmError::Corrupt`] if the published slot's length exceeds
    /// `max_record` or its payload fails the CRC-32 check; the slot is
    /// consumed, so the next call reads the following record.
    /// [`ShmError::Broken`] if the consumer cursor and the slot under it
    /// disagree in a way no writer following the protocol can cause (a
    /// cursor that jumped, a planted sequence number): the ring cannot be
    /// read any further.
    pub fn pop(&self, out: &mut Vec<u8>, timeout: Duration) -> Result<bool, ShmError> {
        out.clear();
        let cursor = self.atomic_u64(OFF_CONSUMER);
        let mut wait = Backoff::new(timeout);
        let mut pos = cursor.load(Ordering::Relaxed);
        loop {
            let slot = self.geometry.slot_offset(pos);
            let seq = self.atomic_u64(slot + SLOT_SEQ).load(Ordering::Acquire);
            let lead = seq.wrapping_sub(pos.wrapping_add(1)) as i64;
            if lead == 0 {
                match cursor.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let read = self.read_slot(slot, out);
                        // Hand the slot back to producers for the next lap
                        // only after the copy is complete.
                        let next_lap = pos.wrapping_add(u64::from(self.geometry.slots));
                        self.atomic_u64(slot + SLOT_SEQ)
                            .store(next_lap, Ordering::Release);
                        return read.map(|()| true).map_err(|reason| {
                            out.clear();
                            ShmError::Corrupt {
                                slot: self.geometry.slot_index(pos),
                                reason,
                            }
                        });
                    }
                    Err(now) => {
                        if wait.expired() {
                            return Ok(false);
                        }
                        pos = now;
                    }
                }
            } else {
                // lead -1: nothing published at `pos` yet (empty, or a
                // producer is mid-write). lead > 0: another consumer took
                // `pos` and the cursor has moved on. Anything else cannot
                // happen in a ring only this protocol wrote (and read by
                // one consumer at a time).
                let now = cursor.load(Ordering::Relaxed);
                if lead < -1 || (lead > 0 && now == pos) {
                    return Err(self.broken("consumer", pos, seq));
                }
                if lead < 0 {
                    if !wait.snooze() {
                        return Ok(false);
                    }
                    pos = cursor.load(Ordering::Relaxed);
                } else if wait.expired() {
                    return Ok(false);
                } else {
                    pos = now;
                }
            }
        }
    }

    /// Records claimed by producers and not yet taken by the reader,
    /// published or still being written. A reader that finds nothing to pop
    /// while this stays above zero is looking at a slot that never
    /// completes: a producer died mid-write, or a cursor was moved.
    pub fn pending(&self) -> u64 {
        let produced = self.atomic_u64(OFF_PRODUCER).load(Ordering::Relaxed);
        let consumed = self.atomic_u64(OFF_CONSUMER).load(Ordering::Relaxed);
        produced.wrapping_sub(consumed)
    }

    /// Number of slots: how many records can wait unread.
    pub fn capacity(&self) -> usize {
        self.geometry.slots as usize
    }

    /// Longest record, in bytes, that [`push`](Ring::push) accepts.
    pub fn max_record(&self) -> usize {
        self.geometry.max_record as usize
    }

    /// The path this ring was created or opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The error for a cursor and a slot sequence number that disagree.
    fn broken(&self, side: &str, pos: u64, seq: u64) -> ShmError {
        ShmError::Broken {
            reason: format!(
                "{side} cursor {pos} is on slot {} whose sequence number is {seq}: \
                 a cursor or a slot was overwritten",
                self.geometry.slot_index(pos)
            ),
        }
    }

    /// Wraps a mapping whose length has been checked against `geometry`.
    fn from_parts(
        map: MmapRaw,
        geometry: Geometry,
        fd: OwnedFd,
        path: &Path,
    ) -> Result<Ring, ShmError> {
        // Every offset computed later relies on this, and atomics on the
        // mapping being 8-aligned (mappings are page-aligned).
        if map.len() != geometry.file_len || map.as_ptr().align_offset(8) != 0 {
            return Err(not_a_ring(path, "mapping does not match the header"));
        }
        Ok(Ring {
            map,
            geometry,
            fd,
            path: path.to_path_buf(),
            identity: None,
            listener: None,
        })
    }

    /// Writes the header and gives slot `i` the sequence number `i`; the
    /// file is all zeros before, so both cursors start at 0.
    fn initialise(&mut self) {
        let fixed = self.geometry.encode_fixed();
        // SAFETY: the mapping holds at least HEADER_LEN >= FIXED_LEN bytes
        // (from_parts) and nothing else can see the file yet.
        unsafe {
            std::ptr::copy_nonoverlapping(fixed.as_ptr(), self.map.as_mut_ptr(), FIXED_LEN);
        }
        for i in 0..u64::from(self.geometry.slots) {
            let slot = self.geometry.slot_offset(i);
            self.atomic_u64(slot + SLOT_SEQ).store(i, Ordering::Relaxed);
        }
    }

    /// Fills a slot this producer has claimed (before it is published).
    fn write_slot(&self, slot: usize, record: &[u8], crc: u32) {
        // Lengths are at most max_record <= MAX_RECORD_LIMIT (checked in
        // push), so they fit u32.
        self.atomic_u32(slot + SLOT_LEN)
            .store(record.len() as u32, Ordering::Relaxed);
        self.atomic_u32(slot + SLOT_CRC)
            .store(crc, Ordering::Relaxed);
        let payload = self.payload_ptr(slot);
        // SAFETY: `payload` has room for max_record >= record.len() bytes
        // inside the mapping (payload_ptr), `record` is our own memory so
        // they cannot overlap, and the claimed slot is not read until `seq`
        // is published.
        unsafe {
            std::ptr::copy_nonoverlapping(record.as_ptr(), payload, record.len());
        }
    }

    /// Copies a published slot out into `out` and validates the copy.
    fn read_slot(&self, slot: usize, out: &mut Vec<u8>) -> Result<(), String> {
        let len = self.atomic_u32(slot + SLOT_LEN).load(Ordering::Relaxed);
        let crc = self.atomic_u32(slot + SLOT_CRC).load(Ordering::Relaxed);
        if len > self.geometry.max_record {
            return Err(format!(
                "length {len} exceeds max_record {}",
                self.geometry.max_record
            ));
        }
        let len = len as usize;
        out.reserve(len);
        // SAFETY: len <= max_record, so the source lies inside the slot's
        // payload (payload_ptr); `out` has capacity for `len` more bytes and
        // is our own memory. Only the copy in `out` is inspected afterwards,
        // never the mapping, so a writer racing us can only make the CRC
        // fail, not change what we validated.
        unsafe {
            std::ptr::copy_nonoverlapping(self.payload_ptr(slot), out.as_mut_ptr(), len);
            out.set_len(len);
        }
        let actual = crc32fast::hash(out);
        if actual != crc {
            return Err(format!(
                "checksum {actual:08x} of {len} bytes, slot says {crc:08x}"
            ));
        }
        Ok(())
    }

    /// The 8-byte atomic at `offset` in the mapping.
    fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= self.map.len());
        // SAFETY: callers pass only header cursor offsets or a slot's `seq`
        // offset from Geometry::slot_offset, which are 8-aligned and in
        // bounds since map.len() == geometry.file_len (from_parts); the
        // mapping is page-aligned and lives as long as `self`. All access
        // to this word, from any process, is atomic.
        unsafe { &*self.map.as_mut_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// The 4-byte atomic at `offset` in the mapping.
    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset.is_multiple_of(4) && offset + 4 <= self.map.len());
        // SAFETY: as for atomic_u64; slot `len` and `crc` offsets are
        // 4-aligned and inside the slot header.
        unsafe { &*self.map.as_mut_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// Start of a slot's payload: `max_record` bytes, all inside the mapping.
    fn payload_ptr(&self, slot: usize) -> *mut u8 {
        debug_assert!(slot + SLOT_PAYLOAD + self.geometry.max_record as usize <= self.map.len());
        // SAFETY: slot + slot_size <= file_len == map.len() and slot_size >=
        // SLOT_PAYLOAD + max_record (Geometry), so the offset is in bounds.
        unsafe { self.map.as_mut_ptr().add(slot + SLOT_PAYLOAD) }
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("path", &self.path)
            .field("capacity", &self.capacity())
            .field("max_record", &self.max_record())
            .field("created", &self.listener.is_some())
            .finish()
    }
}
