//! Admin tokens: `NAME:SECRET`, where NAME says who (it is what the audit
//! log records) and SECRET is 32 random bytes in hex. A client sends the
//! whole token as `authorization: Bearer NAME:SECRET`; a server keeps only
//! SHA-256 digests of the tokens it accepts and compares a presented one
//! with every one of them in constant time.

use std::fmt;
use std::path::Path;

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::file::{SecretError, read_secret, write_secret};

/// What token files hold, in error messages.
const WHAT: &str = "admin token";

/// One operator's credential.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    name: String,
    secret: String,
}

impl fmt::Debug for AdminToken {
    /// The name only: a token must not reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminToken")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AdminToken {
    /// A new token for `name`, 256 random bits.
    ///
    /// # Errors
    ///
    /// A message when `name` is not a usable name.
    pub fn generate(name: &str) -> Result<AdminToken, String> {
        check_name(name)?;
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Ok(AdminToken {
            name: name.to_string(),
            secret: hex::encode(secret),
        })
    }

    /// Parses `NAME:SECRET`.
    ///
    /// # Errors
    ///
    /// A message (without the secret) when the text is not a token.
    pub fn parse(text: &str) -> Result<AdminToken, String> {
        let (name, secret) = text
            .trim()
            .split_once(':')
            .ok_or("an admin token is NAME:SECRET (make one with `hotwasm admin-token`)")?;
        check_name(name)?;
        if secret.len() < 32 {
            return Err(format!(
                "the secret of admin token {name:?} is {} characters; at least 32 are needed",
                secret.len()
            ));
        }
        Ok(AdminToken {
            name: name.to_string(),
            secret: secret.to_string(),
        })
    }

    /// Reads a token file (owner-only, see [`read_secret`]).
    ///
    /// # Errors
    ///
    /// [`SecretError`] for the file, [`SecretError::Malformed`] for its text.
    pub fn read(path: &Path) -> Result<AdminToken, SecretError> {
        let text = read_secret(path, WHAT)?;
        AdminToken::parse(&text).map_err(|reason| SecretError::Malformed {
            what: WHAT,
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Writes the token to a new owner-only file.
    ///
    /// # Errors
    ///
    /// As [`write_secret`].
    pub fn write(&self, path: &Path) -> Result<(), SecretError> {
        write_secret(path, WHAT, &self.text())
    }

    /// Who the token names.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `NAME:SECRET`, as files and the `authorization` header carry it.
    pub fn text(&self) -> String {
        format!("{}:{}", self.name, self.secret)
    }

    /// The `authorization` header's value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.text())
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "admin token name {:?}: 1 to 64 characters of A-Z a-z 0-9 - _ . @",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// The tokens a server accepts, as digests.
#[derive(Debug, Clone, Default)]
pub struct AdminTokens {
    accepted: Vec<(String, [u8; 32])>,
}

impl AdminTokens {
    /// Accepts `tokens`.
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a AdminToken>) -> AdminTokens {
        AdminTokens {
            accepted: tokens
                .into_iter()
                .map(|token| (token.name.clone(), digest(&token.text())))
                .collect(),
        }
    }

    /// Reads the token files in `paths` (see [`AdminToken::read`]).
    ///
    /// # Errors
    ///
    /// The first file that cannot be used.
    pub fn read(paths: &[impl AsRef<Path>]) -> Result<AdminTokens, SecretError> {
        let tokens = paths
            .iter()
            .map(|path| AdminToken::read(path.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AdminTokens::new(&tokens))
    }

    /// Whether no token is accepted (administration is closed).
    pub fn is_empty(&self) -> bool {
        self.accepted.is_empty()
    }

    /// The names of the accepted tokens.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.accepted.iter().map(|(name, _)| name.as_str())
    }

    /// The name of the token in `authorization` (`Bearer NAME:SECRET`),
    /// if it is one of these. Every accepted digest is compared, in
    /// constant time, whatever matches.
    pub fn check(&self, authorization: &str) -> Option<&str> {
        let presented = authorization.strip_prefix("Bearer ")?.trim();
        let presented = digest(presented);
        let mut found = None;
        for (name, accepted) in &self.accepted {
            if bool::from(accepted.ct_eq(&presented)) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_token_round_trips_and_only_its_exact_text_is_accepted() {
        let alice = AdminToken::generate("alice").unwrap();
        let bob = AdminToken::generate("bob").unwrap();
        let tokens = AdminTokens::new([&alice, &bob]);
        assert_eq!(tokens.check(&alice.bearer()), Some("alice"));
        assert_eq!(tokens.check(&bob.bearer()), Some("bob"));
        let stranger = AdminToken::generate("alice").unwrap();
        assert_eq!(
            tokens.check(&stranger.bearer()),
            None,
            "same name, other secret"
        );
        assert_eq!(tokens.check(&alice.text()), None, "no Bearer");
        let mut flipped = alice.bearer();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(tokens.check(&flipped), None);
        assert_eq!(AdminTokens::default().check(&alice.bearer()), None);
        assert_eq!(AdminToken::parse(&alice.text()).unwrap(), alice);
    }

    #[test]
    fn bad_tokens_are_refused_without_showing_the_secret() {
        for (text, expect) in [
            ("no-colon", "NAME:SECRET"),
            ("alice:short", "at least 32"),
            (":0123456789abcdef0123456789abcdef", "name"),
            ("al ice:0123456789abcdef0123456789abcdef", "name"),
        ] {
            let error = AdminToken::parse(text).unwrap_err();
            assert!(error.contains(expect), "{text}: {error}");
            assert!(!error.contains("0123456789abcdef"), "{error}");
        }
        let token = AdminToken::generate("alice").unwrap();
        assert!(!format!("{token:?}").contains(&token.secret));
    }

    #[test]
    fn token_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.token");
        let token = AdminToken::generate("alice").unwrap();
        token.write(&path).unwrap();
        let tokens = AdminTokens::read(&[&path]).unwrap();
        assert_eq!(tokens.check(&token.bearer()), Some("alice"));
    }
}
