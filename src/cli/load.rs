//! What commands do before their own work: read the plan they name, compile
//! it and print its diagnostics (coloured as `color` decides), fix the
//! clock, and load the templates.

use std::path::Path;

use time::OffsetDateTime;

use super::{Error, color};
use crate::diag::{self, Diagnostic};
use crate::pipeline::{Compiled, compile};

/// A plan read from disk.
pub struct Loaded {
    /// The file name as given.
    pub name: String,
    /// Its text.
    pub source: String,
}

/// Reads a plan file.
pub fn read_plan(path: &Path) -> Result<Loaded, Error> {
    match std::fs::read_to_string(path) {
        Ok(source) => Ok(Loaded { name: path.display().to_string(), source }),
        Err(source) => Err(Error::ReadPlan { path: path.to_path_buf(), source }),
    }
}

/// Reads and compiles the plan at `path`, printing its diagnostics.
pub fn compile_plan(path: &Path) -> Result<Compiled, Error> {
    compile_and_report(&read_plan(path)?)
}

/// Reads and compiles the plan at `path`, printing its diagnostics, and
/// fixes the clock (`--now`): what `inspect` and `verify` start with.
pub fn compile_plan_at(path: &Path, now: Option<&str>) -> Result<(Compiled, OffsetDateTime), Error> {
    let compiled = compile_plan(path)?;
    Ok((compiled, clock(now)?))
}

/// Compiles a plan read with [`read_plan`] (printing its diagnostics) while
/// `beside` runs on another core: `plan` and `apply` read the output tree
/// meanwhile. `beside` runs to the end even when the plan has errors.
pub fn compile_beside<T: Send>(loaded: &Loaded, beside: impl FnOnce() -> T + Send) -> Result<(Compiled, T), Error> {
    let (compiled, other) = rayon::join(|| compile_and_report(loaded), beside);
    Ok((compiled?, other))
}

/// Compiles a plan, printing its diagnostics as text on stderr; fails when
/// it has errors.
fn compile_and_report(loaded: &Loaded) -> Result<Compiled, Error> {
    match compile(&loaded.source) {
        Ok(compiled) => {
            print_text(loaded, &compiled.warnings.0);
            Ok(compiled)
        }
        Err(diagnostics) => {
            print_text(loaded, &diagnostics.0);
            Err(Error::Diagnostics)
        }
    }
}

/// The clock to use: `--now`, else `SOURCE_DATE_EPOCH`, else the system's.
pub fn clock(now: Option<&str>) -> Result<OffsetDateTime, Error> {
    crate::pipeline::clock(now).map_err(Error::Clock)
}

/// The age identity from `--identity FILE` or the environment, if given.
pub fn keyring(file: Option<&Path>) -> Result<Option<std::sync::Arc<crate::secrets::Keyring>>, Error> {
    crate::secrets::Keyring::from_args(file).map(|k| k.map(std::sync::Arc::new)).map_err(Error::Secrets)
}

/// The templates to render with: `dir` (`--templates`), else the plan's
/// `templates` (relative to the plan file at `plan`), else the embedded ones.
pub fn templates(
    plan: &Path,
    dir: Option<&Path>,
    model: &crate::model::Model,
) -> Result<crate::render::Templates, Error> {
    let from_plan = || Some(plan.parent().unwrap_or(Path::new("")).join(model.templates.as_ref()?));
    let templates = match dir.map(Path::to_path_buf).or_else(from_plan) {
        Some(dir) => crate::render::Templates::with_overrides(&dir),
        None => crate::render::Templates::embedded(),
    };
    templates.map_err(Error::Templates)
}

/// Gets a compiled plan ready to decide and write with: its templates
/// (which become part of what is compared) and the certificates of its
/// external CAs, read beside the plan.
pub fn prepare(compiled: &mut Compiled, plan: &Path, dir: Option<&Path>) -> Result<crate::render::Templates, Error> {
    let templates = templates(plan, dir, &compiled.model)?;
    compiled.use_templates(&templates);
    compiled.use_external_cas(plan.parent().unwrap_or(Path::new(""))).map_err(Error::External)?;
    Ok(templates)
}

/// Prints diagnostics as text on stderr.
pub fn print_text(loaded: &Loaded, diagnostics: &[Diagnostic]) {
    if diagnostics.is_empty() {
        return;
    }
    // Diagnostics go to stderr, where a failed write has nowhere to be told.
    let _ = diag::render_text(&mut color::stderr(), &loaded.name, &loaded.source, diagnostics);
}

/// Lets go of a compiled plan without freeing it. The process exits right
/// after a command, and a large model is hundreds of thousands of small
/// allocations: freeing them one by one costs more than a no-op run's work.
pub fn release(compiled: Compiled) {
    std::mem::forget(compiled);
}
