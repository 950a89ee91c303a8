//! Reading and compiling the plan a command names, and printing its
//! diagnostics (coloured as `color` decides).

use std::path::Path;

use super::{Format, color};
use crate::diag::{self, Diagnostic};
use crate::pipeline::{Compiled, compile};

/// A plan read from disk.
pub struct Loaded {
    /// The file name as given.
    pub name: String,
    /// Its text.
    pub source: String,
}

/// Reads a plan file, printing an error on failure.
pub fn read_plan(path: &Path) -> Option<Loaded> {
    match std::fs::read_to_string(path) {
        Ok(source) => Some(Loaded { name: path.display().to_string(), source }),
        Err(error) => {
            eprintln!("error: cannot read the plan `{}`: {error}", path.display());
            None
        }
    }
}

/// The templates to render with: `--templates`, else the plan's `templates`
/// (relative to the plan file), else the embedded ones.
pub fn templates(tree: &super::TreeArgs, model: &crate::model::Model) -> Result<crate::render::Templates, String> {
    let from_plan = || Some(tree.plan.parent().unwrap_or(Path::new("")).join(model.templates.as_ref()?));
    match tree.templates.clone().or_else(from_plan) {
        Some(dir) => crate::render::Templates::with_overrides(&dir).map_err(|e| e.to_string()),
        None => crate::render::Templates::embedded().map_err(|e| e.to_string()),
    }
}

/// Compiles a plan, printing its diagnostics as text on stderr. `None` when
/// it has errors (or warnings, when they are denied).
pub fn compile_and_report(loaded: &Loaded, deny_warnings: bool) -> Option<Compiled> {
    match compile(&loaded.source) {
        Ok(compiled) => {
            print_text(loaded, &compiled.warnings.0);
            (!deny_warnings || compiled.warnings.0.is_empty()).then_some(compiled)
        }
        Err(diagnostics) => {
            print_text(loaded, &diagnostics.0);
            None
        }
    }
}

/// Prints diagnostics as text on stderr.
pub fn print_text(loaded: &Loaded, diagnostics: &[Diagnostic]) {
    if diagnostics.is_empty() {
        return;
    }
    // Diagnostics go to stderr, where a failed write has nowhere to be told.
    let _ = diag::render_text(&mut color::stderr(), &loaded.name, &loaded.source, diagnostics);
}

/// Prints diagnostics in a format: text on stderr, JSON on stdout.
pub fn print_diagnostics(loaded: &Loaded, diagnostics: &[Diagnostic], format: Format) {
    match format {
        Format::Text => print_text(loaded, diagnostics),
        Format::Json => {
            let json = diag::render_json(&loaded.name, &loaded.source, diagnostics);
            outln!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
        }
    }
}

/// Lets go of a compiled plan without freeing it. The process exits right
/// after a command, and a large model is hundreds of thousands of small
/// allocations: freeing them one by one costs more than a no-op run's work.
pub fn release(compiled: Compiled) {
    std::mem::forget(compiled);
}
