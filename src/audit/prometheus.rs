//! `--format prometheus`: what `verify` found, as metrics in Prometheus'
//! text exposition format, the format `node_exporter`'s textfile collector
//! reads. One family per metric, each with its `# HELP` and `# TYPE`:
//! per file that holds a certificate (a CA's or a leaf's) its `NotAfter`
//! and whether it is valid, labelled `id`, `host`, `path` and `issuer`;
//! for an output tree, when `apply` last wrote it and how many changes
//! `plan` would make. Writes to what it is given; reads only the tree's
//! state, through the pipeline.

use std::io::{self, Write};
use std::path::Path;

use time::OffsetDateTime;

use super::verify::CertFile;
use crate::changes::Options;
use crate::pipeline::{ApplyError, Compiled, Tree, plan_changes};
use crate::state::STATE_PATH;

const EXPIRY: &str = "certplan_certificate_expiry_timestamp_seconds";
const VALID: &str = "certplan_certificate_valid";
const LAST_APPLY: &str = "certplan_tree_last_apply_timestamp_seconds";
const PENDING: &str = "certplan_plan_pending_changes";

/// What the metrics say about an output tree as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeFacts {
    /// When `apply` last recorded the tree's state (the modification time
    /// of `DIR/.certplan/state.json`), in Unix seconds; `None` before the
    /// first apply.
    pub last_apply: Option<i64>,
    /// How many changes `certplan plan` would make to the tree.
    pub pending_changes: usize,
}

impl TreeFacts {
    /// The facts of the tree at `out`, read as `tree`, for a compiled plan
    /// (its templates in use, as `plan` would have them).
    pub fn of(compiled: &Compiled, tree: &Tree, out: &Path, options: &Options) -> Result<Self, ApplyError> {
        let pending_changes = plan_changes(compiled, tree, options)?.len();
        // `Tree::read` has read the state file already, or found none: a
        // state file without a modification time is one never applied.
        let modified = std::fs::metadata(out.join(STATE_PATH)).and_then(|meta| meta.modified()).ok();
        let last_apply = modified.map(|time| OffsetDateTime::from(time).unix_timestamp());
        Ok(Self { last_apply, pending_changes })
    }
}

/// Writes the metrics of every certificate file, then those of the tree
/// when there is one (`verify --host` reads none).
pub fn write_prometheus(out: &mut dyn Write, files: &[CertFile], tree: Option<&TreeFacts>) -> io::Result<()> {
    family(out, EXPIRY, "The NotAfter of the certificate in the file, in Unix seconds.")?;
    for file in files {
        if let Some(not_after) = file.not_after {
            writeln!(out, "{EXPIRY}{} {not_after}", labels(file))?;
        }
    }
    family(
        out,
        VALID,
        "1 when the file is there, matches the plan, chains to its CA and is within its validity; else 0.",
    )?;
    for file in files {
        writeln!(out, "{VALID}{} {}", labels(file), u8::from(file.valid))?;
    }
    let Some(tree) = tree else { return Ok(()) };
    if let Some(last_apply) = tree.last_apply {
        family(out, LAST_APPLY, "When certplan apply last wrote the output tree, in Unix seconds.")?;
        writeln!(out, "{LAST_APPLY} {last_apply}")?;
    }
    family(out, PENDING, "How many changes certplan plan would make to the output tree.")?;
    writeln!(out, "{PENDING} {}", tree.pending_changes)
}

/// The `# HELP` and `# TYPE` lines of a family; every certplan metric is a gauge.
fn family(out: &mut dyn Write, name: &str, help: &str) -> io::Result<()> {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} gauge")
}

/// `{id="…",host="…",path="…",issuer="…"}`; `host` is empty for the
/// cluster directory, which is no host.
fn labels(file: &CertFile) -> String {
    let pairs = [
        ("id", file.id.as_str()),
        ("host", file.host.as_deref().unwrap_or_default()),
        ("path", file.path.as_str()),
        ("issuer", file.issuer.as_str()),
    ];
    let mut text = String::from("{");
    for (n, (name, value)) in pairs.into_iter().enumerate() {
        if n > 0 {
            text.push(',');
        }
        text.push_str(name);
        text.push_str("=\"");
        text.push_str(&escape(value));
        text.push('"');
    }
    text.push('}');
    text
}

/// A label value as the exposition format writes it: backslash, double
/// quote and line feed escaped.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::{CertFile, EXPIRY, LAST_APPLY, PENDING, TreeFacts, VALID, escape, write_prometheus};

    fn file(host: Option<&str>, path: &str, not_after: Option<i64>, valid: bool) -> CertFile {
        CertFile {
            id: "cert/apiserver".into(),
            host: host.map(String::from),
            path: path.into(),
            issuer: "ca/kubernetes".into(),
            not_after,
            valid,
        }
    }

    fn text(files: &[CertFile], tree: Option<&TreeFacts>) -> String {
        let mut out = Vec::new();
        write_prometheus(&mut out, files, tree).expect("write to memory");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape("line\nbreak"), r"line\nbreak");
        assert_eq!(escape("/etc/kubernetes/pki/ca.crt"), "/etc/kubernetes/pki/ca.crt");
    }

    #[test]
    fn each_file_has_a_series_and_a_missing_one_no_expiry() {
        let path = "/etc/kubernetes/pki/apiserver.crt";
        let files = [file(Some("master1"), path, Some(1_798_761_600), true), file(Some("master2"), path, None, false)];
        let tree = TreeFacts { last_apply: Some(1_767_225_600), pending_changes: 2 };
        let text = text(&files, Some(&tree));
        let master1 = format!(r#"{{id="cert/apiserver",host="master1",path="{path}",issuer="ca/kubernetes"}}"#);
        assert!(text.contains(&format!("{EXPIRY}{master1} 1798761600\n")), "{text}");
        assert!(text.contains(&format!("{VALID}{master1} 1\n")), "{text}");
        assert!(text.contains(&format!(r#"{VALID}{{id="cert/apiserver",host="master2","#)), "{text}");
        assert!(!text.contains(&format!(r#"{EXPIRY}{{id="cert/apiserver",host="master2","#)), "{text}");
        assert!(text.contains(&format!("{LAST_APPLY} 1767225600\n")), "{text}");
        assert!(text.ends_with(&format!("# TYPE {PENDING} gauge\n{PENDING} 2\n")), "{text}");
        for name in [EXPIRY, VALID, LAST_APPLY, PENDING] {
            assert_eq!(text.matches(&format!("# HELP {name} ")).count(), 1, "{text}");
            assert_eq!(text.matches(&format!("# TYPE {name} gauge\n")).count(), 1, "{text}");
        }
    }

    #[test]
    fn a_host_has_no_tree_metrics() {
        let text = text(&[file(None, "cluster/pki/ca.crt", Some(1), true)], None);
        assert!(text.contains(r#"host="",path="cluster/pki/ca.crt""#), "{text}");
        assert!(!text.contains(LAST_APPLY) && !text.contains(PENDING), "{text}");
    }
}
