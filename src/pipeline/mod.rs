//! The pipeline, end to end: [`compile`] runs parse → lower → check → graph
//! without touching the disk; [`apply`] decides the changes against the
//! output tree, issues, renders and writes exactly those. A plan saved by
//! `plan --save` ([`SavedPlan`]) is carried out by [`apply_saved`], which
//! refuses when anything moved since.

mod apply;
pub mod external;
mod material;
pub mod saved;
mod tree;

pub use apply::{ApplyError, ApplyReport, Run, apply, apply_saved, clock, offline_keys_needed, plan_changes};
pub use saved::SavedPlan;
pub use tree::Tree;

use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::graph::Graph;
use crate::model::Model;

/// A plan that compiled: its model, graph and any warnings.
#[derive(Debug)]
pub struct Compiled {
    /// The model.
    pub model: Model,
    /// Its artifact graph.
    pub graph: Graph,
    /// Warnings (errors stop compilation).
    pub warnings: Diagnostics,
}

impl Compiled {
    /// Makes the templates part of what is compared: every artifact an
    /// override template renders carries that template's digest, so editing
    /// an override rewrites exactly its files (and `plan` says so).
    pub fn use_templates(&mut self, templates: &crate::render::Templates) {
        if self.model.stamp_templates(|name| templates.override_digest(name))
            && let Ok(graph) = Graph::build(&self.model)
        {
            self.graph = graph;
        }
    }
}

/// Compiles plan text; on failure, every diagnostic found (warnings too).
pub fn compile(source: &str) -> Result<Compiled, Diagnostics> {
    let plan = crate::plan::parse_plan(source).map_err(|d| Diagnostics(vec![*d]))?;
    let model = crate::model::lower_plan(&plan)?;
    let mut diagnostics = crate::check::check_model(&model);
    if diagnostics.has_errors() {
        diagnostics.sort();
        return Err(diagnostics);
    }
    if !model.faults.is_empty() {
        let faults = model.faults.iter().map(|fault| {
            Diagnostic::error(
                RuleId::InternalMissingFile,
                format!("{fault}: this is a bug in certplan, please report it"),
            )
        });
        return Err(Diagnostics(faults.collect()));
    }
    let graph =
        Graph::build(&model).map_err(|e| Diagnostics(vec![Diagnostic::error(RuleId::InternalGraph, e.to_string())]))?;
    diagnostics.sort();
    Ok(Compiled { model, graph, warnings: diagnostics })
}
