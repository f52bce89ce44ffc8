//! The shape of module names and version specs (`name@hash`), checked
//! before anything is looked up, so a malformed request is told apart from
//! a version that does not exist.

use crate::RegistryError;

/// Checks that `name` can name a module: 1 to 64 ASCII letters, digits,
/// `-` and `_`.
///
/// # Errors
///
/// [`RegistryError::BadName`] otherwise.
pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadName(name.to_string()))
    }
}

/// Splits a version spec into its name and its hash prefix (lower case),
/// checking only its shape: a valid name, `@`, 4 to 64 hex digits.
///
/// ```
/// use hotwasm_registry::{RegistryError, parse_spec};
/// assert_eq!(parse_spec("schnorr@3F1C").ok(), Some(("schnorr", "3f1c".to_string())));
/// assert!(matches!(parse_spec("schnorr"), Err(RegistryError::BadSpec(_))));
/// assert!(matches!(parse_spec("schnorr@3f1"), Err(RegistryError::Ambiguous(_))));
/// ```
///
/// # Errors
///
/// [`RegistryError::Ambiguous`] for a hash prefix of 1 to 3 digits (too
/// short to name one version, whatever is stored), and
/// [`RegistryError::BadSpec`] for anything else that is not `NAME@HASH`:
/// no `@`, an empty or invalid name, no hash, a hash that is not hex.
pub fn parse_spec(spec: &str) -> Result<(&str, String), RegistryError> {
    let bad = || RegistryError::BadSpec(spec.to_string());
    let (name, prefix) = spec.split_once('@').ok_or_else(bad)?;
    let hex = prefix.bytes().all(|b| b.is_ascii_hexdigit());
    if check_name(name).is_err() || !hex || prefix.is_empty() || prefix.len() > 64 {
        return Err(bad());
    }
    if prefix.len() < 4 {
        return Err(RegistryError::Ambiguous(spec.to_string()));
    }
    Ok((name, prefix.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_specs_are_bad_specs_not_missing_versions() {
        for spec in [
            "",
            "schnorr",
            "@3f1c",
            "schnorr@",
            "schnorr@xyz0",
            "a/b@3f1c",
            "x@native",
        ] {
            assert!(
                matches!(parse_spec(spec), Err(RegistryError::BadSpec(_))),
                "{spec:?}: {:?}",
                parse_spec(spec)
            );
        }
        for spec in ["x@1", "x@12", "x@123"] {
            assert!(
                matches!(parse_spec(spec), Err(RegistryError::Ambiguous(_))),
                "{spec:?}"
            );
        }
        assert_eq!(
            parse_spec(&format!("x@{}", "A".repeat(64))).ok(),
            Some(("x", "a".repeat(64)))
        );
        assert!(parse_spec(&format!("x@{}", "a".repeat(65))).is_err());
    }

    #[test]
    fn names_are_plain_identifiers() {
        assert!(check_name("schnorr-v2_1").is_ok());
        for bad in ["", "a b", "../evil", &"x".repeat(65)] {
            assert!(
                matches!(check_name(bad), Err(RegistryError::BadName(_))),
                "{bad:?}"
            );
        }
    }
}
