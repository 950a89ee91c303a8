//! Deciding what to do: compares the model with the state recorded in the
//! output tree and the files on disk, and gives every artifact that needs
//! work an [`Action`] with a reason a person can read. `plan` prints these;
//! `apply` carries out exactly these.

mod disk;
pub mod fields;
mod reason;
pub mod requests;
pub mod rollout;
pub mod rotation;
#[cfg(test)]
mod tests;

pub use disk::{Disk, FileStatus, TreeView, file_facts, sha256_hex};
pub use reason::spec_difference;

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::durations::{length, remaining};
use crate::graph::{Fingerprint, Graph, Relation};
use crate::model::{ArtifactId, FileRole, Model, Spec};
use crate::state::{ArtifactState, State};

/// What happens to an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// New: generate and write it.
    Create,
    /// A CA no state records whose key is already in the tree (an apply
    /// killed before it wrote its state, or a CA brought from elsewhere):
    /// issue its certificate with that key, never replacing the key.
    Adopt,
    /// Its content changed: issue it again (keeping its key when allowed).
    Reissue,
    /// In its renewal window: issue it again with the same key.
    Renew,
    /// Re-render a file whose inputs or text changed.
    Rewrite,
    /// Rewrite files changed or deleted on disk, from intact material.
    Repair,
    /// Copy it to new places or delete copies from places it left.
    Place,
    /// Encrypt its secret files again, to the plan's new recipients.
    Reencrypt,
    /// It left the plan: delete its files.
    Remove,
    /// A CA certplan does not hold must sign it: write its key and a
    /// certificate request, and wait for the signed certificate.
    Request,
    /// It embeds or is signed by something still awaiting its signed
    /// certificate: nothing to write yet.
    Wait,
}

impl Action {
    /// The verb as printed.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Adopt => "adopt",
            Self::Reissue => "reissue",
            Self::Renew => "renew",
            Self::Rewrite => "rewrite",
            Self::Repair => "repair",
            Self::Place => "place",
            Self::Remove => "remove",
            Self::Reencrypt => "reencrypt",
            Self::Request => "request",
            Self::Wait => "wait",
        }
    }
}

/// The work for one artifact; read back from a saved plan
/// (`pipeline::saved`), which holds the changes `plan --save` decided.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// The artifact.
    pub id: ArtifactId,
    /// Its index in the model (`None` when it left the plan).
    #[serde(skip)]
    pub index: Option<usize>,
    /// What happens.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Whether a new private key is generated.
    pub new_key: bool,
    /// Files written, relative to the output directory.
    pub writes: Vec<String>,
    /// Files deleted.
    pub removes: Vec<String>,
}

/// What to consider when deciding.
#[derive(Debug, Clone)]
pub struct Options {
    /// The clock.
    pub now: OffsetDateTime,
    /// Artifacts whose keys must be replaced (`--rotate ID`), as given:
    /// [`decide`] looks each up in the model.
    pub rotate: Vec<String>,
}

/// A change certplan refuses to make without being asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    /// A CA's spec changed; replacing it re-keys the cluster.
    #[error(
        "the CA `{id}` changed ({reason}); certplan never replaces a CA silently: run with `--rotate {id}` to issue a new CA and everything it signs"
    )]
    CaChanged {
        /// The CA.
        id: ArtifactId,
        /// What changed.
        reason: String,
    },
    /// A CA's key is gone while certificates it signed exist.
    #[error(
        "the private key of `{id}` is missing or changed on disk, and certificates it signed exist; restore `{path}` from a backup, or run with `--rotate {id}` to issue a new CA and everything it signs"
    )]
    CaKeyLost {
        /// The CA.
        id: ArtifactId,
        /// The key file.
        path: String,
    },
    /// A CA key in the tree that no state records and certplan cannot use.
    #[error(
        "`{path}` holds a key certplan cannot adopt for `{id}` ({reason}); certplan will not overwrite it: move it away, or run with `--rotate {id}`"
    )]
    CaKeyUnusable {
        /// The CA.
        id: ArtifactId,
        /// The key file.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A rotation step that skips one of the tree's.
    #[error(
        "the rotation of `[{section}]` skips a step: the plan asks for {to} while the output tree is at {from}; every host must have each step before the next, so {next} first and roll it out to every host"
    )]
    RotationSkipped {
        /// The plan's table of what rotates (`cas.NAME`, `sets.service-account`).
        section: String,
        /// The tree's step.
        from: String,
        /// The plan's step.
        to: String,
        /// What to do instead.
        next: String,
    },
    /// `--rotate` names an id the plan does not have.
    #[error("`--rotate {0}` names no artifact of the plan")]
    UnknownRotate(String),
}

