//! Saved plans: what `plan --save` decided, kept in a file so that `apply`
//! carries out exactly that later, or refuses, naming what moved. A saved
//! plan holds the plan's path and the SHA-256 of its text, the digests of
//! the override templates, a fingerprint of the output tree as it was read,
//! the `--rotate` ids and the decided changes; never a secret (specs and
//! changes hold none). Making, reading and comparing saved plans is here
//! (the tree's fingerprint in `fingerprint.rs`, the changes compared in
//! `difference.rs`); the command line reads and writes the file.

mod difference;
mod fingerprint;
#[cfg(test)]
mod tests;

pub use difference::ChangeDifference;
pub use fingerprint::{TreeChange, TreeFingerprint};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use super::Tree;
use crate::changes::{Change, Options, sha256_hex};
use crate::render::Templates;
use difference::first_change_difference;

/// The `kind` of every saved plan: a file is recognised by its content,
/// whatever its name.
pub const SAVED_PLAN_KIND: &str = "certplan-saved-plan";

/// The format of saved plans this certplan writes and reads.
pub const SAVED_PLAN_VERSION: u32 = 1;

/// The certplan that saves or applies a plan.
const CERTPLAN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A plan decided and saved by `plan --save`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`SAVED_PLAN_KIND`].
    pub kind: String,
    /// The format, [`SAVED_PLAN_VERSION`].
    pub version: u32,
    /// The version of certplan that decided it.
    pub certplan: String,
    /// The plan file.
    pub plan: PlanDigest,
    /// The output directory, as given to `plan`.
    pub out: PathBuf,
    /// `--templates`, as given to `plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<PathBuf>,
    /// `NAME sha256:HEX` of each override template it was decided with, by
    /// name; empty when every template is the embedded one.
    #[serde(default)]
    pub template_overrides: Vec<String>,
    /// The output tree as it was read.
    pub tree: TreeFingerprint,
    /// `--rotate` ids, as given.
    #[serde(default)]
    pub rotate: Vec<String>,
    /// The clock it was decided with (RFC 3339), for people: `apply` runs
    /// with its own clock and compares the changes it decides.
    pub decided_at: String,
    /// The changes, in the order `apply` carries them out.
    pub changes: Vec<Change>,
}

/// The plan file a saved plan was decided from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDigest {
    /// Its path, as given to `plan`.
    pub path: PathBuf,
    /// The SHA-256 of its text, hex.
    pub sha256: String,
}

/// Why a file is not a saved plan certplan can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedPlanError {
    /// JSON, which no plan file is, without the `kind` of a saved plan.
    #[error(
        "it is JSON but not a plan saved by `certplan plan --save` (its `kind` is not `{kind}`)",
        kind = SAVED_PLAN_KIND
    )]
    NotSaved,
    /// A saved plan in another format.
    #[error(
        "it is a saved plan of format version {found}; this certplan reads version {expected}",
        expected = SAVED_PLAN_VERSION
    )]
    Version {
        /// Its version.
        found: u64,
    },
    /// A saved plan that does not parse.
    #[error("it is damaged: {0}")]
    Damaged(serde_json::Error),
}

/// Why a saved plan is refused: something moved since it was saved, so what
/// `apply` would do is not what was reviewed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Stale {
    /// Another version of certplan saved it.
    #[error("the plan was saved by certplan {saved}; this is certplan {now}")]
    Certplan {
        /// The version that saved it.
        saved: String,
        /// This version.
        now: String,
    },
    /// The plan's text changed.
    #[error("the plan `{}` changed since it was saved (sha256 {} → {})", path.display(), short(saved), short(now))]
    Plan {
        /// The plan file.
        path: PathBuf,
        /// The digest saved.
        saved: String,
        /// Its digest now.
        now: String,
    },
    /// An override template changed, came or went.
    #[error("the templates changed since the plan was saved ({} → {})", overrides(saved), overrides(now))]
    Templates {
        /// The override digests saved.
        saved: Vec<String>,
        /// The override digests now.
        now: Vec<String>,
    },
    /// The output tree is not as it was read.
    #[error("the output tree changed since the plan was saved: {0}")]
    Tree(TreeChange),
    /// Deciding again gives other changes (a renewal that came due).
    #[error("the changes decided now are not the saved ones: {0}")]
    Changes(ChangeDifference),
}

