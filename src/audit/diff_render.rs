//! The plan diff for people: text (coloured when the writer supports it)
//! and Markdown ready to paste into a pull request.

use std::io::{self, Write};

use codespan_reporting::term::termcolor::{Color, ColorSpec, WriteColor};

use super::diff::{Changed, HostImpact, PlanDiff};
use crate::changes::fields::describe;

/// Renders a diff as text.
pub fn write_text(out: &mut dyn WriteColor, diff: &PlanDiff) -> io::Result<()> {
    paint(out, None, true, &format!("certplan diff {} → {}", diff.old, diff.new))?;
    writeln!(out)?;
    if diff.same {
        writeln!(out, "No difference: both plans compile to the same PKI.")?;
        return Ok(());
    }
    writeln!(out, "{}", headline(diff))?;
    let groups = same_changes(diff);
    if !groups.is_empty() {
        section(out, "Changed")?;
        for (ids, lines) in groups {
            for (i, line) in wrap(&ids, 74).iter().enumerate() {
                let sign = if i == 0 { "~" } else { " " };
                paint(out, Some(Color::Yellow), false, &format!("  {sign} {line}"))?;
                writeln!(out)?;
            }
            for line in lines {
                writeln!(out, "      {line}")?;
            }
        }
    }
    for (title, sign, color, list) in
        [("Added", '+', Color::Green, &diff.added), ("Removed", '-', Color::Red, &diff.removed)]
    {
        if list.is_empty() {
            continue;
        }
        section(out, title)?;
        for artifact in list {
            paint(out, Some(color), false, &format!("  {sign} {}", artifact.id))?;
            writeln!(out)?;
        }
    }
    let roots = cascade_roots(diff);
    if !roots.is_empty() {
        section(out, "Cascade")?;
        for change in roots {
            writeln!(out, "  {}", cascade_sentence(diff, change, std::string::ToString::to_string))?;
            for line in wrap(&change.cascade, 76) {
                writeln!(out, "      {line}")?;
            }
        }
    }
    if !diff.hosts.is_empty() {
        section(out, "Hosts")?;
        for host in &diff.hosts {
            writeln!(out, "  {}", host_name(host))?;
            let restart = if host.restart.is_empty() { Vec::new() } else { vec![host.restart.join(", ")] };
            for (label, list, color) in [
                ("writes", &host.writes, Some(Color::Green)),
                ("removes", &host.removes, Some(Color::Red)),
                ("restart", &restart, Some(Color::Yellow)),
            ] {
                for (i, item) in list.iter().enumerate() {
                    let label = if i == 0 { label } else { "" };
                    write!(out, "    {label:<9}")?;
                    paint(out, color, false, item)?;
                    writeln!(out)?;
                }
            }
        }
    }
    if !diff.notes.is_empty() {
        section(out, "Notes")?;
        for note in &diff.notes {
            paint(out, Some(Color::Red), true, "  ! ")?;
            writeln!(out, "{note}")?;
        }
    }
    Ok(())
}

