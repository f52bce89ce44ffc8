//! How `serve` and `submit` authenticate to Redis: an ACL user, a password
//! from an owner-only file, and the CA of a `rediss://` server.

use std::path::PathBuf;

use anyhow::Context;
use hotwasm_queue::{Password, RedisOptions};

/// Redis credentials and TLS trust.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisAuthArgs {
    /// The Redis ACL user to authenticate as.
    #[arg(long, value_name = "NAME", env = "HOTWASM_REDIS_USER")]
    redis_user: Option<String>,
    /// A file (mode 0600) holding the Redis password (`requirepass`, or the
    /// ACL user's). Better than a password in the URL, which every user of
    /// the host can read in the process list.
    #[arg(long, value_name = "FILE", env = "HOTWASM_REDIS_PASSWORD_FILE")]
    redis_password_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signs the Redis server's TLS
    /// certificate, for a rediss:// URL.
    #[arg(long, value_name = "FILE", env = "HOTWASM_REDIS_CA")]
    redis_ca: Option<PathBuf>,
}

impl RedisAuthArgs {
    /// Puts the credentials and the CA into `options`.
    ///
    /// # Errors
    ///
    /// A file that cannot be read (or a password file others can read).
    pub fn apply(&self, options: &mut RedisOptions) -> anyhow::Result<()> {
        if has_password(&options.url) {
            tracing::warn!(
                "the Redis URL carries a password: every user of this host can read it in the process list; use --redis-password-file"
            );
        }
        options.username.clone_from(&self.redis_user);
        if let Some(path) = &self.redis_password_file {
            let password = hotwasm_auth::file::read_secret(path, "Redis password")?;
            options.password = Some(Password(password));
        }
        if let Some(path) = &self.redis_ca {
            options.tls_ca_pem = Some(
                std::fs::read(path)
                    .with_context(|| format!("reading the Redis CA {}", path.display()))?,
            );
        }
        Ok(())
    }
}

/// Whether `url` has a password in it (`redis://user:pass@host`).
fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(credentials, _)| credentials.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_noticed() {
        assert!(has_password("redis://:hunter2@127.0.0.1:6379"));
        assert!(has_password("rediss://user:pw@host/0"));
        assert!(!has_password("redis://user@host"));
        assert!(!has_password("redis://127.0.0.1:6379"));
        assert!(!has_password("redis+unix:///tmp/redis.sock"));
    }
}