impl SavedPlan {
    /// What `plan` decided: `changes`, for the plan at `plan` whose text is
    /// `source`, against `tree` (read from `out`), with `options`. The
    /// templates are the embedded ones until [`Self::with_templates`].
    #[must_use]
    pub fn new(plan: &Path, source: &str, out: &Path, tree: &Tree, options: &Options, changes: &[Change]) -> Self {
        Self {
            kind: SAVED_PLAN_KIND.to_string(),
            version: SAVED_PLAN_VERSION,
            certplan: CERTPLAN_VERSION.to_string(),
            plan: PlanDigest { path: plan.to_path_buf(), sha256: sha256_hex(source.as_bytes()) },
            out: out.to_path_buf(),
            templates: None,
            template_overrides: Vec::new(),
            tree: TreeFingerprint::of(tree),
            rotate: options.rotate.clone(),
            // Only people read it (nothing is compared with it), and a clock
            // that came from `--now` or the system always formats.
            decided_at: options.now.format(&Rfc3339).unwrap_or_default(),
            changes: changes.to_vec(),
        }
    }

    /// The same, decided with `templates`, loaded from `dir` (`--templates`)
    /// when given.
    #[must_use]
    pub fn with_templates(mut self, dir: Option<&Path>, templates: &Templates) -> Self {
        self.templates = dir.map(Path::to_path_buf);
        self.template_overrides = templates.override_digests();
        self
    }

    /// The saved plan as JSON, ending in a newline; it fails only on a path
    /// that is not UTF-8.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut json = serde_json::to_string_pretty(self)?;
        json.push('\n');
        Ok(json)
    }

    /// Reads `text` as a saved plan: `None` when it is not JSON (a plan
    /// file, which is TOML). JSON is a saved plan or an error: no plan file
    /// starts with `{`.
    pub fn recognise(text: &str) -> Result<Option<Self>, SavedPlanError> {
        if !text.trim_start().starts_with('{') {
            return Ok(None);
        }
        let value: Value = serde_json::from_str(text).map_err(SavedPlanError::Damaged)?;
        if value.get("kind").and_then(Value::as_str) != Some(SAVED_PLAN_KIND) {
            return Err(SavedPlanError::NotSaved);
        }
        if let Some(found) = value.get("version").and_then(Value::as_u64)
            && found != u64::from(SAVED_PLAN_VERSION)
        {
            return Err(SavedPlanError::Version { found });
        }
        serde_json::from_value(value).map(Some).map_err(SavedPlanError::Damaged)
    }

    /// Refuses when this certplan is not the one that saved the plan, or
    /// when the plan's text (`source`) is not the one saved.
    pub fn check_plan(&self, source: &str) -> Result<(), Stale> {
        if self.certplan != CERTPLAN_VERSION {
            return Err(Stale::Certplan { saved: self.certplan.clone(), now: CERTPLAN_VERSION.to_string() });
        }
        let now = sha256_hex(source.as_bytes());
        if now != self.plan.sha256 {
            return Err(Stale::Plan { path: self.plan.path.clone(), saved: self.plan.sha256.clone(), now });
        }
        Ok(())
    }

    /// Refuses when the override templates are not those saved.
    pub fn check_templates(&self, templates: &Templates) -> Result<(), Stale> {
        let now = templates.override_digests();
        if now != self.template_overrides {
            return Err(Stale::Templates { saved: self.template_overrides.clone(), now });
        }
        Ok(())
    }

    /// Refuses when the output tree, read under its lock, is not as saved.
    pub fn check_tree(&self, tree: &Tree) -> Result<(), Stale> {
        match self.tree.first_difference(&TreeFingerprint::of(tree)) {
            Some(change) => Err(Stale::Tree(change)),
            None => Ok(()),
        }
    }

    /// Refuses when the changes decided now are not the saved ones.
    pub fn check_changes(&self, now: &[Change]) -> Result<(), Stale> {
        match first_change_difference(&self.changes, now) {
            Some(difference) => Err(Stale::Changes(difference)),
            None => Ok(()),
        }
    }
}

/// A digest as people compare them: its first twelve hex digits.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// A list of override digests, or what it means when empty.
fn overrides(digests: &[String]) -> String {
    if digests.is_empty() { "the embedded ones".to_string() } else { digests.join(", ") }
}
