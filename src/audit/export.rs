//! The artifact graph for people and tools: CA → certificate → kubeconfig →
//! component on a host, with set names on signing edges. [`graph`] builds a
//! plain document of nodes and edges (the JSON form); [`to_dot`] and
//! [`to_mermaid`] draw it with certificates grouped by set and components
//! grouped by host, so a five-host plan stays readable.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::graph::{self, Graph};
use crate::model::{CertSet, Model, Spec};

/// The graph formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in GitHub and GitLab Markdown).
    Mermaid,
    /// Nodes and edges for programs.
    Json,
}

/// The graph document (`certplan graph --format json`).
#[derive(Debug, Serialize)]
pub struct GraphDoc {
    /// Contract version.
    pub version: u32,
    /// The cluster's name.
    pub cluster: String,
    /// Artifacts and hosts.
    pub nodes: Vec<Node>,
    /// Who signs, embeds or reads what, and where components run.
    pub edges: Vec<Edge>,
}

/// A node: an artifact (its id) or a host (`host/<name>`).
#[derive(Debug, Serialize)]
pub struct Node {
    /// The artifact id, or `host/<name>`.
    pub id: String,
    /// The artifact's kind, or `host`.
    pub kind: &'static str,
    /// A short label: the CN of a certificate, the component of a flag file.
    pub label: String,
    /// The certificate set it belongs to.
    pub set: Option<CertSet>,
    /// The host it is bound to (a flag file's host: where the component runs).
    pub host: Option<String>,
}

/// What an edge means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// A CA signs a certificate.
    Signs,
    /// A kubeconfig embeds a CA certificate, a client certificate or a token.
    Embeds,
    /// A trust bundle of a CA rotation holds a CA's certificate.
    Trusts,
    /// A component (its flag file) names a file of the artifact.
    Uses,
    /// A component runs on a host.
    RunsOn,
}

/// An edge.
#[derive(Debug, Serialize)]
pub struct Edge {
    /// The source node's id.
    pub from: String,
    /// The target node's id.
    pub to: String,
    /// What it means.
    pub relation: Relation,
    /// The set of a signed certificate.
    pub set: Option<CertSet>,
    /// For `uses`: the flags that name the files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// Draws the graph of a model: its signing and embedding edges as the
/// artifact graph has them, plus which component on which host uses what.
pub fn graph(model: &Model, dependencies: &Graph) -> GraphDoc {
    let consumers = dependencies.consumers(&model.artifacts);
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for (i, artifact) in model.artifacts.iter().enumerate() {
        let (set, host, label) = match &artifact.spec {
            Spec::Ca(cert) | Spec::Cert(cert) => (cert.set, cert.host.clone(), cert.subject.cn.clone()),
            Spec::Keypair(pair) => (Some(pair.set), None, artifact.id.to_string()),
            Spec::Flags(flags) => (None, Some(flags.host.clone()), flags.component.to_string()),
            _ => (None, None, artifact.id.to_string()),
        };
        nodes.push(Node { id: artifact.id.to_string(), kind: artifact.spec.kind(), label, set, host: host.clone() });
        let id = artifact.id.to_string();
        for link in dependencies.inputs(i) {
            let (relation, set) = match link.relation {
                graph::Relation::Signs => (Relation::Signs, set),
                graph::Relation::Embeds => (Relation::Embeds, None),
                graph::Relation::Trusts => (Relation::Trusts, None),
            };
            edges.push(Edge {
                from: model.artifacts[link.index].id.to_string(),
                to: id.clone(),
                relation,
                set,
                flags: Vec::new(),
            });
        }
        if let (Spec::Flags(_), Some(host)) = (&artifact.spec, host) {
            edges.push(Edge {
                from: id.clone(),
                to: format!("host/{host}"),
                relation: Relation::RunsOn,
                set: None,
                flags: Vec::new(),
            });
        }
        for found in consumers.of_artifact(artifact) {
            edges.push(Edge {
                from: id.clone(),
                to: found.flag_file,
                relation: Relation::Uses,
                set: None,
                flags: found.flags,
            });
        }
    }
    for host in &model.hosts {
        nodes.push(Node {
            id: format!("host/{}", host.name),
            kind: "host",
            label: format!("{} ({})", host.name, host.address),
            set: None,
            host: Some(host.name.clone()),
        });
    }
    GraphDoc { version: 1, cluster: model.cluster.name.clone(), nodes, edges }
}

/// Where a node is drawn: which group (subgraph) holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Cas,
    Set(CertSet),
    Keys,
    Kubeconfigs,
    Host(String),
    ClusterDir,
}

impl Group {
    fn of(node: &Node) -> Option<Self> {
        match node.kind {
            "ca" | "bundle" => Some(Self::Cas),
            "cert" => Some(node.set.map_or(Self::Keys, Self::Set)),
            "keypair" | "token-file" => Some(Self::Keys),
            "kubeconfig" => Some(Self::Kubeconfigs),
            "flags" => node.host.clone().map(Self::Host),
            "host" => None,
            _ => Some(Self::ClusterDir),
        }
    }

