//! `certplan check PLAN...`: parse, lower and check each plan; print diagnostics.

use std::path::PathBuf;

use super::load::Loaded;
use super::{Error, Format, Outcome, load};
use crate::check::check_tree;
use crate::diag::{self, Diagnostic};
use crate::pipeline::compile;
use crate::state::State;
use time::OffsetDateTime;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The plan files; each is checked on its own, and the check fails when
    /// any of them does.
    #[arg(required = true, value_name = "PLAN")]
    pub plans: Vec<PathBuf>,
    /// Diagnostics as text (stderr) or JSON (stdout).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat warnings as errors (`--deny warnings`).
    #[arg(long, value_name = "warnings")]
    pub deny: Option<Deny>,
    /// Also check each plan against this output tree: a CA rotation step
    /// that skips the tree's, a CA in the last fifth of its validity.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The clock for `--out` (RFC 3339); `SOURCE_DATE_EPOCH` works too.
    #[arg(long, requires = "out")]
    pub now: Option<String>,
}

/// What `--deny` turns into errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deny {
    /// Every warning.
    Warnings,
}

/// Runs `check` on each plan in turn. Every plan is read before any is
/// checked, so a file that cannot be read stops the command before it says
/// anything else; a plan with errors does not stop the plans after it, so
/// one run (a pre-commit hook, a CI job) shows the diagnostics of them all.
pub fn run(args: &CheckArgs) -> Result<Outcome, Error> {
    let plans = args.plans.iter().map(PathBuf::as_path).map(load::read_plan).collect::<Result<Vec<_>, _>>()?;
    let tree = match &args.out {
        Some(out) => Some((
            crate::state::State::load(out).map_err(|e| Error::Apply(e.into()))?,
            load::clock(args.now.as_deref())?,
        )),
        None => None,
    };
    let mut json = Vec::new();
    let mut failed = false;
    for loaded in &plans {
        let checked = check_plan(loaded, args.deny.is_some(), tree.as_ref());
        match args.format {
            Format::Text => print_text(loaded, &checked),
            // One array for all the plans: each diagnostic names its file.
            Format::Json => json.push(diag::render_json(&loaded.name, &loaded.source, &checked.diagnostics)),
        }
        failed |= checked.failed;
    }
    if args.format == Format::Json {
        let all: Vec<serde_json::Value> = json.into_iter().flat_map(array_items).collect();
        outln!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    }
    if failed { Err(Error::Diagnostics) } else { Ok(Outcome::Success) }
}

/// One plan, checked.
struct Checked {
    /// Its warnings, or its errors (and warnings) when it does not compile.
    diagnostics: Vec<Diagnostic>,
    /// Whether it fails the check: it has errors, or warnings and `--deny warnings`.
    failed: bool,
    /// What it compiled to, for `--verbose`; `None` when it does not compile.
    summary: Option<String>,
}

fn check_plan(loaded: &Loaded, deny_warnings: bool, tree: Option<&(State, OffsetDateTime)>) -> Checked {
    match compile(&loaded.source) {
        Ok(mut compiled) => {
            let mut diagnostics = std::mem::take(&mut compiled.warnings.0);
            if let Some((state, now)) = tree {
                diagnostics.extend(check_tree(&compiled.model, state, *now).0);
                diagnostics.sort_by_key(|d| !d.is_error());
            }
            let summary = summary(&compiled.model);
            load::release(compiled);
            let errors = diagnostics.iter().any(Diagnostic::is_error);
            Checked {
                failed: errors || (deny_warnings && !diagnostics.is_empty()),
                diagnostics,
                summary: Some(summary),
            }
        }
        Err(diagnostics) => Checked { diagnostics: diagnostics.0, failed: true, summary: None },
    }
}

/// A plan's diagnostics on stderr, then its line of counts.
fn print_text(loaded: &Loaded, checked: &Checked) {
    load::print_text(loaded, &checked.diagnostics);
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = checked.diagnostics.len() - errors;
    if checked.failed {
        eprintln!("{}: {errors} error(s), {warnings} warning(s)", loaded.name);
    } else {
        eprintln!("{}: ok ({warnings} warning(s))", loaded.name);
        if let Some(summary) = checked.summary.as_ref().filter(|_| super::global::verbose()) {
            eprintln!("{summary}");
        }
    }
}

/// The items of a JSON array. `render_json` always gives an array; anything
/// else would be one item.
fn array_items(value: serde_json::Value) -> Vec<serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    }
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
