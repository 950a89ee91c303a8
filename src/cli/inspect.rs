//! `certplan inspect PLAN [--out DIR]`: every certificate and key of a plan
//! as a table (text or Markdown), or every artifact as the JSON document
//! automation relies on. With `--out`, what is on disk: real validity,
//! residual time, CA discovery hashes, files and the components that read them.
//! `--show-secrets` adds the bootstrap tokens read from the tree — the only
//! way certplan ever prints a secret. `--format prometheus` prints the
//! metrics `verify` does, and exits 0 whatever they say.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Error, Outcome, load};
use crate::audit::Format;
use crate::audit::prometheus::write_prometheus;
use crate::audit::verify::{Options, Source, verify};
use crate::export::ExportError;
use crate::inspect::{report, write_markdown as write_inspect_markdown, write_text as write_inspect_text};
use crate::issue::{Secret, parse_bootstrap_secret, parse_token_csv};
use crate::model::{FileRole, Model, Spec};
use crate::secrets::Keyring;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The output directory, to read real validity, discovery hashes and file hashes.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// A table for people, the JSON contract, Markdown tables, or metrics
    /// for the node exporter's textfile collector (with `--out`).
    #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
    pub format: InspectFormat,
    /// Fix the clock (RFC 3339) for validity the plan implies and residual time.
    #[arg(long)]
    pub now: Option<String>,
    /// Also print the bootstrap tokens found in the output tree. They are
    /// credentials: never paste this output anywhere shared.
    #[arg(long, requires = "out")]
    pub show_secrets: bool,
    /// The age identity that opens an encrypted tree's token files for
    /// `--show-secrets`; else `CERTPLAN_AGE_IDENTITY` or
    /// `CERTPLAN_AGE_IDENTITY_FILE`.
    #[arg(long, value_name = "FILE", requires = "show_secrets")]
    pub identity: Option<PathBuf>,
}

/// Formats of the inspect report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectFormat {
    /// For people, coloured on a terminal.
    Text,
    /// For programs.
    Json,
    /// For pull requests and wikis.
    Markdown,
    /// For Prometheus, through the node exporter's textfile collector: the
    /// metrics of `verify --format prometheus`.
    Prometheus,
}

/// A token read from the output tree, for `--show-secrets`.
#[derive(serde::Serialize)]
struct ShownSecret {
    /// The artifact that holds it.
    id: String,
    /// The file it was read from, relative to the output directory.
    path: String,
    /// The token itself.
    token: String,
}

/// Reads every token of the plan from the output tree, decrypting the files
/// an encrypted tree holds with `keyring`.
fn read_secrets(model: &Model, out: &Path, keyring: Option<&Keyring>) -> Result<Vec<ShownSecret>, Error> {
    let mut shown = Vec::new();
    for artifact in &model.artifacts {
        let (role, parse): (FileRole, fn(&str) -> Option<Secret>) = match artifact.spec {
            Spec::TokenFile(_) => (FileRole::TokenFile, parse_token_csv),
            Spec::BootstrapToken(_) => (FileRole::SecretManifest, parse_bootstrap_secret),
            _ => continue,
        };
        let Some(file) = artifact.files.iter().find(|f| f.role == role) else { continue };
        let Ok(bytes) = std::fs::read(out.join(&file.path)) else { continue };
        let bytes = if crate::secrets::is_sealed(&file.path) {
            let keyring = keyring.ok_or_else(|| Error::Export(ExportError::NeedIdentity(file.path.clone())))?;
            keyring.open(&file.path, &bytes).map_err(Error::Secrets)?
        } else {
            zeroize::Zeroizing::new(bytes)
        };
        let Some(secret) = std::str::from_utf8(&bytes).ok().and_then(parse) else { continue };
        shown.push(ShownSecret { id: artifact.id.to_string(), path: file.path.clone(), token: secret.expose().into() });
    }
    Ok(shown)
}

fn write_secrets_text(out: &mut impl Write, secrets: &[ShownSecret]) -> std::io::Result<()> {
    writeln!(out, "\nSecrets (shown because of --show-secrets; keep them out of logs and tickets):")?;
    if secrets.is_empty() {
        writeln!(out, "  none found in the output tree")?;
    }
    for secret in secrets {
        writeln!(out, "  {}  {}  (from {})", secret.id, secret.token, secret.path)?;
    }
    Ok(())
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> Result<Outcome, Error> {
    let format = match args.format {
        InspectFormat::Text => Format::Text,
        InspectFormat::Json => Format::Json,
        InspectFormat::Markdown => Format::Markdown,
        InspectFormat::Prometheus => return metrics(args),
    };
    let (compiled, now) = load::compile_plan_at(&args.plan, args.now.as_deref())?;
    let doc = report(&compiled.model, &compiled.graph, args.out.as_deref(), now);
    let on_disk = args.out.is_some();
    let mut stdout = std::io::stdout().lock();
    let secrets = match args.out.as_deref() {
        Some(out) if args.show_secrets => {
            let keyring = load::keyring(args.identity.as_deref())?;
            Some(read_secrets(&compiled.model, out, keyring.as_deref())?)
        }
        _ => None,
    };
    let written = match format {
        Format::Json => {
            let mut value = serde_json::to_value(&doc).unwrap_or_default();
            if let (Some(secrets), Some(object)) = (&secrets, value.as_object_mut()) {
                object.insert("secrets".into(), serde_json::to_value(secrets).unwrap_or_default());
            }
            serde_json::to_writer_pretty(&mut stdout, &value)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
        }
        Format::Text | Format::Markdown => {
            let table = if format == Format::Text {
                write_inspect_text(&mut stdout, &doc, on_disk)
            } else {
                write_inspect_markdown(&mut stdout, &doc, on_disk)
            };
            table.and_then(|()| secrets.as_deref().map_or(Ok(()), |s| write_secrets_text(&mut stdout, s)))
        }
    };
    Error::written("report", written)?;
    Ok(Outcome::Success)
}

/// `inspect --format prometheus`: the metrics `verify` prints, whatever
/// they say (`verify` exits 1 when a check fails).
fn metrics(args: &InspectArgs) -> Result<Outcome, Error> {
    let out = args.out.as_deref().ok_or(Error::MetricsNeedTree)?;
    let (mut compiled, now) = load::compile_plan_at(&args.plan, args.now.as_deref())?;
    let options = Options { now, warn_within: None, keyring: None };
    let report = verify(&compiled.model, Source::Tree(out), &options).map_err(Error::Verify)?;
    let tree = super::verify::tree_facts(&mut compiled, &args.plan, out, now)?;
    Error::written("report", write_prometheus(&mut std::io::stdout().lock(), &report.cert_files, Some(&tree)))?;
    Ok(Outcome::Success)
}
