//! `certplan apply PLAN --out DIR`: compile, then change exactly what the
//! plan requires in the output tree. `certplan apply SAVED`: carry out a
//! plan saved by `plan --save`, refusing when the plan, the templates, the
//! tree or the decided changes moved since. Nothing is written on any error.

use std::path::{Path, PathBuf};

use super::{DecideArgs, Error, Outcome, global, load, plan};
use crate::changes::Options;
use crate::pipeline::{ApplyReport, Run, SavedPlan, Tree, apply, apply_saved};
use crate::progress::Progress;

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The plan file, or a plan saved by `plan --save` (told apart by its content).
    pub plan: PathBuf,
    /// The output directory; a saved plan names its own, which `--out` may only repeat.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Clock, rotations and templates.
    #[command(flatten)]
    pub decide: DecideArgs,
}

/// Runs `apply`.
pub fn run(args: &ApplyArgs) -> Result<Outcome, Error> {
    let loaded = load::read_plan(&args.plan)?;
    let saved = SavedPlan::recognise(&loaded.source)
        .map_err(|source| Error::ReadSavedPlan { path: args.plan.clone(), source })?;
    let report = match saved {
        Some(saved) => apply_saved_plan(args, &saved)?,
        None => apply_plan(args, &loaded)?,
    };
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

/// Applies the plan file `loaded` to `--out`.
fn apply_plan(args: &ApplyArgs, loaded: &load::Loaded) -> Result<ApplyReport, Error> {
    let out = args.out.as_deref().ok_or(Error::NoOut)?;
    // The tree is locked and read while the plan compiles; reading it
    // creates nothing, so a plan with errors still writes nothing.
    let (mut compiled, tree) = load::compile_beside(loaded, || Tree::lock_existing(out))?;
    let tree = tree.map_err(Error::Tree)?;
    let options = plan::options(&args.decide)?;
    let templates = load::prepare(&mut compiled, &args.plan, args.decide.templates.as_deref())?;
    let keyring = load::keyring(args.decide.identity.as_deref())?;
    let progress = Progress::for_terminal(global::quiet());
    let report = apply(&compiled, out, tree, &options, &templates, Run { keyring, progress: &progress });
    load::release(compiled);
    report.map_err(Error::Apply)
}

/// Applies a saved plan: its plan, its output directory, its `--rotate` ids
/// and its templates; only the clock is this run's.
fn apply_saved_plan(args: &ApplyArgs, saved: &SavedPlan) -> Result<ApplyReport, Error> {
    same_directory("--out", args.out.as_deref(), Some(saved.out.as_path()))?;
    same_directory("--templates", args.decide.templates.as_deref(), saved.templates.as_deref())?;
    same_rotations(&args.decide.rotate, &saved.rotate)?;
    let plan = &saved.plan.path;
    let loaded = load::read_plan(plan)?;
    saved.check_plan(&loaded.source).map_err(Error::Stale)?;
    let (mut compiled, tree) = load::compile_beside(&loaded, || Tree::lock_existing(&saved.out))?;
    let tree = tree.map_err(Error::Tree)?;
    let options = Options { now: load::clock(args.decide.now.as_deref())?, rotate: saved.rotate.clone() };
    let templates = load::prepare(&mut compiled, plan, saved.templates.as_deref())?;
    let keyring = load::keyring(args.decide.identity.as_deref())?;
    let progress = Progress::for_terminal(global::quiet());
    let report = apply_saved(&compiled, saved, tree, &options, &templates, Run { keyring, progress: &progress });
    load::release(compiled);
    report.map_err(Error::Apply)
}

/// Refuses a directory given with `flag` that is not the one the saved plan
/// names (`saved`): the same path, or one that leads to the same place.
fn same_directory(flag: &str, given: Option<&Path>, saved: Option<&Path>) -> Result<(), Error> {
    let Some(given) = given else {
        return Ok(());
    };
    let same = saved.is_some_and(|saved| {
        saved == given
            || matches!((std::fs::canonicalize(saved), std::fs::canonicalize(given)), (Ok(a), Ok(b)) if a == b)
    });
    if same {
        return Ok(());
    }
    Err(Error::NotAsSaved {
        saved: saved.map_or_else(|| format!("without `{flag}`"), |saved| format!("with `{flag} {}`", saved.display())),
        given: format!("{flag} {}", given.display()),
    })
}

/// Refuses `--rotate` ids that are not the saved plan's (in any order).
fn same_rotations(given: &[String], saved: &[String]) -> Result<(), Error> {
    let sorted = |ids: &[String]| {
        let mut ids = ids.to_vec();
        ids.sort();
        ids
    };
    if given.is_empty() || sorted(given) == sorted(saved) {
        return Ok(());
    }
    let flags = |ids: &[String]| ids.iter().map(|id| format!("--rotate {id}")).collect::<Vec<_>>().join(" ");
    Err(Error::NotAsSaved {
        saved: if saved.is_empty() { "without `--rotate`".to_string() } else { format!("with `{}`", flags(saved)) },
        given: flags(given),
    })
}
