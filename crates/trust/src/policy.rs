//! The trust policy: which modules may load, and why one may not.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::OnceLock;

use wasmsign2::{PublicKeySet, WSError};

use crate::PublicKey;
use crate::keys::key_id;
use crate::sign::check_sections;

/// How an operator makes a refused module load, for messages read where
/// the commands can be run (not over gRPC, whose client is elsewhere).
pub const HINT: &str = "sign it with `hotwasm modules sign FILE --key KEY` and trust the key \
    with --trusted-key KEY.pub, or pass --allow-unsigned";

/// Which modules may load: the ones signed by one of the trusted keys, and
/// the modules built into this binary. The default trusts no key and
/// refuses unsigned modules, so only built-in modules load.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    keys: Vec<PublicKey>,
    allow_unsigned: bool,
}

/// Why a module may load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Its bytes are those of a module built into this binary.
    BuiltIn,
    /// A trusted key signed it.
    Signed {
        /// The id of the key (of the first, in id order, if several did).
        key_id: String,
    },
    /// Not trusted, allowed only because the policy allows unsigned
    /// modules: to be logged loudly.
    Unverified(Untrusted),
}

/// Why a module is not trusted. The messages name no command: they are
/// sent to remote clients too; [`HINT`] says what an operator can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Untrusted {
    /// It carries no signature.
    #[error("it is not signed")]
    Unsigned,
    /// A trusted key's signature is there, but the module's bytes are not
    /// the ones it signed.
    #[error(
        "its signature does not verify: the module was changed after key {} signed it",
        key_ids.join(", ")
    )]
    Tampered {
        /// The trusted keys whose signatures it carries.
        key_ids: Vec<String>,
    },
    /// Signed, but by no trusted key (or changed after signing, when the
    /// signature names no key).
    #[error("{}", describe_untrusted(key_ids, *trusted))]
    UntrustedKey {
        /// The key ids its signatures name (none if they name none).
        key_ids: Vec<String>,
        /// How many keys are trusted.
        trusted: usize,
    },
    /// The bytes or the signature section cannot be read.
    #[error("its signature cannot be read: {0}")]
    Malformed(String),
}

fn describe_untrusted(key_ids: &[String], trusted: usize) -> String {
    let keys = if trusted == 0 {
        " (no key is trusted)"
    } else {
        ""
    };
    if key_ids.is_empty() {
        format!(
            "no signature verifies with a trusted key{keys}: signed by another key, or changed \
             after signing (its signature names no key id)"
        )
    } else {
        format!(
            "it is signed by a key that is not trusted (key id {}){keys}",
            key_ids.join(", ")
        )
    }
}

impl Trust {
    /// Trusts modules signed by any of `keys` (and the built-in modules).
    pub fn new(keys: Vec<PublicKey>) -> Trust {
        Trust {
            keys,
            allow_unsigned: false,
        }
    }

