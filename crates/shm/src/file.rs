//! Ring files on disk: created under a temporary name and renamed into place
//! (so no server ever maps a half-written or truncated file), opened only if
//! the path names a regular file and not a symlink, and removed by their
//! creator only while the path still names the same file.

use std::fs::{File, Metadata, OpenOptions};
use std::path::Path;

use crate::ShmError;

/// Which file a path named when we created or opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    #[cfg(unix)]
    pub(crate) fn of(meta: &Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt;
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_meta: &Metadata) -> Identity {
        Identity { dev: 0, ino: 0 }
    }

    /// Whether `path` names this very file and is not a symlink.
    pub(crate) fn is_at(self, path: &Path) -> bool {
        match std::fs::symlink_metadata(path) {
            Ok(meta) => meta.is_file() && Identity::of(&meta) == self,
            Err(_) => false,
        }
    }
}

/// A freshly created file under a temporary name next to its final path
/// (`tempfile`: a fresh random name, mode 0600, deleted on drop unless
/// [`NewFile::publish`] renamed it into place).
pub(crate) struct NewFile {
    pub(crate) file: tempfile::NamedTempFile,
}

impl NewFile {
    /// Creates an empty file of `len` zero bytes beside `path`.
    pub(crate) fn create(path: &Path, len: u64) -> Result<NewFile, ShmError> {
        let name = path.file_name().ok_or_else(|| ShmError::Io {
            action: "creating",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        })?;
        let dir = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let file = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|source| io_error("creating", path, source))?;
        file.as_file()
            .set_len(len)
            .map_err(|source| io_error("sizing", path, source))?;
        Ok(NewFile { file })
    }

    /// Renames the file to `path`, replacing whatever was there (a server
    /// still mapping an old ring keeps its old file), and says which file it
    /// is now.
    pub(crate) fn publish(self, path: &Path) -> Result<Identity, ShmError> {
        let meta = self
            .file
            .as_file()
            .metadata()
            .map_err(|source| io_error("inspecting", path, source))?;
        self.file
            .persist(path)
            .map_err(|e| io_error("renaming", path, e.error))?;
        Ok(Identity::of(&meta))
    }
}

/// Opens an existing ring file for reading and writing, refusing symlinks
/// and anything but a regular file; returns it with its length.
pub(crate) fn open_existing(path: &Path) -> Result<(File, u64), ShmError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| io_error("opening", path, source))?;
    let meta = file
        .metadata()
        .map_err(|source| io_error("inspecting", path, source))?;
    if !meta.is_file() {
        return Err(not_a_ring(path, "not a regular file"));
    }
    // The open followed any symlink; check afterwards that the path itself
    // is this regular file, which also catches a swap in between.
    if !Identity::of(&meta).is_at(path) {
        return Err(not_a_ring(path, "path is a symlink or was replaced"));
    }
    Ok((file, meta.len()))
}

/// Removes `path` if it still names the file `identity` (a newer ring
/// created at the same path is left alone). Best effort.
pub(crate) fn remove_if_same(path: &Path, identity: Identity) {
    if identity.is_at(path) {
        let _ = std::fs::remove_file(path);
    }
}

pub(crate) fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> ShmError {
    ShmError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn not_a_ring(path: &Path, reason: impl Into<String>) -> ShmError {
    ShmError::NotARing {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}