    fn key(&self) -> String {
        match self {
            Self::Cas => "cas".into(),
            Self::Set(set) => format!("set_{}", safe(set.as_str())),
            Self::Keys => "keys".into(),
            Self::Kubeconfigs => "kubeconfigs".into(),
            Self::Host(host) => format!("host_{}", safe(host)),
            Self::ClusterDir => "cluster_dir".into(),
        }
    }

    fn title(&self, doc: &GraphDoc) -> String {
        match self {
            Self::Cas => "certificate authorities".into(),
            Self::Set(set) => format!("set {set}"),
            Self::Keys => "keys and tokens".into(),
            Self::Kubeconfigs => "kubeconfigs".into(),
            Self::Host(host) => doc
                .nodes
                .iter()
                .find(|n| n.id == format!("host/{host}"))
                .map_or_else(|| host.clone(), |n| n.label.clone()),
            Self::ClusterDir => "cluster directory".into(),
        }
    }
}

fn safe(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Nodes by group, groups in drawing order, nodes in plan order.
fn groups(doc: &GraphDoc) -> BTreeMap<Group, Vec<usize>> {
    let mut groups: BTreeMap<Group, Vec<usize>> = BTreeMap::new();
    for (i, node) in doc.nodes.iter().enumerate() {
        if let Some(group) = Group::of(node) {
            groups.entry(group).or_default().push(i);
        }
    }
    groups
}

/// The label of a node inside its group: what the group does not say
/// already, and the CN of a certificate when it says more.
fn short_label(node: &Node) -> String {
    match node.kind {
        "flags" => node.label.clone(),
        "ca" | "cert" => {
            let rest = node.id.split_once('/').map_or(node.id.as_str(), |(_, rest)| rest);
            let rest = node.set.and_then(|set| rest.strip_prefix(set.as_str())?.strip_prefix('/')).unwrap_or(rest);
            if rest == node.label { rest.to_string() } else { format!("{rest}\\nCN {}", node.label) }
        }
        "kubeconfig" | "keypair" | "manifest" => {
            node.id.split_once('/').map_or_else(|| node.id.clone(), |(_, rest)| rest.to_string())
        }
        _ => node.id.clone(),
    }
}

/// The column a node is drawn in, left to right: CAs, certificates and
/// keys, kubeconfigs, components.
fn column(node: &Node) -> Option<usize> {
    match node.kind {
        "ca" | "bundle" => Some(0),
        "cert" | "keypair" | "token-file" => Some(1),
        "kubeconfig" => Some(2),
        "flags" => Some(3),
        _ => None,
    }
}

/// A set whose certificates share one issuer is drawn with one edge from
/// that CA to the set; the map holds those sets and their CA.
fn set_issuers(doc: &GraphDoc) -> BTreeMap<CertSet, String> {
    let mut issuers: BTreeMap<CertSet, Option<String>> = BTreeMap::new();
    for edge in doc.edges.iter().filter(|e| e.relation == Relation::Signs) {
        let Some(set) = edge.set else { continue };
        let entry = issuers.entry(set).or_insert_with(|| Some(edge.from.clone()));
        if entry.as_deref() != Some(edge.from.as_str()) {
            *entry = None;
        }
    }
    issuers.into_iter().filter_map(|(set, ca)| ca.map(|ca| (set, ca))).collect()
}

fn is_ca(doc: &GraphDoc, id: &str) -> bool {
    doc.nodes.iter().any(|n| n.id == id && matches!(n.kind, "ca" | "bundle"))
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\\\""))
}

