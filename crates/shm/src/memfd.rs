//! The ring's memory: an anonymous `memfd` sealed so that no holder of it,
//! its creator included, can shrink or grow it. A mapping of a file that can
//! never shrink can never fault (`SIGBUS`), whatever another process does;
//! this is how Wayland and PipeWire share buffers with untrusted peers.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};

/// The seals every ring carries: size fixed for good (`SEAL` forbids
/// adding or changing seals afterwards; seals are never removed).
pub(crate) const RING_SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// A new memory file of `len` zero bytes, sealed against any change of size.
pub(crate) fn create_sealed(len: u64) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(
        "hotwasm-ring",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    rustix::fs::ftruncate(&fd, len)?;
    rustix::fs::fcntl_add_seals(&fd, RING_SEALS)?;
    Ok(fd)
}

/// The length of a memory file handed over by another process, if it is
/// one that can never shrink; otherwise why it is refused.
pub(crate) fn sealed_len(fd: impl AsFd) -> Result<u64, String> {
    let seals = rustix::fs::fcntl_get_seals(&fd)
        .map_err(|e| format!("not a sealable memory file ({e})"))?;
    if !seals.contains(SealFlags::SHRINK) {
        return Err("not sealed against shrinking (F_SEAL_SHRINK)".into());
    }
    let stat = rustix::fs::fstat(&fd).map_err(|e| format!("fstat: {e}"))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err("not a regular memory file".into());
    }
    u64::try_from(stat.st_size).map_err(|_| "negative size".into())
}
