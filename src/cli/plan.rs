//! `certplan plan PLAN --out DIR`: what `apply` would do, and why; with
//! `--save FILE`, also written to FILE for `apply FILE` to carry out.

use std::path::{Path, PathBuf};

use super::{DecideArgs, Error, Format, Outcome, TreeArgs, load};
use crate::changes::rollout::{Rollout, rollout};
use crate::changes::{Change, Options};
use crate::pipeline::{Compiled, SavedPlan, Tree, plan_changes};

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
    /// Also write the decided changes to FILE, with digests of the plan and the tree, for
    /// `certplan apply FILE` to carry out exactly those (or refuse if anything moved).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

/// The decision options from common arguments.
pub fn options(decide: &DecideArgs) -> Result<Options, Error> {
    Ok(Options { now: load::clock(decide.now.as_deref())?, rotate: decide.rotate.clone() })
}

/// Runs `plan`.
pub fn run(args: &PlanArgs) -> Result<Outcome, Error> {
    let TreeArgs { plan, out, decide } = &args.tree;
    let loaded = load::read_plan(plan)?;
    // The tree is read while the plan compiles.
    let (mut compiled, tree) = load::compile_beside(&loaded, || Tree::read(out))?;
    let templates = load::prepare(&mut compiled, plan, decide.templates.as_deref())?;
    let options = options(decide)?;
    let tree = tree.map_err(Error::Tree)?;
    let changes = plan_changes(&compiled, &tree, &options).map_err(Error::Apply);
    // A first apply installs everything anyway: a rollout is for a tree that runs.
    let rollout = changes
        .as_ref()
        .ok()
        .filter(|changes| changes.iter().any(|c| c.action != crate::changes::Action::Create))
        .map(|changes| rollout_of(&compiled, changes));
    if let Ok(changes) = &changes {
        for need in crate::pipeline::offline_keys_needed(&compiled, changes, &tree) {
            eprintln!("warning: {need}");
        }
    }
    warn_hard_cut(&decide.rotate, &compiled.model);
    load::release(compiled);
    let changes = changes?;
    if let Some(file) = &args.save {
        let saved = SavedPlan::new(plan, &loaded.source, out, &tree, &options, &changes)
            .with_templates(decide.templates.as_deref(), &templates);
        save(file, &saved)?;
    }
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({ "changes": changes, "rollout": rollout });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => {
            print_changes(&changes, false);
            for line in rollout.iter().flat_map(Rollout::to_text) {
                outln!("{line}");
            }
            if let Some(file) = &args.save {
                let file = file.display();
                outln!("Saved to `{file}`: `certplan apply {file}` makes exactly these changes.");
            }
        }
    }
    Ok(if args.detailed_exitcode && !changes.is_empty() { Outcome::ChangesPending } else { Outcome::Success })
}

/// How the changes reach the hosts: the files per host, what restarts, in
/// which order.
fn rollout_of(compiled: &Compiled, changes: &[Change]) -> Rollout {
    let model = &compiled.model;
    let hosts: Vec<String> = model.hosts.iter().map(|h| h.name.clone()).collect();
    let rotations = model
        .rotations
        .iter()
        .map(|(name, r)| (format!("cas.{name}"), r.step))
        .chain(model.key_rotation.as_ref().map(|r| ("sets.service-account".to_string(), r.step)))
        .collect();
    rollout(changes, &hosts, compiled.graph.consumers(&model.artifacts), rotations)
}

/// Warns that `--rotate ca/NAME` replaces a CA in one step: a host with the
/// new tree trusts none of the others until every host has it. The staged
/// way is offered for CAs outside a hierarchy, which it is for.
fn warn_hard_cut(rotate: &[String], model: &crate::model::Model) {
    let in_hierarchy = |id: &crate::model::ArtifactId| {
        model.artifacts.iter().any(|a| match &a.spec {
            crate::model::Spec::Ca(ca) => ca.issuer != a.id && (a.id == *id || ca.issuer == *id),
            _ => false,
        })
    };
    for id in rotate.iter().filter_map(|text| crate::model::ArtifactId::parse(text)) {
        if id.ca_name().is_some() && in_hierarchy(&id) {
            eprintln!(
                "warning: `--rotate {id}` replaces the CA and everything it signs at once: each host that gets the new tree stops trusting the hosts that have not, until every host has it."
            );
        } else if let Some(name) = id.ca_name() {
            eprintln!(
                "warning: `--rotate {id}` replaces the CA and everything it signs at once: each host that gets the new tree stops trusting the hosts that have not, until every host has it. On a running cluster, rotate in steps instead: `rotation = \"trust\"` in `[cas.{name}]`, then `\"issue\"`, then `\"retire\"`."
            );
        }
    }
}

/// Writes a saved plan to `file`.
fn save(file: &Path, saved: &SavedPlan) -> Result<(), Error> {
    let failed = |source: std::io::Error| Error::WriteFile { path: file.to_path_buf(), source };
    let json = saved.to_json().map_err(|e| failed(e.into()))?;
    std::fs::write(file, json).map_err(failed)
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
