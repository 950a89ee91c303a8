//! The artifact graph, the one answer to "what depends on what": a node per
//! artifact (trust bundles of CA rotations among them) and an edge from
//! every artifact to each one it signs, that embeds it or that trusts it,
//! each edge saying which ([`Relation`]). Issue order, the change
//! cascade of `plan`/`apply`, `diff`'s cascade, `graph`'s export and the
//! material `apply` must read back all ask it; nothing else works out
//! dependencies.
//!
//! It also holds every artifact's fingerprint: the SHA-256 of its own spec and
//! of the fingerprints of its inputs, so it changes exactly when something the
//! artifact embeds or is signed by changes.

mod consumers;

pub use consumers::{Consumers, NO_CONSUMERS, Use};

use std::collections::VecDeque;
use std::sync::OnceLock;

use petgraph::graph::{DiGraph, NodeIndex};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{Artifact, ArtifactId, Model, Spec};

/// What an artifact's spec and inputs hash to: the hex SHA-256 the state
/// records, compared to tell whether anything the artifact embeds changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The hex digest.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fingerprint no artifact has: recorded for adopted material that
    /// is not what the plan describes, so that the next run compares the
    /// recorded spec with the plan's and says what differs.
    #[must_use]
    pub fn differing() -> Self {
        Self("adopted, not as planned".into())
    }
}

/// Why an artifact depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// A CA signs a certificate: a new CA key means a new certificate.
    Signs,
    /// A kubeconfig embeds a CA certificate (or a trust bundle), a client
    /// certificate or a token: new content there means the kubeconfig is
    /// rendered again.
    Embeds,
    /// A trust bundle holds a CA's certificate: a new CA certificate means
    /// the bundle, and whatever embeds it, is written again.
    Trusts,
}

/// One edge, seen from one end: the artifact at the other end, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The other artifact's index in `Model::artifacts`.
    pub index: usize,
    /// What the edge means.
    pub relation: Relation,
}

/// The compiled graph of a model.
#[derive(Debug)]
pub struct Graph {
    /// Artifact indices in dependency order: every artifact after its inputs.
    pub order: Vec<usize>,
    /// Fingerprint of every artifact, by index.
    pub fingerprints: Vec<Fingerprint>,
    /// What each artifact depends on, in the order its spec names them.
    inputs: Vec<Vec<Link>>,
    /// What depends on each artifact, in plan order.
    dependents: Vec<Vec<Link>>,
    /// Which component on which host uses which file, built on first use.
    consumers: OnceLock<Consumers>,
}

/// A graph that cannot be built: an input missing or a cycle.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// An artifact names an input the model does not have.
    #[error("`{artifact}` depends on `{input}`, which the plan does not produce")]
    MissingInput {
        /// The artifact.
        artifact: ArtifactId,
        /// The missing input.
        input: ArtifactId,
    },
    /// The dependencies form a cycle.
    #[error("the artifacts depend on each other in a cycle through `{0}`")]
    Cycle(ArtifactId),
}

/// The artifacts an artifact depends on, and how.
fn relations(artifact: &Artifact) -> Vec<(&ArtifactId, Relation)> {
    match &artifact.spec {
        Spec::Cert(cert) => vec![(&cert.issuer, Relation::Signs)],
        // An intermediate CA is signed by its parent; a root by itself.
        Spec::Ca(ca) if ca.issuer != artifact.id => vec![(&ca.issuer, Relation::Signs)],
        Spec::Kubeconfig(kubeconfig) => {
            vec![(&kubeconfig.ca, Relation::Embeds), (kubeconfig.credential.artifact(), Relation::Embeds)]
        }
        Spec::Bundle(bundle) => bundle.members.iter().map(|member| (member, Relation::Trusts)).collect(),
        Spec::Ca(_)
        | Spec::Keypair(_)
        | Spec::TokenFile(_)
        | Spec::BootstrapToken(_)
        | Spec::Flags(_)
        | Spec::Manifest(_) => Vec::new(),
    }
}

