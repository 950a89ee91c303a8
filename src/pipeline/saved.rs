//! Saved plans: what `plan --save` decided, kept in a file so that `apply`
//! carries out exactly that later, or refuses, naming what moved. A saved
//! plan holds the plan's path and the SHA-256 of its text, the digests of
//! the override templates, a fingerprint of the output tree as it was read,
//! the `--rotate` ids and the decided changes; never a secret (specs and
//! changes hold none). Making, reading and comparing saved plans is here;
//! the command line reads and writes the file.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use super::Tree;
use crate::changes::{Action, Change, FileStatus, Options, sha256_hex};
use crate::model::ArtifactId;
use crate::render::Templates;

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

/// What deciding read of an output tree, in short: its state and the
/// recorded files that are not as the state says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFingerprint {
    /// The SHA-256 of the state as read (its JSON as certplan writes it);
    /// `None` when the tree records nothing.
    pub state_sha256: Option<String>,
    /// Every recorded file that is changed or missing, by path; the others
    /// are intact.
    pub damaged: BTreeMap<String, FileStatus>,
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

/// The first way an output tree differs from its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeChange {
    /// It recorded nothing, and records something now.
    StateAppeared,
    /// Its state is gone.
    StateGone,
    /// Its state is another.
    State {
        /// The digest saved.
        saved: String,
        /// The digest now.
        now: String,
    },
    /// A recorded file is not as it was.
    File {
        /// The file, relative to the output directory.
        path: String,
        /// How it was.
        saved: FileStatus,
        /// How it is.
        now: FileStatus,
    },
}

impl fmt::Display for TreeChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StateAppeared => f.write_str("it held no state and holds one now (another apply ran)"),
            Self::StateGone => f.write_str("its state is gone"),
            Self::State { saved, now } => {
                write!(f, "its state is another (sha256 {} → {}): another apply ran", short(saved), short(now))
            }
            Self::File { path, saved, now } => {
                write!(f, "`{path}` was {} and is {} now", condition(*saved), condition(*now))
            }
        }
    }
}

/// The first way the changes decided now differ from the saved ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeDifference {
    /// A change decided now that was not saved.
    Added {
        /// The artifact.
        id: ArtifactId,
        /// What happens to it now.
        action: Action,
        /// Why.
        reason: String,
    },
    /// A saved change no longer decided.
    Dropped {
        /// The artifact.
        id: ArtifactId,
        /// What was to happen to it.
        action: Action,
    },
    /// Another action for the same artifact.
    Action {
        /// The artifact.
        id: ArtifactId,
        /// The saved action.
        saved: Action,
        /// The action now.
        now: Action,
        /// Why, now.
        reason: String,
    },
    /// A new key where none was saved, or the other way round.
    Key {
        /// The artifact.
        id: ArtifactId,
        /// Its action.
        action: Action,
        /// Whether it gets a new key now.
        new_key: bool,
    },
    /// Other files written or removed.
    Files {
        /// The artifact.
        id: ArtifactId,
        /// Its action.
        action: Action,
    },
}

impl fmt::Display for ChangeDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added { id, action, reason } => write!(f, "now also `{} {id}` ({reason})", action.as_str()),
            Self::Dropped { id, action } => write!(f, "`{} {id}` is no longer needed", action.as_str()),
            Self::Action { id, saved, now, reason } => {
                write!(f, "`{id}` was to {}, now to {} ({reason})", saved.as_str(), now.as_str())
            }
            Self::Key { id, action, new_key: true } => write!(f, "`{} {id}` now makes a new key", action.as_str()),
            Self::Key { id, action, new_key: false } => {
                write!(f, "`{} {id}` no longer makes a new key", action.as_str())
            }
            Self::Files { id, action } => {
                write!(f, "`{} {id}` writes or removes other files than saved", action.as_str())
            }
        }
    }
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

