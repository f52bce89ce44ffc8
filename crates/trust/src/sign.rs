//! Signing modules: a signature section embedded at the front, or a
//! detached signature, as `wasmsign2 sign` makes them.

use std::io::Cursor;

use wasmsign2::Module;

use crate::{KeyError, SecretKey};

impl SecretKey {
    /// `wasm` with this key's signature embedded (a `signature` custom
    /// section in front, naming this key's id). A module signed already
    /// keeps its signatures and gains this one.
    ///
    /// # Errors
    ///
    /// [`KeyError::Sign`] when `wasm` is not a WebAssembly module, or this
    /// key signed it already.
    pub fn sign(&self, wasm: &[u8]) -> Result<Vec<u8>, KeyError> {
        let (module, _) = self.sign_module(wasm, false)?;
        serialize(&module)
    }

    /// A detached signature of `wasm` (the payload the signature section
    /// would hold), for `wasmsign2 verify -S` or [`attach_signature`].
    ///
    /// # Errors
    ///
    /// [`KeyError::Sign`] when `wasm` is not a WebAssembly module.
    pub fn sign_detached(&self, wasm: &[u8]) -> Result<Vec<u8>, KeyError> {
        let (_, signature) = self.sign_module(wasm, true)?;
        Ok(signature)
    }

    fn sign_module(&self, wasm: &[u8], detached: bool) -> Result<(Module, Vec<u8>), KeyError> {
        check_sections(wasm).map_err(KeyError::Sign)?;
        let module = Module::deserialize(&mut Cursor::new(wasm)).map_err(sign_error)?;
        let key_id = self
            .public_key()
            .inner()
            .clone()
            .attach_default_key_id()
            .key_id()
            .cloned();
        self.inner()
            .sign_multi(module, key_id.as_ref(), detached, false)
            .map_err(sign_error)
    }
}

/// `wasm` with a detached `signature` embedded, as `wasmsign2 attach`
/// does: the module then carries its signature wherever it goes.
///
/// # Errors
///
/// [`KeyError::Sign`] when `wasm` is not a WebAssembly module or carries a
/// signature section already.
pub fn attach_signature(wasm: &[u8], signature: &[u8]) -> Result<Vec<u8>, KeyError> {
    check_sections(wasm).map_err(KeyError::Sign)?;
    let module = Module::deserialize(&mut Cursor::new(wasm))
        .and_then(|module| module.attach_signature(signature))
        .map_err(sign_error)?;
    serialize(&module)
}

fn serialize(module: &Module) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::new();
    module.serialize(&mut out).map_err(sign_error)?;
    Ok(out)
}

fn sign_error(error: wasmsign2::WSError) -> KeyError {
    KeyError::Sign(error.to_string())
}

/// Checks that every section of `wasm`, and every custom section's name,
/// fits in the bytes there are. wasmsign2 allocates what a length claims
/// before reading it, so a few bytes claiming a 4 GiB section would make
/// it allocate 4 GiB; this refuses them first.
pub(crate) fn check_sections(wasm: &[u8]) -> Result<(), String> {
    let mut rest = wasm
        .get(8..)
        .filter(|_| wasm.starts_with(b"\0asm"))
        .ok_or("not a WebAssembly module (no `\\0asm` header)")?;
    while let Some((&id, after_id)) = rest.split_first() {
        let (len, after_len) = leb128_u32(after_id).ok_or("malformed section length")?;
        let payload = after_len
            .get(..len)
            .ok_or("a section is longer than the module")?;
        if id == 0 {
            let (name_len, name) = leb128_u32(payload).ok_or("malformed custom section name")?;
            if name_len > name.len() {
                return Err("a custom section's name is longer than the section".into());
            }
        }
        rest = &after_len[len..];
    }
    Ok(())
}

/// An unsigned LEB128 `u32` at the start of `bytes`, and what follows it.
fn leb128_u32(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value: u32 = 0;
    for (i, &byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value as usize, &bytes[i + 1..]));
        }
    }
    None
}
