//! Credentials, in one place.
//!
//! - [`file`]: secrets live in files only their owner can read (mode
//!   0600); reading one that others can read is refused, and new ones are
//!   created 0600 and never overwrite an existing file.
//! - [`token`]: admin tokens (`NAME:SECRET`), the credential module
//!   administration asks for; a server keeps the digests of the tokens it
//!   accepts and checks a presented one in constant time.
//! - [`mac`]: HMAC-SHA256 keys (32 random bytes, hex in a 0600 file): the
//!   deployment's reply key, which servers use to sign verdicts and clients
//!   to check them, and a registry's key for its cached artifacts.

pub mod file;
pub mod mac;
pub mod token;

pub use file::SecretError;
pub use mac::MacKey;
pub use token::{AdminToken, AdminTokens};