impl TreeFingerprint {
    /// The fingerprint of a tree as read.
    #[must_use]
    pub fn of(tree: &Tree) -> Self {
        let state_sha256 = (!tree.state.artifacts.is_empty()).then(|| sha256_hex(&tree.state.to_json()));
        let damaged = tree
            .state
            .artifacts
            .values()
            .flat_map(|artifact| artifact.files.iter())
            .map(|(path, recorded)| (path, tree.disk.status(path, recorded)))
            .filter(|(_, status)| *status != FileStatus::Intact)
            .map(|(path, status)| (path.clone(), status))
            .collect();
        Self { state_sha256, damaged }
    }

    /// The first way `now` differs from this fingerprint: the state, then
    /// the files by path.
    #[must_use]
    pub fn first_difference(&self, now: &Self) -> Option<TreeChange> {
        match (&self.state_sha256, &now.state_sha256) {
            (None, Some(_)) => return Some(TreeChange::StateAppeared),
            (Some(_), None) => return Some(TreeChange::StateGone),
            (Some(saved), Some(current)) if saved != current => {
                return Some(TreeChange::State { saved: saved.clone(), now: current.clone() });
            }
            _ => {}
        }
        let paths: BTreeSet<&String> = self.damaged.keys().chain(now.damaged.keys()).collect();
        paths.into_iter().find_map(|path| {
            let saved = self.damaged.get(path).copied().unwrap_or(FileStatus::Intact);
            let current = now.damaged.get(path).copied().unwrap_or(FileStatus::Intact);
            (saved != current).then(|| TreeChange::File { path: path.clone(), saved, now: current })
        })
    }
}

/// The first way the changes decided `now` differ from the `saved` ones:
/// what each does (action, new key, files), not its reason, whose words
/// follow the clock ("expires in 40d") while what it does stays the same.
fn first_change_difference(saved: &[Change], now: &[Change]) -> Option<ChangeDifference> {
    let by_id: HashMap<&ArtifactId, &Change> = saved.iter().map(|change| (&change.id, change)).collect();
    for change in now {
        let id = || change.id.clone();
        let difference = match by_id.get(&change.id) {
            None => ChangeDifference::Added { id: id(), action: change.action, reason: change.reason.clone() },
            Some(old) if old.action != change.action => ChangeDifference::Action {
                id: id(),
                saved: old.action,
                now: change.action,
                reason: change.reason.clone(),
            },
            Some(old) if old.new_key != change.new_key => {
                ChangeDifference::Key { id: id(), action: change.action, new_key: change.new_key }
            }
            Some(old) if old.writes != change.writes || old.removes != change.removes => {
                ChangeDifference::Files { id: id(), action: change.action }
            }
            Some(_) => continue,
        };
        return Some(difference);
    }
    let decided: HashSet<&ArtifactId> = now.iter().map(|change| &change.id).collect();
    saved
        .iter()
        .find(|change| !decided.contains(&change.id))
        .map(|change| ChangeDifference::Dropped { id: change.id.clone(), action: change.action })
}

/// A digest as people compare them: its first twelve hex digits.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// A list of override digests, or what it means when empty.
fn overrides(digests: &[String]) -> String {
    if digests.is_empty() { "the embedded ones".to_string() } else { digests.join(", ") }
}

