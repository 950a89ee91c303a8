//! `certplan adopt PLAN --out DIR --host NAME=ROOT… [--cluster ROOT]`: a
//! new output tree that takes over the PKI copied from running hosts, then
//! what is left for `apply`, in `plan`'s words.

use std::path::PathBuf;

use super::{Error, Format, Outcome, load, plan};
use crate::adopt::{Adoption, Sources, adopt};
use crate::changes::Options;
use crate::pipeline::{Tree, plan_changes};

/// Arguments of `adopt`.
#[derive(Debug, clap::Args)]
pub struct AdoptArgs {
    /// The plan that describes the running cluster.
    pub plan: PathBuf,
    /// The new output tree (a directory that does not exist yet, or is empty).
    #[arg(long, short)]
    pub out: PathBuf,
    /// A host of the plan and a copy of its file system (at least its PKI
    /// and configuration directories); once per host copied.
    #[arg(long = "host", value_name = "NAME=ROOT")]
    pub hosts: Vec<String>,
    /// A directory shaped like the tree's `cluster/` (CA keys under `pki/`,
    /// users' certificates and kubeconfigs), for what no host keeps.
    #[arg(long, value_name = "ROOT")]
    pub cluster: Option<PathBuf>,
    /// Fix the clock (RFC 3339); `SOURCE_DATE_EPOCH` works too.
    #[arg(long)]
    pub now: Option<String>,
    /// Templates that replace the embedded ones, as `apply --templates`.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Text for people or JSON for programs.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Runs `adopt`.
pub fn run(args: &AdoptArgs) -> Result<Outcome, Error> {
    let loaded = load::read_plan(&args.plan)?;
    let (mut compiled, ()) = load::compile_beside(&loaded, || ())?;
    let templates = load::prepare(&mut compiled, &args.plan, args.templates.as_deref())?;
    let now = load::clock(args.now.as_deref())?;
    let sources = Sources::new(&compiled.model, &args.hosts, args.cluster.as_deref()).map_err(Error::Adopt)?;
    let adoption = adopt(&compiled, &args.out, &sources, &templates, now).map_err(Error::Adopt)?;
    let tree = Tree::read(&args.out).map_err(Error::Tree)?;
    let options = Options { now, rotate: Vec::new() };
    let changes = plan_changes(&compiled, &tree, &options).map_err(Error::Apply)?;
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({
                "adopted": adoption.adopted,
                "notes": adoption.notes,
                "changes": changes,
            });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => {
            print_adoption(&adoption);
            outln!(
                "Adopted {} artifacts into `{}`. Left for `apply` (as `certplan plan` shows):",
                adoption.adopted.len(),
                args.out.display()
            );
            plan::print_changes(&changes, false);
        }
    }
    Ok(Outcome::Success)
}

/// `adopt ID: FROM, …` per artifact, then `note ID: …`.
fn print_adoption(adoption: &Adoption) {
    for adopted in &adoption.adopted {
        outln!("adopt {}: {}", adopted.id, adopted.from.join(", "));
    }
    for note in &adoption.notes {
        outln!("note {}: {}", note.id, note.note);
    }
}