/// Graphviz DOT: left to right, certificates clustered by set, components
/// clustered by host; a CA's trust edges drawn once per host.
pub fn to_dot(doc: &GraphDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph certplan {{");
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, compound=true, newrank=true, nodesep=0.2, ranksep=1.1, fontname=\"Helvetica\", labelloc=t, label={}];",
        quote(&format!("certplan: cluster {}", doc.cluster))
    );
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\", fontsize=10];"
    );
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#666666\"];");
    let groups = groups(doc);
    let mut anchor: BTreeMap<String, String> = BTreeMap::new();
    for (group, members) in &groups {
        let key = group.key();
        let _ = writeln!(out, "  subgraph cluster_{key} {{");
        let _ =
            writeln!(out, "    label={}; style=\"rounded\"; color=\"#999999\"; fontsize=11;", quote(&group.title(doc)));
        for &i in members {
            let node = &doc.nodes[i];
            let fill = match node.kind {
                "ca" | "bundle" => "#fde2a8",
                "cert" => "#dbe9f7",
                "keypair" | "token-file" => "#f3d9e8",
                "kubeconfig" => "#dff2d8",
                "flags" => "#eeeeee",
                _ => "#ffffff",
            };
            let _ =
                writeln!(out, "    {} [label={}, fillcolor=\"{fill}\"];", quote(&node.id), quote(&short_label(node)));
        }
        let _ = writeln!(out, "  }}");
        if let Some(&first) = members.first() {
            anchor.insert(key, doc.nodes[first].id.clone());
        }
    }
    for rank in 0..4 {
        let same: Vec<String> = doc.nodes.iter().filter(|n| column(n) == Some(rank)).map(|n| quote(&n.id)).collect();
        if !same.is_empty() {
            let _ = writeln!(out, "  {{ rank=same; {}; }}", same.join("; "));
        }
    }
    let set_issuers = set_issuers(doc);
    for (set, ca) in &set_issuers {
        let key = Group::Set(*set).key();
        if let Some(target) = anchor.get(&key) {
            let _ = writeln!(
                out,
                "  {} -> {} [lhead=cluster_{key}, label={}, color=\"#b8860b\", fontcolor=\"#b8860b\"];",
                quote(ca),
                quote(target),
                quote(set.as_str())
            );
        }
    }
    let mut trust: Vec<(String, String)> = Vec::new();
    for edge in &doc.edges {
        match edge.relation {
            Relation::Signs => {
                if edge.set.is_none_or(|set| !set_issuers.contains_key(&set)) {
                    let label = edge.set.map_or_else(String::new, |s| format!(", label={}", quote(s.as_str())));
                    let _ = writeln!(out, "  {} -> {} [color=\"#b8860b\"{label}];", quote(&edge.from), quote(&edge.to));
                }
            }
            Relation::Trusts => {
                let _ =
                    writeln!(out, "  {} -> {} [style=dashed, color=\"#b8860b\"];", quote(&edge.from), quote(&edge.to));
            }
            Relation::Uses | Relation::Embeds if is_ca(doc, &edge.from) => {
                let target = doc.nodes.iter().find(|n| n.id == edge.to).and_then(Group::of);
                if let Some(group) = target {
                    let pair = (edge.from.clone(), group.key());
                    if !trust.contains(&pair) {
                        trust.push(pair);
                    }
                }
            }
            Relation::Uses | Relation::Embeds => {
                let _ = writeln!(out, "  {} -> {};", quote(&edge.from), quote(&edge.to));
            }
            Relation::RunsOn => {}
        }
    }
    for (ca, key) in trust {
        if let Some(target) = anchor.get(&key) {
            let _ = writeln!(
                out,
                "  {} -> {} [lhead=cluster_{key}, style=dashed, color=\"#b8860b\", fontcolor=\"#b8860b\", label=\"trust\"];",
                quote(&ca),
                quote(target)
            );
        }
    }
    let _ = writeln!(out, "}}");
    out
}

/// A Mermaid flowchart with the same grouping as [`to_dot`].
pub fn to_mermaid(doc: &GraphDoc) -> String {
    let mut out = String::from("flowchart LR\n");
    let ids: BTreeMap<&str, String> =
        doc.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), format!("n{i}"))).collect();
    let text = |s: &str| s.replace('"', "#quot;").replace("\\n", "<br>");
    for (group, members) in groups(doc) {
        let _ = writeln!(out, "  subgraph {}[\"{}\"]", group.key(), text(&group.title(doc)));
        for i in members {
            let node = &doc.nodes[i];
            let _ =
                writeln!(out, "    {}[\"{}\"]:::{}", ids[node.id.as_str()], text(&short_label(node)), safe(node.kind));
        }
        let _ = writeln!(out, "  end");
    }
    let set_issuers = set_issuers(doc);
    for (set, ca) in &set_issuers {
        if let Some(from) = ids.get(ca.as_str()) {
            let _ = writeln!(out, "  {from} -->|{set}| {}", Group::Set(*set).key());
        }
    }
    let mut trust: Vec<(String, String)> = Vec::new();
    for edge in &doc.edges {
        let (Some(from), Some(to)) = (ids.get(edge.from.as_str()), ids.get(edge.to.as_str())) else {
            continue;
        };
        match edge.relation {
            Relation::Signs => {
                if edge.set.is_none_or(|set| !set_issuers.contains_key(&set)) {
                    let label = edge.set.map_or_else(String::new, |s| format!("|{s}|"));
                    let _ = writeln!(out, "  {from} -->{label} {to}");
                }
            }
            Relation::Trusts => {
                let _ = writeln!(out, "  {from} -.-> {to}");
            }
            Relation::Uses | Relation::Embeds if is_ca(doc, &edge.from) => {
                let target = doc.nodes.iter().find(|n| n.id == edge.to).and_then(Group::of);
                if let Some(group) = target {
                    let pair = (from.clone(), group.key());
                    if !trust.contains(&pair) {
                        trust.push(pair);
                    }
                }
            }
            Relation::Uses | Relation::Embeds => {
                let _ = writeln!(out, "  {from} --> {to}");
            }
            Relation::RunsOn => {}
        }
    }
    for (from, group) in trust {
        let _ = writeln!(out, "  {from} -.->|trust| {group}");
    }
    for (kind, fill) in [
        ("ca", "#fde2a8"),
        ("bundle", "#fde2a8"),
        ("cert", "#dbe9f7"),
        ("keypair", "#f3d9e8"),
        ("token_file", "#f3d9e8"),
        ("kubeconfig", "#dff2d8"),
        ("flags", "#eeeeee"),
        ("manifest", "#ffffff"),
    ] {
        let _ = writeln!(out, "  classDef {kind} fill:{fill},stroke:#666666");
    }
    out
}
