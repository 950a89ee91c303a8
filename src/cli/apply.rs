//! `certplan apply PLAN --out DIR`: compile, then change exactly what the
//! plan requires in the output tree. Nothing is written on any error.

use super::{TreeArgs, global, load, plan};
use crate::pipeline::{Tree, apply};

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Plan, output directory, clock, rotations and templates.
    #[command(flatten)]
    pub tree: TreeArgs,
}

/// Runs `apply`.
pub fn run(args: &ApplyArgs) -> u8 {
    let Some(loaded) = load::read_plan(&args.tree.plan) else {
        return 1;
    };
    // The tree is locked and read while the plan compiles; reading it
    // creates nothing, so a plan with errors still writes nothing.
    let (compiled, tree) =
        rayon::join(|| load::compile_and_report(&loaded, false), || Tree::lock_existing(&args.tree.out));
    let Some(mut compiled) = compiled else {
        return 1;
    };
    let tree = match tree {
        Ok(tree) => tree,
        Err(error) => {
            eprintln!("error: {error}");
            return 1;
        }
    };
    let options = match plan::options(&args.tree) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    let templates = match load::templates(&args.tree, &compiled.model) {
        Ok(templates) => templates,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    compiled.use_templates(&templates);
    let result = apply(&compiled, &args.tree.out, tree, &options, &templates);
    load::release(compiled);
    match result {
        Ok(report) => {
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
            0
        }
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    }
}
