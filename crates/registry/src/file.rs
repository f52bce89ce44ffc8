//! Atomic file replacement: after a crash, `path` holds the old bytes or
//! the new ones, never a mix.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path` (mode 0600), syncs it,
/// and renames it over `path` (`tempfile`'s `persist`). The temporary file
/// is removed if any step fails.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
