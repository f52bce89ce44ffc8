//! `hotwasm modules sign` and `hotwasm modules verify-signature`: module
//! signatures as `wasmsign2` makes them (see `hotwasm-trust`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hotwasm_trust::{Provenance, PublicKey, SecretKey, Trust};

/// Arguments of `hotwasm modules sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The .wasm file.
    file: PathBuf,
    /// The secret key (`hotwasm keys generate`, `wasmsign2 keygen`).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Where to write the signed module [default: FILE itself, replaced atomically].
    #[arg(long, value_name = "OUT", conflicts_with = "detached")]
    out: Option<PathBuf>,
    /// Write a detached signature to SIG and leave FILE as it is.
    #[arg(long, value_name = "SIG")]
    detached: Option<PathBuf>,
}

/// Arguments of `hotwasm modules verify-signature`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The .wasm file.
    file: PathBuf,
    /// A detached signature of FILE [default: the one embedded in it].
    #[arg(long, value_name = "SIG")]
    signature: Option<PathBuf>,
    /// A trusted public key (repeatable, or comma-separated).
    #[arg(
        long = "trusted-key",
        value_name = "FILE",
        env = "HOTWASM_TRUSTED_KEYS",
        value_delimiter = ',',
        required = true
    )]
    trusted_keys: Vec<PathBuf>,
}

/// Signs a module.
pub fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = SecretKey::read(&args.key)?;
    let wasm = read(&args.file)?;
    let key_id = key.public_key().key_id();
    let what = format!("{}", args.file.display());
    match &args.detached {
        Some(sig) => {
            let signature = key
                .sign_detached(&wasm)
                .with_context(|| format!("signing {what}"))?;
            write_atomically(sig, &signature)?;
            crate::print(&format!(
                "signed {what} with key {key_id}: detached signature in {}\n",
                sig.display()
            ))?;
        }
        None => {
            let signed = key.sign(&wasm).with_context(|| format!("signing {what}"))?;
            let out = args.out.as_deref().unwrap_or(&args.file);
            write_atomically(out, &signed)?;
            crate::print(&format!(
                "signed {what} with key {key_id}: {} ({} bytes, {})\n",
                out.display(),
                signed.len(),
                hotwasm_modules::module_id(&stem(out), &signed)
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Verifies a module's signature; exit status 1 when it does not verify.
pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keys = args
        .trusted_keys
        .iter()
        .map(|path| PublicKey::read(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut wasm = read(&args.file)?;
    if let Some(sig) = &args.signature {
        wasm = hotwasm_trust::attach_signature(&wasm, &read(sig)?)
            .with_context(|| format!("attaching {}", sig.display()))?;
    }
    let file = args.file.display();
    match Trust::new(keys).check(&wasm) {
        Ok(Provenance::Signed { key_id }) => {
            crate::print(&format!("{file}: signed by trusted key {key_id}\n"))?;
        }
        Ok(Provenance::BuiltIn) => {
            crate::print(&format!("{file}: a module built into hotwasm\n"))?;
        }
        Ok(Provenance::Unverified(reason)) | Err(reason) => {
            crate::print(&format!("{file}: not trusted: {reason}\n"))?;
            eprintln!("hotwasm: to trust a module, {}", hotwasm_trust::HINT);
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes beside `path` and renames over it, so a reader never sees half
/// a module.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing beside {}", path.display()))?;
    // A temporary file is 0600: give the module the mode it had, or the usual one.
    let permissions = match std::fs::metadata(path) {
        Ok(metadata) => metadata.permissions(),
        Err(_) => default_permissions(),
    };
    file.as_file()
        .set_permissions(permissions)
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn default_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}
