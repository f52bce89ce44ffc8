//! Ed25519 keys in wasmsign2's formats, their files, and their text form.
//!
//! Key files are wasmsign2's raw form (what `wasmsign2 keygen` writes): a
//! public key is the byte `0x01` then the 32-byte key, a secret key `0x81`
//! then 64 bytes. DER and PEM (from `openssl genpkey -algorithm ed25519`)
//! are read too. A public key's text form is the hex of its raw form, and
//! a key is named by its key id: wasmsign2's default one (the first 12
//! bytes of HMAC-SHA-256 keyed with the key), in hex, the id that
//! signatures carry.

use std::fmt;
use std::io::Write;
use std::path::Path;

use crate::KeyError;

/// A public key: verifies signatures.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// Without a key id: a signature is checked with the key whatever id
    /// it names, so the id only names keys in messages.
    inner: wasmsign2::PublicKey,
}

impl PublicKey {
    /// The key in `data`: wasmsign2's raw form, DER, PEM, or the hex text
    /// form ([`PublicKey`]'s `Display`), surrounding whitespace ignored.
    ///
    /// # Errors
    ///
    /// `None` when `data` holds none of these.
    pub fn parse(data: &[u8]) -> Option<PublicKey> {
        let text = std::str::from_utf8(data).ok().map(str::trim);
        let from_hex = text.and_then(|t| hex::decode(t).ok());
        let raw = from_hex.as_deref().unwrap_or(data);
        wasmsign2::PublicKey::from_any(raw)
            .ok()
            .map(|inner| PublicKey {
                inner: wasmsign2::PublicKey {
                    key_id: None,
                    ..inner
                },
            })
    }

    /// Reads a public key file (see [`PublicKey::parse`]).
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] when it cannot be read, [`KeyError::Format`] when
    /// it holds no public key.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let data = read_key_file(path)?;
        PublicKey::parse(&data).ok_or_else(|| KeyError::Format {
            path: path.to_path_buf(),
            what: "an Ed25519 public key",
        })
    }

    /// The key's id, hex: what a signature made with it names.
    pub fn key_id(&self) -> String {
        key_id(&self.inner)
    }

    /// wasmsign2's raw form: `0x01` then the 32-byte key.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    pub(crate) fn inner(&self) -> &wasmsign2::PublicKey {
        &self.inner
    }
}

/// The text form: hex of the raw form (66 digits, starting `01`), the
/// same as `xxd -p` of the key file.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self}, key id {})", self.key_id())
    }
}

/// A secret key: signs modules. Its `Debug` shows only the key id.
#[derive(Clone)]
pub struct SecretKey {
    inner: wasmsign2::SecretKey,
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> SecretKey {
        SecretKey {
            inner: wasmsign2::KeyPair::generate().sk,
        }
    }

    /// Reads a secret key file: wasmsign2's raw form, DER or PEM.
    ///
    /// # Errors
    ///
    /// [`KeyError::Io`] when it cannot be read, [`KeyError::Format`] when
    /// it holds no secret key.
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let data = read_key_file(path)?;
        wasmsign2::SecretKey::from_any(&data)
            .map(|inner| SecretKey { inner })
            .map_err(|_| KeyError::Format {
                path: path.to_path_buf(),
                what: "an Ed25519 secret key",
            })
    }

    /// Writes the key in wasmsign2's raw form to a new file, readable and
    /// writable by its owner only (mode 0600).
    ///
    /// # Errors
    ///
    /// [`KeyError::Exists`] when `path` exists (it is never overwritten),
    /// [`KeyError::Io`] when it cannot be written (nothing is left behind).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        write_new(path, &self.inner.to_bytes(), 0o600)
    }

    /// The public key that verifies this key's signatures.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: wasmsign2::PublicKey {
                pk: self.inner.sk.public_key(),
                key_id: None,
            },
        }
    }

    pub(crate) fn inner(&self) -> &wasmsign2::SecretKey {
        &self.inner
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(key id {})", self.public_key().key_id())
    }
}

/// Generates a key pair and writes it: the secret key to `secret` (mode
/// 0600), the public key to `public`, both in wasmsign2's raw form.
///
/// # Errors
///
/// [`KeyError::Exists`] when either file exists (neither is written),
/// [`KeyError::Io`] when one cannot be written.
pub fn generate(secret: &Path, public: &Path) -> Result<SecretKey, KeyError> {
    for path in [secret, public] {
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::Exists(path.to_path_buf()));
        }
    }
    let key = SecretKey::generate();
    key.write_new(secret)?;
    if let Err(error) = write_new(public, &key.public_key().to_bytes(), 0o644) {
        let _ = std::fs::remove_file(secret);
        return Err(error);
    }
    Ok(key)
}

/// The key id wasmsign2 gives `key` by default, hex.
pub(crate) fn key_id(key: &wasmsign2::PublicKey) -> String {
    key.clone()
        .attach_default_key_id()
        .key_id()
        .map(hex::encode)
        .unwrap_or_default()
}

/// Key files are small; anything larger is not a key.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    use std::io::Read;
    let io = |source| KeyError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_KEY_FILE_BYTES).read_to_end(&mut data))
        .map_err(io)?;
    Ok(data)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_path_buf())
        } else {
            KeyError::Io {
                action: "creating",
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| {
            let _ = std::fs::remove_file(path);
            KeyError::Io {
                action: "writing",
                path: path.to_path_buf(),
                source,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_written_once_the_secret_one_owner_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (secret, public) = (dir.path().join("k.key"), dir.path().join("k.pub"));
        let key = generate(&secret, &public).expect("generate");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret)
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            generate(&secret, &dir.path().join("other.pub")),
            Err(KeyError::Exists(_))
        ));
        assert!(!dir.path().join("other.pub").exists());
        let read = SecretKey::read(&secret).expect("read secret");
        assert_eq!(read.public_key(), key.public_key());
        assert_eq!(
            PublicKey::read(&public).expect("read public"),
            key.public_key()
        );
        // wasmsign2's raw form: 0x01 then the key.
        let raw = std::fs::read(&public).expect("read");
        assert_eq!(raw.len(), 33);
        assert_eq!(raw[0], 1);
    }

    #[test]
    fn the_text_form_of_a_public_key_reads_back() {
        let key = SecretKey::generate().public_key();
        let text = format!("{key}\n");
        assert_eq!(text.len(), 67);
        assert_eq!(PublicKey::parse(text.as_bytes()), Some(key.clone()));
        assert_eq!(key.key_id().len(), 24);
        assert_eq!(PublicKey::parse(b"not a key"), None);
        assert!(!format!("{:?}", SecretKey::generate()).contains("SecretKey {"));
    }
}
