//! `--trusted-key` and `--allow-unsigned`: which modules a command lets
//! load (see `hotwasm-trust`).

use std::path::PathBuf;

use anyhow::Context;
use hotwasm_trust::{PublicKey, Trust};

/// Which modules may load.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// A public key whose signed modules may load (repeatable, or
    /// comma-separated): a key file from `hotwasm keys generate` or
    /// `wasmsign2 keygen` (raw, DER or PEM) or its hex text form. Without
    /// one, only the built-in modules load.
    #[arg(
        long = "trusted-key",
        value_name = "FILE",
        env = "HOTWASM_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    pub trusted_keys: Vec<PathBuf>,
    /// Also load modules that no trusted key signed (unsigned, changed
    /// after signing, or signed by another key). Every such load is logged
    /// as a warning. For development only.
    #[arg(long)]
    pub allow_unsigned: bool,
}

impl TrustArgs {
    /// The keys read and the policy made; with `--allow-unsigned`, a
    /// warning on stderr for `command` first.
    pub fn trust(&self, command: &str) -> anyhow::Result<Trust> {
        let keys = self
            .trusted_keys
            .iter()
            .map(|path| PublicKey::read(path).context("reading a trusted key (--trusted-key)"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for key in &keys {
            tracing::info!(key_id = key.key_id(), "trusted key");
        }
        if self.allow_unsigned {
            eprintln!(
                "hotwasm {command}: WARNING: --allow-unsigned: modules that no trusted key signed \
                 will load (each such load is logged); do not use this in production"
            );
        }
        Ok(Trust::new(keys).allow_unsigned(self.allow_unsigned))
    }

    /// What `serve` says of its policy in its start line.
    pub fn describe(&self) -> String {
        match (self.trusted_keys.len(), self.allow_unsigned) {
            (_, true) => "UNSIGNED MODULES ALLOWED".to_string(),
            (0, false) => "built-in modules only (no --trusted-key)".to_string(),
            (1, false) => "modules signed by 1 trusted key".to_string(),
            (n, false) => format!("modules signed by {n} trusted keys"),
        }
    }
}
