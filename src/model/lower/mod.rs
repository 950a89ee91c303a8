//! Lowering: [`PlanFile`] → [`Model`]. Resolves defaults, CAs per set and
//! values (IPs, CIDRs, SANs, durations), then builds every artifact. Every
//! malformed value becomes a diagnostic pointing at it; lowering reports all
//! of them, not just the first.

mod artifacts;
mod context;
mod files;
mod flags;

pub use flags::{MissingFile, loopback};

use crate::diag::Diagnostics;
use crate::plan::PlanFile;

use super::Model;

/// Lowers a parsed plan into the model, or returns every error found.
pub fn lower_plan(plan: &PlanFile) -> Result<Model, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let context = context::resolve(plan, &mut diagnostics);
    match context {
        Some(context) if !diagnostics.has_errors() => Ok(artifacts::build(context)),
        _ => Err(diagnostics),
    }
}
