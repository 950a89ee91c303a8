//! `certplan apply PLAN --out DIR`: compile, then change exactly what the
//! plan requires in the output tree. Nothing is written on any error.

use super::{TreeArgs, load, plan};
use crate::pipeline::apply;
use crate::render::Templates;

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Plan, output directory, clock and rotations.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `apply`.
pub fn run(args: &ApplyArgs) -> u8 {
    let Some(loaded) = load::read_plan(&args.tree.plan) else {
        return 1;
    };
    let Some(compiled) = load::compile_and_report(&loaded, false) else {
        return 1;
    };
    let options = match plan::options(&args.tree) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    match apply(&compiled, &args.tree.out, &options, &Templates::embedded()) {
        Ok(report) => {
            if !args.quiet {
                plan::print_changes(&report.changes, true);
            }
            0
        }
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    }
}
