//! Secrets in owner-only files.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// A secret that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The file could not be read or created.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What the file holds (`admin token`, `reply key`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Others than its owner may read or write the file.
    #[error(
        "{what} {} is readable or writable by others (mode {mode:04o}): run `chmod 600 {}`; a secret others can read is not a secret",
        path.display(),
        path.display()
    )]
    Exposed {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file belongs to another user: whoever owns it can change it.
    #[error(
        "{what} {} belongs to uid {owner}, not to this process's uid {uid}: a key must be this user's own file",
        path.display()
    )]
    NotOwned {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
    /// The file is not a regular file (a directory, a device, a FIFO).
    #[error("{what} {} is not a regular file", path.display())]
    NotAFile {
        /// What the file should hold.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The file exists already: new secrets never overwrite one.
    #[error("{what} {} exists already; remove it first or pick another path", path.display())]
    Exists {
        /// What the file would hold.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The file's contents are not what `what` looks like.
    #[error("{what} {}: {reason}", path.display())]
    Malformed {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong (never the contents).
        reason: String,
    },
}

/// The most a secret file may hold: secrets are short, and a path given
/// by mistake (a log, a device) must not be read whole.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Reads the secret in `path`, trimmed of surrounding whitespace, if only
/// its owner can read and write it.
///
/// # Errors
///
/// [`SecretError::Exposed`] when group or others have any permission,
/// [`SecretError::NotAFile`], [`SecretError::Malformed`] for a file over
/// 64 KiB or not UTF-8, [`SecretError::Io`].
pub fn read_secret(path: &Path, what: &'static str) -> Result<String, SecretError> {
    let io = |source| SecretError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(SecretError::NotAFile {
            what,
            path: path.to_path_buf(),
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Exposed {
            what,
            path: path.to_path_buf(),
            mode,
        });
    }
    let malformed = |reason: String| SecretError::Malformed {
        what,
        path: path.to_path_buf(),
        reason,
    };
    if metadata.len() > MAX_SECRET_BYTES {
        return Err(malformed(format!(
            "{} bytes, more than a secret file holds",
            metadata.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8(bytes).map_err(|_| malformed("not UTF-8 text".to_string()))?;
    Ok(text.trim().to_string())
}

/// As [`read_secret`], and the file must belong to this process's
/// effective user: for a key only this installation made and uses (a file
/// another user owns, even mode 0600, is theirs to rewrite).
///
/// # Errors
///
/// As [`read_secret`], and [`SecretError::NotOwned`].
pub fn read_own_secret(path: &Path, what: &'static str) -> Result<String, SecretError> {
    let io = |source| SecretError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let owner = std::fs::symlink_metadata(path).map_err(io)?.uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if owner != uid {
        return Err(SecretError::NotOwned {
            what,
            path: path.to_path_buf(),
            owner,
            uid,
        });
    }
    read_secret(path, what)
}

/// Writes `contents` to a new file at `path`, created with mode 0600.
///
/// # Errors
///
/// [`SecretError::Exists`] when `path` exists; [`SecretError::Io`].
pub fn write_secret(path: &Path, what: &'static str, contents: &str) -> Result<(), SecretError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                SecretError::Exists {
                    what,
                    path: path.to_path_buf(),
                }
            } else {
                SecretError::Io {
                    what,
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    let io = |source| SecretError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    // The umask cannot widen 0600, but a file system may ignore the mode.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn secrets_are_written_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_secret(&path, "test secret", "hunter2").unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_secret(&path, "test secret").unwrap(), "hunter2");
        let again = write_secret(&path, "test secret", "other").unwrap_err();
        assert!(matches!(again, SecretError::Exists { .. }), "{again}");
        assert_eq!(read_secret(&path, "test secret").unwrap(), "hunter2");
    }

    #[test]
    fn a_secret_others_can_read_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_secret(&path, "test secret", "hunter2").unwrap();
        for mode in [0o640, 0o604, 0o620, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = read_secret(&path, "test secret").unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, SecretError::Exposed { .. }), "{message}");
            assert!(message.contains("chmod 600"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        let error = read_secret(dir.path(), "test secret").unwrap_err();
        assert!(matches!(error, SecretError::NotAFile { .. }), "{error}");
    }
}