impl Graph {
    /// Builds the graph of a model.
    pub fn build(model: &Model) -> Result<Self, GraphError> {
        let count = model.artifacts.len();
        let mut inputs: Vec<Vec<Link>> = vec![Vec::new(); count];
        let mut dependents: Vec<Vec<Link>> = vec![Vec::new(); count];
        let mut dag: DiGraph<usize, ()> = DiGraph::with_capacity(count, count);
        let nodes: Vec<NodeIndex> = (0..count).map(|i| dag.add_node(i)).collect();
        for (i, artifact) in model.artifacts.iter().enumerate() {
            for (input, relation) in relations(artifact) {
                // A CA signs itself: not an edge.
                if *input == artifact.id {
                    continue;
                }
                let from = model
                    .position(input)
                    .ok_or_else(|| GraphError::MissingInput { artifact: artifact.id.clone(), input: input.clone() })?;
                inputs[i].push(Link { index: from, relation });
                dependents[from].push(Link { index: i, relation });
                dag.add_edge(nodes[from], nodes[i], ());
            }
        }
        let order: Vec<usize> = petgraph::algo::toposort(&dag, None)
            .map_err(|cycle| GraphError::Cycle(model.artifacts[dag[cycle.node_id()]].id.clone()))?
            .into_iter()
            .map(|n| dag[n])
            .collect();
        let fingerprints = fingerprints(model, &order, &inputs);
        Ok(Self { order, fingerprints, inputs, dependents, consumers: OnceLock::new() })
    }

    /// What artifact `i` depends on, in the order its spec names them.
    pub fn inputs(&self, i: usize) -> &[Link] {
        self.inputs.get(i).map_or(&[], Vec::as_slice)
    }

    /// What depends on artifact `i` directly, in plan order.
    pub fn dependents(&self, i: usize) -> &[Link] {
        self.dependents.get(i).map_or(&[], Vec::as_slice)
    }

    /// Everything that depends on artifact `i`, directly or through others,
    /// nearest first (breadth first, plan order within a distance).
    pub fn cascade(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.dependents.len()];
        let mut found = Vec::new();
        let mut queue = VecDeque::from([i]);
        while let Some(next) = queue.pop_front() {
            for link in self.dependents(next) {
                if link.index != i && !seen[link.index] {
                    seen[link.index] = true;
                    found.push(link.index);
                    queue.push_back(link.index);
                }
            }
        }
        found
    }

    /// Who uses the files of the artifacts: the components whose flag files
    /// name them. `artifacts` are those of the model this graph was built from.
    pub fn consumers(&self, artifacts: &[Artifact]) -> &Consumers {
        debug_assert_eq!(artifacts.len(), self.inputs.len(), "a graph asked about another model");
        self.consumers.get_or_init(|| Consumers::index(artifacts))
    }

    /// The artifacts in waves: every artifact of a wave depends only on
    /// artifacts of earlier waves, so one wave can be issued in parallel
    /// once the waves before it are done. Roots (CAs) come first.
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let mut depth = vec![0usize; self.inputs.len()];
        for &i in &self.order {
            depth[i] = self.inputs(i).iter().map(|link| depth[link.index] + 1).max().unwrap_or(0);
        }
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for &i in &self.order {
            if waves.len() <= depth[i] {
                waves.resize_with(depth[i] + 1, Vec::new);
            }
            waves[depth[i]].push(i);
        }
        for wave in &mut waves {
            wave.sort_unstable();
        }
        waves
    }
}

/// Every artifact's fingerprint. Its own spec is hashed on its own, across
/// cores; only folding in the inputs' fingerprints must follow the order.
fn fingerprints(model: &Model, order: &[usize], inputs: &[Vec<Link>]) -> Vec<Fingerprint> {
    let mut spec_hashers: Vec<Option<Sha256>> = model
        .artifacts
        .par_iter()
        .map_init(Vec::new, |buffer, artifact| {
            buffer.clear();
            serde_json::to_writer(&mut *buffer, &artifact.spec).ok()?;
            Some(Sha256::new_with_prefix(buffer.as_slice()))
        })
        .collect();
    let mut fingerprints = vec![Fingerprint(String::new()); model.artifacts.len()];
    for &i in order {
        let mut hasher = spec_hashers[i].take().unwrap_or_default();
        for link in &inputs[i] {
            hasher.update(fingerprints[link.index].0.as_bytes());
        }
        fingerprints[i] = Fingerprint(hex::encode(hasher.finalize()));
    }
    fingerprints
}