    /// With `allow`, modules that are not trusted load anyway, as
    /// [`Provenance::Unverified`].
    pub fn allow_unsigned(mut self, allow: bool) -> Trust {
        self.allow_unsigned = allow;
        self
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Whether modules that are not trusted load anyway.
    pub fn allows_unsigned(&self) -> bool {
        self.allow_unsigned
    }

    /// Whether `wasm` may load, and why: built in (by the SHA-256 of its
    /// bytes), or its embedded signature verifies with a trusted key, or
    /// neither but unsigned modules are allowed.
    ///
    /// # Errors
    ///
    /// [`Untrusted`] with the reason, unless unsigned modules are allowed.
    pub fn check(&self, wasm: &[u8]) -> Result<Provenance, Untrusted> {
        if is_built_in(wasm) {
            return Ok(Provenance::BuiltIn);
        }
        match self.verify(wasm) {
            Ok(key_id) => Ok(Provenance::Signed { key_id }),
            Err(reason) if self.allow_unsigned => Ok(Provenance::Unverified(reason)),
            Err(reason) => Err(reason),
        }
    }

    /// The id of a trusted key whose signature embedded in `wasm`
    /// verifies, whatever the policy says of unsigned modules.
    ///
    /// # Errors
    ///
    /// [`Untrusted`] when none does.
    pub fn verify(&self, wasm: &[u8]) -> Result<String, Untrusted> {
        check_sections(wasm).map_err(Untrusted::Malformed)?;
        let set = PublicKeySet::new(self.keys.iter().map(|k| k.inner().clone()).collect());
        match set.verify(&mut Cursor::new(wasm), None) {
            Ok(keys) => {
                let ids: BTreeSet<String> = keys.into_iter().map(key_id).collect();
                Ok(ids.into_iter().next().unwrap_or_default())
            }
            Err(WSError::NoSignatures) => Err(Untrusted::Unsigned),
            Err(WSError::VerificationFailed) => Err(self.why_not_verified(wasm)),
            Err(error) => Err(Untrusted::Malformed(error.to_string())),
        }
    }

    /// Tells a module changed after a trusted key signed it from one a
    /// key we do not trust signed, by the key ids its signatures name.
    fn why_not_verified(&self, wasm: &[u8]) -> Untrusted {
        let named: BTreeSet<String> =
            match wasmsign2::signature_info_from_reader(&mut Cursor::new(wasm), None) {
                Ok(info) => info.key_ids().iter().map(hex::encode).collect(),
                Err(error) => return Untrusted::Malformed(error.to_string()),
            };
        let trusted: Vec<String> = self
            .keys
            .iter()
            .map(PublicKey::key_id)
            .filter(|id| named.contains(id))
            .collect();
        if trusted.is_empty() {
            Untrusted::UntrustedKey {
                key_ids: named.into_iter().collect(),
                trusted: self.keys.len(),
            }
        } else {
            Untrusted::Tampered { key_ids: trusted }
        }
    }
}

/// Whether `wasm` is, byte for byte, a module built into this binary.
fn is_built_in(wasm: &[u8]) -> bool {
    static HASHES: OnceLock<BTreeSet<String>> = OnceLock::new();
    HASHES
        .get_or_init(|| hotwasm_modules::built().iter().map(|m| m.hash()).collect())
        .contains(&hotwasm_modules::content_hash(wasm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SecretKey, attach_signature};

    /// An empty module with one custom section `x`: something to sign and
    /// to change.
    fn module() -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend_from_slice(&[0, 6, 1, b'x', 1, 2, 3, 4]);
        wasm
    }

    #[test]
    fn a_module_signed_by_a_trusted_key_is_trusted() {
        let key = SecretKey::generate();
        let trust = Trust::new(vec![SecretKey::generate().public_key(), key.public_key()]);
        let signed = key.sign(&module()).expect("sign");
        assert_eq!(
            trust.check(&signed),
            Ok(Provenance::Signed {
                key_id: key.public_key().key_id()
            })
        );
    }

    #[test]
    fn unsigned_tampered_and_wrong_key_modules_are_refused_with_their_reason() {
        let key = SecretKey::generate();
        let trust = Trust::new(vec![key.public_key()]);
        assert_eq!(trust.check(&module()), Err(Untrusted::Unsigned));

        let mut tampered = key.sign(&module()).expect("sign");
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            trust.check(&tampered),
            Err(Untrusted::Tampered {
                key_ids: vec![key.public_key().key_id()]
            })
        );

        let other = SecretKey::generate();
        let by_other = other.sign(&module()).expect("sign");
        assert_eq!(
            trust.check(&by_other),
            Err(Untrusted::UntrustedKey {
                key_ids: vec![other.public_key().key_id()],
                trusted: 1
            })
        );
        let message = trust.check(&by_other).expect_err("refused").to_string();
        assert!(message.contains(&other.public_key().key_id()), "{message}");
        assert!(!message.contains("--"), "names no command: {message}");
    }

