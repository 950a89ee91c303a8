//! Lint rules over a lowered model: mistakes that parse fine but make a
//! cluster fail or weaken it. Each rule has a stable id (catalogued in
//! `diag::RuleId`, explained in the book's rule reference) and points back
//! into the plan. Warnings the plan allows with `[[allow]]` are dropped.

mod coverage;
mod identity;
mod structure;
mod tree;
mod validity;

pub use tree::check_tree;

use crate::diag::Diagnostics;
use crate::model::{Artifact, Model};

/// Runs every rule.
#[must_use]
pub fn check_model(model: &Model) -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    structure::check(model, &mut diagnostics);
    validity::check(model, &mut diagnostics);
    identity::check(model, &mut diagnostics);
    coverage::check(model, &mut diagnostics);
    diagnostics.0.retain(|d| d.is_error() || !model.allowed.contains(&d.rule));
    diagnostics
}

/// The best span for a value of an artifact: the specific one, else where the
/// artifact comes from.
fn span_of(artifact: &Artifact, specific: Option<&std::ops::Range<usize>>) -> Option<std::ops::Range<usize>> {
    specific.cloned().or_else(|| artifact.origin.clone())
}
