//! Ring files on disk: created under a temporary name and renamed into place
//! (so no server ever maps a half-written or truncated file), opened only if
//! the path names a regular file and not a symlink, and removed by their
//! creator only while the path still names the same file.

use std::fs::{File, Metadata, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// A freshly created file under a temporary name next to its final path;
/// deleted on drop unless [`NewFile::publish`] renamed it into place.
pub(crate) struct NewFile {
    pub(crate) file: File,
    temp: Option<PathBuf>,
}

impl NewFile {
    /// Creates an empty file of `len` zero bytes beside `path`.
    pub(crate) fn create(path: &Path, len: u64) -> Result<NewFile, ShmError> {
        let name = path.file_name().ok_or_else(|| ShmError::Io {
            action: "creating",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        })?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".{}.{}.{nanos}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = path.with_file_name(temp_name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|source| io_error("creating", &temp, source))?;
        let new = NewFile {
            file,
            temp: Some(temp),
        };
        new.file
            .set_len(len)
            .map_err(|source| io_error("sizing", path, source))?;
        Ok(new)
    }

    /// Renames the file to `path`, replacing whatever was there (a server
    /// still mapping an old ring keeps its old file), and says which file it
    /// is now.
    pub(crate) fn publish(mut self, path: &Path) -> Result<Identity, ShmError> {
        let meta = self
            .file
            .metadata()
            .map_err(|source| io_error("inspecting", path, source))?;
        if let Some(temp) = &self.temp {
            std::fs::rename(temp, path).map_err(|source| io_error("renaming", path, source))?;
        }
        self.temp = None;
        Ok(Identity::of(&meta))
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            // Best effort cleanup of a creation that failed half way.
            let _ = std::fs::remove_file(temp);
        }
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
