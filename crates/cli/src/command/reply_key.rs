//! `hotwasm reply-key`: makes the deployment's reply key, and the flags
//! `serve` and `submit` read it with.

use std::path::PathBuf;
use std::process::ExitCode;

use hotwasm_auth::MacKey;

/// What reply-key files hold, in error messages.
const WHAT: &str = "reply key";

/// Arguments of `hotwasm reply-key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to write (created mode 0600; never overwritten). Servers
    /// and clients of one deployment share it.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
}

/// Writes a new key.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    MacKey::generate().write(&args.out, WHAT)?;
    eprintln!(
        "hotwasm reply-key: wrote a reply key to {} (mode 0600): give it to every `hotwasm serve` and `hotwasm submit` of the deployment (--reply-key)",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// How replies are authenticated: `--reply-key FILE`, or the loud
/// `--insecure-replies`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplyKeyArgs {
    /// The deployment's reply key (64 hex digits, mode 0600; `hotwasm
    /// reply-key` makes one): servers sign every verdict with it, clients
    /// drop any reply not signed with it.
    #[arg(long, value_name = "FILE", env = "HOTWASM_REPLY_KEY")]
    reply_key: Option<PathBuf>,
    /// Send or accept verdicts without a reply key: anyone who can write
    /// to Redis or a ring can then forge them.
    #[arg(long, conflicts_with = "reply_key")]
    insecure_replies: bool,
}

impl ReplyKeyArgs {
    /// The key, `None` with `--insecure-replies` (warned about).
    ///
    /// # Errors
    ///
    /// Neither flag given, or the key file cannot be used.
    pub fn key(&self, command: &str) -> anyhow::Result<Option<MacKey>> {
        match &self.reply_key {
            Some(path) => Ok(Some(MacKey::read(path, WHAT)?)),
            None if self.insecure_replies => {
                tracing::warn!(
                    "INSECURE: {command} without a reply key (--insecure-replies): anyone who can write to Redis or a ring can forge verdicts"
                );
                Ok(None)
            }
            None => anyhow::bail!(
                "{command} needs the deployment's reply key to sign and check verdicts: pass --reply-key FILE (`hotwasm reply-key --out FILE` makes one) or, to go without, --insecure-replies"
            ),
        }
    }
}
