//! `certplan inspect PLAN [--out DIR]`: every artifact of a plan, as a table
//! or as the JSON document automation relies on.

use std::path::PathBuf;

use super::{Format, load};
use crate::inspect::report;
use crate::pipeline::clock;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The output directory, to read real validity and file hashes.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// A table for people or the JSON contract.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Fix the clock (RFC 3339) for validity the plan implies.
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
    match args.format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default()),
        Format::Text => {
            outln!("{:<40} {:<10} {:<40} {:<24} NOT AFTER", "ID", "KIND", "SUBJECT", "ISSUER");
            for a in &doc.artifacts {
                let subject = a
                    .subject
                    .as_ref()
                    .map(|s| {
                        serde_json::to_value(s)
                            .ok()
                            .and_then(|v| v["cn"].as_str().map(String::from))
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                outln!(
                    "{:<40} {:<10} {:<40} {:<24} {}",
                    a.id,
                    a.kind,
                    subject,
                    a.issuer.as_deref().unwrap_or("-"),
                    a.not_after.as_deref().unwrap_or("-")
                );
            }
        }
    }
    0
}
