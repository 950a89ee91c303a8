//! The semantic diff of two plans: artifacts added, removed and changed
//! (field by field), what changes with them (an artifact changes when its
//! spec does or when an input it embeds or is signed by changes), which
//! hosts receive or lose files, and which components must restart.
//!
//! It compares compiled models by artifact id and never reads an output
//! tree, so it works on two revisions of a plan in a pull request.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::changes::fields::{FieldChange, field_changes};
use crate::graph::{Consumers, Graph, NO_CONSUMERS};
use crate::model::{Artifact, FileRole, Spec};

/// One side of a diff: a plan's name and what it compiles to.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The name shown for it (a path, or `/dev/null`).
    pub name: &'a str,
    /// Its artifacts (none for a plan that does not exist).
    pub artifacts: &'a [Artifact],
    /// Its hosts' names, in plan order.
    pub hosts: &'a [String],
    /// Its artifact graph; `None` for a plan that does not exist.
    pub graph: Option<&'a Graph>,
    /// The age recipients its secret files are encrypted to (`[secrets]`).
    pub recipients: &'a [String],
}

impl<'a> Side<'a> {
    /// Who uses which file: the graph's `uses` edges (none without a plan).
    fn consumers(&self) -> &'a Consumers {
        self.graph.map_or(&NO_CONSUMERS, |graph| graph.consumers(self.artifacts))
    }
}

/// The diff document (`certplan diff --format json`).
#[derive(Debug, Serialize)]
pub struct PlanDiff {
    /// Contract version.
    pub version: u32,
    /// The old plan's name.
    pub old: String,
    /// The new plan's name.
    pub new: String,
    /// Whether both compile to the same PKI.
    pub same: bool,
    /// Counts.
    pub summary: Summary,
    /// Artifacts whose spec, inputs or files changed, in the new plan's order.
    pub changed: Vec<Changed>,
    /// Artifacts only the new plan has.
    pub added: Vec<ArtifactRef>,
    /// Artifacts only the old plan has.
    pub removed: Vec<ArtifactRef>,
    /// Hosts (and the cluster directory) whose files change.
    pub hosts: Vec<HostImpact>,
    /// What a reviewer must know beyond the fields (a CA that changes).
    pub notes: Vec<String>,
}

/// Counts of a diff.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Artifacts changed.
    pub changed: usize,
    /// Artifacts added.
    pub added: usize,
    /// Artifacts removed.
    pub removed: usize,
    /// Files written, on hosts and in the cluster directory.
    pub files_written: usize,
    /// Files removed.
    pub files_removed: usize,
    /// Hosts that receive or lose files.
    pub hosts: usize,
    /// Component restarts, counted per host.
    pub restarts: usize,
}

/// An artifact added or removed.
#[derive(Debug, Serialize)]
pub struct ArtifactRef {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its files, relative to the output directory.
    pub files: Vec<String>,
}

/// An artifact in both plans that changes.
#[derive(Debug, Serialize)]
pub struct Changed {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Whether its content changes (issued or rendered again); `false` when
    /// only where it is copied changes.
    pub content: bool,
    /// The fields of its own spec that changed, and `files` when its
    /// placements did.
    pub fields: Vec<FieldChange>,
    /// Its inputs (issuer, embedded CA or credential) that change.
    pub because: Vec<String>,
    /// Every artifact that changes because this one does, transitively.
    pub cascade: Vec<String>,
}

/// What happens on one host.
#[derive(Debug, Serialize)]
pub struct HostImpact {
    /// The host; `null` for the cluster directory.
    pub host: Option<String>,
    /// Files written: on-host paths (output-relative for the cluster directory).
    pub writes: Vec<String>,
    /// Files removed.
    pub removes: Vec<String>,
    /// Components that read a written or removed file and must restart.
    pub restart: Vec<String>,
}

