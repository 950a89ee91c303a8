//! What the operator does with a decision: which hosts get which files, the
//! components that must restart to read them, and the order to go in —
//! etcd members one at a time, then API servers, then controller-managers
//! and schedulers, then kubelets and kube-proxies. Derived from the changes
//! and the graph's `uses` edges; `plan` and `apply` print it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Change;
use crate::graph::Consumers;
use crate::plan::RotationStep;

/// The waves of a rollout, in order, and the hosts that only get files.
#[derive(Debug, Default, Serialize)]
pub struct Rollout {
    /// The waves that restart something, in the order to take them.
    pub waves: Vec<Wave>,
    /// Hosts whose files change but whose components need no restart.
    pub files_only: Vec<HostFiles>,
    /// The rotation steps this rollout belongs to, as `(table, step)`
    /// (`cas.kubernetes`, `sets.service-account`): every host must have it
    /// before the next step is applied.
    pub rotations: Vec<(String, RotationStep)>,
}

/// One wave: a kind of component, restarted on each of its hosts.
#[derive(Debug, Serialize)]
pub struct Wave {
    /// What restarts in it (`etcd`, `kube-apiserver`, ...).
    pub components: Vec<&'static str>,
    /// Whether the hosts must be taken one at a time (etcd keeps quorum).
    pub one_at_a_time: bool,
    /// Its hosts, in plan order, with what restarts on each.
    pub hosts: Vec<HostFiles>,
}

/// A host's part of a wave.
#[derive(Debug, Serialize)]
pub struct HostFiles {
    /// The host.
    pub host: String,
    /// The components to restart there, of this wave.
    pub restart: Vec<String>,
    /// Every file of the host that is written or removed (on-host paths).
    pub files: Vec<String>,
}

/// The waves, in order: what restarts in each.
const WAVES: [(&[&str], bool); 4] = [
    (&["etcd"], true),
    (&["kube-apiserver"], false),
    (&["kube-controller-manager", "kube-scheduler"], false),
    (&["kubelet", "kube-proxy"], false),
];

/// The rollout of `changes`: `hosts` in plan order, `consumers` the graph's.
#[must_use]
pub fn rollout(
    changes: &[Change],
    hosts: &[String],
    consumers: &Consumers,
    rotations: Vec<(String, RotationStep)>,
) -> Rollout {
    // Every on-host file that changes, by host.
    let mut files: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    // Encrypting again changes nothing on a host.
    for change in changes.iter().filter(|c| c.action != super::Action::Reencrypt) {
        let written: BTreeSet<(&str, &str)> = change.writes.iter().filter_map(|p| on_host(p)).collect();
        let removed: BTreeSet<(&str, &str)> = change.removes.iter().filter_map(|p| on_host(p)).collect();
        // A copy that only changes its name in the tree (encrypted, or no
        // longer) is the same file on the host.
        let moved_in_tree = |file: &(&str, &str)| {
            change.action == super::Action::Place && written.contains(file) && removed.contains(file)
        };
        for (host, path) in written.iter().chain(&removed).filter(|f| !moved_in_tree(f)) {
            files.entry(host).or_default().insert(path);
        }
    }
    let mut rollout = Rollout { rotations, ..Rollout::default() };
    let mut restarted: BTreeSet<&str> = BTreeSet::new();
    for (components, one_at_a_time) in WAVES {
        let mut wave = Wave { components: components.to_vec(), one_at_a_time, hosts: Vec::new() };
        for host in hosts {
            let Some(touched) = files.get(host.as_str()) else { continue };
            let restart: BTreeSet<String> = touched
                .iter()
                .flat_map(|path| consumers.components_of(host, path))
                .filter(|component| components.contains(&component.as_str()))
                .collect();
            if !restart.is_empty() {
                restarted.insert(host);
                wave.hosts.push(HostFiles {
                    host: host.clone(),
                    restart: restart.into_iter().collect(),
                    files: touched.iter().map(|p| (*p).to_string()).collect(),
                });
            }
        }
        if !wave.hosts.is_empty() {
            rollout.waves.push(wave);
        }
    }
    for host in hosts.iter().filter(|h| !restarted.contains(h.as_str())) {
        if let Some(touched) = files.get(host.as_str()) {
            rollout.files_only.push(HostFiles {
                host: host.clone(),
                restart: Vec::new(),
                files: touched.iter().map(|p| (*p).to_string()).collect(),
            });
        }
    }
    rollout
}

/// The host and on-host path of a file of the tree (`hosts/HOST/PATH`,
/// with `.age` when the tree encrypts it).
fn on_host(relative: &str) -> Option<(&str, &str)> {
    let relative = relative.strip_suffix(crate::secrets::SUFFIX).unwrap_or(relative);
    let rest = relative.strip_prefix("hosts/")?;
    let slash = rest.find('/')?;
    Some((&rest[..slash], &rest[slash..]))
}

impl Rollout {
    /// Whether there is anything to roll out to hosts.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.waves.is_empty() && self.files_only.is_empty()
    }

    /// The rollout as lines of text for `plan` and `apply`.
    #[must_use]
    pub fn to_text(&self) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut lines = vec!["Roll out host by host, in this order:".to_string()];
        for (n, wave) in self.waves.iter().enumerate() {
            let how = if wave.one_at_a_time { ", one member at a time, healthy before the next" } else { "" };
            lines.push(format!("  {}. {}{how}:", n + 1, wave.components.join(" and ")));
            for host in &wave.hosts {
                lines.push(format!(
                    "       {}: {} file(s), restart {}",
                    host.host,
                    host.files.len(),
                    host.restart.join(", ")
                ));
            }
        }
        if !self.files_only.is_empty() {
            lines.push("  Files only, nothing to restart:".to_string());
            for host in &self.files_only {
                lines.push(format!("       {}: {} file(s)", host.host, host.files.len()));
            }
        }
        for (section, step) in &self.rotations {
            let next = match RotationStep::next(Some(*step)) {
                Some(next) => format!("`rotation = \"{}\"`", next.as_str()),
                None => "deleting the `rotation` line".to_string(),
            };
            lines.push(format!(
                "Rotation of `[{section}]`, step `{}`: every host must have these files, and its components restarted, before {next} is applied.",
                step.as_str()
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::Action;

    fn change(writes: &[&str]) -> Change {
        Change {
            id: crate::model::ArtifactId::ca("x"),
            index: Some(0),
            action: Action::Rewrite,
            reason: String::new(),
            new_key: false,
            writes: writes.iter().map(|w| (*w).to_string()).collect(),
            removes: Vec::new(),
        }
    }

    #[test]
    fn files_of_the_tree_are_split_into_host_and_path() {
        assert_eq!(on_host("hosts/m1/etc/kubernetes/pki/ca.crt"), Some(("m1", "/etc/kubernetes/pki/ca.crt")));
        assert_eq!(on_host("cluster/pki/ca.crt"), None);
        assert_eq!(on_host("hosts/m1/etc/k/ca.key.age"), Some(("m1", "/etc/k/ca.key")));
    }

    #[test]
    fn a_file_nobody_reads_is_copied_without_a_restart() {
        let rollout = rollout(&[change(&["hosts/m1/etc/x.pem"])], &["m1".into()], &Consumers::default(), Vec::new());
        assert!(rollout.waves.is_empty());
        assert_eq!(rollout.files_only.len(), 1);
        assert_eq!(rollout.files_only[0].files, ["/etc/x.pem"]);
    }
}
