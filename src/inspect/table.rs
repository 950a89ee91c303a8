//! The inspect report as tables for people: every certificate and key with
//! its identity, SANs, EKUs, issuer, key and validity; with an output tree,
//! the real validity, each CA's discovery hash and every file with the
//! components that read it. Text pads cells (multi-line where a cell holds a
//! list); Markdown joins list items with `<br>`.

use std::io::{self, Write};

use super::{ArtifactReport, Report};
use crate::durations::{length, remaining};

/// Renders the report as text tables. `on_disk`: an output tree was read.
pub fn write_text(out: &mut dyn Write, report: &Report, on_disk: bool) -> io::Result<()> {
    write!(out, "{}", text_table(&certificates(report, on_disk)))?;
    if on_disk {
        let hashes = hashes(report);
        if !hashes.rows.is_empty() {
            writeln!(out)?;
            write!(out, "{}", text_table(&hashes))?;
        }
        writeln!(out)?;
        write!(out, "{}", text_table(&files(report)))?;
    }
    Ok(())
}

/// Renders the report as Markdown tables.
pub fn write_markdown(out: &mut dyn Write, report: &Report, on_disk: bool) -> io::Result<()> {
    writeln!(out, "### Certificates and keys of cluster `{}`\n", report.cluster)?;
    write!(out, "{}", markdown_table(&certificates(report, on_disk)))?;
    if on_disk {
        let hashes = hashes(report);
        if !hashes.rows.is_empty() {
            writeln!(out, "\n### kubeadm discovery hashes\n")?;
            write!(out, "{}", markdown_table(&hashes))?;
        }
        writeln!(out, "\n### Files and their consumers\n")?;
        write!(out, "{}", markdown_table(&files(report)))?;
    }
    Ok(())
}

/// A table whose cells may hold several lines.
struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Vec<String>>>,
}

fn one(text: impl Into<String>) -> Vec<String> {
    vec![text.into()]
}

fn dash(value: Option<&str>) -> Vec<String> {
    one(value.unwrap_or("-"))
}

fn is_key_material(artifact: &ArtifactReport) -> bool {
    matches!(artifact.kind, "ca" | "cert" | "keypair")
}

fn certificates(report: &Report, on_disk: bool) -> Table {
    let mut headers = vec!["ID", "CN", "O", "SANS", "EKU", "ISSUER", "KEY", "VALIDITY"];
    if on_disk {
        headers.extend(["NOT BEFORE", "NOT AFTER", "RESIDUAL"]);
    }
    let rows = report
        .artifacts
        .iter()
        .filter(|a| is_key_material(a))
        .map(|a| {
            let subject = a.subject.as_ref();
            let mut sans: Vec<String> = a.sans.as_ref().map(|s| s.dns.clone()).unwrap_or_default();
            sans.extend(a.sans.as_ref().map(|s| s.ip.clone()).unwrap_or_default());
            let eku: Vec<String> = a
                .eku
                .iter()
                .flatten()
                .filter_map(|e| serde_json::to_value(e).ok().and_then(|v| v.as_str().map(String::from)))
                .collect();
            let issuer = match a.kind {
                "ca" => "self-signed",
                _ => a.issuer.as_deref().unwrap_or("-"),
            };
            let validity = a.validity_seconds.map(|s| length(std::time::Duration::from_secs(s)));
            let mut row = vec![
                one(a.id.clone()),
                dash(subject.map(|s| s.cn.as_str())),
                non_empty(subject.map(|s| s.o.clone()).unwrap_or_default()),
                non_empty(sans),
                one(if eku.is_empty() { "-".to_string() } else { eku.join(",") }),
                one(issuer),
                dash(a.key),
                dash(validity.as_deref()),
            ];
            if on_disk {
                let read = a.residual_seconds.is_some();
                row.push(dash(a.not_before.as_deref().filter(|_| read)));
                row.push(dash(a.not_after.as_deref().filter(|_| read)));
                let residual = a.residual_seconds.map(|s| remaining(time::Duration::seconds(s)));
                row.push(dash(residual.as_deref()));
            }
            row
        })
        .collect();
    Table { headers, rows }
}

fn non_empty(items: Vec<String>) -> Vec<String> {
    if items.is_empty() { one("-") } else { items }
}

fn hashes(report: &Report) -> Table {
    Table {
        headers: vec!["CA", "DISCOVERY HASH"],
        rows: report
            .artifacts
            .iter()
            .filter_map(|a| a.discovery_hash.as_ref().map(|h| vec![one(a.id.clone()), one(h.clone())]))
            .collect(),
    }
}

fn files(report: &Report) -> Table {
    let mut rows = Vec::new();
    for artifact in &report.artifacts {
        for file in &artifact.files {
            let consumers = match (&file.host, file.consumers.is_empty()) {
                (Some(host), false) => format!("{host}: {}", file.consumers.join(", ")),
                (Some(host), true) => format!("{host}: -"),
                (None, _) => "cluster directory".to_string(),
            };
            rows.push(vec![
                one(artifact.id.clone()),
                one(file.path.clone()),
                one(file.mode.clone()),
                one(if file.sha256.is_some() { "ok" } else { "missing" }),
                one(consumers),
            ]);
        }
    }
    Table { headers: vec!["ARTIFACT", "FILE", "MODE", "ON DISK", "CONSUMERS"], rows }
}

fn text_table(table: &Table) -> String {
    let mut widths: Vec<usize> = table.headers.iter().map(|h| h.len()).collect();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            let widest = cell.iter().map(|l| l.chars().count()).max().unwrap_or(0);
            widths[i] = widths[i].max(widest);
        }
    }
    let mut out = String::new();
    let header: Vec<String> = table.headers.iter().map(|h| (*h).to_string()).collect();
    push_line(&mut out, &header, &widths);
    let tall = table.rows.iter().any(|row| row.iter().any(|cell| cell.len() > 1));
    for (i, row) in table.rows.iter().enumerate() {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        if tall && i > 0 {
            // A blank line tells one row's continuation lines from the next row.
            out.push('\n');
        }
        for line in 0..height {
            let cells: Vec<String> = row.iter().map(|cell| cell.get(line).cloned().unwrap_or_default()).collect();
            push_line(&mut out, &cells, &widths);
        }
    }
    out
}

fn push_line(out: &mut String, cells: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            let pad = widths[i] - cell.chars().count();
            line.push_str(cell);
            line.push_str(&" ".repeat(pad + 2));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn markdown_table(table: &Table) -> String {
    let mut lines =
        vec![format!("| {} |", table.headers.join(" | ")), format!("|{}", "---|".repeat(table.headers.len()))];
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|cell| cell.join("<br>").replace('|', "\\|")).collect();
        lines.push(format!("| {} |", cells.join(" | ")));
    }
    lines.push(String::new());
    lines.join("\n")
}
