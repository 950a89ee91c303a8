//! `certplan apply PLAN --out DIR`: compile, then change exactly what the
//! plan requires in the output tree. Nothing is written on any error.

use super::{Error, Outcome, TreeArgs, global, load, plan};
use crate::pipeline::{Tree, apply};

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Plan, output directory, clock, rotations and templates.
    #[command(flatten)]
    pub tree: TreeArgs,
}

/// Runs `apply`.
pub fn run(args: &ApplyArgs) -> Result<Outcome, Error> {
    // The tree is locked and read while the plan compiles; reading it
    // creates nothing, so a plan with errors still writes nothing.
    let (mut compiled, tree) = load::compile_plan_beside(&args.tree.plan, || Tree::lock_existing(&args.tree.out))?;
    let tree = tree.map_err(Error::Tree)?;
    let options = plan::options(&args.tree)?;
    let templates = load::templates(&args.tree, &compiled.model)?;
    compiled.use_templates(&templates);
    let report = apply(&compiled, &args.tree.out, tree, &options, &templates);
    load::release(compiled);
    let report = report.map_err(Error::Apply)?;
    if !global::quiet() {
        plan::print_changes(&report.changes, true);
    }
    if global::verbose() {
        for change in &report.changes {
            for path in &change.writes {
                outln!("  wrote {path}");
            }
            for path in &change.removes {
                outln!("  removed {path}");
            }
        }
    }
    Ok(Outcome::Success)
}
