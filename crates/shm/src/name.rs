//! Where rings are published and what they may be called: a ring name arrives from
//! outside (a job in a queue), so it is checked to be a plain file-name stem
//! that cannot leave the ring directory.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ShmError;

/// Environment variable naming the directory rings live in.
pub const SHM_DIR_ENV: &str = "HOTWASM_SHM_DIR";
/// Extension of a ring's socket: `<dir>/<name>.ring`.
pub const RING_EXTENSION: &str = "ring";
/// Longest ring name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The directory rings live in: `$HOTWASM_SHM_DIR` if set and not empty,
/// else `/dev/shm` if it is a directory this process can create files in,
/// else [`std::env::temp_dir`].
pub fn ring_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(SHM_DIR_ENV).filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if is_writable_dir(shm) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// The path of the ring called `name` in `dir`: `<dir>/<name>.ring`.
///
/// # Errors
///
/// [`ShmError::BadName`] unless `name` matches `[A-Za-z0-9_-]{1,64}`, so
/// no name can contain a separator, `..`, a dot or a NUL, or point
/// anywhere but a file directly inside `dir`.
pub fn ring_path(dir: &Path, name: &str) -> Result<PathBuf, ShmError> {
    if !is_valid_name(name) {
        return Err(ShmError::BadName(shorten(name)));
    }
    Ok(dir.join(format!("{name}.{RING_EXTENSION}")))
}

fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A bounded copy of a refused name for the error message.
fn shorten(name: &str) -> String {
    const SHOWN: usize = 80;
    match name.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
}

/// Whether a file can be created in `dir`: permission bits alone cannot say
/// (they ignore who we are), so try it.
fn is_writable_dir(dir: &Path) -> bool {
    if !dir.is_dir() {
        return false;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let probe = dir.join(format!(".hotwasm-probe-{}-{nanos}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            // Best effort: a stray empty probe file is harmless.
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_in_errors() {
        let long = "x".repeat(10_000);
        match ring_path(Path::new("/tmp"), &long) {
            Err(ShmError::BadName(shown)) => assert!(shown.len() < 100),
            other => panic!("expected BadName, got {other:?}"),
        }
    }
}