/// Decides every change, in dependency order, removals last.
pub fn decide(
    model: &Model,
    graph: &Graph,
    state: &State,
    disk: &dyn TreeView,
    options: &Options,
) -> Result<Vec<Change>, ChangeError> {
    let state = &*rotation::prepared(model, state)?;
    let recipients_changed = recipients_change(&state.age_recipients, &model.recipients);
    let rotate = options
        .rotate
        .iter()
        .map(|text| model.find(text).map(|a| a.id.clone()).ok_or_else(|| ChangeError::UnknownRotate(text.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let count = model.artifacts.len();
    let mut decider = Decider {
        model,
        graph,
        disk,
        options,
        rotate,
        new_key: vec![false; count],
        new_content: vec![false; count],
        changes: Vec::new(),
        placed: OnceCell::new(),
        recipients_changed,
        state,
        chain_changed: vec![false; count],
    };
    for &i in &graph.order {
        let id = &model.artifacts[i].id;
        decider.decide_one(i, state.artifacts.get(id), &graph.fingerprints[i])?;
        decider.note_chain(i);
    }
    decider.changes.sort_by_key(|c| c.index);
    let current: HashSet<&ArtifactId> = model.artifacts.iter().map(|a| &a.id).collect();
    for (id, recorded) in &state.artifacts {
        if !current.contains(id) {
            let mut removes: Vec<String> = recorded.files.keys().cloned().collect();
            // An outstanding request goes with it: its CSR, a signed
            // certificate brought back, a new key waiting.
            if recorded.requested.is_some() {
                removes.extend([requests::request_path(id), requests::signed_path(id)]);
                removes.extend([true, false].map(|sealed| requests::pending_key_path(id, sealed)));
            }
            decider.changes.push(Change {
                id: id.clone(),
                index: None,
                action: Action::Remove,
                reason: rotation::remove_reason(id).unwrap_or_else(|| "no longer in the plan".into()),
                new_key: false,
                writes: Vec::new(),
                removes,
            });
        }
    }
    let mut changes = std::mem::take(&mut decider.changes);
    for change in changes.iter_mut().filter(|c| c.action == Action::Remove) {
        change.removes.retain(|path| !decider.is_placed(path));
    }
    requests::settle(model, graph, state, disk, &mut changes);
    Ok(changes)
}

struct Decider<'a> {
    model: &'a Model,
    graph: &'a Graph,
    disk: &'a dyn TreeView,
    options: &'a Options,
    /// The artifacts `--rotate` names.
    rotate: Vec<ArtifactId>,
    /// By artifact index: whether it gets a new key in this run.
    new_key: Vec<bool>,
    /// By artifact index: whether its content (certificate, token) changes.
    new_content: Vec<bool>,
    changes: Vec<Change>,
    /// Every path the plan places, gathered the first time a file leaves
    /// an artifact.
    placed: OnceCell<HashSet<&'a str>>,
    /// How the age recipients changed since the tree was written, if they did.
    recipients_changed: Option<String>,
    /// The state deciding reads (to know which signers have no key here).
    state: &'a State,
    /// By artifact index, for intermediate CAs: whether it or a CA above it
    /// is issued again, so the chain its leaves carry changes.
    chain_changed: Vec<bool>,
}

impl Decider<'_> {
    /// Whether an artifact of the plan places a file at `path`: one that
    /// passes from one artifact to another (a CA's certificate file to its
    /// rotation's trust bundle and back) is rewritten, never deleted.
    fn is_placed(&self, path: &str) -> bool {
        self.placed
            .get_or_init(|| self.model.artifacts.iter().flat_map(|a| a.files.iter().map(|f| f.path.as_str())).collect())
            .contains(path)
    }

    fn decide_one(
        &mut self,
        i: usize,
        recorded: Option<&ArtifactState>,
        fingerprint: &Fingerprint,
    ) -> Result<(), ChangeError> {
        let artifact = &self.model.artifacts[i];
        let id = &artifact.id;
        // Most artifacts need nothing: build the path lists only for those that do.
        let paths = || -> Vec<String> { artifact.files.iter().map(|f| f.path.clone()).collect() };
        let rotate = self.rotate.contains(id);
        let is_ca = matches!(artifact.spec, Spec::Ca(_));
        let Some(recorded) = recorded else {
            if is_ca && !rotate {
                // Never replace a CA key: take it over and write only what is missing.
                let keys: Vec<&String> = artifact
                    .files
                    .iter()
                    .filter(|f| f.role == FileRole::Key && self.disk.exists(&f.path))
                    .map(|f| &f.path)
                    .collect();
                if let Some(first) = keys.first() {
                    let reason = format!("its key is already at `{first}` but no state records it: keeping that key");
                    let writes = paths().into_iter().filter(|p| !keys.contains(&p)).collect();
                    self.push(i, Action::Adopt, reason, false, writes, Vec::new());
                    return Ok(());
                }
            }
            let reason = rotation::create_reason(self.model, id).unwrap_or_else(|| "new in the plan".into());
            self.push(i, Action::Create, reason, true, paths(), Vec::new());
            return Ok(());
        };
        // Requested from a CA certplan does not hold, never signed yet.
        if recorded.requested.is_some() && recorded.cert.is_none() {
            // The key the request was made with stays (it is what the signer
            // certifies), unless the plan now asks for another kind of key.
            let new_spec = serde_json::to_value(&artifact.spec).unwrap_or_default();
            let old_spec: serde_json::Value = serde_json::from_str(recorded.spec.get()).unwrap_or_default();
            let rekey = key_changed(&old_spec, &new_spec);
            let writes = if rekey { paths() } else { self.keeping_key(i, recorded, paths()) };
            self.push(i, Action::Create, "its certificate was requested".into(), rekey, writes, Vec::new());
            self.new_key[i] = rekey;
            if let Some(change) = self.changes.last_mut() {
                change.new_key = rekey;
            }
            return Ok(());
        }
        // A new key waiting beside its request (`--rotate` of a certificate
        // an external CA signs): the re-key goes on until it is signed.
        if recorded.requested.is_some()
            && let Some(waiting) = requests::waiting_key(id, self.disk)
        {
            let reason = format!("a new key waits for its certificate at `{waiting}`");
            self.push(i, Action::Reissue, reason, true, paths(), Vec::new());
            return Ok(());
        }
        let mut removes = left_behind(artifact, recorded);
        removes.retain(|path| !self.is_placed(path));
        // Serialising the spec is only needed when the fingerprint moved.
        let spec =
            (recorded.fingerprint != *fingerprint).then(|| serde_json::to_value(&artifact.spec).unwrap_or_default());
        let recorded_spec: Option<serde_json::Value> =
            spec.as_ref().map(|_| serde_json::from_str(recorded.spec.get()).unwrap_or_default());
        let spec_change =
            spec.as_ref().zip(recorded_spec.as_ref()).and_then(|(new, old)| reason::spec_difference(old, new));
        let has_material = artifact.spec.has_material();
        if rotate {
            self.push(i, Action::Reissue, "rotation asked for (`--rotate`): new key".into(), true, paths(), removes);
            return Ok(());
        }
        // The outgoing CA of a rotation stays as the tree has it: the plan
        // describes the incoming one.
        let spec_change = spec_change.filter(|_| !(is_ca && rotation::is_outgoing(self.model, id)));
        if let Some(difference) = spec_change {
            if is_ca {
                return Err(ChangeError::CaChanged { id: id.clone(), reason: difference });
            }
            let action = if has_material { Action::Reissue } else { Action::Rewrite };
            let new_key = spec.as_ref().zip(recorded_spec.as_ref()).is_some_and(|(new, old)| key_changed(old, new));
            let writes = if new_key { paths() } else { self.keeping_key(i, recorded, paths()) };
            self.push(i, action, difference, new_key, writes, removes);
            return Ok(());
        }
        // What the graph says this artifact depends on, and how.
        for link in self.graph.inputs(i) {
            let input = &self.model.artifacts[link.index].id;
            match link.relation {
                Relation::Signs if self.new_key[link.index] => {
                    let reason = format!("its issuer `{input}` gets a new key");
                    let writes = self.keeping_key(i, recorded, paths());
                    self.push(i, Action::Reissue, reason, false, writes, removes);
                    return Ok(());
                }
                // A leaf presents the intermediate that signs it in its chain.
                Relation::Signs if self.chain_changed[link.index] && !is_ca => {
                    let reason = format!("its issuer `{input}` is issued again, and its chain holds it");
                    let writes = self.keeping_key(i, recorded, paths());
                    self.push(i, Action::Reissue, reason, false, writes, removes);
                    return Ok(());
                }
                Relation::Embeds if self.new_content[link.index] => {
                    self.push(i, Action::Rewrite, format!("embeds `{input}`, which changes"), false, paths(), removes);
                    return Ok(());
                }
                Relation::Trusts if self.new_content[link.index] => {
                    self.push(i, Action::Rewrite, format!("trusts `{input}`, which changes"), false, paths(), removes);
                    return Ok(());
                }
                Relation::Signs | Relation::Embeds | Relation::Trusts => {}
            }
        }
        if let Some(reason) = self.renewal_due(artifact, recorded) {
            let new_token = artifact.spec.is_token();
            let writes = if new_token { paths() } else { self.keeping_key(i, recorded, paths()) };
            self.push(i, Action::Renew, reason, new_token, writes, removes);
            return Ok(());
        }
        self.check_files(i, recorded, removes)
    }

    /// The files to write when a certificate is issued again with its key
    /// kept: every file but the intact copies of the key, which stay as they
    /// are (bytes and mtime).
    fn keeping_key(&self, i: usize, recorded: &ArtifactState, paths: Vec<String>) -> Vec<String> {
        let artifact = &self.model.artifacts[i];
        let kept_key = |path: &String| {
            artifact.files.iter().any(|f| &f.path == path && f.role == FileRole::Key)
                && recorded.files.get(path).is_some_and(|f| self.disk.status(path, f) == FileStatus::Intact)
        };
        paths.into_iter().filter(|p| !kept_key(p)).collect()
    }

    fn renewal_due(&self, artifact: &crate::model::Artifact, recorded: &ArtifactState) -> Option<String> {
        let lifetime = match &artifact.spec {
            Spec::BootstrapToken(token) => token.ttl,
            // An external CA is renewed by whoever holds it, not here.
            Spec::Ca(ca) if ca.external.is_some() => return None,
            spec => spec.cert()?.validity,
        };
        let facts = recorded.cert.as_ref()?;
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let not_after = OffsetDateTime::parse(&facts.not_after, rfc3339).ok()?;
        let left = not_after - self.options.now;
        // A certificate someone else signed may live shorter than the plan
        // asks (a signer's own limit): its window is a third of its life.
        let issued_for = OffsetDateTime::parse(&facts.not_before, rfc3339)
            .ok()
            .and_then(|not_before| std::time::Duration::try_from(not_after - not_before).ok());
        let lifetime = issued_for.map_or(lifetime, |lived| lived.min(lifetime));
        let window = lifetime / 3;
        let renew = time::Duration::try_from(window).ok()?;
        (left < renew).then(|| {
            let expiry = if left.is_negative() {
                format!("expired {} ago", remaining(-left))
            } else {
                format!("expires in {}", remaining(left))
            };
            format!("{expiry}, renew_before {}", length(window))
        })
    }

    fn check_files(&mut self, i: usize, recorded: &ArtifactState, removes: Vec<String>) -> Result<(), ChangeError> {
        let artifact = &self.model.artifacts[i];
        if let Some(how) = &self.recipients_changed {
            // Encrypted files that stay where they are: encrypted again.
            let sealed: Vec<String> = artifact
                .files
                .iter()
                .filter(|f| crate::secrets::is_sealed(&f.path) && recorded.files.contains_key(&f.path))
                .map(|f| f.path.clone())
                .collect();
            if !sealed.is_empty() {
                let reason = format!("recipients {how}");
                self.push(i, Action::Reencrypt, reason, false, sealed, removes);
                return Ok(());
            }
        }
        let mut damaged = Vec::new();
        let mut added = Vec::new();
        // An offline CA's key is meant to be gone from the tree.
        let offline = self.model.offline.contains(&artifact.id);
        // An offline CA's key that is away is not added back; one still in
        // the tree (at a path it leaves) moves like any file.
        let key_away =
            offline && !recorded.files.iter().any(|(path, f)| f.role == FileRole::Key && self.disk.exists(path));
        for placement in &artifact.files {
            match recorded.files.get(&placement.path) {
                None if key_away && placement.role == FileRole::Key => {}
                None => added.push(placement.path.clone()),
                Some(file) => match self.disk.status(&placement.path, file) {
                    FileStatus::Intact => {}
                    FileStatus::Missing if offline && placement.role == FileRole::Key => {}
                    status => damaged.push((placement.path.clone(), placement.role, status)),
                },
            }
        }
        if !damaged.is_empty() {
            let roles_lost: BTreeSet<FileRole> = damaged
                .iter()
                .map(|(_, role, _)| *role)
                .filter(|role| self.disk.read_intact(&recorded.files, *role).is_none())
                .collect();
            let (path, _, status) = &damaged[0];
            let what = if *status == FileStatus::Missing { "deleted" } else { "changed" };
            let more = if damaged.len() > 1 { format!(" (and {} more)", damaged.len() - 1) } else { String::new() };
            let reason = format!("{path}: file {what} on disk{more}");
            if roles_lost.is_empty() {
                let mut writes: Vec<String> = damaged.into_iter().map(|(p, _, _)| p).collect();
                writes.extend(added);
                self.push(i, Action::Repair, reason, false, writes, removes);
                return Ok(());
            }
            let key_lost = roles_lost.contains(&FileRole::Key);
            if matches!(artifact.spec, Spec::Ca(_)) && key_lost {
                let path = artifact.files.iter().find(|f| f.role == FileRole::Key).map(|f| f.path.clone());
                return Err(ChangeError::CaKeyLost { id: artifact.id.clone(), path: path.unwrap_or_default() });
            }
            let has_material = artifact.spec.has_material();
            let action = if has_material { Action::Reissue } else { Action::Repair };
            let reason = if has_material { format!("{reason}, no intact copy left") } else { reason };
            let new_key = key_lost || artifact.spec.is_token();
            let paths = artifact.files.iter().map(|f| f.path.clone()).collect();
            self.push(i, action, reason, new_key, paths, removes);
            return Ok(());
        }
        if !added.is_empty() || !removes.is_empty() {
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("copies to {}", summarize(&added)));
            }
            if !removes.is_empty() {
                parts.push(format!("no longer at {}", summarize(&removes)));
            }
            self.push(i, Action::Place, parts.join("; "), false, added, removes);
        }
        Ok(())
    }

    /// Records for an intermediate CA whether the chain below it changes:
    /// it is issued again, or a CA above it is.
    fn note_chain(&mut self, i: usize) {
        let artifact = &self.model.artifacts[i];
        let Spec::Ca(ca) = &artifact.spec else { return };
        if ca.issuer == artifact.id {
            return;
        }
        let parent = self.model.position(&ca.issuer).is_some_and(|p| self.chain_changed[p]);
        self.chain_changed[i] = self.new_content[i] || parent;
    }

    /// Whether issuing artifact `i` now waits for a signature certplan
    /// cannot make (its signer's key is not here and nothing signed came
    /// back): its content does not change in this run.
    fn awaits_signature(&self, i: usize) -> bool {
        let Some(signer) = requests::keyless_signer(self.model, self.state, self.disk, i) else {
            return false;
        };
        let issued_now = self.model.position(signer).is_some_and(|s| self.new_key[s])
            && !self.model.externals.iter().any(|e| &e.id == signer);
        !issued_now && !self.disk.exists(&requests::signed_path(&self.model.artifacts[i].id))
    }

    fn push(
        &mut self,
        i: usize,
        action: Action,
        reason: String,
        new_key: bool,
        writes: Vec<String>,
        removes: Vec<String>,
    ) {
        let artifact = &self.model.artifacts[i];
        let material = artifact.spec.has_material();
        let new_key = material && (new_key || action == Action::Create);
        // What waits for a signature changes nothing yet (a renewal keeps
        // serving); only a new key does, and `settle` makes its dependents wait.
        if material
            && matches!(action, Action::Create | Action::Adopt | Action::Reissue | Action::Renew)
            && !self.awaits_signature(i)
        {
            self.new_content[i] = true;
        }
        // A trust bundle is written from its CAs: new when it is (re)written.
        if matches!(artifact.spec, Spec::Bundle(_)) && matches!(action, Action::Create | Action::Rewrite) {
            self.new_content[i] = true;
        }
        if material && artifact.spec.is_token() && new_key {
            self.new_content[i] = true;
        }
        if new_key {
            self.new_key[i] = true;
        }
        self.changes.push(Change { id: artifact.id.clone(), index: Some(i), action, reason, new_key, writes, removes });
    }
}

/// How the recipients changed (`+ age1…, - age1…`), or `None`.
fn recipients_change(recorded: &[String], now: &[String]) -> Option<String> {
    let added: Vec<&str> = now.iter().filter(|r| !recorded.contains(r)).map(String::as_str).collect();
    let removed: Vec<&str> = recorded.iter().filter(|r| !now.contains(r)).map(String::as_str).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("+ {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("- {}", removed.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The recorded files of an artifact that it no longer places.
fn left_behind(artifact: &crate::model::Artifact, recorded: &ArtifactState) -> Vec<String> {
    let same = recorded.files.len() == artifact.files.len()
        && artifact.files.iter().all(|f| recorded.files.contains_key(&f.path));
    if same {
        return Vec::new();
    }
    let placed: HashSet<&str> = artifact.files.iter().map(|f| f.path.as_str()).collect();
    recorded.files.keys().filter(|p| !placed.contains(p.as_str())).cloned().collect()
}

fn key_changed(old: &serde_json::Value, new: &serde_json::Value) -> bool {
    old.get("key") != new.get("key")
}

fn summarize(paths: &[String]) -> String {
    match paths {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
        [] => String::new(),
    }
}
