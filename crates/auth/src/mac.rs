//! HMAC-SHA256 keys: 32 random bytes, kept as hex in an owner-only file.

use std::fmt;
use std::path::Path;

use hmac::{KeyInit as _, Mac as _};
use rand::RngCore as _;

use crate::file::{SecretError, read_own_secret, read_secret, write_secret};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Bytes of a MAC tag.
pub const TAG_BYTES: usize = 32;

/// A key for HMAC-SHA256 tags.
#[derive(Clone, PartialEq, Eq)]
pub struct MacKey([u8; 32]);

impl fmt::Debug for MacKey {
    /// Never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(..)")
    }
}

impl MacKey {
    /// A new random key.
    pub fn generate() -> MacKey {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        MacKey(key)
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MacKey {
        MacKey(bytes)
    }

    /// Reads a key file (64 hex digits, owner-only); `what` names it in
    /// errors (`reply key`, `artifact key`).
    ///
    /// # Errors
    ///
    /// [`SecretError`] for the file or its text.
    pub fn read(path: &Path, what: &'static str) -> Result<MacKey, SecretError> {
        let text = read_secret(path, what)?;
        MacKey::parse(&text).ok_or_else(|| SecretError::Malformed {
            what,
            path: path.to_path_buf(),
            reason: "a key file holds 64 hex digits (make one with `hotwasm reply-key`)"
                .to_string(),
        })
    }

    fn parse(text: &str) -> Option<MacKey> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key).ok()?;
        Some(MacKey(key))
    }

    /// Writes the key to a new owner-only file.
    ///
    /// # Errors
    ///
    /// As [`write_secret`].
    pub fn write(&self, path: &Path, what: &'static str) -> Result<(), SecretError> {
        write_secret(path, what, &hex::encode(self.0))
    }

    /// The key in `path`, made there (owner-only) if the file does not
    /// exist yet: for a key only this installation uses, so the file must
    /// also be this user's own ([`read_own_secret`]).
    ///
    /// # Errors
    ///
    /// As [`MacKey::read`] and [`MacKey::write`], and
    /// [`SecretError::NotOwned`].
    pub fn read_or_create(path: &Path, what: &'static str) -> Result<MacKey, SecretError> {
        let read = |path: &Path| {
            let text = read_own_secret(path, what)?;
            MacKey::parse(&text).ok_or_else(|| SecretError::Malformed {
                what,
                path: path.to_path_buf(),
                reason: "a key file holds 64 hex digits".to_string(),
            })
        };
        match read(path) {
            Err(SecretError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let key = MacKey::generate();
                match key.write(path, what) {
                    Ok(()) => Ok(key),
                    // Made by another process meanwhile: its key counts.
                    Err(SecretError::Exists { .. }) => read(path),
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }

    /// The tag of the concatenation of `parts`, each prefixed by its
    /// length (so `["ab", "c"]` and `["a", "bc"]` differ).
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
        let mut mac = self.mac();
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.mac();
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.verify_slice(tag).is_ok()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length: this cannot fail.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tags_check_the_key_and_every_byte_and_boundary() {
        let key = MacKey::generate();
        let tag = key.tag(&[b"ab", b"c"]);
        assert!(key.verify(&[b"ab", b"c"], &tag));
        assert!(!key.verify(&[b"a", b"bc"], &tag), "boundaries count");
        assert!(!key.verify(&[b"ab", b"d"], &tag));
        assert!(!MacKey::generate().verify(&[b"ab", b"c"], &tag));
        assert!(!key.verify(&[b"ab", b"c"], &tag[..31]));
    }

    #[test]
    fn a_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let made = MacKey::read_or_create(&path, "test key").unwrap();
        assert_eq!(MacKey::read_or_create(&path, "test key").unwrap(), made);
        assert_eq!(format!("{made:?}"), "MacKey(..)");
        std::fs::write(dir.path().join("bad"), "zz").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.path().join("bad"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(MacKey::read(&dir.path().join("bad"), "test key").is_err());
    }
}
