//! The guest modules this build of hotwasm carries, one per scheme and
//! variant.
//!
//! `build.rs` compiles the guest crates (`crates/guests/*`) to WebAssembly
//! with each [`Variant`]'s flags and this crate embeds the bytes, so every
//! hotwasm binary can run and list its own modules with no files beside it.
//! A plain build makes the essential variants (`compat`, `default`, `fast`,
//! the opt-level `s` and codegen-units 8 builds of `fast` and `compat`, and
//! `libsecp256k1` and `libsecp256k1-compat`, the second family, whose C
//! sources need clang); `HOTWASM_ALL_VARIANTS=1 cargo build` makes every
//! variant.
//!
//! # Layout
//!
//! - [`Variant`], [`VARIANTS`]: how each build is compiled (`src/variant.rs`).
//! - [`BuiltModule`], [`built`], [`find`]: the embedded modules.

use sha2::{Digest, Sha256};

mod variant;

pub use variant::{Family, VARIANTS, Variant};

/// Length of the hash part of a module id, in hex digits.
pub const SHORT_HASH_LEN: usize = 16;

/// One compiled guest module embedded in this binary.
#[derive(Debug, Clone, Copy)]
pub struct BuiltModule {
    /// The scheme the module verifies (`"schnorr"` or `"ecdsa"`), which is
    /// also its module name.
    pub scheme: &'static str,
    /// How it was compiled.
    pub variant: &'static Variant,
    /// The WebAssembly binary.
    pub bytes: &'static [u8],
}

impl BuiltModule {
    /// SHA-256 of the bytes, in hex: the module's version.
    pub fn hash(&self) -> String {
        content_hash(self.bytes)
    }

    /// `name@hash`, the id verdicts carry.
    pub fn id(&self) -> String {
        module_id(self.scheme, self.bytes)
    }
}

/// SHA-256 of a module's bytes, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `name@<first 16 hex digits of the content hash>`.
pub fn module_id(name: &str, bytes: &[u8]) -> String {
    let hash = content_hash(bytes);
    format!("{name}@{}", &hash[..SHORT_HASH_LEN])
}

/// `wasm` with a custom section `hotwasm-version` holding `tag` appended:
/// the same code under another content hash, i.e. another version of the
/// module (what tests and benchmarks swap between).
pub fn tagged(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"hotwasm-version";
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(payload.len()));
    out.extend(payload);
    out
}

/// Unsigned LEB128, as wasm encodes sizes.
fn leb128(mut value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

static BUILT: &[BuiltModule] = include!(concat!(env!("OUT_DIR"), "/built.rs"));

/// Every module this binary carries, in variant order.
pub fn built() -> &'static [BuiltModule] {
    BUILT
}

/// Names of the variants this binary carries, in variant order.
pub fn built_variants() -> Vec<&'static str> {
    let mut names: Vec<&str> = BUILT.iter().map(|m| m.variant.name).collect();
    // BUILT lists each variant's modules together, so duplicates are adjacent.
    names.dedup();
    names
}

/// The module for `scheme` in `variant`, if this build carries it.
pub fn find(scheme: &str, variant: &str) -> Option<&'static BuiltModule> {
    BUILT
        .iter()
        .find(|m| m.scheme == scheme && m.variant.name == variant)
}

/// The variant named `name`, built or not.
pub fn variant(name: &str) -> Option<&'static Variant> {
    VARIANTS.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essential_variants_are_built_for_both_schemes() {
        for variant in VARIANTS.iter().filter(|v| v.essential) {
            for (scheme, _) in variant.family.guests() {
                let module = find(scheme, variant.name)
                    .unwrap_or_else(|| panic!("{scheme}/{} not built", variant.name));
                assert_eq!(&module.bytes[..4], b"\0asm", "{scheme}/{}", variant.name);
            }
        }
    }

    #[test]
    fn tagged_versions_are_valid_modules_with_another_hash() {
        let fast = find("schnorr", "fast").expect("built");
        let long_tag = "t".repeat(300); // a size of two LEB128 bytes
        for tag in ["v2", long_tag.as_str()] {
            let tagged = tagged(fast.bytes, tag);
            assert_ne!(content_hash(&tagged), fast.hash());
            let mut validator =
                wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
            validator
                .validate_all(&tagged)
                .expect("still a valid module");
        }
        assert_eq!(leb128(300), [0xac, 0x02]);
    }

    #[test]
    fn module_ids_name_the_scheme_and_a_short_hash() {
        let id = module_id("schnorr", b"\0asm");
        let (name, hash) = id.split_once('@').expect("id has an @");
        assert_eq!(name, "schnorr");
        assert_eq!(hash.len(), SHORT_HASH_LEN);
        assert!(content_hash(b"\0asm").starts_with(hash));
    }

    #[test]
    fn mvp_variants_are_webassembly_1_0() {
        use wasmparser::{Validator, WasmFeatures};
        let features = WasmFeatures::WASM1 | WasmFeatures::MUTABLE_GLOBAL;
        let mvp: Vec<_> = built().iter().filter(|m| m.variant.is_mvp()).collect();
        assert!(!mvp.is_empty());
        for module in mvp {
            if let Err(e) = Validator::new_with_features(features).validate_all(module.bytes) {
                panic!("{}/{} is not MVP: {e}", module.scheme, module.variant.name);
            }
        }
        // The other variants do use post-MVP features: the check can fail.
        let fast = find("ecdsa", "fast").expect("built");
        assert!(
            Validator::new_with_features(features)
                .validate_all(fast.bytes)
                .is_err()
        );
    }

    #[test]
    fn variants_differ_in_bytes() {
        let compat = find("schnorr", "compat").expect("built");
        let fast = find("schnorr", "fast").expect("built");
        assert_ne!(compat.hash(), fast.hash());
    }
}