/// Diffs two plans.
#[must_use]
pub fn diff(old: Side<'_>, new: Side<'_>) -> PlanDiff {
    let old_by_id: HashMap<&str, &Artifact> = old.artifacts.iter().map(|a| (a.id.as_str(), a)).collect();
    let new_ids: HashSet<&str> = new.artifacts.iter().map(|a| a.id.as_str()).collect();
    let content = content_changes(&old_by_id, new);
    let mut impact = Impact::new(old, new);
    let mut changed = Vec::new();
    let mut added = Vec::new();
    let mut notes = Vec::new();
    for (i, artifact) in new.artifacts.iter().enumerate() {
        let id = artifact.id.as_str();
        let Some(before) = old_by_id.get(id) else {
            impact.write_all(artifact);
            added.push(reference(artifact));
            continue;
        };
        let mut fields = if before.spec == artifact.spec {
            Vec::new()
        } else {
            field_changes(&json(&before.spec), &json(&artifact.spec))
        };
        let old_paths = paths(before);
        let new_paths = paths(artifact);
        let mut old_sorted = old_paths.clone();
        let mut new_sorted = new_paths.clone();
        old_sorted.sort();
        new_sorted.sort();
        if old_sorted != new_sorted {
            fields.push(FieldChange::list("files", &json_list(&old_paths), &json_list(&new_paths)));
        }
        let is_content = content[i];
        if !is_content && fields.is_empty() {
            continue;
        }
        if is_content {
            let keeps_key = matches!((&before.spec, &artifact.spec), (Spec::Cert(a), Spec::Cert(b)) if a.key == b.key);
            impact.write_content(artifact, keeps_key);
        } else {
            impact.write_new_placements(before, artifact);
        }
        impact.remove_old_placements(before, artifact);
        if is_content && before.spec != artifact.spec && matches!(artifact.spec, Spec::Ca(_)) {
            notes.push(format!(
                "`{id}` changes: `certplan apply` refuses to replace a CA unless run with `--rotate {id}`, and then reissues everything it signs"
            ));
        }
        changed.push(Changed {
            id: id.to_string(),
            kind: artifact.spec.kind(),
            content: is_content,
            fields,
            because: new
                .graph
                .map(|graph| graph.inputs(i))
                .unwrap_or_default()
                .iter()
                .filter(|link| content[link.index])
                .map(|link| new.artifacts[link.index].id.to_string())
                .collect(),
            cascade: match new.graph {
                Some(graph) if is_content => {
                    graph.cascade(i).into_iter().map(|j| new.artifacts[j].id.to_string()).collect()
                }
                _ => Vec::new(),
            },
        });
    }
    let removed: Vec<ArtifactRef> = old
        .artifacts
        .iter()
        .filter(|a| !new_ids.contains(a.id.as_str()))
        .map(|a| {
            impact.remove_all(a);
            reference(a)
        })
        .collect();
    let hosts = impact.finish();
    notes.extend(rotation_note(old, new));
    let recipients_change = recipients_note(old, new);
    notes.extend(recipients_change.clone());
    let summary = Summary {
        changed: changed.len(),
        added: added.len(),
        removed: removed.len(),
        files_written: hosts.iter().map(|h| h.writes.len()).sum(),
        files_removed: hosts.iter().map(|h| h.removes.len()).sum(),
        hosts: hosts.iter().filter(|h| h.host.is_some()).count(),
        restarts: hosts.iter().map(|h| h.restart.len()).sum(),
    };
    PlanDiff {
        version: 1,
        old: old.name.to_string(),
        new: new.name.to_string(),
        same: changed.is_empty() && added.is_empty() && removed.is_empty() && recipients_change.is_none(),
        summary,
        changed,
        added,
        removed,
        hosts,
        notes,
    }
}

/// The order of a rollout, when either side holds a trust bundle: the
/// change is a step of a staged rotation.
fn rotation_note(old: Side<'_>, new: Side<'_>) -> Option<String> {
    let rotating = |side: Side<'_>| side.artifacts.iter().any(|a| matches!(a.spec, Spec::Bundle(_)));
    (rotating(old) || rotating(new)).then(|| {
        "a step of a staged rotation: roll it out host by host, etcd members one at a time (each healthy before the next), then the API servers, then controller-managers and schedulers, then kubelets and kube-proxies; every host must have this step before the next step is applied".into()
    })
}

/// What a change of the age recipients does, when they change.
fn recipients_note(old: Side<'_>, new: Side<'_>) -> Option<String> {
    let added: Vec<&str> = new.recipients.iter().filter(|r| !old.recipients.contains(r)).map(String::as_str).collect();
    let removed: Vec<&str> =
        old.recipients.iter().filter(|r| !new.recipients.contains(r)).map(String::as_str).collect();
    if added.is_empty() && removed.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("+ {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("- {}", removed.join(", ")));
    }
    Some(format!(
        "the age recipients change ({}): `apply` encrypts every secret file of the tree again (no host file changes); a removed recipient can still open the copies in the repository's history",
        parts.join(", ")
    ))
}

fn json(spec: &Spec) -> serde_json::Value {
    serde_json::to_value(spec).unwrap_or_default()
}

fn paths(artifact: &Artifact) -> Vec<String> {
    artifact.files.iter().map(|f| f.path.clone()).collect()
}

fn json_list(items: &[String]) -> Vec<serde_json::Value> {
    items.iter().cloned().map(serde_json::Value::String).collect()
}

