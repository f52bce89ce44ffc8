//! `hotwasm admin-token`: makes an admin token file for one operator.

use std::path::PathBuf;
use std::process::ExitCode;

use hotwasm_auth::AdminToken;

/// Arguments of `hotwasm admin-token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Who the token is for; the audit log records this name.
    name: String,
    /// The file to write (created mode 0600; never overwritten). Give it
    /// to the server (`serve --admin-token FILE`) and to the operator
    /// (`modules ... --token-file FILE`).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
}

/// Writes a new token.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let token = AdminToken::generate(&args.name).map_err(anyhow::Error::msg)?;
    token.write(&args.out)?;
    eprintln!(
        "hotwasm admin-token: wrote a token for {} to {} (mode 0600): pass it to `hotwasm serve --admin-token` and `hotwasm modules --token-file`",
        token.name(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
