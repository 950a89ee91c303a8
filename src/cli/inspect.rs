//! `certplan inspect PLAN [--out DIR]`: every certificate and key of a plan
//! as a table (text or Markdown), or every artifact as the JSON document
//! automation relies on. With `--out`, what is on disk: real validity,
//! residual time, CA discovery hashes, files and the components that read them.

use std::io::Write;
use std::path::PathBuf;

use super::load;
use crate::audit::{Format, write_inspect_markdown, write_inspect_text};
use crate::inspect::report;
use crate::pipeline::clock;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The output directory, to read real validity, discovery hashes and file hashes.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// A table for people, the JSON contract, or Markdown tables.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Fix the clock (RFC 3339) for validity the plan implies and residual time.
    #[arg(long)]
    pub now: Option<String>,
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> u8 {
    let Some(loaded) = load::read_plan(&args.plan) else {
        return 1;
    };
    let Some(compiled) = load::compile_and_report(&loaded, false) else {
        return 1;
    };
    let now = match clock(args.now.as_deref()) {
        Ok(now) => now,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    let doc = report(&compiled.model, args.out.as_deref(), now);
    let on_disk = args.out.is_some();
    let mut stdout = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut stdout, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout)),
        Format::Text => write_inspect_text(&mut stdout, &doc, on_disk),
        Format::Markdown => write_inspect_markdown(&mut stdout, &doc, on_disk),
    };
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the report: {error}");
        return 1;
    }
    0
}
