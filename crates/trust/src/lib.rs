//! Which modules may load: signatures in the WebAssembly tool-conventions
//! format, the keys that make them, and the operator's trust policy.
//!
//! A module is signed as the WebAssembly tool-conventions'
//! [module signatures](https://github.com/WebAssembly/tool-conventions/blob/main/Signatures.md)
//! say, with the reference implementation, the `wasmsign2` crate: an
//! Ed25519 signature over the SHA-256 of the module's sections, kept in a
//! custom section named `signature` at the front of the module (or beside
//! it, detached). So a module signed with the `wasmsign2` command verifies
//! here, and one signed here verifies with it; key files are wasmsign2's
//! too.
//!
//! A [`Trust`] says which modules may load: those signed by one of its
//! keys, and the modules built into this binary (compiled in with the code
//! that runs them, so trusted as that code is, and recognised by the
//! SHA-256 of their bytes wherever they come from, a registry included).
//! Anything else is refused with the reason ([`Untrusted`]), unless the
//! policy allows unsigned modules, which then load as
//! [`Provenance::Unverified`] for the caller to log loudly.
//!
//! ```
//! use hotwasm_trust::{Provenance, SecretKey, Trust};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SecretKey::generate();
//! let module = b"\0asm\x01\0\0\0".to_vec();
//! let signed = key.sign(&module)?;
//!
//! let trust = Trust::new(vec![key.public_key()]);
//! assert!(matches!(trust.check(&signed)?, Provenance::Signed { .. }));
//! assert!(trust.check(&module).is_err(), "unsigned");
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`PublicKey`], [`SecretKey`]: keys, their files and text form (`keys.rs`).
//! - [`SecretKey::sign`], [`attach_signature`]: signing (`sign.rs`).
//! - [`Trust`], [`Provenance`], [`Untrusted`]: the policy (`policy.rs`).

mod keys;
mod policy;
mod sign;

use std::path::PathBuf;

pub use keys::{PublicKey, SecretKey, generate};
pub use policy::{HINT, Provenance, Trust, Untrusted};
pub use sign::attach_signature;

/// A key that cannot be read or written, or a module that cannot be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file that is there already and is not overwritten.
    #[error("{} exists already: not overwriting a key (remove it or pick another name)", .0.display())]
    Exists(PathBuf),
    /// A file that holds no key this crate reads.
    #[error(
        "{} is not {what} (expected a wasmsign2 key file: raw, DER or PEM, or the hex text form)",
        path.display()
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// The kind of key expected.
        what: &'static str,
    },
    /// The bytes are not a module that can be signed, or the signature
    /// cannot be attached.
    #[error("cannot sign: {0}")]
    Sign(String),
}
