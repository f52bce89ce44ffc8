//! A signing key for the tests: the modules they load are signed with it,
//! as an operator's would be, and the hosts they start trust it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hotwasm_trust::{SecretKey, Trust};

/// The tests' key, made once per process.
pub fn key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(SecretKey::generate)
}

/// `wasm` signed with [`key`] (an embedded signature).
pub fn signed(wasm: &[u8]) -> Vec<u8> {
    key()
        .sign(wasm)
        .unwrap_or_else(|e| panic!("test module cannot be signed: {e}"))
}

/// Trusts [`key`] and nothing else.
pub fn trust() -> Trust {
    Trust::new(vec![key().public_key()])
}

/// Writes [`key`]'s pair into `dir` as `test.key` and `test.pub`, for
/// processes that read keys from files; returns (secret, public).
pub fn write_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let (secret, public) = (dir.join("test.key"), dir.join("test.pub"));
    key().write_new(&secret).expect("write the secret key");
    std::fs::write(&public, key().public_key().to_bytes()).expect("write the public key");
    (secret, public)
}