    #[test]
    fn allowing_unsigned_modules_loads_them_as_unverified() {
        let trust = Trust::default().allow_unsigned(true);
        assert_eq!(
            trust.check(&module()),
            Ok(Provenance::Unverified(Untrusted::Unsigned))
        );
        let signed = SecretKey::generate().sign(&module()).expect("sign");
        assert!(matches!(
            trust.check(&signed),
            Ok(Provenance::Unverified(Untrusted::UntrustedKey {
                trusted: 0,
                ..
            }))
        ));
    }

    #[test]
    fn built_in_modules_are_trusted_by_hash_without_keys() {
        let trust = Trust::default();
        for built in hotwasm_modules::built() {
            assert_eq!(trust.check(built.bytes), Ok(Provenance::BuiltIn));
        }
    }

    #[test]
    fn a_detached_signature_attached_verifies() {
        let key = SecretKey::generate();
        let signature = key.sign_detached(&module()).expect("sign");
        let attached = attach_signature(&module(), &signature).expect("attach");
        let trust = Trust::new(vec![key.public_key()]);
        assert!(matches!(
            trust.check(&attached),
            Ok(Provenance::Signed { .. })
        ));
        assert!(
            attach_signature(&attached, &signature).is_err(),
            "signed already"
        );
    }

    /// wasmsign2's own API as the reference implementation (what its
    /// command runs): its signatures verify here, ours verify there.
    #[test]
    fn signatures_interoperate_with_wasmsign2() {
        let theirs = wasmsign2::KeyPair::generate();
        let dir = tempfile::tempdir().expect("temp dir");
        let public = dir.path().join("theirs.pub");
        theirs.pk.to_file(&public).expect("write their key");
        let trust = Trust::new(vec![PublicKey::read(&public).expect("read their key file")]);
        let parsed = wasmsign2::Module::deserialize(&mut Cursor::new(module())).expect("parse");
        let mut signed = Vec::new();
        theirs
            .sk
            .sign(parsed, None)
            .expect("they sign")
            .serialize(&mut signed)
            .expect("serialize");
        assert!(matches!(
            trust.check(&signed),
            Ok(Provenance::Signed { .. })
        ));

        let ours = SecretKey::generate();
        let their_view = wasmsign2::PublicKey::from_bytes(&ours.public_key().to_bytes())
            .expect("they read our key");
        let signed = ours.sign(&module()).expect("sign");
        their_view
            .verify(&mut Cursor::new(&signed), None)
            .expect("our embedded signature verifies with wasmsign2");
        let detached = ours.sign_detached(&module()).expect("sign");
        their_view
            .verify(&mut Cursor::new(module()), Some(&detached))
            .expect("our detached signature verifies with wasmsign2");
        // The key id we embed is the one wasmsign2 gives the key.
        let info =
            wasmsign2::signature_info_from_reader(&mut Cursor::new(&signed), None).expect("info");
        assert_eq!(
            info.key_ids().iter().map(hex::encode).collect::<Vec<_>>(),
            vec![ours.public_key().key_id()]
        );
    }

    #[test]
    fn lengths_past_the_end_are_refused_before_wasmsign2_allocates_them() {
        let trust = Trust::new(vec![SecretKey::generate().public_key()]);
        let header = b"\0asm\x01\0\0\0";
        for body in [
            &[1, 0xff, 0xff, 0xff, 0xff, 0x0f][..], // a 4 GiB section
            &[0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f],  // a 4 GiB custom name
            &[1, 0x80],                             // a length cut short
        ] {
            let wasm = [&header[..], body].concat();
            assert!(
                matches!(trust.check(&wasm), Err(Untrusted::Malformed(_))),
                "{body:?}"
            );
        }
        assert!(matches!(
            trust.check(b"hello"),
            Err(Untrusted::Malformed(_))
        ));
    }
}
