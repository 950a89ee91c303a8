//! The graph's `uses` edges: the components whose flag file names a file's
//! on-host path (a certificate, key, CA, kubeconfig or token file), and the
//! component of a flag file itself. Derived from the plan alone, so `diff`,
//! `inspect` and `graph` agree on it without an output tree. Built on first
//! use ([`super::Graph::consumers`]): deciding and issuing never need it.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Artifact, Spec};

/// A component on a host that reads a file, and the flags that name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    /// The host.
    pub host: String,
    /// The component (`kube-apiserver`, `etcd`, ...).
    pub component: String,
    /// The id of the component's flag file (`flags/etcd/master1`).
    pub flag_file: String,
    /// The flags that name the file; empty for the flag file itself.
    pub flags: Vec<String>,
}

/// Every use of every on-host file of a plan.
#[derive(Debug, Default)]
pub struct Consumers {
    by_file: BTreeMap<(String, String), Vec<Use>>,
    components: BTreeSet<(String, String)>,
}

/// No uses at all: a plan that does not exist.
pub static NO_CONSUMERS: Consumers = Consumers { by_file: BTreeMap::new(), components: BTreeSet::new() };

impl Consumers {
    /// Indexes the flag files among `artifacts`.
    #[must_use]
    pub fn index(artifacts: &[Artifact]) -> Self {
        let mut consumers = Self::default();
        for artifact in artifacts {
            let Spec::Flags(spec) = &artifact.spec else {
                continue;
            };
            let component = spec.component.to_string();
            consumers.components.insert((spec.host.clone(), component.clone()));
            let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for var in &spec.vars {
                for (flag, value) in &var.flags {
                    for path in value.split(',').filter(|p| p.starts_with('/')) {
                        named.entry(path.to_string()).or_default().push(flag.clone());
                    }
                }
            }
            for placement in &artifact.files {
                if let Some(path) = &placement.host_path {
                    named.entry(path.clone()).or_default();
                }
            }
            for (path, flags) in named {
                consumers.by_file.entry((spec.host.clone(), path)).or_default().push(Use {
                    host: spec.host.clone(),
                    component: component.clone(),
                    flag_file: artifact.id.to_string(),
                    flags,
                });
            }
        }
        consumers
    }

    /// The uses of the file at `path` on `host`.
    pub fn of(&self, host: &str, path: &str) -> &[Use] {
        self.by_file.get(&(host.to_string(), path.to_string())).map_or(&[], Vec::as_slice)
    }

    /// The components that read the file at `path` on `host`, by name.
    #[must_use]
    pub fn components_of(&self, host: &str, path: &str) -> Vec<String> {
        let mut names: Vec<String> = self.of(host, path).iter().map(|u| u.component.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether a component runs on a host.
    #[must_use]
    pub fn runs(&self, host: &str, component: &str) -> bool {
        self.components.contains(&(host.to_string(), component.to_string()))
    }

    /// The components that read any on-host file of an artifact, one entry
    /// per flag file with every flag that names one of its files.
    #[must_use]
    pub fn of_artifact(&self, artifact: &Artifact) -> Vec<Use> {
        let mut uses: Vec<Use> = Vec::new();
        for placement in &artifact.files {
            let (Some(host), Some(path)) = (&placement.host, &placement.host_path) else {
                continue;
            };
            for found in self.of(host, path) {
                if found.flag_file == artifact.id.as_str() {
                    continue;
                }
                match uses.iter_mut().find(|u| u.flag_file == found.flag_file) {
                    Some(merged) => merged.flags.extend(found.flags.iter().cloned()),
                    None => uses.push(found.clone()),
                }
            }
        }
        uses
    }
}
