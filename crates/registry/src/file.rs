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

/// Creates `dir` and its missing parents with mode 0700 (an existing
/// directory keeps its mode).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Warns when others than its owner may write `dir`: whoever can write
/// the registry can change what it serves.
pub(crate) fn warn_if_shared(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(dir) {
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:04o}"),
                "the registry directory is writable by others than its owner: they can change which modules are stored; `chmod 700` it"
            );
        }
    }
}
