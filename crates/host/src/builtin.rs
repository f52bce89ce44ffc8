//! The modules built into this binary, addressable as versions: a spec
//! that names no stored version may name a built-in module instead.

use hotwasm_modules::BuiltModule;
use hotwasm_registry::{RegistryError, VersionInfo, VersionState};
use hotwasm_runtime::RuntimeKind;

/// The built-in module `spec` names, if it names one: `name@hash` with a
/// prefix of 4+ digits of a built-in module's hash, or `name@native` on
/// the native runtime (then the module of `variant`).
///
/// # Errors
///
/// [`RegistryError::Ambiguous`] when the prefix fits several.
pub(crate) fn find(
    spec: &str,
    runtime: RuntimeKind,
    variant: &str,
) -> Result<Option<&'static BuiltModule>, RegistryError> {
    let Some((name, prefix)) = spec.split_once('@') else {
        return Ok(None);
    };
    if prefix == "native" && runtime == RuntimeKind::Native {
        return Ok(hotwasm_modules::find(name, variant));
    }
    let Ok((name, prefix)) = hotwasm_registry::parse_spec(spec) else {
        return Ok(None);
    };
    let mut matches: Vec<&'static BuiltModule> = hotwasm_modules::built()
        .iter()
        .filter(|m| m.scheme == name && m.hash().starts_with(&prefix))
        .collect();
    // Two variants may compile to the same bytes: one version.
    matches.dedup_by_key(|m| m.hash());
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(RegistryError::Ambiguous(spec.to_string())),
    }
}

/// Where a built-in module's bytes come from, as a version's `source`.
pub(crate) fn source(built: &BuiltModule) -> String {
    format!("built-in {}", built.variant.name)
}

/// A built-in module as a version, when there is no registry to store it.
pub(crate) fn version(built: &BuiltModule) -> VersionInfo {
    VersionInfo {
        name: built.scheme.to_string(),
        hash: built.hash(),
        id: built.id(),
        size: built.bytes.len() as u64,
        state: VersionState::Active,
        loaded_unix: 0,
        source: Some(source(built)),
    }
}
