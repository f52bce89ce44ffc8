//! `hotwasm keys`: signing keys for modules, in wasmsign2's file format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hotwasm_trust::{PublicKey, SecretKey};

/// Subcommands of `hotwasm keys`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make a key pair for signing modules: NAME.key (secret, mode 0600)
    /// and NAME.pub (public, for --trusted-key). Never overwrites.
    Generate {
        /// Path and name of the pair, without extension.
        #[arg(default_value = "hotwasm")]
        name: PathBuf,
    },
    /// Print a key's id and public key text form (of a public or secret key file).
    Show {
        /// The key file.
        file: PathBuf,
    },
}

/// Runs a `keys` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Generate { name } => {
            let (secret, public) = (with_extension(&name, "key"), with_extension(&name, "pub"));
            let key = hotwasm_trust::generate(&secret, &public)?;
            crate::print(&format!(
                "secret key {} (keep it private)\npublic key {}\n{}",
                secret.display(),
                public.display(),
                describe(&key.public_key())
            ))?;
        }
        Command::Show { file } => {
            let key = match PublicKey::read(&file) {
                Ok(key) => key,
                Err(_) => SecretKey::read(&file)
                    .with_context(|| format!("{} holds no key", file.display()))?
                    .public_key(),
            };
            crate::print(&describe(&key))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stable text form: the key id, then the public key.
fn describe(key: &PublicKey) -> String {
    format!("key id {}\npublic key {key}\n", key.key_id())
}

/// `NAME.ext`, keeping any dots already in NAME.
fn with_extension(name: &std::path::Path, extension: &str) -> PathBuf {
    let mut path = name.as_os_str().to_owned();
    path.push(".");
    path.push(extension);
    PathBuf::from(path)
}
