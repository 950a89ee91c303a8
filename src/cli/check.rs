//! `certplan check PLAN`: parse, lower and check; print diagnostics.

use std::path::PathBuf;

use super::{Error, Format, Outcome, load};
use crate::pipeline::compile;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Diagnostics as text (stderr) or JSON (stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat warnings as errors (`--deny warnings`).
    #[arg(long, value_name = "warnings")]
    pub deny: Option<Deny>,
}

/// What `--deny` turns into errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deny {
    /// Every warning.
    Warnings,
}

/// Runs `check`.
pub fn run(args: &CheckArgs) -> Result<Outcome, Error> {
    let loaded = load::read_plan(&args.plan)?;
    let mut verbose_summary = None;
    let (diagnostics, failed) = match compile(&loaded.source) {
        Ok(mut compiled) => {
            let failed = args.deny.is_some() && !compiled.warnings.0.is_empty();
            verbose_summary = Some(summary(&compiled.model));
            let warnings = std::mem::take(&mut compiled.warnings.0);
            load::release(compiled);
            (warnings, failed)
        }
        Err(diagnostics) => (diagnostics.0, true),
    };
    load::print_diagnostics(&loaded, &diagnostics, args.format);
    if args.format == Format::Text {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = diagnostics.len() - errors;
        if failed {
            eprintln!("{}: {errors} error(s), {warnings} warning(s)", loaded.name);
        } else {
            eprintln!("{}: ok ({warnings} warning(s))", loaded.name);
            if let Some(summary) = verbose_summary.filter(|_| super::global::verbose()) {
                eprintln!("{summary}");
            }
        }
    }
    if failed { Err(Error::Diagnostics) } else { Ok(Outcome::Success) }
}

/// What the plan compiles to, for `check --verbose`: artifacts by kind, hosts, files.
fn summary(model: &crate::model::Model) -> String {
    let mut kinds: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for artifact in &model.artifacts {
        *kinds.entry(artifact.spec.kind()).or_default() += 1;
    }
    let files: usize = model.artifacts.iter().map(|a| a.files.len()).sum();
    let kinds: Vec<String> = kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    format!(
        "  {} host(s); {} artifact(s): {}; {files} file(s)",
        model.hosts.len(),
        model.artifacts.len(),
        kinds.join(", ")
    )
}