/// A file's status in words.
fn condition(status: FileStatus) -> &'static str {
    match status {
        FileStatus::Intact => "intact",
        FileStatus::Changed => "changed",
        FileStatus::Missing => "deleted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Disk;
    use crate::state::State;

    fn id(text: &str) -> ArtifactId {
        ArtifactId::parse(text).expect("an artifact id")
    }

    fn change(text: &str, action: Action, writes: &[&str]) -> Change {
        Change {
            id: id(text),
            index: Some(0),
            action,
            reason: "expires in 40d, renew_before 2920h".into(),
            new_key: false,
            writes: writes.iter().map(ToString::to_string).collect(),
            removes: Vec::new(),
        }
    }

    /// A state recording `files` of `cert/apiserver`.
    fn state(files: &[&str]) -> State {
        let files: Vec<String> = files
            .iter()
            .map(|path| format!(r#""{path}":{{"sha256":"00","role":"cert","size":1,"mtime_ns":0}}"#))
            .collect();
        let artifacts = if files.is_empty() {
            String::new()
        } else {
            format!(r#""cert/apiserver":{{"fingerprint":"f","spec":{{}},"files":{{{}}}}}"#, files.join(","))
        };
        serde_json::from_str(&format!(r#"{{"version":1,"artifacts":{{{artifacts}}}}}"#)).expect("a state")
    }

    /// A tree with `state`, whose files are nowhere.
    fn tree(state: State) -> Tree {
        Tree { state, disk: Disk::new(Path::new("/nonexistent/certplan-saved-plan-test")), lock: None }
    }

    fn options() -> Options {
        Options { now: time::macros::datetime!(2026-01-01 00:00 UTC), rotate: vec!["cert/apiserver".into()] }
    }

    fn saved(changes: &[Change]) -> SavedPlan {
        SavedPlan::new(Path::new("plan.toml"), "[cluster]\n", Path::new("out"), &tree(state(&[])), &options(), changes)
    }

    #[test]
    fn is_written_as_json_and_recognised_by_its_kind() {
        let plan = saved(&[change("cert/apiserver", Action::Reissue, &["cluster/apiserver.crt"])]);
        let json = plan.to_json().expect("JSON");
        let doc: Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(doc["kind"], SAVED_PLAN_KIND);
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["plan"]["path"], "plan.toml");
        assert_eq!(doc["plan"]["sha256"], sha256_hex(b"[cluster]\n"));
        assert_eq!(doc["tree"]["state_sha256"], Value::Null, "no state");
        assert_eq!(doc["rotate"][0], "cert/apiserver");
        assert_eq!(doc["decided_at"], "2026-01-01T00:00:00Z");
        assert_eq!(doc["changes"][0]["action"], "reissue");
        assert_eq!(doc["changes"][0]["writes"][0], "cluster/apiserver.crt");
        let read = SavedPlan::recognise(&json).expect("readable").expect("a saved plan");
        assert_eq!(read.plan, plan.plan);
        assert_eq!(read.tree, plan.tree);
        assert_eq!(first_change_difference(&read.changes, &plan.changes), None);
    }

    #[test]
    fn a_plan_file_is_not_a_saved_plan_and_other_json_is_an_error() {
        assert!(SavedPlan::recognise("#:schema x\n[cluster]\nname = \"lab\"\n").expect("not JSON").is_none());
        let not_saved = SavedPlan::recognise(r#"{"changes": []}"#).expect_err("no kind");
        assert!(not_saved.to_string().starts_with("it is JSON but not a plan saved by `certplan plan --save`"));
        let later = SavedPlan::recognise(r#"{"kind": "certplan-saved-plan", "version": 2}"#).expect_err("version 2");
        assert_eq!(later.to_string(), "it is a saved plan of format version 2; this certplan reads version 1");
        let torn = SavedPlan::recognise(r#"{"kind": "certplan-saved-plan", "version": 1, "#).expect_err("torn");
        assert!(torn.to_string().starts_with("it is damaged: "), "{torn}");
    }

    #[test]
    fn an_edited_plan_is_refused_with_both_digests() {
        let plan = saved(&[]);
        assert!(plan.check_plan("[cluster]\n").is_ok());
        let edited = plan.check_plan("[cluster]\nname = \"lab\"\n").expect_err("edited");
        let (before, after) = (sha256_hex(b"[cluster]\n"), sha256_hex(b"[cluster]\nname = \"lab\"\n"));
        assert_eq!(
            edited.to_string(),
            format!("the plan `plan.toml` changed since it was saved (sha256 {} → {})", &before[..12], &after[..12])
        );
    }

    #[test]
    fn override_templates_are_compared() {
        let plan = saved(&[]);
        let embedded = Templates::embedded().expect("embedded templates");
        assert!(plan.check_templates(&embedded).is_ok());
        let mut overridden = plan.clone();
        overridden.template_overrides = vec!["flags.env sha256:10ea".into()];
        assert_eq!(
            overridden.check_templates(&embedded).expect_err("override gone").to_string(),
            "the templates changed since the plan was saved (flags.env sha256:10ea → the embedded ones)"
        );
    }

    #[test]
    fn the_tree_fingerprint_names_the_file_that_moved() {
        let empty = TreeFingerprint::of(&tree(state(&[])));
        assert_eq!(empty, TreeFingerprint { state_sha256: None, damaged: BTreeMap::new() });
        let gone = TreeFingerprint::of(&tree(state(&["cluster/apiserver.crt"])));
        assert_eq!(gone.damaged.get("cluster/apiserver.crt"), Some(&FileStatus::Missing));
        assert_eq!(empty.first_difference(&gone), Some(TreeChange::StateAppeared));
        assert_eq!(gone.first_difference(&empty), Some(TreeChange::StateGone));
        assert_eq!(gone.first_difference(&gone), None);

        let intact = TreeFingerprint { damaged: BTreeMap::new(), ..gone.clone() };
        let deleted = intact.first_difference(&gone).expect("a difference");
        assert_eq!(deleted.to_string(), "`cluster/apiserver.crt` was intact and is deleted now");
        let other = TreeFingerprint { state_sha256: Some("ab".repeat(32)), ..gone.clone() };
        assert!(gone.first_difference(&other).is_some_and(|d| d.to_string().starts_with("its state is another")));
        assert_eq!(
            Stale::Tree(deleted).to_string(),
            "the output tree changed since the plan was saved: `cluster/apiserver.crt` was intact and is deleted now"
        );
    }

    #[test]
    fn changes_are_compared_by_what_they_do_not_by_their_words() {
        let reissue = change("cert/apiserver", Action::Reissue, &["cluster/apiserver.crt"]);
        let plan = saved(std::slice::from_ref(&reissue));
        let reworded = Change { reason: "expires in 39d, renew_before 2920h".into(), index: None, ..reissue.clone() };
        assert!(plan.check_changes(&[reworded]).is_ok());

        let renew = change("cert/etcd-server/solo", Action::Renew, &["hosts/solo/etcd/server.crt"]);
        let due = plan.check_changes(&[reissue.clone(), renew]).expect_err("a renewal came due");
        assert_eq!(
            due.to_string(),
            "the changes decided now are not the saved ones: now also `renew cert/etcd-server/solo` \
             (expires in 40d, renew_before 2920h)"
        );
        let dropped = first_change_difference(std::slice::from_ref(&reissue), &[]).expect("a difference");
        assert_eq!(dropped.to_string(), "`reissue cert/apiserver` is no longer needed");
        let renewed = Change { action: Action::Renew, ..reissue.clone() };
        assert!(matches!(
            first_change_difference(std::slice::from_ref(&reissue), &[renewed]),
            Some(ChangeDifference::Action { saved: Action::Reissue, now: Action::Renew, .. })
        ));
        let keyed = Change { new_key: true, ..reissue.clone() };
        let rekeyed = first_change_difference(std::slice::from_ref(&reissue), &[keyed]).expect("a difference");
        assert_eq!(rekeyed.to_string(), "`reissue cert/apiserver` now makes a new key");
        let elsewhere = Change { writes: vec!["hosts/solo/apiserver.crt".into()], ..reissue.clone() };
        assert!(matches!(
            first_change_difference(std::slice::from_ref(&reissue), &[elsewhere]),
            Some(ChangeDifference::Files { action: Action::Reissue, .. })
        ));
    }
}
