//! The artifact graph: an edge from every artifact to each artifact that
//! embeds it or is signed by it, a topological order, and fingerprints.
//!
//! A fingerprint is the SHA-256 of an artifact's own spec and of the
//! fingerprints of its inputs, so it changes exactly when something the
//! artifact embeds changes.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::model::{ArtifactId, Model};

/// The compiled graph of a model.
#[derive(Debug)]
pub struct Graph {
    /// Artifacts as nodes (indices into `Model::artifacts`), inputs → users.
    pub dag: DiGraph<usize, ()>,
    /// Artifact indices in dependency order.
    pub order: Vec<usize>,
    /// Fingerprint of every artifact, by index.
    pub fingerprints: Vec<String>,
    index: HashMap<ArtifactId, NodeIndex>,
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

impl Graph {
    /// Builds the graph of a model.
    pub fn build(model: &Model) -> Result<Self, GraphError> {
        let mut dag = DiGraph::new();
        let index: HashMap<ArtifactId, NodeIndex> =
            model.artifacts.iter().enumerate().map(|(i, a)| (a.id.clone(), dag.add_node(i))).collect();
        for artifact in &model.artifacts {
            for input in artifact.spec.inputs() {
                if input == artifact.id {
                    continue;
                }
                let from = *index
                    .get(&input)
                    .ok_or_else(|| GraphError::MissingInput { artifact: artifact.id.clone(), input: input.clone() })?;
                dag.add_edge(from, index[&artifact.id], ());
            }
        }
        let order: Vec<usize> = petgraph::algo::toposort(&dag, None)
            .map_err(|cycle| GraphError::Cycle(model.artifacts[dag[cycle.node_id()]].id.clone()))?
            .into_iter()
            .map(|n| dag[n])
            .collect();
        // An artifact's own spec is hashed on its own, across cores; only
        // folding in the inputs' fingerprints must follow the order.
        let mut spec_hashers: Vec<Option<Sha256>> = model
            .artifacts
            .par_iter()
            .map_init(Vec::new, |buffer, artifact| {
                buffer.clear();
                serde_json::to_writer(&mut *buffer, &artifact.spec).ok()?;
                Some(Sha256::new_with_prefix(buffer.as_slice()))
            })
            .collect();
        let mut fingerprints = vec![String::new(); model.artifacts.len()];
        for &i in &order {
            let artifact = &model.artifacts[i];
            let mut hasher = spec_hashers[i].take().unwrap_or_default();
            for input in artifact.spec.inputs() {
                if input != artifact.id {
                    hasher.update(fingerprints[dag[index[&input]]].as_bytes());
                }
            }
            fingerprints[i] = hex::encode(hasher.finalize());
        }
        Ok(Self { dag, order, fingerprints, index })
    }

    /// The node of an artifact.
    pub fn node(&self, id: &ArtifactId) -> Option<NodeIndex> {
        self.index.get(id).copied()
    }

    /// Indices of the artifacts that use artifact `i` directly.
    pub fn dependents(&self, i: usize, model: &Model) -> Vec<usize> {
        let Some(node) = self.node(&model.artifacts[i].id) else {
            return Vec::new();
        };
        self.dag.neighbors_directed(node, petgraph::Direction::Outgoing).map(|n| self.dag[n]).collect()
    }
}