/// Renders a diff as Markdown.
pub fn write_markdown(out: &mut dyn Write, diff: &PlanDiff) -> io::Result<()> {
    writeln!(out, "### certplan diff: `{}` → `{}`\n", diff.old, diff.new)?;
    if diff.same {
        writeln!(out, "No difference: both plans compile to the same PKI.")?;
        return Ok(());
    }
    writeln!(out, "**{}**\n", headline(diff))?;
    for note in &diff.notes {
        writeln!(out, "> [!WARNING]\n> {note}\n")?;
    }
    writeln!(out, "| | artifact | change |\n|---|---|---|")?;
    for (ids, lines) in same_changes(diff) {
        let ids: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
        let lines: Vec<String> = lines.iter().map(|l| cell(l)).collect();
        writeln!(out, "| ~ | {} | {} |", ids.join("<br>"), lines.join("<br>"))?;
    }
    for artifact in &diff.added {
        writeln!(out, "| + | `{}` | added ({}) |", artifact.id, artifact.kind)?;
    }
    for artifact in &diff.removed {
        writeln!(out, "| − | `{}` | removed ({}) |", artifact.id, artifact.kind)?;
    }
    let roots = cascade_roots(diff);
    if !roots.is_empty() {
        writeln!(out, "\n#### Cascade\n")?;
        for change in roots {
            let sentence = cascade_sentence(diff, change, |id| format!("`{id}`"));
            let ids: Vec<String> = change.cascade.iter().map(|id| format!("`{id}`")).collect();
            writeln!(out, "- {sentence}: {}", ids.join(", "))?;
        }
    }
    if !diff.hosts.is_empty() {
        writeln!(out, "\n#### Hosts\n")?;
        writeln!(out, "| host | files written | files removed | restart |\n|---|---|---|---|")?;
        for host in &diff.hosts {
            let list =
                |items: &[String]| items.iter().map(|i| format!("`{}`", cell(i))).collect::<Vec<_>>().join("<br>");
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                host_name(host),
                list(&host.writes),
                list(&host.removes),
                host.restart.join(", ")
            )?;
        }
    }
    Ok(())
}

/// Artifacts whose own fields changed, those with the same changes together
/// (a validity edit touches every leaf alike), in the order they first appear.
fn same_changes(diff: &PlanDiff) -> Vec<(Vec<String>, Vec<String>)> {
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for change in diff.changed.iter().filter(|c| !c.fields.is_empty()) {
        let lines: Vec<String> = change.fields.iter().map(describe).collect();
        match groups.iter_mut().find(|(_, l)| *l == lines) {
            Some((ids, _)) => ids.push(change.id.clone()),
            None => groups.push((vec![change.id.clone()], lines)),
        }
    }
    groups
}

fn headline(diff: &PlanDiff) -> String {
    let s = &diff.summary;
    let hosts = if s.hosts > 0 { format!(" on {} host(s)", s.hosts) } else { String::new() };
    format!(
        "{} changed, {} added, {} removed; {} file(s) written, {} removed{hosts}; {} component restart(s)",
        s.changed, s.added, s.removed, s.files_written, s.files_removed, s.restarts
    )
}

fn section(out: &mut dyn WriteColor, title: &str) -> io::Result<()> {
    writeln!(out)?;
    paint(out, None, true, title)?;
    writeln!(out)
}

fn paint(out: &mut dyn WriteColor, color: Option<Color>, bold: bool, text: &str) -> io::Result<()> {
    out.set_color(ColorSpec::new().set_fg(color).set_bold(bold))?;
    write!(out, "{text}")?;
    out.reset()
}

fn host_name(host: &HostImpact) -> String {
    host.host.clone().unwrap_or_else(|| "cluster directory".to_string())
}

/// Changed artifacts whose own spec changed and that others depend on.
fn cascade_roots(diff: &PlanDiff) -> Vec<&Changed> {
    diff.changed.iter().filter(|c| c.because.is_empty() && !c.cascade.is_empty()).collect()
}

/// `ca/etcd changes, so 7 certificates and 3 kubeconfigs change`.
fn cascade_sentence(diff: &PlanDiff, root: &Changed, code: impl Fn(&str) -> String) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for id in &root.cascade {
        let kind = diff.changed.iter().find(|c| &c.id == id).map_or("artifact", |c| c.kind);
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(kind, n)| format!("{n} {}", kind_name(kind, *n))).collect();
    let list = match parts.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    };
    let verb = if root.cascade.len() == 1 { "changes" } else { "change" };
    format!("{} changes, so {list} {verb}", code(&root.id))
}

fn kind_name(kind: &str, n: usize) -> String {
    let singular = match kind {
        "ca" => "CA",
        "cert" => "certificate",
        "keypair" => "key pair",
        "token-file" => "token file",
        "flags" => "flag file",
        other => other,
    };
    if n == 1 { singular.to_string() } else { format!("{singular}s") }
}

fn wrap(items: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() { format!("{item},") } else { item.clone() };
        if !line.is_empty() && line.len() + 1 + piece.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
