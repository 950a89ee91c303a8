//! `certplan graph PLAN --format dot|mermaid|json`: the artifact graph, from
//! each CA through its certificates and kubeconfigs to the components on
//! each host that read them.

use std::path::PathBuf;

use super::{Error, Outcome, load};
use crate::audit::export::{GraphFormat, graph, to_dot, to_mermaid};

/// Arguments of `graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Graphviz DOT, a Mermaid flowchart, or nodes and edges as JSON.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Runs `graph`.
pub fn run(args: &GraphArgs) -> Result<Outcome, Error> {
    let compiled = load::compile_plan(&args.plan)?;
    let doc = graph(&compiled.model, &compiled.graph);
    match args.format {
        GraphFormat::Dot => outln!("{}", to_dot(&doc).trim_end()),
        GraphFormat::Mermaid => outln!("{}", to_mermaid(&doc).trim_end()),
        GraphFormat::Json => {
            let json = serde_json::to_string_pretty(&doc)
                .map_err(|error| Error::Write { what: "graph as JSON", source: error.into() })?;
            outln!("{json}");
        }
    }
    Ok(Outcome::Success)
}
