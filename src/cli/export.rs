//! `certplan export PLAN --out DIR --host NAME --to ROOT|-`: one host's
//! files from the output tree, decrypted, under ROOT (a host's `/`, or a
//! staging directory) or as a tar stream on stdout for `| ssh HOST bsdtar -x --safe-writes -C /`.

use std::path::PathBuf;

use super::{Error, Outcome, load};
use crate::export::{host_files, install, write_tar};
use crate::pipeline::Tree;

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The output tree `apply` wrote.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The host whose files to export.
    #[arg(long, value_name = "NAME")]
    pub host: String,
    /// Where the host's `/` is: files land at their on-host paths under it;
    /// `-` writes a tar stream to stdout instead.
    #[arg(long, value_name = "ROOT")]
    pub to: PathBuf,
    /// The age identity that opens the tree's encrypted secrets; else
    /// `CERTPLAN_AGE_IDENTITY` or `CERTPLAN_AGE_IDENTITY_FILE`.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// Runs `export`.
pub fn run(args: &ExportArgs) -> Result<Outcome, Error> {
    let compiled = load::compile_plan(&args.plan)?;
    let mut tree = Tree::read(&args.out).map_err(Error::Tree)?;
    tree.disk.set_keyring(load::keyring(args.identity.as_deref())?);
    let files = host_files(&compiled.model, &tree.state, &tree.disk, &args.host).map_err(Error::Export)?;
    if args.to.as_os_str() == "-" {
        let mtime = load::clock(None)?.unix_timestamp().try_into().unwrap_or(0);
        write_tar(std::io::stdout().lock(), &files, mtime).map_err(Error::Export)?;
    } else {
        install(&args.to, &files).map_err(Error::Export)?;
        if !super::global::quiet() {
            eprintln!("exported {} file(s) of `{}` under {}", files.len(), args.host, args.to.display());
        }
    }
    Ok(Outcome::Success)
}
