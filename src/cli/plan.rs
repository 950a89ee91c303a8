//! `certplan plan PLAN --out DIR`: what `apply` would do, and why.

use super::{Error, Format, Outcome, TreeArgs, load};
use crate::changes::{Change, Options};
use crate::pipeline::{Tree, plan_changes};

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Plan, output directory, clock, rotations and templates.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Text for people or JSON for programs.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 0 when there is nothing to do, 2 when changes are pending, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// The decision options from common arguments.
pub fn options(tree: &TreeArgs) -> Result<Options, Error> {
    Ok(Options { now: load::clock(tree.now.as_deref())?, rotate: tree.rotate.clone() })
}

/// Runs `plan`.
pub fn run(args: &PlanArgs) -> Result<Outcome, Error> {
    // The tree is read while the plan compiles.
    let (mut compiled, tree) = load::compile_plan_beside(&args.tree.plan, || Tree::read(&args.tree.out))?;
    let templates = load::templates(&args.tree, &compiled.model)?;
    compiled.use_templates(&templates);
    let options = options(&args.tree)?;
    let tree = tree.map_err(Error::Tree)?;
    let changes = plan_changes(&compiled, &tree, &options).map_err(Error::Apply);
    load::release(compiled);
    let changes = changes?;
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({ "changes": changes });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => print_changes(&changes, false),
    }
    Ok(if args.detailed_exitcode && !changes.is_empty() { Outcome::ChangesPending } else { Outcome::Success })
}

/// Prints changes as lines `ACTION ID: REASON`, with a summary.
pub fn print_changes(changes: &[Change], done: bool) {
    if changes.is_empty() {
        outln!("Nothing to do: the output tree matches the plan.");
        return;
    }
    for change in changes {
        outln!("{} {}: {}", change.action.as_str(), change.id, change.reason);
        // `apply --verbose` lists what it wrote after the summary.
        if !done && super::global::verbose() {
            for path in &change.writes {
                outln!("  would write {path}");
            }
            for path in &change.removes {
                outln!("  would remove {path}");
            }
        }
    }
    let files: usize = changes.iter().map(|c| c.writes.len()).sum();
    let removed: usize = changes.iter().map(|c| c.removes.len()).sum();
    let verb = if done { "changed" } else { "to change" };
    outln!("{} artifact(s) {verb}: {files} file(s) written, {removed} removed.", changes.len());
}
