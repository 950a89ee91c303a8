//! `certplan graph PLAN --format dot|mermaid|json`: the artifact graph, from
//! each CA through its certificates and kubeconfigs to the components on
//! each host that read them.

use std::path::PathBuf;

use super::load;
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
pub fn run(args: &GraphArgs) -> u8 {
    let Some(loaded) = load::read_plan(&args.plan) else {
        return 1;
    };
    let Some(compiled) = load::compile_and_report(&loaded, false) else {
        return 1;
    };
    let doc = graph(&compiled.model, &compiled.graph);
    match args.format {
        GraphFormat::Dot => outln!("{}", to_dot(&doc).trim_end()),
        GraphFormat::Mermaid => outln!("{}", to_mermaid(&doc).trim_end()),
        GraphFormat::Json => match serde_json::to_string_pretty(&doc) {
            Ok(json) => outln!("{json}"),
            Err(error) => {
                eprintln!("error: cannot write the graph as JSON: {error}");
                return 1;
            }
        },
    }
    0
}