fn reference(artifact: &Artifact) -> ArtifactRef {
    ArtifactRef {
        id: artifact.id.to_string(),
        kind: artifact.spec.kind(),
        files: artifact.files.iter().map(|f| f.path.clone()).collect(),
    }
}

/// By index into the new plan's artifacts, whether its content changes: new
/// ones, those whose spec changed, and those with an input whose content
/// changes (the graph's order puts every input first).
fn content_changes(old_by_id: &HashMap<&str, &Artifact>, new: Side<'_>) -> Vec<bool> {
    let mut changed: Vec<bool> =
        new.artifacts.iter().map(|a| old_by_id.get(a.id.as_str()).is_none_or(|b| b.spec != a.spec)).collect();
    if let Some(graph) = new.graph {
        for &i in &graph.order {
            if !changed[i] && graph.inputs(i).iter().any(|link| changed[link.index]) {
                changed[i] = true;
            }
        }
    }
    changed
}

/// Files written and removed per host, and who reads them.
struct Impact<'a> {
    old: &'a Consumers,
    new: &'a Consumers,
    order: Vec<Option<String>>,
    writes: HashMap<Option<String>, Vec<String>>,
    removes: HashMap<Option<String>, Vec<String>>,
    restart: HashMap<Option<String>, BTreeSet<String>>,
}

impl<'a> Impact<'a> {
    fn new(old: Side<'a>, new: Side<'a>) -> Self {
        let mut order: Vec<Option<String>> = new.hosts.iter().cloned().map(Some).collect();
        for host in old.hosts {
            if !new.hosts.contains(host) {
                order.push(Some(host.clone()));
            }
        }
        order.push(None);
        Self {
            old: old.consumers(),
            new: new.consumers(),
            order,
            writes: HashMap::new(),
            removes: HashMap::new(),
            restart: HashMap::new(),
        }
    }

    fn write(&mut self, placement: &crate::model::Placement) {
        let (key, path) = shown(placement);
        if let (Some(host), Some(on_host)) = (&placement.host, &placement.host_path) {
            let components = self.new.components_of(host, on_host);
            self.restart.entry(key.clone()).or_default().extend(components);
        }
        push_unique(self.writes.entry(key).or_default(), path);
    }

    fn remove(&mut self, placement: &crate::model::Placement) {
        let (key, path) = shown(placement);
        if let (Some(host), Some(on_host)) = (&placement.host, &placement.host_path) {
            let still_running: Vec<String> =
                self.old.components_of(host, on_host).into_iter().filter(|c| self.new.runs(host, c)).collect();
            self.restart.entry(key.clone()).or_default().extend(still_running);
        }
        push_unique(self.removes.entry(key).or_default(), path);
    }

    fn write_all(&mut self, artifact: &Artifact) {
        self.write_content(artifact, false);
    }

    /// Writes every file of an artifact whose content changes; a reissued
    /// leaf keeps its private key (as `apply` does) unless its algorithm changes.
    fn write_content(&mut self, artifact: &Artifact, keeps_key: bool) {
        for placement in &artifact.files {
            if !(keeps_key && placement.role == FileRole::Key) {
                self.write(placement);
            }
        }
    }

    fn write_new_placements(&mut self, before: &Artifact, after: &Artifact) {
        for placement in &after.files {
            if !before.files.iter().any(|f| f.path == placement.path) {
                self.write(placement);
            }
        }
    }

    fn remove_old_placements(&mut self, before: &Artifact, after: &Artifact) {
        for placement in &before.files {
            if !after.files.iter().any(|f| f.path == placement.path) {
                self.remove(placement);
            }
        }
    }

    fn remove_all(&mut self, artifact: &Artifact) {
        for placement in &artifact.files {
            self.remove(placement);
        }
    }

    fn finish(mut self) -> Vec<HostImpact> {
        let mut hosts = Vec::new();
        for host in std::mem::take(&mut self.order) {
            let writes = self.writes.remove(&host).unwrap_or_default();
            let removes = self.removes.remove(&host).unwrap_or_default();
            if writes.is_empty() && removes.is_empty() {
                continue;
            }
            let restart = self.restart.remove(&host).unwrap_or_default().into_iter().collect();
            hosts.push(HostImpact { host, writes, removes, restart });
        }
        hosts
    }
}

/// The host a placement goes to and the path shown for it there.
fn shown(placement: &crate::model::Placement) -> (Option<String>, String) {
    match (&placement.host, &placement.host_path) {
        (Some(host), Some(path)) => (Some(host.clone()), path.clone()),
        (host, _) => (host.clone(), placement.path.clone()),
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}
