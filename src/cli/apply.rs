//! `certplan apply PLAN --out DIR`: compile, then change exactly what the
//! plan requires in the output tree. Nothing is written on any error.

use std::path::{Path, PathBuf};

use super::{TreeArgs, global, load, plan};
use crate::pipeline::apply;
use crate::render::Templates;

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Plan, output directory, clock and rotations.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Templates that replace the embedded ones file by file (`flags.env`,
    /// `kubeconfig.yaml`, ...); takes precedence over `templates` in the plan.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// The templates to render with: `--templates`, else the plan's `templates`
/// (relative to the plan file), else the embedded ones.
fn templates(args: &ApplyArgs, source: &str) -> Result<Templates, String> {
    let from_plan = || {
        let dir = crate::plan::parse_plan(source).ok()?.templates?.into_inner();
        Some(args.tree.plan.parent().unwrap_or(Path::new("")).join(dir))
    };
    match args.templates.clone().or_else(from_plan) {
        Some(dir) => Templates::with_overrides(&dir).map_err(|e| e.to_string()),
        None => Ok(Templates::embedded()),
    }
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
    let templates = match templates(args, &loaded.source) {
        Ok(templates) => templates,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    match apply(&compiled, &args.tree.out, &options, &templates) {
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
